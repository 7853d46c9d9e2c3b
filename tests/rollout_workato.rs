//! The rollout, Workato → v2: consumers call the sandbox's gateway with their real old and new
//! credentials; the gateway's Logs export is the evidence; the clock moves past the quiet
//! period; adoption judges each consumer; a wave disables exactly the moved ones; a laggard
//! that keeps calling with its old token becomes broken; undo gives that one consumer its old
//! credential back and every new key keeps working. All asserted on `/_sandbox/state` and
//! on the gateway's answers.

mod common;

use common::{adoption_lines, write_fixture, Run, Sandbox};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const COLLECTION: i64 = 10;

fn token(n: u8) -> String {
    format!("{n}").repeat(64)
}

/// Clients: 100 Mover, 101 Both, 102 Never, 103 Idle, 104 Laggard, 105 + 106 "Twins".
fn fixture() -> Value {
    let clients = [
        (100, "Mover"),
        (101, "Both"),
        (102, "Never"),
        (103, "Idle"),
        (104, "Laggard"),
        (105, "Twins"),
        (106, "Twins"),
    ];
    let legacy: Vec<Value> = clients
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    let profiles: Vec<Value> = clients
        .iter()
        .enumerate()
        .map(|(i, (id, name))| {
            json!({"id": 200 + i as i64, "name": format!("{name} profile"), "api_client_id": id,
                   "api_collection_ids": [COLLECTION], "active": true, "auth_type": "token",
                   "ip_allow_list": [], "secret": token(i as u8 + 1)})
        })
        .collect();
    json!({"workato": {"workspaces": [{
        "id": 1, "name": "Acme",
        "api_collections": [{"id": COLLECTION, "name": "Orders API", "version": "1"}],
        "api_policies": [],
        "legacy_clients": legacy,
        "access_profiles": profiles,
        "v2_clients": [], "api_keys": []
    }]}})
}

struct World {
    sandbox: Sandbox,
    run: Run,
    url: String,
    /// profile id → new key secret
    new: BTreeMap<i64, String>,
}

impl World {
    fn call(&self, token: &str) -> u16 {
        reqwest::blocking::Client::new()
            .get(format!("{}/orders", self.url))
            .header("api-token", token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    }

    fn old(&self, profile: i64) -> u16 {
        self.call(&token((profile - 200) as u8 + 1))
    }

    fn new_key(&self, profile: i64) -> u16 {
        self.call(&self.new[&profile])
    }

    fn clock(&self, now: &str) {
        self.sandbox.set_clock(now);
    }

    /// The workspace's Logs export, as a user downloads it.
    fn logs(&self) -> String {
        let path = self.run.dir.path().join("api-logs.csv");
        self.sandbox.download_workato_logs(1, &path);
        format!("1={}", path.display())
    }

    fn adoption(&self, code: i32) -> BTreeMap<String, Value> {
        let logs = self.logs();
        let d = self
            .run
            .ok(&["--json", "adoption", "--workato-logs", &logs], code);
        adoption_lines(&d)
    }

    fn active(&self) -> BTreeSet<i64> {
        self.sandbox.active_profiles(1)
    }
}

fn migrated() -> World {
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path(), &fixture());
    let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    run.ok(&["plan"], 0);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify", "--live", "--probe-deadline", "5"], 0);
    let url = sandbox.workspace(1)["api_collections"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let new = run.new_secrets_by_profile();
    World {
        sandbox,
        run,
        url,
        new,
    }
}

fn status(a: &BTreeMap<String, Value>, consumer: &str) -> String {
    a.get(consumer)
        .unwrap_or_else(|| panic!("no consumer {consumer} in {a:#?}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn adoption_waves_broken_and_undo_of_one_consumer() {
    let w = migrated();
    // The v2 clients never share a name with a legacy client: the logs can tell them apart.
    let ws = w.sandbox.workspace(1);
    for c in ws["v2_clients"].as_array().unwrap() {
        assert!(c["name"].as_str().unwrap().contains(" · keys"), "{c}");
    }
    // Day 0 (2025-11-15): everyone but Idle calls with the old token.
    for p in [200, 201, 202, 204, 205, 206] {
        assert_eq!(w.old(p), 200, "old token of profile {p}");
    }
    // Without a snapshot, a wave takes nobody and says why.
    let none = w.run.ok(&["cutover", "--yes"], 0);
    assert!(
        none.stdout.contains("no adoption snapshot"),
        "{}",
        none.stdout
    );

    // Day 8: Mover and Laggard use only their new keys, Both uses both, Never the old one.
    w.clock("2025-11-23T12:00:00Z");
    for p in [200, 204, 201, 205, 206] {
        assert_eq!(w.new_key(p), 200, "new key of profile {p}");
    }
    assert_eq!(w.old(201), 200);
    assert_eq!(w.old(202), 200);
    let a = w.adoption(0);
    assert_eq!(status(&a, "100"), "moved");
    assert_eq!(status(&a, "101"), "moving");
    assert_eq!(status(&a, "102"), "waiting");
    assert_eq!(status(&a, "103"), "idle");
    assert_eq!(status(&a, "104"), "moved");
    assert_eq!(status(&a, "105"), "unknown");
    assert_eq!(status(&a, "106"), "unknown");
    assert!(
        a["105"]["why"].as_str().unwrap().contains("Twins"),
        "{}",
        a["105"]
    );
    // The evidence names its record: a line of the Logs export.
    assert!(
        a["100"]["why"]
            .as_str()
            .unwrap()
            .contains("api-logs.csv line"),
        "{}",
        a["100"]
    );
    assert!(a["100"]["last_new"].is_string());
    // keyshift's own live probes are not evidence: Idle's new key was probed, yet idle.
    assert!(a["103"]["first_new"].is_null(), "{}", a["103"]);

    // The dry run names the wave and writes nothing.
    let before = w.active();
    let writes = w.sandbox.writes();
    let dry = w.run.ok(&["cutover", "--dry-run"], 0);
    assert!(dry.stdout.contains("consumer 100"), "{}", dry.stdout);
    assert!(dry.stdout.contains("waiting"), "{}", dry.stdout);
    assert_eq!(w.sandbox.writes(), writes);
    // --without-evidence needs a scope.
    w.run.ok(&["cutover", "--yes", "--without-evidence"], 2);

    // The wave disables exactly the moved consumers' profiles.
    w.run.ok(&["cutover", "--yes"], 0);
    let after = w.active();
    let off: BTreeSet<i64> = before.difference(&after).copied().collect();
    assert_eq!(off, BTreeSet::from([200, 204]));
    // Idempotent: a second wave finds nothing new.
    let writes = w.sandbox.writes();
    w.run.ok(&["cutover", "--yes"], 0);
    assert_eq!(w.sandbox.writes(), writes);

    // Laggard keeps calling with its old token: refused, and adoption says broken (exit 4).
    assert_eq!(w.old(204), 401);
    w.clock("2025-11-24T08:00:00Z");
    let a = w.adoption(4);
    assert_eq!(status(&a, "104"), "broken");
    assert!(a["104"]["refused_since_cutover"].as_u64().unwrap() >= 1);
    assert_eq!(status(&a, "100"), "moved");
    let st = w.run.ok(&["status"], 0);
    assert!(st.stdout.contains("broken: Laggard"), "{}", st.stdout);
    assert!(
        st.stdout.contains("cutover --undo --consumer 104"),
        "{}",
        st.stdout
    );

    // One hand-over page per consumer: its status, what to change, where the secret is —
    // never the secret.
    w.run.ok(&["handover", "--out", "ho", "--per-consumer"], 0);
    let pages = w.run.dir.path().join("ho/consumers");
    assert_eq!(std::fs::read_dir(&pages).unwrap().count(), 7);
    let laggard = std::fs::read_to_string(pages.join("1-104.md")).unwrap();
    assert!(laggard.contains("**Status: broken**"), "{laggard}");
    assert!(laggard.contains("secrets.jsonl line"), "{laggard}");
    assert!(laggard.contains("api-token"), "{laggard}");
    for entry in std::fs::read_dir(&pages).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for secret in w.new.values() {
            assert!(
                !text.contains(secret.as_str()),
                "a secret in a hand-over page"
            );
        }
    }
    // The reports carry the adoption section.
    let md = w.run.ok(&["report", "--format", "md"], 0).stdout;
    assert!(
        md.contains("## Adoption") && md.contains("| broken | 104 |"),
        "{md}"
    );
    let html = w.run.ok(&["report", "--format", "html"], 0).stdout;
    assert!(html.contains("id=\"adoption-chart\""), "no adoption chart");
    assert!(
        html.contains("data-status=\"broken\" data-value=\"1\""),
        "{html}"
    );

    // Undo for that one consumer: its old token works again, nobody else changes, every new
    // key still works.
    w.run
        .ok(&["cutover", "--undo", "--yes", "--consumer", "104"], 0);
    let restored = w.active();
    assert!(restored.contains(&204));
    assert!(!restored.contains(&200), "Mover stays cut over");
    assert_eq!(w.old(204), 200);
    for p in w.new.keys() {
        assert_eq!(w.new_key(*p), 200, "new key of profile {p} after undo");
    }
    assert_eq!(
        w.sandbox.workspace(1)["api_keys"].as_array().unwrap().len(),
        7
    );
    let a = w.adoption(0);
    assert_ne!(status(&a, "104"), "broken");

    // After the freeze, cutover and undo say the vendor no longer allows it, and write nothing.
    w.clock("2025-12-02T00:00:00Z");
    let writes = w.sandbox.writes();
    let frozen = w
        .run
        .ok(&["cutover", "--undo", "--yes", "--consumer", "100"], 0);
    assert!(
        frozen.stdout.contains("no longer allows"),
        "{}",
        frozen.stdout
    );
    assert_eq!(w.sandbox.writes(), writes);
}

#[test]
fn a_consumer_that_broke_at_the_sunset_is_found() {
    let w = migrated();
    assert_eq!(w.old(202), 200);
    w.clock("2026-07-02T00:00:00Z");
    assert_eq!(w.old(202), 401, "legacy tokens die at the sunset");
    let a = w.adoption(4);
    assert_eq!(status(&a, "102"), "broken");
    // Without a Logs export, no status is guessed.
    let d = w.run.ok(&["--json", "adoption"], 0);
    assert!(d.stdout.contains("\"status\":\"unknown\""), "{}", d.stdout);
    assert!(d.stdout.contains("--workato-logs"), "{}", d.stdout);
}
