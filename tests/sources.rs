//! The remote sources against a fixture server on 127.0.0.1 that speaks both the Hugging Face
//! and the arXiv protocols, with faults injected: each case recovers or fails only the paper
//! concerned, with a message that names it.

mod fixture;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use fixture::{DAY, Fixture, Reply};
use paperdigest::net::{HttpClient, NetConfig, NetError, user_agent};
use paperdigest::paper::{ArxivId, PaperOrigin};
use paperdigest::sources::remote::{Endpoints, Remote, SourceError};
use paperdigest::store::Cache;

const CONTACT: &str = "tests@example.org";

/// Small timeouts and intervals so the suite stays fast.
fn config() -> NetConfig {
    NetConfig {
        contact: Some(CONTACT.to_string()),
        connect_timeout: Duration::from_millis(500),
        read_timeout: Duration::from_millis(500),
        max_retries: 3,
        backoff_base: Duration::from_millis(20),
        max_total_wait: Duration::from_secs(3),
        max_pdf_bytes: 1024 * 1024,
        offline: false,
        host_intervals: Vec::new(),
        show_progress: false,
    }
}

fn remote_with(fx: &Fixture, cache: &Path, cfg: NetConfig) -> Remote {
    Remote::new(
        HttpClient::new(cfg).unwrap(),
        Cache::new(cache),
        Endpoints {
            hf: fx.url(),
            arxiv: fx.url(),
            arxiv_interval: Duration::from_millis(5),
        },
    )
}

fn remote(fx: &Fixture, cache: &Path) -> Remote {
    remote_with(fx, cache, config())
}

fn offline(fx: &Fixture, cache: &Path) -> Remote {
    remote_with(
        fx,
        cache,
        NetConfig {
            offline: true,
            ..config()
        },
    )
}

fn day() -> NaiveDate {
    DAY.parse().unwrap()
}

fn id(s: &str) -> ArxivId {
    s.parse().unwrap()
}

/// Files left in the cache's PDF folders, relative, sorted (temporary files included).
fn pdf_files(cache: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let Ok(dirs) = std::fs::read_dir(cache.join("pdf")) else {
        return files;
    };
    for dir in dirs.flatten() {
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let name = file.file_name().into_string().unwrap();
            if !name.ends_with(".lock") {
                files.push(format!("{}/{name}", dir.file_name().into_string().unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn day_listing_pages_until_empty_with_real_shaped_metadata() {
    let fx = Fixture::start();
    fx.set_page_size(2);
    let cache = tempfile::tempdir().unwrap();
    let papers = remote(&fx, cache.path()).list_day(day()).unwrap();

    let ids: Vec<String> = papers
        .iter()
        .map(|p| p.meta.arxiv_id.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(ids, fixture::DAY_IDS);
    let gdpo = &papers[0].meta;
    assert!(gdpo.title.starts_with("GDPO: Group reward-Decoupled"));
    assert_eq!(gdpo.authors.len(), 13);
    assert_eq!(gdpo.authors[0], "Shih-Yang Liu");
    assert_eq!(gdpo.published, NaiveDate::from_ymd_opt(2026, 1, 8));
    assert_eq!(
        gdpo.github_repo.as_deref(),
        Some("https://github.com/NVlabs/GDPO")
    );
    assert_eq!(gdpo.origin, PaperOrigin::HuggingFace);
    assert!(
        papers[0]
            .summary
            .as_deref()
            .unwrap()
            .starts_with("As language models")
    );
    let fusion = &papers[1].meta;
    assert_eq!(
        fusion.title,
        "Token-Level LLM Collaboration via FusionRoute"
    );
    assert_eq!(fusion.github_repo, None);
    let links = fusion.links();
    assert_eq!(
        links.huggingface.as_deref(),
        Some("https://huggingface.co/papers/2601.05106")
    );
    assert_eq!(
        links.pdf.as_deref(),
        Some("https://arxiv.org/pdf/2601.05106.pdf")
    );

    let targets: Vec<String> = fx.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        [0, 1, 2].map(|p| format!("/api/daily_papers?date=2026-01-09&limit=100&p={p}"))
    );
}

#[test]
fn empty_day_is_an_empty_list() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let weekend = NaiveDate::from_ymd_opt(2026, 1, 10).unwrap();
    assert!(
        remote(&fx, cache.path())
            .list_day(weekend)
            .unwrap()
            .is_empty()
    );
    assert_eq!(fx.count(), 1);
}

#[test]
fn rejected_date_is_a_clear_error_without_retries() {
    let fx = Fixture::start();
    fx.always(
        "/api/daily_papers",
        Reply::json(400, r#"{"error":"Invalid date"}"#),
    );
    let cache = tempfile::tempdir().unwrap();
    let err = remote(&fx, cache.path()).list_day(day()).unwrap_err();
    assert!(matches!(err, SourceError::InvalidDate { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("2026-01-09") && msg.contains("HTTP 400") && msg.contains("Invalid date"),
        "{msg}"
    );
    assert_eq!(fx.count(), 1);
}

#[test]
fn malformed_listing_is_a_clear_error() {
    let fx = Fixture::start();
    fx.always(
        "/api/daily_papers",
        Reply::json(200, r#"[{"paper": {"id": "#),
    );
    let cache = tempfile::tempdir().unwrap();
    let err = remote(&fx, cache.path()).list_day(day()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::BadListing { .. }), "{msg}");
    assert!(
        msg.contains("2026-01-09") && msg.contains("malformed JSON"),
        "{msg}"
    );
}

#[test]
fn metadata_for_new_and_old_style_ids() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let remote = remote(&fx, cache.path());

    let gdpo = remote.paper(&id("2601.05242v1")).unwrap();
    assert_eq!(gdpo.meta.origin, PaperOrigin::HuggingFace);
    assert_eq!(
        gdpo.meta.arxiv_id,
        Some(id("2601.05242v1")),
        "asked version kept"
    );
    assert_eq!(
        gdpo.meta.github_repo.as_deref(),
        Some("https://github.com/NVlabs/GDPO")
    );
    assert_eq!(fx.count_prefix("/api/papers/2601.05242"), 1);

    // Hugging Face does not know it (404): the arXiv API answers.
    let old = remote.paper(&id("hep-th/9901001")).unwrap();
    assert_eq!(old.meta.origin, PaperOrigin::Arxiv);
    assert_eq!(old.meta.title, "An Old-Style Paper Known Only to arXiv");
    assert_eq!(old.meta.arxiv_id, Some(id("hep-th/9901001v1")));
    assert_eq!(old.meta.published, NaiveDate::from_ymd_opt(1999, 1, 4));
    assert_eq!(old.meta.authors, ["A. Physicist"]);
    assert_eq!(old.meta.github_repo, None);
    assert_eq!(old.summary.as_deref(), Some("An abstract from 1999."));
    assert_eq!(fx.count_prefix("/api/papers/hep-th/9901001"), 1);
    assert_eq!(fx.count_prefix("/api/query?id_list=hep-th/9901001"), 1);
}

#[test]
fn arxiv_answers_when_hugging_face_is_unreachable() {
    let fx = Fixture::start();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let cache = tempfile::tempdir().unwrap();
    let remote = Remote::new(
        HttpClient::new(config()).unwrap(),
        Cache::new(cache.path()),
        Endpoints {
            hf: format!("http://{closed}"),
            arxiv: fx.url(),
            arxiv_interval: Duration::from_millis(5),
        },
    );
    let started = Instant::now();
    let paper = remote.paper(&id("2601.05106")).unwrap();
    assert_eq!(paper.meta.origin, PaperOrigin::Arxiv);
    assert_eq!(
        paper.meta.title,
        "Token-Level LLM Collaboration via FusionRoute"
    );
    assert_eq!(paper.meta.published, NaiveDate::from_ymd_opt(2026, 1, 8));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a refused connection is not retried"
    );
}

#[test]
fn malformed_hugging_face_answer_falls_back_to_arxiv() {
    let fx = Fixture::start();
    fx.always("/api/papers/2601.05242", Reply::json(200, "{\"id\": 2601"));
    let cache = tempfile::tempdir().unwrap();
    let paper = remote(&fx, cache.path()).paper(&id("2601.05242")).unwrap();
    assert_eq!(paper.meta.origin, PaperOrigin::Arxiv);
    assert_eq!(paper.meta.arxiv_id, Some(id("2601.05242v2")));
}

#[test]
fn unknown_id_fails_naming_the_id_and_both_sources() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let err = remote(&fx, cache.path())
        .paper(&id("2601.99999"))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::Metadata { .. }), "{msg}");
    assert!(msg.contains("no metadata for 2601.99999"), "{msg}");
    assert!(
        msg.contains("HTTP 404") && msg.contains("Paper not found"),
        "{msg}"
    );
    assert!(msg.contains("no entry for 2601.99999"), "{msg}");
    assert_eq!(fx.count_prefix("/api/papers/"), 1, "404 is not retried");
}

#[test]
fn arxiv_error_feed_is_reported() {
    let fx = Fixture::start();
    fx.always(
        "/api/query",
        Reply::new(
            200,
            "application/atom+xml",
            fixture::error_feed("2601.99999"),
        ),
    );
    let cache = tempfile::tempdir().unwrap();
    let msg = remote(&fx, cache.path())
        .paper(&id("2601.99999"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("arXiv API error: incorrect id format for 2601.99999"),
        "{msg}"
    );
}

#[test]
fn rate_limit_retry_after_is_honoured() {
    let fx = Fixture::start();
    fx.once(
        "/api/daily_papers",
        vec![Reply::json(429, r#"{"error":"rate limited"}"#).header("Retry-After", "1")],
    );
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let papers = remote(&fx, cache.path()).list_day(day()).unwrap();
    assert_eq!(papers.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited as asked"
    );
    let seen = fx.seen();
    assert_eq!(
        seen[0].target, seen[1].target,
        "the same page is asked again"
    );
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(950));
}

#[test]
fn retry_after_beyond_the_wait_cap_gives_up_at_once() {
    let fx = Fixture::start();
    fx.always(
        "/api/daily_papers",
        Reply::json(429, "{}").header("Retry-After", "3600"),
    );
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = remote(&fx, cache.path()).list_day(day()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("HTTP 429") && msg.contains("Retry-After 3600 s") && msg.contains("gave up"),
        "{msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(fx.count(), 1);
}

#[test]
fn server_error_once_recovers() {
    let fx = Fixture::start();
    fx.once(
        "/api/papers/2601.05249",
        vec![Reply::html(503, "<html>Service Unavailable</html>")],
    );
    let cache = tempfile::tempdir().unwrap();
    let paper = remote(&fx, cache.path()).paper(&id("2601.05249")).unwrap();
    assert_eq!(paper.meta.origin, PaperOrigin::HuggingFace);
    assert_eq!(fx.count_prefix("/api/papers/2601.05249"), 2);
}

#[test]
fn slow_answer_times_out_and_is_retried() {
    let fx = Fixture::start();
    let slow = Reply::json(200, "[]").delayed(Duration::from_millis(1500));
    fx.once("/api/papers/2601.05249", vec![slow.clone()]);
    let cache = tempfile::tempdir().unwrap();
    let paper = remote(&fx, cache.path()).paper(&id("2601.05249")).unwrap();
    assert_eq!(
        paper.meta.origin,
        PaperOrigin::HuggingFace,
        "recovered on retry"
    );
    assert_eq!(fx.count_prefix("/api/papers/2601.05249"), 2);

    // Always too slow: the listing fails, naming the timeout and the attempts.
    fx.always("/api/daily_papers", slow);
    let cfg = NetConfig {
        max_retries: 1,
        ..config()
    };
    let err = remote_with(&fx, cache.path(), cfg)
        .list_day(day())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("no answer from")
            && msg.contains("within 0.5 s")
            && msg.contains("gave up after 2 attempts"),
        "{msg}"
    );
}

#[test]
fn bad_pdfs_fail_only_their_paper_and_are_never_cached() {
    let fx = Fixture::start();
    let pdf = fixture::tiny_pdf("GDPO");
    let len = pdf.len();
    fx.always("/pdf/2601.05242", Reply::pdf(pdf).cut_at(len / 2));
    fx.always(
        "/pdf/2601.05106",
        Reply::html(
            200,
            "<!DOCTYPE html><html><body>Are you a robot?</body></html>",
        ),
    );
    let cache = tempfile::tempdir().unwrap();
    let fetched = remote(&fx, cache.path()).fetch_day(day()).unwrap();
    assert_eq!(fetched.len(), 3);

    let cut = fetched[0].pdf.as_ref().unwrap_err();
    let msg = cut.to_string();
    assert!(
        msg.contains("PDF of 2601.05242v2") && msg.contains("cut off"),
        "{msg}"
    );
    assert!(msg.contains(&format!("expected {len} bytes")), "{msg}");
    assert!(matches!(
        cut,
        SourceError::Pdf { source, .. } if matches!(source.last(), NetError::Truncated { .. })
    ));
    assert_eq!(
        fx.count_prefix("/pdf/2601.05242"),
        4,
        "cut-off bodies are retried"
    );

    let html = fetched[1].pdf.as_ref().unwrap_err().to_string();
    assert!(
        html.contains("PDF of 2601.05106v1")
            && html.contains("is not a PDF")
            && html.contains("text/html"),
        "{html}"
    );
    assert!(html.contains("<!DOCTYPE html>"), "{html}");
    assert_eq!(
        fx.count_prefix("/pdf/2601.05106"),
        1,
        "an HTML page is not retried"
    );

    let good = fetched[2].pdf.as_ref().unwrap();
    assert!(std::fs::read(good).unwrap().starts_with(b"%PDF-"));
    assert_eq!(
        fetched[2].paper.meta.title.split(':').next(),
        Some("RL-AWB")
    );
    assert_eq!(
        pdf_files(cache.path()),
        ["2601.05249/v1.pdf"],
        "nothing else, no temp files"
    );
}

#[test]
fn oversized_pdf_is_refused() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let cfg = NetConfig {
        max_pdf_bytes: 100,
        ..config()
    };
    let fetched = remote_with(&fx, cache.path(), cfg).fetch_ids(&[id("2601.05249v1")]);
    let msg = fetched[0].pdf.as_ref().unwrap_err().to_string();
    assert!(
        msg.contains("2601.05249v1") && msg.contains("larger than the limit of 100 bytes"),
        "{msg}"
    );
    assert!(pdf_files(cache.path()).is_empty());
}

#[test]
fn second_fetch_of_a_day_downloads_no_pdf_again() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let first = remote(&fx, cache.path()).fetch_day(day()).unwrap();
    assert!(first.iter().all(|f| f.pdf.is_ok()));
    assert_eq!(fx.count_prefix("/pdf/"), 3);
    assert_eq!(
        pdf_files(cache.path()),
        [
            "2601.05106/v1.pdf",
            "2601.05242/v2.pdf",
            "2601.05249/v1.pdf"
        ],
        "keyed by the current version"
    );

    let again = remote(&fx, cache.path());
    let second = again.fetch_day(day()).unwrap();
    assert_eq!(fx.count_prefix("/pdf/"), 3, "no PDF downloaded again");
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.pdf.as_ref().unwrap(), b.pdf.as_ref().unwrap());
    }
    // Only the listing (a page and the empty page after it) and one version query.
    assert_eq!(again.client().requests_made(), 3);
}

#[test]
fn a_new_version_is_a_new_cache_entry() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let remote = remote(&fx, cache.path());
    let v1 = remote
        .fetch_ids(&[id("2601.05242v1")])
        .remove(0)
        .pdf
        .unwrap();
    let v2 = remote
        .fetch_ids(&[id("2601.05242v2")])
        .remove(0)
        .pdf
        .unwrap();
    assert_ne!(v1, v2);
    assert_ne!(std::fs::read(&v1).unwrap(), std::fs::read(&v2).unwrap());
    assert_eq!(fx.count_prefix("/pdf/2601.05242v1"), 1);
    assert_eq!(fx.count_prefix("/pdf/2601.05242v2"), 1);
    remote
        .fetch_ids(&[id("2601.05242v1")])
        .remove(0)
        .pdf
        .unwrap();
    assert_eq!(fx.count_prefix("/pdf/"), 2, "v1 came from the cache");
}

#[test]
fn offline_makes_no_request_and_names_what_is_missing() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let remote = offline(&fx, cache.path());

    let err = remote.list_day(day()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::NotCached { .. }), "{msg}");
    assert!(
        msg.contains("listing of 2026-01-09") && msg.contains("2026-01-09.json"),
        "{msg}"
    );

    let fetched = remote.fetch_ids(&[id("2601.05242"), id("hep-th/9901001v1")]);
    let msg = fetched[0].pdf.as_ref().unwrap_err().to_string();
    assert!(
        msg.starts_with("offline, and the metadata of 2601.05242 is not in the cache"),
        "{msg}"
    );
    assert!(
        fetched[1]
            .pdf
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("hep-th/9901001v1")
    );

    assert_eq!(fx.count(), 0, "the server saw no request");
    assert_eq!(remote.client().requests_made(), 0);
}

#[test]
fn offline_works_from_a_filled_cache() {
    let cache = tempfile::tempdir().unwrap();
    let online = {
        let fx = Fixture::start();
        remote(&fx, cache.path()).fetch_day(day()).unwrap()
    };
    let fx = Fixture::start();
    let remote = offline(&fx, cache.path());
    let fetched = remote.fetch_day(day()).unwrap();
    assert_eq!(fetched.len(), 3);
    for (a, b) in online.iter().zip(&fetched) {
        assert_eq!(a.pdf.as_ref().unwrap(), b.pdf.as_ref().unwrap());
        assert_eq!(a.paper.meta.title, b.paper.meta.title);
        assert_eq!(a.paper.meta.github_repo, b.paper.meta.github_repo);
        assert_eq!(a.paper.summary, b.paper.summary);
    }
    let gdpo = remote.paper(&id("2601.05242")).unwrap();
    assert_eq!(
        gdpo.meta.arxiv_id,
        Some(id("2601.05242v2")),
        "version learnt online"
    );
    let missing = remote.fetch_ids(&[id("2601.05242v1")]).remove(0);
    let msg = missing.pdf.unwrap_err().to_string();
    assert!(
        msg.contains("the PDF of 2601.05242v1 is not in the cache") && msg.contains("v1.pdf"),
        "{msg}"
    );
    assert_eq!(fx.count(), 0);
}

#[test]
fn listing_comes_from_the_cache_when_hugging_face_fails() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    remote(&fx, cache.path()).list_day(day()).unwrap();
    fx.always("/api/daily_papers", Reply::html(503, "down"));
    let cfg = NetConfig {
        max_retries: 1,
        ..config()
    };
    let papers = remote_with(&fx, cache.path(), cfg).list_day(day()).unwrap();
    assert_eq!(papers.len(), 3);
}

#[test]
fn a_forbidden_host_is_not_asked_again() {
    let fx = Fixture::start();
    fx.always("/pdf/", Reply::html(403, "<html>Forbidden</html>"));
    let cache = tempfile::tempdir().unwrap();
    let fetched = remote(&fx, cache.path()).fetch_day(day()).unwrap();
    let first = fetched[0].pdf.as_ref().unwrap_err().to_string();
    assert!(first.contains("HTTP 403"), "{first}");
    for later in &fetched[1..] {
        let msg = later.pdf.as_ref().unwrap_err().to_string();
        assert!(msg.contains("answered 403 Forbidden earlier"), "{msg}");
    }
    assert_eq!(fx.count_prefix("/pdf/"), 1);
}

#[test]
fn requests_carry_the_user_agent_and_keep_the_arxiv_pace() {
    assert_eq!(Endpoints::default().arxiv_interval, Duration::from_secs(3));
    assert!(
        NetConfig::default()
            .host_intervals
            .contains(&("export.arxiv.org".to_string(), Duration::from_secs(3)))
    );

    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let interval = Duration::from_millis(250);
    let remote = Remote::new(
        HttpClient::new(config()).unwrap(),
        Cache::new(cache.path()),
        Endpoints {
            hf: fx.url(),
            arxiv: fx.url(),
            arxiv_interval: interval,
        },
    );
    let fetched = remote.fetch_ids(&[id("2601.05249v1"), id("2601.05106v1")]);
    assert!(fetched.iter().all(|f| f.pdf.is_ok()));
    let seen = fx.seen();
    assert_eq!(seen.len(), 4, "two metadata answers, two PDFs");
    for pair in seen.windows(2) {
        assert!(
            // Unpaced, these requests come a few milliseconds apart; the slack absorbs a
            // scheduler delay on a loaded machine.
            pair[1].at - pair[0].at >= interval - Duration::from_millis(100),
            "{} then {} after {:?}",
            pair[0].target,
            pair[1].target,
            pair[1].at - pair[0].at
        );
    }
    let expected = user_agent(Some(CONTACT));
    assert!(expected.contains("mailto:tests@example.org"));
    assert!(
        seen.iter().all(|s| s.user_agent == expected),
        "{:?}",
        seen[0].user_agent
    );
}

#[test]
fn concurrent_runs_share_one_cache() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..2)
        .map(|_| remote(&fx, cache.path()))
        .map(|remote| std::thread::spawn(move || remote.fetch_day(day()).unwrap()))
        .collect();
    for run in runs {
        let fetched = run.join().unwrap();
        for f in fetched {
            let pdf = std::fs::read(f.pdf.unwrap()).unwrap();
            assert!(pdf.starts_with(b"%PDF-") && pdf.ends_with(b"%%EOF\n"));
        }
    }
    assert_eq!(fx.count_prefix("/pdf/"), 3, "each PDF downloaded once");
    assert_eq!(pdf_files(cache.path()).len(), 3, "no temp files left");
}

#[test]
fn fetch_by_ids_keeps_order_and_isolates_failures() {
    let fx = Fixture::start();
    let cache = tempfile::tempdir().unwrap();
    let fetched = remote(&fx, cache.path()).fetch_ids(&[
        id("2601.05249"),
        id("2601.99999"),
        id("hep-th/9901001"),
    ]);
    assert_eq!(fetched.len(), 3);
    assert!(fetched[0].pdf.is_ok());
    assert_eq!(fetched[1].paper.meta.title, "arXiv:2601.99999");
    assert!(matches!(fetched[1].pdf, Err(SourceError::Metadata { .. })));
    let old = fetched[2].pdf.as_ref().unwrap();
    assert!(
        old.ends_with("pdf/hep-th_9901001/v1.pdf"),
        "{}",
        old.display()
    );
}
