//! The session API the rest of paperdigest uses: an [`Engine`] is a loaded model (weights,
//! tokenizer, chat template), a [`Session`] is one sequence of tokens with its attention
//! cache, and [`generate`] samples a continuation, streaming text as it comes and stopping at
//! an end-of-turn token, a stop string or a token budget.
//!
//! A session stays usable after `generate`: the caller may feed more tokens (a forced list
//! prefix such as `2. `) and generate again. Prefill is chunked; feeding past the model's
//! context is an error, never a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;

use super::chat::{ChatMessage, ChatTemplate, encode_chat};
use super::device::{DeviceChoice, describe};
use super::error::{LlmError, panic_message};
use super::gguf::{GgufFile, ModelInfo};
use super::models::{self, KvCacheType, Model, ModelState, PREFILL_CHUNK};
use super::sampler::{Sampler, TokenMask};
use super::tokenizer::{GgufTokenizer, TokenStream};

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub device: DeviceChoice,
    /// The most tokens a session may hold; None: the model's trained context length. Each
    /// session's attention cache is allocated to this size up front.
    pub context: Option<usize>,
    /// How the attention cache stores keys and values.
    pub kv_cache: KvCacheType,
}

/// A loaded model: weights, tokenizer, chat template, file summary and device.
pub struct Engine {
    info: ModelInfo,
    tokenizer: Arc<GgufTokenizer>,
    chat: ChatTemplate,
    model: Model,
    device: Device,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("info", &self.info)
            .field("device", &describe(&self.device))
            .finish()
    }
}

impl Engine {
    /// Opens and checks the GGUF, builds its tokenizer and chat template, and loads the
    /// weights. Unsupported architectures fail before any weight is read.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Engine, LlmError> {
        let started = Instant::now();
        let gguf = GgufFile::open(path)?;
        let arch = models::check_architecture(&gguf)?;
        let device = opts.device.resolve()?;
        let tokenizer = GgufTokenizer::from_gguf(&gguf)?;
        let chat = ChatTemplate::from_gguf(&gguf, &tokenizer)?;
        let info = gguf.info().clone();
        let model = Model::load(gguf, arch, &device, opts.context, opts.kv_cache)?;
        tracing::info!(
            model = %info.name,
            architecture = %info.architecture,
            quantization = info.quantization.as_deref().unwrap_or("?"),
            device = describe(&device),
            context = model.max_context(),
            secs = started.elapsed().as_secs_f64(),
            "model loaded"
        );
        Ok(Engine {
            info,
            tokenizer: Arc::new(tokenizer),
            chat,
            model,
            device,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    pub fn chat(&self) -> &ChatTemplate {
        &self.chat
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The most tokens a session can hold: the model's trained context length, or less where
    /// [`LoadOptions::context`] asked for less.
    pub fn context_length(&self) -> usize {
        self.model.max_context()
    }

    /// Bytes of the attention cache each session allocates (and each fork copies into).
    pub fn kv_cache_bytes(&self) -> usize {
        self.model.kv_cache_bytes()
    }

    /// How each session's attention cache stores keys and values.
    pub fn kv_cache_type(&self) -> KvCacheType {
        self.model.kv_cache_type()
    }

    /// Renders and tokenizes a conversation with this model's template, injection-safe
    /// (see [`encode_chat`]).
    pub fn encode_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>, LlmError> {
        encode_chat(&self.chat, &self.tokenizer, messages, add_generation_prompt)
    }

    /// An empty session.
    pub fn new_session(&self) -> Result<Session, LlmError> {
        Ok(Session {
            state: self.model.new_state()?,
            tokenizer: Arc::clone(&self.tokenizer),
            tokens: Vec::new(),
            logits: None,
            max_context: self.model.max_context(),
            broken: false,
            prefill_tokens: 0,
            prefill_secs: 0.0,
        })
    }
}

/// One token sequence and its attention cache.
///
/// Forking copies the cached keys and values of the tokens fed so far into a new cache (a
/// memory copy, no recomputation). Sessions of one engine may be used from different threads.
pub struct Session {
    state: ModelState,
    tokenizer: Arc<GgufTokenizer>,
    tokens: Vec<u32>,
    logits: Option<Vec<f32>>,
    max_context: usize,
    broken: bool,
    /// Tokens fed (and seconds spent) since the last `generate`, reported by it as prefill.
    prefill_tokens: usize,
    prefill_secs: f64,
}

impl Session {
    /// Runs `tokens` through the model in chunks of `PREFILL_CHUNK`, keeping the logits of
    /// the last one. Fails without changing anything if the tokens would not fit in the
    /// context or are outside the vocabulary.
    pub fn feed(&mut self, tokens: &[u32]) -> Result<(), LlmError> {
        let started = Instant::now();
        self.feed_inner(tokens)?;
        self.prefill_tokens += tokens.len();
        self.prefill_secs += started.elapsed().as_secs_f64();
        Ok(())
    }

    /// Logits of the last position fed, on the host.
    pub fn logits(&self) -> Option<&[f32]> {
        self.logits.as_deref()
    }

    /// Every token fed so far.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The most tokens this session can hold.
    pub fn context_length(&self) -> usize {
        self.max_context
    }

    /// How many more tokens fit.
    pub fn remaining(&self) -> usize {
        self.max_context.saturating_sub(self.tokens.len())
    }

    /// The tokenizer of the model this session runs.
    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// An independent session with the same tokens and logits (see the type's notes on cost).
    pub fn fork(&self) -> Result<Session, LlmError> {
        if self.broken {
            return Err(LlmError::SessionBroken);
        }
        Ok(Session {
            state: self.state.fork()?,
            tokenizer: Arc::clone(&self.tokenizer),
            tokens: self.tokens.clone(),
            logits: self.logits.clone(),
            max_context: self.max_context,
            broken: false,
            prefill_tokens: 0,
            prefill_secs: 0.0,
        })
    }

    /// Marks where this session is now, to come back to with [`Session::rewind`]: a cheap
    /// snapshot of the shared prefix, since the cache is not copied.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            tokens: self.tokens.clone(),
            logits: self.logits.clone(),
        }
    }

    /// Returns to `checkpoint`, forgetting every token fed after it; the cached prefix is kept,
    /// so nothing is recomputed. Also recovers a session broken by a failed feed after the
    /// checkpoint. Fails, changing nothing, if this session does not continue the checkpoint's
    /// tokens.
    pub fn rewind(&mut self, checkpoint: &Checkpoint) -> Result<(), LlmError> {
        let len = checkpoint.tokens.len();
        if !self.tokens.starts_with(&checkpoint.tokens) {
            return Err(LlmError::Model {
                stage: format!("rewinding to position {len}"),
                reason: "the session does not continue the checkpoint's tokens".into(),
            });
        }
        // Positions below `tokens.len()` were all written by successful feeds, so the cache
        // holds the checkpoint's prefix even after a failed feed.
        self.tokens.truncate(len);
        self.logits.clone_from(&checkpoint.logits);
        self.broken = false;
        Ok(())
    }

    fn feed_inner(&mut self, tokens: &[u32]) -> Result<(), LlmError> {
        if self.broken {
            return Err(LlmError::SessionBroken);
        }
        if tokens.is_empty() {
            return Ok(());
        }
        if self.tokens.len() + tokens.len() > self.max_context {
            return Err(LlmError::ContextOverflow {
                have: self.tokens.len(),
                adding: tokens.len(),
                limit: self.max_context,
            });
        }
        let vocab_size = self.tokenizer.vocab_size();
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= vocab_size) {
            return Err(LlmError::TokenOutOfRange { id, vocab_size });
        }
        for chunk in tokens.chunks(PREFILL_CHUNK) {
            let (state, position) = (&mut self.state, self.tokens.len());
            let result = catch_unwind(AssertUnwindSafe(|| state.forward(position, chunk)));
            let err = match result {
                Ok(Ok(logits)) => {
                    self.tokens.extend_from_slice(chunk);
                    self.logits = Some(logits);
                    continue;
                }
                Ok(Err(e)) => e,
                Err(payload) => LlmError::Model {
                    stage: format!("forward at position {}", self.tokens.len()),
                    reason: format!("panicked: {}", panic_message(&*payload)),
                },
            };
            // The cache may hold part of this chunk: the session cannot continue.
            self.broken = true;
            self.logits = None;
            return Err(err);
        }
        Ok(())
    }

    fn take_prefill_stats(&mut self) -> (usize, f64) {
        let stats = (self.prefill_tokens, self.prefill_secs);
        self.prefill_tokens = 0;
        self.prefill_secs = 0.0;
        stats
    }
}

/// A session's tokens and logits at one point; see [`Session::checkpoint`].
#[derive(Debug, Clone)]
pub struct Checkpoint {
    tokens: Vec<u32>,
    logits: Option<Vec<f32>>,
}

/// When to stop generating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    /// Stop at EOS and end-of-turn tokens (they are neither fed nor part of the text).
    pub stop_at_eos: bool,
    /// Stop when the text contains one of these; it and anything after it are dropped from
    /// the text (the tokens that produced them stay in the session).
    pub stop_strings: Vec<String>,
}

impl Default for GenerateOptions {
    fn default() -> GenerateOptions {
        GenerateOptions {
            max_tokens: 256,
            stop_at_eos: true,
            stop_strings: Vec::new(),
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// An EOS or end-of-turn token was sampled.
    Eos,
    /// The text reached this stop string.
    StopString(String),
    MaxTokens,
}

/// The result of one [`generate`] call.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub text: String,
    /// The sampled tokens, all fed to the session (an end-of-turn token is not included).
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    /// Tokens fed with [`Session::feed`] since the previous `generate` on this session.
    pub prefill_tokens: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
}

impl Generation {
    /// Prefill speed in tokens per second (0 when nothing was prefilled).
    pub fn prefill_tokens_per_sec(&self) -> f64 {
        rate(self.prefill_tokens, self.prefill_secs)
    }

    /// Decode speed in tokens per second.
    pub fn decode_tokens_per_sec(&self) -> f64 {
        rate(self.tokens.len(), self.decode_secs)
    }
}

fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// Samples a continuation from the session's current logits, feeding each token back, and
/// streams decoded text to `on_text` (never splitting a character, and never emitting text
/// that might turn out to be the start of a stop string).
pub fn generate(
    session: &mut Session,
    sampler: &mut Sampler,
    opts: &GenerateOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation, LlmError> {
    generate_masked(session, sampler, opts, &TokenMask::new(), on_text)
}

/// [`generate`] that never samples a token in `banned` (e.g. control tokens that would open
/// a new turn; end-of-turn tokens should stay allowed when `stop_at_eos` is set).
pub fn generate_masked(
    session: &mut Session,
    sampler: &mut Sampler,
    opts: &GenerateOptions,
    banned: &TokenMask,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation, LlmError> {
    if session.broken {
        return Err(LlmError::SessionBroken);
    }
    if session.logits.is_none() {
        return Err(LlmError::NoLogits);
    }
    let (prefill_tokens, prefill_secs) = session.take_prefill_stats();
    let tokenizer = Arc::clone(&session.tokenizer);
    let mut stream = TokenStream::new(&tokenizer);
    let stops: Vec<&str> = opts
        .stop_strings
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let mut text = String::new();
    let mut emitted = 0;
    let mut tokens = Vec::new();
    let mut stop = StopReason::MaxTokens;
    let started = Instant::now();

    while tokens.len() < opts.max_tokens {
        let logits = session.logits.as_deref().ok_or(LlmError::NoLogits)?;
        let next = sampler.sample(logits, banned);
        if opts.stop_at_eos && tokenizer.is_eog(next) {
            stop = StopReason::Eos;
            break;
        }
        tokens.push(next);
        text.push_str(&stream.push(next)?);
        session.feed_inner(&[next])?;
        if let Some((at, which)) = find_stop(&text, emitted, &stops) {
            text.truncate(at);
            stop = StopReason::StopString(which.to_string());
            break;
        }
        let safe = text.len() - held_back(&text[emitted..], &stops);
        if safe > emitted {
            on_text(&text[emitted..safe]);
            emitted = safe;
        }
    }
    if !matches!(stop, StopReason::StopString(_)) {
        text.push_str(&stream.finish());
    }
    if text.len() > emitted {
        on_text(&text[emitted..]);
    }
    Ok(Generation {
        text,
        tokens,
        stop,
        prefill_tokens,
        prefill_secs,
        decode_secs: started.elapsed().as_secs_f64(),
    })
}

/// The earliest stop string occurrence starting at or after `from`.
fn find_stop<'s>(text: &str, from: usize, stops: &[&'s str]) -> Option<(usize, &'s str)> {
    stops
        .iter()
        .filter_map(|s| text[from..].find(s).map(|p| (from + p, *s)))
        .min_by_key(|&(p, s)| (p, std::cmp::Reverse(s.len())))
}

/// Length of the longest suffix of `tail` that is a proper start of some stop string: that
/// text must wait, it may become a stop string with the next token.
fn held_back(tail: &str, stops: &[&str]) -> usize {
    tail.char_indices()
        .map(|(i, _)| &tail[i..])
        .find(|suffix| {
            stops
                .iter()
                .any(|s| s.len() > suffix.len() && s.starts_with(suffix))
        })
        .map_or(0, str::len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::gguf::tests::{QWEN25, SMOLLM2, test_model, write_tiny_gguf};
    use crate::llm::sampler::SamplingParams;
    use candle_core::quantized::gguf_file::Value;
    use std::sync::OnceLock;

    fn smollm2() -> Option<&'static Engine> {
        static ENGINE: OnceLock<Option<Engine>> = OnceLock::new();
        ENGINE
            .get_or_init(|| {
                let path = test_model(SMOLLM2)?;
                let opts = LoadOptions {
                    device: DeviceChoice::Cpu,
                    context: None,
                    kv_cache: Default::default(),
                };
                Some(Engine::load(&path, &opts).unwrap())
            })
            .as_ref()
    }

    fn greedy() -> Sampler {
        Sampler::new(&SamplingParams::default())
    }

    fn opts(max_tokens: usize) -> GenerateOptions {
        GenerateOptions {
            max_tokens,
            ..GenerateOptions::default()
        }
    }

    fn continue_text(engine: &Engine, session: &mut Session, n: usize) -> Generation {
        let mut streamed = String::new();
        let g = generate(session, &mut greedy(), &opts(n), &mut |t| {
            streamed.push_str(t)
        })
        .unwrap();
        assert_eq!(streamed, g.text, "streamed text must equal the result");
        assert_eq!(engine.tokenizer().decode(&g.tokens).unwrap(), g.text);
        g
    }

    #[test]
    fn greedy_is_deterministic_and_fork_matches() {
        let Some(engine) = smollm2() else { return };
        let prompt = engine
            .tokenizer()
            .encode("The capital of France is")
            .unwrap();
        let mut a = engine.new_session().unwrap();
        a.feed(&prompt).unwrap();
        let fork = a.fork().unwrap();
        let ga = continue_text(engine, &mut a, 16);
        assert_eq!(ga.tokens.len(), 16);
        assert_eq!(ga.stop, StopReason::MaxTokens);
        assert_eq!(ga.prefill_tokens, prompt.len());
        assert!(ga.text.contains("Paris"), "{:?}", ga.text);
        assert_eq!(a.tokens().len(), prompt.len() + 16);

        let mut b = engine.new_session().unwrap();
        b.feed(&prompt).unwrap();
        let gb = continue_text(engine, &mut b, 16);
        assert_eq!(ga.tokens, gb.tokens);

        let mut fork = fork;
        let gf = continue_text(engine, &mut fork, 16);
        assert_eq!(ga.tokens, gf.tokens);

        // The session goes on after generate: feeding more text and generating again works
        // and equals doing it all in one fresh session.
        // The batched and token-by-token paths quantize and sum in different orders; on this
        // small model that moves logits by up to about 1 (llama.cpp's own two paths differ by
        // 0.7 on the same file), while a wrong mask or position moves them by several. The
        // exact checks of the arithmetic are in `llm::models` on tiny models.
        let forced = engine.tokenizer().encode(" Also,").unwrap();
        a.feed(&forced).unwrap();
        let mut c = engine.new_session().unwrap();
        c.feed(&[prompt.clone(), ga.tokens.clone(), forced.clone()].concat())
            .unwrap();
        let (la, lc) = (a.logits().unwrap(), c.logits().unwrap());
        let diff = la
            .iter()
            .zip(lc)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1.5, "logits differ by {diff}");
        let g2 = continue_text(engine, &mut a, 4);
        assert_eq!(g2.prefill_tokens, forced.len());
    }

    #[test]
    fn rewind_returns_to_the_checkpoint() {
        use crate::llm::testing::{TinyModelSpec, write_tiny_model};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write_tiny_model(&path, &TinyModelSpec::default()).unwrap();
        let load = LoadOptions {
            device: DeviceChoice::Cpu,
            context: Some(64),
            kv_cache: Default::default(),
        };
        let engine = Engine::load(&path, &load).unwrap();
        let mut session = engine.new_session().unwrap();
        session.feed(&[10, 11, 12, 13]).unwrap();
        let before = session.logits().unwrap().to_vec();
        let checkpoint = session.checkpoint();
        let mut fork = session.fork().unwrap();
        fork.feed(&[20, 21]).unwrap();

        session.feed(&[30, 31, 32]).unwrap();
        assert_ne!(session.logits().unwrap(), &before[..]);
        session.rewind(&checkpoint).unwrap();
        assert_eq!(session.tokens(), &[10, 11, 12, 13]);
        assert_eq!(session.logits().unwrap(), &before[..]);
        // The positions after the checkpoint are overwritten, not attended to.
        session.feed(&[20, 21]).unwrap();
        assert_eq!(session.logits(), fork.logits());

        // A session that does not continue the checkpoint is left as it was.
        let mut other = engine.new_session().unwrap();
        other.feed(&[10, 11, 40]).unwrap();
        assert!(other.rewind(&checkpoint).is_err());
        assert_eq!(other.tokens(), &[10, 11, 40]);
    }

    #[test]
    fn banned_tokens_are_never_sampled() {
        let Some(engine) = smollm2() else { return };
        let prompt = engine
            .tokenizer()
            .encode("The capital of France is")
            .unwrap();
        let mut s = engine.new_session().unwrap();
        s.feed(&prompt).unwrap();
        let free = continue_text(engine, &mut s.fork().unwrap(), 4);
        let banned = TokenMask::from_ids(free.tokens.iter().copied());
        let g = generate_masked(&mut s, &mut greedy(), &opts(4), &banned, &mut |_| {}).unwrap();
        assert_eq!(g.tokens.len(), 4);
        assert!(
            g.tokens.iter().all(|&t| !banned.contains(t)),
            "{:?}",
            g.tokens
        );
    }

    #[test]
    fn chat_generation_stops_at_end_of_turn() {
        let Some(engine) = smollm2() else { return };
        let ids = engine
            .encode_chat(&[ChatMessage::user("Say hello.")], true)
            .unwrap();
        let mut s = engine.new_session().unwrap();
        s.feed(&ids).unwrap();
        let g = generate(&mut s, &mut greedy(), &opts(200), &mut |_| {}).unwrap();
        assert_eq!(g.stop, StopReason::Eos, "{:?}", g.text);
        assert!(!g.text.is_empty());
        assert!(!g.text.contains("<|im_end|>"));
        assert_eq!(s.tokens().len(), ids.len() + g.tokens.len());
    }

    #[test]
    fn stop_string_cuts_the_text() {
        let Some(engine) = smollm2() else { return };
        let prompt = engine
            .tokenizer()
            .encode("The capital of France is")
            .unwrap();
        let mut s = engine.new_session().unwrap();
        s.feed(&prompt).unwrap();
        let full = continue_text(engine, &mut s.fork().unwrap(), 16).text;
        let at = full.find("Paris").expect("greedy continuation names Paris");
        let mut streamed = String::new();
        let o = GenerateOptions {
            stop_strings: vec!["Paris".into(), "never-appears".into()],
            ..opts(16)
        };
        let g = generate(&mut s, &mut greedy(), &o, &mut |t| streamed.push_str(t)).unwrap();
        assert_eq!(g.stop, StopReason::StopString("Paris".into()));
        assert_eq!(g.text, full[..at]);
        assert_eq!(streamed, g.text);
        // Every sampled token, including the one that completed the stop string, was fed.
        assert_eq!(s.tokens().len(), prompt.len() + g.tokens.len());
    }

    #[test]
    fn feeding_past_the_context_is_an_error() {
        let Some(engine) = smollm2() else { return };
        // SmolLM2 was trained for 8192 positions, and the model code reaches all of them.
        assert_eq!(engine.context_length(), 8192);
        let mut s = engine.new_session().unwrap();
        let too_many = vec![42u32; engine.context_length() + 1];
        let err = s.feed(&too_many).unwrap_err();
        assert!(
            matches!(err, LlmError::ContextOverflow { limit: 8192, .. }),
            "{err}"
        );
        assert!(s.tokens().is_empty() && s.logits().is_none());
        let err = s.feed(&[49_152]).unwrap_err();
        assert!(matches!(err, LlmError::TokenOutOfRange { .. }), "{err}");
        // Nothing fed yet: generate refuses instead of sampling garbage.
        let err = generate(&mut s, &mut greedy(), &opts(4), &mut |_| {}).unwrap_err();
        assert!(matches!(err, LlmError::NoLogits), "{err}");
        // The session is still fine.
        s.feed(&[42]).unwrap();
        assert_eq!(s.logits().map(<[f32]>::len), Some(49152));
    }

    #[test]
    fn unsupported_architectures_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mamba.gguf");
        write_tiny_gguf(
            &path,
            &[("general.architecture", Value::String("mamba".into()))],
        );
        let err = Engine::load(&path, &LoadOptions::default()).unwrap_err();
        assert!(
            matches!(err, LlmError::UnsupportedArchitecture { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("mamba") && text.contains("llama, qwen2, qwen3, gemma3"),
            "{text}"
        );
    }

    #[test]
    fn llama_gguf_with_broken_shapes_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llama-bad.gguf");
        write_tiny_gguf(
            &path,
            &[
                ("general.architecture", Value::String("llama".into())),
                ("llama.attention.head_count", Value::U32(0)),
                ("llama.attention.head_count_kv", Value::U32(0)),
                ("llama.embedding_length", Value::U32(32)),
                ("llama.block_count", Value::U32(1)),
                ("tokenizer.ggml.model", Value::String("gpt2".into())),
                ("tokenizer.ggml.pre", Value::String("gpt-2".into())),
                (
                    "tokenizer.ggml.tokens",
                    Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
                ),
                ("tokenizer.ggml.merges", Value::Array(vec![])),
            ],
        );
        let err = Engine::load(
            &path,
            &LoadOptions {
                device: DeviceChoice::Cpu,
                context: None,
                kv_cache: Default::default(),
            },
        )
        .unwrap_err();
        assert!(matches!(err, LlmError::Metadata { .. }), "{err}");
        assert!(err.to_string().contains("llama-bad.gguf"), "{err}");
    }

    #[test]
    fn qwen2_context_forks_and_batches() {
        let Some(path) = test_model(QWEN25) else {
            return;
        };
        let load = |context| {
            Engine::load(
                &path,
                &LoadOptions {
                    device: DeviceChoice::Cpu,
                    context,
                    kv_cache: Default::default(),
                },
            )
            .unwrap()
        };
        // The trained length is reachable; asking for less caps sessions (and their cache).
        assert_eq!(load(None).context_length(), 32768);
        let engine = load(Some(1024));
        assert_eq!(engine.context_length(), 1024);
        let prompt = engine.tokenizer().encode("def fibonacci(n):").unwrap();
        let mut a = engine.new_session().unwrap();
        a.feed(&prompt).unwrap();
        let mut f = a.fork().unwrap();
        let ga = continue_text(&engine, &mut a, 6);
        // The fork has its own copy of the prompt's cache and is not disturbed by `a`.
        let gf = continue_text(&engine, &mut f, 6);
        assert_eq!(ga.tokens, gf.tokens);
        let more = engine.tokenizer().encode("\n").unwrap();
        a.feed(&more).unwrap();
        let mut c = engine.new_session().unwrap();
        c.feed(&[prompt, ga.tokens, more].concat()).unwrap();
        let diff = a
            .logits()
            .unwrap()
            .iter()
            .zip(c.logits().unwrap())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1.5, "logits differ by {diff}");
    }

    #[test]
    fn engine_and_sessions_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Engine>();
        send::<Session>();
    }

    #[test]
    fn stop_helpers() {
        assert_eq!(held_back("abc", &["bcd"]), 2);
        assert_eq!(held_back("abc", &["xyz"]), 0);
        assert_eq!(held_back("abc", &["abc"]), 0);
        assert_eq!(held_back("né", &["é!"]), "é".len());
        assert_eq!(find_stop("a\n\nb", 0, &["\n\n", "b"]), Some((1, "\n\n")));
        assert_eq!(find_stop("xxab", 2, &["a", "ab"]), Some((2, "ab")));
        assert_eq!(find_stop("ab", 0, &[]), None);
    }

    /// Load time and speed of each test model on this machine; run explicitly:
    /// `cargo test --release --lib llm::generate::tests::measure_speed -- --ignored --nocapture`
    #[test]
    #[ignore = "measurement, not a check"]
    fn measure_speed() {
        let text = "Large language models are trained on large corpora of text. ".repeat(60);
        for file in [SMOLLM2, QWEN25] {
            let Some(path) = test_model(file) else {
                continue;
            };
            let t = Instant::now();
            let engine = Engine::load(
                &path,
                &LoadOptions {
                    device: DeviceChoice::Cpu,
                    context: None,
                    kv_cache: Default::default(),
                },
            )
            .unwrap();
            let load = t.elapsed().as_secs_f64();
            let mut ids = engine.tokenizer().encode(&text).unwrap();
            ids.truncate(500);
            let mut s = engine.new_session().unwrap();
            s.feed(&ids).unwrap();
            let g = generate(
                &mut s,
                &mut greedy(),
                &GenerateOptions {
                    stop_at_eos: false,
                    ..opts(32)
                },
                &mut |_| {},
            )
            .unwrap();
            println!(
                "{file}: load {load:.2}s, prefill {} tok at {:.1} tok/s, decode {} tok at {:.1} tok/s (threads {})",
                g.prefill_tokens,
                g.prefill_tokens_per_sec(),
                g.tokens.len(),
                g.decode_tokens_per_sec(),
                candle_core::utils::get_num_threads()
            );
        }
    }
}
