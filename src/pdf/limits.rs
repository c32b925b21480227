//! Safety limits on PDF input, checked before the PDF libraries allocate.
//!
//! lopdf inflates object streams and cross-reference streams while it loads a file, and
//! inflates page contents, fonts and forms when pdf-extract asks, each time into one `Vec`
//! with no bound: a FlateDecode stream of a few kilobytes can ask for gigabytes (a
//! decompression bomb). So, on the raw bytes and before lopdf sees them, [`scan_raw`] finds
//! every stream, reads its filter chain from its dictionary and decodes it with a counting
//! decoder that stops at the limit, never holding more than the limit of output. A file whose
//! streams inflate past [`MAX_STREAM_INFLATED`] each or [`MAX_TOTAL_INFLATED`] together is
//! refused, as is one with more than [`MAX_OBJECTS`] objects.
//!
//! Encrypted files hide their stream data until lopdf decrypts it during loading, when it also
//! expands object streams. There the object streams are bounded by the most their filters can
//! expand (deflate at most 1032:1), and every other stream is measured after loading
//! ([`check_loaded`]), before anything inflates it. [`check_loaded`] also bounds the page tree
//! ([`MAX_PAGE_TREE`]) and what one page's content streams inflate to together
//! ([`MAX_PAGE_CONTENT`]): a page may list one stream many times.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use lopdf::{Document, Object};
use rayon::prelude::*;

use super::PdfError;

/// The most one stream may inflate to (content streams of real papers stay under a few MB;
/// a full-page scanned image a few tens of MB).
pub const MAX_STREAM_INFLATED: u64 = 128 << 20;
/// The most all streams of a file may inflate to together.
pub const MAX_TOTAL_INFLATED: u64 = 1 << 30;
/// The most the content streams of one page may inflate to together.
pub const MAX_PAGE_CONTENT: u64 = 64 << 20;
/// The most tokens (operands and operators) one page's content may have: parsing keeps each
/// as an object of some tens of bytes. Dense text pages have tens of thousands, heavy vector
/// figures a few hundred thousand.
pub const MAX_PAGE_TOKENS: u64 = 4_000_000;
/// The most indirect objects a file may have (papers have thousands; books tens of thousands).
pub const MAX_OBJECTS: usize = 1_000_000;
/// The longest row a PNG predictor may declare (lopdf allocates it before decoding; real
/// images have rows of at most some hundred kilobytes).
pub const MAX_PREDICTOR_ROW: u64 = 4 << 20;
/// The most pages a page tree may list (only [`super::MAX_PAGES`] are read).
pub const MAX_PAGE_TREE: usize = 20_000;

/// What the raw scan learnt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawScan {
    /// The file names an /Encrypt dictionary: stream data is measured after loading.
    pub encrypted: bool,
    /// Streams found and what they inflate to in total (for logs and tests).
    pub streams: usize,
    pub inflated: u64,
}

fn too_much(source: &str, what: String) -> PdfError {
    PdfError::Limit {
        source_name: source.to_string(),
        what,
    }
}

/// Checks the raw bytes of a file before lopdf parses it.
pub(crate) fn scan_raw(bytes: &[u8], source: &str) -> Result<RawScan, PdfError> {
    let encrypted = has_name(bytes, b"Encrypt");
    let objects = keyword_positions(bytes, b"obj")
        .filter(|&at| !preceded_by(bytes, at, b"end"))
        .count();
    if objects > MAX_OBJECTS {
        return Err(too_much(
            source,
            format!("{objects} objects (limit {MAX_OBJECTS})"),
        ));
    }
    let mut scan = RawScan {
        encrypted,
        ..RawScan::default()
    };
    let mut scan_work = 0u64;
    let work_limit = 4 * bytes.len() as u64 + (64 << 20);
    // Streams in file order up to the first that fails a check needing no decoding (`early`):
    // the error a sequential scan would give unless a stream before it inflates too far.
    let mut jobs: Vec<Job<'_>> = Vec::new();
    let mut early = None;
    for at in keyword_positions(bytes, b"stream") {
        if preceded_by(bytes, at, b"end") {
            continue;
        }
        let Some(data_start) = data_start(bytes, at + b"stream".len()) else {
            continue;
        };
        let dict = stream_dict(bytes, at);
        scan.streams += 1;
        // lopdf takes exactly /Length bytes. When the length cannot be known here (a reference
        // into an object stream), the decoders get the rest of the file and stop where their
        // encoding ends, so `endstream` planted inside the data cannot hide the rest.
        let length = dict.as_ref().and_then(|d| d.length).and_then(|l| match l {
            Length::Direct(n) => Some(n),
            Length::Ref(n, g) => resolve_length(bytes, n, g),
        });
        let end = length.map_or(bytes.len(), |l| {
            data_start
                .saturating_add(usize::try_from(l).unwrap_or(usize::MAX))
                .min(bytes.len())
        });
        let data = &bytes[data_start..end];
        if length.is_none()
            && dict
                .as_ref()
                .is_some_and(|d| d.filters.first() == Some(&Filter::Ascii85))
        {
            // ASCII85 decoding only stops at `~>` or a byte outside its alphabet: charge the
            // bytes it may read so many such streams cannot make the scan quadratic.
            scan_work = scan_work.saturating_add(data.len() as u64);
            if scan_work > work_limit {
                early = Some(too_much(
                    source,
                    "too many ASCII85 streams of unknown length to check".to_string(),
                ));
                break;
            }
        }
        if let Some(row) = dict.as_ref().and_then(|d| d.predictor_row)
            && row > MAX_PREDICTOR_ROW
            && dict.as_ref().is_some_and(|d| {
                d.filters
                    .iter()
                    .any(|f| matches!(f, Filter::Flate | Filter::Lzw))
            })
        {
            early = Some(too_much(
                source,
                format!(
                    "the stream at byte {at} declares predictor rows of {row} bytes (limit \
                     {MAX_PREDICTOR_ROW})"
                ),
            ));
            break;
        }
        // Encrypted data cannot be decoded here. Object streams are expanded by lopdf at load
        // time, before `check_loaded` could measure them: bound them by the most their
        // filters can expand their bytes to.
        let measure = if encrypted {
            Measure::Known(match &dict {
                Some(d) if d.object_stream => {
                    let len = length.map_or_else(|| stream_len(bytes, data_start), |_| data.len());
                    worst_case(&d.filters, len as u64)
                }
                _ => 0,
            })
        } else {
            Measure::Decode(dict.map(|d| d.filters))
        };
        jobs.push(Job { at, data, measure });
    }
    // Inflating is most of the scan, and streams are independent: measure them in parallel,
    // each up to the per-stream limit, then apply the limits in file order as a sequential
    // scan would (same verdict, same message). Once a stream is over the limit, or all
    // together are, streams not yet measured are left for the in-order pass, so a file of
    // many bombs costs no more than one.
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let sizes: Vec<Option<u64>> = jobs
        .par_iter()
        .map(|job| {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let size = job.size(MAX_STREAM_INFLATED);
            let sum = total.fetch_add(size.min(MAX_STREAM_INFLATED + 1), Ordering::Relaxed);
            if size > MAX_STREAM_INFLATED || sum.saturating_add(size) > MAX_TOTAL_INFLATED {
                stop.store(true, Ordering::Relaxed);
            }
            Some(size)
        })
        .collect();
    for (job, size) in jobs.iter().zip(sizes) {
        let budget = MAX_STREAM_INFLATED.min(MAX_TOTAL_INFLATED - scan.inflated);
        let inflated = size.unwrap_or_else(|| job.size(budget));
        if inflated > budget {
            return Err(too_much(
                source,
                stream_problem(job.at, inflated, budget, encrypted),
            ));
        }
        scan.inflated += inflated;
    }
    match early {
        Some(e) => Err(e),
        None => Ok(scan),
    }
}

/// One stream found by [`scan_raw`], to be measured.
struct Job<'a> {
    at: usize,
    data: &'a [u8],
    measure: Measure,
}

enum Measure {
    /// The size is known without decoding (encrypted data).
    Known(u64),
    /// Decode through these filters (`None`: the dictionary could not be read).
    Decode(Option<Vec<Filter>>),
}

impl Job<'_> {
    /// What the stream inflates to, counted up to past `limit`.
    fn size(&self, limit: u64) -> u64 {
        match &self.measure {
            Measure::Known(n) => *n,
            Measure::Decode(Some(filters)) => decoded_size(self.data, filters, limit),
            // A dictionary we cannot read: measure the common encodings anyway.
            Measure::Decode(None) => decoded_size(self.data, &[Filter::Flate], limit)
                .max(decoded_size(self.data, &[Filter::Lzw], limit)),
        }
    }
}

fn stream_problem(at: usize, inflated: u64, budget: u64, encrypted: bool) -> String {
    let limit = if budget < MAX_STREAM_INFLATED {
        format!(
            "all streams together may inflate to at most {} MiB",
            MAX_TOTAL_INFLATED >> 20
        )
    } else {
        format!("limit {} MiB per stream", MAX_STREAM_INFLATED >> 20)
    };
    let how = if encrypted {
        "an encrypted object stream could inflate to"
    } else {
        "inflates to more than"
    };
    let shown = if inflated == u64::MAX {
        "an unbounded size".to_string()
    } else {
        format!("{} bytes", inflated.min(budget.saturating_add(1)))
    };
    format!("the stream at byte {at} {how} {shown} ({limit}; decompression bomb?)")
}

/// Checks a loaded document before pages are read: its size in objects and pages, the streams
/// of an encrypted file (now decrypted, not yet inflated), and each read page's content.
pub(crate) fn check_loaded(
    doc: &Document,
    raw: &RawScan,
    source: &str,
    max_pages: usize,
) -> Result<(), PdfError> {
    if doc.objects.len() > MAX_OBJECTS {
        return Err(too_much(
            source,
            format!("{} objects (limit {MAX_OBJECTS})", doc.objects.len()),
        ));
    }
    let mut sizes: std::collections::HashMap<lopdf::ObjectId, u64> = Default::default();
    let mut measure = |id: lopdf::ObjectId, stream: &lopdf::Stream| -> u64 {
        *sizes.entry(id).or_insert_with(|| {
            // A predictor row past its limit counts as a stream past the limit.
            if predictor_row_of(&stream.dict).is_some_and(|row| row > MAX_PREDICTOR_ROW) {
                return u64::MAX;
            }
            decoded_size(
                &stream.content,
                &filters_of(&stream.dict),
                MAX_STREAM_INFLATED,
            )
        })
    };
    if raw.encrypted {
        let mut total = 0u64;
        for (&id, object) in &doc.objects {
            if let Object::Stream(stream) = object {
                let size = measure(id, stream);
                total = total.saturating_add(size);
                if size > MAX_STREAM_INFLATED || total > MAX_TOTAL_INFLATED {
                    return Err(too_much(
                        source,
                        format!(
                            "stream {} {} inflates past the limits ({} MiB per stream, {} MiB \
                             in all; decompression bomb?)",
                            id.0,
                            id.1,
                            MAX_STREAM_INFLATED >> 20,
                            MAX_TOTAL_INFLATED >> 20
                        ),
                    ));
                }
            }
        }
    }
    let pages = doc.page_iter().take(MAX_PAGE_TREE + 1).count();
    if pages > MAX_PAGE_TREE {
        return Err(too_much(source, format!("more than {MAX_PAGE_TREE} pages")));
    }
    let mut stats: std::collections::HashMap<lopdf::ObjectId, (u64, u64)> = Default::default();
    for (number, page) in doc.page_iter().take(max_pages).enumerate() {
        let (mut total, mut tokens) = (0u64, 0u64);
        for id in doc.get_page_contents(page) {
            if let Ok(Object::Stream(stream)) = doc.get_object(id) {
                let (size, count) = *stats.entry(id).or_insert_with(|| {
                    if predictor_row_of(&stream.dict).is_some_and(|row| row > MAX_PREDICTOR_ROW) {
                        return (u64::MAX, 0);
                    }
                    content_stats(&stream.content, &filters_of(&stream.dict), MAX_PAGE_CONTENT)
                });
                total = total.saturating_add(size);
                tokens = tokens.saturating_add(count);
            }
            if tokens > MAX_PAGE_TOKENS {
                return Err(too_much(
                    source,
                    format!(
                        "page {} has more than {MAX_PAGE_TOKENS} content tokens to parse",
                        number + 1
                    ),
                ));
            }
            if total > MAX_PAGE_CONTENT {
                return Err(too_much(
                    source,
                    format!(
                        "page {} has content streams that inflate to more than {} MiB",
                        number + 1,
                        MAX_PAGE_CONTENT >> 20
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The row buffer lopdf's PNG predictor allocates (twice, before reading any data) for these
/// /DecodeParms values, computed without overflow; `None` without a PNG predictor.
fn predictor_row(
    predictor: Option<u64>,
    columns: Option<u64>,
    colors: Option<u64>,
    bits: Option<u64>,
) -> Option<u64> {
    if !(10..=15).contains(&predictor?) {
        return None;
    }
    let columns = u128::from(columns.unwrap_or(1).max(1));
    let colors = u128::from(colors.unwrap_or(1).max(1));
    let bits = u128::from(bits.unwrap_or(8).max(8));
    let row = columns.saturating_mul(colors).saturating_mul(bits) / 8;
    Some(u64::try_from(row).unwrap_or(u64::MAX))
}

/// The predictor row of a loaded stream's dictionary (lopdf reads only a direct dictionary).
fn predictor_row_of(dict: &lopdf::Dictionary) -> Option<u64> {
    let params = dict.get(b"DecodeParms").and_then(Object::as_dict).ok()?;
    let get = |key: &[u8]| {
        params
            .get(key)
            .and_then(Object::as_i64)
            .ok()
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    predictor_row(
        get(b"Predictor"),
        get(b"Columns"),
        get(b"Colors"),
        get(b"BitsPerComponent"),
    )
}

/// A stream filter lopdf can decode (it refuses every other, decoding nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    Flate,
    Lzw,
    Ascii85,
    Unsupported,
}

impl Filter {
    fn from_name(name: &[u8]) -> Filter {
        match name {
            b"FlateDecode" => Filter::Flate,
            b"LZWDecode" => Filter::Lzw,
            b"ASCII85Decode" => Filter::Ascii85,
            _ => Filter::Unsupported,
        }
    }

    /// The most output one input byte can give.
    fn max_ratio(self) -> u64 {
        match self {
            // deflate: 258 bytes per 2-bit-ish length/distance pair, ~1032:1 in practice.
            Filter::Flate => 1032,
            // LZW: a 9-bit code can stand for a string of up to 4096 bytes.
            Filter::Lzw => 4096 * 8 / 9 + 1,
            // ASCII85: `z` is four zero bytes.
            Filter::Ascii85 => 4,
            Filter::Unsupported => 0,
        }
    }
}

fn filters_of(dict: &lopdf::Dictionary) -> Vec<Filter> {
    match dict.get(b"Filter") {
        Ok(Object::Name(name)) => vec![Filter::from_name(name)],
        Ok(Object::Array(items)) => items
            .iter()
            .map(|o| o.as_name().map_or(Filter::Unsupported, Filter::from_name))
            .collect(),
        _ => Vec::new(),
    }
}

/// The most `len` bytes can expand to through `filters` (saturating).
fn worst_case(filters: &[Filter], len: u64) -> u64 {
    if filters.contains(&Filter::Unsupported) {
        return 0;
    }
    filters
        .iter()
        .fold(len, |n, f| n.saturating_mul(f.max_ratio()))
}

/// What `data` decodes to through `filters`, counted without keeping the final output and
/// stopping past `limit` (then the result is above `limit`). Like lopdf, a decoder error ends
/// the stream with what was decoded so far, and an unsupported filter decodes nothing.
pub(crate) fn decoded_size(data: &[u8], filters: &[Filter], limit: u64) -> u64 {
    decode_chain(data, filters, limit, None)
}

/// Like [`decoded_size`], also counting the content-stream tokens of the output (a stream
/// without filters is counted as it is): `(bytes, tokens)`.
fn content_stats(data: &[u8], filters: &[Filter], limit: u64) -> (u64, u64) {
    if filters.is_empty() {
        let mut tokens = TokenCount::new();
        tokens.feed(data);
        return (data.len() as u64, tokens.count);
    }
    let mut tokens = TokenCount::new();
    let size = decode_chain(data, filters, limit, Some(&mut tokens));
    (size, tokens.count)
}

fn decode_chain(
    data: &[u8],
    filters: &[Filter],
    limit: u64,
    mut tokens: Option<&mut TokenCount>,
) -> u64 {
    if filters.is_empty() || filters.contains(&Filter::Unsupported) {
        return 0;
    }
    let mut input: std::borrow::Cow<[u8]> = std::borrow::Cow::Borrowed(data);
    for (i, filter) in filters.iter().enumerate() {
        let last = i + 1 == filters.len();
        let mut sink = Bounded {
            kept: (!last).then(Vec::new),
            count: 0,
            limit,
            tokens: if last { tokens.take() } else { None },
        };
        decode(*filter, &input, &mut sink);
        if sink.count > limit {
            return sink.count;
        }
        match sink.kept {
            Some(kept) => input = std::borrow::Cow::Owned(kept),
            None => return sink.count,
        }
    }
    0
}

/// Counts tokens (runs of non-delimiter bytes, and delimiters) in a content stream fed in
/// pieces: about one per operand or operator, which is what parsing it costs.
struct TokenCount {
    count: u64,
    in_word: bool,
}

impl TokenCount {
    fn new() -> TokenCount {
        TokenCount {
            count: 0,
            in_word: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if is_space(b) {
                self.in_word = false;
            } else if is_delimiter(b) {
                self.count += 1;
                self.in_word = false;
            } else if !self.in_word {
                self.count += 1;
                self.in_word = true;
            }
        }
    }
}

/// Runs one decoder into `sink`; errors (including the sink's "over the limit") end it.
fn decode(filter: Filter, input: &[u8], sink: &mut Bounded<'_>) {
    match filter {
        Filter::Flate => {
            if input.is_empty() {
                return;
            }
            let mut decoder = flate2::read::ZlibDecoder::new(input);
            let _ = io::copy(&mut decoder, sink);
        }
        Filter::Lzw => {
            let mut decoder =
                weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            let _ = decoder.into_stream(&mut *sink).decode_all(input);
        }
        Filter::Ascii85 => ascii85(input, sink),
        Filter::Unsupported => {}
    }
}

/// lopdf's ASCII85 decoding, writing into the sink.
fn ascii85(input: &[u8], sink: &mut Bounded<'_>) {
    let body = input.strip_suffix(b"~>").unwrap_or(input);
    let (mut buffer, mut count) = (0u32, 0usize);
    for &ch in body {
        if ch == b'z' {
            if count != 0 || sink.write_all(&[0; 4]).is_err() {
                return;
            }
            continue;
        }
        if ch.is_ascii_whitespace() {
            continue;
        }
        if !(b'!'..=b'u').contains(&ch) {
            break;
        }
        let Some(next) = buffer.checked_mul(85) else {
            return;
        };
        buffer = next + u32::from(ch - b'!');
        count += 1;
        if count == 5 {
            if sink.write_all(&buffer.to_be_bytes()).is_err() {
                return;
            }
            (buffer, count) = (0, 0);
        }
    }
    if count > 0 {
        for _ in count..5 {
            match buffer.checked_mul(85) {
                Some(next) => buffer = next + 84,
                None => return,
            }
        }
        let _ = sink.write_all(&buffer.to_be_bytes()[..count - 1]);
    }
}

/// Counts what is written, keeps it when asked, and fails once past the limit.
struct Bounded<'a> {
    kept: Option<Vec<u8>>,
    count: u64,
    limit: u64,
    tokens: Option<&'a mut TokenCount>,
}

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count = self.count.saturating_add(buf.len() as u64);
        if self.count > self.limit {
            return Err(io::Error::other("over the limit"));
        }
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(buf);
        }
        if let Some(tokens) = &mut self.tokens {
            tokens.feed(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the raw scan reads from a stream's dictionary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct StreamDict {
    filters: Vec<Filter>,
    object_stream: bool,
    length: Option<Length>,
    /// Bytes of one row the PNG predictor decoder allocates, when a predictor is set.
    predictor_row: Option<u64>,
}

/// A stream's /Length: a number, or a reference to the object holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    Direct(u64),
    Ref(u64, u64),
}

/// The dictionary in front of the `stream` keyword at `at`: parsed forward from the nearest
/// `N G obj` before it that leads exactly up to the keyword.
fn stream_dict(bytes: &[u8], at: usize) -> Option<StreamDict> {
    let window_start = at.saturating_sub(1 << 16);
    let window = &bytes[window_start..at];
    let mut tried = 0;
    let mut end = window.len();
    while tried < 8 {
        let found = rfind(&window[..end], b"obj")?;
        end = found;
        if !is_keyword(window, found, 3) || preceded_by(window, found, b"end") {
            continue;
        }
        tried += 1;
        if let Some(dict) = parse_dict(&window[found + 3..]) {
            return Some(dict);
        }
    }
    None
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Name(Vec<u8>),
    DictOpen,
    DictClose,
    ArrayOpen,
    ArrayClose,
    /// A run of regular characters: a number, `R`, `true`, a keyword.
    Word(Vec<u8>),
    Other,
}

/// Reads `<< ... >>` followed only by whitespace: the keys /Filter and /Type at the top level.
fn parse_dict(text: &[u8]) -> Option<StreamDict> {
    let mut tokens = Tokens { text, at: 0 };
    if tokens.next()? != Token::DictOpen {
        return None;
    }
    let mut dict = StreamDict::default();
    loop {
        let key = match tokens.next()? {
            Token::DictClose => break,
            Token::Name(name) => name,
            // Values of other keys (numbers, `R`) and stray tokens.
            _ => continue,
        };
        let value = tokens.value()?;
        match key.as_slice() {
            b"Filter" => {
                dict.filters = match value {
                    Value::Name(name) => vec![Filter::from_name(&name)],
                    Value::Names(names) => names.iter().map(|n| Filter::from_name(n)).collect(),
                    _ => Vec::new(),
                }
            }
            b"Type" => dict.object_stream = value == Value::Name(b"ObjStm".to_vec()),
            b"DecodeParms" => {
                if let Value::Numbers(numbers) = value {
                    let get = |key: &[u8]| numbers.iter().find(|(k, _)| k == key).map(|(_, n)| *n);
                    dict.predictor_row = predictor_row(
                        get(b"Predictor"),
                        get(b"Columns"),
                        get(b"Colors"),
                        get(b"BitsPerComponent"),
                    );
                }
            }
            b"Length" => {
                dict.length = match value {
                    Value::Number(n) => Some(Length::Direct(n)),
                    Value::Ref(n, g) => Some(Length::Ref(n, g)),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    // Only whitespace may follow, up to the `stream` keyword.
    tokens.skip_space();
    (tokens.at == text.len()).then_some(dict)
}

#[derive(Debug, PartialEq, Eq)]
enum Value {
    Name(Vec<u8>),
    /// An array; non-name items make it `Unsupported` filters, as for lopdf.
    Names(Vec<Vec<u8>>),
    Number(u64),
    Ref(u64, u64),
    /// A dictionary's direct non-negative integer entries.
    Numbers(Vec<(Vec<u8>, u64)>),
    Other,
}

/// A non-negative integer token.
fn number(word: &[u8]) -> Option<u64> {
    std::str::from_utf8(word).ok()?.parse().ok()
}

struct Tokens<'a> {
    text: &'a [u8],
    at: usize,
}

impl Tokens<'_> {
    fn value(&mut self) -> Option<Value> {
        Some(match self.next()? {
            Token::Name(name) => Value::Name(name),
            Token::ArrayOpen => {
                let mut names = Vec::new();
                let mut depth = 1;
                while depth > 0 {
                    match self.next()? {
                        Token::ArrayOpen | Token::DictOpen => depth += 1,
                        Token::ArrayClose | Token::DictClose => depth -= 1,
                        Token::Name(name) if depth == 1 => names.push(name),
                        _ => names.push(b"?".to_vec()),
                    }
                }
                Value::Names(names)
            }
            Token::DictOpen => {
                // Only the numbers directly in it are kept (the predictor parameters).
                let mut numbers = Vec::new();
                let mut key: Option<Vec<u8>> = None;
                let mut depth = 1;
                while depth > 0 {
                    match self.next()? {
                        Token::ArrayOpen | Token::DictOpen => {
                            depth += 1;
                            key = None;
                        }
                        Token::ArrayClose | Token::DictClose => depth -= 1,
                        Token::Name(name) if depth == 1 => {
                            key = match key {
                                Some(_) => None,
                                None => Some(name),
                            }
                        }
                        Token::Word(word) if depth == 1 => {
                            if let (Some(k), Some(n)) = (key.take(), number(&word)) {
                                numbers.push((k, n));
                            }
                        }
                        _ => key = None,
                    }
                }
                Value::Numbers(numbers)
            }
            Token::Word(word) => match number(&word) {
                Some(n) => {
                    // `N G R` is a reference; look ahead without consuming anything else.
                    let save = self.at;
                    match (self.next(), self.next()) {
                        (Some(Token::Word(g)), Some(Token::Word(r))) if r == b"R" => {
                            match number(&g) {
                                Some(g) => Value::Ref(n, g),
                                None => Value::Number(n),
                            }
                        }
                        _ => {
                            self.at = save;
                            Value::Number(n)
                        }
                    }
                }
                None => Value::Other,
            },
            _ => Value::Other,
        })
    }

    fn skip_space(&mut self) {
        while let Some(&b) = self.text.get(self.at) {
            if is_space(b) {
                self.at += 1;
            } else if b == b'%' {
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|&c| c != b'\n' && c != b'\r')
                {
                    self.at += 1;
                }
            } else {
                break;
            }
        }
    }

    fn next(&mut self) -> Option<Token> {
        self.skip_space();
        let text = self.text;
        let b = *text.get(self.at)?;
        self.at += 1;
        Some(match b {
            b'/' => {
                let mut name = Vec::new();
                while let Some(&c) = text.get(self.at) {
                    if is_space(c) || is_delimiter(c) {
                        break;
                    }
                    self.at += 1;
                    let hex = |i: usize| text.get(i).and_then(|&h| (h as char).to_digit(16));
                    match (c, hex(self.at), hex(self.at + 1)) {
                        (b'#', Some(hi), Some(lo)) => {
                            name.push((hi * 16 + lo) as u8);
                            self.at += 2;
                        }
                        _ => name.push(c),
                    }
                }
                Token::Name(name)
            }
            b'<' if text.get(self.at) == Some(&b'<') => {
                self.at += 1;
                Token::DictOpen
            }
            b'>' if text.get(self.at) == Some(&b'>') => {
                self.at += 1;
                Token::DictClose
            }
            b'<' => {
                let close = text[self.at..].iter().position(|&c| c == b'>')?;
                self.at += close + 1;
                Token::Other
            }
            b'(' => {
                let mut depth = 1;
                while depth > 0 {
                    let c = *text.get(self.at)?;
                    self.at += 1;
                    match c {
                        b'\\' => self.at += 1,
                        b'(' => depth += 1,
                        b')' => depth -= 1,
                        _ => {}
                    }
                }
                Token::Other
            }
            b'[' => Token::ArrayOpen,
            b']' => Token::ArrayClose,
            _ => {
                let start = self.at - 1;
                while let Some(&c) = text.get(self.at) {
                    if is_space(c) || is_delimiter(c) {
                        break;
                    }
                    self.at += 1;
                }
                Token::Word(text[start..self.at].to_vec())
            }
        })
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\0')
}

fn is_delimiter(b: u8) -> bool {
    b"()<>[]{}/%".contains(&b)
}

/// Positions of `word` standing as a keyword (delimited on both sides).
fn keyword_positions<'a>(bytes: &'a [u8], word: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let finder = memchr_iter(bytes, word);
    finder.filter(move |&at| is_keyword(bytes, at, word.len()))
}

fn memchr_iter<'a>(bytes: &'a [u8], word: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let found = find(&bytes[from..], word)? + from;
        from = found + 1;
        Some(found)
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let at = hay[from..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?
            + from;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn is_keyword(bytes: &[u8], at: usize, len: usize) -> bool {
    let before = at.checked_sub(1).map(|i| bytes[i]);
    let after = bytes.get(at + len).copied();
    let boundary = |b: Option<u8>| b.is_none_or(|b| is_space(b) || is_delimiter(b));
    // `endobj` / `endstream` share the word; callers check for the `end` prefix themselves.
    (boundary(before) || before.is_some_and(|b| b == b'd')) && boundary(after)
}

fn preceded_by(bytes: &[u8], at: usize, prefix: &[u8]) -> bool {
    at >= prefix.len() && &bytes[at - prefix.len()..at] == prefix
}

/// Where a stream's data starts: after the end-of-line that follows the keyword.
fn data_start(bytes: &[u8], after_keyword: usize) -> Option<usize> {
    match bytes.get(after_keyword..after_keyword + 2)? {
        [b'\r', b'\n'] => Some(after_keyword + 2),
        [b'\n', _] | [b'\r', _] => Some(after_keyword + 1),
        _ => None,
    }
    .or_else(|| match bytes.get(after_keyword) {
        Some(b'\n') | Some(b'\r') => Some(after_keyword + 1),
        _ => None,
    })
}

/// The largest integer any `n g obj` in the file holds: the value of a /Length reference
/// (several definitions of one object may exist; the largest is the safe guess).
fn resolve_length(bytes: &[u8], n: u64, g: u64) -> Option<u64> {
    let header = format!("{n} {g} obj");
    memchr_iter(bytes, header.as_bytes())
        .filter(|&at| at == 0 || is_space(bytes[at - 1]) || is_delimiter(bytes[at - 1]))
        .filter_map(|at| {
            let mut tokens = Tokens {
                text: &bytes[at + header.len()..bytes.len().min(at + header.len() + 64)],
                at: 0,
            };
            match tokens.next()? {
                Token::Word(word) => number(&word),
                _ => None,
            }
        })
        .max()
}

/// Bytes from `start` to the next `endstream` (or the end of the file).
fn stream_len(bytes: &[u8], start: usize) -> usize {
    find(&bytes[start..], b"endstream").unwrap_or(bytes.len() - start)
}

/// Whether the file holds the name `/<name>`, written plainly or with `#xx` escapes.
fn has_name(bytes: &[u8], name: &[u8]) -> bool {
    let mut at = 0;
    while let Some(slash) = bytes[at..].iter().position(|&b| b == b'/') {
        let start = at + slash;
        let mut tokens = Tokens {
            text: &bytes[start..bytes.len().min(start + 3 * name.len() + 2)],
            at: 0,
        };
        if let Some(Token::Name(found)) = tokens.next()
            && found == name
            && bytes
                .get(start + tokens.at)
                .is_none_or(|&c| is_space(c) || is_delimiter(c))
        {
            return true;
        }
        at = start + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// zlib data of `mib` MiB of zeros, built from one compressed MiB repeated (deflate blocks
    /// flushed to a byte boundary chain), so a big bomb takes milliseconds to make.
    pub(crate) fn zlib_zero_bomb(mib: u64) -> Vec<u8> {
        use flate2::{Compress, Compression, FlushCompress};
        let mut raw = Compress::new(Compression::best(), false);
        let mut block = Vec::with_capacity(1 << 16);
        raw.compress_vec(&vec![0u8; 1 << 20], &mut block, FlushCompress::Sync)
            .unwrap();
        let mut end = Vec::with_capacity(64);
        raw.compress_vec(&[], &mut end, FlushCompress::Finish)
            .unwrap();
        let mut out = vec![0x78, 0xda];
        for _ in 0..mib {
            out.extend_from_slice(&block);
        }
        out.extend_from_slice(&end);
        let n = mib << 20;
        out.extend_from_slice(&((((n % 65521) << 16) | 1) as u32).to_be_bytes());
        out
    }

    #[test]
    fn the_bomb_builder_makes_valid_zlib() {
        let bomb = zlib_zero_bomb(3);
        let mut out = Vec::new();
        io::copy(&mut flate2::read::ZlibDecoder::new(&bomb[..]), &mut out).unwrap();
        assert_eq!(out.len(), 3 << 20);
        assert!(out.iter().all(|&b| b == 0));
    }

    /// What lopdf itself decodes `data` to with this /Filter.
    fn lopdf_len(data: &[u8], filter: lopdf::Object) -> usize {
        let dict = lopdf::dictionary! { "Filter" => filter };
        lopdf::Stream::new(dict, data.to_vec())
            .decompressed_content()
            .map_or(0, |d| d.len())
    }

    fn ascii85_encode(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in bytes.chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            let mut v = u32::from_be_bytes(word);
            let mut digits = [0u8; 5];
            for d in digits.iter_mut().rev() {
                *d = (v % 85) as u8 + b'!';
                v /= 85;
            }
            out.extend_from_slice(&digits[..chunk.len() + 1]);
        }
        out.extend_from_slice(b"~>");
        out
    }

    #[test]
    fn decoders_count_what_lopdf_decodes_and_stop_at_the_limit() {
        use lopdf::Object::{Array, Name};
        let name = |n: &str| Name(n.as_bytes().to_vec());
        let text = b"BT /F1 11 Tf (hello) Tj ET ".repeat(100);
        let flate = zlib(&text);
        let mut lzw = Vec::new();
        weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .into_stream(&mut lzw)
            .encode_all(&text[..])
            .status
            .unwrap();
        let cases: Vec<(&str, Vec<u8>, lopdf::Object, Vec<Filter>)> = vec![
            (
                "flate",
                flate.clone(),
                name("FlateDecode"),
                vec![Filter::Flate],
            ),
            ("lzw", lzw, name("LZWDecode"), vec![Filter::Lzw]),
            (
                "corrupt flate",
                b"x\x9cgarbage".to_vec(),
                name("FlateDecode"),
                vec![Filter::Flate],
            ),
            (
                "ascii85",
                ascii85_encode(b"Hello World"),
                name("ASCII85Decode"),
                vec![Filter::Ascii85],
            ),
            (
                "zzzz",
                b"zz~>".to_vec(),
                name("ASCII85Decode"),
                vec![Filter::Ascii85],
            ),
            (
                "a chain",
                ascii85_encode(&flate),
                Array(vec![name("ASCII85Decode"), name("FlateDecode")]),
                vec![Filter::Ascii85, Filter::Flate],
            ),
            (
                "unsupported",
                flate.clone(),
                name("DCTDecode"),
                vec![Filter::Unsupported],
            ),
        ];
        for (label, data, object, filters) in cases {
            let want = lopdf_len(&data, object) as u64;
            assert_eq!(decoded_size(&data, &filters, 1 << 20), want, "{label}");
            if want > 10 {
                assert!(
                    decoded_size(&data, &filters, 10) > 10,
                    "{label} over the limit"
                );
            }
        }
        assert!(decoded_size(&flate, &[Filter::Flate], 1 << 20) == text.len() as u64);
    }

    #[test]
    fn dictionaries_are_read_as_lopdf_reads_them() {
        let cases: Vec<(&[u8], Option<StreamDict>)> = vec![
            (
                b" << /Length 5 0 R /Filter /FlateDecode >>\n",
                Some(StreamDict {
                    filters: vec![Filter::Flate],
                    object_stream: false,
                    length: Some(Length::Ref(5, 0)),
                    predictor_row: None,
                }),
            ),
            (
                b"<</Type/ObjStm/N 3/First 20/Filter[/ASCII85Decode/Fl#61teDecode]/DecodeParms<</Predictor 12/Filter/LZWDecode>>>> ",
                Some(StreamDict {
                    filters: vec![Filter::Ascii85, Filter::Flate],
                    object_stream: true,
                    length: None,
                    predictor_row: Some(1),
                }),
            ),
            (
                b"<< /Subtype /Image /Title (a >> b \\) c) /Length 12 /Filter /DCTDecode >>\r\n",
                Some(StreamDict {
                    filters: vec![Filter::Unsupported],
                    object_stream: false,
                    length: Some(Length::Direct(12)),
                    predictor_row: None,
                }),
            ),
            (b"<< /Filter /FlateDecode >> junk ", None),
            (b"<< /Filter /FlateDecode ", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_dict(text), want, "{}", String::from_utf8_lossy(text));
        }
        assert!(has_name(b"trailer << /Encrypt 5 0 R >>", b"Encrypt"));
        assert!(has_name(b"trailer<</Encr#79pt 5 0 R>>", b"Encrypt"));
        assert!(!has_name(
            b"trailer << /EncryptMetadata false >>",
            b"Encrypt"
        ));
    }

    /// A file with one object whose stream has `dict` and `data`.
    fn one_stream(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut pdf = b"%PDF-1.7\n1 0 obj\n".to_vec();
        pdf.extend_from_slice(dict.as_bytes());
        pdf.extend_from_slice(b"\nstream\n");
        pdf.extend_from_slice(data);
        pdf.extend_from_slice(b"\nendstream\nendobj\n%%EOF\n");
        pdf
    }

    #[test]
    fn raw_scan_refuses_bombs_in_any_dress() {
        let bomb = zlib_zero_bomb((MAX_STREAM_INFLATED >> 20) + 1);
        let small = zlib(b"BT (ok) Tj ET");
        // (case, file, None when it passes or what the refusal says)
        let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
            (
                "a small stream",
                one_stream("<< /Filter /FlateDecode >>", &small),
                None,
            ),
            (
                "a flate bomb",
                one_stream("<< /Filter /FlateDecode >>", &bomb),
                Some("decompression bomb"),
            ),
            (
                "a bomb posing as an image",
                one_stream("<< /Subtype /Image /Filter /FlateDecode >>", &bomb),
                Some("decompression bomb"),
            ),
            (
                "a bomb behind an unreadable dictionary",
                one_stream("<< /Filter /FlateDecode /X (unclosed >>", &bomb),
                Some("decompression bomb"),
            ),
            (
                "a bomb in an encrypted object stream",
                {
                    let mut f = one_stream("<< /Type /ObjStm /Filter /FlateDecode >>", &bomb);
                    f.extend_from_slice(b"trailer << /Encrypt 9 0 R >>");
                    f
                },
                Some("an encrypted object stream could inflate"),
            ),
            (
                "an unsupported filter decodes nothing",
                one_stream("<< /Filter /JBIG2Decode >>", &bomb),
                None,
            ),
            (
                "a predictor row of 8 GB",
                one_stream(
                    "<< /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 2000000000 \
                     /Colors 4 >> >>",
                    &small,
                ),
                Some("predictor rows of 8000000000 bytes"),
            ),
            (
                "an ordinary predictor",
                one_stream(
                    "<< /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 5 >> >>",
                    &small,
                ),
                None,
            ),
        ];
        for (name, pdf, refusal) in cases {
            match (scan_raw(&pdf, "t.pdf"), refusal) {
                (Ok(_), None) => {}
                (Err(PdfError::Limit { what, .. }), Some(expected)) => {
                    assert!(what.contains(expected), "{name}: {what}")
                }
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }
}

#[cfg(test)]
mod real_files {
    use super::*;

    /// Real papers pass the limits with room to spare; the scan costs little next to
    /// extraction.
    #[test]
    fn real_papers_pass_the_raw_scan() {
        let mut files: Vec<std::path::PathBuf> = vec![
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paperdigest-note.pdf"),
        ];
        if let Ok(dir) = std::fs::read_dir("/work/shared/papers") {
            files.extend(dir.filter_map(Result::ok).map(|e| e.path()));
        }
        for path in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        {
            let bytes = std::fs::read(path).unwrap();
            let started = std::time::Instant::now();
            let scan =
                scan_raw(&bytes, "real.pdf").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            eprintln!(
                "{}: {} bytes, {} streams inflating to {} bytes, scanned in {:.0} ms",
                path.display(),
                bytes.len(),
                scan.streams,
                scan.inflated,
                started.elapsed().as_secs_f64() * 1000.0
            );
            assert!(scan.streams > 0, "{}", path.display());
            assert!(scan.inflated < MAX_TOTAL_INFLATED / 8, "{}", path.display());
        }
    }
}
