//! Access-profile routes A1–A6 (and profile delete), and the per-user copies route U1
//! (docs/sandbox-bifrost.md, SD-B4, SD-B7, SD-B15).
//!
//! Create (A5) takes any sizes and answers 201; update (A6) is a true partial update — absent
//! keeps, `null` clears — and refuses a result over 100 provider configs, 100 budgets or 50
//! tags, even when the request did not touch those lists (a profile created over them cannot
//! be updated until trimmed). `id`, `is_active`, `version` and timestamps in a body are
//! ignored. Activate/deactivate are idempotent and only bump `version` on a change.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::limits::{
    apply_rate_limit, check_rate_limit, parse_budgets, parse_rate_limit, reconcile_budgets, Owner,
};
use super::model::{AccessProfile, ApProviderConfig, BifrostSeq, BifrostState, ToolOverride};
use super::request::{
    as_array, as_bool, as_i64, as_object, as_str, field, non_null, object_name, ok, parse_body,
    query_bool, string_list, BfError, BfResult, Page,
};
use super::{Ctx, Input};
use crate::sandbox::clock::parse_instant;
use crate::sandbox::workato::request::Field;

/// Update limits (docs/sandbox-bifrost.md, "Access profiles").
pub const MAX_PROVIDER_CONFIGS: usize = 100;
pub const MAX_BUDGETS: usize = 100;
pub const MAX_TAGS: usize = 50;

pub const NAME_TAKEN: &str = "access profile name already exists";

fn profile_id(ctx: &Ctx) -> Result<u64, BfError> {
    ctx.param("profile_id")
        .and_then(|s| s.parse().ok())
        .ok_or_else(not_found)
}

fn not_found() -> BfError {
    BfError::not_found("access profile not found")
}

/// A1 `GET /api/governance/access-profiles?limit=&offset=&search=&tags=&is_active=`.
///
/// `search`: case-insensitive substring of the name; `tags`: comma-separated, a profile
/// matches when it has every listed tag; `is_active`: `true`/`false`.
pub fn list(st: &mut BifrostState, _ctx: &Ctx, input: &Input) -> BfResult {
    let page = Page::from_query(&input.query)?;
    let search = input
        .query
        .get("search")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let tags: Vec<&str> = input
        .query
        .get("tags")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let active = query_bool(&input.query, "is_active")?;
    let items: Vec<Value> = st
        .profiles
        .values()
        .filter(|p| {
            search
                .as_deref()
                .is_none_or(|s| p.name.to_lowercase().contains(s))
        })
        .filter(|p| tags.iter().all(|t| p.tags.iter().any(|pt| pt == t)))
        .filter(|p| active.is_none_or(|a| p.is_active == a))
        .map(AccessProfile::wire)
        .collect();
    ok(page.envelope("access_profiles", items))
}

/// A2 `GET /api/governance/access-profiles/{profile_id}`.
pub fn get(st: &mut BifrostState, ctx: &Ctx, _input: &Input) -> BfResult {
    let id = profile_id(ctx)?;
    let p = st.profiles.get(&id).ok_or_else(not_found)?;
    ok(json!({"access_profile": p.wire(), "roles": p.roles_wire(),
              "user_count": st.user_count(id)}))
}

fn set_active(st: &mut BifrostState, ctx: &Ctx, active: bool) -> BfResult {
    let id = profile_id(ctx)?;
    let p = st.profiles.get_mut(&id).ok_or_else(not_found)?;
    if p.is_active != active {
        p.is_active = active;
        p.version += 1;
        p.updated_at = ctx.now;
    }
    ok(json!({ "access_profile": p.wire() }))
}

/// A3 `PUT …/{profile_id}/deactivate` (idempotent).
pub fn deactivate(st: &mut BifrostState, ctx: &Ctx, _input: &Input) -> BfResult {
    set_active(st, ctx, false)
}

/// A4 `PUT …/{profile_id}/activate` (idempotent).
pub fn activate(st: &mut BifrostState, ctx: &Ctx, _input: &Input) -> BfResult {
    set_active(st, ctx, true)
}

fn name_taken(st: &BifrostState, name: &str, except: Option<u64>) -> bool {
    st.profiles
        .values()
        .any(|p| p.name == name && Some(p.id) != except)
}

/// A5 `POST /api/governance/access-profiles` → 201. New profiles are inactive.
pub fn create(st: &mut BifrostState, ctx: &Ctx, input: &Input) -> BfResult {
    let body = parse_body(&input.body)?;
    if non_null(&body, "name", "")?.is_none() {
        return Err(BfError::bad_request("name is required"));
    }
    let mut seq = st.seq.clone();
    let mut p = AccessProfile {
        id: 0,
        name: String::new(),
        description: None,
        is_active: false,
        version: 1,
        tags: Vec::new(),
        provider_configs: Vec::new(),
        budgets: Vec::new(),
        rate_limit: None,
        calendar_aligned: false,
        auto_rotation_interval: 0,
        next_rotation_at: None,
        last_rotation_at: None,
        mcp_tool_groups: Vec::new(),
        mcp_servers: Vec::new(),
        mcp_tool_overrides: Vec::new(),
        roles: Vec::new(),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    apply_fields(&mut p, &body, &mut seq, ctx.now, Mode::Create)?;
    if name_taken(st, &p.name, None) {
        return Err(BfError::conflict(NAME_TAKEN));
    }
    p.id = seq.next_profile();
    st.seq = seq;
    let wire = p.wire();
    st.profiles.insert(p.id, p);
    Ok((StatusCode::CREATED, json!({ "access_profile": wire })))
}

/// A6 `PUT /api/governance/access-profiles/{profile_id}`: partial update.
pub fn update(st: &mut BifrostState, ctx: &Ctx, input: &Input) -> BfResult {
    let id = profile_id(ctx)?;
    let body = parse_body(&input.body)?;
    let current = st.profiles.get(&id).ok_or_else(not_found)?;
    let mut p = current.clone();
    let mut seq = st.seq.clone();
    apply_fields(&mut p, &body, &mut seq, ctx.now, Mode::Update)?;
    if p.provider_configs.len() > MAX_PROVIDER_CONFIGS {
        return Err(BfError::bad_request(format!(
            "an access profile can have at most {MAX_PROVIDER_CONFIGS} provider configs (has {})",
            p.provider_configs.len()
        )));
    }
    if p.budgets.len() > MAX_BUDGETS {
        return Err(BfError::bad_request(format!(
            "an access profile can have at most {MAX_BUDGETS} budgets (has {})",
            p.budgets.len()
        )));
    }
    if p.tags.len() > MAX_TAGS {
        return Err(BfError::bad_request(format!(
            "an access profile can have at most {MAX_TAGS} tags (has {})",
            p.tags.len()
        )));
    }
    if p.name != current.name && name_taken(st, &p.name, Some(id)) {
        return Err(BfError::conflict(NAME_TAKEN));
    }
    if p != *current {
        p.version += 1;
        p.updated_at = ctx.now;
    }
    st.seq = seq;
    let wire = p.wire();
    st.profiles.insert(id, p);
    ok(json!({ "access_profile": wire }))
}

/// `DELETE /api/governance/access-profiles/{profile_id}`: 409 while user copies exist.
pub fn delete(st: &mut BifrostState, ctx: &Ctx, _input: &Input) -> BfResult {
    let id = profile_id(ctx)?;
    if !st.profiles.contains_key(&id) {
        return Err(not_found());
    }
    let copies = st.user_count(id);
    if copies > 0 {
        return Err(BfError::conflict(format!(
            "access profile is assigned to {copies} user(s); remove the assignments first"
        )));
    }
    st.profiles.remove(&id);
    ok(json!({"message": "Access profile deleted successfully"}))
}

/// U1 `GET /api/governance/users/{user_id}/access-profiles` (unknown user → `[]`).
pub fn user_profiles(st: &mut BifrostState, ctx: &Ctx, _input: &Input) -> BfResult {
    let user = ctx.param("user_id").unwrap_or_default();
    let items: Vec<Value> = st
        .user_profiles
        .values()
        .filter(|u| u.user_id == user)
        .map(|u| st.user_profile_wire(u))
        .collect();
    ok(json!({ "access_profiles": items }))
}

fn time(v: &Value, path: &str) -> Result<DateTime<Utc>, BfError> {
    parse_instant(as_str(v, path)?)
        .map_err(|_| BfError::bad_request(format!("{path} must be an RFC 3339 date-time")))
}

/// Create (A5) or update (A6): the published request schemas differ in what may be `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `CreateAccessProfileRequest`: nothing is nullable.
    Create,
    /// `UpdateAccessProfileRequest`: `description`, `rate_limit`, `calendar_aligned`,
    /// `auto_rotation_interval` and `next_rotation_at` are nullable (`null` clears); the
    /// lists are not.
    Update,
}

/// `key` of the body: `null` only where the request schema of `mode` allows it.
fn body_field<'a>(
    body: &'a Map<String, Value>,
    key: &str,
    mode: Mode,
    nullable_on_update: bool,
) -> Result<Field<&'a Value>, BfError> {
    match field(body, key) {
        Field::Null if mode == Mode::Create || !nullable_on_update => {
            non_null(body, key, "").map(|_| Field::Absent)
        }
        f => Ok(f),
    }
}

/// One hour and 365 days in nanoseconds: the bounds of `auto_rotation_interval`.
const HOUR_NS: i64 = 3_600_000_000_000;
const MAX_ROTATION_NS: i64 = 365 * 24 * HOUR_NS;

/// `auto_rotation_interval` as sent: a day count (`"30d"`), a Go duration (`"12h"`,
/// `"1h30m"`) or integer nanoseconds; `""`/`0` = off. Anything else, or outside 1h–365d, → 400.
pub fn rotation_interval(v: &Value) -> Result<i64, BfError> {
    const PATH: &str = "auto_rotation_interval";
    let bad = |what: &str| {
        BfError::bad_request(format!(
            "invalid {PATH}: {what} (a day count such as \"30d\", a duration such as \"12h\", \
             or nanoseconds; between 1h and 365d; \"\" or 0 turns it off)"
        ))
    };
    let ns = match v {
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || s == "0" {
                return Ok(0);
            }
            match s.strip_suffix('d').map(str::parse::<i64>) {
                Some(Ok(days)) => days
                    .checked_mul(24 * HOUR_NS)
                    .ok_or_else(|| bad(&format!("{s:?}")))?,
                Some(Err(_)) => return Err(bad(&format!("{s:?}"))),
                None => go_duration_ns(s).ok_or_else(|| bad(&format!("{s:?}")))?,
            }
        }
        Value::Number(_) => as_i64(v, PATH)?,
        _ => return Err(bad("expected a string or an integer")),
    };
    if ns == 0 {
        return Ok(0);
    }
    if !(HOUR_NS..=MAX_ROTATION_NS).contains(&ns) {
        return Err(bad(&format!("{ns} ns is outside 1h–365d")));
    }
    Ok(ns)
}

/// Go's `time.ParseDuration` for the units it knows (`ns us µs ms s m h`), e.g. `"1h30m"`,
/// `"1.5h"`, `"-2m"`. `None` when it is not one.
pub fn go_duration_ns(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u_end..];
        total += n * unit;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total as i64;
    Some(if neg { -ns } else { ns })
}

/// Apply the writable fields of a create/update body: absent keeps, `null` clears where the
/// request schema of `mode` makes the field nullable, and is refused elsewhere.
/// A list of `{"<key>": id}` objects (`mcp_tool_groups`, `mcp_servers`): each id is required
/// and read by `read` (which gets the id's path for its errors). `None` when the list is absent.
fn item_ids<T>(
    body: &Map<String, Value>,
    field: &str,
    key: &str,
    read: impl Fn(&Value, &str) -> Result<T, BfError>,
) -> Result<Option<Vec<T>>, BfError> {
    let Some(v) = non_null(body, field, "")? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (i, item) in as_array(v, field)?.iter().enumerate() {
        let path = format!("{field}[{i}]");
        let o = as_object(item, &path)?;
        match non_null(o, key, &path)? {
            Some(id) => out.push(read(id, &format!("{path}.{key}"))?),
            None => return Err(BfError::bad_request(format!("{path}.{key} is required"))),
        }
    }
    Ok(Some(out))
}

fn apply_fields(
    p: &mut AccessProfile,
    body: &Map<String, Value>,
    seq: &mut BifrostSeq,
    now: DateTime<Utc>,
    mode: Mode,
) -> Result<(), BfError> {
    if let Some(v) = non_null(body, "name", "")? {
        p.name = object_name(v)?;
    }
    match body_field(body, "description", mode, true)? {
        Field::Set(v) => p.description = Some(as_str(v, "description")?.to_owned()),
        Field::Null => p.description = None,
        Field::Absent => {}
    }
    if let Some(v) = non_null(body, "tags", "")? {
        p.tags = string_list(v, "tags")?;
    }
    if let Some(v) = non_null(body, "provider_configs", "")? {
        let items = as_array(v, "provider_configs")?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(provider_config(
                item,
                &format!("provider_configs[{i}]"),
                &p.provider_configs,
                seq,
                now,
            )?);
        }
        p.provider_configs = out;
    }
    if let Some(v) = non_null(body, "budgets", "")? {
        let input = parse_budgets(v, "budgets", Owner::Profile)?;
        p.budgets = reconcile_budgets(
            input,
            &p.budgets,
            Owner::Profile,
            Some("total"),
            false,
            false,
            now,
        );
    }
    match body_field(body, "rate_limit", mode, true)? {
        Field::Set(v) => {
            let input = parse_rate_limit(v, "rate_limit", Owner::Profile)?;
            let rl = apply_rate_limit(input, p.rate_limit.as_ref(), false, now);
            check_rate_limit(&rl, "rate_limit")?;
            p.rate_limit = Some(rl);
        }
        Field::Null => p.rate_limit = None,
        Field::Absent => {}
    }
    match body_field(body, "calendar_aligned", mode, true)? {
        Field::Set(v) => p.calendar_aligned = as_bool(v, "calendar_aligned")?,
        Field::Null => p.calendar_aligned = false,
        Field::Absent => {}
    }
    rotation_schedule(p, body, now, mode)?;
    if let Some(ids) = item_ids(body, "mcp_tool_groups", "tool_group_id", |id, at| {
        let id = as_i64(id, at)?;
        u64::try_from(id).map_err(|_| BfError::bad_request(format!("{at} must be positive")))
    })? {
        p.mcp_tool_groups = ids;
    }
    if let Some(ids) = item_ids(body, "mcp_servers", "mcp_server_id", |id, at| {
        Ok(as_str(id, at)?.to_owned())
    })? {
        p.mcp_servers = ids;
    }
    if let Some(v) = non_null(body, "mcp_tool_overrides", "")? {
        let items = as_array(v, "mcp_tool_overrides")?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.push(tool_override(item, &format!("mcp_tool_overrides[{i}]"))?);
        }
        p.mcp_tool_overrides = out;
    }
    Ok(())
}

/// `auto_rotation_interval` and `next_rotation_at` (accessprofiles.yaml): the interval is
/// 1h–365d or off; `next_rotation_at` must be in the future and needs the interval; it
/// defaults to now + interval, and a changed interval re-anchors it unless one is sent;
/// `null` clears it only while the interval is off.
fn rotation_schedule(
    p: &mut AccessProfile,
    body: &Map<String, Value>,
    now: DateTime<Utc>,
    mode: Mode,
) -> Result<(), BfError> {
    let interval = match body_field(body, "auto_rotation_interval", mode, true)? {
        Field::Set(v) => Some(rotation_interval(v)?),
        Field::Null => Some(0),
        Field::Absent => None,
    };
    let next = match body_field(body, "next_rotation_at", mode, true)? {
        Field::Set(v) => {
            let t = time(v, "next_rotation_at")?;
            if t <= now {
                return Err(BfError::bad_request(
                    "next_rotation_at must be in the future",
                ));
            }
            Field::Set(t)
        }
        Field::Null => Field::Null,
        Field::Absent => Field::Absent,
    };
    let changed = interval.is_some_and(|i| i != p.auto_rotation_interval);
    if let Some(i) = interval {
        p.auto_rotation_interval = i;
    }
    let on = p.auto_rotation_interval > 0;
    match next {
        Field::Set(_) if !on => {
            return Err(BfError::bad_request(
                "next_rotation_at requires auto_rotation_interval",
            ))
        }
        Field::Set(t) => p.next_rotation_at = Some(t),
        Field::Null if on => {
            return Err(BfError::bad_request(
                "next_rotation_at can only be cleared while auto_rotation_interval is off",
            ))
        }
        Field::Null => p.next_rotation_at = None,
        Field::Absent if !on => p.next_rotation_at = None,
        Field::Absent if changed || p.next_rotation_at.is_none() => {
            p.next_rotation_at =
                Some(now + chrono::Duration::nanoseconds(p.auto_rotation_interval));
        }
        Field::Absent => {}
    }
    Ok(())
}

fn tool_override(v: &Value, path: &str) -> Result<ToolOverride, BfError> {
    let o = as_object(v, path)?;
    let req = |key: &str| -> Result<String, BfError> {
        match non_null(o, key, path)? {
            Some(v) => {
                let s = as_str(v, &format!("{path}.{key}"))?;
                if s.is_empty() {
                    Err(BfError::bad_request(format!("{path}.{key} is required")))
                } else {
                    Ok(s.to_owned())
                }
            }
            None => Err(BfError::bad_request(format!("{path}.{key} is required"))),
        }
    };
    let mcp_client_id = req("mcp_client_id")?;
    let tool_name = req("tool_name")?;
    let action = req("action")?;
    if action != "include" && action != "exclude" {
        return Err(BfError::bad_request(format!(
            "{path}.action must be include or exclude"
        )));
    }
    Ok(ToolOverride {
        mcp_client_id,
        tool_name,
        action,
    })
}

/// One `provider_configs[]` item. An `id` naming an existing config keeps that id and its
/// usage; anything else is a new config.
fn provider_config(
    v: &Value,
    path: &str,
    existing: &[ApProviderConfig],
    seq: &mut BifrostSeq,
    now: DateTime<Utc>,
) -> Result<ApProviderConfig, BfError> {
    let o = as_object(v, path)?;
    let provider_name = match non_null(o, "provider_name", path)? {
        Some(v) => as_str(v, &format!("{path}.provider_name"))?
            .trim()
            .to_owned(),
        None => String::new(),
    };
    if provider_name.is_empty() {
        return Err(BfError::bad_request(format!(
            "{path}.provider_name is required"
        )));
    }
    let matched = match non_null(o, "id", path)? {
        Some(id) => {
            let id = as_i64(id, &format!("{path}.id"))?;
            existing.iter().find(|c| i64::try_from(c.id) == Ok(id))
        }
        None => None,
    };
    let all_models_allowed = match non_null(o, "all_models_allowed", path)? {
        Some(b) => as_bool(b, &format!("{path}.all_models_allowed"))?,
        None => false,
    };
    let allowed_models = match non_null(o, "allowed_models", path)? {
        Some(v) => string_list(v, &format!("{path}.allowed_models"))?,
        None => Vec::new(),
    };
    let scope = format!("provider:{provider_name}");
    let budgets = match non_null(o, "budgets", path)? {
        Some(v) => {
            let input = parse_budgets(v, &format!("{path}.budgets"), Owner::Profile)?;
            reconcile_budgets(
                input,
                matched.map_or(&[][..], |m| &m.budgets),
                Owner::Profile,
                Some(&scope),
                false,
                false,
                now,
            )
        }
        None => Vec::new(),
    };
    let rate_limit = match non_null(o, "rate_limit", path)? {
        Some(v) => {
            let rp = format!("{path}.rate_limit");
            let input = parse_rate_limit(v, &rp, Owner::Profile)?;
            let rl = apply_rate_limit(
                input,
                matched.and_then(|m| m.rate_limit.as_ref()),
                false,
                now,
            );
            check_rate_limit(&rl, &rp)?;
            Some(rl)
        }
        None => None,
    };
    Ok(ApProviderConfig {
        id: matched.map_or_else(|| seq.next_ap_provider_config(), |m| m.id),
        provider_name,
        all_models_allowed,
        allowed_models,
        budgets,
        rate_limit,
    })
}
