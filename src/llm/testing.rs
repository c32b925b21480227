//! Tiny random-weight GGUF models built in code, for tests and benchmarks only.
//!
//! [`write_tiny_model`] writes a complete `llama`, `qwen2`, `qwen3` or `gemma3` GGUF file of a few hundred
//! kilobytes that [`Engine::load`](super::Engine::load) accepts like a downloaded model: the
//! tensor names and metadata keys candle-transformers reads, a GPT-2 style byte-level BPE
//! vocabulary with merges learned from a small built-in English text, the ChatML control tokens
//! and a ChatML chat template. The whole digest pipeline can then run end to end in well under a
//! second, with no model download.
//!
//! The weights are random (a seeded xorshift generator, so one spec always gives the same file)
//! and the text the model writes is nonsense, but it is shaped to be convenient:
//!
//! - the logits are spread out (roughly unit-variance hidden states, a scaled output
//!   projection), so sampling at a temperature gives varied tokens;
//! - only printable ASCII bytes, `\n` and merged tokens can win: control tokens (`<|im_end|>`
//!   included), non-ASCII bytes and padding tokens get a logit far below the rest, so generated
//!   text is readable ASCII and a generation runs to its token budget or a stop string instead
//!   of ending at once. That works through one residual channel (dimension 0) that the
//!   embedding sets to a positive constant and no layer writes, so after the final norm it is
//!   always positive, and those tokens' output rows weigh it negatively.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// The model code a tiny model is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TinyArch {
    /// `general.architecture = llama` (SmolLM2-like; tokenizer pre-split `smollm`).
    Llama,
    /// `general.architecture = qwen2`, with Q/K/V biases (tokenizer pre-split `qwen2`).
    Qwen2,
    /// `general.architecture = qwen3`: per-head Q/K norms, no biases (pre-split `qwen2`).
    Qwen3,
    /// `general.architecture = gemma3`: Q/K norms, post-attention and post-feed-forward
    /// norms, GELU, scaled embeddings, a sliding window of [`GEMMA3_TINY_WINDOW`] positions on
    /// even layers (odd layers are global). Tokenizer as for `qwen3`.
    Gemma3,
}

/// The sliding window of tiny `gemma3` models: short, so a few tokens exercise it.
pub const GEMMA3_TINY_WINDOW: usize = 4;

impl TinyArch {
    /// Every architecture a tiny model can be written for.
    pub const ALL: [TinyArch; 4] = [
        TinyArch::Llama,
        TinyArch::Qwen2,
        TinyArch::Qwen3,
        TinyArch::Gemma3,
    ];

    /// The `general.architecture` value.
    pub fn as_str(self) -> &'static str {
        match self {
            TinyArch::Llama => "llama",
            TinyArch::Qwen2 => "qwen2",
            TinyArch::Qwen3 => "qwen3",
            TinyArch::Gemma3 => "gemma3",
        }
    }
}

/// The shape of a tiny model. [`Default`] is a 2-layer `llama` with 64-wide embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyModelSpec {
    pub architecture: TinyArch,
    /// Total vocabulary size, at least [`TinyModelSpec::MIN_VOCAB`]: the 3 ChatML control
    /// tokens, the 256 byte tokens, then merged tokens learned from the built-in text until
    /// the text offers no pair seen twice, then unused `<|reserved_N|>` padding.
    pub vocab_size: usize,
    /// `{arch}.embedding_length`; a multiple of the weight type's block size (32, or 256 for
    /// the K-quants).
    pub embedding: usize,
    /// `{arch}.feed_forward_length`; a multiple of the block size as well.
    pub feed_forward: usize,
    /// `{arch}.block_count`.
    pub layers: usize,
    /// `{arch}.attention.head_count`; must divide `embedding`, with an even head size.
    pub heads: usize,
    /// `{arch}.attention.head_count_kv`; must divide `heads`.
    pub kv_heads: usize,
    /// `{arch}.attention.key_length` (and value length): the head size, when it is not
    /// `embedding / heads` (Qwen3 and Gemma 3 allow that). Must be even.
    pub head_dim: Option<usize>,
    /// `{arch}.context_length` (the engine caps `llama` at 4096, as candle does).
    pub context_length: usize,
    /// How the matrices are stored: `F32`, `F16`, `Q4_0`, `Q4_1`, `Q5_0`, `Q5_1`, `Q8_0` or a
    /// K-quant (`Q2K`..`Q6K`). Norm weights and biases are always `F32`, as in real files.
    pub weight_type: GgmlDType,
    /// Seed of the weight generator.
    pub seed: u64,
}

impl TinyModelSpec {
    /// The smallest vocabulary: 3 control tokens and 256 byte tokens.
    pub const MIN_VOCAB: usize = SPECIAL_TOKENS.len() + 256;

    /// The default spec for `architecture`.
    pub fn new(architecture: TinyArch) -> TinyModelSpec {
        TinyModelSpec {
            architecture,
            ..TinyModelSpec::default()
        }
    }
}

impl Default for TinyModelSpec {
    fn default() -> TinyModelSpec {
        TinyModelSpec {
            architecture: TinyArch::Llama,
            vocab_size: 384,
            embedding: 64,
            feed_forward: 128,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: None,
            context_length: 4096,
            weight_type: GgmlDType::Q8_0,
            seed: 0x7e57_5eed,
        }
    }
}

/// The tiny models whose llama.cpp logits are committed in `tests/golden/logits/`, by file
/// stem: every architecture in F32 (exact arithmetic) and Q8_0 (quantized matmul), with a head
/// size other than embedding / heads where the architecture allows one; then one model per
/// other weight format the real models use (Q4_1, Q5_0, Q4_K, Q6_K), 256 wide so that the
/// K-quants' 256-value blocks fit.
pub fn golden_specs() -> Vec<(String, TinyModelSpec)> {
    let mut specs = Vec::new();
    for arch in TinyArch::ALL {
        for (weight_type, tag) in [(GgmlDType::F32, "f32"), (GgmlDType::Q8_0, "q8_0")] {
            let mut spec = TinyModelSpec::new(arch);
            spec.weight_type = weight_type;
            if matches!(arch, TinyArch::Qwen3 | TinyArch::Gemma3) {
                spec.head_dim = Some(32);
            }
            specs.push((format!("tiny-{}-{tag}", arch.as_str()), spec));
        }
    }
    for (arch, weight_type, tag) in [
        (TinyArch::Llama, GgmlDType::Q4_1, "q4_1"),
        (TinyArch::Llama, GgmlDType::Q4K, "q4_k"),
        (TinyArch::Qwen2, GgmlDType::Q6K, "q6_k"),
        (TinyArch::Gemma3, GgmlDType::Q5_0, "q5_0"),
        (TinyArch::Qwen3, GgmlDType::Q4K, "q4_k"),
    ] {
        let mut spec = TinyModelSpec::new(arch);
        spec.weight_type = weight_type;
        spec.embedding = 256;
        spec.feed_forward = 512;
        specs.push((format!("tiny-{}-{tag}", arch.as_str()), spec));
    }
    specs
}

/// Why a tiny model could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TinyModelError {
    /// The spec describes a model the loader would refuse or the weight type cannot store.
    #[error("invalid tiny model spec: {0}")]
    Spec(String),
    /// Building or quantizing one tensor failed.
    #[error("cannot build tiny model tensor `{name}`: {source}")]
    Tensor {
        name: String,
        #[source]
        source: candle_core::Error,
    },
    /// Creating or writing the file failed.
    #[error("cannot write tiny model {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// candle's GGUF writer failed.
    #[error("cannot write tiny model {path}: {source}")]
    Gguf {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
}

/// Writes the tiny model described by `spec` to `path` (created or replaced).
pub fn write_tiny_model(path: &Path, spec: &TinyModelSpec) -> Result<(), TinyModelError> {
    validate(spec)?;
    let vocab = build_vocab(spec.vocab_size);
    let metadata = build_metadata(spec, &vocab);
    let tensors = build_tensors(spec, &vocab)?;

    let io_err = |source| TinyModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io_err)?;
    let mut writer = BufWriter::new(file);
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    gguf_file::write(&mut writer, &md, &ts).map_err(|source| TinyModelError::Gguf {
        path: path.to_path_buf(),
        source,
    })?;
    writer.flush().map_err(io_err)?;
    Ok(())
}

/// The ChatML control tokens, at ids 0, 1, 2 (the SmolLM2 layout).
const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const BOS_ID: u32 = 0;
const EOS_ID: u32 = 2;

/// The classic ChatML template (no default system message).
const CHAT_TEMPLATE: &str = "{% for message in messages %}\
{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Text the merges are learned from: research-paper English, so that words a digest uses
/// become one or two tokens, as with a real vocabulary.
const CORPUS: &str = "This paper presents a new method for training language models on \
scientific text. We propose a simple approach that improves the accuracy of the model on \
several benchmarks, and we show that the method scales with the size of the training data. \
The main problem we study is how to summarize a research paper for a reader who has little \
time. Previous work has used large models that are expensive to run; in contrast, our method \
runs on a single machine. We evaluate the approach on three data sets and report the results \
in the tables below. Our experiments show that the proposed model reaches a higher score than \
the baseline in most settings, while the training time is lower. The results also show that \
the quality of the summary depends on the length of the input and on the number of examples \
used for training. We discuss the limitations of this study and the directions for future \
work. The authors thank the reviewers for their comments. In this section we describe the \
data, the model and the evaluation. The data consists of papers from the arXiv repository, \
with the abstract and the full text of each paper. The model is a transformer with attention \
layers and a feed forward network in each layer. The evaluation compares the generated \
summary with the reference summary written by the authors. We find that the model learns to \
select the most important sentences, and that it can also write new sentences that state \
the contribution of the paper. The method is general and can be applied to other tasks, such \
as question answering and the generation of titles. The code and the data will be released \
so that other researchers can reproduce the experiments. Related work includes methods for \
text summarization, information extraction and the analysis of citations between papers. \
Our contribution is a practical system that produces a daily digest of new papers, with the \
main problem, the proposed method, the results and the limitations of each paper. The \
system is evaluated by the time it takes and by the opinion of the readers, who found the \
digest useful for their research.";

/// A built vocabulary: token texts, their llama.cpp token types, the merges (`"a b"`), and
/// which tokens the model may produce.
struct Vocab {
    tokens: Vec<String>,
    types: Vec<i32>,
    merges: Vec<String>,
    allowed: Vec<bool>,
}

/// llama.cpp token types.
const TYPE_NORMAL: i32 = 1;
const TYPE_CONTROL: i32 = 3;
const TYPE_UNUSED: i32 = 5;

fn validate(spec: &TinyModelSpec) -> Result<(), TinyModelError> {
    let bad = |msg: String| Err(TinyModelError::Spec(msg));
    if spec.vocab_size < TinyModelSpec::MIN_VOCAB || spec.vocab_size > 1 << 20 {
        return bad(format!(
            "vocab_size {} is outside {}..={}",
            spec.vocab_size,
            TinyModelSpec::MIN_VOCAB,
            1 << 20
        ));
    }
    let dims = [
        spec.embedding,
        spec.feed_forward,
        spec.layers,
        spec.heads,
        spec.context_length,
    ];
    if dims.iter().any(|&n| u32::try_from(n).is_err()) {
        return bad(format!("{dims:?}: GGUF stores these as 32-bit values"));
    }
    if spec.layers == 0 || spec.context_length == 0 || spec.feed_forward == 0 {
        return bad(format!(
            "layers ({}), context_length ({}) and feed_forward ({}) must be positive",
            spec.layers, spec.context_length, spec.feed_forward
        ));
    }
    if spec.heads == 0
        || spec.kv_heads == 0
        || !spec.heads.is_multiple_of(spec.kv_heads)
        || (spec.head_dim.is_none() && !spec.embedding.is_multiple_of(spec.heads))
        || !head_dim(spec).is_multiple_of(2)
        || head_dim(spec) == 0
        || spec.embedding < 2
    {
        return bad(format!(
            "{} heads, {} KV heads and embedding {} do not fit: heads must divide the \
             embedding into an even head size, and KV heads must divide heads",
            spec.heads, spec.kv_heads, spec.embedding
        ));
    }
    let block = match spec.weight_type {
        GgmlDType::F32
        | GgmlDType::F16
        | GgmlDType::Q4_0
        | GgmlDType::Q4_1
        | GgmlDType::Q5_0
        | GgmlDType::Q5_1
        | GgmlDType::Q8_0
        | GgmlDType::Q2K
        | GgmlDType::Q3K
        | GgmlDType::Q4K
        | GgmlDType::Q5K
        | GgmlDType::Q6K => spec.weight_type.block_size(),
        other => {
            return bad(format!(
                "weight type {other:?} is not used for model weights"
            ));
        }
    };
    if !spec.embedding.is_multiple_of(block) || !spec.feed_forward.is_multiple_of(block) {
        return bad(format!(
            "{:?} stores rows in blocks of {block}: embedding {} and feed_forward {} must be \
             multiples of it",
            spec.weight_type, spec.embedding, spec.feed_forward
        ));
    }
    Ok(())
}

/// The head size `spec` describes.
fn head_dim(spec: &TinyModelSpec) -> usize {
    spec.head_dim.unwrap_or(spec.embedding / spec.heads.max(1))
}

/// GPT-2's byte-to-character table: printable bytes stand for themselves, the others are
/// shifted to code points from 256 up (so a space is `Ġ`, a newline `Ċ`).
fn byte_symbols() -> Vec<char> {
    let mut shifted = 0u32;
    (0..=255u8)
        .map(|b| {
            if matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF) {
                char::from(b)
            } else {
                let c = char::from_u32(256 + shifted).unwrap_or(char::REPLACEMENT_CHARACTER);
                shifted += 1;
                c
            }
        })
        .collect()
}

fn build_vocab(vocab_size: usize) -> Vocab {
    let symbols = byte_symbols();
    let mut tokens: Vec<String> = SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
    let mut types = vec![TYPE_CONTROL; SPECIAL_TOKENS.len()];
    let mut allowed = vec![false; SPECIAL_TOKENS.len()];
    for (b, ch) in symbols.iter().enumerate() {
        tokens.push(ch.to_string());
        types.push(TYPE_NORMAL);
        allowed.push(b == usize::from(b'\n') || (0x20..0x7f).contains(&b));
    }
    let room = vocab_size.saturating_sub(tokens.len());
    let (merges, merged) = learn_merges(&symbols, room);
    for text in merged {
        tokens.push(text);
        types.push(TYPE_NORMAL);
        allowed.push(true);
    }
    let mut reserved = 0;
    while tokens.len() < vocab_size {
        tokens.push(format!("<|reserved_{reserved}|>"));
        types.push(TYPE_UNUSED);
        allowed.push(false);
        reserved += 1;
    }
    Vocab {
        tokens,
        types,
        merges,
        allowed,
    }
}

/// Byte-pair training on [`CORPUS`]: words are runs of ASCII letters with their leading space
/// (the piece both the `smollm` and `qwen2` pre-splits produce); the most frequent adjacent
/// pair is merged (ties broken by text, so the result is fixed) until `room` new tokens exist
/// or no pair occurs twice. Returns the merges in rank order and the new tokens.
fn learn_merges(symbols: &[char], room: usize) -> (Vec<String>, Vec<String>) {
    let mut word_counts: BTreeMap<String, usize> = BTreeMap::new();
    let bytes = CORPUS.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i] == b' ' && bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
            i += 1;
        }
        if bytes[i].is_ascii_alphabetic() {
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            *word_counts.entry(CORPUS[start..i].to_string()).or_default() += 1;
        } else {
            i += 1;
        }
    }
    let mut words: Vec<(Vec<String>, usize)> = word_counts
        .into_iter()
        .map(|(w, n)| {
            let syms = w
                .bytes()
                .map(|b| symbols[usize::from(b)].to_string())
                .collect();
            (syms, n)
        })
        .collect();

    let mut merges = Vec::new();
    let mut merged: Vec<String> = Vec::new();
    while merged.len() < room {
        let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
        for (syms, n) in &words {
            for w in syms.windows(2) {
                *pairs.entry((w[0].as_str(), w[1].as_str())).or_default() += n;
            }
        }
        let best = pairs
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)));
        let Some(((left, right), count)) = best else {
            break;
        };
        if count < 2 {
            break;
        }
        let (left, right) = (left.to_string(), right.to_string());
        let joined = format!("{left}{right}");
        for (syms, _) in &mut words {
            let mut out = Vec::with_capacity(syms.len());
            let mut k = 0;
            while k < syms.len() {
                if k + 1 < syms.len() && syms[k] == left && syms[k + 1] == right {
                    out.push(joined.clone());
                    k += 2;
                } else {
                    out.push(std::mem::take(&mut syms[k]));
                    k += 1;
                }
            }
            *syms = out;
        }
        merges.push(format!("{left} {right}"));
        if !merged.contains(&joined) {
            merged.push(joined);
        }
    }
    (merges, merged)
}

fn build_metadata(spec: &TinyModelSpec, vocab: &Vocab) -> Vec<(String, Value)> {
    let u32v = |n: usize| Value::U32(u32::try_from(n).unwrap_or(u32::MAX));
    let strings =
        |items: &[String]| Value::Array(items.iter().cloned().map(Value::String).collect());
    let arch = spec.architecture.as_str();
    let (pre, rms_eps, rope_base) = match spec.architecture {
        TinyArch::Llama => ("smollm", 1e-5f32, 10_000f32),
        TinyArch::Qwen2 | TinyArch::Qwen3 | TinyArch::Gemma3 => ("qwen2", 1e-6f32, 1_000_000f32),
    };
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.name".into(), Value::String(format!("tiny-{arch}"))),
    ];
    if let Some(ft) = file_type(spec.weight_type) {
        md.push(("general.file_type".into(), Value::U32(ft)));
    }
    let mut arch_keys: Vec<(&str, Value)> = vec![
        ("context_length", u32v(spec.context_length)),
        ("embedding_length", u32v(spec.embedding)),
        ("feed_forward_length", u32v(spec.feed_forward)),
        ("block_count", u32v(spec.layers)),
        ("attention.head_count", u32v(spec.heads)),
        ("attention.head_count_kv", u32v(spec.kv_heads)),
        ("attention.layer_norm_rms_epsilon", Value::F32(rms_eps)),
        ("rope.dimension_count", u32v(head_dim(spec))),
        ("rope.freq_base", Value::F32(rope_base)),
    ];
    if spec.head_dim.is_some() {
        arch_keys.push(("attention.key_length", u32v(head_dim(spec))));
        arch_keys.push(("attention.value_length", u32v(head_dim(spec))));
    }
    if spec.architecture == TinyArch::Gemma3 {
        arch_keys.push(("attention.sliding_window", u32v(GEMMA3_TINY_WINDOW)));
        arch_keys.push(("attention.sliding_window_pattern", Value::U32(2)));
    }
    for (key, value) in arch_keys {
        md.push((format!("{arch}.{key}"), value));
    }
    let tokenizer: [(&str, Value); 10] = [
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String(pre.into())),
        ("tokenizer.ggml.tokens", strings(&vocab.tokens)),
        (
            "tokenizer.ggml.token_type",
            Value::Array(vocab.types.iter().map(|&t| Value::I32(t)).collect()),
        ),
        ("tokenizer.ggml.merges", strings(&vocab.merges)),
        ("tokenizer.ggml.bos_token_id", Value::U32(BOS_ID)),
        ("tokenizer.ggml.eos_token_id", Value::U32(EOS_ID)),
        ("tokenizer.ggml.padding_token_id", Value::U32(BOS_ID)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
        (
            "tokenizer.chat_template",
            Value::String(CHAT_TEMPLATE.into()),
        ),
    ];
    md.extend(tokenizer.into_iter().map(|(k, v)| (k.to_string(), v)));
    md
}

/// llama.cpp's `general.file_type` for a file whose matrices are all of one type.
fn file_type(dtype: GgmlDType) -> Option<u32> {
    Some(match dtype {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q8_0 => 7,
        GgmlDType::Q5_0 => 8,
        GgmlDType::Q5_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 14,
        GgmlDType::Q5K => 16,
        GgmlDType::Q6K => 18,
        _ => return None,
    })
}

/// The residual channel that carries the constant used to push disallowed tokens down.
const BIAS_CHANNEL: usize = 0;
/// Its value in every token embedding.
const BIAS_VALUE: f32 = 2.0;
/// How strongly a disallowed token's output row weighs the channel (logit about -10 to -25).
const DISALLOWED_WEIGHT: f32 = -24.0;
/// Standard deviation of the allowed tokens' logits, times sqrt(embedding).
const LOGIT_SCALE: f32 = 3.0;

fn build_tensors(
    spec: &TinyModelSpec,
    vocab: &Vocab,
) -> Result<Vec<(String, QTensor)>, TinyModelError> {
    let mut rng = XorShift::new(spec.seed);
    let d = spec.embedding;
    let f = spec.feed_forward;
    let v = vocab.tokens.len();
    let hd = head_dim(spec);
    let q_width = spec.heads * hd;
    let kv = spec.kv_heads * hd;
    let arch = spec.architecture;
    let inv_sqrt = |n: usize| 1.0 / (n as f32).sqrt();
    let mut out = Vec::with_capacity(3 + spec.layers * 12);

    let mut embd = rng.matrix(v, d, 1.0);
    for row in embd.chunks_mut(d) {
        row[BIAS_CHANNEL] = BIAS_VALUE;
    }
    out.push(matrix("token_embd.weight", embd, v, d, spec.weight_type)?);
    out.push(vector("output_norm.weight", vec![1.0; d])?);
    let mut output = rng.matrix(v, d, LOGIT_SCALE * inv_sqrt(d));
    for (row, &allowed) in output.chunks_mut(d).zip(&vocab.allowed) {
        if allowed {
            row[BIAS_CHANNEL] = 0.0;
        } else {
            row.fill(0.0);
            row[BIAS_CHANNEL] = DISALLOWED_WEIGHT;
        }
    }
    out.push(matrix("output.weight", output, v, d, spec.weight_type)?);

    for layer in 0..spec.layers {
        let name = |part: &str| format!("blk.{layer}.{part}");
        let wt = spec.weight_type;
        out.push(vector(&name("attn_norm.weight"), vec![1.0; d])?);
        out.push(matrix(
            &name("attn_q.weight"),
            rng.matrix(q_width, d, inv_sqrt(d)),
            q_width,
            d,
            wt,
        )?);
        out.push(matrix(
            &name("attn_k.weight"),
            rng.matrix(kv, d, inv_sqrt(d)),
            kv,
            d,
            wt,
        )?);
        out.push(matrix(
            &name("attn_v.weight"),
            rng.matrix(kv, d, inv_sqrt(d)),
            kv,
            d,
            wt,
        )?);
        if arch == TinyArch::Qwen2 {
            out.push(vector(&name("attn_q.bias"), rng.matrix(1, q_width, 0.1))?);
            out.push(vector(&name("attn_k.bias"), rng.matrix(1, kv, 0.1))?);
            out.push(vector(&name("attn_v.bias"), rng.matrix(1, kv, 0.1))?);
        }
        if matches!(arch, TinyArch::Qwen3 | TinyArch::Gemma3) {
            out.push(vector(&name("attn_q_norm.weight"), rng.around_one(hd))?);
            out.push(vector(&name("attn_k_norm.weight"), rng.around_one(hd))?);
        }
        // Output projections never write the bias channel, so it stays constant.
        let mut wo = rng.matrix(d, q_width, inv_sqrt(q_width));
        wo[BIAS_CHANNEL * q_width..(BIAS_CHANNEL + 1) * q_width].fill(0.0);
        out.push(matrix(&name("attn_output.weight"), wo, d, q_width, wt)?);
        if arch == TinyArch::Gemma3 {
            out.push(vector(
                &name("post_attention_norm.weight"),
                rng.around_one(d),
            )?);
            out.push(vector(&name("post_ffw_norm.weight"), rng.around_one(d))?);
        }
        out.push(vector(&name("ffn_norm.weight"), vec![1.0; d])?);
        out.push(matrix(
            &name("ffn_gate.weight"),
            rng.matrix(f, d, inv_sqrt(d)),
            f,
            d,
            wt,
        )?);
        out.push(matrix(
            &name("ffn_up.weight"),
            rng.matrix(f, d, inv_sqrt(d)),
            f,
            d,
            wt,
        )?);
        let mut down = rng.matrix(d, f, inv_sqrt(f));
        down[BIAS_CHANNEL * f..(BIAS_CHANNEL + 1) * f].fill(0.0);
        out.push(matrix(&name("ffn_down.weight"), down, d, f, wt)?);
    }
    Ok(out)
}

/// A `(rows, cols)` matrix in candle's order (GGUF stores the dimensions reversed).
fn matrix(
    name: &str,
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    dtype: GgmlDType,
) -> Result<(String, QTensor), TinyModelError> {
    let err = |source| TinyModelError::Tensor {
        name: name.to_string(),
        source,
    };
    let t = Tensor::from_vec(data, (rows, cols), &Device::Cpu).map_err(err)?;
    let q = QTensor::quantize(&t, dtype).map_err(err)?;
    Ok((name.to_string(), q))
}

/// A 1-D F32 tensor (norm weights, biases).
fn vector(name: &str, data: Vec<f32>) -> Result<(String, QTensor), TinyModelError> {
    let err = |source| TinyModelError::Tensor {
        name: name.to_string(),
        source,
    };
    let n = data.len();
    let t = Tensor::from_vec(data, n, &Device::Cpu).map_err(err)?;
    let q = QTensor::quantize(&t, GgmlDType::F32).map_err(err)?;
    Ok((name.to_string(), q))
}

/// xorshift64* seeded through splitmix64 (any seed, 0 included, gives a good stream).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        XorShift(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// `n` norm weights, uniform in [0.8, 1.2).
    fn around_one(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| 1.0 + 0.2 * self.uniform()).collect()
    }

    /// `rows * cols` values, uniform with standard deviation `std`.
    fn matrix(&mut self, rows: usize, cols: usize, std: f32) -> Vec<f32> {
        let scale = std * 3f32.sqrt();
        (0..rows * cols).map(|_| self.uniform() * scale).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{
        ChatMessage, DeviceChoice, Engine, GenerateOptions, LoadOptions, Sampler, SamplingParams,
        StopReason, TokenMask, generate, generate_masked,
    };
    use std::time::Instant;

    fn cpu() -> LoadOptions {
        LoadOptions {
            device: DeviceChoice::Cpu,
            context: None,
            kv_cache: Default::default(),
        }
    }

    fn write_and_load(spec: &TinyModelSpec) -> (tempfile::TempDir, PathBuf, Engine, f64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join(format!("tiny-{}.gguf", spec.architecture.as_str()));
        let started = Instant::now();
        write_tiny_model(&path, spec).unwrap();
        let engine = Engine::load(&path, &cpu()).unwrap();
        let secs = started.elapsed().as_secs_f64();
        (dir, path, engine, secs)
    }

    fn no_eos(max_tokens: usize) -> GenerateOptions {
        GenerateOptions {
            max_tokens,
            stop_at_eos: false,
            stop_strings: Vec::new(),
        }
    }

    fn greedy() -> Sampler {
        Sampler::new(&SamplingParams::default())
    }

    #[test]
    fn both_architectures_load_chat_and_generate() {
        for arch in TinyArch::ALL {
            let spec = TinyModelSpec::new(arch);
            let (_dir, path, engine, secs) = write_and_load(&spec);
            let size = std::fs::metadata(&path).unwrap().len();
            eprintln!("{arch:?}: {size} bytes, written and loaded in {secs:.3}s");
            assert!(size < 2_000_000, "{size} bytes");

            let info = engine.info();
            assert_eq!(info.architecture, arch.as_str());
            assert_eq!(info.vocab_size, Some(spec.vocab_size));
            assert_eq!(info.quantization.as_deref(), Some("Q8_0"));
            assert_eq!(engine.context_length(), 4096);
            assert!(!engine.chat().is_fallback());
            let tok = engine.tokenizer();
            assert_eq!(tok.token_id("<|im_end|>"), Some(EOS_ID));
            assert!(tok.is_eog(EOS_ID));

            let messages = [
                ChatMessage::system("You summarize research papers."),
                ChatMessage::user("Summarize the main problem of this paper."),
            ];
            let ids = engine.encode_chat(&messages, true).unwrap();
            let im_start = tok.token_id("<|im_start|>").unwrap();
            assert_eq!(ids.iter().filter(|&&t| t == im_start).count(), 3);
            assert_eq!(ids.iter().filter(|&&t| t == EOS_ID).count(), 2);

            let mut session = engine.new_session().unwrap();
            session.feed(&ids).unwrap();
            let logits = session.logits().unwrap();
            assert_eq!(logits.len(), spec.vocab_size);
            let (lo, hi) = logits
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            assert!(hi - lo > 5.0, "logits are flat: {lo}..{hi}");

            let mut fork = session.fork().unwrap();
            let mut streamed = String::new();
            let g = generate(&mut session, &mut greedy(), &no_eos(20), &mut |t| {
                streamed.push_str(t)
            })
            .unwrap();
            assert_eq!(g.tokens.len(), 20);
            assert_eq!(g.stop, StopReason::MaxTokens);
            assert_eq!(streamed, g.text);
            assert_eq!(tok.decode(&g.tokens).unwrap(), g.text);
            assert!(!g.text.is_empty());
            // Only printable ASCII, newlines and merged tokens can win.
            assert!(
                g.text
                    .chars()
                    .all(|c| c == '\n' || (' '..='~').contains(&c)),
                "{:?}",
                g.text
            );
            eprintln!("{arch:?} greedy: {:?}", g.text);

            let gf = generate(&mut fork, &mut greedy(), &no_eos(20), &mut |_| {}).unwrap();
            assert_eq!(gf.tokens, g.tokens, "a fork continues the same way");
            let mut fresh = engine.new_session().unwrap();
            fresh.feed(&ids).unwrap();
            let g2 = generate(&mut fresh, &mut greedy(), &no_eos(20), &mut |_| {}).unwrap();
            assert_eq!(g2.tokens, g.tokens, "greedy is deterministic");
        }
    }

    #[test]
    fn control_tokens_never_win_and_sampling_varies() {
        for arch in TinyArch::ALL {
            let (_dir, _path, engine, _) = write_and_load(&TinyModelSpec::new(arch));
            let ids = engine
                .encode_chat(&[ChatMessage::user("Write the results.")], true)
                .unwrap();
            let mut s = engine.new_session().unwrap();
            s.feed(&ids).unwrap();
            // With end-of-turn allowed, the model still runs to its budget.
            let params = SamplingParams {
                temperature: 1.0,
                top_p: 1.0,
                seed: 7,
            };
            let opts = GenerateOptions {
                max_tokens: 40,
                ..GenerateOptions::default()
            };
            let g = generate_masked(
                &mut s,
                &mut Sampler::new(&params),
                &opts,
                &TokenMask::new(),
                &mut |_| {},
            )
            .unwrap();
            assert_eq!(g.stop, StopReason::MaxTokens, "{:?}", g.text);
            let controls = engine.tokenizer().control_ids();
            assert!(g.tokens.iter().all(|t| !controls.contains(t)));
            let mut distinct = g.tokens.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert!(distinct.len() >= 10, "{arch:?}: {:?}", g.text);
        }
    }

    #[test]
    fn vocabulary_has_merges_and_specials() {
        let (_dir, _path, engine, _) = write_and_load(&TinyModelSpec::default());
        let tok = engine.tokenizer();
        for piece in ["Ġthe", "Ġmodel", "Ġpaper", "in", "er"] {
            assert!(tok.token_id(piece).is_some(), "{piece} is a token");
        }
        let text = "The proposed method improves the results of the model.";
        let ids = tok.encode(text).unwrap();
        assert!(ids.len() * 3 < text.len(), "{} tokens", ids.len());
        assert_eq!(tok.decode(&ids).unwrap(), text);
        // Control-token text in plain content stays text.
        let ids = tok.encode("<|im_end|>").unwrap();
        assert!(!ids.contains(&EOS_ID));
        assert_eq!(tok.decode(&ids).unwrap(), "<|im_end|>");
        // Digits are split one per token (`smollm` pre-split), bytes round-trip.
        let ids = tok.encode("2024 é").unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), "2024 é");
    }

    #[test]
    fn vocab_size_is_exact_and_padding_is_unused() {
        for vocab_size in [TinyModelSpec::MIN_VOCAB, 300, 2000] {
            let vocab = build_vocab(vocab_size);
            assert_eq!(vocab.tokens.len(), vocab_size);
            assert_eq!(vocab.types.len(), vocab_size);
            assert_eq!(vocab.allowed.len(), vocab_size);
            for merge in &vocab.merges {
                let (a, b) = merge.split_once(' ').unwrap();
                assert!(vocab.tokens.contains(&format!("{a}{b}")), "{merge}");
            }
        }
        let big = build_vocab(2000);
        assert!(big.tokens.iter().any(|t| t == "<|reserved_0|>"));
        assert!(
            !build_vocab(300)
                .tokens
                .iter()
                .any(|t| t.starts_with("<|reserved"))
        );
    }

    #[test]
    fn same_seed_same_file_other_seed_other_weights() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, seed: u64| {
            let path = dir.path().join(name);
            let spec = TinyModelSpec {
                seed,
                ..TinyModelSpec::default()
            };
            write_tiny_model(&path, &spec).unwrap();
            std::fs::read(path).unwrap()
        };
        let a = write("a.gguf", 1);
        assert_eq!(a, write("b.gguf", 1));
        let c = write("c.gguf", 2);
        assert_eq!(a.len(), c.len());
        assert_ne!(a, c);
    }

    #[test]
    fn weight_types_load_and_run() {
        let cases = [
            (GgmlDType::F32, 64, 128),
            (GgmlDType::F16, 64, 128),
            (GgmlDType::Q4_0, 64, 128),
            (GgmlDType::Q4_1, 64, 128),
            (GgmlDType::Q5_0, 64, 128),
            (GgmlDType::Q4K, 256, 256),
            (GgmlDType::Q6K, 256, 256),
        ];
        for arch in TinyArch::ALL {
            for (weight_type, embedding, feed_forward) in cases {
                let spec = TinyModelSpec {
                    architecture: arch,
                    weight_type,
                    embedding,
                    feed_forward,
                    layers: 1,
                    context_length: 512,
                    ..TinyModelSpec::default()
                };
                let (_dir, _path, engine, _) = write_and_load(&spec);
                assert_eq!(engine.context_length(), 512);
                let mut s = engine.new_session().unwrap();
                s.feed(&engine.tokenizer().encode("The method").unwrap())
                    .unwrap();
                let g = generate(&mut s, &mut greedy(), &no_eos(4), &mut |_| {}).unwrap();
                assert_eq!(g.tokens.len(), 4, "{arch:?} {weight_type:?}");
            }
        }
    }

    #[test]
    fn bad_specs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.gguf");
        let base = TinyModelSpec::default();
        let cases = [
            TinyModelSpec {
                vocab_size: 10,
                ..base.clone()
            },
            TinyModelSpec {
                heads: 3,
                ..base.clone()
            },
            TinyModelSpec {
                kv_heads: 3,
                ..base.clone()
            },
            TinyModelSpec {
                layers: 0,
                ..base.clone()
            },
            TinyModelSpec {
                context_length: usize::MAX,
                ..base.clone()
            },
            TinyModelSpec {
                embedding: 48,
                heads: 4,
                ..base.clone()
            },
            TinyModelSpec {
                weight_type: GgmlDType::Q4K,
                ..base.clone()
            },
            TinyModelSpec {
                weight_type: GgmlDType::Q8K,
                ..base.clone()
            },
        ];
        for spec in cases {
            let err = write_tiny_model(&path, &spec).unwrap_err();
            assert!(matches!(err, TinyModelError::Spec(_)), "{spec:?}: {err}");
        }
        assert!(!path.exists());
        let err = write_tiny_model(Path::new("/nonexistent/dir/m.gguf"), &base).unwrap_err();
        assert!(matches!(err, TinyModelError::Io { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/dir/m.gguf"), "{err}");
    }
}
