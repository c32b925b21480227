//! The `qwen3` architecture (dense Qwen3): the Qwen2 block without Q/K/V biases and with a
//! per-head RMSNorm of queries and keys before RoPE. The head size comes from
//! `qwen3.attention.key_length` and need not be embedding / heads.

use super::transformer::{Activation, Hyper, RopeStyle, Variant};
use crate::llm::error::LlmError;
use crate::llm::gguf::GgufFile;

pub(crate) fn describe(gguf: &GgufFile) -> Result<(Hyper, Variant), LlmError> {
    let hyper = Hyper::read_common(gguf)?;
    let variant = Variant {
        rope: RopeStyle::HalfSplit,
        activation: Activation::Silu,
        qkv_bias: false,
        qk_norm: true,
        post_norms: false,
        scale_embeddings: false,
        sliding_window: None,
        pre_scale_queries: false,
    };
    Ok((hyper, variant))
}
