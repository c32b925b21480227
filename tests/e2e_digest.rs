//! End to end: the `paperdigest` binary digests the bundled example paper with the real
//! SmolLM2 model, in Vietnamese and in English, and every element of the reference format is
//! there. The model is provisioned by the project itself (registry, store, pip mirror).

use std::path::{Path, PathBuf};
use std::process::Command;

use paperdigest::llm::registry::{ModelStore, Registry, ResolveOptions, resolve};

const MODEL: &str = "smollm2-135m-instruct";

fn example_pdf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paperdigest-note.pdf")
}

/// The model file, from the store or fetched into it once.
fn provision_model() -> PathBuf {
    let registry = Registry::builtin().expect("built-in registry");
    let store = ModelStore::default_location().expect("model store");
    let resolved = resolve(MODEL, &registry, &store, &ResolveOptions::default())
        .unwrap_or_else(|e| panic!("cannot provision {MODEL}: {e}"));
    resolved.path
}

struct Expected<'a> {
    authors_label: &'a str,
    published_label: &'a str,
    tags_label: &'a str,
    links_heading: &'a str,
    generated_prefix: &'a str,
}

const VI: Expected<'static> = Expected {
    authors_label: "**Tác giả:** ",
    published_label: "**Xuất bản lúc:** ",
    tags_label: "**Tag:** ",
    links_heading: "### Các đường dẫn liên quan",
    generated_prefix: "Báo cáo được tạo tự động vào lúc ",
};

const EN: Expected<'static> = Expected {
    authors_label: "**Authors:** ",
    published_label: "**Published:** ",
    tags_label: "**Tags:** ",
    links_heading: "### Related Links",
    generated_prefix: "Report generated automatically at ",
};

/// Walks the digest line by line, checking each element of the reference format in order.
fn check_format(md: &str, expected: &Expected<'_>, date: &str) {
    let lines: Vec<&str> = md.lines().collect();
    let mut at = 0usize;
    let mut next_nonempty = |what: &str| -> &str {
        while at < lines.len() && lines[at].trim().is_empty() {
            at += 1;
        }
        assert!(at < lines.len(), "digest ended before {what}:\n{md}");
        at += 1;
        lines[at - 1]
    };
    assert_eq!(
        next_nonempty("title"),
        format!("# 🤗 Daily Hugging Face Paper Digest - {date}")
    );
    let generated = next_nonempty("generated line");
    assert!(
        generated.starts_with(expected.generated_prefix),
        "{generated}"
    );
    assert!(generated.ends_with(&format!("`{MODEL}`.")), "{generated}");
    assert_eq!(next_nonempty("summary heading"), "## 📰 Summary of Papers");
    assert_eq!(next_nonempty("separator"), "--- ");
    let title = next_nonempty("paper title");
    assert_eq!(
        title,
        "## 1. paperdigest: Private Daily Paper Digests with Local Quantized Language Models"
    );
    let authors = next_nonempty("authors");
    assert!(authors.starts_with(expected.authors_label), "{authors}");
    assert!(authors.contains("Lan Nguyen"), "{authors}");
    let published = next_nonempty("published");
    assert!(
        published.starts_with(expected.published_label),
        "{published}"
    );
    let tags = next_nonempty("tags");
    assert!(tags.starts_with(expected.tags_label), "{tags}");
    let tag_count = tags[expected.tags_label.len()..].split(", ").count();
    assert!((3..=8).contains(&tag_count), "{tags}");

    let mut prose = |heading: &str| {
        assert_eq!(next_nonempty(heading), heading);
        let text = next_nonempty("prose");
        assert!(
            !text.starts_with('#') && text.split_whitespace().count() >= 3,
            "{heading}: {text:?}"
        );
    };
    prose("### Main Problem:");
    prose("### Main Idea:");
    assert_eq!(next_nonempty("results"), "### Main Results:");
    let mut results = 0;
    while lines[at].starts_with("- ") {
        assert!(lines[at].len() > 4, "empty result item");
        results += 1;
        at += 1;
    }
    assert!((3..=5).contains(&results), "{results} results");
    prose("### Conclusion & Future Works:");
    assert_eq!(next_nonempty("brainstorming"), "### Brainstorming Space:");
    for heading in ["#### 1. Publish Papers:", "#### 2. Patent:"] {
        assert_eq!(next_nonempty(heading), heading);
        let mut items = 0;
        while lines[at].starts_with("- ") {
            assert!(lines[at].len() > 4, "empty idea");
            items += 1;
            at += 1;
        }
        assert_eq!(items, 3, "{heading}");
    }
    assert_eq!(next_nonempty("links heading"), expected.links_heading);
    let header = next_nonempty("table header");
    assert!(
        header.starts_with("| ") && header.ends_with(" |"),
        "{header}"
    );
    assert_eq!(next_nonempty("table rule"), "| :--- | :--- |");
    for platform in [
        "Hugging Face",
        "ArXiv Abstract",
        "PDF Download",
        "Github Repository",
    ] {
        // The bundled note is not on arXiv: every link is N/A.
        assert_eq!(next_nonempty(platform), format!("| {platform} | N/A |"));
    }
    assert!(
        lines[at..].iter().all(|l| l.trim().is_empty()),
        "unexpected trailing content"
    );
}

fn run_digest(lang: &str, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_paperdigest"))
        .args([
            "digest",
            "--lang",
            lang,
            "--date",
            "2026-01-09",
            "--max-context",
            "1536",
        ])
        .args(["--model", MODEL])
        .arg("--out")
        .arg(out)
        .arg(example_pdf())
        .env("PAPERDIGEST_CONFIG", out.with_extension("no-config.toml"))
        .status()
        .expect("run paperdigest");
    assert!(status.success(), "digest --lang {lang} failed: {status}");
}

#[test]
fn digest_of_the_example_paper_in_both_languages() {
    let model = provision_model();
    assert!(model.is_file(), "{} missing", model.display());
    let dir = tempfile::tempdir().expect("tempdir");
    for (lang, expected) in [("vi", &VI), ("en", &EN)] {
        let out = dir.path().join(format!("digest.{lang}.md"));
        let started = std::time::Instant::now();
        run_digest(lang, &out);
        eprintln!(
            "digest --lang {lang}: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let md = std::fs::read_to_string(&out).expect("digest written");
        eprintln!("{md}");
        check_format(&md, expected, "2026-01-09");
    }
}
