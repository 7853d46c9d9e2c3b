//! Migrate, Workato legacy profiles → v2 clients and keys: the whole pipeline on seeded
//! inventories, asserted on the sandbox's state — every planned profile exactly once, stale
//! plans and missing `--yes` refused; every auth type proven live at the gateway, Developer and
//! Embedded; legacy credentials until the sunset; Embedded at the rate limit; mapping
//! mistakes, deadlines, filters and the hand-over; verify finding every kind of drift.
//! Cutover and rollback are in cutover_rollback_workato.rs.

mod common;

use common::{sha256_hex, write_fixture, Run, Sandbox};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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

fn report(run: &Run) -> Value {
    serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap()
}

fn legacy_profiles(sandbox: &Sandbox) -> HashMap<(String, i64), Value> {
    let mut out = HashMap::new();
    for ws in sandbox.state()["workato"]["workspaces"].as_array().unwrap() {
        let id = ws["id"].to_string().trim_matches('"').to_string();
        for p in ws["access_profiles"].as_array().unwrap() {
            out.insert((id.clone(), p["id"].as_i64().unwrap()), p.clone());
        }
    }
    out
}

fn live_round(api: &str, workspaces: &str) {
    let sandbox = Sandbox::start(&[
        "--seed",
        "11",
        "--profiles",
        "400",
        "--workspaces",
        workspaces,
        "--rate-scale",
        "0",
    ]);
    let run = Run::new(&sandbox);
    run.ok(&["export", "--api", api], 0);
    run.ok(&["plan"], 3);
    run.ok(&["apply", "--yes"], 0);
    let verify = run.ok(&["verify", "--live", "--probe-deadline", "10"], 0);
    assert!(verify.stdout.contains("0 rejected"), "{}", verify.stdout);
    let legacy = legacy_profiles(&sandbox);
    let report = report(&run);
    let mut ok_by_type: BTreeMap<String, usize> = BTreeMap::new();
    for row in report["profiles"].as_array().unwrap() {
        if row["status"] != "migrated" {
            continue;
        }
        let ws = row["workspace"].as_str().unwrap().to_string();
        let profile = &legacy[&(ws, row["profile_id"].as_i64().unwrap())];
        let live = row["live"].as_str().expect("every migrated key was probed");
        let restricted = !profile["ip_allow_list"].as_array().unwrap().is_empty();
        let expected = match (profile["active"].as_bool().unwrap(), restricted) {
            (false, _) => "expected-inactive",
            (true, true) => live, // 403 from an allow list that excludes 127.0.0.1 is allowed
            (true, false) => "ok",
        };
        assert_eq!(live, expected, "{api}: {row}");
        if restricted && profile["active"] == true {
            assert!(live == "ok" || live == "unverifiable", "{row}");
        }
        if live == "ok" {
            let kind = match profile["auth_type"].as_str().unwrap() {
                "jwt" => format!("jwt-{}", profile["jwt_method"].as_str().unwrap()),
                other => other.to_string(),
            };
            *ok_by_type.entry(kind).or_default() += 1;
        }
    }
    for kind in ["token", "oauth2", "jwt-hmac", "jwt-rsa", "oidc"] {
        assert!(
            ok_by_type.get(kind).copied().unwrap_or(0) > 0,
            "{api}: no {kind} key proven live: {ok_by_type:?}"
        );
    }
    // The gateway really refuses a wrong credential: rotate one active, unrestricted token
    // key behind keyshift's back and verify --live fails (exit 4).
    let state = sandbox.state();
    let ws = &state["workato"]["workspaces"][if api == "embedded" { 1 } else { 0 }];
    let token_clients: Vec<i64> = ws["v2_clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["auth_type"] == "token")
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let key = ws["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| {
            k["active"] == true
                && k["ip_allow_list"].as_array().unwrap().is_empty()
                && token_clients.contains(&k["api_client_id"].as_i64().unwrap())
        })
        .expect("an active, unrestricted token key");
    let ws_path = if api == "embedded" {
        format!("/api/v2/managed_users/{}", ws["id"])
    } else {
        "/api/v2".to_string()
    };
    let url = format!(
        "{}{ws_path}/api_clients/{}/api_keys/{}/refresh_secret",
        sandbox.var("KEYSHIFT_WORKATO_URL"),
        key["api_client_id"],
        key["id"]
    );
    let resp = reqwest::blocking::Client::new()
        .put(url)
        .bearer_auth(sandbox.var("KEYSHIFT_WORKATO_TOKEN"))
        .send()
        .unwrap();
    assert!(resp.status().is_success());
    let d = run.ks(&["verify", "--live", "--probe-deadline", "2"]);
    assert_eq!(d.code, 4, "{}", d.stdout);
    assert!(d.stdout.contains("1 rejected"), "{}", d.stdout);
}

#[test]
fn live_verify_authenticates_every_auth_type_developer() {
    live_round("developer", "1");
}

#[test]
fn live_verify_authenticates_every_auth_type_embedded() {
    live_round("embedded", "3");
}

fn gateway_status(url: &str, token: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(format!("{url}/orders"))
        .header("api-token", token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn legacy_credentials_keep_working_until_the_sunset() {
    let legacy_secret = "1".repeat(64);
    let fixture = json!({"workato": {"workspaces": [{
        "id": 1, "name": "Acme",
        "api_collections": [{"id": 10, "name": "Orders API", "version": "1"}],
        "api_policies": [],
        "legacy_clients": [{"id": 100, "name": "Partner portal"}],
        "access_profiles": [{
            "id": 200, "name": "Partner A", "api_client_id": 100, "api_collection_ids": [10],
            "active": true, "auth_type": "token", "ip_allow_list": [], "secret": legacy_secret
        }],
        "v2_clients": [], "api_keys": []
    }]}});
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path(), &fixture);
    let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    run.ok(&["plan"], 0);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify", "--live"], 0);
    let url = sandbox.workspace(1)["api_collections"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let new_token = run.sink_records()[0]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        gateway_status(&url, &legacy_secret),
        200,
        "legacy token before the freeze"
    );
    assert_eq!(gateway_status(&url, &new_token), 200, "new key");
    let clock = |now: &str| {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/_sandbox/clock", sandbox.url))
            .json(&json!({ "now": now }))
            .send()
            .unwrap();
        assert!(r.status().is_success());
    };
    clock("2026-02-01T00:00:00Z");
    assert_eq!(
        gateway_status(&url, &legacy_secret),
        200,
        "frozen, but alive"
    );
    clock("2026-07-01T00:00:01Z");
    assert_eq!(
        gateway_status(&url, &legacy_secret),
        401,
        "dead after the sunset"
    );
    assert_eq!(
        gateway_status(&url, &new_token),
        200,
        "the new key lives on"
    );
}

#[test]
fn embedded_fifty_workspaces_migrate_under_the_rate_limit() {
    // 1,000 requests/min shared by the admin workspace, scaled 10× (the window is 6 s).
    let sandbox = Sandbox::start(&[
        "--seed",
        "21",
        "--workspaces",
        "51",
        "--profiles",
        "2000",
        "--rate-scale",
        "10",
    ]);
    let run = Run::new(&sandbox);
    run.ok(&["export", "--api", "embedded"], 0);
    run.ok(&["plan"], 3);
    let apply = run.ok(&["apply", "--yes"], 0);
    assert!(!apply.stderr.contains("429"), "{}", apply.stderr);
    let report = report(&run);
    let s = &report["summary"];
    assert_eq!(s["workspaces"], 50);
    assert_eq!(s["migrated_keys"], s["planned_keys"]);
    assert!(s["migrated_keys"].as_u64().unwrap() > 1500);
    let stats = sandbox.stats();
    let mut total = 0;
    let mut throttled = 0;
    for r in stats["requests"].as_array().unwrap() {
        total += r["count"].as_u64().unwrap();
        if r["status"] == 429 {
            throttled += r["count"].as_u64().unwrap();
        }
    }
    // The client paces itself below the limit; a stray 429 from arrival jitter is retried.
    assert!(
        throttled * 100 <= total,
        "{throttled} of {total} requests were throttled"
    );
}

#[test]
fn mapping_mistakes_name_file_key_and_fix() {
    let sandbox = Sandbox::start(&["--seed", "2", "--profiles", "20", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let bad = run.dir.path().join("bad-mapping.toml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/workato-legacy-to-v2.toml"
    ))
    .unwrap()
    .replace("max_keys_per_client = 20", "max_keys_per_client = 50")
    .replace("treatment = \"lossy\"", "treatment = \"dropped\"");
    std::fs::write(&bad, text).unwrap();
    let d = run.ks(&["plan", "--mapping", bad.to_str().unwrap()]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(d.stderr.contains("bad-mapping.toml: key client.max_keys_per_client: 50 is out of range — Workato allows 1 to 20"), "{}", d.stderr);
    assert!(
        d.stderr
            .contains("key fields.secret.treatment: \"dropped\" is not a treatment — use carried"),
        "{}",
        d.stderr
    );
    let typo = run.dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        "[pair]\nsource = \"workato-legacy\"\ntarget = \"workato-v2\"\n[deadline]\n",
    )
    .unwrap();
    let d = run.ks(&["plan", "--mapping", typo.to_str().unwrap()]);
    assert_eq!(d.code, 1);
    assert!(
        d.stderr.contains("typo.toml (line 4)") && d.stderr.contains("deadline"),
        "{}",
        d.stderr
    );
}

#[test]
fn deadlines_follow_now_and_filters_exclude() {
    let sandbox = Sandbox::start(&["--seed", "4", "--profiles", "120", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let frozen = run.ks(&["--now", "2026-02-01", "plan"]);
    assert!(
        frozen.stdout.contains("frozen since 2025-12-01"),
        "{}",
        frozen.stdout
    );
    assert!(
        frozen.stdout.contains("in 150 days (2026-07-01)"),
        "{}",
        frozen.stdout
    );
    let gone = run.ok(&["--now", "2026-08-01", "status"], 0);
    assert!(
        gone.stdout
            .contains("legacy tokens stopped working on 2026-07-01"),
        "{}",
        gone.stdout
    );
    let before = run.ok(&["--now", "2025-11-20", "status"], 0);
    assert!(
        before
            .stdout
            .contains("11 days until legacy clients and profiles freeze"),
        "{}",
        before.stdout
    );

    let mapping = run.dir.path().join("no-oidc.toml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/workato-legacy-to-v2.toml"
    ))
    .unwrap()
        + "\n[filters.exclude]\nauth_types = [\"oidc\"]\n";
    std::fs::write(&mapping, text).unwrap();
    let _ = run.ks(&["plan", "--mapping", mapping.to_str().unwrap()]);
    run.ok(&["apply", "--yes"], 0);
    let report = report(&run);
    let excluded: Vec<&Value> = report["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "excluded")
        .collect();
    assert!(!excluded.is_empty());
    assert!(excluded.iter().all(|r| r["auth_type"] == "oidc"));
    let clients = sandbox.workspace(1)["v2_clients"]
        .as_array()
        .unwrap()
        .clone();
    assert!(clients.iter().all(|c| c["auth_type"] != "oidc"));
    assert!(!clients.is_empty());

    // Hand-over: every migrated profile names the sink line holding its key's secret.
    run.ok(&["handover", "--out", "ho"], 0);
    let ho: Value =
        serde_json::from_slice(&std::fs::read(run.dir.path().join("ho/handover.json")).unwrap())
            .unwrap();
    let sink = run.sink_records();
    let mut migrated = 0;
    for row in ho["profiles"].as_array().unwrap() {
        if row["status"] != "migrated" {
            continue;
        }
        migrated += 1;
        let line = row["sink_line"].as_u64().unwrap() as usize;
        assert_eq!(sink[line - 1]["key_id"], row["key_id"], "{row}");
        let action = row["consumer_action"].as_str().unwrap();
        match row["auth_type"].as_str().unwrap() {
            "token" => assert!(action.contains("api-token")),
            "oauth2" => assert!(action.contains(row["oauth_client_id"].as_str().unwrap())),
            "jwt" => assert!(action.contains("claim")),
            other => panic!("unexpected {other}"),
        }
        assert!(!action.contains(sink[line - 1]["secret"].as_str().unwrap()));
    }
    assert_eq!(migrated, sink.len());
    let csv = std::fs::read_to_string(run.dir.path().join("ho/handover.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        ho["profiles"].as_array().unwrap().len() + 1
    );
}

/// verify compares every planned field with what the vendor holds, and names each change made
/// by hand.
#[test]
fn verify_detects_each_kind_of_drift() {
    let sandbox = Sandbox::start(&["--seed", "17", "--profiles", "120", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    run.ok(&["plan"], 3);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify"], 0);
    let ws = sandbox.workspace(1);
    let keys: Vec<Value> = ws["api_keys"].as_array().unwrap().clone();
    let active: Vec<&Value> = keys.iter().filter(|k| k["active"] == true).collect();
    let path = |k: &Value| {
        format!(
            "/api/v2/api_clients/{}/api_keys/{}",
            k["api_client_id"], k["id"]
        )
    };
    // A key deleted, one disabled, one renamed, one whose IP list changed.
    sandbox.workato_call(reqwest::Method::DELETE, &path(active[0]), None);
    sandbox.workato_call(
        reqwest::Method::PUT,
        &format!("{}/disable", path(active[1])),
        None,
    );
    sandbox.workato_call(
        reqwest::Method::PUT,
        &path(active[2]),
        Some(json!({"name": "renamed by hand"})),
    );
    sandbox.workato_call(
        reqwest::Method::PUT,
        &path(active[3]),
        Some(json!({"ip_allow_list": ["198.51.100.0/24"]})),
    );
    // A client's collections changed.
    let client = ws["v2_clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["id"] != active[0]["api_client_id"]
                && c["api_collections"].as_array().unwrap().len() > 1
        })
        .expect("a client with two collections")
        .clone();
    let first = client["api_collections"][0]["id"].clone();
    sandbox.workato_call(
        reqwest::Method::PUT,
        &format!("/api/v2/api_clients/{}", client["id"]),
        Some(json!({"name": client["name"], "api_collection_ids": [first]})),
    );
    let d = run.ks(&["verify"]);
    assert_eq!(d.code, 4, "{}", d.stdout);
    let name = |k: &Value| k["name"].as_str().unwrap().to_string();
    for (needle, field) in [
        (name(active[0]), "existence expected present, found missing"),
        (name(active[1]), "active expected true, found false"),
        (name(active[2]), "existence expected present, found missing"),
        (
            "renamed by hand".to_string(),
            "unplanned key \"renamed by hand\"",
        ),
        (name(active[3]), "ip_allow_list expected"),
        (
            client["name"].as_str().unwrap().to_string(),
            "api_collection_ids expected",
        ),
    ] {
        assert!(
            d.stdout
                .lines()
                .any(|l| l.contains("drift:") && l.contains(&needle) && l.contains(field)),
            "no drift line for {needle} / {field}:\n{}",
            d.stdout
        );
    }
    // The JSON report carries the differences too.
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    assert!(report["verify"]["drift"].as_array().unwrap().len() >= 6);
}
