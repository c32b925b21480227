//! The `llama` architecture (Llama 2/3, SmolLM2, ...): pre-norm blocks with RMSNorm, SwiGLU
//! feed-forward, grouped-query attention and RoPE over adjacent dimension pairs (GGUF
//! converters permute the Q/K rows for that layout). Llama 3's `rope_freqs.weight`, when
//! present, divides the RoPE frequencies.

use super::transformer::{Activation, Hyper, RopeStyle, Variant};
use crate::llm::error::LlmError;
use crate::llm::gguf::GgufFile;

pub(crate) fn describe(gguf: &GgufFile) -> Result<(Hyper, Variant), LlmError> {
    let hyper = Hyper::read_common(gguf)?;
    let variant = Variant {
        rope: RopeStyle::Adjacent,
        activation: Activation::Silu,
        qkv_bias: false,
        qk_norm: false,
        post_norms: false,
        scale_embeddings: false,
        sliding_window: None,
        pre_scale_queries: false,
    };
    Ok((hyper, variant))
}
