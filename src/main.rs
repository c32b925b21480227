//! The `paperdigest` binary: parses the command line, resolves settings, calls the library,
//! and maps results to output and exit codes (0 ok, 1 error, 2 bad command line,
//! 3 done but some papers failed, 130 stopped by Ctrl-C with finished papers kept).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use paperdigest::app::{self, DigestRequest};
use paperdigest::cli::{
    BenchCommand, BenchDigestArgs, BenchSpeedArgs, Cli, Command, DigestArgs, FetchArgs,
    GenerateArgs, ModelArgs, ModelsCommand, RunArgs, TokenizeArgs,
};
use paperdigest::config::{FileConfig, FlagOverrides, Settings};
use paperdigest::llm::{DeviceChoice, Engine, LoadOptions, SamplingParams};
use paperdigest::progress::Display;
use paperdigest::tools;

/// PDF extraction allocates and frees many small objects (lopdf's parse tree, pdf-extract's
/// glyph runs): with glibc's allocator that was 21% of `extract`'s samples. mimalloc made
/// extraction of the development papers 11% faster in the same run (see issue 4's notes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `println!` for the commands' output: a closed pipe (`paperdigest extract paper.pdf | head`)
/// ends the program quietly, as it does other command-line tools, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        write_stdout_line(format_args!($($arg)*))
    };
}

fn write_stdout_line(line: std::fmt::Arguments) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{line}") {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let code = match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    };
    report_peak_memory();
    code
}

/// With `PAPERDIGEST_PEAK_MEMORY` set, prints the process's peak resident memory (VmHWM, on
/// Linux) at exit: tests use it to check that hostile input is refused without spending memory.
fn report_peak_memory() {
    if std::env::var_os("PAPERDIGEST_PEAK_MEMORY").is_none() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(peak) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
        eprintln!("peak memory: {}", peak.trim());
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    // The PDF libraries warn once per odd glyph or stream; our own extraction reports what
    // matters as document warnings, so theirs show only from -vv on.
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0 | 1) => "warn,pdf_extract=error,lopdf=error",
        (false, 2) => "info,paperdigest=debug",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn settings(cli: &Cli, flags: FlagOverrides) -> anyhow::Result<Settings> {
    let (path, required) = match &cli.config {
        Some(path) => (Some(path.clone()), true),
        None => (FileConfig::default_path(), false),
    };
    let file = match path {
        Some(path) => FileConfig::load(&path, required)?,
        None => None,
    };
    let env = |name: &str| std::env::var(name).ok();
    let mut flags = flags;
    flags.models_dir = cli.models_dir.clone();
    flags.hf_endpoint = cli.hf_endpoint.clone();
    flags.arxiv_endpoint = cli.arxiv_endpoint.clone();
    flags.cache_dir = cli.cache_dir.clone();
    flags.contact = cli.contact.clone();
    flags.offline = cli.offline;
    Ok(Settings::resolve(file, &env, flags)?)
}

fn model_flags(args: &ModelArgs) -> FlagOverrides {
    FlagOverrides {
        model: args.model.clone(),
        ..run_flags(&args.run)
    }
}

fn run_flags(args: &RunArgs) -> FlagOverrides {
    FlagOverrides {
        device: args.device.clone(),
        max_context: args.max_context,
        kv_cache: args.kv_cache,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        max_tokens: args.max_tokens,
        ..FlagOverrides::default()
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let display = Display::detect(cli.quiet, cli.verbose >= 1);
    match &cli.command {
        Command::Digest(args) => digest(&cli, args, &display),
        Command::Fetch(args) => fetch(&cli, args, &display),
        Command::Extract(args) => {
            let document = paperdigest::pdf::extract_file(&args.file)?;
            if args.json {
                out!("{}", serde_json::to_string_pretty(&document)?);
            } else {
                out!("{}", document.body_text());
            }
            for warning in &document.warnings {
                tracing::warn!(file = %args.file.display(), "{warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { command } => match command {
            BenchCommand::Speed(args) => bench_speed(&cli, args, &display),
            BenchCommand::Digest(args) => bench_digest(&cli, args, &display),
            BenchCommand::DigestWorker { job } => {
                if let Err(error) = paperdigest::resume::install_ctrlc_handler() {
                    tracing::warn!(%error, "Ctrl-C will end the worker at once");
                }
                let run = paperdigest::bench::run_worker(job, &display)?;
                Ok(if run.error.is_some() {
                    ExitCode::from(3)
                } else {
                    ExitCode::SUCCESS
                })
            }
        },
        Command::Models { command } => {
            let settings = settings(&cli, FlagOverrides::default())?;
            let (registry, store) = app::model_catalog(&settings)?;
            match command {
                ModelsCommand::List => {
                    out!(
                        "{:<30} {:<8} {:<8} {:>9}  STORED",
                        "NAME",
                        "ARCH",
                        "QUANT",
                        "SIZE"
                    );
                    for entry in registry.entries() {
                        out!(
                            "{:<30} {:<8} {:<8} {:>7} MB  {}",
                            entry.name,
                            entry.architecture,
                            entry.quantization,
                            entry.size_bytes / 1_000_000,
                            if store.is_stored(entry) { "yes" } else { "no" }
                        );
                    }
                    out!("\nstore: {}", store.root().display());
                }
                ModelsCommand::Pull { name } => {
                    let entry = registry.get(name).with_context(|| {
                        let names: Vec<_> =
                            registry.entries().iter().map(|e| e.name.as_str()).collect();
                        format!("unknown model `{name}`; known models: {}", names.join(", "))
                    })?;
                    let resolved = paperdigest::llm::registry::pull(
                        entry,
                        &store,
                        &app::resolve_options(&settings, &display),
                    )?;
                    out!("{}", resolved.path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tokenize(args) => tokenize(&cli, args, &display),
        Command::Generate(args) => generate(&cli, args, &display),
    }
}

fn tokenize(cli: &Cli, args: &TokenizeArgs, display: &Display) -> anyhow::Result<ExitCode> {
    let text = tools::read_input(args.text.as_deref(), args.file.as_deref())?;
    let flags = FlagOverrides {
        model: args.model.clone(),
        ..FlagOverrides::default()
    };
    let settings = settings(cli, flags)?;
    let resolved = app::resolve_model(&settings, display)?;
    let tokenizer = tools::load_tokenizer(&resolved.path)?;
    let ids = tokenizer
        .encode(&text)
        .with_context(|| format!("tokenizing with {}", resolved.path.display()))?;
    out!("{}", tools::format_ids(&ids));
    Ok(ExitCode::SUCCESS)
}

fn generate(cli: &Cli, args: &GenerateArgs, display: &Display) -> anyhow::Result<ExitCode> {
    let prompt = tools::read_input(args.prompt.as_deref(), args.prompt_file.as_deref())?;
    // The digest's limits on --max-tokens and --max-context do not apply to a single
    // generation: those two come straight from the flags.
    let mut flags = model_flags(&args.model);
    flags.max_tokens = None;
    flags.max_context = None;
    let settings = settings(cli, flags)?;
    let resolved = app::resolve_model(&settings, display)?;
    let device: DeviceChoice = settings.device.parse()?;
    let spinner = display.spinner(format!("loading {}", resolved.path.display()));
    let load = LoadOptions {
        device,
        // Unset: the trained length; cache pages are only touched as positions fill.
        context: args.model.run.max_context,
        kv_cache: settings.kv_cache,
    };
    let engine = Engine::load(&resolved.path, &load).map_err(|error| tools::ToolError::Model {
        path: resolved.path.clone(),
        error,
    })?;
    spinner.finish_and_clear();
    let request = tools::GenerateRequest {
        prompt,
        raw: args.raw,
        ignore_eos: args.ignore_eos,
        max_tokens: args.model.run.max_tokens.unwrap_or(settings.max_tokens),
        sampling: SamplingParams {
            temperature: settings.temperature,
            top_p: settings.top_p,
            seed: settings.seed,
        },
        max_context: args.model.run.max_context.unwrap_or(settings.max_context),
    };
    let mut stdout = std::io::stdout().lock();
    let json = args.json;
    let outcome = tools::generate_text(&engine, &resolved.path, &request, &mut |text| {
        if !json {
            // A closed pipe (`| head`) is not worth failing the generation for.
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    })?;
    drop(stdout);
    if json {
        out!("{}", tools::outcome_json(&outcome));
    } else {
        out!("");
    }
    tracing::info!(
        prompt_tokens = outcome.prompt_tokens.len(),
        tokens = outcome.generation.tokens.len(),
        decode_tok_per_s = outcome.generation.decode_tokens_per_sec(),
        "generated"
    );
    Ok(ExitCode::SUCCESS)
}

fn digest(cli: &Cli, args: &DigestArgs, display: &Display) -> anyhow::Result<ExitCode> {
    let mut flags = model_flags(&args.model);
    flags.lang = args.lang;
    flags.prompts_dir = args.prompts.clone();
    flags.patent_focus = args.patent_focus.clone();
    let settings = settings(cli, flags)?;
    let request = DigestRequest {
        inputs: args.inputs.clone(),
        out: args.out.clone(),
        formats: args.format.clone(),
        date: args.date,
        reuse_summaries: !args.regenerate,
    };
    // Ctrl-C stops after the current section, keeping finished papers.
    if let Err(error) = paperdigest::resume::install_ctrlc_handler() {
        tracing::warn!(%error, "Ctrl-C will end the run at once");
    }
    let outcome = app::run_digest(&request, &settings, display)?;
    if outcome.interrupted {
        let papers = &outcome.digest.papers;
        let stopped = papers
            .iter()
            .filter(|p| p.error.as_deref() == Some(app::STOPPED))
            .count();
        let written: Vec<String> = outcome
            .written
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "interrupted: {} of {} papers were finished and are kept in {} and in the cache.\n\
             To finish, run the same command again (finished papers are not redone):\n  {}",
            papers.len() - stopped,
            papers.len(),
            written.join(", "),
            command_line()
        );
        return Ok(ExitCode::from(130));
    }
    let failed = outcome
        .digest
        .papers
        .iter()
        .filter(|p| p.error.is_some())
        .count();
    if !cli.quiet {
        let written: Vec<String> = outcome
            .written
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let reused = if outcome.reused > 0 {
            format!(", {} reused from the summary cache", outcome.reused)
        } else {
            String::new()
        };
        eprintln!(
            "wrote {} ({} papers, {} failed{reused})",
            written.join(", "),
            outcome.digest.papers.len(),
            failed
        );
    }
    Ok(if failed > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn fetch(cli: &Cli, args: &FetchArgs, display: &Display) -> anyhow::Result<ExitCode> {
    let settings = settings(cli, FlagOverrides::default())?;
    let report = app::run_fetch(&args.inputs, args.date, &settings, display)?;
    let mut failed = 0;
    for (meta, result) in &report.papers {
        let id = meta
            .arxiv_id
            .as_ref()
            .map_or_else(|| "-".to_string(), ToString::to_string);
        match result {
            Ok(pdf) => out!("ok      {id:<16} {}  ({})", meta.title, pdf.display()),
            Err(error) => {
                failed += 1;
                out!("failed  {id:<16} {}: {error}", meta.title);
            }
        }
    }
    if report.papers.is_empty() {
        out!("no papers");
    }
    Ok(if failed > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// Sets the engine's worker threads for this process and the workers it starts.
fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(threads) = threads {
        anyhow::ensure!(threads > 0, "--threads must be at least 1");
        // SAFETY: set before any worker pool exists, while this process has only this thread;
        // candle and rayon read the variable when they first start their pools.
        unsafe {
            std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
            std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
        }
    }
    Ok(())
}

fn bench_digest(cli: &Cli, args: &BenchDigestArgs, display: &Display) -> anyhow::Result<ExitCode> {
    set_threads(args.threads)?;
    // Ctrl-C: the model running stops after its current section; the others are not started,
    // and the report covers what was done.
    if let Err(error) = paperdigest::resume::install_ctrlc_handler() {
        tracing::warn!(%error, "Ctrl-C will end the run at once");
    }
    let flags = FlagOverrides {
        lang: args.lang,
        prompts_dir: args.prompts.clone(),
        patent_focus: args.patent_focus.clone(),
        ..run_flags(&args.run)
    };
    let settings = settings(cli, flags)?;
    let options = paperdigest::bench::DigestBenchOptions {
        models: args.models.clone(),
        papers: args.papers.clone(),
        out: args.out.clone(),
        worker_exe: this_program().context("cannot find this program to run workers")?,
        quiet: cli.quiet,
        command_line: command_line(),
    };
    let report = paperdigest::bench::run_digest_bench(&options, &settings, display)?;
    out!(
        "{:<32} {:>8} {:>9} {:>9} {:>11} {:>9}  STATUS",
        "MODEL",
        "QUALITY",
        "S/PAPER",
        "DECODE/S",
        "WELL-FORMED",
        "GROUNDED"
    );
    let show = |v: Option<f64>, scale: f64, unit: &str| {
        v.map_or_else(|| "-".to_string(), |v| format!("{:.1}{unit}", v * scale))
    };
    for row in &report.models {
        out!(
            "{:<32} {:>8} {:>9} {:>9} {:>11} {:>9}  {}",
            row.name,
            row.quality
                .map_or_else(|| "-".to_string(), |v| format!("{v:.3}")),
            show(row.seconds_per_paper, 1.0, ""),
            show(row.decode_tok_s, 1.0, ""),
            show(row.well_formed_rate, 100.0, "%"),
            show(row.grounding_rate, 100.0, "%"),
            row.error.as_deref().unwrap_or("ok")
        );
    }
    out!("\nreport: {}", args.out.join("report.md").display());
    let failed = report.models.iter().any(|r| r.error.is_some());
    Ok(if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// The running program, to start workers with. On Linux /proc/self/exe: it stays valid when
/// the file was replaced meanwhile (a rebuild or an upgrade during an hour-long benchmark),
/// where the path `current_exe` gives would name a deleted file.
fn this_program() -> std::io::Result<std::path::PathBuf> {
    let running = std::path::Path::new("/proc/self/exe");
    if running.exists() {
        return Ok(running.to_path_buf());
    }
    std::env::current_exe()
}

fn bench_speed(cli: &Cli, args: &BenchSpeedArgs, display: &Display) -> anyhow::Result<ExitCode> {
    set_threads(args.threads)?;
    let flags = FlagOverrides {
        model: args.model.clone(),
        device: args.device.clone(),
        kv_cache: args.kv_cache,
        ..FlagOverrides::default()
    };
    let settings = settings(cli, flags)?;
    let resolved = app::resolve_model(&settings, display)?;
    let device: paperdigest::llm::DeviceChoice = settings
        .device
        .parse()
        .map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    let opts = paperdigest::bench::SpeedOptions {
        prompt_tokens: args.prompt_tokens,
        gen_tokens: args.gen_tokens,
        context: args.context,
        repetitions: args.repetitions,
    };
    let needed = args.context + args.prompt_tokens.max(args.gen_tokens);
    let started = std::time::Instant::now();
    let spinner = display.spinner(format!("loading {}", resolved.path.display()));
    let engine = paperdigest::llm::Engine::load(
        &resolved.path,
        &paperdigest::llm::LoadOptions {
            device,
            context: Some(needed.max(1)),
            kv_cache: settings.kv_cache,
        },
    )
    .with_context(|| format!("loading {}", resolved.path.display()))?;
    let load_seconds = started.elapsed().as_secs_f64();
    spinner.set_message("measuring prefill and decode".to_string());
    let report = paperdigest::bench::measure_speed(&engine, &opts, load_seconds)?;
    spinner.finish_and_clear();
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!(
            "{} ({}, {}, {:.0} MB) on {}, {} threads",
            report.model,
            report.architecture,
            report.quantization.as_deref().unwrap_or("?"),
            report.file_size_mb,
            report.device,
            report.threads
        );
        out!("load            {:>9.2} s", report.load_seconds);
        out!(
            "prefill {:>5}   {:>9.1} tok/s  (context {})",
            report.prompt_tokens,
            report.prefill_tok_s,
            report.context
        );
        out!(
            "decode  {:>5}   {:>9.1} tok/s  (context {})",
            report.gen_tokens,
            report.decode_tok_s,
            report.context
        );
        out!("time to first   {:>9.0} ms", report.ttft_ms);
        match report.peak_rss_mb {
            Some(mb) => out!(
                "peak RSS        {:>9.0} MB  (KV cache {:.0} MB)",
                mb,
                report.kv_cache_mb
            ),
            None => out!("peak RSS        unknown on this platform"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// This process's command line, quoted for a POSIX shell where needed.
fn command_line() -> String {
    std::env::args()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c));
            if plain {
                arg
            } else {
                format!("'{}'", arg.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
