//! Bifrost: the management API of the Bifrost AI gateway mounted at `<url>/bifrost`, as
//! docs/sandbox-bifrost.md and its sandbox decisions (SD-B1…SD-B17) describe it, following
//! Bifrost's published OpenAPI where the two differ (PC-B1…) — access
//! profiles on the canonical `/api/governance/…` paths and the deprecated aliases, users'
//! profile copies, virtual keys, MCP clients, and the consumer-side quota call.
//!
//! Middleware on the management routes, outermost first: request counting (so 401s, 403s and
//! 429s are counted), authentication and permissions (SD-B1), the per-credential rolling
//! window (SD-B2), injected faults (docs/sandbox.md, `--faults`). Alias routes add the deprecation headers
//! (SD-B3). The quota call (Q1) and the inference stub (`POST /v1/chat/completions`, SD-B16)
//! sit outside all of that: the virtual key authenticates itself, and they are neither
//! rate-limited nor faulted — only counted. The request logs (SD-B17) are in [`logs`]. Operations run
//! under the single state lock and never await while holding it. Unimplemented Bifrost
//! routes answer 501 (SD-B12); unknown paths under the mount 404, both as BifrostErrors.

pub mod fixture;
pub mod generate;
pub mod limits;
pub mod logs;
pub mod model;
pub mod profiles;
pub mod request;
pub mod virtual_keys;

#[cfg(test)]
mod tests;

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Utc};

use self::model::BifrostState;
use self::request::{BfError, BfResult, Query};
use super::config::BifrostConfig;
use super::ratelimit::retry_after_secs;
use super::stats::{count_requests, route_pattern, VendorMount};
use super::workato::model::sha256_hex;
use super::AppState;

/// Where the management API is mounted.
pub const MOUNT: &str = "/bifrost";

/// Path parameters of a request (decoded).
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            match RawPathParams::from_request_parts(parts, state).await {
                Ok(raw) => raw
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                Err(_) => Vec::new(),
            },
        ))
    }
}

/// What an operation gets besides the state.
pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub cfg: &'a BifrostConfig,
    pub params: &'a Params,
}

impl Ctx<'_> {
    /// A path parameter by name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Query and body of a request.
pub struct Input {
    pub query: Query,
    pub body: Bytes,
}

/// A management operation.
pub type Op = fn(&mut BifrostState, &Ctx, &Input) -> BfResult;

fn run(app: &AppState, params: &Params, query: Option<&str>, body: Bytes, op: Op) -> Response {
    let mut inner = app.lock();
    let now = inner.clock.now();
    let ctx = Ctx {
        now,
        cfg: &app.config.bifrost,
        params,
    };
    let input = Input {
        query: Query::parse(query),
        body,
    };
    match op(&mut inner.bifrost, &ctx, &input) {
        Ok((status, v)) => (status, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

macro_rules! op {
    ($f:path) => {
        |State(app): State<AppState>, params: Params, RawQuery(q): RawQuery, body: Bytes| async move {
            run(&app, &params, q.as_deref(), body, $f)
        }
    };
}

async fn not_implemented() -> Response {
    BfError::not_implemented().into_response()
}

async fn unknown_route() -> Response {
    BfError::not_found("route not found").into_response()
}

/// Q1: the virtual key in `x-bf-vk` or `Authorization: Bearer` (SD-B6).
async fn quota(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let presented = headers
        .get("x-bf-vk")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or_else(|| bearer(&headers));
    let inner = app.lock();
    let now = inner.clock.now();
    match virtual_keys::quota(&inner.bifrost, now, presented) {
        Ok((status, v)) => (status, Json(v)).into_response(),
        // The published 401 of this operation is `{"error": "<message>"}`, not a BifrostError.
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            (e.status, Json(serde_json::json!({ "error": e.message }))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The router mounted at [`MOUNT`] by the caller.
pub(crate) fn router(app: &AppState) -> Router<AppState> {
    let mut mgmt = Router::new();
    for (base, deprecated) in [
        ("/api/governance/access-profiles", false),
        ("/api/access-profiles", true),
    ] {
        if !deprecated && !app.config.bifrost.governance_profile_routes {
            continue;
        }
        let item = format!("{base}/{{profile_id}}");
        let mut r = Router::new()
            .route(base, get(op!(profiles::list)).post(op!(profiles::create)))
            .route(
                &item,
                get(op!(profiles::get))
                    .put(op!(profiles::update))
                    .delete(op!(profiles::delete)),
            )
            .route(
                &format!("{item}/deactivate"),
                put(op!(profiles::deactivate)),
            )
            .route(&format!("{item}/activate"), put(op!(profiles::activate)));
        for rest in [
            "clone",
            "propagate",
            "roles",
            "versions",
            "audit-logs",
            "overrides",
        ] {
            r = r.route(&format!("{item}/{rest}"), any(not_implemented));
        }
        if deprecated {
            r = r.route_layer(middleware::from_fn(deprecation_headers));
        }
        mgmt = mgmt.merge(r);
    }
    for (base, deprecated) in [("/api/governance/users", false), ("/api/users", true)] {
        let list = format!("{base}/{{user_id}}/access-profiles");
        let mut r = Router::new()
            .route(&list, get(op!(profiles::user_profiles)))
            .route(&format!("{list}/{{profile_id}}"), any(not_implemented))
            .route(
                &format!("{list}/{{profile_id}}/virtual-keys"),
                any(not_implemented),
            );
        if deprecated {
            r = r.route_layer(middleware::from_fn(deprecation_headers));
        }
        mgmt = mgmt.merge(r);
    }
    let vk = "/api/governance/virtual-keys/{vk_id}";
    mgmt = mgmt
        .route(
            "/api/governance/virtual-keys",
            get(op!(virtual_keys::list)).post(op!(virtual_keys::create)),
        )
        .route(
            vk,
            get(op!(virtual_keys::get))
                .put(op!(virtual_keys::update))
                .delete(op!(virtual_keys::delete)),
        )
        .route(&format!("{vk}/rotate"), post(op!(virtual_keys::rotate)))
        .route("/api/mcp/clients", get(op!(virtual_keys::list_mcp_clients)))
        .route("/api/logs", get(logs::get_logs))
        .route("/api/logs/stats", get(logs::get_logs_stats))
        .route("/api/logs/dropped", get(logs::get_logs_dropped))
        .route("/api/api-keys", any(not_implemented))
        .route("/api/api-keys/{key_id}", any(not_implemented))
        .route("/api/governance/virtual-mcps", any(not_implemented))
        .route("/api/governance/virtual-mcps/{id}", any(not_implemented))
        .route_layer(middleware::from_fn_with_state(app.clone(), faults))
        .route_layer(middleware::from_fn_with_state(app.clone(), rate_limit))
        .route_layer(middleware::from_fn_with_state(app.clone(), authenticate));
    let consumer = Router::new()
        .route("/api/governance/virtual-keys/quota", get(quota))
        .route("/v1/chat/completions", post(logs::chat_completions));
    let vm = VendorMount {
        app: app.clone(),
        vendor: "bifrost",
        mount: MOUNT,
    };
    mgmt.merge(consumer)
        .route_layer(middleware::from_fn_with_state(vm, count_requests))
        .fallback(unknown_route)
}

const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
const DEPRECATED_ROUTE: HeaderName = HeaderName::from_static("x-bifrost-deprecated-route");
const ROUTE_REMOVAL: HeaderName = HeaderName::from_static("x-bifrost-route-removal");

/// SD-B3: aliases answer like the canonical route and say where it lives.
async fn deprecation_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let path = path.strip_prefix(MOUNT).unwrap_or(path);
    let successor = match path.strip_prefix("/api/") {
        Some(rest) => format!("/api/governance/{rest}"),
        None => path.to_owned(),
    };
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(DEPRECATION, HeaderValue::from_static("true"));
    if let Ok(v) = HeaderValue::from_str(&format!("<{successor}>; rel=\"successor-version\"")) {
        h.insert(header::LINK, v);
    }
    h.insert(DEPRECATED_ROUTE, HeaderValue::from_static("true"));
    h.insert(
        ROUTE_REMOVAL,
        HeaderValue::from_static("following-major-release"),
    );
    resp
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// Who is calling: a rate-limit scope and the permissions held (`None` = all).
#[derive(Debug, Clone)]
struct Principal {
    scope: String,
    permissions: Option<Vec<String>>,
}

fn principal(cfg: &BifrostConfig, headers: &HeaderMap) -> Option<Principal> {
    if let Some(token) = bearer(headers) {
        let scope = format!("bifrost:token:{}", &sha256_hex(token)[..16]);
        if token == cfg.token {
            return Some(Principal {
                scope,
                permissions: None,
            });
        }
        return cfg.scoped_tokens.get(token).map(|perms| Principal {
            scope,
            permissions: Some(perms.clone()),
        });
    }
    let (user, pass) = basic(headers)?;
    (user == cfg.admin_username && pass == cfg.admin_password).then(|| Principal {
        scope: format!("bifrost:basic:{user}"),
        permissions: None,
    })
}

/// The Enterprise permission a route needs (SD-B1).
fn required_permission(method: &Method, route: &str) -> Option<&'static str> {
    let collection = !route.ends_with('}') && !route.ends_with("/rotate");
    if route.contains("/access-profiles") {
        Some(match *method {
            Method::GET => "AccessProfiles:View",
            Method::POST if collection && route.ends_with("/access-profiles") => {
                "AccessProfiles:Create"
            }
            Method::DELETE => "AccessProfiles:Delete",
            _ => "AccessProfiles:Update",
        })
    } else if route.contains("/virtual-keys") {
        Some(match *method {
            Method::GET => "VirtualKeys:View",
            Method::POST if route.ends_with("/virtual-keys") => "VirtualKeys:Create",
            Method::DELETE => "VirtualKeys:Delete",
            _ => "VirtualKeys:Update",
        })
    } else if route.starts_with("/api/mcp/") {
        Some("MCP:View")
    } else if route.starts_with("/api/logs") {
        Some("Logs:View")
    } else {
        None
    }
}

/// SD-B1: a configured Bearer token or Basic admin; scoped tokens get 403 outside their
/// permissions.
async fn authenticate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(who) = principal(&app.config.bifrost, req.headers()) else {
        return BfError::unauthorized().into_response();
    };
    if let Some(perms) = &who.permissions {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| route_pattern(m.as_str(), MOUNT))
            .unwrap_or_default();
        if let Some(needed) = required_permission(req.method(), &route) {
            if !perms.iter().any(|p| p == needed) {
                return BfError::forbidden(needed).into_response();
            }
        }
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// SD-B2: `rate_per_minute` per credential per rolling window.
async fn rate_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(window) = app.rate_window else {
        return next.run(req).await;
    };
    let scope = req
        .extensions()
        .get::<Principal>()
        .map_or_else(|| "bifrost:anonymous".to_owned(), |p| p.scope.clone());
    let verdict = app.lock().limiter.check(
        &scope,
        app.config.bifrost.rate_per_minute,
        window,
        Instant::now(),
    );
    match verdict {
        Ok(()) => next.run(req).await,
        Err(wait) => BfError::rate_limited(retry_after_secs(wait)).into_response(),
    }
}

fn fault_response(status: StatusCode, message: &'static str, retry: Option<u64>) -> Response {
    match retry {
        Some(secs) => BfError::rate_limited(secs).into_response(),
        None => BfError::new(status, message).into_response(),
    }
}

/// `--faults` (docs/sandbox.md) with Bifrost's error bodies.
async fn faults(State(app): State<AppState>, req: Request, next: Next) -> Response {
    super::faults::inject_as(&app, fault_response, req, next).await
}
