//! Turns raw model text into the clean values of a summary: one paragraph of prose, one list
//! item, a tag list. Small models wrap answers in labels, Markdown and half sentences; this is
//! where that is removed, and where an unusable answer is recognised so it can be regenerated.

/// Cleans a prose answer: drops a leading label the model may repeat ("Main Problem:"),
/// Markdown emphasis and list marks, folds it into one paragraph, and, when generation was cut
/// by the token limit, drops the unfinished last sentence.
pub fn clean_prose(text: &str, cut_by_limit: bool) -> String {
    let mut text = fold_whitespace(&strip_markdown(text));
    text = strip_leading_label(&text).to_string();
    if cut_by_limit {
        text = drop_unfinished_sentence(&text);
    }
    drop_repeated_sentences(text.trim())
}

/// Keeps the first of sentences that say the same words again (a small model's loop).
fn drop_repeated_sentences(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let ends = matches!(c, '.' | '!' | '?') && bytes.get(i + 1).is_none_or(|b| *b == b' ');
        if ends || i + c.len_utf8() == text.len() {
            let sentence = &text[start..i + c.len_utf8()];
            let key = normalise(sentence);
            if key.is_empty() || !seen.contains(&key) {
                kept.push(sentence.trim());
                seen.push(key);
            }
            start = i + c.len_utf8();
        }
    }
    kept.join(" ")
}

/// Cleans one list item; `None` when nothing usable is left.
pub fn clean_item(text: &str) -> Option<String> {
    let text = fold_whitespace(&strip_markdown(text));
    let text = strip_list_mark(&text);
    let text = strip_leading_label(text).trim();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    (letters >= 3).then(|| text.to_string())
}

/// Splits a tag line into at most `max` distinct tags.
pub fn parse_tags(text: &str, max: usize) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let line = strip_leading_label(text.trim());
    for raw in line.split([',', ';', '\n', '|', '、', '，']) {
        let tag = strip_list_mark(raw.trim())
            .trim_matches(|c: char| {
                c == '#'
                    || c == '"'
                    || c == '\''
                    || c == '`'
                    || c == '*'
                    || c == '.'
                    || c.is_whitespace()
            })
            .to_string();
        // Markup echoed from the prompt (`<paper>`) is not a topic.
        if tag.contains(['<', '>', '{', '}']) {
            continue;
        }
        let tag = tag.trim_end_matches(':').trim().to_string();
        let words = tag.split_whitespace().count();
        // A tag names a topic in words: "GPT-4" and "µP" are tags, "1.1.2" is not.
        let letters = tag.chars().filter(|c| c.is_alphabetic()).count();
        if letters < 2 || words > 6 || tag.chars().count() > 48 {
            continue;
        }
        if tags.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) {
            continue;
        }
        tags.push(tag);
        if tags.len() == max {
            break;
        }
    }
    tags
}

/// Whether `item` repeats one of `earlier` (same words, ignoring case and punctuation), which
/// small models do when they run out of ideas.
pub fn repeats(item: &str, earlier: &[String]) -> bool {
    let key = normalise(item);
    earlier.iter().any(|e| normalise(e) == key)
}

fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn fold_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn strip_markdown(text: &str) -> String {
    text.lines()
        .map(|line| line.trim_start().trim_start_matches('#').trim_start())
        .collect::<Vec<_>>()
        .join("\n")
        .replace("**", "")
        .replace("__", "")
}

fn strip_list_mark(text: &str) -> &str {
    let t = text.trim_start();
    if let Some(rest) = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .or_else(|| t.strip_prefix("• "))
    {
        return rest.trim_start();
    }
    // "1." / "2)" numbering
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits <= 2 {
        let rest = &t[digits..];
        // "1. idea" is numbering; "3.5% better" is not.
        if let Some(rest) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')'))
            && (rest.is_empty() || rest.starts_with(char::is_whitespace))
        {
            return rest.trim_start();
        }
    }
    t
}

/// Removes "Label:" at the start when the label is short and looks like a heading the model
/// echoed (e.g. "Main Problem:", "Vấn đề chính:", "Tags:").
fn strip_leading_label(text: &str) -> &str {
    if let Some((head, rest)) = text.split_once(':') {
        let words = head.split_whitespace().count();
        let looks_like_label = (1..=4).contains(&words)
            && !head.chars().any(|c| c.is_ascii_digit())
            && head.chars().next().is_some_and(char::is_uppercase);
        if looks_like_label && !rest.trim().is_empty() {
            return rest.trim_start();
        }
    }
    text
}

fn drop_unfinished_sentence(text: &str) -> String {
    let trimmed = text.trim_end();
    if trimmed.ends_with(['.', '!', '?']) {
        return trimmed.to_string();
    }
    // A sentence ends at `.`, `!` or `?` before white space: the point of `91.2` does not.
    let end = trimmed
        .char_indices()
        .filter(|&(i, c)| {
            matches!(c, '.' | '!' | '?') && trimmed[i + 1..].starts_with(char::is_whitespace)
        })
        .map(|(i, _)| i)
        .next_back();
    match end {
        Some(at) => trimmed[..=at].to_string(),
        // Keep at least something: a single unfinished sentence stays, with an ellipsis.
        None => format!("{trimmed}…"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_cleaning() {
        let cases = [
            (
                "**Main Problem:** The paper\nstudies X.",
                false,
                "The paper studies X.",
            ),
            (
                "### Vấn đề chính: Bài báo giải quyết Y.",
                false,
                "Bài báo giải quyết Y.",
            ),
            ("It works. Then it was cut in the mid", true, "It works."),
            ("It works. Accuracy reaches 91.2% on the", true, "It works."),
            (
                "Accuracy reaches 91.2% on the",
                true,
                "Accuracy reaches 91.2% on the…",
            ),
            (
                "Only an unfinished sentence here",
                true,
                "Only an unfinished sentence here…",
            ),
            ("Ratio 3:1 is kept.", false, "Ratio 3:1 is kept."),
            (
                "A b c. Loop here. Loop here. D e.",
                false,
                "A b c. Loop here. D e.",
            ),
            (
                "Value 3.5 is fine. Value 3.5 is fine",
                false,
                "Value 3.5 is fine.",
            ),
        ];
        for (input, cut, expected) in cases {
            assert_eq!(clean_prose(input, cut), expected, "input {input:?}");
        }
    }

    #[test]
    fn items() {
        assert_eq!(
            clean_item("- **A** new idea").as_deref(),
            Some("A new idea")
        );
        assert_eq!(clean_item("2. Second idea").as_deref(), Some("Second idea"));
        assert_eq!(clean_item("  - ").as_deref(), None);
        assert_eq!(clean_item("1.").as_deref(), None);
        assert_eq!(
            clean_item("3.5% better accuracy").as_deref(),
            Some("3.5% better accuracy")
        );
    }

    #[test]
    fn tags() {
        assert_eq!(
            parse_tags("Tags: RL, #LLMs; policy optimization, rl, \"GDPO\".", 8),
            ["RL", "LLMs", "policy optimization", "GDPO"]
        );
        assert_eq!(parse_tags("ab, cd, ef, gh", 2), ["ab", "cd"]);
        assert_eq!(parse_tags("1.1.2.1, GPT-4, µP", 8), ["GPT-4", "µP"]);
        assert_eq!(
            parse_tags("<paper>, Paperdigest:, Private Digests", 8),
            ["Paperdigest", "Private Digests"]
        );
        let long = "this is a very long sentence that is not a tag at all, ok";
        assert_eq!(parse_tags(long, 8), ["ok"]);
    }

    #[test]
    fn repeats_ignore_case_and_punctuation() {
        let earlier = vec!["A study of X.".to_string()];
        assert!(repeats("a study of x", &earlier));
        assert!(!repeats("A study of Y", &earlier));
    }
}
