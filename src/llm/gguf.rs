//! Reading GGUF model files: the header (metadata and tensor table, never the weights),
//! typed metadata getters, and the [`ModelInfo`] summary shown to users.
//!
//! Opening a file validates it up front so a damaged download fails here with a message that
//! names the file, not later inside the model code: the magic and header must parse, and every
//! tensor's bytes must lie inside the file (a truncated copy is caught at open).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};

use super::error::{LlmError, panic_message};

/// A summary of a model file, enough to show to a user or to key a cache.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo {
    /// `general.name`, or the file stem when the file has none.
    pub name: String,
    /// `general.architecture`, e.g. `llama`, `qwen2`, `gemma3`.
    pub architecture: String,
    /// `{arch}.context_length`: the context the model was trained for.
    pub context_length: Option<usize>,
    /// `{arch}.embedding_length`.
    pub embedding_length: Option<usize>,
    /// `{arch}.block_count`: number of transformer layers.
    pub block_count: Option<usize>,
    /// `{arch}.vocab_size`, else the length of `tokenizer.ggml.tokens`.
    pub vocab_size: Option<usize>,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// The llama.cpp file type name from `general.file_type` (e.g. `Q4_K_M`), when present.
    pub quantization: Option<String>,
}

/// An opened GGUF file: its path, size and parsed header.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    file_size: u64,
    content: Content,
    info: ModelInfo,
}

impl GgufFile {
    /// Opens `path`, parses the header and checks that every tensor lies inside the file.
    pub fn open(path: &Path) -> Result<GgufFile, LlmError> {
        let io_err = |source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let file_size = file.metadata().map_err(io_err)?.len();
        let mut reader = BufReader::new(file);
        // candle's header reader is bounds-checked, but an alignment of 0 divides by zero in it;
        // a damaged file must never take the process down, so any panic becomes an error.
        let parsed = catch_unwind(AssertUnwindSafe(|| Content::read(&mut reader)));
        let content = match parsed {
            Ok(Ok(content)) => content,
            Ok(Err(err)) => {
                return Err(LlmError::InvalidGguf {
                    path: path.to_path_buf(),
                    reason: describe_read_error(&err.to_string()),
                });
            }
            Err(payload) => {
                return Err(LlmError::InvalidGguf {
                    path: path.to_path_buf(),
                    reason: format!("header parser failed: {}", panic_message(&*payload)),
                });
            }
        };
        check_tensor_bounds(path, &content, file_size)?;
        let info = build_info(path, &content, file_size)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            file_size,
            content,
            info,
        })
    }

    /// The path this file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The summary built at open time.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> &str {
        &self.info.architecture
    }

    /// All metadata entries, as candle parsed them.
    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    /// Number of tensors in the file.
    pub fn tensor_count(&self) -> usize {
        self.content.tensor_infos.len()
    }

    /// Whether the file has a tensor with this name.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// The shape of tensor `name` in candle's order (rows first), if the file has it.
    pub fn tensor_shape(&self, name: &str) -> Option<&[usize]> {
        self.content
            .tensor_infos
            .get(name)
            .map(|info| info.shape.dims())
    }

    /// The raw metadata value for `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    /// A string value; `Ok(None)` when absent, an error when present with another type.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// An unsigned integer value stored with any integer width (negative values are an error).
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match value_as_i128(v) {
                Some(n) if n >= 0 && n <= u64::MAX as i128 => Ok(Some(n as u64)),
                _ => Err(self.wrong_type(key, "a non-negative integer", v)),
            },
        }
    }

    /// Like [`GgufFile::get_u64`], for values that must fit in 32 bits.
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>, LlmError> {
        match self.get_u64(key)? {
            None => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| self.problem(key, format!("is {n}, too large for 32 bits"))),
        }
    }

    /// A float value (f32 or f64; integers are accepted too).
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::F32(v)) => Ok(Some(f64::from(*v))),
            Some(Value::F64(v)) => Ok(Some(*v)),
            Some(v) => match value_as_i128(v) {
                Some(n) => Ok(Some(n as f64)),
                None => Err(self.wrong_type(key, "a number", v)),
            },
        }
    }

    /// A boolean value.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "a boolean", other)),
        }
    }

    /// An array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<Option<Vec<&str>>, LlmError> {
        let Some(items) = self.get_array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                other => Err(self.wrong_type(key, "an array of strings", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An array of integers (any width that fits in i64).
    pub fn get_i64_array(&self, key: &str) -> Result<Option<Vec<i64>>, LlmError> {
        let Some(items) = self.get_array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match value_as_i128(v) {
                Some(n) if i64::try_from(n).is_ok() => Ok(n as i64),
                _ => Err(self.wrong_type(key, "an array of integers", v)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An array of floats (f32, f64 or integers).
    pub fn get_f32_array(&self, key: &str) -> Result<Option<Vec<f32>>, LlmError> {
        let Some(items) = self.get_array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match v {
                Value::F32(x) => Ok(*x),
                Value::F64(x) => Ok(*x as f32),
                other => match value_as_i128(other) {
                    Some(n) => Ok(n as f32),
                    None => Err(self.wrong_type(key, "an array of numbers", other)),
                },
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The value of `{architecture}.{suffix}` as an unsigned integer, if present.
    pub fn arch_u64(&self, suffix: &str) -> Result<Option<u64>, LlmError> {
        self.get_u64(&format!("{}.{suffix}", self.info.architecture))
    }

    /// Like [`GgufFile::get_u64`] but absent is an error.
    pub fn require_u64(&self, key: &str) -> Result<u64, LlmError> {
        self.get_u64(key)?
            .ok_or_else(|| self.problem(key, "is missing".to_string()))
    }

    /// Builds the "metadata key is wrong" error for `key`.
    pub(crate) fn problem(&self, key: &str, problem: String) -> LlmError {
        LlmError::Metadata {
            path: self.path.clone(),
            key: key.to_string(),
            problem,
        }
    }

    /// Hands the parsed header to the model loader, which reads the tensors it names.
    pub(crate) fn into_content(self) -> Content {
        self.content
    }

    fn get_array(&self, key: &str) -> Result<Option<&Vec<Value>>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(self.wrong_type(key, "an array", other)),
        }
    }

    fn wrong_type(&self, key: &str, expected: &str, got: &Value) -> LlmError {
        self.problem(
            key,
            format!("should be {expected}, found {:?}", got.value_type()),
        )
    }
}

/// Maps a llama.cpp `general.file_type` (enum `llama_ftype`) to its usual name.
pub fn file_type_name(file_type: u64) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        _ => return None,
    })
}

fn value_as_i128(v: &Value) -> Option<i128> {
    Some(match v {
        Value::U8(n) => i128::from(*n),
        Value::I8(n) => i128::from(*n),
        Value::U16(n) => i128::from(*n),
        Value::I16(n) => i128::from(*n),
        Value::U32(n) => i128::from(*n),
        Value::I32(n) => i128::from(*n),
        Value::U64(n) => i128::from(*n),
        Value::I64(n) => i128::from(*n),
        _ => return None,
    })
}

/// Rewords candle's header errors where the raw text would mislead a user.
fn describe_read_error(raw: &str) -> String {
    if raw.contains("unknown magic") {
        format!("does not start with the GGUF magic ({raw})")
    } else if raw.contains("unknown dtype") {
        format!("uses a tensor type this build cannot read ({raw})")
    } else if raw.contains("failed to fill whole buffer") || raw.contains("remaining") {
        format!("the header is truncated or damaged ({raw})")
    } else {
        raw.to_string()
    }
}

fn check_tensor_bounds(path: &Path, content: &Content, file_size: u64) -> Result<(), LlmError> {
    for (name, t) in &content.tensor_infos {
        let elems = t
            .shape
            .dims()
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let block = t.ggml_dtype.block_size() as u64;
        let bytes = elems.and_then(|e| {
            if block == 0 || e % block != 0 {
                None
            } else {
                (e / block).checked_mul(t.ggml_dtype.type_size() as u64)
            }
        });
        let end = bytes.and_then(|b| {
            content
                .tensor_data_offset
                .checked_add(t.offset)
                .and_then(|start| start.checked_add(b))
        });
        match end {
            None => {
                return Err(LlmError::InvalidGguf {
                    path: path.to_path_buf(),
                    reason: format!(
                        "tensor `{name}` has an impossible shape {:?} for {:?}",
                        t.shape.dims(),
                        t.ggml_dtype
                    ),
                });
            }
            Some(end) if end > file_size => {
                return Err(LlmError::InvalidGguf {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the file is truncated: tensor `{name}` ends at byte {end} but the file \
                         has {file_size} bytes"
                    ),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn build_info(path: &Path, content: &Content, file_size: u64) -> Result<ModelInfo, LlmError> {
    let architecture = match content.metadata.get("general.architecture") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(LlmError::Metadata {
                path: path.to_path_buf(),
                key: "general.architecture".into(),
                problem: format!("should be a string, found {:?}", other.value_type()),
            });
        }
        None => {
            return Err(LlmError::Metadata {
                path: path.to_path_buf(),
                key: "general.architecture".into(),
                problem: "is missing".into(),
            });
        }
    };
    let name = match content.metadata.get("general.name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    // Info fields are descriptive; a value of the wrong type is reported as unknown here and
    // becomes an error only where the model code needs it.
    let arch_num = |suffix: &str| {
        content
            .metadata
            .get(&format!("{architecture}.{suffix}"))
            .and_then(value_as_i128)
            .and_then(|n| usize::try_from(n).ok())
    };
    let vocab_size =
        arch_num("vocab_size").or_else(|| match content.metadata.get("tokenizer.ggml.tokens") {
            Some(Value::Array(items)) => Some(items.len()),
            _ => None,
        });
    let quantization = content
        .metadata
        .get("general.file_type")
        .and_then(value_as_i128)
        .and_then(|n| u64::try_from(n).ok())
        .map(|n| {
            file_type_name(n)
                .map(str::to_string)
                .unwrap_or_else(|| format!("file_type {n}"))
        });
    Ok(ModelInfo {
        name,
        architecture: architecture.clone(),
        context_length: arch_num("context_length"),
        embedding_length: arch_num("embedding_length"),
        block_count: arch_num("block_count"),
        vocab_size,
        file_size,
        quantization,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
    use candle_core::{Device, Tensor};
    use std::io::Write;

    /// Where the real test models live (downloaded by the shared fetch script).
    pub(crate) fn test_model(file: &str) -> Option<PathBuf> {
        let path = dirs::home_dir()?
            .join(".cache/paperdigest-test-models")
            .join(file);
        if path.exists() {
            Some(path)
        } else {
            eprintln!(
                "note: {} is absent; skipping the test that needs it",
                path.display()
            );
            None
        }
    }

    pub(crate) const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
    pub(crate) const QWEN25: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
    pub(crate) const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

    /// Writes a tiny GGUF with the given metadata and one small f32 tensor.
    pub(crate) fn write_tiny_gguf(path: &Path, metadata: &[(&str, Value)]) {
        let tensor = Tensor::zeros((4, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
        let q = QTensor::quantize(&tensor, GgmlDType::F32).unwrap();
        let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let mut file = File::create(path).unwrap();
        gguf_file::write(&mut file, &md, &[("token_embd.weight", &q)]).unwrap();
        file.flush().unwrap();
    }

    #[test]
    fn random_bytes_are_not_gguf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("noise.gguf");
        // A fixed pseudo-random pattern keeps the test reproducible.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(&path, bytes).unwrap();
        let err = GgufFile::open(&path).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LlmError::InvalidGguf { .. }), "{text}");
        assert!(text.contains("noise.gguf"), "{text}");
    }

    #[test]
    fn empty_and_tiny_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("empty.gguf", &b""[..]),
            ("magic-only.gguf", &b"GGUF"[..]),
            ("bad-version.gguf", &b"GGUF\x09\x00\x00\x00"[..]),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = GgufFile::open(&path).unwrap_err();
            assert!(matches!(err, LlmError::InvalidGguf { .. }), "{name}: {err}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn missing_file_is_io_error() {
        let err = GgufFile::open(Path::new("/nonexistent/model.gguf")).unwrap_err();
        assert!(matches!(err, LlmError::Io { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/model.gguf"));
    }

    #[test]
    fn zero_alignment_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("align0.gguf");
        write_tiny_gguf(
            &path,
            &[
                ("general.architecture", Value::String("llama".into())),
                ("general.alignment", Value::U32(0)),
            ],
        );
        let err = GgufFile::open(&path).unwrap_err();
        assert!(matches!(err, LlmError::InvalidGguf { .. }), "{err}");
    }

    #[test]
    fn tiny_gguf_metadata_getters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-model.gguf");
        write_tiny_gguf(
            &path,
            &[
                ("general.architecture", Value::String("mamba".into())),
                ("mamba.context_length", Value::U64(2048)),
                ("mamba.block_count", Value::I32(4)),
                ("general.file_type", Value::U32(15)),
                ("some.flag", Value::Bool(true)),
                ("some.float", Value::F32(0.5)),
                (
                    "some.list",
                    Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
                ),
            ],
        );
        let g = GgufFile::open(&path).unwrap();
        let info = g.info();
        assert_eq!(info.name, "tiny-model");
        assert_eq!(info.architecture, "mamba");
        assert_eq!(info.context_length, Some(2048));
        assert_eq!(info.block_count, Some(4));
        assert_eq!(info.embedding_length, None);
        assert_eq!(info.quantization.as_deref(), Some("Q4_K_M"));
        assert_eq!(g.get_bool("some.flag").unwrap(), Some(true));
        assert_eq!(g.get_f64("some.float").unwrap(), Some(0.5));
        assert_eq!(g.get_str_array("some.list").unwrap(), Some(vec!["a", "b"]));
        assert_eq!(g.arch_u64("block_count").unwrap(), Some(4));
        assert!(g.get_str("some.flag").is_err());
        assert!(g.require_u64("mamba.nothing").is_err());
        assert!(g.has_tensor("token_embd.weight"));
    }

    #[test]
    fn smollm2_info() {
        let Some(path) = test_model(SMOLLM2) else {
            return;
        };
        let g = GgufFile::open(&path).unwrap();
        let info = g.info();
        assert_eq!(info.architecture, "llama");
        assert_eq!(info.context_length, Some(8192));
        assert_eq!(info.embedding_length, Some(576));
        assert_eq!(info.block_count, Some(30));
        assert_eq!(info.vocab_size, Some(49152));
        assert_eq!(info.quantization.as_deref(), Some("Q4_1"));
        assert_eq!(info.file_size, 98_362_432);
        assert_eq!(g.get_str("tokenizer.ggml.pre").unwrap(), Some("smollm"));
    }

    #[test]
    fn truncated_copy_is_rejected() {
        let Some(path) = test_model(SMOLLM2) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // Cut in the tensor data, and cut inside the header (the vocabulary is ~1 MB in).
        for (name, len) in [
            ("half.gguf", bytes.len() / 2),
            ("header.gguf", 200_000),
            ("tiny.gguf", 10),
        ] {
            let cut = dir.path().join(name);
            std::fs::write(&cut, &bytes[..len]).unwrap();
            let err = GgufFile::open(&cut).unwrap_err();
            assert!(matches!(err, LlmError::InvalidGguf { .. }), "{name}: {err}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
