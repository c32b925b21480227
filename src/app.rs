//! The commands, as library functions: each takes resolved settings and plain arguments and
//! returns what happened, so tests call them without spawning the binary. `main.rs` only parses
//! the command line and maps the results to output and exit codes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, Utc};

use crate::config::Settings;
use crate::digest::cache::{CachedSummary, SummaryCache, SummaryKey, model_sha256};
use crate::digest::{
    Digest, PaperDigest, PaperTimings, PromptSet, Writer, WriterSettings, paper_text,
};
use crate::llm::registry::{ModelStore, Registry, ResolveOptions, ResolvedModel, resolve};
use crate::llm::{DeviceChoice, Engine, LoadOptions, SamplingParams};
use crate::net::{HttpClient, NetConfig};
use crate::paper::{ArxivId, PaperMeta};
use crate::pdf::Document;
use crate::progress::{Display, PaperProgress};
use crate::render::Format;
use crate::sources::local;
use crate::sources::remote::{Endpoints, Remote};
use crate::store::Cache;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Inputs(#[from] local::LocalSourceError),
    #[error(transparent)]
    Prompts(#[from] crate::digest::prompts::PromptError),
    #[error(transparent)]
    Registry(#[from] crate::llm::registry::RegistryError),
    #[error(transparent)]
    Resolve(#[from] crate::llm::registry::ResolveError),
    #[error("cannot load model {path}: {cause}")]
    Load {
        path: PathBuf,
        /// In the message only (not a `source`), so the error chain prints it once.
        cause: crate::llm::LlmError,
    },
    #[error(transparent)]
    Device(crate::llm::LlmError),
    #[error(transparent)]
    Write(#[from] crate::store::StoreError),
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error(transparent)]
    Source(#[from] crate::sources::remote::SourceError),
    #[error(
        "`{0}` is neither an existing file or folder nor an arXiv id (e.g. 2601.05242, hep-th/9901001)"
    )]
    BadInput(String),
    #[error("no place for the paper cache: set PAPERDIGEST_CACHE or --cache-dir")]
    NoCacheDir,
    #[error(transparent)]
    ModelHash(#[from] crate::digest::cache::ModelHashError),
}

/// What `digest` was asked to do, beyond the settings.
#[derive(Debug, Clone)]
pub struct DigestRequest {
    /// PDF files, folders and arXiv ids, mixed. None at all means the day's featured papers.
    pub inputs: Vec<String>,
    pub out: Option<PathBuf>,
    /// The formats to write; none means the one `out`'s extension names, else Markdown.
    pub formats: Vec<Format>,
    /// The day whose Hugging Face papers to digest; also the date in the title.
    pub date: Option<NaiveDate>,
    /// Reuse finished summaries from the summary cache (new ones are stored either way).
    pub reuse_summaries: bool,
}

/// One input of `digest` or `fetch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A PDF file or a folder of PDFs.
    Local(PathBuf),
    Arxiv(ArxivId),
}

/// Sorts raw inputs into local paths and arXiv ids. A path that exists wins over an id
/// (`hep-th/9901001` could be both); anything else must be an id.
pub fn parse_inputs(raw: &[String]) -> Result<Vec<Input>, AppError> {
    raw.iter()
        .map(|item| {
            let path = PathBuf::from(item);
            if path.exists() {
                Ok(Input::Local(path))
            } else if let Ok(id) = item.parse::<ArxivId>() {
                Ok(Input::Arxiv(id))
            } else if item.to_ascii_lowercase().ends_with(".pdf") {
                Err(AppError::Inputs(local::LocalSourceError::Missing { path }))
            } else {
                Err(AppError::BadInput(item.clone()))
            }
        })
        .collect()
}

/// A paper to digest: what is known about it and where its PDF is, or why there is none.
#[derive(Debug)]
pub struct PaperJob {
    pub meta: PaperMeta,
    pub pdf: Result<PathBuf, String>,
    /// Local files take title and authors from the PDF itself.
    pub meta_from_pdf: bool,
    /// The abstract the metadata service gave, used when the PDF has none.
    pub abstract_text: Option<String>,
}

/// The paper cache the settings name.
pub fn paper_cache(settings: &Settings) -> Result<Cache, AppError> {
    settings
        .cache_dir
        .clone()
        .or_else(Cache::default_root)
        .map(Cache::new)
        .ok_or(AppError::NoCacheDir)
}

/// The remote sources with the tool's one HTTP client, as the settings say.
pub fn remote(settings: &Settings, display: &Display) -> Result<Remote, AppError> {
    let client = HttpClient::new(NetConfig {
        contact: settings.contact.clone(),
        offline: settings.offline,
        show_progress: display.bars,
        ..NetConfig::default()
    })?;
    let defaults = Endpoints::default();
    let arxiv = settings.arxiv_endpoint.clone().unwrap_or(defaults.arxiv);
    // arXiv's 3 s rule protects arXiv; a mirror or test server on this machine is not arXiv.
    let arxiv_interval = if is_loopback(&arxiv) {
        std::time::Duration::ZERO
    } else {
        defaults.arxiv_interval
    };
    let endpoints = Endpoints {
        hf: settings.hf_endpoint.clone().unwrap_or(defaults.hf),
        arxiv,
        arxiv_interval,
    };
    Ok(Remote::new(client, paper_cache(settings)?, endpoints))
}

/// Whether an endpoint URL names this machine (127.0.0.0/8, ::1 or localhost).
fn is_loopback(endpoint: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(endpoint) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Gathers the papers of a request: the day's listing (when a date is given or nothing else
/// is), then the inputs in the order given. Metadata and PDFs come through the cache; a paper
/// whose PDF cannot be had is kept with the reason.
pub fn gather_papers(
    request_inputs: &[String],
    date: Option<NaiveDate>,
    remote: &dyn Fn() -> Result<Remote, AppError>,
) -> Result<Vec<PaperJob>, AppError> {
    let inputs = parse_inputs(request_inputs)?;
    let ids: Vec<ArxivId> = inputs
        .iter()
        .filter_map(|i| match i {
            Input::Arxiv(id) => Some(id.clone()),
            Input::Local(_) => None,
        })
        .collect();
    let list_day = date.or_else(|| inputs.is_empty().then(|| Utc::now().date_naive()));
    let remote = if list_day.is_some() || !ids.is_empty() {
        Some(remote()?)
    } else {
        None
    };
    let mut jobs = Vec::new();
    let to_job = |fetched: crate::sources::remote::FetchedPaper| PaperJob {
        meta: fetched.paper.meta,
        pdf: fetched.pdf.map_err(|e| e.to_string()),
        meta_from_pdf: false,
        abstract_text: fetched.paper.summary,
    };
    if let (Some(day), Some(remote)) = (list_day, &remote) {
        jobs.extend(remote.fetch_day(day)?.into_iter().map(to_job));
    }
    let mut fetched_ids = match &remote {
        Some(remote) if !ids.is_empty() => remote.fetch_ids(&ids).into_iter(),
        _ => Vec::new().into_iter(),
    };
    for input in inputs {
        match input {
            Input::Arxiv(_) => jobs.extend(fetched_ids.next().map(to_job)),
            Input::Local(path) => {
                for file in local::expand_inputs(&[path])? {
                    jobs.push(PaperJob {
                        meta: local::meta_without_document(&file),
                        pdf: Ok(file),
                        meta_from_pdf: true,
                        abstract_text: None,
                    });
                }
            }
        }
    }
    Ok(jobs)
}

/// Extracts a PDF, through the cache when there is one: the entry is keyed by the PDF's bytes
/// and the extractor version, so a changed file or extractor is extracted again.
pub fn extract_cached(cache: Option<&Cache>, pdf: &Path) -> Result<Document, String> {
    let cannot_read = |e: std::io::Error| format!("cannot read {}: {e}", pdf.display());
    // A huge local file is refused before it is read into memory.
    let size = std::fs::metadata(pdf).map_err(cannot_read)?.len();
    if size > crate::pdf::MAX_BYTES {
        return Err(crate::pdf::PdfError::TooLarge {
            source_name: pdf.display().to_string(),
            bytes: size,
            limit: crate::pdf::MAX_BYTES,
        }
        .to_string());
    }
    let bytes = std::fs::read(pdf).map_err(cannot_read)?;
    let entry = cache.map(|cache| {
        let name = format!(
            "{}.v{}.json",
            crate::store::content_key(&bytes),
            crate::pdf::EXTRACTOR_VERSION
        );
        (cache, cache.entry_path("text", &name))
    });
    if let Some((cache, path)) = &entry
        && let Ok(Some(json)) = cache.read(path)
        && let Ok(document) = serde_json::from_slice::<Document>(&json)
    {
        return Ok(document);
    }
    let document =
        crate::pdf::extract_bytes(&bytes, &pdf.display().to_string()).map_err(|e| e.to_string())?;
    if let Some((cache, path)) = &entry
        && let Ok(json) = serde_json::to_vec(&document)
        && let Err(error) = cache.write(path, &json)
    {
        tracing::warn!(%error, "extracted text not cached");
    }
    Ok(document)
}

/// What `fetch` did for each paper.
#[derive(Debug)]
pub struct FetchReport {
    pub papers: Vec<(PaperMeta, Result<PathBuf, String>)>,
}

/// Downloads and caches metadata, PDFs and extracted text, without a model.
pub fn run_fetch(
    inputs: &[String],
    date: Option<NaiveDate>,
    settings: &Settings,
    display: &Display,
) -> Result<FetchReport, AppError> {
    let cache = paper_cache(settings)?;
    cache.sweep_stale_temps();
    let jobs = gather_papers(inputs, date, &|| remote(settings, display))?;
    let papers = jobs
        .into_iter()
        .map(|job| {
            let result = job.pdf.and_then(|pdf| {
                extract_cached(Some(&cache), &pdf)?;
                Ok(pdf)
            });
            (job.meta, result)
        })
        .collect();
    Ok(FetchReport { papers })
}

/// What `digest` did.
#[derive(Debug)]
pub struct DigestOutcome {
    pub digest: Digest,
    /// The files written, one per format.
    pub written: Vec<PathBuf>,
    /// Papers whose summary came from the summary cache.
    pub reused: usize,
    /// A stop was requested (Ctrl-C) before every paper was done: the papers not done carry
    /// [`STOPPED`] as their error; finished ones are in the digest and the summary cache.
    pub interrupted: bool,
}

/// The reason given for a paper a stopped run did not finish.
pub const STOPPED: &str =
    "not summarised: the run was stopped first; run the same command again to finish it";

/// The registry with the user's extra entries, and the store, as the settings say.
pub fn model_catalog(settings: &Settings) -> Result<(Registry, ModelStore), AppError> {
    let mut registry = Registry::builtin()?;
    if let Some(dir) = &settings.registry_dir {
        registry = registry.with_dir(dir)?;
    }
    let store = match &settings.models_dir {
        Some(dir) => ModelStore::new(dir.clone()),
        None => ModelStore::default_location()?,
    };
    Ok((registry, store))
}

pub fn resolve_options(settings: &Settings, display: &Display) -> ResolveOptions {
    ResolveOptions {
        offline: settings.offline,
        hf_endpoint: settings.hf_endpoint.clone(),
        hf_token: settings.hf_token.clone(),
        show_progress: display.bars,
        ..ResolveOptions::default()
    }
}

/// Finds (and if needed downloads) the model the settings name.
pub fn resolve_model(settings: &Settings, display: &Display) -> Result<ResolvedModel, AppError> {
    let (registry, store) = model_catalog(settings)?;
    Ok(resolve(
        &settings.model,
        &registry,
        &store,
        &resolve_options(settings, display),
    )?)
}

/// The name a digest credits its model with: the registry name, else the file name.
pub fn model_label(resolved: &ResolvedModel) -> String {
    match &resolved.entry {
        Some(entry) => entry.name.clone(),
        None => resolved
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| resolved.path.display().to_string()),
    }
}

/// The model a digest runs: its file, the name the digest credits, and its sha256 (for the
/// summary cache).
struct ModelChoice {
    path: PathBuf,
    label: String,
    sha256: String,
}

/// Writes a digest of the papers a request names. The model is loaded only when a paper needs
/// a summary that the summary cache does not have; its token masks are built once.
pub fn run_digest(
    request: &DigestRequest,
    settings: &Settings,
    display: &Display,
) -> Result<DigestOutcome, AppError> {
    let focus = settings
        .patent_focus
        .clone()
        .unwrap_or_else(|| crate::digest::prompts::default_patent_focus(settings.lang).to_string());
    let prompts = PromptSet::load(settings.lang, settings.prompts_dir.as_deref(), &focus)?;
    let jobs = gather_papers(&request.inputs, request.date, &|| remote(settings, display))?;
    // The cache is optional for local-only runs: without one, extraction and summaries are
    // just not kept.
    let cache = paper_cache(settings).ok();
    if let Some(cache) = &cache {
        cache.sweep_stale_temps();
    }
    let summaries = cache.clone().map(SummaryCache::new);

    let needs_model = jobs.iter().any(|job| job.pdf.is_ok());
    let model = if needs_model {
        let resolved = resolve_model(settings, display)?;
        let spinner = display.spinner(format!("checking {}", resolved.path.display()));
        let sha256 = model_sha256(&resolved.path, cache.as_ref())?;
        spinner.finish_and_clear();
        Some(ModelChoice {
            label: model_label(&resolved),
            path: resolved.path,
            sha256,
        })
    } else {
        None
    };
    let writer_settings = WriterSettings {
        sampling: SamplingParams {
            temperature: settings.temperature,
            top_p: settings.top_p,
            seed: settings.seed,
        },
        max_context: settings.max_context,
        max_tokens: settings.max_tokens,
    };
    let prompts_fingerprint = prompts.fingerprint();

    // Loaded on the first paper that needs the model; the writer's masks are built with it.
    let engine_cell: std::cell::OnceCell<Engine> = std::cell::OnceCell::new();
    let writer_cell: std::cell::OnceCell<Writer<'_>> = std::cell::OnceCell::new();
    let total = jobs.len();
    let mut papers = Vec::with_capacity(total);
    let mut reused = 0;
    for (index, job) in jobs.into_iter().enumerate() {
        if crate::resume::stop_requested() {
            papers.push(failed(job.meta, STOPPED.to_string(), Instant::now()));
            continue;
        }
        let mut progress = PaperProgress::new(display, format!("[{}/{total}] ", index + 1));
        let started = Instant::now();
        let paper = match (&model, job.pdf) {
            (Some(model), Ok(pdf)) => {
                let job = ExtractedJob {
                    meta: job.meta,
                    pdf,
                    meta_from_pdf: job.meta_from_pdf,
                    abstract_text: job.abstract_text,
                };
                let context = SummaryContext {
                    cache: cache.as_ref(),
                    summaries: summaries.as_ref(),
                    reuse: request.reuse_summaries,
                    model_sha256: &model.sha256,
                    prompts_fingerprint: &prompts_fingerprint,
                    settings: &writer_settings,
                };
                let writer = || {
                    load_writer(
                        &engine_cell,
                        &writer_cell,
                        &model.path,
                        &prompts,
                        &writer_settings,
                        settings,
                        display,
                    )
                };
                digest_one(job, &context, &writer, &mut progress, started)?
            }
            (_, pdf) => failed(job.meta, pdf.err().unwrap_or_default(), started),
        };
        match &paper.error {
            Some(error) => {
                progress.finish(format!("failed: {error}"));
                tracing::warn!(paper = %paper.meta.title, %error, "paper failed");
            }
            None if paper.timings.cached => {
                reused += 1;
                progress.finish("reused from the summary cache".to_string());
                tracing::info!(paper = %paper.meta.title, "summary reused from the cache");
            }
            None => progress.finish(format!(
                "done in {:.0} s ({:.1} tok/s)",
                paper.timings.total_secs,
                paper.timings.decode_tok_s()
            )),
        }
        papers.push(paper);
    }

    let date = request.date.unwrap_or_else(|| Utc::now().date_naive());
    let digest = Digest {
        date,
        model: model.map_or_else(|| settings.model.clone(), |m| m.label),
        lang: settings.lang,
        generated_at: chrono::Local::now().naive_local(),
        papers,
    };
    let mut written = Vec::new();
    for (format, path) in
        crate::render::output_paths(request.out.as_deref(), &request.formats, date)
    {
        crate::store::write_atomic(&path, format.render(&digest).as_bytes())?;
        written.push(path);
    }
    let interrupted = digest
        .papers
        .iter()
        .any(|p| p.error.as_deref() == Some(STOPPED));
    Ok(DigestOutcome {
        digest,
        written,
        reused,
        interrupted,
    })
}

/// The writer, loading the model and building the writer's masks the first time.
fn load_writer<'a>(
    engine_cell: &'a std::cell::OnceCell<Engine>,
    writer_cell: &'a std::cell::OnceCell<Writer<'a>>,
    path: &Path,
    prompts: &'a PromptSet,
    writer_settings: &WriterSettings,
    settings: &Settings,
    display: &Display,
) -> Result<&'a Writer<'a>, AppError> {
    if let Some(writer) = writer_cell.get() {
        return Ok(writer);
    }
    let engine = match engine_cell.get() {
        Some(engine) => engine,
        None => {
            let device: DeviceChoice = settings.device.parse().map_err(AppError::Device)?;
            let spinner = display.spinner(format!("loading {}", path.display()));
            let load = LoadOptions {
                device,
                context: Some(settings.max_context),
                kv_cache: settings.kv_cache,
            };
            let engine = Engine::load(path, &load).map_err(|cause| AppError::Load {
                path: path.to_path_buf(),
                cause,
            })?;
            spinner.finish_and_clear();
            tracing::info!(model = %path.display(), "model loaded");
            engine_cell.get_or_init(|| engine)
        }
    };
    Ok(writer_cell.get_or_init(|| Writer::new(engine, prompts, writer_settings.clone())))
}

/// A paper whose PDF is at hand.
struct ExtractedJob {
    meta: PaperMeta,
    pdf: PathBuf,
    meta_from_pdf: bool,
    abstract_text: Option<String>,
}

/// What deciding between the summary cache and the model needs.
struct SummaryContext<'a> {
    cache: Option<&'a Cache>,
    summaries: Option<&'a SummaryCache>,
    reuse: bool,
    model_sha256: &'a str,
    prompts_fingerprint: &'a str,
    settings: &'a WriterSettings,
}

/// One paper: extraction (cached), then its summary from the summary cache or the model. A
/// paper-level failure is recorded in the result; only a failure to load the model is an
/// error of the whole run.
fn digest_one<'w>(
    job: ExtractedJob,
    context: &SummaryContext<'_>,
    writer: &dyn Fn() -> Result<&'w Writer<'w>, AppError>,
    progress: &mut PaperProgress,
    started: Instant,
) -> Result<PaperDigest, AppError> {
    use crate::digest::Observer;
    progress.stage("extracting text");
    let document = match extract_cached(context.cache, &job.pdf) {
        Ok(document) => document,
        Err(error) => return Ok(failed(job.meta, error, started)),
    };
    let extract_secs = started.elapsed().as_secs_f64();
    let meta = if job.meta_from_pdf {
        local::meta_from_document(&job.pdf, &document)
    } else {
        job.meta
    };
    let mut text = paper_text(&document);
    if text.abstract_text.is_none() {
        text.abstract_text = job.abstract_text.as_deref();
    }
    let key = SummaryKey::new(
        &meta,
        &text,
        context.model_sha256,
        context.prompts_fingerprint,
        context.settings,
    );
    if context.reuse
        && let Some(hit) = context.summaries.and_then(|s| s.get(&key))
    {
        return Ok(PaperDigest {
            meta,
            summary: Some(hit.summary),
            error: None,
            timings: PaperTimings {
                extract_secs,
                context_tokens: hit.timings.context_tokens,
                total_secs: started.elapsed().as_secs_f64(),
                cached: true,
                ..PaperTimings::default()
            },
            grounding: Some(hit.grounding),
            language_fidelity: Some(hit.language_fidelity),
        });
    }
    let writer = writer()?;
    match writer.write(&meta, &text, progress) {
        Ok(written) => {
            let mut timings = written.timings;
            timings.extract_secs = extract_secs;
            timings.total_secs = started.elapsed().as_secs_f64();
            tracing::info!(
                paper = %meta.title,
                numbers = written.grounding.numbers,
                grounded = written.grounding.grounded,
                regenerated = written.grounding.regenerated,
                foreign_chars = written.language_fidelity.foreign_chars,
                prefill_tokens = timings.prefill_tokens,
                generated_tokens = timings.generated_tokens,
                "summary written"
            );
            if let Some(summaries) = context.summaries {
                let entry = CachedSummary {
                    summary: written.summary.clone(),
                    grounding: written.grounding,
                    language_fidelity: written.language_fidelity,
                    timings: timings.clone(),
                };
                if let Err(error) = summaries.put(&key, &entry) {
                    tracing::warn!(%error, "summary not cached");
                }
            }
            Ok(PaperDigest {
                meta,
                summary: Some(written.summary),
                error: None,
                timings,
                grounding: Some(written.grounding),
                language_fidelity: Some(written.language_fidelity),
            })
        }
        Err(crate::digest::WriterError::Interrupted) => {
            Ok(failed(meta, STOPPED.to_string(), started))
        }
        Err(error) => Ok(failed(meta, error.to_string(), started)),
    }
}

fn failed(meta: PaperMeta, error: String, started: Instant) -> PaperDigest {
    PaperDigest {
        meta,
        summary: None,
        error: Some(error),
        timings: PaperTimings {
            total_secs: started.elapsed().as_secs_f64(),
            ..PaperTimings::default()
        },
        grounding: None,
        language_fidelity: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints() {
        for (url, expected) in [
            ("http://127.0.0.1:8080", true),
            ("http://127.1.2.3", true),
            ("http://localhost:9/x", true),
            ("http://[::1]:80", true),
            ("https://export.arxiv.org", false),
            ("http://10.0.0.1", false),
            ("not a url", false),
        ] {
            assert_eq!(is_loopback(url), expected, "{url}");
        }
    }

    #[test]
    fn inputs_are_paths_when_they_exist_else_ids() {
        let dir = tempfile::tempdir().unwrap();
        let pdf = dir.path().join("p.pdf");
        std::fs::write(&pdf, b"%PDF-1.4").unwrap();
        let raw = vec![
            pdf.display().to_string(),
            "2601.05249v2".to_string(),
            "hep-th/9901001".to_string(),
        ];
        let inputs = parse_inputs(&raw).unwrap();
        assert_eq!(inputs[0], Input::Local(pdf));
        assert!(matches!(&inputs[1], Input::Arxiv(id) if id.version() == Some(2)));
        assert!(matches!(&inputs[2], Input::Arxiv(id) if id.base() == "hep-th/9901001"));
        let missing = parse_inputs(&["missing.pdf".to_string()]).unwrap_err();
        assert!(missing.to_string().contains("missing.pdf"), "{missing}");
        let junk = parse_inputs(&["junk".to_string()]).unwrap_err();
        assert!(junk.to_string().contains("`junk`"), "{junk}");
    }

    #[test]
    fn extraction_is_cached_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let pdf = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paperdigest-note.pdf");
        let first = extract_cached(Some(&cache), &pdf).unwrap();
        // One entry (beside its lock file).
        let entries: Vec<String> = std::fs::read_dir(dir.path().join("cache/text"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".json"))
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let second = extract_cached(Some(&cache), &pdf).unwrap();
        assert_eq!(first, second);
        let not_pdf = dir.path().join("x.pdf");
        std::fs::write(&not_pdf, b"<html>captcha</html>").unwrap();
        assert!(extract_cached(Some(&cache), &not_pdf).is_err());
        // A file over the limit is refused from its size, before it is read (sparse here).
        let huge = dir.path().join("huge.pdf");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(crate::pdf::MAX_BYTES + 1)
            .unwrap();
        let err = extract_cached(Some(&cache), &huge).unwrap_err();
        assert!(err.contains("huge.pdf is too large"), "{err}");
    }
}
