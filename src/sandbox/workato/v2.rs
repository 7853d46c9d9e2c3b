//! v2 routes V1–V5 and K1–K7 (docs/sandbox.md, "Workato management API").
//!
//! Lists are `{"data","count","page","per_page"}` with `count` = total (SD-W6); single objects
//! are `{"data": …}`; deletes and enable/disable are `{"success": true}` (SD-W15). V1 and V3
//! also show legacy clients (`is_legacy: true`, one id sequence, SD-W16) until the sunset; v2
//! writes on them are refused and K1 lists nothing for them. Key secrets (`auth_token`, or
//! `oauth_client_id` + `oauth_client_secret` on oauth2 clients) appear only in K2 and K7
//! responses (SD-W9). A client holds at most 20 keys, inactive ones included.

use chrono::Duration;
use serde_json::{json, Value};

use super::legacy::{check_auth_settings, check_collections, check_policy};
use super::model::{ApiKey, StoredSecret, V2Client, WorkatoState, Workspace};
use super::request::{
    parse_body, saturating_int, ApiError, ApiResult, BodyReader, Errors, Field, Page,
};
use super::{fresh_secret, ws, ws_mut, Ctx, Input, LEGACY_CLIENT_MESSAGE};

/// Most keys one client may hold (SD-W14).
pub const MAX_KEYS_PER_CLIENT: usize = 20;
/// Body of the 21st K2 (SD-W14).
pub const TOO_MANY_KEYS: &str = "API client can have at most 20 API keys";

/// V1 `GET /api/v2/api_clients`.
pub fn list_clients(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    let space = ws(w, ctx.workspace_id(w)?)?;
    let page = Page::from_query(&input.query)?;
    // Any integer is a valid `project_id` in the published spec; a negative one matches none.
    let project = match input.query.get("project_id").map(str::trim) {
        None => None,
        Some(s) => Some(
            saturating_int(s).map_err(|_| ApiError::invalid("project_id", "is not a number"))?,
        ),
    };
    let project = project.map(|p| u64::try_from(p).ok());
    // `cert_bundle_ids` (repeated, with or without `[]`): only clients tied to one of them.
    let mut bundles = Vec::new();
    for (k, v) in input.query.pairs() {
        if k == "cert_bundle_ids" || k == "cert_bundle_ids[]" {
            for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                bundles.push(
                    part.parse::<u64>()
                        .map_err(|_| ApiError::invalid("cert_bundle_ids", "is not a number"))?,
                );
            }
        }
    }
    let bundle_match = |ids: &Option<Vec<u64>>| {
        bundles.is_empty() || ids.iter().flatten().any(|id| bundles.contains(id))
    };
    // Ids first, wire objects only for the page: V1 stays cheap at 100,000 objects.
    let mut rows: Vec<(u64, bool)> = space
        .v2_clients
        .values()
        .filter(|c| project.is_none_or(|p| p.is_some() && c.project_id == p))
        .filter(|c| bundle_match(&c.cert_bundle_ids))
        .map(|c| (c.id, false))
        .collect();
    // Legacy clients have no certificate bundles.
    if !ctx.legacy_retired() && bundles.is_empty() {
        rows.extend(
            space
                .legacy_clients
                .values()
                .filter(|c| project.is_none_or(|p| p.is_some() && c.project_id == p))
                .map(|c| (c.id, true)),
        );
    }
    rows.sort_unstable();
    let data: Vec<Value> = page
        .window(rows.iter())
        .filter_map(|(id, legacy)| {
            if *legacy {
                space
                    .legacy_clients
                    .get(id)
                    .map(|c| space.legacy_client_as_v2_wire(c, ctx.cfg.read_tokens))
            } else {
                space
                    .v2_clients
                    .get(id)
                    .map(|c| space.client_wire(c, ctx.cfg.read_tokens))
            }
        })
        .collect();
    Ok(json!({"data": data, "count": rows.len(), "page": page.page, "per_page": page.per_page}))
}

/// The client a v2 write targets: a v2 client, else 400 for a (visible) legacy one, else 404.
fn writable_client(space: &Workspace, ctx: &Ctx, id: u64) -> Result<(), ApiError> {
    if space.v2_clients.contains_key(&id) {
        Ok(())
    } else if space.legacy_clients.contains_key(&id) && !ctx.legacy_retired() {
        Err(ApiError::bad_request(LEGACY_CLIENT_MESSAGE))
    } else {
        Err(ApiError::not_found())
    }
}

fn client_name_taken(space: &Workspace, name: &str, except: Option<u64>) -> bool {
    space
        .v2_clients
        .values()
        .any(|c| c.name == name && Some(c.id) != except)
}

/// Fields V2 and V4 share.
struct ClientInput {
    description: Field<String>,
    project_id: Field<u64>,
    api_policy_id: Field<u64>,
    jwt_method: Field<String>,
    jwt_secret: Field<String>,
    oidc_issuer: Field<String>,
    oidc_jwks_uri: Field<String>,
    access_profile_claim: Field<String>,
    required_claims: Field<Vec<String>>,
    allowed_issuers: Field<Vec<String>>,
    email: Field<String>,
    api_portal_id: Field<u64>,
    mtls_enabled: Field<bool>,
    validation_formula: Field<String>,
    cert_bundle_ids: Field<Vec<u64>>,
}

impl ClientInput {
    fn read(r: &mut BodyReader) -> Self {
        Self {
            description: r.string("description"),
            project_id: r.id("project_id"),
            api_policy_id: r.id("api_policy_id"),
            jwt_method: r.string("jwt_method"),
            jwt_secret: r.string("jwt_secret"),
            oidc_issuer: r.string("oidc_issuer"),
            oidc_jwks_uri: r.string("oidc_jwks_uri"),
            access_profile_claim: r.string("access_profile_claim"),
            required_claims: r.string_list("required_claims"),
            allowed_issuers: r.string_list("allowed_issuers"),
            email: r.string("email"),
            api_portal_id: r.id("api_portal_id"),
            mtls_enabled: r.bool("mtls_enabled"),
            validation_formula: r.string("validation_formula"),
            cert_bundle_ids: r.id_list("cert_bundle_ids"),
        }
    }

    fn auth_touched(&self) -> bool {
        !(self.jwt_method.is_absent()
            && self.jwt_secret.is_absent()
            && self.oidc_issuer.is_absent()
            && self.oidc_jwks_uri.is_absent())
    }

    /// Absent keeps, `null` clears, a value replaces.
    fn apply(self, c: &mut V2Client) {
        self.description.apply_to(&mut c.description);
        self.project_id.apply_to(&mut c.project_id);
        self.api_policy_id.apply_to(&mut c.api_policy_id);
        self.jwt_method.apply_to(&mut c.jwt_method);
        match self.jwt_secret {
            Field::Set(s) => c.jwt_secret = Some(StoredSecret::from_clear(s)),
            Field::Null => c.jwt_secret = None,
            Field::Absent => {}
        }
        self.oidc_issuer.apply_to(&mut c.oidc_issuer);
        self.oidc_jwks_uri.apply_to(&mut c.oidc_jwks_uri);
        self.access_profile_claim
            .apply_to(&mut c.access_profile_claim);
        match self.required_claims {
            Field::Set(v) => c.required_claims = v,
            Field::Null => c.required_claims.clear(),
            Field::Absent => {}
        }
        match self.allowed_issuers {
            Field::Set(v) => c.allowed_issuers = v,
            Field::Null => c.allowed_issuers.clear(),
            Field::Absent => {}
        }
        self.email.apply_to(&mut c.email);
        self.api_portal_id.apply_to(&mut c.api_portal_id);
        self.mtls_enabled.apply_to(&mut c.mtls_enabled);
        self.validation_formula.apply_to(&mut c.validation_formula);
        self.cert_bundle_ids.apply_to(&mut c.cert_bundle_ids);
    }
}

/// Rules on a complete client (after create or merge).
fn check_client(space: &Workspace, c: &V2Client, check_auth: bool, errors: &mut Errors) {
    check_collections(space, &c.api_collection_ids, errors);
    check_policy(space, c.api_policy_id, errors);
    if check_auth {
        check_auth_settings(
            errors,
            &c.auth_type,
            c.jwt_method.as_deref(),
            c.jwt_secret.as_ref(),
            c.oidc_issuer.is_some(),
            c.oidc_jwks_uri.is_some(),
        );
    }
    if c.api_portal_id.is_some() != c.email.is_some() {
        errors.add("email", "api_portal_id and email must be given together");
    }
}

/// V2 `POST /api/v2/api_clients`. Creating a client never creates a key (SD-W10).
pub fn create_client(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    let wid = ctx.workspace_id(w)?;
    let body = parse_body(&input.body)?;
    let mut r = BodyReader::new(&body);
    let name = r.required_name("name");
    let collections = r.id_list("api_collection_ids");
    let auth_type = r.string("auth_type");
    let rest = ClientInput::read(&mut r);
    let mut errors = r.errors;
    let space = ws(w, wid)?;

    let collections = match collections {
        Field::Set(ids) => ids,
        _ => Vec::new(), // check_client reports the blank list
    };
    let auth_type = match auth_type {
        Field::Set(t) => t,
        _ => {
            if !errors.has("auth_type") {
                errors.add("auth_type", "can't be blank");
            }
            String::new()
        }
    };
    let mut client = V2Client {
        id: 0,
        name: name.clone().unwrap_or_default(),
        description: None,
        project_id: None,
        auth_type,
        api_collection_ids: collections,
        api_policy_id: None,
        jwt_method: None,
        jwt_secret: None,
        oidc_issuer: None,
        oidc_jwks_uri: None,
        access_profile_claim: None,
        required_claims: Vec::new(),
        allowed_issuers: Vec::new(),
        email: None,
        api_portal_id: None,
        mtls_enabled: None,
        validation_formula: None,
        cert_bundle_ids: None,
        logo: None,
        logo_2x: None,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    rest.apply(&mut client);
    let auth_known = !errors.has("auth_type");
    check_client(space, &client, auth_known, &mut errors);
    if let Some(n) = &name {
        if client_name_taken(space, n, None) {
            errors.add("name", "has already been taken");
        }
    }
    errors.finish()?;

    client.id = w.seq.next_client();
    let space = ws_mut(w, wid)?;
    let out = space.client_wire(&client, ctx.cfg.read_tokens);
    space.v2_clients.insert(client.id, client);
    Ok(json!({ "data": out }))
}

/// V3 `GET /api/v2/api_clients/:api_client_id`.
pub fn get_client(w: &mut WorkatoState, ctx: &Ctx, _input: &Input) -> ApiResult {
    let space = ws(w, ctx.workspace_id(w)?)?;
    let id = ctx.scope.path_id("api_client_id")?;
    if let Some(c) = space.v2_clients.get(&id) {
        return Ok(json!({ "data": space.client_wire(c, ctx.cfg.read_tokens) }));
    }
    match space.legacy_clients.get(&id) {
        Some(c) if !ctx.legacy_retired() => {
            Ok(json!({ "data": space.legacy_client_as_v2_wire(c, ctx.cfg.read_tokens) }))
        }
        _ => Err(ApiError::not_found()),
    }
}

/// V4 `PUT /api/v2/api_clients/:api_client_id`: `name` and `api_collection_ids` required,
/// `auth_type` immutable (SD-W11), everything else partial.
pub fn update_client(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    let wid = ctx.workspace_id(w)?;
    let id = ctx.scope.path_id("api_client_id")?;
    let space = ws(w, wid)?;
    writable_client(space, ctx, id)?;
    let current = space.v2_clients.get(&id).ok_or_else(ApiError::not_found)?;
    let body = parse_body(&input.body)?;
    let mut r = BodyReader::new(&body);
    let name = r.required_name("name");
    let collections = r.id_list("api_collection_ids");
    let auth_type = r.string("auth_type");
    let rest = ClientInput::read(&mut r);
    let mut errors = r.errors;

    let mut next = current.clone();
    if let Some(n) = &name {
        next.name = n.clone();
    }
    match collections {
        Field::Set(ids) => next.api_collection_ids = ids,
        _ => {
            if !errors.has("api_collection_ids") {
                errors.add("api_collection_ids", "can't be blank");
            }
        }
    }
    match auth_type {
        Field::Set(t) if t == current.auth_type => {}
        Field::Absent => {}
        _ => errors.add("auth_type", "cannot be changed"),
    }
    let auth_touched = rest.auth_touched();
    rest.apply(&mut next);
    check_client(space, &next, auth_touched, &mut errors);
    if let Some(n) = &name {
        if client_name_taken(space, n, Some(id)) {
            errors.add("name", "has already been taken");
        }
    }
    errors.finish()?;

    next.updated_at = ctx.now;
    let space = ws_mut(w, wid)?;
    let out = space.client_wire(&next, ctx.cfg.read_tokens);
    space.v2_clients.insert(id, next);
    Ok(json!({ "data": out }))
}

/// V5 `DELETE /api/v2/api_clients/:api_client_id`: the client and all its keys.
pub fn delete_client(w: &mut WorkatoState, ctx: &Ctx, _input: &Input) -> ApiResult {
    let wid = ctx.workspace_id(w)?;
    let id = ctx.scope.path_id("api_client_id")?;
    writable_client(ws(w, wid)?, ctx, id)?;
    let space = ws_mut(w, wid)?;
    space.v2_clients.remove(&id);
    space.remove_keys_of(id);
    Ok(json!({ "success": true }))
}

/// K1 `GET /api/v2/api_clients/:api_client_id/api_keys`; a legacy client has none.
pub fn list_keys(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    let space = ws(w, ctx.workspace_id(w)?)?;
    let id = ctx.scope.path_id("api_client_id")?;
    let page = Page::from_query(&input.query)?;
    let items: Vec<Value> = match space.v2_clients.get(&id) {
        Some(c) => space
            .keys_of(id)
            .map(|k| k.wire(&c.auth_type, ctx.cfg.read_tokens))
            .collect(),
        None if space.legacy_clients.contains_key(&id) && !ctx.legacy_retired() => Vec::new(),
        None => return Err(ApiError::not_found()),
    };
    Ok(page.envelope(&items))
}

/// New secret material for a key of a client with `auth_type`.
fn issue_secret(k: &mut ApiKey, auth_type: &str, ctx: &Ctx) {
    if auth_type == "oauth2" {
        if k.oauth_client_id.is_none() {
            k.oauth_client_id = Some(fresh_secret());
        }
        k.oauth_client_secret = Some(StoredSecret::from_clear(fresh_secret()));
        k.auth_token = None;
    } else {
        k.auth_token = Some(StoredSecret::from_clear(fresh_secret()));
    }
    k.usable_from = ctx.now + Duration::milliseconds(ctx.cfg.propagation_delay_ms as i64);
}

/// K2 `POST /api/v2/api_clients/:api_client_id/api_keys`.
pub fn create_key(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    let wid = ctx.workspace_id(w)?;
    let cid = ctx.scope.path_id("api_client_id")?;
    let space = ws(w, wid)?;
    writable_client(space, ctx, cid)?;
    let auth_type = space
        .v2_clients
        .get(&cid)
        .map(|c| c.auth_type.clone())
        .unwrap_or_default();
    let body = parse_body(&input.body)?;
    let mut r = BodyReader::new(&body);
    let name = r.required_name("name");
    let active = r.bool("active");
    let allow = r.ip_list("ip_allow_list");
    let deny = r.ip_list("ip_deny_list");
    let mut errors = r.errors;
    let active = match active {
        Field::Set(a) => a,
        _ => {
            if !errors.has("active") {
                errors.add("active", "can't be blank");
            }
            true
        }
    };
    if space.keys_of(cid).count() >= MAX_KEYS_PER_CLIENT {
        errors.add("base", TOO_MANY_KEYS);
    }
    if let Some(n) = &name {
        if space.keys_of(cid).any(|k| &k.name == n) {
            errors.add("name", "has already been taken");
        }
    }
    errors.finish()?;

    let mut key = ApiKey {
        id: w.seq.next_key(),
        api_client_id: cid,
        name: name.unwrap_or_default(),
        active,
        active_since: ctx.now,
        ip_allow_list: allow.set().unwrap_or_default(),
        ip_deny_list: deny.set().unwrap_or_default(),
        auth_token: None,
        oauth_client_id: None,
        oauth_client_secret: None,
        created_at: ctx.now,
        usable_from: ctx.now,
    };
    issue_secret(&mut key, &auth_type, ctx);
    let out = key.wire_with_secret(&auth_type);
    ws_mut(w, wid)?.insert_key(key);
    Ok(json!({ "data": out }))
}

/// The key a K3–K7 call names: it must belong to the client in the path.
fn key_of<'a>(
    space: &'a mut Workspace,
    ctx: &Ctx,
    cid: u64,
) -> Result<(&'a mut ApiKey, String), ApiError> {
    writable_client(space, ctx, cid)?;
    let kid = ctx.scope.path_id("api_key_id")?;
    let auth_type = space
        .v2_clients
        .get(&cid)
        .map(|c| c.auth_type.clone())
        .unwrap_or_default();
    match space.keys.get_mut(&kid) {
        Some(k) if k.api_client_id == cid => Ok((k, auth_type)),
        _ => Err(ApiError::not_found()),
    }
}

/// K3 `PUT …/api_keys/:api_key_id`: name and IP lists; `active` is ignored.
pub fn update_key(w: &mut WorkatoState, ctx: &Ctx, input: &Input) -> ApiResult {
    let wid = ctx.workspace_id(w)?;
    let cid = ctx.scope.path_id("api_client_id")?;
    let space = ws_mut(w, wid)?;
    let kid = {
        let (k, _) = key_of(space, ctx, cid)?;
        k.id
    };
    let body = parse_body(&input.body)?;
    let mut r = BodyReader::new(&body);
    let name = r.optional_name("name").set();
    let allow = r.ip_list("ip_allow_list");
    let deny = r.ip_list("ip_deny_list");
    let mut errors = r.errors;
    if let Some(n) = &name {
        if space.keys_of(cid).any(|k| &k.name == n && k.id != kid) {
            errors.add("name", "has already been taken");
        }
    }
    errors.finish()?;

    let (k, auth_type) = key_of(space, ctx, cid)?;
    if let Some(n) = name {
        k.name = n;
    }
    if let Some(v) = allow.set() {
        k.ip_allow_list = v;
    }
    if let Some(v) = deny.set() {
        k.ip_deny_list = v;
    }
    Ok(json!({ "data": k.wire(&auth_type, ctx.cfg.read_tokens) }))
}

/// K4 `DELETE …/api_keys/:api_key_id`.
pub fn delete_key(w: &mut WorkatoState, ctx: &Ctx, _input: &Input) -> ApiResult {
    let wid = ctx.workspace_id(w)?;
    let cid = ctx.scope.path_id("api_client_id")?;
    let space = ws_mut(w, wid)?;
    let kid = key_of(space, ctx, cid)?.0.id;
    space.remove_key(kid);
    Ok(json!({ "success": true }))
}

fn set_key_active(w: &mut WorkatoState, ctx: &Ctx, active: bool) -> ApiResult {
    let wid = ctx.workspace_id(w)?;
    let cid = ctx.scope.path_id("api_client_id")?;
    let (k, _) = key_of(ws_mut(w, wid)?, ctx, cid)?;
    if active && !k.active {
        k.active_since = ctx.now;
    }
    k.active = active;
    Ok(json!({ "success": true }))
}

/// K5 `PUT …/enable` (idempotent).
pub fn enable_key(w: &mut WorkatoState, ctx: &Ctx, _input: &Input) -> ApiResult {
    set_key_active(w, ctx, true)
}

/// K6 `PUT …/disable` (idempotent).
pub fn disable_key(w: &mut WorkatoState, ctx: &Ctx, _input: &Input) -> ApiResult {
    set_key_active(w, ctx, false)
}

/// K7 `PUT …/refresh_secret`: works for every auth type and on inactive keys; the old secret
/// stops working at once; oauth2 keys keep their `oauth_client_id`.
pub fn refresh_key_secret(w: &mut WorkatoState, ctx: &Ctx, _input: &Input) -> ApiResult {
    let wid = ctx.workspace_id(w)?;
    let cid = ctx.scope.path_id("api_client_id")?;
    let (k, auth_type) = key_of(ws_mut(w, wid)?, ctx, cid)?;
    issue_secret(k, &auth_type, ctx);
    Ok(json!({ "data": k.wire_with_secret(&auth_type) }))
}
