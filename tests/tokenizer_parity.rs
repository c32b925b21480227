//! Tokenizer parity with llama.cpp: every file of `tests/golden/tokenizer/corpus/` (paper text,
//! Vietnamese, code, numbers, whitespace runs, emoji and other scripts, special-token strings)
//! tokenized by [`GgufTokenizer`] must give exactly the ids `llama-tokenize` gave for the same
//! model in plain-text mode (`scripts/make-tokenizer-goldens.sh`), for all three real models.
//!
//! The models are provisioned by the project itself (registry, model store, pip mirror), as
//! `tests/e2e_digest.rs` does; only the GGUF header is read, never the weights. The chat
//! templates the files embed are also checked against the copies the template goldens use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use paperdigest::llm::registry::{ModelStore, Registry, ResolveOptions, resolve};
use paperdigest::llm::{GgufFile, GgufTokenizer};

#[derive(serde::Deserialize)]
struct Golden {
    ids: BTreeMap<String, Vec<u32>>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The model file, from the store or fetched into it once.
fn provision(name: &str) -> PathBuf {
    let registry = Registry::builtin().expect("built-in registry");
    let store = ModelStore::default_location().expect("model store");
    let opts = ResolveOptions {
        show_progress: false,
        ..ResolveOptions::default()
    };
    resolve(name, &registry, &store, &opts)
        .unwrap_or_else(|e| panic!("cannot provision {name}: {e}"))
        .path
}

fn corpus() -> Vec<(String, String)> {
    let dir = root().join("tests/golden/tokenizer/corpus");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// A readable account of where two id lists part.
fn describe_mismatch(tok: &GgufTokenizer, ours: &[u32], theirs: &[u32]) -> String {
    let at = ours
        .iter()
        .zip(theirs)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(theirs.len()));
    let window = |ids: &[u32]| -> String {
        let lo = at.saturating_sub(3);
        let hi = (at + 5).min(ids.len());
        ids[lo..hi]
            .iter()
            .map(|&id| format!("{id}:{:?}", tok.token_to_piece(id).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "{} ids vs llama.cpp's {}; first difference at #{at}\n      ours:      {}\n      llama.cpp: {}",
        ours.len(),
        theirs.len(),
        window(ours),
        window(theirs)
    )
}

fn check_model(name: &str) -> (usize, usize, Vec<String>) {
    let path = provision(name);
    let gguf = GgufFile::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let tok = GgufTokenizer::from_gguf(&gguf).unwrap_or_else(|e| panic!("{e}"));
    let golden_path = root().join(format!("tests/golden/tokenizer/{name}.json"));
    let golden: Golden = serde_json::from_str(
        &std::fs::read_to_string(&golden_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", golden_path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", golden_path.display()));
    let files = corpus();
    let mut failures = Vec::new();
    let mut matching = 0;
    for (file, text) in &files {
        let Some(expected) = golden.ids.get(file) else {
            failures.push(format!(
                "{name} / {file}: no golden ids (run scripts/make-tokenizer-goldens.sh)"
            ));
            continue;
        };
        match tok.encode(text) {
            Ok(ids) if ids == *expected => matching += 1,
            Ok(ids) => failures.push(format!(
                "{name} / {file}: {}",
                describe_mismatch(&tok, &ids, expected)
            )),
            Err(e) => failures.push(format!("{name} / {file}: {e}")),
        }
    }
    println!(
        "{name}: {matching}/{} corpus files match llama.cpp",
        files.len()
    );
    (matching, files.len(), failures)
}

#[test]
fn ids_equal_llama_tokenize_for_every_model_and_corpus_file() {
    let mut all_failures = Vec::new();
    for name in [
        "smollm2-135m-instruct",
        "qwen2.5-coder-1.5b-instruct",
        "gemma-3-270m",
    ] {
        let (_, _, failures) = check_model(name);
        all_failures.extend(failures);
    }
    assert!(
        all_failures.is_empty(),
        "{} corpus files tokenize differently from llama.cpp:\n{}",
        all_failures.len(),
        all_failures.join("\n")
    );
}

/// The end-of-generation tokens (what stops a generation, and what `--ignore-eos` bans) are
/// the ones llama.cpp lists for the same file (`llama-tokenize -v` prints them).
#[test]
fn end_of_generation_tokens_are_llama_cpp_s() {
    for (name, expected) in [
        ("smollm2-135m-instruct", &[0u32, 2, 4][..]),
        (
            "qwen2.5-coder-1.5b-instruct",
            &[128247, 151643, 151645, 151662, 151663, 151664][..],
        ),
        ("gemma-3-270m", &[1, 106, 212][..]),
    ] {
        let gguf = GgufFile::open(&provision(name)).unwrap_or_else(|e| panic!("{e}"));
        let tok = GgufTokenizer::from_gguf(&gguf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tok.eos_ids(), expected, "{name}");
    }
}

#[test]
fn embedded_chat_templates_are_the_ones_the_template_goldens_render() {
    for (name, golden) in [
        ("smollm2-135m-instruct", Some("smollm2-135m-instruct.jinja")),
        (
            "qwen2.5-coder-1.5b-instruct",
            Some("qwen2.5-coder-1.5b-instruct.jinja"),
        ),
        // A base model: no template, so paperdigest's built-in Gemma template applies.
        ("gemma-3-270m", None),
    ] {
        let gguf = GgufFile::open(&provision(name)).unwrap_or_else(|e| panic!("{e}"));
        let embedded = gguf.get_str("tokenizer.chat_template").unwrap();
        match golden {
            Some(file) => {
                let path = root().join("tests/golden/chat/templates").join(file);
                let committed = std::fs::read_to_string(&path).unwrap();
                assert_eq!(embedded, Some(committed.as_str()), "{name}");
            }
            None => {
                assert_eq!(embedded, None, "{name}");
                let tok = GgufTokenizer::from_gguf(&gguf).unwrap();
                let template = paperdigest::llm::ChatTemplate::from_gguf(&gguf, &tok).unwrap();
                assert_eq!(template.builtin_name(), Some("gemma"), "{name}");
            }
        }
    }
}
