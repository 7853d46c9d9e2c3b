//! Crash safety: SIGKILL at every named checkpoint, run again, and the sandbox ends exactly
//! as after a crash-free run — no duplicate, every key with one usable secret in the sink.
//! Plus a run under injected faults, a second writer, Ctrl-C, damaged state files, and
//! cutover waves and undo killed mid-way: the next run finishes what the killed one left open,
//! in its wave, and the end state on the vendor is exact.

mod common;

use common::{keyshift, sha256_hex, write_fixture, Run, Sandbox};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEED: &str = "31";
const PROFILES: &str = "130";

/// A key without its id: name, active, sorted IP allow list.
type KeyShape = (String, bool, Vec<String>);
/// Client name → (settings, keys).
type Canonical = BTreeMap<String, (String, BTreeSet<KeyShape>)>;

/// The sandbox's v2 side without ids: what a user would compare.
fn canonical(sandbox: &Sandbox) -> Canonical {
    let ws = sandbox.workspace(1);
    let mut keys: HashMap<i64, BTreeSet<KeyShape>> = HashMap::new();
    for k in ws["api_keys"].as_array().unwrap() {
        let mut ips: Vec<String> = k["ip_allow_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        ips.sort();
        let fresh = keys
            .entry(k["api_client_id"].as_i64().unwrap())
            .or_default()
            .insert((
                k["name"].as_str().unwrap().to_string(),
                k["active"].as_bool().unwrap(),
                ips,
            ));
        assert!(fresh, "duplicate key {k}");
    }
    let mut out = BTreeMap::new();
    for c in ws["v2_clients"].as_array().unwrap() {
        // Markers hash settings that hold the sandbox's address (OIDC URLs), so compare by
        // name (unique per workspace) and check the marker's shape.
        let desc = c["description"].as_str().unwrap().to_string();
        assert!(desc.starts_with("keyshift:workato:1:group:"), "{desc}");
        let name = c["name"].as_str().unwrap().to_string();
        let prev = out.insert(
            name.clone(),
            (
                format!(
                    "{} {} {}",
                    c["auth_type"], c["api_collections"], c["api_policies"]
                ),
                keys.remove(&c["id"].as_i64().unwrap()).unwrap_or_default(),
            ),
        );
        assert!(prev.is_none(), "duplicate client {name}");
    }
    assert!(keys.is_empty(), "keys outside any client");
    out
}

/// Every key has exactly one usable secret: the last sink record for it matches the key.
fn assert_one_usable_secret_per_key(sandbox: &Sandbox, run: &Run) {
    let mut last: HashMap<i64, Value> = HashMap::new();
    let mut per_op: HashMap<String, BTreeSet<i64>> = HashMap::new();
    for r in run.sink_records() {
        per_op
            .entry(r["op_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(r["key_id"].as_i64().unwrap());
        last.insert(r["key_id"].as_i64().unwrap(), r);
    }
    assert!(
        per_op.values().all(|ids| ids.len() == 1),
        "one key per operation"
    );
    let keys = sandbox.workspace(1)["api_keys"].as_array().unwrap().clone();
    assert_eq!(last.len(), keys.len(), "a sink record for every key");
    for k in keys {
        let r = &last[&k["id"].as_i64().unwrap()];
        let want = k["auth_token_sha256"]
            .as_str()
            .or_else(|| k["oauth_client_secret_sha256"].as_str())
            .unwrap();
        assert_eq!(
            sha256_hex(r["secret"].as_str().unwrap()),
            want,
            "usable secret of key {}",
            k["id"]
        );
    }
}

fn reference() -> Canonical {
    let sandbox = Sandbox::start(&["--seed", SEED, "--profiles", PROFILES, "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    run.ok(&["plan"], 3);
    run.ok(&["apply", "--yes"], 0);
    canonical(&sandbox)
}

#[test]
fn sigkill_at_every_checkpoint_then_resume_equals_a_crash_free_run() {
    let want = reference();
    for (point, after) in [
        ("before-write", "7"),
        ("after-response", "7"),
        ("after-journal", "5"),
        ("after-sink", "5"),
    ] {
        let sandbox =
            Sandbox::start(&["--seed", SEED, "--profiles", PROFILES, "--rate-scale", "0"]);
        let run = Run::new(&sandbox);
        run.ok(&["export"], 0);
        run.ok(&["plan"], 3);
        run.crash_at(&[], &["apply", "--yes"], point, after);
        // The killed run's lock is stale, not live: the next apply takes over and resumes.
        let resumed = run.ok(&["apply", "--yes"], 0);
        assert!(
            resumed.stderr.contains("stale lock"),
            "{point}: {}",
            resumed.stderr
        );
        assert_eq!(canonical(&sandbox), want, "after a crash at {point}");
        assert_one_usable_secret_per_key(&sandbox, &run);
        run.ok(&["verify"], 0);
        if point == "after-response" || point == "after-journal" {
            // The lost secret was recovered by refreshing the new key — never a legacy profile.
            let stats = sandbox.stats();
            let routes: Vec<&str> = stats["requests"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["method"] == "PUT")
                .map(|r| r["route"].as_str().unwrap())
                .collect();
            assert!(
                routes.iter().all(|r| r.starts_with("/api/v2/")),
                "{point}: a legacy object was written: {routes:?}"
            );
            if point == "after-journal" {
                assert!(
                    routes.iter().any(|r| r.ends_with("/refresh_secret")),
                    "{routes:?}"
                );
            }
        }
    }
}

#[test]
fn sigkill_mid_export_then_export_again() {
    let want = reference();
    let sandbox = Sandbox::start(&["--seed", SEED, "--profiles", PROFILES, "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.crash_at(&[], &["export"], "export-between-pages", "1");
    run.ok(&["export"], 0);
    run.ok(&["plan"], 3);
    run.ok(&["apply", "--yes"], 0);
    assert_eq!(canonical(&sandbox), want);
    assert_one_usable_secret_per_key(&sandbox, &run);
}

#[test]
fn five_hundred_profiles_under_faults_no_duplicate_no_lost_secret() {
    let sandbox = Sandbox::start(&[
        "--seed",
        "41",
        "--profiles",
        "500",
        "--rate-scale",
        "0",
        "--faults",
        "error_rate=0.2,storm_every=2s,storm_for=300ms,commit_drop_rate=0.05",
    ]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    run.ok(&["plan"], 3);
    let apply = run.ks(&["apply", "--yes"]);
    assert_eq!(apply.code, 0, "{}", apply.shown());
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    assert_eq!(
        report["summary"]["migrated_keys"],
        report["summary"]["planned_keys"]
    );
    canonical(&sandbox); // asserts no duplicate client or key
    assert_one_usable_secret_per_key(&sandbox, &run);
    run.ok(&["verify"], 0);
    // The faults really happened.
    let stats = sandbox.stats();
    let statuses: BTreeSet<u64> = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert!(
        statuses.contains(&429) && statuses.iter().any(|s| *s >= 502),
        "{statuses:?}"
    );
}

#[test]
fn second_writer_is_refused_while_the_first_runs() {
    let sandbox = Sandbox::start(&["--seed", "5", "--profiles", "40", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);
    let marker = run.dir.path().join("parked");
    let mut first = run
        .command(&["apply", "--yes"])
        .env("KEYSHIFT_CRASH_AT", "before-write")
        .env("KEYSHIFT_CRASH_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !marker.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = run.ks(&["apply", "--yes"]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second.stderr.contains("in use by another keyshift"),
        "{}",
        second.stderr
    );
    first.kill().unwrap();
    first.wait().unwrap();
    run.ok(&["apply", "--yes"], 0);
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_with_partial_and_the_next_apply_resumes() {
    let sandbox = Sandbox::start(&[
        "--seed",
        "6",
        "--profiles",
        "120",
        "--rate-scale",
        "0",
        "--faults",
        "latency=100ms",
    ]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);
    let child = run
        .command(&["apply", "--yes", "--concurrency", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it create a few keys, then interrupt.
    let started = Instant::now();
    while sandbox.writes() < 10 {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let keys_then = sandbox.workspace(1)["api_keys"].as_array().unwrap().len();
    assert!(keys_then > 0);
    run.ok(&["apply", "--yes"], 0);
    canonical(&sandbox);
    assert_one_usable_secret_per_key(&sandbox, &run);
}

#[test]
fn damaged_state_files_give_a_clear_error() {
    let sandbox = Sandbox::start(&["--seed", "5", "--profiles", "60", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);
    // Fold the WAL into the main file so the copies below are self-contained.
    let conn = rusqlite::Connection::open(run.state()).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    let bytes = std::fs::read(run.state()).unwrap();
    assert!(bytes.len() > 8192);
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.db");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let mut corrupt = bytes.clone();
    for b in corrupt[4096..8192].iter_mut() {
        *b = 0xA5;
    }
    let corrupted = dir.path().join("corrupted.db");
    std::fs::write(&corrupted, &corrupt).unwrap();
    for path in [&truncated, &corrupted] {
        let out = keyshift()
            .arg("--state")
            .arg(path)
            .arg("status")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: state file"), "{stderr}");
        let named = |s: &str| s.contains("damaged") || s.contains("truncated or corrupted");
        assert!(named(&stderr), "{stderr}");
        // doctor reads every page, and says which check failed.
        let out = keyshift()
            .arg("--state")
            .arg(path)
            .arg("doctor")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(out.status.code(), Some(0), "{all}");
        assert!(all.contains("state file") && named(&all), "{all}");
    }
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
    assert_eq!(sandbox.active_profiles(1), all);
    let wave = ["cutover", "--yes", "--without-evidence", "--workspace", "1"];

    // Killed with the second switch-off journaled but not sent; then killed after the
    // vendor answered the third, before the journal knew.
    run.crash_at(&[], &wave, "before-write", "2");
    assert_eq!(
        sandbox.active_profiles(1).len(),
        3,
        "one profile was switched off"
    );
    run.crash_at(&[], &wave, "after-response", "2");
    let d = run.ok(&wave, 0);
    assert!(
        d.stdout.contains("left open by an earlier run"),
        "{}",
        d.stdout
    );
    assert!(
        sandbox.active_profiles(1).is_empty(),
        "every profile is off"
    );
    let status = run.ok(&["status"], 0).stdout;
    assert!(!status.contains("disable_profile pending"), "{status}");
    assert!(!status.contains("disable_profile intent"), "{status}");

    // Undo, killed after the vendor re-enabled one profile: the next undo finishes it.
    let undo = ["cutover", "--undo", "--yes", "--workspace", "1"];
    run.crash_at(&[], &undo, "after-response", "1");
    assert_eq!(sandbox.active_profiles(1).len(), 1);
    run.ok(&undo, 0);
    assert_eq!(sandbox.active_profiles(1), all);
    assert_eq!(
        sandbox.workspace(1)["api_keys"].as_array().unwrap().len(),
        4,
        "no new key is touched"
    );
    // Undone switches are forgotten: a later wave may switch them off anew.
    run.ok(&wave, 0);
    assert!(sandbox.active_profiles(1).is_empty());
}
