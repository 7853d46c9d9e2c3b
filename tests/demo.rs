//! `keyshift demo` — the README's first command — runs the whole pipeline and leaves its files.

mod common;

use common::{keyshift, read_jsonl};
use serde_json::Value;

#[test]
fn demo_runs_the_pipeline_and_writes_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("keyshift-demo");
    let out = keyshift()
        .current_dir(dir.path())
        .args(["demo", "--profiles", "120", "--dir"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "keyshift.db",
        "plan-report.md",
        "report.md",
        "report.json",
        "secrets.jsonl",
    ] {
        assert!(out_dir.join(name).is_file(), "{name} missing");
    }
    let report: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let migrated = report["summary"]["migrated_keys"].as_u64().unwrap();
    assert!(migrated > 30, "{migrated} keys migrated");
    assert_eq!(report["summary"]["failed"], 0);
    assert_eq!(report["verify"]["drift"].as_array().unwrap().len(), 0);
    let secrets = read_jsonl(&out_dir.join("secrets.jsonl"));
    assert_eq!(secrets.len() as u64, migrated);
    assert!(stdout.contains("at Workato's real limit"), "{stdout}");
    // The rollout story: consumers moved, a wave, the broken one found and given back.
    assert!(
        stdout.contains("broken consumer found: yes; given its old credential back: yes"),
        "{stdout}"
    );
    let waves = report["adoption"]["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 2, "a cutover wave and an undo");
    assert!(report["adoption"]["counts"]["moved"].as_u64().unwrap() > 0);
    assert!(out_dir.join("api-logs.csv").is_file());
    assert!(
        std::fs::read_dir(out_dir.join("consumers"))
            .unwrap()
            .count()
            > 3
    );
    let plan_report = std::fs::read_to_string(out_dir.join("plan-report.md")).unwrap();
    assert!(plan_report.starts_with("# keyshift dry-run report (plan)"));
}
