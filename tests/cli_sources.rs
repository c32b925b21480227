//! The `paperdigest` binary against the fixture server: endpoints from the environment, `fetch`
//! filling the cache once, empty days, `--offline` proven to make no request, and one failing
//! paper not failing the others.

mod fixture;

use std::path::Path;
use std::process::{Command, Output};

use fixture::{DAY, DAY_IDS, Fixture, Reply};

/// Runs the binary with both services pointed at the fixture and its own cache.
fn paperdigest(fx: &Fixture, cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paperdigest"))
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .env("HF_ENDPOINT", fx.url())
        .env("ARXIV_ENDPOINT", fx.url())
        .env("PAPERDIGEST_CONFIG", cache.join("no-config.toml"))
        // Tiny tensors only lose time when spread over threads.
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("PAPERDIGEST_CACHE")
        .output()
        .expect("run paperdigest")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn fetch_of_a_day_caches_everything_and_a_second_fetch_downloads_no_pdf() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let first = paperdigest(&fx, cache.path(), &["fetch", "--date", DAY]);
    assert!(first.status.success(), "{}", text(&first));
    let out = text(&first);
    for id in DAY_IDS {
        assert!(out.contains(id), "{id} missing from:\n{out}");
    }
    let pdfs = fx.count_prefix("/pdf/");
    assert_eq!(pdfs, DAY_IDS.len(), "one download per paper");
    assert!(
        fx.seen()
            .iter()
            .any(|s| s.target.starts_with("/api/daily_papers")),
        "HF_ENDPOINT was not used"
    );

    let second = paperdigest(&fx, cache.path(), &["fetch", "--date", DAY]);
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(fx.count_prefix("/pdf/"), pdfs, "a PDF was downloaded again");
}

#[test]
fn an_empty_day_gives_an_empty_digest_and_success() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let out = cache.path().join("empty.md");
    let run = paperdigest(
        &fx,
        cache.path(),
        &[
            "digest",
            "--date",
            "2026-01-10",
            "--lang",
            "en",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(run.status.success(), "{}", text(&run));
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(
        md.starts_with("# 🤗 Daily Hugging Face Paper Digest - 2026-01-10\n"),
        "{md}"
    );
    assert!(md.contains("No papers for this day."), "{md}");
}

#[test]
fn an_invalid_date_is_refused_before_any_request() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let run = paperdigest(&fx, cache.path(), &["digest", "--date", "2026-02-30"]);
    assert_eq!(run.status.code(), Some(2), "usage error");
    assert!(text(&run).contains("not a date"), "{}", text(&run));
    assert_eq!(fx.count(), 0);
}

#[test]
fn offline_makes_no_request_and_names_what_is_missing() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let run = paperdigest(
        &fx,
        cache.path(),
        &["fetch", "--offline", "2601.05242", "hep-th/9901001"],
    );
    assert_eq!(run.status.code(), Some(3), "{}", text(&run));
    let out = text(&run);
    assert!(
        out.contains("offline") && out.contains("2601.05242"),
        "{out}"
    );
    assert_eq!(fx.count(), 0, "offline run sent requests: {:?}", fx.seen());

    // Filled once online, the same fetch then works offline, still without a request.
    let online = paperdigest(&fx, cache.path(), &["fetch", "--date", DAY]);
    assert!(online.status.success(), "{}", text(&online));
    let before = fx.count();
    let offline = paperdigest(&fx, cache.path(), &["fetch", "--offline", "--date", DAY]);
    assert!(offline.status.success(), "{}", text(&offline));
    assert_eq!(fx.count(), before, "offline run sent requests");
}

#[test]
fn one_bad_pdf_fails_only_its_paper_and_the_exit_status_says_so() {
    let fx = Fixture::start();
    fx.always(
        &format!("/pdf/{}", DAY_IDS[1]),
        Reply::html(200, "<html><body>Please solve this captcha</body></html>"),
    );
    let cache = tempfile::tempdir().unwrap();
    let run = paperdigest(&fx, cache.path(), &["fetch", "--date", DAY]);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run));
    let out = text(&run);
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("failed")).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(failed[0].contains(DAY_IDS[1]), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok")).count(),
        2,
        "{out}"
    );
}

/// A tiny random-weight model: the pipeline runs end to end in seconds; its prose is noise,
/// so these tests check structure, not content.
fn tiny_model(dir: &Path) -> std::path::PathBuf {
    use paperdigest::llm::testing::{TinyModelSpec, write_tiny_model};
    let path = dir.join("tiny-llama.gguf");
    write_tiny_model(&path, &TinyModelSpec::default()).expect("tiny model");
    path
}

fn digest_with_tiny_model(
    fx: &Fixture,
    cache: &Path,
    model: &Path,
    out: &Path,
    args: &[&str],
) -> Output {
    let mut all = vec![
        "digest",
        "--lang",
        "en",
        "--model",
        model.to_str().unwrap(),
        "--max-tokens",
        "24",
        "--temperature",
        "0.8",
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    paperdigest(fx, cache, &all)
}

#[test]
fn digest_of_a_day_then_offline_from_the_cache_with_ids_and_pdfs_mixed() {
    let fx = Fixture::start();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let model = tiny_model(work.path());
    let online = work.path().join("online.md");
    let run = digest_with_tiny_model(&fx, &cache, &model, &online, &["--date", DAY]);
    assert!(run.status.success(), "{}", text(&run));
    let md = std::fs::read_to_string(&online).unwrap();
    assert_eq!(md.matches("\n## ").count(), 1 + DAY_IDS.len(), "{md}");
    // Links name the public hosts, not the fixture that served the data.
    assert!(
        md.contains(&format!("https://arxiv.org/abs/{}", DAY_IDS[0])),
        "{md}"
    );
    assert!(!md.contains("127.0.0.1"), "{md}");
    assert!(
        md.contains("https://github.com/"),
        "GitHub repo from metadata: {md}"
    );

    let before = fx.count();
    let offline = work.path().join("offline.md");
    let note = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paperdigest-note.pdf");
    let run = digest_with_tiny_model(
        &fx,
        &cache,
        &model,
        &offline,
        &["--offline", DAY_IDS[2], note.to_str().unwrap(), DAY_IDS[0]],
    );
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(fx.count(), before, "an offline digest sent requests");
    let md = std::fs::read_to_string(&offline).unwrap();
    let titles: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("## ") && !l.starts_with("## 📰"))
        .collect();
    assert_eq!(titles.len(), 3, "{md}");
    assert!(
        titles[1].contains("paperdigest: Private Daily Paper Digests"),
        "{titles:?}"
    );
}

#[test]
fn a_paper_without_its_pdf_stays_in_the_digest_with_the_reason() {
    let fx = Fixture::start();
    fx.always(
        &format!("/pdf/{}", DAY_IDS[1]),
        Reply::html(200, "<html><body>Please solve this captcha</body></html>"),
    );
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let model = tiny_model(work.path());
    let out = work.path().join("digest.md");
    let run = digest_with_tiny_model(
        &fx,
        &cache,
        &model,
        &out,
        &["--date", DAY, "--format", "md,json"],
    );
    assert_eq!(run.status.code(), Some(3), "{}", text(&run));
    // The JSON keeps the failed paper's entry, with its metadata, links and reason.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.with_extension("json")).unwrap())
            .unwrap();
    let papers = json["papers"].as_array().expect("papers");
    assert_eq!(papers.len(), DAY_IDS.len());
    let failed: Vec<&serde_json::Value> = papers.iter().filter(|p| !p["error"].is_null()).collect();
    assert_eq!(failed.len(), 1, "{json}");
    assert_eq!(
        failed[0]["links"]["arxiv_abs"],
        format!("https://arxiv.org/abs/{}", DAY_IDS[1])
    );
    assert!(failed[0]["main_problem"].is_null() && failed[0]["grounding"].is_null());
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("PDF")
    );
    for paper in papers.iter().filter(|p| p["error"].is_null()) {
        let grounding = &paper["grounding"];
        assert!(
            grounding["grounded"].as_u64() <= grounding["numbers"].as_u64(),
            "{paper}"
        );
        assert_eq!(
            paper["patent_ideas"].as_array().map(Vec::len),
            Some(3),
            "{paper}"
        );
    }
    let md = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        md.matches("### Main Problem:").count(),
        DAY_IDS.len() - 1,
        "{md}"
    );
    let failed = md
        .split("\n## ")
        .find(|part| part.contains(&format!("arxiv.org/abs/{}", DAY_IDS[1])))
        .expect("failed paper kept");
    assert!(
        failed.contains("This paper could not be summarised"),
        "{failed}"
    );
    assert!(failed.contains("PDF"), "{failed}");
    assert!(
        failed.contains("**Authors:**") && !failed.contains("**Authors:** N/A"),
        "{failed}"
    );
}
