//! Export from Bifrost: access profiles (canonical paths, aliases as a fallback), MCP
//! clients, and the named holders' copies.

use anyhow::Result;
use serde_json::json;

use super::{source_fingerprint, BifrostConn, WORKSPACE};
use crate::engine::Exported;
use crate::mapping::Mapping;
use crate::model::{Inventory, Workspace};
use crate::providers::bifrost::plan::BifrostInventory;

pub async fn export(conn: &BifrostConn, mapping: &Mapping) -> Result<Exported> {
    let (profiles, deprecated_only) = conn.list_profiles().await?;
    let mcp_clients = conn.mcp_clients().await?;
    // The named holders' copies: per-holder mode plans a key for each, and in either mode
    // they are the consumers whose old keys `keyshift adoption` looks up.
    let mut holdings = Vec::new();
    for user in super::sections::named_holders(mapping)? {
        holdings.extend(conn.holdings(&user).await?);
    }
    let read = BifrostInventory {
        profiles,
        mcp_clients,
        holdings,
    };
    let inv = Inventory {
        workspaces: vec![Workspace {
            id: WORKSPACE.into(),
            external_id: None,
            name: "Bifrost".into(),
            admin: true,
        }],
        records: read.records(WORKSPACE)?,
        ..Inventory::default()
    };
    // Virtual-key names are unique instance-wide: the plan avoids names already in use by
    // keys that are not ours.
    let taken: Vec<String> = conn
        .list_ours()
        .await?
        .into_iter()
        .filter(|k| k.source.is_none())
        .filter_map(|k| {
            k.body
                .get("name")
                .and_then(|n| n.as_str())
                .map(String::from)
        })
        .collect();
    let mut warnings = Vec::new();
    if deprecated_only {
        warnings.push(
            "this Bifrost deployment answers only the deprecated /api/access-profiles paths; \
             they are removed in the next major release — upgrade soon"
                .into(),
        );
    }
    let requests = conn.http().requests_sent();
    let counts = json!({ "profiles": read.profiles.len(), "mcp_clients": read.mcp_clients.len(),
                         "holdings": read.holdings.len(), "deprecated_paths_only": deprecated_only });
    Ok(Exported {
        fingerprint: Some(source_fingerprint(&read.profiles)),
        api: "bifrost".into(),
        meta: vec![
            ("export.taken_names", serde_json::to_string(&taken)?),
            ("export.deprecated_paths_only", deprecated_only.to_string()),
        ],
        requests,
        counts: counts.as_object().cloned().unwrap_or_default(),
        summary: format!(
            "exported {} Bifrost access profiles, {} MCP clients, {} holder copies ({requests} \
             requests)",
            read.profiles.len(),
            read.mcp_clients.len(),
            read.holdings.len(),
        ),
        warnings,
        inv,
        ..Exported::default()
    })
}
