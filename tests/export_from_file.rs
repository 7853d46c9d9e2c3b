//! When the legacy API is gone: an inventory exported to a file from one sandbox
//! migrates, through `export --from`, against a sandbox whose legacy API is retired — the same
//! profiles as a live run.

mod common;

use common::{Run, Sandbox};
use std::collections::BTreeSet;

fn migrated(run: &Run) -> BTreeSet<String> {
    run.sink_records()
        .iter()
        .map(|r| r["source"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_exported_file_migrates_after_the_legacy_api_is_gone() {
    // A live run before the sunset, which also writes the inventory file.
    let before = Sandbox::start(&["--seed", "21", "--profiles", "120", "--rate-scale", "0"]);
    let live = Run::new(&before);
    let file = live.dir.path().join("inventory.json");
    let export = live.ok(&["export", "--to-file", file.to_str().unwrap()], 0);
    assert!(
        export.stdout.contains("wrote the inventory"),
        "{}",
        export.stdout
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("\"secret\""), "the file holds no credential");
    let _ = live.ks(&["plan"]);
    live.ok(&["apply", "--yes"], 0);
    let live_set = migrated(&live);
    assert!(live_set.len() > 50);

    // The same account after the sunset: the legacy routes answer 410.
    let after = Sandbox::start(&[
        "--seed",
        "21",
        "--profiles",
        "120",
        "--rate-scale",
        "0",
        "--now",
        "2026-11-25",
    ]);
    let run = Run::new(&after);
    let gone = run.ks(&["export"]);
    assert_eq!(gone.code, 1, "{}", gone.stderr);
    for words in ["HTTP 410", "retired", "export --from", "docs/runbook.md"] {
        assert!(gone.stderr.contains(words), "{words:?} in: {}", gone.stderr);
    }
    let from = run.ok(&["export", "--from", file.to_str().unwrap()], 0);
    assert!(
        from.stdout.contains("no request to the legacy API"),
        "{}",
        from.stdout
    );
    let _ = run.ks(&["plan"]);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify"], 0);
    assert_eq!(
        migrated(&run),
        live_set,
        "the same profiles as the live run"
    );
    // The sandbox never saw a legacy read after the sunset beyond the failed export.
    let legacy_reads: u64 = after.route_count("workato", "/api/api_access_profiles");
    assert!(legacy_reads <= 1, "{legacy_reads} legacy profile reads");
    // Handover and cutover say plainly that the source is a file.
    run.ok(&["handover", "--out", "handover"], 0);
    let cutover = run.ok(&["cutover", "--yes"], 0);
    assert!(cutover.stdout.contains("is a file"), "{}", cutover.stdout);

    // A file changed after export makes the plan stale (exit 5), as a changed source would.
    let second = Run::new(&after);
    second.ok(&["export", "--from", file.to_str().unwrap()], 0);
    let _ = second.ks(&["plan"]);
    let mut edited: serde_json::Value = serde_json::from_str(&text).unwrap();
    edited["workato"]["workspaces"][0]["access_profiles"][0]["name"] = "Renamed".into();
    std::fs::write(&file, serde_json::to_vec(&edited).unwrap()).unwrap();
    let stale = second.ks(&["apply", "--yes"]);
    assert_eq!(stale.code, 5, "{}\n{}", stale.stdout, stale.stderr);
    assert!(stale.stderr.contains("inventory file"), "{}", stale.stderr);
}
