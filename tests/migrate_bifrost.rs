//! Bifrost access profiles → virtual keys, both modes, against the sandbox: one key per
//! profile (or profile × holder) whose policy equals the profile's, each authenticating at the
//! quota call, idempotent re-runs, and the documented findings for the awkward profiles.

mod common;

use common::{sha256_hex, Run, Sandbox};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

const HOLDERS: &[&str] = &["u-alice", "u-bob", "u-carol", "u-dave"];

fn mapping(run: &Run, mode: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/bifrost-profiles-to-virtual-keys.toml"
    ))
    .unwrap()
    .replace("mode = \"per_profile\"", &format!("mode = \"{mode}\""))
    .replace("holders = []", &format!("holders = {:?}", HOLDERS));
    let path = run.dir.path().join(format!("bifrost-{mode}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

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
    let m = mapping(&run, "per_profile");
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

    // cutover deactivates exactly the profiles whose keys verified; rollback restores them
    // and deletes only our keys.
    let before = sandbox.state()["bifrost"].clone();
    // Without adoption evidence, a wave needs --without-evidence and a scope.
    run.ok(
        &[
            "cutover",
            "--yes",
            "--without-evidence",
            "--workspace",
            "default",
        ],
        0,
    );
    let after = sandbox.state()["bifrost"].clone();
    let active = |b: &Value| -> BTreeSet<i64> {
        b["access_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["is_active"] == true)
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    let verified: BTreeSet<i64> = report["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["profile_id"].as_i64().unwrap())
        .collect();
    assert!(active(&after).is_disjoint(
        &verified
            .intersection(&active(&before))
            .copied()
            .filter(|id| *id != 32)
            .collect()
    ));
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
    let theirs = |b: &Value| {
        b["virtual_keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| !k["metadata"]["keyshift.source"].is_string())
            .count()
    };
    assert_eq!(
        rolled["virtual_keys"].as_array().unwrap().len(),
        theirs(&before)
    );
}

#[test]
fn per_holder_mode_gives_each_holder_a_key() {
    let sandbox = Sandbox::start(&["--seed", "5", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let m = mapping(&run, "per_holder");
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
            HOLDERS.contains(&c["user_id"].as_str().unwrap())
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
    let m = mapping(&run, "per_profile");
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
    let m = mapping(&run, "per_profile");
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
    let m = mapping(&run, "per_profile");
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

// ---- the plan predicts every refusal of the virtual-key create call ------------------------

/// A defect: one create-time rule of Bifrost's, broken in an access profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Defect {
    UnknownServer,
    UnknownOverrideClient,
    BadOverrideAction,
    AmbiguousMcpName,
    ZeroRate,
    SubUnitRate,
    FractionalRate,
    BadRateWindow,
    MissingWindow,
    ZeroBudget,
    NegativeBudget,
    BadBudgetWindow,
    RepeatedWindow,
    BadQuarter,
    RepeatedProvider,
    BlankProvider,
    StarWithModels,
    RepeatedModels,
    ProviderRateZero,
    ProviderBudgetZero,
    BlankName,
    LongName,
    ControlName,
    TakenName,
    CalendarSubDay,
}

use Defect as D;

/// Every defect class with the finding the plan must give for it: (kind, field prefix). The
/// fixture test below has one profile per row, in this order (ids 1…), and a clean one last.
const CASES: &[(Defect, &str, &str)] = &[
    (D::UnknownServer, "blocker", "mcp_servers"),
    (D::UnknownOverrideClient, "blocker", "mcp_tool_overrides"),
    (D::BadOverrideAction, "blocker", "mcp_tool_overrides"),
    (D::AmbiguousMcpName, "blocker", "mcp_servers"),
    (D::ZeroRate, "blocker", "rate_limit.token_max_limit"),
    (D::SubUnitRate, "blocker", "rate_limit.token_max_limit"),
    (
        D::FractionalRate,
        "transformed",
        "rate_limit.token_max_limit",
    ),
    (
        D::BadRateWindow,
        "blocker",
        "rate_limit.request_reset_duration",
    ),
    (
        D::MissingWindow,
        "transformed",
        "rate_limit.request_reset_duration",
    ),
    (D::ZeroBudget, "blocker", "budgets[0].max_limit"),
    (D::NegativeBudget, "blocker", "budgets[0].max_limit"),
    (D::BadBudgetWindow, "blocker", "budgets[0].reset_duration"),
    (
        D::RepeatedWindow,
        "transformed",
        "budgets[1].reset_duration",
    ),
    (
        D::BadQuarter,
        "blocker",
        "budgets[1].reset_config.quarter_start_month",
    ),
    (
        D::RepeatedProvider,
        "blocker",
        "provider_configs[1].provider_name",
    ),
    (
        D::BlankProvider,
        "blocker",
        "provider_configs[1].provider_name",
    ),
    (
        D::StarWithModels,
        "blocker",
        "provider_configs[0].allowed_models",
    ),
    (
        D::RepeatedModels,
        "transformed",
        "provider_configs[0].allowed_models",
    ),
    (
        D::ProviderRateZero,
        "blocker",
        "provider_configs[0].rate_limit.request_max_limit",
    ),
    (
        D::ProviderBudgetZero,
        "blocker",
        "provider_configs[0].budgets[0].max_limit",
    ),
    (D::BlankName, "transformed", "name"),
    (D::LongName, "transformed", "name"),
    (D::ControlName, "transformed", "name"),
    (D::TakenName, "transformed", "name"),
    (D::CalendarSubDay, "transformed", "calendar_aligned"),
];

fn expected(d: Defect) -> (&'static str, &'static str) {
    let (_, kind, field) = CASES.iter().find(|(x, _, _)| *x == d).unwrap();
    (kind, field)
}

/// Defects that change the same field exclude each other in one profile.
fn slot(d: Defect) -> u8 {
    match d {
        D::ZeroRate | D::SubUnitRate | D::FractionalRate => 1,
        D::BadRateWindow | D::MissingWindow => 2,
        D::ZeroBudget | D::NegativeBudget | D::BadBudgetWindow => 3,
        D::RepeatedWindow | D::BadQuarter => 4,
        D::StarWithModels | D::RepeatedModels => 5,
        D::BlankName | D::LongName | D::ControlName | D::TakenName => 6,
        D::RepeatedProvider | D::BlankProvider => 7,
        D::UnknownServer | D::AmbiguousMcpName => 8,
        _ => 20 + d as u8,
    }
}

const TAKEN: &str = "Shared Assistant";

/// An access profile in the fixture (wire) shape: a valid policy, then `defects` applied.
fn profile_json(id: i64, defects: &[Defect]) -> Value {
    let mut p = serde_json::json!({
        "id": id, "name": format!("Team {id} ✓"), "description": format!("profile {id}"),
        "is_active": id % 7 != 0,
        "provider_configs": [
            {"provider_name": "openai", "all_models_allowed": false,
             "allowed_models": ["gpt-4o", "o3-mini"],
             "budgets": [{"max_limit": 50, "reset_duration": "1M"}],
             "rate_limit": {"request_max_limit": 600, "request_reset_duration": "1h"}},
            {"provider_name": "anthropic", "all_models_allowed": true, "allowed_models": []}],
        "budgets": [{"max_limit": 200, "reset_duration": "1M"}],
        "rate_limit": {"token_max_limit": 2000000, "token_reset_duration": "1d",
                       "request_max_limit": 900, "request_reset_duration": "1h"},
        "calendar_aligned": id % 3 == 0,
        "mcp_servers": if id % 2 == 0 { serde_json::json!(["gh-1"]) } else { serde_json::json!([]) },
        "mcp_tool_overrides": if id % 4 == 0 {
            serde_json::json!([{"mcp_client_id": "gh-1", "tool_name": "delete_repo", "action": "exclude"}])
        } else if id % 4 == 1 {
            serde_json::json!([{"mcp_client_id": "jira-1", "tool_name": "get_issue", "action": "include"}])
        } else {
            serde_json::json!([])
        },
        "tags": ["migrated"],
    });
    for d in defects {
        match d {
            D::UnknownServer => p["mcp_servers"] = serde_json::json!([format!("ghost-{id}")]),
            D::UnknownOverrideClient => {
                p["mcp_tool_overrides"] = serde_json::json!([{"mcp_client_id": format!("phantom-{id}"),
                    "tool_name": "t", "action": "include"}])
            }
            D::BadOverrideAction => {
                p["mcp_tool_overrides"] = serde_json::json!([{"mcp_client_id": "gh-1",
                    "tool_name": "merge_pr", "action": "deny"}])
            }
            D::AmbiguousMcpName => p["mcp_servers"] = serde_json::json!(["twin-a"]),
            D::ZeroRate => p["rate_limit"]["token_max_limit"] = 0.into(),
            D::SubUnitRate => p["rate_limit"]["token_max_limit"] = 0.5.into(),
            D::FractionalRate => p["rate_limit"]["token_max_limit"] = 250000.75.into(),
            D::BadRateWindow => p["rate_limit"]["request_reset_duration"] = "1Q".into(),
            D::MissingWindow => {
                p["rate_limit"]
                    .as_object_mut()
                    .unwrap()
                    .remove("request_reset_duration");
            }
            D::ZeroBudget => p["budgets"][0]["max_limit"] = 0.into(),
            D::NegativeBudget => p["budgets"][0]["max_limit"] = (-5).into(),
            D::BadBudgetWindow => p["budgets"][0]["reset_duration"] = "2h".into(),
            D::RepeatedWindow => {
                // the same window as budgets[0] (whatever an earlier defect made of it)
                let window = p["budgets"][0]["reset_duration"].clone();
                p["budgets"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"max_limit": 80, "reset_duration": window}));
            }
            D::BadQuarter => p["budgets"].as_array_mut().unwrap().push(
                serde_json::json!({"max_limit": 80, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 13}}),
            ),
            D::RepeatedProvider => p["provider_configs"][1]["provider_name"] = "openai".into(),
            D::BlankProvider => p["provider_configs"][1]["provider_name"] = " ".into(),
            D::StarWithModels => {
                p["provider_configs"][0]["allowed_models"] = serde_json::json!(["*", "gpt-4o"])
            }
            D::RepeatedModels => {
                p["provider_configs"][0]["allowed_models"] =
                    serde_json::json!(["gpt-4o", "gpt-4o", ""])
            }
            D::ProviderRateZero => {
                p["provider_configs"][0]["rate_limit"]["request_max_limit"] = 0.into()
            }
            D::ProviderBudgetZero => {
                p["provider_configs"][0]["budgets"][0]["max_limit"] = 0.into()
            }
            D::BlankName => p["name"] = "   ".into(),
            D::LongName => p["name"] = format!("{id} {}", "long ".repeat(70)).into(),
            D::ControlName => p["name"] = format!("Bell\u{7}{id}").into(),
            D::TakenName => p["name"] = TAKEN.into(),
            D::CalendarSubDay => {
                p["calendar_aligned"] = true.into();
                p["budgets"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"max_limit": 5, "reset_duration": "1h"}));
            }
        }
    }
    p
}

fn bifrost_fixture(profiles: Vec<Value>) -> Value {
    serde_json::json!({"bifrost": {
        "access_profiles": profiles,
        "mcp_clients": [
            {"id": 1, "config": {"client_id": "gh-1", "name": "github", "connection_type": "http",
             "connection_string": "https://mcp.github.example/mcp"},
             "tools": ["list_repos", "get_issue", "merge_pr", "delete_repo"]},
            {"id": 2, "config": {"client_id": "jira-1", "name": "jira", "connection_type": "stdio"},
             "tools": ["get_issue", "create_issue"]},
            {"id": 3, "config": {"client_id": "twin-a", "name": "twin"}, "tools": ["a"]},
            {"id": 4, "config": {"client_id": "twin-b", "name": "twin"}, "tools": ["b"]}],
        "provider_keys": [{"provider": "openai", "name": "openai-main"},
                          {"provider": "anthropic", "name": "anthropic-main"}],
        "virtual_keys": [{"name": TAKEN, "provider_configs": [{"provider": "openai", "key_ids": ["*"]}]}]
    }})
}

/// PC-B16: Bifrost refuses a virtual key naming a provider the instance has not configured,
/// and the export cannot list providers: the plan says so once per provider (manual), and
/// apply reports the vendor's refusal naming the provider while everything else migrates.
#[test]
fn an_unconfigured_provider_is_a_manual_finding_and_apply_names_the_refusal() {
    let mut profiles: Vec<Value> = (1..=6).map(|id| profile_json(id, &[])).collect();
    // The fixture configures openai and anthropic only (provider keys).
    profiles[3]["provider_configs"][1]["provider_name"] = "cohere".into();
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_fixture(dir.path(), &bifrost_fixture(profiles.clone()));
    let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let m = mapping(&run, "per_profile");
    run.ok(&["export", "--mapping", &m], 0);
    run.ok(&["plan"], 0);
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    let providers: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["object_kind"] == "bifrost_provider")
        .collect();
    let named: BTreeSet<&str> = providers
        .iter()
        .map(|f| f["object_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        named,
        BTreeSet::from(["anthropic", "cohere", "openai"]),
        "one finding per provider: {providers:#?}"
    );
    assert_eq!(providers.len(), 3, "{providers:#?}");
    let cohere = providers
        .iter()
        .find(|f| f["object_id"] == "cohere")
        .unwrap();
    assert_eq!(cohere["kind"], "manual");
    assert_eq!(cohere["field"], "provider_configs");
    assert!(
        cohere["found"]
            .as_str()
            .unwrap()
            .contains("cannot list configured providers"),
        "{cohere}"
    );
    assert!(
        cohere["fix"].as_str().unwrap().contains("before apply"),
        "{cohere}"
    );
    let apply = run.ks(&["apply", "--yes"]);
    assert_eq!(apply.code, 6, "{}\n{}", apply.stdout, apply.stderr);
    // apply names the failed item with the vendor's reason, as the Workato path does.
    assert!(
        apply
            .stdout
            .lines()
            .any(|l| l.contains("failed:") && l.contains("invalid provider name: cohere")),
        "{}",
        apply.stdout
    );
    // The vendor's refusal, naming the provider, is what apply recorded for the profile.
    let report: Value =
        serde_json::from_str(&run.ks(&["report", "--format", "json"]).stdout).unwrap();
    let rows = report["profiles"].as_array().unwrap();
    let row = rows.iter().find(|r| r["profile_id"] == 4).unwrap();
    assert_eq!(row["status"], "failed", "{row}");
    assert!(
        row["note"]
            .as_str()
            .unwrap_or("")
            .contains("invalid provider name: cohere"),
        "{row}"
    );
    assert!(
        rows.iter()
            .filter(|r| r["profile_id"] != 4)
            .all(|r| r["status"] == "migrated"),
        "{rows:#?}"
    );
    assert_eq!(run.sink_records().len(), profiles.len() - 1);
    let ours: Vec<String> = sandbox.state()["bifrost"]["virtual_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["metadata"]["keyshift.source"].as_str().map(String::from))
        .collect();
    assert_eq!(ours.len(), profiles.len() - 1, "{ours:?}");
    assert!(!ours.iter().any(|s| s.ends_with(":profile:4")), "{ours:?}");
}

/// What a run against one fixture shows.
struct Outcome {
    report: Value,
    apply_code: i32,
    verify_code: i32,
    /// Virtual-key creates the vendor refused (status ≥ 400).
    refused_creates: u64,
}

fn run_fixture(profiles: Vec<Value>) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_fixture(dir.path(), &bifrost_fixture(profiles));
    let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let m = mapping(&run, "per_profile");
    run.ok(&["export", "--mapping", &m], 0);
    let plan = run.ks(&["plan"]);
    assert!(plan.code == 0 || plan.code == 3, "plan: {}", plan.stderr);
    let apply = run.ks(&["apply", "--yes"]);
    // What was created is what was planned (transformed names, lists and limits included).
    let verify = run.ks(&["verify"]);
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    let refused_creates = sandbox.stats()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["vendor"] == "bifrost"
                && r["method"] == "POST"
                && r["route"] == "/api/governance/virtual-keys"
                && r["status"].as_u64().unwrap_or(0) >= 400
        })
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum();
    Outcome {
        report,
        apply_code: apply.code,
        verify_code: verify.code,
        refused_creates,
    }
}

/// What is wrong with an outcome for profiles `(id, defects)`, if anything.
fn problems(o: &Outcome, cases: &[(i64, Vec<Defect>)]) -> Vec<String> {
    let mut out = Vec::new();
    if o.apply_code != 0 {
        out.push(format!("apply exited {}", o.apply_code));
    }
    if o.verify_code != 0 {
        out.push(format!("verify exited {}", o.verify_code));
    }
    if o.refused_creates > 0 {
        out.push(format!(
            "{} virtual-key create(s) refused by Bifrost",
            o.refused_creates
        ));
    }
    let findings = o.report["findings"].as_array().unwrap();
    let rows = o.report["profiles"].as_array().unwrap();
    for (id, defects) in cases {
        let sid = id.to_string();
        let mine: Vec<&Value> = findings.iter().filter(|f| f["object_id"] == sid).collect();
        for d in defects {
            let (kind, field) = expected(*d);
            let hit = mine.iter().any(|f| {
                f["kind"] == kind
                    && f["field"].as_str().unwrap_or("").starts_with(field)
                    && !f["fix"].as_str().unwrap_or("").is_empty()
                    && f["object_kind"] == "profile"
            });
            if !hit {
                out.push(format!(
                    "profile {id}: no {kind} finding on {field} for {d:?}; findings: {:?}",
                    mine.iter()
                        .map(|f| format!("{} {}", f["kind"], f["field"]))
                        .collect::<Vec<_>>()
                ));
            }
        }
        let blocking = defects.iter().any(|d| expected(*d).0 == "blocker");
        let status = rows
            .iter()
            .find(|r| r["profile_id"] == *id)
            .map(|r| r["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        let want = if blocking { "blocked" } else { "migrated" };
        if status != want {
            out.push(format!(
                "profile {id} ({defects:?}): status {status:?}, expected {want}"
            ));
        }
    }
    out
}

#[test]
fn fixture_with_every_refusal_case_is_planned_around_and_applies() {
    // One profile per row of CASES (ids 1…), then a clean one.
    let mut cases: Vec<(i64, Vec<Defect>)> = CASES
        .iter()
        .enumerate()
        .map(|(i, (d, _, _))| (i as i64 + 1, vec![*d]))
        .collect();
    cases.push((CASES.len() as i64 + 1, vec![]));
    let profiles = cases.iter().map(|(id, d)| profile_json(*id, d)).collect();
    let o = run_fixture(profiles);
    let wrong = problems(&o, &cases);
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The finding names the exact field and the fix, e.g. the override on a missing client.
    let f = o.report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["object_id"] == "2" && f["kind"] == "blocker")
        .unwrap();
    assert_eq!(f["field"], "mcp_tool_overrides");
    assert!(f["found"].as_str().unwrap().contains("phantom-2"), "{f}");
    assert!(f["fix"].as_str().unwrap().contains("MCP client"), "{f}");
}

#[test]
fn random_defects_are_blocked_or_carried_and_apply_is_accepted() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("KS_BIFROST_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    let mut rng = StdRng::seed_from_u64(seed);
    const N: i64 = 400;
    let cases: Vec<(i64, Vec<Defect>)> = (1..=N)
        .map(|id| {
            let mut ds: Vec<Defect> = Vec::new();
            if !rng.gen_bool(0.25) {
                for _ in 0..rng.gen_range(1..=3) {
                    let d = CASES[rng.gen_range(0..CASES.len())].0;
                    if !ds.iter().any(|x| slot(*x) == slot(d)) {
                        ds.push(d);
                    }
                }
            }
            ds.sort();
            (id, ds)
        })
        .collect();
    let o = run_fixture(cases.iter().map(|(id, d)| profile_json(*id, d)).collect());
    let wrong = problems(&o, &cases);
    if wrong.is_empty() {
        return;
    }
    // Smallest inventory that still fails: one profile (or, failing that, all of them).
    let suspects: Vec<&(i64, Vec<Defect>)> = cases
        .iter()
        .filter(|(id, _)| {
            wrong.iter().any(|w| {
                w.starts_with(&format!("profile {id}:"))
                    || w.starts_with(&format!("profile {id} ("))
            })
        })
        .take(10)
        .collect();
    for case in suspects {
        let one = vec![case.clone()];
        let o1 = run_fixture(vec![profile_json(case.0, &case.1)]);
        let w1 = problems(&o1, &one);
        if !w1.is_empty() {
            panic!(
                "seed {seed} (KS_BIFROST_E2E_SEED={seed}); smallest inventory: {:#}\n{w1:#?}",
                bifrost_fixture(vec![profile_json(case.0, &case.1)])
            );
        }
    }
    panic!("seed {seed} (KS_BIFROST_E2E_SEED={seed}); {N} profiles: {wrong:#?}");
}

/// Workato's export flags are refused for a Bifrost source, naming the flag, and nothing is
/// read.
#[test]
fn workato_only_export_flags_are_refused_for_a_bifrost_source() {
    let sandbox = Sandbox::start(&["--seed", "5", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let m = mapping(&run, "per_profile");
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
