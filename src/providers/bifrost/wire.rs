//! Bifrost's wire shapes: access profiles as its API returns them (read into the planner's
//! types), and the create body of a virtual key written from a planned grant.

use anyhow::Result;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::providers::bifrost::plan::{
    BifrostProfile, Budget, BudgetGrant, LimitGrant, ProviderAccess, RateLimit, ToolOverride,
    VirtualKeyGrant,
};

#[derive(Deserialize)]
pub(super) struct WireProfile {
    id: i64,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    is_active: bool,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    provider_configs: Option<Vec<WireProvider>>,
    #[serde(default)]
    budgets: Option<Vec<WireBudget>>,
    #[serde(default)]
    rate_limit: Option<WireRate>,
    #[serde(default)]
    calendar_aligned: Option<bool>,
    #[serde(default)]
    auto_rotation_interval: Option<i64>,
    #[serde(default)]
    mcp_servers: Option<Vec<Value>>,
    #[serde(default)]
    mcp_tool_groups: Option<Vec<Value>>,
    #[serde(default)]
    mcp_tool_overrides: Option<Vec<WireOverride>>,
}

#[derive(Deserialize)]
struct WireProvider {
    provider_name: String,
    #[serde(default)]
    all_models_allowed: bool,
    #[serde(default)]
    allowed_models: Option<Vec<String>>,
    #[serde(default)]
    budgets: Option<Vec<WireBudget>>,
    #[serde(default)]
    rate_limit: Option<WireRate>,
}

#[derive(Deserialize)]
struct WireBudget {
    max_limit: f64,
    reset_duration: String,
    #[serde(default)]
    reset_config: Option<Value>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    current_usage: Option<f64>,
}

#[derive(Deserialize)]
struct WireRate {
    #[serde(default)]
    token_max_limit: Option<f64>,
    #[serde(default)]
    token_reset_duration: Option<String>,
    #[serde(default)]
    request_max_limit: Option<f64>,
    #[serde(default)]
    request_reset_duration: Option<String>,
}

#[derive(Deserialize)]
struct WireOverride {
    mcp_client_id: String,
    tool_name: String,
    action: String,
}

fn budget(b: WireBudget) -> Budget {
    Budget {
        max_limit: b.max_limit,
        reset_duration: b.reset_duration,
        quarter_start_month: b
            .reset_config
            .and_then(|c| c.get("quarter_start_month").and_then(Value::as_u64))
            .map(|m| m as u8),
        scope: b.scope.unwrap_or_else(|| "total".into()),
        current_usage: b.current_usage.unwrap_or(0.0),
    }
}

fn rate(r: WireRate) -> RateLimit {
    RateLimit {
        token_max_limit: r.token_max_limit,
        token_reset_duration: r.token_reset_duration,
        request_max_limit: r.request_max_limit,
        request_reset_duration: r.request_reset_duration,
    }
}

pub(super) fn profile_from_wire(p: WireProfile) -> BifrostProfile {
    let mut providers: Vec<ProviderAccess> = p
        .provider_configs
        .unwrap_or_default()
        .into_iter()
        .map(|c| ProviderAccess {
            provider: c.provider_name,
            all_models_allowed: c.all_models_allowed,
            allowed_models: c.allowed_models.unwrap_or_default(),
            budgets: c
                .budgets
                .unwrap_or_default()
                .into_iter()
                .map(budget)
                .collect(),
            rate_limit: c.rate_limit.map(rate),
        })
        .collect();
    // SD-B9 variant: provider-scoped lines in the top-level list move to their provider.
    let mut top = Vec::new();
    for b in p.budgets.unwrap_or_default().into_iter().map(budget) {
        match b.scope.strip_prefix("provider:").map(str::to_string) {
            Some(name) => match providers.iter_mut().find(|c| c.provider == name) {
                Some(c) => c.budgets.push(b),
                None => top.push(b),
            },
            None => top.push(b),
        }
    }
    BifrostProfile {
        id: p.id,
        name: p.name,
        description: p.description,
        is_active: p.is_active,
        tags: p.tags.unwrap_or_default(),
        provider_configs: providers,
        budgets: top,
        rate_limit: p.rate_limit.map(rate),
        calendar_aligned: p.calendar_aligned.unwrap_or(false),
        auto_rotation_interval: p.auto_rotation_interval.unwrap_or(0),
        mcp_servers: p
            .mcp_servers
            .unwrap_or_default()
            .iter()
            .filter_map(|m| {
                m.get("mcp_server_id")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect(),
        mcp_tool_groups: p
            .mcp_tool_groups
            .unwrap_or_default()
            .iter()
            .filter_map(|g| g.get("tool_group_id").and_then(Value::as_i64))
            .collect(),
        mcp_tool_overrides: p
            .mcp_tool_overrides
            .unwrap_or_default()
            .into_iter()
            .map(|o| ToolOverride {
                mcp_client_id: o.mcp_client_id,
                tool_name: o.tool_name,
                action: o.action,
            })
            .collect(),
    }
}

/// What the stale-plan check compares for a Bifrost source: a digest of the profiles in id
/// order.
pub fn source_fingerprint(profiles: &[BifrostProfile]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<_> = profiles.iter().collect();
    sorted.sort_by_key(|p| p.id);
    hex::encode(Sha256::digest(
        serde_json::to_vec(&sorted).unwrap_or_default(),
    ))
}

/// The V2 create body of a planned virtual key: its item's name, activity and the
/// planner's grant, in Bifrost's fields.
pub fn create_body(item: &crate::model::StandaloneSpec) -> Result<Value> {
    let g = VirtualKeyGrant::deserialize(&item.grant)?;
    let budgets = |bs: &[BudgetGrant]| -> Vec<Value> {
        bs.iter()
            .map(|b| {
                let mut o = json!({ "max_limit": b.max_limit, "reset_duration": b.window });
                if let Some(m) = b.quarter_start_month {
                    o["reset_config"] = json!({ "quarter_start_month": m });
                }
                o
            })
            .collect()
    };
    let limit = |l: &LimitGrant| -> Value {
        let mut o = serde_json::Map::new();
        for (kind, w) in [("token", &l.tokens), ("request", &l.requests)] {
            if let Some(w) = w {
                o.insert(format!("{kind}_max_limit"), json!(w.max));
                o.insert(format!("{kind}_reset_duration"), json!(w.every));
            }
        }
        Value::Object(o)
    };
    let providers: Vec<Value> = g
        .providers
        .iter()
        .map(|p| {
            let mut o = json!({
                "provider": p.provider,
                "allowed_models": p.models,
                "key_ids": p.key_ids,
                "budgets": budgets(&p.budgets),
            });
            if let Some(l) = &p.rate_limit {
                o["rate_limit"] = limit(l);
            }
            o
        })
        .collect();
    let tools: Vec<Value> = g
        .tools
        .iter()
        .map(|t| json!({ "mcp_client_name": t.client, "tools_to_execute": t.tools }))
        .collect();
    let mut body = json!({
        "name": item.name,
        "description": g.description,
        "is_active": item.active,
        "provider_configs": providers,
        "budgets": budgets(&g.budgets),
        "calendar_aligned": g.calendar_aligned,
        "mcp_configs": tools,
        "metadata": g.labels,
    });
    if let Some(l) = &g.rate_limit {
        body["rate_limit"] = limit(l);
    }
    Ok(body)
}
