//! The one error type of the LLM room: every failure says what failed and on which input
//! (the model file, the metadata key, the token id, the template).

use std::path::PathBuf;

/// Everything that can go wrong while reading a model file, tokenizing, rendering a chat
/// template or running the model.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The model file could not be opened or read.
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not a GGUF file, or its header is damaged or truncated.
    #[error("{path} is not a valid GGUF file: {reason}")]
    InvalidGguf { path: PathBuf, reason: String },

    /// A metadata key the model needs is absent or has the wrong type.
    #[error("{path}: metadata key `{key}` {problem}")]
    Metadata {
        path: PathBuf,
        key: String,
        problem: String,
    },

    /// The GGUF names an architecture this build has no model code for.
    #[error(
        "{path}: architecture `{architecture}` is not supported (supported: {})",
        supported.join(", ")
    )]
    UnsupportedArchitecture {
        path: PathBuf,
        architecture: String,
        supported: Vec<&'static str>,
    },

    /// An architecture we know about but cannot run correctly yet.
    #[error("{path}: architecture {architecture} is not supported yet: {reason}")]
    ArchitectureNotYetSupported {
        path: PathBuf,
        architecture: String,
        reason: String,
    },

    /// The tokenizer described by the GGUF metadata cannot be built.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A token id outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens")]
    TokenOutOfRange { id: u32, vocab_size: usize },

    /// The chat template failed to compile or render.
    #[error("chat template: {0}")]
    Template(String),

    /// The requested device is not available in this build or on this machine.
    #[error("device `{choice}`: {reason}")]
    Device { choice: String, reason: String },

    /// Feeding these tokens would run past the model's context window.
    #[error("context overflow: {have} tokens already fed + {adding} new > context length {limit}")]
    ContextOverflow {
        have: usize,
        adding: usize,
        limit: usize,
    },

    /// The model code failed (a tensor operation returned an error or panicked).
    #[error("model {stage}: {reason}")]
    Model { stage: String, reason: String },

    /// Generation was asked for before any token was fed.
    #[error("the session has no logits yet: feed at least one token before generating")]
    NoLogits,

    /// A session whose model state was left half-updated by an earlier failure.
    #[error("the session is unusable after an earlier model error; start a new session")]
    SessionBroken,
}

impl LlmError {
    /// Wraps a candle error raised while doing `stage`.
    pub(crate) fn model(stage: impl Into<String>, err: impl std::fmt::Display) -> Self {
        LlmError::Model {
            stage: stage.into(),
            reason: err.to_string(),
        }
    }
}

/// Turns a caught panic payload into readable text.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}
