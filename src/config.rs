//! Settings and where they come from: built-in defaults, then the config file, then the
//! environment, then command-line flags, each overriding the one before.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::llm::KvCacheType;
use crate::paper::Lang;

/// The name of the model used when none is chosen: the smallest one, which runs anywhere.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// Every setting, fully resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub model: String,
    pub lang: Lang,
    pub device: String,
    /// Upper bound on the prompt plus answer, in tokens; also capped by the model.
    pub max_context: usize,
    /// How the attention cache stores keys and values.
    pub kv_cache: KvCacheType,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
    /// Most tokens the model writes for one prose section.
    pub max_tokens: usize,
    pub prompts_dir: Option<PathBuf>,
    pub patent_focus: Option<String>,
    pub models_dir: Option<PathBuf>,
    pub registry_dir: Option<PathBuf>,
    pub hf_endpoint: Option<String>,
    pub hf_token: Option<String>,
    pub arxiv_endpoint: Option<String>,
    /// Paper cache (metadata, PDFs, extracted text); `None` is the platform cache dir.
    pub cache_dir: Option<PathBuf>,
    /// Contact put in the User-Agent, as arXiv asks of API clients.
    pub contact: Option<String>,
    /// Never open a socket: work from the cache and local files.
    pub offline: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: DEFAULT_MODEL.to_string(),
            lang: Lang::Vi,
            device: "auto".to_string(),
            max_context: 4096,
            kv_cache: KvCacheType::F16,
            temperature: 0.2,
            top_p: 0.9,
            seed: 0,
            max_tokens: 256,
            prompts_dir: None,
            patent_focus: None,
            models_dir: None,
            registry_dir: None,
            hf_endpoint: None,
            hf_token: None,
            arxiv_endpoint: None,
            cache_dir: None,
            contact: None,
            offline: false,
        }
    }
}

/// The config file: every key optional; an unknown key is an error, so a typo is not ignored.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub model: Option<String>,
    pub lang: Option<Lang>,
    pub device: Option<String>,
    pub max_context: Option<usize>,
    pub kv_cache: Option<KvCacheType>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub max_tokens: Option<usize>,
    pub prompts_dir: Option<PathBuf>,
    pub patent_focus: Option<String>,
    pub models_dir: Option<PathBuf>,
    pub registry_dir: Option<PathBuf>,
    pub hf_endpoint: Option<String>,
    pub arxiv_endpoint: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub contact: Option<String>,
}

/// Values given on the command line; `None` leaves the setting to lower layers.
#[derive(Debug, Clone, Default)]
pub struct FlagOverrides {
    pub model: Option<String>,
    pub lang: Option<Lang>,
    pub device: Option<String>,
    pub max_context: Option<usize>,
    pub kv_cache: Option<KvCacheType>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub max_tokens: Option<usize>,
    pub prompts_dir: Option<PathBuf>,
    pub patent_focus: Option<String>,
    pub models_dir: Option<PathBuf>,
    pub hf_endpoint: Option<String>,
    pub arxiv_endpoint: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub contact: Option<String>,
    pub offline: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("environment variable {name}={value:?} is not valid: {reason}")]
    Env {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("{name} must be {expected}, got {value}")]
    OutOfRange {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
}

impl FileConfig {
    /// Reads the config file at `path`; `Ok(None)` when there is none and none was asked for.
    pub fn load(path: &Path, required: bool) -> Result<Option<FileConfig>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source: Box::new(source),
            })
    }

    /// `$PAPERDIGEST_CONFIG`, else `<config dir>/paperdigest/config.toml`.
    pub fn default_path() -> Option<PathBuf> {
        std::env::var_os("PAPERDIGEST_CONFIG")
            .map(PathBuf::from)
            .or_else(|| dirs::config_dir().map(|d| d.join("paperdigest").join("config.toml")))
    }
}

impl Settings {
    /// Layers the config file, the environment (read through `env`) and the flags over the
    /// defaults, and checks the result.
    pub fn resolve(
        file: Option<FileConfig>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: FlagOverrides,
    ) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        if let Some(f) = file {
            set(&mut s.model, f.model);
            set(&mut s.lang, f.lang);
            set(&mut s.device, f.device);
            set(&mut s.max_context, f.max_context);
            set(&mut s.kv_cache, f.kv_cache);
            set(&mut s.temperature, f.temperature);
            set(&mut s.top_p, f.top_p);
            set(&mut s.seed, f.seed);
            set(&mut s.max_tokens, f.max_tokens);
            s.prompts_dir = f.prompts_dir.or(s.prompts_dir);
            s.patent_focus = f.patent_focus.or(s.patent_focus);
            s.models_dir = f.models_dir.or(s.models_dir);
            s.registry_dir = f.registry_dir.or(s.registry_dir);
            s.hf_endpoint = f.hf_endpoint.or(s.hf_endpoint);
            s.arxiv_endpoint = f.arxiv_endpoint.or(s.arxiv_endpoint);
            s.cache_dir = f.cache_dir.or(s.cache_dir);
            s.contact = f.contact.or(s.contact);
        }
        set(&mut s.model, env("PAPERDIGEST_MODEL"));
        if let Some(value) = env("PAPERDIGEST_LANG") {
            s.lang = value
                .parse()
                .map_err(|e: crate::paper::LangError| ConfigError::Env {
                    name: "PAPERDIGEST_LANG",
                    value: value.clone(),
                    reason: e.to_string(),
                })?;
        }
        set(&mut s.device, env("PAPERDIGEST_DEVICE"));
        s.models_dir = env("PAPERDIGEST_MODELS")
            .map(PathBuf::from)
            .or(s.models_dir);
        s.hf_endpoint = env("HF_ENDPOINT").or(s.hf_endpoint);
        s.arxiv_endpoint = env("ARXIV_ENDPOINT").or(s.arxiv_endpoint);
        s.cache_dir = env("PAPERDIGEST_CACHE").map(PathBuf::from).or(s.cache_dir);
        s.hf_token = env("HF_TOKEN").filter(|t| !t.is_empty());

        set(&mut s.model, flags.model);
        set(&mut s.lang, flags.lang);
        set(&mut s.device, flags.device);
        set(&mut s.max_context, flags.max_context);
        set(&mut s.kv_cache, flags.kv_cache);
        set(&mut s.temperature, flags.temperature);
        set(&mut s.top_p, flags.top_p);
        set(&mut s.seed, flags.seed);
        set(&mut s.max_tokens, flags.max_tokens);
        s.prompts_dir = flags.prompts_dir.or(s.prompts_dir);
        s.patent_focus = flags.patent_focus.or(s.patent_focus);
        s.models_dir = flags.models_dir.or(s.models_dir);
        s.hf_endpoint = flags.hf_endpoint.or(s.hf_endpoint);
        s.arxiv_endpoint = flags.arxiv_endpoint.or(s.arxiv_endpoint);
        s.cache_dir = flags.cache_dir.or(s.cache_dir);
        s.contact = flags.contact.or(s.contact);
        s.offline = flags.offline;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if !(0.0..=5.0).contains(&self.temperature) {
            return Err(ConfigError::OutOfRange {
                name: "temperature",
                expected: "between 0 and 5",
                value: self.temperature.to_string(),
            });
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ConfigError::OutOfRange {
                name: "top_p",
                expected: "in (0, 1]",
                value: self.top_p.to_string(),
            });
        }
        if !(16..=4096).contains(&self.max_tokens) {
            return Err(ConfigError::OutOfRange {
                name: "max_tokens",
                expected: "between 16 and 4096",
                value: self.max_tokens.to_string(),
            });
        }
        if self
            .patent_focus
            .as_deref()
            .is_some_and(|f| f.trim().is_empty())
        {
            return Err(ConfigError::OutOfRange {
                name: "patent_focus",
                expected: "a description of what the patent ideas apply the paper to",
                value: "an empty text".to_string(),
            });
        }
        if self.max_context < 512 {
            return Err(ConfigError::OutOfRange {
                name: "max_context",
                expected: "at least 512 tokens",
                value: self.max_context.to_string(),
            });
        }
        Ok(())
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_cache_type_comes_from_file_then_flag() {
        let file: FileConfig = toml::from_str("kv_cache = \"f32\"\n").unwrap();
        let s = Settings::resolve(Some(file.clone()), &no_env, FlagOverrides::default()).unwrap();
        assert_eq!(s.kv_cache, KvCacheType::F32);
        let flags = FlagOverrides {
            kv_cache: Some(KvCacheType::F16),
            ..FlagOverrides::default()
        };
        assert_eq!(
            Settings::resolve(Some(file), &no_env, flags)
                .unwrap()
                .kv_cache,
            KvCacheType::F16
        );
        let default = Settings::resolve(None, &no_env, FlagOverrides::default()).unwrap();
        assert_eq!(default.kv_cache, KvCacheType::F16);
        assert!(toml::from_str::<FileConfig>("kv_cache = \"f8\"\n").is_err());
    }

    #[test]
    fn layers_override_in_order() {
        let file: FileConfig = toml::from_str(concat!(
            "model = \"from-file\"\nlang = \"en\"\nseed = 7\nmax_context = 2048\n",
            "arxiv_endpoint = \"http://file\"\ncache_dir = \"/file\"\n",
        ))
        .unwrap();
        let env = |name: &str| match name {
            "PAPERDIGEST_MODEL" => Some("from-env".to_string()),
            "HF_ENDPOINT" => Some("http://127.0.0.1:9".to_string()),
            "PAPERDIGEST_CACHE" => Some("/env-cache".to_string()),
            _ => None,
        };
        let flags = FlagOverrides {
            seed: Some(9),
            ..FlagOverrides::default()
        };
        let s = Settings::resolve(Some(file), &env, flags).unwrap();
        assert_eq!(s.model, "from-env");
        assert_eq!(s.lang, Lang::En);
        assert_eq!(s.seed, 9);
        assert_eq!(s.max_context, 2048);
        assert_eq!(s.hf_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(s.arxiv_endpoint.as_deref(), Some("http://file"));
        assert_eq!(s.cache_dir.as_deref(), Some(Path::new("/env-cache")));
        let flags = FlagOverrides {
            model: Some("from-flag".into()),
            ..FlagOverrides::default()
        };
        assert_eq!(
            Settings::resolve(None, &env, flags).unwrap().model,
            "from-flag"
        );
    }

    #[test]
    fn defaults_follow_the_reference() {
        let s = Settings::resolve(None, &no_env, FlagOverrides::default()).unwrap();
        assert_eq!(s.lang, Lang::Vi);
        assert_eq!(s.model, DEFAULT_MODEL);
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(toml::from_str::<FileConfig>("modle = \"typo\"").is_err());
        let env = |name: &str| (name == "PAPERDIGEST_LANG").then(|| "klingon".to_string());
        let err = Settings::resolve(None, &env, FlagOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("PAPERDIGEST_LANG"));
        let flags = FlagOverrides {
            top_p: Some(0.0),
            ..FlagOverrides::default()
        };
        assert!(Settings::resolve(None, &no_env, flags).is_err());
        let flags = FlagOverrides {
            patent_focus: Some("  ".into()),
            ..FlagOverrides::default()
        };
        let err = Settings::resolve(None, &no_env, flags).unwrap_err();
        assert!(err.to_string().contains("patent_focus"), "{err}");
    }

    #[test]
    fn patent_focus_comes_from_the_file_or_the_flag() {
        let file: FileConfig = toml::from_str("patent_focus = \"medical devices\"").unwrap();
        let s = Settings::resolve(Some(file.clone()), &no_env, FlagOverrides::default()).unwrap();
        assert_eq!(s.patent_focus.as_deref(), Some("medical devices"));
        let flags = FlagOverrides {
            patent_focus: Some("cars".into()),
            ..FlagOverrides::default()
        };
        let s = Settings::resolve(Some(file), &no_env, flags).unwrap();
        assert_eq!(s.patent_focus.as_deref(), Some("cars"));
        let s = Settings::resolve(None, &no_env, FlagOverrides::default()).unwrap();
        assert_eq!(s.patent_focus, None, "the language's default applies");
    }

    #[test]
    fn missing_optional_file_is_fine_but_required_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.toml");
        assert!(FileConfig::load(&path, false).unwrap().is_none());
        assert!(FileConfig::load(&path, true).is_err());
        std::fs::write(&path, "lang = 3").unwrap();
        let err = FileConfig::load(&path, false).unwrap_err();
        assert!(err.to_string().contains("none.toml"));
    }
}
