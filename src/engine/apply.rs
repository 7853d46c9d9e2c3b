//! Apply: reconcile-then-create rounds over the plan's units until everything is done or
//! failed, or rounds stop making progress ([`Progress`]).

use anyhow::Result;
use futures::stream::{self, StreamExt};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::{
    stopped_with_grace, transient, At, Cred, Found, Issued, Next, Progress, RemoteId, Survey,
    Target, Unit,
};
use crate::http::{HttpError, RetryClass};
use crate::model::ClientSpec;
use crate::printer::Printer;
use crate::secrets::{read_sink, SecretSink, SigningSecrets, SinkRecord};
use crate::state::{OpBrief, OpState, Operation, StateDb};

/// What an apply needs besides the plan.
pub struct Apply<'a> {
    pub db: &'a StateDb,
    pub target: &'a dyn Target,
    pub sink: &'a SecretSink,
    pub signing: &'a SigningSecrets,
    pub crash: crate::crash::Checkpoints,
    pub printer: &'a Printer,
    pub stop: Arc<AtomicBool>,
    pub concurrency: usize,
    /// Credentials left to do, as [`standing`] counted them (the progress bar's length).
    pub todo: usize,
}

/// How a run ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub created_containers: usize,
    pub created: usize,
    /// Credentials that existed without their secret in the sink and got a new one.
    pub recovered: usize,
    /// The plan's failed operations, each with the vendor's reason.
    pub failed: Vec<Operation>,
    /// The plan's operations still open (ambiguous outcomes, or an interrupted run).
    pub unfinished: Vec<Operation>,
    pub interrupted: bool,
}

/// Where the plan stands in the journal, before a run.
#[derive(Debug, Default)]
pub struct Standing {
    /// Units with something left that a run may try.
    pub open_units: usize,
    /// Containers of open units not yet created.
    pub containers_todo: usize,
    /// Credentials of open units not yet done.
    pub creds_todo: usize,
    /// Workspaces of the open units.
    pub workspaces: usize,
    /// Operations of the plan that failed.
    pub failed: usize,
}

fn state(ops: &HashMap<String, OpBrief>, id: &str) -> Option<OpState> {
    ops.get(id).map(|o| o.state)
}

/// Nothing left that this run may try: the container failed, or it is done (or absent) and
/// every credential is done or failed.
pub fn settled(u: &Unit, ops: &HashMap<String, OpBrief>) -> bool {
    let container = match u.container_op() {
        None => Some(OpState::Done),
        Some(id) => state(ops, &id),
    };
    container == Some(OpState::Failed)
        || (container == Some(OpState::Done)
            && u.creds.iter().all(|c| {
                matches!(
                    state(ops, &c.op_id()),
                    Some(OpState::Done | OpState::Failed)
                )
            }))
}

pub fn standing(units: &[Unit], ops: &HashMap<String, OpBrief>) -> Standing {
    let open: Vec<&Unit> = units.iter().filter(|u| !settled(u, ops)).collect();
    let done = |id: &str| state(ops, id) == Some(OpState::Done);
    Standing {
        open_units: open.len(),
        containers_todo: open
            .iter()
            .filter(|u| u.container_op().is_some_and(|id| !done(&id)))
            .count(),
        creds_todo: open
            .iter()
            .flat_map(|u| &u.creds)
            .filter(|c| !done(&c.op_id()))
            .count(),
        workspaces: open
            .iter()
            .map(|u| u.workspace)
            .collect::<HashSet<_>>()
            .len(),
        failed: units
            .iter()
            .flat_map(Unit::op_ids)
            .filter(|id| state(ops, id) == Some(OpState::Failed))
            .count(),
    }
}

/// Run the plan's units; Ctrl-C (the `stop` flag) ends it after the grace period.
pub async fn run(a: Apply<'_>, units: &[Unit<'_>]) -> Result<Outcome> {
    let per_minute = units.first().and_then(|u| a.target.per_minute(u.workspace));
    let run = Run {
        sunk: read_sink(a.sink.path(), None)?
            .into_iter()
            .map(|r| r.op_id)
            .collect(),
        bar: a.printer.progress(a.todo as u64, "apply"),
        per_minute,
        created_containers: AtomicUsize::new(0),
        created: AtomicUsize::new(0),
        recovered: AtomicUsize::new(0),
        lookup_failed: Default::default(),
        a,
    };
    // Ctrl-C: no new work is taken; requests in flight get the grace period to finish and be
    // journaled, then they are abandoned in `intent` and reconciled by the next run.
    let interrupted = tokio::select! {
        result = run.rounds(units) => { result?; false }
        _ = stopped_with_grace(&run.a.stop) => true,
    };
    run.bar.finish_and_clear();
    let in_plan: HashSet<String> = units.iter().flat_map(Unit::op_ids).collect();
    let unfinished = run
        .a
        .db
        .open_operations()?
        .into_iter()
        .filter(|o| in_plan.contains(&o.op_id))
        .collect();
    let failed = run
        .a
        .db
        .failed_operations()?
        .into_iter()
        .filter(|o| in_plan.contains(&o.op_id))
        .collect();
    Ok(Outcome {
        created_containers: run.created_containers.load(Ordering::Relaxed),
        created: run.created.load(Ordering::Relaxed),
        recovered: run.recovered.load(Ordering::Relaxed),
        failed,
        unfinished,
        interrupted: interrupted || run.a.stop.load(Ordering::SeqCst),
    })
}

struct Run<'a> {
    a: Apply<'a>,
    /// Operations whose secret is already in the sink.
    sunk: HashSet<String>,
    bar: indicatif::ProgressBar,
    /// The rate budget, for the progress ETA.
    per_minute: Option<f64>,
    created_containers: AtomicUsize,
    created: AtomicUsize,
    recovered: AtomicUsize,
    /// The last lookup that failed after its retries since a stalled round said so.
    lookup_failed: std::sync::Mutex<Option<String>>,
}

/// How one operation ended in this round.
enum Step<T> {
    Done(T),
    /// Outcome unknown: left in `intent`, reconciled next round or next run.
    Unknown,
    Failed,
}

impl Run<'_> {
    fn stopped(&self) -> bool {
        self.a.stop.load(Ordering::SeqCst)
    }

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

    async fn rounds(&self, units: &[Unit<'_>]) -> Result<()> {
        let mut progress = Progress::new();
        for round in 0..Progress::MAX_ROUNDS {
            let ops = self.a.db.op_briefs()?;
            let todo: Vec<&Unit> = units.iter().filter(|u| !settled(u, &ops)).collect();
            let open = todo
                .iter()
                .flat_map(|u| u.op_ids())
                .filter(|id| matches!(state(&ops, id), Some(OpState::Pending | OpState::Intent)))
                .count();
            if todo.is_empty() || self.stopped() {
                return Ok(());
            }
            match progress.next(open) {
                Next::Go => {}
                Next::Pause { n, wait } => {
                    let why = match self.lookup_failed.lock().expect("lock").take() {
                        Some(e) => format!("a lookup failed after its retries ({e})"),
                        None => {
                            "their outcome was unknown (the vendor's answer was lost)".to_string()
                        }
                    };
                    self.a.printer.warn(format!(
                        "apply: {open} operation(s) still open because {why}; round {} in \
                         {:.1} s (stalled round {n} of {})",
                        round + 1,
                        wait.as_secs_f64(),
                        Progress::MAX_STALLED
                    ));
                    // Ctrl-C ends the wait too: `run` races the rounds against the stop flag.
                    tokio::time::sleep(wait).await;
                }
                Next::Stop => break,
            }
            tracing::debug!(round, open, "apply round");
            // One lookup per round finds what a lost response created.
            let looked: Vec<&Unit> = todo
                .iter()
                .copied()
                .filter(|u| {
                    u.container_op()
                        .is_none_or(|id| state(&ops, &id) != Some(OpState::Done))
                })
                .collect();
            let survey = if looked.is_empty() {
                Survey::default()
            } else {
                match self.a.target.survey(&looked).await {
                    Ok(survey) => survey,
                    Err(e) if transient(&e) => {
                        self.lookup_failed(None, &e)?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            let (survey, ops) = (&survey, &ops);
            stream::iter(todo)
                .map(|u| self.unit(u, ops, survey))
                .buffer_unordered(self.a.concurrency.max(1))
                .collect::<Vec<Result<()>>>()
                .await
                .into_iter()
                .collect::<Result<()>>()?;
        }
        if let Some(e) = self.lookup_failed.lock().expect("lock").take() {
            self.a.printer.warn(format!(
                "apply: stopped with operations open: the lookup that finds what a lost \
                 answer created kept failing ({e}); run `keyshift apply` again when the \
                 vendor answers"
            ));
        }
        Ok(())
    }

    async fn unit(
        &self,
        u: &Unit<'_>,
        ops: &HashMap<String, OpBrief>,
        survey: &Survey,
    ) -> Result<()> {
        if self.stopped() {
            return Ok(());
        }
        let container = match u.container {
            None => None,
            Some(spec) => match self.ensure_container(spec, ops, survey).await? {
                Step::Done(id) => Some(id),
                Step::Unknown => return Ok(()),
                Step::Failed => {
                    let reason = format!(
                        "its {} {:?} could not be created",
                        self.a.target.words().container,
                        spec.name
                    );
                    for c in &u.creds {
                        if state(ops, &c.op_id()) != Some(OpState::Done) {
                            self.a.db.mark_failed(&c.op_id(), &reason).await?;
                        }
                    }
                    return Ok(());
                }
            },
        };
        let container = container.as_ref();
        // Credentials whose outcome is unknown are looked up once per container, lazily.
        let mut inside: Option<HashMap<String, Found>> = None;
        for cred in &u.creds {
            let Some(op) = ops.get(&cred.op_id()) else {
                continue;
            };
            if matches!(op.state, OpState::Done | OpState::Failed) {
                continue;
            }
            if self.stopped() {
                return Ok(());
            }
            let mut found = survey.creds.get(cred.source()).cloned();
            if found.is_none() && op.state == OpState::Intent {
                found = match (op.remote_id, container) {
                    (Some(id), _) => Some(Found {
                        id: RemoteId::Num(id),
                        active: None,
                    }),
                    (None, Some(c)) => {
                        if inside.is_none() {
                            match self.a.target.list_in(u, c).await {
                                Ok(listed) => inside = Some(listed),
                                // The rest of this unit waits for the next round's lookup.
                                Err(e) if transient(&e) => {
                                    return self.lookup_failed(u.container_op(), &e)
                                }
                                Err(e) => return Err(e),
                            }
                        }
                        inside.as_ref().and_then(|m| m.get(cred.name()).cloned())
                    }
                    (None, None) => None,
                };
            }
            let at = At { unit: u, container };
            match found {
                Some(f) => self.recover(at, cred, &f).await?,
                None => self.create(at, cred).await?,
            }
        }
        Ok(())
    }

    async fn ensure_container(
        &self,
        spec: &ClientSpec,
        ops: &HashMap<String, OpBrief>,
        survey: &Survey,
    ) -> Result<Step<RemoteId>> {
        let db = self.a.db;
        let op_id = crate::state::client_op_id(&spec.marker);
        if let Some(OpBrief {
            state: OpState::Done,
            remote_id: Some(id),
        }) = ops.get(&op_id)
        {
            return Ok(Step::Done(RemoteId::Num(*id)));
        }
        let what = format!("{} {:?}", self.a.target.words().container, spec.name);
        if let Some(found) = survey.containers.get(&spec.marker) {
            db.mark_done_as(
                &op_id,
                &found.id,
                json!({ "client_id": found.id, "reconciled": "found by marker" }),
            )
            .await?;
            return Ok(Step::Done(found.id.clone()));
        }
        let signing_secret = match &spec.signing_secret {
            None => None,
            Some(r) => match self.a.signing.hmac_for(r) {
                Some(s) => Some(s),
                None => {
                    let msg = format!(
                        "{what}: its HMAC signing secret is no longer in the signing-secrets \
                         file — add it back (KEYSHIFT_SIGNING_SECRETS) and run apply \
                         --retry-failed"
                    );
                    db.mark_failed(&op_id, &msg).await?;
                    return Ok(Step::Failed);
                }
            },
        };
        db.mark_intent(
            &op_id,
            json!({ "request": "create_client", "name": spec.name, "workspace": spec.workspace }),
        )
        .await?;
        self.a.crash.hit("before-write");
        match self.a.target.create_container(spec, signing_secret).await {
            Ok(id) => {
                self.a.crash.hit("after-response");
                db.mark_done_as(&op_id, &id, json!({ "client_id": id, "name": spec.name }))
                    .await?;
                self.created_containers.fetch_add(1, Ordering::Relaxed);
                self.a.printer.event(
                    "apply.client",
                    json!({ "workspace": spec.workspace, "client_id": id, "name": spec.name }),
                );
                Ok(Step::Done(id))
            }
            Err(e) => self.failed(&op_id, &what, e).await,
        }
    }

    /// An ambiguous failure stays in `intent` (reconciled later); any other is the
    /// operation's failure, with the vendor's reason and what to check.
    async fn failed<T>(&self, op_id: &str, what: &str, e: HttpError) -> Result<Step<T>> {
        if e.retry_class() == RetryClass::Ambiguous {
            self.a.db.event(
                "unknown",
                Some(op_id),
                &json!({ "error": e.to_string(), "next": "reconcile by lookup" }),
            )?;
            return Ok(Step::Unknown);
        }
        let hint = self.a.target.hint(&e);
        self.a
            .db
            .mark_failed(op_id, &format!("{what}: {e}{hint}"))
            .await?;
        Ok(Step::Failed)
    }

    /// A lookup (the round's survey, or the listing of a container: `container_op`) failed
    /// after its retries: what it would have decided stays open for the next round, and the
    /// next stalled round says why.
    fn lookup_failed(&self, container_op: Option<String>, e: &anyhow::Error) -> Result<()> {
        let error = format!("{e:#}");
        self.a.db.event(
            "lookup_failed",
            container_op.as_deref(),
            &json!({ "error": error, "next": "the next round looks again" }),
        )?;
        *self.lookup_failed.lock().expect("lock") = Some(error);
        Ok(())
    }

    fn what(&self, cred: &Cred) -> String {
        format!("{} {:?}", self.a.target.words().credential, cred.name())
    }

    async fn create(&self, at: At<'_>, cred: &Cred<'_>) -> Result<()> {
        let db = self.a.db;
        let container = at.container;
        db.mark_intent(
            &cred.op_id(),
            json!({ "request": "create", "vendor": self.a.target.vendor().as_str(),
                    "container": container, "name": cred.name() }),
        )
        .await?;
        self.a.crash.hit("before-write");
        match self.a.target.create(at, cred).await {
            Ok(issued) => {
                self.a.crash.hit("after-response");
                db.record_remote(&cred.op_id(), &issued.id).await?;
                self.a.crash.hit("after-journal");
                if self.sink_then_done(at, cred, issued, false).await? {
                    self.created.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) if container.is_some() && self.a.target.name_taken(&e) => {
                // Our earlier attempt may have created it: look it up and recover.
                let inside = match self
                    .a
                    .target
                    .list_in(at.unit, container.expect("checked"))
                    .await
                {
                    Ok(inside) => inside,
                    Err(e) if transient(&e) => {
                        return self.lookup_failed(at.unit.container_op(), &e)
                    }
                    Err(e) => return Err(e),
                };
                match inside.get(cred.name()) {
                    Some(found) => self.recover(at, cred, found).await,
                    None => self
                        .failed::<()>(&cred.op_id(), &self.what(cred), e)
                        .await
                        .map(drop),
                }
            }
            Err(e) => self
                .failed::<()>(&cred.op_id(), &self.what(cred), e)
                .await
                .map(drop),
        }
    }

    /// The credential exists. If its secret reached the sink, only its state is made right;
    /// otherwise it gets a new secret (it is ours, nobody uses it yet).
    async fn recover(&self, at: At<'_>, cred: &Cred<'_>, found: &Found) -> Result<()> {
        let db = self.a.db;
        let what = self.what(cred);
        db.record_remote(&cred.op_id(), &found.id).await?;
        if self.sunk.contains(&cred.op_id()) {
            if found.active == Some(true) && !cred.active() {
                if let Err(e) = self.a.target.deactivate(at, &found.id).await {
                    return self.failed::<()>(&cred.op_id(), &what, e).await.map(drop);
                }
            }
            db.mark_done_as(
                &cred.op_id(),
                &found.id,
                json!({ "id": found.id, "reconciled": "secret already in the sink" }),
            )
            .await?;
            self.bar.inc(1);
            return Ok(());
        }
        let renewal = self.a.target.words().renewal;
        db.event(
            "recover",
            Some(&cred.op_id()),
            &json!({ "id": found.id, "request": format!("{renewal} the new credential") }),
        )?;
        match self.a.target.renew(at, cred, found).await {
            Ok(issued) => {
                if self.sink_then_done(at, cred, issued, true).await? {
                    self.recovered.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => self
                .failed::<()>(&cred.op_id(), &format!("{what} ({renewal})"), e)
                .await
                .map(drop),
        }
    }

    /// Sink (fsynced) → deactivate, if the credential is active but planned inactive → done
    /// (docs/reliability.md). A renewed secret's record supersedes the operation's earlier secret
    /// (docs/security.md, "The secret sink"). Whether it got to done.
    async fn sink_then_done(
        &self,
        at: At<'_>,
        cred: &Cred<'_>,
        issued: Issued,
        renewed: bool,
    ) -> Result<bool> {
        let db = self.a.db;
        let record = SinkRecord {
            v: 1,
            op_id: cred.op_id().clone(),
            vendor: self.a.target.vendor().as_str().into(),
            workspace: at.unit.workspace.to_string(),
            source: cred.source().to_string(),
            target_kind: self.a.target.credential_kind().into(),
            client_id: at.container.and_then(RemoteId::as_i64),
            key_id: Some(issued.id.clone()),
            key_name: cred.name().to_string(),
            kind: issued.kind,
            secret: Some(issued.secret),
            oauth_client_id: issued.oauth_client_id,
            issued_at: crate::state::now(),
            supersedes: renewed.then(|| cred.op_id()),
            vault: None,
        };
        if let Err(e) = self.a.sink.append_grouped(&record).await {
            // The secret is lost with this process; the credential exists and its id is
            // journaled, so a later apply renews it. A broken sink breaks every credential:
            // stop here.
            db.mark_failed(&cred.op_id(), &format!("{}: {e:#}", self.what(cred)))
                .await?;
            self.a.stop.store(true, Ordering::SeqCst);
            self.a
                .printer
                .warn(format!("stopping: the secret sink failed: {e:#}"));
            return Ok(false);
        }
        self.a.crash.hit("after-sink");
        if issued.active && !cred.active() {
            if let Err(e) = self.a.target.deactivate(at, &issued.id).await {
                self.failed::<()>(&cred.op_id(), &self.what(cred), e)
                    .await?;
                return Ok(false);
            }
        }
        db.mark_done_as(
            &cred.op_id(),
            &issued.id,
            json!({ "id": issued.id, "client_id": at.container, "secret": "in sink" }),
        )
        .await?;
        self.bar.inc(1);
        self.eta();
        self.a.printer.event(
            "apply.key",
            json!({ "vendor": self.a.target.vendor().as_str(), "workspace": at.unit.workspace,
                    "client_id": at.container, "key_id": issued.id, "name": cred.name(),
                    "source": cred.source() }),
        );
        Ok(true)
    }
}
