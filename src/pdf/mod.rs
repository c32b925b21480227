//! The PDF room: turns a paper's PDF bytes into a [`Document`] (title, authors, arXiv stamp,
//! abstract, body sections in reading order with the reference list cut).
//!
//! Submodules, in pipeline order: `glyphnames` (font glyph names pdf-extract cannot map),
//! `content` and `forms` (cut pages to their text operators, forms inlined, so pdf-extract
//! places figure text correctly and parses less) and `glyphs` (the only code that runs
//! pdf-extract, panic-guarded) -> `accents` (accent glyphs merged into their letters) ->
//! `layout` (words, lines, columns, reading order, running headers) ->
//! `clean` (ligatures, bad characters, hyphenation) -> `meta` (stamp, title, authors) and
//! `structure` (abstract, headings, sections). `limits` checks a file against size limits
//! (decompression bombs, object and page counts) before the PDF libraries allocate for it.

mod accents;
mod clean;
mod content;
mod forms;
mod glyphnames;
mod glyphs;
mod layout;
mod limits;
mod meta;
mod structure;
#[cfg(test)]
mod testpdf;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use regex::Regex;
use serde::{Deserialize, Serialize};

pub use limits::{
    MAX_OBJECTS, MAX_PAGE_CONTENT, MAX_PAGE_TREE, MAX_STREAM_INFLATED, MAX_TOTAL_INFLATED,
};
pub use meta::find_arxiv_id;

/// Fewer letters than this in the whole file means there is no text layer worth reading.
const MIN_LETTERS: usize = 16;
/// Bumped whenever extraction output changes, so cached extractions are redone.
pub const EXTRACTOR_VERSION: u32 = 6;
/// Files larger than this are refused before parsing (arXiv caps submissions at 50 MB).
pub const MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Pages read at most; later pages are skipped with a warning (papers put what matters first).
pub const MAX_PAGES: usize = 150;
/// Characters kept from one page (dense pages have under 10 000); the rest is skipped.
pub const MAX_GLYPHS_PER_PAGE: usize = 100_000;
/// Characters kept from the whole file; later pages are skipped.
pub const MAX_GLYPHS: usize = 2_000_000;
/// Wall time one file may take; pages not read by then are skipped with a warning (a
/// 150-page paper takes about a second).
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// What was extracted from one paper.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Document {
    pub title: Option<String>,
    pub authors: Vec<String>,
    /// From the arXiv margin stamp on page 1, version kept ("2202.00666v5", "hep-th/9901001v1").
    pub arxiv_id: Option<String>,
    /// The date printed in the arXiv stamp.
    pub stamp_date: Option<NaiveDate>,
    /// The info dictionary's CreationDate.
    pub creation_date: Option<NaiveDate>,
    #[serde(rename = "abstract", alias = "abstract_text")]
    pub abstract_text: Option<String>,
    /// Body after the abstract in reading order, reference list removed.
    pub sections: Vec<Section>,
    /// The reference list cut from the body, one entry per reference.
    #[serde(default)]
    pub references: Vec<String>,
    /// Page count of the file.
    pub pages: usize,
    /// What went wrong on the way without stopping extraction.
    pub warnings: Vec<String>,
}

/// One headed part of the body. Subsections are sections of their own, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Section {
    /// The heading as printed, numbering included ("2.1 Method").
    pub heading: String,
    /// Paragraphs separated by blank lines.
    pub text: String,
    /// After the reference list or an "Appendix" heading.
    pub appendix: bool,
}

/// Why a PDF could not be read. Every variant names its input.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name} is not a PDF ({found})")]
    NotPdf { source_name: String, found: String },
    #[error("{source_name} is encrypted and cannot be opened without a password")]
    Encrypted { source_name: String },
    /// Fewer than a line's worth of letters: nothing to summarise.
    #[error(
        "{source_name} has too little text to read in {pages} pages ({letters} letters; scanned or image-only PDF?)"
    )]
    NoText {
        source_name: String,
        pages: usize,
        letters: usize,
    },
    #[error("{source_name} is a malformed PDF: {reason}")]
    Malformed { source_name: String, reason: String },
    /// A safety limit against hostile files (decompression bombs, absurd object counts).
    #[error("{source_name} exceeds a safety limit: {what}")]
    Limit { source_name: String, what: String },
    #[error("{source_name} is too large: {bytes} bytes (limit {limit})")]
    TooLarge {
        source_name: String,
        bytes: u64,
        limit: u64,
    },
}

impl Document {
    /// The abstract and the sections as one text, each part under its heading.
    pub fn body_text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(a) = &self.abstract_text {
            parts.push(format!("Abstract\n\n{a}"));
        }
        for s in &self.sections {
            if s.text.is_empty() {
                parts.push(s.heading.clone());
            } else {
                parts.push(format!("{}\n\n{}", s.heading, s.text));
            }
        }
        parts.join("\n\n")
    }
}

/// Reads and extracts a PDF file.
pub fn extract_file(path: &Path) -> Result<Document, PdfError> {
    let io = |source| PdfError::Io {
        path: path.to_path_buf(),
        source,
    };
    check_size(
        std::fs::metadata(path).map_err(io)?.len(),
        &path.display().to_string(),
    )?;
    let bytes = std::fs::read(path).map_err(io)?;
    extract_bytes(&bytes, &path.display().to_string())
}

/// Extracts a PDF held in memory; `source_name` names it in errors and warnings.
pub fn extract_bytes(bytes: &[u8], source_name: &str) -> Result<Document, PdfError> {
    extract_bytes_within(bytes, source_name, TIME_LIMIT)
}

/// [`extract_bytes`] with its own time limit.
fn extract_bytes_within(
    bytes: &[u8],
    source_name: &str,
    time_limit: Duration,
) -> Result<Document, PdfError> {
    let started = Instant::now();
    check_size(bytes.len() as u64, source_name)?;
    if let Some(found) = not_pdf(bytes) {
        return Err(PdfError::NotPdf {
            source_name: source_name.to_string(),
            found,
        });
    }
    let raw = glyphs::capture(bytes, source_name, MAX_PAGES, started + time_limit)?;
    let mut warnings = raw.warnings.clone();
    let pages = layout::lay_out(&raw.pages);

    // Clean every line once; drop lines left empty and the upright form of the arXiv stamp.
    let first_page = pages.first().map_or(1, |p| p.number);
    let mut dropped = clean::Dropped::default();
    let mut lines: Vec<layout::Line> = Vec::new();
    for page in &pages {
        for line in &page.lines {
            let mut line = line.clone();
            line.text = clean::clean_chars(&line.text, &mut dropped);
            for w in &mut line.words {
                w.text = clean::clean_chars(&w.text, &mut clean::Dropped::default());
            }
            let stamp_like = page.number == first_page && meta::is_stamp_line(&line.text);
            if !line.text.is_empty() && !stamp_like {
                lines.push(line);
            }
        }
    }
    set_aside_interrupting_floats(&mut lines);
    join_interrupted_paragraphs(&mut lines);
    if dropped.total() > 0 {
        warnings.push(format!(
            "{source_name}: dropped {} unusable characters ({} replacement, {} control, {} private-use)",
            dropped.total(),
            dropped.replacement,
            dropped.control,
            dropped.private_use
        ));
    }
    let letters: usize = lines
        .iter()
        .map(|l| l.text.chars().filter(|c| c.is_alphabetic()).count())
        .sum();
    if let (Some(first), Some(last)) = (raw.timed_out.first(), raw.timed_out.last()) {
        let limit = time_limit.as_secs_f32();
        if letters < MIN_LETTERS {
            return Err(PdfError::Limit {
                source_name: source_name.to_string(),
                what: format!(
                    "the time limit of {limit} s ran out before any text was read ({} of {} pages unread)",
                    raw.timed_out.len(),
                    raw.pages.len()
                ),
            });
        }
        let which = if first == last {
            format!("page {first} was")
        } else {
            format!(
                "{} pages between {first} and {last} were",
                raw.timed_out.len()
            )
        };
        warnings.push(format!(
            "{source_name}: the time limit of {limit} s ran out; {which} not read"
        ));
    }
    // A handful of letters is a short note, not a paper, but still text to read; below that
    // (page numbers, a stray label) the pages are images.
    if letters < MIN_LETTERS && raw.failed_pages > 0 {
        return Err(PdfError::Malformed {
            source_name: source_name.to_string(),
            reason: format!(
                "text could not be decoded on {} of {} pages ({})",
                raw.failed_pages,
                raw.pages.len(),
                raw.warnings.first().map_or("", String::as_str)
            ),
        });
    }
    if letters < MIN_LETTERS {
        return Err(PdfError::NoText {
            source_name: source_name.to_string(),
            pages: raw.page_count,
            letters,
        });
    }
    let body = layout::body_size(lines.iter());
    let page1_end = lines
        .iter()
        .position(|l| l.page != first_page)
        .unwrap_or(lines.len());
    let page1 = &lines[..page1_end];
    let page1_text: String = page1
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");

    let stamp = pages
        .first()
        .map(|p| {
            let upright: Vec<layout::Line> = p
                .lines
                .iter()
                .filter(|l| l.page == first_page)
                .cloned()
                .collect();
            meta::read_stamp(&p.rotated, &upright)
        })
        .unwrap_or_default();

    let page_height = pages.first().map_or(792.0, |p| p.height);
    let found_title = meta::layout_title(page1, page_height, body);
    let title = match raw.info.title.as_deref() {
        Some(t) if meta::meaningful_title(t, &page1_text) => {
            Some(t.split_whitespace().collect::<Vec<_>>().join(" "))
        }
        _ => found_title.as_ref().map(|(t, _)| t.clone()),
    };
    if title.is_none() {
        warnings.push(format!("{source_name}: no title found"));
    }
    let after_title = found_title.as_ref().map_or(0, |(_, end)| end + 1);

    let spot = structure::find_abstract(&lines, after_title);
    let body_from = spot.as_ref().map_or(after_title, |s| s.heading + 1);
    let compounds = clean::Compounds::from_texts(lines.iter().map(|l| l.text.as_str()));
    let structure::Body {
        mut sections,
        first_heading,
        references,
    } = structure::sections(&lines, body_from, body, &compounds);
    let (abstract_text, abstract_end) = match &spot {
        Some(s) => {
            let (text, end) = structure::abstract_and_end(&lines, s, first_heading, &compounds);
            ((!text.is_empty()).then_some(text), end)
        }
        None => (None, body_from),
    };
    if abstract_text.is_none() {
        warnings.push(format!("{source_name}: no abstract found"));
    }

    // The info /Author wins only when every entry reads as a person's name (not a login
    // such as "jdoe" or a placeholder such as "Administrator").
    let info_authors: Option<Vec<String>> = raw.info.author.as_deref().and_then(|field| {
        meta::split_author_field(field)
            .iter()
            .map(|n| meta::as_person_name(n))
            .collect()
    });
    let authors = match info_authors {
        Some(names) if !names.is_empty() => names,
        _ => {
            let end = spot
                .as_ref()
                .map(|s| s.heading)
                .or(first_heading)
                .unwrap_or(page1_end)
                .min(page1_end);
            meta::layout_authors(lines.get(after_title..end).unwrap_or(&[]))
        }
    };
    if authors.is_empty() {
        warnings.push(format!("{source_name}: no author names found"));
    }

    if sections.is_empty() {
        // Keep the text usable downstream even when no heading was recognised: all of it
        // after the abstract, up to the reference list when one was found (then the only
        // heading recognised).
        let end = first_heading.unwrap_or(lines.len());
        let text = clean::join_lines_with(
            lines
                .get(abstract_end.min(end)..end)
                .unwrap_or(&[])
                .iter()
                .filter(|l| !l.footnote)
                .map(|l| l.text.as_str()),
            &compounds,
        );
        if !text.is_empty() {
            warnings.push(format!(
                "{source_name}: no section headings recognised; body kept as one section"
            ));
            sections.push(Section {
                heading: "Body".to_string(),
                text,
                appendix: false,
            });
        }
    }

    let doc = Document {
        title,
        authors,
        arxiv_id: stamp.id,
        stamp_date: stamp.date,
        creation_date: raw
            .info
            .creation_date
            .as_deref()
            .and_then(meta::parse_pdf_date),
        abstract_text,
        sections,
        references,
        pages: raw.page_count,
        warnings,
    };
    tracing::debug!(
        source = source_name,
        pages = doc.pages,
        two_column_pages = pages.iter().filter(|p| p.two_column).count(),
        sections = doc.sections.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "extracted PDF"
    );
    Ok(doc)
}

/// Lines a figure or table float adds at most before or after its caption (labels, cells).
const MAX_FLOAT_DEBRIS: usize = 40;

/// Moves a figure or table out of a sentence it interrupts. A float placed at the top or foot
/// of a page or column lands between two halves of a sentence in reading order ("… the main
/// problem, the" / labels / "Figure 1: …" / "main idea, …"). The float is its caption paragraph
/// plus the short, non-prose lines around it on its page (labels inside the figure, table
/// cells); it is set aside like a footnote, to the end of its section, when the text before it
/// leaves a sentence open and the text after it goes on in lower case.
fn set_aside_interrupting_floats(lines: &mut [layout::Line]) {
    let mut i = 0;
    while i < lines.len() {
        if lines[i].footnote || !lines[i].para_start || !is_caption_start(&lines[i].text) {
            i += 1;
            continue;
        }
        let page = lines[i].page;
        let mut end = i + 1;
        while end < lines.len() && !lines[end].para_start && lines[end].page == page {
            end += 1;
        }
        let debris = |l: &layout::Line| l.page == page && !l.footnote && !is_prose_line(&l.text);
        let mut start = i;
        while start > 0 && i - start < MAX_FLOAT_DEBRIS && debris(&lines[start - 1]) {
            start -= 1;
        }
        while end < lines.len() && end - i < MAX_FLOAT_DEBRIS && debris(&lines[end]) {
            end += 1;
        }
        let before = (0..start).rev().find(|&k| !lines[k].footnote);
        let after = lines[end..].iter().find(|l| !l.footnote);
        let interrupts = match (before, after) {
            (Some(b), Some(a)) => {
                running_text_tail(lines, b)
                    && !lines[b].text.trim_end().ends_with(['.', '!', '?', ':'])
                    && (lines[b].size - a.size).abs() <= 0.1 * a.size
                    && a.text.chars().next().is_some_and(char::is_lowercase)
                    && flow_continues(&lines[b], a)
            }
            _ => false,
        };
        if interrupts {
            for line in &mut lines[start..end] {
                line.footnote = true;
            }
            // The aside is one paragraph per part: debris, then the caption.
            lines[i].para_start = true;
        }
        i = end.max(i + 1);
    }
}

/// Whether line `k` is inside a paragraph of running text: it and the line before it are
/// prose, it reaches the right margin, and its paragraph is not a caption. Labels inside a
/// figure and table header rows can look like prose, but they are not two justified lines of
/// one paragraph.
fn running_text_tail(lines: &[layout::Line], k: usize) -> bool {
    let line = &lines[k];
    let paragraph_start = (0..=k).rev().find(|&j| lines[j].para_start).unwrap_or(0);
    k > 0
        && !line.short
        && !line.para_start
        && is_prose_line(&line.text)
        && is_prose_line(&lines[k - 1].text)
        && !is_caption_start(&lines[paragraph_start].text)
}

/// Whether reading goes on from `before` to `after` as the text of one column does: down the
/// same column (at the same left edge on one page), from the left column to the right one, or
/// from a page to the top of the next. Text of a full-width table cell does not run on into a
/// column below it.
fn flow_continues(before: &layout::Line, after: &layout::Line) -> bool {
    use layout::Col::{Left, Right};
    if before.page == after.page {
        (before.col == after.col && (before.x0 - after.x0).abs() <= after.size)
            || (before.col == Left && after.col == Right)
    } else {
        after.page == before.page + 1
            && (before.col == after.col || (before.col == Right && after.col == Left))
    }
}

/// Whether a line opens a figure or table caption ("Figure 3:", "Fig. 2.", "Table A.1 |").
fn is_caption_start(text: &str) -> bool {
    static CAPTION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:Figure|Fig\.|Table|Algorithm|Listing)\s*(?:[A-Z]\.?)?\d{1,3}(?:\.\d{1,2})*\s*(?:[:.|\u{2014}\u{2013}]|$)")
            .expect("valid regex")
    });
    CAPTION.is_match(text)
}

/// A line of running text: six or more words, most of them alphabetic.
fn is_prose_line(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let alphabetic = words
        .iter()
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        .count();
    words.len() >= 6 && alphabetic * 10 >= words.len() * 7
}

/// Clears `para_start` where a paragraph only seems to break. It runs on into the next column
/// or page when the flow restarts with a lower-case word after a line that reached its margin;
/// it runs on around a display equation (see below). Footnotes between the two parts do not
/// count: they leave the flow.
fn join_interrupted_paragraphs(lines: &mut [layout::Line]) {
    let mut prev_flow: Option<usize> = None;
    for i in 0..lines.len() {
        if lines[i].footnote {
            continue;
        }
        if let Some(p) = prev_flow {
            let (prev, line) = (&lines[p], &lines[i]);
            let lower_start = line.text.chars().next().is_some_and(char::is_lowercase);
            let run_on = line.gap_before.is_infinite()
                && !prev.short
                && (prev.size - line.size).abs() <= 0.1 * line.size
                && lower_start;
            // Around a display equation the gaps look like paragraph breaks, but the sentence
            // goes on: the equation follows a line with no full stop, and the text after it
            // ("where θ are ...") starts in lower case.
            let open_sentence = !prev.text.trim_end().ends_with(['.', '!', '?']);
            let equation_gap = line.gap_before.is_finite() && lower_start && open_sentence;
            if run_on || equation_gap {
                lines[i].para_start = false;
            }
        }
        prev_flow = Some(i);
    }
}

/// Refuses inputs over [`MAX_BYTES`].
fn check_size(bytes: u64, source_name: &str) -> Result<(), PdfError> {
    if bytes > MAX_BYTES {
        return Err(PdfError::TooLarge {
            source_name: source_name.to_string(),
            bytes,
            limit: MAX_BYTES,
        });
    }
    Ok(())
}

/// Describes what `bytes` are when they are not a PDF (a PDF header may follow some junk, as
/// the spec allows, within the first kilobyte).
fn not_pdf(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return None;
    }
    let text = String::from_utf8_lossy(head).to_lowercase();
    let trimmed = text.trim_start();
    Some(if bytes.is_empty() {
        "empty file".to_string()
    } else if trimmed.starts_with("<!doctype html")
        || trimmed.starts_with("<html")
        || text.contains("<head")
    {
        "an HTML page".to_string()
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        "JSON or other text".to_string()
    } else if head.starts_with(b"PK\x03\x04") {
        "a ZIP archive".to_string()
    } else if head.starts_with(b"\x1f\x8b") {
        "gzip data".to_string()
    } else {
        let shown: String = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("no %PDF- header; starts with bytes {shown}")
    })
}

#[cfg(test)]
mod tests;
