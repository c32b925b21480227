//! Front-matter metadata: the arXiv margin stamp (id and date), the info-dictionary fields,
//! the title (info /Title when meaningful, else the largest text at the top of page 1) and the
//! author names (info /Author, else the lines between the title and the abstract).

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;

use super::layout::Line;

static NEW_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)arxiv\s*:\s*(\d{4}\.\d{4,5}(?:v\d+)?)\b").expect("valid regex")
});
static OLD_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)arxiv\s*:\s*([a-z]+(?:-[a-z]+)?(?:\.[a-z]{2})?/\d{7}(?:v\d+)?)\b")
        .expect("valid regex")
});
static STAMP_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(\d{1,2})\s*(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s*(\d{4})\b",
    )
    .expect("valid regex")
});
/// The printed stamp itself: id, bracketed category, date.
static STAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)arxiv\s*:\s*\S+\s*\[[a-z\-]+(?:\.[a-z\-]+)?\]\s*\d{1,2}\s*[a-z]{3}\s*\d{4}")
        .expect("valid regex")
});

/// Finds an arXiv identifier written as `arXiv:2202.00666v5` or `arXiv:hep-th/9901001v2`
/// (version kept when present). Old-style ids keep their archive name as written.
pub fn find_arxiv_id(text: &str) -> Option<String> {
    let new = NEW_ID.captures(text).and_then(|c| c.get(1));
    let old = OLD_ID.captures(text).and_then(|c| c.get(1));
    let first = match (new, old) {
        (Some(a), Some(b)) => Some(if a.start() <= b.start() { a } else { b }),
        (a, b) => a.or(b),
    }?;
    let id = first.as_str();
    // Archive names are lower case ("hep-th", "math.AG" keeps its subject class).
    Some(match id.split_once('/') {
        Some((archive, num)) => {
            let archive = match archive.split_once('.') {
                Some((a, class)) => format!("{}.{}", a.to_lowercase(), class.to_uppercase()),
                None => archive.to_lowercase(),
            };
            format!("{archive}/{num}")
        }
        None => id.to_string(),
    })
}

/// The arXiv stamp found on page 1: its id and printed date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub id: Option<String>,
    pub date: Option<NaiveDate>,
}

/// Reads the stamp from the rotated text of page 1, or, when the stamp was typeset upright,
/// from a page-1 line with the full "arXiv:ID [category] date" shape (so a cited arXiv id in
/// a footnote is not mistaken for the paper's own).
pub(crate) fn read_stamp(rotated: &str, page1: &[Line]) -> Stamp {
    let from = |text: &str| -> Option<Stamp> {
        let id = find_arxiv_id(text)?;
        let after = text.find(&id).map(|i| &text[i..]).unwrap_or(text);
        Some(Stamp {
            id: Some(id),
            date: parse_stamp_date(after),
        })
    };
    if let Some(s) = from(rotated) {
        return s;
    }
    page1
        .iter()
        .find_map(|l| STAMP.find(&l.text).and_then(|m| from(m.as_str())))
        .unwrap_or_default()
}

/// Whether a line is an upright copy of the arXiv stamp.
pub(crate) fn is_stamp_line(text: &str) -> bool {
    STAMP.is_match(text)
}

fn parse_stamp_date(text: &str) -> Option<NaiveDate> {
    let c = STAMP_DATE.captures(text)?;
    let s = format!("{} {} {}", &c[1], &c[2], &c[3]);
    NaiveDate::parse_from_str(&s, "%d %b %Y").ok()
}

/// Parses a PDF date string ("D:20230207013447Z", "D:2023", "20230207") to its day.
pub(crate) fn parse_pdf_date(s: &str) -> Option<NaiveDate> {
    let digits: String = s
        .trim()
        .trim_start_matches("D:")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let year: i32 = digits.get(0..4)?.parse().ok()?;
    let month: u32 = digits.get(4..6).map_or(Some(1), |m| m.parse().ok())?;
    let day: u32 = digits.get(6..8).map_or(Some(1), |d| d.parse().ok())?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Whether an info-dictionary title is a real title: not empty, not a file name, not a word
/// processor's placeholder, and (when page-1 text is known) made of words printed on page 1.
pub(crate) fn meaningful_title(title: &str, page1_text: &str) -> bool {
    let t = title.trim();
    let lower = t.to_lowercase();
    let file_like = [
        ".dvi", ".pdf", ".tex", ".doc", ".docx", ".ps", ".eps", ".rtf", ".odt",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext));
    let placeholder = lower.starts_with("microsoft word")
        || lower.starts_with("untitled")
        || lower.starts_with("title")
        || lower == "paper"
        || lower.contains("proceedings")
        || lower.contains("template")
        || lower.contains("instructions for");
    let words: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(str::to_string)
        .collect();
    if file_like || placeholder || words.len() < 2 {
        return false;
    }
    if page1_text.trim().is_empty() {
        return true;
    }
    let page = page1_text.to_lowercase();
    let found = words.iter().filter(|w| page.contains(w.as_str())).count();
    found * 10 >= words.len() * 7
}

/// Finds the title lines of page 1: the largest full-width text in the top 40% of the page
/// that is clearly bigger than the body text. Returns the title and the index of its last line.
pub(crate) fn layout_title(page1: &[Line], page_height: f64, body: f64) -> Option<(String, usize)> {
    // Figure text can be large too (pdf-extract ignores form-XObject scaling), so only the
    // full-width top of the page is considered.
    let is_candidate = |l: &Line| {
        l.y < 0.4 * page_height
            && l.col == super::layout::Col::Full
            && l.size >= 1.15 * body
            && l.text.chars().filter(|c| c.is_alphabetic()).count() >= 3
            && !l.text.trim().eq_ignore_ascii_case("abstract")
    };
    let max = page1
        .iter()
        .filter(|l| is_candidate(l))
        .map(|l| l.size)
        .fold(0.0_f64, f64::max);
    if max <= 0.0 {
        return None;
    }
    let start = page1
        .iter()
        .position(|l| is_candidate(l) && l.size >= 0.93 * max)?;
    let mut end = start;
    while end + 1 < page1.len() {
        let (a, b) = (&page1[end], &page1[end + 1]);
        let same_size = b.size >= 0.93 * max && b.size <= 1.07 * max;
        if same_size && b.y > a.y && b.y - a.y < 2.2 * b.size {
            end += 1;
        } else {
            break;
        }
    }
    let parts: Vec<String> = page1[start..=end]
        .iter()
        .map(|l| {
            l.words
                .iter()
                .filter(|w| !w.script)
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let title = super::clean::join_lines(parts.iter().map(String::as_str));
    let title = title
        .trim_end_matches(|c: char| matches!(c, '*' | '∗' | '†' | '‡') || c.is_whitespace())
        .to_string();
    (!title.is_empty()).then_some((title, end))
}

/// Splits an info /Author value into names.
pub(crate) fn split_author_field(field: &str) -> Vec<String> {
    static SEP: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\s*(?:[,;&]|\band\b)\s*").expect("valid regex"));
    SEP.split(field)
        .map(|s| s.trim().to_string())
        .filter(|s| s.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        .collect()
}

/// Words that mark an affiliation, address or note rather than a person's name.
const NOT_NAME: &[&str] = &[
    "university",
    "universität",
    "université",
    "universidad",
    "institute",
    "institut",
    "department",
    "dept",
    "lab",
    "labs",
    "laboratory",
    "school",
    "college",
    "center",
    "centre",
    "research",
    "inc",
    "ltd",
    "corp",
    "corporation",
    "google",
    "microsoft",
    "deepmind",
    "meta",
    "openai",
    "ai",
    "group",
    "science",
    "sciences",
    "engineering",
    "computer",
    "computing",
    "technology",
    "faculty",
    "hospital",
    "academy",
    "foundation",
    "company",
    "team",
    "street",
    "road",
    "email",
    "correspondence",
    "equal",
    "contribution",
    "abstract",
    "china",
    "usa",
    "uk",
    "germany",
    "france",
    "canada",
    "japan",
    "korea",
    "india",
    "national",
    "state",
    "key",
    "the",
    "of",
    "for",
    "at",
    "in",
    "on",
    "with",
    "to",
    "from",
    "by",
    "is",
    "are",
    "we",
    "our",
    "this",
    "language",
    "model",
    "models",
    "learning",
    "data",
    "preprint",
    "review",
    "conference",
    "proceedings",
    "workshop",
    "published",
    "paper",
    "anonymous",
    "authors",
    "author",
    "project",
    "developers",
    "intern",
    "work",
    "done",
    "during",
    "internship",
    "nvidia",
    "amazon",
    "ibm",
    "alibaba",
    "tencent",
    "baidu",
    "huawei",
    "bytedance",
    "deepseek",
];

/// Symbols used as footnote marks after author names.
const FOOTNOTE_MARKS: [char; 15] = [
    '*', '∗', '†', '‡', '§', '¶', '⋆', '♠', '♣', '♦', '♥', '♮', '⋄', '·', '•',
];

/// Lower-case particles allowed inside a name ("Ludwig van Beethoven").
const PARTICLES: &[&str] = &[
    "de", "van", "von", "der", "den", "da", "di", "du", "le", "la", "del", "dos", "bin", "al",
    "ter",
];

/// Extracts plausible person names from the lines between the title and the abstract.
/// Superscript marks, wide gaps, commas, "and", footnote symbols and digits separate names;
/// e-mail addresses and affiliation lines are skipped. Conservative by design: a fragment is
/// kept only when it looks like 2 to 5 capitalised name parts.
pub(crate) fn layout_authors(lines: &[Line]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in lines {
        let lower = line.text.to_lowercase();
        if lower.contains('@') && !lower.contains(' ') {
            continue;
        }
        // Break the line into segments at superscripts, wide gaps and separators.
        let mut segments: Vec<String> = vec![String::new()];
        for w in &line.words {
            let cut = w.script || w.gap > 0.75;
            if cut && !segments.last().is_some_and(String::is_empty) {
                segments.push(String::new());
            }
            if w.script {
                continue;
            }
            if let Some(seg) = segments.last_mut() {
                if !seg.is_empty() {
                    seg.push(' ');
                }
                seg.push_str(&w.text);
            }
        }
        for seg in segments {
            // Footnote symbols separate names like commas do.
            let seg = seg.replace(FOOTNOTE_MARKS, ",");
            for part in split_author_field(&seg) {
                if let Some(name) = as_person_name(&part)
                    && !names.contains(&name)
                {
                    names.push(name);
                }
            }
        }
    }
    names.truncate(60);
    names
}

/// Returns the cleaned name when `s` looks like one person's name.
pub(crate) fn as_person_name(s: &str) -> Option<String> {
    if s.contains('@') || s.contains("http") || s.contains("www.") {
        return None;
    }
    let cleaned: String = s
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect::<String>()
        .trim_matches(|c: char| !c.is_alphabetic() && c != '.')
        .to_string();
    let tokens: Vec<&str> = cleaned.split_whitespace().collect();
    if !(2..=5).contains(&tokens.len()) {
        return None;
    }
    let all_caps = tokens.iter().all(|t| {
        t.chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase)
    });
    for (i, t) in tokens.iter().enumerate() {
        let bare = t.trim_end_matches('.');
        if NOT_NAME.contains(&bare.to_lowercase().as_str()) && !PARTICLES.contains(&bare) {
            return None;
        }
        let first = t.chars().next()?;
        let is_particle = PARTICLES.contains(t) && i > 0 && i + 1 < tokens.len();
        // "R.", "R.X.", "J.-P."
        let is_initial = t.ends_with('.')
            && t.split('.').filter(|p| !p.is_empty()).all(|p| {
                let p = p.trim_start_matches('-');
                p.chars().count() == 1 && p.chars().all(char::is_uppercase)
            });
        let is_word = first.is_uppercase()
            && t.chars()
                .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '’' | '.'))
            && (all_caps || t.chars().skip(1).any(char::is_lowercase) || t.chars().count() <= 2);
        if !(is_particle || is_initial || is_word) {
            return None;
        }
    }
    if cleaned.chars().filter(|c| c.is_alphabetic()).count() < 3 {
        return None;
    }
    let name = if all_caps {
        tokens
            .iter()
            .map(|t| {
                let mut cs = t.chars();
                cs.next()
                    .map(|f| f.to_string() + &cs.as_str().to_lowercase())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        tokens.join(" ")
    };
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arxiv_ids() {
        let cases = [
            (
                "arXiv:2202.00666v5 [cs.CL] 6 Feb 2023",
                Some("2202.00666v5"),
            ),
            ("see arXiv: 2309.10668", Some("2309.10668")),
            ("ARXIV:1501.00001v12", Some("1501.00001v12")),
            ("arXiv:hep-th/9901001v2 [hep-th]", Some("hep-th/9901001v2")),
            ("arXiv:math.AG/0309136", Some("math.AG/0309136")),
            ("arXiv:cs/0112017v1", Some("cs/0112017v1")),
            ("no id here 2202.00666", None),
            ("arXiv:22.1", None),
            (
                "first arXiv:1234.56789 then arXiv:hep-ph/0001001",
                Some("1234.56789"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(find_arxiv_id(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn stamp_from_rotated_text() {
        let s = read_stamp("Kernel SpeeduparXiv:2401.14112v2  [cs.LG]  4 Mar 2024", &[]);
        assert_eq!(s.id.as_deref(), Some("2401.14112v2"));
        assert_eq!(s.date, NaiveDate::from_ymd_opt(2024, 3, 4));
        let s = read_stamp("arXiv:hep-th/9901001v1  [hep-th]  1 Jan 1999", &[]);
        assert_eq!(s.id.as_deref(), Some("hep-th/9901001v1"));
        assert_eq!(s.date, NaiveDate::from_ymd_opt(1999, 1, 1));
        assert_eq!(read_stamp("", &[]), Stamp::default());
    }

    #[test]
    fn pdf_dates() {
        let cases = [
            ("D:20230207013447Z", NaiveDate::from_ymd_opt(2023, 2, 7)),
            ("D:20240605220311", NaiveDate::from_ymd_opt(2024, 6, 5)),
            ("D:2023", NaiveDate::from_ymd_opt(2023, 1, 1)),
            ("D:20231399", None),
            ("garbage", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_pdf_date(s), want, "{s:?}");
        }
    }

    #[test]
    fn meaningful_titles() {
        let page = "Typical Decoding for Natural Language Generation Clara Meister";
        let cases = [
            ("Typical Decoding for Natural Language Generation", true),
            ("paper.dvi", false),
            ("Microsoft Word - draft3.docx", false),
            ("", false),
            ("Untitled", false),
            ("Instructions for ACL 2023 Proceedings", false),
            ("A Completely Different Title About Robots", false),
        ];
        for (title, want) in cases {
            assert_eq!(meaningful_title(title, page), want, "{title:?}");
        }
    }

    #[test]
    fn author_fields() {
        let cases: [(&str, &[&str]); 3] = [
            (
                "Yair Schiff, Chia-Hsiang Kao, Tri Dao",
                &["Yair Schiff", "Chia-Hsiang Kao", "Tri Dao"],
            ),
            ("Lan Nguyen and Minh Tran", &["Lan Nguyen", "Minh Tran"]),
            (
                "A. Author; B. Writer & C. Coder",
                &["A. Author", "B. Writer", "C. Coder"],
            ),
        ];
        for (field, want) in cases {
            assert_eq!(split_author_field(field), want, "{field:?}");
        }
    }

    #[test]
    fn person_names() {
        let cases = [
            ("Clara Meister1", Some("Clara Meister")),
            ("Grégoire Delétang", Some("Grégoire Delétang")),
            ("R. X. Xu", Some("R. X. Xu")),
            ("R.X. Xu", Some("R.X. Xu")),
            ("Y. Wu", Some("Y. Wu")),
            ("J.-P. Sartre", Some("J.-P. Sartre")),
            ("A. B", None),
            ("Ludwig van Beethoven", Some("Ludwig van Beethoven")),
            ("BOHAO YANG", Some("Bohao Yang")),
            ("University of Warwick", None),
            ("Google DeepMind", None),
            ("wenjia.zhang@warwick.ac.uk", None),
            ("Coventry", None),
            ("Department of Computer Science", None),
            ("Equal contribution", None),
            ("ETH Zürich", None),
        ];
        for (s, want) in cases {
            assert_eq!(as_person_name(s).as_deref(), want, "{s:?}");
        }
    }
}
