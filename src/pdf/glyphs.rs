//! Glyph capture: loads a PDF with lopdf and records every shown character with its position,
//! size and direction through a pdf-extract `OutputDev`. This is the only file that calls into
//! lopdf / pdf-extract, and every such call runs under `catch_unwind`, because both crates panic
//! on a few percent of real-world PDFs. A page whose positioned extraction fails falls back to
//! lopdf's plain `extract_text`; a page where both fail is reported in the warnings.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use lopdf::{Document as LoDocument, Object};
use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};

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
    pub info: Info,
    pub warnings: Vec<String>,
}

/// Loads `bytes` and captures the glyphs of at most `max_pages` pages.
pub(crate) fn capture(bytes: &[u8], source: &str, max_pages: usize) -> Result<RawDoc, PdfError> {
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
    let mut inline_failures = Vec::new();
    for (&number, &id) in pages.iter().take(max_pages) {
        match guarded(|| super::forms::inline_page(&mut doc, id)) {
            Ok(Ok(_)) => {}
            Ok(Err(why)) => inline_failures.push((number, why)),
            Err(panic) => inline_failures.push((number, format!("crash: {panic}"))),
        }
    }
    let out = capture_doc(&doc, source, max_pages);
    for (number, why) in inline_failures {
        // Not fatal: the page is read as it is, figure labels may be misplaced.
        tracing::debug!(source, page = number, %why, "form XObjects not inlined");
    }
    if out.pages.is_empty() {
        return Err(PdfError::Malformed {
            source_name: source.to_string(),
            reason: "the page tree has no pages".to_string(),
        });
    }
    Ok(out)
}

/// Captures the glyphs of at most `max_pages` pages of a loaded document.
pub(crate) fn capture_doc(doc: &LoDocument, source: &str, max_pages: usize) -> RawDoc {
    let mut out = RawDoc {
        info: read_info(doc),
        ..RawDoc::default()
    };
    let page_numbers: Vec<u32> = guarded(|| doc.get_pages())
        .map(|pages| pages.keys().copied().collect())
        .unwrap_or_default();
    out.page_count = page_numbers.len();
    if page_numbers.len() > max_pages {
        out.warnings.push(format!(
            "{source}: only the first {max_pages} of {} pages were read",
            page_numbers.len()
        ));
    }

    let mut glyphs_left = super::MAX_GLYPHS;
    for &number in page_numbers.iter().take(max_pages) {
        let mut dev = Collector {
            limit: glyphs_left.min(super::MAX_GLYPHS_PER_PAGE),
            ..Collector::default()
        };
        let positioned = guarded(|| pdf_extract::output_doc_page(doc, &mut dev, number));
        let failure = match positioned {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:?}")),
            Err(panic) => Some(format!("crash: {panic}")),
        };
        if dev.dropped > 0 {
            out.warnings.push(format!(
                "{source}: page {number}: {} characters past the limit were skipped",
                dev.dropped
            ));
        }
        let mut page = dev.page.unwrap_or_default();
        page.number = number;
        glyphs_left = glyphs_left.saturating_sub(page.glyphs.len());
        if let Some(why) = failure {
            tracing::debug!(source, page = number, %why, "positioned extraction failed");
            // A half-captured page would mix with the fallback text; use one or the other.
            page.glyphs.clear();
            match guarded(|| doc.extract_text(&[number])) {
                Ok(Ok(text)) if !text.trim().is_empty() => {
                    out.warnings.push(format!(
                        "{source}: page {number}: layout extraction failed ({}), used plain text",
                        short(&why)
                    ));
                    page.plain = Some(text);
                }
                _ => {
                    out.failed_pages += 1;
                    out.warnings.push(format!(
                        "{source}: page {number}: no text could be extracted ({})",
                        short(&why)
                    ));
                }
            }
        }
        out.pages.push(page);
    }
    out
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

/// The `OutputDev` that records glyphs of one page, at most `limit` of them.
#[derive(Default)]
struct Collector {
    page: Option<RawPage>,
    limit: usize,
    /// Glyphs past the limit, not recorded.
    dropped: usize,
    /// Page box origin and top, to move glyphs into top-left page space.
    llx: f64,
    ury: f64,
}

impl OutputDev for Collector {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        self.llx = media_box.llx.min(media_box.urx);
        self.ury = media_box.ury.max(media_box.lly);
        self.page = Some(RawPage {
            number: page_num,
            width: (media_box.urx - media_box.llx).abs(),
            height: (media_box.ury - media_box.lly).abs(),
            glyphs: Vec::new(),
            plain: None,
        });
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
        let Some(page) = self.page.as_mut() else {
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
        if page.glyphs.len() >= self.limit {
            self.dropped += 1;
            return Ok(());
        }
        let upright = trm.m11 > 0.0 && trm.m12.abs() <= 0.1 * trm.m11 && trm.m22 > 0.0;
        page.glyphs.push(Glyph {
            x: trm.m31 - self.llx,
            y: self.ury - trm.m32,
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
                capture(bytes, "x.pdf", 10),
                Err(PdfError::Malformed { .. })
            ));
        }
    }
}
