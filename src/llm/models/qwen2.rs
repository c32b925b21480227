//! The `qwen2` architecture (Qwen2, Qwen2.5, Qwen2.5-Coder): the Llama block with biases on
//! the Q/K/V projections and RoPE over half-split dimension pairs (NEOX layout).

use super::transformer::{Activation, Hyper, RopeStyle, Variant};
use crate::llm::error::LlmError;
use crate::llm::gguf::GgufFile;

pub(crate) fn describe(gguf: &GgufFile) -> Result<(Hyper, Variant), LlmError> {
    let hyper = Hyper::read_common(gguf)?;
    let variant = Variant {
        rope: RopeStyle::HalfSplit,
        activation: Activation::Silu,
        qkv_bias: true,
        qk_norm: false,
        post_norms: false,
        scale_embeddings: false,
        sliding_window: None,
        pre_scale_queries: false,
    };
    Ok((hyper, variant))
}
