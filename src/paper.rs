//! The shared vocabulary of the pipeline: paper identifiers, paper metadata, the public links of
//! a paper and the output language. Every room speaks in these types; none of them does I/O.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// An arXiv identifier, new style (`2601.05242`, `2601.05242v2`) or old style
/// (`hep-th/9901001`, `math.GT/0309136v1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArxivId {
    base: String,
    version: Option<u32>,
}

/// What went wrong reading an arXiv identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "`{input}` is not an arXiv identifier (expected e.g. 2601.05242, 2601.05242v2 or hep-th/9901001)"
)]
pub struct ArxivIdError {
    pub input: String,
}

impl ArxivId {
    /// The identifier without its version, as Hugging Face and the reference digest use it.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn version(&self) -> Option<u32> {
        self.version
    }
}

impl FromStr for ArxivId {
    type Err = ArxivIdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || ArxivIdError {
            input: input.to_string(),
        };
        let trimmed = input.trim();
        let trimmed = trimmed
            .strip_prefix("arXiv:")
            .or_else(|| trimmed.strip_prefix("arxiv:"))
            .unwrap_or(trimmed);
        let (base, version) = match trimmed.rfind('v') {
            Some(at)
                if at + 1 < trimmed.len()
                    && trimmed[at + 1..].bytes().all(|b| b.is_ascii_digit())
                    && trimmed[..at]
                        .bytes()
                        .last()
                        .is_some_and(|b| b.is_ascii_digit()) =>
            {
                let version = trimmed[at + 1..].parse::<u32>().map_err(|_| err())?;
                (&trimmed[..at], Some(version))
            }
            _ => (trimmed, None),
        };
        if is_new_style(base) || is_old_style(base) {
            Ok(ArxivId {
                base: base.to_string(),
                version,
            })
        } else {
            Err(err())
        }
    }
}

/// `YYMM.NNNN` (2007-2014) or `YYMM.NNNNN` (2015 on), month 01-12.
fn is_new_style(s: &str) -> bool {
    let Some((yymm, number)) = s.split_once('.') else {
        return false;
    };
    let month_ok = yymm.len() == 4
        && yymm.bytes().all(|b| b.is_ascii_digit())
        && matches!(yymm[2..].parse::<u8>(), Ok(1..=12));
    month_ok && (4..=5).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit())
}

/// `archive(.SUBJ)?/YYMMNNN`, e.g. `hep-th/9901001`, `math.GT/0309136`.
fn is_old_style(s: &str) -> bool {
    let Some((archive, number)) = s.split_once('/') else {
        return false;
    };
    let archive_ok = !archive.is_empty()
        && archive.starts_with(|c: char| c.is_ascii_lowercase())
        && archive
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '.');
    archive_ok && number.len() == 7 && number.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for ArxivId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(v) => write!(f, "{}v{v}", self.base),
            None => f.write_str(&self.base),
        }
    }
}

/// Where a paper came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PaperOrigin {
    /// A PDF file given on the command line.
    LocalFile { path: PathBuf },
    /// Metadata from the Hugging Face papers API (a daily listing or a paper's page).
    HuggingFace,
    /// Metadata from the arXiv API (papers Hugging Face does not know, or when it is down).
    Arxiv,
}

/// What is known about a paper before any model reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperMeta {
    pub arxiv_id: Option<ArxivId>,
    pub title: String,
    pub authors: Vec<String>,
    pub published: Option<NaiveDate>,
    pub github_repo: Option<String>,
    pub origin: PaperOrigin,
}

impl PaperMeta {
    /// The public links of the paper. They always name the public hosts, whatever mirror served
    /// the data, because a reader of the digest follows them from anywhere.
    pub fn links(&self) -> Links {
        let id = self.arxiv_id.as_ref().map(ArxivId::base);
        Links {
            huggingface: id.map(|id| format!("https://huggingface.co/papers/{id}")),
            arxiv_abs: id.map(|id| format!("https://arxiv.org/abs/{id}")),
            pdf: id.map(|id| format!("https://arxiv.org/pdf/{id}.pdf")),
            github: self.github_repo.clone(),
        }
    }
}

/// The links table of one paper; `None` renders as `N/A`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Links {
    pub huggingface: Option<String>,
    pub arxiv_abs: Option<String>,
    pub pdf: Option<String>,
    pub github: Option<String>,
}

/// The language the digest is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Vietnamese prose and labels, English section headings, as in the reference digest.
    Vi,
    En,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown language `{0}` (expected `vi` or `en`)")]
pub struct LangError(String);

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
}

impl FromStr for Lang {
    type Err = LangError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vi" | "vie" | "vietnamese" => Ok(Lang::Vi),
            "en" | "eng" | "english" => Ok(Lang::En),
            _ => Err(LangError(s.to_string())),
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Expected = Option<(&'static str, Option<u32>)>;

    #[test]
    fn arxiv_ids_parse() {
        let cases: &[(&str, Expected)] = &[
            ("2601.05242", Some(("2601.05242", None))),
            ("2601.05249v2", Some(("2601.05249", Some(2)))),
            ("arXiv:2202.00666v5", Some(("2202.00666", Some(5)))),
            ("0704.0001", Some(("0704.0001", None))),
            ("hep-th/9901001", Some(("hep-th/9901001", None))),
            ("math.GT/0309136v1", Some(("math.GT/0309136", Some(1)))),
            ("2613.00001", None),
            ("2601.5", None),
            ("paper.pdf", None),
            ("hep-th/99", None),
            ("v2", None),
            ("", None),
        ];
        for (input, expected) in cases {
            let got = input.parse::<ArxivId>().ok();
            let got = got.as_ref().map(|id| (id.base(), id.version()));
            assert_eq!(got, *expected, "input {input:?}");
        }
    }

    #[test]
    fn arxiv_id_displays_with_version() {
        let id: ArxivId = "2601.05249v2".parse().unwrap();
        assert_eq!(id.to_string(), "2601.05249v2");
    }

    #[test]
    fn links_use_public_hosts_and_unversioned_ids() {
        let meta = PaperMeta {
            arxiv_id: Some("2601.05242v3".parse().unwrap()),
            title: "T".into(),
            authors: vec![],
            published: None,
            github_repo: None,
            origin: PaperOrigin::LocalFile {
                path: "x.pdf".into(),
            },
        };
        let links = meta.links();
        assert_eq!(
            links.huggingface.as_deref(),
            Some("https://huggingface.co/papers/2601.05242")
        );
        assert_eq!(
            links.pdf.as_deref(),
            Some("https://arxiv.org/pdf/2601.05242.pdf")
        );
        assert_eq!(links.github, None);
    }

    #[test]
    fn lang_parses() {
        assert_eq!("VI".parse::<Lang>().unwrap(), Lang::Vi);
        assert_eq!("english".parse::<Lang>().unwrap(), Lang::En);
        assert!("fr".parse::<Lang>().is_err());
    }
}
