//! Layered configuration: command-line flags, then `VANTAGE_*` environment variables (both through
//! clap), then a TOML file (`--config` / `VANTAGE_CONFIG`), then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Defaults when neither a flag, the environment nor the file says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./vantage-data";

/// What a configuration file may hold. Unknown keys are an error, so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub kurrentdb_url: Option<String>,
    pub tenant: Option<String>,
    pub log_format: Option<String>,
    pub allow_cidr: Option<Vec<String>>,
    pub resolver: Option<String>,
    pub dnssec_trust_anchor: Option<String>,
    pub secrets_key_file: Option<PathBuf>,
    pub signing_key_file: Option<PathBuf>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| format!("config file {} is invalid: {}", path.display(), e.message()))
    }
}
