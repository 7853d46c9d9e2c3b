//! Legacy routes L1–L8 and the collection list C1 (docs/sandbox.md, "Workato management API").
//!
//! Legacy lists have no total (bare arrays on the Developer API, `{"result": …}` on the
//! Embedded API). Writes are refused after the freeze (SD-W4) and every legacy route is gone
//! after the sunset (SD-W5); both gates come before any lookup or validation. The profile
//! credential (`secret`, or `oauth_client_secret` for oauth2) appears only in L4 and L8
//! responses (SD-W9); L8 refuses JWT and OIDC profiles (SD-W11).

use serde_json::{json, Value};

use super::gateway::is_rsa_public_key_pem;
use super::model::{AccessProfile, LegacyClient, StoredSecret, Workspace};
use super::request::{parse_body, ApiError, ApiResult, BodyReader, Errors, Field, Page};
use super::{fresh_secret, ws, ws_mut, Ctx, Input, AUTH_TYPES};
use crate::sandbox::workato::model::WorkatoState;

/// L8 on a JWT/OIDC profile (SD-W11).
pub const REFRESH_UNSUPPORTED: &str = "Refresh is not supported for JWT or OIDC access profiles";

/// L1 `GET /api/api_clients`.
pub fn list_clients(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    ctx.legacy_read()?;
    let ws = ws(w, ctx.workspace_id(w)?)?;
    let page = Page::from_query(&input.query)?;
    let items: Vec<Value> = page
        .of_map(&ws.legacy_clients)
        .map(LegacyClient::wire)
        .collect();
    Ok(ctx.legacy_wrap(Value::Array(items)))
}

/// L2 `POST /api/api_clients`.
pub fn create_client(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    ctx.legacy_write()?;
    let wid = ctx.workspace_id(w)?;
    let body = parse_body(&input.body)?;
    let mut r = BodyReader::new(&body);
    let name = r.required_name("name");
    let project_id = r.id("project_id").set();
    r.errors.finish()?;
    let id = w.seq.next_client();
    let client = LegacyClient {
        id,
        name: name.unwrap_or_default(),
        project_id,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let out = client.wire();
    ws_mut(w, wid)?.legacy_clients.insert(id, client);
    Ok(ctx.legacy_wrap(out))
}

/// L3 `GET /api/api_access_profiles?api_client_id=`.
pub fn list_profiles(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    ctx.legacy_read()?;
    let ws = ws(w, ctx.workspace_id(w)?)?;
    let page = Page::from_query(&input.query)?;
    let filter = match input.query.get("api_client_id").map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| ApiError::invalid("api_client_id", "is not a number"))?,
        ),
    };
    let items: Vec<Value> = match filter {
        None => page.of_map(&ws.profiles).map(AccessProfile::wire).collect(),
        Some(client) => page
            .window(ws.profiles_of(client))
            .map(AccessProfile::wire)
            .collect(),
    };
    Ok(ctx.legacy_wrap(Value::Array(items)))
}

/// The access settings every profile write may carry.
struct SettingsInput {
    auth_type: Field<String>,
    jwt_method: Field<String>,
    jwt_secret: Field<String>,
    oidc_issuer: Field<String>,
    oidc_jwks_uri: Field<String>,
    access_profile_claim: Field<String>,
    required_claims: Field<Vec<String>>,
    allowed_issuers: Field<Vec<String>>,
    ip_allow_list: Field<Vec<String>>,
    api_policy_id: Field<u64>,
    api_collection_ids: Field<Vec<u64>>,
}

fn read_settings(r: &mut BodyReader) -> SettingsInput {
    SettingsInput {
        auth_type: r.string("auth_type"),
        jwt_method: r.string("jwt_method"),
        jwt_secret: r.string("jwt_secret"),
        oidc_issuer: r.string("oidc_issuer"),
        oidc_jwks_uri: r.string("oidc_jwks_uri"),
        access_profile_claim: r.string("access_profile_claim"),
        required_claims: r.string_list("required_claims"),
        allowed_issuers: r.string_list("allowed_issuers"),
        ip_allow_list: r.ip_list("ip_allow_list"),
        api_policy_id: r.id("api_policy_id"),
        api_collection_ids: r.id_list("api_collection_ids"),
    }
}

/// Collection ids must be non-empty and exist in the workspace.
pub(crate) fn check_collections(ws: &Workspace, ids: &[u64], errors: &mut Errors) {
    if ids.is_empty() {
        errors.add("api_collection_ids", "can't be blank");
        return;
    }
    for id in ids {
        if !ws.collections.contains_key(id) {
            errors.add(
                "api_collection_ids",
                format!("API collection {id} not found"),
            );
        }
    }
}

/// A policy id must exist in the workspace (SD-W7).
pub(crate) fn check_policy(ws: &Workspace, id: Option<u64>, errors: &mut Errors) {
    if let Some(id) = id {
        if !ws.policies.contains_key(&id) {
            errors.add("api_policy_id", format!("API policy {id} not found"));
        }
    }
}

/// Auth-type rules shared by legacy profiles and v2 clients (SD-W11, PC-W5).
pub(crate) fn check_auth_settings(
    errors: &mut Errors,
    auth_type: &str,
    jwt_method: Option<&str>,
    jwt_secret: Option<&StoredSecret>,
    has_issuer: bool,
    has_jwks: bool,
) {
    if !AUTH_TYPES.contains(&auth_type) {
        errors.add("auth_type", "is not included in the list");
        return;
    }
    // The published enum holds whatever the auth type (a stray method is still refused).
    if auth_type != "jwt" && jwt_method.is_some_and(|m| m != "hmac" && m != "rsa") {
        errors.add("jwt_method", "is not included in the list");
    }
    if auth_type == "jwt" {
        match jwt_method {
            None => errors.add("jwt_method", "can't be blank"),
            Some("hmac" | "rsa") => {}
            Some(_) => errors.add("jwt_method", "is not included in the list"),
        }
        match jwt_secret {
            None => errors.add("jwt_secret", "can't be blank"),
            // A secret known only by its hash (a state dump) cannot be checked.
            Some(secret) => match (jwt_method, secret.clear()) {
                (Some("rsa"), Some(pem)) if !is_rsa_public_key_pem(pem) => errors.add(
                    "jwt_secret",
                    "must be an RSA public key in PEM format (-----BEGIN PUBLIC KEY-----)",
                ),
                _ => {}
            },
        }
        if has_issuer && has_jwks {
            errors.add(
                "oidc_issuer",
                "only one of oidc_issuer and oidc_jwks_uri may be set",
            );
        }
    }
    if auth_type == "oidc" {
        if has_issuer && has_jwks {
            errors.add(
                "oidc_issuer",
                "only one of oidc_issuer and oidc_jwks_uri may be set",
            );
        } else if !has_issuer && !has_jwks {
            errors.add(
                "oidc_issuer",
                "one of oidc_issuer and oidc_jwks_uri is required",
            );
        }
    }
}

fn name_taken(ws: &Workspace, client_id: u64, name: &str, except: Option<u64>) -> bool {
    ws.profiles_of(client_id)
        .any(|p| p.name == name && Some(p.id) != except)
}

/// L4 `POST /api/api_access_profiles`.
pub fn create_profile(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    ctx.legacy_write()?;
    let wid = ctx.workspace_id(w)?;
    let body = parse_body(&input.body)?;
    let mut r = BodyReader::new(&body);
    let name = r.required_name("name");
    let client_id = r.id("api_client_id");
    let s = read_settings(&mut r);
    let mut errors = r.errors;
    let space = ws(w, wid)?;

    let client_id = match client_id {
        Field::Set(id) if space.legacy_clients.contains_key(&id) => Some(id),
        Field::Set(id) => {
            errors.add("api_client_id", format!("API client {id} not found"));
            None
        }
        _ => {
            if !errors.has("api_client_id") {
                errors.add("api_client_id", "can't be blank");
            }
            None
        }
    };
    let collections = s.api_collection_ids.set();
    match &collections {
        Some(ids) => check_collections(space, ids, &mut errors),
        None if !errors.has("api_collection_ids") => {
            errors.add("api_collection_ids", "can't be blank")
        }
        None => {}
    }
    let auth_type = s.auth_type.set();
    let jwt_method = s.jwt_method.set();
    let jwt_secret = s.jwt_secret.set().map(StoredSecret::from_clear);
    let oidc_issuer = s.oidc_issuer.set();
    let oidc_jwks_uri = s.oidc_jwks_uri.set();
    match &auth_type {
        Some(t) => check_auth_settings(
            &mut errors,
            t,
            jwt_method.as_deref(),
            jwt_secret.as_ref(),
            oidc_issuer.is_some(),
            oidc_jwks_uri.is_some(),
        ),
        None if !errors.has("auth_type") => errors.add("auth_type", "can't be blank"),
        None => {}
    }
    let policy = s.api_policy_id.set();
    check_policy(space, policy, &mut errors);
    if let (Some(n), Some(c)) = (&name, client_id) {
        if name_taken(space, c, n, None) {
            errors.add("name", "has already been taken");
        }
    }
    errors.finish()?;

    let auth_type = auth_type.unwrap_or_default();
    let oauth2 = auth_type == "oauth2";
    let id = w.seq.next_profile();
    let profile = AccessProfile {
        id,
        name: name.unwrap_or_default(),
        api_client_id: client_id.unwrap_or_default(),
        api_collection_ids: collections.unwrap_or_default(),
        active: true,
        jwt_method,
        jwt_secret,
        oidc_issuer,
        oidc_jwks_uri,
        access_profile_claim: s.access_profile_claim.set(),
        required_claims: s.required_claims.set().unwrap_or_default(),
        allowed_issuers: s.allowed_issuers.set().unwrap_or_default(),
        ip_allow_list: s.ip_allow_list.set().unwrap_or_default(),
        api_policy_id: policy,
        oauth_client_id: oauth2.then(fresh_secret),
        secret: Some(StoredSecret::from_clear(fresh_secret())),
        oauth_client_secret: oauth2.then(|| StoredSecret::from_clear(fresh_secret())),
        signing_key: None,
        signing_kid: None,
        auth_type,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let out = profile.wire_with_secret();
    ws_mut(w, wid)?.insert_profile(profile);
    Ok(out)
}

/// L5 `PUT /api/api_access_profiles/:api_access_profile_id` (partial update).
pub fn update_profile(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    ctx.legacy_write()?;
    let wid = ctx.workspace_id(w)?;
    let pid = ctx.scope.path_id("api_access_profile_id")?;
    let space = ws(w, wid)?;
    let current = space.profiles.get(&pid).ok_or_else(ApiError::not_found)?;
    let body = parse_body(&input.body)?;
    let mut r = BodyReader::new(&body);
    let name = r.optional_name("name");
    let client_id = r.id("api_client_id");
    let s = read_settings(&mut r);
    let mut errors = r.errors;

    let mut next = current.clone();
    if let Field::Set(n) = name {
        next.name = n;
    }
    match client_id {
        Field::Set(id) if space.legacy_clients.contains_key(&id) => next.api_client_id = id,
        Field::Set(id) => errors.add("api_client_id", format!("API client {id} not found")),
        Field::Null => errors.add("api_client_id", "can't be blank"),
        Field::Absent => {}
    }
    match s.api_collection_ids {
        Field::Set(ids) => {
            check_collections(space, &ids, &mut errors);
            next.api_collection_ids = ids;
        }
        Field::Null => errors.add("api_collection_ids", "can't be blank"),
        Field::Absent => {}
    }
    let auth_touched = !(s.auth_type.is_absent()
        && s.jwt_method.is_absent()
        && s.jwt_secret.is_absent()
        && s.oidc_issuer.is_absent()
        && s.oidc_jwks_uri.is_absent());
    match s.auth_type {
        Field::Set(t) => next.auth_type = t,
        Field::Null => errors.add("auth_type", "can't be blank"),
        Field::Absent => {}
    }
    s.jwt_method.apply_to(&mut next.jwt_method);
    match s.jwt_secret {
        Field::Set(v) => next.jwt_secret = Some(StoredSecret::from_clear(v)),
        Field::Null => next.jwt_secret = None,
        Field::Absent => {}
    }
    s.oidc_issuer.apply_to(&mut next.oidc_issuer);
    s.oidc_jwks_uri.apply_to(&mut next.oidc_jwks_uri);
    s.access_profile_claim
        .apply_to(&mut next.access_profile_claim);
    if !s.required_claims.is_absent() {
        next.required_claims = s.required_claims.set().unwrap_or_default();
    }
    if !s.allowed_issuers.is_absent() {
        next.allowed_issuers = s.allowed_issuers.set().unwrap_or_default();
    }
    if let Field::Set(v) = s.ip_allow_list {
        next.ip_allow_list = v;
    }
    if !s.api_policy_id.is_absent() {
        s.api_policy_id.apply_to(&mut next.api_policy_id);
        check_policy(space, next.api_policy_id, &mut errors);
    }
    if auth_touched {
        check_auth_settings(
            &mut errors,
            &next.auth_type,
            next.jwt_method.as_deref(),
            next.jwt_secret.as_ref(),
            next.oidc_issuer.is_some(),
            next.oidc_jwks_uri.is_some(),
        );
    }
    if (next.name != current.name || next.api_client_id != current.api_client_id)
        && name_taken(space, next.api_client_id, &next.name, Some(pid))
    {
        errors.add("name", "has already been taken");
    }
    errors.finish()?;

    if next.auth_type == "oauth2" && next.oauth_client_id.is_none() {
        next.oauth_client_id = Some(fresh_secret());
        next.oauth_client_secret = Some(StoredSecret::from_clear(fresh_secret()));
    }
    next.updated_at = ctx.now;
    let out = next.wire();
    ws_mut(w, wid)?.insert_profile(next);
    Ok(out)
}

fn set_profile_active(w: &mut WorkatoState, ctx: &Ctx, active: bool) -> ApiResult {
    ctx.legacy_write()?;
    let wid = ctx.workspace_id(w)?;
    let pid = ctx.scope.path_id("api_access_profile_id")?;
    let p = ws_mut(w, wid)?
        .profiles
        .get_mut(&pid)
        .ok_or_else(ApiError::not_found)?;
    if p.active != active {
        p.active = active;
        p.updated_at = ctx.now;
    }
    Ok(json!({"result": "success"}))
}

/// L6 `PUT …/enable`.
pub fn enable_profile(w: &mut WorkatoState, ctx: &Ctx, _input: &Input) -> ApiResult {
    set_profile_active(w, ctx, true)
}

/// L7 `PUT …/disable`.
pub fn disable_profile(w: &mut WorkatoState, ctx: &Ctx, _input: &Input) -> ApiResult {
    set_profile_active(w, ctx, false)
}

/// L8 `PUT …/refresh_secret`: the old credential stops working at once.
pub fn refresh_profile_secret(w: &mut WorkatoState, ctx: &Ctx, _input: &Input) -> ApiResult {
    ctx.legacy_write()?;
    let wid = ctx.workspace_id(w)?;
    let pid = ctx.scope.path_id("api_access_profile_id")?;
    let p = ws_mut(w, wid)?
        .profiles
        .get_mut(&pid)
        .ok_or_else(ApiError::not_found)?;
    if p.auth_type == "jwt" || p.auth_type == "oidc" {
        return Err(ApiError::bad_request(REFRESH_UNSUPPORTED));
    }
    if p.auth_type == "oauth2" {
        if p.oauth_client_id.is_none() {
            p.oauth_client_id = Some(fresh_secret());
        }
        p.oauth_client_secret = Some(StoredSecret::from_clear(fresh_secret()));
    } else {
        p.secret = Some(StoredSecret::from_clear(fresh_secret()));
    }
    p.updated_at = ctx.now;
    Ok(p.wire_with_secret())
}

/// C1 `GET /api/api_collections`: bare array (Developer) or `{"result": …}` (Embedded).
pub fn list_collections(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    let ws = ws(w, ctx.workspace_id(w)?)?;
    let page = Page::from_query(&input.query)?;
    let items: Vec<Value> = page
        .window(ws.collections.values())
        .map(|c| c.wire())
        .collect();
    Ok(ctx.legacy_wrap(Value::Array(items)))
}
