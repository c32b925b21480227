//! The typed result of a digest run: what each paper's summary holds and how long it took. The
//! renderers read only these types.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

pub use super::grounding::Grounding;
use crate::paper::{Lang, PaperMeta};

/// The sections a model writes for one paper, parsed and cleaned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub main_problem: String,
    pub main_idea: String,
    pub main_results: Vec<String>,
    pub conclusion: String,
    pub tags: Vec<String>,
    pub paper_ideas: Vec<String>,
    pub patent_ideas: Vec<String>,
}

impl Summary {
    /// What keeps this summary from the digest's shape: every prose section written, at
    /// least one Main Results item, 3 to 8 tags, exactly 3 paper and 3 patent ideas, no empty
    /// item. Empty when the summary is well-formed.
    pub fn defects(&self) -> Vec<String> {
        let mut defects = Vec::new();
        for (name, text) in [
            ("main_problem", &self.main_problem),
            ("main_idea", &self.main_idea),
            ("conclusion", &self.conclusion),
        ] {
            if text.trim().is_empty() {
                defects.push(format!("{name} is empty"));
            }
        }
        let lists: [(&str, &Vec<String>, usize, usize); 4] = [
            ("main_results", &self.main_results, 1, usize::MAX),
            ("tags", &self.tags, 3, 8),
            ("paper_ideas", &self.paper_ideas, 3, 3),
            ("patent_ideas", &self.patent_ideas, 3, 3),
        ];
        for (name, items, min, max) in lists {
            if items.len() < min || items.len() > max {
                defects.push(format!("{name} has {} items", items.len()));
            }
            if items.iter().any(|item| item.trim().is_empty()) {
                defects.push(format!("{name} has an empty item"));
            }
        }
        defects
    }

    pub fn is_well_formed(&self) -> bool {
        self.defects().is_empty()
    }
}

/// Token counts and wall-clock seconds of each stage of one paper, in this run: a summary
/// reused from the cache has `cached` set and no prefill or generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PaperTimings {
    pub extract_secs: f64,
    /// Tokens of the paper text the model read (after context selection).
    pub context_tokens: usize,
    /// Tokens fed to the model: the shared prefix once, then each section's own prompt
    /// suffix, forced answer starts and list marks.
    pub prefill_tokens: usize,
    pub prefill_secs: f64,
    /// The shared prefix (system message, paper, start of the request), prefilled once.
    #[serde(default)]
    pub shared_prefix_tokens: usize,
    pub generated_tokens: usize,
    pub generate_secs: f64,
    pub total_secs: f64,
    /// The summary came from the summary cache: nothing was generated.
    #[serde(default)]
    pub cached: bool,
    /// Each section's share of the work, in generation order.
    #[serde(default)]
    pub sections: Vec<SectionTiming>,
}

/// One digest section's prefill, generation and tries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SectionTiming {
    pub name: String,
    pub prefill_tokens: usize,
    pub generated_tokens: usize,
    pub secs: f64,
    /// Generations run for the section: one per prose try, list item try or tag try.
    pub tries: usize,
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

/// How well one summary kept to the script of its language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanguageFidelity {
    /// Characters of every section checked.
    pub chars: usize,
    /// Of those, characters of scripts the language does not use (the decoding masks keep
    /// this at 0; anything else is a bug worth reporting).
    pub foreign_chars: usize,
}

/// One paper in the digest: its metadata, and either a summary or the reason there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaperDigest {
    pub meta: PaperMeta,
    pub summary: Option<Summary>,
    pub error: Option<String>,
    pub timings: PaperTimings,
    /// Numbers of Main Results found in the paper (with a summary only).
    pub grounding: Option<Grounding>,
    pub language_fidelity: Option<LanguageFidelity>,
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
