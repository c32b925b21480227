//! The command line, declared with clap and nothing else: no behaviour lives here.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::llm::KvCacheType;
use crate::paper::Lang;
use crate::render::Format;

#[derive(Debug, Parser)]
#[command(
    name = "paperdigest",
    version,
    about = "Daily digests of research papers, written by a local LLM (GGUF on Candle)",
    long_about = None
)]
pub struct Cli {
    /// Config file (default: $PAPERDIGEST_CONFIG or <config dir>/paperdigest/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where models are stored (default: $PAPERDIGEST_MODELS or <data dir>/paperdigest/models).
    #[arg(long, global = true, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// Hugging Face endpoint for model downloads (default: $HF_ENDPOINT or https://huggingface.co).
    #[arg(long, global = true, value_name = "URL")]
    pub hf_endpoint: Option<String>,
    /// arXiv endpoint for metadata and PDFs (default: $ARXIV_ENDPOINT or https://export.arxiv.org).
    #[arg(long, global = true, value_name = "URL")]
    pub arxiv_endpoint: Option<String>,
    /// Paper cache: metadata, PDFs, extracted text (default: $PAPERDIGEST_CACHE or
    /// <cache dir>/paperdigest).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Never open a network connection: work from the cache and local files only.
    #[arg(long, global = true)]
    pub offline: bool,
    /// E-mail address sent in the User-Agent, as arXiv asks of API clients.
    #[arg(long, global = true, value_name = "EMAIL")]
    pub contact: Option<String>,
    /// More output: -v streams the generated text, -vv adds debug logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress display; only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a digest: of a day's Hugging Face papers, of arXiv ids, or of local PDFs.
    Digest(Box<DigestArgs>),
    /// Download and cache metadata, PDFs and extracted text, without loading a model.
    Fetch(FetchArgs),
    /// Print the clean text of a PDF, or its structure as JSON.
    Extract(ExtractArgs),
    /// List, download and locate models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Print the token ids of a text as a JSON array, as the model's tokenizer splits it
    /// (plain text: special-token strings stay text; no BOS).
    Tokenize(TokenizeArgs),
    /// Continue a prompt with the model and print only the continuation.
    Generate(GenerateArgs),
    /// Measure local models.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Engine speed on one model: prefill and decode tokens/s, time to first token, peak
    /// memory (compare with llama.cpp: scripts/bench-vs-llamacpp.sh).
    Speed(BenchSpeedArgs),
    /// The whole digest job with several models on the same papers: writes report.md,
    /// report.json, plots and each model's digest to --out.
    Digest(Box<BenchDigestArgs>),
    /// Runs one model of `bench digest` (started by it, in a process of its own).
    #[command(hide = true)]
    DigestWorker {
        #[arg(long, value_name = "FILE")]
        job: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct BenchDigestArgs {
    /// Models, comma-separated: registry names or paths to .gguf files.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',', required = true)]
    pub models: Vec<String>,
    /// The papers: PDF files, folders of PDFs or arXiv ids.
    #[arg(long, value_name = "DIR|PDF|ID", num_args = 1.., required = true)]
    pub papers: Vec<String>,
    /// Folder for report.md, report.json, the plots and the digests.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Language of the summaries: vi (default) or en.
    #[arg(long, value_parser = parse_lang)]
    pub lang: Option<Lang>,
    /// Folder with prompt files overriding the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    /// What the patent ideas should apply the paper to.
    #[arg(long, value_name = "TEXT")]
    pub patent_focus: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Worker threads (default: RAYON_NUM_THREADS, else all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct BenchSpeedArgs {
    /// Model: a registry name, or a path to a .gguf file.
    #[arg(long, value_name = "NAME_OR_PATH")]
    pub model: Option<String>,
    /// Device: cpu, cuda[:N], metal or auto.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// Tokens in the prefill measurement (llama-bench -p).
    #[arg(long, default_value_t = 512)]
    pub prompt_tokens: usize,
    /// Tokens in the decode measurement (llama-bench -n).
    #[arg(long, default_value_t = 64)]
    pub gen_tokens: usize,
    /// Tokens already in the context before each measurement (llama-bench -d).
    #[arg(long, default_value_t = 0)]
    pub context: usize,
    /// Attention cache: f16 (the default, as llama.cpp's and llama-bench's) or f32; unset, the
    /// config file's `kv_cache`.
    #[arg(long, value_name = "f16|f32")]
    pub kv_cache: Option<KvCacheType>,
    /// Repeat each measurement this many times and report the mean.
    #[arg(long, default_value_t = 1)]
    pub repetitions: usize,
    /// Worker threads (default: RAYON_NUM_THREADS, else all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// arXiv ids (2601.05242, 2601.05249v2, hep-th/9901001), PDF files or folders of PDFs,
    /// mixed. With none, the papers Hugging Face featured on --date (default: today, UTC).
    #[arg(value_name = "ID_OR_PDF")]
    pub inputs: Vec<String>,
    /// Output file (default: digests/<DATE>.<ext>). With several formats, each is written
    /// beside it with its own extension.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output formats, comma-separated: md, json, html (default: the one --out's extension
    /// names, else md).
    #[arg(long, value_name = "md,json,html", value_delimiter = ',', value_parser = parse_format)]
    pub format: Vec<Format>,
    /// Digest the papers Hugging Face featured on this day (default when no input is given:
    /// today, UTC); also the date in the title.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub date: Option<chrono::NaiveDate>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Language of the digest: vi (default, as the reference) or en.
    #[arg(long, value_parser = parse_lang)]
    pub lang: Option<Lang>,
    /// Folder with prompt files overriding the built-in ones (see prompts/README.md).
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    /// What the patent ideas should apply the paper to (default: applications on smartphones
    /// and mobile devices, in the digest's language).
    #[arg(long, value_name = "TEXT")]
    pub patent_focus: Option<String>,
    /// Write every summary again instead of reusing finished ones from the summary cache
    /// (the new summaries replace the cached ones).
    #[arg(long, visible_alias = "no-cache")]
    pub regenerate: bool,
}

/// Which model to run and how to sample from it.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// A registry name (see `paperdigest models list`) or a path to a .gguf file.
    #[arg(short, long, value_name = "NAME|PATH")]
    pub model: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// How a model runs and samples: shared by every command that runs models.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// cpu, cuda, cuda:N, metal or auto.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// Most tokens of prompt plus answer per request (capped by the model).
    #[arg(long, value_name = "TOKENS")]
    pub max_context: Option<usize>,
    /// Attention cache: f16 (default), as llama.cpp keeps it, attention rounded as llama.cpp's CPU
    /// flash attention rounds it; or f32, twice the memory, attention rounded as little as f32
    /// allows.
    #[arg(long, value_name = "f16|f32")]
    pub kv_cache: Option<KvCacheType>,
    /// Sampling temperature; 0 is greedy.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Random seed; the same seed, model and inputs give the same digest.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Most tokens the model writes for one prose section (list items get at most 96).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<usize>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// arXiv ids, PDF files or folders; with none, the papers of --date (default: today, UTC).
    #[arg(value_name = "ID_OR_PDF")]
    pub inputs: Vec<String>,
    /// The day whose Hugging Face papers to fetch.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub date: Option<chrono::NaiveDate>,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// The PDF file.
    pub file: PathBuf,
    /// Print the structure (title, authors, abstract, sections, ...) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["text", "file"])))]
pub struct TokenizeArgs {
    /// A registry name (see `paperdigest models list`) or a path to a .gguf file.
    #[arg(short, long, value_name = "NAME|PATH")]
    pub model: Option<String>,
    /// The text to tokenize.
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,
    /// A UTF-8 file whose whole content is tokenized, byte for byte.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["prompt", "prompt_file"])))]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt: a user message in the model's chat template, or with --raw the text to
    /// continue.
    #[arg(short, long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// A UTF-8 file holding the prompt.
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<PathBuf>,
    /// No chat template: continue the text itself, as llama.cpp's `llama-completion` does
    /// (BOS first when the model asks for it; special-token strings become their tokens).
    #[arg(long)]
    pub raw: bool,
    /// Never stop at an end-of-generation token: those tokens are banned, so exactly
    /// --max-tokens tokens are written (llama.cpp's --ignore-eos).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Print a JSON object (text, token ids, prompt size, why it stopped) instead of the text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the models of the registry and whether each is stored locally.
    List,
    /// Download a model into the local store (no-op when it is already there).
    Pull {
        /// Registry name of the model.
        name: String,
    },
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| format!("`{s}` is not a date in YYYY-MM-DD form ({e})"))
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    s.parse()
        .map_err(|e: crate::paper::LangError| e.to_string())
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
        .map_err(|e: crate::render::FormatError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn digest_flags_parse() {
        let cli = Cli::try_parse_from([
            "paperdigest",
            "digest",
            "a.pdf",
            "dir",
            "--lang",
            "en",
            "--date",
            "2026-01-09",
            "--model",
            "x.gguf",
            "--seed",
            "3",
            "-v",
            "--offline",
        ])
        .unwrap();
        assert_eq!(cli.verbose, 1);
        assert!(cli.offline);
        let Command::Digest(args) = cli.command else {
            panic!("not digest");
        };
        assert_eq!(args.inputs.len(), 2);
        assert_eq!(args.lang, Some(Lang::En));
        assert_eq!(args.model.run.seed, Some(3));
        assert_eq!(args.date.unwrap().to_string(), "2026-01-09");
    }

    #[test]
    fn formats_are_a_comma_separated_list() {
        let parse = |args: &[&str]| {
            let mut all = vec!["paperdigest", "digest", "a.pdf"];
            all.extend_from_slice(args);
            match Cli::try_parse_from(all).map(|c| c.command) {
                Ok(Command::Digest(args)) => Ok(args),
                Ok(_) => panic!("not digest"),
                Err(e) => Err(e.to_string()),
            }
        };
        assert!(parse(&[]).unwrap().format.is_empty());
        assert_eq!(
            parse(&["--format", "md,json,html"]).unwrap().format,
            [Format::Markdown, Format::Json, Format::Html]
        );
        assert_eq!(
            parse(&["--format", "html", "--format", "json"])
                .unwrap()
                .format,
            [Format::Html, Format::Json]
        );
        let err = parse(&["--format", "md,pdf"]).unwrap_err();
        assert!(err.contains("unknown output format `pdf`"), "{err}");
        let args = parse(&["--no-cache", "--patent-focus", "cars"]).unwrap();
        assert!(args.regenerate);
        assert_eq!(args.patent_focus.as_deref(), Some("cars"));
    }

    #[test]
    fn bench_digest_flags_parse() {
        let cli = Cli::try_parse_from([
            "paperdigest",
            "bench",
            "digest",
            "--models",
            "a,b.gguf",
            "--papers",
            "dir",
            "2601.05242",
            "--out",
            "report",
            "--lang",
            "en",
        ])
        .unwrap();
        let Command::Bench {
            command: BenchCommand::Digest(args),
        } = cli.command
        else {
            panic!("not bench digest");
        };
        assert_eq!(args.models, ["a", "b.gguf"]);
        assert_eq!(args.papers, ["dir", "2601.05242"]);
        assert_eq!(args.lang, Some(Lang::En));
        let missing = Cli::try_parse_from(["paperdigest", "bench", "digest", "--out", "x"]);
        assert!(missing.is_err());
    }

    #[test]
    fn invalid_date_is_rejected_with_a_clear_message() {
        let err = Cli::try_parse_from(["paperdigest", "digest", "a.pdf", "--date", "2026-13-01"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a date"), "{err}");
    }
}
