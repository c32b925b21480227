//! Where papers come from: PDF files and folders on disk (`local`), the Hugging Face papers
//! API (`hf_daily`) and the arXiv API (`arxiv`), combined with the cache in `remote`. Each
//! source turns its input into [`PaperMeta`](crate::paper::PaperMeta) plus a PDF to read.

pub mod arxiv;
pub mod hf_daily;
pub mod local;
pub mod remote;
