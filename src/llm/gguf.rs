//! Reading GGUF model files: the header (metadata and tensor table, never the weights),
//! typed metadata getters, and the [`ModelInfo`] summary shown to users.
//!
//! Opening a file validates it up front so a damaged download fails here with a message that
//! names the file, not later inside the model code: the magic and header must parse, and every
//! tensor's bytes must lie inside the file (a truncated copy is caught at open). Before candle
//! reads the header, a bounded pre-scan (`limits`) refuses absurd counts, lengths and
//! alignments, so a hostile header cannot make candle allocate gigabytes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};

use super::error::{LlmError, panic_message};

mod limits;

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
        // candle allocates what the header declares: sizes are checked against limits first.
        let invalid = |reason| LlmError::InvalidGguf {
            path: path.to_path_buf(),
            reason,
        };
        limits::check_header(&mut reader, file_size).map_err(invalid)?;
        reader.rewind().map_err(io_err)?;
        // candle's header reader is bounds-checked, but an alignment of 0 divides by zero in it:
        // look for that first, so that the user sees an error rather than a panic message.
        if skim_alignment(&mut reader, file_size) == Some(0) {
            return Err(LlmError::InvalidGguf {
                path: path.to_path_buf(),
                reason: "general.alignment is 0; it must be a power of two".into(),
            });
        }
        reader.rewind().map_err(io_err)?;
        // A damaged file must never take the process down, so any panic becomes an error.
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
                let message = panic_message(&*payload);
                // The one panic known in candle 0.11's reader: a zero alignment divides by zero.
                let hint = if message.contains("divide by zero") {
                    " (is general.alignment 0? it must be a power of two)"
                } else {
                    ""
                };
                return Err(LlmError::InvalidGguf {
                    path: path.to_path_buf(),
                    reason: format!("header parser failed: {message}{hint}"),
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

/// The integer value of `general.alignment`, found by skipping through the metadata without
/// keeping anything; `None` when absent or when the header cannot be read this far (candle's
/// reader then reports the damage).
fn skim_alignment<R: Read + Seek>(reader: &mut R, file_size: u64) -> Option<u64> {
    fn u32_of<R: Read>(r: &mut R) -> Option<u32> {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).ok()?;
        Some(u32::from_le_bytes(b))
    }
    fn u64_of<R: Read>(r: &mut R) -> Option<u64> {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).ok()?;
        Some(u64::from_le_bytes(b))
    }
    /// Fixed size of a scalar value type, per the GGUF specification.
    fn scalar_size(t: u32) -> Option<u64> {
        Some(match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            _ => return None,
        })
    }
    fn skip<R: Read + Seek>(r: &mut R, t: u32, long: bool, depth: u32) -> Option<()> {
        let len = |r: &mut R| {
            if long {
                u64_of(r)
            } else {
                u32_of(r).map(u64::from)
            }
        };
        if let Some(n) = scalar_size(t) {
            r.seek(SeekFrom::Current(i64::try_from(n).ok()?)).ok()?;
        } else if t == 8 {
            let n = len(r)?;
            r.seek(SeekFrom::Current(i64::try_from(n).ok()?)).ok()?;
        } else if t == 9 && depth < 8 {
            let item = u32_of(r)?;
            let n = len(r)?;
            match scalar_size(item) {
                Some(size) => {
                    let bytes = n.checked_mul(size)?;
                    r.seek(SeekFrom::Current(i64::try_from(bytes).ok()?)).ok()?;
                }
                None => {
                    for _ in 0..n {
                        skip(r, item, long, depth + 1)?;
                    }
                }
            }
        } else {
            return None;
        }
        Some(())
    }
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).ok()?;
    if &magic != b"GGUF" {
        return None;
    }
    let long = match u32_of(reader)? {
        1 => false,
        2 | 3 => true,
        _ => return None,
    };
    let len = |r: &mut R| {
        if long {
            u64_of(r)
        } else {
            u32_of(r).map(u64::from)
        }
    };
    let _tensors = len(reader)?;
    let kvs = len(reader)?;
    for _ in 0..kvs {
        let key_len = len(reader)?;
        if key_len > 65_536 || reader.stream_position().ok()? > file_size {
            return None;
        }
        let mut key = vec![0u8; key_len as usize];
        reader.read_exact(&mut key).ok()?;
        let t = u32_of(reader)?;
        if key == b"general.alignment" {
            return match t {
                0 | 7 => {
                    let mut b = [0u8; 1];
                    reader.read_exact(&mut b).ok().map(|_| u64::from(b[0]))
                }
                1 => None,
                2 | 3 => {
                    let mut b = [0u8; 2];
                    reader
                        .read_exact(&mut b)
                        .ok()
                        .map(|_| u64::from(u16::from_le_bytes(b)))
                }
                4 | 5 => u32_of(reader).map(u64::from),
                10 | 11 => u64_of(reader),
                _ => None,
            };
        }
        skip(reader, t, long, 0)?;
    }
    None
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

/// Checks what candle's header reader leaves to the caller: a sane `general.alignment`, and
/// every tensor's size and position (its bytes must lie inside the file; shapes whose byte size
/// overflows are refused before anything is allocated for them).
fn check_tensor_bounds(path: &Path, content: &Content, file_size: u64) -> Result<(), LlmError> {
    let invalid = |reason: String| LlmError::InvalidGguf {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(v) = content.metadata.get("general.alignment") {
        match value_as_i128(v) {
            Some(n) if n > 0 && (n as u128).is_power_of_two() && n <= 1 << 30 => {}
            Some(n) => {
                return Err(invalid(format!(
                    "general.alignment is {n}; it must be a power of two"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "general.alignment should be an integer, found {:?}",
                    v.value_type()
                )));
            }
        }
    }
    // A vocabulary-only file has no tensors and may end before the aligned data offset.
    if !content.tensor_infos.is_empty() && content.tensor_data_offset > file_size {
        return Err(invalid(format!(
            "the file is truncated: tensor data would start at byte {} but the file has {file_size} bytes",
            content.tensor_data_offset
        )));
    }
    // Sorted by name so that the error names the same tensor on every run.
    let mut tensors: Vec<_> = content.tensor_infos.iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    for (name, t) in tensors {
        let dims = t.shape.dims();
        let elems = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let block = t.ggml_dtype.block_size() as u64;
        let bytes = match elems {
            None => {
                return Err(invalid(format!(
                    "tensor `{name}` has an impossible shape {dims:?}: its element count overflows"
                )));
            }
            Some(e) if block == 0 || e % block != 0 => {
                return Err(invalid(format!(
                    "tensor `{name}` has shape {dims:?}, which is not a whole number of {:?} \
                     blocks of {block}",
                    t.ggml_dtype
                )));
            }
            Some(e) => (e / block).checked_mul(t.ggml_dtype.type_size() as u64),
        };
        let Some(bytes) = bytes else {
            return Err(invalid(format!(
                "tensor `{name}` has an impossible shape {dims:?} for {:?}: its byte size overflows",
                t.ggml_dtype
            )));
        };
        let end = content
            .tensor_data_offset
            .checked_add(t.offset)
            .and_then(|start| start.checked_add(bytes));
        match end {
            Some(end) if end <= file_size => {}
            _ => {
                return Err(invalid(format!(
                    "tensor `{name}` ({bytes} bytes at data offset {}) lies past the end of the \
                     file ({file_size} bytes): the file is truncated or damaged",
                    t.offset
                )));
            }
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

    /// Hand-built GGUF v3 bytes, for damaged-file tests.
    #[derive(Default)]
    struct RawGguf {
        kvs: Vec<u8>,
        n_kv: u64,
        tensors: Vec<u8>,
        n_tensors: u64,
        data: Vec<u8>,
    }

    const T_U32: u32 = 4;
    const T_BOOL: u32 = 7;
    const T_STRING: u32 = 8;
    const T_ARRAY: u32 = 9;

    impl RawGguf {
        /// A header with `general.architecture = llama`.
        fn llama() -> RawGguf {
            RawGguf::default().kv_str("general.architecture", "llama")
        }

        fn raw_str(out: &mut Vec<u8>, s: &str) {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        }

        /// A key followed by raw value bytes (type tag included).
        fn kv_raw(mut self, key: &str, value: &[u8]) -> RawGguf {
            Self::raw_str(&mut self.kvs, key);
            self.kvs.extend(value);
            self.n_kv += 1;
            self
        }

        fn kv_str(self, key: &str, value: &str) -> RawGguf {
            let mut v = T_STRING.to_le_bytes().to_vec();
            Self::raw_str(&mut v, value);
            self.kv_raw(key, &v)
        }

        fn kv_u32(self, key: &str, value: u32) -> RawGguf {
            let mut v = T_U32.to_le_bytes().to_vec();
            v.extend(value.to_le_bytes());
            self.kv_raw(key, &v)
        }

        /// A tensor info: name, dims (GGUF order), ggml type, offset.
        fn tensor(mut self, name: &str, dims: &[u64], dtype: u32, offset: u64) -> RawGguf {
            Self::raw_str(&mut self.tensors, name);
            self.tensors.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                self.tensors.extend(d.to_le_bytes());
            }
            self.tensors.extend(dtype.to_le_bytes());
            self.tensors.extend(offset.to_le_bytes());
            self.n_tensors += 1;
            self
        }

        fn data(mut self, bytes: usize) -> RawGguf {
            self.data = vec![0; bytes];
            self
        }

        fn bytes(&self) -> Vec<u8> {
            let mut out = b"GGUF".to_vec();
            out.extend(3u32.to_le_bytes());
            out.extend(self.n_tensors.to_le_bytes());
            out.extend(self.n_kv.to_le_bytes());
            out.extend(&self.kvs);
            out.extend(&self.tensors);
            while !out.len().is_multiple_of(32) {
                out.push(0);
            }
            out.extend(&self.data);
            out
        }
    }

    /// Damaged or hostile headers: each must be a clear error naming the file, without a
    /// panic and without allocating what the header claims.
    #[test]
    fn damaged_headers_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let huge = 1u64 << 60;
        let mut huge_key = (huge).to_le_bytes().to_vec();
        huge_key.extend(b"k");
        let mut huge_string = T_STRING.to_le_bytes().to_vec();
        huge_string.extend(huge.to_le_bytes());
        let mut huge_array = T_ARRAY.to_le_bytes().to_vec();
        huge_array.extend(T_U32.to_le_bytes());
        huge_array.extend((1u64 << 40).to_le_bytes());
        let mut long_array = T_ARRAY.to_le_bytes().to_vec();
        long_array.extend(T_STRING.to_le_bytes());
        long_array.extend(1_000_000u64.to_le_bytes());
        let mut nested = Vec::new();
        for _ in 0..100 {
            nested.extend(T_ARRAY.to_le_bytes());
        }
        let mut bad_bool = T_BOOL.to_le_bytes().to_vec();
        bad_bool.push(7);
        let mut counts = b"GGUF".to_vec();
        counts.extend(3u32.to_le_bytes());
        counts.extend((1u64 << 40).to_le_bytes());
        counts.extend((1u64 << 40).to_le_bytes());

        let q4_0 = 2u32;
        let f32_type = 0u32;
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "huge-key.gguf",
                {
                    let mut b = b"GGUF".to_vec();
                    b.extend(3u32.to_le_bytes());
                    b.extend(0u64.to_le_bytes());
                    b.extend(1u64.to_le_bytes());
                    b.extend(&huge_key);
                    b.extend([0u8; 64]);
                    b
                },
                "bytes long",
            ),
            (
                "huge-string.gguf",
                RawGguf::llama()
                    .kv_raw("general.name", &huge_string)
                    .bytes(),
                "string length",
            ),
            (
                "huge-array.gguf",
                RawGguf::llama()
                    .kv_raw("tokenizer.ggml.scores", &huge_array)
                    .bytes(),
                "array",
            ),
            (
                "array-longer-than-file.gguf",
                RawGguf::llama()
                    .kv_raw("tokenizer.ggml.tokens", &long_array)
                    .bytes(),
                "remaining",
            ),
            (
                "nested-arrays.gguf",
                RawGguf::llama().kv_raw("x", &nested).bytes(),
                "",
            ),
            (
                "bad-bool.gguf",
                RawGguf::llama().kv_raw("x", &bad_bool).bytes(),
                "bool",
            ),
            (
                "bad-type.gguf",
                RawGguf::llama().kv_raw("x", &99u32.to_le_bytes()).bytes(),
                "",
            ),
            ("huge-counts.gguf", counts, "tensor_count"),
            (
                "too-many-dims.gguf",
                RawGguf::llama()
                    .tensor("t", &[1, 1, 1, 1, 1, 1, 1, 1, 1], f32_type, 0)
                    .bytes(),
                "dimensions",
            ),
            (
                "bad-dtype.gguf",
                RawGguf::llama().tensor("t", &[32], 99, 0).data(128).bytes(),
                "type",
            ),
            (
                "offset-past-end.gguf",
                RawGguf::llama()
                    .tensor("t", &[32], f32_type, 1 << 40)
                    .data(128)
                    .bytes(),
                "past the end",
            ),
            (
                "offset-overflow.gguf",
                RawGguf::llama()
                    .tensor("t", &[32], f32_type, u64::MAX - 8)
                    .data(128)
                    .bytes(),
                "past the end",
            ),
            (
                "short-data.gguf",
                RawGguf::llama()
                    .tensor("t", &[64], f32_type, 0)
                    .data(128)
                    .bytes(),
                "past the end",
            ),
            (
                "dims-overflow.gguf",
                RawGguf::llama()
                    .tensor("t", &[1 << 40, 1 << 40], f32_type, 0)
                    .data(128)
                    .bytes(),
                "impossible shape",
            ),
            (
                "partial-block.gguf",
                RawGguf::llama()
                    .tensor("t", &[33], q4_0, 0)
                    .data(128)
                    .bytes(),
                "whole number",
            ),
            (
                "alignment-0.gguf",
                RawGguf::llama()
                    .kv_u32("general.alignment", 0)
                    .tensor("t", &[8], f32_type, 0)
                    .data(32)
                    .bytes(),
                "alignment",
            ),
            (
                "alignment-3.gguf",
                RawGguf::llama()
                    .kv_u32("general.alignment", 3)
                    .tensor("t", &[8], f32_type, 0)
                    .data(64)
                    .bytes(),
                "power of two",
            ),
            (
                "cut-in-tensor-infos.gguf",
                {
                    let b = RawGguf::llama().tensor("t", &[8], f32_type, 0).bytes();
                    b[..b.len() - 40].to_vec()
                },
                "",
            ),
        ];
        for (name, bytes, expected) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let err = GgufFile::open(&path).unwrap_err();
            let text = err.to_string();
            eprintln!("{text}");
            assert!(
                matches!(err, LlmError::InvalidGguf { .. }),
                "{name}: {text}"
            );
            assert!(text.contains(name), "{name}: {text}");
            // The bounded pre-scan (`limits`) reports oversized declarations before the
            // structural checks see them.
            assert!(
                text.contains(expected) || text.contains("(limit "),
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn architecture_metadata_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, RawGguf, &str)> = vec![
            ("no-arch.gguf", RawGguf::default(), "is missing"),
            (
                "numeric-arch.gguf",
                RawGguf::default().kv_u32("general.architecture", 7),
                "should be a string",
            ),
        ];
        for (name, raw, expected) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, raw.bytes()).unwrap();
            let err = GgufFile::open(&path).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, LlmError::Metadata { .. }), "{name}: {text}");
            assert!(
                text.contains(name) && text.contains("general.architecture"),
                "{text}"
            );
            assert!(text.contains(expected), "{name}: {text}");
        }
        // A well-formed header with one tensor opens, and a vocabulary-only file (no tensors)
        // is accepted even though it ends before the aligned data offset.
        let path = dir.path().join("ok.gguf");
        let ok = RawGguf::llama().tensor("t", &[8, 4], 0, 0).data(128);
        std::fs::write(&path, ok.bytes()).unwrap();
        let g = GgufFile::open(&path).unwrap();
        assert!(g.has_tensor("t"));
        let path = dir.path().join("vocab-only.gguf");
        let mut bytes = RawGguf::llama().kv_str("general.name", "v").bytes();
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(GgufFile::open(&path).unwrap().tensor_count(), 0);
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
