//! The consumer hand-over: for each legacy profile, its new client and key, what its
//! consumer must change, and which line of the secret sink holds the new secret. Never the
//! secret itself.

use anyhow::Result;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

use super::Report;
use crate::model::{ConsumerChange, Inventory};
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

/// What a consumer does differs per target: `consumer_action` says it for one migrated
/// profile (the registry picks it for the pair).
pub fn rows(
    report: &Report,
    inv: &Inventory,
    sink: &Path,
    consumer_action: &dyn Fn(&ConsumerChange) -> String,
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
        let sunk = row.source.as_deref().and_then(|marker| {
            lines
                .get(&key_op_id(marker))
                .or_else(|| lines.get(&item_op_id(marker)))
        });
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
        let change = ConsumerChange {
            auth_type: row.auth_type.clone(),
            claim: profile.and_then(|p| p.access_profile_claim.clone()),
            oauth_client_id: sunk.and_then(|(_, r)| r.oauth_client_id.clone()),
            at,
        };
        let action = match row.status.as_str() {
            "migrated" => consumer_action(&change),
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

/// The hand-over as CSV, every cell neutralised for spreadsheets (`output::csv_cell`).
pub fn to_csv(rows: &[HandoverRow]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    crate::output::neutralize_csv(&w.into_inner()?)
}

/// One page per consumer (`handover --per-consumer`): who it is, its adoption status, what it
/// changes for each of its profiles, where each new secret is, and how to test it. Returns
/// `(file name, Markdown)` pairs. Vendor text is escaped for Markdown.
pub fn consumer_pages(
    consumers: &[crate::engine::adoption::Consumer],
    rows: &[HandoverRow],
    judged: &[crate::engine::adoption::Judged],
    sink: &Path,
    how_to_test: &str,
) -> Result<Vec<(String, String)>> {
    use std::fmt::Write;
    let md = crate::output::md;
    let mut lines: HashMap<String, (usize, crate::secrets::SinkRecord)> = HashMap::new();
    for (i, r) in read_sink(sink, None)?.into_iter().enumerate() {
        lines.insert(r.op_id.clone(), (i + 1, r));
    }
    let status: HashMap<(&str, &str), &crate::engine::adoption::Judged> = judged
        .iter()
        .map(|j| ((j.workspace.as_str(), j.consumer.as_str()), j))
        .collect();
    let mut out = Vec::new();
    for c in consumers {
        let mut o = String::new();
        let _ = writeln!(o, "# Consumer {} — {}\n", md(&c.id), md(&c.name));
        let _ = writeln!(o, "Workspace {}.\n", md(&c.workspace));
        match status.get(&(c.workspace.as_str(), c.id.as_str())) {
            Some(j) => {
                let _ = writeln!(o, "**Status: {}** — {}\n", j.status.as_str(), md(&j.why));
            }
            None => {
                let _ = writeln!(o, "**Status: not judged yet** — run `keyshift adoption`.\n");
            }
        }
        let _ = writeln!(o, "## What to change\n");
        for r in rows.iter().filter(|r| {
            r.workspace == c.workspace && c.profiles.contains(&r.profile_id.to_string())
        }) {
            let _ = writeln!(
                o,
                "- profile {} “{}”: {}",
                r.profile_id,
                md(&r.profile_name),
                md(&r.consumer_action)
            );
        }
        let _ = writeln!(o, "\n## Where the new secret is\n");
        for m in &c.creds {
            let found = lines
                .get(&key_op_id(m))
                .or_else(|| lines.get(&item_op_id(m)));
            let at = match found {
                Some((_, r)) if r.vault.is_some() => r
                    .vault
                    .as_ref()
                    .map(|v| format!("vault entry {} version {}", v.location(), v.vault_version))
                    .unwrap_or_default(),
                Some((n, r)) => format!(
                    "{} line {n} ({}, {} {})",
                    md(&sink.display().to_string()),
                    r.kind,
                    md(&r.key_name),
                    r.key_id
                        .as_ref()
                        .map(|k| md(&k.to_string()))
                        .unwrap_or_default()
                ),
                None => "not issued yet — run `keyshift apply`".into(),
            };
            let _ = writeln!(o, "- {}: {at}", md(m));
        }
        let _ = writeln!(o, "\n## How to test\n\n{how_to_test}\n");
        let _ = writeln!(
            o,
            "Once it works, stop using the old credential: `keyshift adoption` shows the move, and \
             a cutover wave then switches the old one off."
        );
        let name: String = format!("{}-{}", c.workspace, c.id)
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '-' || ch == '.' {
                    ch
                } else {
                    '_'
                }
            })
            .collect();
        out.push((format!("{name}.md"), o));
    }
    Ok(out)
}
