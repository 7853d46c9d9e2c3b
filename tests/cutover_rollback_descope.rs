//! Cutover and rollback, Workato legacy profiles → Descope access keys: a wave without adoption
//! evidence disables exactly the legacy profiles of the consumers (legacy clients) whose new
//! access keys all verified live, and touches no access key; rollback re-enables them, then
//! deactivates and deletes every access key keyshift created — and nothing else; a second
//! rollback has nothing to do. All asserted on `/_sandbox/state`.

mod common;

use common::{write_fixture, Run, Sandbox};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Legacy clients and their profiles, chosen so that a wave has to tell them apart:
/// - Ready (100): two profiles, both keys verify live — taken.
/// - Fenced (101): its key's permitted IPs exclude the prober — unverifiable, waits.
/// - Mixed (102): one active profile, one inactive (its key is planned inactive) — taken; only
///   the active profile is switched off.
/// - Blocked (103): an IP entry Descope refuses — blocked at plan, no key, waits.
/// - Half (104): one key verifies, the other is unverifiable — the consumer waits whole.
///
/// Descope already holds a hand-made access key, which nothing may touch.
fn fixture() -> Value {
    let fenced = json!(["203.0.113.0/24"]);
    let profiles = [
        (200, "Ready one", 100, true, json!([])),
        (201, "Ready two", 100, true, json!([])),
        (202, "Fenced", 101, true, fenced.clone()),
        (203, "Mixed on", 102, true, json!([])),
        (204, "Mixed off", 102, false, json!([])),
        (205, "Blocked", 103, true, json!(["300.1.2.3"])),
        (206, "Half ok", 104, true, json!([])),
        (207, "Half fenced", 104, true, fenced),
    ];
    let clients = [
        (100, "Ready"),
        (101, "Fenced"),
        (102, "Mixed"),
        (103, "Blocked"),
        (104, "Half"),
    ];
    json!({
        "workato": {"workspaces": [{
            "id": 1, "name": "Acme",
            "api_collections": [{"id": 10, "name": "Orders API", "version": "1"}],
            "api_policies": [],
            "legacy_clients": clients.iter().map(|(id, n)| json!({"id": id, "name": n})).collect::<Vec<_>>(),
            "access_profiles": profiles.iter().map(|(id, n, client, active, ips)| json!({
                "id": id, "name": n, "api_client_id": client, "api_collection_ids": [10],
                "active": active, "auth_type": "token", "ip_allow_list": ips})).collect::<Vec<_>>(),
            "v2_clients": [], "api_keys": []
        }]},
        "descope": {"access_keys": [
            {"id": "K2handmade", "name": "Hand-made key", "keyTenants": [{"tenantId": "T2ws1"}]}
        ]}
    })
}

/// The profiles the wave must take: every key of Ready's and Mixed's verified live.
const TAKEN: [i64; 3] = [200, 201, 203];

const WAVE: &[&str] = &["cutover", "--yes", "--without-evidence", "--workspace", "1"];

/// The fixture exported with the Descope mapping, planned (one blocker), applied and verified
/// live.
fn migrated(dir: &std::path::Path) -> (Sandbox, Run) {
    let path = write_fixture(dir, &fixture());
    let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export", "--mapping", "workato-legacy-to-descope"], 0);
    run.ok(&["plan"], 3);
    run.ok(&["apply", "--yes"], 0);
    let live = run.ok(&["verify", "--live", "--probe-deadline", "5"], 0);
    assert!(
        live.stdout
            .contains("4 ok, 1 expected-inactive, 0 rejected, 2 unverifiable"),
        "{}",
        live.stdout
    );
    (sandbox, run)
}

/// The markers of the planned profiles: all but Blocked's.
fn created() -> BTreeSet<String> {
    [200, 201, 202, 203, 204, 206, 207]
        .iter()
        .map(|id| format!("keyshift:workato:1:profile:{id}"))
        .collect()
}

/// The access keys keyshift created (they carry the source profile's marker), by marker.
fn ours(state: &Value) -> BTreeSet<String> {
    state["descope"]["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["customAttributes"]["migrationSourceId"].as_str())
        .map(String::from)
        .collect()
}

fn handmade(state: &Value) -> Vec<Value> {
    state["descope"]["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["customAttributes"]["migrationSourceId"].is_null())
        .cloned()
        .collect()
}

fn active_keys(state: &Value) -> usize {
    state["descope"]["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["customAttributes"]["migrationSourceId"].is_string())
        .filter(|k| k["status"] == "active")
        .count()
}

#[test]
fn a_wave_disables_exactly_the_profiles_of_consumers_whose_keys_all_verified() {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, run) = migrated(dir.path());
    let before = sandbox.state();
    let active_before = sandbox.active_profiles(1);
    assert_eq!(
        active_before,
        BTreeSet::from([200, 201, 202, 203, 205, 206, 207])
    );
    assert_eq!(
        ours(&before),
        created(),
        "one access key per planned profile"
    );

    run.ok(WAVE, 0);
    let disabled: BTreeSet<i64> = active_before
        .difference(&sandbox.active_profiles(1))
        .copied()
        .collect();
    assert_eq!(disabled, BTreeSet::from(TAKEN));
    assert_eq!(
        sandbox.state()["descope"],
        before["descope"],
        "a wave touches no access key"
    );

    // A second wave finds nothing left to switch off.
    let writes = sandbox.writes();
    run.ok(WAVE, 0);
    assert_eq!(sandbox.writes(), writes);
}

#[test]
fn rollback_reenables_the_profiles_and_deletes_only_our_access_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, run) = migrated(dir.path());
    let before = sandbox.state();
    let active_before = sandbox.active_profiles(1);
    assert_eq!(handmade(&before).len(), 1);
    run.ok(WAVE, 0);
    assert_eq!(
        active_before
            .difference(&sandbox.active_profiles(1))
            .count(),
        TAKEN.len()
    );

    // The legacy profiles as before the wave; every access key keyshift created deactivated,
    // then deleted; the hand-made key as it was.
    let deactivations = sandbox.route_count("descope", "/v1/mgmt/accesskey/deactivate");
    let deletes = sandbox.route_count("descope", "/v1/mgmt/accesskey/delete");
    let done = run.ok(&["--json", "rollback", "--yes"], 0);
    let summary: Value = done
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "rollback.done")
        .unwrap_or_else(|| panic!("no rollback.done event: {}", done.shown()));
    let rolled = sandbox.state();
    assert_eq!(sandbox.active_profiles(1), active_before);
    assert!(ours(&rolled).is_empty(), "{:?}", ours(&rolled));
    assert_eq!(handmade(&rolled), handmade(&before));
    assert_eq!(
        sandbox.route_count("descope", "/v1/mgmt/accesskey/deactivate") - deactivations,
        active_keys(&before) as u64,
        "each active key of ours is deactivated before it is deleted"
    );
    assert_eq!(
        sandbox.route_count("descope", "/v1/mgmt/accesskey/delete") - deletes,
        created().len() as u64
    );
    assert_eq!(
        summary,
        json!({"event": "rollback.done", "enabled_profiles": TAKEN.len(),
               "disabled_keys": active_keys(&before), "deleted_keys": created().len(),
               "deleted_clients": 0, "failed": 0})
    );

    // A second rollback has nothing to do.
    let writes = sandbox.writes();
    let again = run.ok(&["rollback", "--yes"], 0);
    assert!(
        again.stdout.contains("nothing to roll back"),
        "{}",
        again.stdout
    );
    assert_eq!(sandbox.writes(), writes);
    assert_eq!(sandbox.state()["descope"], rolled["descope"]);
    assert_eq!(sandbox.active_profiles(1), active_before);

    // The create operations are pending again: apply migrates anew.
    run.ok(&["apply", "--yes"], 0);
    assert_eq!(ours(&sandbox.state()), created());
}
