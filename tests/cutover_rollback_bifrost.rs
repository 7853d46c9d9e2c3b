//! Cutover and rollback, Bifrost access profiles → virtual keys (per profile): a wave without
//! adoption evidence deactivates exactly the access profiles whose new keys verified live and
//! touches no virtual key; rollback re-activates them and deletes only the virtual keys
//! keyshift created; a second rollback has nothing to do. All asserted on `/_sandbox/state`.

mod common;

use common::{Run, Sandbox};
use serde_json::Value;
use std::collections::BTreeSet;

/// The seeded profile whose MCP server does not exist: blocked at plan, so it has no new key.
const BLOCKED: i64 = 32;

/// Without adoption evidence, a wave needs --without-evidence and a scope.
const WAVE: &[&str] = &[
    "cutover",
    "--yes",
    "--without-evidence",
    "--workspace",
    "default",
];

/// The seeded instance migrated per profile and verified live; the JSON report after that.
fn migrated() -> (Sandbox, Run, Value) {
    let sandbox = Sandbox::start(&["--seed", "5", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let m = run.bifrost_mapping("per_profile");
    run.ok(&["export", "--mapping", &m], 0);
    run.ok(&["plan"], 3);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify", "--live"], 0);
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    (sandbox, run, report)
}

fn active(bifrost: &Value) -> BTreeSet<i64> {
    bifrost["access_profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["is_active"] == true)
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

/// Ids of the virtual keys keyshift did not create.
fn theirs(bifrost: &Value) -> BTreeSet<String> {
    bifrost["virtual_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["metadata"]["keyshift.source"].is_string())
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_wave_deactivates_exactly_the_profiles_whose_keys_verified_live() {
    let (sandbox, run, report) = migrated();
    let before = sandbox.state()["bifrost"].clone();
    run.ok(WAVE, 0);
    let after = sandbox.state()["bifrost"].clone();

    let rows = report["profiles"].as_array().unwrap();
    let reported: BTreeSet<i64> = rows
        .iter()
        .map(|r| r["profile_id"].as_i64().unwrap())
        .collect();
    assert!(active(&after).is_disjoint(
        &reported
            .intersection(&active(&before))
            .copied()
            .filter(|id| *id != BLOCKED)
            .collect()
    ));
    let live_ok: BTreeSet<i64> = rows
        .iter()
        .filter(|r| r["live"] == "ok")
        .map(|r| r["profile_id"].as_i64().unwrap())
        .collect();
    assert!(live_ok.len() > 30, "{live_ok:?}");
    let deactivated: BTreeSet<i64> = active(&before)
        .difference(&active(&after))
        .copied()
        .collect();
    assert_eq!(
        deactivated, live_ok,
        "the wave deactivates exactly the profiles whose keys verified live"
    );
    assert!(active(&after).is_subset(&active(&before)));
    assert_eq!(
        after["virtual_keys"], before["virtual_keys"],
        "a wave touches no virtual key"
    );

    // A second wave finds nothing left to switch off.
    let writes = sandbox.writes();
    run.ok(WAVE, 0);
    assert_eq!(sandbox.writes(), writes);
}

#[test]
fn rollback_reactivates_the_profiles_and_deletes_only_our_virtual_keys() {
    let (sandbox, run, _) = migrated();
    let before = sandbox.state()["bifrost"].clone();
    assert!(
        !theirs(&before).is_empty(),
        "the instance holds keys of its own"
    );
    run.ok(WAVE, 0);
    assert_ne!(active(&sandbox.state()["bifrost"]), active(&before));

    let done = run.ok(&["rollback", "--yes"], 0);
    // The summary speaks in the target's words, and of no container (Bifrost has none).
    let line = done
        .stdout
        .lines()
        .find(|l| l.starts_with("rollback:"))
        .unwrap();
    assert!(
        line.contains(" virtual keys;") && !line.contains("client"),
        "{line}"
    );
    let rolled = sandbox.state()["bifrost"].clone();
    assert_eq!(active(&rolled), active(&before));
    assert_eq!(
        rolled["virtual_keys"].as_array().unwrap().len(),
        theirs(&before).len()
    );
    assert_eq!(
        theirs(&rolled),
        theirs(&before),
        "only our keys are deleted"
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
    assert_eq!(sandbox.state()["bifrost"], rolled);
}
