//! Inference and its request logs (SD-B16, SD-B17).
//!
//! - `POST /v1/chat/completions` — an inference stub authenticated by a virtual key only
//!   (`x-bf-vk`, or `Authorization: Bearer <value>`): standalone keys and the profile-managed
//!   keys of users' profile copies alike. An active key answers a minimal OpenAI-shaped
//!   completion; an unknown, inactive, expired or not-yet-usable key answers 401 in the
//!   BifrostError envelope. A profile-managed key keeps working when its access profile is
//!   deactivated: only the key's own state counts. Not rate limited, never
//!   faulted, counted in `/_sandbox/stats`.
//! - Every inference call is logged, success or error, with the matched key's id and name,
//!   `provider: "sandbox"`, the body's `model`, the sandbox-clock time and the latency — unless
//!   `[bifrost] logging = false`; `[bifrost] log_drop_rate` drops that share of log writes
//!   and counts them.
//! - `GET /api/logs`, `GET /api/logs/stats`, `GET /api/logs/dropped` — the published c05dc82
//!   shapes (`SearchLogsResponse`, `LogStats`, `DroppedRequestsResponse`), behind the
//!   management middleware like every management route.

use std::cmp::Ordering;
use std::collections::VecDeque;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SubsecRound, Utc};
use rand::Rng;
use serde_json::{json, Map, Value};

use super::model::{bf_time, num, uuid_v4, BifrostState, VirtualKey};
use super::request::{query_bool, query_int, BfError, Query};
use crate::sandbox::AppState;

/// The provider every sandbox inference is logged under.
pub const PROVIDER: &str = "sandbox";

/// One logged inference call.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub id: String,
    pub timestamp: DateTime<Utc>,
    /// `success` or `error`.
    pub status: &'static str,
    pub object: &'static str,
    pub provider: String,
    pub model: String,
    /// Milliseconds.
    pub latency: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost: f64,
    pub virtual_key_id: Option<String>,
    pub virtual_key_name: Option<String>,
    pub error: Option<String>,
}

impl LogEntry {
    fn total_tokens(&self) -> i64 {
        self.input_tokens + self.output_tokens
    }

    /// The `LogEntry` of the published spec.
    pub fn wire(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("provider".into(), json!(self.provider));
        m.insert("model".into(), json!(self.model));
        m.insert("status".into(), json!(self.status));
        m.insert("object".into(), json!(self.object));
        m.insert("timestamp".into(), json!(bf_time(self.timestamp)));
        m.insert("latency".into(), num(self.latency));
        m.insert("input_tokens".into(), json!(self.input_tokens));
        m.insert("output_tokens".into(), json!(self.output_tokens));
        m.insert("total_tokens".into(), json!(self.total_tokens()));
        m.insert("cost".into(), num(self.cost));
        if let Some(id) = &self.virtual_key_id {
            m.insert("virtual_key_id".into(), json!(id));
        }
        if let Some(name) = &self.virtual_key_name {
            m.insert("virtual_key_name".into(), json!(name));
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), json!({ "message": e }));
        }
        m.insert("created_at".into(), json!(bf_time(self.timestamp)));
        Value::Object(m)
    }
}

/// The logs, oldest first, and the writes dropped.
#[derive(Debug, Default)]
pub struct LogStore {
    entries: VecDeque<LogEntry>,
    dropped: u64,
}

impl LogStore {
    /// Log `e` unless logging is off, or drop it with probability `drop_rate` (counted).
    pub fn write(&mut self, e: LogEntry, logging: bool, drop_rate: f64, cap: usize) {
        if !logging {
            return;
        }
        if drop_rate > 0.0 && rand::thread_rng().gen_bool(drop_rate.clamp(0.0, 1.0)) {
            self.dropped += 1;
            return;
        }
        if cap > 0 {
            while self.entries.len() >= cap {
                self.entries.pop_front();
            }
        }
        self.entries.push_back(e);
    }

    /// Log writes dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The virtual key presented: `x-bf-vk`, else `Authorization: Bearer`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-bf-vk")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or_else(|| super::bearer(headers))
        .filter(|s| !s.is_empty())
}

/// The key whose current or rotated-out value this is, and whether it may call now.
fn find_key<'a>(
    st: &'a BifrostState,
    presented: &str,
    now: DateTime<Utc>,
) -> Option<(&'a VirtualKey, bool)> {
    let k = st.virtual_keys.iter().find(|k| {
        k.value.matches(presented) || k.retired_values.iter().any(|(v, _)| v.matches(presented))
    })?;
    let usable = k.is_active && k.accepts(presented, now) && k.expires_at.is_none_or(|e| e > now);
    Some((k, usable))
}

/// `POST /v1/chat/completions` (SD-B16).
pub(crate) async fn chat_completions(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let parsed = serde_json::from_slice::<Value>(&body).ok();
    let model = parsed
        .as_ref()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let prompt_chars: usize = parsed
        .as_ref()
        .and_then(|v| v.get("messages"))
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.get("content").and_then(Value::as_str))
                .map(str::len)
                .sum()
        })
        .unwrap_or(0);
    let mut inner = app.lock();
    let now = inner.clock.now();
    let matched = presented_key(&headers).and_then(|p| find_key(&inner.bifrost, p, now));
    let (vk_id, vk_name) = match matched {
        Some((k, _)) => (Some(k.id.clone()), Some(k.name.clone())),
        None => (None, None),
    };
    let outcome: Result<Value, BfError> = match (matched, &model) {
        (None | Some((_, false)), _) => Err(BfError::new(
            StatusCode::UNAUTHORIZED,
            "invalid or inactive virtual key",
        )),
        (Some(_), None) if parsed.as_ref().is_none_or(|v| !v.is_object()) => Err(
            BfError::bad_request("the request body is not a JSON object"),
        ),
        (Some(_), None) => Err(BfError::bad_request("model is required")),
        (Some(_), Some(m)) => {
            let input = i64::try_from(prompt_chars / 4 + 1).unwrap_or(i64::MAX);
            Ok(json!({
                "id": format!("chatcmpl-{}", uuid_v4(&mut rand::thread_rng())),
                "object": "chat.completion",
                "created": now.timestamp(),
                "model": m,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "keyshift sandbox reply"},
                    "finish_reason": "stop",
                }],
                "usage": {"prompt_tokens": input, "completion_tokens": 4,
                          "total_tokens": input + 4},
            }))
        }
    };
    let (input_tokens, output_tokens) = match &outcome {
        Ok(v) => (
            v["usage"]["prompt_tokens"].as_i64().unwrap_or(0),
            v["usage"]["completion_tokens"].as_i64().unwrap_or(0),
        ),
        Err(_) => (0, 0),
    };
    let latency = (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    let cfg = &app.config.bifrost;
    let entry = LogEntry {
        id: uuid_v4(&mut rand::thread_rng()),
        // Whole seconds, as every Bifrost timestamp is shown (SD-B13), so that filters and
        // answers agree.
        timestamp: now.trunc_subsecs(0),
        status: if outcome.is_ok() { "success" } else { "error" },
        object: "chat_completion",
        provider: PROVIDER.to_owned(),
        model: model.unwrap_or_default(),
        latency,
        input_tokens,
        output_tokens,
        cost: 0.0,
        virtual_key_id: vk_id,
        virtual_key_name: vk_name,
        error: outcome.as_ref().err().map(|e| e.message.clone()),
    };
    inner
        .bifrost_logs
        .write(entry, cfg.logging, cfg.log_drop_rate, cfg.log_max_entries);
    drop(inner);
    match outcome {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The filters `/api/logs` and `/api/logs/stats` share (the published parameters).
#[derive(Debug, Default)]
struct Filters {
    providers: Option<Vec<String>>,
    models: Option<Vec<String>>,
    statuses: Option<Vec<String>>,
    objects: Option<Vec<String>>,
    selected_key_ids: Option<Vec<String>>,
    virtual_key_ids: Option<Vec<String>>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    min_latency: Option<f64>,
    max_latency: Option<f64>,
    min_tokens: Option<i64>,
    max_tokens: Option<i64>,
    min_cost: Option<f64>,
    max_cost: Option<f64>,
    missing_cost_only: bool,
    content_search: Option<String>,
}

fn list(q: &Query, key: &str) -> Option<Vec<String>> {
    let items: Vec<String> = q
        .get(key)?
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    (!items.is_empty()).then_some(items)
}

fn time(q: &Query, key: &str) -> Result<Option<DateTime<Utc>>, BfError> {
    match q.get(key) {
        None => Ok(None),
        Some(raw) => DateTime::parse_from_rfc3339(raw.trim())
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                BfError::bad_request(format!(
                    "invalid {key} parameter: {raw:?} (expected an RFC 3339 date-time)"
                ))
            }),
    }
}

fn number(q: &Query, key: &str) -> Result<Option<f64>, BfError> {
    let Some(raw) = q.get(key) else {
        return Ok(None);
    };
    let s = raw.trim();
    let numeric = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    match s.parse::<f64>() {
        Ok(x) if numeric && x.is_finite() => Ok(Some(x)),
        _ => Err(BfError::bad_request(format!(
            "invalid {key} parameter: {raw:?} (expected a number)"
        ))),
    }
}

impl Filters {
    fn parse(q: &Query) -> Result<Self, BfError> {
        Ok(Self {
            providers: list(q, "providers"),
            models: list(q, "models"),
            statuses: list(q, "status"),
            objects: list(q, "objects"),
            selected_key_ids: list(q, "selected_key_ids"),
            virtual_key_ids: list(q, "virtual_key_ids"),
            start: time(q, "start_time")?,
            end: time(q, "end_time")?,
            min_latency: number(q, "min_latency")?,
            max_latency: number(q, "max_latency")?,
            min_tokens: query_int(q, "min_tokens")?,
            max_tokens: query_int(q, "max_tokens")?,
            min_cost: number(q, "min_cost")?,
            max_cost: number(q, "max_cost")?,
            missing_cost_only: query_bool(q, "missing_cost_only")?.unwrap_or(false),
            content_search: q
                .get("content_search")
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty()),
        })
    }

    fn admits(&self, e: &LogEntry) -> bool {
        let among = |list: &Option<Vec<String>>, v: Option<&str>| {
            list.as_ref()
                .is_none_or(|l| v.is_some_and(|v| l.iter().any(|x| x == v)))
        };
        among(&self.providers, Some(&e.provider))
            && among(&self.models, Some(&e.model))
            && among(&self.statuses, Some(e.status))
            && among(&self.objects, Some(e.object))
            && among(&self.selected_key_ids, None)
            && among(&self.virtual_key_ids, e.virtual_key_id.as_deref())
            && self.start.is_none_or(|t| e.timestamp >= t)
            && self.end.is_none_or(|t| e.timestamp <= t)
            && self.min_latency.is_none_or(|x| e.latency >= x)
            && self.max_latency.is_none_or(|x| e.latency <= x)
            && self.min_tokens.is_none_or(|x| e.total_tokens() >= x)
            && self.max_tokens.is_none_or(|x| e.total_tokens() <= x)
            && self.min_cost.is_none_or(|x| e.cost >= x)
            && self.max_cost.is_none_or(|x| e.cost <= x)
            // Every sandbox entry has a cost (0).
            && !self.missing_cost_only
            && self.content_search.as_ref().is_none_or(|needle| {
                e.model.to_lowercase().contains(needle)
                    || e.error
                        .as_ref()
                        .is_some_and(|m| m.to_lowercase().contains(needle))
            })
    }
}

/// Management reads run under the state lock, on the log store.
fn read(
    app: &AppState,
    query: Option<&str>,
    f: fn(&LogStore, &Query) -> Result<Value, BfError>,
) -> Response {
    let q = Query::parse(query);
    let inner = app.lock();
    match f(&inner.bifrost_logs, &q) {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/logs`: filters, then `sort_by` (`timestamp`, `latency`, `tokens`, `cost`) in
/// `order` (`desc` by default), then `offset` and `limit` (default 50, 1–1000).
fn search(store: &LogStore, q: &Query) -> Result<Value, BfError> {
    let filters = Filters::parse(q)?;
    let limit = match query_int(q, "limit")? {
        None => 50,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(n) => {
            return Err(BfError::bad_request(format!(
                "invalid limit parameter: {n} (expected an integer from 1 to 1000)"
            )))
        }
    };
    let offset = match query_int(q, "offset")? {
        None => 0,
        Some(n) if n >= 0 => n,
        Some(n) => {
            return Err(BfError::bad_request(format!(
                "invalid offset parameter: {n} (expected an integer >= 0)"
            )))
        }
    };
    let sort_by = q.get("sort_by").unwrap_or("timestamp");
    let key: fn(&LogEntry, &LogEntry) -> Ordering = match sort_by {
        "timestamp" => |a, b| a.timestamp.cmp(&b.timestamp),
        "latency" => |a, b| a.latency.total_cmp(&b.latency),
        "tokens" => |a, b| a.total_tokens().cmp(&b.total_tokens()),
        "cost" => |a, b| a.cost.total_cmp(&b.cost),
        other => {
            return Err(BfError::bad_request(format!(
                "invalid sort_by parameter: {other:?} (expected timestamp, latency, tokens or cost)"
            )))
        }
    };
    let descending = match q.get("order").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        other => {
            return Err(BfError::bad_request(format!(
                "invalid order parameter: {other:?} (expected asc or desc)"
            )))
        }
    };
    // Oldest first, so equal keys keep arrival order (reversed when descending).
    let mut hits: Vec<&LogEntry> = store.entries.iter().filter(|e| filters.admits(e)).collect();
    if descending {
        hits.reverse();
        hits.sort_by(|a, b| key(b, a));
    } else {
        hits.sort_by(|a, b| key(a, b));
    }
    let total = hits.len();
    let page: Vec<Value> = hits
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(50))
        .map(LogEntry::wire)
        .collect();
    Ok(json!({"logs": page, "total": total, "offset": offset, "limit": limit}))
}

/// `GET /api/logs/stats`: `LogStats` over the filtered entries (`success_rate` in percent,
/// `average_latency` in ms).
fn stats(store: &LogStore, q: &Query) -> Result<Value, BfError> {
    let filters = Filters::parse(q)?;
    let hits: Vec<&LogEntry> = store.entries.iter().filter(|e| filters.admits(e)).collect();
    let total = hits.len();
    let successes = hits.iter().filter(|e| e.status == "success").count();
    let tokens: i64 = hits.iter().map(|e| e.total_tokens()).sum();
    let cost: f64 = hits.iter().map(|e| e.cost).sum();
    let latency: f64 = hits.iter().map(|e| e.latency).sum();
    let (average_latency, success_rate) = if total == 0 {
        (0.0, 0.0)
    } else {
        (
            latency / total as f64,
            successes as f64 * 100.0 / total as f64,
        )
    };
    Ok(json!({
        "total_requests": total,
        "total_tokens": tokens,
        "total_cost": num(cost),
        "average_latency": num(average_latency),
        "success_rate": num(success_rate),
    }))
}

fn dropped(store: &LogStore, _q: &Query) -> Result<Value, BfError> {
    Ok(json!({ "dropped_requests": store.dropped() }))
}

pub(crate) async fn get_logs(State(app): State<AppState>, RawQuery(q): RawQuery) -> Response {
    read(&app, q.as_deref(), search)
}

pub(crate) async fn get_logs_stats(State(app): State<AppState>, RawQuery(q): RawQuery) -> Response {
    read(&app, q.as_deref(), stats)
}

pub(crate) async fn get_logs_dropped(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
) -> Response {
    read(&app, q.as_deref(), dropped)
}
