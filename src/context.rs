//! The small context every command runs in: output, environment, state path, clock.
//!
//! Nothing in the library reads process globals; `main.rs` collects the environment once and
//! tests (and `demo`) build a context of their own.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::errors::KeyshiftError;
use crate::http::{ClientOptions, HttpClient, NetConfig, Patience};
use crate::printer::Printer;
use crate::secrets::{FingerprintKey, SigningSecrets};

pub use crate::env::Env;

/// Non-secret settings from `keyshift.toml` (secrets only ever come from the environment):
/// `[secrets]`, and one section per vendor that its provider reads ([`ConfigFile::section`]).
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub secrets: SecretsConfig,
    path: PathBuf,
    vendors: BTreeMap<String, toml::Table>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    pub sink: Option<PathBuf>,
    pub signing_secrets: Option<PathBuf>,
}

/// A vendor's config section: its name, and a check that it parses (run when the file is
/// loaded, so a misspelt key fails before anything runs).
pub type Section = (&'static str, fn(&ConfigFile) -> Result<()>);

impl ConfigFile {
    /// `sections` are the vendor sections the file may hold (the registry's list).
    pub fn load(explicit: Option<&Path>, sections: &[Section]) -> Result<ConfigFile> {
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
        let text = std::fs::read_to_string(&path)
            .map_err(|e| KeyshiftError::unreadable("config file", &path, &e, None))?;
        let bad = |what: String| {
            KeyshiftError::Config(format!(
                "config file {}: {what} — see docs/cli.md for its keys",
                path.display()
            ))
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| bad(e.message().into()))?;
        let secrets = match table.remove("secrets") {
            Some(v) => v
                .try_into()
                .map_err(|e: toml::de::Error| bad(format!("[secrets]: {}", e.message())))?,
            None => SecretsConfig::default(),
        };
        let mut vendors = BTreeMap::new();
        for (name, value) in table {
            if !sections.iter().any(|(s, _)| *s == name) {
                let known: Vec<&str> = sections.iter().map(|(s, _)| *s).collect();
                return Err(bad(format!(
                    "unknown section `{name}`, expected `secrets` or one of `{}`",
                    known.join("`, `")
                ))
                .into());
            }
            let toml::Value::Table(t) = value else {
                return Err(bad(format!("`{name}` must be a section ([{name}])")).into());
            };
            vendors.insert(name, t);
        }
        let file = ConfigFile {
            secrets,
            path,
            vendors,
        };
        for (_, check) in sections {
            check(&file)?;
        }
        Ok(file)
    }

    /// A vendor's section (`[workato]`, …) as its provider's settings type; the default when
    /// the file has none.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T> {
        let Some(table) = self.vendors.get(name) else {
            return Ok(T::default());
        };
        T::deserialize(table.clone()).map_err(|e| {
            KeyshiftError::Config(format!(
                "config file {}: [{name}]: {} — see docs/cli.md for its keys",
                self.path.display(),
                e.message()
            ))
            .into()
        })
    }
}

#[derive(Clone)]
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

    /// Where new secrets go (docs/cli.md, `KEYSHIFT_SECRETS`: default `<state>.secrets.jsonl`).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Acme {
        url: Option<String>,
    }

    fn check_acme(file: &ConfigFile) -> Result<()> {
        file.section::<Acme>("acme").map(drop)
    }

    const SECTIONS: &[Section] = &[("acme", check_acme)];

    fn load(text: &str) -> Result<ConfigFile> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyshift.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile::load(Some(&path), SECTIONS)
    }

    #[test]
    fn a_vendor_section_is_read_by_its_own_type() {
        let file =
            load("[acme]\nurl = \"https://acme.test\"\n[secrets]\nsink = \"/s.jsonl\"\n").unwrap();
        let acme: Acme = file.section("acme").unwrap();
        assert_eq!(acme.url.as_deref(), Some("https://acme.test"));
        assert_eq!(file.secrets.sink, Some(PathBuf::from("/s.jsonl")));
        let none: Acme = ConfigFile::default().section("acme").unwrap();
        assert!(none.url.is_none());
    }

    #[test]
    fn unknown_sections_and_keys_fail_when_the_file_is_loaded() {
        let err = load("[acmee]\nurl = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("unknown section `acmee`"), "{err}");
        assert!(err.contains("`acme`"), "{err}");
        let err = load("[acme]\nurll = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("[acme]") && err.contains("urll"), "{err}");
        let err = load("[secrets]\nsinkk = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("[secrets]") && err.contains("sinkk"), "{err}");
        let err = load("acme = 3\n").unwrap_err().to_string();
        assert!(err.contains("must be a section"), "{err}");
    }
}
