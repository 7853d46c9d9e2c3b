//! `[descope]` in a mapping file: how each Workato access profile becomes a Descope access
//! key, with its checks.

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::mapping::{check_template, Mapping, Own};

/// `[descope]`: how each source profile becomes a Descope access key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescopeSection {
    /// Key name template: {legacy_client.name} {profile.name} {profile.id} {workspace}.
    #[serde(default = "default_descope_name")]
    pub name: String,
    /// API collection (id or name) → Descope role name.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// A collection missing from `roles` uses its own name as the role name (else it blocks).
    #[serde(default)]
    pub roles_from_collection_names: bool,
    /// Workspace id (or external id) → tenant id. Listed workspaces get tenant roles
    /// (`keyTenants`); others get project roles (`roleNames`).
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
    /// Tenant id template for workspaces not in `tenants`: {workspace} {workspace.external_id}.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Absolute expiry, Unix seconds; 0 = never.
    #[serde(default)]
    pub expire_time: i64,
    /// Static claims put in every key's JWT.
    #[serde(default)]
    pub custom_claims: BTreeMap<String, toml::Value>,
}

fn default_descope_name() -> String {
    "{legacy_client.name} / {profile.name}".into()
}

impl Default for DescopeSection {
    fn default() -> Self {
        DescopeSection {
            name: default_descope_name(),
            roles: BTreeMap::new(),
            roles_from_collection_names: true,
            tenants: BTreeMap::new(),
            tenant: None,
            expire_time: 0,
            custom_claims: BTreeMap::new(),
        }
    }
}

/// The Descope pair's own section: `[descope]`, with its defaults.
pub fn load(mapping: &Mapping, problems: &mut Vec<String>) -> Result<Own, String> {
    let d = mapping
        .section::<DescopeSection>("descope")?
        .unwrap_or_default();
    {
        check_template(
            "descope.name",
            &d.name,
            &[
                "legacy_client.name",
                "profile.name",
                "profile.id",
                "workspace",
            ],
            problems,
        );
        if let Some(t) = &d.tenant {
            check_template(
                "descope.tenant",
                t,
                &["workspace", "workspace.external_id"],
                problems,
            );
        }
        if d.expire_time < 0 {
            problems
                .push("key descope.expire_time: negative — use 0 (never) or Unix seconds".into());
        }
    }
    Ok(Own::new(d))
}
