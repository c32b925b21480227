//! Character- and line-level clean-up of extracted text: ligature expansion, removal of
//! replacement characters, control codes and private-use glyphs (with counts for warnings),
//! whitespace normalisation, canonical composition of accents, and joining lines into paragraphs with words that were
//! hyphenated at a line end put back together.

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization;

/// What `clean_chars` removed, so the caller can warn once per document.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// U+FFFD replacement characters (glyphs the PDF gave no Unicode for).
    pub replacement: usize,
    /// Control characters other than whitespace (NUL bytes from symbol fonts).
    pub control: usize,
    /// Private-use code points (unmapped symbol-font glyphs).
    pub private_use: usize,
}

impl Dropped {
    pub fn total(&self) -> usize {
        self.replacement + self.control + self.private_use
    }
}

/// Expands a ligature code point, if `c` is one.
pub(crate) fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{FB00}' => "ff",
        '\u{FB01}' => "fi",
        '\u{FB02}' => "fl",
        '\u{FB03}' => "ffi",
        '\u{FB04}' => "ffl",
        '\u{FB05}' | '\u{FB06}' => "st",
        _ => return None,
    })
}

/// Cleans one line of text: ligatures expanded, unusable characters dropped (and counted),
/// odd spaces made plain, soft hyphens removed, runs of spaces collapsed.
pub(crate) fn clean_chars(s: &str, dropped: &mut Dropped) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if let Some(lig) = ligature(c) {
            out.push_str(lig);
            continue;
        }
        match c {
            '\u{FFFD}' => dropped.replacement += 1,
            '\u{AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}' => {}
            c if c.is_whitespace() => out.push(' '),
            c if c.is_control() => dropped.control += 1,
            '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{10FFFF}' => dropped.private_use += 1,
            c => out.push(c),
        }
    }
    let mut collapsed = String::with_capacity(out.len());
    for word in out.split(' ').filter(|w| !w.is_empty()) {
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    // Letters and combining marks given separately by the PDF's ToUnicode ("u" + U+0308)
    // become the precomposed letter where Unicode has one.
    if collapsed.chars().any(is_combining_mark) {
        collapsed = collapsed.nfc().collect();
    }
    collapsed
}

fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}')
}

/// Hyphenated compounds written whole inside lines somewhere in a document ("pre-training"),
/// used to tell a compound broken at its hyphen from a word split by the typesetter.
#[derive(Debug, Default, Clone)]
pub(crate) struct Compounds(HashSet<String>);

impl Compounds {
    /// Collects every "left-right" pair of letters-only parts joined by a hyphen in `texts`.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = HashSet::new();
        for text in texts {
            for token in text.split_whitespace() {
                let token = token
                    .trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase();
                let parts: Vec<&str> = token.split('-').collect();
                if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
                    continue;
                }
                for pair in parts.windows(2) {
                    set.insert(format!("{}-{}", pair[0], pair[1]));
                }
            }
        }
        Compounds(set)
    }

    fn contains(&self, left: &str, right: &str) -> bool {
        let key = format!("{}-{}", left.to_lowercase(), right.to_lowercase());
        self.0.contains(&key)
    }
}

/// Joins the lines of one paragraph; see [`join_lines_with`].
pub(crate) fn join_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    join_lines_with(lines, &Compounds::default())
}

/// Joins the lines of one paragraph. A line ending in a hyphen directly after a letter, when
/// the next line starts with a lower-case letter, was a word broken by the typesetter: the
/// hyphen goes and the halves are joined ("repre-" + "sentation" -> "representation"), unless
/// the document writes the pair as a hyphenated compound elsewhere ("pre-" + "training").
pub(crate) fn join_lines_with<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    compounds: &Compounds,
) -> String {
    let mut out = String::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if out.is_empty() {
            out.push_str(line);
            continue;
        }
        let next_lower = line.chars().next().is_some_and(char::is_lowercase);
        let broken = out.ends_with('-')
            && out
                .chars()
                .rev()
                .nth(1)
                .is_some_and(|c| c.is_alphabetic() && c.is_lowercase());
        // A compound already hyphenated before the break ("state-of-the-") keeps its hyphen.
        let compound = out
            .rsplit(' ')
            .next()
            .and_then(|w| w.strip_suffix('-'))
            .is_some_and(|w| w.contains('-'));
        let left = out
            .strip_suffix('-')
            .and_then(|o| o.rsplit(|c: char| !c.is_alphanumeric()).next())
            .unwrap_or_default();
        let right = line
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default();
        let known = broken && compounds.contains(left, right);
        if broken && next_lower && !compound && !known {
            out.pop();
        } else if !out.ends_with('-') && !out.ends_with('/') {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_chars_cases() {
        let cases = [
            (
                "e\u{FB03}cient \u{FB01}ne \u{FB02}ow",
                "efficient fine flow",
                Dropped::default(),
            ),
            (
                "o\u{FB00}er \u{FB04}e \u{FB06}op",
                "offer ffle stop",
                Dropped::default(),
            ),
            (
                "bad\u{FFFD} glyph\u{FFFD}\u{FFFD}",
                "bad glyph",
                Dropped {
                    replacement: 3,
                    ..Dropped::default()
                },
            ),
            (
                "nul\u{0}byte \u{E001}pua",
                "nulbyte pua",
                Dropped {
                    replacement: 0,
                    control: 1,
                    private_use: 1,
                },
            ),
            (
                "Gu\u{308}ndu\u{308}z, c\u{304}",
                "G\u{FC}nd\u{FC}z, c\u{304}",
                Dropped::default(),
            ),
            (
                "  many\u{A0}\u{2009} spaces\tand\u{AD}soft ",
                "many spaces andsoft",
                Dropped::default(),
            ),
        ];
        for (input, want, want_dropped) in cases {
            let mut dropped = Dropped::default();
            assert_eq!(clean_chars(input, &mut dropped), want, "{input:?}");
            assert_eq!(dropped, want_dropped, "{input:?}");
        }
    }

    #[test]
    fn compounds_keep_their_hyphen() {
        let compounds = Compounds::from_texts(["we use pre-training and fine-tuning here."]);
        let cases: [(&[&str], &str); 3] = [
            (&["during pre-", "training we"], "during pre-training we"),
            (&["after fine-", "tuning."], "after fine-tuning."),
            (&["a repre-", "sentation"], "a representation"),
        ];
        for (lines, want) in cases {
            assert_eq!(
                join_lines_with(lines.iter().copied(), &compounds),
                want,
                "{lines:?}"
            );
        }
    }

    #[test]
    fn join_lines_cases() {
        let cases: [(&[&str], &str); 7] = [
            (
                &["abstract mean-", "ing representations"],
                "abstract meaning representations",
            ),
            (
                &["state-of-the-", "art results"],
                "state-of-the-art results",
            ),
            (&["Bi-", "Directional"], "Bi-Directional"),
            (&["one line", "two line"], "one line two line"),
            (&["see https://x.org/", "path"], "see https://x.org/path"),
            (&["  ", "only", ""], "only"),
            (
                &["a probability—", "based view"],
                "a probability— based view",
            ),
        ];
        for (lines, want) in cases {
            assert_eq!(join_lines(lines.iter().copied()), want, "{lines:?}");
        }
    }
}
