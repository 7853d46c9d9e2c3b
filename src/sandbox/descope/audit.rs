//! The project's audit trail of access-key exchanges and its search (SD-D17).
//!
//! Every D13 exchange that reaches the handler writes one record: `LoginSucceed` (method
//! `accessKey`, `userId` and `actorId` = the key id) or `LoginFailed` with
//! `data.error_message` (`userId` = the key id when the presented secret is a known key's,
//! else empty). Records are kept in memory up to `[descope] audit_max_records`.
//!
//! `POST /v1/mgmt/audit/search` filters by `userIds`, `actions`, `from`, `to` (epoch ms), pages
//! by `size` (1–1000, default 100) and `page` (from 0), newest first, and answers
//! `{"audits": [...], "total": n}`. A `from` more than 30 days before the sandbox clock is a
//! 400. The route has its own budget, `[descope] audit_rate_per_minute` (default 10) per
//! rolling window scaled by `--rate-scale`, apart from the project budget (SD-D4).

use std::collections::VecDeque;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::request::{body_object, field, opt_string_list, DescopeError};
use crate::sandbox::ratelimit::retry_after_secs;
use crate::sandbox::AppState;

/// How far back `from` may reach.
pub const SEARCH_WINDOW_DAYS: i64 = 30;
/// Page size when `size` is absent or 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest `size`.
pub const MAX_PAGE_SIZE: usize = 1000;

/// One audit record.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Epoch milliseconds, sandbox clock.
    pub occurred: i64,
    /// `LoginSucceed` or `LoginFailed`.
    pub action: &'static str,
    /// The key id, or empty when none matched.
    pub user_id: String,
    pub remote_address: String,
    pub tenants: Vec<String>,
    /// `data.error_message` of a refusal.
    pub error_message: Option<String>,
}

impl AuditRecord {
    /// A successful exchange by key `key_id`.
    pub fn succeeded(
        at: DateTime<Utc>,
        key_id: &str,
        remote: String,
        tenants: Vec<String>,
    ) -> Self {
        Self {
            occurred: at.timestamp_millis(),
            action: "LoginSucceed",
            user_id: key_id.to_owned(),
            remote_address: remote,
            tenants,
            error_message: None,
        }
    }

    /// A refused exchange (`key_id` empty when the secret matched no key).
    pub fn failed(
        at: DateTime<Utc>,
        key_id: &str,
        remote: String,
        tenants: Vec<String>,
        message: &str,
    ) -> Self {
        Self {
            occurred: at.timestamp_millis(),
            action: "LoginFailed",
            user_id: key_id.to_owned(),
            remote_address: remote,
            tenants,
            error_message: Some(message.to_owned()),
        }
    }

    fn wire(&self, project_id: &str) -> Value {
        let mut data = Map::new();
        if let Some(m) = &self.error_message {
            data.insert("error_message".into(), json!(m));
        }
        json!({
            "projectId": project_id,
            "userId": self.user_id,
            "action": self.action,
            "type": if self.error_message.is_some() { "warn" } else { "info" },
            "actorId": self.user_id,
            "occurred": self.occurred,
            "method": "accessKey",
            "remoteAddress": self.remote_address,
            "externalIds": [],
            "tenants": self.tenants,
            "data": data,
        })
    }
}

/// The audit trail, oldest first.
#[derive(Debug, Default)]
pub struct AuditLog {
    records: VecDeque<AuditRecord>,
}

impl AuditLog {
    /// Keep `r`, dropping the oldest beyond `cap` (0 = no cap).
    pub fn push(&mut self, r: AuditRecord, cap: usize) {
        if cap > 0 {
            while self.records.len() >= cap {
                self.records.pop_front();
            }
        }
        self.records.push_back(r);
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// An optional epoch-ms field: a JSON integer (or a string of digits, as the SDKs may send).
fn opt_millis(m: &Map<String, Value>, key: &str) -> Result<Option<i64>, DescopeError> {
    let err = || DescopeError::invalid(format!("The {key} field must be epoch milliseconds"));
    match field(m, key) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(err),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| err()),
        Some(_) => Err(err()),
    }
}

fn opt_count(m: &Map<String, Value>, key: &str) -> Result<Option<i64>, DescopeError> {
    match field(m, key) {
        None => Ok(None),
        Some(v) => v.as_i64().filter(|n| *n >= 0).map(Some).ok_or_else(|| {
            DescopeError::invalid(format!("The {key} field must be a non-negative integer"))
        }),
    }
}

/// `POST /v1/mgmt/audit/search`.
pub(crate) async fn search(State(app): State<AppState>, body: Bytes) -> Response {
    match search_inner(&app, &body) {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn search_inner(app: &AppState, body: &[u8]) -> Result<Value, DescopeError> {
    let m = body_object(body)?;
    let user_ids = opt_string_list(&m, "userIds")?.filter(|v| !v.is_empty());
    let actions = opt_string_list(&m, "actions")?.filter(|v| !v.is_empty());
    let from = opt_millis(&m, "from")?;
    let to = opt_millis(&m, "to")?;
    let size = match opt_count(&m, "size")? {
        None | Some(0) => DEFAULT_PAGE_SIZE,
        Some(n) if n as usize <= MAX_PAGE_SIZE => n as usize,
        Some(n) => {
            return Err(DescopeError::invalid(format!(
                "The size field must be at most {MAX_PAGE_SIZE}, got {n}"
            )))
        }
    };
    let page = usize::try_from(opt_count(&m, "page")?.unwrap_or(0)).unwrap_or(usize::MAX);
    let inner = app.lock();
    let now = inner.clock.now();
    let earliest = (now - Duration::days(SEARCH_WINDOW_DAYS)).timestamp_millis();
    if from.is_some_and(|f| f < earliest) {
        return Err(DescopeError::invalid(format!(
            "The from field may not be older than {SEARCH_WINDOW_DAYS} days"
        )));
    }
    let mut hits: Vec<&AuditRecord> = inner
        .descope
        .audit
        .records
        .iter()
        .rev()
        .filter(|r| user_ids.as_ref().is_none_or(|u| u.contains(&r.user_id)))
        .filter(|r| {
            actions
                .as_ref()
                .is_none_or(|a| a.iter().any(|x| x == r.action))
        })
        .filter(|r| from.is_none_or(|f| r.occurred >= f) && to.is_none_or(|t| r.occurred <= t))
        .collect();
    // Newest first; records of the same millisecond keep reverse arrival order.
    hits.sort_by_key(|r| std::cmp::Reverse(r.occurred));
    let project_id = &app.config.descope.project_id;
    let audits: Vec<Value> = hits
        .iter()
        .skip(page.saturating_mul(size))
        .take(size)
        .map(|r| r.wire(project_id))
        .collect();
    Ok(json!({ "audits": audits, "total": hits.len() }))
}

/// The search's own budget (SD-D17), on the monotonic clock like every limit.
pub(crate) async fn rate_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(window) = app.rate_window else {
        return next.run(req).await;
    };
    let verdict = app.lock().limiter.check(
        "descope:audit-search",
        app.config.descope.audit_rate_per_minute,
        window,
        Instant::now(),
    );
    match verdict {
        Ok(()) => next.run(req).await,
        Err(wait) => DescopeError::rate_limited(retry_after_secs(wait)).into_response(),
    }
}
