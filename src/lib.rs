//! paperdigest: daily digests of research papers written by a local GGUF model.
//!
//! The library does all the work; the `paperdigest` binary only parses the command line and
//! wires these rooms together. Data flows one way:
//! sources (paper lists, metadata, PDFs) → pdf (text and sections) → llm (the model) →
//! digest (one paper's summary) → render (Markdown, JSON).

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod digest;
pub mod llm;
pub mod net;
pub mod paper;
pub mod pdf;
pub mod progress;
pub mod render;
pub mod resume;
pub mod sources;
pub mod store;
pub mod tools;
