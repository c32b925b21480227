//! PDF extraction of arbitrary bytes: the whole pipeline (lopdf, pdf-extract, layout, cleanup,
//! metadata and structure) must answer a `Document` or a `PdfError`, never panic, hang or
//! exhaust memory.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(document) = paperdigest::pdf::extract_bytes(data, "fuzz.pdf") {
        let _ = document.body_text();
    }
});
