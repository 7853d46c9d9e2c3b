//! The sandbox's `--config FILE` (TOML).
//!
//! Small on purpose: the management credentials the sandbox accepts, the Workato freeze and
//! sunset dates, rate limits and the propagation delay. Every key is optional; the defaults are
//! the values in `docs/sandbox.md`. Unknown keys are an error so a typo does not silently fall
//! back to a default.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use super::clock::parse_instant;

/// The admin (Embed admin / Developer) workspace's management token.
pub const DEFAULT_WORKATO_TOKEN: &str = "wrk-sandbox-admin-token";
/// A token of the same workspace without Embedded (`oem_vendor`) rights: `managed_users`
/// routes answer 403 to it.
pub const DEFAULT_WORKATO_DEVELOPER_TOKEN: &str = "wrk-sandbox-developer-token";
/// Bifrost management token printed as `KEYSHIFT_BIFROST_TOKEN`.
pub const DEFAULT_BIFROST_TOKEN: &str = "bfst-sandbox-admin-token";
/// Bifrost dashboard admin password (HTTP Basic `admin:<password>`, SD-B1).
pub const DEFAULT_BIFROST_ADMIN_PASSWORD: &str = "bifrost-sandbox-password";
/// Bifrost management token with read permissions only (writes answer 403, SD-B1).
pub const DEFAULT_BIFROST_READONLY_TOKEN: &str = "bfst-sandbox-readonly-token";
/// Descope project id (SD-D1).
pub const DEFAULT_DESCOPE_PROJECT_ID: &str = "P2aAc4T2V93bddihGEx2Ryhc8e5Z";
/// Descope management key printed as `KEYSHIFT_DESCOPE_MANAGEMENT_KEY`.
pub const DEFAULT_DESCOPE_MANAGEMENT_KEY: &str = "K2sandboxkeyshiftmanagementkey000";

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// `[workato]`
    pub workato: WorkatoConfig,
    /// `[bifrost]`
    pub bifrost: BifrostConfig,
    /// `[descope]`
    pub descope: DescopeConfig,
}

/// `[workato]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkatoConfig {
    /// Bearer token with Developer and Embedded rights on the admin workspace.
    pub token: String,
    /// Bearer token with Developer rights only (403 on `managed_users` routes).
    pub developer_token: String,
    /// From this instant legacy writes answer 400 (SD-W4).
    #[serde(deserialize_with = "de_instant")]
    pub freeze: DateTime<Utc>,
    /// From this instant every legacy route answers 410 (SD-W5).
    #[serde(deserialize_with = "de_instant")]
    pub sunset: DateTime<Utc>,
    /// Developer API budget per rolling minute, per workspace (SD-W1). 0 = unlimited.
    pub developer_rate_per_minute: u32,
    /// Embedded API budget per rolling minute, shared by the admin workspace (SD-W1). 0 = unlimited.
    pub embedded_rate_per_minute: u32,
    /// Delay before a new or refreshed key is accepted by the gateway (SD-W17).
    pub propagation_delay_ms: u64,
    /// What key and client reads carry as `auth_token` (SD-W9, PC-W1; docs/sandbox.md).
    pub read_tokens: ReadTokens,
    /// Gateway requests kept for the API-logs download, over all workspaces; the oldest go
    /// first (SD-W22). 0 keeps none.
    pub api_log_max_rows: usize,
}

/// How `auth_token` appears on Workato reads (V1, V3, K1, K3). Workato's published model
/// requires it; its CLI prints a masked form. `full` is the default because it is the
/// strictest case for keyshift's secret hygiene.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadTokens {
    /// The key's current secret, in clear.
    #[default]
    Full,
    /// Asterisks and the secret's last four characters.
    Masked,
    /// No `auth_token` field at all.
    Omitted,
}

impl ReadTokens {
    /// From the `--read-tokens` value (clap has already limited it to the three names).
    pub fn parse(s: &str) -> ReadTokens {
        match s {
            "masked" => ReadTokens::Masked,
            "omitted" => ReadTokens::Omitted,
            _ => ReadTokens::Full,
        }
    }

    /// The `auth_token` a read shows for `secret`, or `None` to leave the field out.
    pub fn show(self, secret: &str) -> Option<String> {
        match self {
            ReadTokens::Full => Some(secret.to_owned()),
            ReadTokens::Masked => {
                let tail: String = secret
                    .chars()
                    .rev()
                    .take(4)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                Some(format!("********{tail}"))
            }
            ReadTokens::Omitted => None,
        }
    }
}

impl Default for WorkatoConfig {
    fn default() -> Self {
        Self {
            token: DEFAULT_WORKATO_TOKEN.to_owned(),
            developer_token: DEFAULT_WORKATO_DEVELOPER_TOKEN.to_owned(),
            freeze: fixed("2025-12-01T00:00:00Z"),
            sunset: fixed("2026-07-01T00:00:00Z"),
            developer_rate_per_minute: 60,
            embedded_rate_per_minute: 1000,
            propagation_delay_ms: 0,
            read_tokens: ReadTokens::Full,
            api_log_max_rows: 200_000,
        }
    }
}

/// `[bifrost]` settings (SD-B1, SD-B2, SD-B14; `docs/sandbox.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BifrostConfig {
    /// Management Bearer token with every permission.
    pub token: String,
    /// Dashboard admin for HTTP Basic (every permission).
    pub admin_username: String,
    /// Dashboard admin password for HTTP Basic.
    pub admin_password: String,
    /// Extra Bearer tokens limited to the listed permissions (`"AccessProfiles:View"`, …).
    pub scoped_tokens: std::collections::BTreeMap<String, Vec<String>>,
    /// Management requests per rolling minute, per credential (SD-B2). 0 = unlimited.
    pub rate_per_minute: u32,
    /// Delay before a new or rotated virtual key value passes the quota call (SD-B14).
    pub propagation_delay_ms: u64,
    /// How long a rotated-out value keeps passing the quota call (SD-B14).
    pub rotation_lag_ms: u64,
    /// Access profiles the seeded generator makes (`--seed`).
    pub generated_profiles: u32,
    /// Serve access profiles on the canonical `/api/governance/...` paths. `false` emulates a
    /// deployment that only has the deprecated `/api/access-profiles` aliases (404 on the
    /// canonical ones), to rehearse the client's fallback.
    pub governance_profile_routes: bool,
    /// Record inference calls in the request logs (SD-B17). `false`: nothing is recorded and
    /// `/api/logs` answers empty lists.
    pub logging: bool,
    /// Share (0–1) of log writes dropped, counted by `/api/logs/dropped` (SD-B17).
    pub log_drop_rate: f64,
    /// Log entries kept; the oldest go first. 0 = no cap.
    pub log_max_entries: usize,
}

impl Default for BifrostConfig {
    fn default() -> Self {
        Self {
            token: DEFAULT_BIFROST_TOKEN.to_owned(),
            admin_username: "admin".to_owned(),
            admin_password: DEFAULT_BIFROST_ADMIN_PASSWORD.to_owned(),
            scoped_tokens: [(
                DEFAULT_BIFROST_READONLY_TOKEN.to_owned(),
                vec![
                    "AccessProfiles:View".to_owned(),
                    "VirtualKeys:View".to_owned(),
                    "MCP:View".to_owned(),
                    "Logs:View".to_owned(),
                ],
            )]
            .into_iter()
            .collect(),
            rate_per_minute: 600,
            propagation_delay_ms: 0,
            rotation_lag_ms: 0,
            generated_profiles: 40,
            governance_profile_routes: true,
            logging: true,
            log_drop_rate: 0.0,
            log_max_entries: 200_000,
        }
    }
}

/// `createdBy` of keys the sandbox's management key creates (SD-D6).
pub const DEFAULT_DESCOPE_MANAGEMENT_KEY_ID: &str = "K2mgmtKeyshift00000000000000";

/// `[descope]` settings (SD-D1…SD-D16; `docs/sandbox-descope.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DescopeConfig {
    /// Project id.
    pub project_id: String,
    /// Management key.
    pub management_key: String,
    /// Id of the management key, reported as `createdBy` (SD-D6).
    pub management_key_id: String,
    /// Counted calls per rolling window (SD-D4). 0 = unlimited.
    pub rate_per_minute: u32,
    /// Backoff after a breach, in seconds at `--rate-scale 1` (scaled like the window).
    pub rate_backoff_secs: u64,
    /// Lifetime of an exchanged JWT (SD-D13).
    pub token_ttl_secs: u64,
    /// Delay before a new key appears to load, search and exchange (SD-D16).
    pub visibility_delay_ms: u64,
    /// The first N counted calls get a non-JSON 503 (SD-D16).
    pub fail_first_calls: u32,
    /// Seed roles (collection names) and tenants (workspaces) from the Workato inventory.
    pub seed_from_workato: bool,
    /// Extra roles (same name replaces a seeded one).
    pub roles: Vec<super::descope::definitions::RoleDef>,
    /// Extra tenants (same id replaces a seeded one).
    pub tenants: Vec<super::descope::definitions::TenantDef>,
    /// Users keys may be bound to.
    pub users: Vec<super::descope::definitions::UserDef>,
    /// The access-key custom-attribute schema (SD-D14): name = type.
    pub custom_attributes:
        std::collections::BTreeMap<String, super::descope::definitions::AttributeType>,
    /// `audit/search` calls per rolling window, a budget of its own (SD-D17). 0 = unlimited.
    pub audit_rate_per_minute: u32,
    /// Audit records kept; the oldest go first. 0 = no cap.
    pub audit_max_records: usize,
}

impl Default for DescopeConfig {
    fn default() -> Self {
        Self {
            project_id: DEFAULT_DESCOPE_PROJECT_ID.to_owned(),
            management_key: DEFAULT_DESCOPE_MANAGEMENT_KEY.to_owned(),
            management_key_id: DEFAULT_DESCOPE_MANAGEMENT_KEY_ID.to_owned(),
            rate_per_minute: 100,
            rate_backoff_secs: 60,
            token_ttl_secs: 600,
            visibility_delay_ms: 0,
            fail_first_calls: 0,
            seed_from_workato: true,
            roles: Vec::new(),
            tenants: Vec::new(),
            users: Vec::new(),
            custom_attributes: super::descope::definitions::default_custom_attributes(),
            audit_rate_per_minute: 10,
            audit_max_records: 200_000,
        }
    }
}

impl SandboxConfig {
    /// Read and parse a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading sandbox config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("sandbox config {}", path.display()))
    }

    /// Parse config text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }
}

fn fixed(s: &str) -> DateTime<Utc> {
    // Only called with the literal defaults above, which are valid.
    parse_instant(s).unwrap_or_default()
}

/// Accept a TOML string (`"2025-12-01"`, `"2025-12-01T00:00:00Z"`) or a TOML date/date-time.
fn de_instant<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let v = toml::Value::deserialize(d)?;
    let text = match v {
        toml::Value::String(s) => s,
        toml::Value::Datetime(dt) => dt.to_string(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a date, got {}",
                other.type_str()
            )))
        }
    };
    parse_instant(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = SandboxConfig::parse("").unwrap();
        assert_eq!(c.workato.developer_rate_per_minute, 60);
        assert_eq!(c.workato.token, DEFAULT_WORKATO_TOKEN);
        let c = SandboxConfig::parse(
            "[workato]\nfreeze = 2025-11-20\nsunset = \"2026-01-01T00:00:00Z\"\ndeveloper_rate_per_minute = 5\n",
        )
        .unwrap();
        assert_eq!(c.workato.freeze, parse_instant("2025-11-20").unwrap());
        assert_eq!(c.workato.sunset, parse_instant("2026-01-01").unwrap());
        assert_eq!(c.workato.developer_rate_per_minute, 5);
        assert!(SandboxConfig::parse("[workato]\ntoken_typo = \"x\"\n").is_err());
    }
}
