//! One paper's summary, from extracted text to a typed record: what the model reads (context
//! selection under a token budget), what it is asked (prompts from `prompts/`), how it is asked
//! (one shared prefill, one fork per section, forced structure, decoding masked to the
//! language's script), how its answers are cleaned and checked against the paper (grounding of
//! numbers), and the cache that lets a re-run reuse finished summaries.

pub mod cache;
pub mod context;
pub mod grounding;
pub mod parse;
pub mod prompts;
mod record;
pub mod script;
pub mod writer;

pub use context::{PaperText, SectionText};
pub use grounding::Grounding;
pub use prompts::{PromptSet, SectionKind};
pub use record::{Digest, LanguageFidelity, PaperDigest, PaperTimings, SectionTiming, Summary};
pub use script::{LanguageMask, ScriptPolicy};
pub use writer::{Observer, Silent, Writer, WriterError, WriterSettings, WrittenSummary};

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
