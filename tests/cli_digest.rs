//! The `digest` command on a local PDF with a tiny random-weight model: the summary cache
//! (a re-run reuses, any changed input misses, `--no-cache` regenerates), `--seed`
//! reproducibility, several formats at once, and prompt overrides with clear errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example_pdf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paperdigest-note.pdf")
}

/// A work folder with a tiny model and a paper cache of its own.
struct Work {
    dir: tempfile::TempDir,
    model: PathBuf,
}

impl Work {
    fn new() -> Work {
        use paperdigest::llm::testing::{TinyModelSpec, write_tiny_model};
        let dir = tempfile::tempdir().expect("tempdir");
        let model = dir.path().join("tiny-llama.gguf");
        write_tiny_model(&model, &TinyModelSpec::default()).expect("tiny model");
        Work { dir, model }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `digest` on the example paper into `out` with `args`, and the test's defaults for
    /// the options `args` does not give.
    fn digest(&self, out: &str, args: &[&str]) -> Output {
        let mut defaults = Vec::new();
        for (flag, value) in [
            ("--lang", "en"),
            ("--max-tokens", "24"),
            ("--temperature", "0.8"),
            ("--model", self.model.to_str().unwrap_or_default()),
        ] {
            if !args.contains(&flag) {
                defaults.extend([flag, value]);
            }
        }
        Command::new(env!("CARGO_BIN_EXE_paperdigest"))
            .arg("digest")
            .arg(example_pdf())
            .arg("--cache-dir")
            .arg(self.path("cache"))
            .arg("--out")
            .arg(self.path(out))
            .args(&defaults)
            .args(args)
            .env("PAPERDIGEST_CONFIG", self.path("no-config.toml"))
            .env_remove("PAPERDIGEST_CACHE")
            // Tiny tensors only lose time when spread over threads.
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .expect("run paperdigest")
    }

    fn json(&self, name: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path(name)).expect("JSON written");
        serde_json::from_str(&text).expect("valid JSON")
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The summary fields of the first paper, without timings or the generation time.
fn summary_of(json: &serde_json::Value) -> serde_json::Value {
    let paper = &json["papers"][0];
    let mut fields = serde_json::Map::new();
    for key in [
        "tags",
        "main_problem",
        "main_idea",
        "main_results",
        "conclusion",
        "paper_ideas",
        "patent_ideas",
        "grounding",
    ] {
        fields.insert(key.to_string(), paper[key].clone());
    }
    serde_json::Value::Object(fields)
}

#[test]
fn a_rerun_reuses_finished_summaries_and_any_changed_input_misses() {
    let work = Work::new();
    let first = work.digest("first.md", &["--format", "md,json,html"]);
    assert!(first.status.success(), "{}", text(&first));
    for name in ["first.md", "first.json", "first.html"] {
        assert!(
            work.path(name).is_file(),
            "{name} not written: {}",
            text(&first)
        );
    }
    let made = work.json("first.json");
    let timings = &made["papers"][0]["timings"];
    assert_eq!(timings["cached"], false);
    assert!(timings["generated_tokens"].as_u64() > Some(0), "{timings}");

    let again = work.digest("again.json", &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("1 reused from the summary cache"),
        "{}",
        text(&again)
    );
    let reused = work.json("again.json");
    let timings = &reused["papers"][0]["timings"];
    assert_eq!(timings["cached"], true, "{timings}");
    assert_eq!(timings["generated_tokens"], 0, "{timings}");
    assert_eq!(timings["prefill_tokens"], 0, "{timings}");
    assert_eq!(summary_of(&reused), summary_of(&made));

    let prompts = work.path("prompts");
    std::fs::create_dir_all(prompts.join("en")).unwrap();
    std::fs::write(
        prompts.join("en/main_idea.txt"),
        "[instruction]\nExplain the idea in one sentence.\n[answer]\nThe idea is",
    )
    .unwrap();
    let prompts = prompts.to_str().unwrap().to_string();
    // Each changed input of the key misses; `--no-cache` regenerates with the same inputs.
    let misses: [(&str, Vec<&str>); 8] = [
        ("seed", vec!["--seed", "1"]),
        ("temperature", vec!["--temperature", "0.7"]),
        ("top-p", vec!["--top-p", "0.8"]),
        ("max tokens", vec!["--max-tokens", "20"]),
        ("max context", vec!["--max-context", "2048"]),
        ("patent focus", vec!["--patent-focus", "cars"]),
        ("prompts", vec!["--prompts", &prompts]),
        ("no cache", vec!["--no-cache"]),
    ];
    for (what, args) in &misses {
        let run = work.digest("miss.json", args);
        assert!(run.status.success(), "{what}: {}", text(&run));
        let timings = &work.json("miss.json")["papers"][0]["timings"];
        assert_eq!(timings["cached"], false, "{what} should miss: {timings}");
        assert!(
            timings["generated_tokens"].as_u64() > Some(0),
            "{what}: {timings}"
        );
    }
    // The model file is part of the key too.
    let other = work.path("other.gguf");
    paperdigest::llm::testing::write_tiny_model(
        &other,
        &paperdigest::llm::testing::TinyModelSpec {
            seed: 99,
            ..Default::default()
        },
    )
    .unwrap();
    let run = work.digest("miss.json", &["--model", other.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(
        work.json("miss.json")["papers"][0]["timings"]["cached"],
        false
    );
}

#[test]
fn the_same_seed_reproduces_a_digest_and_another_seed_does_not() {
    let work = Work::new();
    let run = |out: &str, seed: &str| {
        let output = work.digest(out, &["--no-cache", "--seed", seed]);
        assert!(output.status.success(), "{}", text(&output));
        summary_of(&work.json(out))
    };
    let a = run("a.json", "5");
    let b = run("b.json", "5");
    let c = run("c.json", "6");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn malformed_or_missing_prompt_overrides_are_clear_errors() {
    let work = Work::new();
    let prompts = work.path("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    let bad = prompts.join("main_results.txt");
    std::fs::write(&bad, "[instruction]\nList results of {paper}.").unwrap();
    let run = work.digest("x.md", &["--prompts", prompts.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let out = text(&run);
    assert!(
        out.contains(&bad.display().to_string()) && out.contains("unknown placeholder {paper}"),
        "{out}"
    );
    let missing = work.path("no-such-prompts");
    let run = work.digest("x.md", &["--prompts", missing.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(text(&run).contains("no-such-prompts"), "{}", text(&run));
    assert!(!work.path("x.md").exists());
}

/// `paperdigest extract paper.pdf | head -1`: the reader goes away before the text is written;
/// the command ends quietly with success, as other command-line tools do, and does not panic.
#[test]
fn output_into_a_closed_pipe_is_quiet() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paperdigest"))
        .arg("extract")
        .arg(example_pdf())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run paperdigest");
    // Closing the read end before extraction ends makes the first write fail with EPIPE.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("paperdigest ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
