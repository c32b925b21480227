//! Writes the tiny random-weight models whose llama.cpp logits are committed as goldens
//! (tests/golden/logits/). Usage: `cargo run --release --example write-tiny-models -- DIR`.
//! Run by scripts/make-logit-goldens.sh; the test that checks the goldens writes the same
//! files itself through `paperdigest::llm::testing::golden_specs`.

use std::path::PathBuf;

use paperdigest::llm::testing::{golden_specs, write_tiny_model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: write-tiny-models DIR")?,
    );
    std::fs::create_dir_all(&dir)?;
    for (name, spec) in golden_specs() {
        let path = dir.join(format!("{name}.gguf"));
        write_tiny_model(&path, &spec)?;
        println!("{}", path.display());
    }
    Ok(())
}
