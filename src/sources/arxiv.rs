//! The arXiv API as data: query and PDF URLs, and the Atom feed the query answers (including the
//! feed with a single entry titled `Error` that reports a bad request). No I/O here; `remote`
//! does the fetching, at arXiv's pace.

use chrono::NaiveDate;
use roxmltree::{Document, Node};

use crate::paper::{ArxivId, PaperMeta, PaperOrigin};

/// Where the API and the PDFs live unless `ARXIV_ENDPOINT` (or a flag) says otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://export.arxiv.org";

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
const ARXIV_NS: &str = "http://arxiv.org/schemas/atom";

/// The metadata of `ids` in one request.
pub fn query_url(endpoint: &str, ids: &[&ArxivId]) -> String {
    let list: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    format!(
        "{}/api/query?id_list={}&max_results={}",
        endpoint.trim_end_matches('/'),
        list.join(","),
        ids.len()
    )
}

/// The PDF of `id`: that version when it has one, else the latest.
pub fn pdf_url(endpoint: &str, id: &ArxivId) -> String {
    format!("{}/pdf/{id}", endpoint.trim_end_matches('/'))
}

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct AtomEntry {
    /// With the version the entry describes (the latest unless one was asked for).
    pub id: ArxivId,
    pub title: String,
    pub summary: Option<String>,
    pub authors: Vec<String>,
    /// The date of version 1.
    pub published: Option<NaiveDate>,
    pub comment: Option<String>,
}

/// What went wrong reading a feed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AtomError {
    #[error("malformed Atom XML: {0}")]
    Xml(String),
    #[error("the answer is not an Atom feed (root element `{0}`)")]
    NotAFeed(String),
    /// The API's own error report.
    #[error("arXiv API error: {0}")]
    Api(String),
}

/// Reads a feed into its entries. Entries without a readable id or title are skipped (logged);
/// a feed whose entry is titled `Error` is an [`AtomError::Api`] carrying arXiv's message.
pub fn parse_feed(xml: &str) -> Result<Vec<AtomEntry>, AtomError> {
    let doc = Document::parse(xml).map_err(|e| AtomError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "feed" {
        return Err(AtomError::NotAFeed(root.tag_name().name().to_string()));
    }
    let mut entries = Vec::new();
    for entry in root.children().filter(|n| is(n, ATOM_NS, "entry")) {
        let title = child_text(entry, ATOM_NS, "title").map(|t| one_line(&t));
        let summary = child_text(entry, ATOM_NS, "summary").map(|s| one_line(&s));
        if title.as_deref() == Some("Error") {
            return Err(AtomError::Api(
                summary.unwrap_or_else(|| "no details given".to_string()),
            ));
        }
        let raw_id = child_text(entry, ATOM_NS, "id").unwrap_or_default();
        let (Some(id), Some(title)) = (id_from_abs_url(&raw_id), title) else {
            tracing::warn!(id = %raw_id, "skipping an arXiv entry without a readable id or title");
            continue;
        };
        entries.push(AtomEntry {
            id,
            title,
            summary,
            authors: entry
                .children()
                .filter(|n| is(n, ATOM_NS, "author"))
                .filter_map(|a| child_text(a, ATOM_NS, "name"))
                .map(|n| one_line(&n))
                .filter(|n| !n.is_empty())
                .collect(),
            published: child_text(entry, ATOM_NS, "published")
                .and_then(|p| NaiveDate::parse_from_str(p.trim().get(..10)?, "%Y-%m-%d").ok()),
            comment: child_text(entry, ARXIV_NS, "comment").map(|c| one_line(&c)),
        });
    }
    Ok(entries)
}

impl AtomEntry {
    /// The digest's view of the entry. arXiv has no field for a code repository, so none.
    pub fn to_meta(&self) -> PaperMeta {
        PaperMeta {
            arxiv_id: Some(self.id.clone()),
            title: self.title.clone(),
            authors: self.authors.clone(),
            published: self.published,
            github_repo: None,
            origin: PaperOrigin::Arxiv,
        }
    }
}

/// `http://arxiv.org/abs/2601.05242v1` -> `2601.05242v1`; old style keeps its archive.
fn id_from_abs_url(url: &str) -> Option<ArxivId> {
    let (_, id) = url.trim().split_once("/abs/")?;
    id.parse().ok()
}

fn is(node: &Node, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

fn child_text(node: Node, ns: &str, name: &str) -> Option<String> {
    let child = node.children().find(|n| is(n, ns, name))?;
    Some(
        child
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect(),
    )
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title type="html">ArXiv Query: id_list=2601.05242,hep-th/9901001</title>
  <id>http://arxiv.org/api/x</id>
  <opensearch:totalResults>2</opensearch:totalResults>
  <entry>
    <id>http://arxiv.org/abs/2601.05242v2</id>
    <updated>2026-01-10T10:00:00Z</updated>
    <published>2026-01-08T18:59:24Z</published>
    <title>GDPO: Group reward-Decoupled Normalization Policy Optimization for
  Multi-reward RL Optimization</title>
    <summary>  As language models become
 more capable...</summary>
    <author><name>Shih-Yang Liu</name></author>
    <author><name>Xin Dong</name><arxiv:affiliation>NVIDIA</arxiv:affiliation></author>
    <arxiv:comment>Code: https://github.com/NVlabs/GDPO</arxiv:comment>
    <link href="http://arxiv.org/abs/2601.05242v2" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2601.05242v2" rel="related" type="application/pdf"/>
    <arxiv:primary_category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
  <entry>
    <id>http://arxiv.org/abs/hep-th/9901001v1</id>
    <published>1999-01-04T00:00:00Z</published>
    <title>An old paper</title>
    <author><name>A. Physicist</name></author>
  </entry>
  <entry><id>http://arxiv.org/abs/not-an-id</id><title>Broken</title></entry>
</feed>"#;

    const ERROR_FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <entry>
    <id>http://arxiv.org/api/errors#incorrect_id_format_for_1234</id>
    <title>Error</title>
    <summary>incorrect id format for 1234</summary>
    <author><name>arXiv api core</name></author>
  </entry>
</feed>"#;

    #[test]
    fn feed_entries_become_metadata() {
        let entries = parse_feed(FEED).unwrap();
        assert_eq!(entries.len(), 2);
        let gdpo = &entries[0];
        assert_eq!(gdpo.id.to_string(), "2601.05242v2");
        assert_eq!(
            gdpo.title,
            "GDPO: Group reward-Decoupled Normalization Policy Optimization for Multi-reward RL Optimization"
        );
        assert_eq!(
            gdpo.summary.as_deref(),
            Some("As language models become more capable...")
        );
        assert_eq!(gdpo.authors, ["Shih-Yang Liu", "Xin Dong"]);
        assert_eq!(
            gdpo.comment.as_deref(),
            Some("Code: https://github.com/NVlabs/GDPO")
        );
        let meta = gdpo.to_meta();
        assert_eq!(meta.published, NaiveDate::from_ymd_opt(2026, 1, 8));
        assert_eq!((meta.github_repo, meta.origin), (None, PaperOrigin::Arxiv));
        assert_eq!(entries[1].id.base(), "hep-th/9901001");
        assert_eq!(entries[1].id.version(), Some(1));
    }

    #[test]
    fn error_feeds_and_non_feeds_are_errors() {
        assert_eq!(
            parse_feed(ERROR_FEED),
            Err(AtomError::Api("incorrect id format for 1234".into()))
        );
        assert!(matches!(parse_feed("<feed"), Err(AtomError::Xml(_))));
        assert_eq!(
            parse_feed("<html><body>captcha</body></html>"),
            Err(AtomError::NotAFeed("html".into()))
        );
        let empty = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>q</title></feed>"#;
        assert_eq!(parse_feed(empty), Ok(vec![]));
    }

    #[test]
    fn urls_follow_the_api() {
        let a: ArxivId = "2601.05242".parse().unwrap();
        let b: ArxivId = "hep-th/9901001v1".parse().unwrap();
        assert_eq!(
            query_url("https://export.arxiv.org/", &[&a, &b]),
            "https://export.arxiv.org/api/query?id_list=2601.05242,hep-th/9901001v1&max_results=2"
        );
        assert_eq!(
            pdf_url("https://export.arxiv.org", &b),
            "https://export.arxiv.org/pdf/hep-th/9901001v1"
        );
    }
}
