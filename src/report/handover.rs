//! The consumer hand-over: for each legacy profile, its new client and key, what its
//! consumer must change, and which line of the secret sink holds the new secret. Never the
//! secret itself.

use anyhow::Result;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

use super::Report;
use crate::model::{Inventory, Vendor};
use crate::secrets::read_sink;
use crate::state::{item_op_id, key_op_id};

#[derive(Debug, Serialize)]
pub struct HandoverRow {
    pub workspace: String,
    pub profile_id: i64,
    pub profile_name: String,
    pub legacy_client_id: i64,
    pub auth_type: String,
    pub status: String,
    pub v2_client_id: Option<i64>,
    pub v2_client_name: Option<String>,
    pub key_id: Option<i64>,
    pub target_id: Option<String>,
    pub key_name: Option<String>,
    pub secret_kind: Option<String>,
    pub oauth_client_id: Option<String>,
    pub sink_file: Option<String>,
    /// 1-based line of the usable secret in the sink (the last record for the key); with
    /// `--secrets-vault`, the line of its receipt.
    pub sink_line: Option<usize>,
    /// With `--secrets-vault`: the entry holding the secret, `MOUNT/PATH` (KV v2), and the
    /// version the receipt names.
    pub vault_path: Option<String>,
    pub vault_version: Option<u64>,
    pub consumer_action: String,
}

/// `target` is the target vendor: what a consumer does differs per vendor.
pub fn rows(
    report: &Report,
    inv: &Inventory,
    sink: &Path,
    target: Vendor,
) -> Result<Vec<HandoverRow>> {
    // Usable record per operation: the last one wins.
    let mut lines: HashMap<String, (usize, crate::secrets::SinkRecord)> = HashMap::new();
    for (i, r) in read_sink(sink, None)?.into_iter().enumerate() {
        lines.insert(r.op_id.clone(), (i + 1, r));
    }
    let profiles: HashMap<(&str, i64), &crate::model::Profile> = inv
        .profiles
        .iter()
        .map(|p| ((p.workspace.as_str(), p.id), p))
        .collect();
    let mut out = Vec::new();
    for row in &report.profiles {
        let profile = profiles.get(&(row.workspace.as_str(), row.profile_id));
        let marker = format!(
            "keyshift:workato:{}:profile:{}",
            row.workspace, row.profile_id
        );
        let sunk = lines
            .get(&key_op_id(&marker))
            .or_else(|| lines.get(&item_op_id(&marker)));
        let line = sunk.map(|(n, _)| *n);
        let vault = sunk.and_then(|(_, r)| r.vault.as_ref());
        let at = match (line, vault) {
            (Some(_), Some(v)) => format!(
                "vault entry {} version {} (`vault kv get -mount={} -version={} {}`)",
                v.location(),
                v.vault_version,
                v.vault_mount,
                v.vault_version,
                v.vault_path
            ),
            (Some(n), None) => format!("secret sink line {n}"),
            (None, _) => "not issued yet".into(),
        };
        let claim = profile
            .and_then(|p| p.access_profile_claim.clone())
            .map(|c| format!("claim `{c}`"))
            .unwrap_or_else(|| "`sub` claim (or `https://www.workato.com/sub`)".into());
        let action = match row.status.as_str() {
            "migrated" if target == Vendor::Descope => format!(
                "exchange the new Descope access key ({at}) for a session JWT — POST \
                 /v1/auth/accesskey/exchange with Authorization: Bearer <project id>:<key> — and \
                 send that JWT instead of the Workato credential"
            ),
            "migrated" if target == Vendor::Bifrost => format!(
                "use the new virtual key ({at}) in x-bf-vk (or Authorization: Bearer) instead of \
                 the profile-managed key; budgets and rate limits start from zero"
            ),
            "migrated" => match row.auth_type.as_str() {
                "token" => format!(
                    "replace the api-token with the new key's auth_token ({at}); URL and IP \
                     allow list stay the same"
                ),
                "oauth2" => format!(
                    "use the new OAuth client id {} and its client secret ({at}) at the \
                     gateway's /oauth2/token endpoint",
                    sunk.and_then(|(_, r)| r.oauth_client_id.clone())
                        .unwrap_or_else(|| "(see the sink)".into())
                ),
                "jwt" => format!(
                    "put the new key's auth_token ({at}) in the JWT {claim}; the signing key \
                     stays the same"
                ),
                "oidc" => format!(
                    "have the identity provider put the new key's auth_token ({at}) in the \
                     {claim}"
                ),
                other => format!("auth type {other}: see the report"),
            },
            "blocked" | "excluded" | "failed" => format!(
                "not migrated: {}",
                row.note.clone().unwrap_or_else(|| row.status.clone())
            ),
            _ => "not migrated yet: run keyshift apply".into(),
        };
        out.push(HandoverRow {
            workspace: row.workspace.clone(),
            profile_id: row.profile_id,
            profile_name: row.profile_name.clone(),
            legacy_client_id: row.legacy_client_id,
            auth_type: row.auth_type.clone(),
            status: row.status.clone(),
            v2_client_id: row.client_id,
            v2_client_name: row.client_name.clone(),
            key_id: row.key_id,
            target_id: row.target_id.clone(),
            key_name: row.key_name.clone(),
            secret_kind: sunk.map(|(_, r)| r.kind.clone()),
            oauth_client_id: sunk.and_then(|(_, r)| r.oauth_client_id.clone()),
            sink_file: line.map(|_| sink.display().to_string()),
            sink_line: line,
            vault_path: vault.map(|v| v.location()),
            vault_version: vault.map(|v| v.vault_version),
            consumer_action: action,
        });
    }
    Ok(out)
}

pub fn to_csv(rows: &[HandoverRow]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
