//! Markdown in the format of the reference digest (`digest-2026-01-09.vi.md`), element by
//! element: title with the date, the generated-at line, "Summary of Papers", then per paper its
//! number and title, authors, published date, tags, the four summary sections, the
//! brainstorming lists and the links table.

use std::fmt::Write;

use super::labels::Labels;
use crate::digest::{Digest, PaperDigest, Summary};

/// Renders a digest as Markdown.
pub fn to_markdown(digest: &Digest) -> String {
    let labels = Labels::for_lang(digest.lang);
    let mut out = String::new();
    let generated = labels
        .generated
        .replace(
            "{generated_at}",
            &digest.generated_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
        .replace("{model}", &one_line(&digest.model));
    // Writing into a String cannot fail, so the fmt::Results below are ignored on purpose.
    let _ = writeln!(out, "# {} - {}\n", labels.title, digest.date);
    let _ = writeln!(out, "{generated}\n");
    let _ = writeln!(out, "## {}\n", labels.summary_of_papers);
    if digest.papers.is_empty() {
        let _ = writeln!(out, "{}", labels.no_papers);
        return out;
    }
    for (index, paper) in digest.papers.iter().enumerate() {
        out.push_str("--- \n\n");
        write_paper(&mut out, labels, index + 1, paper);
    }
    out
}

fn write_paper(out: &mut String, labels: &Labels, number: usize, paper: &PaperDigest) {
    let meta = &paper.meta;
    let na = labels.not_available;
    let _ = writeln!(out, "## {number}. {}\n", one_line(&meta.title));
    let authors = if meta.authors.is_empty() {
        na.to_string()
    } else {
        meta.authors
            .iter()
            .map(|a| one_line(a))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "**{}:** {authors}\n", labels.authors);
    let published = meta
        .published
        .map_or_else(|| na.to_string(), |d| d.to_string());
    let _ = writeln!(out, "**{}:** {published}\n", labels.published);
    match &paper.summary {
        Some(summary) => write_summary(out, labels, summary),
        None => {
            let _ = writeln!(out, "**{}:** {na}", labels.tags);
            let reason = paper.error.as_deref().unwrap_or("unknown error");
            let _ = writeln!(out, "\n> ⚠️ {}: {}\n", labels.failed, one_line(reason));
        }
    }
    write_links(out, labels, paper);
}

fn write_summary(out: &mut String, labels: &Labels, summary: &Summary) {
    let tags = if summary.tags.is_empty() {
        labels.not_available.to_string()
    } else {
        summary
            .tags
            .iter()
            .map(|t| one_line(t))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "**{}:** {tags}", labels.tags);
    write_prose(out, labels.main_problem, &summary.main_problem);
    write_prose(out, labels.main_idea, &summary.main_idea);
    let _ = writeln!(out, "### {}:", labels.main_results);
    write_bullets(out, &summary.main_results);
    out.push('\n');
    write_prose(out, labels.conclusion, &summary.conclusion);
    let _ = writeln!(out, "### {}:", labels.brainstorming);
    let _ = writeln!(out, "#### {}:", labels.publish_papers);
    write_bullets(out, &summary.paper_ideas);
    let _ = writeln!(out, "#### {}:", labels.patent);
    write_bullets(out, &summary.patent_ideas);
    out.push('\n');
}

fn write_prose(out: &mut String, heading: &str, text: &str) {
    let _ = writeln!(out, "### {heading}:\n{}\n", paragraph(text));
}

fn write_bullets(out: &mut String, items: &[String]) {
    if items.is_empty() {
        out.push_str("- N/A\n");
    }
    for item in items {
        let _ = writeln!(out, "- {}", one_line(item));
    }
}

fn write_links(out: &mut String, labels: &Labels, paper: &PaperDigest) {
    let links = paper.meta.links();
    let _ = writeln!(out, "### {}\n", labels.links);
    let _ = writeln!(out, "| {} | {} |", labels.links_platform, labels.links_url);
    out.push_str("| :--- | :--- |\n");
    let rows = [
        ("Hugging Face", &links.huggingface),
        ("ArXiv Abstract", &links.arxiv_abs),
        ("PDF Download", &links.pdf),
        ("Github Repository", &links.github),
    ];
    for (platform, url) in rows {
        match url {
            Some(url) => {
                let url = one_line(url);
                let _ = writeln!(out, "| {platform} | [{url}]({url}) |");
            }
            None => {
                let _ = writeln!(out, "| {platform} | {} |", labels.not_available);
            }
        }
    }
    out.push('\n');
}

/// Text that must stay on one line (titles, list items, table cells): line breaks become spaces
/// so a stray newline from a model or a PDF cannot break the document structure.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A prose block: one paragraph, with any line that would read as a Markdown heading or rule
/// folded in, so model text cannot inject structure into the digest.
fn paragraph(text: &str) -> String {
    let text = one_line(text);
    let trimmed = text.trim_start_matches(['#', '-', '=', '|', '>', ' ']);
    if trimmed.is_empty() {
        "N/A".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{PaperTimings, Summary};
    use crate::paper::{Lang, PaperMeta, PaperOrigin};
    use chrono::NaiveDate;

    fn sample(lang: Lang, with_summary: bool) -> Digest {
        let meta = PaperMeta {
            arxiv_id: Some("2601.05242".parse().unwrap()),
            title: "GDPO: Group reward-Decoupled\nNormalization".into(),
            authors: vec!["Shih-Yang Liu".into(), "Xin Dong".into()],
            published: NaiveDate::from_ymd_opt(2026, 1, 8),
            github_repo: Some("https://github.com/NVlabs/GDPO".into()),
            origin: PaperOrigin::LocalFile {
                path: "x.pdf".into(),
            },
        };
        let summary = Summary {
            main_problem: "Problem text.".into(),
            main_idea: "Idea text.".into(),
            main_results: vec!["R1".into(), "R2".into()],
            conclusion: "Conclusion text.".into(),
            tags: vec!["RL".into(), "GDPO".into(), "LLMs".into()],
            paper_ideas: vec!["P1".into(), "P2".into(), "P3".into()],
            patent_ideas: vec!["T1".into(), "T2".into(), "T3".into()],
        };
        Digest {
            date: NaiveDate::from_ymd_opt(2026, 1, 9).unwrap(),
            model: "smollm2-135m-instruct".into(),
            lang,
            generated_at: NaiveDate::from_ymd_opt(2026, 1, 10)
                .unwrap()
                .and_hms_opt(13, 28, 12)
                .unwrap(),
            papers: vec![PaperDigest {
                meta,
                summary: with_summary.then_some(summary),
                error: (!with_summary).then(|| "PDF could not be read".to_string()),
                timings: PaperTimings::default(),
                grounding: None,
                language_fidelity: None,
            }],
        }
    }

    #[test]
    fn vietnamese_digest_matches_reference_layout() {
        let md = to_markdown(&sample(Lang::Vi, true));
        let expected = "\
# 🤗 Daily Hugging Face Paper Digest - 2026-01-09

Báo cáo được tạo tự động vào lúc 2026-01-10 13:28:12 bằng mô hình `smollm2-135m-instruct`.

## 📰 Summary of Papers

--- 

## 1. GDPO: Group reward-Decoupled Normalization

**Tác giả:** Shih-Yang Liu, Xin Dong

**Xuất bản lúc:** 2026-01-08

**Tag:** RL, GDPO, LLMs
### Main Problem:
Problem text.

### Main Idea:
Idea text.

### Main Results:
- R1
- R2

### Conclusion & Future Works:
Conclusion text.

### Brainstorming Space:
#### 1. Publish Papers:
- P1
- P2
- P3
#### 2. Patent:
- T1
- T2
- T3

### Các đường dẫn liên quan

| Nền tảng | Đường dẫn |
| :--- | :--- |
| Hugging Face | [https://huggingface.co/papers/2601.05242](https://huggingface.co/papers/2601.05242) |
| ArXiv Abstract | [https://arxiv.org/abs/2601.05242](https://arxiv.org/abs/2601.05242) |
| PDF Download | [https://arxiv.org/pdf/2601.05242.pdf](https://arxiv.org/pdf/2601.05242.pdf) |
| Github Repository | [https://github.com/NVlabs/GDPO](https://github.com/NVlabs/GDPO) |

";
        assert_eq!(md, expected);
    }

    #[test]
    fn english_labels_and_missing_links() {
        let mut digest = sample(Lang::En, true);
        digest.papers[0].meta.arxiv_id = None;
        digest.papers[0].meta.github_repo = None;
        digest.papers[0].meta.published = None;
        let md = to_markdown(&digest);
        assert!(md.contains("Report generated automatically at 2026-01-10 13:28:12 with model"));
        assert!(md.contains("**Authors:** Shih-Yang Liu, Xin Dong"));
        assert!(md.contains("**Published:** N/A"));
        assert!(md.contains("**Tags:** RL, GDPO, LLMs"));
        assert!(md.contains("### Related Links"));
        assert!(md.contains("| Hugging Face | N/A |"));
        assert!(md.contains("| Github Repository | N/A |"));
    }

    #[test]
    fn failed_paper_keeps_metadata_and_reason() {
        let md = to_markdown(&sample(Lang::En, false));
        assert!(md.contains("## 1. GDPO"));
        assert!(md.contains("**Authors:** Shih-Yang Liu"));
        assert!(md.contains("PDF could not be read"));
        assert!(md.contains("| ArXiv Abstract | [https://arxiv.org/abs/2601.05242]"));
        assert!(!md.contains("### Main Problem:"));
    }

    #[test]
    fn model_text_cannot_inject_structure() {
        let mut digest = sample(Lang::En, true);
        let summary = digest.papers[0].summary.as_mut().unwrap();
        summary.main_problem = "## 2. Fake paper\n### Main Idea:\nhijack".into();
        summary.main_results = vec!["line one\n### Conclusion & Future Works:".into()];
        let md = to_markdown(&digest);
        let headings = |h: &str| md.lines().filter(|l| l.starts_with(h)).count();
        assert_eq!(headings("### Main Idea:"), 1);
        assert_eq!(headings("### Conclusion & Future Works:"), 1);
        assert_eq!(headings("## 2."), 0);
    }

    #[test]
    fn empty_day_says_so() {
        let mut digest = sample(Lang::Vi, true);
        digest.papers.clear();
        let md = to_markdown(&digest);
        assert!(md.ends_with("Không có bài báo nào cho ngày này.\n"));
    }
}
