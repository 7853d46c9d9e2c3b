//! Cutover waves and undo survive a kill at any point like apply does: the next run finishes
//! what the killed one left open, in its wave, and the end state on the vendor is exact.

mod common;

use common::{write_fixture, Run, Sandbox};
use serde_json::json;
use std::collections::BTreeSet;

fn active(sandbox: &Sandbox) -> BTreeSet<i64> {
    sandbox.active_profiles(1)
}

#[test]
fn a_killed_wave_and_a_killed_undo_are_finished_by_the_next_run() {
    let fixture = json!({"workato": {"workspaces": [{
        "id": 1, "name": "Acme",
        "api_collections": [{"id": 10, "name": "Orders API", "version": "1"}],
        "api_policies": [],
        "legacy_clients": (0..4).map(|i| json!({"id": 100 + i, "name": format!("Client {i}")})).collect::<Vec<_>>(),
        "access_profiles": (0..4).map(|i| json!({
            "id": 200 + i, "name": format!("Profile {i}"), "api_client_id": 100 + i,
            "api_collection_ids": [10], "active": true, "auth_type": "token",
            "ip_allow_list": []})).collect::<Vec<_>>(),
        "v2_clients": [], "api_keys": []
    }]}});
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path(), &fixture);
    let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    run.ok(&["plan"], 0);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify", "--live", "--probe-deadline", "5"], 0);
    let all = BTreeSet::from([200, 201, 202, 203]);
    assert_eq!(active(&sandbox), all);
    let wave = ["cutover", "--yes", "--without-evidence", "--workspace", "1"];

    // Killed with the second switch-off journaled but not sent; then killed after the
    // vendor answered the third, before the journal knew.
    run.crash_at(&[], &wave, "before-write", "2");
    assert_eq!(active(&sandbox).len(), 3, "one profile was switched off");
    run.crash_at(&[], &wave, "after-response", "2");
    let d = run.ok(&wave, 0);
    assert!(
        d.stdout.contains("left open by an earlier run"),
        "{}",
        d.stdout
    );
    assert!(active(&sandbox).is_empty(), "every profile is off");
    let status = run.ok(&["status"], 0).stdout;
    assert!(!status.contains("disable_profile pending"), "{status}");
    assert!(!status.contains("disable_profile intent"), "{status}");

    // Undo, killed after the vendor re-enabled one profile: the next undo finishes it.
    let undo = ["cutover", "--undo", "--yes", "--workspace", "1"];
    run.crash_at(&[], &undo, "after-response", "1");
    assert_eq!(active(&sandbox).len(), 1);
    run.ok(&undo, 0);
    assert_eq!(active(&sandbox), all);
    assert_eq!(
        sandbox.workspace(1)["api_keys"].as_array().unwrap().len(),
        4,
        "no new key is touched"
    );
    // Undone switches are forgotten: a later wave may switch them off anew.
    run.ok(&wave, 0);
    assert!(active(&sandbox).is_empty());
}
