//! The `qwen2` architecture (Qwen2, Qwen2.5, Qwen2.5-Coder) through candle-transformers'
//! `quantized_qwen2`. Its weights type is not `Clone` and keeps the attention cache inside,
//! so all sessions share one instance, and the cache belongs to whichever session used it
//! last. A session that finds the cache holding someone else's tokens clears it and
//! re-prefills its own recorded tokens before going on, unless the cache already holds exactly
//! them: forking is free, and a fork that extends the last user's tokens goes on at once;
//! switching to a session with another history costs a re-prefill (lazy, on the next feed).

use std::fs::File;
use std::io::BufReader;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_qwen2::ModelWeights;

use super::{PREFILL_CHUNK, logits_to_vec, validate_heads};
use crate::llm::error::LlmError;
use crate::llm::gguf::GgufFile;

pub(crate) fn validate(gguf: &GgufFile) -> Result<(), LlmError> {
    validate_heads(gguf)?;
    gguf.require_u64("qwen2.context_length")?;
    gguf.get_f64("qwen2.attention.layer_norm_rms_epsilon")?
        .ok_or_else(|| {
            gguf.problem(
                "qwen2.attention.layer_norm_rms_epsilon",
                "is missing".into(),
            )
        })?;
    Ok(())
}

struct Shared {
    weights: ModelWeights,
    /// The tokens the cache holds. A session whose history is exactly these goes on without
    /// re-prefilling, whichever session put them there (a fresh fork of the last user, say).
    cached: Vec<u32>,
}

pub(crate) struct Qwen2 {
    shared: Arc<Mutex<Shared>>,
    device: Device,
    max_context: usize,
}

impl Qwen2 {
    pub(crate) fn load(
        content: Content,
        reader: &mut BufReader<File>,
        device: &Device,
        context_length: Option<usize>,
    ) -> candle_core::Result<Qwen2> {
        let weights = ModelWeights::from_gguf(content, reader, device)?;
        Ok(Qwen2 {
            shared: Arc::new(Mutex::new(Shared {
                weights,
                cached: Vec::new(),
            })),
            device: device.clone(),
            // candle sizes its RoPE tables from qwen2.context_length, validated present.
            max_context: context_length.unwrap_or(0),
        })
    }

    pub(crate) fn max_context(&self) -> usize {
        self.max_context
    }

    pub(crate) fn new_state(&self) -> Qwen2State {
        Qwen2State {
            shared: Arc::clone(&self.shared),
            device: self.device.clone(),
        }
    }
}

pub(crate) struct Qwen2State {
    shared: Arc<Mutex<Shared>>,
    device: Device,
}

impl Qwen2State {
    pub(crate) fn forward(&mut self, history: &[u32], new: &[u32]) -> Result<Vec<f32>, LlmError> {
        let mut shared = lock(&self.shared);
        if shared.cached != history {
            shared.cached.clear();
            shared.weights.clear_kv_cache();
            if !history.is_empty() {
                tracing::debug!(
                    tokens = history.len(),
                    "qwen2: re-prefilling this session's prefix"
                );
            }
            for (i, chunk) in history.chunks(PREFILL_CHUNK).enumerate() {
                run(&mut shared.weights, &self.device, i * PREFILL_CHUNK, chunk)?;
            }
        }
        // Until the run succeeds the cache content is unknown.
        shared.cached.clear();
        let logits = run(&mut shared.weights, &self.device, history.len(), new)?;
        shared.cached.extend_from_slice(history);
        shared.cached.extend_from_slice(new);
        Ok(logits)
    }

    /// Free: the fork re-prefills lazily when it next runs.
    pub(crate) fn fork(&self) -> Qwen2State {
        Qwen2State {
            shared: Arc::clone(&self.shared),
            device: self.device.clone(),
        }
    }
}

/// Locks the shared instance. After a panic while it was held the cache is in an unknown
/// state, so it is marked unowned and the next user rebuilds it.
fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|poisoned| {
        let mut guard = poisoned.into_inner();
        guard.cached.clear();
        shared.clear_poison();
        guard
    })
}

fn run(
    weights: &mut ModelWeights,
    device: &Device,
    position: usize,
    tokens: &[u32],
) -> Result<Vec<f32>, LlmError> {
    let mut go = || -> candle_core::Result<Vec<f32>> {
        let input = Tensor::new(tokens, device)?.unsqueeze(0)?;
        let logits = weights.forward(&input, position)?;
        logits_to_vec(&logits)
    };
    go().map_err(|e| LlmError::model(format!("forward at position {position}"), e))
}
