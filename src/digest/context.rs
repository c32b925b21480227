//! Chooses what of a paper the model reads, under a token budget. Sections are ranked by how
//! much they tell a summary (abstract, introduction, conclusion, results, method, the rest),
//! taken whole while they fit, and the first that does not fit is cut at a sentence boundary.
//! The chosen sections are then put back in reading order. The paper is never cut blindly.

/// The parts of a paper that context selection works on.
#[derive(Debug, Clone)]
pub struct PaperText<'a> {
    pub abstract_text: Option<&'a str>,
    pub sections: Vec<SectionText<'a>>,
}

#[derive(Debug, Clone, Copy)]
pub struct SectionText<'a> {
    pub heading: &'a str,
    pub text: &'a str,
    pub appendix: bool,
}

/// What was selected, and what was left out, for logs and the digest record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectedContext {
    pub text: String,
    pub tokens: usize,
    pub included: Vec<String>,
    pub trimmed: Vec<String>,
    pub dropped: Vec<String>,
}

/// A section smaller than this many tokens of room is not worth starting.
const MIN_PARTIAL_TOKENS: usize = 48;

/// Selects the context under `budget` tokens, counting with `count_tokens`.
pub fn select_context(
    paper: &PaperText<'_>,
    budget: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> SelectedContext {
    struct Piece {
        order: usize,
        label: String,
        text: String,
        rank: u8,
    }
    let mut pieces = Vec::new();
    if let Some(abstract_text) = paper.abstract_text.filter(|a| !a.trim().is_empty()) {
        pieces.push(Piece {
            order: 0,
            label: "Abstract".to_string(),
            text: format!("Abstract\n{}", abstract_text.trim()),
            rank: 0,
        });
    }
    for (i, section) in paper.sections.iter().enumerate() {
        let rank = rank_heading(section.heading, section.appendix);
        let heading = section.heading.trim();
        let text = if heading.is_empty() {
            section.text.trim().to_string()
        } else {
            format!("{heading}\n{}", section.text.trim())
        };
        pieces.push(Piece {
            order: i + 1,
            label: if heading.is_empty() {
                format!("section {}", i + 1)
            } else {
                heading.to_string()
            },
            text,
            rank,
        });
    }

    let mut by_priority: Vec<usize> = (0..pieces.len()).collect();
    by_priority.sort_by_key(|&i| (pieces[i].rank, pieces[i].order));

    let mut chosen: Vec<(usize, String)> = Vec::new();
    let mut selected = SelectedContext::default();
    let mut used = 0usize;
    // Separators between pieces cost a token or two each; keep that slack.
    let separator_cost = 2;
    for index in by_priority {
        let piece = &pieces[index];
        if piece.rank == SKIP_RANK {
            selected.dropped.push(piece.label.clone());
            continue;
        }
        let room = budget.saturating_sub(used + separator_cost);
        let tokens = count_tokens(&piece.text);
        if tokens <= room {
            used += tokens + separator_cost;
            chosen.push((piece.order, piece.text.clone()));
            selected.included.push(piece.label.clone());
        } else if room >= MIN_PARTIAL_TOKENS {
            let cut = cut_to_budget(&piece.text, room, count_tokens);
            if cut.is_empty() {
                selected.dropped.push(piece.label.clone());
            } else {
                used += count_tokens(&cut) + separator_cost;
                chosen.push((piece.order, cut));
                selected.trimmed.push(piece.label.clone());
            }
        } else {
            selected.dropped.push(piece.label.clone());
        }
    }
    chosen.sort_by_key(|(order, _)| *order);
    selected.text = chosen
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n\n");
    selected.tokens = count_tokens(&selected.text);
    selected
}

const SKIP_RANK: u8 = u8::MAX;

/// Lower is more important. Acknowledgements and the like are never worth tokens.
fn rank_heading(heading: &str, appendix: bool) -> u8 {
    let h = heading.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| h.contains(w));
    if has(&[
        "acknowledg",
        "reference",
        "bibliograph",
        "author contribution",
        "ethics statement",
    ]) {
        return SKIP_RANK;
    }
    if appendix || has(&["appendix", "supplementary"]) {
        return 9;
    }
    if has(&["abstract"]) {
        0
    } else if has(&["introduction", "overview", "motivation"]) {
        1
    } else if has(&["conclusion", "concluding", "summary", "future work"]) {
        2
    } else if has(&[
        "result",
        "experiment",
        "evaluation",
        "benchmark",
        "finding",
        "analysis",
    ]) {
        3
    } else if has(&[
        "method",
        "approach",
        "model",
        "framework",
        "design",
        "architecture",
        "algorithm",
        "training",
        "pipeline",
        "system",
    ]) {
        4
    } else if has(&["discussion", "limitation"]) {
        5
    } else if has(&["related work", "background", "preliminar", "prior work"]) {
        7
    } else {
        6
    }
}

/// The longest run of whole sentences from the start of `text` that fits in `budget` tokens.
fn cut_to_budget(text: &str, budget: usize, count_tokens: &dyn Fn(&str) -> usize) -> String {
    let ends: Vec<usize> = sentence_ends(text);
    // Binary search over sentence ends: token counts grow with the prefix length.
    let (mut lo, mut hi) = (0usize, ends.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if count_tokens(&text[..ends[mid - 1]]) <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        String::new()
    } else {
        text[..ends[lo - 1]].trim_end().to_string()
    }
}

/// Byte offsets just past each sentence end (`.`, `!`, `?` followed by white space, or a line
/// break ending a paragraph), plus the end of the text.
fn sentence_ends(text: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let is_end = match c {
            '.' | '!' | '?' | '。' => next.is_none_or(char::is_whitespace),
            '\n' => next == Some('\n'),
            _ => false,
        };
        if is_end {
            ends.push(i + c.len_utf8());
        }
    }
    if ends.last() != Some(&text.len()) {
        ends.push(text.len());
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn section<'a>(heading: &'a str, text: &'a str) -> SectionText<'a> {
        SectionText {
            heading,
            text,
            appendix: false,
        }
    }

    #[test]
    fn everything_fits_in_reading_order() {
        let paper = PaperText {
            abstract_text: Some("We do X."),
            sections: vec![
                section("1 Introduction", "Intro text."),
                section("2 Method", "Method text."),
                section("3 Conclusion", "Done."),
            ],
        };
        let got = select_context(&paper, 1000, &words);
        assert_eq!(
            got.text,
            "Abstract\nWe do X.\n\n1 Introduction\nIntro text.\n\n2 Method\nMethod text.\n\n3 Conclusion\nDone."
        );
        assert!(got.dropped.is_empty() && got.trimmed.is_empty());
    }

    #[test]
    fn low_priority_sections_go_first_and_order_is_kept() {
        let long = "Word word word word word. ".repeat(20); // 100 words
        let paper = PaperText {
            abstract_text: Some("Abstract words here."),
            sections: vec![
                section("1 Introduction", "Short intro."),
                section("2 Related Work", &long),
                section("3 Experiments", "Results are 42.1 points."),
                section("4 Conclusion", "We conclude."),
                section("Acknowledgments", "Thanks."),
            ],
        };
        let got = select_context(&paper, 40, &words);
        assert_eq!(
            got.included,
            [
                "Abstract",
                "1 Introduction",
                "4 Conclusion",
                "3 Experiments"
            ]
        );
        assert!(got.dropped.contains(&"Acknowledgments".to_string()));
        assert!(got.text.find("Short intro").unwrap() < got.text.find("42.1").unwrap());
        assert!(got.text.find("42.1").unwrap() < got.text.find("We conclude").unwrap());
        assert!(got.tokens <= 40);
    }

    #[test]
    fn a_section_that_does_not_fit_is_cut_at_a_sentence_end() {
        let big = "Sentence number one. ".repeat(40);
        let paper = PaperText {
            abstract_text: None,
            sections: vec![section("Method", &big)],
        };
        let got = select_context(&paper, 60, &words);
        assert_eq!(got.trimmed, ["Method"]);
        assert!(got.text.ends_with("one."));
        assert!(words(&got.text) <= 60);
    }

    #[test]
    fn sentence_ends_cover_punctuation_and_paragraphs() {
        let text = "A b. C d? E\n\nF 3.5 g";
        let ends = sentence_ends(text);
        assert_eq!(ends, vec![4, 9, 12, text.len()]);
    }
}
