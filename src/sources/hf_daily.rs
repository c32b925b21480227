//! The Hugging Face papers API as data: the URLs of a day's listing and of one paper, and the JSON
//! they answer, read leniently (unknown fields ignored, optional fields absent or null). No I/O
//! here; `remote` does the fetching.

use chrono::NaiveDate;
use serde::Deserialize;

use crate::paper::{ArxivId, PaperMeta, PaperOrigin};

/// Where the API lives unless `HF_ENDPOINT` (or a flag) says otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The largest page the listing serves.
pub const PAGE_LIMIT: u32 = 100;

/// Page `page` (from 0) of the papers featured on `date`.
pub fn day_url(endpoint: &str, date: NaiveDate, page: u32) -> String {
    format!(
        "{}/api/daily_papers?date={}&limit={PAGE_LIMIT}&p={page}",
        endpoint.trim_end_matches('/'),
        date.format("%Y-%m-%d")
    )
}

/// One paper's record, by its id without version (the form Hugging Face keys papers by).
pub fn paper_url(endpoint: &str, id: &ArxivId) -> String {
    format!(
        "{}/api/papers/{}",
        endpoint.trim_end_matches('/'),
        id.base()
    )
}

/// A paper as Hugging Face describes it: the `paper` object of a listing item, or the whole
/// answer of `/api/papers/{id}`. Only what the digest uses is read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HfPaper {
    pub id: String,
    pub title: Option<String>,
    /// The abstract.
    pub summary: Option<String>,
    pub authors: Option<Vec<HfAuthor>>,
    /// arXiv publication time, e.g. `2026-01-08T18:59:24.000Z`.
    #[serde(rename = "publishedAt")]
    pub published_at: Option<String>,
    #[serde(rename = "githubRepo")]
    pub github_repo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HfAuthor {
    pub name: Option<String>,
}

/// What went wrong reading an answer of the API.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HfError {
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("expected a JSON array of papers, got {0}")]
    NotAList(&'static str),
    #[error("paper id `{0}` is not an arXiv id")]
    BadId(String),
}

/// One page of a day's listing. Items that cannot be read are skipped, each with its reason, so
/// one odd item does not lose the day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayPage {
    pub papers: Vec<HfPaper>,
    pub skipped: Vec<String>,
}

/// Reads a listing page: a JSON array of items, each with a `paper` object. A missing
/// `paper.title` or `paper.summary` is taken from the item's top level.
pub fn parse_day_page(json: &str) -> Result<DayPage, HfError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| HfError::Json(e.to_string()))?;
    let serde_json::Value::Array(items) = value else {
        return Err(HfError::NotAList(json_kind(&value)));
    };
    let mut page = DayPage {
        papers: Vec::with_capacity(items.len()),
        skipped: Vec::new(),
    };
    for (index, item) in items.into_iter().enumerate() {
        match serde_json::from_value::<DailyItem>(item) {
            Ok(item) => {
                let mut paper = item.paper;
                paper.title = paper.title.or(item.title);
                paper.summary = paper.summary.or(item.summary);
                page.papers.push(paper);
            }
            Err(e) => page.skipped.push(format!("item {index}: {e}")),
        }
    }
    Ok(page)
}

/// Reads the answer of `/api/papers/{id}`.
pub fn parse_paper(json: &str) -> Result<HfPaper, HfError> {
    serde_json::from_str(json).map_err(|e| HfError::Json(e.to_string()))
}

impl HfPaper {
    /// The digest's view of the paper: published is the date part of `publishedAt`; the GitHub
    /// repository is `githubRepo` when it is a non-empty string.
    pub fn to_meta(&self) -> Result<PaperMeta, HfError> {
        let arxiv_id = self
            .id
            .parse::<ArxivId>()
            .map_err(|_| HfError::BadId(self.id.clone()))?;
        Ok(PaperMeta {
            title: self
                .title
                .as_deref()
                .map(one_line)
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| format!("arXiv:{}", arxiv_id.base())),
            arxiv_id: Some(arxiv_id),
            authors: self
                .authors
                .iter()
                .flatten()
                .filter_map(|a| a.name.as_deref().map(one_line))
                .filter(|n| !n.is_empty())
                .collect(),
            published: self.published_at.as_deref().and_then(date_part),
            github_repo: self
                .github_repo
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            origin: PaperOrigin::HuggingFace,
        })
    }
}

#[derive(Deserialize)]
struct DailyItem {
    paper: HfPaper,
    title: Option<String>,
    summary: Option<String>,
}

/// `2026-01-08T18:59:24.000Z` -> 2026-01-08 (the date as written, in UTC).
fn date_part(timestamp: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(timestamp.trim().get(..10)?, "%Y-%m-%d").ok()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"[
      {"paper": {"id": "2601.05242", "title": "GDPO: Group reward-Decoupled\n  Normalization Policy Optimization",
                 "summary": "We propose GDPO.", "upvotes": 42, "ai_keywords": ["RL"],
                 "authors": [{"_id": "a1", "name": "Shih-Yang Liu", "hidden": false},
                             {"_id": "a2", "name": "Xin Dong", "hidden": true, "user": {"x": 1}}],
                 "publishedAt": "2026-01-08T18:59:24.000Z", "submittedOnDailyAt": "2026-01-09T01:02:03.000Z",
                 "githubRepo": "https://github.com/NVlabs/GDPO", "githubStars": 120, "withdrawnAt": null},
       "title": "top-level title", "numComments": 3, "thumbnail": "t.png",
       "submittedBy": {"name": "x", "fullname": "X"}},
      {"paper": {"id": "2601.05106", "authors": null, "publishedAt": null, "githubRepo": null,
                 "ai_summary": null},
       "title": "Token-Level LLM Collaboration via FusionRoute", "summary": "Top-level abstract."},
      {"paper": {"title": "no id"}},
      {"paper": {"id": "2601.04890", "title": "Learnable Multipliers", "githubRepo": " ",
                 "publishedAt": "garbage"}}
    ]"#;

    #[test]
    fn listing_items_are_read_leniently() {
        let page = parse_day_page(PAGE).unwrap();
        assert_eq!(page.papers.len(), 3);
        assert_eq!(page.skipped.len(), 1);
        assert!(
            page.skipped[0].starts_with("item 2: missing field `id`"),
            "{:?}",
            page.skipped
        );

        let gdpo = page.papers[0].to_meta().unwrap();
        assert_eq!(
            gdpo.title,
            "GDPO: Group reward-Decoupled Normalization Policy Optimization"
        );
        assert_eq!(gdpo.authors, ["Shih-Yang Liu", "Xin Dong"]);
        assert_eq!(gdpo.published, NaiveDate::from_ymd_opt(2026, 1, 8));
        assert_eq!(
            gdpo.github_repo.as_deref(),
            Some("https://github.com/NVlabs/GDPO")
        );
        assert_eq!(gdpo.origin, PaperOrigin::HuggingFace);
        assert_eq!(page.papers[0].summary.as_deref(), Some("We propose GDPO."));

        let fusion = &page.papers[1];
        assert_eq!(fusion.summary.as_deref(), Some("Top-level abstract."));
        let fusion = fusion.to_meta().unwrap();
        assert_eq!(
            fusion.title,
            "Token-Level LLM Collaboration via FusionRoute"
        );
        assert!(fusion.authors.is_empty());
        assert_eq!((fusion.published, fusion.github_repo), (None, None));

        let lm = page.papers[2].to_meta().unwrap();
        assert_eq!((lm.published, lm.github_repo), (None, None));
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(matches!(parse_day_page("[{"), Err(HfError::Json(_))));
        assert_eq!(
            parse_day_page(r#"{"error": "x"}"#),
            Err(HfError::NotAList("an object"))
        );
        assert_eq!(parse_day_page("[]").unwrap().papers, []);
        let bad = parse_paper(r#"{"id": "not-an-id", "title": "T"}"#).unwrap();
        assert_eq!(bad.to_meta(), Err(HfError::BadId("not-an-id".into())));
    }

    #[test]
    fn urls_follow_the_api() {
        let date = NaiveDate::from_ymd_opt(2026, 1, 9).unwrap();
        assert_eq!(
            day_url("https://huggingface.co/", date, 2),
            "https://huggingface.co/api/daily_papers?date=2026-01-09&limit=100&p=2"
        );
        let id: ArxivId = "2601.05242v2".parse().unwrap();
        assert_eq!(
            paper_url("http://127.0.0.1:8080", &id),
            "http://127.0.0.1:8080/api/papers/2601.05242"
        );
    }
}
