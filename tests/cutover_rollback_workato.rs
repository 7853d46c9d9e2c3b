//! Cutover and rollback, Workato legacy profiles → v2 clients and keys: cutover disables
//! exactly the verified profiles and never makes the plan stale; rollback leaves the target
//! side as it was before the run, leaves objects keyshift did not create alone, and counts
//! everything it removed even when answers are lost.

mod common;

use common::{Run, Sandbox};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

fn migrated(seed: &str, profiles: &str) -> (Sandbox, Run) {
    let sandbox = Sandbox::start(&["--seed", seed, "--profiles", profiles, "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    run.ok(&["plan"], 3);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify"], 0);
    (sandbox, run)
}

#[test]
fn cutover_disables_exactly_the_verified_profiles_and_rollback_restores() {
    let (sandbox, run) = migrated("19", "100");
    let before = sandbox.workspace(1);
    run.ok(&["verify", "--live", "--probe-deadline", "5"], 0);
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    // A consumer is a legacy client: it is cut over only when all its new keys verified.
    let mut by_client: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for r in report["profiles"].as_array().unwrap() {
        if r["status"] == "migrated" {
            by_client
                .entry(r["legacy_client_id"].as_i64().unwrap())
                .or_default()
                .push(r);
        }
    }
    let verified: BTreeSet<i64> = by_client
        .values()
        .filter(|rows| {
            rows.iter()
                .all(|r| r["live"] == "ok" || r["live"] == "expected-inactive")
        })
        .flatten()
        .filter(|r| r["live"] == "ok")
        .map(|r| r["profile_id"].as_i64().unwrap())
        .collect();
    assert!(verified.len() >= 5, "{verified:?}");
    // Without an adoption snapshot nobody is taken; --without-evidence needs a scope.
    let none = run.ok(&["cutover", "--yes"], 0);
    assert!(
        none.stdout.contains("no adoption snapshot"),
        "{}",
        none.stdout
    );
    run.ok(&["cutover", "--yes", "--without-evidence"], 2);
    run.ok(
        &["cutover", "--yes", "--without-evidence", "--workspace", "1"],
        0,
    );
    let after = sandbox.workspace(1);
    let active = |ws: &Value| -> BTreeSet<i64> {
        ws["access_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["active"] == true)
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    let disabled: BTreeSet<i64> = active(&before)
        .difference(&active(&after))
        .copied()
        .collect();
    assert_eq!(
        disabled, verified,
        "cutover disables exactly the verified profiles"
    );
    assert!(active(&after).is_subset(&active(&before)));
    // Idempotent.
    let writes = sandbox.writes();
    run.ok(
        &["cutover", "--yes", "--without-evidence", "--workspace", "1"],
        0,
    );
    assert_eq!(sandbox.writes(), writes);

    // After the freeze, cutover explains and writes nothing.
    let frozen = run.ok(&["--now", "2026-03-01", "cutover", "--yes"], 0);
    assert!(
        frozen.stdout.contains("frozen since 2025-12-01"),
        "{}",
        frozen.stdout
    );
    assert_eq!(sandbox.writes(), writes);

    // Rollback: the target side as before the run, legacy profiles as before cutover.
    run.ok(&["rollback", "--yes"], 0);
    let rolled = sandbox.workspace(1);
    assert_eq!(rolled["v2_clients"].as_array().unwrap().len(), 0);
    assert_eq!(rolled["api_keys"].as_array().unwrap().len(), 0);
    assert_eq!(active(&rolled), active(&before));
    // Rollback never touched what keyshift did not create: legacy clients and profiles are all there.
    assert_eq!(rolled["legacy_clients"], before["legacy_clients"]);
    assert_eq!(
        rolled["access_profiles"].as_array().unwrap().len(),
        before["access_profiles"].as_array().unwrap().len()
    );
    // A second rollback has nothing to do; apply can run the migration again.
    let writes = sandbox.writes();
    run.ok(&["rollback", "--yes"], 0);
    assert_eq!(sandbox.writes(), writes);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify"], 0);
}

#[test]
fn rollback_leaves_foreign_objects_alone() {
    let (sandbox, run) = migrated("23", "60");
    let ws = sandbox.workspace(1);
    // One of our clients with room for another key (a client holds at most 20; which client
    // comes first depends on the order apply's concurrent creates finished in).
    let keys_of = |client: &Value| {
        ws["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["api_client_id"] == client["id"])
            .count()
    };
    let ours = ws["v2_clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| keys_of(c) < 20)
        .expect("a client with room for one more key")
        .clone();
    let collection = ours["api_collections"][0]["id"].clone();
    // Someone else's client, and someone else's key inside one of our clients.
    sandbox.workato_call(
        reqwest::Method::POST,
        "/api/v2/api_clients",
        Some(
            json!({"name": "Hand-made client", "auth_type": "token", "api_collection_ids": [collection]}),
        ),
    );
    sandbox.workato_call(
        reqwest::Method::POST,
        &format!("/api/v2/api_clients/{}/api_keys", ours["id"]),
        Some(json!({"name": "added by hand", "active": true})),
    );
    let d = run.ks(&["rollback", "--yes"]);
    assert_eq!(d.code, 6, "{}\n{}", d.stdout, d.stderr);
    assert!(d.stderr.contains("did not create"), "{}", d.stderr);
    let left = sandbox.workspace(1);
    let names: BTreeSet<&str> = left["v2_clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["Hand-made client", ours["name"].as_str().unwrap()])
    );
    let keys: Vec<&str> = left["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["added by hand"]);
}

/// The profiles keyshift's own cutover disabled are no reason to call a plan stale: a later
/// apply (here: of profiles a filter had held back) still runs.
#[test]
fn cutover_does_not_make_the_plan_stale() {
    let sandbox = Sandbox::start(&["--seed", "29", "--profiles", "80", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let no_oidc = run.dir.path().join("no-oidc.toml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/workato-legacy-to-v2.toml"
    ))
    .unwrap()
        + "\n[filters.exclude]\nauth_types = [\"oidc\"]\n";
    std::fs::write(&no_oidc, text).unwrap();
    let _ = run.ks(&["plan", "--mapping", no_oidc.to_str().unwrap()]);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify", "--live", "--probe-deadline", "5"], 0);
    run.ok(
        &["cutover", "--yes", "--without-evidence", "--workspace", "1"],
        0,
    );
    let before = sandbox.workspace(1)["api_keys"].as_array().unwrap().len();
    let _ = run.ks(&["plan", "--mapping", "workato-legacy-to-v2"]);
    let d = run.ok(&["apply", "--yes"], 0);
    assert!(!d.stderr.contains("changed since export"), "{}", d.stderr);
    let after = sandbox.workspace(1)["api_keys"].as_array().unwrap().len();
    assert!(
        after > before,
        "the OIDC profiles held back by the filter were migrated"
    );
}

/// Deletes that commit but lose their answers (the retry then meets a 404) still leave
/// nothing behind, and the summary counts every object the rollback removed — a 404 on the
/// retry counts as deleted, so "deleted N key(s)" matches what was deleted.
#[test]
fn rollback_under_lost_answers_removes_and_counts_everything() {
    let sandbox = Sandbox::start(&[
        "--seed",
        "23",
        "--profiles",
        "120",
        "--rate-scale",
        "0",
        "--faults",
        "commit_drop_rate=0.15",
    ]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);
    run.ok(&["apply", "--yes"], 0);
    let ws = sandbox.workspace(1);
    let count = |ws: &Value, field: &str| ws[field].as_array().unwrap().len();
    let (clients, keys) = (count(&ws, "v2_clients"), count(&ws, "api_keys"));
    assert!(clients > 5 && keys > 30, "{clients} clients, {keys} keys");
    let deletes = || {
        let counts = sandbox.request_counts();
        counts
            .get(&("workato".into(), "DELETE".into()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(deletes(), 0);

    let done = run.ok(&["--json", "rollback", "--yes"], 0);
    let summary: Value = done
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "rollback.done")
        .unwrap_or_else(|| panic!("no rollback.done event: {}", done.shown()));
    let ws = sandbox.workspace(1);
    assert_eq!((count(&ws, "v2_clients"), count(&ws, "api_keys")), (0, 0));
    assert_eq!(summary["deleted_keys"], keys, "{summary}");
    assert_eq!(summary["deleted_clients"], clients, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    // The faults really happened: some deletes were sent twice.
    let deletes = deletes();
    assert!(
        deletes > (keys + clients) as u64,
        "{deletes} deletes for {keys} keys and {clients} clients"
    );
}
