//! Test fixtures: builds small PDFs with lopdf (Courier, so widths are exact and lines can be
//! justified like a typeset paper; known strings at known places) so layout, metadata and
//! structure can be checked end to end without binary fixture files.

use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, Object, Stream, dictionary};

pub(crate) const WIDTH: f64 = 612.0;
pub(crate) const HEIGHT: f64 = 792.0;

/// One string placed on a page; `y` is the baseline measured from the top.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    pub x: f64,
    pub y: f64,
    pub size: f64,
    pub text: String,
    /// Rotated 90° counter-clockwise (like the arXiv margin stamp).
    pub rotated: bool,
    /// Extra space per space character (the `Tw` operator), to justify a line.
    pub word_spacing: f64,
}

/// Advance of one Courier character, in units of the font size.
pub(crate) const CHAR_WIDTH: f64 = 0.6;

pub(crate) fn text(x: f64, y: f64, size: f64, s: &str) -> Text {
    Text {
        x,
        y,
        size,
        text: s.to_string(),
        rotated: false,
        word_spacing: 0.0,
    }
}

/// A line stretched to `width` points by word spacing.
fn justified(x: f64, y: f64, size: f64, s: &str, width: f64) -> Text {
    let natural = s.chars().count() as f64 * CHAR_WIDTH * size;
    let spaces = s.matches(' ').count().max(1) as f64;
    Text {
        word_spacing: ((width - natural) / spaces).max(0.0),
        ..text(x, y, size, s)
    }
}

/// Encodes text for the fixture font: Latin-1, with the fi / fl ligatures at codes 1 and 2.
fn encode(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '\u{FB01}' => 1,
            '\u{FB02}' => 2,
            c if (c as u32) < 256 => c as u8,
            _ => b'?',
        })
        .collect()
}

/// Builds a PDF with the given pages and optional info-dictionary title and author.
/// Makes `doc` a one-page document (US Letter) whose page draws `content` with `resources`;
/// returns the page's id. For tests that build their own fonts or forms first.
pub(crate) fn single_page(
    doc: &mut Document,
    content: Vec<u8>,
    resources: Dictionary,
) -> lopdf::ObjectId {
    let content_id = doc.add_object(Stream::new(Dictionary::new(), content));
    let pages_id = doc.new_object_id();
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        "Resources" => resources,
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    page_id
}

pub(crate) fn build(pages: &[Vec<Text>], title: Option<&str>, author: Option<&str>) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Courier",
        "Encoding" => dictionary! {
            "Type" => "Encoding",
            "BaseEncoding" => "WinAnsiEncoding",
            "Differences" => vec![1.into(), Object::Name(b"fi".to_vec()), Object::Name(b"fl".to_vec())],
        },
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids: Vec<Object> = Vec::new();
    for page in pages {
        let mut ops = Vec::new();
        for t in page {
            let y = HEIGHT - t.y;
            ops.push(Operation::new("BT", vec![]));
            ops.push(Operation::new("Tf", vec!["F1".into(), t.size.into()]));
            ops.push(Operation::new("Tw", vec![t.word_spacing.into()]));
            let m: Vec<Object> = if t.rotated {
                vec![
                    0.into(),
                    1.into(),
                    (-1).into(),
                    0.into(),
                    t.x.into(),
                    y.into(),
                ]
            } else {
                vec![1.into(), 0.into(), 0.into(), 1.into(), t.x.into(), y.into()]
            };
            ops.push(Operation::new("Tm", m));
            ops.push(Operation::new(
                "Tj",
                vec![Object::string_literal(encode(&t.text))],
            ));
            ops.push(Operation::new("ET", vec![]));
        }
        let content = Content { operations: ops };
        let bytes = content.encode().unwrap_or_default();
        let content_id = doc.add_object(Stream::new(Dictionary::new(), bytes));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), WIDTH.into(), HEIGHT.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    let mut info = Dictionary::new();
    if let Some(t) = title {
        info.set("Title", Object::string_literal(t));
    }
    if let Some(a) = author {
        info.set("Author", Object::string_literal(a));
    }
    info.set("CreationDate", Object::string_literal("D:20240305071340Z"));
    let info_id = doc.add_object(info);
    doc.trailer.set("Info", info_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap_or_default();
    out
}

/// Wraps words into lines of at most `chars` characters. A `|` inside a word marks where it
/// may be hyphenated at a line end; unused marks are dropped.
pub(crate) fn wrap(text: &str, chars: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for w in text.split_whitespace() {
        let cur = lines.last().map_or(0, |l| l.chars().count());
        let sep = usize::from(cur > 0);
        let whole = w.replace('|', "");
        if cur + sep + whole.chars().count() > chars && cur > 0 {
            // Longest prefix at a hyphenation point that still fits with its hyphen.
            let cut = w
                .match_indices('|')
                .map(|(i, _)| i)
                .rev()
                .find(|&i| cur + sep + w[..i].replace('|', "").chars().count() < chars);
            if let (Some(i), Some(l)) = (cut, lines.last_mut()) {
                l.push(' ');
                l.push_str(&w[..i].replace('|', ""));
                l.push('-');
                lines.push(w[i + 1..].replace('|', ""));
                continue;
            }
            lines.push(String::new());
        }
        if let Some(l) = lines.last_mut() {
            if !l.is_empty() {
                l.push(' ');
            }
            l.push_str(&whole);
        }
    }
    lines
}

/// A piece of a synthetic paper body.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    Heading(String),
    Para(String),
}

/// Lays out a synthetic paper: title, authors, stamp and abstract on page 1, then the body
/// flowing through one or two columns and onto further pages, justified like typeset text,
/// with a running header and page numbers on every page.
pub(crate) fn paper(
    title: &[&str],
    authors: &str,
    abstract_text: &str,
    body: &[Part],
    two_columns: bool,
    stamp: Option<&str>,
) -> Vec<Vec<Text>> {
    let mut pages: Vec<Vec<Text>> = vec![Vec::new()];
    let mut y = 90.0;
    for t in title {
        pages[0].push(text(120.0, y, 17.0, t));
        y += 22.0;
    }
    y += 8.0;
    pages[0].push(text(150.0, y, 11.0, authors));
    y += 30.0;
    if let Some(s) = stamp {
        pages[0].push(Text {
            rotated: true,
            ..text(30.0, 560.0, 20.0, s)
        });
    }
    let (col_x, chars) = if two_columns {
        (vec![60.0, 320.0], 40)
    } else {
        (vec![72.0], 78)
    };
    let width = chars as f64 * CHAR_WIDTH * 10.0;
    let (top, bottom) = (80.0, 720.0);
    let first_body_y = y;
    let (mut col, mut page) = (0, 0);
    let mut place = |pages: &mut Vec<Vec<Text>>, y: &mut f64, t: Text, gap: f64| {
        if *y + gap > bottom {
            col += 1;
            *y = if page == 0 && col < col_x.len() {
                first_body_y
            } else {
                top
            };
            if col >= col_x.len() {
                col = 0;
                page += 1;
                pages.push(Vec::new());
            }
        }
        *y += gap;
        pages[page].push(Text {
            x: col_x[col],
            y: *y,
            ..t
        });
    };
    let mut paragraph = |pages: &mut Vec<Vec<Text>>, y: &mut f64, p: &str, first_gap: f64| {
        let lines = wrap(p, chars);
        for (i, l) in lines.iter().enumerate() {
            let t = if i + 1 < lines.len() {
                justified(0.0, 0.0, 10.0, l, width)
            } else {
                text(0.0, 0.0, 10.0, l)
            };
            place(pages, y, t, if i == 0 { first_gap } else { 12.0 });
        }
    };
    paragraph(&mut pages, &mut y, "Abstract", 0.0);
    paragraph(&mut pages, &mut y, abstract_text, 14.0);
    for part in body {
        match part {
            Part::Heading(h) => paragraph(&mut pages, &mut y, h, 26.0),
            Part::Para(p) => paragraph(&mut pages, &mut y, p, 16.0),
        }
    }
    for (i, p) in pages.iter_mut().enumerate() {
        p.push(text(
            200.0,
            40.0,
            9.0,
            "Preprint under review at a workshop",
        ));
        p.push(text(300.0, 760.0, 10.0, &format!("{}", i + 1)));
    }
    pages
}
