//! The report of `bench digest`: per-model aggregates of what the workers measured, the machine
//! and settings of the run, and its three renderings: `report.json`, `report.md` (a table per
//! metric with the best value marked, and how to reproduce the run) and the plots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::{BenchPaper, DigestBenchError, ModelRun, PaperRun, write_file, write_json};
use crate::config::Settings;
use crate::digest::{Digest, PaperDigest, PaperTimings};
use crate::paper::Lang;

/// The whole report, as `report.json` holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub generated_at: String,
    pub models: Vec<ModelRow>,
    pub papers: Vec<PaperInfo>,
    pub machine: Machine,
    pub settings: RunSettings,
    /// The command that made the report.
    pub command: String,
}

/// One model's row: aggregates over the papers, then the per-paper details.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelRow {
    pub name: String,
    pub path: Option<PathBuf>,
    pub architecture: Option<String>,
    pub quantization: Option<String>,
    pub file_size_mb: Option<f64>,
    pub device: Option<String>,
    pub threads: Option<usize>,
    pub load_seconds: Option<f64>,
    /// Building the language's token masks, once per model.
    pub setup_seconds: Option<f64>,
    /// All prefill tokens over all prefill seconds, papers with a summary.
    pub prefill_tok_s: Option<f64>,
    /// All generated tokens over all generation seconds.
    pub decode_tok_s: Option<f64>,
    /// Mean seconds to write one paper's summary.
    pub seconds_per_paper: Option<f64>,
    pub median_seconds_per_paper: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub kv_cache_mb: Option<f64>,
    /// Well-formed summaries over the papers given (a paper without a summary counts as not
    /// well-formed).
    pub well_formed_rate: Option<f64>,
    /// Numbers in Main Results found in the paper, over all numbers written.
    pub grounding_rate: Option<f64>,
    /// Characters of the language's scripts over all characters written.
    pub language_fidelity: Option<f64>,
    /// Generated tokens per paper with a summary.
    pub avg_output_tokens: Option<f64>,
    /// well_formed_rate x grounding_rate x language_fidelity (a missing rate counts as 1).
    pub quality: Option<f64>,
    pub papers_done: usize,
    pub papers_failed: usize,
    pub error: Option<String>,
    pub papers: Vec<PaperRun>,
}

/// A paper of the run, as extraction found it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaperInfo {
    pub id: String,
    pub title: String,
    pub pages: Option<usize>,
    /// Words of the abstract and body (after the reference list is removed).
    pub words: Option<usize>,
    pub extract_seconds: Option<f64>,
    /// Why no model was given the paper.
    pub error: Option<String>,
}

/// The machine the run was on, and the versions that ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: Option<String>,
    pub logical_cpus: usize,
    /// Worker threads of the engine (RAYON_NUM_THREADS / --threads, else all cores).
    pub threads: usize,
    /// The device asked for; each model row says the one it ran on.
    pub device: String,
    pub memory_mb: Option<f64>,
    pub os: String,
    pub kernel: Option<String>,
    pub paperdigest_version: String,
    pub candle_version: Option<String>,
}

/// The settings every model ran with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSettings {
    pub lang: Lang,
    pub max_context: usize,
    pub max_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
    pub prompts_dir: Option<PathBuf>,
    pub patent_focus: Option<String>,
}

impl BenchReport {
    pub fn new(
        models: Vec<ModelRow>,
        papers: Vec<PaperInfo>,
        machine: Machine,
        settings: RunSettings,
        command: String,
    ) -> BenchReport {
        BenchReport {
            generated_at: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            models,
            papers,
            machine,
            settings,
            command,
        }
    }

    /// Papers every model was given.
    pub fn papers_given(&self) -> usize {
        self.papers.iter().filter(|p| p.error.is_none()).count()
    }
}

impl ModelRow {
    /// A model that never reached a worker (it could not be found or downloaded).
    pub fn failed(name: &str, path: Option<&Path>, error: String) -> ModelRow {
        ModelRow {
            name: name.to_string(),
            path: path.map(Path::to_path_buf),
            error: Some(error),
            ..ModelRow::default()
        }
    }

    /// Aggregates a worker's run. Rates are over the papers given to the model; a model that
    /// produced nothing keeps its row, with its error.
    pub fn from_run(name: &str, path: Option<&Path>, run: ModelRun) -> ModelRow {
        let done: Vec<&PaperRun> = run.papers.iter().filter(|p| p.error.is_none()).collect();
        let sum = |f: fn(&PaperRun) -> usize| done.iter().map(|p| f(p)).sum::<usize>();
        let sum_secs = |f: fn(&PaperRun) -> f64| done.iter().map(|p| f(p)).sum::<f64>();
        let mut seconds: Vec<f64> = done.iter().map(|p| p.seconds).collect();
        seconds.sort_by(f64::total_cmp);
        // A paper Ctrl-C stopped was not run: it is listed, but no rate counts it.
        let given = run.papers.iter().filter(|p| !p.stopped).count();
        let mut error = run.error.clone();
        if error.is_none() && given > 0 && done.is_empty() {
            error = Some("no paper was summarised".to_string());
        }
        let produced = !done.is_empty();
        let well_formed_rate = produced.then(|| {
            run.papers.iter().filter(|p| p.well_formed).count() as f64 / given.max(1) as f64
        });
        let grounding_rate = ratio(sum(|p| p.grounded), sum(|p| p.numbers));
        let chars = sum(|p| p.chars);
        let language_fidelity = ratio(chars - sum(|p| p.foreign_chars), chars);
        let quality = well_formed_rate
            .map(|w| w * grounding_rate.unwrap_or(1.0) * language_fidelity.unwrap_or(1.0));
        ModelRow {
            name: name.to_string(),
            path: path.map(Path::to_path_buf),
            architecture: run.architecture,
            quantization: run.quantization,
            file_size_mb: run.file_size_mb,
            device: run.device,
            threads: run.threads,
            load_seconds: run.load_seconds,
            setup_seconds: run.setup_seconds,
            prefill_tok_s: rate(sum(|p| p.prefill_tokens), sum_secs(|p| p.prefill_secs)),
            decode_tok_s: rate(sum(|p| p.generated_tokens), sum_secs(|p| p.generate_secs)),
            seconds_per_paper: produced.then(|| seconds.iter().sum::<f64>() / done.len() as f64),
            median_seconds_per_paper: median(&seconds),
            peak_rss_mb: run.peak_rss_mb,
            kv_cache_mb: run.kv_cache_mb,
            well_formed_rate,
            grounding_rate,
            language_fidelity,
            avg_output_tokens: produced
                .then(|| sum(|p| p.generated_tokens) as f64 / done.len() as f64),
            quality,
            papers_done: done.len(),
            papers_failed: given - done.len(),
            error,
            papers: run.papers,
        }
    }
}

impl Machine {
    /// This machine, as Linux describes it (fields other platforms lack are left out).
    pub fn detect(device: &str) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mb = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kb| kb / 1024.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string());
        Machine {
            cpu,
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads: candle_core::utils::get_num_threads(),
            device: device.to_string(),
            memory_mb,
            os: std::env::consts::OS.to_string(),
            kernel,
            paperdigest_version: env!("CARGO_PKG_VERSION").to_string(),
            candle_version: locked_version("candle-core"),
        }
    }
}

impl RunSettings {
    pub fn from_settings(settings: &Settings) -> RunSettings {
        RunSettings {
            lang: settings.lang,
            max_context: settings.max_context,
            max_tokens: settings.max_tokens,
            temperature: settings.temperature,
            top_p: settings.top_p,
            seed: settings.seed,
            prompts_dir: settings.prompts_dir.clone(),
            patent_focus: settings.patent_focus.clone(),
        }
    }
}

/// The version of a dependency this binary was built with, from the lock file.
fn locked_version(package: &str) -> Option<String> {
    let lock = include_str!("../../Cargo.lock");
    let needle = format!("name = \"{package}\"\n");
    let at = lock.find(&needle)? + needle.len();
    let line = lock[at..].lines().next()?;
    let version = line.strip_prefix("version = \"")?.strip_suffix('"')?;
    Some(version.to_string())
}

/// Tokens per second, when any time was spent.
pub fn rate(tokens: usize, secs: f64) -> Option<f64> {
    (secs > 0.0).then(|| tokens as f64 / secs)
}

/// `part / whole`, when there is a whole.
pub fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn median(sorted: &[f64]) -> Option<f64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// A metric of the report: how to read it off a row, show it, and which way is better.
pub struct Metric {
    pub key: &'static str,
    pub title: &'static str,
    pub higher_is_better: bool,
    pub value: fn(&ModelRow) -> Option<f64>,
    pub show: fn(f64) -> String,
}

/// The metrics of the report, in the order of its tables.
pub const METRICS: [Metric; 10] = [
    Metric {
        key: "quality",
        title: "Quality (well-formed x grounding x language fidelity)",
        higher_is_better: true,
        value: |r| r.quality,
        show: |v| format!("{v:.3}"),
    },
    Metric {
        key: "seconds_per_paper",
        title: "Seconds per paper (mean)",
        higher_is_better: false,
        value: |r| r.seconds_per_paper,
        show: |v| format!("{v:.1}"),
    },
    Metric {
        key: "well_formed_rate",
        title: "Well-formed summaries",
        higher_is_better: true,
        value: |r| r.well_formed_rate,
        show: percent,
    },
    Metric {
        key: "grounding_rate",
        title: "Main Results numbers found in the paper",
        higher_is_better: true,
        value: |r| r.grounding_rate,
        show: percent,
    },
    Metric {
        key: "language_fidelity",
        title: "Characters in the language's scripts",
        higher_is_better: true,
        value: |r| r.language_fidelity,
        show: percent,
    },
    Metric {
        key: "prefill_tok_s",
        title: "Prefill tokens/s",
        higher_is_better: true,
        value: |r| r.prefill_tok_s,
        show: |v| format!("{v:.1}"),
    },
    Metric {
        key: "decode_tok_s",
        title: "Decode tokens/s",
        higher_is_better: true,
        value: |r| r.decode_tok_s,
        show: |v| format!("{v:.1}"),
    },
    Metric {
        key: "load_seconds",
        title: "Load seconds",
        higher_is_better: false,
        value: |r| r.load_seconds,
        show: |v| format!("{v:.2}"),
    },
    Metric {
        key: "peak_rss_mb",
        title: "Peak memory (RSS, MB)",
        higher_is_better: false,
        value: |r| r.peak_rss_mb,
        show: |v| format!("{v:.0}"),
    },
    Metric {
        key: "avg_output_tokens",
        title: "Output tokens per paper",
        higher_is_better: false,
        value: |r| r.avg_output_tokens,
        show: |v| format!("{v:.0}"),
    },
];

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// The best value of a metric over the rows, when any row has one.
pub fn best(metric: &Metric, rows: &[ModelRow]) -> Option<f64> {
    let values = rows.iter().filter_map(|r| (metric.value)(r));
    if metric.higher_is_better {
        values.max_by(f64::total_cmp)
    } else {
        values.min_by(f64::total_cmp)
    }
}

/// Writes `report.json`, `report.md`, the plots and each model's digest under `out`.
pub fn write_all(
    report: &BenchReport,
    papers: &[BenchPaper],
    out: &Path,
) -> Result<(), DigestBenchError> {
    write_json(&out.join("report.json"), report)?;
    let plots = super::plots::write_plots(report, out);
    let plot_files: Vec<String> = match plots {
        Ok(files) => files,
        Err(error) => {
            tracing::warn!(%error, "plots not written");
            Vec::new()
        }
    };
    let digests = out.join("digests");
    std::fs::create_dir_all(&digests).map_err(|source| DigestBenchError::Write {
        path: digests.clone(),
        source,
    })?;
    let mut digest_files = Vec::new();
    for (index, row) in report.models.iter().enumerate() {
        if row.papers_done == 0 {
            continue;
        }
        let name = format!(
            "digests/{:02}-{}.md",
            index + 1,
            super::digest::slug(&row.name)
        );
        let digest = model_digest(report, row, papers);
        write_file(
            &out.join(&name),
            crate::render::Format::Markdown.render(&digest).as_bytes(),
        )?;
        digest_files.push((row.name.clone(), name));
    }
    let markdown = to_markdown(report, &plot_files, &digest_files);
    write_file(&out.join("report.md"), markdown.as_bytes())
}

/// The digest a model wrote, in the digest's own format, for reading the summaries side by side.
fn model_digest(report: &BenchReport, row: &ModelRow, papers: &[BenchPaper]) -> Digest {
    let papers = papers
        .iter()
        .zip(&row.papers)
        .map(|(paper, run)| PaperDigest {
            meta: paper.meta.clone(),
            summary: run.summary.clone(),
            error: run.error.clone(),
            timings: PaperTimings {
                context_tokens: run.context_tokens,
                prefill_tokens: run.prefill_tokens,
                prefill_secs: run.prefill_secs,
                generated_tokens: run.generated_tokens,
                generate_secs: run.generate_secs,
                total_secs: run.seconds,
                ..PaperTimings::default()
            },
            grounding: None,
            language_fidelity: None,
        })
        .collect();
    Digest {
        date: chrono::Local::now().date_naive(),
        model: row.name.clone(),
        lang: report.settings.lang,
        generated_at: chrono::Local::now().naive_local(),
        papers,
    }
}

/// `report.md`: readable on its own, pasteable into an issue.
pub fn to_markdown(
    report: &BenchReport,
    plot_files: &[String],
    digest_files: &[(String, String)],
) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let s = &report.settings;
    let _ = writeln!(md, "# paperdigest bench digest\n");
    let _ = writeln!(
        md,
        "{} model(s) on {} paper(s), `--lang {}`, made {}.\n",
        report.models.len(),
        report.papers_given(),
        lang_code(s.lang),
        report.generated_at
    );
    let _ = writeln!(
        md,
        "- **Machine:** {}, {} logical CPUs, {} engine threads, {} MB RAM, {} {}",
        m.cpu.as_deref().unwrap_or("unknown CPU"),
        m.logical_cpus,
        m.threads,
        m.memory_mb
            .map_or_else(|| "?".to_string(), |v| format!("{v:.0}")),
        m.os,
        m.kernel.as_deref().unwrap_or("")
    );
    let _ = writeln!(
        md,
        "- **Versions:** paperdigest {}, candle {}",
        m.paperdigest_version,
        m.candle_version.as_deref().unwrap_or("?")
    );
    let _ = writeln!(
        md,
        "- **Settings:** device `{}`, max context {}, max tokens {}, temperature {}, top-p {}, \
         seed {}{}\n",
        m.device,
        s.max_context,
        s.max_tokens,
        s.temperature,
        s.top_p,
        s.seed,
        s.prompts_dir
            .as_ref()
            .map_or_else(String::new, |d| format!(", prompts from `{}`", d.display()))
    );
    for file in plot_files {
        let _ = writeln!(md, "![{file}]({file})\n");
    }

    let _ = writeln!(md, "## Overview\n");
    let _ = writeln!(
        md,
        "| model | arch | quant | size MB | quality | s/paper | decode tok/s | well-formed | \
         grounding | fidelity | peak RSS MB | status |"
    );
    let _ = writeln!(md, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for row in &report.models {
        let show = |v: Option<f64>, f: fn(f64) -> String| v.map_or_else(|| "—".to_string(), f);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&row.name),
            row.architecture.as_deref().unwrap_or("—"),
            row.quantization.as_deref().unwrap_or("—"),
            show(row.file_size_mb, |v| format!("{v:.0}")),
            show(row.quality, |v| format!("{v:.3}")),
            show(row.seconds_per_paper, |v| format!("{v:.1}")),
            show(row.decode_tok_s, |v| format!("{v:.1}")),
            show(row.well_formed_rate, percent),
            show(row.grounding_rate, percent),
            show(row.language_fidelity, percent),
            show(row.peak_rss_mb, |v| format!("{v:.0}")),
            row.error
                .as_deref()
                .map_or_else(|| "ok".to_string(), |e| format!("error: {}", cell(e)))
        );
    }
    md.push('\n');

    let _ = writeln!(md, "## Metrics\n");
    let _ = writeln!(md, "The best value of each metric is in bold with ★.\n");
    for metric in &METRICS {
        let better = if metric.higher_is_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let _ = writeln!(md, "### {} ({better})\n", metric.title);
        let _ = writeln!(md, "| model | {} |", metric.key);
        let _ = writeln!(md, "|---|--:|");
        let top = best(metric, &report.models);
        for row in &report.models {
            let value = match (metric.value)(row) {
                Some(v) if Some(v) == top && report.models.len() > 1 => {
                    format!("**{}** ★", (metric.show)(v))
                }
                Some(v) => (metric.show)(v),
                None => "—".to_string(),
            };
            let _ = writeln!(md, "| {} | {value} |", cell(&row.name));
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Per paper\n");
    for row in &report.models {
        let _ = writeln!(md, "### {}\n", cell(&row.name));
        if let Some(error) = &row.error {
            let _ = writeln!(md, "Error: {}\n", cell(error));
        }
        if row.papers.is_empty() {
            continue;
        }
        let _ = writeln!(
            md,
            "| paper | s | context tok | prefill tok | prefill tok/s | generated tok | \
             decode tok/s | well-formed | grounded / numbers | foreign chars | error |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|---|--:|--:|---|");
        for p in &row.papers {
            let show = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.1}"));
            let _ = writeln!(
                md,
                "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} |",
                cell(&p.id),
                p.seconds,
                p.context_tokens,
                p.prefill_tokens,
                show(p.prefill_tok_s),
                p.generated_tokens,
                show(p.decode_tok_s),
                if p.well_formed {
                    "yes".to_string()
                } else {
                    format!("no ({})", cell(&p.defects.join("; ")))
                },
                p.grounded,
                p.numbers,
                p.foreign_chars,
                p.error.as_deref().map_or_else(String::new, cell)
            );
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Papers\n");
    let _ = writeln!(
        md,
        "Extracted once; every model read the same text with the same prompts.\n"
    );
    let _ = writeln!(
        md,
        "| paper | title | pages | words | extraction s | error |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|---|");
    for p in &report.papers {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&p.id),
            cell(&p.title),
            p.pages.map_or_else(|| "—".to_string(), |v| v.to_string()),
            p.words.map_or_else(|| "—".to_string(), |v| v.to_string()),
            p.extract_seconds
                .map_or_else(|| "—".to_string(), |v| format!("{v:.2}")),
            p.error.as_deref().map_or_else(String::new, cell)
        );
    }
    md.push('\n');

    if !digest_files.is_empty() {
        let _ = writeln!(md, "## The digests\n");
        for (name, file) in digest_files {
            let _ = writeln!(md, "- {}: [{file}]({file})", cell(name));
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## How the numbers are made\n");
    let _ = writeln!(
        md,
        "- **Seconds per paper**: writing one summary (prefill, generation, checks, retries); \
         extraction is shared and listed under Papers.\n\
         - **Prefill / decode tokens/s**: all tokens over all seconds of that stage, over the \
         papers with a summary.\n\
         - **Well-formed**: every section present, 1+ Main Results, 3-8 tags, exactly 3 paper \
         and 3 patent ideas, no empty item; a paper without a summary is not well-formed.\n\
         - **Grounding**: numbers in Main Results that occur in the paper's text, over all \
         numbers the model wrote (unsupported ones are removed or regenerated in the digest).\n\
         - **Language fidelity**: characters of the scripts the language uses, over all \
         characters written.\n\
         - **Quality**: well-formed x grounding x fidelity (a rate with nothing to count is 1).\n\
         - **Peak RSS**: the worker process's VmHWM; each model runs in a process of its own.\n"
    );
    let _ = writeln!(md, "## Reproduce\n");
    let _ = writeln!(md, "```sh\n{}\n```", report.command);
    md
}

fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Vi => "vi",
        Lang::En => "en",
    }
}

/// Text made safe for one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper(seconds: f64, well_formed: bool, numbers: usize, grounded: usize) -> PaperRun {
        PaperRun {
            id: "p".to_string(),
            seconds,
            prefill_tokens: 100,
            prefill_secs: 1.0,
            generated_tokens: 50,
            generate_secs: 5.0,
            well_formed,
            numbers,
            grounded,
            chars: 1000,
            foreign_chars: 0,
            ..PaperRun::default()
        }
    }

    #[test]
    fn rows_aggregate_over_the_papers_given() {
        let mut failed = paper(3.0, false, 0, 0);
        failed.error = Some("context too small".to_string());
        let mut stopped = paper(1.0, false, 0, 0);
        stopped.error = Some("stopped".to_string());
        stopped.stopped = true;
        let run = ModelRun {
            load_seconds: Some(1.5),
            papers: vec![
                paper(10.0, true, 4, 4),
                paper(30.0, false, 6, 5),
                failed,
                stopped,
            ],
            ..ModelRun::default()
        };
        let row = ModelRow::from_run("m", None, run);
        assert_eq!(row.papers_done, 2);
        assert_eq!(row.papers_failed, 1);
        assert_eq!(row.seconds_per_paper, Some(20.0));
        assert_eq!(row.median_seconds_per_paper, Some(20.0));
        assert_eq!(row.prefill_tok_s, Some(100.0));
        assert_eq!(row.decode_tok_s, Some(10.0));
        assert_eq!(row.well_formed_rate, Some(1.0 / 3.0));
        assert_eq!(row.grounding_rate, Some(0.9));
        assert_eq!(row.language_fidelity, Some(1.0));
        assert_eq!(row.avg_output_tokens, Some(50.0));
        let quality = row.quality.unwrap();
        assert!((quality - 0.3).abs() < 1e-12, "{quality}");
        assert!(row.error.is_none());
    }

    #[test]
    fn a_model_that_produced_nothing_keeps_its_row_with_the_reason() {
        let run = ModelRun {
            error: Some("cannot load x.gguf: bad magic".to_string()),
            ..ModelRun::default()
        };
        let row = ModelRow::from_run("broken", None, run);
        assert_eq!(row.error.as_deref(), Some("cannot load x.gguf: bad magic"));
        assert_eq!(row.quality, None);
        assert_eq!(row.well_formed_rate, None);
        let mut failed = paper(3.0, false, 0, 0);
        failed.error = Some("boom".to_string());
        let row = ModelRow::from_run(
            "silent",
            None,
            ModelRun {
                papers: vec![failed],
                ..ModelRun::default()
            },
        );
        assert_eq!(row.error.as_deref(), Some("no paper was summarised"));
    }

    #[test]
    fn markdown_marks_the_best_value_of_each_metric() {
        let fast = ModelRow::from_run(
            "fast | model",
            None,
            ModelRun {
                papers: vec![paper(5.0, true, 2, 1)],
                ..ModelRun::default()
            },
        );
        let good = ModelRow::from_run(
            "good",
            None,
            ModelRun {
                papers: vec![paper(50.0, true, 2, 2)],
                ..ModelRun::default()
            },
        );
        let broken = ModelRow::failed("broken", None, "no such model".to_string());
        let report = BenchReport::new(
            vec![fast, good, broken],
            vec![],
            Machine::detect("cpu"),
            RunSettings::from_settings(&Settings::default()),
            "paperdigest bench digest --models fast,good,broken --papers x".to_string(),
        );
        let md = to_markdown(&report, &["quality-vs-seconds.svg".to_string()], &[]);
        let section = |title: &str| {
            let start = md.find(title).unwrap();
            let rest = &md[start..];
            rest[..rest[3..].find("###").map_or(rest.len(), |e| e + 3)].to_string()
        };
        let speed = section("### Seconds per paper");
        assert!(speed.contains("| fast \\| model | **5.0** ★ |"), "{speed}");
        assert!(speed.contains("| good | 50.0 |"), "{speed}");
        assert!(speed.contains("| broken | — |"), "{speed}");
        let grounding = section("### Main Results numbers");
        assert!(grounding.contains("| good | **100.0%** ★ |"), "{grounding}");
        assert!(
            grounding.contains("| fast \\| model | 50.0% |"),
            "{grounding}"
        );
        assert!(md.contains("error: no such model"), "{md}");
        assert!(md.contains("![quality-vs-seconds.svg](quality-vs-seconds.svg)"));
        assert!(md.contains("```sh\npaperdigest bench digest --models fast,good,broken"));
    }

    #[test]
    fn the_candle_version_comes_from_the_lock_file() {
        let version = locked_version("candle-core").unwrap();
        assert!(version.starts_with("0."), "{version}");
        assert_eq!(locked_version("no-such-package"), None);
    }
}
