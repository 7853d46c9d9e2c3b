//! Migrate, Bifrost access profiles → virtual keys, both modes, against the sandbox: one key
//! per profile (or profile × holder) whose policy equals the profile's, each authenticating at
//! the quota call, idempotent re-runs, the documented findings for the awkward profiles, the
//! deprecated paths as a fallback, admin credentials, and Workato-only flags refused. The
//! plan's refusal cases are in plan_predicts_refusals.rs, cutover and rollback in
//! cutover_rollback_bifrost.rs.

mod common;

use common::{sha256_hex, Run, Sandbox, BIFROST_HOLDERS};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

fn names(v: &Value, field: &str) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x[field].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Our virtual keys must carry each source profile's policy.
fn check_policy(sandbox: &Sandbox, run: &Run) -> Vec<Value> {
    let state = sandbox.state();
    let profiles: HashMap<i64, Value> = state["bifrost"]["access_profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p.clone()))
        .collect();
    let ours: Vec<Value> = state["bifrost"]["virtual_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["metadata"]["keyshift.source"].is_string())
        .cloned()
        .collect();
    let sink: HashMap<String, Value> = run
        .sink_records()
        .into_iter()
        .map(|r| (r["key_id"].as_str().unwrap().to_string(), r))
        .collect();
    let mut markers = BTreeSet::new();
    for k in &ours {
        let marker = k["metadata"]["keyshift.source"].as_str().unwrap();
        assert!(
            markers.insert(marker.to_string()),
            "duplicate key for {marker}"
        );
        let id: i64 = marker.split(':').nth(4).unwrap().parse().unwrap();
        let p = &profiles[&id];
        assert_eq!(k["is_active"], p["is_active"], "{marker}");
        // Providers and models.
        let want: BTreeSet<String> = names(&p["provider_configs"], "provider_name");
        assert_eq!(names(&k["provider_configs"], "provider"), want, "{marker}");
        for pc in p["provider_configs"].as_array().unwrap() {
            let kc = k["provider_configs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["provider"] == pc["provider_name"])
                .unwrap();
            let models: Vec<Value> = if pc["all_models_allowed"] == true {
                vec!["*".into()]
            } else {
                pc["allowed_models"].as_array().cloned().unwrap_or_default()
            };
            assert_eq!(
                kc["allowed_models"].as_array().unwrap(),
                &models,
                "{marker}"
            );
            assert_eq!(kc["allow_all_keys"], true, "{marker}: key_ids [*] sent");
            let budgets = |v: &Value| -> BTreeSet<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .map(|b| format!("{}/{}", b["max_limit"], b["reset_duration"]))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            assert_eq!(budgets(&kc["budgets"]), budgets(&pc["budgets"]), "{marker}");
        }
        // Top-level budgets and the rate limit (floored to integers).
        let total: BTreeSet<String> = p["budgets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["scope"].as_str().unwrap_or("total") == "total")
            .map(|b| {
                format!(
                    "{}/{}",
                    b["max_limit"].as_f64().unwrap(),
                    b["reset_duration"]
                )
            })
            .collect();
        let got: BTreeSet<String> = k["budgets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|b| {
                        format!(
                            "{}/{}",
                            b["max_limit"].as_f64().unwrap(),
                            b["reset_duration"]
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, total, "{marker}");
        match p["rate_limit"].as_object() {
            None => assert!(
                k["rate_limit"].is_null()
                    || k["rate_limit"].as_object().is_none_or(|o| o.is_empty()
                        || o.get("token_max_limit").is_none()
                            && o.get("request_max_limit").is_none()),
                "{marker}: no rate limit"
            ),
            Some(r) => {
                for f in ["token_max_limit", "request_max_limit"] {
                    if let Some(v) = r.get(f).and_then(Value::as_f64) {
                        assert_eq!(
                            k["rate_limit"][f].as_f64().unwrap(),
                            v.floor(),
                            "{marker} {f}"
                        );
                    }
                }
            }
        }
        // MCP access by client name.
        let mcp_names: BTreeSet<String> = k["mcp_configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["mcp_client"]["name"].as_str().unwrap().to_string())
            .collect();
        let servers = p["mcp_servers"].as_array().unwrap().len();
        assert!(
            mcp_names.len() >= servers.min(1) || servers == 0,
            "{marker}"
        );
        // The secret in the sink is the key's.
        let r = &sink[k["id"].as_str().unwrap()];
        assert_eq!(
            sha256_hex(r["secret"].as_str().unwrap()),
            k["value_sha256"].as_str().unwrap()
        );
        assert_eq!(r["kind"], "virtual_key");
    }
    ours
}

fn finding<'a>(report: &'a Value, id: i64, field: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["object_id"].as_str() == Some(id.to_string().as_str()) && f["field"] == field)
        .unwrap_or_else(|| panic!("no finding for profile {id} field {field}"))
}

#[test]
fn per_profile_mode_migrates_every_profile_with_its_policy() {
    let sandbox = Sandbox::start(&["--seed", "5", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let m = run.bifrost_mapping("per_profile");
    run.ok(&["export", "--mapping", &m], 0);
    run.ok(&["plan"], 3); // profile 32 names an MCP client that does not exist
    run.ok(&["apply", "--yes"], 0);
    let ours = check_policy(&sandbox, &run);
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    let profiles = sandbox.state()["bifrost"]["access_profiles"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        ours.len(),
        profiles - 1,
        "every profile but the blocked one"
    );
    assert_eq!(report["summary"]["blocked_profiles"], 1);

    // The documented findings.
    assert_eq!(finding(&report, 12, "provider_configs")["kind"], "advice"); // over update size limits
    assert_eq!(
        finding(&report, 10, "auto_rotation_interval")["kind"],
        "lossy"
    );
    assert_eq!(finding(&report, 18, "name")["kind"], "transformed"); // duplicate name
    assert_eq!(finding(&report, 22, "name")["kind"], "transformed"); // name taken by another key
    assert_eq!(finding(&report, 30, "mcp_tool_groups")["kind"], "manual");
    assert_eq!(finding(&report, 32, "mcp_servers")["kind"], "blocker");
    assert_eq!(
        finding(&report, 24, "calendar_aligned")["kind"],
        "transformed"
    );
    let null_rate: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["field"] == "rate_limit")
        .collect();
    assert!(!null_rate.is_empty() && null_rate.iter().all(|f| f["kind"] == "carried"));
    let excludes: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["field"] == "mcp_tool_overrides")
        .collect();
    assert!(!excludes.is_empty() && excludes.iter().all(|f| f["kind"] == "lossy"));
    // Excluded tools are really absent from the enumerated list.
    let gh = ours
        .iter()
        .flat_map(|k| k["mcp_configs"].as_array().unwrap().iter())
        .filter(|c| c["mcp_client"]["name"] == "github")
        .filter(|c| c["tools_to_execute"] != serde_json::json!(["*"]))
        .collect::<Vec<_>>();
    assert!(gh.iter().all(|c| !c["tools_to_execute"]
        .as_array()
        .unwrap()
        .contains(&"delete_repo".into())));

    // verify (every planned field) and --live (the quota call with each key).
    run.ok(&["verify"], 0);
    let live = run.ok(&["verify", "--live"], 0);
    assert!(
        live.stdout.contains(" 0 rejected") && live.stdout.contains(" 0 unverifiable"),
        "{}",
        live.stdout
    );
    // The Markdown and HTML reports speak of virtual keys: no v2-client column, no legacy
    // API client count.
    for format in ["md", "html"] {
        let text = run.ok(&["report", "--format", format], 0).stdout;
        assert!(text.contains("virtual keys migrated"), "{format}");
        assert!(
            !text.contains("v2 client") && !text.contains("legacy API clients"),
            "{format}: {text}"
        );
    }
    // The hand-over points every migrated profile at its secret's sink line.
    run.ok(&["handover", "--out", "handover"], 0);
    let handover: Value = serde_json::from_str(
        &std::fs::read_to_string(run.dir.path().join("handover/handover.json")).unwrap(),
    )
    .unwrap();
    let migrated: Vec<&Value> = handover["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "migrated")
        .collect();
    assert_eq!(migrated.len(), ours.len());
    assert!(
        migrated.iter().all(|r| r["sink_line"].as_u64().is_some()),
        "{migrated:?}"
    );
    // Re-running apply writes nothing.
    let writes = sandbox.writes();
    run.ok(&["apply", "--yes"], 0);
    assert_eq!(sandbox.writes(), writes);
}

#[test]
fn per_holder_mode_gives_each_holder_a_key() {
    let sandbox = Sandbox::start(&["--seed", "5", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let m = run.bifrost_mapping("per_holder");
    run.ok(&["export", "--mapping", &m], 0);
    let _ = run.ks(&["plan"]);
    run.ok(&["apply", "--yes"], 0);
    let ours = check_policy(&sandbox, &run);
    // Exactly one key per (profile, named holder) copy.
    let copies: BTreeSet<(i64, String)> = sandbox.state()["bifrost"]["user_access_profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            BIFROST_HOLDERS.contains(&c["user_id"].as_str().unwrap())
                && c["parent_profile_id"].as_i64() != Some(32)
        })
        .map(|c| {
            (
                c["parent_profile_id"].as_i64().unwrap(),
                c["user_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let keys: BTreeSet<(i64, String)> = ours
        .iter()
        .map(|k| {
            let marker = k["metadata"]["keyshift.source"].as_str().unwrap();
            (
                marker.split(':').nth(4).unwrap().parse().unwrap(),
                k["metadata"]["keyshift.holder"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert!(!copies.is_empty());
    assert_eq!(keys, copies);
    assert!(ours
        .iter()
        .all(|k| k["name"].as_str().unwrap().contains(" · u-")));
    run.ok(&["verify", "--live"], 0);
    let writes = sandbox.writes();
    run.ok(&["apply", "--yes"], 0);
    assert_eq!(sandbox.writes(), writes);
}

#[test]
fn canonical_paths_first_deprecated_aliases_as_a_fallback() {
    // A current deployment: export reads the canonical paths only.
    let sandbox = Sandbox::start(&["--seed", "6", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let m = run.bifrost_mapping("per_profile");
    let d = run.ok(&["export", "--mapping", &m], 0);
    assert!(!d.stderr.contains("deprecated"), "{}", d.stderr);
    let routes = |s: &Sandbox| -> BTreeSet<String> {
        s.stats()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["vendor"] == "bifrost")
            .map(|r| r["route"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(routes(&sandbox).contains("/api/governance/access-profiles"));
    assert!(!routes(&sandbox)
        .iter()
        .any(|r| r.starts_with("/api/access-profiles")));

    // An older deployment that only serves the deprecated aliases: export falls back, says so,
    // and the migration still completes.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("old.toml");
    std::fs::write(&cfg, "[bifrost]\ngovernance_profile_routes = false\n").unwrap();
    let old = Sandbox::start(&[
        "--seed",
        "6",
        "--rate-scale",
        "0",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let run = Run::new(&old);
    let m = run.bifrost_mapping("per_profile");
    let d = run.ok(&["export", "--mapping", &m], 0);
    assert!(
        d.stderr
            .contains("only the deprecated /api/access-profiles paths"),
        "{}",
        d.stderr
    );
    assert!(routes(&old).contains("/api/access-profiles"));
    let _ = run.ks(&["plan"]);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify"], 0);
}

#[test]
fn admin_basic_credentials_work_and_a_wrong_one_is_named() {
    let sandbox = Sandbox::start(&["--seed", "7", "--rate-scale", "0"]);
    let mut run = Run::new(&sandbox);
    run.env.retain(|(k, _)| k != "KEYSHIFT_BIFROST_TOKEN");
    let m = run.bifrost_mapping("per_profile");
    let d = run.ks_with(
        &["export", "--mapping", &m],
        &[
            ("KEYSHIFT_BIFROST_USER", "admin"),
            ("KEYSHIFT_BIFROST_PASSWORD", "wrong"),
        ],
    );
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(d.stderr.contains("HTTP 401: Unauthorized"), "{}", d.stderr);
    assert!(
        !d.stderr.contains("wrong"),
        "the password is not echoed: {}",
        d.stderr
    );
    let d = run.ks_with(
        &["export", "--mapping", &m],
        &[
            ("KEYSHIFT_BIFROST_USER", "admin"),
            ("KEYSHIFT_BIFROST_PASSWORD", "bifrost-sandbox-password"),
        ],
    );
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert!(
        d.stdout.contains("exported 40 Bifrost access profiles"),
        "{}",
        d.stdout
    );
}
/// Workato's export flags are refused for a Bifrost source, naming the flag, and nothing is
/// read.
#[test]
fn workato_only_export_flags_are_refused_for_a_bifrost_source() {
    let sandbox = Sandbox::start(&["--seed", "5", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let m = run.bifrost_mapping("per_profile");
    let file = run.dir.path().join("inventory.json");
    let file = file.to_str().unwrap();
    for flags in [
        vec!["--to-file", file],
        vec!["--from", file],
        vec!["--api", "embedded"],
        vec!["--workspaces", "all"],
    ] {
        let mut args = vec!["export", "--mapping", &m];
        args.extend(&flags);
        let d = run.ok(&args, 2);
        assert!(
            d.stderr
                .contains(&format!("export {} is for Workato sources", flags[0]))
                && d.stderr.contains(&format!("drop {}", flags[0])),
            "{}",
            d.shown()
        );
    }
    assert!(!std::path::Path::new(file).exists());
    assert_eq!(sandbox.route_count("bifrost", "/"), 0, "nothing was read");
    // Without them, the same export runs.
    run.ok(&["export", "--mapping", &m], 0);
    assert!(sandbox.route_count("bifrost", "/") > 0);
}
