//! The engine against an in-memory target written here: proof that a vendor is nothing more
//! than an implementation of [`Target`]. It can group credentials in containers or keep them
//! standalone, create only active credentials (like Descope), and lose responses after
//! committing a create (like a 504 from a proxy).

use futures::FutureExt;
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::apply::{self, Apply, Outcome};
use super::*;
use crate::http::HttpClient;
use crate::model::{AuthType, ClientSettings};
use crate::printer::{Mode, Printer};
use crate::secrets::{read_sink, SecretSink, SigningSecrets, SinkMode};
use crate::state::{OpState, StateDb};

#[derive(Debug, Clone)]
struct MemCred {
    container: Option<i64>,
    name: String,
    source: String,
    active: bool,
    secret: String,
}

#[derive(Debug, Default)]
struct World {
    next: i64,
    /// id → (marker, name)
    containers: BTreeMap<i64, (String, String)>,
    creds: BTreeMap<i64, MemCred>,
    /// Commit the next creates, then answer as if the response was lost.
    lose_responses: usize,
    /// Container names whose create is refused.
    refuse: HashSet<String>,
    /// Fail the next lookups (survey or listing) as after all their retries (a 503).
    failing_lookups: usize,
    /// The same, for container listings only.
    failing_listings: usize,
    /// Refuse every lookup (a 403): the run cannot go on.
    refuse_lookups: bool,
}

struct Memory {
    world: Mutex<World>,
    http: Http,
    /// Credentials live in containers (else they stand alone, found by marker).
    grouped: bool,
    /// Every create makes an active credential, whatever the plan says.
    creates_active: bool,
}

impl Memory {
    fn new(grouped: bool, creates_active: bool) -> Memory {
        Memory {
            world: Mutex::new(World::default()),
            http: Arc::new(HttpClient::new().unwrap()),
            grouped,
            creates_active,
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }

    fn num(id: &RemoteId) -> i64 {
        id.as_i64().expect("numeric id")
    }

    fn lost() -> HttpError {
        HttpError::Status {
            method: "POST".into(),
            route: "memory".into(),
            status: 504,
            message: "gateway timeout".into(),
            retry_after: None,
            body: None,
        }
    }

    /// A lookup (a container's listing, or the survey), or why it fails.
    fn lookup(&self, listing: bool) -> Result<(), HttpError> {
        let mut w = self.world();
        let status = if w.refuse_lookups {
            403
        } else if w.failing_lookups > 0 {
            w.failing_lookups -= 1;
            503
        } else if listing && w.failing_listings > 0 {
            w.failing_listings -= 1;
            503
        } else {
            return Ok(());
        };
        Err(HttpError::Status {
            method: "GET".into(),
            route: "memory".into(),
            status,
            message: "lookup failed".into(),
            retry_after: None,
            body: None,
        })
    }

    fn refused(what: &str) -> HttpError {
        HttpError::Status {
            method: "POST".into(),
            route: "memory".into(),
            status: 422,
            message: format!("{what} refused"),
            retry_after: None,
            body: None,
        }
    }

    fn issue(&self, w: &mut World, id: i64) -> Result<Issued, HttpError> {
        w.next += 1;
        let secret = format!("memory-secret-{}", w.next);
        let c = w.creds.get_mut(&id).expect("credential");
        c.secret = secret.clone();
        let active = c.active;
        if w.lose_responses > 0 {
            w.lose_responses -= 1;
            return Err(Self::lost());
        }
        Ok(Issued {
            id: RemoteId::Num(id),
            secret: SecretString::from(secret),
            kind: "memory_secret".into(),
            oauth_client_id: None,
            active,
        })
    }
}

impl Target for Memory {
    fn vendor(&self) -> Vendor {
        Vendor::Workato
    }
    fn http(&self) -> &Http {
        &self.http
    }
    fn words(&self) -> Words {
        Words {
            container: "box",
            containers: "boxes",
            credential: "memory key",
            credentials: "memory keys",
            renewal: "renewal",
        }
    }
    fn credential_kind(&self) -> &'static str {
        "memory_key"
    }
    fn per_minute(&self, _workspace: &str) -> Option<f64> {
        None
    }
    fn survey<'a>(&'a self, _units: &'a [&'a Unit<'a>]) -> Fut<'a, Result<Survey>> {
        if let Err(e) = self.lookup(false) {
            return async move { Err(e.into()) }.boxed();
        }
        let w = self.world();
        let mut survey = Survey::default();
        for (id, (marker, _)) in &w.containers {
            let found = Found {
                id: RemoteId::Num(*id),
                active: None,
            };
            survey.containers.insert(marker.clone(), found);
        }
        if !self.grouped {
            for (id, c) in &w.creds {
                let found = Found {
                    id: RemoteId::Num(*id),
                    active: Some(c.active),
                };
                survey.creds.insert(c.source.clone(), found);
            }
        }
        async move { Ok(survey) }.boxed()
    }
    fn list_in<'a>(&'a self, _unit: &'a Unit<'a>, container: &'a RemoteId) -> Listing<'a> {
        if let Err(e) = self.lookup(true) {
            return async move { Err(e.into()) }.boxed();
        }
        let w = self.world();
        let inside = w
            .creds
            .iter()
            .filter(|(_, c)| c.container == Some(Self::num(container)))
            .map(|(id, c)| {
                let found = Found {
                    id: RemoteId::Num(*id),
                    active: Some(c.active),
                };
                (c.name.clone(), found)
            })
            .collect();
        async move { Ok(inside) }.boxed()
    }
    fn create_container<'a>(
        &'a self,
        spec: &'a ClientSpec,
        _signing_secret: Option<&'a SecretString>,
    ) -> Call<'a, RemoteId> {
        let mut w = self.world();
        let result = if w.refuse.contains(&spec.name) {
            Err(Self::refused("container"))
        } else {
            w.next += 1;
            let id = w.next;
            w.containers
                .insert(id, (spec.marker.clone(), spec.name.clone()));
            Ok(RemoteId::Num(id))
        };
        async move { result }.boxed()
    }
    fn create<'a>(&'a self, at: At<'a>, cred: &'a Cred<'a>) -> Call<'a, Issued> {
        let mut w = self.world();
        w.next += 1;
        let id = w.next;
        let c = MemCred {
            container: at.container.map(Self::num),
            name: cred.name().into(),
            source: cred.source().into(),
            active: cred.active() || self.creates_active,
            secret: String::new(),
        };
        w.creds.insert(id, c);
        let result = self.issue(&mut w, id);
        async move { result }.boxed()
    }
    fn renew<'a>(&'a self, _: At<'a>, _: &'a Cred<'a>, found: &'a Found) -> Call<'a, Issued> {
        let mut w = self.world();
        let result = self.issue(&mut w, Self::num(&found.id));
        async move { result }.boxed()
    }
    fn deactivate<'a>(&'a self, _: At<'a>, id: &'a RemoteId) -> Call<'a, ()> {
        if let Some(c) = self.world().creds.get_mut(&Self::num(id)) {
            c.active = false;
        }
        async { Ok(()) }.boxed()
    }
    fn delete<'a>(&'a self, _: At<'a>, id: &'a RemoteId) -> Call<'a, ()> {
        self.world().creds.remove(&Self::num(id));
        async { Ok(()) }.boxed()
    }
    fn delete_container<'a>(&'a self, _unit: &'a Unit<'a>, id: &'a RemoteId) -> Call<'a, ()> {
        self.world().containers.remove(&Self::num(id));
        async { Ok(()) }.boxed()
    }
    /// Credentials found by source; a name that differs from the plan is a difference.
    fn read_back<'a>(&'a self, units: &'a [Unit<'a>]) -> Fut<'a, Result<verify::ReadBack>> {
        let w = self.world();
        let mut out = verify::ReadBack::for_units(units);
        for (ui, u) in units.iter().enumerate() {
            for (ci, cred) in u.creds.iter().enumerate() {
                let Some((id, c)) = w.creds.iter().find(|(_, c)| c.source == cred.source()) else {
                    continue;
                };
                if c.name != cred.name() {
                    let drift = verify::Drift {
                        workspace: u.workspace.into(),
                        object: self.object(u, cred),
                        field: "name".into(),
                        expected: cred.name().into(),
                        found: c.name.clone(),
                    };
                    out.drift.push((Some(cred.op_id().clone()), drift));
                }
                let found = Found {
                    id: RemoteId::Num(*id),
                    active: Some(c.active),
                };
                out.found(ui, ci, found);
            }
        }
        async move { Ok(out) }.boxed()
    }
    fn object(&self, _unit: &Unit, cred: &Cred) -> String {
        format!("memory key {:?}", cred.name())
    }
}

fn key(profile: i64, active: bool) -> KeySpec {
    KeySpec {
        source: format!("keyshift:memory:1:profile:{profile}"),
        profile_id: profile,
        profile_name: format!("profile {profile}"),
        name: format!("key {profile}"),
        active,
        ip_allow_list: Vec::new(),
    }
}

fn container(n: i64, keys: Vec<KeySpec>) -> ClientSpec {
    ClientSpec {
        marker: format!("keyshift:memory:1:group:{n}"),
        workspace: "1".into(),
        legacy_client_id: n,
        legacy_client_name: format!("legacy {n}"),
        name: format!("box {n}"),
        description: String::new(),
        project_id: None,
        settings: ClientSettings {
            auth_type: AuthType::Token,
            jwt_method: None,
            jwt_public_key: None,
            jwt_secret_fingerprint: None,
            oidc_issuer: None,
            oidc_jwks_uri: None,
            access_profile_claim: None,
            required_claims: Default::default(),
            allowed_issuers: Default::default(),
            collection_ids: Default::default(),
            policy_id: None,
        },
        signing_secret: None,
        keys,
    }
}

fn item(profile: i64, active: bool) -> StandaloneSpec {
    StandaloneSpec {
        source: format!("keyshift:memory:1:profile:{profile}"),
        workspace: "1".into(),
        profile_id: profile.to_string(),
        profile_name: format!("profile {profile}"),
        holder: None,
        name: format!("key {profile}"),
        active,
        grant: serde_json::json!({}),
    }
}

fn grouped_plan() -> Plan {
    Plan {
        clients: vec![
            container(1, vec![key(1, true), key(2, false), key(3, true)]),
            container(2, vec![key(4, true)]),
        ],
        ..Plan::default()
    }
}

fn flat_plan() -> Plan {
    Plan {
        items: (1..=5).map(|p| item(p, p != 3)).collect(),
        ..Plan::default()
    }
}

/// A state file holding `plan`, and a plain sink beside it.
struct Bench {
    _dir: tempfile::TempDir,
    db: StateDb,
    sink: SecretSink,
    printer: Printer,
}

impl Bench {
    fn new(plan: &Plan) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("state.db"), true).unwrap();
        db.save_plan(plan).unwrap();
        let sink = SecretSink::open(&dir.path().join("secrets.jsonl"), SinkMode::Plain).unwrap();
        Bench {
            _dir: dir,
            db,
            sink,
            printer: Printer::new(Mode::Quiet),
        }
    }

    async fn apply(&self, target: &Memory, plan: &Plan) -> Outcome {
        self.apply_with(target, plan, &self.sink, false).await
    }

    /// Apply into `sink`, with the stop flag (Ctrl-C) already set or not.
    async fn apply_with(
        &self,
        target: &Memory,
        plan: &Plan,
        sink: &SecretSink,
        stopped: bool,
    ) -> Outcome {
        self.try_apply(target, plan, sink, stopped).await.unwrap()
    }

    /// [`apply_with`](Self::apply_with), for a run that may end in an error.
    async fn try_apply(
        &self,
        target: &Memory,
        plan: &Plan,
        sink: &SecretSink,
        stopped: bool,
    ) -> anyhow::Result<Outcome> {
        let units = units(plan);
        apply::run(
            Apply {
                db: &self.db,
                target,
                sink,
                signing: &SigningSecrets::default(),
                crash: Default::default(),
                printer: &self.printer,
                stop: Arc::new(AtomicBool::new(stopped)),
                concurrency: 3,
                todo: apply::standing(&units, &self.db.op_briefs().unwrap()).creds_todo,
            },
            &units,
        )
        .await
    }

    /// The last secret the sink holds per source, and how many records it has.
    fn sunk(&self) -> (HashMap<String, String>, usize) {
        let records = read_sink(self.sink.path(), None).unwrap();
        let n = records.len();
        let last = records
            .into_iter()
            .map(|r| (r.source, r.secret.unwrap().expose_secret().to_string()))
            .collect();
        (last, n)
    }

    /// Roll back what apply created of `plan` (`touched` units of it, as the journal says).
    async fn rollback(&self, target: &Memory, plan: &Plan, touched: usize) -> rollback::Removed {
        let all = units(plan);
        let ops = self
            .db
            .operations()
            .unwrap()
            .into_iter()
            .map(|o| (o.op_id.clone(), o))
            .collect();
        let units = rollback::touched(&all, &ops);
        assert_eq!(units.len(), touched);
        rollback::run(&self.db, target, &self.printer, &units)
            .await
            .unwrap()
    }

    fn states(&self) -> Vec<OpState> {
        self.db
            .operations()
            .unwrap()
            .into_iter()
            .map(|o| o.state)
            .collect()
    }
}

/// Every remote credential's secret is the one the sink holds last for its source.
fn secrets_match(target: &Memory, sunk: &HashMap<String, String>) {
    for c in target.world().creds.values() {
        assert_eq!(sunk.get(&c.source), Some(&c.secret), "{c:?}");
    }
}

#[tokio::test]
async fn grouped_target_gets_containers_then_keys_each_secret_in_the_sink() {
    let plan = grouped_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(true, false);
    let out = bench.apply(&target, &plan).await;
    assert_eq!(
        (out.created_containers, out.created, out.recovered),
        (2, 4, 0)
    );
    assert!(out.failed.is_empty() && out.unfinished.is_empty() && !out.interrupted);
    {
        let w = target.world();
        assert_eq!(w.containers.len(), 2);
        assert_eq!(w.creds.len(), 4);
        let inactive: Vec<&str> = w
            .creds
            .values()
            .filter(|c| !c.active)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(inactive, ["key 2"], "the plan's inactive key is inactive");
    }
    let (sunk, records) = bench.sunk();
    assert_eq!(records, 4);
    secrets_match(&target, &sunk);
    assert!(bench.states().iter().all(|s| *s == OpState::Done));

    // A second run has nothing to do and sends nothing.
    let again = bench.apply(&target, &plan).await;
    assert_eq!((again.created_containers, again.created), (0, 0));
    assert_eq!(target.world().creds.len(), 4);
    assert_eq!(bench.sunk().1, 4);
}

#[tokio::test]
async fn a_lost_create_response_is_found_by_name_and_renewed_not_duplicated() {
    let plan = grouped_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(true, false);
    target.world().lose_responses = 2;
    let out = bench.apply(&target, &plan).await;
    assert!(
        out.failed.is_empty() && out.unfinished.is_empty(),
        "{out:?}"
    );
    assert_eq!(out.created + out.recovered, 4);
    assert_eq!(out.recovered, 2, "both lost secrets were renewed");
    assert_eq!(target.world().creds.len(), 4, "nothing was created twice");
    let (sunk, _) = bench.sunk();
    secrets_match(&target, &sunk);
    // A renewed secret's record names the operation whose secret it replaces; a first
    // secret's names none.
    let records = read_sink(bench.sink.path(), None).unwrap();
    let renewed: Vec<_> = records.iter().filter(|r| r.supersedes.is_some()).collect();
    assert_eq!(renewed.len(), 2);
    assert!(renewed
        .iter()
        .all(|r| r.supersedes.as_deref() == Some(r.op_id.as_str())));
}

// Paused clock: the stalled rounds' pauses (0.5, 1, 2, 4 s…) pass at once.
#[tokio::test(start_paused = true)]
async fn answers_lost_round_after_round_still_end_in_one_credential_each() {
    let plan = grouped_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(true, false);
    // The four creates, then four rounds of renewals, all lose their answers: four stalled
    // rounds in a row; the run still finishes every credential.
    target.world().lose_responses = 4 * 5;
    let out = bench.apply(&target, &plan).await;
    assert!(
        out.failed.is_empty() && out.unfinished.is_empty(),
        "{out:?}"
    );
    assert_eq!((out.created, out.recovered), (0, 4));
    assert_eq!(target.world().creds.len(), 4, "nothing was created twice");
    secrets_match(&target, &bench.sunk().0);
}

#[tokio::test(start_paused = true)]
async fn a_lookup_failing_after_its_retries_leaves_its_work_to_the_next_round() {
    let plan = grouped_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(true, false);
    // Lost answers put operations in `intent`; their lookups then fail twice over.
    target.world().lose_responses = 2;
    target.world().failing_lookups = 3;
    let out = bench.apply(&target, &plan).await;
    assert!(
        out.failed.is_empty() && out.unfinished.is_empty(),
        "{out:?}"
    );
    assert_eq!(target.world().creds.len(), 4, "nothing was created twice");
    assert_eq!(
        target.world().failing_lookups,
        0,
        "every failing lookup was met"
    );
    secrets_match(&target, &bench.sunk().0);
}

#[tokio::test(start_paused = true)]
async fn lookups_that_never_recover_stop_the_run_with_the_work_open_not_failed() {
    let plan = grouped_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(true, false);
    target.world().lose_responses = 1;
    target.world().failing_lookups = usize::MAX;
    let out = bench.apply(&target, &plan).await;
    assert!(
        out.failed.is_empty(),
        "nothing is failed for a lookup: {out:?}"
    );
    assert!(!out.unfinished.is_empty(), "{out:?}");
    // The next run, with the vendor answering again, finishes without a duplicate.
    target.world().failing_lookups = 0;
    let again = bench.apply(&target, &plan).await;
    assert!(
        again.failed.is_empty() && again.unfinished.is_empty(),
        "{again:?}"
    );
    assert_eq!(target.world().creds.len(), 4);
    secrets_match(&target, &bench.sunk().0);
}

#[tokio::test]
async fn a_refused_lookup_ends_the_run_with_the_vendors_answer() {
    let plan = grouped_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(true, false);
    target.world().refuse_lookups = true;
    let err = bench
        .try_apply(&target, &plan, &bench.sink, false)
        .await
        .expect_err("a 403 on the lookup is not waited out");
    assert!(format!("{err:#}").contains("403"), "{err:#}");
    assert!(target.world().containers.is_empty(), "nothing was written");
}

#[tokio::test]
async fn standalone_credentials_are_found_by_marker_and_deactivated_after_the_sink() {
    let plan = flat_plan();
    let bench = Bench::new(&plan);
    // Creates only active credentials, and loses the first response.
    let target = Memory::new(false, true);
    target.world().lose_responses = 1;
    let out = bench.apply(&target, &plan).await;
    assert!(
        out.failed.is_empty() && out.unfinished.is_empty(),
        "{out:?}"
    );
    assert_eq!(
        (out.created_containers, out.created, out.recovered),
        (0, 4, 1)
    );
    {
        let w = target.world();
        assert_eq!(w.creds.len(), 5, "one credential per item, none twice");
        for c in w.creds.values() {
            assert_eq!(c.active, c.name != "key 3", "{c:?}");
            assert_eq!(c.container, None);
        }
    }
    let (sunk, _) = bench.sunk();
    secrets_match(&target, &sunk);
}

#[tokio::test]
async fn a_refused_container_fails_its_keys_with_the_reason_and_the_rest_goes_on() {
    let plan = grouped_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(true, false);
    target.world().refuse.insert("box 1".into());
    let out = bench.apply(&target, &plan).await;
    assert_eq!((out.created_containers, out.created), (1, 1));
    assert_eq!(out.failed.len(), 4, "the container and its three keys");
    let reasons: Vec<String> = out.failed.iter().filter_map(|o| o.error.clone()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("box \"box 1\": ") && r.contains("422")),
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("its box \"box 1\" could not be created"))
            .count(),
        3
    );
}

#[tokio::test]
async fn rollback_removes_only_ours_and_keeps_a_container_holding_a_foreign_key() {
    let plan = grouped_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(true, false);
    bench.apply(&target, &plan).await;
    // Someone adds a key of their own to box 2.
    {
        let mut w = target.world();
        let box2 = *w
            .containers
            .iter()
            .find(|(_, (_, n))| n == "box 2")
            .unwrap()
            .0;
        let foreign = MemCred {
            container: Some(box2),
            name: "theirs".into(),
            source: "elsewhere".into(),
            active: true,
            secret: "not ours".into(),
        };
        w.creds.insert(999, foreign);
    }
    let removed = bench.rollback(&target, &plan, 2).await;
    assert_eq!(
        (removed.deleted, removed.containers, removed.problems),
        (4, 1, 1)
    );
    assert_eq!(
        removed.disabled, 3,
        "the active keys were disabled before deletion"
    );
    {
        let w = target.world();
        let names: Vec<&str> = w.creds.values().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["theirs"]);
        let boxes: Vec<&str> = w.containers.values().map(|(_, n)| n.as_str()).collect();
        assert_eq!(boxes, ["box 2"], "the container with a foreign key is kept");
    }
    // Everything rolled back is pending again.
    let create_ops: Vec<_> = bench
        .db
        .operations()
        .unwrap()
        .into_iter()
        .filter(|o| o.op_id.starts_with("key/"))
        .map(|o| o.state)
        .collect();
    assert!(
        create_ops.iter().all(|s| *s == OpState::Pending),
        "{create_ops:?}"
    );
}

#[tokio::test]
async fn a_rollback_whose_listing_fails_leaves_that_container_and_goes_on() {
    let plan = grouped_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(true, false);
    bench.apply(&target, &plan).await;
    target.world().failing_listings = 1;
    let removed = bench.rollback(&target, &plan, 2).await;
    assert_eq!(removed.problems, 1, "{removed:?}");
    assert_eq!(removed.containers, 1, "the other container is removed");
    assert_eq!(target.world().containers.len(), 1);
    assert!(
        target.world().creds.len() < 4,
        "the other's keys are deleted"
    );
    // The next rollback, with the listing answering, removes the rest.
    let again = bench.rollback(&target, &plan, 1).await;
    assert_eq!((again.problems, again.containers), (0, 1), "{again:?}");
    assert!(target.world().containers.is_empty() && target.world().creds.is_empty());
}

#[tokio::test]
async fn rollback_of_standalone_credentials_deletes_each_by_marker() {
    let plan = flat_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(false, true);
    bench.apply(&target, &plan).await;
    let removed = bench.rollback(&target, &plan, 5).await;
    assert_eq!(
        (removed.deleted, removed.disabled, removed.problems),
        (5, 4, 0)
    );
    assert!(target.world().creds.is_empty());
}

#[tokio::test]
async fn verify_names_each_difference_and_a_credential_without_its_secret() {
    let plan = flat_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(false, false);
    bench.apply(&target, &plan).await;
    {
        let mut w = target.world();
        let ids: Vec<i64> = w.creds.keys().copied().collect();
        w.creds.remove(&ids[0]);
        w.creds.get_mut(&ids[1]).unwrap().name = "renamed".into();
        w.creds.get_mut(&ids[2]).unwrap().active = !w.creds[&ids[2]].active;
    }
    let all = units(&plan);
    let states = bench
        .db
        .op_briefs()
        .unwrap()
        .into_iter()
        .map(|(id, o)| (id, o.state))
        .collect();
    // The sink lost the last credential's record.
    let mut sunk = verify::Sunk::default();
    for r in read_sink(bench.sink.path(), None).unwrap() {
        sunk.ids.insert(r.op_id.clone(), r.key_id.clone());
    }
    let last = all.last().unwrap().creds[0].op_id();
    sunk.ids.remove(&last);
    let v = verify::run(&target, None, &bench.printer, &all, &states, &sunk)
        .await
        .unwrap();
    assert_eq!((v.checked, v.ok), (5, 1), "{:#?}", v.drift);
    let fields: Vec<&str> = v.drift.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        ["name", "existence", "active", "secret"],
        "{:#?}",
        v.drift
    );
}

#[tokio::test]
async fn a_broken_sink_stops_the_run_and_the_next_run_renews_the_lost_secret() {
    let plan = flat_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(false, false);
    let broken = SecretSink::open(
        &bench._dir.path().join("cmd.jsonl"),
        SinkMode::Command("exit 3".into()),
    )
    .unwrap();
    let out = bench.apply_with(&target, &plan, &broken, false).await;
    assert!(out.interrupted, "a sink failure stops the run");
    assert!(out.created < 5, "{out:?}");
    assert!(
        !out.failed.is_empty(),
        "the credential whose secret was lost failed"
    );
    let made = target.world().creds.len();
    assert!(made >= 1);
    // With a working sink and the failures retried, every credential ends with a secret in
    // it — the ones made before renewed, none made twice.
    bench.db.reset_failed().unwrap();
    let again = bench.apply(&target, &plan).await;
    assert!(
        again.failed.is_empty() && again.unfinished.is_empty(),
        "{again:?}"
    );
    assert_eq!(
        again.recovered, made,
        "every credential made before got a new secret"
    );
    assert_eq!(target.world().creds.len(), 5);
    let (sunk, _) = bench.sunk();
    secrets_match(&target, &sunk);
}

#[tokio::test]
async fn a_stopped_run_takes_no_new_work() {
    let plan = grouped_plan();
    let bench = Bench::new(&plan);
    let target = Memory::new(true, false);
    let out = bench.apply_with(&target, &plan, &bench.sink, true).await;
    assert!(out.interrupted);
    assert_eq!((out.created_containers, out.created), (0, 0));
    assert!(target.world().creds.is_empty() && target.world().containers.is_empty());
    assert_eq!(
        out.unfinished.len(),
        6,
        "every operation is still open for the next run"
    );
}
