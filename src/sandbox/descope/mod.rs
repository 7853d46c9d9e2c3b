//! Descope: the access-key management API, the key exchange and the project JWKS, mounted at
//! `<url>/descope`, exactly as docs/sandbox-descope.md and its sandbox decisions SD-D1…SD-D16
//! describe them. Descope is a migration **target** only: the project starts with roles and
//! tenants seeded from the Workato inventory ([`project`]) and no access keys.
//!
//! Routes, relative to the mount (stats patterns are exactly these):
//!
//! | Route | Op |
//! |---|---|
//! | `POST /v1/mgmt/accesskey/create` | D1 [`ops::create`] |
//! | `GET /v1/mgmt/accesskey?id=` | D2 [`ops::load`] |
//! | `POST /v1/mgmt/accesskey/search` | D3 [`ops::search`] |
//! | `POST /v1/mgmt/accesskey/update` | D4 [`ops::update`] |
//! | `POST /v1/mgmt/accesskey/{activate,deactivate,delete}[/batch]` | D5–D10 |
//! | `POST /v1/mgmt/accesskey/rotate` | D11 [`ops::rotate`] |
//! | `POST /v1/mgmt/accesskey/import` | D12, 501 (SD-D15) |
//! | `GET /v1/mgmt/license` | D15 |
//! | `GET /v1/mgmt/role/all`, `GET /v1/mgmt/tenant/all` | project reads (sandbox extras) |
//! | `POST /v1/mgmt/audit/search` | SD-D17 [`audit::search`] (own budget) |
//! | `POST /v1/auth/accesskey/exchange` | D13 [`exchange::exchange`] |
//! | `GET /v2/keys/:project_id` | D14 [`exchange::jwks`] |
//!
//! Middleware, outermost first: request counting; on management routes and the exchange, the
//! SD-D16 "CDN 503" knob and the SD-D4 rate limit (audit search: its own budget instead); on
//! management routes only, management-key auth (SD-D2) and `--faults`. The JWKS has none of
//! them. Every exchange writes an audit record ([`audit`], SD-D17). Operations run under the single state
//! lock and never await while holding it; this module never prints.

pub mod audit;
pub mod definitions;
pub mod exchange;
pub mod fixture;
pub mod model;
pub mod ops;
pub mod project;
pub mod request;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use self::model::DescopeState;
use self::ops::{Ctx, Input, Op};
use self::project::Project;
use self::request::{body_object, DescopeError};
use super::config::DescopeConfig;
use super::faults;
use super::ratelimit::retry_after_secs;
use super::stats::{count_requests, VendorMount};
use super::workato::model::WorkatoState;
use super::AppState;

/// Where Descope is mounted (SD-D1).
pub const MOUNT: &str = "/descope";

/// The Descope state at start: the project seeded from `workato` and the config, then the
/// fixture's `descope` object if a fixture is given.
pub fn build(
    cfg: &DescopeConfig,
    workato: &WorkatoState,
    fixture_path: Option<&Path>,
    start: DateTime<Utc>,
) -> anyhow::Result<DescopeState> {
    let mut project = Project::seed(workato, cfg);
    let keys = match fixture_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading fixture {}", path.display()))?;
            let doc: Value = serde_json::from_str(&text)
                .with_context(|| format!("fixture {}: not valid JSON", path.display()))?;
            fixture::load(&doc, &mut project, cfg, start)
                .with_context(|| format!("fixture {}", path.display()))?
        }
        None => BTreeMap::new(),
    };
    Ok(DescopeState {
        project,
        keys,
        fail_next: cfg.fail_first_calls,
        ..DescopeState::default()
    })
}

fn run(app: &AppState, query: Option<&str>, body: &[u8], op: Op) -> Response {
    let body = match body_object(body) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let query_id = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "id")
            .map(|(_, v)| v.into_owned())
    });
    let input = Input { body, query_id };
    let mut inner = app.lock();
    let ctx = Ctx {
        now: inner.clock.now(),
        cfg: &app.config.descope,
    };
    match op(&mut inner.descope, &ctx, &input) {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

macro_rules! op {
    ($f:path) => {
        |State(app): State<AppState>, RawQuery(q): RawQuery, body: Bytes| async move {
            run(&app, q.as_deref(), &body, $f)
        }
    };
}

/// Every Descope route, mounted at [`MOUNT`] by the caller.
pub(crate) fn router(app: &AppState) -> Router<AppState> {
    const KEY: &str = "/v1/mgmt/accesskey";
    let management = Router::new()
        .route(&format!("{KEY}/create"), post(op!(ops::create)))
        .route(KEY, get(op!(ops::load)))
        .route(&format!("{KEY}/search"), post(op!(ops::search)))
        .route(&format!("{KEY}/update"), post(op!(ops::update)))
        .route(&format!("{KEY}/activate"), post(op!(ops::activate)))
        .route(&format!("{KEY}/deactivate"), post(op!(ops::deactivate)))
        .route(&format!("{KEY}/delete"), post(op!(ops::delete)))
        .route(
            &format!("{KEY}/activate/batch"),
            post(op!(ops::activate_batch)),
        )
        .route(
            &format!("{KEY}/deactivate/batch"),
            post(op!(ops::deactivate_batch)),
        )
        .route(&format!("{KEY}/delete/batch"), post(op!(ops::delete_batch)))
        .route(&format!("{KEY}/rotate"), post(op!(ops::rotate)))
        .route(&format!("{KEY}/import"), post(op!(ops::import)))
        .route("/v1/mgmt/license", get(op!(ops::license)))
        .route("/v1/mgmt/role/all", get(op!(ops::roles)))
        .route("/v1/mgmt/tenant/all", get(op!(ops::tenants)))
        .route_layer(middleware::from_fn_with_state(app.clone(), inject_faults))
        .route_layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .route_layer(middleware::from_fn_with_state(app.clone(), rate_limit))
        .route_layer(middleware::from_fn_with_state(app.clone(), cdn_failures));
    let audit = Router::new()
        .route("/v1/mgmt/audit/search", post(audit::search))
        .route_layer(middleware::from_fn_with_state(app.clone(), inject_faults))
        .route_layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            audit::rate_limit,
        ))
        .route_layer(middleware::from_fn_with_state(app.clone(), cdn_failures));
    let exchange = Router::new()
        .route("/v1/auth/accesskey/exchange", post(exchange::exchange))
        .route_layer(middleware::from_fn_with_state(app.clone(), rate_limit))
        .route_layer(middleware::from_fn_with_state(app.clone(), cdn_failures));
    let vm = VendorMount {
        app: app.clone(),
        vendor: "descope",
        mount: MOUNT,
    };
    management
        .merge(audit)
        .merge(exchange)
        .route("/v2/keys/{project_id}", get(exchange::jwks))
        .route_layer(middleware::from_fn_with_state(vm, count_requests))
        .fallback(not_found)
}

async fn not_found() -> Response {
    DescopeError::not_found("No such Descope route").into_response()
}

/// SD-D2: `Authorization: Bearer <ProjectID>:<ManagementKey>[:<ignored>]`.
async fn authenticate(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let cfg = &app.config.descope;
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match exchange::project_bearer(auth) {
        Some((p, k)) if p == cfg.project_id && k == cfg.management_key => next.run(req).await,
        _ => DescopeError::unauthorized("Invalid project ID or management key").into_response(),
    }
}

/// SD-D4: one budget per project over management calls and the exchange; a breach starts a
/// backoff (`rate_backoff_secs`, scaled by `--rate-scale` like the window).
async fn rate_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(window) = app.rate_window else {
        return next.run(req).await;
    };
    let cfg = &app.config.descope;
    let backoff = window.mul_f64(cfg.rate_backoff_secs as f64 / 60.0);
    let verdict =
        app.lock()
            .descope
            .limiter
            .check(cfg.rate_per_minute, window, backoff, Instant::now());
    match verdict {
        Ok(()) => next.run(req).await,
        Err(wait) => DescopeError::rate_limited(retry_after_secs(wait)).into_response(),
    }
}

/// What the CDN in front of Descope answers when the API is unreachable: HTML, not JSON.
fn cdn_error(status: StatusCode) -> Response {
    let text = format!(
        "<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center></body></html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        text,
    )
        .into_response()
}

/// SD-D16: the next `fail_next` counted calls get a non-JSON 503.
async fn cdn_failures(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let fail = {
        let mut inner = app.lock();
        let left = &mut inner.descope.fail_next;
        let fail = *left > 0;
        *left = left.saturating_sub(1);
        fail
    };
    if fail {
        return cdn_error(StatusCode::SERVICE_UNAVAILABLE);
    }
    next.run(req).await
}

/// How `--faults` answers on Descope management routes: 429 `E130429` for throttles and storms,
/// the CDN's HTML for 502/503/504 (docs/sandbox-descope.md, "Faults and test knobs"; SD-D4).
fn descope_fault(status: StatusCode, _message: &'static str, retry_after: Option<u64>) -> Response {
    match retry_after {
        Some(secs) => DescopeError::rate_limited(secs).into_response(),
        None => cdn_error(status),
    }
}

/// `--faults` on management routes.
async fn inject_faults(State(app): State<AppState>, req: Request, next: Next) -> Response {
    faults::inject_as(&app, descope_fault, req, next).await
}

/// `POST /_sandbox/descope/fail-next {"count": N}`: answer the next N counted Descope calls
/// with a non-JSON 503 (SD-D16). `GET` reports how many are left.
pub(crate) async fn set_fail_next(State(app): State<AppState>, body: Bytes) -> Response {
    let count = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("count").and_then(Value::as_u64))
        .and_then(|n| u32::try_from(n).ok());
    match count {
        Some(n) => {
            app.lock().descope.fail_next = n;
            Json(json!({ "fail_next": n })).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "expected {\"count\": <non-negative integer>}"})),
        )
            .into_response(),
    }
}

/// `GET /_sandbox/descope/fail-next`.
pub(crate) async fn get_fail_next(State(app): State<AppState>) -> Json<Value> {
    Json(json!({ "fail_next": app.lock().descope.fail_next }))
}
