//! What the Bifrost export reads and the planner maps: access profiles, MCP clients and the
//! named holders' copies. The inventory carries them as source records (`model::SourceRecord`,
//! one row each in the state), so nothing outside the Bifrost planner and provider knows
//! their shape.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::{Inventory, SourceRecord};

/// Markers need a workspace; one Bifrost deployment is one.
pub const WORKSPACE: &str = "default";

/// The marker of an access profile (and of its virtual key in shared mode).
pub fn profile_marker(profile_id: i64) -> String {
    format!("keyshift:bifrost:{WORKSPACE}:profile:{profile_id}")
}

/// One record's body as `T`, without copying it.
fn read<'a, T: Deserialize<'a>>(body: &'a serde_json::Value) -> serde_json::Result<T> {
    T::deserialize(body)
}

const PROFILE: &str = "bifrost_profile";
const MCP_CLIENT: &str = "mcp_client";
const HOLDING: &str = "holding";

/// Everything the Bifrost export read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BifrostInventory {
    pub profiles: Vec<BifrostProfile>,
    pub mcp_clients: Vec<McpClient>,
    /// Named holders' profile copies (per-holder mode).
    pub holdings: Vec<Holding>,
}

impl BifrostInventory {
    /// The inventory's records for these (`workspace`: the instance's one workspace).
    pub fn records(&self, workspace: &str) -> Result<Vec<SourceRecord>> {
        let record = |kind: &str, id: i64, name: &str, active, body| SourceRecord {
            kind: kind.into(),
            workspace: workspace.into(),
            id,
            name: name.into(),
            active,
            body,
        };
        let mut out =
            Vec::with_capacity(self.profiles.len() + self.mcp_clients.len() + self.holdings.len());
        for p in &self.profiles {
            let body = serde_json::to_value(p)?;
            out.push(record(PROFILE, p.id, &p.name, Some(p.is_active), body));
        }
        for (i, m) in self.mcp_clients.iter().enumerate() {
            let body = serde_json::to_value(m)?;
            out.push(record(MCP_CLIENT, i as i64, &m.name, None, body));
        }
        for (i, h) in self.holdings.iter().enumerate() {
            let body = serde_json::to_value(h)?;
            out.push(record(HOLDING, i as i64, &h.user_id, None, body));
        }
        Ok(out)
    }

    /// Read them back from an inventory's records (other kinds are not Bifrost's).
    pub fn read(inv: &Inventory) -> Result<BifrostInventory> {
        let mut out = BifrostInventory::default();
        for r in &inv.records {
            let what = || format!("the state's {} record {} ({})", r.kind, r.id, r.name);
            // Read from the stored body in place: a 100,000-profile inventory is not copied.
            match r.kind.as_str() {
                PROFILE => out.profiles.push(read(&r.body).with_context(what)?),
                MCP_CLIENT => out.mcp_clients.push(read(&r.body).with_context(what)?),
                HOLDING => out.holdings.push(read(&r.body).with_context(what)?),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// A Bifrost access profile (a policy template), as the export read it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BifrostProfile {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    pub tags: Vec<String>,
    pub provider_configs: Vec<ProviderAccess>,
    pub budgets: Vec<Budget>,
    /// `None` when the profile has no rate limit (`rate_limit: null` or absent).
    pub rate_limit: Option<RateLimit>,
    pub calendar_aligned: bool,
    pub auto_rotation_interval: i64,
    pub mcp_servers: Vec<String>,
    pub mcp_tool_groups: Vec<i64>,
    pub mcp_tool_overrides: Vec<ToolOverride>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProviderAccess {
    pub provider: String,
    pub all_models_allowed: bool,
    pub allowed_models: Vec<String>,
    pub budgets: Vec<Budget>,
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Budget {
    pub max_limit: f64,
    pub reset_duration: String,
    pub quarter_start_month: Option<u8>,
    pub scope: String,
    pub current_usage: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RateLimit {
    pub token_max_limit: Option<f64>,
    pub token_reset_duration: Option<String>,
    pub request_max_limit: Option<f64>,
    pub request_reset_duration: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ToolOverride {
    pub mcp_client_id: String,
    pub tool_name: String,
    pub action: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct McpClient {
    pub client_id: String,
    pub name: String,
    pub tools: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holding {
    pub user_id: String,
    pub profile_id: i64,
    /// The virtual keys the holder got through the profile: its old credentials.
    #[serde(default)]
    pub virtual_key_ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_to_the_same_inventory() {
        let bi = BifrostInventory {
            profiles: vec![BifrostProfile {
                is_active: false,
                ..super::super::tests::profile(7, "ops")
            }],
            mcp_clients: vec![McpClient {
                client_id: "c1".into(),
                name: "github".into(),
                tools: vec!["*".into()],
            }],
            holdings: vec![Holding {
                user_id: "u1".into(),
                profile_id: 7,
                virtual_key_ids: vec!["vk-1".into()],
            }],
        };
        let inv = Inventory {
            records: bi.records("default").unwrap(),
            ..Inventory::default()
        };
        assert_eq!(inv.source_profile_count(), 1);
        assert_eq!(inv.records[0].active, Some(false));
        assert_eq!(BifrostInventory::read(&inv).unwrap(), bi);
    }
}
