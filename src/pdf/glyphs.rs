//! Glyph capture: loads a PDF with lopdf and records every shown character with its position,
//! size and direction through a pdf-extract `OutputDev`. This is the only file that calls into
//! lopdf / pdf-extract, and every such call runs under `catch_unwind`, because both crates panic
//! on a few percent of real-world PDFs. A page whose positioned extraction fails falls back to
//! lopdf's plain `extract_text`; a page where both fail is reported in the warnings.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::time::Instant;

use lopdf::{Dictionary, Document as LoDocument, Object, ObjectId};
use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};
use rayon::prelude::*;

use super::PdfError;

/// One shown character, in page space with the origin at the top-left corner and y growing
/// downwards (so sorting by `y` gives top-to-bottom order).
#[derive(Debug, Clone)]
pub(crate) struct Glyph {
    /// Left edge of the glyph origin.
    pub x: f64,
    /// Baseline.
    pub y: f64,
    /// Effective font size in page units (points), after the text and CTM scaling.
    pub size: f64,
    /// Horizontal advance in page units.
    pub adv: f64,
    /// Decoded text: usually one character, several for ligatures, empty when unmapped.
    pub text: String,
    /// False for rotated or vertical text (the arXiv margin stamp, rotated table pages).
    pub upright: bool,
}

/// The raw capture of one page.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawPage {
    /// 1-based page number.
    pub number: u32,
    pub width: f64,
    pub height: f64,
    pub glyphs: Vec<Glyph>,
    /// Plain text from lopdf when positioned extraction failed on this page.
    pub plain: Option<String>,
}

/// Strings from the document information dictionary.
#[derive(Debug, Clone, Default)]
pub(crate) struct Info {
    pub title: Option<String>,
    pub author: Option<String>,
    pub creation_date: Option<String>,
}

/// Everything captured from one file before layout analysis.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawDoc {
    pub pages: Vec<RawPage>,
    /// Page count of the file (may exceed `pages.len()` when the page limit cut it).
    pub page_count: usize,
    /// Pages where neither extraction path produced text.
    pub failed_pages: usize,
    /// Numbers of the pages not read, or not read whole, because the time limit ran out.
    pub timed_out: Vec<u32>,
    pub info: Info,
    pub warnings: Vec<String>,
}

/// Loads `bytes` and captures the glyphs of at most `max_pages` pages. Pages still unread at
/// `deadline` are skipped (a page being read then is abandoned) and listed in `timed_out`.
pub(crate) fn capture(
    bytes: &[u8],
    source: &str,
    max_pages: usize,
    deadline: Instant,
) -> Result<RawDoc, PdfError> {
    // Before lopdf inflates anything: no decompression bombs, no absurd object counts.
    let raw_scan = super::limits::scan_raw(bytes, source)?;
    let mut doc = match guarded(|| LoDocument::load_mem(bytes)) {
        Ok(Ok(doc)) => doc,
        Ok(Err(e)) => {
            return Err(PdfError::Malformed {
                source_name: source.to_string(),
                reason: format!("cannot parse the PDF structure: {e}"),
            });
        }
        Err(panic) => {
            return Err(PdfError::Malformed {
                source_name: source.to_string(),
                reason: format!("the PDF parser crashed: {panic}"),
            });
        }
    };
    // lopdf already decrypts files whose user password is empty (common for "protected" papers);
    // anything else needs a password we do not have.
    if doc.is_encrypted() && !matches!(guarded(|| doc.authenticate_password("")), Ok(Ok(()))) {
        return Err(PdfError::Encrypted {
            source_name: source.to_string(),
        });
    }

    match guarded(|| super::limits::check_loaded(&doc, &raw_scan, source, max_pages)) {
        Ok(checked) => checked?,
        Err(panic) => {
            return Err(PdfError::Malformed {
                source_name: source.to_string(),
                reason: format!("cannot check the document's size: {panic}"),
            });
        }
    }
    // Glyph names such as `e.sc` or `uni00E9` would otherwise lose their text (see `glyphnames`).
    if let Ok(renamed) = guarded(|| super::glyphnames::normalise(&mut doc))
        && renamed > 0
    {
        tracing::debug!(source, renamed, "glyph names mapped");
    }
    let pages = match guarded(|| doc.get_pages()) {
        Ok(pages) if !pages.is_empty() => pages,
        Ok(_) => {
            return Err(PdfError::Malformed {
                source_name: source.to_string(),
                reason: "the page tree has no pages".to_string(),
            });
        }
        Err(panic) => {
            return Err(PdfError::Malformed {
                source_name: source.to_string(),
                reason: format!("cannot read the page tree: {panic}"),
            });
        }
    };
    let page_count = pages.len();
    let numbered: Vec<(u32, ObjectId)> = pages.into_iter().take(max_pages).collect();
    // Decoding the content and inlining forms reads the document only: all pages at once.
    let prepared: Vec<Prepared> = numbered
        .par_iter()
        .map(|&(number, id)| prepare(&doc, number, id))
        .collect();
    for page in &prepared {
        if let Some(why) = &page.inline_failure {
            // Not fatal: the page is read as it is, figure labels may be misplaced.
            tracing::debug!(source, page = page.number, %why, "form XObjects not inlined");
        }
    }
    let out = capture_prepared(&mut doc, source, prepared, page_count, max_pages, deadline);
    if out.pages.is_empty() {
        return Err(PdfError::Malformed {
            source_name: source.to_string(),
            reason: "the page tree has no pages".to_string(),
        });
    }
    Ok(out)
}

/// Captures the glyphs of at most `max_pages` pages of a loaded document, each page read on
/// its own and as it is (no forms inlined).
#[cfg(test)]
pub(crate) fn capture_doc(doc: &LoDocument, source: &str, max_pages: usize) -> RawDoc {
    let numbers: Vec<u32> = guarded(|| doc.get_pages())
        .map(|pages| pages.keys().copied().collect())
        .unwrap_or_default();
    let mut out = RawDoc {
        info: read_info(doc),
        page_count: numbers.len(),
        ..RawDoc::default()
    };
    let mut budget = super::MAX_GLYPHS;
    let deadline = Instant::now() + super::TIME_LIMIT;
    let captured: Vec<Captured> = numbers
        .iter()
        .take(max_pages)
        .map(|&n| capture_alone(doc, n, &mut budget, deadline))
        .collect();
    finish(&mut out, source, captured, max_pages);
    out
}

/// One page ready for capture: its content decoded, cut to the text operators, forms inlined.
struct Prepared {
    number: u32,
    id: ObjectId,
    /// Decoded content; `None` when the page cannot be read with others (no content, no
    /// media box): it is then read alone, as it is.
    content: Option<Vec<u8>>,
    resources: Dictionary,
    /// `content` holds the text operators only, forms inlined (see `forms`); false when that
    /// failed and the page is read as it is.
    rewritten: bool,
    inline_failure: Option<String>,
    media: PageBox,
}

/// Page box origin and top (to move glyphs into top-left page space) and size.
#[derive(Debug, Clone, Copy, Default)]
struct PageBox {
    llx: f64,
    ury: f64,
    width: f64,
    height: f64,
}

impl PageBox {
    fn new(llx: f64, lly: f64, urx: f64, ury: f64) -> PageBox {
        PageBox {
            llx: llx.min(urx),
            ury: ury.max(lly),
            width: (urx - llx).abs(),
            height: (ury - lly).abs(),
        }
    }
}

fn prepare(doc: &LoDocument, number: u32, id: ObjectId) -> Prepared {
    let mut page = Prepared {
        number,
        id,
        content: None,
        resources: Dictionary::new(),
        rewritten: false,
        inline_failure: None,
        media: PageBox::default(),
    };
    let read = guarded(|| -> Result<_, String> {
        let dict = doc
            .get_dictionary(id)
            .map_err(|e| format!("page dictionary: {e}"))?;
        let media = media_box(doc, dict);
        let resources = super::forms::page_resources(doc, dict);
        let bytes = doc
            .get_page_content(id)
            .map_err(|e| format!("page content: {e}"))?;
        Ok((media, resources, bytes))
    });
    let (media, resources, bytes) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(why)) | Err(why) => {
            page.inline_failure = Some(why);
            return page;
        }
    };
    page.resources = resources;
    match guarded(|| super::forms::text_content(doc, &page.resources, &bytes)) {
        Ok(Ok((content, resources))) => {
            page.content = Some(content);
            page.resources = resources;
            page.rewritten = true;
        }
        Ok(Err(why)) => {
            page.inline_failure = Some(why);
            page.content = Some(bytes);
        }
        Err(panic) => {
            page.inline_failure = Some(format!("crash: {panic}"));
            page.content = Some(bytes);
        }
    }
    match media {
        Some(media) => page.media = media,
        // pdf-extract refuses such a page; it fails alone.
        None => page.content = None,
    }
    page
}

/// The page's /MediaBox looked up the page tree as pdf-extract does.
fn media_box<'a>(doc: &'a LoDocument, mut dict: &'a Dictionary) -> Option<PageBox> {
    for _ in 0..32 {
        let found = dict
            .get(b"MediaBox")
            .ok()
            .and_then(|o| doc.dereference(o).ok())
            .and_then(|(_, o)| o.as_array().ok())
            .and_then(|a| {
                a.iter()
                    .map(|v| match v {
                        Object::Integer(i) => Some(*i as f64),
                        Object::Real(r) => Some(f64::from(*r)),
                        _ => None,
                    })
                    .collect::<Option<Vec<f64>>>()
            })
            .filter(|v| v.len() >= 4);
        if let Some(v) = found {
            return Some(PageBox::new(v[0], v[1], v[2], v[3]));
        }
        let parent = dict.get(b"Parent").ok()?.as_reference().ok()?;
        dict = doc.get_dictionary(parent).ok()?;
    }
    None
}

/// What capturing one page gave, before the document-wide glyph limit.
struct Captured {
    page: RawPage,
    /// Characters past the per-page limit, not recorded.
    dropped: usize,
    /// Why positioned extraction failed (then `page.plain` may hold lopdf's text).
    failure: Option<String>,
    /// The time limit ran out before the page was read whole; nothing of it is kept.
    timed_out: bool,
}

impl Captured {
    /// `page` (no glyphs) not read because the time limit ran out.
    fn timed_out(page: RawPage) -> Captured {
        Captured {
            page,
            dropped: 0,
            failure: None,
            timed_out: true,
        }
    }

    /// Each prepared page of a run the time limit cut short.
    fn run_timed_out(pages: &[Prepared]) -> Vec<Captured> {
        pages
            .iter()
            .map(|p| {
                Captured::timed_out(RawPage {
                    number: p.number,
                    width: p.media.width,
                    height: p.media.height,
                    ..RawPage::default()
                })
            })
            .collect()
    }
}

/// Pages read together: one content stream of their contents in order, under one resource
/// dictionary, with a marker before each page and one at the end.
struct Run {
    /// Index range into the prepared pages.
    from: usize,
    to: usize,
    resources: Dictionary,
}

/// The `Tf` size of the marker text that tells the collector where a page of a run begins.
/// No document sets text at this size.
const MARK_SIZE: f64 = 1.234_567e-4;
/// The marker's font resource name.
const MARK_FONT: &[u8] = b"PdxPageMark";
/// The most content bytes one run holds (pdf-extract parses a run's content into one list of
/// operations; pages over this are read alone).
const MAX_RUN_CONTENT: usize = 8 << 20;

/// Captures the prepared pages.
///
/// pdf-extract builds every font of a page again for each page it reads, parsing embedded
/// Type 1 programs and ToUnicode CMaps each time, which took about half of the extraction
/// time. So pages are read in runs: consecutive pages whose resource names agree are joined
/// into one content stream, each page wrapped in `q ... Q` (and as many extra `Q` as it has
/// `q`, so an unbalanced page cannot leak its graphics state) and preceded by marker text
/// that the collector recognises, so each font is built once per run. The runs are split
/// into one contiguous share of the pages per worker thread. A run whose markers do not all
/// arrive in order (content that swallows what follows, a crash) is read again page by
/// page, as before, so the result never depends on the joining.
fn capture_prepared(
    doc: &mut LoDocument,
    source: &str,
    prepared: Vec<Prepared>,
    page_count: usize,
    max_pages: usize,
    deadline: Instant,
) -> RawDoc {
    let mut out = RawDoc {
        info: read_info(doc),
        page_count,
        ..RawDoc::default()
    };
    let threads = rayon::current_num_threads().clamp(1, prepared.len().max(1));
    let shares = split_by_size(&prepared, threads);
    let runs: Vec<Vec<Run>> = shares
        .iter()
        .map(|&(from, to)| group_runs(doc, &prepared, from, to))
        .collect();
    tracing::debug!(
        source,
        pages = prepared.len(),
        shares = runs.len(),
        runs = runs.iter().map(Vec::len).sum::<usize>(),
        "pages grouped for reading"
    );
    let mut mark_font = Dictionary::new();
    mark_font.set("Type", Object::Name(b"Font".to_vec()));
    mark_font.set("Subtype", Object::Name(b"Type1".to_vec()));
    mark_font.set("BaseFont", Object::Name(b"Helvetica".to_vec()));
    let mark_font = doc.add_object(mark_font);
    // Each run is read through its first page: that page's dictionary points at the run's
    // content until the run is done.
    let mut originals = Vec::new();
    for run in runs.iter().flatten() {
        let carrier = &prepared[run.from];
        let Ok(dict) = doc.get_dictionary(carrier.id) else {
            continue;
        };
        originals.push((
            carrier.id,
            dict.get(b"Contents").ok().cloned(),
            dict.get(b"Resources").ok().cloned(),
        ));
        let content = run_content(&prepared[run.from..run.to]);
        let mut resources = run.resources.clone();
        let mut fonts = resources
            .get(b"Font")
            .ok()
            .and_then(|o| o.as_dict().ok())
            .cloned()
            .unwrap_or_default();
        fonts.set(MARK_FONT, mark_font);
        resources.set("Font", Object::Dictionary(fonts));
        if super::forms::set_page_content(doc, carrier.id, content, resources).is_err() {
            originals.pop();
        }
    }
    let read: Vec<Vec<Option<Vec<Captured>>>> = {
        let doc: &LoDocument = doc;
        runs.par_iter()
            .map(|share| {
                let mut budget = super::MAX_GLYPHS;
                share
                    .iter()
                    .map(|run| capture_run(doc, &prepared[run.from..run.to], &mut budget, deadline))
                    .collect()
            })
            .collect()
    };
    // Put the carriers back, then give every page its own content, as a page read alone
    // (or lopdf's plain-text fallback) must see it.
    for (id, contents, resources) in originals {
        if let Ok(dict) = doc.get_object_mut(id).and_then(Object::as_dict_mut) {
            match contents {
                Some(c) => dict.set("Contents", c),
                None => {
                    dict.remove(b"Contents");
                }
            }
            match resources {
                Some(r) => dict.set("Resources", r),
                None => {
                    dict.remove(b"Resources");
                }
            }
        }
    }
    let mut captured: Vec<Option<Captured>> = Vec::with_capacity(prepared.len());
    for (run, result) in runs.iter().flatten().zip(read.into_iter().flatten()) {
        match result {
            Some(pages) => captured.extend(pages.into_iter().map(Some)),
            None => {
                tracing::debug!(
                    source,
                    first = prepared[run.from].number,
                    last = prepared[run.to - 1].number,
                    "pages read together failed; reading them one by one"
                );
                captured.extend((run.from..run.to).map(|_| None));
            }
        }
    }
    let mut budget = super::MAX_GLYPHS;
    let captured: Vec<Captured> = captured
        .into_iter()
        .zip(prepared)
        .map(|(done, page)| match done {
            Some(c) => c,
            None => {
                if page.rewritten
                    && let Some(content) = page.content
                    && let Err(why) =
                        super::forms::set_page_content(doc, page.id, content, page.resources)
                {
                    tracing::debug!(source, page = page.number, %why, "form XObjects not inlined");
                }
                capture_alone(doc, page.number, &mut budget, deadline)
            }
        })
        .collect();
    finish(&mut out, source, captured, max_pages);
    out
}

/// Splits the pages into `n` contiguous shares of about equal content size.
fn split_by_size(pages: &[Prepared], n: usize) -> Vec<(usize, usize)> {
    let size = |p: &Prepared| p.content.as_ref().map_or(0, Vec::len) + 1;
    let total: usize = pages.iter().map(size).sum();
    let mut shares = Vec::with_capacity(n);
    let (mut from, mut acc) = (0, 0);
    for (i, page) in pages.iter().enumerate() {
        acc += size(page);
        let target = total * (shares.len() + 1) / n;
        if acc >= target && shares.len() + 1 < n && i + 1 < pages.len() {
            shares.push((from, i + 1));
            from = i + 1;
        }
    }
    if from < pages.len() {
        shares.push((from, pages.len()));
    }
    shares
}

/// Groups pages `from..to` into runs: a page joins the run before it when every resource
/// name it uses means the same object there, and the run stays under [`MAX_RUN_CONTENT`].
fn group_runs(doc: &LoDocument, pages: &[Prepared], from: usize, to: usize) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut run_bytes = 0usize;
    for i in from..to {
        let page = &pages[i];
        let bytes = page.content.as_ref().map_or(0, Vec::len);
        let joinable = page.content.is_some()
            && !uses_mark_font(doc, &page.resources)
            && runs.last().is_some_and(|r| {
                r.to == i && pages[r.from].content.is_some() && run_bytes + bytes <= MAX_RUN_CONTENT
            });
        if joinable
            && let Some(run) = runs.last_mut()
            && let Some(merged) = merge_resources(doc, &run.resources, &page.resources)
        {
            run.resources = merged;
            run.to = i + 1;
            run_bytes += bytes;
            continue;
        }
        runs.push(Run {
            from: i,
            to: i + 1,
            resources: resolved(doc, &page.resources),
        });
        run_bytes = bytes;
    }
    runs
}

fn uses_mark_font(doc: &LoDocument, resources: &Dictionary) -> bool {
    resources
        .get(b"Font")
        .ok()
        .and_then(|o| doc.dereference(o).ok())
        .and_then(|(_, o)| o.as_dict().ok())
        .is_some_and(|d| d.has(MARK_FONT))
}

/// `resources` with each category dictionary given directly (so it can be extended).
fn resolved(doc: &LoDocument, resources: &Dictionary) -> Dictionary {
    let mut out = Dictionary::new();
    for (key, value) in resources.iter() {
        match doc.dereference(value) {
            Ok((_, Object::Dictionary(d))) => out.set(key.clone(), Object::Dictionary(d.clone())),
            _ => out.set(key.clone(), value.clone()),
        }
    }
    out
}

/// The union of two resource dictionaries, or `None` when a name means different objects
/// in them (or a non-dictionary entry differs).
fn merge_resources(doc: &LoDocument, run: &Dictionary, page: &Dictionary) -> Option<Dictionary> {
    let mut out = run.clone();
    for (key, value) in resolved(doc, page).iter() {
        match (out.get_mut(key).ok(), value) {
            (None, _) => out.set(key.clone(), value.clone()),
            (Some(Object::Dictionary(have)), Object::Dictionary(add)) => {
                for (name, obj) in add.iter() {
                    match have.get(name) {
                        Ok(existing) if existing != obj => return None,
                        Ok(_) => {}
                        Err(_) => have.set(name.clone(), obj.clone()),
                    }
                }
            }
            (Some(existing), add) => {
                if existing != add {
                    return None;
                }
            }
        }
    }
    Some(out)
}

/// The joined content of a run's pages (see [`capture_prepared`]).
fn run_content(pages: &[Prepared]) -> Vec<u8> {
    let size: usize = pages
        .iter()
        .map(|p| p.content.as_ref().map_or(0, Vec::len) + 128)
        .sum();
    let mut out = Vec::with_capacity(size + 128);
    let mut restores = 0;
    let mark = |out: &mut Vec<u8>, index: i64| {
        out.extend_from_slice(b"\nBT /");
        out.extend_from_slice(MARK_FONT);
        out.extend_from_slice(
            format!(" {MARK_SIZE} Tf 1 0 0 1 {index} 0 Tm (x) Tj ET\n").as_bytes(),
        );
    };
    for (i, page) in pages.iter().enumerate() {
        let content = page.content.as_deref().unwrap_or_default();
        out.extend(std::iter::repeat_n(b"Q\n".iter().copied(), restores).flatten());
        mark(&mut out, i as i64);
        out.extend_from_slice(b"q\n");
        out.extend_from_slice(content);
        restores = 1 + count_saves(content);
    }
    out.extend_from_slice(b"\n");
    out.extend(std::iter::repeat_n(b"Q\n".iter().copied(), restores).flatten());
    mark(&mut out, -1);
    out
}

/// How many `q` operators `content` may hold (a `q` inside a string counts too; restoring
/// more often than saved only logs a warning in pdf-extract).
fn count_saves(content: &[u8]) -> usize {
    let delimiter = |b: u8| b.is_ascii_whitespace() || b"()<>[]{}/%".contains(&b);
    let mut count = 0;
    for (i, &b) in content.iter().enumerate() {
        if b == b'q'
            && (i == 0 || delimiter(content[i - 1]))
            && content.get(i + 1).is_none_or(|&n| delimiter(n))
        {
            count += 1;
        }
    }
    count
}

/// Reads one run through its first page; `None` when pdf-extract failed or the markers did
/// not all arrive in order. A run the time limit cuts short is given up whole.
fn capture_run(
    doc: &LoDocument,
    pages: &[Prepared],
    budget: &mut usize,
    deadline: Instant,
) -> Option<Vec<Captured>> {
    if Instant::now() >= deadline {
        return Some(Captured::run_timed_out(pages));
    }
    let mut dev = Collector::for_run(pages, *budget, deadline);
    let result = guarded(|| pdf_extract::output_doc_page(doc, &mut dev, pages[0].number));
    if dev.timed_out {
        return Some(Captured::run_timed_out(pages));
    }
    if !matches!(result, Ok(Ok(()))) || !dev.complete() {
        return None;
    }
    *budget = dev.budget;
    Some(dev.into_captured())
}

/// Reads one page alone, falling back to lopdf's plain text when positioned extraction fails.
fn capture_alone(doc: &LoDocument, number: u32, budget: &mut usize, deadline: Instant) -> Captured {
    let skipped = || {
        Captured::timed_out(RawPage {
            number,
            ..RawPage::default()
        })
    };
    if Instant::now() >= deadline {
        return skipped();
    }
    let mut dev = Collector::for_page(*budget, deadline);
    let positioned = guarded(|| pdf_extract::output_doc_page(doc, &mut dev, number));
    if dev.timed_out {
        return skipped();
    }
    *budget = dev.budget;
    let failure = match positioned {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:?}")),
        Err(panic) => Some(format!("crash: {panic}")),
    };
    let mut captured = dev.into_captured().pop().unwrap_or(Captured {
        page: RawPage::default(),
        dropped: 0,
        failure: None,
        timed_out: false,
    });
    captured.page.number = number;
    if let Some(why) = failure {
        // A half-captured page would mix with the fallback text; use one or the other.
        captured.page.glyphs.clear();
        if let Ok(Ok(text)) = guarded(|| doc.extract_text(&[number]))
            && !text.trim().is_empty()
        {
            captured.page.plain = Some(text);
        }
        captured.failure = Some(why);
    }
    captured
}

/// Applies the document-wide glyph limit in page order and writes the warnings.
fn finish(out: &mut RawDoc, source: &str, captured: Vec<Captured>, max_pages: usize) {
    if out.page_count > max_pages {
        out.warnings.push(format!(
            "{source}: only the first {max_pages} of {} pages were read",
            out.page_count
        ));
    }
    let mut glyphs_left = super::MAX_GLYPHS;
    let mut timed_out: Vec<u32> = Vec::new();
    for Captured {
        mut page,
        mut dropped,
        failure,
        timed_out: page_timed_out,
    } in captured
    {
        if page_timed_out {
            timed_out.push(page.number);
            out.pages.push(page);
            continue;
        }
        let keep = glyphs_left.min(super::MAX_GLYPHS_PER_PAGE);
        if page.glyphs.len() > keep {
            dropped += page.glyphs.len() - keep;
            page.glyphs.truncate(keep);
        }
        let number = page.number;
        if dropped > 0 {
            out.warnings.push(format!(
                "{source}: page {number}: {dropped} characters past the limit were skipped"
            ));
        }
        glyphs_left = glyphs_left.saturating_sub(page.glyphs.len());
        if let Some(why) = failure {
            tracing::debug!(source, page = number, %why, "positioned extraction failed");
            if page.plain.is_some() {
                out.warnings.push(format!(
                    "{source}: page {number}: layout extraction failed ({}), used plain text",
                    short(&why)
                ));
            } else {
                out.failed_pages += 1;
                out.warnings.push(format!(
                    "{source}: page {number}: no text could be extracted ({})",
                    short(&why)
                ));
            }
        }
        out.pages.push(page);
    }
    out.timed_out = timed_out;
}

/// Keeps warning lines readable when a library error dumps a whole object.
fn short(s: &str) -> String {
    let mut t: String = s.chars().take(120).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

fn read_info(doc: &LoDocument) -> Info {
    let lookup = |key: &[u8]| -> Option<String> {
        guarded(|| {
            let info = doc.trailer.get(b"Info").ok()?;
            let (_, info) = doc.dereference(info).ok()?;
            let dict = info.as_dict().ok()?;
            let value = dict.get(key).ok()?;
            let (_, value) = doc.dereference(value).ok()?;
            match value {
                Object::String(..) => lopdf::decode_text_string(value).ok(),
                _ => None,
            }
        })
        .ok()
        .flatten()
        .map(|s| s.replace('\0', "").trim().to_string())
        .filter(|s| !s.is_empty())
    };
    Info {
        title: lookup(b"Title"),
        author: lookup(b"Author"),
        creation_date: lookup(b"CreationDate"),
    }
}

thread_local! {
    /// Set while this thread runs a guarded library call, so the panic hook stays quiet.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}
static HOOK: Once = Once::new();

/// Runs `f`, turning a panic into `Err(message)`.
///
/// The first call installs (once per process) a panic hook that stays silent for panics raised
/// inside a guarded call on the same thread and forwards every other panic to the previous hook:
/// a crash in a third-party PDF parser is an expected, handled event and must not spray
/// backtraces over the user's terminal.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was_quiet = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was_quiet));
    result.map_err(|payload| {
        if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "unknown panic".to_string()
        }
    })
}

/// The `OutputDev` that records glyphs, of one page or of the pages of a run: at most
/// [`super::MAX_GLYPHS_PER_PAGE`] per page and `budget` in all (the exact document-wide
/// limit is applied in page order afterwards, by [`finish`]; this one bounds memory).
struct Collector {
    pages: Vec<RawPage>,
    boxes: Vec<PageBox>,
    /// Characters past the limits, per page.
    dropped: Vec<usize>,
    /// The page being drawn.
    current: Option<usize>,
    /// Reading a run: pages begin at markers, not at `begin_page`.
    run: bool,
    /// Markers seen so far (a run is complete when every page and the end were marked).
    marks: usize,
    /// A marker came out of order.
    broken: bool,
    budget: usize,
    /// When to give up the page or run being read.
    deadline: Instant,
    /// Glyphs seen since the clock was last read.
    since_clock: u32,
    /// The deadline passed while reading: what was read is incomplete.
    timed_out: bool,
}

impl Collector {
    fn for_page(budget: usize, deadline: Instant) -> Collector {
        Collector {
            pages: Vec::new(),
            boxes: Vec::new(),
            dropped: Vec::new(),
            current: None,
            run: false,
            marks: 0,
            broken: false,
            budget,
            deadline,
            since_clock: 0,
            timed_out: false,
        }
    }

    fn for_run(pages: &[Prepared], budget: usize, deadline: Instant) -> Collector {
        Collector {
            pages: pages
                .iter()
                .map(|p| RawPage {
                    number: p.number,
                    width: p.media.width,
                    height: p.media.height,
                    glyphs: Vec::new(),
                    plain: None,
                })
                .collect(),
            boxes: pages.iter().map(|p| p.media).collect(),
            dropped: vec![0; pages.len()],
            current: None,
            run: true,
            marks: 0,
            broken: false,
            budget,
            deadline,
            since_clock: 0,
            timed_out: false,
        }
    }

    /// Every page of the run and its end were marked, in order.
    fn complete(&self) -> bool {
        !self.broken && self.marks == self.pages.len() + 1
    }

    fn into_captured(self) -> Vec<Captured> {
        self.pages
            .into_iter()
            .zip(self.dropped)
            .map(|(page, dropped)| Captured {
                page,
                dropped,
                failure: None,
                timed_out: false,
            })
            .collect()
    }

    /// Handles a marker glyph of a run: `index` is the page that begins, -1 the end.
    fn mark(&mut self, index: f64) {
        let expected = if self.marks == self.pages.len() {
            -1.0
        } else {
            self.marks as f64
        };
        if (index - expected).abs() > 0.01 || self.marks > self.pages.len() {
            self.broken = true;
            self.current = None;
            return;
        }
        self.current = (expected >= 0.0).then_some(self.marks);
        self.marks += 1;
    }
}

impl OutputDev for Collector {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        if self.run {
            return Ok(());
        }
        let media = PageBox::new(media_box.llx, media_box.lly, media_box.urx, media_box.ury);
        self.pages.push(RawPage {
            number: page_num,
            width: media.width,
            height: media.height,
            glyphs: Vec::new(),
            plain: None,
        });
        self.boxes.push(media);
        self.dropped.push(0);
        self.current = Some(self.pages.len() - 1);
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), OutputError> {
        // Reading the clock for every glyph would cost more than the glyph.
        self.since_clock += 1;
        if self.since_clock >= 256 {
            self.since_clock = 0;
            if Instant::now() >= self.deadline {
                self.timed_out = true;
                return Err(OutputError::FormatError(std::fmt::Error));
            }
        }
        if self.run && (font_size - MARK_SIZE).abs() < MARK_SIZE * 1e-4 {
            self.mark(trm.m31);
            return Ok(());
        }
        let Some(i) = self.current else {
            return Ok(());
        };
        let (Some(page), Some(media)) = (self.pages.get_mut(i), self.boxes.get(i)) else {
            return Ok(());
        };
        // The text rendering matrix maps text space to page space: its first row is the baseline
        // direction, its second row the "up" direction of the glyph.
        let along = (trm.m11 * trm.m11 + trm.m12 * trm.m12).sqrt();
        let up = (trm.m21 * trm.m21 + trm.m22 * trm.m22).sqrt();
        let size = (font_size * up).abs();
        if !size.is_finite() || size <= 0.0 || !trm.m31.is_finite() || !trm.m32.is_finite() {
            return Ok(());
        }
        if page.glyphs.len() >= super::MAX_GLYPHS_PER_PAGE || self.budget == 0 {
            self.dropped[i] += 1;
            return Ok(());
        }
        self.budget -= 1;
        let upright = trm.m11 > 0.0 && trm.m12.abs() <= 0.1 * trm.m11 && trm.m22 > 0.0;
        page.glyphs.push(Glyph {
            x: trm.m31 - media.llx,
            y: media.ury - trm.m32,
            size,
            adv: ((width * font_size + spacing) * along).max(0.0),
            text: char.to_string(),
            upright,
        });
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once the deadline has passed, a page being read is given up within a few hundred
    /// glyphs, and what was read of it is marked incomplete.
    #[test]
    fn collector_gives_up_at_the_deadline() {
        let media = MediaBox {
            llx: 0.0,
            lly: 0.0,
            urx: 612.0,
            ury: 792.0,
        };
        let trm = Transform::row_major(10.0, 0.0, 0.0, 10.0, 72.0, 700.0);
        for (deadline, gives_up) in [
            (Instant::now() + std::time::Duration::from_secs(3600), false),
            (Instant::now(), true),
        ] {
            let mut dev = Collector::for_page(super::super::MAX_GLYPHS, deadline);
            dev.begin_page(1, &media, None).expect("page begins");
            let read = (0..1000)
                .map(|_| dev.output_character(&trm, 0.5, 0.0, 1.0, "a"))
                .take_while(Result::is_ok)
                .count();
            assert_eq!(dev.timed_out, gives_up);
            assert_eq!(read < 1000, gives_up, "{read} glyphs read");
            assert!(read >= 255, "{read} glyphs read");
        }
    }

    #[test]
    fn guarded_turns_panics_into_messages() {
        type Case = (fn() -> u32, Result<u32, &'static str>);
        let cases: [Case; 3] = [
            (|| 7, Ok(7)),
            (|| panic!("boom"), Err("boom")),
            (|| panic!("{} {}", "formatted", 1), Err("formatted 1")),
        ];
        for (f, want) in cases {
            assert_eq!(guarded(f), want.map_err(str::to_string));
        }
    }

    #[test]
    fn capture_rejects_garbage_without_panicking() {
        for bytes in [
            &b"%PDF-1.4\n garbage"[..],
            b"%PDF-1.7\n1 0 obj << /Type /Catalog",
        ] {
            assert!(matches!(
                capture(
                    bytes,
                    "x.pdf",
                    10,
                    Instant::now() + super::super::TIME_LIMIT
                ),
                Err(PdfError::Malformed { .. })
            ));
        }
    }
}
