//! The commands, as library functions: each takes resolved settings and plain arguments and
//! returns what happened, so tests call them without spawning the binary. `main.rs` only parses
//! the command line and maps the results to output and exit codes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, Utc};

use crate::config::Settings;
use crate::digest::{
    Digest, PaperDigest, PaperTimings, PromptSet, WriterSettings, paper_text, write_summary,
};
use crate::llm::registry::{ModelStore, Registry, ResolveOptions, ResolvedModel, resolve};
use crate::llm::{DeviceChoice, Engine, LoadOptions, SamplingParams};
use crate::paper::PaperMeta;
use crate::progress::{Display, PaperProgress};
use crate::render::Format;
use crate::sources::local;

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
    #[error("cannot load model {path}: {source}")]
    Load {
        path: PathBuf,
        source: crate::llm::LlmError,
    },
    #[error(transparent)]
    Device(crate::llm::LlmError),
    #[error(transparent)]
    Write(#[from] crate::store::StoreError),
}

/// What `digest` was asked to do, beyond the settings.
#[derive(Debug, Clone)]
pub struct DigestRequest {
    pub inputs: Vec<PathBuf>,
    pub out: Option<PathBuf>,
    pub format: Format,
    pub date: Option<NaiveDate>,
}

/// What `digest` did.
#[derive(Debug)]
pub struct DigestOutcome {
    pub digest: Digest,
    pub written: PathBuf,
}

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
        offline: false,
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

/// Writes a digest of local PDF files.
pub fn run_digest(
    request: &DigestRequest,
    settings: &Settings,
    display: &Display,
) -> Result<DigestOutcome, AppError> {
    let files = local::expand_inputs(&request.inputs)?;
    let focus = settings
        .patent_focus
        .clone()
        .unwrap_or_else(|| crate::digest::prompts::default_patent_focus(settings.lang).to_string());
    let prompts = PromptSet::load(settings.lang, settings.prompts_dir.as_deref(), &focus)?;
    let resolved = resolve_model(settings, display)?;
    let device: DeviceChoice = settings.device.parse().map_err(AppError::Device)?;
    let spinner = display.spinner(format!("loading {}", resolved.path.display()));
    let engine =
        Engine::load(&resolved.path, &LoadOptions { device }).map_err(|source| AppError::Load {
            path: resolved.path.clone(),
            source,
        })?;
    spinner.finish_and_clear();
    tracing::info!(model = %resolved.path.display(), "model loaded");
    let writer_settings = WriterSettings {
        sampling: SamplingParams {
            temperature: settings.temperature,
            top_p: settings.top_p,
            seed: settings.seed,
        },
        max_context: settings.max_context,
    };

    let total = files.len();
    let mut papers = Vec::with_capacity(total);
    for (index, file) in files.iter().enumerate() {
        let mut progress = PaperProgress::new(display, format!("[{}/{total}] ", index + 1));
        let paper = digest_one(file, &engine, &prompts, &writer_settings, &mut progress);
        match &paper.error {
            Some(error) => {
                progress.finish(format!("failed: {error}"));
                tracing::warn!(file = %file.display(), %error, "paper failed");
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
        model: model_label(&resolved),
        lang: settings.lang,
        generated_at: chrono::Local::now().naive_local(),
        papers,
    };
    let written = request.out.clone().unwrap_or_else(|| {
        PathBuf::from("digests").join(format!("{date}.{}", request.format.extension()))
    });
    crate::store::write_atomic(&written, request.format.render(&digest).as_bytes())?;
    Ok(DigestOutcome { digest, written })
}

fn digest_one(
    file: &Path,
    engine: &Engine,
    prompts: &PromptSet,
    settings: &WriterSettings,
    progress: &mut PaperProgress,
) -> PaperDigest {
    use crate::digest::Observer;
    let started = Instant::now();
    progress.stage("extracting text");
    let document = match crate::pdf::extract_file(file) {
        Ok(document) => document,
        Err(error) => {
            return failed(
                local::meta_without_document(file),
                error.to_string(),
                started,
            );
        }
    };
    let extract_secs = started.elapsed().as_secs_f64();
    let meta = local::meta_from_document(file, &document);
    let text = paper_text(&document);
    match write_summary(engine, prompts, settings, &meta, &text, progress) {
        Ok((summary, mut timings)) => {
            timings.extract_secs = extract_secs;
            timings.total_secs = started.elapsed().as_secs_f64();
            PaperDigest {
                meta,
                summary: Some(summary),
                error: None,
                timings,
            }
        }
        Err(error) => failed(meta, error.to_string(), started),
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
    }
}
