//! Hugging Face API answers: a day's listing page and one paper's record, then the metadata the
//! digest builds from them. Anything may come back from the network; nothing may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use paperdigest::sources::hf_daily::{parse_day_page, parse_paper};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(page) = parse_day_page(text) {
        for paper in &page.papers {
            let _ = paper.to_meta();
        }
    }
    if let Ok(paper) = parse_paper(text) {
        let _ = paper.to_meta();
    }
});
