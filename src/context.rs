//! The small context every command runs in: output, environment, state path, clock.
//!
//! Nothing in the library reads process globals; `main.rs` collects the environment once and
//! tests (and `demo`) build a context of their own.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::errors::KeyshiftError;
use crate::http::{check_transport, ClientOptions, HttpClient, NetConfig, Patience};
use crate::printer::Printer;
use crate::providers::workato::{WorkatoConn, WorkatoSettings};
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

    pub fn workato(&self, max_rate: Option<f64>) -> Result<std::sync::Arc<WorkatoConn>> {
        self.workato_with(max_rate, Patience::Run)
    }

    pub fn workato_with(
        &self,
        max_rate: Option<f64>,
        patience: Patience,
    ) -> Result<std::sync::Arc<WorkatoConn>> {
        let url = match self.env.get("KEYSHIFT_WORKATO_URL")? {
            Some(u) => u,
            None => self.config.workato.url.clone().ok_or_else(|| {
                KeyshiftError::Config(
                    "KEYSHIFT_WORKATO_URL is not set — point it at your Workato host (e.g. \
                     https://www.workato.com), or start `keyshift sandbox` and load its env lines"
                        .into(),
                )
            })?,
        };
        check_transport("KEYSHIFT_WORKATO_URL", &url, self.allow_insecure_http)?;
        let token = self.env.secret("KEYSHIFT_WORKATO_TOKEN")?.ok_or_else(|| {
            KeyshiftError::Config(
                "KEYSHIFT_WORKATO_TOKEN is not set — export the Developer API client token, or \
                 put it in a file named by KEYSHIFT_WORKATO_TOKEN_FILE"
                    .into(),
            )
        })?;
        let http = std::sync::Arc::new(self.http_client("KEYSHIFT_WORKATO_URL", patience)?);
        Ok(WorkatoConn::new(
            http,
            WorkatoSettings {
                base_url: url,
                token,
                admin_workspace: self
                    .config
                    .workato
                    .workspace_id
                    .clone()
                    .unwrap_or_else(|| "1".into()),
                rate_scale: self.rate_scale()?,
                max_rate,
                checkpoints: self.crash.clone(),
            },
        ))
    }

    pub fn descope(
        &self,
        max_rate: Option<f64>,
    ) -> Result<std::sync::Arc<crate::providers::descope::DescopeConn>> {
        self.descope_with(max_rate, Patience::Run)
    }

    pub fn descope_with(
        &self,
        max_rate: Option<f64>,
        patience: Patience,
    ) -> Result<std::sync::Arc<crate::providers::descope::DescopeConn>> {
        let project_id = self
            .env
            .get("KEYSHIFT_DESCOPE_PROJECT_ID")?
            .ok_or_else(|| {
                KeyshiftError::Config(
                "KEYSHIFT_DESCOPE_PROJECT_ID is not set — the Descope project to create access \
                 keys in"
                    .into(),
            )
            })?;
        let key = self
            .env
            .secret("KEYSHIFT_DESCOPE_MANAGEMENT_KEY")?
            .ok_or_else(|| {
                KeyshiftError::Config(
                "KEYSHIFT_DESCOPE_MANAGEMENT_KEY is not set — export a management key, or put it \
                 in a file named by KEYSHIFT_DESCOPE_MANAGEMENT_KEY_FILE"
                    .into(),
            )
            })?;
        let base_url = self.env.get("KEYSHIFT_DESCOPE_URL")?;
        let effective = base_url
            .clone()
            .unwrap_or_else(|| crate::providers::descope::base_url_for(&project_id));
        check_transport("KEYSHIFT_DESCOPE_URL", &effective, self.allow_insecure_http)?;
        Ok(crate::providers::descope::DescopeConn::new(
            std::sync::Arc::new(self.http_client("KEYSHIFT_DESCOPE_URL", patience)?),
            crate::providers::descope::DescopeSettings {
                base_url,
                project_id,
                management_key: key,
                rate_scale: self.rate_scale()?,
                max_rate,
            },
        ))
    }

    pub fn bifrost(
        &self,
        max_rate: Option<f64>,
    ) -> Result<std::sync::Arc<crate::providers::bifrost::BifrostConn>> {
        self.bifrost_with(max_rate, Patience::Run)
    }

    pub fn bifrost_with(
        &self,
        max_rate: Option<f64>,
        patience: Patience,
    ) -> Result<std::sync::Arc<crate::providers::bifrost::BifrostConn>> {
        use crate::providers::bifrost::{BifrostConn, BifrostCredential, BifrostSettings};
        let url = self.env.get("KEYSHIFT_BIFROST_URL")?.ok_or_else(|| {
            KeyshiftError::Config(
                "KEYSHIFT_BIFROST_URL is not set — point it at your Bifrost deployment (e.g. \
                 http://bifrost.internal:8080)"
                    .into(),
            )
        })?;
        check_transport("KEYSHIFT_BIFROST_URL", &url, self.allow_insecure_http)?;
        let credential = match self.env.secret("KEYSHIFT_BIFROST_TOKEN")? {
            Some(t) => BifrostCredential::Bearer(t),
            None => match (
                self.env.get("KEYSHIFT_BIFROST_USER")?,
                self.env.secret("KEYSHIFT_BIFROST_PASSWORD")?,
            ) {
                (Some(u), Some(p)) => BifrostCredential::Basic(u, p),
                _ => return Err(KeyshiftError::Config(
                    "KEYSHIFT_BIFROST_TOKEN is not set — export a management API key (bfst-…), \
                         or KEYSHIFT_BIFROST_USER and KEYSHIFT_BIFROST_PASSWORD for the admin"
                        .into(),
                )
                .into()),
            },
        };
        Ok(BifrostConn::new(
            std::sync::Arc::new(self.http_client("KEYSHIFT_BIFROST_URL", patience)?),
            BifrostSettings {
                base_url: url,
                credential,
                rate_scale: self.rate_scale()?,
                max_rate,
            },
        ))
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
