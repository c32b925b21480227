//! Grounding of Main Results: every number a model writes there must be in the paper.
//!
//! [`PaperNumbers`] indexes the numbers of a paper's text in every form a summary may fairly
//! write them: `1,000` and `1000`, `12.5` and `12.50`, Vietnamese decimal commas (`12,5`),
//! roundings (`6.32` supports `6.3`), fractions as percentages (`0.853` supports `85.3%`) and
//! percentages as fractions. [`PaperNumbers::check`] finds the numbers of one Main Results item
//! and says which the paper supports. Signs, multiplication marks (`3x`, `×3`), percent signs
//! and units are ignored, and both numbers of a range are checked. Not counted: names with
//! digits (`Qwen3-4B`, `GPT-4`, `top-1`: a letter comes before the digits), list ordinals
//! (`(1)`, `2nd`, `thứ 2`), citation marks (`[12]`) and numbers of the paper's own title. A
//! number glued to a unit (`1.5B`, `12ms`) is also found as a word of the paper.
//!
//! [`remove_unsupported`] rewrites an item without its unsupported numbers: a parenthetical
//! that holds one goes whole, otherwise the number goes with its unit and the preposition
//! before it (`by 6.3%`, `tới 6.3%`), or the clause goes when too little of it is left. An
//! item with nothing left worth saying is dropped.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::paper::Lang;

/// Grounding counts of one paper's Main Results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grounding {
    /// Numbers the model wrote in the Main Results items it gave.
    pub numbers: usize,
    /// Of those, the numbers found in the paper. The others were removed from the digest.
    pub grounded: usize,
    /// Items regenerated because they held unsupported numbers.
    #[serde(default)]
    pub regenerated: usize,
}

impl Grounding {
    pub fn add(&mut self, check: &ItemCheck) {
        self.numbers += check.numbers();
        self.grounded += check.grounded();
    }
}

/// One number (or name with digits) found in an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// Byte range of the whole word in the item (`6.3%`, `Qwen3-4B`).
    pub start: usize,
    pub end: usize,
    /// The number as written (`6.3`), or the whole name.
    pub text: String,
    pub grounded: bool,
}

/// The numbers of one item and whether the paper supports each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemCheck {
    pub mentions: Vec<Mention>,
}

impl ItemCheck {
    pub fn numbers(&self) -> usize {
        self.mentions.len()
    }

    pub fn grounded(&self) -> usize {
        self.mentions.iter().filter(|m| m.grounded).count()
    }

    pub fn unsupported(&self) -> impl Iterator<Item = &Mention> {
        self.mentions.iter().filter(|m| !m.grounded)
    }

    pub fn is_grounded(&self) -> bool {
        self.mentions.iter().all(|m| m.grounded)
    }
}

/// The numbers of a paper, in every form a faithful summary may write them.
#[derive(Debug, Clone, Default)]
pub struct PaperNumbers {
    values: HashSet<String>,
    /// The paper's text, lowercase, letters and digits only: names are looked up in it.
    names: String,
    title_values: HashSet<String>,
    title_names: String,
}

impl PaperNumbers {
    /// Indexes `texts` (abstract, sections with their captions); `title` is the paper's title,
    /// whose numbers are names (`GPT-4`, `Qwen3`) rather than results.
    pub fn new<'a>(title: &str, texts: impl IntoIterator<Item = &'a str>) -> PaperNumbers {
        let mut index = PaperNumbers::default();
        for text in texts {
            index.add_text(text);
        }
        for (number, _) in numbers_in(title) {
            index.title_values.extend(readings(number));
        }
        index.title_names = squash(title);
        index
    }

    fn add_text(&mut self, text: &str) {
        for (_, number, percent) in numeric_words(text) {
            for value in readings(number) {
                add_variants(&mut self.values, &value, percent);
            }
        }
        self.names.push_str(&squash(text));
        self.names.push(' ');
    }

    /// How many distinct number forms the index holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Finds the numbers of `item` and checks each against the paper.
    pub fn check(&self, item: &str) -> ItemCheck {
        let mut mentions = Vec::new();
        for (word, number, _) in numeric_words(item) {
            let readings = readings(number);
            if readings.iter().any(|r| self.title_values.contains(r)) {
                continue;
            }
            let core = word.core(item);
            // A number with letters after it (`1.5B`, `12ms`) may be written as one word.
            let as_name =
                core.chars().any(char::is_alphabetic) && self.names.contains(&squash(core));
            let grounded = as_name || readings.iter().any(|r| self.values.contains(r));
            mentions.push(Mention {
                start: word.core_start,
                end: word.core_end,
                text: number.to_string(),
                grounded,
            });
        }
        ItemCheck { mentions }
    }
}

/// The numbers of `text` that are values, with their words and whether a percent sign goes
/// with them: names with digits (`Qwen3`, `GPT-4`, `top-1`), list ordinals and citation marks
/// are left out.
fn numeric_words(text: &str) -> Vec<(Word, &str, bool)> {
    let words = words(text);
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let core = word.core(text);
        if !core.bytes().any(|b| b.is_ascii_digit()) || is_name(core) || is_ordinal(text, &words, i)
        {
            continue;
        }
        let percent_after = next_is_percent(text, &words, i);
        for (number, percent) in numbers_in(core) {
            out.push((*word, number, percent || percent_after));
        }
    }
    out
}

/// Lowercase letters and digits only: `Qwen3-4B` and `qwen3 4b` are the same name.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A whitespace-separated word, and its core without surrounding punctuation.
#[derive(Debug, Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
    core_start: usize,
    core_end: usize,
}

impl Word {
    fn core<'a>(&self, text: &'a str) -> &'a str {
        &text[self.core_start..self.core_end]
    }

    fn text<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }
}

const OPENING: &[char] = &['(', '[', '{', '"', '\'', '“', '‘', '«', '*', '_', '`'];
const CLOSING: &[char] = &[
    ')', ']', '}', '"', '\'', '”', '’', '»', ',', ';', ':', '.', '!', '?', '*', '_', '`',
];

fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                let word = &text[s..i];
                let lead = word.len() - word.trim_start_matches(OPENING).len();
                let core = word.trim_start_matches(OPENING).trim_end_matches(CLOSING);
                out.push(Word {
                    start: s,
                    end: i,
                    core_start: s + lead,
                    core_end: s + lead + core.len(),
                });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// A name with digits: a letter comes before the first digit (`Qwen3`, `GPT-4`, `top-1`),
/// except a multiplication mark (`x3`, `×3`).
fn is_name(core: &str) -> bool {
    let before_digit: String = core.chars().take_while(|c| !c.is_ascii_digit()).collect();
    let letters = before_digit.chars().filter(|c| c.is_alphabetic()).count();
    letters > 0 && !matches!(before_digit.as_str(), "x" | "×" | "X")
}

/// List ordinals and citation marks: `(1)`, `2)`, `[12]`, `2nd`, `thứ 2`.
fn is_ordinal(text: &str, words: &[Word], i: usize) -> bool {
    let word = words[i].text(text);
    let core = words[i].core(text);
    let small = core.len() <= 2 && core.bytes().all(|b| b.is_ascii_digit());
    if small
        && (word.starts_with('(') && word.trim_end_matches([',', ';', '.', ':']).ends_with(')')
            || i == 0 && word.ends_with(')'))
    {
        return true;
    }
    if word.starts_with('[') && core.bytes().all(|b| b.is_ascii_digit() || b == b',') {
        return true;
    }
    let lower = core.to_lowercase();
    let digits = lower.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && matches!(&lower[digits..], "st" | "nd" | "rd" | "th") {
        return true;
    }
    i > 0 && small && words[i - 1].core(text).to_lowercase() == "thứ"
}

fn next_is_percent(text: &str, words: &[Word], i: usize) -> bool {
    words.get(i + 1).is_some_and(|w| {
        let next = w.core(text).to_lowercase();
        next == "%" || next == "percent" || next == "phần"
    })
}

/// The numbers in `text` as written (digits with `.`/`,` between digit groups), each with
/// whether a percent sign follows.
fn numbers_in(text: &str) -> Vec<(&str, bool)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        // Digits, and `.` or `,` between digits.
        while end < bytes.len()
            && (bytes[end].is_ascii_digit()
                || matches!(bytes[end], b'.' | b',')
                    && bytes.get(end + 1).is_some_and(u8::is_ascii_digit))
        {
            end += 1;
        }
        let rest = text[end..].trim_start_matches([' ', '\u{a0}', '\u{202f}']);
        out.push((&text[start..end], rest.starts_with('%')));
        i = end;
    }
    out
}

/// A decimal number as digit strings, without sign: no leading zeros in `int` (but `0`), no
/// trailing zeros in `frac`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    int: String,
    frac: String,
}

impl Decimal {
    fn new(int: &str, frac: &str) -> Decimal {
        let int = int.trim_start_matches('0');
        Decimal {
            int: if int.is_empty() {
                "0".into()
            } else {
                int.into()
            },
            frac: frac.trim_end_matches('0').into(),
        }
    }

    fn canonical(&self) -> String {
        if self.frac.is_empty() {
            self.int.clone()
        } else {
            format!("{}.{}", self.int, self.frac)
        }
    }

    /// Moves the decimal point: `shift` > 0 multiplies by 10^shift.
    fn shifted(&self, shift: i32) -> Decimal {
        let digits = format!("{}{}", self.int, self.frac);
        let point = self.int.len() as i32 + shift;
        if point <= 0 {
            Decimal::new("0", &format!("{}{digits}", "0".repeat((-point) as usize)))
        } else if point as usize >= digits.len() {
            Decimal::new(
                &format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                "",
            )
        } else {
            let (int, frac) = digits.split_at(point as usize);
            Decimal::new(int, frac)
        }
    }

    /// Rounded half-up to `places` decimals.
    fn rounded(&self, places: usize) -> Decimal {
        if self.frac.len() <= places {
            return self.clone();
        }
        let mut digits: Vec<u8> = format!("{}{}", self.int, &self.frac[..places])
            .bytes()
            .map(|b| b - b'0')
            .collect();
        if self.frac.as_bytes()[places] >= b'5' {
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, 1);
                    break;
                }
                i -= 1;
                if digits[i] == 9 {
                    digits[i] = 0;
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
        let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        let (int, frac) = text.split_at(text.len() - places);
        Decimal::new(int, frac)
    }
}

/// Every value a written number may mean, as canonical strings: `1,000` is 1000 (or, with a
/// Vietnamese decimal comma, 1); `2,5` is 2.5; `1.000` is 1 (or 1000).
fn readings(number: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (thousands, point) in [(',', '.'), ('.', ',')] {
        if let Some(d) = parse_with(number, thousands, point) {
            let c = d.canonical();
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Reads `number` with the given thousands separator and decimal point, if it fits that
/// reading: thousands groups of exactly three digits after a first group of one to three,
/// at most one decimal point, after the groups.
fn parse_with(number: &str, thousands: char, point: char) -> Option<Decimal> {
    let (whole, frac) = match number.split_once(point) {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if frac.contains([thousands, point]) {
        return None;
    }
    let groups: Vec<&str> = whole.split(thousands).collect();
    if groups.len() > 1
        && (groups[0].is_empty() || groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3))
    {
        return None;
    }
    Some(Decimal::new(&groups.concat(), frac))
}

/// Adds a paper value and the forms a summary may fairly write it in.
fn add_variants(values: &mut HashSet<String>, canonical: &str, percent: bool) {
    let (int, frac) = canonical.split_once('.').unwrap_or((canonical, ""));
    let d = Decimal::new(int, frac);
    values.insert(d.canonical());
    // Roundings: to fewer decimals, and to a whole number when it is at least 10.
    for places in (0..d.frac.len()).rev() {
        if places == 0 && d.int.len() < 2 {
            break;
        }
        values.insert(d.rounded(places).canonical());
    }
    // A fraction as a percentage (0.853 -> 85.3, 85), and a percentage as a fraction.
    if d.int == "0" && d.frac.len() >= 2 {
        let p = d.shifted(2);
        values.insert(p.canonical());
        for places in (0..p.frac.len()).rev() {
            values.insert(p.rounded(places).canonical());
        }
    }
    if percent {
        values.insert(d.shifted(-2).canonical());
    }
}

/// Words that lead into a number and go with it (`by 6.3%`, `tới 6.3%`).
fn leading_words(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::En => &[
            "by",
            "of",
            "to",
            "at",
            "about",
            "around",
            "approximately",
            "nearly",
            "roughly",
            "almost",
            "up",
            "only",
            "just",
            "over",
            "than",
            "from",
            "reaching",
            "some",
            "~",
            "≈",
            "+",
            "-",
            "−",
        ],
        Lang::Vi => &[
            "tới", "đến", "lên", "khoảng", "gần", "xấp", "xỉ", "là", "ở", "mức", "từ", "chỉ",
            "thêm", "đạt", "bằng", "~", "≈", "+", "-", "−",
        ],
    }
}

/// Words that follow a number and go with it (`6.3 percentage points`, `3 lần`).
fn trailing_words(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::En => &[
            "%",
            "percent",
            "percentage",
            "points",
            "point",
            "pp",
            "times",
            "x",
            "×",
            "fold",
        ],
        Lang::Vi => &["%", "phần", "trăm", "điểm", "lần", "x", "×"],
    }
}

/// Words after which a clause cannot end.
fn dangling(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::En => &[
            "by", "of", "to", "at", "than", "from", "with", "and", "or", "a", "an", "the",
            "reaches", "reached", "achieves", "achieved", "obtains", "scores", "is", "are", "was",
            "were", "up", "about", "around",
        ],
        Lang::Vi => &[
            "tới", "đến", "lên", "khoảng", "là", "từ", "với", "và", "hoặc", "đạt", "bằng", "của",
            "ở", "mức", "chỉ", "các", "những",
        ],
    }
}

/// Rewrites `item` without the numbers at `spans` (byte ranges of mention words); `None` when
/// too little is left to be worth a list item.
pub fn remove_unsupported(item: &str, spans: &[(usize, usize)], lang: Lang) -> Option<String> {
    let mut text = item.to_string();
    let mut spans: Vec<(usize, usize)> = spans.to_vec();
    spans.sort_unstable();
    spans.dedup();
    // Right to left, so earlier spans keep their offsets.
    for &(start, end) in spans.iter().rev() {
        if end > text.len()
            || start > end
            || !text.is_char_boundary(start)
            || !text.is_char_boundary(end)
        {
            continue;
        }
        text = remove_one(&text, start, end, lang);
    }
    let text = tidy(&text);
    let words = text.split_whitespace().count();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let original_letters = item.chars().filter(|c| c.is_alphabetic()).count();
    (words >= 4 && letters * 3 >= original_letters).then_some(text)
}

fn remove_one(text: &str, start: usize, end: usize, lang: Lang) -> String {
    // Inside a parenthetical: the parenthetical goes whole.
    if let Some((open, close)) = enclosing_parens(text, start, end) {
        let mut from = open;
        while from > 0 && text[..from].ends_with(' ') {
            from -= 1;
        }
        return format!("{}{}", &text[..from], &text[close + 1..]);
    }
    let words = words(text);
    let Some(at) = words.iter().position(|w| w.start <= start && end <= w.end) else {
        return text.to_string();
    };
    let lower = |i: usize| words[i].core(text).to_lowercase();
    let is_number = |i: usize| words[i].core(text).bytes().any(|b| b.is_ascii_digit());
    // The phrase: the number, a range's other end, units after it, lead words before it.
    let (mut first, mut last) = (at, at);
    while last + 2 < words.len()
        && matches!(lower(last + 1).as_str(), "-" | "–" | "to" | "đến" | "tới")
        && is_number(last + 2)
    {
        last += 2;
    }
    while last + 1 < words.len()
        && trailing_words(lang).contains(&lower(last + 1).as_str())
        && !ends_clause(text, &words[last])
    {
        last += 1;
    }
    let mut taken = 0;
    while first > 0
        && taken < 2
        && leading_words(lang).contains(&lower(first - 1).as_str())
        && !ends_clause(text, &words[first - 1])
    {
        first -= 1;
        taken += 1;
    }
    // The clause around it: from after the previous `,`/`;` to the next one.
    let clause_start = (0..first)
        .rev()
        .find(|&i| ends_clause(text, &words[i]))
        .map_or(0, |i| i + 1);
    let clause_end = (last..words.len())
        .find(|&i| ends_clause(text, &words[i]))
        .unwrap_or(words.len() - 1);
    let left: Vec<usize> = (clause_start..first).chain(last + 1..=clause_end).collect();
    let kept_words = left.len();
    let ends_its_clause = last == clause_end;
    let before_dangles = first > clause_start
        && dangling(lang).contains(&lower(first - 1).as_str())
        && ends_its_clause;
    // "Accuracy reaches 97%, ..." without the number says nothing.
    let short_lead = ends_its_clause && first - clause_start < 4;
    let (cut_from, cut_to) = if kept_words < 3 || before_dangles || short_lead {
        // Too little of the clause is left: drop the clause, with the separator before it
        // (or after it, for the first clause).
        if clause_start > 0 {
            (
                words[clause_start - 1].core_end,
                trailing_separator_end(text, &words[clause_end]),
            )
        } else {
            let to = if clause_end + 1 < words.len() {
                words[clause_end + 1].start
            } else {
                text.len()
            };
            (0, to)
        }
    } else {
        let from = words[first].start;
        let to = if ends_clause(text, &words[last]) {
            words[last].core_end
        } else {
            words[last].end
        };
        (from, to)
    };
    format!("{}{}", &text[..cut_from], &text[cut_to..])
}

/// Whether a word ends a clause (`,` or `;` after it).
fn ends_clause(text: &str, word: &Word) -> bool {
    text[word.core_end..word.end].contains([',', ';'])
}

/// Where the clause-ending separator of the last word of a clause ends (just before its
/// sentence end, which stays).
fn trailing_separator_end(text: &str, word: &Word) -> usize {
    let tail = &text[word.core_end..word.end];
    match tail.find(['.', '!', '?']) {
        Some(at) => word.core_end + at,
        None => word.end,
    }
}

/// The byte offsets of the `(` and `)` around `start..end`, if both are there.
fn enclosing_parens(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let open = text[..start].rfind('(')?;
    if text[open..start].contains(')') {
        return None;
    }
    let close = end + text[end..].find(')')?;
    if text[end..close].contains('(') {
        return None;
    }
    Some((open, close))
}

/// Spacing and punctuation after removals: no space before punctuation, no doubled or leading
/// separators, no empty parentheses, a capital first letter.
fn tidy(text: &str) -> String {
    let mut t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for (from, to) in [
        (" ,", ","),
        (" ;", ";"),
        (" .", "."),
        (" :", ":"),
        (",,", ","),
        (",;", ";"),
        (";,", ";"),
        (",.", "."),
        (";.", "."),
        ("()", ""),
        ("( )", ""),
        ("  ", " "),
    ] {
        while t.contains(from) {
            t = t.replace(from, to);
        }
    }
    let t = t
        .trim_start_matches([',', ';', ':', ' '])
        .trim_end_matches([',', ';', ':', ' '])
        .to_string();
    let mut chars = t.chars();
    match chars.next() {
        Some(first) if first.is_lowercase() => first.to_uppercase().chain(chars).collect(),
        _ => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAPER: &str = "We train on 1,000 examples and 12.5 % of the data. GDPO improves \
        accuracy by 6.32% over GRPO and reaches 0.853 F1. Speed-up is 3× on 8 GPUs. \
        Table 2: results with Qwen3-4B-Instruct and DeepSeek-R1-1.5B, 45.0 BLEU, \
        2.3 points. Batch sizes range over 16-64. We use 1.5B parameters.";
    const TITLE: &str = "GDPO: Group reward-Decoupled Normalization for GPT-9 in 2026";

    fn index() -> PaperNumbers {
        PaperNumbers::new(TITLE, [PAPER])
    }

    #[test]
    fn numbers_are_found_in_every_fair_form() {
        let index = index();
        let cases: &[(&str, &[(&str, bool)])] = &[
            ("Trained on 1000 examples.", &[("1000", true)]),
            ("Trained on 1,000 examples.", &[("1,000", true)]),
            ("Uses 12.5% of the data.", &[("12.5", true)]),
            ("Dùng 12,5 % dữ liệu.", &[("12,5", true)]),
            ("Accuracy +6.3% over GRPO.", &[("6.3", true)]),
            ("Accuracy +6.32 % over GRPO.", &[("6.32", true)]),
            ("Accuracy +6.4% over GRPO.", &[("6.4", false)]),
            ("F1 of 85.3% and 0.85.", &[("85.3", true), ("0.85", true)]),
            ("F1 of 0.853.", &[("0.853", true)]),
            ("Speed-up 3x on 8 GPUs.", &[("3", true), ("8", true)]),
            ("Speed-up ×3.", &[("3", true)]),
            ("Speed-up of 5x.", &[("5", false)]),
            ("Batch 16–64.", &[("16", true), ("64", true)]),
            ("Batch 16-128.", &[("16", true), ("128", false)]),
            ("45 BLEU, -2.3 points.", &[("45", true), ("2.3", true)]),
            ("Uses 1.5B parameters.", &[("1.5", true)]),
            // Names with digits are not values; a number glued to a unit may be a name.
            ("Qwen3-4B-Instruct and Llama-3-8B win.", &[]),
            ("qwen3 4b wins.", &[("4", true)]),
            // Ordinals, citation marks and title numbers are not counted.
            ("(1) GPT-9 is used 9 times in 2026 [12].", &[]),
            ("Ranks 2nd, thứ 3 overall.", &[]),
        ];
        for (item, expected) in cases {
            let check = index.check(item);
            let got: Vec<(&str, bool)> = check
                .mentions
                .iter()
                .map(|m| (m.text.as_str(), m.grounded))
                .collect();
            assert_eq!(&got, expected, "{item:?}");
        }
    }

    #[test]
    fn decimal_helpers() {
        let d = |s: &str| {
            let (i, f) = s.split_once('.').unwrap_or((s, ""));
            Decimal::new(i, f)
        };
        assert_eq!(d("012.500").canonical(), "12.5");
        assert_eq!(d("0.853").shifted(2).canonical(), "85.3");
        assert_eq!(d("12.5").shifted(-2).canonical(), "0.125");
        assert_eq!(d("9.96").rounded(1).canonical(), "10");
        assert_eq!(d("6.35").rounded(1).canonical(), "6.4");
        assert_eq!(d("99.96").rounded(0).canonical(), "100");
        assert_eq!(readings("1,000"), ["1000", "1"]);
        assert_eq!(readings("2,5"), ["2.5"]);
        assert_eq!(readings("1.234.567"), ["1234567"]);
        assert_eq!(readings("12,34,5"), Vec::<String>::new());
    }

    #[test]
    fn unsupported_numbers_are_removed_cleanly() {
        let cases: &[(Lang, &str, &[&str], Option<&str>)] = &[
            (
                Lang::En,
                "GDPO improves accuracy by 7.1% over GRPO on AIME.",
                &["7.1%"],
                Some("GDPO improves accuracy over GRPO on AIME."),
            ),
            (
                Lang::En,
                "GDPO is more accurate (7.1% vs 2.0%) than GRPO on math tasks.",
                &["7.1%"],
                Some("GDPO is more accurate than GRPO on math tasks."),
            ),
            (
                Lang::En,
                "GDPO converges faster, reaching 91.2, and keeps responses short.",
                &["91.2,"],
                Some("GDPO converges faster and keeps responses short."),
            ),
            (
                Lang::En,
                "Training takes 40-50 hours on one GPU for the full model.",
                &["40-50"],
                Some("Training takes hours on one GPU for the full model."),
            ),
            (Lang::En, "Accuracy is 91.2%.", &["91.2%."], None),
            (
                Lang::Vi,
                "GDPO đạt độ chính xác cao hơn tới 6.4% so với GRPO trên các tác vụ toán học.",
                &["6.4%"],
                Some("GDPO đạt độ chính xác cao hơn so với GRPO trên các tác vụ toán học."),
            ),
            (
                Lang::Vi,
                "Mô hình nhanh hơn 5 lần, đồng thời giữ nguyên chất lượng đầu ra.",
                &["5"],
                Some("Mô hình nhanh hơn, đồng thời giữ nguyên chất lượng đầu ra."),
            ),
            (
                Lang::Vi,
                "Độ chính xác đạt 97%, cao nhất trong các phương pháp được so sánh.",
                &["97%,"],
                Some("Cao nhất trong các phương pháp được so sánh."),
            ),
        ];
        for (lang, item, words, expected) in cases {
            let spans: Vec<(usize, usize)> = words
                .iter()
                .map(|w| {
                    let start = item.find(w).unwrap_or_else(|| panic!("{w} in {item}"));
                    let core = w.trim_end_matches([',', '.']);
                    (start, start + core.len())
                })
                .collect();
            assert_eq!(
                remove_unsupported(item, &spans, *lang).as_deref(),
                *expected,
                "{item:?}"
            );
        }
    }

    #[test]
    fn check_then_remove_leaves_only_grounded_numbers() {
        let index = index();
        let item = "GDPO improves accuracy by 6.3% and by 9.9% on code, using 8 GPUs.";
        let check = index.check(item);
        assert_eq!((check.numbers(), check.grounded()), (3, 2));
        let spans: Vec<(usize, usize)> = check.unsupported().map(|m| (m.start, m.end)).collect();
        let rewritten = remove_unsupported(item, &spans, Lang::En).unwrap();
        assert_eq!(
            rewritten,
            "GDPO improves accuracy by 6.3% and on code, using 8 GPUs."
        );
        assert!(index.check(&rewritten).is_grounded());
    }
}
