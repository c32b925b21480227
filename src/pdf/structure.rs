//! Document structure: finds the abstract and the section headings in the reading-order lines
//! and cuts the body into sections. Numbered headings ("2.1 Method", "IV. EXPERIMENTS",
//! appendix "A.2 Proofs") must follow the numbering so far, which keeps list items, table rows
//! and reference entries from being taken as headings; unnumbered headings must be one of the
//! well-known section names. The reference list is dropped; what follows it is appendix.

use std::sync::LazyLock;

use regex::Regex;

use super::Section;
use super::clean::{Compounds, join_lines, join_lines_with};
use super::layout::Line;

/// Where the abstract was found, as line indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AbstractSpot {
    /// Index of the "Abstract" heading line, or of the run-in line ("Abstract—We ...").
    pub heading: usize,
    /// Text of the run-in line after the "Abstract" label, if run-in.
    pub run_in: Option<String>,
}

static RUN_IN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?i:abstract)\s*[.:—–\-]\s*(\S.*)$").expect("valid regex"));
static NUMBERED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{1,2}(?:\.\d{1,2}){0,3})\.?\s+(\S.*)$").expect("valid regex")
});
static ROMAN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([IVX]{1,5})\.\s+(\S.*)$").expect("valid regex"));
static LETTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-H])((?:\.\d{1,2}){0,2})\.?\s+(\S.*)$").expect("valid regex")
});
static APPENDIX_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?i:appendix)\s+([A-H])(?:\s*[.:—–\-]\s*|\s+)(\S.*)?$").expect("valid regex")
});

/// Lines that end the abstract without being sections.
const ABSTRACT_STOPS: &[&str] = &[
    "keywords",
    "key words",
    "index terms",
    "ccs concepts",
    "acm reference format",
    "additional key words",
];

/// Finds the abstract in the first lines (page 1 and 2), starting at `from`.
pub(crate) fn find_abstract(lines: &[Line], from: usize) -> Option<AbstractSpot> {
    for (i, l) in lines.iter().enumerate().skip(from) {
        if l.page > 2 {
            break;
        }
        let t = l.text.trim();
        let bare = t.trim_end_matches(['.', ':']).trim();
        if bare.eq_ignore_ascii_case("abstract") {
            return Some(AbstractSpot {
                heading: i,
                run_in: None,
            });
        }
        if let Some(c) = RUN_IN.captures(t) {
            return Some(AbstractSpot {
                heading: i,
                run_in: Some(c[1].to_string()),
            });
        }
    }
    None
}

/// What a heading line claims to be, before the numbering is checked.
#[derive(Debug, Clone, PartialEq)]
enum Claim {
    /// Numbers, and whether a dot follows them ("3." vs "3").
    Numbered(Vec<u32>, bool),
    Roman(u32),
    Letter(u8, Vec<u32>),
    /// "Appendix", "Appendix A: Proofs", "Supplementary Material".
    Appendix(Option<u8>),
    References,
    /// A well-known unnumbered heading, normalised.
    Known(String),
}

/// Well-known unnumbered section names (lower case, no punctuation).
const KNOWN: &[&str] = &[
    "introduction",
    "related work",
    "related works",
    "background",
    "preliminaries",
    "method",
    "methods",
    "methodology",
    "approach",
    "experiments",
    "experiment",
    "experimental setup",
    "experimental results",
    "evaluation",
    "results",
    "discussion",
    "analysis",
    "conclusion",
    "conclusions",
    "conclusion and future work",
    "conclusions and future work",
    "future work",
    "limitations",
    "limitation",
    "acknowledgments",
    "acknowledgements",
    "acknowledgment",
    "acknowledgement",
    "ethics statement",
    "ethical considerations",
    "broader impact",
    "broader impacts",
    "impact statement",
    "reproducibility statement",
];
const REFERENCES: &[&str] = &[
    "references",
    "bibliography",
    "literature cited",
    "reference",
];
const APPENDIX: &[&str] = &[
    "appendix",
    "appendices",
    "supplementary material",
    "supplementary materials",
    "supplemental material",
];

fn normalise(s: &str) -> String {
    s.trim()
        .trim_end_matches(['.', ':'])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn roman_value(s: &str) -> Option<u32> {
    let v = |c: char| match c {
        'I' => Some(1),
        'V' => Some(5),
        'X' => Some(10),
        _ => None,
    };
    let digits: Vec<u32> = s.chars().map(v).collect::<Option<_>>()?;
    let mut total = 0;
    for (i, d) in digits.iter().enumerate() {
        if digits.get(i + 1).is_some_and(|n| n > d) {
            total -= *d as i32;
        } else {
            total += *d as i32;
        }
    }
    u32::try_from(total).ok().filter(|t| *t > 0)
}

/// Whether the title part of a heading line looks like a heading title.
fn title_shape(title: &str) -> bool {
    let t = title.trim();
    let words = t.split_whitespace().count();
    let non_space = t.chars().filter(|c| !c.is_whitespace()).count();
    let letters = t.chars().filter(|c| c.is_alphabetic()).count();
    let lower = t.to_lowercase();
    t.chars().next().is_some_and(char::is_uppercase)
        && (1..=14).contains(&words)
        && letters >= 3
        && letters * 10 >= non_space * 6
        && !t.ends_with(['.', ',', ';', ':'])
        && t.matches(',').count() <= 2
        && !t.contains(". ")
        && !["figure", "fig.", "table", "algorithm", "equation", "eq."]
            .iter()
            .any(|p| lower.starts_with(p))
}

/// Reads what heading a line claims to be. Shape only; numbering is checked by the caller.
fn claim(line: &Line, body: f64) -> Option<(Claim, String)> {
    let text = line.text.trim();
    if !line.para_start || line.size < 0.93 * body || text.chars().count() > 100 {
        return None;
    }
    let norm = normalise(text);
    let unnumbered = NUMBERED
        .captures(text)
        .map(|c| normalise(&c[2]))
        .or_else(|| ROMAN.captures(text).map(|c| normalise(&c[2])));
    let is = |list: &[&str], n: &str| list.contains(&n);
    if is(REFERENCES, &norm) || unnumbered.as_deref().is_some_and(|n| is(REFERENCES, n)) {
        return Some((Claim::References, text.to_string()));
    }
    if is(APPENDIX, &norm) {
        return Some((Claim::Appendix(None), text.to_string()));
    }
    if let Some(c) = APPENDIX_WORD.captures(text) {
        let ok = c.get(2).is_none_or(|t| title_shape(t.as_str()));
        if ok {
            return Some((Claim::Appendix(Some(c[1].as_bytes()[0])), text.to_string()));
        }
    }
    if is(KNOWN, &norm) {
        return Some((Claim::Known(norm), text.to_string()));
    }
    // A full-width body-size line that flows into the next one is running text that happens
    // to start with a number; a heading stands apart from what follows.
    let looks_alone = !line.short && line.size < 1.05 * body && line.gap_after < 1.4;
    if let Some(c) = NUMBERED.captures(text) {
        let title = &c[2];
        let nums: Option<Vec<u32>> = c[1].split('.').map(|n| n.parse().ok()).collect();
        let dotted = text[c[1].len()..].starts_with('.');
        if let Some(nums) = nums
            && title_shape(title)
            && (!looks_alone || unnumbered.as_deref().is_some_and(|n| is(KNOWN, n)))
        {
            return Some((Claim::Numbered(nums, dotted), text.to_string()));
        }
    }
    if let Some(c) = ROMAN.captures(text)
        && let Some(n) = roman_value(&c[1])
        && title_shape(&c[2])
        && !looks_alone
    {
        return Some((Claim::Roman(n), text.to_string()));
    }
    if let Some(c) = LETTER.captures(text)
        && title_shape(&c[3])
        && !looks_alone
    {
        let sub: Option<Vec<u32>> = c[2]
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|n| n.parse().ok())
            .collect();
        if let Some(sub) = sub {
            return Some((Claim::Letter(c[1].as_bytes()[0], sub), text.to_string()));
        }
    }
    None
}

/// Well-known headings that stay unnumbered even in papers with numbered sections.
const UNNUMBERED_OK: &[&str] = &[
    "acknowledgments",
    "acknowledgements",
    "acknowledgment",
    "acknowledgement",
    "limitations",
    "limitation",
    "ethics statement",
    "ethical considerations",
    "broader impact",
    "broader impacts",
    "impact statement",
    "reproducibility statement",
];

/// Numbering state while walking the body.
#[derive(Debug, Default)]
struct Numbering {
    /// Whether top-level numbers carry a trailing dot ("3. Results"); fixed by the first one.
    dotted: Option<bool>,
    top: Option<u32>,
    sub: Vec<u32>,
    roman: u32,
    /// IEEE-style lettered subsections under a roman section.
    roman_letter: u8,
    /// Current appendix letter.
    letter: Option<u8>,
}

impl Numbering {
    /// Accepts or rejects a claim, updating the state when accepted.
    fn accept(&mut self, claim: &Claim, appendix: bool) -> bool {
        match claim {
            Claim::Numbered(nums, dotted) => {
                let n = nums[0];
                // One paper, one style: "7. The key..." in a paper of "1 Introduction" headings
                // is a sentence that starts with a figure number.
                if nums.len() == 1 && self.dotted.is_some_and(|d| d != *dotted) {
                    return false;
                }
                let accepted = match (nums.len(), self.top) {
                    (1, None) => {
                        let ok = n <= 2;
                        if ok {
                            self.top = Some(n);
                            self.sub.clear();
                        }
                        ok
                    }
                    (1, Some(top)) => {
                        let ok = n > top && n <= top + 2;
                        if ok {
                            self.top = Some(n);
                            self.sub.clear();
                        }
                        ok
                    }
                    (_, top) => {
                        let parent = &nums[..nums.len() - 1];
                        let last = nums[nums.len() - 1];
                        let in_section = top == Some(n);
                        // A subsection right after a section heading we failed to see.
                        let skipped = top.map_or(n <= 2, |t| n == t + 1) && last == 1;
                        let follows = if in_section {
                            let depth = nums.len() - 1;
                            let prev_same = self.sub.get(depth - 1).copied();
                            let parent_ok =
                                parent[1..].iter().zip(self.sub.iter()).all(|(a, b)| a == b)
                                    && parent.len() - 1 <= self.sub.len();
                            let step_ok = match (prev_same, self.sub.len() >= depth) {
                                (Some(p), true) => last > p && last <= p + 2,
                                _ => last <= 2,
                            };
                            parent_ok && step_ok
                        } else {
                            skipped && nums.len() == 2
                        };
                        if follows {
                            self.top = Some(n);
                            self.sub = nums[1..].to_vec();
                        }
                        follows
                    }
                };
                if accepted && nums.len() == 1 {
                    self.dotted = Some(*dotted);
                }
                accepted
            }
            Claim::Roman(n) => {
                let ok = *n == self.roman + 1 || (*n == self.roman + 2 && self.roman > 0);
                if ok {
                    self.roman = *n;
                    self.roman_letter = 0;
                }
                ok
            }
            Claim::Letter(c, sub) => {
                if appendix {
                    match (self.letter, sub.is_empty()) {
                        (None, true) => {
                            let ok = *c == b'A';
                            if ok {
                                self.letter = Some(*c);
                            }
                            ok
                        }
                        (Some(l), true) => {
                            let ok = *c > l && *c <= l + 2;
                            if ok {
                                self.letter = Some(*c);
                            }
                            ok
                        }
                        (Some(l), false) => *c == l || (*c == l + 1 && sub[0] == 1),
                        (None, false) => *c == b'A' && sub[0] == 1,
                    }
                    .then(|| {
                        if !sub.is_empty() {
                            self.letter = Some(*c);
                        }
                    })
                    .is_some()
                } else if self.roman > 0 && sub.is_empty() {
                    let ok = *c == self.roman_letter.max(b'A' - 1) + 1;
                    if ok {
                        self.roman_letter = *c;
                    }
                    ok
                } else {
                    false
                }
            }
            Claim::Appendix(letter) => {
                if letter.is_some() {
                    self.letter = *letter;
                }
                true
            }
            Claim::References => true,
            Claim::Known(name) => {
                self.top.is_none() && self.roman == 0 || UNNUMBERED_OK.contains(&name.as_str())
            }
        }
    }
}

/// What [`sections`] cut out of the body.
#[derive(Debug, Default)]
pub(crate) struct Body {
    pub sections: Vec<Section>,
    /// Index of the first accepted heading (the end of the abstract).
    pub first_heading: Option<usize>,
    /// The reference list, one entry per reference.
    pub references: Vec<String>,
}

/// Splits the body (lines from `from` on) into sections, cutting the reference list out.
pub(crate) fn sections(lines: &[Line], from: usize, body: f64, compounds: &Compounds) -> Body {
    let mut numbering = Numbering::default();
    let mut out: Vec<Section> = Vec::new();
    let mut first_heading = None;
    let mut in_refs = false;
    let mut appendix = false;
    let mut cur: Option<(String, Vec<Vec<&str>>, bool)> = None;
    // Reference entries: a new one at a paragraph start or a "[12]" / "12." label.
    let mut refs: Vec<Vec<&str>> = Vec::new();
    // Footnotes met inside the current section, one paragraph per note, written after it.
    let mut notes: Vec<Vec<&str>> = Vec::new();
    let finish = |cur: &mut Option<(String, Vec<Vec<&str>>, bool)>,
                  notes: &mut Vec<Vec<&str>>,
                  out: &mut Vec<Section>| {
        let notes = std::mem::take(notes);
        if let Some((heading, paras, appendix)) = cur.take() {
            let text = paras
                .iter()
                .chain(notes.iter())
                .map(|p| join_lines_with(p.iter().copied(), compounds))
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n");
            out.push(Section {
                heading,
                text,
                appendix,
            });
        }
    };

    let mut i = from;
    while i < lines.len() {
        let line = &lines[i];
        if line.footnote {
            if cur.is_some() {
                let run_on = i > 0 && lines[i - 1].footnote && !line.para_start;
                if !run_on || notes.is_empty() {
                    notes.push(Vec::new());
                }
                if let Some(n) = notes.last_mut() {
                    n.push(line.text.as_str());
                }
            }
            i += 1;
            continue;
        }
        let accepted = claim(line, body).filter(|(c, _)| {
            // Inside the reference list only a clear next part may end it.
            if in_refs && matches!(c, Claim::Numbered(..) | Claim::Roman(_) | Claim::Known(_)) {
                return matches!(c, Claim::Known(_))
                    && line.gap_before > 1.5
                    && numbering.accept(c, true);
            }
            // Lettered appendix headings inside the reference list must stand apart.
            if in_refs
                && matches!(c, Claim::Letter(..))
                && line.gap_before <= 1.5
                && line.size < 1.05 * body
            {
                return false;
            }
            let appendix_mode = appendix || in_refs || matches!(c, Claim::Appendix(_));
            numbering.accept(c, appendix_mode)
        });
        if let Some((c, mut heading)) = accepted {
            first_heading.get_or_insert(i);
            finish(&mut cur, &mut notes, &mut out);
            // A heading wrapped onto a second line: same size, close below, and either larger
            // than the body text or itself a short line set apart from what follows.
            while let Some(next) = lines.get(i + 1)
                && !next.footnote
                && next.page == line.page
                && (next.size - line.size).abs() <= 0.03 * line.size
                && claim(next, body).is_none()
                && heading.chars().count() + next.text.chars().count() < 140
                && ((line.size >= 1.05 * body && next.gap_before < 1.6)
                    || (next.short
                        && next.gap_before < 1.45
                        && next.gap_after >= 1.45
                        && !next.text.trim_end().ends_with('.')))
            {
                heading = join_lines([heading.as_str(), next.text.as_str()]);
                i += 1;
            }
            match c {
                Claim::References => {
                    in_refs = true;
                    appendix = true;
                }
                _ => {
                    in_refs = false;
                    if matches!(c, Claim::Appendix(_) | Claim::Letter(..))
                        && appendix_like(&c, &numbering)
                    {
                        appendix = true;
                    }
                    cur = Some((heading, Vec::new(), appendix));
                }
            }
        } else if in_refs {
            if line.para_start || refs.is_empty() || starts_with_ref_label(&line.text) {
                refs.push(Vec::new());
            }
            if let Some(r) = refs.last_mut() {
                r.push(line.text.as_str());
            }
        } else if let Some((_, paras, _)) = cur.as_mut() {
            if line.para_start || paras.is_empty() {
                paras.push(Vec::new());
            }
            if let Some(p) = paras.last_mut() {
                p.push(line.text.as_str());
            }
        }
        i += 1;
    }
    finish(&mut cur, &mut notes, &mut out);
    // In a labelled list only a label starts an entry: a line ending early (a long URL)
    // does not.
    let labelled = refs
        .iter()
        .filter(|r| r.first().is_some_and(|l| starts_with_ref_label(l)))
        .count();
    if labelled * 2 > refs.len() {
        let mut merged: Vec<Vec<&str>> = Vec::new();
        for r in refs {
            match merged.last_mut() {
                Some(prev) if !r.first().is_some_and(|l| starts_with_ref_label(l)) => {
                    prev.extend(r);
                }
                _ => merged.push(r),
            }
        }
        refs = merged;
    }
    Body {
        sections: out,
        first_heading,
        references: refs
            .iter()
            .map(|r| join_lines_with(r.iter().copied(), compounds))
            .filter(|r| !r.is_empty())
            .collect(),
    }
}

/// Whether a reference-list line opens an entry with a label: "[12]", "12." or "12 ".
fn starts_with_ref_label(text: &str) -> bool {
    let t = text.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        return digits > 0 && rest[digits..].starts_with(']');
    }
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    (1..=3).contains(&digits) && t[digits..].starts_with(". ")
}

/// Lettered headings are appendix sections unless they are IEEE subsections.
fn appendix_like(c: &Claim, n: &Numbering) -> bool {
    match c {
        Claim::Appendix(_) => true,
        Claim::Letter(..) => n.letter.is_some(),
        _ => false,
    }
}

/// Text of the abstract: from its heading (or run-in label) to the first section heading or
/// a keywords-style line, at most `limit_page` pages in; and the index of the first line
/// after it.
pub(crate) fn abstract_and_end(
    lines: &[Line],
    spot: &AbstractSpot,
    end: Option<usize>,
    compounds: &Compounds,
) -> (String, usize) {
    let mut paras: Vec<Vec<&str>> = vec![Vec::new()];
    if let Some(first) = &spot.run_in {
        paras[0].push(first.as_str());
    }
    let start_page = lines.get(spot.heading).map_or(1, |l| l.page);
    let stop = end.unwrap_or(lines.len()).min(lines.len());
    let mut after = stop.max(spot.heading + 1);
    for (i, line) in lines.iter().enumerate().take(stop).skip(spot.heading + 1) {
        let lower = line.text.trim().to_lowercase();
        if line.page > start_page + 1 || ABSTRACT_STOPS.iter().any(|s| lower.starts_with(s)) {
            after = i;
            break;
        }
        if line.footnote {
            continue;
        }
        if line.para_start && paras.last().is_some_and(|p| !p.is_empty()) {
            paras.push(Vec::new());
        }
        if let Some(p) = paras.last_mut() {
            p.push(line.text.as_str());
        }
    }
    let text = paras
        .iter()
        .map(|p| join_lines_with(p.iter().copied(), compounds))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    (text, after)
}

#[cfg(test)]
mod tests {
    use super::super::layout::Col;
    use super::*;

    /// A body-size line; `short` heading-like lines unless `full`.
    fn line(text: &str, para_start: bool, full: bool) -> Line {
        Line {
            page: 1,
            col: Col::Full,
            x0: 0.0,
            x1: 100.0,
            y: 0.0,
            size: 10.0,
            words: Vec::new(),
            text: text.to_string(),
            gap_before: if para_start { 2.0 } else { 1.2 },
            gap_after: 1.2,
            short: !full,
            para_start,
            footnote: false,
        }
    }

    #[test]
    fn heading_claims() {
        let cases: [(&str, Option<Claim>); 16] = [
            ("1 Introduction", Some(Claim::Numbered(vec![1], false))),
            ("2.1 Method", Some(Claim::Numbered(vec![2, 1], false))),
            ("3. Results", Some(Claim::Numbered(vec![3], true))),
            ("IV. EXPERIMENTS", Some(Claim::Roman(4))),
            ("A Proof of Theorem 1", Some(Claim::Letter(b'A', vec![]))),
            ("B.2 More Results", Some(Claim::Letter(b'B', vec![2]))),
            ("Appendix A: Proofs", Some(Claim::Appendix(Some(b'A')))),
            ("Appendix", Some(Claim::Appendix(None))),
            ("References", Some(Claim::References)),
            ("7 References", Some(Claim::References)),
            (
                "Acknowledgements",
                Some(Claim::Known("acknowledgements".into())),
            ),
            ("Conclusions.", Some(Claim::Known("conclusions".into()))),
            ("1 0.52 0.61 0.77", None),
            ("Figure 2: Results", None),
            ("A. Vaswani, N. Shazeer, and N. Parmar.", None),
            ("2 We train the model for ten epochs.", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                claim(&line(text, true, false), 10.0).map(|c| c.0),
                want,
                "{text:?}"
            );
        }
        // Continuation lines and full-width running text are never headings.
        assert_eq!(claim(&line("1 Introduction", false, false), 10.0), None);
        assert_eq!(
            claim(&line("2 GPUs were used for all runs", true, true), 10.0),
            None
        );
    }

    #[test]
    fn numbering_must_follow() {
        let num = |n: &[u32]| Claim::Numbered(n.to_vec(), false);
        let claims = [
            (num(&[1]), true),
            (num(&[1, 1]), true),
            (num(&[1, 2]), true),
            (num(&[5]), false),
            (num(&[2]), true),
            (num(&[1, 3]), false),
            (num(&[2, 1]), true),
            (num(&[2, 1, 1]), true),
            (num(&[4, 1]), false),
            (num(&[3, 1]), true),
            // Style and known-heading checks once numbering is established.
            (Claim::Numbered(vec![4], true), false),
            (num(&[4]), true),
            (Claim::Known("method".into()), false),
            (Claim::Known("limitations".into()), true),
        ];
        let mut n = Numbering::default();
        for (i, (c, want)) in claims.iter().enumerate() {
            assert_eq!(n.accept(c, false), *want, "step {i}: {c:?}");
        }
    }

    #[test]
    fn sections_cut_references_and_mark_appendix() {
        let lines = vec![
            line("1 Introduction", true, false),
            line("We study things.", true, true),
            line("2 Method", true, false),
            line("Our method is new-", true, true),
            line("ly designed.", false, true),
            line("References", true, false),
            line("A. Author. 2020. A paper. In Proc.", true, true),
            line("B. Writer. 2021. Another one.", true, true),
            line("A Proofs", true, false),
            line("Proof text.", true, true),
        ];
        let cut = sections(&lines, 0, 10.0, &Compounds::default());
        assert_eq!(cut.first_heading, Some(0));
        assert_eq!(
            cut.references,
            [
                "A. Author. 2020. A paper. In Proc.",
                "B. Writer. 2021. Another one."
            ]
        );
        let got: Vec<(&str, &str, bool)> = cut
            .sections
            .iter()
            .map(|s| (s.heading.as_str(), s.text.as_str(), s.appendix))
            .collect();
        assert_eq!(
            got,
            [
                ("1 Introduction", "We study things.", false),
                ("2 Method", "Our method is newly designed.", false),
                ("A Proofs", "Proof text.", true),
            ]
        );
    }

    #[test]
    fn reference_entries_split_at_labels() {
        let lines = vec![
            line("1 Introduction", true, false),
            line("Text.", true, true),
            line("References", true, false),
            line("[1] A. Author. A paper that runs", true, true),
            line("on. 2020.", false, true),
            line(
                "[2] B. Writer. Another. https://example.org/a/long/",
                false,
                true,
            ),
            line("path.html", true, true),
            line("3. C. Third. One more.", false, true),
        ];
        let cut = sections(&lines, 0, 10.0, &Compounds::default());
        assert_eq!(
            cut.references,
            [
                "[1] A. Author. A paper that runs on. 2020.",
                "[2] B. Writer. Another. https://example.org/a/long/path.html",
                "3. C. Third. One more."
            ]
        );
        assert!(starts_with_ref_label("[12] X"));
        assert!(!starts_with_ref_label("2020. X"));
        assert!(!starts_with_ref_label("[a] X"));
    }

    #[test]
    fn footnotes_go_to_the_end_of_their_section() {
        let mut note = line("1We thank the reviewers.", true, true);
        note.footnote = true;
        let mut note2 = line("continued note.", false, true);
        note2.footnote = true;
        let lines = vec![
            line("1 Introduction", true, false),
            line("A paragraph that runs", true, true),
            note,
            note2,
            line("on across the page.", false, true),
            line("2 Method", true, false),
            line("Method text.", true, true),
        ];
        let cut = sections(&lines, 0, 10.0, &Compounds::default());
        let texts: Vec<&str> = cut.sections.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "A paragraph that runs on across the page.\n\n1We thank the reviewers. continued note.",
                "Method text."
            ]
        );
    }

    #[test]
    fn abstract_spots() {
        let lines = vec![
            line("Some Title", true, false),
            line("Abstract—We present a thing.", true, true),
            line("It works.", false, true),
            line("Index Terms—things", true, true),
        ];
        let spot = find_abstract(&lines, 0).expect("abstract");
        assert_eq!(spot.heading, 1);
        assert_eq!(
            abstract_and_end(&lines, &spot, None, &Compounds::default()).0,
            "We present a thing. It works."
        );
        let lines = vec![
            line("ABSTRACT", true, false),
            line("Text here.", true, true),
        ];
        let spot = find_abstract(&lines, 0).expect("abstract");
        assert_eq!(spot.run_in, None);
        assert_eq!(
            abstract_and_end(&lines, &spot, None, &Compounds::default()).0,
            "Text here."
        );
    }
}
