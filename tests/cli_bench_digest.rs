//! `bench digest` end to end with tiny random-weight models on local PDFs: two models that
//! run and one file that is not a model. The report, its JSON keys, the plots and the
//! per-model digests are checked, and the broken model keeps its row with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;

fn example_pdf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paperdigest-note.pdf")
}

#[test]
fn two_models_and_a_broken_one_make_a_full_report() {
    use paperdigest::llm::testing::{TinyArch, TinyModelSpec, write_tiny_model};
    let dir = tempfile::tempdir().unwrap();
    let papers = dir.path().join("papers");
    std::fs::create_dir(&papers).unwrap();
    std::fs::copy(example_pdf(), papers.join("note-a.pdf")).unwrap();
    std::fs::copy(example_pdf(), papers.join("note-b.pdf")).unwrap();
    std::fs::write(papers.join("not-a-pdf.pdf"), b"<html>captcha</html>").unwrap();
    let llama = dir.path().join("tiny-llama.gguf");
    write_tiny_model(&llama, &TinyModelSpec::default()).unwrap();
    let qwen = dir.path().join("tiny-qwen2.gguf");
    write_tiny_model(&qwen, &TinyModelSpec::new(TinyArch::Qwen2)).unwrap();
    let broken = dir.path().join("broken.gguf");
    std::fs::write(&broken, b"GGUF\x03\x00\x00\x00 truncated").unwrap();
    let out = dir.path().join("report");

    let models = [&llama, &broken, &qwen]
        .map(|p| p.display().to_string())
        .join(",");
    let output = Command::new(env!("CARGO_BIN_EXE_paperdigest"))
        .args(["bench", "digest", "--models", &models, "--papers"])
        .arg(&papers)
        .arg("--out")
        .arg(&out)
        .args(["--lang", "en", "--max-tokens", "16", "--seed", "7"])
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .env("PAPERDIGEST_CONFIG", dir.path().join("no-config.toml"))
        .env_remove("PAPERDIGEST_CACHE")
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A model failed, so the status says so; the report is still complete.
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("report.md"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let models = json["models"].as_array().unwrap();
    assert_eq!(models.len(), 3);
    for (row, stem) in models.iter().zip(["tiny-llama", "broken", "tiny-qwen2"]) {
        assert_eq!(row["name"], stem, "{row}");
    }
    for row in [&models[0], &models[2]] {
        assert!(row["error"].is_null(), "{row}");
        for key in [
            "load_seconds",
            "prefill_tok_s",
            "decode_tok_s",
            "seconds_per_paper",
            "peak_rss_mb",
            "well_formed_rate",
            "language_fidelity",
            "avg_output_tokens",
        ] {
            let value = row[key].as_f64().unwrap_or(-1.0);
            assert!(value >= 0.0, "{key} in {row}");
        }
        assert!(row.get("grounding_rate").is_some(), "{row}");
        assert!(row["peak_rss_mb"].as_f64().unwrap() > 1.0);
        // Two readable papers, each with the same details as the model's row.
        let papers = row["papers"].as_array().unwrap();
        assert_eq!(papers.len(), 2, "{row}");
        for paper in papers {
            for key in [
                "seconds",
                "prefill_tokens",
                "generated_tokens",
                "well_formed",
            ] {
                assert!(paper.get(key).is_some(), "{key} in {paper}");
            }
            assert!(paper["generated_tokens"].as_u64().unwrap() > 0, "{paper}");
        }
    }
    let broken_row = &models[1];
    let reason = broken_row["error"].as_str().unwrap();
    assert!(reason.contains("broken.gguf"), "{reason}");
    assert!(broken_row["quality"].is_null());

    // The unreadable paper is listed with its reason and given to no model.
    let papers = json["papers"].as_array().unwrap();
    assert_eq!(papers.len(), 3);
    let bad: Vec<_> = papers.iter().filter(|p| !p["error"].is_null()).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["id"], "not-a-pdf.pdf");
    for key in [
        "cpu",
        "threads",
        "device",
        "paperdigest_version",
        "candle_version",
    ] {
        assert!(json["machine"].get(key).is_some(), "{key}");
    }
    assert_eq!(json["machine"]["threads"], 1);

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "## Overview",
        "### Seconds per paper (mean) (lower is better)",
        "### Decode tokens/s (higher is better)",
        "★",
        "error: cannot load",
        "## Reproduce",
        "bench digest --models",
        "![quality-vs-seconds.svg](quality-vs-seconds.svg)",
        "not-a-pdf.pdf",
    ] {
        assert!(md.contains(needle), "`{needle}` missing from:\n{md}");
    }
    for plot in ["quality-vs-seconds.svg", "tokens-per-second.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(
            svg.contains("tiny-llama") && svg.contains("tiny-qwen2"),
            "{plot}"
        );
    }
    // Each model that ran has its digest in the digest format.
    let digest = std::fs::read_to_string(out.join("digests/01-tiny-llama.md")).unwrap();
    assert!(digest.contains("Main Problem"), "{digest}");
    assert!(out.join("digests/03-tiny-qwen2.md").is_file());
    assert!(!out.join("digests/02-broken.md").exists());
}
