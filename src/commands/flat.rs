//! Apply, verify and roll back for flat targets — one credential per source profile, no
//! client grouping: Descope access keys (and Bifrost virtual keys). The journal discipline is
//! the one of `apply.rs`: intent before every create, the secret to the sink before done,
//! lookup by marker before anything is sent again.

use anyhow::Result;
use futures::stream::{self, StreamExt};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::http::{HttpError, RetryClass};
use crate::model::{ItemSpec, Plan};
use crate::providers::bifrost::BifrostConn;
use crate::providers::descope::{DescopeConn, ExchangeError};
use crate::providers::workato::probe::Verdict;
use crate::secrets::{read_sink, RemoteId, SecretSink, SinkRecord};
use crate::state::{item_op_id, OpState, Operation, StateDb};

/// One of our credentials as the vendor holds it.
#[derive(Debug, Clone)]
pub struct RemoteItem {
    pub id: String,
    pub active: bool,
    pub body: Value,
}

/// A flat target vendor.
#[derive(Clone)]
pub enum FlatTarget {
    Descope(Arc<DescopeConn>),
    Bifrost(Arc<BifrostConn>),
}

impl FlatTarget {
    pub fn vendor(&self) -> &'static str {
        match self {
            FlatTarget::Descope(_) => "descope",
            FlatTarget::Bifrost(_) => "bifrost",
        }
    }

    /// Can a credential be created inactive (no separate deactivate call)?
    fn creates_inactive(&self) -> bool {
        matches!(self, FlatTarget::Bifrost(_))
    }

    /// The planned body as the vendor reads it back (Bifrost echoes provider keys and MCP
    /// clients in another shape than it accepts them).
    pub fn expected_read(&self, body: &Value) -> Value {
        let FlatTarget::Bifrost(_) = self else {
            return body.clone();
        };
        let mut b = body.clone();
        if let Some(pcs) = b.get_mut("provider_configs").and_then(Value::as_array_mut) {
            for pc in pcs {
                if let Some(obj) = pc.as_object_mut() {
                    if obj.remove("key_ids") == Some(json!(["*"])) {
                        obj.insert("allow_all_keys".into(), json!(true));
                    }
                }
            }
        }
        if let Some(mcs) = b.get_mut("mcp_configs").and_then(Value::as_array_mut) {
            for mc in mcs {
                if let Some(obj) = mc.as_object_mut() {
                    if let Some(name) = obj.remove("mcp_client_name") {
                        obj.insert("mcp_client".into(), json!({ "name": name }));
                    }
                }
            }
        }
        b
    }

    fn target_kind(&self) -> &'static str {
        match self {
            FlatTarget::Descope(_) => "access_key",
            FlatTarget::Bifrost(_) => "virtual_key",
        }
    }

    pub fn http(&self) -> &crate::http::Http {
        match self {
            FlatTarget::Descope(c) => c.http(),
            FlatTarget::Bifrost(c) => c.http(),
        }
    }

    pub fn per_minute(&self) -> Option<f64> {
        match self {
            FlatTarget::Descope(c) => c.budget().per_minute,
            FlatTarget::Bifrost(c) => c.budget().per_minute,
        }
    }

    /// Our credentials, by marker: one search.
    pub async fn list_ours(&self) -> Result<HashMap<String, RemoteItem>> {
        let found = match self {
            FlatTarget::Descope(c) => c.search("keyshift:").await?,
            FlatTarget::Bifrost(c) => c.list_ours().await?,
        };
        Ok(found
            .into_iter()
            .filter_map(|k| {
                let source = k.source?;
                let item = RemoteItem {
                    id: k.id,
                    active: k.active,
                    body: k.body,
                };
                Some((source, item))
            })
            .collect())
    }

    async fn create(&self, item: &ItemSpec) -> Result<(String, SecretString), HttpError> {
        match self {
            FlatTarget::Descope(c) => c.create(&item.body).await,
            FlatTarget::Bifrost(c) => c.create(&item.body).await,
        }
    }

    async fn rotate(&self, id: &str) -> Result<(String, SecretString), HttpError> {
        match self {
            FlatTarget::Descope(c) => c.rotate(id).await,
            FlatTarget::Bifrost(c) => c.rotate(id).await,
        }
    }

    async fn set_active(&self, id: &str, active: bool) -> Result<(), HttpError> {
        match self {
            FlatTarget::Descope(c) => c.set_active(id, active).await,
            FlatTarget::Bifrost(c) => c.set_active(id, active).await,
        }
    }

    async fn delete(&self, id: &str) -> Result<(), HttpError> {
        match self {
            FlatTarget::Descope(c) => c.delete(id).await,
            FlatTarget::Bifrost(c) => c.delete(id).await,
        }
    }
}

/// Build the target of the mapping's pair.
pub fn target(
    ctx: &Ctx,
    mapping: &crate::mapping::Mapping,
    max_rate: Option<f64>,
) -> Result<FlatTarget> {
    match mapping.pair {
        crate::mapping::PairKind::WorkatoToDescope => {
            Ok(FlatTarget::Descope(ctx.descope(max_rate)?))
        }
        crate::mapping::PairKind::BifrostVirtualKeys => {
            Ok(FlatTarget::Bifrost(ctx.bifrost(max_rate)?))
        }
        other => anyhow::bail!("{other:?} is not a flat target"),
    }
}

fn done(ops: &HashMap<String, Operation>, item: &ItemSpec) -> bool {
    ops.get(&item_op_id(&item.source))
        .is_some_and(|o| o.state == OpState::Done)
}

fn finished(ops: &HashMap<String, Operation>, item: &ItemSpec) -> bool {
    ops.get(&item_op_id(&item.source))
        .is_some_and(|o| matches!(o.state, OpState::Done | OpState::Failed))
}

pub struct FlatApply<'a> {
    pub db: &'a StateDb,
    pub target: FlatTarget,
    pub sink: &'a SecretSink,
    pub sunk: HashSet<String>,
    pub stop: Arc<AtomicBool>,
    pub crash: crate::crash::Checkpoints,
    pub printer: &'a crate::printer::Printer,
    pub bar: indicatif::ProgressBar,
    pub created: AtomicUsize,
    pub recovered: AtomicUsize,
}

impl FlatApply<'_> {
    /// Rounds of list-then-create until everything is done or failed, or rounds stop making
    /// progress ([`super::Progress`]).
    pub async fn rounds(&self, plan: &Plan, concurrency: usize) -> Result<()> {
        let mut progress = super::Progress::new();
        for _ in 0..super::Progress::MAX_ROUNDS {
            let ops: HashMap<String, Operation> = self
                .db
                .operations()?
                .into_iter()
                .map(|o| (o.op_id.clone(), o))
                .collect();
            let todo: Vec<&ItemSpec> = plan.items.iter().filter(|i| !finished(&ops, i)).collect();
            if todo.is_empty()
                || self.stop.load(Ordering::SeqCst)
                || !progress.another(todo.len()).await
            {
                break;
            }
            let remote = self.target.list_ours().await?;
            let (remote, ops) = (&remote, &ops);
            stream::iter(todo)
                .map(|item| async move { self.item(item, ops, remote).await })
                .buffer_unordered(concurrency)
                .collect::<Vec<Result<()>>>()
                .await
                .into_iter()
                .collect::<Result<()>>()?;
        }
        Ok(())
    }

    async fn item(
        &self,
        item: &ItemSpec,
        ops: &HashMap<String, Operation>,
        remote: &HashMap<String, RemoteItem>,
    ) -> Result<()> {
        if self.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let op_id = item_op_id(&item.source);
        if let Some(existing) = remote.get(&item.source) {
            return self.recover(item, existing).await;
        }
        let _ = ops;
        self.db
            .mark_intent(
                &op_id,
                json!({ "request": "create", "vendor": self.target.vendor(), "name": item.name }),
            )
            .await?;
        self.crash.hit("before-write");
        match self.target.create(item).await {
            Ok((id, secret)) => {
                self.crash.hit("after-response");
                self.db.set_ref(&op_id, &id).await?;
                self.crash.hit("after-journal");
                self.sink_then_finish(
                    item,
                    &id,
                    secret,
                    !item.active && !self.target.creates_inactive(),
                )
                .await?;
                self.created.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => self.failed(&op_id, item, e).await,
        }
    }

    /// The credential exists (found by marker). If its secret reached the sink we only make
    /// its state right; otherwise it gets a new secret (it is ours, nobody uses it yet).
    async fn recover(&self, item: &ItemSpec, existing: &RemoteItem) -> Result<()> {
        let op_id = item_op_id(&item.source);
        self.db.set_ref(&op_id, &existing.id).await?;
        if self.sunk.contains(&op_id) {
            if existing.active && !item.active {
                if let Err(e) = self.target.set_active(&existing.id, false).await {
                    return self.failed(&op_id, item, e).await;
                }
            }
            self.db
                .mark_done_ref(
                    &op_id,
                    &existing.id,
                    json!({ "id": existing.id, "reconciled": "secret already in the sink" }),
                )
                .await?;
            self.bar.inc(1);
            return Ok(());
        }
        self.db.event(
            "recover",
            Some(&op_id),
            &json!({ "id": existing.id, "request": "rotate the new credential" }),
        )?;
        // Only an active Descope key can be rotated (SD-D10): activate, rotate, then set the
        // planned state. Bifrost rotates inactive keys as they are.
        let active_after = existing.active || !self.target.creates_inactive();
        if !existing.active && !self.target.creates_inactive() {
            if let Err(e) = self.target.set_active(&existing.id, true).await {
                return self.failed(&op_id, item, e).await;
            }
        }
        match self.target.rotate(&existing.id).await {
            Ok((id, secret)) => {
                self.sink_then_finish(item, &id, secret, !item.active && active_after)
                    .await?;
                self.recovered.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => self.failed(&op_id, item, e).await,
        }
    }

    /// Sink (fsync) → deactivate if planned inactive → done (contract §10).
    /// `deactivate`: the credential is active but planned inactive.
    async fn sink_then_finish(
        &self,
        item: &ItemSpec,
        id: &str,
        secret: SecretString,
        deactivate: bool,
    ) -> Result<()> {
        let op_id = item_op_id(&item.source);
        let record = SinkRecord {
            v: 1,
            op_id: op_id.clone(),
            vendor: self.target.vendor().into(),
            workspace: item.workspace.clone(),
            source: item.source.clone(),
            target_kind: self.target.target_kind().into(),
            client_id: None,
            key_id: Some(RemoteId::Text(id.to_string())),
            key_name: item.name.clone(),
            kind: self.target.target_kind().into(),
            secret: Some(secret),
            oauth_client_id: None,
            issued_at: crate::state::now(),
            supersedes: None,
            vault: None,
        };
        if let Err(e) = self.sink.append_grouped(&record).await {
            self.db
                .mark_failed(&op_id, &format!("{:?}: {e:#}", item.name))
                .await?;
            self.stop.store(true, Ordering::SeqCst);
            self.printer
                .warn(format!("stopping: the secret sink failed: {e:#}"));
            return Ok(());
        }
        self.crash.hit("after-sink");
        if deactivate {
            if let Err(e) = self.target.set_active(id, false).await {
                return self.failed(&op_id, item, e).await;
            }
        }
        self.db
            .mark_done_ref(&op_id, id, json!({ "id": id, "secret": "in sink" }))
            .await?;
        self.bar.inc(1);
        self.printer.event(
            "apply.item",
            json!({ "vendor": self.target.vendor(), "id": id, "name": item.name, "source": item.source }),
        );
        Ok(())
    }

    async fn failed(&self, op_id: &str, item: &ItemSpec, e: HttpError) -> Result<()> {
        if e.retry_class() == RetryClass::Ambiguous {
            self.db.event(
                "unknown",
                Some(op_id),
                &json!({ "error": e.to_string(), "next": "reconcile by lookup" }),
            )?;
            return Ok(());
        }
        self.db
            .mark_failed(
                op_id,
                &format!("{} {:?}: {e}", self.target.target_kind(), item.name),
            )
            .await
    }
}

/// `apply` for a flat target. The caller has checked the plan and the source.
pub async fn apply(
    ctx: &Ctx,
    db: &StateDb,
    plan: &Plan,
    target: FlatTarget,
    sink: &SecretSink,
    concurrency: usize,
    stop: Arc<AtomicBool>,
) -> Result<(usize, usize)> {
    let ops: HashMap<String, Operation> = db
        .operations()?
        .into_iter()
        .map(|o| (o.op_id.clone(), o))
        .collect();
    let todo = plan.items.iter().filter(|i| !done(&ops, i)).count();
    let run = FlatApply {
        db,
        target,
        sink,
        sunk: read_sink(sink.path(), None)?
            .into_iter()
            .map(|r| r.op_id)
            .collect(),
        stop,
        crash: ctx.crash.clone(),
        printer: &ctx.printer,
        bar: ctx.printer.progress(todo as u64, "apply"),
        created: AtomicUsize::new(0),
        recovered: AtomicUsize::new(0),
    };
    run.rounds(plan, concurrency).await?;
    run.bar.finish_and_clear();
    Ok((
        run.created.load(Ordering::Relaxed),
        run.recovered.load(Ordering::Relaxed),
    ))
}

/// Does the vendor's object carry every planned field? Lists compare as multisets, objects
/// by the planned keys (the vendor may add fields, e.g. `tenantName`).
pub fn carries(remote: &Value, planned: &Value) -> bool {
    match (remote, planned) {
        (Value::Object(r), Value::Object(p)) => p
            .iter()
            .all(|(k, v)| r.get(k).is_some_and(|rv| carries(rv, v))),
        (Value::Array(r), Value::Array(p)) => {
            r.len() == p.len() && p.iter().all(|pv| r.iter().any(|rv| carries(rv, pv)))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (r, p) => r == p,
    }
}

/// The fields of `planned` that `remote` does not carry.
pub fn differing_fields(remote: &Value, planned: &Value) -> Vec<String> {
    match planned.as_object() {
        Some(p) => p
            .iter()
            .filter(|(k, v)| !remote.get(*k).is_some_and(|rv| carries(rv, v)))
            .map(|(k, _)| k.clone())
            .collect(),
        None => Vec::new(),
    }
}

/// Live check of one credential: Descope exchanges it and checks the JWT.
pub async fn probe(
    target: &FlatTarget,
    item: &ItemSpec,
    remote: &RemoteItem,
    secret: Option<&SecretString>,
    jwks: Option<&Value>,
) -> (Verdict, String) {
    let Some(secret) = secret else {
        return (
            Verdict::Unverifiable,
            "its secret is not readable here (age-encrypted without KEYSHIFT_AGE_IDENTITY, or \
             handed to --secrets-cmd)"
                .into(),
        );
    };
    match target {
        FlatTarget::Descope(c) => {
            let Some(jwks) = jwks else {
                return (
                    Verdict::Unverifiable,
                    "the project's JWKS could not be read".into(),
                );
            };
            match c.exchange(secret, jwks).await {
                Ok(sub) if sub == remote.id && item.active => (
                    Verdict::Ok,
                    "exchanged; JWT signature and subject check out".into(),
                ),
                Ok(sub) if sub != remote.id => (
                    Verdict::Rejected,
                    format!(
                        "the session JWT's subject {sub} is not the key {}",
                        remote.id
                    ),
                ),
                Ok(_) => (Verdict::Rejected, "an inactive key was exchanged".into()),
                Err(ExchangeError::Refused(status, _)) if !item.active => (
                    Verdict::ExpectedInactive,
                    format!("inactive key refused ({status}) as planned"),
                ),
                Err(ExchangeError::Refused(403, _))
                    if item.body["permittedIps"]
                        .as_array()
                        .is_some_and(|a| !a.is_empty()) =>
                {
                    (
                        Verdict::Unverifiable,
                        "403: the key's permitted IPs may exclude this host".into(),
                    )
                }
                Err(ExchangeError::Refused(status, msg)) => {
                    (Verdict::Rejected, format!("refused with {status}: {msg}"))
                }
                Err(ExchangeError::Other(msg)) => (Verdict::Rejected, msg),
            }
        }
        FlatTarget::Bifrost(c) => match c.quota(secret).await {
            Err(msg) => (Verdict::Unverifiable, msg),
            Ok((200, body)) => {
                let active = body.get("is_active").and_then(Value::as_bool) == Some(true);
                let named = body.get("virtual_key_name").and_then(Value::as_str)
                    == Some(item.name.as_str());
                match (item.active, active, named) {
                    (_, _, false) => (Verdict::Rejected, "the quota call names another key".into()),
                    (true, true, true) => (Verdict::Ok, "quota call authenticated".into()),
                    (false, false, true) => (
                        Verdict::ExpectedInactive,
                        "inactive key answers is_active: false as planned".into(),
                    ),
                    (true, false, true) => (Verdict::Rejected, "the key is inactive".into()),
                    (false, true, true) => {
                        (Verdict::Rejected, "a key planned inactive is active".into())
                    }
                }
            }
            Ok((404, _)) => (
                Verdict::Unverifiable,
                "the quota endpoint is missing (older Bifrost)".into(),
            ),
            Ok((status @ (401 | 403), _)) => (Verdict::Rejected, format!("refused with {status}")),
            Ok((status, _)) => (
                Verdict::Unverifiable,
                format!("quota call answered {status}"),
            ),
        },
    }
}

/// Planned items grouped for rollback: remote id by marker, for our planned items only.
pub async fn rollback(
    ctx: &Ctx,
    db: &StateDb,
    plan: &Plan,
    target: &FlatTarget,
) -> Result<(usize, usize)> {
    let remote = target.list_ours().await?;
    let planned: BTreeSet<&str> = plan.items.iter().map(|i| i.source.as_str()).collect();
    let (mut deleted, mut failed) = (0, 0);
    let bar = ctx.printer.progress(plan.items.len() as u64, "rollback");
    for item in plan.items.iter().rev() {
        bar.inc(1);
        let op = item_op_id(&item.source);
        let Some(r) = remote
            .get(&item.source)
            .filter(|_| planned.contains(item.source.as_str()))
        else {
            db.reopen(&op)?;
            continue;
        };
        let result = async {
            if r.active {
                target.set_active(&r.id, false).await?;
            }
            target.delete(&r.id).await
        }
        .await;
        match result {
            Ok(()) => {
                db.event("rollback.deleted", Some(&op), &json!({ "id": r.id }))?;
                db.reopen(&op)?;
                deleted += 1;
            }
            Err(e) if e.status() == Some(404) => {
                db.reopen(&op)?;
            }
            Err(e) => {
                ctx.printer.warn(format!("{:?} ({}): {e}", item.name, r.id));
                failed += 1;
            }
        }
    }
    bar.finish_and_clear();
    Ok((deleted, failed))
}

/// Exit code helper shared with apply: failures or unfinished items make a partial run.
pub fn outcome(db: &StateDb, plan: &Plan) -> Result<(usize, usize, ExitCode)> {
    let ops: HashMap<String, Operation> = db
        .operations()?
        .into_iter()
        .map(|o| (o.op_id.clone(), o))
        .collect();
    let failed = plan
        .items
        .iter()
        .filter(|i| {
            ops.get(&item_op_id(&i.source))
                .is_some_and(|o| o.state == OpState::Failed)
        })
        .count();
    let open = plan.items.iter().filter(|i| !finished(&ops, i)).count();
    let code = if failed > 0 || open > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    };
    Ok((failed, open, code))
}
