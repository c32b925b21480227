//! Papers given as local PDF files or folders of them. Metadata comes from the PDF itself:
//! title and authors from the info dictionary or page 1, the arXiv id and date from the arXiv
//! stamp in the margin of page 1 when there is one.

use std::path::{Path, PathBuf};

use crate::paper::{ArxivId, PaperMeta, PaperOrigin};
use crate::pdf::Document;

#[derive(Debug, thiserror::Error)]
pub enum LocalSourceError {
    #[error("{path}: no such file or folder")]
    Missing { path: PathBuf },
    #[error("cannot list folder {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("folder {path} holds no PDF files")]
    EmptyFolder { path: PathBuf },
}

/// Expands the inputs into PDF files: a folder gives its `*.pdf` files (not recursive), sorted
/// by name; a file is taken as given. Duplicates are dropped, order is kept.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, LocalSourceError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input).map_err(|source| LocalSourceError::ReadDir {
                path: input.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && has_pdf_extension(p))
                .collect();
            if found.is_empty() {
                return Err(LocalSourceError::EmptyFolder {
                    path: input.clone(),
                });
            }
            found.sort();
            files.extend(found);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            return Err(LocalSourceError::Missing {
                path: input.clone(),
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
    Ok(files)
}

/// The metadata of a local paper, from its extracted document. The title falls back to the
/// file name, the published date to the PDF's creation date.
pub fn meta_from_document(path: &Path, document: &Document) -> PaperMeta {
    PaperMeta {
        arxiv_id: document
            .arxiv_id
            .as_deref()
            .and_then(|id| id.parse::<ArxivId>().ok()),
        title: document
            .title
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| file_title(path)),
        authors: document.authors.clone(),
        published: document.stamp_date.or(document.creation_date),
        github_repo: None,
        origin: PaperOrigin::LocalFile {
            path: path.to_path_buf(),
        },
    }
}

/// The metadata of a local paper whose PDF could not be read: only the file name is known.
pub fn meta_without_document(path: &Path) -> PaperMeta {
    PaperMeta {
        arxiv_id: None,
        title: file_title(path),
        authors: Vec::new(),
        published: None,
        github_repo: None,
        origin: PaperOrigin::LocalFile {
            path: path.to_path_buf(),
        },
    }
}

fn file_title(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn has_pdf_extension(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_to_sorted_pdfs_and_missing_paths_fail() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.pdf", "a.PDF", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let files = expand_inputs(&[dir.path().to_path_buf(), dir.path().join("b.pdf")]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.PDF", "b.pdf"]);
        let err = expand_inputs(&[dir.path().join("nope.pdf")]).unwrap_err();
        assert!(err.to_string().contains("nope.pdf"));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            expand_inputs(&[empty.path().to_path_buf()]),
            Err(LocalSourceError::EmptyFolder { .. })
        ));
    }

    #[test]
    fn title_falls_back_to_file_name() {
        let meta = meta_without_document(Path::new("/x/2401.06066_deepseekmoe.pdf"));
        assert_eq!(meta.title, "2401.06066_deepseekmoe");
        assert!(meta.links().huggingface.is_none());
    }
}
