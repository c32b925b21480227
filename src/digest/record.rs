//! The typed result of a digest run: what each paper's summary holds and how long it took. The
//! renderers read only these types.

use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;

use crate::paper::{Lang, PaperMeta};

/// The sections a model writes for one paper, parsed and cleaned.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub main_problem: String,
    pub main_idea: String,
    pub main_results: Vec<String>,
    pub conclusion: String,
    pub tags: Vec<String>,
    pub paper_ideas: Vec<String>,
    pub patent_ideas: Vec<String>,
}

/// Token counts and wall-clock seconds of each stage of one paper.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PaperTimings {
    pub extract_secs: f64,
    pub context_tokens: usize,
    pub prefill_tokens: usize,
    pub prefill_secs: f64,
    pub generated_tokens: usize,
    pub generate_secs: f64,
    pub total_secs: f64,
}

impl PaperTimings {
    pub fn decode_tok_s(&self) -> f64 {
        rate(self.generated_tokens, self.generate_secs)
    }

    pub fn prefill_tok_s(&self) -> f64 {
        rate(self.prefill_tokens, self.prefill_secs)
    }
}

fn rate(tokens: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        tokens as f64 / secs
    } else {
        0.0
    }
}

/// One paper in the digest: its metadata, and either a summary or the reason there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaperDigest {
    pub meta: PaperMeta,
    pub summary: Option<Summary>,
    pub error: Option<String>,
    pub timings: PaperTimings,
}

/// A whole digest: the day it covers, how it was made, and its papers in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Digest {
    pub date: NaiveDate,
    pub model: String,
    pub lang: Lang,
    pub generated_at: NaiveDateTime,
    pub papers: Vec<PaperDigest>,
}

impl Digest {
    /// Whether any paper of the digest failed; the CLI turns this into its exit status.
    pub fn has_failures(&self) -> bool {
        self.papers.iter().any(|p| p.error.is_some())
    }
}
