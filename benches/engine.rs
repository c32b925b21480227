//! Engine benchmarks: one decode step after 512 cached tokens, and one 512-token prefill.
//!
//! The model is `PAPERDIGEST_BENCH_MODEL` (a GGUF path) when set, else each stored real model
//! that is present (SmolLM2-135M, Qwen2.5-Coder-1.5B: `scripts/fetch-models.sh` or
//! `paperdigest models pull`), else a tiny random-weight model written for the run, so the
//! benchmark always has something to measure. Compare the rates with llama.cpp's on the same
//! file with scripts/bench-vs-llamacpp.sh.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use paperdigest::llm::{DeviceChoice, Engine, LoadOptions};

const PROMPT_TOKENS: usize = 512;

/// The models to measure, by label.
fn models(scratch: &std::path::Path) -> Vec<(String, PathBuf)> {
    if let Some(path) = std::env::var_os("PAPERDIGEST_BENCH_MODEL") {
        let path = PathBuf::from(path);
        let label = path
            .file_stem()
            .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
        return vec![(label, path)];
    }
    let store = std::env::var_os("PAPERDIGEST_MODELS")
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("paperdigest/models")));
    let mut found: Vec<(String, PathBuf)> = store
        .into_iter()
        .flat_map(|dir| {
            [
                ("smollm2-135m-q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf"),
                (
                    "qwen2.5-coder-1.5b-q4_k_m",
                    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                ),
            ]
            .map(|(label, file)| (label.to_string(), dir.join(file)))
        })
        .filter(|(_, path)| path.is_file())
        .collect();
    if found.is_empty() {
        use paperdigest::llm::testing::{TinyModelSpec, write_tiny_model};
        let path = scratch.join("tiny-llama.gguf");
        let spec = TinyModelSpec {
            embedding: 256,
            feed_forward: 768,
            layers: 4,
            heads: 8,
            kv_heads: 4,
            ..TinyModelSpec::default()
        };
        match write_tiny_model(&path, &spec) {
            Ok(()) => found.push(("tiny-llama-q8_0".to_string(), path)),
            Err(error) => eprintln!("no model to benchmark: {error}"),
        }
    }
    found
}

/// Token ids of real text, repeated to `n`.
fn prompt(engine: &Engine, n: usize) -> Vec<u32> {
    let text = "Large language models summarise research papers when the text they read is clean \
                and in reading order; a digest of one paper needs a few thousand tokens of \
                prefill and about a thousand tokens of generation. ";
    let one = engine.tokenizer().encode(text).unwrap_or_default();
    if one.is_empty() {
        return vec![0; n];
    }
    one.iter().copied().cycle().take(n).collect()
}

fn bench_engine(c: &mut Criterion) {
    let Ok(scratch) = tempfile::tempdir() else {
        eprintln!("no scratch folder");
        return;
    };
    for (label, path) in models(scratch.path()) {
        let options = LoadOptions {
            device: DeviceChoice::Cpu,
            context: Some(PROMPT_TOKENS + 64),
            kv_cache: Default::default(),
        };
        let engine = match Engine::load(&path, &options) {
            Ok(engine) => engine,
            Err(error) => {
                eprintln!("skipping {label}: {error}");
                continue;
            }
        };
        let tokens = prompt(&engine, PROMPT_TOKENS + 1);
        let mut group = c.benchmark_group(format!("engine/{label}"));
        group.sample_size(10);

        group.throughput(Throughput::Elements(PROMPT_TOKENS as u64));
        group.bench_function("prefill_512", |b| {
            b.iter_batched(
                || engine.new_session().expect("session"),
                |mut session| {
                    session.feed(&tokens[..PROMPT_TOKENS]).expect("prefill");
                    black_box(session.logits().map(|l| l[0]));
                    session
                },
                BatchSize::PerIteration,
            )
        });

        let mut base = engine.new_session().expect("session");
        base.feed(&tokens[..PROMPT_TOKENS]).expect("prefill");
        group.throughput(Throughput::Elements(1));
        group.bench_function("decode_step_at_512", |b| {
            b.iter_batched(
                || base.fork().expect("fork"),
                |mut session| {
                    session.feed(&tokens[PROMPT_TOKENS..]).expect("decode");
                    black_box(session.logits().map(|l| l[0]));
                    session
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench_engine);
criterion_main!(benches);
