//! The Workato API gateway (`<url>/workato-apim`, SD-W2, SD-W13): what API consumers call, and
//! what `verify --live` probes.
//!
//! - `ANY /:prefix/:collection[/*path]` — any path under a collection `url` answers 200
//!   `{"status":"ok","api_client_id":…,"api_key_id":…}` to an authorized caller (legacy
//!   profiles answer with `api_access_profile_id` instead of `api_key_id`). Credentials: the
//!   `api-token` header, HTTP Basic `api-token:<token>`, `?api_token=`, or `Authorization:
//!   Bearer` with an OAuth2 access token from `/oauth2/token` or a JWT (HS256/384/512 with the
//!   client's shared secret, RS256/384/512 with its PEM public key, or — OIDC — a key of the
//!   sandbox IdP below; other IdPs are never fetched).
//!   A bad/absent credential, an inactive key or one still inside its propagation delay
//!   (SD-W17) → 401; a collection the client was not granted, or a caller IP (TCP peer, or the
//!   sandbox-only `X-Sandbox-Peer` header) outside the allow list / inside the deny list → 403.
//!   Legacy profile credentials work until the sunset; after it the gateway still recognises
//!   them and refuses them with 401 (SD-W22).
//!   Every request to a known workspace is recorded for the API logs once judged, with its
//!   gateway code (4011 unrecognized, disabled or retired credential, 4012 none, 4031
//!   collection not granted, 4032 caller IP refused) and the name of the client whose
//!   credential it was ([`super::logs`], SD-W20).
//! - `POST /oauth2/token` — client credentials grant (SD-W13; docs.workato.com `api-mgmt/oauth2`):
//!   opaque tokens, 7200 s.
//! - `GET /_idp/jwks.json`, `GET /_idp/.well-known/openid-configuration` — a small OIDC
//!   provider publishing the built-in RSA keys, so seeded OIDC profiles have a live JWKS.
//!
//! The gateway is never rate limited and never gets injected faults.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawPathParams, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use serde_json::{json, Map, Value};
use sha2::{Sha256, Sha384, Sha512};

use super::fresh_secret;
use super::logs::{self, GatewayRecord};
use super::model::{
    sha256_hex, AccessProfile, ApiKey, Credential, OAuthGrant, StoredSecret, V2Client,
    WorkatoState, Workspace,
};
use super::request::ApiError;
use crate::sandbox::faults::ConnInfo;
use crate::sandbox::keys::KEYPAIRS;
use crate::sandbox::AppState;

/// Lifetime of an issued OAuth2 access token.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 7200;

/// Gateway routes, relative to the mount.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/_idp/jwks.json", get(jwks))
        .route("/_idp/.well-known/openid-configuration", get(discovery))
        .route("/oauth2/token", post(issue_token))
        .route("/{prefix}/{collection}", any(call))
        .route("/{prefix}/{collection}/{*path}", any(call))
}

async fn jwks() -> Json<Value> {
    let keys: Vec<Value> = KEYPAIRS
        .iter()
        .map(|k| json!({"kty": "RSA", "kid": k.kid, "alg": "RS256", "use": "sig", "n": k.n, "e": k.e}))
        .collect();
    Json(json!({ "keys": keys }))
}

async fn discovery(State(app): State<AppState>) -> Json<Value> {
    let issuer = format!("{}{}/_idp", app.base_url, super::GATEWAY_MOUNT);
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks.json"),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

/// What the caller presented.
enum Presented {
    /// An API token (header, Basic or query).
    Token(String),
    /// `Authorization: Bearer …`: an OAuth2 access token or a JWT.
    Bearer(String),
}

fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<Presented> {
    if let Some(t) = headers.get("api-token").and_then(|v| v.to_str().ok()) {
        return Some(Presented::Token(t.trim().to_owned()));
    }
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some((scheme, rest)) = auth.trim().split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(Presented::Bearer(rest.trim().to_owned()));
            }
            if scheme.eq_ignore_ascii_case("basic") {
                if let Some((user, pass)) = basic(rest) {
                    if user == "api-token" {
                        return Some(Presented::Token(pass));
                    }
                }
            }
        }
    }
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "api_token")
        .map(|(_, v)| Presented::Token(v.into_owned()))
}

fn basic(b64: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// The caller's address: `X-Sandbox-Peer` if sent, else the TCP peer.
fn peer_ip(req: &Request) -> Option<IpAddr> {
    if let Some(h) = req
        .headers()
        .get("x-sandbox-peer")
        .and_then(|v| v.to_str().ok())
    {
        return h.trim().parse().ok();
    }
    req.extensions()
        .get::<ConnectInfo<ConnInfo>>()
        .map(|c| c.0.peer.ip())
}

fn ip_matches(entry: &str, ip: IpAddr) -> bool {
    if let Ok(a) = entry.parse::<IpAddr>() {
        return a == ip;
    }
    entry.parse::<IpNet>().is_ok_and(|n| n.contains(&ip))
}

/// Allow list empty = any IP; invalid entries never match (SD-W7, SD-W13).
fn ip_allowed(allow: &[String], deny: &[String], ip: Option<IpAddr>) -> bool {
    let Some(ip) = ip else {
        return allow.is_empty();
    };
    (allow.is_empty() || allow.iter().any(|e| ip_matches(e, ip)))
        && !deny.iter().any(|e| ip_matches(e, ip))
}

/// Who a credential belongs to.
enum Holder<'a> {
    Key(&'a ApiKey, &'a V2Client),
    Profile(&'a AccessProfile),
}

impl Holder<'_> {
    /// The name the API logs show: the v2 client's, or the profile's legacy client's.
    fn client_name(&self, ws: &Workspace) -> String {
        match self {
            Holder::Key(_, c) => c.name.clone(),
            Holder::Profile(p) => ws
                .legacy_clients
                .get(&p.api_client_id)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        }
    }
}

fn matches(s: &Option<StoredSecret>, presented_sha: &str) -> bool {
    s.as_ref().is_some_and(|s| s.sha256() == presented_sha)
}

/// The key or legacy profile whose API token this is. Legacy profiles are found after the
/// sunset too, so that their refusal names their client ([`admit`] refuses them).
fn token_holder<'a>(ws: &'a Workspace, token: &str) -> Option<Holder<'a>> {
    let h = sha256_hex(token);
    for k in ws.keys.values() {
        if matches(&k.auth_token, &h) {
            if let Some(c) = ws.v2_clients.get(&k.api_client_id) {
                if c.auth_type == "token" {
                    return Some(Holder::Key(k, c));
                }
            }
        }
    }
    ws.profiles
        .values()
        .find(|p| p.auth_type == "token" && matches(&p.secret, &h))
        .map(Holder::Profile)
}

/// A refused gateway request: the error answered and what the API logs say about it.
struct Refusal {
    error: ApiError,
    gateway_code: Option<u16>,
    details: &'static str,
}

impl Refusal {
    fn unrecognized() -> Self {
        Self {
            error: ApiError::unauthorized(),
            gateway_code: Some(logs::UNRECOGNIZED),
            details: "Unrecognized token",
        }
    }

    fn missing() -> Self {
        Self {
            error: ApiError::unauthorized(),
            gateway_code: Some(logs::MISSING),
            details: "Missing token",
        }
    }

    fn collection_denied() -> Self {
        Self {
            error: ApiError::forbidden(),
            gateway_code: Some(logs::COLLECTION_DENIED),
            details: "API collection not granted to this client",
        }
    }

    fn ip_denied() -> Self {
        Self {
            error: ApiError::forbidden(),
            gateway_code: Some(logs::IP_DENIED),
            details: "IP address not allowed",
        }
    }

    fn not_found() -> Self {
        Self {
            error: ApiError::not_found(),
            gateway_code: None,
            details: "Endpoint not found",
        }
    }
}

/// Active, past its propagation delay (a legacy profile: before the sunset), granted the
/// collection, IP allowed.
fn admit(
    holder: &Holder,
    collection_id: u64,
    ip: Option<IpAddr>,
    gate: &Gate,
) -> Result<Value, Refusal> {
    match holder {
        Holder::Key(k, c) => {
            if !k.active || k.usable_from > gate.now {
                return Err(Refusal::unrecognized());
            }
            if !c.api_collection_ids.contains(&collection_id) {
                return Err(Refusal::collection_denied());
            }
            if !ip_allowed(&k.ip_allow_list, &k.ip_deny_list, ip) {
                return Err(Refusal::ip_denied());
            }
            Ok(json!({"status": "ok", "api_client_id": c.id, "api_key_id": k.id}))
        }
        Holder::Profile(p) => {
            if !p.active || !gate.legacy_alive {
                return Err(Refusal::unrecognized());
            }
            if !p.api_collection_ids.contains(&collection_id) {
                return Err(Refusal::collection_denied());
            }
            if !ip_allowed(&p.ip_allow_list, &[], ip) {
                return Err(Refusal::ip_denied());
            }
            Ok(json!({"status": "ok", "api_client_id": p.api_client_id,
                      "api_access_profile_id": p.id}))
        }
    }
}

/// Any request under a collection URL; recorded for the API logs once judged (SD-W20).
async fn call(
    State(app): State<AppState>,
    params: RawPathParams,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let started = std::time::Instant::now();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default()
    };
    let (prefix, collection, path) = (param("prefix"), param("collection"), param("path"));
    let ip = peer_ip(&req);
    let cred = presented(req.headers(), query.as_deref());
    let mut inner = app.lock();
    let now = inner.clock.now();
    let legacy_alive = now < app.config.workato.sunset;
    let idp = format!("{}{}/_idp", app.base_url, super::GATEWAY_MOUNT);
    let gate = Gate {
        now,
        legacy_alive,
        idp: &idp,
    };
    let judged = authorize(&inner.workato, &prefix, &collection, cred, ip, &gate);
    let (result, record) = match judged {
        Judged::NoWorkspace => (Err(Refusal::not_found()), None),
        Judged::Done {
            workspace_id,
            collection,
            client,
            result,
        } => {
            let (status, gateway_code, details) = match &result {
                Ok(_) => (200, None, ""),
                Err(r) => (r.error.status.as_u16(), r.gateway_code, r.details),
            };
            let timing_ms = u64::try_from(started.elapsed().as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            let record = GatewayRecord {
                workspace_id,
                at: now,
                status,
                gateway_code,
                details: details.to_owned(),
                ip: ip.map(|i| i.to_string()).unwrap_or_default(),
                timing_ms,
                delay_ms: 0,
                collection,
                endpoint: path,
                client,
            };
            (result, Some(record))
        }
    };
    if let Some(record) = record {
        inner
            .workato_logs
            .push(record, app.config.workato.api_log_max_rows);
    }
    drop(inner);
    match result {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(r) => r.error.into_response(),
    }
}

/// What the gateway judges a request by besides the credential.
struct Gate<'a> {
    now: DateTime<Utc>,
    legacy_alive: bool,
    /// `<url>/workato-apim/_idp`: the only OIDC provider whose keys the gateway knows.
    idp: &'a str,
}

/// A judged request: unknown workspace prefix (not recorded), or its outcome with what the
/// API logs name.
enum Judged {
    NoWorkspace,
    Done {
        workspace_id: u64,
        /// The collection's name; empty when the path names none.
        collection: String,
        /// The client the credential belongs to; empty when none matched.
        client: String,
        result: Result<Value, Refusal>,
    },
}

fn authorize(
    w: &WorkatoState,
    prefix: &str,
    collection: &str,
    cred: Option<Presented>,
    ip: Option<IpAddr>,
    gate: &Gate,
) -> Judged {
    let Some(ws) = w.workspaces.values().find(|ws| ws.prefix == prefix) else {
        return Judged::NoWorkspace;
    };
    let done = |collection: String, client: String, result| Judged::Done {
        workspace_id: ws.id,
        collection,
        client,
        result,
    };
    let Some(coll) = ws
        .collections
        .values()
        .find(|c| format!("{}-v{}", c.slug, c.version) == collection)
    else {
        return done(String::new(), String::new(), Err(Refusal::not_found()));
    };
    let holder = match cred {
        None => return done(coll.name.clone(), String::new(), Err(Refusal::missing())),
        Some(Presented::Token(t)) => token_holder(ws, &t),
        Some(Presented::Bearer(b)) => match w.oauth_tokens.get(&b) {
            Some(grant) => grant_holder(ws, grant, gate.now),
            None if b.split('.').count() == 3 => jwt_holder(ws, &b, gate.now, gate.idp),
            None => None,
        },
    };
    match holder {
        None => done(
            coll.name.clone(),
            String::new(),
            Err(Refusal::unrecognized()),
        ),
        Some(h) => done(
            coll.name.clone(),
            h.client_name(ws),
            admit(&h, coll.id, ip, gate),
        ),
    }
}

fn grant_holder<'a>(
    ws: &'a Workspace,
    grant: &OAuthGrant,
    now: DateTime<Utc>,
) -> Option<Holder<'a>> {
    if grant.expires_at <= now || grant.workspace_id != ws.id {
        return None;
    }
    match grant.credential {
        Credential::Key(id) => {
            let k = ws.keys.get(&id)?;
            let c = ws.v2_clients.get(&k.api_client_id)?;
            Some(Holder::Key(k, c))
        }
        Credential::Profile(id) => ws.profiles.get(&id).map(Holder::Profile),
    }
}

/// A decoded (not yet verified) JWT.
struct Jwt {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

fn decode_jwt(token: &str) -> Option<Jwt> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if p.len() > 10_240 * 4 / 3 + 4 {
        return None; // payload above the 10,240-byte limit
    }
    let header: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    Some(Jwt {
        header,
        claims,
        signing_input: format!("{h}.{p}"),
        signature: URL_SAFE_NO_PAD.decode(s).ok()?,
    })
}

fn hmac_ok(jwt: &Jwt, secret: &str) -> bool {
    fn check<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8], sig: &[u8]) -> bool {
        match <M as Mac>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(input);
                m.verify_slice(sig).is_ok()
            }
            Err(_) => false,
        }
    }
    let (key, input, sig) = (
        secret.as_bytes(),
        jwt.signing_input.as_bytes(),
        &jwt.signature[..],
    );
    match jwt.header.get("alg").and_then(Value::as_str) {
        Some("HS256") => check::<Hmac<Sha256>>(key, input, sig),
        Some("HS384") => check::<Hmac<Sha384>>(key, input, sig),
        Some("HS512") => check::<Hmac<Sha512>>(key, input, sig),
        _ => false,
    }
}

/// The claim value carrying the key token (docs.workato.com `api-mgmt/jwt-workato-claim`): the configured claim only, else the first
/// non-empty of `https://www.workato.com/sub`, `workato_sub`, `sub`, header `kid`.
fn claim_value(jwt: &Jwt, access_profile_claim: Option<&str>) -> Option<String> {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(c) = access_profile_claim {
        return text(jwt.claims.get(c));
    }
    ["https://www.workato.com/sub", "workato_sub", "sub"]
        .iter()
        .find_map(|k| text(jwt.claims.get(*k)))
        .or_else(|| text(jwt.header.get("kid")))
}

/// Whether `exp`/`nbf` (when present) admit the token at unix time `t`.
fn times_ok(jwt: &Jwt, t: i64) -> bool {
    let exp = jwt.claims.get("exp").and_then(Value::as_i64);
    let nbf = jwt.claims.get("nbf").and_then(Value::as_i64);
    exp.is_none_or(|exp| exp > t) && nbf.is_none_or(|nbf| nbf <= t)
}

/// `exp`/`nbf` when present, `required_claims` present, `allowed_issuers` containing `iss`.
///
/// Consumers sign with their own clock while the sandbox clock may be set far from it
/// (`--now`), so the time claims pass if they hold on either the sandbox clock or the machine
/// clock; a token expired on both is refused.
fn claims_ok(
    jwt: &Jwt,
    required: &[String],
    allowed_issuers: &[String],
    now: DateTime<Utc>,
) -> bool {
    if !times_ok(jwt, now.timestamp()) && !times_ok(jwt, Utc::now().timestamp()) {
        return false;
    }
    if required.iter().any(|c| !jwt.claims.contains_key(c)) {
        return false;
    }
    if !allowed_issuers.is_empty() {
        let iss = jwt.claims.get("iss").and_then(Value::as_str);
        if !iss.is_some_and(|i| allowed_issuers.iter().any(|a| a == i)) {
            return false;
        }
    }
    true
}

/// Public RSA key material: big-endian modulus and exponent.
struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

/// One DER TLV: (tag, contents, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_from_pkcs1(der: &[u8]) -> Option<RsaKey> {
    let (0x30, seq, _) = der_tlv(der)? else {
        return None;
    };
    let (0x02, n, rest) = der_tlv(seq)? else {
        return None;
    };
    let (0x02, e, _) = der_tlv(rest)? else {
        return None;
    };
    Some(RsaKey {
        n: strip_zeros(n),
        e: strip_zeros(e),
    })
}

/// Whether `pem` is an RSA public key in PEM form, as Workato requires of an `rsa` client's
/// or profile's `jwt_secret` (a private key, another key type or free text is refused).
pub(crate) fn is_rsa_public_key_pem(pem: &str) -> bool {
    let pem = pem.trim();
    let labelled = ["PUBLIC KEY", "RSA PUBLIC KEY"].iter().any(|label| {
        pem.starts_with(&format!("-----BEGIN {label}-----"))
            && pem.ends_with(&format!("-----END {label}-----"))
    });
    labelled && rsa_from_pem(pem).is_some()
}

/// A PEM public key: SubjectPublicKeyInfo (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`).
fn rsa_from_pem(pem: &str) -> Option<RsaKey> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    let der = STANDARD.decode(body).ok()?;
    if pem.contains("RSA PUBLIC KEY") {
        return rsa_from_pkcs1(&der);
    }
    // SEQUENCE { SEQUENCE { algorithm, params }, BIT STRING { 0x00, RSAPublicKey } }
    let (0x30, spki, _) = der_tlv(&der)? else {
        return None;
    };
    let (0x30, _algorithm, rest) = der_tlv(spki)? else {
        return None;
    };
    let (0x03, bits, _) = der_tlv(rest)? else {
        return None;
    };
    let (&0, key) = bits.split_first()? else {
        return None;
    };
    rsa_from_pkcs1(key)
}

fn rsa_ok(jwt: &Jwt, key: &RsaKey) -> bool {
    use ring::signature::{
        RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384,
        RSA_PKCS1_2048_8192_SHA512,
    };
    let params = match jwt.header.get("alg").and_then(Value::as_str) {
        Some("RS256") => &RSA_PKCS1_2048_8192_SHA256,
        Some("RS384") => &RSA_PKCS1_2048_8192_SHA384,
        Some("RS512") => &RSA_PKCS1_2048_8192_SHA512,
        _ => return false,
    };
    RsaPublicKeyComponents {
        n: &key.n,
        e: &key.e,
    }
    .verify(params, jwt.signing_input.as_bytes(), &jwt.signature)
    .is_ok()
}

/// The sandbox IdP's keys (optionally only the one named by `kid`).
fn idp_keys(kid: Option<&str>) -> Vec<RsaKey> {
    KEYPAIRS
        .iter()
        .filter(|k| match kid {
            Some(kid) => kid == k.kid,
            None => true,
        })
        .filter_map(|k| {
            Some(RsaKey {
                n: URL_SAFE_NO_PAD.decode(k.n).ok()?,
                e: URL_SAFE_NO_PAD.decode(k.e).ok()?,
            })
        })
        .collect()
}

/// The JWT settings of a v2 client or a legacy profile.
struct JwtSettings<'a> {
    auth_type: &'a str,
    jwt_method: Option<&'a str>,
    jwt_secret: Option<&'a StoredSecret>,
    oidc_issuer: Option<&'a str>,
    oidc_jwks_uri: Option<&'a str>,
    claim: Option<&'a str>,
    required_claims: &'a [String],
    allowed_issuers: &'a [String],
}

impl<'a> JwtSettings<'a> {
    fn of_client(c: &'a V2Client) -> Self {
        Self {
            auth_type: &c.auth_type,
            jwt_method: c.jwt_method.as_deref(),
            jwt_secret: c.jwt_secret.as_ref(),
            oidc_issuer: c.oidc_issuer.as_deref(),
            oidc_jwks_uri: c.oidc_jwks_uri.as_deref(),
            claim: c.access_profile_claim.as_deref(),
            required_claims: &c.required_claims,
            allowed_issuers: &c.allowed_issuers,
        }
    }

    fn of_profile(p: &'a AccessProfile) -> Self {
        Self {
            auth_type: &p.auth_type,
            jwt_method: p.jwt_method.as_deref(),
            jwt_secret: p.jwt_secret.as_ref(),
            oidc_issuer: p.oidc_issuer.as_deref(),
            oidc_jwks_uri: p.oidc_jwks_uri.as_deref(),
            claim: p.access_profile_claim.as_deref(),
            required_claims: &p.required_claims,
            allowed_issuers: &p.allowed_issuers,
        }
    }

    fn is_jwt(&self) -> bool {
        self.auth_type == "jwt" || self.auth_type == "oidc"
    }

    /// HMAC with the shared secret, RSA with the PEM public key, or (OIDC, or JWT pointing
    /// at an IdP) the sandbox IdP's JWKS. Other IdPs are not fetched.
    fn signature_ok(&self, jwt: &Jwt, idp: &str) -> bool {
        let clear = self.jwt_secret.and_then(StoredSecret::clear);
        match (self.auth_type, self.jwt_method) {
            ("jwt", Some("hmac")) => return clear.is_some_and(|s| hmac_ok(jwt, s)),
            ("jwt", Some("rsa")) if clear.is_some() => {
                return clear
                    .and_then(rsa_from_pem)
                    .is_some_and(|k| rsa_ok(jwt, &k));
            }
            _ => {}
        }
        let ours = self
            .oidc_jwks_uri
            .is_some_and(|u| u == format!("{idp}/jwks.json"))
            || self
                .oidc_issuer
                .is_some_and(|i| i.trim_end_matches('/') == idp);
        if !ours {
            return false;
        }
        let kid = jwt.header.get("kid").and_then(Value::as_str);
        let mut keys = idp_keys(kid);
        if keys.is_empty() {
            keys = idp_keys(None);
        }
        keys.iter().any(|k| rsa_ok(jwt, k))
    }
}

/// JWT/OIDC bearer tokens (SD-W13): the claim value must be one of a JWT/OIDC client's key
/// tokens (or a legacy profile's credential), the claims must pass the client's rules, and
/// the signature must verify with the client's key material. The claim is matched first so
/// at most a few signatures are checked per request. Legacy profiles are matched after the
/// sunset too ([`admit`] refuses them).
fn jwt_holder<'a>(
    ws: &'a Workspace,
    token: &str,
    now: DateTime<Utc>,
    idp: &str,
) -> Option<Holder<'a>> {
    let jwt = decode_jwt(token)?;
    for c in ws.v2_clients.values() {
        let s = JwtSettings::of_client(c);
        if !s.is_jwt() {
            continue;
        }
        let Some(value) = claim_value(&jwt, s.claim) else {
            continue;
        };
        let h = sha256_hex(&value);
        let Some(k) = ws.keys_of(c.id).find(|k| matches(&k.auth_token, &h)) else {
            continue;
        };
        if claims_ok(&jwt, s.required_claims, s.allowed_issuers, now) && s.signature_ok(&jwt, idp) {
            return Some(Holder::Key(k, c));
        }
    }
    for p in ws.profiles.values() {
        let s = JwtSettings::of_profile(p);
        if !s.is_jwt() {
            continue;
        }
        let value = claim_value(&jwt, s.claim);
        if !value.is_some_and(|v| matches(&p.secret, &sha256_hex(&v))) {
            continue;
        }
        if claims_ok(&jwt, s.required_claims, s.allowed_issuers, now) && s.signature_ok(&jwt, idp) {
            return Some(Holder::Profile(p));
        }
    }
    None
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// `POST /oauth2/token` (SD-W13): client credentials via Basic auth, a form body or a JSON body.
async fn issue_token(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut fields: Vec<(String, String)> = Vec::new();
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => {
                for (k, v) in m {
                    if let Some(s) = v.as_str() {
                        fields.push((k, s.to_owned()));
                    }
                }
            }
            _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        fields = url::form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    } else if !body.is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match field("grant_type").as_deref() {
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
        Some("client_credentials") => {}
        Some(_) => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
    let from_basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, rest)| basic(rest));
    let (id, secret) = match from_basic {
        Some(pair) => pair,
        None => match (field("client_id"), field("client_secret")) {
            (Some(i), Some(s)) => (i, s),
            _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
        },
    };
    let mut inner = app.lock();
    let now = inner.clock.now();
    let legacy_alive = now < app.config.workato.sunset;
    let Some((workspace_id, credential)) =
        oauth_client(&inner.workato, &id, &secret, now, legacy_alive)
    else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let token = fresh_secret();
    inner.workato.oauth_tokens.retain(|_, g| g.expires_at > now);
    inner.workato.oauth_tokens.insert(
        token.clone(),
        OAuthGrant {
            workspace_id,
            credential,
            expires_at: now + Duration::seconds(ACCESS_TOKEN_TTL_SECS),
        },
    );
    Json(
        json!({"access_token": token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_TTL_SECS}),
    )
    .into_response()
}

/// The active oauth2 key (or legacy profile) with this client id and secret.
fn oauth_client(
    w: &WorkatoState,
    id: &str,
    secret: &str,
    now: DateTime<Utc>,
    legacy_alive: bool,
) -> Option<(u64, Credential)> {
    let h = sha256_hex(secret);
    for ws in w.workspaces.values() {
        for k in ws.keys.values() {
            if k.oauth_client_id.as_deref() != Some(id) || !matches(&k.oauth_client_secret, &h) {
                continue;
            }
            let client_ok = ws
                .v2_clients
                .get(&k.api_client_id)
                .is_some_and(|c| c.auth_type == "oauth2");
            if client_ok && k.active && k.usable_from <= now {
                return Some((ws.id, Credential::Key(k.id)));
            }
        }
        if legacy_alive {
            for p in ws.profiles.values() {
                if p.auth_type == "oauth2"
                    && p.active
                    && p.oauth_client_id.as_deref() == Some(id)
                    && matches(&p.oauth_client_secret, &h)
                {
                    return Some((ws.id, Credential::Profile(p.id)));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_rules() {
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        assert!(ip_allowed(&[], &[], Some(ip)));
        assert!(ip_allowed(&["203.0.113.0/24".into()], &[], Some(ip)));
        assert!(!ip_allowed(&["198.51.100.7".into()], &[], Some(ip)));
        assert!(!ip_allowed(&[], &["203.0.113.9".into()], Some(ip)));
        assert!(!ip_allowed(&["300.1.2.3".into()], &[], Some(ip)));
    }

    #[test]
    fn hs256_jwt_verifies() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"tok","iss":"me"}"#);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"k").unwrap();
        mac.update(format!("{header}.{payload}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let jwt = decode_jwt(&format!("{header}.{payload}.{sig}")).unwrap();
        assert!(hmac_ok(&jwt, "k"));
        assert!(!hmac_ok(&jwt, "other"));
        assert_eq!(claim_value(&jwt, None).as_deref(), Some("tok"));
        assert_eq!(claim_value(&jwt, Some("nope")), None);
        let now = Utc::now();
        assert!(claims_ok(&jwt, &["iss".into()], &["me".into()], now));
        assert!(!claims_ok(&jwt, &["aud".into()], &[], now));
        assert!(!claims_ok(&jwt, &[], &["you".into()], now));

        // time claims: either clock will do, but expired on both is refused
        let exp = Utc::now().timestamp() + 300;
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"tok","exp":{exp}}}"#));
        let jwt = decode_jwt(&format!("{header}.{payload}.{sig}")).unwrap();
        let far_future = crate::sandbox::clock::parse_instant("2100-01-01").unwrap();
        assert!(claims_ok(&jwt, &[], &[], far_future));
        let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"tok","exp":1}"#);
        let jwt = decode_jwt(&format!("{header}.{payload}.{sig}")).unwrap();
        assert!(!claims_ok(&jwt, &[], &[], now));
    }
}
