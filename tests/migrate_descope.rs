//! Migrate, Workato legacy profiles → Descope access keys: seeded inventories (Developer and
//! Embedded) to Descope, each key exchanged for a JWT checked against the JWKS, idempotent
//! re-runs, crash recovery by rotation, and the Descope rate limit. Cutover and rollback are in
//! cutover_rollback_descope.rs.

mod common;

use common::{sha256_hex, Run, Sandbox};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// The shipped Descope mapping with a custom claim on every key.
fn mapping(run: &Run) -> String {
    run.edited_mapping(
        "workato-legacy-to-descope",
        &[(
            "# [descope.custom_claims]\n# migrated_from = \"workato\"",
            "[descope.custom_claims]\nmigrated_from = \"workato\"",
        )],
        "descope.toml",
    )
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Every planned profile has exactly one access key with the mapped roles, tenant, IPs and
/// claims; active state as the profile's; the secret in the sink.
fn check_keys(sandbox: &Sandbox, run: &Run) -> usize {
    let state = sandbox.state();
    let keys = state["descope"]["access_keys"].as_array().unwrap().clone();
    let mut collections: HashMap<(String, i64), String> = HashMap::new();
    let mut profiles: HashMap<String, (String, Value)> = HashMap::new();
    for ws in state["workato"]["workspaces"].as_array().unwrap() {
        let id = ws["id"].to_string();
        for c in ws["api_collections"].as_array().unwrap() {
            collections.insert(
                (id.clone(), c["id"].as_i64().unwrap()),
                c["name"].as_str().unwrap().into(),
            );
        }
        for p in ws["access_profiles"].as_array().unwrap() {
            profiles.insert(
                format!("keyshift:workato:{id}:profile:{}", p["id"]),
                (id.clone(), p.clone()),
            );
        }
    }
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    let migrated = report["summary"]["migrated_keys"].as_u64().unwrap() as usize;
    assert_eq!(keys.len(), migrated, "one key per migrated profile");
    let mut seen = BTreeSet::new();
    let sink: HashMap<String, Value> = run
        .sink_records()
        .into_iter()
        .map(|r| (r["key_id"].as_str().unwrap().to_string(), r))
        .collect();
    for k in &keys {
        let marker = k["customAttributes"]["migrationSourceId"].as_str().unwrap();
        assert!(
            seen.insert(marker.to_string()),
            "duplicate key for {marker}"
        );
        assert!(k["description"].as_str().unwrap().starts_with(marker));
        let (ws, p) = &profiles[marker];
        let roles: BTreeSet<String> = p["api_collection_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| collections[&(ws.clone(), c.as_i64().unwrap())].clone())
            .collect();
        assert_eq!(
            k["roleNames"],
            serde_json::json!([]),
            "tenant roles only (SD-D5)"
        );
        assert_eq!(k["keyTenants"][0]["tenantId"], format!("T2ws{ws}"));
        assert_eq!(strings(&k["keyTenants"][0]["roleNames"]), roles);
        assert_eq!(strings(&k["permittedIps"]), strings(&p["ip_allow_list"]));
        assert_eq!(k["customClaims"]["migrated_from"], "workato");
        assert_eq!(k["status"] == "active", p["active"] == true, "{marker}");
        let r = &sink[k["id"].as_str().unwrap()];
        assert_eq!(
            sha256_hex(r["secret"].as_str().unwrap()),
            k["cleartext_sha256"].as_str().unwrap()
        );
        assert_eq!(r["kind"], "access_key");
    }
    keys.len()
}

fn round(api: &str, workspaces: &str) {
    let sandbox = Sandbox::start(&[
        "--seed",
        "15",
        "--profiles",
        "120",
        "--workspaces",
        workspaces,
        "--rate-scale",
        "0",
    ]);
    let run = Run::new(&sandbox);
    let m = mapping(&run);
    run.ok(&["export", "--api", api, "--mapping", &m], 0);
    run.ok(&["plan"], 3);
    run.ok(&["apply", "--yes"], 0);
    let n = check_keys(&sandbox, &run);
    assert!(n > 50);
    let live = run.ok(&["verify", "--live"], 0);
    assert!(live.stdout.contains(" 0 rejected"), "{}", live.stdout);
    // Every active key without an IP restriction exchanged for a JWT that verified.
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    let ok = report["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["live"] == "ok")
        .count();
    let keys = sandbox.state()["descope"]["access_keys"]
        .as_array()
        .unwrap()
        .clone();
    let expected_ok = keys
        .iter()
        .filter(|k| {
            let ips = k["permittedIps"].as_array().unwrap();
            // Probes come from 127.0.0.1: an empty list or a loopback range admits them.
            k["status"] == "active"
                && (ips.is_empty()
                    || ips
                        .iter()
                        .any(|ip| ip.as_str().unwrap().starts_with("127.")))
        })
        .count();
    assert_eq!(ok, expected_ok);
    // A re-run writes nothing.
    let writes = sandbox.writes();
    run.ok(&["apply", "--yes"], 0);
    assert_eq!(sandbox.writes(), writes);
}

#[test]
fn developer_inventory_to_descope() {
    round("developer", "1");
}

#[test]
fn embedded_inventory_to_descope() {
    round("embedded", "4");
}

#[test]
fn crash_after_create_before_sink_recovers_by_rotation() {
    let sandbox = Sandbox::start(&["--seed", "16", "--profiles", "50", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let m = mapping(&run);
    run.ok(&["export", "--mapping", &m], 0);
    let _ = run.ks(&["plan"]);
    run.crash_at(&[], &["apply", "--yes"], "after-journal", "3");
    run.ok(&["apply", "--yes"], 0);
    check_keys(&sandbox, &run);
    let rotations: u64 = sandbox.route_count("descope", "/v1/mgmt/accesskey/rotate");
    assert!(
        rotations >= 1,
        "the lost secret was recovered by rotating the new key"
    );
    run.ok(&["verify"], 0);
}

#[test]
fn completes_under_the_descope_rate_limit_without_a_429_reaching_the_user() {
    // 100 requests per 60 s, scaled 20× (a 3 s window).
    let sandbox = Sandbox::start(&["--seed", "17", "--profiles", "150", "--rate-scale", "20"]);
    let run = Run::new(&sandbox);
    let m = mapping(&run);
    run.ok(&["export", "--mapping", &m], 0);
    let _ = run.ks(&["plan"]);
    let apply = run.ok(&["apply", "--yes"], 0);
    assert!(!apply.stderr.contains("429"), "{}", apply.stderr);
    check_keys(&sandbox, &run);
    let stats = sandbox.stats();
    let (mut total, mut throttled) = (0, 0);
    for r in stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["vendor"] == "descope")
    {
        total += r["count"].as_u64().unwrap();
        if r["status"] == 429 {
            throttled += r["count"].as_u64().unwrap();
        }
    }
    assert!(total > 100);
    assert!(
        throttled * 50 <= total,
        "{throttled} of {total} Descope requests throttled"
    );
}
