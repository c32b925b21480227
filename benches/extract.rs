//! Benchmarks of PDF extraction (`paperdigest::pdf::extract_bytes`) on the bundled example
//! paper and, when present, one real arXiv paper from /work/shared/papers (skipped otherwise).
//! Throughput is reported in pages, so the numbers compare directly with
//! `scripts/pdf-quality.py`'s pages/s figure for pdftotext.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use paperdigest::pdf::extract_bytes;

/// The real paper tried first; any other PDF in the folder stands in when it is missing.
const REAL_PAPERS_DIR: &str = "/work/shared/papers";
const PREFERRED_REAL_PAPER: &str = "2309.10668_lm-is-compression.pdf";

fn example_paper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paperdigest-note.pdf")
}

fn real_paper() -> Option<PathBuf> {
    let dir = Path::new(REAL_PAPERS_DIR);
    let preferred = dir.join(PREFERRED_REAL_PAPER);
    if preferred.is_file() {
        return Some(preferred);
    }
    let mut pdfs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
        .collect();
    pdfs.sort();
    pdfs.into_iter().next()
}

fn bench_file(c: &mut Criterion, label: &str, path: &Path) {
    let Ok(bytes) = std::fs::read(path) else {
        eprintln!("skipping {label}: cannot read {}", path.display());
        return;
    };
    let name = path.display().to_string();
    // One untimed run tells the page count for the throughput figure and skips files that
    // do not extract at all.
    let pages = match extract_bytes(&bytes, &name) {
        Ok(doc) => doc.pages.max(1) as u64,
        Err(e) => {
            eprintln!("skipping {label}: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("extract");
    group.sample_size(10);
    group.throughput(Throughput::Elements(pages));
    group.bench_function(label, |b| {
        b.iter(|| extract_bytes(black_box(&bytes), &name));
    });
    group.finish();
}

fn bench_extract(c: &mut Criterion) {
    bench_file(c, "example_note", &example_paper());
    match real_paper() {
        Some(path) => bench_file(c, "real_paper", &path),
        None => eprintln!("skipping real_paper: no PDF in {REAL_PAPERS_DIR}"),
    }
}

criterion_group!(benches, bench_extract);
criterion_main!(benches);
