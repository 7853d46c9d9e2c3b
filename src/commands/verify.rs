//! `keyshift verify`: read every target back (list pages, not one GET per key) and compare
//! it with the plan field by field. Drift exits 4, each difference listed.

use anyhow::Result;
use futures::stream::{self, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::cli::VerifyArgs;
use crate::context::Ctx;
use crate::errors::{ExitCode, KeyshiftError};
use crate::http::check_transport;
use crate::model::{AuthType, ClientSpec, Inventory, KeySpec};
use crate::providers::workato::probe::{
    derive_gateway, Credential, JwtKey, ProbeTarget, Prober, Verdict,
};
use crate::providers::workato::{RemoteClient, RemoteKey, WorkatoTarget, WsAddr};
use crate::secrets::{read_sink, SigningSecrets, SinkRecord};
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
    let db = StateDb::open(&ctx.state_path, false)?;
    let plan = db.load_plan()?;
    let mapping = db.recorded_mapping()?;
    if mapping.pair != crate::mapping::PairKind::WorkatoV2 {
        return run_flat(ctx, args, &db, &plan, &mapping).await;
    }
    let inv = db.load_inventory_of(&["workspace", "collection"])?;
    let ops: HashMap<String, OpState> = db
        .op_briefs()?
        .into_iter()
        .map(|(id, o)| (id, o.state))
        .collect();
    let conn = ctx.workato(None)?;
    let target = WorkatoTarget::new(conn.clone());
    // The last record per key is its usable secret. Without --live only its key id matters:
    // keep that, not 100,000 full records.
    let mut usable: HashMap<String, SinkRecord> = HashMap::new();
    let mut usable_ids: HashMap<String, Option<i64>> = HashMap::new();
    crate::secrets::scan_sink(&ctx.sink_path()?, ctx.age_identity()?.as_ref(), |r| {
        usable_ids.insert(r.op_id.clone(), r.key_id.as_ref().and_then(|k| k.as_i64()));
        if args.live {
            usable.insert(r.op_id.clone(), r);
        }
    })?;
    // Vault receipts: the probes need the secrets themselves, read from the store.
    ctx.fetch_vault_secrets(usable.values_mut()).await?;
    let live = if args.live {
        Some(LiveSetup::new(ctx, &inv)?)
    } else {
        None
    };
    let mut probes: Vec<(String, String, i64, ProbeTarget)> = Vec::new();

    let mut drift: Vec<Drift> = Vec::new();
    let mut live_results: Vec<LiveResult> = Vec::new();
    let mut checked_keys = 0usize;
    let mut ok_keys = 0usize;
    let spaces: BTreeSet<&str> = plan.clients.iter().map(|c| c.workspace.as_str()).collect();
    let bar = ctx.printer.progress(plan.clients.len() as u64, "verify");
    for ws in spaces {
        let addr = WsAddr::find(&inv.workspaces, ws);
        let remote: HashMap<String, RemoteClient> = target
            .list_clients(&addr)
            .await?
            .into_iter()
            .filter_map(|c| {
                let marker = c.marker()?.to_string();
                Some((marker, c))
            })
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
                let sunk = usable_ids.get(&op) == Some(&Some(rk.id));
                let record = usable.get(&op).filter(|_| sunk);
                if let (Some(live), Some(record)) = (&live, record) {
                    match live.target(spec, key, rk, record) {
                        Ok(t) => probes.push((key.source.clone(), object.clone(), rk.id, t)),
                        Err(reason) => live_results.push(LiveResult {
                            source: key.source.clone(),
                            key_id: rk.id,
                            verdict: Verdict::Unverifiable,
                            detail: reason,
                        }),
                    }
                }
                if ops.get(&op) == Some(&OpState::Done) && !sunk {
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

    if let Some(live) = &live {
        let bar = ctx.printer.progress(probes.len() as u64, "probe");
        let prober = Prober::new(
            &live.gateway,
            Duration::from_secs(args.probe_deadline),
            &ctx.net()?,
        )?;
        let results: Vec<(String, String, i64, (Verdict, String))> = stream::iter(probes)
            .map(|(source, object, key_id, target)| {
                let prober = &prober;
                let bar = &bar;
                async move {
                    let v = prober.probe(&target).await;
                    bar.inc(1);
                    (source, object, key_id, v)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        bar.finish_and_clear();
        for (source, object, key_id, (verdict, detail)) in results {
            if verdict == Verdict::Rejected {
                drift.push(Drift {
                    workspace: source.split(':').nth(2).unwrap_or("").to_string(),
                    object,
                    field: "live".into(),
                    expected: "the gateway accepts the key".into(),
                    found: detail.clone(),
                });
            }
            live_results.push(LiveResult {
                source,
                key_id,
                verdict,
                detail,
            });
        }
        live_results.sort_by(|a, b| a.source.cmp(&b.source));
    }
    let count = |v: Verdict| live_results.iter().filter(|r| r.verdict == v).count();
    let unverifiable = count(Verdict::Unverifiable);

    let requests = conn.http().requests_sent();
    db.event(
        "verify",
        None,
        &json!({ "checked_keys": checked_keys, "ok_keys": ok_keys, "drift": drift,
                 "requests": requests, "live": if args.live { json!(live_results) } else { Value::Null } }),
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
    if args.live {
        for r in live_results
            .iter()
            .filter(|r| r.verdict == Verdict::Unverifiable)
            .take(20)
        {
            p.line(format!(
                "  unverifiable: {} (key {}): {}",
                r.source, r.key_id, r.detail
            ));
        }
        p.line(format!(
            "verify --live: {} ok, {} expected-inactive, {} rejected, {unverifiable} unverifiable{}",
            count(Verdict::Ok),
            count(Verdict::ExpectedInactive),
            count(Verdict::Rejected),
            if args.strict { " (--strict: unverifiable fails)" } else { "" }
        ));
    }
    p.event(
        "verify.done",
        json!({ "checked_keys": checked_keys, "ok_keys": ok_keys, "drift": drift.len(),
                "live": args.live.then(|| json!({
                    "ok": count(Verdict::Ok), "expected_inactive": count(Verdict::ExpectedInactive),
                    "rejected": count(Verdict::Rejected), "unverifiable": unverifiable })) }),
    );
    Ok(if !drift.is_empty() || (args.strict && unverifiable > 0) {
        ExitCode::Drift
    } else {
        ExitCode::Ok
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

/// `verify` for a flat target: one listing, a field-by-field comparison with the plan, and
/// with `--live` one exchange (Descope) or quota call (Bifrost) per credential.
async fn run_flat(
    ctx: &Ctx,
    args: &VerifyArgs,
    db: &StateDb,
    plan: &crate::model::Plan,
    mapping: &crate::mapping::Mapping,
) -> Result<ExitCode> {
    use super::flat;
    let target = flat::target(ctx, mapping, None)?;
    let remote = target.list_ours().await?;
    let ops: HashMap<String, OpState> = db
        .op_briefs()?
        .into_iter()
        .map(|(id, o)| (id, o.state))
        .collect();
    let mut usable: HashMap<String, SinkRecord> = HashMap::new();
    for r in read_sink(&ctx.sink_path()?, ctx.age_identity()?.as_ref())? {
        usable.insert(r.op_id.clone(), r);
    }
    if args.live {
        ctx.fetch_vault_secrets(usable.values_mut()).await?;
    }
    let mut drift = Vec::new();
    let mut ok_items = 0usize;
    let planned: std::collections::BTreeSet<&str> =
        plan.items.iter().map(|i| i.source.as_str()).collect();
    for (marker, r) in &remote {
        if !planned.contains(marker.as_str()) {
            drift.push(Drift {
                workspace: marker.split(':').nth(2).unwrap_or("").into(),
                object: format!("{} {}", target.vendor(), r.id),
                field: "existence".into(),
                expected: "only planned credentials carry a keyshift marker".into(),
                found: format!("unplanned credential marked {marker}"),
            });
        }
    }
    let mut probes = Vec::new();
    for item in &plan.items {
        let object = format!("{} {:?}", target.vendor(), item.name);
        let before = drift.len();
        let Some(r) = remote.get(&item.source) else {
            drift.push(Drift {
                workspace: item.workspace.clone(),
                object,
                field: "existence".into(),
                expected: "present".into(),
                found: "missing (not applied yet, or deleted)".into(),
            });
            continue;
        };
        let expected = target.expected_read(&item.body);
        for field in flat::differing_fields(&r.body, &expected) {
            drift.push(Drift {
                workspace: item.workspace.clone(),
                object: object.clone(),
                field: field.clone(),
                expected: expected[&field].to_string(),
                found: r
                    .body
                    .get(&field)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "absent".into()),
            });
        }
        if r.active != item.active {
            drift.push(Drift {
                workspace: item.workspace.clone(),
                object: object.clone(),
                field: "active".into(),
                expected: item.active.to_string(),
                found: r.active.to_string(),
            });
        }
        let op = crate::state::item_op_id(&item.source);
        let record = usable
            .get(&op)
            .filter(|rec| rec.key_id.as_ref().map(|k| k.to_string()) == Some(r.id.clone()));
        if ops.get(&op) == Some(&OpState::Done) && record.is_none() {
            drift.push(Drift {
                workspace: item.workspace.clone(),
                object: object.clone(),
                field: "secret".into(),
                expected: "a usable secret in the sink".into(),
                found: "none for this credential".into(),
            });
        }
        if drift.len() == before {
            ok_items += 1;
        }
        if args.live {
            probes.push((item, r, record.and_then(|rec| rec.secret.as_ref())));
        }
    }
    let mut live_results = Vec::new();
    if args.live {
        let jwks = match &target {
            flat::FlatTarget::Descope(c) => c.jwks().await.ok(),
            flat::FlatTarget::Bifrost(_) => None,
        };
        let bar = ctx.printer.progress(probes.len() as u64, "probe");
        let results: Vec<(&crate::model::ItemSpec, String, (Verdict, String))> =
            stream::iter(probes)
                .map(|(item, r, secret)| {
                    let (target, jwks, bar) = (&target, jwks.as_ref(), &bar);
                    async move {
                        let v = flat::probe(target, item, r, secret, jwks).await;
                        bar.inc(1);
                        (item, r.id.clone(), v)
                    }
                })
                .buffer_unordered(4)
                .collect()
                .await;
        bar.finish_and_clear();
        for (item, id, (verdict, detail)) in results {
            if verdict == Verdict::Rejected {
                drift.push(Drift {
                    workspace: item.workspace.clone(),
                    object: format!("{} {:?}", target.vendor(), item.name),
                    field: "live".into(),
                    expected: "the credential authenticates".into(),
                    found: detail.clone(),
                });
            }
            live_results.push(json!({ "source": item.source, "key_id": id, "verdict": verdict, "detail": detail }));
        }
    }
    let verdict = |v: &str| live_results.iter().filter(|r| r["verdict"] == v).count();
    let unverifiable = verdict("unverifiable");
    let requests = target.http().requests_sent();
    db.event(
        "verify",
        None,
        &json!({ "checked_keys": plan.items.len(), "ok_keys": ok_items, "drift": drift,
                 "requests": requests, "live": if args.live { json!(live_results) } else { Value::Null } }),
    )?;
    db.set_meta("verify.at", &crate::state::now())?;
    let p = &ctx.printer;
    for d in &drift {
        p.line(format!("  drift: {d}"));
        p.event("verify.drift", serde_json::to_value(d)?);
    }
    p.line(format!(
        "verify: {ok_items} of {} planned {} credentials match the plan; {} difference(s) ({requests} requests)",
        plan.items.len(),
        target.vendor(),
        drift.len()
    ));
    if args.live {
        p.line(format!(
            "verify --live: {} ok, {} expected-inactive, {} rejected, {unverifiable} unverifiable",
            verdict("ok"),
            verdict("expected-inactive"),
            verdict("rejected")
        ));
    }
    p.event(
        "verify.done",
        json!({ "checked_keys": plan.items.len(), "ok_keys": ok_items, "drift": drift.len() }),
    );
    Ok(if !drift.is_empty() || (args.strict && unverifiable > 0) {
        ExitCode::Drift
    } else {
        ExitCode::Ok
    })
}

/// The live verdict of one key.
#[derive(Debug, Clone, Serialize)]
pub struct LiveResult {
    pub source: String,
    pub key_id: i64,
    pub verdict: Verdict,
    pub detail: String,
}

/// What live probes need: the gateway root, collection URLs, signing material.
struct LiveSetup {
    gateway: String,
    collection_urls: HashMap<(String, i64), String>,
    signing: SigningSecrets,
}

impl LiveSetup {
    fn new(ctx: &Ctx, inv: &Inventory) -> Result<LiveSetup> {
        let management = ctx.env.get("KEYSHIFT_WORKATO_URL")?.unwrap_or_default();
        let gateway = ctx
            .env
            .get("KEYSHIFT_WORKATO_GATEWAY_URL")?
            .or_else(|| ctx.config.workato.gateway_url.clone())
            .or_else(|| derive_gateway(&management))
            .ok_or_else(|| {
                KeyshiftError::Config(
                    "verify --live needs the API gateway's address — set \
                     KEYSHIFT_WORKATO_GATEWAY_URL (e.g. https://apim.workato.com)"
                        .into(),
                )
            })?;
        check_transport(
            "KEYSHIFT_WORKATO_GATEWAY_URL",
            &gateway,
            ctx.allow_insecure_http,
        )?;
        Ok(LiveSetup {
            gateway,
            collection_urls: inv
                .collections
                .iter()
                .filter_map(|c| c.url.clone().map(|u| ((c.workspace.clone(), c.id), u)))
                .collect(),
            signing: ctx.signing_secrets()?.unwrap_or_default(),
        })
    }

    /// How this key's consumer will call: the probe for it, or why it cannot be probed.
    fn target(
        &self,
        spec: &ClientSpec,
        key: &KeySpec,
        remote: &RemoteKey,
        record: &SinkRecord,
    ) -> std::result::Result<ProbeTarget, String> {
        let url = spec
            .settings
            .collection_ids
            .iter()
            .find_map(|id| self.collection_urls.get(&(spec.workspace.clone(), *id)))
            .ok_or("no gateway URL for the client's collections")?
            .clone();
        let s = &spec.settings;
        let secret = record
            .secret
            .as_ref()
            .map(|s| SecretString::from(s.expose_secret().to_string()))
            .ok_or(
                "its secret is not readable here (age-encrypted without KEYSHIFT_AGE_IDENTITY, \
                 or handed to --secrets-cmd)",
            )?;
        let credential = match &s.auth_type {
            AuthType::Token => Credential::Token(secret),
            AuthType::Oauth2 => Credential::OAuth {
                client_id: record
                    .oauth_client_id
                    .clone()
                    .ok_or("no OAuth client id in the sink")?,
                secret,
            },
            AuthType::Jwt | AuthType::Oidc => {
                let (jwt_key, kid) = match (&s.auth_type, s.jwt_method.as_deref()) {
                    (AuthType::Jwt, Some("hmac")) => {
                        let shared = spec
                            .signing_secret
                            .as_ref()
                            .and_then(|r| self.signing.hmac_for(r))
                            .ok_or("no HMAC signing secret in the signing-secrets file")?;
                        (
                            JwtKey::Hmac(SecretString::from(shared.expose_secret().to_string())),
                            None,
                        )
                    }
                    _ => {
                        let probe = self
                            .signing
                            .probe_keys
                            .iter()
                            .find(|k| k.workspace == spec.workspace && k.profile_id == key.profile_id)
                            .ok_or("no probe key for this RSA/OIDC consumer (probe_keys in the signing-secrets file)")?;
                        (
                            JwtKey::RsaPem(SecretString::from(
                                probe.private_key_pem.expose_secret().to_string(),
                            )),
                            probe.kid.clone(),
                        )
                    }
                };
                Credential::Jwt {
                    key: jwt_key,
                    kid,
                    claim: s
                        .access_profile_claim
                        .clone()
                        .unwrap_or_else(|| "sub".into()),
                    token: secret,
                    required_claims: s.required_claims.iter().cloned().collect(),
                    issuer: s.allowed_issuers.iter().next().cloned(),
                }
            }
            AuthType::Unknown(a) => return Err(format!("auth type {a} cannot be probed")),
        };
        Ok(ProbeTarget {
            url,
            credential,
            active: remote.active && key.active,
            ip_restricted: !key.ip_allow_list.is_empty(),
        })
    }
}
