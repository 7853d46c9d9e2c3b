//! Workato: the management API (legacy API clients + access profiles, v2 API clients + API
//! keys, collections, managed users) mounted at `<url>/workato`, and the API gateway mounted at
//! `<url>/workato-apim`, exactly as docs/sandbox.md and its sandbox decisions (SD-W1…SD-W19)
//! describe them.
//!
//! Every management route exists twice: the Developer API form (`/api/…`, `/api/v2/…`, acting
//! on the admin workspace) and the Embedded form (`/api/managed_users/:managed_user_id/…`,
//! `/api/v2/managed_users/:managed_user_id/…`, acting on a customer workspace). Both forms
//! share one operation; only the legacy list/create wrappers differ (SD-W6).
//!
//! Middleware order on the management router, outermost first: request counting (so 401s and
//! 429s are counted), Bearer authentication, the rolling-window rate limit (SD-W1), injected
//! faults. Operations run under the single state lock and never await while holding it.

pub mod gateway;
pub mod legacy;
pub mod logs;
pub mod model;
pub mod request;
pub mod v2;

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::{json, Value};

use self::model::{WorkatoState, Workspace};
use self::request::{ApiError, ApiResult, Page, Query};
use super::config::WorkatoConfig;
use super::ratelimit::retry_after_secs;
use super::stats::{count_requests, VendorMount};
use super::AppState;

/// Where the management API is mounted.
pub const MOUNT: &str = "/workato";
/// Where the gateway is mounted.
pub const GATEWAY_MOUNT: &str = "/workato-apim";

/// Body of every legacy write after the freeze (SD-W4).
pub const FROZEN_MESSAGE: &str = "Legacy API clients and access profiles can no longer be created or modified. Use API clients (v2) and API keys instead.";
/// Body of every legacy route after the sunset (SD-W5).
pub const RETIRED_MESSAGE: &str = "Legacy API clients and access profiles have been retired.";
/// v2 writes on an `is_legacy` client (SD-W15).
pub const LEGACY_CLIENT_MESSAGE: &str = "Legacy API clients cannot be managed with this endpoint";

/// The auth types Workato knows.
pub const AUTH_TYPES: [&str; 4] = ["token", "jwt", "oauth2", "oidc"];

/// A fresh secret: 64 lowercase hex chars (SD-W16).
pub fn fresh_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Which workspace a request acts on, and its path parameters.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `Some(raw)` on Embedded routes: the `:managed_user_id` as sent (decoded).
    managed_user: Option<String>,
    params: Vec<(String, String)>,
}

impl Scope {
    /// Whether this is an Embedded (`managed_users`) route.
    pub fn embedded(&self) -> bool {
        self.managed_user.is_some()
    }

    /// A numeric path id; anything else is a 404.
    pub fn path_id(&self, name: &str) -> Result<u64, ApiError> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(ApiError::not_found)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params: Vec<(String, String)> =
            match RawPathParams::from_request_parts(parts, state).await {
                Ok(raw) => raw
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                Err(_) => Vec::new(),
            };
        let managed_user = params
            .iter()
            .find(|(k, _)| k == "managed_user_id")
            .map(|(_, v)| v.clone());
        Ok(Self {
            managed_user,
            params,
        })
    }
}

/// What an operation gets besides the state.
pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub cfg: &'a WorkatoConfig,
    pub scope: &'a Scope,
}

impl Ctx<'_> {
    /// Legacy routes are gone after the sunset (SD-W5).
    pub fn legacy_retired(&self) -> bool {
        self.now >= self.cfg.sunset
    }

    /// Gate for legacy reads: 410 after the sunset.
    pub fn legacy_read(&self) -> Result<(), ApiError> {
        if self.legacy_retired() {
            return Err(ApiError::new(StatusCode::GONE, RETIRED_MESSAGE));
        }
        Ok(())
    }

    /// Gate for legacy writes: 410 after the sunset, 400 after the freeze (SD-W4).
    pub fn legacy_write(&self) -> Result<(), ApiError> {
        self.legacy_read()?;
        if self.now >= self.cfg.freeze {
            return Err(ApiError::bad_request(FROZEN_MESSAGE));
        }
        Ok(())
    }

    /// The workspace this request acts on: the admin workspace on Developer routes, the
    /// managed user (numeric id or `E<external id>`) on Embedded routes.
    pub fn workspace_id(&self, w: &WorkatoState) -> Result<u64, ApiError> {
        let Some(raw) = &self.scope.managed_user else {
            return Ok(w.admin_id);
        };
        let found = if let Ok(id) = raw.parse::<u64>() {
            w.workspaces.get(&id)
        } else if let Some(ext) = raw.strip_prefix('E') {
            w.workspaces
                .values()
                .find(|ws| ws.external_id.as_deref() == Some(ext))
        } else {
            None
        };
        match found {
            Some(ws) if ws.id != w.admin_id => Ok(ws.id),
            _ => Err(ApiError::not_found()),
        }
    }

    /// Legacy list wrapper: bare array (Developer) or `{"result": […]}` (Embedded).
    pub fn legacy_wrap(&self, v: Value) -> Value {
        if self.scope.embedded() {
            json!({ "result": v })
        } else {
            v
        }
    }
}

/// Shorthand: the workspace by id, 404 if it vanished.
pub fn ws(w: &WorkatoState, id: u64) -> Result<&Workspace, ApiError> {
    w.workspaces.get(&id).ok_or_else(ApiError::not_found)
}

/// Shorthand: the workspace by id, mutable.
pub fn ws_mut(w: &mut WorkatoState, id: u64) -> Result<&mut Workspace, ApiError> {
    w.workspaces.get_mut(&id).ok_or_else(ApiError::not_found)
}

/// Query and body of a request.
pub struct Input {
    pub query: Query,
    pub body: Bytes,
}

/// A management operation.
pub type Op = fn(&mut WorkatoState, &Ctx, &Input) -> ApiResult;

fn run(app: &AppState, scope: &Scope, input: &Input, op: Op) -> Response {
    let mut inner = app.lock();
    let now = inner.clock.now();
    let ctx = Ctx {
        now,
        cfg: &app.config.workato,
        scope,
    };
    match op(&mut inner.workato, &ctx, input) {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

macro_rules! op {
    ($f:path) => {
        |State(app): State<AppState>, scope: Scope, RawQuery(q): RawQuery, body: Bytes| async move {
            let input = Input {
                query: Query::parse(q.as_deref()),
                body,
            };
            run(&app, &scope, &input, $f)
        }
    };
}

/// `GET /api/managed_users` (SD-W19).
fn list_managed_users(w: &mut WorkatoState, _ctx: &Ctx, input: &Input) -> ApiResult {
    let page = Page::from_query(&input.query)?;
    let items: Vec<Value> = w
        .workspaces
        .values()
        .filter(|ws| ws.id != w.admin_id)
        .map(Workspace::managed_user_wire)
        .collect();
    Ok(json!({ "result": page.slice(&items) }))
}

/// The management router, mounted at [`MOUNT`] by the caller.
pub(crate) fn management_router(app: &AppState) -> Router<AppState> {
    let mut r = Router::new().route("/api/managed_users", get(op!(list_managed_users)));
    for (legacy, v2) in [
        ("/api", "/api/v2"),
        (
            "/api/managed_users/{managed_user_id}",
            "/api/v2/managed_users/{managed_user_id}",
        ),
    ] {
        let profile = format!("{legacy}/api_access_profiles/{{api_access_profile_id}}");
        let client = format!("{v2}/api_clients/{{api_client_id}}");
        let key = format!("{client}/api_keys/{{api_key_id}}");
        r = r
            .route(
                &format!("{legacy}/api_clients"),
                get(op!(legacy::list_clients)).post(op!(legacy::create_client)),
            )
            .route(
                &format!("{legacy}/api_access_profiles"),
                get(op!(legacy::list_profiles)).post(op!(legacy::create_profile)),
            )
            .route(&profile, put(op!(legacy::update_profile)))
            .route(
                &format!("{profile}/enable"),
                put(op!(legacy::enable_profile)),
            )
            .route(
                &format!("{profile}/disable"),
                put(op!(legacy::disable_profile)),
            )
            .route(
                &format!("{profile}/refresh_secret"),
                put(op!(legacy::refresh_profile_secret)),
            )
            .route(
                &format!("{legacy}/api_collections"),
                get(op!(legacy::list_collections)),
            )
            .route(
                &format!("{v2}/api_clients"),
                get(op!(v2::list_clients)).post(op!(v2::create_client)),
            )
            .route(
                &client,
                get(op!(v2::get_client))
                    .put(op!(v2::update_client))
                    .delete(op!(v2::delete_client)),
            )
            .route(
                &format!("{client}/api_keys"),
                get(op!(v2::list_keys)).post(op!(v2::create_key)),
            )
            .route(&key, put(op!(v2::update_key)).delete(op!(v2::delete_key)))
            .route(&format!("{key}/enable"), put(op!(v2::enable_key)))
            .route(&format!("{key}/disable"), put(op!(v2::disable_key)))
            .route(
                &format!("{key}/refresh_secret"),
                put(op!(v2::refresh_key_secret)),
            );
    }
    let vm = VendorMount {
        app: app.clone(),
        vendor: "workato",
        mount: MOUNT,
    };
    r.route_layer(middleware::from_fn_with_state(app.clone(), inject_faults))
        .route_layer(middleware::from_fn_with_state(app.clone(), rate_limit))
        .route_layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .route_layer(middleware::from_fn_with_state(vm, count_requests))
}

/// The gateway router, mounted at [`GATEWAY_MOUNT`] by the caller.
pub(crate) fn gateway_router(app: &AppState) -> Router<AppState> {
    let vm = VendorMount {
        app: app.clone(),
        vendor: "workato-apim",
        mount: GATEWAY_MOUNT,
    };
    gateway::router().route_layer(middleware::from_fn_with_state(vm, count_requests))
}

fn is_embedded(req: &Request) -> bool {
    req.extensions()
        .get::<MatchedPath>()
        .is_some_and(|m| m.as_str().contains("/managed_users"))
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Bearer auth: the admin token may do everything; the developer-only token gets 403 on
/// Embedded routes (SD-W15); anything else is 401.
async fn authenticate(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let cfg = &app.config.workato;
    match bearer(&req) {
        Some(t) if t == cfg.token => {}
        Some(t) if t == cfg.developer_token => {
            if is_embedded(&req) {
                return ApiError::forbidden().into_response();
            }
        }
        _ => return ApiError::unauthorized().into_response(),
    }
    next.run(req).await
}

/// SD-W1: Developer routes share the admin workspace's Developer budget; Embedded routes share
/// the admin workspace's Embedded budget.
async fn rate_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(window) = app.rate_window else {
        return next.run(req).await;
    };
    let cfg = &app.config.workato;
    let verdict = {
        let mut inner = app.lock();
        let admin = inner.workato.admin_id;
        let (scope, limit) = if is_embedded(&req) {
            (
                format!("workato:embedded:{admin}"),
                cfg.embedded_rate_per_minute,
            )
        } else {
            (
                format!("workato:developer:{admin}"),
                cfg.developer_rate_per_minute,
            )
        };
        inner.limiter.check(&scope, limit, window, Instant::now())
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(wait) => too_many_requests(retry_after_secs(wait)),
    }
}

/// 429 with `Retry-After` and Workato's body.
/// An injected fault in Workato's error body (`--faults`).
fn fault_response(status: StatusCode, message: &'static str, retry_after: Option<u64>) -> Response {
    match retry_after {
        Some(secs) => too_many_requests(secs),
        None => (status, Json(json!({ "message": message }))).into_response(),
    }
}

/// Middleware on Workato management routes: the configured faults, in Workato's bodies.
async fn inject_faults(State(app): State<AppState>, req: Request, next: Next) -> Response {
    super::faults::inject_as(&app, fault_response, req, next).await
}

pub(crate) fn too_many_requests(retry_after: u64) -> Response {
    let mut resp =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}
