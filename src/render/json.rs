//! The digest as JSON, for scripts and for comparing runs. The shape is flat and stable:
//! `{"date", "model", "lang", "generated_at", "papers": [{"id", "title", "authors",
//! "published", "tags", "main_problem", "main_idea", "main_results", "conclusion",
//! "paper_ideas", "patent_ideas", "links": {"huggingface", "arxiv_abs", "pdf", "github"},
//! "grounding": {"numbers", "grounded"}, "timings", "error"}]}`. A paper that failed keeps its
//! entry: metadata and links, `error` set, the summary fields and `grounding` null (lists
//! empty).

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
    grounding: Option<JsonGrounding>,
    timings: &'a PaperTimings,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonGrounding {
    numbers: usize,
    grounded: usize,
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
        grounding: p
            .summary
            .as_ref()
            .map(|_| p.grounding.unwrap_or_default())
            .map(|g| JsonGrounding {
                numbers: g.numbers,
                grounded: g.grounded,
            }),
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

    fn meta(id: &str, title: &str) -> PaperMeta {
        PaperMeta {
            arxiv_id: Some(id.parse().unwrap()),
            title: title.into(),
            authors: vec!["A".into()],
            published: None,
            github_repo: None,
            origin: PaperOrigin::LocalFile { path: "p".into() },
        }
    }

    fn keys(value: &serde_json::Value) -> Vec<String> {
        let mut keys: Vec<String> = value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn json_has_exactly_the_documented_fields() {
        let digest = Digest {
            date: NaiveDate::from_ymd_opt(2026, 1, 9).unwrap(),
            model: "m".into(),
            lang: Lang::Vi,
            generated_at: NaiveDate::from_ymd_opt(2026, 1, 10)
                .unwrap()
                .and_hms_opt(1, 2, 3)
                .unwrap(),
            papers: vec![
                PaperDigest {
                    meta: meta("2601.05249v2", "T"),
                    summary: Some(Summary {
                        tags: vec!["x".into()],
                        main_results: vec!["6.3% better".into()],
                        ..Summary::default()
                    }),
                    error: None,
                    timings: PaperTimings::default(),
                    grounding: Some(crate::digest::Grounding {
                        numbers: 4,
                        grounded: 3,
                        regenerated: 1,
                    }),
                    language_fidelity: None,
                },
                PaperDigest {
                    meta: meta("2601.05242", "Failed"),
                    summary: None,
                    error: Some("no PDF".into()),
                    timings: PaperTimings::default(),
                    grounding: None,
                    language_fidelity: None,
                },
            ],
        };
        let value: serde_json::Value = serde_json::from_str(&to_json(&digest)).unwrap();
        assert_eq!(
            keys(&value),
            sorted(&["date", "model", "lang", "generated_at", "papers"])
        );
        assert_eq!(value["date"], "2026-01-09");
        assert_eq!(value["lang"], "vi");
        assert_eq!(value["generated_at"], "2026-01-10T01:02:03");
        let paper_keys = sorted(&[
            "id",
            "title",
            "authors",
            "published",
            "tags",
            "main_problem",
            "main_idea",
            "main_results",
            "conclusion",
            "paper_ideas",
            "patent_ideas",
            "links",
            "grounding",
            "timings",
            "error",
        ]);
        let paper = &value["papers"][0];
        assert_eq!(keys(paper), paper_keys);
        assert_eq!(
            keys(&paper["links"]),
            sorted(&["huggingface", "arxiv_abs", "pdf", "github"])
        );
        assert_eq!(keys(&paper["grounding"]), sorted(&["numbers", "grounded"]));
        assert_eq!(paper["grounding"]["numbers"], 4);
        assert_eq!(paper["grounding"]["grounded"], 3);
        assert_eq!(paper["id"], "2601.05249v2");
        assert_eq!(paper["tags"][0], "x");
        assert_eq!(paper["main_results"][0], "6.3% better");
        assert_eq!(
            paper["links"]["arxiv_abs"],
            "https://arxiv.org/abs/2601.05249"
        );
        assert!(paper["links"]["github"].is_null());
        assert!(paper["error"].is_null());
        assert!(paper["timings"]["generated_tokens"].is_number());

        let failed = &value["papers"][1];
        assert_eq!(keys(failed), paper_keys, "a failed paper keeps its entry");
        assert_eq!(failed["error"], "no PDF");
        assert_eq!(failed["title"], "Failed");
        assert!(failed["main_problem"].is_null() && failed["grounding"].is_null());
        assert_eq!(failed["main_results"], serde_json::json!([]));
        assert_eq!(
            failed["links"]["pdf"],
            "https://arxiv.org/pdf/2601.05242.pdf"
        );
    }
}
