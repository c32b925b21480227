//! Layout analysis: turns the glyphs of each page into words, lines and a reading order.
//!
//! The pipeline is glyphs -> words (gaps and baseline jumps) -> lines (content-stream order,
//! then same-baseline merging) -> running headers / footers / page numbers removed -> columns
//! (a vertical white gutter near the page middle) -> reading order (full-width bands, then the
//! left column, then the right one) -> paragraph cues (vertical gaps, lines ending early).
//! Everything here is geometry; what the lines *mean* is decided in `structure` and `meta`.

use std::collections::HashMap;

use rayon::prelude::*;

use super::accents::compose_accents;
use super::glyphs::{Glyph, RawPage};

/// A run of glyphs without an internal gap, on one baseline.
#[derive(Debug, Clone)]
pub(crate) struct Word {
    pub x0: f64,
    pub x1: f64,
    pub y: f64,
    /// Largest glyph size in the word.
    pub size: f64,
    pub text: String,
    /// A visible gap (or an explicit space glyph) separates it from the previous word.
    pub space_before: bool,
    /// Superscript or subscript relative to its line (footnote marks, affiliation numbers).
    pub script: bool,
    /// Horizontal distance from the previous word of the line in units of the line size
    /// (infinite for the first word): wide gaps separate names in author rows or table cells.
    pub gap: f64,
    /// (text, size) of each glyph, kept for small-caps recovery.
    parts: Vec<(String, f64)>,
}

/// Where a line sits relative to the columns of its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    /// Single-column page, or a line spanning both columns.
    Full,
    Left,
    Right,
}

/// One visual line of text (within one column).
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// 1-based page number.
    pub page: u32,
    pub col: Col,
    pub x0: f64,
    pub x1: f64,
    /// Baseline of the line's main text.
    pub y: f64,
    /// Dominant glyph size of the line (superscripts excluded).
    pub size: f64,
    pub words: Vec<Word>,
    pub text: String,
    /// Baseline distance to the previous line of the same flow, in units of this line's size;
    /// infinite at the top of a column, band or page.
    pub gap_before: f64,
    /// The next line's `gap_before` (infinite when the flow ends here).
    pub gap_after: f64,
    /// Ends before the column's right margin (justified running text reaches it).
    pub short: bool,
    /// Starts a paragraph (gap, size change, or the previous line ended early).
    pub para_start: bool,
    /// Small print at the foot of a column (a footnote): kept out of the running text and
    /// given as its own paragraph at the end of the section it falls in.
    pub footnote: bool,
}

/// A page after layout analysis.
#[derive(Debug, Clone)]
pub(crate) struct PageLines {
    pub number: u32,
    pub height: f64,
    /// Lines in reading order, headers and footers removed, bottom-of-column footnotes marked.
    pub lines: Vec<Line>,
    pub two_column: bool,
    /// Rotated or vertical text of the page in content order (holds the arXiv stamp on page 1).
    pub rotated: String,
}

/// Lays out all pages of a document.
pub(crate) fn lay_out(pages: &[RawPage]) -> Vec<PageLines> {
    // Pages are independent until the document-wide statistics below: build them in parallel.
    let mut built: Vec<(Vec<Line>, &RawPage)> = pages
        .par_iter()
        .map(|p| {
            let lines = match &p.plain {
                Some(text) => plain_lines(p.number, text),
                None => build_lines(p.number, &p.glyphs),
            };
            (lines, p)
        })
        .collect();

    let body = body_size(built.iter().flat_map(|(l, _)| l.iter()));
    remove_margins(&mut built, body);

    // Decide columns per page, then settle undecided (sparse) pages by the document majority.
    let decisions: Vec<Option<f64>> = built
        .par_iter()
        .map(|(lines, p)| {
            if p.plain.is_some() {
                Some(f64::NAN)
            } else {
                find_gutter(lines, p.width, body)
            }
        })
        .collect();
    let mids: Vec<f64> = decisions
        .iter()
        .flatten()
        .copied()
        .filter(|m| m.is_finite())
        .collect();
    let decided = decisions.iter().filter(|d| d.is_some()).count();
    let doc_mid = (mids.len() * 2 > decided.max(1)).then(|| median(&mids));

    built
        .into_par_iter()
        .zip(decisions)
        .map(|((lines, p), decision)| {
            let mid = match decision {
                Some(m) if m.is_finite() => Some(m),
                Some(_) => None,
                None => doc_mid,
            };
            let mut lines = order(lines, mid, body);
            if p.plain.is_none() {
                mark_footnotes(&mut lines, body);
                // Tiny print is figure labels and axis ticks, not prose.
                lines.retain(|l| l.size >= 0.7 * body);
            }
            mark_paragraphs(&mut lines, p.plain.is_some());
            PageLines {
                number: p.number,
                height: p.height,
                lines,
                two_column: mid.is_some(),
                rotated: p
                    .glyphs
                    .iter()
                    .filter(|g| !g.upright)
                    .map(|g| g.text.as_str())
                    .collect(),
            }
        })
        .collect()
}

/// Dominant text size of a set of lines, weighted by characters (the body font).
pub(crate) fn body_size<'a>(lines: impl Iterator<Item = &'a Line>) -> f64 {
    let mut hist: HashMap<i64, usize> = HashMap::new();
    for l in lines {
        *hist.entry((l.size * 2.0).round() as i64).or_default() += l.text.chars().count();
    }
    hist.into_iter()
        .max_by_key(|&(size, count)| (count, size))
        .map(|(size, _)| size as f64 / 2.0)
        .filter(|s| *s > 0.0)
        .unwrap_or(10.0)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Lines for a page that only has plain text: no geometry, one line per text line.
fn plain_lines(page: u32, text: &str) -> Vec<Line> {
    text.lines()
        .enumerate()
        .filter(|(_, t)| !t.trim().is_empty())
        .map(|(i, t)| {
            let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
            Line {
                page,
                col: Col::Full,
                x0: 0.0,
                x1: 0.0,
                y: i as f64 * 12.0,
                size: 10.0,
                words: Vec::new(),
                text: t,
                gap_before: f64::INFINITY,
                gap_after: f64::INFINITY,
                short: false,
                para_start: false,
                footnote: false,
            }
        })
        .collect()
}

fn is_space(s: &str) -> bool {
    !s.is_empty() && s.chars().all(char::is_whitespace)
}

/// Groups upright glyphs into words and words into lines.
pub(crate) fn build_lines(page: u32, glyphs: &[Glyph]) -> Vec<Line> {
    let words = build_words(glyphs);
    let lines = chain_lines(&words);
    let mut lines: Vec<Line> = lines
        .into_iter()
        .filter_map(|ws| finish_line(page, ws))
        .collect();
    merge_same_baseline(&mut lines);
    lines
}

fn build_words(glyphs: &[Glyph]) -> Vec<Word> {
    let glyphs = compose_accents(glyphs);
    let mut words: Vec<Word> = Vec::new();
    let mut cur: Option<Word> = None;
    let mut pending_space = false;
    for g in glyphs.iter().filter(|g| g.upright) {
        if is_space(&g.text) {
            if let Some(w) = cur.take() {
                words.push(w);
            }
            pending_space = true;
            continue;
        }
        if g.text.is_empty() {
            continue;
        }
        let fresh = |space_before: bool| Word {
            x0: g.x,
            x1: g.x + g.adv,
            y: g.y,
            size: g.size,
            text: g.text.clone(),
            space_before,
            script: false,
            gap: f64::INFINITY,
            parts: vec![(g.text.clone(), g.size)],
        };
        match cur.as_mut() {
            Some(w) => {
                let size = w.size.max(g.size);
                let gap = g.x - w.x1;
                let same_baseline = (g.y - w.y).abs() <= 0.2 * w.size.min(g.size);
                if same_baseline && gap <= 0.15 * size && gap >= -0.3 * size && !pending_space {
                    w.x1 = w.x1.max(g.x + g.adv);
                    w.size = size;
                    w.text.push_str(&g.text);
                    w.parts.push((g.text.clone(), g.size));
                } else {
                    let space = pending_space || gap > 0.15 * size || gap < -0.3 * size;
                    if let Some(done) = cur.replace(fresh(space)) {
                        words.push(done);
                    }
                }
            }
            None => cur = Some(fresh(pending_space)),
        }
        pending_space = false;
    }
    words.extend(cur);
    words
}

/// Chains words into line fragments in content-stream order: a word continues the current
/// fragment when it sits to the right, close by, and near the fragment's main baseline.
fn chain_lines(words: &[Word]) -> Vec<Vec<Word>> {
    let mut lines: Vec<Vec<Word>> = Vec::new();
    let mut cur: Vec<Word> = Vec::new();
    // Main baseline and size of the current fragment: those of its largest word, so a leading
    // superscript does not become the reference.
    let (mut base_y, mut base_size, mut right) = (0.0_f64, 0.0_f64, 0.0_f64);
    for w in words {
        if !cur.is_empty() {
            let size = base_size.max(w.size);
            let continues = (w.y - base_y).abs() <= 0.55 * size
                && w.x0 >= right - 0.5 * size
                && w.x0 - right <= 1.0 * size;
            if !continues {
                lines.push(std::mem::take(&mut cur));
            }
        }
        if cur.is_empty() || w.size > base_size * 1.05 {
            base_y = w.y;
            base_size = w.size;
        }
        right = if cur.is_empty() {
            w.x1
        } else {
            right.max(w.x1)
        };
        cur.push(w.clone());
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Computes a line's size, baseline, scripts, small caps and text.
fn finish_line(page: u32, mut words: Vec<Word>) -> Option<Line> {
    // Dominant size: the size carrying most letters and digits.
    let mut hist: HashMap<i64, usize> = HashMap::new();
    for w in &words {
        for (t, s) in &w.parts {
            let n = t.chars().filter(|c| c.is_alphanumeric()).count();
            *hist.entry((s * 10.0).round() as i64).or_default() += n;
        }
    }
    let size = hist
        .into_iter()
        .max_by_key(|&(s, n)| (n, s))
        .map(|(s, _)| s as f64 / 10.0)
        .or_else(|| words.iter().map(|w| w.size).reduce(f64::max))?;
    // Baseline: that of the widest word at (about) the dominant size.
    let y = words
        .iter()
        .filter(|w| w.size >= 0.9 * size)
        .max_by(|a, b| (a.x1 - a.x0).total_cmp(&(b.x1 - b.x0)))
        .map(|w| w.y)
        .or_else(|| words.first().map(|w| w.y))?;
    for w in &mut words {
        w.script = w.size < 0.85 * size && (w.y - y).abs() > 0.12 * size;
    }
    recover_small_caps(&mut words, y);
    let (x0, x1) = words
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), w| (a.min(w.x0), b.max(w.x1)));
    let mut line = Line {
        page,
        col: Col::Full,
        x0,
        x1,
        y,
        size,
        words,
        text: String::new(),
        gap_before: f64::INFINITY,
        gap_after: f64::INFINITY,
        short: false,
        para_start: false,
        footnote: false,
    };
    line.text = line_text(&mut line.words);
    (!line.text.trim().is_empty()).then_some(line)
}

/// Rebuilds a line's text and word gaps from its words.
fn line_text(words: &mut [Word]) -> String {
    let size = words
        .iter()
        .map(|w| w.size)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let mut s = String::new();
    let mut prev_x1: Option<f64> = None;
    for w in words.iter_mut() {
        w.gap = prev_x1.map_or(f64::INFINITY, |x1| (w.x0 - x1) / size);
        if prev_x1.is_some() && w.space_before {
            s.push(' ');
        }
        s.push_str(&w.text);
        prev_x1 = Some(w.x1);
    }
    s
}

/// Small caps are capitals printed smaller: a capital noticeably smaller than the line's
/// largest capitals, on the baseline, is really a lower-case letter ("LANGUAGE" set as
/// L + ANGUAGE in a smaller size reads "Language").
fn recover_small_caps(words: &mut [Word], baseline: f64) {
    let big = words
        .iter()
        .filter(|w| !w.script && (w.y - baseline).abs() < 0.1 * w.size)
        .flat_map(|w| w.parts.iter())
        .filter(|(t, _)| t.chars().all(char::is_uppercase))
        .map(|(_, s)| *s)
        .fold(0.0_f64, f64::max);
    if big <= 0.0 {
        return;
    }
    let small = |s: f64| s < 0.9 * big && s > 0.6 * big;
    let has_small_caps = words.iter().any(|w| {
        w.parts
            .iter()
            .any(|(t, s)| small(*s) && t.chars().all(char::is_uppercase))
    });
    // Every letter of a small-caps run is a capital: a line with real lower-case letters at
    // the small size is ordinary mixed text (e.g. a big initial), not small caps.
    let has_lower_small = words.iter().any(|w| {
        w.parts
            .iter()
            .any(|(t, s)| small(*s) && t.chars().any(char::is_lowercase))
    });
    if !has_small_caps || has_lower_small {
        return;
    }
    for w in words.iter_mut().filter(|w| !w.script) {
        let mut text = String::new();
        for (t, s) in &w.parts {
            if small(*s) && t.chars().all(char::is_uppercase) {
                text.extend(t.chars().flat_map(char::to_lowercase));
            } else {
                text.push_str(t);
            }
        }
        w.text = text;
    }
}

/// Joins fragments that share a baseline and touch horizontally (text emitted out of order).
fn merge_same_baseline(lines: &mut Vec<Line>) {
    let mut i = 0;
    while i < lines.len() {
        let mut j = i + 1;
        let mut merged = false;
        while j < lines.len() {
            let (a, b) = (&lines[i], &lines[j]);
            let size = a.size.max(b.size);
            let same = (a.y - b.y).abs() <= 0.25 * size && (a.size - b.size).abs() <= 0.2 * size;
            let touching = b.x0 - a.x1 <= 1.0 * size && b.x0 - a.x1 >= -0.5 * size;
            let touching_rev = a.x0 - b.x1 <= 1.0 * size && a.x0 - b.x1 >= -0.5 * size;
            if same && (touching || touching_rev) {
                let b = lines.remove(j);
                let a = &mut lines[i];
                let mut words = std::mem::take(&mut a.words);
                let mut other = b.words;
                if touching_rev {
                    std::mem::swap(&mut words, &mut other);
                }
                if let Some(first) = other.first_mut() {
                    first.space_before = true;
                }
                words.extend(other);
                a.x0 = a.x0.min(b.x0);
                a.x1 = a.x1.max(b.x1);
                a.text = line_text(&mut words);
                a.words = words;
                merged = true;
            } else {
                j += 1;
            }
        }
        if !merged {
            i += 1;
        }
    }
}

/// Drops running headers and footers (text repeated at the same place on many pages, digits
/// ignored) and page numbers.
fn remove_margins(pages: &mut [(Vec<Line>, &RawPage)], body: f64) {
    let key = |l: &Line| -> String {
        l.text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .flat_map(char::to_lowercase)
            .collect()
    };
    // Lines in the outer tenth of the page that repeat on a quarter of the pages are margins.
    // Wide page margins put a running header further in: there, only the topmost and the
    // bottommost line count, and only words repeated on half of the pages.
    let edges: Vec<(f64, f64)> = pages
        .iter()
        .map(|(lines, _)| {
            let ys = lines.iter().map(|l| l.y);
            (
                ys.clone().fold(f64::INFINITY, f64::min),
                ys.fold(f64::NEG_INFINITY, f64::max),
            )
        })
        .collect();
    let in_band = |l: &Line, p: &RawPage| l.y < 0.1 * p.height || l.y > 0.9 * p.height;
    let at_edge = |l: &Line, (top, bottom): (f64, f64)| l.y <= top || l.y >= bottom;
    let mut band_counts: HashMap<String, usize> = HashMap::new();
    let mut edge_counts: HashMap<String, usize> = HashMap::new();
    for ((lines, p), &edge) in pages.iter().zip(&edges) {
        if p.plain.is_some() {
            continue;
        }
        let mut band: Vec<String> = lines.iter().filter(|l| in_band(l, p)).map(key).collect();
        let mut edge_keys: Vec<String> =
            lines.iter().filter(|l| at_edge(l, edge)).map(key).collect();
        for (keys, counts) in [
            (&mut band, &mut band_counts),
            (&mut edge_keys, &mut edge_counts),
        ] {
            keys.sort();
            keys.dedup();
            for k in keys.drain(..) {
                *counts.entry(k).or_default() += 1;
            }
        }
    }
    let n_pages = pages.len();
    let repeated_in_band = |k: &str| {
        let c = band_counts.get(k).copied().unwrap_or(0);
        c >= 2 && c * 4 >= n_pages
    };
    let repeated_at_edge = |k: &str| {
        let c = edge_counts.get(k).copied().unwrap_or(0);
        c >= 3 && c * 2 >= n_pages && k.chars().filter(|c| c.is_alphabetic()).count() >= 4
    };
    for ((lines, p), &edge) in pages.iter_mut().zip(&edges) {
        let p: &RawPage = p;
        if p.plain.is_some() {
            continue;
        }
        lines.retain(|l| {
            let band = in_band(l, p);
            if !band && !at_edge(l, edge) {
                return true;
            }
            let page_number = is_page_number(&l.text) && l.size <= 1.3 * body;
            let k = key(l);
            let margin = if band {
                repeated_in_band(&k) || repeated_at_edge(&k) || page_number
            } else {
                // A page number alone at the foot of the page, however high the foot is.
                repeated_at_edge(&k) || (page_number && l.y >= edge.1)
            };
            !margin
        });
    }
}

/// "12", "- 12 -", "Page 3", "3 of 12", "xii".
pub(crate) fn is_page_number(text: &str) -> bool {
    let t = text
        .trim()
        .trim_matches(|c: char| c == '-' || c == '–' || c.is_whitespace());
    let lower = t.to_lowercase();
    let lower = lower.strip_prefix("page").map(str::trim).unwrap_or(&lower);
    let first = lower.split(" of ").next().unwrap_or(lower).trim();
    let all_digits =
        !first.is_empty() && first.len() <= 4 && first.chars().all(|c| c.is_ascii_digit());
    let roman = !first.is_empty()
        && first.len() <= 6
        && first.chars().all(|c| matches!(c, 'i' | 'v' | 'x' | 'l'));
    all_digits || roman
}

/// Finds the x of a two-column gutter: a vertical strip near the page middle that no
/// column-width text line crosses, with real column text on both sides. Lines wider than 60%
/// of the page (titles, wide tables and figures) span the columns and are left out, so a page
/// that mixes a full-width table with two columns is still seen as two columns. `None` when
/// the page has too little text to decide (the caller then uses the document majority);
/// `Some(NaN)` for one column.
fn find_gutter(lines: &[Line], width: f64, body: f64) -> Option<f64> {
    if width <= 0.0 {
        return None;
    }
    let text: Vec<&Line> = lines
        .iter()
        .filter(|l| l.size >= 0.8 * body && l.size <= 1.25 * body && l.text.chars().count() >= 3)
        .collect();
    let wide = text.iter().filter(|l| l.x1 - l.x0 >= 0.6 * width).count();
    let narrow: Vec<&Line> = text
        .iter()
        .copied()
        .filter(|l| l.x1 - l.x0 < 0.6 * width)
        .collect();
    if narrow.len() < 6 {
        return (wide >= 6).then_some(f64::NAN);
    }
    // Only lines of some length can block a gutter: the cells of a full-width table and
    // figure labels sit across the middle of two-column pages too.
    let blocking: Vec<&Line> = narrow
        .iter()
        .copied()
        .filter(|l| l.x1 - l.x0 >= 0.2 * width)
        .collect();
    let lo = (0.3 * width) as i64;
    let hi = (0.7 * width) as i64;
    let coverage: Vec<(i64, usize)> = (lo..=hi)
        .map(|x| {
            let xf = x as f64;
            (
                x,
                blocking.iter().filter(|l| l.x0 <= xf && l.x1 >= xf).count(),
            )
        })
        .collect();
    let min = coverage.iter().map(|&(_, c)| c).min()?;
    if min > (blocking.len() / 5).max(1) {
        return Some(f64::NAN);
    }
    // Widest run of minimal coverage (ties: closest to the middle).
    let mut best: Option<(i64, i64)> = None;
    let mut start: Option<i64> = None;
    for (i, &(x, c)) in coverage.iter().enumerate() {
        if c <= min {
            start.get_or_insert(x);
        }
        let end_run = c > min || i + 1 == coverage.len();
        if end_run && let Some(s) = start.take() {
            let e = if c > min { x - 1 } else { x };
            let better = match best {
                None => true,
                Some((bs, be)) => {
                    let (w, bw) = (e - s, be - bs);
                    let centre = |a: i64, b: i64| ((a + b) as f64 / 2.0 - width / 2.0).abs();
                    w > bw || (w == bw && centre(s, e) < centre(bs, be))
                }
            };
            if better {
                best = Some((s, e));
            }
        }
    }
    let (s, e) = best?;
    if ((e - s) as f64) < 0.6 * body {
        return Some(f64::NAN);
    }
    let (g0, g1) = (s as f64, e as f64);
    // Column text: lines at least a quarter of the page wide on each side of the gutter
    // (table cells and short paragraph ends do not make columns).
    let column_line = |l: &Line| l.x1 - l.x0 >= 0.25 * width;
    let left = narrow
        .iter()
        .filter(|l| column_line(l) && l.x1 <= g0 + 1.0)
        .count();
    let right = narrow
        .iter()
        .filter(|l| column_line(l) && l.x0 >= g1 - 1.0)
        .count();
    // Side-by-side figure captions on a one-column page also leave a gutter; real columns
    // carry more text than the full-width lines do.
    if left >= 4 && right >= 4 && left + right >= wide {
        Some((g0 + g1) / 2.0)
    } else {
        Some(f64::NAN)
    }
}

/// Puts a page's lines into reading order. With a gutter at `mid`: rows above the first long
/// column line (title block) go first, top to bottom; then the page is cut into bands at
/// lines that span both columns, and each band is read left column first.
fn order(mut lines: Vec<Line>, mid: Option<f64>, body: f64) -> Vec<Line> {
    lines.sort_by(|a, b| a.y.total_cmp(&b.y).then(a.x0.total_cmp(&b.x0)));
    let Some(mid) = mid else {
        return merge_rows(lines);
    };
    for l in &mut lines {
        let slack = 2.0 * l.size;
        l.col = if l.x1 <= mid + slack {
            Col::Left
        } else if l.x0 >= mid - slack {
            Col::Right
        } else {
            Col::Full
        };
    }
    let col_width = |c: Col| {
        let (a, b) = lines
            .iter()
            .filter(|l| l.col == c)
            .fold((f64::MAX, f64::MIN), |(a, b), l| (a.min(l.x0), b.max(l.x1)));
        (b - a).max(0.0)
    };
    let (wl, wr) = (col_width(Col::Left), col_width(Col::Right));
    let first_long = lines
        .iter()
        .filter(|l| {
            let w = if l.col == Col::Left { wl } else { wr };
            l.col != Col::Full && l.size <= 1.25 * body && l.x1 - l.x0 >= 0.6 * w
        })
        .map(|l| l.y)
        .reduce(f64::min)
        .unwrap_or(f64::MAX);

    let mut out: Vec<Line> = Vec::new();
    let mut head: Vec<Line> = Vec::new();
    let mut band: Vec<Line> = Vec::new();
    let flush = |band: &mut Vec<Line>, out: &mut Vec<Line>| {
        let (left, right): (Vec<Line>, Vec<Line>) =
            band.drain(..).partition(|l| l.col == Col::Left);
        out.extend(merge_rows(left));
        out.extend(merge_rows(right));
    };
    for mut l in lines {
        if l.y < first_long - 0.3 * l.size {
            l.col = Col::Full;
            head.push(l);
        } else if l.col == Col::Full {
            flush(&mut band, &mut out);
            out.push(l);
        } else {
            band.push(l);
        }
    }
    flush(&mut band, &mut out);
    let mut all = merge_rows(head);
    all.extend(out);
    all
}

/// Merges lines of one flow that share a baseline (table rows split at wide gaps) and keeps
/// top-to-bottom order.
fn merge_rows(mut lines: Vec<Line>) -> Vec<Line> {
    lines.sort_by(|a, b| a.y.total_cmp(&b.y).then(a.x0.total_cmp(&b.x0)));
    let mut out: Vec<Line> = Vec::new();
    for l in lines {
        // Same size too: a figure label beside a heading is not part of it.
        if let Some(prev) = out.last_mut()
            && (prev.y - l.y).abs() <= 0.3 * prev.size.min(l.size)
            && (peak(prev) - peak(&l)).abs() <= 0.12 * peak(prev).max(peak(&l))
            && l.x0 >= prev.x1 - 0.5 * l.size
        {
            let mut words = l.words;
            if let Some(first) = words.first_mut() {
                first.space_before = true;
            }
            prev.words.extend(words);
            prev.text = line_text(&mut prev.words);
            prev.x1 = prev.x1.max(l.x1);
            prev.size = prev.size.max(l.size);
            continue;
        }
        out.push(l);
    }
    out
}

/// Largest glyph size of a line outside super/subscripts (small caps lines are judged by
/// their capitals, so a section number matches its small-caps title).
fn peak(l: &Line) -> f64 {
    l.words
        .iter()
        .filter(|w| !w.script)
        .map(|w| w.size)
        .fold(l.size, f64::max)
}

/// Marks small-print lines at the bottom of each column (footnotes, affiliations on page 1,
/// axis labels of a bottom figure) as footnotes: they interrupt the running text otherwise,
/// yet footnotes carry content, so `structure` moves them to the end of their section.
fn mark_footnotes(lines: &mut [Line], body: f64) {
    for col in [Col::Full, Col::Left, Col::Right] {
        let idx: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].col == col).collect();
        // Only the trailing run of the column, and only when body text sits above it.
        let mut bottom: Vec<usize> = idx.clone();
        bottom.sort_by(|&a, &b| lines[a].y.total_cmp(&lines[b].y));
        let mut cut = Vec::new();
        for &i in bottom.iter().rev() {
            if lines[i].size < 0.95 * body {
                cut.push(i);
            } else {
                break;
            }
        }
        if cut.is_empty() || cut.len() == bottom.len() {
            continue;
        }
        // Clearly small print goes; slightly small print (footnotes are often 9pt under 10pt
        // text, like captions) only when a line of it starts with a footnote mark.
        let small = cut.iter().all(|&i| lines[i].size < 0.88 * body);
        let marked = cut.iter().any(|&i| starts_with_mark(&lines[i]));
        if !small && !marked {
            continue;
        }
        // Never drop a footnote block taller than a third of the column.
        let top = cut.iter().map(|&i| lines[i].y).fold(f64::MAX, f64::min);
        let col_top = bottom.first().map(|&i| lines[i].y).unwrap_or(0.0);
        let col_bottom = bottom.last().map(|&i| lines[i].y).unwrap_or(0.0);
        if col_bottom - top > (col_bottom - col_top) / 3.0 {
            continue;
        }
        for i in cut {
            let line = &mut lines[i];
            line.footnote = true;
            // The note's mark is set tight against its first word ("13We use"): part it.
            if line.words.first().is_some_and(|w| w.script)
                && let Some(next) = line.words.get_mut(1)
                && !next.space_before
            {
                next.space_before = true;
                line.text = line_text(&mut line.words);
            }
        }
    }
}

/// Whether a line starts like a footnote: a superscript mark or a footnote symbol.
fn starts_with_mark(l: &Line) -> bool {
    let Some(first) = l.words.first() else {
        return false;
    };
    let symbol = first
        .text
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '*' | '∗' | '†' | '‡' | '§' | '¶' | '⋆'));
    (first.script && first.text.chars().count() <= 3) || symbol
}

/// Fills `gap_before`, `gap_after`, `short` and `para_start`.
fn mark_paragraphs(lines: &mut [Line], plain: bool) {
    if plain {
        for l in lines.iter_mut() {
            l.para_start = true;
        }
        return;
    }
    // Column margins: the most common left and right edges of each column's lines.
    let mut margins: HashMap<u8, (f64, f64)> = HashMap::new();
    for col in [Col::Full, Col::Left, Col::Right] {
        let of_col: Vec<&Line> = lines.iter().filter(|l| l.col == col).collect();
        if of_col.is_empty() {
            continue;
        }
        // Ties go to the outer edge.
        let mode = |f: &dyn Fn(&Line) -> f64, sign: i64| -> f64 {
            let mut hist: HashMap<i64, usize> = HashMap::new();
            for l in &of_col {
                *hist.entry(f(l).round() as i64).or_default() += 1;
            }
            hist.into_iter()
                .max_by_key(|&(x, n)| (n, sign * x))
                .map(|(x, _)| x as f64)
                .unwrap_or(0.0)
        };
        let left = mode(&|l: &Line| l.x0, -1);
        let right = mode(&|l: &Line| l.x1, 1);
        margins.insert(col as u8, (left, right));
    }
    let mut prev: Option<(Col, f64, f64, f64)> = None;
    // Right edges of the last lines of the current flow: an indented block (an abstract
    // environment, a quotation) has its own, narrower right margin.
    let mut recent: Vec<f64> = Vec::new();
    for l in lines.iter_mut() {
        let (_, right) = margins.get(&(l.col as u8)).copied().unwrap_or((l.x0, l.x1));
        l.short = l.x1 < right - 0.3 * l.size;
        if !matches!(prev, Some((c, y, _, _)) if c == l.col && l.y > y) {
            recent.clear();
        }
        let local_right = recent.iter().copied().fold(l.x1, f64::max).min(right);
        // The previous line ended a paragraph when this line's first word would have fitted
        // in the room it left before the right margin.
        let first_word = l
            .words
            .iter()
            .take_while(|w| !w.space_before || w.gap.is_infinite())
            .map(|w| w.x1)
            .fold(l.x0, f64::max)
            - l.x0;
        let (gap, prev_ended, size_jump) = match prev {
            Some((c, y, size, x1)) if c == l.col && l.y > y => {
                let room = local_right - x1;
                (
                    (l.y - y) / l.size,
                    room > first_word + 0.5 * l.size,
                    (l.size - size).abs() > 0.1 * size,
                )
            }
            _ => (f64::INFINITY, true, true),
        };
        l.gap_before = gap;
        // Indentation alone is no cue: hanging indents of list items and references would
        // split them; a first-line indent follows a short line, which `prev_ended` catches.
        l.para_start = gap > 1.55 || prev_ended || size_jump;
        prev = Some((l.col, l.y, l.size, l.x1));
        recent.push(l.x1);
        if recent.len() > 3 {
            recent.remove(0);
        }
    }
    for i in 1..lines.len() {
        lines[i - 1].gap_after = lines[i].gap_before;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Glyphs for `text` starting at (x, y), 0.5 size per character, a space glyph per space.
    fn glyphs(text: &str, x: f64, y: f64, size: f64) -> Vec<Glyph> {
        let mut out = Vec::new();
        let mut cx = x;
        for c in text.chars() {
            out.push(Glyph {
                x: cx,
                y,
                size,
                adv: 0.5 * size,
                text: c.to_string(),
                upright: true,
            });
            cx += 0.5 * size;
        }
        out
    }

    #[test]
    fn words_split_on_space_glyphs_and_gaps() {
        let mut g = glyphs("ab cd", 0.0, 100.0, 10.0);
        // A positioned gap without a space glyph also separates words.
        g.extend(glyphs("ef", 31.0, 100.0, 10.0));
        let lines = build_lines(1, &g);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "ab cd ef");
    }

    #[test]
    fn superscripts_are_marked_and_stay_on_the_line() {
        let mut g = glyphs("Name", 0.0, 100.0, 10.0);
        g.extend(glyphs("1", 20.0, 96.0, 7.0));
        g.extend(glyphs(" Other", 23.5, 100.0, 10.0));
        let lines = build_lines(1, &g);
        assert_eq!(lines.len(), 1);
        let scripts: Vec<bool> = lines[0].words.iter().map(|w| w.script).collect();
        assert_eq!(scripts, [false, true, false]);
        assert_eq!(lines[0].text, "Name1 Other");
    }

    #[test]
    fn small_caps_become_lower_case() {
        let mut g = glyphs("L", 0.0, 100.0, 17.0);
        g.extend(glyphs("ANGUAGE", 8.5, 100.0, 14.0));
        g.extend(glyphs(" M", 57.5, 100.0, 17.0));
        g.extend(glyphs("ODELS", 74.5, 100.0, 14.0));
        let lines = build_lines(1, &g);
        assert_eq!(lines[0].text, "Language Models");
    }

    #[test]
    fn page_numbers() {
        for (text, want) in [
            ("12", true),
            ("- 3 -", true),
            ("Page 4", true),
            ("xii", true),
            ("2 of 10", true),
            ("1 Introduction", false),
            ("12345", false),
            ("", false),
        ] {
            assert_eq!(is_page_number(text), want, "{text:?}");
        }
    }

    /// A two-column page: the left column must be read completely before the right one, and
    /// a full-width title before both.
    #[test]
    fn two_columns_are_read_left_then_right() {
        let mut g = glyphs(
            "A Full Width Title Line Spanning The Page",
            100.0,
            60.0,
            14.0,
        );
        for i in 0..12 {
            let y = 100.0 + 12.0 * i as f64;
            g.extend(glyphs(
                &format!("left line {i:02} of some text here, ok"),
                50.0,
                y,
                10.0,
            ));
            g.extend(glyphs(
                &format!("right line {i:02} of some text here ok"),
                320.0,
                y,
                10.0,
            ));
        }
        let pages = vec![RawPage {
            number: 1,
            width: 600.0,
            height: 800.0,
            glyphs: g,
            plain: None,
        }];
        let laid = lay_out(&pages);
        assert!(laid[0].two_column);
        let texts: Vec<&str> = laid[0].lines.iter().map(|l| l.text.as_str()).collect();
        assert!(texts[0].starts_with("A Full Width Title"), "{texts:?}");
        assert!(texts[1].starts_with("left line 00"), "{texts:?}");
        assert!(texts[12].starts_with("left line 11"), "{texts:?}");
        assert!(texts[13].starts_with("right line 00"), "{texts:?}");
    }

    #[test]
    fn single_column_page_is_not_split() {
        let mut g = Vec::new();
        for i in 0..12 {
            let y = 100.0 + 12.0 * i as f64;
            g.extend(glyphs(
                &format!("a single column line {i:02} that runs across the middle of the page"),
                50.0,
                y,
                10.0,
            ));
        }
        let pages = vec![RawPage {
            number: 1,
            width: 600.0,
            height: 800.0,
            glyphs: g,
            plain: None,
        }];
        let laid = lay_out(&pages);
        assert!(!laid[0].two_column);
        assert_eq!(laid[0].lines.len(), 12);
    }

    #[test]
    fn running_headers_and_page_numbers_are_removed() {
        let pages: Vec<RawPage> = (1..=4)
            .map(|n| {
                let mut g = glyphs(&format!("Conference Paper {n}"), 100.0, 30.0, 9.0);
                g.extend(glyphs(
                    &format!("body text of page {n}"),
                    100.0,
                    300.0,
                    10.0,
                ));
                g.extend(glyphs(&n.to_string(), 300.0, 770.0, 10.0));
                RawPage {
                    number: n,
                    width: 600.0,
                    height: 800.0,
                    glyphs: g,
                    plain: None,
                }
            })
            .collect();
        for page in lay_out(&pages) {
            let texts: Vec<&str> = page.lines.iter().map(|l| l.text.as_str()).collect();
            assert_eq!(texts, [format!("body text of page {}", page.number)]);
        }
    }
}
