//! Benchmarks of the digest pipeline's stages on one paper: tokenizing it, choosing its context
//! under a token budget, writing its whole summary with a tiny random-weight model (prefill,
//! generation under the language masks, parsing and grounding: the pipeline's own overhead
//! around the engine), and rendering the digest as Markdown, JSON and HTML. Extraction has
//! its own benchmark (extract.rs), the engine too (engine.rs).
//!
//! The paper is the bundled example note; tokenizing also runs on a real arXiv paper from
//! /work/shared/papers and with a real model's tokenizer from the model store when present.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use paperdigest::digest::context::{PaperText, SectionText, select_context};
use paperdigest::digest::{
    Digest, PaperDigest, PromptSet, Silent, Writer, WriterSettings, paper_text,
};
use paperdigest::llm::testing::{TinyModelSpec, write_tiny_model};
use paperdigest::llm::{DeviceChoice, Engine, LoadOptions, SamplingParams};
use paperdigest::paper::Lang;
use paperdigest::pdf::Document;
use paperdigest::render::Format;

fn example_paper() -> (PathBuf, Document) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paperdigest-note.pdf");
    let document = paperdigest::pdf::extract_file(&path).expect("the example paper extracts");
    (path, document)
}

/// A real paper's extracted text, when the shared papers are on this machine.
fn real_paper() -> Option<Document> {
    let path = Path::new("/work/shared/papers/2309.10668_lm-is-compression.pdf");
    paperdigest::pdf::extract_file(path).ok()
}

/// Real tokenizers from the model store, by label, when the models are stored.
fn real_tokenizers() -> Vec<(String, PathBuf)> {
    let Some(dir) = std::env::var_os("PAPERDIGEST_MODELS")
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("paperdigest/models")))
    else {
        return Vec::new();
    };
    [
        ("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        ("qwen2.5", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
        ("gemma3", "gemma-3-270m-q4_k_m.gguf"),
    ]
    .into_iter()
    .map(|(label, file)| (label.to_string(), dir.join(file)))
    .filter(|(_, path)| path.is_file())
    .collect()
}

fn body_text(document: &Document) -> String {
    let mut text = document.abstract_text.clone().unwrap_or_default();
    for section in &document.sections {
        text.push_str("\n\n");
        text.push_str(&section.heading);
        text.push('\n');
        text.push_str(&section.text);
    }
    text
}

fn bench_tokenize(c: &mut Criterion) {
    let scratch = tempfile::tempdir().expect("scratch folder");
    let tiny = scratch.path().join("tiny.gguf");
    write_tiny_model(&tiny, &TinyModelSpec::default()).expect("tiny model");
    let mut tokenizers = vec![("tiny".to_string(), tiny)];
    tokenizers.extend(real_tokenizers());
    let mut papers = vec![("example_note", body_text(&example_paper().1))];
    if let Some(real) = real_paper() {
        papers.push(("real_paper", body_text(&real)));
    }
    let mut group = c.benchmark_group("tokenize");
    group.sample_size(10);
    for (label, path) in &tokenizers {
        let Ok(tokenizer) = paperdigest::tools::load_tokenizer(path) else {
            eprintln!("skipping tokenizer {label}");
            continue;
        };
        for (paper, text) in &papers {
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_function(format!("{label}/{paper}"), |b| {
                b.iter(|| tokenizer.encode(black_box(text)).expect("tokenize"))
            });
        }
    }
    group.finish();
}

/// Short answers with sampling, as the CLI tests run the tiny model.
fn tiny_writer_settings() -> WriterSettings {
    WriterSettings {
        sampling: SamplingParams {
            temperature: 0.8,
            top_p: 0.9,
            seed: 1,
        },
        max_context: 4096,
        max_tokens: 32,
    }
}

fn bench_write_summary(c: &mut Criterion) {
    let scratch = tempfile::tempdir().expect("scratch folder");
    let model = scratch.path().join("tiny.gguf");
    write_tiny_model(&model, &TinyModelSpec::default()).expect("tiny model");
    let engine = Engine::load(
        &model,
        &LoadOptions {
            device: DeviceChoice::Cpu,
            context: None,
            kv_cache: Default::default(),
        },
    )
    .expect("tiny model loads");
    let (path, document) = example_paper();
    let meta = paperdigest::sources::local::meta_from_document(&path, &document);
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    for lang in [Lang::En, Lang::Vi] {
        let focus = paperdigest::digest::prompts::default_patent_focus(lang);
        let prompts = PromptSet::load(lang, None, focus).expect("built-in prompts");
        let settings = tiny_writer_settings();
        // Building the writer makes the language's token masks: once per model and language.
        group.bench_function(format!("writer_setup_tiny_model/{lang:?}"), |b| {
            b.iter(|| Writer::new(&engine, &prompts, settings.clone()))
        });
        let writer = Writer::new(&engine, &prompts, settings.clone());
        group.bench_function(format!("write_summary_tiny_model/{lang:?}"), |b| {
            b.iter(|| {
                writer
                    .write(&meta, &paper_text(&document), &mut Silent)
                    .expect("summary")
            })
        });
    }
    let prompts = PromptSet::load(Lang::En, None, "phones").expect("built-in prompts");
    let writer = Writer::new(&engine, &prompts, tiny_writer_settings());
    let written = writer
        .write(&meta, &paper_text(&document), &mut Silent)
        .expect("summary");
    let digest = Digest {
        date: chrono::NaiveDate::from_ymd_opt(2026, 1, 9).expect("date"),
        model: "tiny".to_string(),
        lang: Lang::En,
        generated_at: chrono::NaiveDateTime::default(),
        papers: vec![
            PaperDigest {
                meta: meta.clone(),
                summary: Some(written.summary),
                error: None,
                timings: written.timings,
                grounding: Some(written.grounding),
                language_fidelity: Some(written.language_fidelity),
            };
            10
        ],
    };
    for format in [Format::Markdown, Format::Json, Format::Html] {
        group.bench_function(format!("render_10_papers/{format:?}"), |b| {
            b.iter(|| format.render(black_box(&digest)))
        });
    }
    group.finish();
}

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

criterion_group!(
    benches,
    bench_tokenize,
    bench_context_selection,
    bench_write_summary
);
criterion_main!(benches);
