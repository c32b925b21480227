//! Chooses what of a paper the model reads, under a token budget. Sections are ranked by how
//! much they tell a summary (abstract, introduction, conclusion, results, method, the rest),
//! taken whole while they fit, and a section that does not fit is cut at a sentence boundary,
//! keeping its table and figure captions (they state what the results are) within half its
//! room. The chosen sections are then put back in reading order. The paper is never cut
//! blindly: not inside a sentence, and not at an abbreviation such as `Fig. 3` or `et al.`.

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
            let cut = cut_keeping_captions(&piece.text, room, count_tokens);
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

/// A section cut to `budget` tokens: its captions first (in order, within half the budget),
/// then the longest run of whole sentences from its start that fits in the rest, then the
/// captions. The heading (the first line) stays even when no sentence fits.
fn cut_keeping_captions(text: &str, budget: usize, count_tokens: &dyn Fn(&str) -> usize) -> String {
    let (body, captions) = split_captions(text);
    if captions.is_empty() {
        return cut_to_budget(text, budget, count_tokens);
    }
    let mut kept = Vec::new();
    let mut used = 0;
    for caption in captions {
        let tokens = count_tokens(caption) + 2;
        if used + tokens <= budget / 2 {
            kept.push(caption);
            used += tokens;
        }
    }
    let mut out = cut_to_budget(&body, budget.saturating_sub(used), count_tokens);
    if out.is_empty() && !kept.is_empty() {
        out = text.lines().next().unwrap_or_default().to_string();
    }
    for caption in kept {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(caption);
    }
    out
}

/// The paragraphs of `text` that are table or figure captions ("Table 2: ...", "Figure 3.",
/// "Fig. 4 |", "TABLE IV"), and the text without them.
fn split_captions(text: &str) -> (String, Vec<&str>) {
    let mut body: Vec<&str> = Vec::new();
    let mut captions = Vec::new();
    for paragraph in text.split("\n\n") {
        if is_caption(paragraph.trim_start()) {
            captions.push(paragraph.trim());
        } else {
            body.push(paragraph);
        }
    }
    (body.join("\n\n"), captions)
}

fn is_caption(paragraph: &str) -> bool {
    let Some(rest) = ["Table", "TABLE", "Figure", "FIGURE", "Fig.", "Tab."]
        .iter()
        .find_map(|label| paragraph.strip_prefix(label))
    else {
        return false;
    };
    let rest = rest.trim_start();
    let number = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, 'I' | 'V' | 'X')))
        .unwrap_or(rest.len());
    number > 0
        && rest[number..]
            .trim_start_matches(|c: char| c.is_ascii_lowercase() && c != ' ')
            .trim_start()
            .starts_with([':', '.', '|', '—', '-'])
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

/// Byte offsets just past each sentence end (`.`, `!`, `?` followed by white space and not
/// by a lowercase word, and not after an abbreviation or an initial; or a line break ending a
/// paragraph), plus the end of the text.
fn sentence_ends(text: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let is_end = match c {
            '.' => {
                next.is_none_or(char::is_whitespace)
                    && !after_abbreviation(&text[..i])
                    && !text[i + 1..]
                        .trim_start()
                        .starts_with(|n: char| n.is_lowercase())
            }
            '!' | '?' | '。' => next.is_none_or(char::is_whitespace),
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

/// Whether the word just before a period is an abbreviation (`Fig`, `et al`, `e.g`) or an
/// initial (`J`), after which the period does not end the sentence.
fn after_abbreviation(before: &str) -> bool {
    const ABBREVIATIONS: &[&str] = &[
        "fig", "figs", "eq", "eqs", "tab", "sec", "secs", "al", "e.g", "i.e", "vs", "cf", "approx",
        "resp", "no", "ref", "refs", "dr", "prof", "ch", "app", "alg", "thm", "def", "lemma",
        "prop", "cor",
    ];
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '[')
        .next()
        .unwrap_or_default();
    let single_capital = word.chars().count() == 1 && word.chars().all(char::is_uppercase);
    single_capital || ABBREVIATIONS.contains(&word.to_lowercase().as_str())
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

    #[test]
    fn abbreviations_and_initials_do_not_end_sentences() {
        let text = "As Fig. 3 shows, Smith et al. report gains, e.g. in speed. J. Doe agrees. End";
        let cut: Vec<&str> = sentence_ends(text)
            .windows(2)
            .map(|w| text[w[0]..w[1]].trim())
            .collect();
        assert_eq!(cut, ["J. Doe agrees.", "End"]);
        assert_eq!(
            &text[..sentence_ends(text)[0]],
            "As Fig. 3 shows, Smith et al. report gains, e.g. in speed."
        );
    }

    #[test]
    fn captions_are_recognised() {
        let cases = [
            ("Table 2: Accuracy on GSM8K.", true),
            ("Figure 10. Loss curves", true),
            ("Fig. 4 | Overview", true),
            ("TABLE IV: Results", true),
            ("Figure 3a: Ablation", true),
            ("Table 2 shows that our method wins.", false),
            ("Tables are useful.", false),
            ("Figure out the answer: no.", false),
        ];
        for (text, expected) in cases {
            assert_eq!(is_caption(text), expected, "{text}");
        }
    }

    #[test]
    fn a_trimmed_results_section_keeps_its_captions() {
        let filler = "We ran many experiments on the benchmark. ".repeat(30);
        let results = format!(
            "{filler}\n\nTable 2: Accuracy of GDPO and GRPO on AIME, 6.3 points apart.\n\n{filler}\n\nFigure 3: Training reward over steps."
        );
        let paper = PaperText {
            abstract_text: Some("We propose GDPO."),
            sections: vec![section("4 Experiments", &results)],
        };
        let got = select_context(&paper, 80, &words);
        assert_eq!(got.trimmed, ["4 Experiments"]);
        assert!(
            got.text.contains("Table 2: Accuracy of GDPO"),
            "{}",
            got.text
        );
        assert!(
            got.text.contains("Figure 3: Training reward"),
            "{}",
            got.text
        );
        assert!(got.text.contains("4 Experiments\nWe ran"), "{}", got.text);
        assert!(got.tokens <= 80, "{}", got.tokens);
    }
}
