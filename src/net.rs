//! The one HTTP client of the tool, and the manners it keeps: connect and read timeouts, retries
//! with exponential backoff and jitter on 429, 5xx, timeouts and cut-off bodies (honouring
//! `Retry-After`, within a cap on the total wait), a minimum interval between requests to a host,
//! no further requests to a host after it answered 403, a descriptive User-Agent, checked PDF
//! downloads written through a temporary file, and an offline switch under which no request is
//! ever attempted.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

/// How the client behaves. `Default` gives the production values.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// An e-mail address put in the User-Agent so a service can reach whoever runs the tool.
    pub contact: Option<String>,
    pub connect_timeout: Duration,
    /// Longest wait for the response headers, and for each piece of the body.
    pub read_timeout: Duration,
    /// Retries after the first attempt, for errors that may pass (429, 5xx, timeouts, cut-off
    /// bodies).
    pub max_retries: u32,
    /// The first backoff delay; each retry doubles it (with jitter) unless the server says when.
    pub backoff_base: Duration,
    /// The most one request may spend waiting between attempts; past it the client gives up.
    pub max_total_wait: Duration,
    /// PDFs larger than this are refused.
    pub max_pdf_bytes: u64,
    /// Never open a socket: every request fails with [`NetError::Offline`].
    pub offline: bool,
    /// Minimum interval between the starts of two requests to a host, as `host` or `host:port`.
    pub host_intervals: Vec<(String, Duration)>,
    /// Draw download bars (only ever on a terminal).
    pub show_progress: bool,
}

/// arXiv asks for at most one request every 3 seconds.
pub const ARXIV_MIN_INTERVAL: Duration = Duration::from_secs(3);

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            contact: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_retries: 4,
            backoff_base: Duration::from_secs(1),
            max_total_wait: Duration::from_secs(120),
            max_pdf_bytes: 100 * 1024 * 1024,
            offline: false,
            host_intervals: vec![
                ("export.arxiv.org".to_string(), ARXIV_MIN_INTERVAL),
                ("arxiv.org".to_string(), ARXIV_MIN_INTERVAL),
            ],
            show_progress: false,
        }
    }
}

/// What went wrong with a request; each variant names the URL (or file) concerned.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("offline: not fetching {url}")]
    Offline { url: String },
    #[error("{host} answered 403 Forbidden earlier in this run; not asking it again for {url}")]
    Blocked { url: String, host: String },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("no answer from {url} within {:.1} s", after.as_secs_f64())]
    Timeout { url: String, after: Duration },
    #[error("HTTP {status} from {url}{}{}", excerpt_suffix(body_excerpt), retry_suffix(*retry_after))]
    Status {
        url: String,
        status: u16,
        body_excerpt: String,
        retry_after: Option<Duration>,
    },
    #[error("body of {url} cut off: expected {expected} bytes, received {got}")]
    Truncated {
        url: String,
        expected: u64,
        got: u64,
    },
    #[error("{url} is not a PDF (Content-Type `{content_type}`, starts with {starts_with:?})")]
    NotPdf {
        url: String,
        content_type: String,
        starts_with: String,
    },
    #[error("{url} is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("cannot decode the answer of {url}: {reason}")]
    Decode { url: String, reason: String },
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp { attempts: u32, last: Box<NetError> },
    #[error("invalid URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up the HTTP client: {reason}")]
    Client { reason: String },
}

impl NetError {
    /// The error of the last attempt, looking through [`NetError::GaveUp`].
    pub fn last(&self) -> &NetError {
        match self {
            NetError::GaveUp { last, .. } => last.last(),
            other => other,
        }
    }

    /// The HTTP status the server answered, if it answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self.last() {
            NetError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The client. One per run: pacing, the 403 block list and the request counter are per client.
pub struct HttpClient {
    client: Client,
    cfg: NetConfig,
    /// Per host: its minimum interval and when the next request may start.
    pacing: Mutex<HashMap<String, (Duration, Option<Instant>)>>,
    forbidden: Mutex<HashSet<String>>,
    requests: AtomicU64,
    bars: Option<MultiProgress>,
}

impl HttpClient {
    pub fn new(cfg: NetConfig) -> Result<HttpClient, NetError> {
        let client = Client::builder()
            .user_agent(user_agent(cfg.contact.as_deref()))
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.read_timeout)
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|e| NetError::Client {
                reason: error_chain(&e),
            })?;
        let pacing = cfg
            .host_intervals
            .iter()
            .map(|(host, interval)| (host.to_ascii_lowercase(), (*interval, None)))
            .collect();
        let bars = (cfg.show_progress && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Ok(HttpClient {
            client,
            cfg,
            pacing: Mutex::new(pacing),
            forbidden: Mutex::new(HashSet::new()),
            requests: AtomicU64::new(0),
            bars,
        })
    }

    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    pub fn is_offline(&self) -> bool {
        self.cfg.offline
    }

    /// How many requests went out (attempts, retries included).
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Sets the minimum interval between requests to `host` (`host` or `host:port`).
    pub fn set_host_interval(&self, host: &str, interval: Duration) {
        let mut pacing = lock(&self.pacing);
        let entry = pacing
            .entry(host.to_ascii_lowercase())
            .or_insert((interval, None));
        entry.0 = interval;
    }

    /// GETs `url` and decodes its JSON body.
    pub fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, NetError> {
        let bytes = self.get_bytes(url, "application/json")?;
        serde_json::from_slice(&bytes).map_err(|e| NetError::Decode {
            url: url.to_string(),
            reason: format!("malformed JSON: {e}"),
        })
    }

    /// GETs `url` as UTF-8 text.
    pub fn get_text(&self, url: &str) -> Result<String, NetError> {
        let bytes = self.get_bytes(url, "*/*")?;
        String::from_utf8(bytes).map_err(|e| NetError::Decode {
            url: url.to_string(),
            reason: format!("not UTF-8: {e}"),
        })
    }

    /// Downloads the PDF at `url` to `dest` (parent folders created) and returns its size. The
    /// body goes to a temporary file beside `dest`, renamed over it only when complete, with the
    /// `%PDF-` magic at its start, within the size limit and as long as announced.
    pub fn download_pdf(&self, url: &str, dest: &Path) -> Result<u64, NetError> {
        self.with_retries(url, || self.download_once(url, dest))
    }

    /// A progress bar drawn with the client's others, or a hidden one when bars are off.
    pub fn progress_bar(&self, len: Option<u64>, template: &str) -> ProgressBar {
        let Some(multi) = &self.bars else {
            return ProgressBar::hidden();
        };
        let bar = match len {
            Some(len) => ProgressBar::new(len),
            None => ProgressBar::new_spinner(),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        multi.add(bar)
    }

    fn get_bytes(&self, url: &str, accept: &str) -> Result<Vec<u8>, NetError> {
        self.with_retries(url, || {
            let response = self.send(url, accept)?;
            let mut body = Vec::new();
            let limit = MAX_TEXT_BYTES;
            read_body(
                response,
                url,
                limit,
                self.cfg.read_timeout,
                None,
                &mut |chunk| {
                    body.extend_from_slice(chunk);
                    Ok(())
                },
            )?;
            Ok(body)
        })
    }

    fn download_once(&self, url: &str, dest: &Path) -> Result<u64, NetError> {
        let response = self.send(url, "application/pdf")?;
        let content_type = header_str(response.headers(), CONTENT_TYPE);
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| NetError::Io { path, source }
        };
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        crate::store::remove_stale_temps(dest);
        let tmp = crate::store::temp_sibling(dest);
        let bar = self.progress_bar(
            response.content_length(),
            "  {msg} {bytes}/{total_bytes} {bar:30} {bytes_per_sec}",
        );
        bar.set_message(dest_label(dest));
        let result = (|| {
            let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
            let mut head: Vec<u8> = Vec::with_capacity(PDF_MAGIC.len());
            let check_head = |head: &[u8]| {
                if head.starts_with(PDF_MAGIC) {
                    Ok(())
                } else {
                    Err(NetError::NotPdf {
                        url: url.to_string(),
                        content_type: content_type.clone(),
                        starts_with: printable_excerpt(head),
                    })
                }
            };
            let size = read_body(
                response,
                url,
                self.cfg.max_pdf_bytes,
                self.cfg.read_timeout,
                Some(&bar),
                &mut |chunk| {
                    if head.len() < PDF_MAGIC.len() {
                        head.extend_from_slice(chunk);
                        if head.len() >= PDF_MAGIC.len() {
                            check_head(&head)?;
                        }
                    }
                    file.write_all(chunk).map_err(io_err(&tmp))
                },
            )?;
            if head.len() < PDF_MAGIC.len() {
                check_head(&head)?;
            }
            file.sync_all().map_err(io_err(&tmp))?;
            std::fs::rename(&tmp, dest).map_err(io_err(dest))?;
            Ok(size)
        })();
        bar.finish_and_clear();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries or the wait budget run
    /// out.
    fn with_retries<T>(
        &self,
        url: &str,
        mut attempt: impl FnMut() -> Result<T, NetError>,
    ) -> Result<T, NetError> {
        let mut waited = Duration::ZERO;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let error = match attempt() {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let Some(asked) = retry_delay(&error) else {
                return Err(error);
            };
            let give_up = |last| NetError::GaveUp {
                attempts,
                last: Box::new(last),
            };
            if attempts > self.cfg.max_retries {
                return Err(give_up(error));
            }
            let delay = asked.unwrap_or_else(|| backoff(self.cfg.backoff_base, attempts - 1));
            if waited + delay > self.cfg.max_total_wait {
                return Err(give_up(error));
            }
            tracing::warn!(%url, %error, delay_s = delay.as_secs_f64(), "retrying");
            std::thread::sleep(delay);
            waited += delay;
        }
    }

    /// One GET: the offline switch, the 403 block list and the host's pacing come first; an
    /// error status comes back as [`NetError::Status`].
    fn send(&self, url: &str, accept: &str) -> Result<Response, NetError> {
        if self.cfg.offline {
            return Err(NetError::Offline {
                url: url.to_string(),
            });
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| NetError::BadUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let authority = match parsed.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        if lock(&self.forbidden).contains(&authority) {
            return Err(NetError::Blocked {
                url: url.to_string(),
                host: authority,
            });
        }
        self.pace(&host, &authority);
        self.requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%url, "GET");
        let response = self
            .client
            .get(parsed)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .map_err(|e| self.transport_error(url, &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status == reqwest::StatusCode::FORBIDDEN {
            tracing::warn!(host = %authority, "403 Forbidden: no more requests to this host");
            lock(&self.forbidden).insert(authority);
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        Err(NetError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            body_excerpt: body_excerpt(response),
            retry_after,
        })
    }

    /// Waits until a request to this host may start, and books the next slot.
    fn pace(&self, host: &str, authority: &str) {
        let wait = {
            let mut pacing = lock(&self.pacing);
            let key = if pacing.contains_key(authority) {
                authority
            } else {
                host
            };
            let Some((interval, next)) = pacing.get_mut(key) else {
                return;
            };
            let now = Instant::now();
            let start = next.map_or(now, |next| next.max(now));
            *next = Some(start + *interval);
            start - now
        };
        if !wait.is_zero() {
            tracing::debug!(host = authority, wait_s = wait.as_secs_f64(), "pacing");
            std::thread::sleep(wait);
        }
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> NetError {
        let url = url.to_string();
        if e.is_timeout() {
            let after = if e.is_connect() {
                self.cfg.connect_timeout
            } else {
                self.cfg.read_timeout
            };
            NetError::Timeout { url, after }
        } else if e.is_connect() {
            NetError::Unreachable {
                url,
                reason: error_chain(e),
            }
        } else {
            NetError::Transport {
                url,
                reason: error_chain(e),
            }
        }
    }
}

/// The User-Agent: who we are, where to read about us, and who to write to.
pub fn user_agent(contact: Option<&str>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match contact.map(str::trim).filter(|c| !c.is_empty()) {
        Some(contact) => {
            format!("paperdigest/{version} (+https://github.com/paperdigest; mailto:{contact})")
        }
        None => format!("paperdigest/{version} (+https://github.com/paperdigest)"),
    }
}

/// A `Retry-After` value, in seconds or as an HTTP date, as a wait from `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Bodies other than PDFs (JSON, Atom, error pages) are refused past this size.
const MAX_TEXT_BYTES: u64 = 32 * 1024 * 1024;
const PDF_MAGIC: &[u8] = b"%PDF-";
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// `None` for errors that will not pass by retrying; `Some(wait the server asked for)` otherwise.
fn retry_delay(error: &NetError) -> Option<Option<Duration>> {
    match error {
        NetError::Status {
            status,
            retry_after,
            ..
        } if *status == 429 || (500..600).contains(status) => Some(*retry_after),
        NetError::Timeout { .. } | NetError::Truncated { .. } | NetError::Transport { .. } => {
            Some(None)
        }
        _ => None,
    }
}

/// `base * 2^retry`, capped, with "equal jitter": a random point in its upper half, so that
/// clients that failed together do not come back together.
fn backoff(base: Duration, retry: u32) -> Duration {
    let full = base
        .checked_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF);
    let half = full / 2;
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let jitter_nanos = u64::try_from(half.as_nanos())
        .ok()
        .filter(|&n| n > 0)
        .map_or(0, |n| random % n);
    half + Duration::from_nanos(jitter_nanos)
}

/// Streams a body to `sink`, enforcing `limit` and comparing what arrived with Content-Length.
fn read_body(
    mut response: Response,
    url: &str,
    limit: u64,
    read_timeout: Duration,
    bar: Option<&ProgressBar>,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), NetError>,
) -> Result<u64, NetError> {
    let expected = response.content_length();
    let too_large = || NetError::TooLarge {
        url: url.to_string(),
        limit,
    };
    if expected.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        let n = match response.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if io_is_timeout(&e) => {
                return Err(NetError::Timeout {
                    url: url.to_string(),
                    after: read_timeout,
                });
            }
            Err(e) => {
                return Err(match expected {
                    Some(expected) if got < expected => NetError::Truncated {
                        url: url.to_string(),
                        expected,
                        got,
                    },
                    _ => NetError::Transport {
                        url: url.to_string(),
                        reason: error_chain(&e),
                    },
                });
            }
        };
        got += n as u64;
        if got > limit {
            return Err(too_large());
        }
        sink(&buf[..n])?;
        if let Some(bar) = bar {
            bar.set_position(got);
        }
    }
    match expected {
        Some(expected) if expected != got => Err(NetError::Truncated {
            url: url.to_string(),
            expected,
            got,
        }),
        _ => Ok(got),
    }
}

/// The start of an error body, whitespace collapsed, for the error message.
fn body_excerpt(response: Response) -> String {
    let mut head = Vec::new();
    let _ = response.take(600).read_to_end(&mut head);
    let text = String::from_utf8_lossy(&head);
    let mut excerpt: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if excerpt.chars().count() > 200 {
        excerpt = excerpt.chars().take(200).collect::<String>() + "…";
    }
    excerpt
}

fn printable_excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn header_str(headers: &HeaderMap, name: reqwest::header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string()
}

fn io_is_timeout(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> =
        e.get_ref().map(|r| r as &(dyn std::error::Error + 'static));
    while let Some(err) = source {
        if let Some(re) = err.downcast_ref::<reqwest::Error>()
            && re.is_timeout()
        {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// An error and its causes on one line (reqwest's own message alone is often just
/// "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = source.and_then(std::error::Error::source);
    }
    text
}

fn dest_label(dest: &Path) -> String {
    let parts: Vec<_> = dest
        .iter()
        .rev()
        .take(2)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

fn excerpt_suffix(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    }
}

fn retry_suffix(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (Retry-After {} s)", d.as_secs()),
        None => String::new(),
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain data; keep going.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Fri, 09 Jan 2026 12:00:00 GMT").unwrap();
        let cases = [
            ("120", Some(Duration::from_secs(120))),
            (" 0 ", Some(Duration::ZERO)),
            (
                "Fri, 09 Jan 2026 12:00:30 GMT",
                Some(Duration::from_secs(30)),
            ),
            ("Fri, 09 Jan 2026 11:00:00 GMT", Some(Duration::ZERO)),
            ("soon", None),
            ("-5", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_in_the_upper_half_and_is_capped() {
        let base = Duration::from_millis(100);
        for retry in 0..5u32 {
            let full = base * 2u32.pow(retry);
            for _ in 0..20 {
                let d = backoff(base, retry);
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
            }
        }
        assert!(backoff(base, 40) <= MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }

    #[test]
    fn only_passing_errors_are_retried() {
        let five = Some(Duration::from_secs(5));
        let limited = NetError::Status {
            url: "u".into(),
            status: 429,
            body_excerpt: String::new(),
            retry_after: five,
        };
        assert_eq!(retry_delay(&limited), Some(five));
        assert_eq!(retry_delay(&status_error(503)), Some(None));
        for status in [400, 403, 404] {
            assert_eq!(retry_delay(&status_error(status)), None);
        }
        let not_pdf = NetError::NotPdf {
            url: "u".into(),
            content_type: "text/html".into(),
            starts_with: "<html>".into(),
        };
        assert_eq!(retry_delay(&not_pdf), None);
        let cut = NetError::Truncated {
            url: "u".into(),
            expected: 10,
            got: 5,
        };
        assert_eq!(retry_delay(&cut), Some(None));
    }

    fn status_error(status: u16) -> NetError {
        NetError::Status {
            url: "u".into(),
            status,
            body_excerpt: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn user_agent_names_tool_version_and_contact() {
        let ua = user_agent(Some("me@example.org"));
        assert!(ua.starts_with(&format!("paperdigest/{} (", env!("CARGO_PKG_VERSION"))));
        assert!(ua.ends_with("; mailto:me@example.org)"), "{ua}");
        assert!(!user_agent(Some("  ")).contains("mailto"));
    }

    #[test]
    fn gave_up_shows_the_last_error_and_its_status() {
        let e = NetError::GaveUp {
            attempts: 3,
            last: Box::new(status_error(503)),
        };
        assert_eq!(e.status(), Some(503));
        assert_eq!(e.to_string(), "HTTP 503 from u (gave up after 3 attempts)");
    }

    #[test]
    fn offline_client_fails_before_any_request() {
        let client = HttpClient::new(NetConfig {
            offline: true,
            ..NetConfig::default()
        })
        .unwrap();
        let err = client.get_text("http://127.0.0.1:9/x").unwrap_err();
        assert!(matches!(err, NetError::Offline { .. }), "{err}");
        assert_eq!(client.requests_made(), 0);
    }
}
