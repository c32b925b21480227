//! The `tokenize` and `generate` commands: direct access to a model's tokenizer and to raw or
//! chat-templated generation, for checking paperdigest against llama.cpp on the same GGUF file
//! and for trying prompts by hand.
//!
//! `tokenize` reads only the GGUF header (the vocabulary lives there), never the weights, so it
//! is fast even for large models. `generate` loads the model and streams the continuation.

use std::path::{Path, PathBuf};

use crate::llm::{
    ChatMessage, Engine, GenerateOptions, Generation, GgufFile, GgufTokenizer, LlmError, Sampler,
    SamplingParams, StopReason, TokenMask, generate_masked,
};

/// Why a `tokenize` or `generate` command failed.
///
/// Each message already contains its cause, so no variant chains a `source` (the binary prints
/// error chains, which would repeat it).
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The input file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The input file is not UTF-8 text.
    #[error("{path} is not UTF-8 text: {error}")]
    NotUtf8 {
        path: PathBuf,
        error: std::string::FromUtf8Error,
    },
    /// The model file could not be read or used.
    #[error("{}", name_once(path, error))]
    Model { path: PathBuf, error: LlmError },
    /// Nothing to continue from.
    #[error(
        "the prompt is empty and the model adds no BOS token: there is nothing to continue from"
    )]
    EmptyPrompt,
    /// The prompt alone fills the context.
    #[error(
        "the prompt has {tokens} tokens but the context holds {limit} \
         (the model's context length, capped by --max-context)"
    )]
    PromptTooLong { tokens: usize, limit: usize },
}

/// The model error, prefixed with the file unless the error already names it.
fn name_once(path: &Path, source: &LlmError) -> String {
    let text = source.to_string();
    let shown = path.display().to_string();
    if text.contains(&shown) {
        text
    } else {
        format!("model {shown}: {text}")
    }
}

/// The text of `--text`/`--prompt`, else the content of the file.
pub fn read_input(text: Option<&str>, file: Option<&Path>) -> Result<String, ToolError> {
    match (text, file) {
        (Some(text), _) => Ok(text.to_string()),
        (None, Some(path)) => {
            let bytes = std::fs::read(path).map_err(|error| ToolError::Read {
                path: path.to_path_buf(),
                error,
            })?;
            String::from_utf8(bytes).map_err(|error| ToolError::NotUtf8 {
                path: path.to_path_buf(),
                error,
            })
        }
        // clap requires one of the two; an empty text is what nothing means.
        (None, None) => Ok(String::new()),
    }
}

/// Builds the tokenizer of a GGUF file from its header alone (the weights are not read).
pub fn load_tokenizer(model: &Path) -> Result<GgufTokenizer, ToolError> {
    let wrap = |error| ToolError::Model {
        path: model.to_path_buf(),
        error,
    };
    let gguf = GgufFile::open(model).map_err(wrap)?;
    GgufTokenizer::from_gguf(&gguf).map_err(wrap)
}

/// Token ids in the form llama.cpp's `llama-tokenize --ids` prints: `[1, 2, 3]`.
pub fn format_ids(ids: &[u32]) -> String {
    let items: Vec<String> = ids.iter().map(u32::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// What `generate` is asked to do.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt: String,
    /// Continue the text itself instead of answering it as a user message.
    pub raw: bool,
    /// Ban end-of-generation tokens so exactly `max_tokens` tokens are written.
    pub ignore_eos: bool,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    /// Upper bound on prompt plus continuation, besides the model's own context length.
    pub max_context: usize,
}

/// What `generate` produced.
#[derive(Debug, Clone)]
pub struct GenerateOutcome {
    /// The prompt as fed to the model.
    pub prompt_tokens: Vec<u32>,
    pub generation: Generation,
}

/// The tokens a prompt is fed as. Raw: BOS when the model asks for it, then the text with
/// special-token strings recognised (as `llama-completion` does). Otherwise: the prompt as the
/// one user message of the model's chat template, with the assistant turn opened.
pub fn prompt_tokens(engine: &Engine, prompt: &str, raw: bool) -> Result<Vec<u32>, LlmError> {
    if !raw {
        return engine.encode_chat(&[ChatMessage::user(prompt)], true);
    }
    let tokenizer = engine.tokenizer();
    let mut ids = Vec::new();
    if tokenizer.add_bos()
        && let Some(bos) = tokenizer.bos_id()
    {
        ids.push(bos);
    }
    ids.extend(tokenizer.encode_with_specials(prompt)?);
    Ok(ids)
}

/// Feeds the prompt and samples the continuation, streaming its text to `on_text`.
pub fn generate_text(
    engine: &Engine,
    model: &Path,
    request: &GenerateRequest,
    on_text: &mut dyn FnMut(&str),
) -> Result<GenerateOutcome, ToolError> {
    let wrap = |error| ToolError::Model {
        path: model.to_path_buf(),
        error,
    };
    let ids = prompt_tokens(engine, &request.prompt, request.raw).map_err(wrap)?;
    if ids.is_empty() {
        return Err(ToolError::EmptyPrompt);
    }
    let limit = engine.context_length().min(request.max_context.max(1));
    if ids.len() >= limit {
        return Err(ToolError::PromptTooLong {
            tokens: ids.len(),
            limit,
        });
    }
    let room = limit - ids.len();
    let max_tokens = if request.max_tokens > room {
        tracing::warn!(
            asked = request.max_tokens,
            room,
            "the context has room for fewer tokens than asked; writing at most {room}"
        );
        room
    } else {
        request.max_tokens
    };
    let mut session = engine.new_session().map_err(wrap)?;
    session.feed(&ids).map_err(wrap)?;
    let banned = if request.ignore_eos {
        TokenMask::from_ids(engine.tokenizer().eos_ids().iter().copied())
    } else {
        TokenMask::new()
    };
    let options = GenerateOptions {
        max_tokens,
        stop_at_eos: !request.ignore_eos,
        stop_strings: Vec::new(),
    };
    let mut sampler = Sampler::new(&request.sampling);
    let generation =
        generate_masked(&mut session, &mut sampler, &options, &banned, on_text).map_err(wrap)?;
    Ok(GenerateOutcome {
        prompt_tokens: ids,
        generation,
    })
}

/// The `--json` form of a generation.
pub fn outcome_json(outcome: &GenerateOutcome) -> serde_json::Value {
    let stop = match &outcome.generation.stop {
        StopReason::Eos => "eos".to_string(),
        StopReason::MaxTokens => "max_tokens".to_string(),
        StopReason::StopString(s) => format!("stop_string:{s}"),
    };
    serde_json::json!({
        "text": outcome.generation.text,
        "tokens": outcome.generation.tokens,
        "prompt_tokens": outcome.prompt_tokens.len(),
        "stop": stop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_like_llama_tokenize() {
        assert_eq!(format_ids(&[]), "[]");
        assert_eq!(format_ids(&[1, 22, 333]), "[1, 22, 333]");
    }

    #[test]
    fn input_comes_from_text_or_file() {
        assert_eq!(read_input(Some("hi"), None).unwrap(), "hi");
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.txt");
        std::fs::write(&good, "a\tb\n").unwrap();
        assert_eq!(read_input(None, Some(&good)).unwrap(), "a\tb\n");
        let bad = dir.path().join("latin1.txt");
        std::fs::write(&bad, b"caf\xe9").unwrap();
        let err = read_input(None, Some(&bad)).unwrap_err();
        assert!(err.to_string().contains("latin1.txt"), "{err}");
        let missing = dir.path().join("missing.txt");
        let err = read_input(None, Some(&missing)).unwrap_err();
        assert!(err.to_string().contains("missing.txt"), "{err}");
    }
}
