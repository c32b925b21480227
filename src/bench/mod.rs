//! Measurements of local models: `bench speed` times the engine itself (prefill, decode,
//! time to first token, peak memory) the way llama.cpp's `llama-bench` does, so the two can
//! be compared on the same GGUF file in one run (scripts/bench-vs-llamacpp.sh).

pub mod speed;

pub use speed::{SpeedOptions, SpeedReport, measure_speed, peak_rss_mb};
