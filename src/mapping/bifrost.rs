//! Bifrost access profiles → standalone virtual keys (specs/bifrost.md §6, contract §10).
//! One key per profile (shared counters), or one per profile holder (isolated counters, as
//! profiles behave). Pure: inventory + mapping in, plan out.

use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

use super::engine::EXCLUDED_FIELD;
use super::{render, Mapping, Subject};
use crate::model::{
    BifrostProfile, Budget, Finding, FindingKind, Inventory, ItemSpec, Plan, RateLimit,
};

const VENDOR: &str = "bifrost";
const WS: &str = crate::providers::bifrost::WORKSPACE;
/// Metadata holds at most 50 entries; keyshift keeps two (`keyshift.source`, `keyshift.holder`).
const MAX_TAGS: usize = 48;

fn finding(
    p: &BifrostProfile,
    kind: FindingKind,
    field: &str,
    found: String,
    fix: &str,
) -> Finding {
    Finding {
        kind,
        vendor: VENDOR.into(),
        workspace: WS.into(),
        object_kind: "profile".into(),
        object_id: p.id.to_string(),
        object_name: p.name.clone(),
        field: field.into(),
        found,
        fix: fix.into(),
    }
}

pub fn marker(profile_id: i64, holder: Option<&str>) -> String {
    match holder {
        None => format!("keyshift:{VENDOR}:{WS}:profile:{profile_id}"),
        Some(h) => format!("keyshift:{VENDOR}:{WS}:profile:{profile_id}:holder:{h}"),
    }
}

/// `taken_by_others`: names of virtual keys that exist and are not ours (names are unique).
pub fn plan(
    inv: &Inventory,
    mapping: &Mapping,
    holders_from_file: &[String],
    taken_by_others: &[String],
) -> Plan {
    let b = mapping.file.bifrost.clone().unwrap_or_default();
    let per_holder = b.mode == "per_holder";
    let mcp: HashMap<&str, &crate::model::McpClient> = inv
        .mcp_clients
        .iter()
        .map(|m| (m.client_id.as_str(), m))
        .collect();
    let mut holders: Vec<String> = b.holders.clone();
    holders.extend(holders_from_file.iter().cloned());
    let mut findings = Vec::new();
    let mut items = Vec::new();
    let others: HashSet<&str> = taken_by_others.iter().map(String::as_str).collect();
    let mut taken: HashSet<String> = HashSet::new();
    let mut profiles: Vec<&BifrostProfile> = inv.bifrost_profiles.iter().collect();
    profiles.sort_by_key(|p| p.id);
    let duplicate_names: HashSet<&str> = {
        let mut seen = HashSet::new();
        profiles
            .iter()
            .filter(|p| !seen.insert(p.name.as_str()))
            .map(|p| p.name.as_str())
            .collect()
    };
    for p in profiles {
        let subject = Subject {
            workspace: WS,
            workspace_external_id: None,
            client_id: 0,
            client_name: "",
            profile_id: p.id,
            profile_name: &p.name,
            auth_type: "",
        };
        if let Some(reason) = mapping.file.filters.excludes(&subject) {
            findings.push(finding(
                p,
                FindingKind::Advice,
                EXCLUDED_FIELD,
                reason,
                "nothing to do, or change [filters]",
            ));
            continue;
        }
        let mut blocked = false;
        // MCP access: servers, include overrides, exclude overrides (enumerated, lossy).
        let mut mcp_configs: Vec<Value> = Vec::new();
        let mut clients: Vec<&str> = p.mcp_servers.iter().map(String::as_str).collect();
        for o in &p.mcp_tool_overrides {
            if !clients.contains(&o.mcp_client_id.as_str()) {
                clients.push(&o.mcp_client_id);
            }
        }
        for client_id in clients {
            let Some(client) = mcp.get(client_id) else {
                findings.push(finding(
                    p,
                    FindingKind::Blocker,
                    "mcp_servers",
                    format!("MCP client {client_id:?} does not exist"),
                    "remove it from the profile or add the MCP client, then export again",
                ));
                blocked = true;
                continue;
            };
            let overrides: Vec<_> = p
                .mcp_tool_overrides
                .iter()
                .filter(|o| o.mcp_client_id == client_id)
                .collect();
            let excluded: HashSet<&str> = overrides
                .iter()
                .filter(|o| o.action == "exclude")
                .map(|o| o.tool_name.as_str())
                .collect();
            let included: Vec<&str> = overrides
                .iter()
                .filter(|o| o.action == "include")
                .map(|o| o.tool_name.as_str())
                .collect();
            let whole = p.mcp_servers.iter().any(|s| s == client_id);
            let tools: Vec<String> = if !excluded.is_empty() {
                findings.push(finding(
                    p,
                    FindingKind::Lossy,
                    "mcp_tool_overrides",
                    format!(
                        "exclude overrides on {:?} are carried by listing its other tools ({}); tools added to it later are not granted",
                        client.name,
                        client.tools.len() - excluded.len().min(client.tools.len())
                    ),
                    "review the tool list after adding tools to the MCP client",
                ));
                client
                    .tools
                    .iter()
                    .filter(|t| !excluded.contains(t.as_str()))
                    .cloned()
                    .collect()
            } else if whole {
                vec!["*".to_string()]
            } else {
                included.iter().map(|t| t.to_string()).collect()
            };
            mcp_configs.push(json!({ "mcp_client_name": client.name, "tools_to_execute": tools }));
        }
        if blocked {
            continue;
        }
        // Findings the contract settles.
        if !p.mcp_tool_groups.is_empty() {
            findings.push(finding(
                p,
                FindingKind::Manual,
                "mcp_tool_groups",
                format!(
                    "{} MCP tool group(s) cannot be attached to a virtual key by the API",
                    p.mcp_tool_groups.len()
                ),
                "attach the equivalent Virtual MCP to the new key by hand",
            ));
        }
        if p.auto_rotation_interval > 0 {
            findings.push(finding(
                p,
                FindingKind::Lossy,
                "auto_rotation_interval",
                "scheduled rotation has no virtual-key equivalent".into(),
                "rotate the key on a schedule yourself (keyshift or the API's rotate call)",
            ));
        }
        let usage = p
            .budgets
            .iter()
            .chain(p.provider_configs.iter().flat_map(|c| c.budgets.iter()))
            .any(|x| x.current_usage > 0.0);
        if usage {
            findings.push(finding(
                p,
                FindingKind::Lossy,
                "budgets",
                "usage counters restart at zero on the new key".into(),
                "nothing to do; budgets start fresh",
            ));
        }
        if p.rate_limit.is_none() {
            findings.push(finding(
                p,
                FindingKind::Carried,
                "rate_limit",
                "rate_limit is null: the virtual key gets no key-level rate limit".into(),
                "nothing to do",
            ));
        }
        if p.provider_configs.len() > 100 || p.budgets.len() > 100 || p.tags.len() > 50 {
            findings.push(finding(
                p,
                FindingKind::Advice,
                "provider_configs",
                format!(
                    "over the update size limits ({} provider configs, {} budgets, {} tags; limits 100/100/50): the profile cannot be updated until trimmed",
                    p.provider_configs.len(), p.budgets.len(), p.tags.len()
                ),
                "nothing blocks the migration (keyshift only reads and deactivates profiles)",
            ));
        }
        let sub_day = p
            .budgets
            .iter()
            .chain(p.provider_configs.iter().flat_map(|c| c.budgets.iter()))
            .any(|x| {
                x.reset_duration == "1h"
                    || x.reset_duration.ends_with('s')
                    || x.reset_duration.ends_with('m')
            });
        let calendar_aligned = if p.calendar_aligned && sub_day {
            findings.push(finding(
                p,
                FindingKind::Transformed,
                "calendar_aligned",
                "calendar alignment is invalid with sub-day budgets on a virtual key".into(),
                "sent as false",
            ));
            false
        } else {
            p.calendar_aligned
        };
        let (tags, dropped) = tag_metadata(&p.tags);
        if dropped > 0 {
            findings.push(finding(
                p,
                FindingKind::Lossy,
                "tags",
                format!(
                    "{dropped} tag(s) cannot be kept (metadata holds 48 tags, keys [a-zA-Z0-9._-])"
                ),
                "keep them elsewhere if they matter",
            ));
        }
        let provider_configs: Vec<Value> = p
            .provider_configs
            .iter()
            .map(|c| {
                let mut o = json!({
                    "provider": c.provider,
                    "allowed_models": if c.all_models_allowed { vec!["*".to_string()] } else { c.allowed_models.clone() },
                    "key_ids": b.key_ids,
                    "budgets": c.budgets.iter().map(budget_json).collect::<Vec<_>>(),
                });
                if let Some(r) = &c.rate_limit {
                    o["rate_limit"] = rate_json(r);
                }
                o
            })
            .collect();
        let holders_of_p: Vec<Option<&str>> = if per_holder {
            inv.holdings
                .iter()
                .filter(|h| h.profile_id == p.id && holders.contains(&h.user_id))
                .map(|h| Some(h.user_id.as_str()))
                .collect()
        } else {
            vec![None]
        };
        if per_holder && holders_of_p.is_empty() {
            findings.push(finding(
                p,
                FindingKind::Advice,
                "holders",
                "none of the named holders holds this profile".into(),
                "nothing to migrate per holder; add holders to [bifrost] if someone is missing",
            ));
        }
        for holder in holders_of_p {
            let id_s = p.id.to_string();
            let mut name = match holder {
                None => render(&b.name, &[("profile.name", &p.name), ("profile.id", &id_s)]),
                Some(h) => render(
                    &b.name_per_holder,
                    &[
                        ("profile.name", &p.name),
                        ("profile.id", &id_s),
                        ("holder", h),
                    ],
                ),
            };
            let clash = if others.contains(name.as_str()) {
                Some(format!(
                    "a virtual key named {name:?} already exists; names are unique"
                ))
            } else if duplicate_names.contains(p.name.as_str()) || taken.contains(&name) {
                Some(format!(
                    "another access profile is also named {:?}; virtual key names are unique",
                    p.name
                ))
            } else {
                None
            };
            taken.insert(name.clone());
            if let Some(why) = clash {
                let renamed = format!("{name} ({})", p.id);
                findings.push(finding(
                    p,
                    FindingKind::Transformed,
                    "name",
                    why,
                    &format!("the key is named {renamed:?}"),
                ));
                name = renamed;
                taken.insert(name.clone());
            }
            let source = marker(p.id, holder);
            let mut metadata: Map<String, Value> = tags.clone();
            metadata.insert("keyshift.source".into(), json!(source));
            if let Some(h) = holder {
                metadata.insert("keyshift.holder".into(), json!(h));
            }
            let description = match &p.description {
                Some(d) if !d.is_empty() => format!("{source} — {d}"),
                _ => format!(
                    "{source} — migrated by keyshift from access profile {} {:?}",
                    p.id, p.name
                ),
            };
            let mut body = json!({
                "name": name,
                "description": description,
                "is_active": p.is_active,
                "provider_configs": provider_configs,
                "budgets": p.budgets.iter().map(budget_json).collect::<Vec<_>>(),
                "calendar_aligned": calendar_aligned,
                "mcp_configs": mcp_configs,
                "metadata": metadata,
            });
            if let Some(r) = &p.rate_limit {
                body["rate_limit"] = rate_json(r);
            }
            items.push(ItemSpec {
                source,
                workspace: WS.into(),
                profile_id: p.id.to_string(),
                profile_name: p.name.clone(),
                holder: holder.map(String::from),
                name,
                active: p.is_active,
                body,
            });
        }
    }
    Plan {
        clients: Vec::new(),
        items,
        findings,
    }
}

fn budget_json(b: &Budget) -> Value {
    let mut o = json!({ "max_limit": b.max_limit, "reset_duration": b.reset_duration });
    if let (Some(m), "1Q") = (b.quarter_start_month, b.reset_duration.as_str()) {
        o["reset_config"] = json!({ "quarter_start_month": m });
    }
    o
}

/// Virtual-key limits are integers: floor.
fn rate_json(r: &RateLimit) -> Value {
    let mut o = Map::new();
    if let Some(t) = r.token_max_limit {
        o.insert("token_max_limit".into(), json!(t.floor() as i64));
        o.insert(
            "token_reset_duration".into(),
            json!(r
                .token_reset_duration
                .clone()
                .unwrap_or_else(|| "1d".into())),
        );
    }
    if let Some(q) = r.request_max_limit {
        o.insert("request_max_limit".into(), json!(q.floor() as i64));
        o.insert(
            "request_reset_duration".into(),
            json!(r
                .request_reset_duration
                .clone()
                .unwrap_or_else(|| "1h".into())),
        );
    }
    Value::Object(o)
}

/// Tags → `tag.<tag>: "1"`; at most 48, keys limited to `[a-zA-Z0-9._-]`.
fn tag_metadata(tags: &[String]) -> (Map<String, Value>, usize) {
    let mut out = Map::new();
    let mut dropped = 0;
    for t in tags {
        let ok = !t.is_empty()
            && t.len() <= 250
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if ok && out.len() < MAX_TAGS {
            out.insert(format!("tag.{t}"), json!("1"));
        } else {
            dropped += 1;
        }
    }
    (out, dropped)
}
