//! One paper's summary, from extracted text to a typed record: what the model reads (context
//! selection under a token budget), what it is asked (prompts from `prompts/`), how it is asked
//! (one shared prefill, one fork per section, forced structure), and how its answers are cleaned.

pub mod context;
pub mod parse;
pub mod prompts;
mod record;
pub mod writer;

pub use context::{PaperText, SectionText};
pub use prompts::{PromptSet, SectionKind};
pub use record::{Digest, PaperDigest, PaperTimings, Summary};
pub use writer::{Observer, Silent, WriterError, WriterSettings, write_summary};

use crate::pdf::Document;

/// The parts of an extracted document that context selection reads.
pub fn paper_text(document: &Document) -> PaperText<'_> {
    PaperText {
        abstract_text: document.abstract_text.as_deref(),
        sections: document
            .sections
            .iter()
            .map(|s| SectionText {
                heading: &s.heading,
                text: &s.text,
                appendix: s.appendix,
            })
            .collect(),
    }
}
