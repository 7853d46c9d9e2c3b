//! `keyshift verify`: read every target back (list pages, not one GET per key) and compare
//! it with the plan field by field. Drift exits 4, each difference listed.

use anyhow::Result;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

use crate::cli::VerifyArgs;
use crate::context::Ctx;
use crate::errors::{ExitCode, KeyshiftError};
use crate::model::{ClientSpec, Workspace};
use crate::providers::workato::{RemoteClient, RemoteKey, WorkatoTarget, WsAddr};
use crate::secrets::read_sink;
use crate::state::{key_op_id, OpState, StateDb};

/// One difference between the plan and what the vendor holds.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub workspace: String,
    pub object: String,
    pub field: String,
    pub expected: String,
    pub found: String,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "workspace {}, {}: {} expected {}, found {}",
            self.workspace, self.object, self.field, self.expected, self.found
        )
    }
}

pub async fn run(ctx: &Ctx, args: &VerifyArgs) -> Result<ExitCode> {
    if args.live {
        return Err(KeyshiftError::Usage(
            "verify --live is not available for Workato yet (the consumer-gateway probes come \
             with full auth-type support); run `keyshift verify` for the read-back check"
                .into(),
        )
        .into());
    }
    let db = StateDb::open(&ctx.state_path, false)?;
    let plan = db.load_plan()?;
    let inv = db.load_inventory()?;
    let ops: HashMap<String, OpState> = db
        .operations()?
        .into_iter()
        .map(|o| (o.op_id, o.state))
        .collect();
    let conn = ctx.workato(None)?;
    let target = WorkatoTarget::new(conn.clone());
    let sink_records = read_sink(&ctx.sink_path()?)?;
    // The last record per key is its usable secret.
    let mut usable: HashMap<String, Option<i64>> = HashMap::new();
    for r in &sink_records {
        usable.insert(r.op_id.clone(), r.key_id);
    }

    let mut drift: Vec<Drift> = Vec::new();
    let mut checked_keys = 0usize;
    let mut ok_keys = 0usize;
    let spaces: BTreeSet<&str> = plan.clients.iter().map(|c| c.workspace.as_str()).collect();
    let bar = ctx.printer.progress(plan.clients.len() as u64, "verify");
    for ws in spaces {
        let addr = inv
            .workspaces
            .iter()
            .find(|w| w.id == ws)
            .map(WsAddr::for_workspace)
            .unwrap_or_else(|| {
                WsAddr::for_workspace(&Workspace {
                    id: ws.into(),
                    external_id: None,
                    name: String::new(),
                    admin: true,
                })
            });
        let remote: HashMap<String, RemoteClient> = target
            .list_clients(&addr)
            .await?
            .into_iter()
            .filter_map(|c| c.marker().map(|m| (m.to_string(), c.clone())))
            .collect();
        for spec in plan.clients.iter().filter(|c| c.workspace == ws) {
            bar.inc(1);
            let Some(rc) = remote.get(&spec.marker) else {
                drift.push(Drift {
                    workspace: ws.into(),
                    object: format!("v2 client {:?}", spec.name),
                    field: "existence".into(),
                    expected: "present".into(),
                    found: "missing (not applied yet, or deleted)".into(),
                });
                checked_keys += spec.keys.len();
                continue;
            };
            compare_client(spec, rc, &mut drift);
            let keys: HashMap<String, RemoteKey> = target
                .list_keys(&addr, rc.id)
                .await?
                .into_iter()
                .map(|k| (k.name.clone(), k))
                .collect();
            let planned: BTreeSet<&str> = spec.keys.iter().map(|k| k.name.as_str()).collect();
            for extra in keys.keys().filter(|n| !planned.contains(n.as_str())) {
                drift.push(Drift {
                    workspace: ws.into(),
                    object: format!("v2 client {:?}", spec.name),
                    field: "api_keys".into(),
                    expected: "only planned keys".into(),
                    found: format!("unplanned key {extra:?}"),
                });
            }
            for key in &spec.keys {
                checked_keys += 1;
                let before = drift.len();
                let object = format!("API key {:?} in client {:?}", key.name, spec.name);
                let Some(rk) = keys.get(&key.name) else {
                    drift.push(Drift {
                        workspace: ws.into(),
                        object,
                        field: "existence".into(),
                        expected: "present".into(),
                        found: "missing".into(),
                    });
                    continue;
                };
                if rk.active != key.active {
                    drift.push(Drift {
                        workspace: ws.into(),
                        object: object.clone(),
                        field: "active".into(),
                        expected: key.active.to_string(),
                        found: rk.active.to_string(),
                    });
                }
                let want: BTreeSet<&str> = key.ip_allow_list.iter().map(String::as_str).collect();
                let got: BTreeSet<&str> = rk.ip_allow_list.iter().map(String::as_str).collect();
                if want != got {
                    drift.push(Drift {
                        workspace: ws.into(),
                        object: object.clone(),
                        field: "ip_allow_list".into(),
                        expected: format!("{want:?}"),
                        found: format!("{got:?}"),
                    });
                }
                if !rk.ip_deny_list.is_empty() {
                    drift.push(Drift {
                        workspace: ws.into(),
                        object: object.clone(),
                        field: "ip_deny_list".into(),
                        expected: "[]".into(),
                        found: format!("{:?}", rk.ip_deny_list),
                    });
                }
                let op = key_op_id(&key.source);
                if ops.get(&op) == Some(&OpState::Done) && usable.get(&op) != Some(&Some(rk.id)) {
                    drift.push(Drift {
                        workspace: ws.into(),
                        object: object.clone(),
                        field: "secret".into(),
                        expected: "a usable secret in the sink".into(),
                        found: "none for this key id".into(),
                    });
                }
                if drift.len() == before {
                    ok_keys += 1;
                }
            }
        }
    }
    bar.finish_and_clear();

    let requests = conn.http().requests_sent();
    db.event(
        "verify",
        None,
        &json!({ "checked_keys": checked_keys, "ok_keys": ok_keys, "drift": drift, "requests": requests }),
    )?;
    db.set_meta("verify.at", &crate::state::now())?;
    let p = &ctx.printer;
    for d in &drift {
        p.line(format!("  drift: {d}"));
        p.event("verify.drift", serde_json::to_value(d)?);
    }
    p.line(format!(
        "verify: {ok_keys} of {checked_keys} planned API keys match the plan in {} v2 clients; \
         {} difference(s) ({requests} requests)",
        plan.clients.len(),
        drift.len()
    ));
    p.event(
        "verify.done",
        json!({ "checked_keys": checked_keys, "ok_keys": ok_keys, "drift": drift.len() }),
    );
    Ok(if drift.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Drift
    })
}

fn compare_client(spec: &ClientSpec, rc: &RemoteClient, drift: &mut Vec<Drift>) {
    let s = &spec.settings;
    let mut check = |field: &str, expected: String, found: Option<String>| {
        // A field the vendor does not echo cannot be verified (SD-W10 variant).
        if let Some(found) = found {
            if found != expected {
                drift.push(Drift {
                    workspace: spec.workspace.clone(),
                    object: format!("v2 client {:?}", spec.name),
                    field: field.into(),
                    expected,
                    found,
                });
            }
        }
    };
    check("name", spec.name.clone(), Some(rc.name.clone()));
    check(
        "auth_type",
        s.auth_type.as_str().to_string(),
        rc.auth_type.clone(),
    );
    check(
        "api_collection_ids",
        format!("{:?}", s.collection_ids),
        rc.collection_ids
            .as_ref()
            .map(|v| format!("{:?}", v.iter().copied().collect::<BTreeSet<i64>>())),
    );
    check(
        "api_policy_id",
        format!("{:?}", s.policy_id),
        rc.policy_id.map(|p| format!("{p:?}")),
    );
    let opt = |v: &Option<String>| format!("{v:?}");
    if s.auth_type.as_str() == "jwt" || s.auth_type.as_str() == "oidc" {
        check("jwt_method", opt(&s.jwt_method), Some(opt(&rc.jwt_method)));
        check(
            "oidc_issuer",
            opt(&s.oidc_issuer),
            Some(opt(&rc.oidc_issuer)),
        );
        check(
            "oidc_jwks_uri",
            opt(&s.oidc_jwks_uri),
            Some(opt(&rc.oidc_jwks_uri)),
        );
        check(
            "access_profile_claim",
            opt(&s.access_profile_claim),
            Some(opt(&rc.access_profile_claim)),
        );
        check(
            "required_claims",
            format!("{:?}", s.required_claims),
            rc.required_claims
                .as_ref()
                .map(|v| format!("{:?}", v.iter().cloned().collect::<BTreeSet<_>>())),
        );
        check(
            "allowed_issuers",
            format!("{:?}", s.allowed_issuers),
            rc.allowed_issuers
                .as_ref()
                .map(|v| format!("{:?}", v.iter().cloned().collect::<BTreeSet<_>>())),
        );
    }
}
