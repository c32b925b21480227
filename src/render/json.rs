//! The digest as JSON, for scripts and for comparing runs. The shape is flat and stable:
//! `{"date", "model", "lang", "generated_at", "papers": [{"id", "title", ..., "links", "timings",
//! "error"}]}`.

use serde::Serialize;

use crate::digest::{Digest, PaperDigest, PaperTimings};
use crate::paper::Links;

#[derive(Serialize)]
struct JsonDigest<'a> {
    date: String,
    model: &'a str,
    lang: &'a str,
    generated_at: String,
    papers: Vec<JsonPaper<'a>>,
}

#[derive(Serialize)]
struct JsonPaper<'a> {
    id: Option<String>,
    title: &'a str,
    authors: &'a [String],
    published: Option<String>,
    tags: &'a [String],
    main_problem: Option<&'a str>,
    main_idea: Option<&'a str>,
    main_results: &'a [String],
    conclusion: Option<&'a str>,
    paper_ideas: &'a [String],
    patent_ideas: &'a [String],
    links: Links,
    timings: &'a PaperTimings,
    error: Option<&'a str>,
}

/// Renders a digest as pretty-printed JSON.
pub fn to_json(digest: &Digest) -> String {
    let doc = JsonDigest {
        date: digest.date.to_string(),
        model: &digest.model,
        lang: digest.lang.code(),
        generated_at: digest.generated_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
        papers: digest.papers.iter().map(paper).collect(),
    };
    // Serialising plain strings, numbers and vectors cannot fail; an empty object is a safe
    // fallback that keeps this function total.
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string()) + "\n"
}

fn paper(p: &PaperDigest) -> JsonPaper<'_> {
    const NONE: &[String] = &[];
    let s = p.summary.as_ref();
    JsonPaper {
        id: p.meta.arxiv_id.as_ref().map(ToString::to_string),
        title: &p.meta.title,
        authors: &p.meta.authors,
        published: p.meta.published.map(|d| d.to_string()),
        tags: s.map_or(NONE, |s| &s.tags),
        main_problem: s.map(|s| s.main_problem.as_str()),
        main_idea: s.map(|s| s.main_idea.as_str()),
        main_results: s.map_or(NONE, |s| &s.main_results),
        conclusion: s.map(|s| s.conclusion.as_str()),
        paper_ideas: s.map_or(NONE, |s| &s.paper_ideas),
        patent_ideas: s.map_or(NONE, |s| &s.patent_ideas),
        links: p.meta.links(),
        timings: &p.timings,
        error: p.error.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Summary;
    use crate::paper::{Lang, PaperMeta, PaperOrigin};
    use chrono::NaiveDate;

    #[test]
    fn json_has_the_documented_fields() {
        let digest = Digest {
            date: NaiveDate::from_ymd_opt(2026, 1, 9).unwrap(),
            model: "m".into(),
            lang: Lang::Vi,
            generated_at: NaiveDate::from_ymd_opt(2026, 1, 10)
                .unwrap()
                .and_hms_opt(1, 2, 3)
                .unwrap(),
            papers: vec![PaperDigest {
                meta: PaperMeta {
                    arxiv_id: Some("2601.05249v2".parse().unwrap()),
                    title: "T".into(),
                    authors: vec!["A".into()],
                    published: None,
                    github_repo: None,
                    origin: PaperOrigin::LocalFile { path: "p".into() },
                },
                summary: Some(Summary {
                    tags: vec!["x".into()],
                    ..Summary::default()
                }),
                error: None,
                timings: PaperTimings::default(),
            }],
        };
        let value: serde_json::Value = serde_json::from_str(&to_json(&digest)).unwrap();
        assert_eq!(value["date"], "2026-01-09");
        assert_eq!(value["lang"], "vi");
        let paper = &value["papers"][0];
        assert_eq!(paper["id"], "2601.05249v2");
        assert_eq!(paper["tags"][0], "x");
        assert_eq!(
            paper["links"]["arxiv_abs"],
            "https://arxiv.org/abs/2601.05249"
        );
        assert!(paper["links"]["github"].is_null());
        assert!(paper["error"].is_null());
        for key in [
            "main_problem",
            "main_idea",
            "main_results",
            "conclusion",
            "timings",
        ] {
            assert!(paper.get(key).is_some(), "missing {key}");
        }
    }
}
