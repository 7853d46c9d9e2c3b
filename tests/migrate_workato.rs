//! End to end: the real binary against the real sandbox, asserting on the sandbox's state.

mod common;

use common::{sha256_hex, Run, Sandbox};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};

fn sorted_ids(v: &Value) -> BTreeSet<i64> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_i64().or_else(|| x["id"].as_i64()))
                .collect()
        })
        .unwrap_or_default()
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

/// The whole pipeline on a seeded inventory: every planned profile ends with exactly one key
/// in a v2 client whose settings equal the profile's, and every secret is in the sink once.
#[test]
fn seeded_inventory_migrates_every_planned_profile_exactly_once() {
    let sandbox = Sandbox::start(&["--seed", "3", "--profiles", "150", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let mut outputs = Vec::new();

    outputs.push(run.ok(&["export"], 0));
    let before_plan = sandbox.request_counts();
    // Seeded data holds ~10% bad data, so the plan has blockers (exit 3).
    outputs.push(run.ok(&["plan"], 3));
    assert_eq!(
        sandbox.request_counts(),
        before_plan,
        "plan must not send any request"
    );
    outputs.push(run.ok(&["apply", "--yes"], 0));
    outputs.push(run.ok(&["verify"], 0));
    let report = run.ok(&["report", "--format", "json"], 0);
    outputs.push(run.ok(&["report", "--format", "md"], 0));
    let report: Value = serde_json::from_str(&report.stdout).expect("report JSON");
    assert_eq!(report["format_version"], 1);

    let ws = sandbox.workspace(1);
    let legacy: HashMap<i64, &Value> = ws["access_profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p))
        .collect();
    let clients: HashMap<i64, &Value> = ws["v2_clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_i64().unwrap(), c))
        .collect();
    let keys: Vec<&Value> = ws["api_keys"].as_array().unwrap().iter().collect();

    let rows = report["profiles"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        legacy.len(),
        "every legacy profile is in the report"
    );
    let migrated: Vec<&Value> = rows.iter().filter(|r| r["status"] == "migrated").collect();
    let blocked: Vec<&Value> = rows.iter().filter(|r| r["status"] == "blocked").collect();
    assert_eq!(
        migrated.len() + blocked.len(),
        rows.len(),
        "every profile is migrated or blocked"
    );
    assert!(!blocked.is_empty() && blocked.len() < rows.len() / 4);
    assert_eq!(
        keys.len(),
        migrated.len(),
        "exactly one key per migrated profile"
    );

    let mut seen_keys = HashSet::new();
    for row in &migrated {
        let profile = legacy[&row["profile_id"].as_i64().unwrap()];
        let key_id = row["key_id"].as_i64().expect("key id");
        assert!(seen_keys.insert(key_id), "key {key_id} used twice");
        let key = keys
            .iter()
            .find(|k| k["id"].as_i64() == Some(key_id))
            .expect("key exists in the sandbox");
        let client = clients[&key["api_client_id"].as_i64().unwrap()];
        assert_eq!(key["active"], profile["active"], "active state carried");
        assert_eq!(
            strings(&key["ip_allow_list"]),
            strings(&profile["ip_allow_list"])
        );
        assert_eq!(client["auth_type"], profile["auth_type"]);
        assert_eq!(
            sorted_ids(&client["api_collections"]),
            sorted_ids(&profile["api_collection_ids"])
        );
        let policy: BTreeSet<i64> = sorted_ids(&client["api_policies"]);
        assert_eq!(
            policy,
            profile["api_policy_id"]
                .as_i64()
                .into_iter()
                .collect::<BTreeSet<_>>()
        );
        for f in [
            "jwt_method",
            "oidc_issuer",
            "oidc_jwks_uri",
            "access_profile_claim",
        ] {
            assert_eq!(client[f], profile[f], "client {f} equals the profile's");
        }
        let name = key["name"].as_str().unwrap();
        let pname = profile["name"].as_str().unwrap();
        assert!(
            name == pname || name == format!("{pname} ({})", profile["id"]),
            "key name {name:?} comes from profile name {pname:?}"
        );
    }
    // Grouping: no v2 client over 20 keys, and some legacy client split into several.
    let mut per_client: HashMap<i64, usize> = HashMap::new();
    for k in &keys {
        *per_client
            .entry(k["api_client_id"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert!(per_client.values().all(|n| *n <= 20));
    assert!(
        per_client.values().any(|n| *n == 20),
        "a group over 20 was split at 20"
    );
    assert!(clients.len() > report["summary"]["legacy_clients"].as_u64().unwrap() as usize / 2);

    // Every key's secret is in the sink exactly once, and it is the key's real secret.
    let sink = run.sink_records();
    assert_eq!(sink.len(), keys.len());
    let by_key: HashMap<i64, &Value> = sink
        .iter()
        .map(|r| (r["key_id"].as_i64().unwrap(), r))
        .collect();
    assert_eq!(by_key.len(), keys.len(), "one sink record per key");
    for k in &keys {
        let r = by_key[&k["id"].as_i64().unwrap()];
        let digest = sha256_hex(r["secret"].as_str().unwrap());
        let want = k["auth_token_sha256"]
            .as_str()
            .or_else(|| k["oauth_client_secret_sha256"].as_str())
            .expect("key has a secret digest");
        assert_eq!(digest, want, "sink holds the key's secret");
        assert_eq!(r["v"], 1);
        assert_eq!(r["vendor"], "workato");
        assert!(r["source"]
            .as_str()
            .unwrap()
            .starts_with("keyshift:workato:1:profile:"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(run.sink()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "sink is 0600");
        let mode = std::fs::metadata(run.state()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "state DB is 0600");
    }

    // A second apply sends no write request.
    let writes = sandbox.writes();
    outputs.push(run.ok(&["apply", "--yes"], 0));
    assert_eq!(sandbox.writes(), writes, "second apply wrote something");
    assert_eq!(
        sandbox.workspace(1)["api_keys"].as_array().unwrap().len(),
        keys.len()
    );

    // No secret anywhere but the sink: outputs, the state DB's bytes, reports.
    let mut haystacks: Vec<Vec<u8>> = outputs
        .iter()
        .flat_map(|d| [d.stdout.clone().into_bytes(), d.stderr.clone().into_bytes()])
        .collect();
    for entry in std::fs::read_dir(run.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path != run.sink() && path.is_file() {
            haystacks.push(std::fs::read(&path).unwrap());
        }
    }
    for r in &sink {
        let secret = r["secret"].as_str().unwrap().as_bytes();
        for h in &haystacks {
            assert!(
                !h.windows(secret.len()).any(|w| w == secret),
                "a secret leaked outside the sink"
            );
        }
    }
}

/// `apply` refuses a plan whose source changed after export (exit 5).
#[test]
fn apply_refuses_a_stale_plan() {
    let sandbox = Sandbox::start(&["--seed", "5", "--profiles", "30", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let plan = run.ks(&["plan"]);
    assert!(plan.code == 0 || plan.code == 3, "{}", plan.stderr);
    let ws = sandbox.workspace(1);
    let profile = &ws["access_profiles"][0];
    let url = format!(
        "{}/api/api_access_profiles/{}",
        sandbox.var("KEYSHIFT_WORKATO_URL"),
        profile["id"]
    );
    let resp = reqwest::blocking::Client::new()
        .put(url)
        .bearer_auth(sandbox.var("KEYSHIFT_WORKATO_TOKEN"))
        .json(&serde_json::json!({"name": "renamed after export"}))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let writes = sandbox.writes();
    let d = run.ks(&["apply", "--yes"]);
    assert_eq!(d.code, 5, "{}\n{}", d.stdout, d.stderr);
    assert!(
        d.stderr.contains("re-run `keyshift export`"),
        "{}",
        d.stderr
    );
    assert_eq!(sandbox.writes(), writes, "nothing written on a stale plan");
}

/// Off a terminal, apply without --yes refuses with the usage code.
#[test]
fn apply_without_yes_refuses_off_a_tty() {
    let sandbox = Sandbox::start(&["--seed", "2", "--profiles", "20", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);
    let writes = sandbox.writes();
    let d = run.ks(&["apply"]);
    assert_eq!(d.code, 2, "{}", d.stderr);
    assert!(d.stderr.contains("--yes"), "{}", d.stderr);
    assert_eq!(sandbox.writes(), writes);
}
