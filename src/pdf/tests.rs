//! End-to-end tests of the PDF room: synthetic PDFs built with lopdf, bad inputs, the bundled
//! example paper, and every real paper in /work/shared/papers when that folder exists.

use std::time::{Duration, Instant};

use super::testpdf::{self, Part};
use super::*;

const LIGATURES: [char; 7] = [
    '\u{FB00}', '\u{FB01}', '\u{FB02}', '\u{FB03}', '\u{FB04}', '\u{FB05}', '\u{FB06}',
];

/// Paragraph text with hyphenation points (`|`), ligatures and a marker word at its end.
fn filler(topic: &str) -> String {
    format!(
        "This para|graph dis|cusses {topic} in enough words to \u{FB01}ll several lines of a col|umn. \
         It keeps go|ing with plain sen|tences so the lay|out has real para|graphs to or|der, \
         and the text \u{FB02}ows through re|pre|sen|ta|tions of mean|ing across the page. \
         Hyphen|ated words must come back whole after extrac|tion, and it ends with a marker \
         word {topic}end."
    )
}

/// What `filler` reads like once extracted.
fn filler_plain(topic: &str) -> String {
    filler(topic)
        .replace('|', "")
        .replace('\u{FB01}', "fi")
        .replace('\u{FB02}', "fl")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn synthetic_body() -> Vec<Part> {
    let mut body = Vec::new();
    for (heading, topic) in [
        ("1 Introduction", "intro"),
        ("2 Method", "method"),
        ("2.1 Details", "details"),
        ("3 Results", "results"),
        ("4 Conclusion", "conclusion"),
    ] {
        body.push(Part::Heading(heading.into()));
        body.push(Part::Para(filler(topic)));
        body.push(Part::Para(filler(&format!("{topic}2"))));
    }
    body.push(Part::Heading("References".into()));
    body.push(Part::Para(
        "A. Vaswani, N. Shazeer, and N. Parmar. 2017. Attention is all you need. In NeurIPS."
            .into(),
    ));
    body.push(Part::Para(
        "T. Brown, B. Mann, and N. Ryder. 2020. Language models are few-shot learners. In NeurIPS."
            .into(),
    ));
    body.push(Part::Heading("A Proofs".into()));
    body.push(Part::Para(filler("proofs")));
    body
}

fn synthetic(two_columns: bool, title: Option<&str>, author: Option<&str>) -> Vec<u8> {
    let pages = testpdf::paper(
        &["Synthetic Layouts for Testing", "Paper Extraction"],
        "Ada Lovelace    Alan Turing    Grace Hopper",
        "We describe a synthetic paper used to test the extractor. It has a title, three \
         authors, an abstract and numbered sections, followed by references and an appendix.",
        &synthetic_body(),
        two_columns,
        Some("arXiv:2401.12345v2  [cs.CL]  6 Feb 2024"),
    );
    testpdf::build(&pages, title, author)
}

fn section<'a>(doc: &'a Document, heading: &str) -> &'a Section {
    doc.sections
        .iter()
        .find(|s| s.heading == heading)
        .unwrap_or_else(|| panic!("no section {heading:?} in {:?}", headings(doc)))
}

fn headings(doc: &Document) -> Vec<&str> {
    doc.sections.iter().map(|s| s.heading.as_str()).collect()
}

#[test]
fn synthetic_papers_one_and_two_columns() {
    for two in [false, true] {
        let bytes = synthetic(two, None, None);
        let doc = extract_bytes(&bytes, "synthetic.pdf").expect("extracts");
        let ctx = format!("two_columns={two}: {doc:#?}");
        assert_eq!(
            doc.title.as_deref(),
            Some("Synthetic Layouts for Testing Paper Extraction"),
            "{ctx}"
        );
        assert_eq!(
            doc.authors,
            ["Ada Lovelace", "Alan Turing", "Grace Hopper"],
            "{ctx}"
        );
        assert_eq!(doc.arxiv_id.as_deref(), Some("2401.12345v2"), "{ctx}");
        assert_eq!(doc.stamp_date, NaiveDate::from_ymd_opt(2024, 2, 6), "{ctx}");
        assert_eq!(
            doc.creation_date,
            NaiveDate::from_ymd_opt(2024, 3, 5),
            "{ctx}"
        );
        let abs = doc.abstract_text.as_deref().unwrap_or_default();
        assert!(abs.starts_with("We describe a synthetic paper"), "{ctx}");
        assert!(
            abs.ends_with("followed by references and an appendix."),
            "{ctx}"
        );
        assert_eq!(
            headings(&doc),
            [
                "1 Introduction",
                "2 Method",
                "2.1 Details",
                "3 Results",
                "4 Conclusion",
                "A Proofs"
            ],
            "{ctx}"
        );
        let intro = &section(&doc, "1 Introduction").text;
        assert_eq!(
            intro,
            &format!("{}\n\n{}", filler_plain("intro"), filler_plain("intro2")),
            "{ctx}"
        );
        assert_eq!(
            section(&doc, "A Proofs").text,
            filler_plain("proofs"),
            "{ctx}"
        );
        assert!(section(&doc, "A Proofs").appendix, "{ctx}");
        assert!(!section(&doc, "4 Conclusion").appendix, "{ctx}");
        let all = doc.body_text();
        for absent in [
            "Vaswani",
            "few-shot learners",
            "Preprint under review",
            "arXiv:2401",
        ] {
            assert!(
                !all.contains(absent),
                "{absent:?} leaked into the body: {ctx}"
            );
        }
        // Page numbers are gone: no paragraph ends with a bare number line.
        assert!(
            !all.lines()
                .any(|l| l.trim().chars().all(|c| c.is_ascii_digit()) && !l.trim().is_empty()),
            "{ctx}"
        );
        assert!(!all.contains(LIGATURES), "{ctx}");
        assert!(doc.warnings.is_empty(), "{ctx}");
    }
}

#[test]
fn fixture_really_hyphenates() {
    for chars in [40, 78] {
        let lines = testpdf::wrap(&filler("x"), chars);
        assert!(lines.iter().any(|l| l.ends_with('-')), "{lines:?}");
    }
}

#[test]
fn info_dictionary_title_and_authors_win_when_meaningful() {
    let cases = [
        (
            Some("Synthetic Layouts for Testing Paper Extraction (v2)"),
            Some("A. Byron; C. Babbage"),
            "Synthetic Layouts for Testing Paper Extraction (v2)",
            vec!["A. Byron", "C. Babbage"],
        ),
        // Placeholder titles and an empty author field fall back to the page.
        (
            Some("paper.dvi"),
            Some(""),
            "Synthetic Layouts for Testing Paper Extraction",
            vec!["Ada Lovelace", "Alan Turing", "Grace Hopper"],
        ),
        (
            Some("Microsoft Word - draft.docx"),
            None,
            "Synthetic Layouts for Testing Paper Extraction",
            vec!["Ada Lovelace", "Alan Turing", "Grace Hopper"],
        ),
        // A login name in /Author is not an author list.
        (
            None,
            Some("Administrator"),
            "Synthetic Layouts for Testing Paper Extraction",
            vec!["Ada Lovelace", "Alan Turing", "Grace Hopper"],
        ),
    ];
    for (title, author, want_title, want_authors) in cases {
        let doc = extract_bytes(&synthetic(false, title, author), "info.pdf").expect("extracts");
        assert_eq!(doc.title.as_deref(), Some(want_title), "{title:?}");
        assert_eq!(doc.authors, want_authors, "{author:?}");
    }
}

#[test]
fn bad_inputs_give_clear_errors() {
    let html = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>";
    let cases: [(&[u8], &str); 4] = [
        (b"", "empty file"),
        (html, "HTML page"),
        (
            b"\x00\x01\x02garbage bytes that are not a pdf",
            "no %PDF- header",
        ),
        (b"PK\x03\x04zipzip", "ZIP"),
    ];
    for (bytes, want) in cases {
        match extract_bytes(bytes, "input.bin") {
            Err(e @ PdfError::NotPdf { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(want) && msg.contains("input.bin"), "{msg}");
            }
            other => panic!("{want}: expected NotPdf, got {other:?}"),
        }
    }
    let err = extract_bytes(b"%PDF-1.4\ntruncated", "cut.pdf").expect_err("malformed");
    assert!(matches!(err, PdfError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("cut.pdf"));
    let missing = extract_file(Path::new("/nonexistent/dir/paper.pdf")).expect_err("missing");
    assert!(matches!(missing, PdfError::Io { .. }) && missing.to_string().contains("paper.pdf"));
}

/// A paper whose only recognised heading is "References" keeps its body (after the abstract,
/// before the list) as one section, not the reference list.
#[test]
fn body_without_headings_is_kept_up_to_the_references() {
    let mut body: Vec<Part> = (0..40)
        .map(|i| Part::Para(filler(&format!("part{i}"))))
        .collect();
    body.push(Part::Heading("References".into()));
    body.push(Part::Para(
        "A. Vaswani, N. Shazeer, and N. Parmar. 2017. Attention is all you need. In NeurIPS."
            .into(),
    ));
    let pages = testpdf::paper(
        &["A Paper Without Section Headings"],
        "Ada Lovelace",
        "We describe a paper whose body is a run of paragraphs with no headings at all.",
        &body,
        false,
        None,
    );
    assert!(
        pages.len() >= 4,
        "the body must outrun the abstract's two pages"
    );
    let doc = extract_bytes(&testpdf::build(&pages, None, None), "flat.pdf").expect("extracts");
    assert_eq!(headings(&doc), ["Body"], "{doc:#?}");
    let text = &doc.sections[0].text;
    assert!(text.contains("part39end."), "{text}");
    assert!(!text.contains("Attention is all you need"), "{text}");
    assert_eq!(doc.references.len(), 1, "{:?}", doc.references);
    let all = doc.body_text();
    assert!(
        all.contains("part0end.") && all.contains("part12end."),
        "{all}"
    );
}

/// A file whose time ran out before any page was read is refused as over a limit, naming the
/// limit; with time to spare the same file reads whole.
#[test]
fn time_limit() {
    let bytes = synthetic(true, None, None);
    let err = extract_bytes_within(&bytes, "slow.pdf", Duration::ZERO).expect_err("no time");
    let msg = err.to_string();
    assert!(matches!(err, PdfError::Limit { .. }), "{msg}");
    assert!(
        msg.contains("slow.pdf") && msg.contains("time limit of 0 s"),
        "{msg}"
    );
    let doc = extract_bytes_within(&bytes, "slow.pdf", TIME_LIMIT).expect("reads in time");
    assert!(
        doc.warnings.iter().all(|w| !w.contains("time limit")),
        "{:?}",
        doc.warnings
    );
}

#[test]
fn pages_without_text_are_no_text() {
    let bytes = testpdf::build(&[vec![], vec![]], None, None);
    let err = extract_bytes(&bytes, "scan.pdf").expect_err("no text");
    assert!(
        matches!(
            err,
            PdfError::NoText {
                pages: 2,
                letters: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("(0 letters;"), "{err}");
}

#[test]
fn truncated_pdf_degrades_or_fails_cleanly() {
    let bytes = synthetic(true, None, None);
    for cut in [bytes.len() / 2, bytes.len() * 9 / 10, 64] {
        match extract_bytes(&bytes[..cut], "cut.pdf") {
            Ok(doc) => assert!(!doc.warnings.is_empty() || doc.title.is_some(), "{doc:?}"),
            Err(e) => assert!(e.to_string().contains("cut.pdf"), "{e}"),
        }
    }
}

/// Rewrites every dictionary that has `key` with `f` (to break fixtures on purpose).
fn break_fixture(bytes: &[u8], key: &[u8], f: impl Fn(&mut lopdf::Dictionary)) -> Vec<u8> {
    let mut doc = lopdf::Document::load_mem(bytes).expect("fixture loads");
    for obj in doc.objects.values_mut() {
        if let Ok(dict) = obj.as_dict_mut()
            && dict.get(key).is_ok()
        {
            f(dict);
        }
    }
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("saves");
    out
}

/// pdf-extract panics on pages without a MediaBox; lopdf's plain extraction does not need
/// one, so every page falls back to plain text and the document still comes out.
#[test]
fn pdf_extract_crash_falls_back_to_plain_text() {
    let broken = break_fixture(&synthetic(false, None, None), b"MediaBox", |d| {
        d.remove(b"MediaBox");
    });
    let doc = extract_bytes(&broken, "nobox.pdf").expect("degraded document");
    assert!(
        doc.warnings.iter().any(|w| w.contains("used plain text")),
        "{:?}",
        doc.warnings
    );
    assert!(doc.body_text().contains("introend"), "{}", doc.body_text());
}

/// When neither extractor can decode the fonts, the error says so instead of claiming the
/// PDF is a scan.
#[test]
fn undecodable_fonts_are_malformed_not_no_text() {
    let broken = break_fixture(&synthetic(false, None, None), b"BaseFont", |d| {
        d.set("Encoding", lopdf::Object::Name(b"BogusEncoding".to_vec()));
    });
    match extract_bytes(&broken, "bogus.pdf") {
        Err(e @ PdfError::Malformed { .. }) => assert!(e.to_string().contains("bogus.pdf"), "{e}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

/// The first half of a real paper (a cut download): a clear error or a degraded document.
#[test]
fn truncated_real_paper() {
    let path = Path::new("/work/shared/papers/2309.10608_medical-dialogue-amr.pdf");
    let Ok(bytes) = std::fs::read(path) else {
        println!("note: {} is absent, skipping", path.display());
        return;
    };
    match extract_bytes(&bytes[..bytes.len() / 2], "half.pdf") {
        Ok(doc) => {
            println!(
                "half a paper gave a document with warnings {:?}",
                doc.warnings
            );
            assert!(!doc.warnings.is_empty(), "{doc:?}");
        }
        Err(e) => {
            println!("half a paper: {e}");
            assert!(e.to_string().contains("half.pdf"), "{e}");
        }
    }
}

#[test]
fn body_text_and_serialisation() {
    let doc = Document {
        title: Some("T".into()),
        authors: vec!["A B".into()],
        arxiv_id: None,
        stamp_date: None,
        creation_date: NaiveDate::from_ymd_opt(2024, 1, 2),
        abstract_text: Some("Short.".into()),
        sections: vec![
            Section {
                heading: "1 Intro".into(),
                text: "Para one.\n\nPara two.".into(),
                appendix: false,
            },
            Section {
                heading: "1.1 Empty".into(),
                text: String::new(),
                appendix: false,
            },
        ],
        references: vec!["[1] A. Author. A paper. 2020.".into()],
        pages: 1,
        warnings: vec![],
    };
    assert_eq!(
        doc.body_text(),
        "Abstract\n\nShort.\n\n1 Intro\n\nPara one.\n\nPara two.\n\n1.1 Empty"
    );
    let json = serde_json::to_value(&doc).expect("serialises");
    assert_eq!(json["creation_date"], "2024-01-02");
    assert_eq!(json["sections"][0]["heading"], "1 Intro");
    assert_eq!(json["abstract"], "Short.");
    assert_eq!(json["references"][0], "[1] A. Author. A paper. 2020.");
    // Documents cached before the rename still read back.
    let mut old = json.clone();
    if let Some(fields) = old.as_object_mut() {
        let abstract_text = fields.remove("abstract").unwrap_or_default();
        fields.insert("abstract_text".into(), abstract_text);
        fields.remove("references");
    }
    let back: Document = serde_json::from_value(old).expect("old cache entry reads");
    assert_eq!(back.abstract_text.as_deref(), Some("Short."));
    assert!(back.references.is_empty());
    let round: Document = serde_json::from_value(json).expect("round trip");
    assert_eq!(round, doc);
}

/// The example paper shipped with the project.
#[test]
fn bundled_example_paper() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/paperdigest-note.pdf");
    let doc = extract_file(Path::new(path)).expect("example paper extracts");
    assert_eq!(
        doc.title.as_deref(),
        Some("paperdigest: Private Daily Paper Digests with Local Quantized Language Models")
    );
    assert_eq!(doc.authors, ["Lan Nguyen", "Minh Tran"]);
    let abs = doc.abstract_text.as_deref().unwrap_or_default();
    assert!(abs.starts_with("Every morning"), "{abs}");
    assert!(abs.len() > 400, "{abs}");
    let hs = headings(&doc);
    assert_eq!(
        hs,
        [
            "1 Introduction",
            "2 Design",
            "3 Pipeline",
            "4 Evaluation",
            "5 Conclusion and Future Work"
        ],
        "{doc:#?}"
    );
    let pipeline = &section(&doc, "3 Pipeline").text;
    for want in [
        "Table 1 lists the stages",
        "Paper list",
        "Context selection then fits",
    ] {
        assert!(pipeline.contains(want), "{want:?} not in {pipeline}");
    }
    assert!(
        section(&doc, "2 Design")
            .text
            .contains("directly from the GGUF file")
    );
    assert_eq!(doc.arxiv_id, None, "the note has no arXiv stamp");
    let all = doc.body_text();
    for leaked in ["Gerganov", "Technical Report", "minimalist ML framework"] {
        assert!(!all.contains(leaked), "reference list leaked: {leaked:?}");
    }
    assert!(!all.contains(LIGATURES) && !all.contains('\u{FFFD}'));
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
}

/// The page-1 layout alone (no info dictionary) also yields the example's authors.
#[test]
fn example_paper_authors_from_layout() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/paperdigest-note.pdf");
    let bytes = std::fs::read(path).expect("example paper present");
    let raw =
        glyphs::capture(&bytes, "note.pdf", 5, Instant::now() + TIME_LIMIT).expect("captures");
    let pages = layout::lay_out(&raw.pages);
    let page1 = &pages[0].lines;
    let body = layout::body_size(page1.iter());
    let (_, title_end) = meta::layout_title(page1, pages[0].height, body).expect("title");
    let spot = structure::find_abstract(page1, title_end + 1).expect("abstract");
    let authors = meta::layout_authors(&page1[title_end + 1..spot.heading]);
    assert_eq!(authors, ["Lan Nguyen", "Minh Tran"]);
}

#[test]
fn size_limit() {
    assert!(check_size(MAX_BYTES, "ok.pdf").is_ok());
    let err = check_size(MAX_BYTES + 1, "huge.pdf").expect_err("too large");
    assert!(matches!(err, PdfError::TooLarge { .. }) && err.to_string().contains("huge.pdf"));
}

/// Every real paper in the shared folder: extracted without error, with a title, its arXiv
/// stamp, an abstract, sections, clean characters and no reference list in the sections.
#[test]
fn real_papers() {
    let dir = Path::new("/work/shared/papers");
    let Ok(entries) = std::fs::read_dir(dir) else {
        println!(
            "note: {} is absent, skipping the real-paper test",
            dir.display()
        );
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
        .collect();
    paths.sort();
    // Two workers: extraction is CPU-bound and single-threaded per file.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(path) = paths.get(i) else { break };
                    let started = std::time::Instant::now();
                    let doc = extract_file(path);
                    let elapsed = started.elapsed();
                    if let Ok(mut r) = results.lock() {
                        r.push((i, doc, elapsed));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|r| r.0);
    let mut failures = Vec::new();
    for (i, doc, elapsed) in results {
        let name = paths[i]
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let prefix = name.split('_').next().unwrap_or_default();
        let doc = match doc {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let abs_len = doc.abstract_text.as_deref().map_or(0, str::len);
        println!(
            "{name}\n  title: {:?}\n  authors: {:?}\n  stamp: {:?} {:?}  pages: {}  sections: {}  abstract: {} chars  time: {:.2?}\n  headings: {:?}\n  warnings: {:?}",
            doc.title,
            doc.authors,
            doc.arxiv_id,
            doc.stamp_date,
            doc.pages,
            doc.sections.len(),
            abs_len,
            elapsed,
            headings(&doc),
            doc.warnings
        );
        let mut problems = Vec::new();
        if doc.title.as_deref().is_none_or(|t| t.len() < 10) {
            problems.push("no title".to_string());
        }
        // Each file is named after its id; every one of them carries the stamp.
        if !doc
            .arxiv_id
            .as_deref()
            .is_some_and(|id| id.starts_with(prefix))
        {
            problems.push(format!(
                "arxiv id {:?} does not match {prefix}",
                doc.arxiv_id
            ));
        }
        if abs_len < 200 {
            problems.push(format!("abstract too short ({abs_len})"));
        }
        if doc.sections.len() < 3 {
            problems.push(format!("{} sections", doc.sections.len()));
        }
        let all = doc.body_text();
        if all.contains('\u{FFFD}') {
            problems.push("U+FFFD in text".into());
        }
        if all.contains(LIGATURES) {
            problems.push("ligature glyphs in text".into());
        }
        let refs = doc.sections.iter().find(|s| {
            let h = s.heading.to_lowercase();
            h.ends_with("references") || h.ends_with("bibliography")
        });
        if let Some(s) = refs {
            problems.push(format!("reference list kept as section {:?}", s.heading));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_one_line_note_is_text_not_an_image() {
    let page = vec![testpdf::text(
        72.0,
        720.0,
        11.0,
        "A short note on group reward normalization.",
    )];
    let bytes = testpdf::build(&[page], None, None);
    let doc = extract_bytes(&bytes, "note.pdf").expect("short text is still text");
    assert!(
        doc.body_text().contains("group reward normalization"),
        "{doc:?}"
    );
}

/// A body line for the paragraph-continuation rules: `gap` is the baseline gap before it
/// (infinite at a column top), `short` whether it ends before the margin.
fn flow_line(text: &str, gap: f64, short: bool, para_start: bool) -> layout::Line {
    layout::Line {
        page: 1,
        col: layout::Col::Left,
        x0: 0.0,
        x1: 100.0,
        y: 0.0,
        size: 10.0,
        words: Vec::new(),
        text: text.to_string(),
        gap_before: gap,
        gap_after: 1.2,
        short,
        para_start,
        footnote: false,
    }
}

#[test]
fn paragraphs_run_on_across_columns_and_display_equations() {
    let mut note = flow_line("1A footnote at the column foot.", 1.2, true, true);
    note.footnote = true;
    let mut lines = vec![
        // A sentence broken by a display equation: neither part starts a paragraph.
        flow_line("The model factorises as", 1.2, true, true),
        flow_line("q(y) = ∏ q(yt | y<t) (2)", 2.0, true, true),
        flow_line("where θ are the parameters.", 2.0, true, true),
        // After a full stop a new paragraph stays one, lower case or not.
        flow_line("paperdigest is a tool.", 2.0, true, true),
        // A paragraph running into the next column, past a footnote.
        flow_line("This sentence reaches the margin and", 1.2, false, false),
        note,
        flow_line(
            "continues at the top of the next column.",
            f64::INFINITY,
            false,
            true,
        ),
        // A new paragraph at a column top starts with a capital.
        flow_line("A new paragraph.", f64::INFINITY, true, true),
    ];
    join_interrupted_paragraphs(&mut lines);
    let starts: Vec<bool> = lines.iter().map(|l| l.para_start).collect();
    assert_eq!(
        starts,
        [true, false, false, true, false, true, false, true],
        "{lines:#?}"
    );
}

/// Where each case's float is set aside (`true`) or left in the text.
#[test]
fn floats_are_set_aside_only_where_they_break_a_sentence() {
    use layout::Col::{Full, Left, Right};
    // (page, column, x0, text, short, para_start) of the line before the float, and of the
    // line after it; whether the float moves.
    type Spot = (u32, layout::Col, f64, &'static str, bool, bool);
    const OPEN: &str = "the model is asked for the main problem, the";
    const GOES_ON: &str = "main idea and the results of the paper.";
    let open = |page, col, x0| -> Spot { (page, col, x0, OPEN, false, false) };
    let goes_on = |page, col, x0| -> Spot { (page, col, x0, GOES_ON, false, true) };
    let ended: Spot = (
        1,
        Right,
        300.0,
        "the model is asked for the main problem.",
        false,
        false,
    );
    let capital: Spot = (
        2,
        Left,
        50.0,
        "Main idea and the results of the paper.",
        false,
        true,
    );
    let label: Spot = (1, Right, 300.0, OPEN, true, false);
    #[rustfmt::skip]
    let cases: [(&str, Spot, Spot, bool); 9] = [
        ("next page, left column", open(1, Right, 300.0), goes_on(2, Left, 50.0), true),
        ("down the same column", open(1, Left, 50.0), goes_on(1, Left, 50.0), true),
        ("left to right column", open(1, Left, 50.0), goes_on(1, Right, 300.0), true),
        ("sentence ended", ended, goes_on(2, Left, 50.0), false),
        ("capital after", open(1, Right, 300.0), capital, false),
        ("short line before (a label)", label, goes_on(2, Left, 50.0), false),
        ("full-width cell into a column", open(1, Full, 90.0), goes_on(1, Left, 50.0), false),
        ("same column, other left edge", open(1, Left, 140.0), goes_on(1, Left, 50.0), false),
        ("two pages on", open(1, Right, 300.0), goes_on(3, Left, 50.0), false),
    ];
    let line = |(page, col, x0, text, short, para_start): Spot| layout::Line {
        page,
        col,
        x0,
        ..flow_line(text, 1.2, short, para_start)
    };
    for (name, before, after, moves) in cases {
        let float_page = before.0;
        let on_float_page = |text: &str, para_start: bool| layout::Line {
            page: float_page,
            ..flow_line(text, 2.0, true, para_start)
        };
        let mut lines = vec![
            line((
                before.0,
                before.1,
                before.2,
                "A paragraph of running text starts on this line",
                false,
                true,
            )),
            line(before),
            on_float_page("glyphs lines", true),
            on_float_page(
                "Figure 2: The stages of the pipeline, from glyphs to a summary.",
                true,
            ),
            line(after),
        ];
        set_aside_interrupting_floats(&mut lines);
        let aside: Vec<bool> = lines.iter().map(|l| l.footnote).collect();
        assert_eq!(aside, [false, false, moves, moves, false], "{name}");
    }
}

#[test]
fn caption_starts() {
    for (text, caption) in [
        ("Figure 3: Results.", true),
        ("Fig. 2. The overview of our framework.", true),
        ("Table A.1 | Hyperparameters", true),
        ("Table 12", true),
        ("Figure 1 shows the stages of the pipeline.", false),
        ("Tables 3 and 4 give samples.", false),
        ("Figures are drawn as text.", false),
    ] {
        assert_eq!(is_caption_start(text), caption, "{text:?}");
    }
}

/// The one-column LaTeX fixture (`examples/onecolumn-report.tex`): OT1 fonts without
/// ToUnicode, TeX accents, wide margins (its running header sits below the page's top tenth),
/// a footnote, a display equation, a table, a figure that floats into a sentence, an
/// unnumbered section, references and an appendix after them.
#[test]
fn one_column_latex_report() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/onecolumn-report.pdf");
    let doc = extract_file(Path::new(path)).expect("fixture extracts");
    assert_eq!(
        doc.title.as_deref(),
        Some("Reading Papers Offline: Layout, Sections and Summaries on One Workstation")
    );
    assert_eq!(
        doc.authors,
        ["Thu Ha Pham", "Dragan Petrović", "Anaïs Lefèvre"]
    );
    assert!(
        doc.abstract_text.as_deref().is_some_and(|a| a
            .starts_with("Researchers who keep their reading private")
            && a.ends_with("and the labels inside figures.")),
        "{:?}",
        doc.abstract_text
    );
    assert_eq!(
        headings(&doc),
        [
            "1 Introduction",
            "2 Extraction",
            "2.1 Reading order",
            "2.2 Hyphenation and ligatures",
            "2.3 Headers, footers and footnotes",
            "3 Measuring extraction",
            "4 Summarisation",
            "Limitations",
            "5 Conclusion",
            "A Settings used in the measurements",
        ]
    );
    let appendix: Vec<bool> = doc.sections.iter().map(|s| s.appendix).collect();
    assert_eq!(appendix.iter().filter(|&&a| a).count(), 1);
    assert_eq!(appendix.last(), Some(&true));
    assert_eq!(doc.references.len(), 4, "{:?}", doc.references);
    assert!(doc.references[2].contains("D. Petrović and A. Lefèvre"));

    let all = doc.body_text();
    for want in [
        // Hyphenated at line ends in the PDF: noth-ing, ex-tracted, Mathe-matical, accept-able.
        "and nothing requires a producer",
        "reference words R and extracted words E",
        "Mathematical notation is kept",
        "We consider all three acceptable",
        // Broken at its own hyphen, and kept whole.
        "a compound such as state-of-the-art must keep its hyphens",
        // Ligatures from glyph names (no ToUnicode).
        "the words first, efficient, office and baffled",
        // The figure floats to the top of the next page, inside this sentence.
        "It is asked for the main problem, the main idea, the main results",
        // The footnote mark stays, the footnote itself does not cut the sentence.
        "the notes that the reader adds afterwards.1 This makes the cost",
    ] {
        assert!(all.contains(want), "{want:?} not in {all}");
    }
    let summarisation = &section(&doc, "4 Summarisation").text;
    assert!(!summarisation.contains("Figure 1:"), "{summarisation}");
    let measuring = &section(&doc, "3 Measuring extraction").text;
    assert!(
        measuring.ends_with(
            "Figure 1: The stages of the offline pipeline, from glyphs to a written summary."
        ),
        "{measuring}"
    );
    let introduction = &section(&doc, "1 Introduction").text;
    assert!(
        introduction.ends_with("instead of being guessed at."),
        "{introduction}"
    );
    for leaked in [
        "Reading Papers Offline",
        "Technical Report",
        "Tesseract",
        "Breuel",
    ] {
        assert!(!all.contains(leaked), "{leaked:?} leaked into the body");
    }
    assert!(!all.contains(LIGATURES) && !all.contains('\u{FFFD}'));
    assert!(
        !all.contains(['\u{B4}', '\u{A8}', '\u{60}']),
        "stray accent in {all}"
    );
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
}

/// Writes the seed corpus of the `pdf_extract` fuzz target into the folder named by
/// `PAPERDIGEST_FUZZ_SEEDS` (`scripts/fuzz.sh seeds` runs it): the fixture PDFs these tests
/// build (one and two columns, info dictionary, hyphenation, ligatures, a rotated stamp), the
/// same compressed and saved with object and cross-reference streams, and the bundled example.
#[test]
#[ignore = "writes the fuzz seed corpus; run by scripts/fuzz.sh seeds"]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("PAPERDIGEST_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir).join("pdf_extract");
    std::fs::create_dir_all(&dir).unwrap();
    let one = synthetic(false, None, None);
    let two = synthetic(
        true,
        Some("Synthetic Layouts"),
        Some("Ada Lovelace; Alan Turing"),
    );
    let note = testpdf::build(
        &[vec![testpdf::text(
            72.0,
            100.0,
            11.0,
            "A one-line note about extraction.",
        )]],
        None,
        None,
    );
    let mut modern = lopdf::Document::load_mem(&two).unwrap();
    modern.compress();
    let mut compressed = Vec::new();
    modern.save_to(&mut compressed).unwrap();
    let mut streams = Vec::new();
    modern
        .save_with_options(
            &mut streams,
            lopdf::SaveOptions::builder()
                .use_object_streams(true)
                .use_xref_streams(true)
                .build(),
        )
        .unwrap();
    let example =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paperdigest-note.pdf"))
            .unwrap();
    for (name, bytes) in [
        ("one-column.pdf", one),
        ("two-columns.pdf", two),
        ("note.pdf", note),
        ("compressed.pdf", compressed),
        ("object-streams.pdf", streams),
        ("example-paper.pdf", example),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
