//! Turns a finished [`Digest`](crate::digest::Digest) into the files a person reads: Markdown
//! in the reference format and JSON. Rendering is pure: a typed structure in, text out, so the
//! format never drifts between papers and never depends on what a model happened to write.

mod json;
mod labels;
mod markdown;

pub use json::to_json;
pub use labels::Labels;
pub use markdown::to_markdown;

use std::str::FromStr;

/// The output formats of a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown output format `{0}` (expected `md` or `json`)")]
pub struct FormatError(String);

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Json => "json",
        }
    }

    pub fn render(self, digest: &crate::digest::Digest) -> String {
        match self {
            Format::Markdown => to_markdown(digest),
            Format::Json => to_json(digest),
        }
    }
}

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            _ => Err(FormatError(s.to_string())),
        }
    }
}
