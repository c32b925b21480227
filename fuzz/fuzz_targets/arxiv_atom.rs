//! arXiv API answers: the Atom feed of a query, then the metadata built from each entry.

#![no_main]

use libfuzzer_sys::fuzz_target;
use paperdigest::sources::arxiv::parse_feed;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(entries) = parse_feed(text) {
        for entry in &entries {
            let meta = entry.to_meta();
            let _ = meta.arxiv_id.map(|id| id.to_string());
        }
    }
});
