//! Prints our logits for a token sequence in the JSON shape of `scripts/llama-logits.c`, so
//! `scripts/logit-distance.sh` can measure how far our forward pass is from llama.cpp's on a
//! real model: one prefill of the first ids, then one decoded token at a time.
//!
//! Usage: `cargo run --release --example dump-logits -- [--kv-cache f16] MODEL.gguf PREFILL_IDS
//! [DECODE_IDS]` (ids comma-separated; the engine's default cache, f16, unless told).

use std::path::PathBuf;

use anyhow::{Context, bail};
use paperdigest::llm::{Engine, KvCacheType, LoadOptions};

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut kv_cache = KvCacheType::default();
    if args.first().is_some_and(|a| a == "--kv-cache") && args.len() > 1 {
        kv_cache = args[1].parse().map_err(anyhow::Error::msg)?;
        args.drain(..2);
    }
    let (model, prefill, decode) = match args.as_slice() {
        [model, prefill] => (model, ids(prefill)?, Vec::new()),
        [model, prefill, decode] => (model, ids(prefill)?, ids(decode)?),
        _ => bail!("usage: dump-logits [--kv-cache f16] MODEL.gguf PREFILL_IDS [DECODE_IDS]"),
    };
    if prefill.is_empty() {
        bail!("no prefill ids");
    }
    let options = LoadOptions {
        device: Default::default(),
        context: Some(prefill.len() + decode.len() + 16),
        kv_cache,
    };
    let engine = Engine::load(&PathBuf::from(model), &options)?;
    let mut session = engine.new_session()?;
    let mut steps = Vec::new();
    session.feed(&prefill)?;
    steps.push(
        session
            .logits()
            .context("no logits after the prefill")?
            .to_vec(),
    );
    for id in decode {
        session.feed(&[id])?;
        steps.push(
            session
                .logits()
                .context("no logits after a decode")?
                .to_vec(),
        );
    }
    let steps: Vec<_> = steps
        .into_iter()
        .map(|logits| serde_json::json!({ "logits": logits }))
        .collect();
    println!("{}", serde_json::json!({ "steps": steps }));
    Ok(())
}

fn ids(list: &str) -> anyhow::Result<Vec<u32>> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .with_context(|| format!("bad token id {s:?}"))
        })
        .collect()
}
