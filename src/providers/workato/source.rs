//! Workato's legacy side as the engine's source: the legacy API, or an inventory file
//! (`export --from`) when the legacy API is gone.

use anyhow::Result;
use futures::FutureExt;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::{combine_digests, is_frozen, LegacyApi, V2Api, WorkatoConn, WsAddr, VENDOR};
use crate::engine::adoption::Consumer;
use crate::engine::{self, Fut};
use crate::http::HttpError;
use crate::model::{Inventory, Plan, Vendor, Workspace};

/// The fingerprint of the legacy part of an inventory, with `disabled` profiles inactive.
fn fingerprint_of(mut inv: Inventory, disabled: &HashSet<String>) -> String {
    for p in &mut inv.profiles {
        if disabled.contains(&p.marker(VENDOR)) {
            p.active = false;
        }
    }
    super::source_fingerprint(&inv.legacy_clients, &inv.profiles)
}

/// Where the legacy side is read: the legacy API of the exported workspaces, or an inventory
/// file (`export --from`) when that API is gone — then the stale-plan check compares with the
/// file, and nothing can be disabled through it.
pub enum Legacy {
    Api {
        source: LegacyApi,
        target: V2Api,
        workspaces: Vec<Workspace>,
    },
    File(PathBuf),
}

impl Legacy {
    pub fn api(conn: Arc<WorkatoConn>, workspaces: Vec<Workspace>) -> Legacy {
        Legacy::Api {
            source: LegacyApi::new(conn.clone()),
            target: V2Api::new(conn),
            workspaces,
        }
    }
}

impl engine::Source for Legacy {
    /// The legacy list pages (L1 + L3) re-read without keeping the objects, or the file.
    fn fingerprint(&self) -> Fut<'_, Result<String>> {
        async move {
            match self {
                Legacy::Api {
                    source, workspaces, ..
                } => {
                    let mut digests = Vec::new();
                    for ws in workspaces {
                        digests.extend(source.legacy_digests(ws).await?);
                    }
                    Ok(combine_digests(digests))
                }
                Legacy::File(path) => {
                    let inv = super::inventory_file::read(path)?;
                    Ok(super::source_fingerprint(
                        &inv.legacy_clients,
                        &inv.profiles,
                    ))
                }
            }
        }
        .boxed()
    }

    fn fingerprint_with_disabled(
        &self,
        inv: Inventory,
        disabled: &HashSet<String>,
    ) -> Result<String> {
        Ok(fingerprint_of(inv, disabled))
    }

    fn stale(&self) -> String {
        match self {
            Legacy::Api { .. } => "the source changed since export (legacy clients or access \
                                   profiles differ) — re-run `keyshift export` and `keyshift \
                                   plan`, review, then apply"
                .into(),
            Legacy::File(path) => {
                let path = path.display();
                format!(
                    "the inventory file {path} changed since export — re-run `keyshift export \
                     --from {path}` and `keyshift plan`, review, then apply"
                )
            }
        }
    }

    fn profile_noun(&self) -> &'static str {
        "legacy profile"
    }

    fn profile_marker(&self, workspace: &str, profile: &str) -> String {
        format!("keyshift:{VENDOR}:{workspace}:profile:{profile}")
    }

    fn exported_active(&self, inv: &Inventory) -> HashSet<(String, String)> {
        inv.profiles
            .iter()
            .filter(|p| p.active)
            .map(|p| (p.workspace.clone(), p.id.to_string()))
            .collect()
    }

    fn consumers(&self, inv: &Inventory, plan: &Plan) -> Result<Vec<Consumer>> {
        Ok(super::usage::consumers(inv, plan))
    }

    /// Legacy tokens stop working at the sunset.
    fn retired_at(
        &self,
        mapping: &crate::mapping::Mapping,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        mapping.deadlines.map(|d| d.legacy_tokens_invalid)
    }

    /// L7 / L8.
    fn set_profile_active<'a>(
        &'a self,
        workspace: &'a str,
        profile: &'a str,
        active: bool,
    ) -> Fut<'a, Result<(), HttpError>> {
        async move {
            let Ok(profile) = profile.parse::<i64>() else {
                let what = format!("legacy profile id {profile:?} (Workato's ids are numbers)");
                return Err(engine::refused_here(Vendor::Workato, what));
            };
            let Legacy::Api {
                target, workspaces, ..
            } = self
            else {
                let what = "a legacy write through an inventory file";
                return Err(engine::not_supported(Vendor::Workato, what));
            };
            let ws = WsAddr::find(workspaces, workspace);
            if active {
                target.enable_profile(&ws, profile).await
            } else {
                target.disable_profile(&ws, profile).await
            }
        }
        .boxed()
    }

    fn is_frozen(
        &self,
        e: &HttpError,
        now: chrono::DateTime<chrono::Utc>,
        frozen_at: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        is_frozen(e, now, frozen_at) || is_frozen(e, chrono::Utc::now(), frozen_at)
    }
}
