//! A bounded pre-scan of a GGUF header, run before candle parses it.
//!
//! candle's `Content::read` allocates what the header declares: it checks each string and
//! array against the bytes left in the file, but one byte on disk (a `u8` array element)
//! becomes a 32-byte `Value` in memory, so a few megabytes of header can ask for gigabytes.
//! This scan walks the metadata and the tensor table without keeping anything (strings and
//! arrays are skipped with seeks), adds up what candle would allocate, and refuses the file
//! before candle runs when a count, a length or that estimate is absurd. It also refuses a
//! zero or non-power-of-two `general.alignment`, which candle would divide by.
//!
//! The scan only judges sizes: a header it cannot follow (wrong magic, unknown value type,
//! truncated) passes, so that candle's own parser reports it in its usual words.

use std::io::{self, Read, Seek};

use candle_core::quantized::gguf_file::Value;

/// The longest metadata string accepted. Real files carry chat templates of a few kilobytes;
/// the largest strings seen are whole `tokenizer.json` copies of some megabytes.
pub const MAX_STRING_BYTES: u64 = 64 << 20;
/// The most elements of one metadata array. The largest vocabularies have ~262k tokens.
pub const MAX_ARRAY_LEN: u64 = 1 << 22;
/// Arrays nested deeper than this are refused (real files do not nest arrays at all).
pub const MAX_NESTING: usize = 4;
/// The most tensors a file may declare (real models have hundreds to a few thousand).
pub const MAX_TENSORS: u64 = 1 << 16;
/// The most metadata entries a file may declare (real models have a few dozen).
pub const MAX_METADATA_ENTRIES: u64 = 1 << 16;
/// What the parsed header may cost in memory, as estimated below (real models: 5-40 MB).
pub const MAX_HEADER_MEMORY: u64 = 512 << 20;

/// Bytes of one parsed value, its allocation slack and hash-map overhead (an over-estimate is
/// fine: the budget is far above real files).
const VALUE_BYTES: u64 = std::mem::size_of::<Value>() as u64;
/// A metadata entry or tensor entry in candle's `HashMap`: key `String`, value, hash slot.
const ENTRY_OVERHEAD: u64 = 64;
/// A `TensorInfo` without its name: dtype, `Shape` (a `Vec`), offset.
const TENSOR_INFO_BYTES: u64 = 64;

const TYPE_U8: u32 = 0;
const TYPE_I8: u32 = 1;
const TYPE_U16: u32 = 2;
const TYPE_I16: u32 = 3;
const TYPE_U32: u32 = 4;
const TYPE_I32: u32 = 5;
const TYPE_F32: u32 = 6;
const TYPE_BOOL: u32 = 7;
const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;
const TYPE_U64: u32 = 10;
const TYPE_I64: u32 = 11;
const TYPE_F64: u32 = 12;

/// Why the scan stopped: a limit (the file is refused) or a header it cannot follow (left to
/// candle).
enum Stop {
    Refused(String),
    Unreadable,
}

impl From<io::Error> for Stop {
    fn from(_: io::Error) -> Stop {
        Stop::Unreadable
    }
}

/// Scans the header at the reader's position; `Err(reason)` when the file must be refused.
/// The reader is left anywhere: the caller rewinds it.
pub fn check_header<R: Read + Seek>(reader: &mut R, file_size: u64) -> Result<(), String> {
    let mut scan = Scan {
        reader,
        file_size,
        wide: true,
        memory: 0,
    };
    match scan.header() {
        Ok(()) | Err(Stop::Unreadable) => Ok(()),
        Err(Stop::Refused(reason)) => Err(reason),
    }
}

struct Scan<'a, R> {
    reader: &'a mut R,
    file_size: u64,
    /// GGUF v2 and v3 write lengths as u64, v1 as u32.
    wide: bool,
    memory: u64,
}

impl<R: Read + Seek> Scan<'_, R> {
    fn header(&mut self) -> Result<(), Stop> {
        let magic = self.u32()?;
        if magic != 0x4655_4747 && magic != 0x4747_5546 {
            return Err(Stop::Unreadable);
        }
        self.wide = match self.u32()? {
            1 => false,
            2 | 3 => true,
            _ => return Err(Stop::Unreadable),
        };
        let tensors = self.length()?;
        let entries = self.length()?;
        if tensors > MAX_TENSORS {
            return refuse(format!(
                "the header declares {tensors} tensors (limit {MAX_TENSORS})"
            ));
        }
        if entries > MAX_METADATA_ENTRIES {
            return refuse(format!(
                "the header declares {entries} metadata entries (limit {MAX_METADATA_ENTRIES})"
            ));
        }
        for _ in 0..entries {
            let key = self.key()?;
            let value_type = self.u32()?;
            self.charge(ENTRY_OVERHEAD + key.len() as u64, &key)?;
            if key == "general.alignment" {
                self.alignment(value_type)?;
            } else {
                self.value(&key, value_type, 0)?;
            }
        }
        for index in 0..tensors {
            let name_len = self.length()?;
            let what = format!("tensor #{index}");
            self.string_len(name_len, &what)?;
            self.skip(name_len)?;
            let dims = u64::from(self.u32()?);
            if dims > 4 {
                // candle refuses this itself, before allocating.
                return Err(Stop::Unreadable);
            }
            self.skip(dims * if self.wide { 8 } else { 4 } + 4 + 8)?;
            self.charge(
                ENTRY_OVERHEAD + TENSOR_INFO_BYTES + name_len + dims * 8,
                &what,
            )?;
        }
        Ok(())
    }

    /// A metadata key, kept (keys are short) to name it in errors.
    fn key(&mut self) -> Result<String, Stop> {
        let len = self.length()?;
        // Keys are dotted names like `tokenizer.ggml.tokens`.
        if len > 4096 {
            return refuse(format!("a metadata key is {len} bytes long (limit 4096)"));
        }
        self.fits(len)?;
        let mut bytes = vec![0u8; len as usize];
        self.reader.read_exact(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn value(&mut self, key: &str, value_type: u32, depth: usize) -> Result<(), Stop> {
        match value_type {
            TYPE_STRING => {
                let len = self.length()?;
                self.string_len(len, key)?;
                self.skip(len)?;
                self.charge(len, key)
            }
            TYPE_ARRAY => {
                if depth >= MAX_NESTING {
                    return refuse(format!(
                        "metadata `{key}` nests arrays deeper than {MAX_NESTING} levels"
                    ));
                }
                let element_type = self.u32()?;
                let len = self.length()?;
                if len > MAX_ARRAY_LEN {
                    return refuse(format!(
                        "metadata `{key}` is an array of {len} elements (limit {MAX_ARRAY_LEN})"
                    ));
                }
                // candle grows the vector by pushing: up to twice the length in capacity.
                self.charge(len.saturating_mul(2 * VALUE_BYTES), key)?;
                match fixed_size(element_type, self.wide) {
                    Some(size) => self.skip(len.saturating_mul(size)),
                    None => {
                        for _ in 0..len {
                            self.value(key, element_type, depth + 1)?;
                        }
                        Ok(())
                    }
                }
            }
            other => match fixed_size(other, self.wide) {
                Some(size) => self.skip(size),
                None => Err(Stop::Unreadable),
            },
        }
    }

    /// `general.alignment`: candle rounds the data offset up to it, dividing by it.
    fn alignment(&mut self, value_type: u32) -> Result<(), Stop> {
        let value = match value_type {
            TYPE_U8 | TYPE_I8 => u64::from(self.u8()?),
            TYPE_U16 | TYPE_I16 => u64::from(self.u16()?),
            TYPE_U32 | TYPE_I32 => u64::from(self.u32()?),
            // candle ignores other types and uses its default alignment.
            other => return self.value("general.alignment", other, 0),
        };
        let signed_negative = match value_type {
            TYPE_I8 => value >= 0x80,
            TYPE_I16 => value >= 0x8000,
            TYPE_I32 => value >= 0x8000_0000,
            _ => false,
        };
        if !signed_negative && !value.is_power_of_two() {
            return refuse(format!(
                "metadata `general.alignment` is {value}; it must be a power of two"
            ));
        }
        Ok(())
    }

    fn string_len(&self, len: u64, what: &str) -> Result<(), Stop> {
        if len > MAX_STRING_BYTES {
            return refuse(format!(
                "{} holds a string of {len} bytes (limit {MAX_STRING_BYTES})",
                describe(what)
            ));
        }
        Ok(())
    }

    /// Adds `bytes` to the memory estimate, refusing the file past the budget.
    fn charge(&mut self, bytes: u64, what: &str) -> Result<(), Stop> {
        self.memory = self.memory.saturating_add(bytes);
        if self.memory > MAX_HEADER_MEMORY {
            return refuse(format!(
                "the header would need more than {} MiB of memory to read (at {})",
                MAX_HEADER_MEMORY >> 20,
                describe(what)
            ));
        }
        Ok(())
    }

    /// Errors (as unreadable) when fewer than `len` bytes remain.
    fn fits(&mut self, len: u64) -> Result<(), Stop> {
        let position = self.reader.stream_position()?;
        if len > self.file_size.saturating_sub(position) {
            return Err(Stop::Unreadable);
        }
        Ok(())
    }

    fn skip(&mut self, len: u64) -> Result<(), Stop> {
        self.fits(len)?;
        let len = i64::try_from(len).map_err(|_| Stop::Unreadable)?;
        self.reader.seek_relative(len)?;
        Ok(())
    }

    fn length(&mut self) -> Result<u64, Stop> {
        if self.wide {
            let mut b = [0u8; 8];
            self.reader.read_exact(&mut b)?;
            Ok(u64::from_le_bytes(b))
        } else {
            Ok(u64::from(self.u32()?))
        }
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        let mut b = [0u8; 1];
        self.reader.read_exact(&mut b)?;
        Ok(b[0])
    }

    fn u16(&mut self) -> Result<u16, Stop> {
        let mut b = [0u8; 2];
        self.reader.read_exact(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        let mut b = [0u8; 4];
        self.reader.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

fn refuse<T>(reason: String) -> Result<T, Stop> {
    Err(Stop::Refused(reason))
}

/// "metadata `key`" for a key, the tensor's label as it is otherwise.
fn describe(what: &str) -> String {
    if what.starts_with("tensor #") {
        what.to_string()
    } else {
        format!("metadata `{what}`")
    }
}

/// On-disk size of a value of a fixed-size type; `None` for strings, arrays and unknown types.
fn fixed_size(value_type: u32, _wide: bool) -> Option<u64> {
    Some(match value_type {
        TYPE_U8 | TYPE_I8 | TYPE_BOOL => 1,
        TYPE_U16 | TYPE_I16 => 2,
        TYPE_U32 | TYPE_I32 | TYPE_F32 => 4,
        TYPE_U64 | TYPE_I64 | TYPE_F64 => 8,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A v3 header: `tensors` declared tensors (none written) and the given raw entries.
    fn header(tensors: u64, entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&tensors.to_le_bytes());
        out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for e in entries {
            out.extend_from_slice(e);
        }
        out
    }

    fn string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn entry(key: &str, value_type: u32, value: &[u8]) -> Vec<u8> {
        let mut out = string(key);
        out.extend_from_slice(&value_type.to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    fn array(element_type: u32, len: u64, body: &[u8]) -> Vec<u8> {
        let mut out = element_type.to_le_bytes().to_vec();
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    fn check(bytes: &[u8]) -> Result<(), String> {
        check_header(&mut Cursor::new(bytes), bytes.len() as u64)
    }

    #[test]
    fn limits_refuse_what_real_files_never_have_and_pass_the_rest() {
        let many_u8 = MAX_ARRAY_LEN + 1;
        // (name, bytes, refusal containing this, or None when the scan passes)
        let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
            (
                "ordinary entries",
                header(
                    0,
                    &[
                        entry("general.architecture", TYPE_STRING, &string("llama")),
                        entry("general.alignment", TYPE_U32, &32u32.to_le_bytes()),
                        entry(
                            "tokenizer.ggml.tokens",
                            TYPE_ARRAY,
                            &array(TYPE_STRING, 2, &[string("a"), string("b")].concat()),
                        ),
                    ],
                ),
                None,
            ),
            (
                "too many tensors",
                header(MAX_TENSORS + 1, &[]),
                Some("tensors (limit"),
            ),
            (
                "a huge array, backed by the bytes it needs",
                header(
                    0,
                    &[entry(
                        "x.bytes",
                        TYPE_ARRAY,
                        &array(TYPE_U8, many_u8, &vec![0u8; many_u8 as usize]),
                    )],
                ),
                Some("metadata `x.bytes` is an array of 4194305 elements"),
            ),
            (
                "arrays of u8 that cost 64 bytes per byte on disk",
                header(
                    0,
                    &(0..3)
                        .map(|i| {
                            entry(
                                &format!("x.part{i}"),
                                TYPE_ARRAY,
                                &array(TYPE_U8, 1 << 22, &vec![0u8; 1 << 22]),
                            )
                        })
                        .collect::<Vec<_>>(),
                ),
                Some("MiB of memory to read (at metadata `x.part1`)"),
            ),
            (
                "an absurd string length",
                header(
                    0,
                    &[entry(
                        "general.name",
                        TYPE_STRING,
                        &(MAX_STRING_BYTES + 1).to_le_bytes(),
                    )],
                ),
                Some("metadata `general.name` holds a string of 67108865 bytes"),
            ),
            (
                "deeply nested arrays",
                header(
                    0,
                    &[entry(
                        "x.nest",
                        TYPE_ARRAY,
                        &(0..6).fold(array(TYPE_U8, 0, &[]), |inner, _| {
                            array(TYPE_ARRAY, 1, &inner)
                        }),
                    )],
                ),
                Some("nests arrays deeper"),
            ),
            (
                "zero alignment",
                header(
                    0,
                    &[entry("general.alignment", TYPE_U32, &0u32.to_le_bytes())],
                ),
                Some("`general.alignment` is 0"),
            ),
            (
                "alignment not a power of two",
                header(
                    0,
                    &[entry("general.alignment", TYPE_U16, &48u16.to_le_bytes())],
                ),
                Some("`general.alignment` is 48"),
            ),
            // Left to candle: truncated, unknown type, wrong magic.
            (
                "truncated",
                header(0, &[entry("general.name", TYPE_STRING, &string("x"))])[..30].to_vec(),
                None,
            ),
            (
                "unknown value type",
                header(0, &[entry("x.y", 77, &[0; 8])]),
                None,
            ),
            ("not gguf", b"GGML\x03\0\0\0".to_vec(), None),
        ];
        for (name, bytes, refusal) in cases {
            match (check(&bytes), refusal) {
                (Ok(()), None) => {}
                (Err(reason), Some(expected)) => {
                    assert!(reason.contains(expected), "{name}: {reason}")
                }
                (got, want) => panic!("{name}: got {got:?}, wanted a refusal with {want:?}"),
            }
        }
    }
}
