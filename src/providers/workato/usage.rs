//! Workato's usage evidence: the consumers of a Workato source, and the API request logs
//! that API platform → Logs exports as CSV, one file per workspace (no API offers them; see
//! docs/evidence.md). The logs name the **client** of each request, never the key or the
//! profile, so a consumer is one legacy API client, and its new use is its v2 client's.

use anyhow::Result;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::logs::{self, LogFile};
use crate::engine::adoption::{Consumer, Evidence, Ident, Record, Seen, UsageSource, Want, Window};
use crate::engine::Fut;
use crate::errors::KeyshiftError;
use crate::model::{Inventory, Plan, Workspace};

/// One consumer per legacy client that has planned credentials: its profiles, the markers of
/// their new credentials, and its name in the logs.
pub fn consumers(inv: &Inventory, plan: &Plan) -> Vec<Consumer> {
    let profile_client: HashMap<(&str, i64), i64> = inv
        .profiles
        .iter()
        .map(|p| ((p.workspace.as_str(), p.id), p.legacy_client_id))
        .collect();
    let mut names: HashMap<(&str, &str), usize> = HashMap::new();
    for c in &inv.legacy_clients {
        *names
            .entry((c.workspace.as_str(), c.name.as_str()))
            .or_default() += 1;
    }
    let clients: HashMap<(&str, i64), &str> = inv
        .legacy_clients
        .iter()
        .map(|c| ((c.workspace.as_str(), c.id), c.name.as_str()))
        .collect();
    // (workspace, legacy client) → (profile ids, credential markers)
    let mut by_client: BTreeMap<(String, i64), (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut add = |ws: &str, client: i64, profile: String, marker: &str| {
        let e = by_client.entry((ws.to_string(), client)).or_default();
        if !e.0.contains(&profile) {
            e.0.push(profile);
        }
        e.1.push(marker.to_string());
    };
    for c in &plan.clients {
        for k in &c.keys {
            add(
                &c.workspace,
                c.legacy_client_id,
                k.profile_id.to_string(),
                &k.source,
            );
        }
    }
    for i in &plan.items {
        let Ok(pid) = i.profile_id.parse::<i64>() else {
            continue;
        };
        if let Some(client) = profile_client.get(&(i.workspace.as_str(), pid)) {
            add(&i.workspace, *client, i.profile_id.clone(), &i.source);
        }
    }
    by_client
        .into_iter()
        .map(|((ws, client), (profiles, creds))| {
            let name = clients
                .get(&(ws.as_str(), client))
                .copied()
                .unwrap_or_default()
                .to_string();
            let shared = names
                .get(&(ws.as_str(), name.as_str()))
                .copied()
                .unwrap_or(0);
            let blind = (shared > 1).then(|| {
                format!(
                    "{shared} legacy clients in workspace {ws} are named {name:?}: Workato's logs \
                     name clients only, so their traffic cannot be told apart (rename one in \
                     Workato, then export again)"
                )
            });
            Consumer {
                id: client.to_string(),
                workspace: ws.clone(),
                old: vec![Ident::Client {
                    workspace: ws.clone(),
                    name: name.clone(),
                }],
                name,
                client: Some(client.to_string()),
                profiles,
                creds,
                new: Vec::new(),
                blind,
            }
        })
        .collect()
}

/// The Logs exports the user downloaded, parsed once, by workspace id.
pub struct WorkatoLogs {
    files: HashMap<String, LogFile>,
    /// Workspaces of the run, for messages about missing files.
    workspaces: Vec<Workspace>,
}

impl WorkatoLogs {
    /// Read `--workato-logs [WORKSPACE=]FILE` arguments: WORKSPACE is an id or `E<external
    /// id>`; a bare path is the admin workspace's.
    pub fn read(args: &[String], workspaces: &[Workspace]) -> Result<WorkatoLogs> {
        let mut files = HashMap::new();
        for arg in args {
            let (ws, path) = match arg.split_once('=') {
                Some((w, p)) if !w.contains(std::path::MAIN_SEPARATOR) => (Some(w), p),
                _ => (None, arg.as_str()),
            };
            let id = match ws {
                None => workspaces
                    .iter()
                    .find(|w| w.admin)
                    .or(workspaces.first())
                    .map(|w| w.id.clone())
                    .unwrap_or_else(|| "1".into()),
                Some(w) => find_workspace(w, workspaces).ok_or_else(|| {
                    KeyshiftError::Usage(format!(
                        "--workato-logs {arg:?}: no exported workspace has the id or external id \
                         {w:?} (workspaces: {}) — write WORKSPACE=FILE with an id, or E<external \
                         id>",
                        workspaces
                            .iter()
                            .map(|w| w.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
            };
            let file = logs::read(&PathBuf::from(path)).map_err(|e| {
                KeyshiftError::Config(format!(
                    "the Workato Logs export {e} — download it again from API platform → Logs \
                     → Download results, or fix that line"
                ))
            })?;
            if files.insert(id.clone(), file).is_some() {
                return Err(KeyshiftError::Usage(format!(
                    "--workato-logs names workspace {id} twice — give one file per workspace"
                ))
                .into());
            }
        }
        Ok(WorkatoLogs {
            files,
            workspaces: workspaces.to_vec(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

fn find_workspace(w: &str, workspaces: &[Workspace]) -> Option<String> {
    workspaces
        .iter()
        .find(|x| {
            x.id == w
                || x.external_id
                    .as_deref()
                    .is_some_and(|e| format!("E{e}") == w)
        })
        .map(|x| x.id.clone())
}

impl UsageSource for WorkatoLogs {
    fn read<'a>(&'a self, wants: &'a [Want], window: &'a Window) -> Fut<'a, Result<Evidence>> {
        Box::pin(async move { Ok(self.evidence(wants, window)) })
    }
}

impl WorkatoLogs {
    fn evidence(&self, wants: &[Want], window: &Window) -> Evidence {
        // client name → want indexes, per workspace: one pass over each file.
        let mut index: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        let mut seen: Vec<Result<Seen, String>> = Vec::with_capacity(wants.len());
        for (i, w) in wants.iter().enumerate() {
            let mut missing = None;
            for ident in &w.idents {
                let Ident::Client { workspace, name } = ident else {
                    missing = Some("Workato's logs name clients, not keys".to_string());
                    continue;
                };
                if !self.files.contains_key(workspace) {
                    missing = Some(self.no_file(workspace));
                }
                index.entry((workspace, name)).or_default().push(i);
            }
            seen.push(match missing {
                Some(m) => Err(m),
                None if w.idents.is_empty() => {
                    Err("nothing to look for yet (no credential created)".into())
                }
                None => Ok(Seen::default()),
            });
        }
        let mut notes = Vec::new();
        let mut labels = Vec::new();
        let mut ws_ids: Vec<&String> = self.files.keys().collect();
        ws_ids.sort();
        for ws in ws_ids {
            let file = &self.files[ws];
            labels.push(file.label.clone());
            notes.extend(file.notes.iter().map(|n| format!("{}: {n}", file.label)));
            match file.newest {
                Some(newest) if window.now - newest > chrono::Duration::days(1) => {
                    notes.push(format!(
                        "{}: its newest row is {} — the evidence of workspace {ws} ends there, \
                         more than a day before now ({}); download a fresh export",
                        file.label,
                        newest.format("%Y-%m-%d %H:%M UTC"),
                        window.now.format("%Y-%m-%d %H:%M UTC")
                    ));
                }
                None => notes.push(format!("{}: no rows", file.label)),
                _ => {}
            }
            let mut unattributed = 0u64;
            for row in &file.rows {
                if row.is_probe() || row.at < window.from || row.at > window.until() {
                    continue;
                }
                if row.client.is_empty() {
                    unattributed += u64::from(row.refused());
                    continue;
                }
                let Some(hits) = index.get(&(ws.as_str(), row.client.as_str())) else {
                    continue;
                };
                let record = || Record {
                    at: row.at,
                    what: format!("{} line {}", file.label, row.line),
                };
                for &i in hits {
                    let Some(Ok(s)) = seen.get_mut(i) else {
                        continue;
                    };
                    if row.refused() {
                        if wants[i].refusals_after.is_some_and(|after| row.at >= after) {
                            s.refused(record());
                        }
                    } else {
                        s.used(record());
                    }
                }
            }
            if unattributed > 0 {
                notes.push(format!(
                    "{}: {unattributed} refused request(s) name no client (no credential \
                     matched): they cannot be attributed to a consumer",
                    file.label
                ));
            }
        }
        Evidence {
            seen,
            notes,
            label: if labels.is_empty() {
                "Workato Logs export (none given)".into()
            } else {
                format!("Workato Logs export {}", labels.join(", "))
            },
            requests: 0,
        }
    }

    fn no_file(&self, workspace: &str) -> String {
        let name = self
            .workspaces
            .iter()
            .find(|w| w.id == workspace)
            .map(|w| w.name.as_str())
            .unwrap_or("");
        format!(
            "no evidence source for workspace {workspace} {name:?}: download its API platform → \
             Logs export and pass --workato-logs {workspace}=FILE"
        )
    }
}
