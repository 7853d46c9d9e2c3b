//! `keyshift apply`: execute the saved plan, resumably.
//!
//! For every remote write: journal the intent (committed) → send → on success record the
//! outcome; for keys, the secret goes to the sink (fsynced) before the operation is marked
//! done. An operation left in `intent` — by a crash, or a response lost after the vendor
//! committed — is reconciled by looking its object up by marker (clients) or by name within
//! our client (keys) before anything is sent again. A key that exists but whose secret never
//! reached the sink gets a new one by refreshing that *new* key; legacy profiles are never
//! touched.

use anyhow::Result;
use futures::stream::{self, StreamExt};
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::cli::ApplyArgs;
use crate::context::Ctx;
use crate::errors::{ExitCode, KeyshiftError};
use crate::http::{HttpError, RetryClass};
use crate::model::{ClientSpec, KeySpec, Plan, Workspace};
use crate::providers::workato::{
    combine_digests, Issued, RemoteClient, WorkatoSource, WorkatoTarget, WsAddr, VENDOR,
};
use crate::secrets::{read_sink, SecretSink, SigningSecrets, SinkMode, SinkRecord};
use crate::state::{client_op_id, key_op_id, OpBrief, OpState, Operation, StateDb};

/// After Ctrl-C, how long requests in flight may take to finish (contract §10).
const GRACE: std::time::Duration = std::time::Duration::from_secs(4);

pub async fn run(ctx: &Ctx, args: &ApplyArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let _lock = super::writer_lock(ctx, "apply")?;
    let plan = db.load_plan()?;
    let export_fp = db.meta("export.fingerprint")?;
    let plan_fp = db.meta("plan.fingerprint")?;
    if plan_fp.is_none() {
        return Err(KeyshiftError::State(format!(
            "state file {} has no plan — run `keyshift plan` first",
            ctx.state_path.display()
        ))
        .into());
    }
    if plan_fp != export_fp {
        return Err(KeyshiftError::StalePlan(
            "the plan was made from an older export — re-run `keyshift plan`".into(),
        )
        .into());
    }
    if args.retry_failed {
        let n = db.reset_failed()?;
        if n > 0 {
            ctx.printer
                .line(format!("retrying {n} failed operation(s)"));
        }
    }
    let mapping = db.recorded_mapping()?;
    if mapping.pair != crate::mapping::PairKind::WorkatoV2 {
        return run_flat(ctx, args, &db, &plan, &mapping, export_fp).await;
    }
    let ops: HashMap<String, OpBrief> = db.op_briefs()?;
    let todo: Vec<&ClientSpec> = plan
        .clients
        .iter()
        .filter(|c| !group_done(c, &ops) && !group_failed(c, &ops))
        .collect();
    let total_keys = plan.key_count();
    if todo.is_empty() {
        let failed = plan
            .clients
            .iter()
            .flat_map(|c| {
                std::iter::once(client_op_id(&c.marker))
                    .chain(c.keys.iter().map(|k| key_op_id(&k.source)))
            })
            .filter(|id| ops.get(id).is_some_and(|o| o.state == OpState::Failed))
            .count();
        if failed > 0 {
            ctx.printer.line(format!(
                "{failed} operation(s) failed earlier; run `keyshift apply --retry-failed` to try again"
            ));
            return Ok(ExitCode::Partial);
        }
        ctx.printer.line(format!(
            "nothing to do: all {} v2 API clients and {total_keys} API keys of the plan exist",
            plan.clients.len()
        ));
        ctx.printer.event(
            "apply.done",
            json!({ "created_clients": 0, "created_keys": 0, "failed": 0 }),
        );
        return Ok(ExitCode::Ok);
    }
    let keys_todo: usize = todo
        .iter()
        .flat_map(|c| c.keys.iter())
        .filter(|k| !is_done(&ops, &key_op_id(&k.source)))
        .count();
    let workspaces: BTreeSet<&str> = todo.iter().map(|c| c.workspace.as_str()).collect();
    let question = format!(
        "apply will create up to {} v2 API clients and {keys_todo} API keys in {} workspace(s)",
        todo.len(),
        workspaces.len()
    );
    if !super::confirm(ctx, args.yes, &question)? {
        ctx.printer.line("nothing was done");
        return Ok(ExitCode::Ok);
    }

    drop(ops); // each round reads the journal afresh
    let conn = ctx.workato(args.max_rate)?;
    let inv = db.load_inventory_of(&["workspace"])?;
    if super::source_file(&db)?.is_some() {
        super::check_source_file(&db, export_fp)?;
    } else {
        check_source_unchanged(
            &WorkatoSource::new(conn.clone()),
            &inv.workspaces,
            super::expected_fingerprint(&db, export_fp)?,
        )
        .await?;
    }

    let signing = ctx.signing_secrets()?.unwrap_or_default();
    let sink = open_sink(ctx, args).await?;
    let sunk: HashSet<String> = read_sink(sink.path(), None)?
        .into_iter()
        .map(|r| r.op_id)
        .collect();
    let stop = ctrl_c_flag();
    let run = ApplyRun {
        db: &db,
        target: WorkatoTarget::new(conn.clone()),
        sink: &sink,
        signing: &signing,
        sunk,
        stop: stop.clone(),
        crash: ctx.crash.clone(),
        created_clients: AtomicUsize::new(0),
        created_keys: AtomicUsize::new(0),
        recovered_keys: AtomicUsize::new(0),
        bar: ctx.printer.progress(keys_todo as u64, "apply"),
        per_minute: todo.first().and_then(|c| {
            conn.budget(&WsAddr::find(&inv.workspaces, &c.workspace))
                .per_minute
        }),
        printer: &ctx.printer,
    };
    db.event(
        "apply.start",
        None,
        &json!({ "clients": todo.len(), "keys": keys_todo }),
    )?;

    let started = std::time::Instant::now();
    let work = run.rounds(&plan, &inv.workspaces, usize::from(args.concurrency));
    // Ctrl-C: no new work is taken; requests in flight get GRACE to finish and be journaled,
    // then they are abandoned in `intent` and reconciled by the next run.
    tokio::select! {
        result = work => result?,
        _ = stopped_with_grace(&stop) => {
            ctx.printer.warn("interrupted: in-flight requests abandoned; the next apply reconciles them");
        }
    }
    run.bar.finish_and_clear();

    // Only what the current plan holds counts (a re-plan may have dropped earlier items).
    let in_plan: HashSet<String> = plan
        .clients
        .iter()
        .flat_map(|c| {
            std::iter::once(client_op_id(&c.marker))
                .chain(c.keys.iter().map(|k| key_op_id(&k.source)))
        })
        .collect();
    let open = db
        .op_briefs()?
        .into_iter()
        .filter(|(id, o)| {
            in_plan.contains(id) && matches!(o.state, OpState::Intent | OpState::Pending)
        })
        .count();
    let failed: Vec<Operation> = db
        .failed_operations()?
        .into_iter()
        .filter(|o| in_plan.contains(&o.op_id))
        .collect();
    let requests = conn.http().requests_sent();
    let summary = json!({
        "created_clients": run.created_clients.load(Ordering::Relaxed),
        "created_keys": run.created_keys.load(Ordering::Relaxed),
        "recovered_keys": run.recovered_keys.load(Ordering::Relaxed),
        "failed": failed.len(),
        "unfinished": open,
        "requests": requests,
        "seconds": started.elapsed().as_secs_f64(),
        "secrets": sink.path().display().to_string(),
        "timeline": conn.http().timeline(),
        "budget_per_minute": conn.budget(&WsAddr::find(&inv.workspaces, plan.clients.first().map(|c| c.workspace.as_str()).unwrap_or("1"))).per_minute,
    });
    db.event("apply.end", None, &summary)?;
    let p = &ctx.printer;
    p.line(format!(
        "apply: created {} v2 API clients and {} API keys ({} recovered by refresh) with {} \
         requests in {:.1}s; secrets {} in {}",
        run.created_clients.load(Ordering::Relaxed),
        run.created_keys.load(Ordering::Relaxed),
        run.recovered_keys.load(Ordering::Relaxed),
        requests,
        started.elapsed().as_secs_f64(),
        sink.mode().describe(),
        sink.path().display()
    ));
    print_failures(p, &failed);
    p.event("apply.done", summary);
    if stop.load(Ordering::SeqCst) {
        p.line("interrupted: run `keyshift apply` again to resume");
        return Ok(ExitCode::Partial);
    }
    if !failed.is_empty() || open > 0 {
        p.line("some operations did not finish: fix what the messages say, then `keyshift apply --retry-failed`");
        return Ok(ExitCode::Partial);
    }
    p.line("next: keyshift verify");
    Ok(ExitCode::Ok)
}

fn is_done(ops: &HashMap<String, OpBrief>, op_id: &str) -> bool {
    ops.get(op_id).is_some_and(|o| o.state == OpState::Done)
}

fn group_done(c: &ClientSpec, ops: &HashMap<String, OpBrief>) -> bool {
    is_done(ops, &client_op_id(&c.marker))
        && c.keys.iter().all(|k| is_done(ops, &key_op_id(&k.source)))
}

/// Nothing left that this run may try: every open operation of the group has failed.
fn group_failed(c: &ClientSpec, ops: &HashMap<String, OpBrief>) -> bool {
    let state = |id: &str| ops.get(id).map(|o| o.state);
    let client = state(&client_op_id(&c.marker));
    client == Some(OpState::Failed)
        || (client == Some(OpState::Done)
            && c.keys.iter().all(|k| {
                matches!(
                    state(&key_op_id(&k.source)),
                    Some(OpState::Done | OpState::Failed)
                )
            }))
}

async fn open_sink(ctx: &Ctx, args: &ApplyArgs) -> Result<SecretSink> {
    let mode = match (
        &args.secrets_cmd,
        &args.secrets_recipient,
        &args.secrets_vault,
    ) {
        (Some(cmd), _, _) => SinkMode::Command(cmd.clone()),
        (None, Some(r), _) => SinkMode::age(r)?,
        (None, None, Some(v)) => {
            let target = crate::secrets::vault::VaultTarget::parse(v)?;
            let client = crate::secrets::vault::VaultClient::from_env(
                &ctx.env,
                ctx.net()?,
                ctx.allow_insecure_http,
            )?
            .with_printer(ctx.printer.clone());
            // Before any key is made: a token that cannot write there would leave every new
            // key without its secret.
            client.check_access(&target).await?;
            SinkMode::Vault(Arc::new(crate::secrets::vault::VaultSink {
                client,
                target,
                crash: ctx.crash.clone(),
            }))
        }
        (None, None, None) => SinkMode::Plain,
    };
    SecretSink::open(&ctx.sink_path()?, mode)
}

/// Set on Ctrl-C: no new work is taken after it.
fn ctrl_c_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    stop
}

/// Wait for Ctrl-C, then for the grace period: in-flight requests get that long.
async fn stopped_with_grace(stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(GRACE).await;
}

/// `apply` for a flat target (Descope access keys, Bifrost virtual keys).
async fn run_flat(
    ctx: &Ctx,
    args: &ApplyArgs,
    db: &StateDb,
    plan: &Plan,
    mapping: &crate::mapping::Mapping,
    export_fp: Option<String>,
) -> Result<ExitCode> {
    let (_, open, _) = super::flat::outcome(db, plan)?;
    if open == 0 {
        let (failed, _, code) = super::flat::outcome(db, plan)?;
        if failed > 0 {
            ctx.printer.line(format!(
                "{failed} item(s) failed earlier; run `keyshift apply --retry-failed` to try again"
            ));
        } else {
            ctx.printer.line(format!(
                "nothing to do: all {} planned credentials exist",
                plan.items.len()
            ));
        }
        return Ok(code);
    }
    let target = super::flat::target(ctx, mapping, args.max_rate)?;
    let question = format!(
        "apply will create up to {open} {} credential(s)",
        target.vendor()
    );
    if !super::confirm(ctx, args.yes, &question)? {
        ctx.printer.line("nothing was done");
        return Ok(ExitCode::Ok);
    }
    super::check_source(ctx, db, mapping, export_fp).await?;
    let sink = open_sink(ctx, args).await?;
    let stop = ctrl_c_flag();
    let started = std::time::Instant::now();
    let work = super::flat::apply(
        ctx,
        db,
        plan,
        target.clone(),
        &sink,
        usize::from(args.concurrency),
        stop.clone(),
    );
    let (created, recovered) = tokio::select! {
        r = work => r?,
        _ = stopped_with_grace(&stop) => {
            ctx.printer.warn("interrupted: in-flight requests abandoned; the next apply reconciles them");
            (0, 0)
        }
    };
    let (failed, open, mut code) = super::flat::outcome(db, plan)?;
    let requests = target.http().requests_sent();
    let summary = json!({
        "created": created, "recovered": recovered, "failed": failed, "unfinished": open,
        "requests": requests, "seconds": started.elapsed().as_secs_f64(),
        "secrets": sink.path().display().to_string(),
        "timeline": target.http().timeline(), "budget_per_minute": target.per_minute(),
    });
    db.event("apply.end", None, &summary)?;
    ctx.printer.line(format!(
        "apply: created {created} {} credential(s) ({recovered} recovered by rotation) with \
         {requests} requests in {:.1}s; secrets {} in {}",
        target.vendor(),
        started.elapsed().as_secs_f64(),
        sink.mode().describe(),
        sink.path().display()
    ));
    let items: HashSet<String> = plan
        .items
        .iter()
        .map(|i| crate::state::item_op_id(&i.source))
        .collect();
    let failed: Vec<Operation> = db
        .failed_operations()?
        .into_iter()
        .filter(|o| items.contains(&o.op_id))
        .collect();
    print_failures(&ctx.printer, &failed);
    ctx.printer.event("apply.done", summary);
    if stop.load(Ordering::SeqCst) {
        ctx.printer
            .line("interrupted: run `keyshift apply` again to resume");
        code = ExitCode::Partial;
    } else if code == ExitCode::Ok {
        ctx.printer.line("next: keyshift verify");
    }
    Ok(code)
}

/// The failed operations of this plan, each with the vendor's reason (at most 20 lines).
fn print_failures(p: &crate::printer::Printer, failed: &[Operation]) {
    for f in failed.iter().take(20) {
        p.line(format!(
            "  failed: {} — {}",
            f.target,
            f.error.as_deref().unwrap_or("unknown error")
        ));
    }
    if failed.len() > 20 {
        p.line(format!(
            "  … and {} more (keyshift report)",
            failed.len() - 20
        ));
    }
}

/// Re-read the source's list pages; refuse to apply if they changed since export.
pub async fn check_source_unchanged(
    source: &WorkatoSource,
    workspaces: &[Workspace],
    exported: Option<String>,
) -> Result<()> {
    let mut digests = Vec::new();
    for ws in workspaces {
        digests.extend(source.legacy_digests(ws).await?);
    }
    if Some(combine_digests(digests)) != exported {
        return Err(KeyshiftError::StalePlan(
            "the source changed since export (legacy clients or access profiles differ) — \
             re-run `keyshift export` and `keyshift plan`, review, then apply"
                .into(),
        )
        .into());
    }
    Ok(())
}

struct ApplyRun<'a> {
    db: &'a StateDb,
    target: WorkatoTarget,
    sink: &'a SecretSink,
    signing: &'a SigningSecrets,
    /// Operations whose secret is already in the sink.
    sunk: HashSet<String>,
    stop: Arc<AtomicBool>,
    crash: crate::crash::Checkpoints,
    created_clients: AtomicUsize,
    created_keys: AtomicUsize,
    recovered_keys: AtomicUsize,
    bar: indicatif::ProgressBar,
    /// The rate budget, for the progress ETA.
    per_minute: Option<f64>,
    printer: &'a crate::printer::Printer,
}

/// How one operation ended in this round.
enum Step<T> {
    Done(T),
    /// Outcome unknown: left in `intent`, reconciled next round or next run.
    Unknown,
    Failed,
}

impl ApplyRun<'_> {
    /// The progress bar's ETA comes from the rate budget, not the observed rate: at the
    /// vendor's limit the budget is what decides.
    fn eta(&self) {
        if let (Some(per_minute), Some(len)) = (self.per_minute, self.bar.length()) {
            let left = len.saturating_sub(self.bar.position()) as f64;
            let minutes = left / per_minute;
            self.bar.set_message(if minutes >= 1.0 {
                format!("~{minutes:.0} min left at {per_minute:.0} requests/min")
            } else {
                format!(
                    "~{:.0} s left at {per_minute:.0} requests/min",
                    minutes * 60.0
                )
            });
        }
    }

    /// Reconcile-then-create rounds until everything is done or failed, or rounds stop making
    /// progress ([`super::Progress`]).
    async fn rounds(
        &self,
        plan: &Plan,
        workspaces: &[Workspace],
        concurrency: usize,
    ) -> Result<()> {
        let mut progress = super::Progress::new();
        for round in 0..super::Progress::MAX_ROUNDS {
            let ops: HashMap<String, OpBrief> = self.db.op_briefs()?;
            let todo: Vec<&ClientSpec> = plan
                .clients
                .iter()
                .filter(|c| !group_done(c, &ops) && !group_failed(c, &ops))
                .collect();
            let open = ops
                .values()
                .filter(|o| matches!(o.state, OpState::Pending | OpState::Intent))
                .count();
            if todo.is_empty() || self.stop.load(Ordering::SeqCst) || !progress.another(open).await
            {
                break;
            }
            tracing::debug!(round, open, "apply round");
            // One V1 listing per workspace finds clients a lost response created.
            let mut remote: HashMap<String, RemoteClient> = HashMap::new();
            let spaces: BTreeSet<&str> = todo
                .iter()
                .filter(|c| !is_done(&ops, &client_op_id(&c.marker)))
                .map(|c| c.workspace.as_str())
                .collect();
            for ws in spaces {
                let addr = WsAddr::find(workspaces, ws);
                for rc in self.target.list_clients(&addr).await? {
                    if let Some(m) = rc.marker() {
                        remote.insert(m.to_string(), rc.clone());
                    }
                }
            }
            let (remote, ops) = (&remote, &ops);
            stream::iter(todo)
                .map(|spec| async move {
                    let addr = WsAddr::find(workspaces, &spec.workspace);
                    self.group(spec, &addr, ops, remote).await
                })
                .buffer_unordered(concurrency)
                .collect::<Vec<Result<()>>>()
                .await
                .into_iter()
                .collect::<Result<()>>()?;
        }
        Ok(())
    }

    async fn group(
        &self,
        spec: &ClientSpec,
        ws: &WsAddr,
        ops: &HashMap<String, OpBrief>,
        remote: &HashMap<String, RemoteClient>,
    ) -> Result<()> {
        if self.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let client_id = match self.ensure_client(spec, ws, ops, remote).await? {
            Step::Done(id) => id,
            Step::Unknown => return Ok(()),
            Step::Failed => {
                for k in &spec.keys {
                    let op = key_op_id(&k.source);
                    if !is_done(ops, &op) {
                        self.db
                            .mark_failed(
                                &op,
                                &format!("its v2 API client {:?} could not be created", spec.name),
                            )
                            .await?;
                    }
                }
                return Ok(());
            }
        };
        // Keys whose outcome is unknown are looked up once per client, lazily.
        let mut existing: Option<HashMap<String, i64>> = None;
        for key in &spec.keys {
            let op_id = key_op_id(&key.source);
            let Some(op) = ops.get(&op_id) else { continue };
            if matches!(op.state, OpState::Done | OpState::Failed) {
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            if op.state == OpState::Intent {
                let found = match op.remote_id {
                    Some(id) => Some(id),
                    None => {
                        if existing.is_none() {
                            existing = Some(self.key_names(ws, client_id).await?);
                        }
                        existing.as_ref().and_then(|m| m.get(&key.name).copied())
                    }
                };
                if let Some(key_id) = found {
                    self.recover_key(spec, key, ws, client_id, key_id).await?;
                    continue;
                }
            }
            self.create_key(spec, key, ws, client_id).await?;
        }
        Ok(())
    }

    async fn ensure_client(
        &self,
        spec: &ClientSpec,
        ws: &WsAddr,
        ops: &HashMap<String, OpBrief>,
        remote: &HashMap<String, RemoteClient>,
    ) -> Result<Step<i64>> {
        let op_id = client_op_id(&spec.marker);
        if let Some(OpBrief {
            state: OpState::Done,
            remote_id: Some(id),
        }) = ops.get(&op_id)
        {
            return Ok(Step::Done(*id));
        }
        if let Some(rc) = remote.get(&spec.marker) {
            self.db
                .mark_done(
                    &op_id,
                    rc.id,
                    json!({ "client_id": rc.id, "reconciled": "found by marker" }),
                )
                .await?;
            return Ok(Step::Done(rc.id));
        }
        let hmac = match &spec.signing_secret {
            None => None,
            Some(r) => match self.signing.hmac_for(r) {
                Some(s) => Some(s),
                None => {
                    self.db
                        .mark_failed(
                            &op_id,
                            &format!(
                                "v2 client {:?}: its HMAC signing secret is no longer in the \
                             signing-secrets file — add it back (KEYSHIFT_SIGNING_SECRETS) and \
                             run apply --retry-failed",
                                spec.name
                            ),
                        )
                        .await?;
                    return Ok(Step::Failed);
                }
            },
        };
        self.db.mark_intent(
            &op_id,
            json!({ "request": "create_client", "name": spec.name, "workspace": spec.workspace }),
        ).await?;
        self.crash.hit("before-write");
        match self.target.create_client(ws, spec, hmac).await {
            Ok(id) => {
                self.crash.hit("after-response");
                self.db
                    .mark_done(&op_id, id, json!({ "client_id": id, "name": spec.name }))
                    .await?;
                self.created_clients.fetch_add(1, Ordering::Relaxed);
                self.printer.event(
                    "apply.client",
                    json!({ "workspace": spec.workspace, "client_id": id, "name": spec.name }),
                );
                Ok(Step::Done(id))
            }
            Err(e) => {
                self.failed(&op_id, &format!("v2 client {:?}", spec.name), e)
                    .await
            }
        }
    }

    async fn failed<T>(&self, op_id: &str, what: &str, e: HttpError) -> Result<Step<T>> {
        if e.retry_class() == RetryClass::Ambiguous {
            self.db.event(
                "unknown",
                Some(op_id),
                &json!({ "error": e.to_string(), "next": "reconcile by lookup" }),
            )?;
            return Ok(Step::Unknown);
        }
        let hint = match e.status() {
            Some(400 | 422) if e.to_string().contains("already been taken") => {
                " — another object already has this name; rename it, or change the name \
                 template in the mapping file, then apply --retry-failed"
            }
            Some(401) => " — check KEYSHIFT_WORKATO_TOKEN",
            Some(403) => " — the token lacks the API platform privilege",
            Some(429) | Some(503) => " — the vendor kept refusing; run apply again later",
            _ => "",
        };
        self.db
            .mark_failed(op_id, &format!("{what}: {e}{hint}"))
            .await?;
        Ok(Step::Failed)
    }

    async fn key_names(&self, ws: &WsAddr, client_id: i64) -> Result<HashMap<String, i64>> {
        Ok(self
            .target
            .list_keys(ws, client_id)
            .await?
            .into_iter()
            .map(|k| (k.name, k.id))
            .collect())
    }

    async fn create_key(
        &self,
        spec: &ClientSpec,
        key: &KeySpec,
        ws: &WsAddr,
        client_id: i64,
    ) -> Result<()> {
        let op_id = key_op_id(&key.source);
        self.db
            .mark_intent(
                &op_id,
                json!({ "request": "create_key", "client_id": client_id, "name": key.name }),
            )
            .await?;
        self.crash.hit("before-write");
        match self.target.create_key(ws, client_id, key).await {
            Ok(issued) => {
                self.crash.hit("after-response");
                self.db.record_remote_id(&op_id, issued.key_id).await?;
                self.crash.hit("after-journal");
                self.sink_and_finish(spec, key, client_id, issued, None)
                    .await?;
                self.created_keys.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if e.status() == Some(400) && e.to_string().contains("already been taken") => {
                // Our earlier attempt may have created it: look it up and recover.
                let names = self.key_names(ws, client_id).await?;
                match names.get(&key.name) {
                    Some(id) => self.recover_key(spec, key, ws, client_id, *id).await,
                    None => self
                        .failed::<()>(&op_id, &format!("API key {:?}", key.name), e)
                        .await
                        .map(|_| ()),
                }
            }
            Err(e) => self
                .failed::<()>(&op_id, &format!("API key {:?}", key.name), e)
                .await
                .map(|_| ()),
        }
    }

    /// The key exists. If its secret reached the sink, we are done; otherwise refresh this
    /// new key (nobody uses it yet) and sink the new secret.
    async fn recover_key(
        &self,
        spec: &ClientSpec,
        key: &KeySpec,
        ws: &WsAddr,
        client_id: i64,
        key_id: i64,
    ) -> Result<()> {
        let op_id = key_op_id(&key.source);
        if self.sunk.contains(&op_id) {
            self.db
                .mark_done(
                    &op_id,
                    key_id,
                    json!({ "key_id": key_id, "reconciled": "secret already in the sink" }),
                )
                .await?;
            self.bar.inc(1);
            return Ok(());
        }
        self.db.record_remote_id(&op_id, key_id).await?;
        self.db.event(
            "recover",
            Some(&op_id),
            &json!({ "key_id": key_id, "request": "refresh_secret of the new key" }),
        )?;
        match self.target.refresh_key(ws, client_id, key_id).await {
            Ok(issued) => {
                self.sink_and_finish(spec, key, client_id, issued, None)
                    .await?;
                self.recovered_keys.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => self
                .failed::<()>(&op_id, &format!("API key {:?} (refresh)", key.name), e)
                .await
                .map(|_| ()),
        }
    }

    async fn sink_and_finish(
        &self,
        spec: &ClientSpec,
        key: &KeySpec,
        client_id: i64,
        issued: Issued,
        supersedes: Option<String>,
    ) -> Result<()> {
        let op_id = key_op_id(&key.source);
        let record = SinkRecord {
            v: 1,
            op_id: op_id.clone(),
            vendor: VENDOR.into(),
            workspace: spec.workspace.clone(),
            source: key.source.clone(),
            target_kind: "api_key".into(),
            client_id: Some(client_id),
            key_id: Some(crate::secrets::RemoteId::Num(issued.key_id)),
            key_name: key.name.clone(),
            kind: issued.kind.into(),
            secret: Some(issued.secret),
            oauth_client_id: issued.oauth_client_id,
            issued_at: crate::state::now(),
            supersedes,
            vault: None,
        };
        if let Err(e) = self.sink.append_grouped(&record).await {
            // The secret is lost with this process; the key exists and its id is journaled,
            // so a later apply refreshes it. A broken sink breaks every key: stop here.
            self.db
                .mark_failed(&op_id, &format!("API key {:?}: {e:#}", key.name))
                .await?;
            self.stop.store(true, Ordering::SeqCst);
            self.printer
                .warn(format!("stopping: the secret sink failed: {e:#}"));
            return Ok(());
        }
        self.crash.hit("after-sink");
        self.db
            .mark_done(
                &op_id,
                issued.key_id,
                json!({ "key_id": issued.key_id, "client_id": client_id, "secret": "in sink" }),
            )
            .await?;
        self.bar.inc(1);
        self.eta();
        self.printer.event(
            "apply.key",
            json!({ "workspace": spec.workspace, "client_id": client_id, "key_id": issued.key_id,
                    "name": key.name, "source": key.source }),
        );
        Ok(())
    }
}
