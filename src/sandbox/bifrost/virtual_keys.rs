//! Virtual-key routes V1–V6, the consumer-side quota call Q1 and the MCP-client list M1
//! (docs/sandbox-bifrost.md, SD-B5…SD-B14).
//!
//! What the emulation insists on, because keyshift must get each right:
//!
//! - **Secrets** — `value` is complete only in V2/V6 responses; every read masks it.
//! - **Deny by default** — omitted or empty `key_ids` grant no provider key
//!   (`allow_all_keys: false, keys: []`); `["*"]` grants all.
//! - **Unknown references** — unknown `key_ids` or `mcp_client_name` answer 400 with Bifrost's
//!   text (published-contract decision PC-B10; never a 5xx), and so does a provider config
//!   whose `provider` the instance has not configured (`invalid provider name: <name>`,
//!   PC-B16; the configured providers are those of the provider keys).
//! - **V4 is not a partial update** — omitting both `team_id` and `customer_id` clears the
//!   owner; `provider_configs`/`mcp_configs` reconcile (items with `id` update, items without
//!   create, missing ones are deleted; each item is the full desired state); `budgets`
//!   replace, matched by `reset_duration`; `rate_limit: {}` removes, a partial object merges;
//!   `metadata` replaces, `{}` clears. An empty body is refused (PC-B7), `null` too (PC-B8).
//! - **Rotation** — V6 mints a new value on the same id (inactive keys too); the old value
//!   stops passing Q1 after `rotation_lag_ms` (default at once).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::limits::{
    apply_rate_limit, check_rate_limit, parse_budgets, parse_rate_limit, reconcile_budgets, Owner,
    SUB_DAY,
};
use super::model::{
    fresh_vk_value, mask_value, uuid_v4, BifrostState, Budget, McpClient, ValueShown, VirtualKey,
    VkMcpConfig, VkProviderConfig,
};
use super::request::{
    as_array, as_bool, as_f64, as_i64, as_object, as_str, field, non_null, object_name, ok,
    opt_string, opt_string_list, parse_body, query_bool, query_int, BfError, BfResult, Page, Query,
    DEFAULT_LIMIT, MAX_LIMIT,
};
use super::{Ctx, Input};
use crate::sandbox::workato::model::StoredSecret;
use crate::sandbox::workato::request::Field;

pub const NAME_TAKEN: &str = "virtual key name already exists";
pub const NOT_FOUND: &str = "Virtual key not found";
pub const INVALID_VK: &str = "invalid virtual key";
/// Most metadata entries (SD-B8).
pub const MAX_METADATA: usize = 50;

fn not_found() -> BfError {
    BfError::not_found(NOT_FOUND)
}

fn vk_index(st: &BifrostState, ctx: &Ctx) -> Result<usize, BfError> {
    let id = ctx.param("vk_id").unwrap_or_default();
    st.virtual_keys
        .iter()
        .position(|k| k.id == id)
        .ok_or_else(not_found)
}

/// V1 `GET /api/governance/virtual-keys?limit=&offset=&search=&metadata_<key>=<value>`.
pub fn list(st: &mut BifrostState, _ctx: &Ctx, input: &Input) -> BfResult {
    query_bool(&input.query, "from_memory")?;
    let page = Page::from_query(&input.query)?;
    let search = input
        .query
        .get("search")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let meta: Vec<(&str, &str)> = input
        .query
        .pairs()
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("metadata_").map(|k| (k, v.as_str())))
        .collect();
    let items: Vec<Value> = st
        .virtual_keys
        .iter()
        .filter(|k| {
            search
                .as_deref()
                .is_none_or(|s| k.name.to_lowercase().contains(s))
        })
        .filter(|k| {
            meta.iter()
                .all(|(mk, mv)| k.metadata.get(*mk).is_some_and(|v| v == mv))
        })
        .map(|k| st.vk_wire(k, ValueShown::Masked))
        .collect();
    ok(page.envelope("virtual_keys", items))
}

/// V3 `GET /api/governance/virtual-keys/{vk_id}`.
pub fn get(st: &mut BifrostState, ctx: &Ctx, input: &Input) -> BfResult {
    query_bool(&input.query, "from_memory")?;
    let i = vk_index(st, ctx)?;
    ok(json!({"virtual_key": st.vk_wire(&st.virtual_keys[i], ValueShown::Masked)}))
}

/// V5 `DELETE /api/governance/virtual-keys/{vk_id}`.
pub fn delete(st: &mut BifrostState, ctx: &Ctx, _input: &Input) -> BfResult {
    let i = vk_index(st, ctx)?;
    let k = st.virtual_keys.remove(i);
    for u in st.user_profiles.values_mut() {
        u.virtual_key_ids.retain(|id| *id != k.id);
    }
    ok(json!({"message": "Virtual key deleted successfully"}))
}

/// V6 `POST /api/governance/virtual-keys/{vk_id}/rotate`: new value, same id.
pub fn rotate(st: &mut BifrostState, ctx: &Ctx, _input: &Input) -> BfResult {
    let i = vk_index(st, ctx)?;
    let value = fresh_vk_value(&mut rand::thread_rng());
    let k = &mut st.virtual_keys[i];
    let old = std::mem::replace(&mut k.value, StoredSecret::from_clear(value.clone()));
    let lag = Duration::milliseconds(ctx.cfg.rotation_lag_ms as i64);
    if lag > Duration::zero() {
        k.retired_values.push((old, ctx.now + lag));
    }
    k.retired_values.retain(|(_, until)| *until > ctx.now);
    k.masked = mask_value(&value);
    k.usable_from = ctx.now + Duration::milliseconds(ctx.cfg.propagation_delay_ms as i64);
    k.updated_at = ctx.now;
    let k = &st.virtual_keys[i];
    ok(json!({"message": "Virtual key rotated successfully",
              "virtual_key": st.vk_wire(k, ValueShown::Full)}))
}

/// Q1 `GET /api/governance/virtual-keys/quota`, authenticated by the key itself.
pub fn quota(st: &BifrostState, now: DateTime<Utc>, presented: Option<&str>) -> BfResult {
    let invalid = || BfError::new(axum::http::StatusCode::UNAUTHORIZED, INVALID_VK);
    let presented = presented.ok_or_else(invalid)?;
    let k = st
        .virtual_keys
        .iter()
        .find(|k| k.accepts(presented, now))
        .ok_or_else(invalid)?;
    if k.expires_at.is_some_and(|e| e <= now) {
        return Err(invalid());
    }
    ok(st.quota_wire(k))
}

/// A comma-separated filter value (`None` when absent or empty).
fn comma_list(q: &Query, key: &str) -> Option<Vec<String>> {
    let items: Vec<String> = q
        .get(key)?
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    (!items.is_empty()).then_some(items)
}

/// M1 `GET /api/mcp/clients` with the published filters: `search` (case-insensitive name
/// substring), `server` (exact `client_id`), `connection_type` and `auth_type` (comma lists,
/// OR), `state` (`healthy` = connected and enabled, `unstable` = everything else; both or
/// neither = no filter), `all_virtual_keys` (clients open to every key) ORed with
/// `virtual_keys` (clients assigned to any listed key id), `code_mode`, `disabled`.
/// `limit` is 1–100 (default 25) and `offset` ≥ 0 here; anything else → 400.
pub fn list_mcp_clients(st: &mut BifrostState, _ctx: &Ctx, input: &Input) -> BfResult {
    let q = &input.query;
    let int = |key: &str, min: i64, max: i64| -> Result<Option<i64>, BfError> {
        match query_int(q, key)? {
            Some(n) if !(min..=max).contains(&n) => Err(BfError::bad_request(format!(
                "invalid {key} parameter: {n} (expected an integer from {min} to {max})"
            ))),
            n => Ok(n),
        }
    };
    let limit = int("limit", 1, MAX_LIMIT as i64)?;
    let offset = int("offset", 0, i64::MAX)?;
    let page = Page {
        limit: match (limit, offset) {
            (None, None) => None,
            (l, _) => Some(l.map_or(DEFAULT_LIMIT, |l| l as usize)),
        },
        offset: offset.map_or(0, |o| usize::try_from(o).unwrap_or(usize::MAX)),
    };
    let search = q
        .get("search")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let server = q.get("server").map(str::trim).filter(|s| !s.is_empty());
    let connection_types = comma_list(q, "connection_type");
    let auth_types = comma_list(q, "auth_type");
    let states = comma_list(q, "state").unwrap_or_default();
    let want_healthy = states.iter().any(|s| s == "healthy");
    let want_unstable = states.iter().any(|s| s == "unstable");
    let all_vks = query_bool(q, "all_virtual_keys")?;
    let vk_ids = comma_list(q, "virtual_keys");
    let code_mode = query_bool(q, "code_mode")?;
    let disabled = query_bool(q, "disabled")?;
    let assigned = |c: &McpClient, ids: &[String]| {
        st.virtual_keys
            .iter()
            .filter(|k| ids.contains(&k.id))
            .any(|k| k.mcp_configs.iter().any(|m| m.mcp_client_id == c.id))
    };
    let items: Vec<Value> = st
        .mcp_clients
        .values()
        .filter(|c| {
            search
                .as_deref()
                .is_none_or(|s| c.name.to_lowercase().contains(s))
        })
        .filter(|c| server.is_none_or(|s| c.client_id == s))
        .filter(|c| {
            connection_types
                .as_ref()
                .is_none_or(|t| t.contains(&c.connection_type))
        })
        .filter(|c| auth_types.as_ref().is_none_or(|t| t.contains(&c.auth_type)))
        .filter(|c| want_healthy == want_unstable || c.healthy() == want_healthy)
        .filter(|c| match (all_vks, &vk_ids) {
            (None | Some(false), None) => true,
            (Some(true), None) => c.allow_on_all_virtual_keys,
            (None | Some(false), Some(ids)) => assigned(c, ids),
            (Some(true), Some(ids)) => c.allow_on_all_virtual_keys || assigned(c, ids),
        })
        .filter(|c| code_mode.is_none_or(|m| c.is_code_mode_client == m))
        .filter(|c| disabled.is_none_or(|d| c.disabled == d))
        .map(|c| st.mcp_wire(c))
        .collect();
    ok(page.envelope("clients", items))
}

/// Things that can only be checked against the store: unknown references are 400 with
/// Bifrost's texts (SD-B10, PC-B10).
struct Lookups<'a> {
    st: &'a BifrostState,
}

impl Lookups<'_> {
    /// PC-B16: a provider config may only name a provider the instance has configured.
    fn provider(&self, provider: &str) -> Result<(), BfError> {
        if self.st.has_provider(provider) {
            Ok(())
        } else {
            Err(BfError::bad_request(format!(
                "invalid provider name: {provider}"
            )))
        }
    }

    fn keys(&self, provider: &str, ids: &[String]) -> Result<(), BfError> {
        for id in ids {
            if self
                .st
                .provider_key(id)
                .is_none_or(|k| k.provider != provider)
            {
                return Err(BfError::bad_request(format!(
                    "failed to create provider config: key not found: {id}"
                )));
            }
        }
        Ok(())
    }

    fn mcp(&self, name: &str) -> Result<u64, BfError> {
        self.st
            .mcp_by_name(name)
            .map(|c| c.id)
            .ok_or_else(|| BfError::bad_request(format!("mcp client not found: {name}")))
    }
}

fn check_metadata(v: &Value) -> Result<BTreeMap<String, String>, BfError> {
    let o = as_object(v, "metadata")?;
    if o.len() > MAX_METADATA {
        return Err(BfError::bad_request(format!(
            "metadata can have at most {MAX_METADATA} entries (has {})",
            o.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (k, v) in o {
        let key_ok = !k.is_empty()
            && k.len() <= 256
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !key_ok {
            return Err(BfError::bad_request(format!(
                "invalid metadata key {k:?}: use 1-256 characters from [a-zA-Z0-9._-]"
            )));
        }
        let v = as_str(v, &format!("metadata.{k}"))?;
        if v.chars().count() > 512 {
            return Err(BfError::bad_request(format!(
                "metadata value for {k:?} is longer than 512 characters"
            )));
        }
        out.insert(k.clone(), v.to_owned());
    }
    Ok(out)
}

fn expires_at(v: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, BfError> {
    if v.is_empty() {
        return Ok(None);
    }
    let t = chrono::DateTime::parse_from_rfc3339(v)
        .map_err(|_| BfError::bad_request("expires_at must be an RFC 3339 date-time"))?
        .with_timezone(&Utc);
    if t <= now {
        return Err(BfError::bad_request("expires_at must be in the future"));
    }
    Ok(Some(t))
}

/// A Bifrost allow-list (`WhiteList`): `["*"]` = all, `[]` = none, `"*"` not mixed with
/// names, no blank or repeated entry. Models, tools and key ids all follow it.
fn check_list(items: &[String], path: &str, what: &str) -> Result<(), BfError> {
    if items.iter().any(|m| m == "*") && items.len() > 1 {
        return Err(BfError::bad_request(format!(
            "{path}: \"*\" cannot be combined with {what} names"
        )));
    }
    for (i, m) in items.iter().enumerate() {
        if m.trim().is_empty() {
            return Err(BfError::bad_request(format!(
                "{path}: {what} names cannot be empty"
            )));
        }
        if items[..i].contains(m) {
            return Err(BfError::bad_request(format!(
                "{path}: duplicate {what} {m:?}"
            )));
        }
    }
    Ok(())
}

/// What reconciling provider configs needs besides the item.
struct PcRules<'a> {
    lookups: &'a Lookups<'a>,
    /// The key's `calendar_aligned` (the default of its budget lines).
    aligned: bool,
    reset_usage: bool,
    now: DateTime<Utc>,
}

/// A provider config item as the full desired state. `existing` = the config its `id` names.
fn provider_config(
    o: &Map<String, Value>,
    path: &str,
    existing: Option<&VkProviderConfig>,
    rules: &PcRules,
    next_id: &mut dyn FnMut() -> u64,
) -> Result<VkProviderConfig, BfError> {
    let (lookups, vk_aligned, reset_usage, now) =
        (rules.lookups, rules.aligned, rules.reset_usage, rules.now);
    let provider = opt_string(o, "provider", path)?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| BfError::bad_request(format!("{path}.provider is required")))?;
    // `weight` is the one nullable field of a provider config (`null` = not weighted).
    let weight = match field(o, "weight") {
        Field::Set(v) => Some(as_f64(v, &format!("{path}.weight"))?),
        _ => None,
    };
    let allowed_models = opt_string_list(o, "allowed_models", path)?.unwrap_or_default();
    check_list(&allowed_models, &format!("{path}.allowed_models"), "model")?;
    let blacklisted_models = opt_string_list(o, "blacklisted_models", path)?.unwrap_or_default();
    check_list(
        &blacklisted_models,
        &format!("{path}.blacklisted_models"),
        "model",
    )?;
    let key_ids = opt_string_list(o, "key_ids", path)?.unwrap_or_default();
    check_list(&key_ids, &format!("{path}.key_ids"), "key")?;
    let allow_all_keys = key_ids.iter().any(|k| k == "*");
    let key_ids = if allow_all_keys { Vec::new() } else { key_ids };
    let budgets = match non_null(o, "budgets", path)? {
        Some(v) => {
            let input = parse_budgets(v, &format!("{path}.budgets"), Owner::VirtualKey)?;
            reconcile_budgets(
                input,
                existing.map_or(&[][..], |e| &e.budgets),
                Owner::VirtualKey,
                None,
                vk_aligned,
                reset_usage,
                now,
            )
        }
        None => Vec::new(),
    };
    let rate_limit = match non_null(o, "rate_limit", path)? {
        Some(v) => {
            let rp = format!("{path}.rate_limit");
            let input = parse_rate_limit(v, &rp, Owner::VirtualKey)?;
            if input.is_empty() {
                None
            } else {
                let rl = apply_rate_limit(
                    input,
                    existing.and_then(|e| e.rate_limit.as_ref()),
                    false,
                    now,
                );
                check_rate_limit(&rl, &rp)?;
                Some(rl)
            }
        }
        None => None,
    };
    lookups.provider(&provider)?;
    lookups.keys(&provider, &key_ids)?;
    Ok(VkProviderConfig {
        id: existing.map_or_else(&mut *next_id, |e| e.id),
        provider,
        weight,
        allowed_models,
        blacklisted_models,
        allow_all_keys,
        key_ids,
        budgets,
        rate_limit,
    })
}

/// The entry of `current` that an item's `id` names (V4 updates it in place); `None` when the
/// item has no id (a new entry).
fn existing_by_id<'c, C>(
    o: &serde_json::Map<String, Value>,
    path: &str,
    current: &'c [C],
    id_of: impl Fn(&C) -> u64,
    what: &str,
) -> Result<Option<&'c C>, BfError> {
    let Some(id) = non_null(o, "id", path)? else {
        return Ok(None);
    };
    let id = as_i64(id, &format!("{path}.id"))?;
    current
        .iter()
        .find(|c| i64::try_from(id_of(c)) == Ok(id))
        .map(Some)
        .ok_or_else(|| {
            BfError::bad_request(format!(
                "{path}.id: {what} {id} not found on this virtual key"
            ))
        })
}

/// `provider_configs` (create, or V4's reconcile against `current`).
fn provider_configs(
    v: &Value,
    current: &[VkProviderConfig],
    rules: &PcRules,
    next_id: &mut dyn FnMut() -> u64,
) -> Result<Vec<VkProviderConfig>, BfError> {
    let items = as_array(v, "provider_configs")?;
    let mut out: Vec<VkProviderConfig> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("provider_configs[{i}]");
        let o = as_object(item, &path)?;
        let existing = existing_by_id(o, &path, current, |c| c.id, "provider config")?;
        let pc = provider_config(o, &path, existing, rules, next_id)?;
        if out.iter().any(|c| c.provider == pc.provider) {
            return Err(BfError::bad_request(format!(
                "duplicate provider {:?} in provider_configs",
                pc.provider
            )));
        }
        out.push(pc);
    }
    Ok(out)
}

/// `mcp_configs` (create, or V4's reconcile against `current`).
fn mcp_configs(
    v: &Value,
    current: &[VkMcpConfig],
    lookups: &Lookups,
    next_id: &mut dyn FnMut() -> u64,
) -> Result<Vec<VkMcpConfig>, BfError> {
    let items = as_array(v, "mcp_configs")?;
    let mut parsed = Vec::with_capacity(items.len());
    let mut names: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("mcp_configs[{i}]");
        let o = as_object(item, &path)?;
        let existing = existing_by_id(o, &path, current, |c| c.id, "mcp config")?;
        let name = opt_string(o, "mcp_client_name", &path)?.filter(|s| !s.trim().is_empty());
        if name.is_none() && existing.is_none() {
            return Err(BfError::bad_request(format!(
                "{path}.mcp_client_name is required"
            )));
        }
        if let Some(n) = &name {
            if names.contains(n) {
                return Err(BfError::bad_request(format!(
                    "duplicate mcp_client_name {n:?} in mcp_configs"
                )));
            }
            names.push(n.clone());
        }
        let tools = opt_string_list(o, "tools_to_execute", &path)?.unwrap_or_default();
        check_list(&tools, &format!("{path}.tools_to_execute"), "tool")?;
        parsed.push((existing, name, tools));
    }
    let mut out: Vec<VkMcpConfig> = Vec::with_capacity(parsed.len());
    for (existing, name, tools) in parsed {
        let client = match (&name, existing) {
            (Some(n), _) => lookups.mcp(n)?,
            (None, Some(e)) => e.mcp_client_id,
            (None, None) => continue,
        };
        if out.iter().any(|c| c.mcp_client_id == client) {
            return Err(BfError::bad_request(
                "duplicate mcp client in mcp_configs".to_owned(),
            ));
        }
        out.push(VkMcpConfig {
            id: existing.map_or_else(&mut *next_id, |e| e.id),
            mcp_client_id: client,
            tools_to_execute: tools,
        });
    }
    Ok(out)
}

/// SD-B9: calendar-aligned budgets cannot reset more often than daily.
fn check_alignment(k: &VirtualKey) -> Result<(), BfError> {
    if !k.calendar_aligned {
        return Ok(());
    }
    let all = k
        .budgets
        .iter()
        .chain(k.provider_configs.iter().flat_map(|pc| pc.budgets.iter()));
    let short: Vec<&Budget> = all
        .filter(|b| SUB_DAY.contains(&b.reset_duration.as_str()))
        .collect();
    match short.first() {
        Some(b) => Err(BfError::bad_request(format!(
            "calendar_aligned cannot be used with a budget reset_duration of {}",
            b.reset_duration
        ))),
        None => Ok(()),
    }
}

fn check_owner(team: &Option<String>, customer: &Option<String>) -> Result<(), BfError> {
    if team.is_some() && customer.is_some() {
        return Err(BfError::bad_request(
            "a virtual key cannot belong to both a team and a customer",
        ));
    }
    Ok(())
}

fn name_taken(st: &BifrostState, name: &str, except: Option<&str>) -> bool {
    st.virtual_keys
        .iter()
        .any(|k| k.name == name && Some(k.id.as_str()) != except)
}

/// V2 `POST /api/governance/virtual-keys` → 200 with the full secret.
pub fn create(st: &mut BifrostState, ctx: &Ctx, input: &Input) -> BfResult {
    let body = parse_body(&input.body)?;
    let now = ctx.now;
    let name = match non_null(&body, "name", "")? {
        Some(v) => object_name(v)?,
        None => return Err(BfError::bad_request("name is required")),
    };
    let description = opt_string(&body, "description", "")?.unwrap_or_default();
    let is_active = match non_null(&body, "is_active", "")? {
        Some(v) => as_bool(v, "is_active")?,
        None => true,
    };
    let team_id = opt_string(&body, "team_id", "")?;
    let customer_id = opt_string(&body, "customer_id", "")?;
    check_owner(&team_id, &customer_id)?;
    let calendar_aligned = match non_null(&body, "calendar_aligned", "")? {
        Some(v) => as_bool(v, "calendar_aligned")?,
        None => false,
    };
    let budgets = match non_null(&body, "budgets", "")? {
        Some(v) => reconcile_budgets(
            parse_budgets(v, "budgets", Owner::VirtualKey)?,
            &[],
            Owner::VirtualKey,
            None,
            calendar_aligned,
            false,
            now,
        ),
        None => Vec::new(),
    };
    let rate_limit = match non_null(&body, "rate_limit", "")? {
        Some(v) => {
            let input = parse_rate_limit(v, "rate_limit", Owner::VirtualKey)?;
            if input.is_empty() {
                None
            } else {
                let rl = apply_rate_limit(input, None, false, now);
                check_rate_limit(&rl, "rate_limit")?;
                Some(rl)
            }
        }
        None => None,
    };
    let expires = match opt_string(&body, "expires_at", "")? {
        Some(s) => expires_at(&s, now)?,
        None => None,
    };
    let metadata = match non_null(&body, "metadata", "")? {
        Some(v) => check_metadata(v)?,
        None => BTreeMap::new(),
    };
    let mut seq = st.seq.clone();
    let lookups = Lookups { st };
    let pcs = match non_null(&body, "provider_configs", "")? {
        Some(v) => {
            let mut next = || seq.next_vk_provider_config();
            let rules = PcRules {
                lookups: &lookups,
                aligned: calendar_aligned,
                reset_usage: false,
                now,
            };
            provider_configs(v, &[], &rules, &mut next)?
        }
        None => Vec::new(),
    };
    let mcps = match non_null(&body, "mcp_configs", "")? {
        Some(v) => {
            let mut next = || seq.next_vk_mcp_config();
            mcp_configs(v, &[], &lookups, &mut next)?
        }
        None => Vec::new(),
    };
    let value = fresh_vk_value(&mut rand::thread_rng());
    let k = VirtualKey {
        seq: seq.next_vk(),
        id: uuid_v4(&mut rand::thread_rng()),
        name,
        masked: mask_value(&value),
        value: StoredSecret::from_clear(value),
        description,
        is_active,
        provider_configs: pcs,
        mcp_configs: mcps,
        team_id,
        customer_id,
        budgets,
        rate_limit,
        calendar_aligned,
        expires_at: expires,
        metadata,
        created_by_user_id: None,
        is_access_profile_managed: false,
        created_at: now,
        updated_at: now,
        usable_from: now + Duration::milliseconds(ctx.cfg.propagation_delay_ms as i64),
        retired_values: Vec::new(),
    };
    check_alignment(&k)?;
    if name_taken(st, &k.name, None) {
        return Err(BfError::conflict(NAME_TAKEN));
    }
    st.seq = seq;
    let wire = st.vk_wire(&k, ValueShown::Full);
    st.virtual_keys.push(k);
    ok(json!({"message": "Virtual key created successfully", "virtual_key": wire}))
}

/// Fields a profile-managed key accepts on V4 (SD-B12).
const MANAGED_EDITABLE: &[&str] = &["name", "description"];

/// V4 `PUT /api/governance/virtual-keys/{vk_id}` (see the module doc for its semantics).
pub fn update(st: &mut BifrostState, ctx: &Ctx, input: &Input) -> BfResult {
    let i = vk_index(st, ctx)?;
    let body = parse_body(&input.body)?;
    let now = ctx.now;
    let current = &st.virtual_keys[i];
    if current.is_access_profile_managed {
        if let Some(k) = body
            .iter()
            .find(|(k, v)| !v.is_null() && !MANAGED_EDITABLE.contains(&k.as_str()))
            .map(|(k, _)| k)
        {
            return Err(BfError::bad_request(format!(
                "virtual keys managed by an access profile only accept name and description \
                 changes (got {k})"
            )));
        }
    }
    let mut k = current.clone();
    if let Some(v) = non_null(&body, "name", "")? {
        k.name = object_name(v)?;
    }
    if let Some(d) = opt_string(&body, "description", "")? {
        k.description = d;
    }
    if let Some(v) = non_null(&body, "is_active", "")? {
        k.is_active = as_bool(v, "is_active")?;
    }
    if !k.is_access_profile_managed {
        // Both omitted → both cleared: the owner must be re-sent on every PUT.
        let team_id = opt_string(&body, "team_id", "")?;
        let customer_id = opt_string(&body, "customer_id", "")?;
        check_owner(&team_id, &customer_id)?;
        k.team_id = team_id;
        k.customer_id = customer_id;
    }
    if let Some(v) = non_null(&body, "calendar_aligned", "")? {
        k.calendar_aligned = as_bool(v, "calendar_aligned")?;
    }
    let reset_usage = match non_null(&body, "reset_budget_usage", "")? {
        Some(v) => as_bool(v, "reset_budget_usage")?,
        None => false,
    };
    if let Some(v) = non_null(&body, "budgets", "")? {
        let input = parse_budgets(v, "budgets", Owner::VirtualKey)?;
        k.budgets = reconcile_budgets(
            input,
            &k.budgets,
            Owner::VirtualKey,
            None,
            k.calendar_aligned,
            reset_usage,
            now,
        );
    }
    if let Some(v) = non_null(&body, "rate_limit", "")? {
        let input = parse_rate_limit(v, "rate_limit", Owner::VirtualKey)?;
        if input.is_empty() {
            k.rate_limit = None;
        } else {
            let rl = apply_rate_limit(input, k.rate_limit.as_ref(), true, now);
            check_rate_limit(&rl, "rate_limit")?;
            k.rate_limit = Some(rl);
        }
    }
    if let Some(v) = non_null(&body, "metadata", "")? {
        k.metadata = check_metadata(v)?;
    }
    if let Some(s) = opt_string(&body, "expires_at", "")? {
        k.expires_at = expires_at(&s, now)?;
    }
    let mut seq = st.seq.clone();
    let lookups = Lookups { st };
    if let Some(v) = non_null(&body, "provider_configs", "")? {
        let mut next = || seq.next_vk_provider_config();
        let rules = PcRules {
            lookups: &lookups,
            aligned: k.calendar_aligned,
            reset_usage,
            now,
        };
        k.provider_configs = provider_configs(v, &k.provider_configs, &rules, &mut next)?;
    }
    if let Some(v) = non_null(&body, "mcp_configs", "")? {
        let mut next = || seq.next_vk_mcp_config();
        k.mcp_configs = mcp_configs(v, &k.mcp_configs, &lookups, &mut next)?;
    }
    check_alignment(&k)?;
    if name_taken(st, &k.name, Some(&k.id)) {
        return Err(BfError::conflict(NAME_TAKEN));
    }
    k.updated_at = now;
    st.seq = seq;
    let wire = st.vk_wire(&k, ValueShown::Masked);
    st.virtual_keys[i] = k;
    ok(json!({"message": "Virtual key updated successfully", "virtual_key": wire}))
}
