//! Files the tool keeps: atomic writes (a temporary file in the same folder, flushed, renamed
//! over the target only when complete, so a crash never leaves half a file behind) and the
//! on-disk cache of what was fetched (day listings, paper metadata, PDFs) or derived from it
//! (extracted text, summaries). Two runs may share one cache: entries are replaced atomically and
//! writers of one entry take turns through an exclusive lock on `<entry>.lock`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::paper::ArxivId;

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct StoreError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Writes `bytes` to `path` atomically, creating the parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let err = |source| StoreError {
        path: path.to_path_buf(),
        source,
    };
    let tmp = temp_sibling(path);
    if let Some(parent) = tmp.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    remove_stale_temps(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// A fresh temporary name beside `path` (same folder, so the final rename is atomic), unique to
/// this process and call so concurrent writers never share one. Hidden, ending in `.tmp`.
pub fn temp_sibling(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    parent.join(format!(".{file_name}.{}.{n}.tmp", std::process::id()))
}

/// Removes the temporary files that writers of `path` killed mid-write left beside it (see
/// [`temp_sibling`]): those of processes that no longer run. Temporary files of this process
/// and of live ones are left alone. Only on Linux, where `/proc` tells which processes run.
pub fn remove_stale_temps(path: &Path) {
    let (Some(parent), Some(file_name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    remove_stale_temps_in(parent, &format!(".{}.", file_name.to_string_lossy()));
}

/// Removes the dead writers' temporary files in `dir` whose names start with `prefix`.
fn remove_stale_temps_in(dir: &Path, prefix: &str) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        // `<prefix>...<pid>.<n>.tmp`, read from the end.
        let Some(pid) = name
            .to_str()
            .filter(|n| n.starts_with(prefix))
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|rest| rest.rsplit_once('.'))
            .filter(|(_, n)| digits(n))
            .and_then(|(head, _)| head.rsplit_once('.'))
            .map(|(_, pid)| pid)
            .filter(|pid| digits(pid))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The hex SHA-256 of `bytes`: a key for entries derived from content (e.g. a local PDF's text).
pub fn content_key(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The on-disk cache. Layout under the root:
///
/// ```text
/// days/2026-01-09.json          a day's listing
/// meta/2601.05242.json          a paper's metadata (old-style ids: hep-th_9901001)
/// pdf/2601.05242/v2.pdf         a paper's PDF, one file per version
/// pdf/2601.05242/latest.pdf     the PDF of a paper whose version was unknown when fetched
/// <kind>/<name>                 anything else, e.g. text/<key>.txt (see `entry_path`)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The platform's cache folder (`~/.cache/paperdigest` on Linux), if the platform has one.
    pub fn default_root() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("paperdigest"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn day_path(&self, date: NaiveDate) -> PathBuf {
        self.root
            .join("days")
            .join(format!("{}.json", date.format("%Y-%m-%d")))
    }

    /// Metadata is kept per paper, not per version: the newest fetch wins.
    pub fn meta_path(&self, id: &ArxivId) -> PathBuf {
        self.root.join("meta").join(format!("{}.json", id_key(id)))
    }

    /// Where the PDF of exactly this version goes; `latest.pdf` for an id without version.
    pub fn pdf_path(&self, id: &ArxivId) -> PathBuf {
        let name = match id.version() {
            Some(v) => format!("v{v}.pdf"),
            None => "latest.pdf".to_string(),
        };
        self.root.join("pdf").join(id_key(id)).join(name)
    }

    /// A cached PDF for `id`: the exact version when the id has one; otherwise the highest
    /// cached version, else the one fetched as `latest`.
    pub fn find_pdf(&self, id: &ArxivId) -> Option<PathBuf> {
        if id.version().is_some() {
            let path = self.pdf_path(id);
            return path.is_file().then_some(path);
        }
        let dir = self.root.join("pdf").join(id_key(id));
        let highest = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let version = name.strip_prefix('v')?.strip_suffix(".pdf")?;
                Some((version.parse::<u32>().ok()?, e.path()))
            })
            .filter(|(_, path)| path.is_file())
            .max_by_key(|(version, _)| *version)
            .map(|(_, path)| path);
        highest.or_else(|| {
            let latest = dir.join("latest.pdf");
            latest.is_file().then_some(latest)
        })
    }

    /// A free-form entry `<root>/<kind>/<name>`, for what other rooms cache (extracted text,
    /// summaries). `name` should carry everything that produced the entry, e.g.
    /// `format!("{}.{EXTRACTOR_VERSION}.txt", content_key(pdf_bytes))`. Path separators and
    /// other unsafe characters in either part are replaced by `_`.
    pub fn entry_path(&self, kind: &str, name: &str) -> PathBuf {
        self.root.join(sanitize(kind)).join(sanitize(name))
    }

    /// Removes what writers killed mid-write left in the cache: temporary files of processes
    /// that no longer run (entries themselves are only ever replaced whole). Run once per
    /// command; cheap (one listing per folder).
    pub fn sweep_stale_temps(&self) {
        let Ok(kinds) = std::fs::read_dir(&self.root) else {
            return;
        };
        for kind in kinds.filter_map(Result::ok).map(|e| e.path()) {
            if !kind.is_dir() {
                continue;
            }
            remove_stale_temps_in(&kind, ".");
            // PDFs sit one level deeper, in a folder per paper.
            if kind.file_name().is_some_and(|n| n == "pdf")
                && let Ok(papers) = std::fs::read_dir(&kind)
            {
                for paper in papers.filter_map(Result::ok).map(|e| e.path()) {
                    remove_stale_temps_in(&paper, ".");
                }
            }
        }
    }

    /// The bytes of an entry; `Ok(None)` when it is not cached.
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Replaces an entry atomically while holding its lock.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let _lock = self.lock(path)?;
        write_atomic(path, bytes)
    }

    /// Waits for, then holds, the exclusive lock of one entry until the guard is dropped. Use it
    /// around check-then-fill (e.g. "is the PDF there? if not, download it") so two runs do the
    /// work once.
    pub fn lock(&self, path: &Path) -> Result<EntryLock, StoreError> {
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let err = |source| StoreError {
            path: lock_path.clone(),
            source,
        };
        if let Some(parent) = lock_path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(err)?;
        file.lock().map_err(err)?;
        Ok(EntryLock { _file: file })
    }
}

/// Holds an entry's lock; dropping it closes the file, which releases the lock.
#[derive(Debug)]
pub struct EntryLock {
    _file: File,
}

/// A file-name-safe form of an arXiv id without its version: `hep-th/9901001` -> `hep-th_9901001`
/// (new-style ids never contain `_`, so the mapping is one to one).
fn id_key(id: &ArxivId) -> String {
    id.base().replace('/', "_")
}

fn sanitize(part: &str) -> String {
    let cleaned: String = part
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.trim_start_matches('.') {
        "" => "_".to_string(),
        _ if cleaned.starts_with('.') => format!("_{cleaned}"),
        _ => cleaned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.md");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.md"]);
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.md");
        // A pid above the kernel's maximum never runs; this process and pid 1 always do.
        let dead = dir.path().join(".out.md.4194305.0.tmp");
        let mine = temp_sibling(&path);
        let live = dir.path().join(".out.md.1.3.tmp");
        let other_file = dir.path().join(".other.md.4194305.0.tmp");
        for p in [&dead, &mine, &live, &other_file] {
            std::fs::write(p, b"half").unwrap();
        }
        write_atomic(&path, b"whole").unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut want = vec![
            ".out.md.1.3.tmp".to_string(),
            ".other.md.4194305.0.tmp".to_string(),
            mine.file_name().unwrap().to_string_lossy().into_owned(),
            "out.md".to_string(),
        ];
        want.sort();
        assert_eq!(names, want);
    }

    #[test]
    fn a_sweep_removes_dead_writers_temporaries_everywhere_in_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let id: ArxivId = "2601.05242v2".parse().unwrap();
        let pdf = cache.pdf_path(&id);
        let text = cache.entry_path("text", "k.json");
        write_atomic(&pdf, b"%PDF-").unwrap();
        write_atomic(&text, b"{}").unwrap();
        let dead_pdf = pdf.with_file_name(".v2.pdf.4194305.7.tmp");
        let dead_text = text.with_file_name(".k.json.4194305.0.tmp");
        let live = text.with_file_name(".k.json.1.0.tmp");
        for p in [&dead_pdf, &dead_text, &live] {
            std::fs::write(p, b"half").unwrap();
        }
        cache.sweep_stale_temps();
        assert!(!dead_pdf.exists() && !dead_text.exists());
        assert!(live.exists() && pdf.exists() && text.exists());
    }

    #[test]
    fn failure_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("child.md"), b"y").unwrap_err();
        assert!(err.to_string().contains("child.md"));
    }

    #[test]
    fn concurrent_writers_of_one_entry_leave_one_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let path = cache.entry_path("text", "k.txt");
        let writers: Vec<_> = (0..8u8)
            .map(|i| {
                let (cache, path) = (cache.clone(), path.clone());
                std::thread::spawn(move || cache.write(&path, &vec![b'a' + i; 64 * 1024]))
            })
            .collect();
        for w in writers {
            w.join().unwrap().unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 64 * 1024);
        assert!(bytes.iter().all(|&b| b == bytes[0]), "mixed writers");
        let mut names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["k.txt", "k.txt.lock"]);
    }

    #[test]
    fn paths_key_versions_separately() {
        let cache = Cache::new("/c");
        let cases = [
            (
                "2601.05242",
                "/c/pdf/2601.05242/latest.pdf",
                "/c/meta/2601.05242.json",
            ),
            (
                "2601.05242v2",
                "/c/pdf/2601.05242/v2.pdf",
                "/c/meta/2601.05242.json",
            ),
            (
                "hep-th/9901001v1",
                "/c/pdf/hep-th_9901001/v1.pdf",
                "/c/meta/hep-th_9901001.json",
            ),
        ];
        for (id, pdf, meta) in cases {
            let id: ArxivId = id.parse().unwrap();
            assert_eq!(cache.pdf_path(&id), Path::new(pdf), "{id}");
            assert_eq!(cache.meta_path(&id), Path::new(meta), "{id}");
        }
        let date = NaiveDate::from_ymd_opt(2026, 1, 9).unwrap();
        assert_eq!(cache.day_path(date), Path::new("/c/days/2026-01-09.json"));
        assert_eq!(
            cache.entry_path("text", "../x/y.txt"),
            Path::new("/c/text/_.._x_y.txt")
        );
    }

    #[test]
    fn find_pdf_prefers_exact_then_highest_then_latest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let id = |s: &str| s.parse::<ArxivId>().unwrap();
        assert_eq!(cache.find_pdf(&id("2601.05242")), None);
        write_atomic(&cache.pdf_path(&id("2601.05242")), b"%PDF-latest").unwrap();
        assert_eq!(
            cache.find_pdf(&id("2601.05242")),
            Some(cache.pdf_path(&id("2601.05242")))
        );
        for v in ["2601.05242v2", "2601.05242v10", "2601.05242v9"] {
            write_atomic(&cache.pdf_path(&id(v)), b"%PDF-").unwrap();
        }
        assert_eq!(
            cache.find_pdf(&id("2601.05242")),
            Some(cache.pdf_path(&id("2601.05242v10")))
        );
        assert_eq!(
            cache.find_pdf(&id("2601.05242v2")),
            Some(cache.pdf_path(&id("2601.05242v2")))
        );
        assert_eq!(cache.find_pdf(&id("2601.05242v3")), None);
    }

    #[test]
    fn an_entry_lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let path = cache.entry_path("text", "k.txt");
        let held = cache.lock(&path).unwrap();
        let lock_file = File::options()
            .write(true)
            .open(dir.path().join("text/k.txt.lock"))
            .unwrap();
        assert!(lock_file.try_lock().is_err(), "second holder got the lock");
        drop(held);
        assert!(lock_file.try_lock().is_ok());
    }

    #[test]
    fn missing_entries_read_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert!(cache.read(&dir.path().join("nope")).unwrap().is_none());
        assert_eq!(content_key(b"abc").len(), 64);
    }
}
