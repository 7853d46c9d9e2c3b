//! Bifrost's create-time rules for a virtual key, each broken in an access profile: the defect
//! classes with the finding the plan must give for each, a valid access profile in the fixture
//! (wire) shape with defects applied, and the fixture around such profiles (MCP clients,
//! provider keys, and a virtual key whose name is taken). Used by
//! `tests/plan_predicts_refusals.rs`.

use serde_json::Value;

/// A defect: one create-time rule of Bifrost's, broken in an access profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Defect {
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
pub const CASES: &[(Defect, &str, &str)] = &[
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

pub fn expected(d: Defect) -> (&'static str, &'static str) {
    let (_, kind, field) = CASES.iter().find(|(x, _, _)| *x == d).unwrap();
    (kind, field)
}

/// Defects that change the same field exclude each other in one profile.
pub fn slot(d: Defect) -> u8 {
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

pub const TAKEN: &str = "Shared Assistant";

/// An access profile in the fixture (wire) shape: a valid policy, then `defects` applied.
pub fn profile_json(id: i64, defects: &[Defect]) -> Value {
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

pub fn fixture(profiles: Vec<Value>) -> Value {
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
