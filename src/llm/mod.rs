//! Everything about running a local GGUF model: reading the file, the tokenizer and chat
//! template it carries, the model code, sampling and generation.
//!
//! The entry point is [`Engine::load`]; a [`Session`] holds one token sequence and its
//! attention cache, and [`generate`] samples from it. Prompts built from untrusted text go
//! through [`encode_chat`], which keeps message contents from producing control tokens.

pub mod chat;
pub mod device;
pub mod error;
pub mod generate;
pub mod gguf;
pub(crate) mod kernels;
pub mod models;
pub mod registry;
pub mod sampler;
pub mod testing;
pub mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate, encode_chat};
pub use device::DeviceChoice;
pub use error::LlmError;
pub use generate::{
    Checkpoint, Engine, GenerateOptions, Generation, LoadOptions, Session, StopReason, generate,
    generate_masked,
};
pub use gguf::{GgufFile, ModelInfo};
pub use models::{KvCacheType, SUPPORTED_ARCHITECTURES};
pub use sampler::{Sampler, SamplingParams, TokenMask};
pub use tokenizer::{GgufTokenizer, TokenStream, TokenType};
