//! `[bifrost]` in a mapping file: how access profiles become virtual keys, and who holds
//! them, with its checks.

use anyhow::Result;
use serde::Deserialize;

use crate::errors::KeyshiftError;
use crate::mapping::{check_template, Mapping, Own};

/// Source fields of a Bifrost access profile a treatment may be declared for.
pub const SOURCE_FIELDS: &[&str] = &[
    "name",
    "provider_configs",
    "budgets",
    "rate_limit",
    "mcp_servers",
    "mcp_tool_overrides",
    "tags",
    "roles",
    "auto_rotation_interval",
    "is_active",
];

/// `[bifrost]`: how access profiles become virtual keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BifrostSection {
    /// `per_profile` (one key per profile: shared counters) or `per_holder` (one per profile
    /// holder: isolated counters, as profiles behave).
    #[serde(default = "default_bifrost_mode")]
    pub mode: String,
    /// Holders (user ids) for `per_holder` mode.
    #[serde(default)]
    pub holders: Vec<String>,
    /// Or a CSV file with a `user_id` column.
    #[serde(default)]
    pub holders_csv: Option<String>,
    /// Key name templates: {profile.name} {profile.id} {holder}.
    #[serde(default = "default_bifrost_name")]
    pub name: String,
    #[serde(default = "default_bifrost_holder_name")]
    pub name_per_holder: String,
    /// Provider keys a virtual key may use when the profile does not say (deny-by-default
    /// otherwise): `["*"]` = all.
    #[serde(default = "default_key_ids")]
    pub key_ids: Vec<String>,
}

fn default_bifrost_mode() -> String {
    "per_profile".into()
}
fn default_bifrost_name() -> String {
    "{profile.name}".into()
}
fn default_bifrost_holder_name() -> String {
    "{profile.name} · {holder}".into()
}
fn default_key_ids() -> Vec<String> {
    vec!["*".into()]
}

impl Default for BifrostSection {
    fn default() -> Self {
        BifrostSection {
            mode: default_bifrost_mode(),
            holders: Vec::new(),
            holders_csv: None,
            name: default_bifrost_name(),
            name_per_holder: default_bifrost_holder_name(),
            key_ids: default_key_ids(),
        }
    }
}

/// The Bifrost pair's own section: `[bifrost]`, with its defaults.
pub fn load(mapping: &Mapping, problems: &mut Vec<String>) -> std::result::Result<Own, String> {
    let b = mapping
        .section::<BifrostSection>("bifrost")?
        .unwrap_or_default();
    if !mapping.file.collections.remap.is_empty() {
        problems.push("key collections: Bifrost has no API collections — remove it".into());
    }
    {
        if !["per_profile", "per_holder"].contains(&b.mode.as_str()) {
            problems.push(format!(
                "key bifrost.mode: {:?} — use \"per_profile\" or \"per_holder\"",
                b.mode
            ));
        }
        if b.mode == "per_holder" && b.holders.is_empty() && b.holders_csv.is_none() {
            problems.push(
                "key bifrost.holders: per_holder mode needs holders (user ids) or holders_csv — \
                 add them, or use mode = \"per_profile\""
                    .into(),
            );
        }
        check_template(
            "bifrost.name",
            &b.name,
            &["profile.name", "profile.id"],
            problems,
        );
        check_template(
            "bifrost.name_per_holder",
            &b.name_per_holder,
            &["profile.name", "profile.id", "holder"],
            problems,
        );
        if b.mode == "per_holder" && !b.name_per_holder.contains("{holder}") {
            problems.push(
                "key bifrost.name_per_holder: it must contain {holder} — virtual key names are \
                 unique"
                    .into(),
            );
        }
    }
    Ok(Own::new(b))
}

/// Named holders of the mapping: `[bifrost] holders`, plus the `user_id` column of
/// `holders_csv`.
pub fn named_holders(mapping: &Mapping) -> Result<Vec<String>> {
    let b = mapping.own::<BifrostSection>();
    let mut out = b.holders.clone();
    if let Some(path) = &b.holders_csv {
        let bad = |e: csv::Error| {
            let line = e.position().map(|p| p.line()).unwrap_or(1);
            KeyshiftError::Config(format!(
                "{path}:{line}: {} — the holders CSV needs a header row with a user_id column \
                     and one holder per row (mapping {}, key bifrost.holders_csv)",
                crate::output::visible(&e.to_string()),
                mapping.origin
            ))
        };
        let mut r = csv::Reader::from_path(path).map_err(|e| {
            KeyshiftError::Config(format!(
                "mapping {}: key bifrost.holders_csv: cannot read {path}: {e}",
                mapping.origin
            ))
        })?;
        let col = r
            .headers()
            .map_err(bad)?
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == "user_id")
            .ok_or_else(|| {
                KeyshiftError::Config(format!(
                    "{path}:1: column \"user_id\": missing — the holders CSV needs a header \
                         row with user_id"
                ))
            })?;
        for rec in r.records() {
            if let Some(u) = rec
                .map_err(bad)?
                .get(col)
                .map(str::trim)
                .filter(|u| !u.is_empty())
            {
                out.push(u.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
