//! The digest as one self-contained HTML page: inline CSS, no scripts, no external fonts,
//! images or stylesheets, so it opens offline and can be mailed as one file. Readable on a
//! phone (viewport meta, one fluid column, wrapping of long URLs and titles) and in dark mode.
//! A table of contents at the top links to each paper. Every piece of text is escaped, so
//! nothing a model or a PDF wrote can become markup.

use std::fmt::Write;

use super::labels::Labels;
use crate::digest::{Digest, PaperDigest, Summary};

const STYLE: &str = "
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #ffffff; --muted: #5f6368;
  --accent: #0b57d0; --card: #f6f8fa; --line: #d0d7de; --warn: #b3261e; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e8eaed; --bg: #16181c; --muted: #a0a4a8; --accent: #8ab4f8;
    --card: #202327; --line: #3c4043; --warn: #f28b82; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.6 system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', sans-serif; }
main, header, nav { max-width: 46rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1.25rem; }
h1 { font-size: 1.5rem; line-height: 1.3; margin: 0 0 .5rem; }
h2 { font-size: 1.25rem; line-height: 1.35; margin: 0 0 .75rem; overflow-wrap: anywhere; }
h3 { font-size: 1.05rem; margin: 1.25rem 0 .35rem; }
h4 { font-size: 1rem; margin: .75rem 0 .25rem; color: var(--muted); }
p { margin: .35rem 0; }
ul, ol { padding-left: 1.25rem; margin: .35rem 0; }
li { margin: .2rem 0; }
a { color: var(--accent); overflow-wrap: anywhere; }
.generated { color: var(--muted); font-size: .9rem; }
nav.toc { margin-top: 1rem; }
nav.toc ol { background: var(--card); border: 1px solid var(--line); border-radius: .5rem;
  padding: .75rem .75rem .75rem 2rem; }
nav.toc .failed { color: var(--warn); }
article { border-top: 1px solid var(--line); padding: 1.25rem 0 1rem; scroll-margin-top: .5rem; }
.meta { color: var(--muted); font-size: .95rem; overflow-wrap: anywhere; }
.tags { display: flex; flex-wrap: wrap; gap: .35rem; list-style: none; padding: 0; margin: .5rem 0; }
.tags li { background: var(--card); border: 1px solid var(--line); border-radius: 1rem;
  padding: .05rem .6rem; font-size: .85rem; margin: 0; }
.error { color: var(--warn); border-left: 3px solid var(--warn); padding-left: .75rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .35rem .5rem; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
th { background: var(--card); }
td:first-child { white-space: nowrap; }
.top { font-size: .85rem; }
@media (max-width: 30rem) { body { font-size: 15px; } td:first-child { white-space: normal; } }
";

/// Renders a digest as one HTML page.
pub fn to_html(digest: &Digest) -> String {
    let labels = Labels::for_lang(digest.lang);
    let title = format!("{} - {}", labels.title, digest.date);
    let generated = labels
        .generated
        .replace(
            "{generated_at}",
            &digest.generated_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
        .replace("{model}", &digest.model);
    let mut out = String::new();
    // Writing into a String cannot fail, so the fmt::Results below are ignored on purpose.
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body id=\"top\">\n\
         <header>\n<h1>{title}</h1>\n<p class=\"generated\">{generated}</p>\n</header>\n",
        lang = digest.lang.code(),
        title = escape(&title),
        generated = escape(&generated),
    );
    let _ = writeln!(
        out,
        "<nav class=\"toc\" aria-label=\"{0}\">\n<h2>{0}</h2>",
        escape(labels.summary_of_papers)
    );
    if digest.papers.is_empty() {
        let _ = writeln!(out, "<p>{}</p>\n</nav>", escape(labels.no_papers));
    } else {
        out.push_str("<ol>\n");
        for (index, paper) in digest.papers.iter().enumerate() {
            let failed = if paper.summary.is_none() {
                format!(" <span class=\"failed\">({})</span>", escape(labels.failed))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "<li><a href=\"#paper-{}\">{}</a>{failed}</li>",
                index + 1,
                escape(&one_line(&paper.meta.title))
            );
        }
        out.push_str("</ol>\n</nav>\n");
    }
    out.push_str("<main>\n");
    for (index, paper) in digest.papers.iter().enumerate() {
        write_paper(&mut out, labels, index + 1, paper);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn write_paper(out: &mut String, labels: &Labels, number: usize, paper: &PaperDigest) {
    let meta = &paper.meta;
    let na = labels.not_available;
    let _ = writeln!(
        out,
        "<article id=\"paper-{number}\">\n<h2>{number}. {}</h2>",
        escape(&one_line(&meta.title))
    );
    let authors = if meta.authors.is_empty() {
        na.to_string()
    } else {
        meta.authors.join(", ")
    };
    let published = meta
        .published
        .map_or_else(|| na.to_string(), |d| d.to_string());
    let _ = writeln!(
        out,
        "<p class=\"meta\"><strong>{}:</strong> {}</p>\n<p class=\"meta\"><strong>{}:</strong> {}</p>",
        escape(labels.authors),
        escape(&one_line(&authors)),
        escape(labels.published),
        escape(&published)
    );
    match &paper.summary {
        Some(summary) => write_summary(out, labels, summary),
        None => {
            let reason = paper.error.as_deref().unwrap_or("unknown error");
            let _ = writeln!(
                out,
                "<p class=\"error\">⚠️ {}: {}</p>",
                escape(labels.failed),
                escape(&one_line(reason))
            );
        }
    }
    write_links(out, labels, paper);
    let _ = writeln!(
        out,
        "<p class=\"top\"><a href=\"#top\">↑</a></p>\n</article>"
    );
}

fn write_summary(out: &mut String, labels: &Labels, summary: &Summary) {
    let _ = write!(
        out,
        "<p class=\"meta\"><strong>{}:</strong></p>",
        escape(labels.tags)
    );
    if summary.tags.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", escape(labels.not_available));
    } else {
        out.push_str("\n<ul class=\"tags\">");
        for tag in &summary.tags {
            let _ = write!(out, "<li>{}</li>", escape(&one_line(tag)));
        }
        out.push_str("</ul>\n");
    }
    write_prose(out, labels.main_problem, &summary.main_problem, labels);
    write_prose(out, labels.main_idea, &summary.main_idea, labels);
    let _ = writeln!(out, "<h3>{}</h3>", escape(labels.main_results));
    write_list(out, &summary.main_results, labels);
    write_prose(out, labels.conclusion, &summary.conclusion, labels);
    let _ = writeln!(out, "<h3>{}</h3>", escape(labels.brainstorming));
    let _ = writeln!(out, "<h4>{}</h4>", escape(labels.publish_papers));
    write_list(out, &summary.paper_ideas, labels);
    let _ = writeln!(out, "<h4>{}</h4>", escape(labels.patent));
    write_list(out, &summary.patent_ideas, labels);
}

fn write_prose(out: &mut String, heading: &str, text: &str, labels: &Labels) {
    let text = one_line(text);
    let text = if text.is_empty() {
        labels.not_available.to_string()
    } else {
        text
    };
    let _ = writeln!(
        out,
        "<h3>{}</h3>\n<p>{}</p>",
        escape(heading),
        escape(&text)
    );
}

fn write_list(out: &mut String, items: &[String], labels: &Labels) {
    if items.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", escape(labels.not_available));
        return;
    }
    out.push_str("<ul>\n");
    for item in items {
        let _ = writeln!(out, "<li>{}</li>", escape(&one_line(item)));
    }
    out.push_str("</ul>\n");
}

fn write_links(out: &mut String, labels: &Labels, paper: &PaperDigest) {
    let links = paper.meta.links();
    let _ = writeln!(
        out,
        "<h3>{}</h3>\n<table>\n<thead><tr><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
        escape(labels.links),
        escape(labels.links_platform),
        escape(labels.links_url)
    );
    let rows = [
        ("Hugging Face", &links.huggingface),
        ("ArXiv Abstract", &links.arxiv_abs),
        ("PDF Download", &links.pdf),
        ("Github Repository", &links.github),
    ];
    for (platform, url) in rows {
        let cell = match url.as_deref().map(one_line) {
            // Only web links become links: a `javascript:` or relative URL from metadata stays
            // plain text.
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                format!("<a href=\"{0}\">{0}</a>", escape(&url))
            }
            Some(url) => escape(&url),
            None => escape(labels.not_available),
        };
        let _ = writeln!(out, "<tr><td>{platform}</td><td>{cell}</td></tr>");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// Text with line breaks folded into spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{PaperTimings, Summary};
    use crate::paper::{Lang, PaperMeta, PaperOrigin};
    use chrono::NaiveDate;

    fn paper(title: &str, summary: Option<Summary>, github: Option<&str>) -> PaperDigest {
        PaperDigest {
            meta: PaperMeta {
                arxiv_id: Some("2601.05242".parse().unwrap()),
                title: title.into(),
                authors: vec!["Shih-Yang Liu".into(), "Xin Dong".into()],
                published: NaiveDate::from_ymd_opt(2026, 1, 8),
                github_repo: github.map(str::to_string),
                origin: PaperOrigin::HuggingFace,
            },
            error: summary.is_none().then(|| "PDF <missing>".to_string()),
            summary,
            timings: PaperTimings::default(),
            grounding: None,
            language_fidelity: None,
        }
    }

    fn summary() -> Summary {
        Summary {
            main_problem: "Problem with <script>alert(1)</script> & \"quotes\".".into(),
            main_idea: "Idea.".into(),
            main_results: vec!["R1 is 6.3% better".into(), "R2".into()],
            conclusion: "Conclusion.".into(),
            tags: vec!["RL".into(), "<b>GDPO</b>".into()],
            paper_ideas: vec!["P1".into(), "P2".into(), "P3".into()],
            patent_ideas: vec!["T1".into(), "T2".into(), "T3".into()],
        }
    }

    fn digest(papers: Vec<PaperDigest>) -> Digest {
        Digest {
            date: NaiveDate::from_ymd_opt(2026, 1, 9).unwrap(),
            model: "qwen".into(),
            lang: Lang::Vi,
            generated_at: NaiveDate::from_ymd_opt(2026, 1, 10)
                .unwrap()
                .and_hms_opt(13, 28, 12)
                .unwrap(),
            papers,
        }
    }

    #[test]
    fn page_is_self_contained_with_a_toc_linking_every_paper() {
        let html = to_html(&digest(vec![
            paper(
                "GDPO: Group reward",
                Some(summary()),
                Some("https://github.com/NVlabs/GDPO"),
            ),
            paper("Failed <paper>", None, Some("javascript:alert(1)")),
        ]));
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"vi\">"));
        assert!(
            html.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            )
        );
        assert!(html.contains("<meta charset=\"utf-8\">"));
        for id in ["paper-1", "paper-2"] {
            assert!(html.contains(&format!("href=\"#{id}\"")), "toc link {id}");
            assert_eq!(html.matches(&format!("id=\"{id}\"")).count(), 1, "{id}");
        }
        // Nothing external: no scripts, stylesheets, images or fonts fetched.
        for forbidden in ["<script", "<link", "<img", "@import", "url(", "src="] {
            assert!(!html.contains(forbidden), "{forbidden} in page");
        }
        // Every href is an anchor in the page or a web link.
        for href in html.split("href=\"").skip(1) {
            assert!(
                href.starts_with('#') || href.starts_with("https://"),
                "{}",
                &href[..href.len().min(40)]
            );
        }
        assert!(html.contains(
            "Problem with &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;."
        ));
        assert!(html.contains("<li>&lt;b&gt;GDPO&lt;/b&gt;</li>"));
        assert!(html.contains("Failed &lt;paper&gt;"));
        assert!(html.contains("PDF &lt;missing&gt;"));
        assert!(html.contains("<td>javascript:alert(1)</td>"), "not a link");
        assert!(html.contains("<a href=\"https://arxiv.org/abs/2601.05242\">"));
        assert!(html.contains("<h3>Main Results</h3>\n<ul>\n<li>R1 is 6.3% better</li>"));
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn empty_day_and_empty_sections_are_well_formed() {
        let html = to_html(&digest(Vec::new()));
        assert!(html.contains("Không có bài báo nào cho ngày này."));
        let mut empty = summary();
        empty.main_problem.clear();
        empty.main_results.clear();
        let html = to_html(&digest(vec![paper("T", Some(empty), None)]));
        assert!(html.contains("<h3>Main Problem</h3>\n<p>N/A</p>"));
        assert!(html.contains("<h3>Main Results</h3>\n<p>N/A</p>"));
        assert!(html.contains("<tr><td>Github Repository</td><td>N/A</td></tr>"));
    }
}
