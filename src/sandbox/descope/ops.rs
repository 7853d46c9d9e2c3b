//! The access-key management operations D1–D11 (docs/sandbox-descope.md, SD-D5…SD-D11).
//!
//! Each operation takes the state, a [`Ctx`] and the parsed request, and returns the 200 body
//! or a [`DescopeError`]. Operations are all-or-nothing: every check runs before anything is
//! changed, so a refused request leaves the state exactly as it was.

use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::model::{new_cleartext, AccessKey, DescopeState, KeyTenant};
use super::project::Project;
use super::request::{
    field, opt_object, opt_seconds, opt_string, opt_string_list, required_string, DescopeError,
    DescopeResult,
};
use crate::sandbox::config::DescopeConfig;
use crate::sandbox::workato::model::sha256_hex;

/// Most ids one batch call may name (SD-D9).
pub const MAX_BATCH: usize = 100;

/// What an operation gets besides the state and the request.
pub struct Ctx<'a> {
    /// Sandbox clock.
    pub now: DateTime<Utc>,
    pub cfg: &'a DescopeConfig,
}

/// A request: the JSON body (`{}` when empty) and, for D2, the `id` query parameter.
pub struct Input {
    pub body: Map<String, Value>,
    pub query_id: Option<String>,
}

/// An operation.
pub type Op = fn(&mut DescopeState, &Ctx, &Input) -> DescopeResult;

fn roles_exist(project: &Project, roles: &[String]) -> Result<(), DescopeError> {
    match roles.iter().find(|r| project.role(r).is_none()) {
        Some(r) => Err(DescopeError::invalid(format!("Role {r} does not exist"))),
        None => Ok(()),
    }
}

fn read_role_names(
    m: &Map<String, Value>,
    project: &Project,
) -> Result<Option<Vec<String>>, DescopeError> {
    let roles = opt_string_list(m, "roleNames")?;
    if let Some(r) = &roles {
        roles_exist(project, r)?;
    }
    Ok(roles)
}

fn read_key_tenants(
    m: &Map<String, Value>,
    project: &Project,
) -> Result<Option<Vec<KeyTenant>>, DescopeError> {
    let Some(v) = field(m, "keyTenants") else {
        return Ok(None);
    };
    let items = v
        .as_array()
        .ok_or_else(|| DescopeError::invalid("The keyTenants field must be an array"))?;
    let mut out: Vec<KeyTenant> = Vec::new();
    for item in items {
        let obj = item.as_object().ok_or_else(|| {
            DescopeError::invalid("Every keyTenants entry must be an object with a tenantId")
        })?;
        let tenant_id = required_string(obj, "tenantId")?;
        if project.tenant(&tenant_id).is_none() {
            return Err(DescopeError::invalid(format!(
                "Tenant {tenant_id} does not exist"
            )));
        }
        if out.iter().any(|t| t.tenant_id == tenant_id) {
            return Err(DescopeError::invalid(format!(
                "Tenant {tenant_id} appears more than once in keyTenants"
            )));
        }
        let role_names = opt_string_list(obj, "roleNames")?.unwrap_or_default();
        roles_exist(project, &role_names)?;
        out.push(KeyTenant {
            tenant_id,
            role_names,
        });
    }
    Ok(Some(out))
}

/// Any JSON values are kept: Descope's `AccessKey` lists scalars, but the Bifrost mapping turns model
/// lists into array claims and SD-D5 does not make claim types a 400.
fn read_custom_claims(m: &Map<String, Value>) -> Result<Option<Map<String, Value>>, DescopeError> {
    Ok(opt_object(m, "customClaims")?.cloned())
}

fn read_custom_attributes(
    m: &Map<String, Value>,
    project: &Project,
) -> Result<Option<Map<String, Value>>, DescopeError> {
    let Some(attrs) = opt_object(m, "customAttributes")? else {
        return Ok(None);
    };
    for (k, v) in attrs {
        let Some(ty) = project.attributes.get(k) else {
            return Err(DescopeError::invalid(format!(
                "Custom attribute {k} is not defined for access keys in this project"
            )));
        };
        if !ty.accepts(v) {
            return Err(DescopeError::invalid(format!(
                "Custom attribute {k} has the wrong type"
            )));
        }
    }
    Ok(Some(attrs.clone()))
}

/// An IP address or a CIDR block.
pub fn valid_ip_entry(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok() || s.parse::<IpNet>().is_ok()
}

/// Whether `ip` matches an entry (invalid entries never match).
pub fn ip_matches(entry: &str, ip: IpAddr) -> bool {
    if let Ok(a) = entry.parse::<IpAddr>() {
        return a == ip;
    }
    entry.parse::<IpNet>().is_ok_and(|n| n.contains(&ip))
}

fn read_permitted_ips(m: &Map<String, Value>) -> Result<Option<Vec<String>>, DescopeError> {
    let ips = opt_string_list(m, "permittedIps")?;
    if let Some(bad) = ips.iter().flatten().find(|s| !valid_ip_entry(s)) {
        return Err(DescopeError::invalid(format!(
            "Invalid IP address or CIDR block: {bad}"
        )));
    }
    Ok(ips)
}

fn both_role_forms() -> DescopeError {
    DescopeError::invalid("roleNames and keyTenants cannot be used together")
}

fn find<'a>(s: &'a DescopeState, id: &str) -> Result<&'a AccessKey, DescopeError> {
    s.keys
        .get(id)
        .ok_or_else(|| DescopeError::key_not_found(id))
}

fn required_id(m: &Map<String, Value>) -> Result<String, DescopeError> {
    required_string(m, "id")
}

/// D1 `POST /v1/mgmt/accesskey/create`.
pub fn create(s: &mut DescopeState, ctx: &Ctx, input: &Input) -> DescopeResult {
    let m = &input.body;
    let name = required_string(m, "name")?;
    let expire_time = match opt_seconds(m, "expireTime")? {
        None | Some(0) => 0,
        Some(t) if t < 0 => {
            return Err(DescopeError::invalid(
                "The expireTime field must be 0 or a future time",
            ))
        }
        Some(t) if t <= ctx.now.timestamp() => {
            return Err(DescopeError::invalid("The expireTime is in the past"))
        }
        Some(t) => t,
    };
    let user_id = opt_string(m, "userId")?.filter(|u| !u.is_empty());
    let project = &s.project;
    let (role_names, key_tenants) = match &user_id {
        // A bound key takes the user's authorization; roles and tenants are ignored.
        Some(u) => {
            if project.user(u).is_none() {
                return Err(DescopeError::invalid(format!("User {u} does not exist")));
            }
            (Vec::new(), Vec::new())
        }
        None => {
            let roles = read_role_names(m, project)?.unwrap_or_default();
            let tenants = read_key_tenants(m, project)?.unwrap_or_default();
            if !roles.is_empty() && !tenants.is_empty() {
                return Err(both_role_forms());
            }
            (roles, tenants)
        }
    };
    let description = opt_string(m, "description")?.unwrap_or_default();
    let custom_claims = read_custom_claims(m)?.unwrap_or_default();
    let custom_attributes = read_custom_attributes(m, project)?.unwrap_or_default();
    let permitted_ips = read_permitted_ips(m)?.unwrap_or_default();

    let cleartext = new_cleartext();
    let delay = Duration::milliseconds(
        i64::try_from(ctx.cfg.visibility_delay_ms).unwrap_or(i64::MAX / 4_000_000),
    );
    let key = AccessKey {
        id: s.fresh_key_id(),
        name,
        description,
        role_names,
        key_tenants,
        active: true,
        created_time: ctx.now.timestamp(),
        expire_time,
        created_by: ctx.cfg.management_key_id.clone(),
        bound_user_id: user_id.unwrap_or_default(),
        custom_claims,
        custom_attributes,
        permitted_ips,
        cleartext_sha256: Some(sha256_hex(&cleartext)),
        visible_from: ctx.now + delay,
    };
    let body = json!({"key": key.wire(&s.project), "cleartext": cleartext});
    s.keys.insert(key.id.clone(), key);
    Ok(body)
}

/// D2 `GET /v1/mgmt/accesskey?id=…`.
pub fn load(s: &mut DescopeState, ctx: &Ctx, input: &Input) -> DescopeResult {
    let id = input
        .query_id
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| DescopeError::missing("ID is required"))?;
    match s.keys.get(id) {
        Some(k) if k.visible(ctx.now) => Ok(json!({"key": k.wire(&s.project)})),
        _ => Err(DescopeError::key_not_found(id)),
    }
}

/// One `sort` entry of D3.
struct SortKey {
    field: String,
    desc: bool,
}

fn read_sort(m: &Map<String, Value>) -> Result<Vec<SortKey>, DescopeError> {
    let Some(v) = field(m, "sort") else {
        return Ok(Vec::new());
    };
    let err = || DescopeError::invalid("The sort field must be an array of {field, desc}");
    let items = v.as_array().ok_or_else(err)?;
    let mut out = Vec::new();
    for item in items {
        let obj = item.as_object().ok_or_else(err)?;
        let field = opt_string(obj, "field")?.unwrap_or_default();
        let desc = match super::request::field(obj, "desc") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(err()),
        };
        out.push(SortKey { field, desc });
    }
    Ok(out)
}

/// D3 `POST /v1/mgmt/accesskey/search` (SD-D11).
pub fn search(s: &mut DescopeState, ctx: &Ctx, input: &Input) -> DescopeResult {
    let m = &input.body;
    let tenant_ids = opt_string_list(m, "tenantIds")?.unwrap_or_default();
    let text = opt_string(m, "text")?.unwrap_or_default().to_lowercase();
    let bound_user = opt_string(m, "boundUserId")?.filter(|u| !u.is_empty());
    let creating_user = opt_string(m, "creatingUser")?.filter(|u| !u.is_empty());
    let attrs = opt_object(m, "customAttributes")?
        .cloned()
        .unwrap_or_default();
    let sort = read_sort(m)?;

    let mut found: Vec<&AccessKey> = s
        .keys
        .values()
        .filter(|k| k.visible(ctx.now))
        .filter(|k| {
            tenant_ids.is_empty() || k.tenant_ids().any(|t| tenant_ids.iter().any(|x| x == t))
        })
        .filter(|k| {
            text.is_empty()
                || k.name.to_lowercase().contains(&text)
                || k.description.to_lowercase().contains(&text)
                || k.id.to_lowercase().contains(&text)
        })
        .filter(|k| bound_user.as_ref().is_none_or(|u| &k.bound_user_id == u))
        .filter(|k| creating_user.as_ref().is_none_or(|u| &k.created_by == u))
        .filter(|k| {
            attrs
                .iter()
                .all(|(name, want)| k.custom_attributes.get(name) == Some(want))
        })
        .collect();
    found.sort_by(|a, b| {
        for key in &sort {
            let ord = match key.field.as_str() {
                "name" => a.name.cmp(&b.name),
                "createdTime" => a.created_time.cmp(&b.created_time),
                "expireTime" => a.expire_time.cmp(&b.expire_time),
                _ => continue,
            };
            let ord = if key.desc { ord.reverse() } else { ord };
            if ord.is_ne() {
                return ord;
            }
        }
        (a.created_time, &a.id).cmp(&(b.created_time, &b.id))
    });
    let keys: Vec<Value> = found.iter().map(|k| k.wire(&s.project)).collect();
    Ok(json!({ "keys": keys }))
}

/// D4 `POST /v1/mgmt/accesskey/update` (SD-D8): absent or `null` keeps, present replaces.
pub fn update(s: &mut DescopeState, _ctx: &Ctx, input: &Input) -> DescopeResult {
    let m = &input.body;
    let id = required_id(m)?;
    let name = required_string(m, "name")?;
    let key = find(s, &id)?;
    let project = &s.project;
    let description = opt_string(m, "description")?;
    let (roles, tenants) = if key.bound_user_id.is_empty() {
        let roles = read_role_names(m, project)?;
        let tenants = read_key_tenants(m, project)?;
        let after_roles = roles.as_ref().unwrap_or(&key.role_names);
        let after_tenants = tenants.as_ref().unwrap_or(&key.key_tenants);
        if !after_roles.is_empty() && !after_tenants.is_empty() {
            return Err(both_role_forms());
        }
        (roles, tenants)
    } else {
        (None, None)
    };
    let claims = read_custom_claims(m)?;
    let attrs = read_custom_attributes(m, project)?;
    let ips = read_permitted_ips(m)?;

    let key = s
        .keys
        .get_mut(&id)
        .ok_or_else(|| DescopeError::key_not_found(&id))?;
    key.name = name;
    if let Some(d) = description {
        key.description = d;
    }
    if let Some(r) = roles {
        key.role_names = r;
    }
    if let Some(t) = tenants {
        key.key_tenants = t;
    }
    if let Some(c) = claims {
        key.custom_claims = c;
    }
    if let Some(a) = attrs {
        key.custom_attributes = a;
    }
    if let Some(i) = ips {
        key.permitted_ips = i;
    }
    let key = find(s, &id)?;
    Ok(json!({"key": key.wire(&s.project)}))
}

fn set_active(s: &mut DescopeState, input: &Input, active: bool) -> DescopeResult {
    let id = required_id(&input.body)?;
    let key = s
        .keys
        .get_mut(&id)
        .ok_or_else(|| DescopeError::key_not_found(&id))?;
    key.active = active;
    Ok(json!({}))
}

/// D5 `POST /v1/mgmt/accesskey/activate` (idempotent, SD-D9).
pub fn activate(s: &mut DescopeState, _ctx: &Ctx, input: &Input) -> DescopeResult {
    set_active(s, input, true)
}

/// D6 `POST /v1/mgmt/accesskey/deactivate` (idempotent, SD-D9).
pub fn deactivate(s: &mut DescopeState, _ctx: &Ctx, input: &Input) -> DescopeResult {
    set_active(s, input, false)
}

/// D7 `POST /v1/mgmt/accesskey/delete`.
pub fn delete(s: &mut DescopeState, _ctx: &Ctx, input: &Input) -> DescopeResult {
    let id = required_id(&input.body)?;
    s.keys
        .remove(&id)
        .ok_or_else(|| DescopeError::key_not_found(&id))?;
    Ok(json!({}))
}

/// The `ids` of a batch call, all known (SD-D9), de-duplicated in order.
fn batch_ids(s: &DescopeState, input: &Input) -> Result<Vec<String>, DescopeError> {
    let ids = opt_string_list(&input.body, "ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(DescopeError::invalid(
            "The ids field must list at least one id",
        ));
    }
    if ids.len() > MAX_BATCH {
        return Err(DescopeError::invalid(format!(
            "At most {MAX_BATCH} ids may be given in one call"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for id in ids {
        find(s, &id)?;
        if seen.insert(id.clone()) {
            out.push(id);
        }
    }
    Ok(out)
}

fn set_active_batch(s: &mut DescopeState, input: &Input, active: bool) -> DescopeResult {
    for id in batch_ids(s, input)? {
        if let Some(k) = s.keys.get_mut(&id) {
            k.active = active;
        }
    }
    Ok(json!({}))
}

/// D8 `POST /v1/mgmt/accesskey/activate/batch`.
pub fn activate_batch(s: &mut DescopeState, _ctx: &Ctx, input: &Input) -> DescopeResult {
    set_active_batch(s, input, true)
}

/// D9 `POST /v1/mgmt/accesskey/deactivate/batch`.
pub fn deactivate_batch(s: &mut DescopeState, _ctx: &Ctx, input: &Input) -> DescopeResult {
    set_active_batch(s, input, false)
}

/// D10 `POST /v1/mgmt/accesskey/delete/batch`.
pub fn delete_batch(s: &mut DescopeState, _ctx: &Ctx, input: &Input) -> DescopeResult {
    for id in batch_ids(s, input)? {
        s.keys.remove(&id);
    }
    Ok(json!({}))
}

/// D11 `POST /v1/mgmt/accesskey/rotate` (SD-D10): new secret, same everything else; the old
/// secret stops working at once.
pub fn rotate(s: &mut DescopeState, ctx: &Ctx, input: &Input) -> DescopeResult {
    let id = required_id(&input.body)?;
    let key = find(s, &id)?;
    if !key.active {
        return Err(DescopeError::invalid("Access key is not active"));
    }
    if key.expired(ctx.now) {
        return Err(DescopeError::invalid("Access key has expired"));
    }
    let cleartext = new_cleartext();
    let key = s
        .keys
        .get_mut(&id)
        .ok_or_else(|| DescopeError::key_not_found(&id))?;
    key.cleartext_sha256 = Some(sha256_hex(&cleartext));
    let key = find(s, &id)?;
    Ok(json!({"key": key.wire(&s.project), "cleartext": cleartext}))
}

/// D12 `POST /v1/mgmt/accesskey/import` (SD-D15): not emulated.
pub fn import(_s: &mut DescopeState, _ctx: &Ctx, _input: &Input) -> DescopeResult {
    Err(DescopeError::not_implemented(
        "Import is not available in the sandbox",
    ))
}

/// D15 `GET /v1/mgmt/license` (SD-D15).
pub fn license(_s: &mut DescopeState, _ctx: &Ctx, _input: &Input) -> DescopeResult {
    Ok(json!({"rateLimitTier": "tier1"}))
}

/// `GET /v1/mgmt/role/all` (not in the spec's table; lets a dry run check prerequisites).
pub fn roles(s: &mut DescopeState, _ctx: &Ctx, _input: &Input) -> DescopeResult {
    Ok(json!({"roles": s.project.roles_wire()}))
}

/// `GET /v1/mgmt/tenant/all` (not in the spec's table; lets a dry run check prerequisites).
pub fn tenants(s: &mut DescopeState, _ctx: &Ctx, _input: &Input) -> DescopeResult {
    Ok(json!({"tenants": s.project.tenants_wire()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_entries() {
        assert!(valid_ip_entry("203.0.113.0/24"));
        assert!(valid_ip_entry("2001:db8::1"));
        assert!(!valid_ip_entry("10.0.0.0/33"));
        assert!(!valid_ip_entry("192.168.1"));
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(ip_matches("127.0.0.0/8", lo));
        assert!(!ip_matches("10.0.0.0/8", lo));
        assert!(!ip_matches("junk", lo));
    }
}
