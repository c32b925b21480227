//! The model code, one file per architecture, behind one seam: [`Model`] holds the loaded
//! weights (shared by all sessions) and [`ModelState`] is one session's attention cache.
//!
//! For now both architectures wrap candle-transformers 0.11.1 (`quantized_llama`,
//! `quantized_qwen2`); the seam is what a later rewrite with our own kernels replaces.
//! Gemma 3 is refused on purpose: candle's `quantized_gemma3` computes the wrong function
//! (SiLU instead of GELU-tanh, no sliding window when decoding), and wrong text is worse than
//! a clear error.

mod llama;
mod qwen2;

use std::fs::File;
use std::io::BufReader;
use std::panic::{AssertUnwindSafe, catch_unwind};

use candle_core::Device;

use super::error::{LlmError, panic_message};
use super::gguf::GgufFile;

/// Architectures this build can run.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2"];

/// Tokens per forward pass when prefilling: bounds the attention score matrix.
pub(crate) const PREFILL_CHUNK: usize = 256;

/// The architecture families with model code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Architecture {
    Llama,
    Qwen2,
}

/// Maps `general.architecture` to model code, or says why it cannot run.
pub(crate) fn check_architecture(gguf: &GgufFile) -> Result<Architecture, LlmError> {
    match gguf.architecture() {
        "llama" => Ok(Architecture::Llama),
        "qwen2" => Ok(Architecture::Qwen2),
        "gemma3" => Err(LlmError::ArchitectureNotYetSupported {
            path: gguf.path().to_path_buf(),
            architecture: "gemma3".into(),
            reason: "the only available model code (candle-transformers 0.11.1) computes Gemma 3 \
                     incorrectly (SiLU instead of GELU-tanh, no sliding-window attention when \
                     decoding); supported: llama, qwen2"
                .into(),
        }),
        other => Err(LlmError::UnsupportedArchitecture {
            path: gguf.path().to_path_buf(),
            architecture: other.to_string(),
            supported: SUPPORTED_ARCHITECTURES.to_vec(),
        }),
    }
}

/// Loaded weights of one model.
pub(crate) enum Model {
    Llama(llama::Llama),
    Qwen2(qwen2::Qwen2),
}

impl Model {
    /// Reads the weights named by the header onto `device`.
    pub(crate) fn load(
        gguf: GgufFile,
        arch: Architecture,
        device: &Device,
    ) -> Result<Model, LlmError> {
        let path = gguf.path().to_path_buf();
        match arch {
            Architecture::Llama => llama::validate(&gguf)?,
            Architecture::Qwen2 => qwen2::validate(&gguf)?,
        }
        let context_length = gguf
            .arch_u64("context_length")?
            .and_then(|n| usize::try_from(n).ok());
        let file = File::open(&path).map_err(|source| LlmError::Io {
            path: path.clone(),
            source,
        })?;
        let mut reader = BufReader::new(file);
        let content = gguf.into_content();
        // The header was validated, but model code indexing into external data must not be
        // able to abort the process: a panic becomes an error naming the file.
        let loaded = catch_unwind(AssertUnwindSafe(|| match arch {
            Architecture::Llama => {
                llama::Llama::load(content, &mut reader, device, context_length).map(Model::Llama)
            }
            Architecture::Qwen2 => {
                qwen2::Qwen2::load(content, &mut reader, device, context_length).map(Model::Qwen2)
            }
        }));
        let fail = |reason: String| LlmError::Model {
            stage: format!("loading {}", path.display()),
            reason,
        };
        match loaded {
            Ok(Ok(model)) => Ok(model),
            Ok(Err(e)) => Err(fail(e.to_string())),
            Err(payload) => Err(fail(format!("panicked: {}", panic_message(&*payload)))),
        }
    }

    /// The longest sequence a session may hold.
    pub(crate) fn max_context(&self) -> usize {
        match self {
            Model::Llama(m) => m.max_context(),
            Model::Qwen2(m) => m.max_context(),
        }
    }

    /// A fresh, empty attention cache.
    pub(crate) fn new_state(&self) -> ModelState {
        match self {
            Model::Llama(m) => ModelState::Llama(m.new_state()),
            Model::Qwen2(m) => ModelState::Qwen2(m.new_state()),
        }
    }
}

/// One session's view of the model: its attention cache.
pub(crate) enum ModelState {
    Llama(llama::LlamaState),
    Qwen2(qwen2::Qwen2State),
}

impl ModelState {
    /// Runs `new` at positions `history.len()..`, where `history` is everything this state
    /// was fed before, and returns the logits of the last position (f32, on the host).
    pub(crate) fn forward(&mut self, history: &[u32], new: &[u32]) -> Result<Vec<f32>, LlmError> {
        match self {
            ModelState::Llama(s) => s.forward(history.len(), new),
            ModelState::Qwen2(s) => s.forward(history, new),
        }
    }

    /// An independent state with the same prefix (see each architecture for the cost).
    pub(crate) fn fork(&self) -> ModelState {
        match self {
            ModelState::Llama(s) => ModelState::Llama(s.fork()),
            ModelState::Qwen2(s) => ModelState::Qwen2(s.fork()),
        }
    }
}

/// Last-position logits as host f32.
fn logits_to_vec(logits: &candle_core::Tensor) -> candle_core::Result<Vec<f32>> {
    logits
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()
}

/// Checks the attention shape keys the model code divides by.
fn validate_heads(gguf: &GgufFile) -> Result<(), LlmError> {
    let key = |s: &str| format!("{}.{s}", gguf.architecture());
    let heads = gguf.require_u64(&key("attention.head_count"))?;
    let kv_heads = gguf.require_u64(&key("attention.head_count_kv"))?;
    let embd = gguf.require_u64(&key("embedding_length"))?;
    gguf.require_u64(&key("block_count"))?;
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || embd % heads != 0 {
        return Err(gguf.problem(
            &key("attention.head_count"),
            format!("is inconsistent: {heads} heads, {kv_heads} KV heads, embedding length {embd}"),
        ));
    }
    Ok(())
}
