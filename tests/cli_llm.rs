//! The `tokenize` and `generate` commands of the `paperdigest` binary, on a tiny random-weight
//! model written in code: output shapes, greedy decoding being the exact argmax, `--ignore-eos`,
//! and clear failures (bad input, missing files, unsupported models).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use paperdigest::llm::testing::{TinyModelSpec, write_tiny_model};
use paperdigest::llm::{DeviceChoice, Engine, GgufFile, GgufTokenizer, KvCacheType, LoadOptions};

/// Runs the binary with no config file, its own model store, one thread.
fn paperdigest(work: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paperdigest"))
        .args(args)
        .env("PAPERDIGEST_CONFIG", work.join("no-config.toml"))
        .env("PAPERDIGEST_MODELS", work.join("models"))
        .env_remove("PAPERDIGEST_MODEL")
        // Tiny tensors only lose time when spread over threads.
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("run paperdigest")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn both(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn tiny_model(dir: &Path) -> PathBuf {
    let path = dir.join("tiny-llama.gguf");
    write_tiny_model(&path, &TinyModelSpec::default()).expect("tiny model");
    path
}

fn tokenizer(model: &Path) -> GgufTokenizer {
    GgufTokenizer::from_gguf(&GgufFile::open(model).unwrap()).unwrap()
}

/// Parses `[1, 2, 3]`.
fn parse_ids(text: &str) -> Vec<u32> {
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not a JSON id list: {text:?}: {e}"))
}

#[test]
fn tokenize_prints_the_ids_as_a_json_array() {
    let work = tempfile::tempdir().unwrap();
    let model = tiny_model(work.path());
    let m = model.to_str().unwrap();
    let tok = tokenizer(&model);

    let text = "The model is a transformer.\n  Results: 42";
    let run = paperdigest(work.path(), &["tokenize", "--model", m, "--text", text]);
    assert!(run.status.success(), "{}", both(&run));
    let out = stdout(&run);
    assert!(out.starts_with('[') && out.ends_with("]\n"), "{out:?}");
    assert!(out.contains(", "), "llama-tokenize's separators: {out:?}");
    let ids = parse_ids(&out);
    assert_eq!(ids, tok.encode(text).unwrap());
    assert_eq!(tok.decode(&ids).unwrap(), text);

    // The same text from a file, byte for byte (the trailing newline is a token too).
    let file = work.path().join("input.txt");
    std::fs::write(&file, format!("{text}\n")).unwrap();
    let run = paperdigest(
        work.path(),
        &["tokenize", "--model", m, "--file", file.to_str().unwrap()],
    );
    assert!(run.status.success(), "{}", both(&run));
    let from_file = parse_ids(&stdout(&run));
    assert_eq!(tok.decode(&from_file).unwrap(), format!("{text}\n"));

    // Special-token strings are plain text, and no BOS is added.
    let im_start = tok.token_id("<|im_start|>").unwrap();
    let run = paperdigest(
        work.path(),
        &["tokenize", "--model", m, "--text", "<|im_start|>user"],
    );
    assert!(run.status.success(), "{}", both(&run));
    let ids = parse_ids(&stdout(&run));
    assert!(!ids.contains(&im_start), "{ids:?}");
    assert!(ids.len() > 2, "{ids:?}");

    // Empty text: an empty list.
    let run = paperdigest(work.path(), &["tokenize", "--model", m, "--text", ""]);
    assert!(run.status.success(), "{}", both(&run));
    assert_eq!(stdout(&run), "[]\n");
}

#[test]
fn tokenize_failures_are_clear() {
    let work = tempfile::tempdir().unwrap();
    let model = tiny_model(work.path());
    let m = model.to_str().unwrap();

    // Neither or both of --text and --file: a usage error.
    let run = paperdigest(work.path(), &["tokenize", "--model", m]);
    assert_eq!(run.status.code(), Some(2), "{}", both(&run));
    let run = paperdigest(
        work.path(),
        &["tokenize", "--model", m, "--text", "a", "--file", "b.txt"],
    );
    assert_eq!(run.status.code(), Some(2), "{}", both(&run));

    // A missing input file and a non-UTF-8 one are named.
    let run = paperdigest(
        work.path(),
        &["tokenize", "--model", m, "--file", "/nonexistent/input.txt"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", both(&run));
    assert!(
        both(&run).contains("/nonexistent/input.txt"),
        "{}",
        both(&run)
    );
    let latin1 = work.path().join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9").unwrap();
    let run = paperdigest(
        work.path(),
        &["tokenize", "--model", m, "--file", latin1.to_str().unwrap()],
    );
    assert_eq!(run.status.code(), Some(1), "{}", both(&run));
    assert!(both(&run).contains("not UTF-8"), "{}", both(&run));

    // A missing model, a file that is not GGUF, an unknown registry name.
    let run = paperdigest(
        work.path(),
        &["tokenize", "--model", "/nonexistent/m.gguf", "--text", "x"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", both(&run));
    assert!(both(&run).contains("/nonexistent/m.gguf"), "{}", both(&run));
    let junk = work.path().join("junk.gguf");
    std::fs::write(&junk, b"not a model at all").unwrap();
    let run = paperdigest(
        work.path(),
        &["tokenize", "--model", junk.to_str().unwrap(), "--text", "x"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", both(&run));
    let out = both(&run);
    assert!(out.contains("junk.gguf") && out.contains("GGUF"), "{out}");
    let run = paperdigest(
        work.path(),
        &["tokenize", "--model", "no-such-model", "--text", "x"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", both(&run));
    let out = both(&run);
    assert!(
        out.contains("no-such-model") && out.contains("smollm2-135m-instruct"),
        "{out}"
    );
}

/// The JSON a `generate --json` run printed.
struct Generated {
    text: String,
    tokens: Vec<u32>,
    prompt_tokens: usize,
    stop: String,
}

fn generate_json(work: &Path, model: &Path, args: &[&str]) -> Generated {
    let mut all = vec!["generate", "--model", model.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let run = paperdigest(work, &all);
    assert!(run.status.success(), "{}", both(&run));
    let out = stdout(&run);
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out:?}: {e}"));
    Generated {
        text: v["text"].as_str().expect("text").to_string(),
        tokens: serde_json::from_value(v["tokens"].clone()).expect("tokens"),
        prompt_tokens: v["prompt_tokens"].as_u64().expect("prompt_tokens") as usize,
        stop: v["stop"].as_str().expect("stop").to_string(),
    }
}

/// `generate` flags for a greedy raw continuation of `tokens` tokens that ignores end tokens.
fn greedy_raw_args<'a>(prompt: &'a str, tokens: &'a str) -> Vec<&'a str> {
    vec![
        "--prompt",
        prompt,
        "--raw",
        "--temperature",
        "0",
        "--max-tokens",
        tokens,
        "--ignore-eos",
    ]
}

#[test]
fn greedy_raw_generation_is_the_exact_argmax_and_prints_only_the_continuation() {
    let work = tempfile::tempdir().unwrap();
    let model = tiny_model(work.path());
    let prompt = "The main problem we study is";
    let args = greedy_raw_args(prompt, "12");
    let g = generate_json(work.path(), &model, &args);
    assert_eq!(g.tokens.len(), 12);
    assert_eq!(g.stop, "max_tokens");

    // The reference: feed the same tokens and take the argmax of the logits at every step.
    let (expected, prompt_tokens, engine) = greedy_reference(&model, prompt, 12, KvCacheType::F16);
    let tok = engine.tokenizer();
    assert_eq!(g.prompt_tokens, prompt_tokens);
    assert_eq!(g.tokens, expected);
    assert_eq!(tok.decode(&g.tokens).unwrap(), g.text);

    // Plain output: the continuation only (no prompt), then a newline.
    let mut plain = vec!["generate", "--model", model.to_str().unwrap()];
    plain.extend_from_slice(&args);
    let run = paperdigest(work.path(), &plain);
    assert!(run.status.success(), "{}", both(&run));
    assert_eq!(stdout(&run), format!("{}\n", g.text));

    // Greedy does not depend on the seed.
    let mut seeded = args.to_vec();
    seeded.extend_from_slice(&["--seed", "99"]);
    assert_eq!(generate_json(work.path(), &model, &seeded).tokens, g.tokens);
}

#[test]
fn chat_generation_and_sampling() {
    let work = tempfile::tempdir().unwrap();
    let model = tiny_model(work.path());
    let chat = generate_json(
        work.path(),
        &model,
        &["--prompt", "Summarise the paper.", "--max-tokens", "6"],
    );
    // The tiny model's template wraps the prompt in ChatML turns: more tokens than the text.
    let raw_len = tokenizer(&model)
        .encode("Summarise the paper.")
        .unwrap()
        .len();
    assert!(chat.prompt_tokens > raw_len + 4, "{}", chat.prompt_tokens);
    assert!(chat.tokens.len() <= 6);

    // Sampling at a temperature: the same seed gives the same text.
    let args = [
        "--prompt",
        "This paper",
        "--raw",
        "--temperature",
        "1.0",
        "--seed",
        "7",
        "--max-tokens",
        "16",
        "--ignore-eos",
    ];
    let a = generate_json(work.path(), &model, &args);
    let b = generate_json(work.path(), &model, &args);
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.tokens.len(), 16);

    // The prompt from a file.
    let file = work.path().join("prompt.txt");
    std::fs::write(&file, "This paper").unwrap();
    let mut from_file: Vec<&str> = vec!["--prompt-file", file.to_str().unwrap()];
    from_file.extend_from_slice(&args[2..]);
    assert_eq!(
        generate_json(work.path(), &model, &from_file).tokens,
        a.tokens
    );
}

/// The greedy raw continuation of `prompt` computed in process with a `kv_cache` cache: the
/// argmax of the logits at every step (end-of-generation tokens excluded); also the prompt's
/// length in tokens and the engine.
fn greedy_reference(
    model: &Path,
    prompt: &str,
    steps: usize,
    kv_cache: KvCacheType,
) -> (Vec<u32>, usize, Engine) {
    let engine = Engine::load(
        model,
        &LoadOptions {
            device: DeviceChoice::Cpu,
            context: None,
            kv_cache,
        },
    )
    .unwrap();
    let tok = engine.tokenizer();
    let mut ids = Vec::new();
    if tok.add_bos() {
        ids.extend(tok.bos_id());
    }
    ids.extend(tok.encode(prompt).unwrap());
    let mut session = engine.new_session().unwrap();
    session.feed(&ids).unwrap();
    let mut expected = Vec::new();
    for _ in 0..steps {
        let logits = session.logits().unwrap();
        let (best, _) = logits
            .iter()
            .enumerate()
            .filter(|(id, _)| !tok.is_eog(*id as u32))
            .fold((0usize, f32::NEG_INFINITY), |acc, (i, &l)| {
                if l > acc.1 { (i, l) } else { acc }
            });
        expected.push(best as u32);
        session.feed(&[best as u32]).unwrap();
    }
    drop(session);
    (expected, ids.len(), engine)
}

/// `--kv-cache` picks the cache the engine runs with.
#[test]
fn the_cache_flag_selects_the_attention_cache() {
    let work = tempfile::tempdir().unwrap();
    let model = tiny_model(work.path());
    let prompt = "Attention caches store keys and values";
    for (flag, kind) in [("f32", KvCacheType::F32), ("f16", KvCacheType::F16)] {
        let mut args = greedy_raw_args(prompt, "10");
        args.extend(["--kv-cache", flag]);
        let g = generate_json(work.path(), &model, &args);
        let (expected, _, _) = greedy_reference(&model, prompt, 10, kind);
        assert_eq!(g.tokens, expected, "--kv-cache {flag}");
    }
    let m = model.to_str().unwrap();
    // Tokens alone may agree between the two caches; the speed report says which cache ran.
    let report = |flag: &str| -> serde_json::Value {
        let run = paperdigest(
            work.path(),
            &[
                "bench",
                "speed",
                "--model",
                m,
                "--prompt-tokens",
                "8",
                "--gen-tokens",
                "2",
                "--kv-cache",
                flag,
                "--json",
            ],
        );
        assert!(run.status.success(), "{}", both(&run));
        serde_json::from_str(stdout(&run).trim()).unwrap()
    };
    let (f32_report, f16_report) = (report("f32"), report("f16"));
    assert_eq!(f32_report["kv_cache"], "f32");
    assert_eq!(f16_report["kv_cache"], "f16");
    let mb = |r: &serde_json::Value| r["kv_cache_mb"].as_f64().unwrap();
    assert_eq!(mb(&f32_report), 2.0 * mb(&f16_report));
}

#[test]
fn generate_failures_are_clear() {
    let work = tempfile::tempdir().unwrap();
    let model = tiny_model(work.path());
    let m = model.to_str().unwrap();

    // No prompt, or both kinds, or a cache type that does not exist: usage errors.
    let run = paperdigest(work.path(), &["generate", "--model", m]);
    assert_eq!(run.status.code(), Some(2), "{}", both(&run));
    let run = paperdigest(work.path(), &["generate", "--model", m, "--kv-cache", "f8"]);
    assert_eq!(run.status.code(), Some(2), "{}", both(&run));
    assert!(both(&run).contains("f8"), "{}", both(&run));
    let run = paperdigest(
        work.path(),
        &[
            "generate",
            "--model",
            m,
            "--prompt",
            "a",
            "--prompt-file",
            "b",
        ],
    );
    assert_eq!(run.status.code(), Some(2), "{}", both(&run));

    // An empty raw prompt for a model without BOS: nothing to continue from.
    let run = paperdigest(
        work.path(),
        &["generate", "--model", m, "--raw", "--prompt", ""],
    );
    assert_eq!(run.status.code(), Some(1), "{}", both(&run));
    assert!(both(&run).contains("nothing to continue"), "{}", both(&run));

    // A prompt longer than the context.
    let long = "word ".repeat(200);
    let run = paperdigest(
        work.path(),
        &[
            "generate",
            "--model",
            m,
            "--raw",
            "--prompt",
            &long,
            "--max-context",
            "64",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", both(&run));
    assert!(both(&run).contains("context holds 64"), "{}", both(&run));

    // An architecture without model code.
    let mamba = work.path().join("mamba.gguf");
    write_mamba(&mamba);
    let run = paperdigest(
        work.path(),
        &[
            "generate",
            "--model",
            mamba.to_str().unwrap(),
            "--prompt",
            "x",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", both(&run));
    let out = both(&run);
    assert!(
        out.contains("mamba.gguf") && out.contains("architecture `mamba` is not supported"),
        "{out}"
    );
}

/// A GGUF that parses but names an architecture paperdigest has no code for.
fn write_mamba(path: &Path) {
    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    let tensor = Tensor::zeros((4, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    let q = QTensor::quantize(&tensor, GgmlDType::F32).unwrap();
    let arch = Value::String("mamba".into());
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(
        &mut file,
        &[("general.architecture", &arch)],
        &[("token_embd.weight", &q)],
    )
    .unwrap();
}
