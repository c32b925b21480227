//! Writes the seed corpus of the fuzz targets in `fuzz/` into the folder named by
//! `PAPERDIGEST_FUZZ_SEEDS` (`scripts/fuzz.sh seeds` runs this, then minimises the result):
//! tiny models of every architecture and their truncations for `gguf_load`, and the answers
//! the fixture server gives for `hf_daily_json` and `arxiv_atom`. The PDF seeds come from the
//! library's own fixture builder (`pdf::tests::write_fuzz_seeds`).

mod fixture;

use std::path::Path;

use paperdigest::llm::testing::{TinyArch, TinyModelSpec, write_tiny_model};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("seed folder");
    std::fs::write(dir.join(name), bytes).expect("seed file");
}

/// The smallest model of `arch` the loader accepts: one layer, 32-wide, 259 tokens.
fn smallest(arch: TinyArch) -> TinyModelSpec {
    TinyModelSpec {
        vocab_size: TinyModelSpec::MIN_VOCAB,
        embedding: 32,
        feed_forward: 32,
        layers: 1,
        heads: 2,
        kv_heads: 1,
        context_length: 64,
        ..TinyModelSpec::new(arch)
    }
}

#[test]
#[ignore = "writes the fuzz seed corpus; run by scripts/fuzz.sh seeds"]
fn write_fuzz_seeds() {
    let Some(root) = std::env::var_os("PAPERDIGEST_FUZZ_SEEDS") else {
        return;
    };
    let root = Path::new(&root);

    let gguf = root.join("gguf_load");
    let scratch = tempfile::tempdir().expect("scratch");
    for arch in TinyArch::ALL {
        let path = scratch.path().join("m.gguf");
        write_tiny_model(&path, &smallest(arch)).expect("tiny model");
        let bytes = std::fs::read(&path).expect("read tiny model");
        let name = arch.as_str();
        // Not `.gguf`: the repository ignores model files, and these are only fuzz inputs.
        write(&gguf, &format!("tiny-{name}"), &bytes);
        if arch == TinyArch::Llama {
            // Cut in the tensor data, just before the end, and inside the header.
            for (cut, len) in [("half", bytes.len() / 2), ("minus1", bytes.len() - 1)] {
                write(&gguf, &format!("tiny-{name}-{cut}"), &bytes[..len]);
            }
            write(
                &gguf,
                &format!("{name}-header.gguf"),
                &bytes[..bytes.len() / 8],
            );
        }
    }

    let hf = root.join("hf_daily_json");
    let items: Vec<String> = fixture::DAY_IDS
        .iter()
        .filter_map(|id| fixture::paper(id))
        .map(|p| fixture::daily_item(&p))
        .collect();
    write(&hf, "day.json", format!("[{}]", items.join(",")).as_bytes());
    for p in fixture::PAPERS {
        write(
            &hf,
            &format!("paper-{}.json", p.id.replace('/', "_")),
            fixture::paper_json(p).as_bytes(),
        );
    }
    write(
        &hf,
        "lenient.json",
        br#"[{"paper":{"id":"2601.05106","authors":null,"publishedAt":null,"githubRepo":" "},"title":"T","summary":"S"},{"paper":{"title":"no id"}}]"#,
    );
    write(
        &hf,
        "error.json",
        br#"{"error":"Invalid date, expected YYYY-MM-DD"}"#,
    );

    let atom = root.join("arxiv_atom");
    let entries: Vec<String> = fixture::PAPERS
        .iter()
        .map(|p| fixture::atom_entry(p, p.latest_version))
        .collect();
    write(
        &atom,
        "feed.xml",
        fixture::feed("2601.05242,hep-th/9901001", &entries).as_bytes(),
    );
    write(&atom, "error.xml", fixture::error_feed("1234").as_bytes());
    write(&atom, "empty.xml", fixture::feed("x", &[]).as_bytes());
}
