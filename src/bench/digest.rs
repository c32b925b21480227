//! `bench digest`: the whole digest job, run by each of several models on the same papers, and
//! measured. The papers are extracted once and every model reads the same text with the same
//! prompts and sampling settings.
//!
//! Each model runs in a worker process of its own (`paperdigest bench digest-worker JOB`): its
//! peak memory is then its own, and a model that crashes or is killed for memory leaves the
//! others and the report intact, with its row carrying the reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::app::{self, AppError};
use crate::config::Settings;
use crate::digest::prompts::PromptSet;
use crate::digest::{Observer, Summary, Writer, WriterSettings, paper_text};
use crate::llm::{DeviceChoice, Engine, LoadOptions, SamplingParams};
use crate::paper::{Lang, PaperMeta};
use crate::pdf::Document;
use crate::progress::{Display, PaperProgress};

use super::report::{BenchReport, Machine, ModelRow, PaperInfo, RunSettings};

/// What to benchmark, beyond the settings (which give language, prompts and sampling).
#[derive(Debug, Clone)]
pub struct DigestBenchOptions {
    /// Registry names or GGUF paths, in report order.
    pub models: Vec<String>,
    /// PDF files, folders and arXiv ids, as `digest` takes them.
    pub papers: Vec<String>,
    /// Where the report, plots, per-model digests and worker files go.
    pub out: PathBuf,
    /// The `paperdigest` binary that runs each model (normally this process's own).
    pub worker_exe: PathBuf,
    /// Quiet workers: no progress display.
    pub quiet: bool,
    /// The command line, for "how to reproduce" in the report.
    pub command_line: String,
}

/// What went wrong before any model ran.
#[derive(Debug, thiserror::Error)]
pub enum DigestBenchError {
    #[error("bench digest needs at least one model (--models A,B,...)")]
    NoModels,
    #[error("bench digest needs papers (--papers DIR|FILE|ID...)")]
    NoPapers,
    #[error("no paper could be read: {0}")]
    NothingExtracted(String),
    #[error(transparent)]
    App(#[from] AppError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the worker job {path}: {reason}")]
    Job { path: PathBuf, reason: String },
}

/// One paper as every model sees it: metadata and extracted text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchPaper {
    pub meta: PaperMeta,
    pub document: Document,
}

/// Everything a worker needs to run one model on the papers; written as JSON for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerJob {
    pub model_path: PathBuf,
    pub papers_file: PathBuf,
    pub result_file: PathBuf,
    pub lang: Lang,
    pub prompts_dir: Option<PathBuf>,
    pub patent_focus: Option<String>,
    pub device: String,
    pub max_context: usize,
    pub max_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
}

/// What a worker measured for one model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelRun {
    pub architecture: Option<String>,
    pub quantization: Option<String>,
    pub file_size_mb: Option<f64>,
    pub device: Option<String>,
    pub threads: Option<usize>,
    /// Reading the GGUF file into the engine.
    pub load_seconds: Option<f64>,
    /// Building the writer's token masks for the language (once per model).
    pub setup_seconds: Option<f64>,
    /// The attention cache of one session.
    pub kv_cache_mb: Option<f64>,
    /// The worker's peak resident memory (VmHWM), model and all.
    pub peak_rss_mb: Option<f64>,
    pub papers: Vec<PaperRun>,
    /// Why the model produced nothing (failed to load, ...).
    pub error: Option<String>,
}

/// One model on one paper.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PaperRun {
    pub id: String,
    pub title: String,
    /// Writing the summary: prefill, generation, checks and retries (extraction is shared by
    /// all models and reported once per paper).
    pub seconds: f64,
    pub context_tokens: usize,
    pub prefill_tokens: usize,
    pub prefill_secs: f64,
    pub generated_tokens: usize,
    pub generate_secs: f64,
    pub prefill_tok_s: Option<f64>,
    pub decode_tok_s: Option<f64>,
    pub well_formed: bool,
    /// What keeps the summary from being well-formed.
    pub defects: Vec<String>,
    /// Numbers written in Main Results, and those found in the paper.
    pub numbers: usize,
    pub grounded: usize,
    pub grounding_rate: Option<f64>,
    /// Characters written, and those of scripts the language does not use.
    pub chars: usize,
    pub foreign_chars: usize,
    pub language_fidelity: Option<f64>,
    pub summary: Option<Summary>,
    pub error: Option<String>,
    /// Ctrl-C stopped the summary: the paper counts as not run, not as a failure.
    #[serde(default)]
    pub stopped: bool,
}

/// Runs the benchmark: extracts the papers once, runs each model in a worker, then writes
/// `report.json`, `report.md`, the plots and one digest per model under `options.out`.
pub fn run_digest_bench(
    options: &DigestBenchOptions,
    settings: &Settings,
    display: &Display,
) -> Result<BenchReport, DigestBenchError> {
    if options.models.is_empty() {
        return Err(DigestBenchError::NoModels);
    }
    if options.papers.is_empty() {
        return Err(DigestBenchError::NoPapers);
    }
    let work = options.out.join("work");
    create_dir(&work)?;
    let (papers, infos) = prepare_papers(&options.papers, settings, display)?;
    if papers.is_empty() {
        let reasons: Vec<String> = infos
            .iter()
            .filter_map(|p| p.error.as_ref().map(|e| format!("{}: {e}", p.id)))
            .collect();
        return Err(DigestBenchError::NothingExtracted(reasons.join("; ")));
    }
    let papers_file = work.join("papers.json");
    write_json(&papers_file, &papers)?;

    let mut rows = Vec::with_capacity(options.models.len());
    for (index, spec) in options.models.iter().enumerate() {
        if crate::resume::stop_requested() {
            rows.push(ModelRow::failed(
                spec,
                None,
                "not run: the benchmark was stopped first".to_string(),
            ));
            continue;
        }
        tracing::info!(model = %spec, "benchmarking");
        let spinner = display.spinner(format!(
            "[{}/{}] {spec}: resolving",
            index + 1,
            options.models.len()
        ));
        let mut model_settings = settings.clone();
        model_settings.model = spec.clone();
        let resolved = match app::resolve_model(&model_settings, display) {
            Ok(resolved) => resolved,
            Err(error) => {
                spinner.finish_and_clear();
                rows.push(ModelRow::failed(spec, None, error.to_string()));
                continue;
            }
        };
        spinner.finish_and_clear();
        let label = app::model_label(&resolved);
        let stem = format!("{:02}-{}", index + 1, slug(&label));
        let job = WorkerJob {
            model_path: resolved.path.clone(),
            papers_file: papers_file.clone(),
            result_file: work.join(format!("{stem}.result.json")),
            lang: settings.lang,
            prompts_dir: settings.prompts_dir.clone(),
            patent_focus: settings.patent_focus.clone(),
            device: settings.device.clone(),
            max_context: settings.max_context,
            max_tokens: settings.max_tokens,
            temperature: settings.temperature,
            top_p: settings.top_p,
            seed: settings.seed,
        };
        let job_file = work.join(format!("{stem}.job.json"));
        write_json(&job_file, &job)?;
        // Off a terminal there are no bars: a line per model says where a long run is.
        let plain = !display.bars && !options.quiet;
        if plain {
            eprintln!(
                "[{}/{}] {label}: {} papers",
                index + 1,
                options.models.len(),
                papers.len()
            );
        }
        let started = Instant::now();
        let run = run_worker_process(options, &job, &job_file);
        let row = ModelRow::from_run(&label, Some(&resolved.path), run);
        if plain {
            eprintln!(
                "[{}/{}] {label}: {} in {:.0} s",
                index + 1,
                options.models.len(),
                row.error.as_deref().unwrap_or("done"),
                started.elapsed().as_secs_f64()
            );
        }
        rows.push(row);
    }

    let report = BenchReport::new(
        rows,
        infos,
        Machine::detect(&settings.device),
        RunSettings::from_settings(settings),
        options.command_line.clone(),
    );
    super::report::write_all(&report, &papers, &options.out)?;
    Ok(report)
}

/// Runs one model's job in a worker process and reads what it measured. A worker that dies
/// gives a run with the reason as its error.
fn run_worker_process(options: &DigestBenchOptions, job: &WorkerJob, job_file: &Path) -> ModelRun {
    // A result left by an earlier run must not pass for this one's.
    let _ = std::fs::remove_file(&job.result_file);
    let mut command = Command::new(&options.worker_exe);
    if options.quiet {
        command.arg("--quiet");
    }
    command
        .args(["bench", "digest-worker", "--job"])
        .arg(job_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let status = match command.status() {
        Ok(status) => status,
        Err(error) => {
            return ModelRun::failed(format!(
                "cannot start the worker {}: {error}",
                options.worker_exe.display()
            ));
        }
    };
    let read = std::fs::read(&job.result_file)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice::<ModelRun>(&bytes).map_err(|e| e.to_string()));
    match read {
        Ok(run) => run,
        Err(_) => ModelRun::failed(describe_exit(status)),
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let hint = if signal == 9 {
                " (killed: out of memory?)"
            } else {
                ""
            };
            return format!("the worker died from signal {signal}{hint} before reporting");
        }
    }
    format!("the worker exited with {status} before reporting")
}

/// The worker: runs one model on the papers of `job_file` and writes what it measured to the
/// job's result file. Returns the run too.
pub fn run_worker(job_file: &Path, display: &Display) -> Result<ModelRun, DigestBenchError> {
    let job: WorkerJob = read_json(job_file)?;
    let papers: Vec<BenchPaper> = read_json(&job.papers_file)?;
    let run = measure_model(&job, &papers, display);
    write_json(&job.result_file, &run)?;
    Ok(run)
}

/// Loads the model, writes every paper's summary and measures it all. Failures are recorded in
/// the run, not returned.
pub fn measure_model(job: &WorkerJob, papers: &[BenchPaper], display: &Display) -> ModelRun {
    let mut run = ModelRun::default();
    let focus = job
        .patent_focus
        .clone()
        .unwrap_or_else(|| crate::digest::prompts::default_patent_focus(job.lang).to_string());
    let prompts = match PromptSet::load(job.lang, job.prompts_dir.as_deref(), &focus) {
        Ok(prompts) => prompts,
        Err(error) => return ModelRun::failed(error.to_string()),
    };
    let device: DeviceChoice = match job.device.parse() {
        Ok(device) => device,
        Err(error) => return ModelRun::failed(format!("--device: {error}")),
    };
    let spinner = display.spinner(format!("loading {}", job.model_path.display()));
    let started = Instant::now();
    let loaded = Engine::load(
        &job.model_path,
        &LoadOptions {
            device,
            context: Some(job.max_context),
            kv_cache: Default::default(),
        },
    );
    spinner.finish_and_clear();
    let engine = match loaded {
        Ok(engine) => engine,
        Err(error) => {
            let mut failed =
                ModelRun::failed(format!("cannot load {}: {error}", job.model_path.display()));
            failed.peak_rss_mb = super::peak_rss_mb();
            return failed;
        }
    };
    run.load_seconds = Some(started.elapsed().as_secs_f64());
    let info = engine.info();
    run.architecture = Some(info.architecture.clone());
    run.quantization = info.quantization.clone();
    run.file_size_mb = Some(info.file_size as f64 / 1e6);
    run.device = Some(crate::llm::device::describe(engine.device()));
    run.threads = Some(candle_core::utils::get_num_threads());
    run.kv_cache_mb = Some(engine.kv_cache_bytes() as f64 / 1e6);

    let settings = WriterSettings {
        sampling: SamplingParams {
            temperature: job.temperature,
            top_p: job.top_p,
            seed: job.seed,
        },
        max_context: job.max_context,
        max_tokens: job.max_tokens,
    };
    let started = Instant::now();
    let writer = Writer::new(&engine, &prompts, settings);
    run.setup_seconds = Some(started.elapsed().as_secs_f64());

    let total = papers.len();
    for (index, paper) in papers.iter().enumerate() {
        let mut progress = PaperProgress::new(display, format!("[{}/{total}] ", index + 1));
        let paper_run = measure_paper(&writer, paper, &mut progress);
        progress.finish(match &paper_run.error {
            Some(error) => format!("failed: {error}"),
            None => format!(
                "{} in {:.0} s ({:.1} tok/s)",
                if paper_run.well_formed {
                    "well-formed"
                } else {
                    "malformed"
                },
                paper_run.seconds,
                paper_run.decode_tok_s.unwrap_or(0.0)
            ),
        });
        run.papers.push(paper_run);
        if crate::resume::stop_requested() {
            break;
        }
    }
    run.peak_rss_mb = super::peak_rss_mb();
    run
}

/// One paper's summary by one model, measured.
fn measure_paper(writer: &Writer<'_>, paper: &BenchPaper, observer: &mut dyn Observer) -> PaperRun {
    let mut out = PaperRun {
        id: paper_id(&paper.meta),
        title: paper.meta.title.clone(),
        ..PaperRun::default()
    };
    let started = Instant::now();
    let written = writer.write(&paper.meta, &paper_text(&paper.document), observer);
    out.seconds = started.elapsed().as_secs_f64();
    let written = match written {
        Ok(written) => written,
        Err(error) => {
            out.stopped = matches!(error, crate::digest::WriterError::Interrupted);
            out.error = Some(error.to_string());
            out.defects = vec!["no summary".to_string()];
            return out;
        }
    };
    let timings = &written.timings;
    out.context_tokens = timings.context_tokens;
    out.prefill_tokens = timings.prefill_tokens;
    out.prefill_secs = timings.prefill_secs;
    out.generated_tokens = timings.generated_tokens;
    out.generate_secs = timings.generate_secs;
    out.prefill_tok_s = super::report::rate(timings.prefill_tokens, timings.prefill_secs);
    out.decode_tok_s = super::report::rate(timings.generated_tokens, timings.generate_secs);
    out.defects = written.summary.defects();
    out.well_formed = out.defects.is_empty();
    out.numbers = written.grounding.numbers;
    out.grounded = written.grounding.grounded;
    out.grounding_rate = super::report::ratio(out.grounded, out.numbers);
    out.chars = written.language_fidelity.chars;
    out.foreign_chars = written.language_fidelity.foreign_chars;
    out.language_fidelity = super::report::ratio(out.chars - out.foreign_chars, out.chars);
    out.summary = Some(written.summary);
    out
}

/// Gathers and extracts the papers once, through the paper cache. Papers that cannot be read
/// are listed with the reason and given to no model.
fn prepare_papers(
    inputs: &[String],
    settings: &Settings,
    display: &Display,
) -> Result<(Vec<BenchPaper>, Vec<PaperInfo>), DigestBenchError> {
    let jobs = app::gather_papers(inputs, None, &|| app::remote(settings, display))?;
    let cache = app::paper_cache(settings).ok();
    let mut papers = Vec::new();
    let mut infos = Vec::new();
    for job in jobs {
        let started = Instant::now();
        let extracted = job
            .pdf
            .and_then(|pdf| app::extract_cached(cache.as_ref(), &pdf).map(|d| (pdf, d)));
        let extract_seconds = started.elapsed().as_secs_f64();
        match extracted {
            Ok((pdf, mut document)) => {
                let meta = if job.meta_from_pdf {
                    crate::sources::local::meta_from_document(&pdf, &document)
                } else {
                    job.meta
                };
                if document.abstract_text.is_none() {
                    document.abstract_text = job.abstract_text;
                }
                infos.push(PaperInfo {
                    id: paper_id(&meta),
                    title: meta.title.clone(),
                    pages: Some(document.pages),
                    words: Some(body_words(&document)),
                    extract_seconds: Some(extract_seconds),
                    error: None,
                });
                papers.push(BenchPaper { meta, document });
            }
            Err(error) => infos.push(PaperInfo {
                id: paper_id(&job.meta),
                title: job.meta.title.clone(),
                pages: None,
                words: None,
                extract_seconds: None,
                error: Some(error),
            }),
        }
    }
    Ok((papers, infos))
}

/// The id a report names a paper by: its arXiv id, else its file name, else its title.
pub fn paper_id(meta: &PaperMeta) -> String {
    if let Some(id) = &meta.arxiv_id {
        return id.to_string();
    }
    if let crate::paper::PaperOrigin::LocalFile { path } = &meta.origin
        && let Some(name) = path.file_name()
    {
        return name.to_string_lossy().into_owned();
    }
    meta.title.clone()
}

fn body_words(document: &Document) -> usize {
    let abstract_words = document
        .abstract_text
        .as_deref()
        .map_or(0, |a| a.split_whitespace().count());
    abstract_words
        + document
            .sections
            .iter()
            .map(|s| s.text.split_whitespace().count())
            .sum::<usize>()
}

/// A file-name-safe form of a model name.
pub fn slug(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        "model".to_string()
    } else {
        slug.to_string()
    }
}

impl ModelRun {
    fn failed(error: String) -> ModelRun {
        ModelRun {
            error: Some(error),
            ..ModelRun::default()
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), DigestBenchError> {
    std::fs::create_dir_all(dir).map_err(|source| DigestBenchError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

pub(super) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DigestBenchError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| DigestBenchError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    write_file(path, &json)
}

pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DigestBenchError> {
    crate::store::write_atomic(path, bytes).map_err(|e| DigestBenchError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, DigestBenchError> {
    let bytes = std::fs::read(path).map_err(|e| DigestBenchError::Job {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| DigestBenchError::Job {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("qwen2.5-coder-1.5b-instruct"),
            "qwen2.5-coder-1.5b-instruct"
        );
        assert_eq!(slug("My Model/v2"), "My-Model-v2");
        assert_eq!(slug("///"), "model");
    }
}
