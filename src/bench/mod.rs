//! Measurements of local models: `bench speed` times the engine itself (prefill, decode,
//! time to first token, peak memory) the way llama.cpp's `llama-bench` does, so the two can
//! be compared on the same GGUF file in one run (scripts/bench-vs-llamacpp.sh); `bench digest`
//! runs the whole digest job with several models on the same papers and writes the report
//! users compare models with (Markdown, JSON, plots).

pub mod digest;
pub mod plots;
pub mod report;
pub mod speed;

pub use digest::{DigestBenchError, DigestBenchOptions, run_digest_bench, run_worker};
pub use report::{BenchReport, ModelRow};
pub use speed::{SpeedOptions, SpeedReport, measure_speed, peak_rss_mb};
