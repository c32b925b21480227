//! The `llama` architecture (Llama 2/3, SmolLM2, ...) through candle-transformers'
//! `quantized_llama`. Its weights type is `Clone` with the attention cache inside and the
//! tensors reference-counted, so a session is a clone of the loaded weights and forking a
//! session clones its cache tensors by reference: cheap.

use std::fs::File;
use std::io::BufReader;

use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};

use super::{logits_to_vec, validate_heads};
use crate::llm::error::LlmError;
use crate::llm::gguf::GgufFile;

pub(crate) fn validate(gguf: &GgufFile) -> Result<(), LlmError> {
    validate_heads(gguf)?;
    gguf.require_u64("llama.rope.dimension_count")?;
    gguf.get_f64("llama.attention.layer_norm_rms_epsilon")?
        .ok_or_else(|| {
            gguf.problem(
                "llama.attention.layer_norm_rms_epsilon",
                "is missing".into(),
            )
        })?;
    Ok(())
}

pub(crate) struct Llama {
    /// Weights with an empty cache; every session starts as a clone of these.
    pristine: Box<ModelWeights>,
    device: Device,
    max_context: usize,
}

impl Llama {
    pub(crate) fn load(
        content: Content,
        reader: &mut BufReader<File>,
        device: &Device,
        context_length: Option<usize>,
    ) -> candle_core::Result<Llama> {
        let pristine = Box::new(ModelWeights::from_gguf(content, reader, device)?);
        // candle precomputes RoPE tables for MAX_SEQ_LEN positions only.
        let max_context = context_length.unwrap_or(MAX_SEQ_LEN).min(MAX_SEQ_LEN);
        Ok(Llama {
            pristine,
            device: device.clone(),
            max_context,
        })
    }

    pub(crate) fn max_context(&self) -> usize {
        self.max_context
    }

    pub(crate) fn new_state(&self) -> LlamaState {
        LlamaState {
            weights: self.pristine.clone(),
            device: self.device.clone(),
        }
    }
}

pub(crate) struct LlamaState {
    weights: Box<ModelWeights>,
    device: Device,
}

impl LlamaState {
    pub(crate) fn forward(&mut self, position: usize, new: &[u32]) -> Result<Vec<f32>, LlmError> {
        let mut run = || -> candle_core::Result<Vec<f32>> {
            let input = Tensor::new(new, &self.device)?.unsqueeze(0)?;
            let logits = self.weights.forward(&input, position)?;
            logits_to_vec(&logits)
        };
        run().map_err(|e| LlmError::model(format!("forward at position {position}"), e))
    }

    pub(crate) fn fork(&self) -> LlamaState {
        LlamaState {
            weights: self.weights.clone(),
            device: self.device.clone(),
        }
    }
}
