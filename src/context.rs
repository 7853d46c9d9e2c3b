//! The small context every command runs in: output, environment, state path, clock.
//!
//! Nothing in the library reads process globals; `main.rs` collects the environment once and
//! tests (and `demo`) build a context of their own.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::errors::KeyshiftError;
use crate::http::{ClientOptions, HttpClient, NetConfig, Patience};
use crate::printer::Printer;
use crate::secrets::{FingerprintKey, SigningSecrets};

pub use crate::env::Env;

/// Non-secret settings from `keyshift.toml` (secrets only ever come from the environment).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub workato: WorkatoConfig,
    #[serde(default)]
    pub secrets: SecretsConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkatoConfig {
    pub url: Option<String>,
    pub gateway_url: Option<String>,
    /// The id used in markers for the Developer API's own workspace (default "1").
    pub workspace_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    pub sink: Option<PathBuf>,
    pub signing_secrets: Option<PathBuf>,
}

impl ConfigFile {
    pub fn load(explicit: Option<&Path>) -> Result<ConfigFile> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("keyshift.toml");
                if !p.exists() {
                    return Ok(ConfigFile::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            KeyshiftError::Config(format!(
                "config file {}: cannot read it: {e}",
                path.display()
            ))
        })?;
        toml::from_str(&text).map_err(|e| {
            KeyshiftError::Config(format!(
                "config file {}: {} — see docs/cli.md for its keys",
                path.display(),
                e.message()
            ))
            .into()
        })
    }
}

pub struct Ctx {
    pub printer: Printer,
    pub env: Env,
    pub config: ConfigFile,
    pub state_path: PathBuf,
    /// `--now`, when given.
    pub now_override: Option<DateTime<Utc>>,
    pub allow_insecure_http: bool,
    /// Test-only crash checkpoints (`KEYSHIFT_CRASH_AT`).
    pub crash: crate::crash::Checkpoints,
}

impl Ctx {
    /// KEYSHIFT_RATE_SCALE (rehearsals against a scaled sandbox), default 1.
    pub fn rate_scale(&self) -> Result<f64> {
        match self.env.get("KEYSHIFT_RATE_SCALE")? {
            None => Ok(1.0),
            Some(v) => v.parse::<f64>().ok().filter(|x| *x >= 0.0).ok_or_else(|| {
                KeyshiftError::Config(format!(
                    "KEYSHIFT_RATE_SCALE={v:?} is not a number ≥ 0 — unset it outside rehearsals"
                ))
                .into()
            }),
        }
    }

    /// Proxies and extra CAs from the environment (`HTTPS_PROXY`, `KEYSHIFT_CA_FILE`, …).
    pub fn net(&self) -> Result<NetConfig> {
        NetConfig::from_env(&self.env)
    }

    /// Fill in the secrets of vault-sink receipts from the store (records that already hold
    /// their secret are left alone); how many were read.
    pub async fn fetch_vault_secrets<'a>(
        &self,
        records: impl IntoIterator<Item = &'a mut crate::secrets::SinkRecord>,
    ) -> Result<usize> {
        crate::secrets::vault::fetch_secrets(
            &self.env,
            self.net()?,
            self.allow_insecure_http,
            &self.printer,
            records,
        )
        .await
    }

    /// An HTTP client for one vendor: proxies and CAs from the environment, retries announced
    /// through the printer.
    pub fn http_client(&self, url_setting: &'static str, patience: Patience) -> Result<HttpClient> {
        HttpClient::with_options(ClientOptions {
            net: self.net()?,
            patience,
            printer: Some(self.printer.clone()),
            url_setting,
        })
    }

    /// Where new secrets go (contract §2: default `<state>.secrets.jsonl`).
    pub fn sink_path(&self) -> Result<PathBuf> {
        if let Some(p) = self.env.get("KEYSHIFT_SECRETS")? {
            return Ok(PathBuf::from(p));
        }
        if let Some(p) = &self.config.secrets.sink {
            return Ok(p.clone());
        }
        Ok(with_suffix(&self.state_path, ".secrets.jsonl"))
    }

    pub fn signing_secrets(&self) -> Result<Option<SigningSecrets>> {
        let path = match self.env.get("KEYSHIFT_SIGNING_SECRETS")? {
            Some(p) => Some(PathBuf::from(p)),
            None => self.config.secrets.signing_secrets.clone(),
        };
        path.map(|p| SigningSecrets::load(&p)).transpose()
    }

    /// The age identity that decrypts an age-encrypted sink, if the user supplied one.
    pub fn age_identity(&self) -> Result<Option<age::x25519::Identity>> {
        self.env
            .get("KEYSHIFT_AGE_IDENTITY")?
            .map(|text| crate::secrets::parse_age_identity(&text))
            .transpose()
    }

    pub fn fingerprint_key(&self) -> Result<FingerprintKey> {
        FingerprintKey::load_or_create(&with_suffix(&self.state_path, ".key"))
    }

    /// "Now" for deadlines: `--now`, else the server's clock as seen by `seen`, else ours.
    pub fn now(&self, server_now: Option<DateTime<Utc>>) -> DateTime<Utc> {
        self.now_override.or(server_now).unwrap_or_else(Utc::now)
    }
}

pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}
