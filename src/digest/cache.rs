//! The summary cache: a finished paper's summary, kept under a key made of everything that
//! produced it, so a re-run of a digest reuses it instead of generating it again.
//!
//! The key ([`SummaryKey`]) hashes the paper's text (title, authors, abstract, every section),
//! the model file's sha256, the prompts' fingerprint (the effective prompt texts, the patent
//! focus and the language), the sampling settings (temperature, top-p, seed), the token limits
//! (max tokens, max context) and the writer's version, so any change to one of them is a miss.
//! Entries live in the paper cache as `summaries/<key>.json`, written atomically under the
//! entry's lock (two runs sharing a cache never see half an entry). An entry that cannot be
//! read or parsed is a miss, with a warning, never an error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::context::PaperText;
use super::grounding::Grounding;
use super::record::{LanguageFidelity, PaperTimings, Summary};
use super::writer::WriterSettings;
use crate::paper::PaperMeta;
use crate::store::{Cache, StoreError};

/// Changes whenever the writer would write a different summary from the same inputs (masks,
/// forced structure, cleaning, grounding): old entries then stop matching.
pub const WRITER_VERSION: u32 = 3;

/// A summary cache key: a sha256 in hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SummaryKey(String);

impl SummaryKey {
    /// The key of a summary of `paper` written with the model whose file has `model_sha256`,
    /// prompts with `prompts_fingerprint`, and `settings`.
    pub fn new(
        meta: &PaperMeta,
        paper: &PaperText<'_>,
        model_sha256: &str,
        prompts_fingerprint: &str,
        settings: &WriterSettings,
    ) -> SummaryKey {
        #[derive(Serialize)]
        struct Parts<'a> {
            writer: u32,
            paper: String,
            model_sha256: &'a str,
            prompts: &'a str,
            temperature: f64,
            top_p: f64,
            seed: u64,
            max_tokens: usize,
            max_context: usize,
        }
        let parts = Parts {
            writer: WRITER_VERSION,
            paper: paper_hash(meta, paper),
            model_sha256,
            prompts: prompts_fingerprint,
            temperature: settings.sampling.temperature,
            top_p: settings.sampling.top_p,
            seed: settings.sampling.seed,
            max_tokens: settings.max_tokens,
            max_context: settings.max_context,
        };
        // Serialising numbers and strings cannot fail; the Debug form is a stable fallback.
        let bytes = serde_json::to_vec(&parts).unwrap_or_else(|_| {
            format!(
                "{}|{}|{}|{}|{}|{}|{}|{}|{}",
                parts.writer,
                parts.paper,
                parts.model_sha256,
                parts.prompts,
                parts.temperature,
                parts.top_p,
                parts.seed,
                parts.max_tokens,
                parts.max_context
            )
            .into_bytes()
        });
        SummaryKey(hex::encode(Sha256::digest(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A hash of everything of a paper the model is shown: title, authors, abstract, sections.
pub fn paper_hash(meta: &PaperMeta, paper: &PaperText<'_>) -> String {
    let mut hasher = Sha256::new();
    let mut field = |text: &str| {
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    };
    field(&meta.title);
    field(&meta.authors.join("\n"));
    field(paper.abstract_text.unwrap_or_default());
    for section in &paper.sections {
        field(section.heading);
        field(section.text);
        field(if section.appendix { "appendix" } else { "body" });
    }
    hex::encode(hasher.finalize())
}

/// What the cache keeps of a finished summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedSummary {
    pub summary: Summary,
    pub grounding: Grounding,
    pub language_fidelity: LanguageFidelity,
    /// The timings of the run that wrote it.
    pub timings: PaperTimings,
}

/// Summaries kept in the paper cache.
#[derive(Debug, Clone)]
pub struct SummaryCache {
    cache: Cache,
}

impl SummaryCache {
    pub fn new(cache: Cache) -> SummaryCache {
        SummaryCache { cache }
    }

    pub fn path(&self, key: &SummaryKey) -> PathBuf {
        self.cache
            .entry_path("summaries", &format!("{}.json", key.as_str()))
    }

    /// The entry of `key`, if there is a readable one.
    pub fn get(&self, key: &SummaryKey) -> Option<CachedSummary> {
        let path = self.path(key);
        match self.cache.read(&path) {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(entry) => Some(entry),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "unreadable summary cache entry; regenerating");
                    None
                }
            },
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "summary cache not readable; regenerating");
                None
            }
        }
    }

    /// Stores `entry` under `key`, atomically.
    pub fn put(&self, key: &SummaryKey, entry: &CachedSummary) -> Result<(), StoreError> {
        let path = self.path(key);
        let bytes = serde_json::to_vec_pretty(entry).map_err(|e| StoreError {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.cache.write(&path, &bytes)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot compute the sha256 of model file {path}: {source}")]
pub struct ModelHashError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The sha256 of a model file: from its `<file>.sha256` sidecar (written by `models pull`, in
/// the `sha256sum` format), else from a note in `memo` keyed by the file's path, size and
/// modification time, else computed (about a second per GB) and noted there.
pub fn model_sha256(path: &Path, memo: Option<&Cache>) -> Result<String, ModelHashError> {
    let err = |source| ModelHashError {
        path: path.to_path_buf(),
        source,
    };
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".sha256");
    if let Ok(text) = std::fs::read_to_string(PathBuf::from(sidecar))
        && let Some(sha) = text.split_whitespace().next().filter(|s| is_sha256(s))
    {
        return Ok(sha.to_ascii_lowercase());
    }
    let metadata = std::fs::metadata(path).map_err(err)?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let note_name = format!(
        "{}.sha256",
        crate::store::content_key(
            format!("{}\n{}\n{modified}", canonical.display(), metadata.len()).as_bytes()
        )
    );
    let note = memo.map(|cache| (cache, cache.entry_path("model-hashes", &note_name)));
    if let Some((cache, note)) = &note
        && let Ok(Some(bytes)) = cache.read(note)
        && let Ok(text) = String::from_utf8(bytes)
        && is_sha256(text.trim())
    {
        return Ok(text.trim().to_string());
    }
    let sha = crate::llm::registry::sha256_file(path).map_err(err)?;
    if let Some((cache, note)) = &note
        && let Err(error) = cache.write(note, sha.as_bytes())
    {
        tracing::warn!(%error, "model hash not noted in the cache");
    }
    Ok(sha)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::SectionText;
    use crate::llm::SamplingParams;
    use crate::paper::PaperOrigin;

    fn meta() -> PaperMeta {
        PaperMeta {
            arxiv_id: None,
            title: "T".into(),
            authors: vec!["A".into()],
            published: None,
            github_repo: None,
            origin: PaperOrigin::LocalFile {
                path: "x.pdf".into(),
            },
        }
    }

    fn settings() -> WriterSettings {
        WriterSettings {
            sampling: SamplingParams {
                temperature: 0.2,
                top_p: 0.9,
                seed: 0,
            },
            max_context: 4096,
            max_tokens: 256,
        }
    }

    #[test]
    fn every_input_changes_the_key() {
        let paper = PaperText {
            abstract_text: Some("Abstract."),
            sections: vec![SectionText {
                heading: "1 Intro",
                text: "Text.",
                appendix: false,
            }],
        };
        let base = SummaryKey::new(&meta(), &paper, "aa", "pp", &settings());
        assert_eq!(
            base,
            SummaryKey::new(&meta(), &paper, "aa", "pp", &settings())
        );
        let mut other_text = paper.clone();
        other_text.sections[0].text = "Text!";
        let mut other_title = meta();
        other_title.title = "T2".into();
        let variants: Vec<(&str, SummaryKey)> = vec![
            (
                "text",
                SummaryKey::new(&meta(), &other_text, "aa", "pp", &settings()),
            ),
            (
                "title",
                SummaryKey::new(&other_title, &paper, "aa", "pp", &settings()),
            ),
            (
                "model",
                SummaryKey::new(&meta(), &paper, "ab", "pp", &settings()),
            ),
            (
                "prompts",
                SummaryKey::new(&meta(), &paper, "aa", "pq", &settings()),
            ),
            ("seed", {
                let mut s = settings();
                s.sampling.seed = 1;
                SummaryKey::new(&meta(), &paper, "aa", "pp", &s)
            }),
            ("temperature", {
                let mut s = settings();
                s.sampling.temperature = 0.3;
                SummaryKey::new(&meta(), &paper, "aa", "pp", &s)
            }),
            ("top_p", {
                let mut s = settings();
                s.sampling.top_p = 0.95;
                SummaryKey::new(&meta(), &paper, "aa", "pp", &s)
            }),
            ("max_tokens", {
                let mut s = settings();
                s.max_tokens = 128;
                SummaryKey::new(&meta(), &paper, "aa", "pp", &s)
            }),
            ("max_context", {
                let mut s = settings();
                s.max_context = 2048;
                SummaryKey::new(&meta(), &paper, "aa", "pp", &s)
            }),
        ];
        for (what, key) in variants {
            assert_ne!(key, base, "{what} did not change the key");
        }
    }

    #[test]
    fn entries_round_trip_and_broken_ones_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SummaryCache::new(Cache::new(dir.path()));
        let key = SummaryKey("k".repeat(64));
        assert!(cache.get(&key).is_none());
        let entry = CachedSummary {
            summary: Summary {
                main_problem: "P.".into(),
                tags: vec!["a".into()],
                ..Summary::default()
            },
            grounding: Grounding {
                numbers: 3,
                grounded: 2,
                regenerated: 1,
            },
            language_fidelity: LanguageFidelity {
                chars: 10,
                foreign_chars: 0,
            },
            timings: PaperTimings {
                generated_tokens: 42,
                ..PaperTimings::default()
            },
        };
        cache.put(&key, &entry).unwrap();
        assert_eq!(cache.get(&key), Some(entry));
        std::fs::write(cache.path(&key), b"{not json").unwrap();
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn model_hash_comes_from_the_sidecar_else_is_computed_once() {
        let dir = tempfile::tempdir().unwrap();
        let memo = Cache::new(dir.path().join("cache"));
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"GGUF model bytes").unwrap();
        let computed = model_sha256(&model, Some(&memo)).unwrap();
        assert_eq!(computed, crate::store::content_key(b"GGUF model bytes"));
        // Noted: the memo answers without reading the file again.
        let notes = std::fs::read_dir(dir.path().join("cache/model-hashes"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".sha256"))
            .count();
        assert_eq!(notes, 1);
        let sidecar = "ab".repeat(32);
        std::fs::write(
            dir.path().join("m.gguf.sha256"),
            format!("{sidecar}  m.gguf\n"),
        )
        .unwrap();
        assert_eq!(model_sha256(&model, Some(&memo)).unwrap(), sidecar);
        let missing = model_sha256(&dir.path().join("none.gguf"), None).unwrap_err();
        assert!(missing.to_string().contains("none.gguf"), "{missing}");
    }
}
