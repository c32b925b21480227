//! Damaged models at the engine level: a GGUF that parses but names an unsupported
//! architecture, lacks a tensor, has a tensor of the wrong shape, or metadata that contradicts
//! the tensors must give a clear error naming the file, never a panic. Each case is the tiny
//! random-weight model with one thing broken (header-level damage is tested in `llm::gguf`).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use paperdigest::llm::testing::{TinyArch, TinyModelSpec, write_tiny_model};
use paperdigest::llm::{DeviceChoice, Engine, LlmError, LoadOptions};

/// What to do to the tiny model.
enum Damage {
    /// Replace `general.architecture`.
    Architecture(&'static str),
    /// Drop a tensor.
    Remove(&'static str),
    /// Replace a tensor by a zero tensor of this (candle-order) shape.
    Reshape(&'static str, &'static [usize]),
    /// Set a metadata value.
    Metadata(&'static str, Value),
}

/// Writes the tiny model of `arch` with `damage` done to it, as `dir/name`.
fn damaged(dir: &Path, name: &str, arch: TinyArch, damage: Damage) -> PathBuf {
    let clean = dir.join(format!("clean-{}.gguf", arch.as_str()));
    if !clean.exists() {
        write_tiny_model(&clean, &TinyModelSpec::new(arch)).expect("tiny model");
    }
    let mut reader = BufReader::new(File::open(&clean).unwrap());
    let content = Content::read(&mut reader).unwrap();
    let mut metadata: Vec<(String, Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    let mut names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for name in names {
        let t = content.tensor(&mut reader, &name, &Device::Cpu).unwrap();
        tensors.push((name, t));
    }
    match damage {
        Damage::Architecture(arch) => {
            for (k, v) in &mut metadata {
                if k == "general.architecture" {
                    *v = Value::String(arch.to_string());
                }
            }
        }
        Damage::Remove(tensor) => {
            let before = tensors.len();
            tensors.retain(|(n, _)| n != tensor);
            assert_eq!(tensors.len() + 1, before, "{tensor} not in the tiny model");
        }
        Damage::Reshape(tensor, shape) => {
            let zeros = Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu).unwrap();
            let q = QTensor::quantize(&zeros, GgmlDType::F32).unwrap();
            let slot = tensors
                .iter_mut()
                .find(|(n, _)| n == tensor)
                .unwrap_or_else(|| panic!("{tensor} not in the tiny model"));
            slot.1 = q;
        }
        Damage::Metadata(key, value) => {
            metadata.retain(|(k, _)| k != key);
            metadata.push((key.to_string(), value));
        }
    }
    let path = dir.join(name);
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut file = File::create(&path).unwrap();
    gguf_file::write(&mut file, &md, &ts).unwrap();
    path
}

/// Loads the model and runs one token through it; returns the first error.
fn load_and_run(path: &Path) -> Result<(), LlmError> {
    let engine = Engine::load(
        path,
        &LoadOptions {
            device: DeviceChoice::Cpu,
            context: None,
            kv_cache: Default::default(),
        },
    )?;
    let mut session = engine.new_session()?;
    session.feed(&[5, 6, 7])?;
    Ok(())
}

#[test]
fn damaged_models_are_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, TinyArch, Damage, &str)> = vec![
        (
            "mamba.gguf",
            TinyArch::Llama,
            Damage::Architecture("mamba"),
            "architecture `mamba` is not supported",
        ),
        (
            "no-output-norm.gguf",
            TinyArch::Llama,
            Damage::Remove("output_norm.weight"),
            "output_norm.weight",
        ),
        (
            "no-attn-q.gguf",
            TinyArch::Qwen2,
            Damage::Remove("blk.1.attn_q.weight"),
            "blk.1.attn_q.weight",
        ),
        (
            "no-embeddings.gguf",
            TinyArch::Llama,
            Damage::Remove("token_embd.weight"),
            "token_embd.weight",
        ),
        (
            "short-ffn.gguf",
            TinyArch::Llama,
            Damage::Reshape("blk.0.ffn_up.weight", &[32, 64]),
            "",
        ),
        (
            "narrow-q.gguf",
            TinyArch::Qwen2,
            Damage::Reshape("blk.0.attn_q.weight", &[64, 32]),
            "",
        ),
        (
            "too-many-layers.gguf",
            TinyArch::Llama,
            Damage::Metadata("llama.block_count", Value::U32(9)),
            "blk.2",
        ),
        (
            "wrong-width.gguf",
            TinyArch::Qwen2,
            Damage::Metadata("qwen2.embedding_length", Value::U32(96)),
            "",
        ),
    ];
    let mut failures = Vec::new();
    for (name, arch, damage, expected) in cases {
        let path = damaged(dir.path(), name, arch, damage);
        // A panic here fails the test: every damage must come back as an error value.
        match load_and_run(&path) {
            Ok(()) => failures.push(format!("{name}: loaded and ran without an error")),
            Err(e) => {
                let text = e.to_string();
                println!("{name}: {text}");
                if !text.contains(expected) {
                    failures.push(format!("{name}: {text:?} does not mention {expected:?}"));
                }
                if matches!(
                    e,
                    LlmError::Model { .. }
                        | LlmError::Metadata { .. }
                        | LlmError::UnsupportedArchitecture { .. }
                        | LlmError::InvalidGguf { .. }
                ) && !text.contains(name)
                    && !text.contains("forward")
                {
                    failures.push(format!("{name}: {text:?} does not name the file"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
