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

/// A reading position in the digest's lines.
struct Cursor<'a> {
    md: &'a str,
    lines: Vec<&'a str>,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn next_nonempty(&mut self, what: &str) -> &'a str {
        while self.at < self.lines.len() && self.lines[self.at].trim().is_empty() {
            self.at += 1;
        }
        assert!(
            self.at < self.lines.len(),
            "digest ended before {what}:\n{}",
            self.md
        );
        self.at += 1;
        self.lines[self.at - 1]
    }

    fn expect(&mut self, line: &str) {
        assert_eq!(self.next_nonempty(line), line);
    }

    /// Counts the `- ` items that follow directly, checking none is empty.
    fn bullets(&mut self) -> usize {
        let mut count = 0;
        while self.at < self.lines.len() && self.lines[self.at].starts_with("- ") {
            assert!(
                self.lines[self.at].trim().len() > 4,
                "empty item: {:?}",
                self.lines[self.at]
            );
            count += 1;
            self.at += 1;
        }
        count
    }

    fn prose(&mut self, heading: &str) {
        self.expect(heading);
        let text = self.next_nonempty("prose");
        assert!(
            !text.starts_with('#') && text.split_whitespace().count() >= 3,
            "{heading}: {text:?}"
        );
    }
}

/// Walks the digest line by line, checking each element of the reference format in order.
fn check_format(md: &str, expected: &Expected<'_>) {
    let mut c = Cursor {
        md,
        lines: md.lines().collect(),
        at: 0,
    };
    let title = c.next_nonempty("title");
    let date = title
        .strip_prefix("# 🤗 Daily Hugging Face Paper Digest - ")
        .unwrap_or_else(|| panic!("title line: {title:?}"));
    assert!(
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        "{title}"
    );
    let generated = c.next_nonempty("generated line");
    assert!(
        generated.starts_with(expected.generated_prefix),
        "{generated}"
    );
    assert!(generated.ends_with(&format!("`{MODEL}`.")), "{generated}");
    c.expect("## 📰 Summary of Papers");
    c.expect("--- ");
    c.expect("## 1. paperdigest: Private Daily Paper Digests with Local Quantized Language Models");
    let authors = c.next_nonempty("authors");
    assert!(authors.starts_with(expected.authors_label), "{authors}");
    assert!(authors.contains("Lan Nguyen"), "{authors}");
    let published = c.next_nonempty("published");
    assert!(
        published.starts_with(expected.published_label),
        "{published}"
    );
    let tags = c.next_nonempty("tags");
    assert!(tags.starts_with(expected.tags_label), "{tags}");
    let tag_count = tags[expected.tags_label.len()..].split(", ").count();
    assert!((3..=8).contains(&tag_count), "{tags}");
    c.prose("### Main Problem:");
    c.prose("### Main Idea:");
    c.expect("### Main Results:");
    let results = c.bullets();
    assert!((3..=5).contains(&results), "{results} results");
    c.prose("### Conclusion & Future Works:");
    c.expect("### Brainstorming Space:");
    for heading in ["#### 1. Publish Papers:", "#### 2. Patent:"] {
        c.expect(heading);
        assert_eq!(c.bullets(), 3, "{heading}");
    }
    c.expect(expected.links_heading);
    let header = c.next_nonempty("table header");
    assert!(
        header.starts_with("| ") && header.ends_with(" |"),
        "{header}"
    );
    c.expect("| :--- | :--- |");
    for platform in [
        "Hugging Face",
        "ArXiv Abstract",
        "PDF Download",
        "Github Repository",
    ] {
        // The bundled note is not on arXiv: every link is N/A.
        c.expect(&format!("| {platform} | N/A |"));
    }
    assert!(
        c.lines[c.at..].iter().all(|l| l.trim().is_empty()),
        "unexpected trailing content"
    );
}

fn run_digest(lang: &str, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_paperdigest"))
        // A short context and answers keep the test quick; every element is still written.
        .args([
            "digest",
            "--lang",
            lang,
            "--max-context",
            "1024",
            "--max-tokens",
            "64",
        ])
        .args(["--model", MODEL])
        .arg("--out")
        .arg(out)
        .arg(example_pdf())
        // A cache of its own: the summary cache must not answer for the model.
        .arg("--cache-dir")
        .arg(out.with_extension("cache"))
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
        check_format(&md, expected);
        // Language fidelity: no character of a script the language does not use, anywhere
        // (the title line's emoji are the reference format's own).
        let policy = paperdigest::digest::ScriptPolicy::for_lang(lang.parse().expect("lang"));
        let body: String = md.lines().skip(1).collect::<Vec<_>>().join("\n");
        let foreign: Vec<char> = policy
            .foreign_chars(&body)
            .into_iter()
            .filter(|c| *c != '📰')
            .collect();
        assert!(
            foreign.is_empty(),
            "foreign characters {foreign:?} in:\n{md}"
        );
    }
}
