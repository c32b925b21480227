//! Turns a finished [`Digest`](crate::digest::Digest) into the files a person reads: Markdown
//! in the reference format, JSON, and a self-contained HTML page. Rendering is pure: a typed
//! structure in, text out, so the format never drifts between papers and never depends on
//! what a model happened to write.

mod html;
mod json;
mod labels;
mod markdown;

pub use html::to_html;
pub use json::to_json;
pub use labels::Labels;
pub use markdown::to_markdown;

use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The output formats of a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Markdown,
    Json,
    Html,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown output format `{0}` (expected `md`, `json` or `html`)")]
pub struct FormatError(String);

impl Format {
    pub const ALL: [Format; 3] = [Format::Markdown, Format::Json, Format::Html];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Json => "json",
            Format::Html => "html",
        }
    }

    pub fn render(self, digest: &crate::digest::Digest) -> String {
        match self {
            Format::Markdown => to_markdown(digest),
            Format::Json => to_json(digest),
            Format::Html => to_html(digest),
        }
    }

    /// The format a file name's extension names (`.md`, `.markdown`, `.json`, `.html`, `.htm`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "htm" => Some(Format::Html),
            other => other.parse().ok(),
        }
    }
}

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            _ => Err(FormatError(s.to_string())),
        }
    }
}

/// Where each format of a digest goes. With no formats asked, the one `out`'s extension names,
/// else Markdown. One format goes to `out` as given; several go beside it, one extension each
/// (`--out d/today.md --format md,html` writes `d/today.md` and `d/today.html`). Without `out`,
/// `digests/<date>.<ext>`. Formats named twice are written once.
pub fn output_paths(
    out: Option<&Path>,
    formats: &[Format],
    date: chrono::NaiveDate,
) -> Vec<(Format, PathBuf)> {
    let mut unique: Vec<Format> = Vec::new();
    for &format in formats {
        if !unique.contains(&format) {
            unique.push(format);
        }
    }
    if unique.is_empty() {
        unique.push(out.and_then(Format::from_path).unwrap_or(Format::Markdown));
    }
    match out {
        Some(out) if unique.len() == 1 => vec![(unique[0], out.to_path_buf())],
        Some(out) => {
            // Replace an extension that names a format; keep any other (`digest.2026` stays).
            let base = if Format::from_path(out).is_some() {
                out.with_extension("")
            } else {
                out.to_path_buf()
            };
            unique
                .into_iter()
                .map(|f| {
                    let mut name = base.as_os_str().to_owned();
                    name.push(".");
                    name.push(f.extension());
                    (f, PathBuf::from(name))
                })
                .collect()
        }
        None => unique
            .into_iter()
            .map(|f| {
                (
                    f,
                    PathBuf::from("digests").join(format!("{date}.{}", f.extension())),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_for_each_format() {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 9).unwrap();
        let p = |s: &str| PathBuf::from(s);
        type Case<'a> = (Option<&'a str>, Vec<Format>, Vec<(Format, &'a str)>);
        let cases: Vec<Case<'_>> = vec![
            (
                None,
                vec![],
                vec![(Format::Markdown, "digests/2026-01-09.md")],
            ),
            (
                None,
                vec![Format::Json],
                vec![(Format::Json, "digests/2026-01-09.json")],
            ),
            (
                Some("x/out.txt"),
                vec![Format::Html],
                vec![(Format::Html, "x/out.txt")],
            ),
            (
                Some("x/out.html"),
                vec![],
                vec![(Format::Html, "x/out.html")],
            ),
            (Some("x/out.htm"), vec![], vec![(Format::Html, "x/out.htm")]),
            (
                Some("x/out.md"),
                vec![Format::Markdown, Format::Json, Format::Html, Format::Json],
                vec![
                    (Format::Markdown, "x/out.md"),
                    (Format::Json, "x/out.json"),
                    (Format::Html, "x/out.html"),
                ],
            ),
            (
                Some("x/digest.2026"),
                vec![Format::Markdown, Format::Html],
                vec![
                    (Format::Markdown, "x/digest.2026.md"),
                    (Format::Html, "x/digest.2026.html"),
                ],
            ),
            (
                None,
                vec![Format::Html, Format::Markdown],
                vec![
                    (Format::Html, "digests/2026-01-09.html"),
                    (Format::Markdown, "digests/2026-01-09.md"),
                ],
            ),
        ];
        for (out, formats, expected) in cases {
            let got = output_paths(out.map(Path::new), &formats, date);
            let expected: Vec<(Format, PathBuf)> =
                expected.into_iter().map(|(f, s)| (f, p(s))).collect();
            assert_eq!(got, expected, "{out:?} {formats:?}");
        }
    }

    #[test]
    fn formats_parse() {
        assert_eq!("HTML".parse::<Format>().unwrap(), Format::Html);
        assert_eq!("markdown".parse::<Format>().unwrap(), Format::Markdown);
        let err = "pdf".parse::<Format>().unwrap_err().to_string();
        assert!(err.contains("`pdf`") && err.contains("html"), "{err}");
    }
}
