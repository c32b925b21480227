//! GGUF model files: the header reader (`GgufFile::open`: metadata, tensor table, bounds) and
//! then a full `Engine::load` (architecture, tokenizer, chat template, weights) through the
//! public API, as `paperdigest digest --model FILE` does. Bytes go to a file because the loader
//! reads files; a hostile header must give an error, not a crash or a huge allocation.

#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use paperdigest::llm::{DeviceChoice, Engine, GgufFile, LoadOptions};

/// One scratch folder for the whole run, in memory when /dev/shm exists.
fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        };
        dir.expect("scratch folder for the fuzz target")
    })
    .path()
}

fuzz_target!(|data: &[u8]| {
    let path = scratch().join("input.gguf");
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(data));
    if written.is_err() {
        return;
    }
    if let Ok(file) = GgufFile::open(&path) {
        let _ = file.info();
        let options = LoadOptions {
            device: DeviceChoice::Cpu,
            context: Some(256),
        };
        if let Ok(engine) = Engine::load(&path, &options) {
            // A loaded model must also run: one short forward pass over a few tokens.
            if let Ok(tokens) = engine.tokenizer().encode("Hello <|im_start|> world") {
                if let Ok(mut session) = engine.new_session() {
                    let _ = session.feed(&tokens[..tokens.len().min(8)]);
                }
            }
        }
    }
});
