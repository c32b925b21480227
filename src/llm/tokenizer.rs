//! The tokenizer a GGUF file carries in its `tokenizer.ggml.*` metadata, rebuilt here without
//! any `tokenizer.json`, following the behaviour of llama.cpp's `llama-vocab.cpp`:
//!
//! - `gpt2` models: byte-level BPE. The pre-tokenizer regexes are chosen by
//!   `tokenizer.ggml.pre` (see [`SUPPORTED_PRE_TOKENIZERS`]: `smollm`, `qwen2`, `llama3`,
//!   `gpt-2`, `default`, `deepseek-llm` and a few relatives); an unknown value is an error
//!   rather than a guess. The merges run in the `tokenizers` crate's BPE model.
//! - Special tokens get llama.cpp's fix-ups: end-of-turn, end-of-generation and
//!   fill-in-the-middle tokens recognised by their text become control tokens, and the
//!   end-of-generation set is the one llama.cpp builds (so `--ignore-eos` bans the same tokens).
//! - `llama` models (SentencePiece, e.g. Gemma 3): score-ordered merges of adjacent symbols,
//!   spaces written as `▁`, and `<0xXX>` byte tokens for anything the vocabulary lacks.
//!
//! Special tokens are split out of the text before the BPE/SPM step, longest first. Plain
//! [`GgufTokenizer::encode`] recognises only user-defined tokens (as llama.cpp does with
//! `parse_special = false`), so control tokens such as `<|im_start|>` inside a paper stay text;
//! [`GgufTokenizer::encode_with_specials`] recognises control tokens too, for template
//! scaffolding.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{SplitDelimiterBehavior, Tokenizer};

use super::error::LlmError;
use super::gguf::GgufFile;

/// The kind of a vocabulary entry, from `tokenizer.ggml.token_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    /// Template scaffolding and stop tokens (`<|im_start|>`, `<eos>`, ...).
    Control,
    /// Added tokens that are always matched as a whole, even in plain text.
    UserDefined,
    Unused,
    /// `<0xXX>` byte fallback tokens of SentencePiece vocabularies.
    Byte,
    Undefined,
}

impl TokenType {
    fn from_gguf(v: i64) -> TokenType {
        match v {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }

    /// Tokens that the special-token partition looks for in text.
    fn is_special(self) -> bool {
        matches!(
            self,
            TokenType::Control | TokenType::UserDefined | TokenType::Unknown
        )
    }
}

/// Which tokenization algorithm the vocabulary uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabKind {
    /// `tokenizer.ggml.model = gpt2`: byte-level BPE.
    BytePairGpt2,
    /// `tokenizer.ggml.model = llama`: SentencePiece BPE with byte fallback.
    SentencePiece,
}

/// A tokenizer rebuilt from GGUF metadata.
pub struct GgufTokenizer {
    kind: VocabKind,
    pre: Option<String>,
    bpe: Option<Tokenizer>,
    tokens: Vec<String>,
    types: Vec<TokenType>,
    scores: Vec<f32>,
    token_to_id: HashMap<String, u32>,
    /// What each token decodes to, as bytes (a byte-level token may be part of a character).
    pieces: Vec<Vec<u8>>,
    /// Control, user-defined and unknown tokens, longest text first.
    specials: Vec<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    eog: Vec<u32>,
    add_bos: bool,
    add_space_prefix: bool,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("kind", &self.kind)
            .field("pre", &self.pre)
            .field("vocab_size", &self.tokens.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("eog", &self.eog)
            .field("add_bos", &self.add_bos)
            .finish()
    }
}

/// Token texts that end a generation wherever they appear in a vocabulary: llama.cpp's list
/// (`llama-vocab.cpp`). Such a token is also made a control token, so plain text never
/// produces it.
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "[e~[",
];

/// The texts llama.cpp recognises as end-of-turn (`eot`) and end-of-message (`eom`) tokens when
/// the metadata names none; the first one the vocabulary has is taken.
const END_OF_TURN_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "<end_of_utterance>",
];
const END_OF_MESSAGE_TEXTS: &[&str] = &["<|eom_id|>"];

/// Fill-in-the-middle tokens, by metadata key and by the texts llama.cpp recognises when the
/// key is absent (the first one the vocabulary has is taken). Each is made a control token;
/// the pad, repository and file-separator tokens also end a generation, as in llama.cpp.
const FIM_TOKENS: &[(&str, &[&str], bool)] = &[
    (
        "tokenizer.ggml.fim_pre_token_id",
        &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<\u{ff5c}fim\u{2581}begin\u{ff5c}>",
            "<PRE>",
            "\u{2581}<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        ],
        false,
    ),
    (
        "tokenizer.ggml.fim_suf_token_id",
        &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<\u{ff5c}fim\u{2581}hole\u{ff5c}>",
            "<SUF>",
            "\u{2581}<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        ],
        false,
    ),
    (
        "tokenizer.ggml.fim_mid_token_id",
        &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<\u{ff5c}fim\u{2581}end\u{ff5c}>",
            "<MID>",
            "\u{2581}<MID>",
            "<|code_middle|>",
            "<|middle|>",
        ],
        false,
    ),
    (
        "tokenizer.ggml.fim_pad_token_id",
        &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
        true,
    ),
    (
        "tokenizer.ggml.fim_rep_token_id",
        &[
            "<|fim_repo|>",
            "<|repo_name|>",
            "<fim-repo>",
            "<REPO>",
            "<reponame>",
        ],
        true,
    ),
    ("tokenizer.ggml.fim_sep_token_id", &["<|file_sep|>"], true),
];

/// The GPT-2 word split shared by several pre-tokenizers.
const GPT2_SPLIT: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Qwen2's split: ASCII-case-insensitive contractions, one digit per piece.
const QWEN2_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split: like Qwen2's but digits in runs of up to three.
const LLAMA3_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// DeepSeek LLM's letter class (Latin, Greek, Cyrillic, Armenian, Georgian, ... letters).
const DEEPSEEK_LETTERS: &str = "\\s?[A-Za-z\u{b5}\u{c0}-\u{d6}\u{d8}-\u{f6}\u{f8}-\u{1ba}\u{1bc}-\u{1bf}\u{1c4}-\u{293}\u{295}-\u{2af}\u{370}-\u{373}\u{376}\u{377}\u{37b}-\u{37d}\u{37f}\u{386}\u{388}-\u{38a}\u{38c}\u{38e}-\u{3a1}\u{3a3}-\u{3f5}\u{3f7}-\u{481}\u{48a}-\u{52f}\u{531}-\u{556}\u{10a0}-\u{10c5}\u{13a0}-\u{13f5}\u{13f8}-\u{13fd}\u{1c90}-\u{1cba}\u{1cbd}-\u{1cbf}\u{1d00}-\u{1d2b}\u{1d6b}-\u{1d77}\u{1d79}-\u{1d9a}\u{1e00}-\u{1f15}\u{1f18}-\u{1f1d}\u{1f20}-\u{1f45}\u{1f48}-\u{1f4d}\u{1f50}-\u{1f57}\u{1f59}\u{1f5b}\u{1f5d}\u{1f5f}-\u{1f7d}\u{1f80}-\u{1fb4}\u{1fb6}-\u{1fbc}\u{1fbe}\u{1fc2}-\u{1fc4}\u{1fc6}-\u{1fcc}\u{1fd0}-\u{1fd3}\u{1fd6}-\u{1fdb}\u{1fe0}-\u{1fec}\u{1ff2}-\u{1ff4}\u{1ff6}-\u{1ffc}\u{2102}\u{2107}\u{210a}-\u{2113}\u{2115}\u{2119}-\u{211d}\u{2124}\u{2126}\u{2128}\u{212a}-\u{212d}\u{212f}-\u{2134}\u{2139}\u{213c}-\u{213f}\u{2145}-\u{2149}\u{214e}\u{2183}\u{2184}\u{2c00}-\u{2c7b}\u{2c7e}-\u{2ce4}\u{2ceb}-\u{2cee}\u{2cf2}\u{2cf3}\u{a640}-\u{a66d}\u{a680}-\u{a69b}\u{a722}-\u{a76f}\u{a771}-\u{a787}\u{a78b}-\u{a78e}\u{ab70}-\u{abbf}\u{fb00}-\u{fb06}\u{fb13}-\u{fb17}\u{ff21}-\u{ff3a}\u{ff41}-\u{ff5a}\u{10400}-\u{1044f}\u{104b0}-\u{104d3}\u{104d8}-\u{104fb}\u{10c80}-\u{10cb2}\u{10cc0}-\u{10cf2}\u{118a0}-\u{118df}\u{1e900}-\u{1e943}]+";

/// How a `gpt2` vocabulary pre-tokenizes, per `tokenizer.ggml.pre`.
struct PreTokenizerSpec {
    /// Regexes applied in order; each splits every piece left by the previous one.
    regexes: Vec<&'static str>,
    /// Whether a whole piece that is itself a token skips the merges (llama3 family).
    ignore_merges: bool,
    /// The BOS default when the file does not say.
    add_bos_default: bool,
}

fn pre_tokenizer_spec(pre: &str) -> Option<PreTokenizerSpec> {
    let spec = |regexes: Vec<&'static str>, ignore_merges, add_bos_default| PreTokenizerSpec {
        regexes,
        ignore_merges,
        add_bos_default,
    };
    Some(match pre {
        // Digits are split one per piece before the GPT-2 pattern; no prefix space.
        // Digits one per piece before the GPT-2 split (llama.cpp's SMOLLM family).
        "smollm" | "starcoder" | "refact" | "command-r" => {
            spec(vec![r"\p{N}", GPT2_SPLIT], false, false)
        }
        "qwen2" | "deepseek-r1-qwen" => spec(vec![QWEN2_SPLIT], false, false),
        "llama3" | "llama-v3" | "llama-bpe" => spec(vec![LLAMA3_SPLIT], true, true),
        "gpt-2" | "mpt" | "olmo" | "phi-2" => spec(vec![GPT2_SPLIT], false, false),
        "falcon" => spec(
            vec![r"[\p{P}\$\+<=>\^~\|`]+", GPT2_SPLIT, r"[0-9][0-9][0-9]"],
            false,
            false,
        ),
        "deepseek-coder" => spec(
            vec![
                "[\r\n]",
                r"\s?\p{L}+",
                r"\s?\p{P}+",
                "[\u{4e00}-\u{9fa5}\u{0800}-\u{4e00}\u{ac00}-\u{d7ff}]+",
                r"\p{N}",
            ],
            false,
            false,
        ),
        "default" => spec(
            vec![
                r"[\p{P}\$\+<=>\^~\|]+",
                GPT2_SPLIT,
                r"\p{N}+",
                r"[0-9][0-9][0-9]",
            ],
            false,
            false,
        ),
        "deepseek-llm" => spec(
            vec![
                "[\r\n]",
                DEEPSEEK_LETTERS,
                "\\s?[!-/:-~\u{ff01}-\u{ff0f}\u{ff1a}-\u{ff5e}\u{2018}-\u{201f}\u{3000}-\u{3002}]+",
                r"\s+$",
                "[\u{4e00}-\u{9fa5}\u{0800}-\u{4e00}\u{ac00}-\u{d7ff}]+",
                r"\p{N}+",
            ],
            false,
            false,
        ),
        _ => return None,
    })
}

/// The `tokenizer.ggml.pre` values this tokenizer implements.
pub const SUPPORTED_PRE_TOKENIZERS: &[&str] = &[
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "qwen2",
    "deepseek-r1-qwen",
    "llama3",
    "llama-v3",
    "llama-bpe",
    "gpt-2",
    "mpt",
    "olmo",
    "phi-2",
    "falcon",
    "default",
    "deepseek-llm",
    "deepseek-coder",
];

/// A piece of input text after special tokens were split out.
enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

impl GgufTokenizer {
    /// Builds the tokenizer described by the file's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(gguf: &GgufFile) -> Result<GgufTokenizer, LlmError> {
        let path = gguf.path().display().to_string();
        let err = |msg: String| LlmError::Tokenizer(format!("{path}: {msg}"));
        let model = gguf
            .get_str("tokenizer.ggml.model")?
            .ok_or_else(|| err("metadata has no tokenizer.ggml.model".into()))?;
        let kind = match model {
            "gpt2" => VocabKind::BytePairGpt2,
            "llama" => VocabKind::SentencePiece,
            other => {
                return Err(err(format!(
                    "tokenizer model `{other}` is not supported (supported: gpt2, llama)"
                )));
            }
        };
        let tokens: Vec<String> = gguf
            .get_str_array("tokenizer.ggml.tokens")?
            .ok_or_else(|| err("metadata has no tokenizer.ggml.tokens".into()))?
            .into_iter()
            .map(str::to_string)
            .collect();
        if tokens.is_empty() || tokens.len() > u32::MAX as usize {
            return Err(err(format!("vocabulary has {} tokens", tokens.len())));
        }
        let n = tokens.len();
        let mut types = match gguf.get_i64_array("tokenizer.ggml.token_type")? {
            Some(t) if t.len() >= n => t[..n].iter().map(|&v| TokenType::from_gguf(v)).collect(),
            Some(t) => {
                return Err(err(format!(
                    "tokenizer.ggml.token_type has {} entries for {n} tokens",
                    t.len()
                )));
            }
            None => vec![TokenType::Normal; n],
        };
        let scores = match gguf.get_f32_array("tokenizer.ggml.scores")? {
            Some(s) if s.len() >= n => s[..n].to_vec(),
            Some(s) => {
                return Err(err(format!(
                    "tokenizer.ggml.scores has {} entries for {n} tokens",
                    s.len()
                )));
            }
            None if kind == VocabKind::SentencePiece => {
                return Err(err(
                    "a SentencePiece vocabulary needs tokenizer.ggml.scores".into(),
                ));
            }
            None => Vec::new(),
        };
        let mut token_to_id = HashMap::with_capacity(n);
        for (id, text) in tokens.iter().enumerate() {
            if let Some(prev) = token_to_id.insert(text.clone(), id as u32) {
                return Err(err(format!(
                    "duplicate token {text:?} in vocabulary (ids {prev} and {id})"
                )));
            }
        }

        let id_key = |key: &str| -> Result<Option<u32>, LlmError> {
            match gguf.get_u32(key)? {
                Some(id) if (id as usize) < n => Ok(Some(id)),
                Some(id) => {
                    tracing::warn!(%path, key, id, "special token id outside the vocabulary; ignored");
                    Ok(None)
                }
                None => Ok(None),
            }
        };
        let spm_default =
            |id: u32| (kind == VocabKind::SentencePiece && (id as usize) < n).then_some(id);
        let bos = id_key("tokenizer.ggml.bos_token_id")?.or_else(|| spm_default(1));
        let eos = id_key("tokenizer.ggml.eos_token_id")?.or_else(|| spm_default(2));
        // llama.cpp's special-token fix-ups, in its order: recognised end-of-turn and
        // fill-in-the-middle tokens become control tokens; then the end-of-generation set is
        // the tokens with a recognised text (made control too), the FIM pad/repo/separator
        // tokens, and the declared EOS, EOT and EOM.
        let first_present =
            |texts: &[&str]| texts.iter().find_map(|t| token_to_id.get(*t).copied());
        let make_control = |types: &mut Vec<TokenType>, id: u32| {
            if types[id as usize] != TokenType::Control {
                tracing::debug!(%path, id, text = %tokens[id as usize], "control-looking token not marked control; treating it as control");
                types[id as usize] = TokenType::Control;
            }
        };
        // A token named by the metadata is taken as it is; one found by its text becomes control.
        let declared_or_found = |types: &mut Vec<TokenType>,
                                 key: &str,
                                 texts: &[&str]|
         -> Result<Option<u32>, LlmError> {
            if let Some(id) = id_key(key)? {
                return Ok(Some(id));
            }
            let found = first_present(texts);
            if let Some(id) = found {
                make_control(types, id);
            }
            Ok(found)
        };
        let eot = declared_or_found(&mut types, "tokenizer.ggml.eot_token_id", END_OF_TURN_TEXTS)?;
        let eom = declared_or_found(
            &mut types,
            "tokenizer.ggml.eom_token_id",
            END_OF_MESSAGE_TEXTS,
        )?;
        let mut eog: Vec<u32> = Vec::new();
        for (key, texts, ends_generation) in FIM_TOKENS {
            if let Some(id) = declared_or_found(&mut types, key, texts)?
                && *ends_generation
            {
                eog.push(id);
            }
        }
        for text in END_OF_GENERATION_TEXTS {
            if let Some(&id) = token_to_id.get(*text) {
                eog.push(id);
                make_control(&mut types, id);
            }
        }
        eog.extend([eos, eot, eom].into_iter().flatten());
        // llama.cpp's exceptions: with `<|return|>` and `<|call|>` (or `<|calls|>` and
        // `<|flush|>`), `<|end|>` is an ordinary user-defined token; with `<|tool_response>` or
        // `<|plamo:eos|>`, `</s>` is an ordinary token.
        let in_eog =
            |eog: &[u32], text: &str| token_to_id.get(text).is_some_and(|id| eog.contains(id));
        if let Some(&end) = token_to_id.get("<|end|>")
            && in_eog(&eog, "<|end|>")
            && ((in_eog(&eog, "<|return|>")
                && (in_eog(&eog, "<|call|>") || in_eog(&eog, "<|calls|>")))
                || ((in_eog(&eog, "<|call|>") || in_eog(&eog, "<|calls|>"))
                    && in_eog(&eog, "<|flush|>")))
        {
            eog.retain(|&id| id != end);
            types[end as usize] = TokenType::UserDefined;
        }
        if let Some(&s_id) = token_to_id.get("</s>")
            && in_eog(&eog, "</s>")
            && (in_eog(&eog, "<|tool_response>") || in_eog(&eog, "<|plamo:eos|>"))
        {
            eog.retain(|&id| id != s_id);
            types[s_id as usize] = TokenType::Normal;
        }
        // gpt-oss: these scaffold tokens are always rendered and matched as text.
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(&id) = token_to_id.get(text) {
                types[id as usize] = TokenType::UserDefined;
            }
        }
        eog.sort_unstable();
        eog.dedup();

        let pre = gguf.get_str("tokenizer.ggml.pre")?.map(str::to_string);
        let (bpe, add_bos_default) = match kind {
            VocabKind::BytePairGpt2 => {
                let pre_name = match pre.as_deref() {
                    Some(p) => p,
                    None => {
                        tracing::warn!(%path, "no tokenizer.ggml.pre; using llama.cpp's `default` pre-tokenizer");
                        "default"
                    }
                };
                let spec = pre_tokenizer_spec(pre_name).ok_or_else(|| {
                    err(format!(
                        "pre-tokenizer `{pre_name}` is not supported (supported: {})",
                        SUPPORTED_PRE_TOKENIZERS.join(", ")
                    ))
                })?;
                let merges = gguf
                    .get_str_array("tokenizer.ggml.merges")?
                    .ok_or_else(|| err("a gpt2 vocabulary needs tokenizer.ggml.merges".into()))?;
                let tok = build_bpe(&tokens, &merges, &spec).map_err(err)?;
                (Some(tok), spec.add_bos_default)
            }
            VocabKind::SentencePiece => (None, true),
        };
        let add_bos = gguf
            .get_bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(add_bos_default);
        if add_bos && bos.is_none() {
            return Err(err(
                "tokenizer.ggml.add_bos_token is true but no BOS token is set".into(),
            ));
        }
        let add_space_prefix = gguf
            .get_bool("tokenizer.ggml.add_space_prefix")?
            .unwrap_or(kind == VocabKind::SentencePiece);

        let byte_decoder = byte_level_decoder();
        let pieces = tokens
            .iter()
            .zip(&types)
            .map(|(text, ty)| piece_bytes(kind, text, *ty, &byte_decoder))
            .collect();
        let mut specials: Vec<u32> = (0..n as u32)
            .filter(|&id| types[id as usize].is_special())
            .collect();
        // Longest first, so `<|im_start|>` wins over any shorter special inside it.
        specials.sort_by(|&a, &b| tokens[b as usize].len().cmp(&tokens[a as usize].len()));

        tracing::debug!(
            %path, model, pre = ?pre, vocab = n, specials = specials.len(), ?bos, ?eos, ?eog, add_bos,
            "tokenizer built"
        );
        Ok(GgufTokenizer {
            kind,
            pre,
            bpe,
            tokens,
            types,
            scores,
            token_to_id,
            pieces,
            specials,
            bos,
            eos,
            eog,
            add_bos,
            add_space_prefix,
        })
    }

    /// Tokenizes plain text: control-token strings in it stay text. No BOS is added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        self.encode_impl(text, false)
    }

    /// Tokenizes text in which control-token strings (`<|im_start|>`, ...) become their
    /// tokens: for template scaffolding only, never for untrusted text. No BOS is added.
    pub fn encode_with_specials(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        self.encode_impl(text, true)
    }

    /// Decodes tokens to text. Special tokens are rendered as their text; byte sequences that
    /// are not valid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String, LlmError> {
        let mut bytes = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            let piece = self.token_bytes(id)?;
            // SentencePiece text starts with the prefix space the encoder added; drop it.
            if i == 0 && self.add_space_prefix && piece.first() == Some(&b' ') {
                bytes.extend_from_slice(&piece[1..]);
            } else {
                bytes.extend_from_slice(piece);
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The text of one token (lossy when the token is only part of a UTF-8 character).
    pub fn token_to_piece(&self, id: u32) -> Result<String, LlmError> {
        Ok(String::from_utf8_lossy(self.token_bytes(id)?).into_owned())
    }

    /// The bytes one token decodes to.
    pub fn token_bytes(&self, id: u32) -> Result<&[u8], LlmError> {
        self.pieces
            .get(id as usize)
            .map(Vec::as_slice)
            .ok_or(LlmError::TokenOutOfRange {
                id,
                vocab_size: self.tokens.len(),
            })
    }

    /// The vocabulary entry of a token, as stored in the file (`Ġthe`, `▁the`, `<|im_end|>`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The id of the vocabulary entry with exactly this text.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    /// The kind of a token.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The BOS token, when the vocabulary has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The declared EOS token.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Whether prompts should start with BOS (`tokenizer.ggml.add_bos_token`, else the
    /// llama.cpp default for this vocabulary).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Every token that ends a generation: EOS plus end-of-turn tokens such as `<|im_end|>`,
    /// `<|endoftext|>`, `<end_of_turn>`, `<|eot_id|>`, sorted.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eog
    }

    /// Whether `id` ends a generation.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// All control tokens: callers may ban those that are not end-of-generation tokens.
    pub fn control_ids(&self) -> Vec<u32> {
        (0..self.tokens.len() as u32)
            .filter(|&id| self.types[id as usize] == TokenType::Control)
            .collect()
    }

    /// The tokenization algorithm.
    pub fn kind(&self) -> VocabKind {
        self.kind
    }

    /// `tokenizer.ggml.pre`, when present.
    pub fn pre(&self) -> Option<&str> {
        self.pre.as_deref()
    }

    fn encode_impl(&self, text: &str, parse_control: bool) -> Result<Vec<u32>, LlmError> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        let mut prev_special = true;
        for fragment in self.partition(text, parse_control) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(t) => {
                    match self.kind {
                        VocabKind::BytePairGpt2 => self.bpe_encode(t, &mut out)?,
                        VocabKind::SentencePiece => {
                            // The prefix space goes on the first text and on text that follows
                            // a special token.
                            let mut s = String::with_capacity(t.len() + 3);
                            if self.add_space_prefix && prev_special {
                                s.push(' ');
                            }
                            s.push_str(t);
                            self.spm_encode(&s.replace(' ', "\u{2581}"), &mut out)?;
                        }
                    }
                    prev_special = false;
                }
            }
        }
        Ok(out)
    }

    /// Splits special tokens out of `text`, longest token first (llama.cpp's
    /// `tokenizer_st_partition`). Control and unknown tokens only when `parse_control`.
    fn partition<'t>(&self, text: &'t str, parse_control: bool) -> Vec<Fragment<'t>> {
        let mut fragments = vec![Fragment::Text(text)];
        if text.is_empty() {
            return Vec::new();
        }
        for &id in &self.specials {
            let ty = self.types[id as usize];
            if !parse_control && matches!(ty, TokenType::Control | TokenType::Unknown) {
                continue;
            }
            let needle = self.tokens[id as usize].as_str();
            if needle.is_empty() {
                continue;
            }
            if !fragments
                .iter()
                .any(|f| matches!(f, Fragment::Text(t) if t.contains(needle)))
            {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                match fragment {
                    Fragment::Text(mut rest) => {
                        while let Some(pos) = rest.find(needle) {
                            if pos > 0 {
                                next.push(Fragment::Text(&rest[..pos]));
                            }
                            next.push(Fragment::Token(id));
                            rest = &rest[pos + needle.len()..];
                        }
                        if !rest.is_empty() {
                            next.push(Fragment::Text(rest));
                        }
                    }
                    token => next.push(token),
                }
            }
            fragments = next;
        }
        fragments
    }

    fn bpe_encode(&self, text: &str, out: &mut Vec<u32>) -> Result<(), LlmError> {
        let Some(bpe) = &self.bpe else {
            return Err(LlmError::Tokenizer("BPE model missing".into()));
        };
        let encoding = bpe
            .encode(text, false)
            .map_err(|e| LlmError::Tokenizer(format!("BPE encoding failed: {e}")))?;
        out.extend_from_slice(encoding.get_ids());
        Ok(())
    }

    /// SentencePiece BPE as llama.cpp runs it: start from single characters, repeatedly merge
    /// the adjacent pair whose merged text is the highest-scoring token (leftmost on ties),
    /// then emit each symbol as its token or as `<0xXX>` byte tokens.
    fn spm_encode(&self, text: &str, out: &mut Vec<u32>) -> Result<(), LlmError> {
        struct Symbol {
            start: usize,
            len: usize,
            prev: Option<usize>,
            next: Option<usize>,
        }
        struct Bigram {
            score: f32,
            left: usize,
            right: usize,
            size: usize,
        }
        impl PartialEq for Bigram {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == Ordering::Equal
            }
        }
        impl Eq for Bigram {}
        impl PartialOrd for Bigram {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for Bigram {
            fn cmp(&self, other: &Self) -> Ordering {
                // Max-heap: higher score first, then the leftmost pair.
                self.score
                    .total_cmp(&other.score)
                    .then_with(|| other.left.cmp(&self.left))
            }
        }

        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (i, (start, ch)) in text.char_indices().enumerate() {
            symbols.push(Symbol {
                start,
                len: ch.len_utf8(),
                prev: i.checked_sub(1),
                next: None,
            });
            if i > 0 {
                symbols[i - 1].next = Some(i);
            }
        }
        let mut heap = BinaryHeap::new();
        let try_add =
            |heap: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left: usize, right: usize| {
                let (l, r) = (&symbols[left], &symbols[right]);
                let merged = &text[l.start..r.start + r.len];
                if let Some(&id) = self.token_to_id.get(merged) {
                    heap.push(Bigram {
                        score: self.scores[id as usize],
                        left,
                        right,
                        size: merged.len(),
                    });
                }
            };
        for i in 1..symbols.len() {
            try_add(&mut heap, &symbols, i - 1, i);
        }
        while let Some(b) = heap.pop() {
            let (l, r) = (&symbols[b.left], &symbols[b.right]);
            // Skip pairs made stale by an earlier merge.
            if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
                continue;
            }
            let right_next = r.next;
            symbols[b.left].len += symbols[b.right].len;
            symbols[b.right].len = 0;
            symbols[b.left].next = right_next;
            if let Some(n) = right_next {
                symbols[n].prev = Some(b.left);
            }
            if let Some(p) = symbols[b.left].prev {
                try_add(&mut heap, &symbols, p, b.left);
            }
            if let Some(n) = right_next {
                try_add(&mut heap, &symbols, b.left, n);
            }
        }
        let mut cursor = if symbols.is_empty() { None } else { Some(0) };
        while let Some(i) = cursor {
            let s = &symbols[i];
            let piece = &text[s.start..s.start + s.len];
            match self.token_to_id.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for byte in piece.bytes() {
                        let id = self
                            .token_to_id
                            .get(&format!("<0x{byte:02X}>"))
                            .or_else(|| {
                                std::str::from_utf8(&[byte])
                                    .ok()
                                    .and_then(|s| self.token_to_id.get(s))
                            })
                            .ok_or_else(|| {
                                LlmError::Tokenizer(format!(
                                    "byte 0x{byte:02X} has no token in this vocabulary"
                                ))
                            })?;
                        out.push(*id);
                    }
                }
            }
            cursor = s.next;
        }
        Ok(())
    }
}

/// Builds the `tokenizers` BPE pipeline: the regex splits, then the byte-level mapping.
fn build_bpe(
    tokens: &[String],
    merges: &[&str],
    spec: &PreTokenizerSpec,
) -> Result<Tokenizer, String> {
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), id as u32))
        .collect();
    let mut pairs = Vec::with_capacity(merges.len());
    for (rank, merge) in merges.iter().enumerate() {
        // The separator is the first space after the first byte (a merge side is never empty).
        let split = merge
            .as_bytes()
            .iter()
            .skip(1)
            .position(|&b| b == b' ')
            .map(|p| p + 1);
        let Some(at) = split else {
            return Err(format!("merge #{rank} {merge:?} has no separating space"));
        };
        pairs.push((merge[..at].to_string(), merge[at + 1..].to_string()));
    }
    let model = BPE::builder()
        .vocab_and_merges(vocab, pairs)
        .ignore_merges(spec.ignore_merges)
        .build()
        .map_err(|e| format!("cannot build the BPE model from the GGUF vocabulary: {e}"))?;
    let mut steps = Vec::with_capacity(spec.regexes.len() + 1);
    for re in &spec.regexes {
        let split = Split::new(
            SplitPattern::Regex((*re).to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| format!("bad pre-tokenizer regex {re:?}: {e}"))?;
        steps.push(PreTokenizerWrapper::Split(split));
    }
    steps.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(
        false, false, false,
    )));
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(steps))));
    Ok(tokenizer)
}

/// GPT-2's byte-to-character table, inverted: printable bytes stand for themselves, the
/// others were shifted to code points from 256 up.
fn byte_level_decoder() -> HashMap<char, u8> {
    let mut map = HashMap::with_capacity(256);
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let ch = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(256 + shifted).unwrap_or(char::REPLACEMENT_CHARACTER);
            shifted += 1;
            c
        };
        map.insert(ch, b);
    }
    map
}

/// What a token decodes to (llama.cpp's `token_to_piece` with specials rendered).
fn piece_bytes(
    kind: VocabKind,
    text: &str,
    ty: TokenType,
    byte_decoder: &HashMap<char, u8>,
) -> Vec<u8> {
    match ty {
        TokenType::Control | TokenType::UserDefined | TokenType::Unknown => {
            text.as_bytes().to_vec()
        }
        TokenType::Byte => parse_byte_token(text)
            .map(|b| vec![b])
            .unwrap_or_else(|| text.as_bytes().to_vec()),
        TokenType::Normal => match kind {
            VocabKind::SentencePiece => text.replace('\u{2581}', " ").into_bytes(),
            VocabKind::BytePairGpt2 => {
                let mut out = Vec::with_capacity(text.len());
                for ch in text.chars() {
                    match byte_decoder.get(&ch) {
                        Some(&b) => out.push(b),
                        // Not a byte-level character: keep it as it is.
                        None => {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
                out
            }
        },
        TokenType::Unused | TokenType::Undefined => Vec::new(),
    }
}

fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Turns a stream of tokens into text pieces without ever splitting a UTF-8 character: bytes
/// of an unfinished character wait for the next token.
pub struct TokenStream<'a> {
    tokenizer: &'a GgufTokenizer,
    pending: Vec<u8>,
}

impl<'a> TokenStream<'a> {
    pub fn new(tokenizer: &'a GgufTokenizer) -> TokenStream<'a> {
        TokenStream {
            tokenizer,
            pending: Vec::new(),
        }
    }

    /// Adds a token; returns the text that is complete now (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String, LlmError> {
        self.pending
            .extend_from_slice(self.tokenizer.token_bytes(id)?);
        let mut text = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    text.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix was just validated by from_utf8.
                    text.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Invalid bytes in the middle: replace them and go on.
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                        // An unfinished character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                    }
                }
            }
        }
        Ok(text)
    }

    /// Flushes bytes left over at the end (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::gguf::tests::{GEMMA3, QWEN25, SMOLLM2, test_model};
    use std::sync::OnceLock;

    fn load(file: &str) -> Option<GgufTokenizer> {
        let path = test_model(file)?;
        let g = GgufFile::open(&path).unwrap();
        Some(GgufTokenizer::from_gguf(&g).unwrap())
    }

    fn smollm2() -> Option<&'static GgufTokenizer> {
        static TOK: OnceLock<Option<GgufTokenizer>> = OnceLock::new();
        TOK.get_or_init(|| load(SMOLLM2)).as_ref()
    }

    fn qwen() -> Option<&'static GgufTokenizer> {
        static TOK: OnceLock<Option<GgufTokenizer>> = OnceLock::new();
        TOK.get_or_init(|| load(QWEN25)).as_ref()
    }

    fn gemma() -> Option<&'static GgufTokenizer> {
        static TOK: OnceLock<Option<GgufTokenizer>> = OnceLock::new();
        TOK.get_or_init(|| load(GEMMA3)).as_ref()
    }

    /// Texts every tokenizer must round-trip exactly.
    const ROUND_TRIP: &[&str] = &[
        "The capital of France is Paris.",
        "Mô hình ngôn ngữ lớn được huấn luyện trên dữ liệu tiếng Việt có dấu: ắ ặ ẳ ẵ ữ ự ỡ.",
        "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n}\n",
        "Digits 1234567890 and 3.14159, 2026-01-09, 10,000,000.",
        "Whitespace   runs\t\ttabs\n\n\nnewlines    \n  trailing   ",
        "Emoji 🚀🎉 and 👩‍🔬 with CJK 大语言模型 and Ελληνικά.",
        "It's they're we've I'm you'll he'd IT'S",
        "  leading spaces",
        "<|im_start|>user\nnot special in plain text<|im_end|>",
        "",
    ];

    fn pieces(tok: &GgufTokenizer, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&id| tok.token_to_piece(id).unwrap())
            .collect()
    }

    #[test]
    fn smollm2_round_trips() {
        let Some(tok) = smollm2() else { return };
        for text in ROUND_TRIP {
            let ids = tok.encode(text).unwrap();
            assert_eq!(&tok.decode(&ids).unwrap(), text, "ids {ids:?}");
        }
    }

    #[test]
    fn smollm2_facts() {
        let Some(tok) = smollm2() else { return };
        assert_eq!(tok.vocab_size(), 49152);
        assert_eq!(tok.bos_id(), Some(1));
        assert!(!tok.add_bos());
        // <|endoftext|> (0), <|im_end|> (2, the declared EOS) and, as in llama.cpp, the
        // fill-in-the-middle repository token <reponame> (4) end a generation.
        assert_eq!(tok.eos_ids(), &[0, 2, 4]);
        // smollm splits digits one per token, before the GPT-2 pattern.
        let ids = tok.encode("12345").unwrap();
        assert_eq!(pieces(tok, &ids), ["1", "2", "3", "4", "5"]);
        let ids = tok.encode("in 2026").unwrap();
        assert_eq!(pieces(tok, &ids), ["in", " ", "2", "0", "2", "6"]);
        // No prefix space is added to the first word.
        let ids = tok.encode("Hello world").unwrap();
        assert_eq!(pieces(tok, &ids), ["Hello", " world"]);
        // `<|im_start|>` in plain text is text; with specials it is the control token.
        let plain = tok.encode("<|im_start|>").unwrap();
        assert!(plain.len() > 1 && !plain.contains(&1), "{plain:?}");
        assert_eq!(tok.encode_with_specials("<|im_start|>").unwrap(), [1]);
        let mixed = tok
            .encode_with_specials("<|im_start|>user\nHi<|im_end|>\n")
            .unwrap();
        assert_eq!(mixed[0], 1);
        assert_eq!(
            pieces(tok, &mixed),
            ["<|im_start|>", "user", "\n", "Hi", "<|im_end|>", "\n"]
        );
    }

    #[test]
    fn token_stream_never_splits_characters() {
        let Some(tok) = smollm2() else { return };
        for text in ROUND_TRIP {
            let ids = tok.encode(text).unwrap();
            let mut stream = TokenStream::new(tok);
            let mut out = String::new();
            for &id in &ids {
                let piece = stream.push(id).unwrap();
                assert!(!piece.contains('\u{FFFD}'), "split character in {text:?}");
                out.push_str(&piece);
            }
            out.push_str(&stream.finish());
            assert_eq!(&out, text);
        }
        // Byte-level `Ģ` is byte 0x80, a lone continuation byte: replaced, never held back.
        let byte_80 = tok.token_id("Ģ").unwrap();
        let mut stream = TokenStream::new(tok);
        assert_eq!(stream.push(byte_80).unwrap(), "\u{FFFD}");
        // Byte-level `á` is byte 0xE1, the start of a 3-byte character: held until the end.
        let byte_e1 = tok.token_id("á").unwrap();
        assert_eq!(stream.push(byte_e1).unwrap(), "");
        assert_eq!(stream.finish(), "\u{FFFD}");
    }

    #[test]
    fn out_of_range_ids_are_errors() {
        let Some(tok) = smollm2() else { return };
        assert!(matches!(
            tok.decode(&[49152]),
            Err(LlmError::TokenOutOfRange { id: 49152, .. })
        ));
    }

    #[test]
    fn qwen_round_trips_and_facts() {
        let Some(tok) = qwen() else { return };
        for text in ROUND_TRIP {
            let ids = tok.encode(text).unwrap();
            assert_eq!(&tok.decode(&ids).unwrap(), text);
        }
        assert_eq!(tok.vocab_size(), 151936);
        assert!(!tok.add_bos());
        // Ids published with the Qwen2 tokenizer.
        assert_eq!(tok.encode("Hello, world!").unwrap(), [9707, 11, 1879, 0]);
        let im_start = tok.token_id("<|im_start|>").unwrap();
        assert_eq!(im_start, 151644);
        for id in [151643, 151645] {
            assert!(tok.is_eog(id), "{id}");
        }
        // qwen2 splits digits one per piece.
        let ids = tok.encode("12345").unwrap();
        assert_eq!(pieces(tok, &ids), ["1", "2", "3", "4", "5"]);
        // Contractions match case-insensitively ('S split off from IT).
        let ids = tok.encode("IT'S").unwrap();
        assert_eq!(pieces(tok, &ids).last().map(String::as_str), Some("'S"));
        // A letter run may take one leading non-letter; newlines are their own pieces.
        let ids = tok.encode("hello\n\nworld").unwrap();
        assert_eq!(pieces(tok, &ids), ["hello", "\n\n", "world"]);
        assert!(!tok.encode("<|im_start|>").unwrap().contains(&im_start));
        assert_eq!(
            tok.encode_with_specials("<|im_start|>").unwrap(),
            [im_start]
        );
        // <tool_call> is user-defined: llama.cpp matches it even in plain text.
        let tool = tok.token_id("<tool_call>").unwrap();
        assert_eq!(tok.encode("<tool_call>").unwrap(), [tool]);
    }

    #[test]
    fn gemma_sentencepiece_round_trips() {
        let Some(tok) = gemma() else { return };
        assert_eq!(tok.kind(), VocabKind::SentencePiece);
        assert!(tok.add_bos());
        assert_eq!(tok.bos_id(), Some(2));
        assert!(tok.is_eog(1) && tok.is_eog(106));
        for text in ROUND_TRIP {
            let ids = tok.encode(text).unwrap();
            assert_eq!(&tok.decode(&ids).unwrap(), text, "{:?}", pieces(tok, &ids));
        }
        // Spaces become part of the following word; no prefix space (add_space_prefix false).
        let ids = tok.encode("Hello world").unwrap();
        assert_eq!(pieces(tok, &ids), ["Hello", " world"]);
        let eot = tok.token_id("<end_of_turn>").unwrap();
        assert!(!tok.encode("<end_of_turn>").unwrap().contains(&eot));
        assert_eq!(tok.encode_with_specials("<end_of_turn>").unwrap(), [eot]);
    }

    #[test]
    fn byte_level_table_is_a_bijection() {
        let map = byte_level_decoder();
        assert_eq!(map.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
        assert_eq!(map[&'Ċ'], b'\n');
        assert_eq!(map[&'!'], b'!');
    }

    #[test]
    fn deepseek_letter_class_is_well_formed() {
        // Every range in the class must run upwards; a typo would reverse one.
        let class = DEEPSEEK_LETTERS
            .trim_start_matches(r"\s?[")
            .trim_end_matches("]+");
        let chars: Vec<char> = class.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if i + 2 < chars.len() && chars[i + 1] == '-' {
                assert!(chars[i] < chars[i + 2], "{}-{}", chars[i], chars[i + 2]);
                i += 3;
            } else {
                i += 1;
            }
        }
        for spec in SUPPORTED_PRE_TOKENIZERS {
            let spec = pre_tokenizer_spec(spec).unwrap();
            for re in spec.regexes {
                Split::new(
                    SplitPattern::Regex(re.to_string()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .unwrap();
            }
        }
        assert!(pre_tokenizer_spec("mystery").is_none());
    }
}
