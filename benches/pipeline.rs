//! Benchmarks of the model-free stages of the pipeline: choosing a paper's context under a
//! token budget, and rendering a digest. (Model stages have their own benchmarks.)

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use paperdigest::digest::context::{PaperText, SectionText, select_context};

fn synthetic_paper(sections: usize, sentences: usize) -> Vec<(String, String)> {
    (0..sections)
        .map(|i| {
            let heading = format!("{} Section about topic {i}", i + 1);
            let text = (0..sentences)
                .map(|j| {
                    format!(
                        "Sentence {j} of section {i} reports a value of {}.{} on the task.",
                        i * 7 + j,
                        j % 10
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            (heading, text)
        })
        .collect()
}

fn bench_context_selection(c: &mut Criterion) {
    let sections = synthetic_paper(12, 60);
    let paper = PaperText {
        abstract_text: Some("We study a problem and report results."),
        sections: sections
            .iter()
            .map(|(h, t)| SectionText {
                heading: h,
                text: t,
                appendix: false,
            })
            .collect(),
    };
    // Whitespace words stand in for tokens: this measures selection, not tokenization.
    let count = |s: &str| s.split_whitespace().count();
    c.bench_function("select_context 12 sections, budget 2000", |b| {
        b.iter(|| select_context(black_box(&paper), 2000, &count))
    });
}

criterion_group!(benches, bench_context_selection);
criterion_main!(benches);
