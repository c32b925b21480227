//! Accents drawn as glyphs of their own. TeX's `\accent` (and other producers without a
//! precomposed glyph) draws a spacing accent (´ ¨ ˇ …) and then moves back to draw the letter
//! under it, so a naive reading gives "Popovi´ c" for "Popović". This module finds each accent
//! glyph that sits over (or, for a cedilla or ogonek, under) the letter next to it in content
//! order and replaces the pair with the accented letter, precomposed where Unicode has one.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

use super::glyphs::Glyph;

/// The glyphs with every accent that sits on a neighbouring letter merged into it. Borrows
/// when the page has no accent glyph (most pages).
pub(crate) fn compose_accents(glyphs: &[Glyph]) -> Cow<'_, [Glyph]> {
    if !glyphs.iter().any(|g| combining_mark(&g.text).is_some()) {
        return Cow::Borrowed(glyphs);
    }
    let mut out: Vec<Glyph> = Vec::with_capacity(glyphs.len());
    let mut i = 0;
    while i < glyphs.len() {
        let g = &glyphs[i];
        if let Some(mark) = combining_mark(&g.text) {
            // TeX draws the accent first; other producers draw the letter first.
            if let Some(base) = glyphs.get(i + 1).filter(|b| sits_on(g, b)) {
                out.push(accented(base, mark));
                i += 2;
                continue;
            }
            if let Some(base) = out.last_mut().filter(|b| sits_on(g, b)) {
                *base = accented(base, mark);
                i += 1;
                continue;
            }
        }
        out.push(g.clone());
        i += 1;
    }
    Cow::Owned(out)
}

/// The combining mark a spacing accent glyph stands for.
fn combining_mark(text: &str) -> Option<char> {
    let mut chars = text.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    Some(match c {
        '\u{B4}' | '\u{2CA}' => '\u{301}', // acute
        '`' | '\u{2CB}' => '\u{300}',      // grave
        '\u{A8}' => '\u{308}',             // diaeresis
        '^' | '\u{2C6}' => '\u{302}',      // circumflex
        '~' | '\u{2DC}' => '\u{303}',      // tilde
        '\u{AF}' | '\u{2C9}' => '\u{304}', // macron
        '\u{2D8}' => '\u{306}',            // breve
        '\u{2D9}' => '\u{307}',            // dot above
        '\u{2DA}' => '\u{30A}',            // ring above
        '\u{2DD}' => '\u{30B}',            // double acute
        '\u{2C7}' => '\u{30C}',            // caron
        '\u{B8}' => '\u{327}',             // cedilla
        '\u{2DB}' => '\u{328}',            // ogonek
        c @ '\u{300}'..='\u{36F}' => c,    // already a combining mark
        _ => return None,
    })
}

/// Whether `accent` is drawn on the single letter `base`: its middle falls within the letter's
/// width, near the letter's baseline (TeX raises accents over capitals by a fraction of the
/// size), and it is not much larger than the letter (small capitals take their accent from
/// the full-size font, 1.25 times larger).
fn sits_on(accent: &Glyph, base: &Glyph) -> bool {
    let mut chars = base.text.chars();
    let (Some(letter), None) = (chars.next(), chars.next()) else {
        return false;
    };
    if !letter.is_alphabetic() || !accent.upright || !base.upright {
        return false;
    }
    let size = base.size.max(accent.size);
    let middle = accent.x + accent.adv / 2.0;
    let slack = 0.05 * size;
    middle >= base.x - slack
        && middle <= base.x + base.adv + slack
        && (accent.y - base.y).abs() <= 0.5 * size
        && accent.size <= base.size * 1.5
}

/// `base` with `mark` applied: the precomposed letter where one exists, else the letter and
/// the combining mark. A dotless i or j under an accent above is the ordinary letter.
fn accented(base: &Glyph, mark: char) -> Glyph {
    let below = matches!(mark, '\u{327}' | '\u{328}');
    let letter: String = base
        .text
        .chars()
        .map(|c| match c {
            '\u{131}' if !below => 'i',
            '\u{237}' if !below => 'j',
            c => c,
        })
        .collect();
    Glyph {
        text: format!("{letter}{mark}").nfc().collect(),
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glyph(text: &str, x: f64, adv: f64) -> Glyph {
        Glyph {
            x,
            y: 100.0,
            size: 10.0,
            adv,
            text: text.to_string(),
            upright: true,
        }
    }

    fn text_of(glyphs: &[Glyph]) -> String {
        compose_accents(glyphs)
            .iter()
            .map(|g| g.text.as_str())
            .collect()
    }

    #[test]
    fn accents_over_their_letter_compose() {
        // (glyphs as (text, x, advance), expected text)
        type Case<'a> = (&'a [(&'a str, f64, f64)], &'a str);
        let cases: &[Case] = &[
            // TeX order, accent first, centred over the letter that follows: "Popović".
            (
                &[("i", 0.0, 3.0), ("\u{B4}", 4.0, 4.0), ("c", 3.0, 4.5)],
                "ić",
            ),
            // Letter first, accent after it.
            (&[("u", 0.0, 5.0), ("\u{A8}", 0.5, 4.0)], "ü"),
            // Caron and acute on neighbouring letters: "Grešová".
            (
                &[
                    ("e", 0.0, 4.5),
                    ("\u{2C7}", 4.8, 4.0),
                    ("s", 4.5, 4.0),
                    ("o", 8.5, 5.0),
                    ("v", 13.5, 5.0),
                    ("\u{B4}", 19.0, 4.0),
                    ("a", 18.5, 5.0),
                ],
                "ešová",
            ),
            // Dotless i under an acute is i.
            (&[("\u{B4}", 0.0, 3.0), ("\u{131}", 0.0, 3.0)], "í"),
            // No precomposed form: letter and combining mark.
            (&[("\u{AF}", 0.5, 4.0), ("c", 0.0, 4.5)], "c\u{304}"),
            // Cedilla under the letter.
            (&[("c", 0.0, 4.5), ("\u{B8}", 1.0, 2.5)], "ç"),
            // An accent beside a letter, not on it, stays as it is.
            (
                &[("n", 0.0, 5.0), ("\u{B4}", 5.5, 3.0), ("t", 11.0, 3.5)],
                "n\u{B4}t",
            ),
            // Over a digit or a symbol: not a letter, left alone.
            (&[("\u{2C6}", 0.0, 4.0), ("2", 0.0, 5.0)], "\u{2C6}2"),
            // A backtick as code punctuation, with its own advance.
            (&[("`", 0.0, 5.0), ("x", 5.2, 5.0)], "`x"),
        ];
        for (glyphs, expected) in cases {
            let glyphs: Vec<Glyph> = glyphs.iter().map(|&(t, x, a)| glyph(t, x, a)).collect();
            assert_eq!(text_of(&glyphs), *expected, "glyphs {glyphs:?}");
        }
    }

    #[test]
    fn accent_on_another_line_stays() {
        let mut accent = glyph("\u{B4}", 0.0, 4.0);
        accent.y = 130.0;
        let glyphs = vec![accent, glyph("e", 0.0, 4.5)];
        assert_eq!(text_of(&glyphs), "\u{B4}e");
    }

    #[test]
    fn small_capital_takes_a_full_size_accent() {
        // Small capitals at 7.2 pt, the caron from the 9 pt text font ("GREŠOVÁ").
        let mut caron = glyph("\u{2C7}", 0.5, 3.0);
        caron.size = 9.0;
        let mut s = glyph("S", 0.0, 4.0);
        s.size = 7.2;
        assert_eq!(text_of(&[caron.clone(), s.clone()]), "\u{160}");
        // An accent twice the letter's size is something else drawn there.
        caron.size = 14.4;
        assert_eq!(text_of(&[caron, s]), "\u{2C7}S");
    }

    #[test]
    fn pages_without_accents_are_borrowed() {
        let glyphs = vec![glyph("a", 0.0, 5.0), glyph("b", 5.0, 5.0)];
        assert!(matches!(compose_accents(&glyphs), Cow::Borrowed(_)));
    }
}
