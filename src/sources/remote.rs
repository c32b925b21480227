//! Papers from the network, through the cache: a day's Hugging Face listing, one paper's metadata
//! (Hugging Face, else the arXiv API) and PDFs from arXiv. Everything fetched is kept in the
//! [`Cache`], so a second run downloads no PDF it has, and an offline run works from the cache
//! and names what is missing. Failures are per paper: one bad paper never fails the batch.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::net::{ARXIV_MIN_INTERVAL, HttpClient, NetError};
use crate::paper::{ArxivId, PaperMeta, PaperOrigin};
use crate::sources::{arxiv, hf_daily};
use crate::store::{Cache, StoreError};

/// Where the two services are. The caller resolves them (environment, config, flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `HF_ENDPOINT`.
    pub hf: String,
    /// `ARXIV_ENDPOINT`: both the query API and the PDFs.
    pub arxiv: String,
    /// Minimum interval between requests to the arXiv host (arXiv asks for 3 s).
    pub arxiv_interval: Duration,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            hf: hf_daily::DEFAULT_ENDPOINT.to_string(),
            arxiv: arxiv::DEFAULT_ENDPOINT.to_string(),
            arxiv_interval: ARXIV_MIN_INTERVAL,
        }
    }
}

/// A paper's metadata as the services give it, with its abstract.
#[derive(Debug, Clone, PartialEq)]
pub struct RemotePaper {
    pub meta: PaperMeta,
    pub summary: Option<String>,
}

/// One paper of a fetch: its metadata (only the id when the metadata could not be had) and its
/// cached PDF, or what went wrong, naming the paper.
#[derive(Debug)]
pub struct FetchedPaper {
    pub paper: RemotePaper,
    pub pdf: Result<PathBuf, SourceError>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("Hugging Face rejected the date {date}: {source}")]
    InvalidDate { date: NaiveDate, source: NetError },
    #[error("cannot list the papers of {date} from Hugging Face: {source}")]
    Listing { date: NaiveDate, source: NetError },
    #[error("the Hugging Face listing of {date} is not valid ({url}): {reason}")]
    BadListing {
        date: NaiveDate,
        url: String,
        reason: String,
    },
    #[error("no metadata for {id}: Hugging Face: {hf}; arXiv: {arxiv}")]
    Metadata {
        id: String,
        hf: String,
        arxiv: String,
    },
    #[error("`{title}` has no arXiv id, so there is no PDF to fetch")]
    NoArxivId { title: String },
    #[error("cannot download the PDF of {id}: {source}")]
    Pdf { id: String, source: NetError },
    #[error("offline, and {what} is not in the cache (looked for {})", path.display())]
    NotCached { what: String, path: PathBuf },
    #[error(transparent)]
    Cache(#[from] StoreError),
    #[error("not fetched: the run was stopped")]
    Stopped,
}

/// The remote sources, the client that reaches them and the cache that keeps what they gave.
pub struct Remote {
    client: HttpClient,
    cache: Cache,
    endpoints: Endpoints,
}

impl Remote {
    /// Also sets the client's pacing for the arXiv host to `endpoints.arxiv_interval`.
    pub fn new(client: HttpClient, cache: Cache, endpoints: Endpoints) -> Remote {
        if let Some(host) = host_key(&endpoints.arxiv) {
            client.set_host_interval(&host, endpoints.arxiv_interval);
        }
        Remote {
            client,
            cache,
            endpoints,
        }
    }

    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The papers Hugging Face featured on `date`, in its order; `[]` for a day without any.
    /// Online the listing is always fetched afresh (a day's list grows) and cached; when that
    /// fails for another reason than a rejected date, a cached listing is used if there is one.
    /// Offline it comes from the cache.
    pub fn list_day(&self, date: NaiveDate) -> Result<Vec<RemotePaper>, SourceError> {
        let path = self.cache.day_path(date);
        if self.client.is_offline() {
            return self.cached_day(date)?.ok_or(SourceError::NotCached {
                what: format!("the listing of {date}"),
                path,
            });
        }
        match self.fetch_listing(date) {
            Ok(papers) => {
                let record = DayRecord {
                    format: RECORD_FORMAT,
                    date: date.to_string(),
                    papers: papers.iter().filter_map(PaperRecord::from_paper).collect(),
                };
                if let Err(e) = self.cache.write(&path, &to_json(&record)) {
                    tracing::warn!(%e, "cannot cache the listing");
                }
                Ok(papers)
            }
            Err(e @ SourceError::InvalidDate { .. }) => Err(e),
            Err(e) => match self.cached_day(date)? {
                Some(papers) => {
                    tracing::warn!(%e, "using the cached listing of {date}");
                    Ok(papers)
                }
                None => Err(e),
            },
        }
    }

    /// The metadata of one paper: Hugging Face's, else (unknown there, unreachable, or an odd
    /// answer) the arXiv API's, else a cached copy. A versioned `id` keeps its version. Offline
    /// it comes from the cache.
    pub fn paper(&self, id: &ArxivId) -> Result<RemotePaper, SourceError> {
        if self.client.is_offline() {
            return self.cached_paper(id)?.ok_or(SourceError::NotCached {
                what: format!("the metadata of {id}"),
                path: self.cache.meta_path(id),
            });
        }
        let hf = match self.paper_from_hf(id) {
            Ok(paper) => return Ok(self.keep(with_version(paper, id))),
            Err(e) => e,
        };
        tracing::info!(%id, reason = %hf, "asking arXiv for the metadata");
        let arxiv = match self.paper_from_arxiv(id) {
            Ok(paper) => return Ok(self.keep(with_version(paper, id))),
            Err(e) => e,
        };
        if let Some(cached) = self.cached_paper(id)? {
            tracing::warn!(%id, %hf, %arxiv, "using cached metadata");
            return Ok(cached);
        }
        Err(SourceError::Metadata {
            id: id.to_string(),
            hf,
            arxiv,
        })
    }

    /// The cached PDF of `paper`, downloaded first if needed. A versioned id needs exactly that
    /// version; an id without version is satisfied by any cached version (else it is fetched as
    /// `latest`). Offline a missing PDF is an error naming it.
    pub fn pdf(&self, paper: &RemotePaper) -> Result<PathBuf, SourceError> {
        let id = paper
            .meta
            .arxiv_id
            .as_ref()
            .ok_or_else(|| SourceError::NoArxivId {
                title: paper.meta.title.clone(),
            })?;
        if let Some(found) = self.cache.find_pdf(id) {
            return Ok(found);
        }
        let path = self.cache.pdf_path(id);
        if self.client.is_offline() {
            return Err(SourceError::NotCached {
                what: format!("the PDF of {id}"),
                path,
            });
        }
        let _lock = self.cache.lock(&path)?;
        // Another run may have fetched it while we waited for the lock.
        if let Some(found) = self.cache.find_pdf(id) {
            return Ok(found);
        }
        let url = arxiv::pdf_url(&self.endpoints.arxiv, id);
        self.client
            .download_pdf(&url, &path)
            .map_err(|source| SourceError::Pdf {
                id: id.to_string(),
                source,
            })?;
        Ok(path)
    }

    /// Lists `date` and fetches every paper's PDF. Only the listing can fail as a whole.
    pub fn fetch_day(&self, date: NaiveDate) -> Result<Vec<FetchedPaper>, SourceError> {
        Ok(self.fetch_pdfs(self.list_day(date)?))
    }

    /// Fetches the metadata and the PDF of each id, in order, each with its own outcome.
    pub fn fetch_ids(&self, ids: &[ArxivId]) -> Vec<FetchedPaper> {
        let mut found: Vec<(RemotePaper, Option<SourceError>)> = ids
            .iter()
            .map(|id| match self.paper(id) {
                Ok(paper) => (paper, None),
                Err(e) => (placeholder(id), Some(e)),
            })
            .collect();
        self.resolve_versions(
            found
                .iter_mut()
                .filter(|(_, failed)| failed.is_none())
                .map(|(paper, _)| paper),
        );
        let bar = self.papers_bar(found.len());
        let fetched = found
            .into_iter()
            .map(|(paper, failed)| match failed {
                None => self.fetch_one(paper, &bar),
                Some(e) => {
                    bar.inc(1);
                    FetchedPaper { paper, pdf: Err(e) }
                }
            })
            .collect();
        bar.finish_and_clear();
        fetched
    }

    /// Fetches the PDF of each paper, each with its own outcome. Papers without a version are
    /// first given their current version by one arXiv query (per 100 papers), so that a new
    /// version is a new cache entry; if that query fails, any cached version serves, else `latest`.
    pub fn fetch_pdfs(&self, mut papers: Vec<RemotePaper>) -> Vec<FetchedPaper> {
        self.resolve_versions(papers.iter_mut());
        let bar = self.papers_bar(papers.len());
        let fetched = papers
            .into_iter()
            .map(|paper| self.fetch_one(paper, &bar))
            .collect();
        bar.finish_and_clear();
        fetched
    }

    fn fetch_one(&self, paper: RemotePaper, bar: &indicatif::ProgressBar) -> FetchedPaper {
        if let Some(id) = &paper.meta.arxiv_id {
            bar.set_message(id.to_string());
        }
        if crate::resume::stop_requested() {
            bar.inc(1);
            return FetchedPaper {
                paper,
                pdf: Err(SourceError::Stopped),
            };
        }
        if !self.client.is_offline() {
            self.store_paper(&paper);
        }
        let pdf = self.pdf(&paper);
        if let Err(e) = &pdf {
            tracing::warn!(%e, "paper failed");
        }
        bar.inc(1);
        FetchedPaper { paper, pdf }
    }

    fn fetch_listing(&self, date: NaiveDate) -> Result<Vec<RemotePaper>, SourceError> {
        let spinner = self.client.progress_bar(None, "{spinner} {msg}");
        let mut papers = Vec::new();
        let mut seen = HashSet::new();
        for page in 0..MAX_PAGES {
            spinner.set_message(format!(
                "listing {date}: page {}, {} papers",
                page + 1,
                papers.len()
            ));
            let url = hf_daily::day_url(&self.endpoints.hf, date, page);
            let text = self.client.get_text(&url).map_err(|source| {
                if source.status() == Some(400) {
                    SourceError::InvalidDate { date, source }
                } else {
                    SourceError::Listing { date, source }
                }
            })?;
            let parsed = hf_daily::parse_day_page(&text).map_err(|e| SourceError::BadListing {
                date,
                url: url.clone(),
                reason: e.to_string(),
            })?;
            for reason in &parsed.skipped {
                tracing::warn!(%url, %reason, "skipping an unreadable listing item");
            }
            // A server that ignores `p` would send page 0 forever: stop when nothing is new.
            let mut any_new = false;
            for hf in parsed.papers {
                if !seen.insert(hf.id.clone()) {
                    continue;
                }
                any_new = true;
                match hf.to_meta() {
                    Ok(meta) => papers.push(RemotePaper {
                        meta,
                        summary: hf.summary,
                    }),
                    Err(e) => tracing::warn!(%url, %e, "skipping a listed paper"),
                }
            }
            if !any_new {
                break;
            }
        }
        spinner.finish_and_clear();
        tracing::info!(%date, papers = papers.len(), "listed");
        Ok(papers)
    }

    fn paper_from_hf(&self, id: &ArxivId) -> Result<RemotePaper, String> {
        let url = hf_daily::paper_url(&self.endpoints.hf, id);
        let text = self.client.get_text(&url).map_err(|e| e.to_string())?;
        let hf = hf_daily::parse_paper(&text).map_err(|e| format!("{url}: {e}"))?;
        let meta = hf.to_meta().map_err(|e| format!("{url}: {e}"))?;
        Ok(RemotePaper {
            meta,
            summary: hf.summary,
        })
    }

    fn paper_from_arxiv(&self, id: &ArxivId) -> Result<RemotePaper, String> {
        let url = arxiv::query_url(&self.endpoints.arxiv, &[id]);
        let text = self.client.get_text(&url).map_err(|e| e.to_string())?;
        let entries = arxiv::parse_feed(&text).map_err(|e| format!("{url}: {e}"))?;
        let entry = entries
            .into_iter()
            .find(|e| e.id.base() == id.base())
            .ok_or_else(|| format!("{url}: no entry for {id}"))?;
        Ok(RemotePaper {
            meta: entry.to_meta(),
            summary: entry.summary,
        })
    }

    /// Gives papers without a version their current one, from the arXiv API.
    fn resolve_versions<'a>(&self, papers: impl IntoIterator<Item = &'a mut RemotePaper>) {
        if self.client.is_offline() {
            return;
        }
        let mut unversioned: Vec<&mut RemotePaper> = papers
            .into_iter()
            .filter(|p| {
                p.meta
                    .arxiv_id
                    .as_ref()
                    .is_some_and(|id| id.version().is_none())
            })
            .collect();
        let mut current: HashMap<String, ArxivId> = HashMap::new();
        for chunk in unversioned.chunks(MAX_IDS_PER_QUERY) {
            let ids: Vec<&ArxivId> = chunk
                .iter()
                .filter_map(|p| p.meta.arxiv_id.as_ref())
                .collect();
            let url = arxiv::query_url(&self.endpoints.arxiv, &ids);
            let answer = self
                .client
                .get_text(&url)
                .map_err(|e| e.to_string())
                .and_then(|text| arxiv::parse_feed(&text).map_err(|e| format!("{url}: {e}")));
            match answer {
                Ok(entries) => current.extend(
                    entries
                        .into_iter()
                        .map(|entry| (entry.id.base().to_string(), entry.id)),
                ),
                Err(e) => tracing::warn!(%e, "cannot learn the current versions from arXiv"),
            }
        }
        for paper in unversioned.iter_mut() {
            let base = paper.meta.arxiv_id.as_ref().map(|id| id.base().to_string());
            if let Some(id) = base.and_then(|base| current.get(&base)) {
                paper.meta.arxiv_id = Some(id.clone());
            }
        }
    }

    fn papers_bar(&self, len: usize) -> indicatif::ProgressBar {
        self.client.progress_bar(
            Some(len as u64),
            "PDFs {pos}/{len} {bar:30} {msg} [{elapsed}]",
        )
    }

    /// Caches a paper's metadata and hands it back.
    fn keep(&self, paper: RemotePaper) -> RemotePaper {
        self.store_paper(&paper);
        paper
    }

    fn store_paper(&self, paper: &RemotePaper) {
        let (Some(id), Some(record)) = (&paper.meta.arxiv_id, PaperRecord::from_paper(paper))
        else {
            return;
        };
        let record = MetaRecord {
            format: RECORD_FORMAT,
            paper: record,
        };
        if let Err(e) = self
            .cache
            .write(&self.cache.meta_path(id), &to_json(&record))
        {
            tracing::warn!(%id, %e, "cannot cache the metadata");
        }
    }

    fn cached_day(&self, date: NaiveDate) -> Result<Option<Vec<RemotePaper>>, SourceError> {
        let path = self.cache.day_path(date);
        let Some(bytes) = self.cache.read(&path)? else {
            return Ok(None);
        };
        match serde_json::from_slice::<DayRecord>(&bytes) {
            Ok(record) if record.format == RECORD_FORMAT => Ok(Some(
                record
                    .papers
                    .into_iter()
                    .filter_map(PaperRecord::into_paper)
                    .collect(),
            )),
            _ => {
                tracing::warn!(path = %path.display(), "ignoring an unreadable cached listing");
                Ok(None)
            }
        }
    }

    fn cached_paper(&self, id: &ArxivId) -> Result<Option<RemotePaper>, SourceError> {
        let path = self.cache.meta_path(id);
        let Some(bytes) = self.cache.read(&path)? else {
            return Ok(None);
        };
        let paper = serde_json::from_slice::<MetaRecord>(&bytes)
            .ok()
            .filter(|r| r.format == RECORD_FORMAT)
            .and_then(|r| r.paper.into_paper());
        if paper.is_none() {
            tracing::warn!(path = %path.display(), "ignoring unreadable cached metadata");
        }
        Ok(paper.map(|p| with_version(p, id)))
    }
}

/// Bump when the cached records change shape; older records then read as missing.
const RECORD_FORMAT: u32 = 1;
/// At 100 papers a page, no real day comes near this; it only bounds a misbehaving server.
const MAX_PAGES: u32 = 50;
const MAX_IDS_PER_QUERY: usize = 100;

#[derive(Serialize, Deserialize)]
struct DayRecord {
    format: u32,
    date: String,
    papers: Vec<PaperRecord>,
}

#[derive(Serialize, Deserialize)]
struct MetaRecord {
    format: u32,
    paper: PaperRecord,
}

/// A paper as cached: plain strings, so the cache format does not follow internal types.
#[derive(Serialize, Deserialize)]
struct PaperRecord {
    id: String,
    title: String,
    authors: Vec<String>,
    published: Option<String>,
    github_repo: Option<String>,
    summary: Option<String>,
    source: String,
}

impl PaperRecord {
    fn from_paper(paper: &RemotePaper) -> Option<PaperRecord> {
        let meta = &paper.meta;
        Some(PaperRecord {
            id: meta.arxiv_id.as_ref()?.to_string(),
            title: meta.title.clone(),
            authors: meta.authors.clone(),
            published: meta.published.map(|d| d.to_string()),
            github_repo: meta.github_repo.clone(),
            summary: paper.summary.clone(),
            source: match meta.origin {
                PaperOrigin::Arxiv => "arxiv",
                _ => "hugging_face",
            }
            .to_string(),
        })
    }

    fn into_paper(self) -> Option<RemotePaper> {
        Some(RemotePaper {
            meta: PaperMeta {
                arxiv_id: Some(self.id.parse().ok()?),
                title: self.title,
                authors: self.authors,
                published: self
                    .published
                    .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()),
                github_repo: self.github_repo,
                origin: match self.source.as_str() {
                    "arxiv" => PaperOrigin::Arxiv,
                    _ => PaperOrigin::HuggingFace,
                },
            },
            summary: self.summary,
        })
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings always serialize; an empty entry would read as unreadable.
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// The paper with the version the caller asked for, if it asked for one.
fn with_version(mut paper: RemotePaper, asked: &ArxivId) -> RemotePaper {
    if asked.version().is_some() {
        paper.meta.arxiv_id = Some(asked.clone());
    }
    paper
}

/// What stands for a paper whose metadata could not be had: its id.
fn placeholder(id: &ArxivId) -> RemotePaper {
    RemotePaper {
        meta: PaperMeta {
            arxiv_id: Some(id.clone()),
            title: format!("arXiv:{id}"),
            authors: Vec::new(),
            published: None,
            github_repo: None,
            origin: PaperOrigin::Arxiv,
        },
        summary: None,
    }
}

/// The pacing key of an endpoint: `host`, or `host:port` when the port is explicit.
fn host_key(endpoint: &str) -> Option<String> {
    let url = reqwest::Url::parse(endpoint).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_keys_follow_the_endpoint() {
        assert_eq!(
            host_key("https://export.arxiv.org").as_deref(),
            Some("export.arxiv.org")
        );
        assert_eq!(
            host_key("http://127.0.0.1:8080/").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(host_key("not a url"), None);
    }

    #[test]
    fn records_round_trip() {
        let paper = RemotePaper {
            meta: PaperMeta {
                arxiv_id: Some("hep-th/9901001v2".parse().unwrap()),
                title: "T".into(),
                authors: vec!["A".into()],
                published: NaiveDate::from_ymd_opt(1999, 1, 4),
                github_repo: Some("https://github.com/x/y".into()),
                origin: PaperOrigin::Arxiv,
            },
            summary: Some("S".into()),
        };
        let back = PaperRecord::from_paper(&paper).unwrap().into_paper();
        assert_eq!(back.as_ref(), Some(&paper));
        let versioned = with_version(paper.clone(), &"hep-th/9901001v1".parse().unwrap());
        assert_eq!(
            versioned.meta.arxiv_id.unwrap().to_string(),
            "hep-th/9901001v1"
        );
        assert_eq!(
            placeholder(&"2601.05242".parse().unwrap()).meta.title,
            "arXiv:2601.05242"
        );
    }
}
