//! The `gemma3` architecture (Gemma 3 text models). Against the Llama block it has:
//! embeddings scaled by sqrt(embedding length); GELU (tanh approximation) in the gated
//! feed-forward; per-head RMSNorm of queries and keys; RMSNorm of the attention and
//! feed-forward outputs before each residual add; queries scaled by 1/sqrt(head size)
//! (1/sqrt(embedding / heads) for the 62-layer 27B); and interleaved local and global layers.
//! Local layers attend to the last `gemma3.attention.sliding_window` positions with RoPE base
//! `gemma3.rope.freq_base_swa` (10,000 when absent) and no frequency scaling; which layers are
//! local comes from `gemma3.attention.sliding_window_pattern` (a per-layer array, or a period
//! whose last layer is global), five local to one global when absent. The norm weights in
//! GGUF files already include Gemma's `1 +`, so the RMSNorm is the plain one.

use super::transformer::{Activation, Hyper, RopeStyle, SlidingWindow, Variant};
use crate::llm::error::LlmError;
use crate::llm::gguf::GgufFile;

use candle_core::quantized::gguf_file::Value;

const DEFAULT_PATTERN: usize = 6;

pub(crate) fn describe(gguf: &GgufFile) -> Result<(Hyper, Variant), LlmError> {
    let mut hyper = Hyper::read_common(gguf)?;
    if hyper.layers == 62 {
        hyper.attention_scale = 1.0 / ((hyper.embedding / hyper.heads) as f32).sqrt();
    }
    let window = gguf
        .get_u64("gemma3.attention.sliding_window")?
        .unwrap_or(0);
    let sliding_window = if window > 0 {
        let size = usize::try_from(window).map_err(|_| {
            gguf.problem(
                "gemma3.attention.sliding_window",
                format!("{window} is too large"),
            )
        })?;
        let rope_base = gguf
            .get_f64("gemma3.rope.freq_base_swa")?
            .unwrap_or(10_000.0) as f32;
        Some(SlidingWindow {
            size,
            layers: local_layers(gguf, hyper.layers)?,
            rope_base,
        })
    } else {
        None
    };
    let variant = Variant {
        rope: RopeStyle::HalfSplit,
        activation: Activation::GeluTanh,
        qkv_bias: false,
        qk_norm: true,
        post_norms: true,
        scale_embeddings: true,
        sliding_window,
        pre_scale_queries: true,
    };
    Ok((hyper, variant))
}

/// Which layers use the sliding window.
fn local_layers(gguf: &GgufFile, layers: usize) -> Result<Vec<bool>, LlmError> {
    const KEY: &str = "gemma3.attention.sliding_window_pattern";
    let period =
        match gguf.get(KEY) {
            None => DEFAULT_PATTERN,
            Some(Value::Array(flags)) => {
                if flags.len() != layers {
                    return Err(gguf.problem(
                        KEY,
                        format!("has {} entries for {layers} layers", flags.len()),
                    ));
                }
                return flags
                    .iter()
                    .map(|v| match v {
                        Value::Bool(b) => Ok(*b),
                        other => Err(gguf
                            .problem(KEY, format!("holds {:?}, not booleans", other.value_type()))),
                    })
                    .collect();
            }
            Some(_) => {
                let p = gguf.get_u64(KEY)?.unwrap_or(DEFAULT_PATTERN as u64);
                usize::try_from(p).map_err(|_| gguf.problem(KEY, format!("{p} is too large")))?
            }
        };
    // llama.cpp's convention: with period n, layer i is local unless i % n == n - 1; a period
    // of 0 makes every layer local.
    Ok((0..layers)
        .map(|i| period == 0 || i % period < period - 1)
        .collect())
}
