//! Reading Bifrost requests and writing Bifrost errors.
//!
//! Every 4xx/5xx is a `BifrostError` envelope as the management handlers write it:
//! `{"is_bifrost_error": false, "status_code": N, "error": {"message": "…"}}`. Bodies are parsed
//! by hand from bytes so a malformed request gets that envelope rather than an axum rejection.
//! Unknown JSON fields are ignored, as Go's decoder does. Paging is `limit`/`offset` with the
//! clamps of SD-B4.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::sandbox::workato::request::Field;

/// A Bifrost error response.
#[derive(Debug, Clone)]
pub struct BfError {
    pub status: StatusCode,
    pub message: String,
    /// `error.type` (only the rate limiter sets it).
    pub kind: Option<&'static str>,
    pub retry_after: Option<u64>,
}

impl BfError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: None,
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }
    pub fn forbidden(permission: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("missing permission {permission}"),
        )
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub fn not_implemented() -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "this route is not implemented by the keyshift sandbox",
        )
    }
    /// 429 with `Retry-After` (SD-B2).
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "Too Many Requests".to_owned(),
            kind: Some("rate_limited"),
            retry_after: Some(retry_after),
        }
    }

    pub fn body(&self) -> Value {
        let mut error = json!({ "message": self.message });
        if let Some(k) = self.kind {
            error["type"] = json!(k);
        }
        json!({"is_bifrost_error": false, "status_code": self.status.as_u16(), "error": error})
    }
}

impl IntoResponse for BfError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Status and body of a successful operation.
pub type Reply = (StatusCode, Value);
/// Result of an operation.
pub type BfResult = Result<Reply, BfError>;

/// 200 with `body`.
pub fn ok(body: Value) -> BfResult {
    Ok((StatusCode::OK, body))
}

/// A JSON object body of an operation whose `requestBody` is `required: true` (A5, A6, V2,
/// V4): an empty body is refused, it never means `{}`.
pub fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, BfError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BfError::bad_request(
            "invalid request format: a JSON request body is required",
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(BfError::bad_request(
            "invalid request format: expected a JSON object",
        )),
        Err(e) => Err(BfError::bad_request(format!("invalid request format: {e}"))),
    }
}

/// `key` of `obj` as a tri-state.
pub fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Field<&'a Value> {
    match obj.get(key) {
        None => Field::Absent,
        Some(Value::Null) => Field::Null,
        Some(v) => Field::Set(v),
    }
}

/// `key` of `obj` where the published schema does not allow `null`: absent → `None`,
/// `null` → 400.
pub fn non_null<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Value>, BfError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Null) => Err(type_error(&join(path, key), "set (null is not allowed)")),
        Some(v) => Ok(Some(v)),
    }
}

/// `parent.key` (or `key` at the top level).
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Whether a name holds a control character (names refuse them).
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Longest access-profile or virtual-key name (the `varchar(255)` columns), a sandbox decision.
pub const MAX_NAME_CHARS: usize = 255;

/// An access-profile or virtual-key name as sent: trimmed, non-blank, at most
/// [`MAX_NAME_CHARS`] characters, no control characters.
pub fn object_name(v: &Value) -> Result<String, BfError> {
    let name = as_str(v, "name")?.trim();
    if name.is_empty() {
        return Err(BfError::bad_request("name is required"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(BfError::bad_request(format!(
            "name must be at most {MAX_NAME_CHARS} characters"
        )));
    }
    if has_control(name) {
        return Err(BfError::bad_request(
            "name cannot contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn type_error(path: &str, what: &str) -> BfError {
    BfError::bad_request(format!("invalid request format: {path} must be {what}"))
}

pub fn as_str<'a>(v: &'a Value, path: &str) -> Result<&'a str, BfError> {
    v.as_str().ok_or_else(|| type_error(path, "a string"))
}

pub fn as_bool(v: &Value, path: &str) -> Result<bool, BfError> {
    v.as_bool().ok_or_else(|| type_error(path, "a boolean"))
}

pub fn as_f64(v: &Value, path: &str) -> Result<f64, BfError> {
    v.as_f64().ok_or_else(|| type_error(path, "a number"))
}

pub fn as_array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, BfError> {
    v.as_array().ok_or_else(|| type_error(path, "an array"))
}

pub fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, BfError> {
    v.as_object().ok_or_else(|| type_error(path, "an object"))
}

pub fn string_list(v: &Value, path: &str) -> Result<Vec<String>, BfError> {
    as_array(v, path)?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| type_error(path, "an array of strings"))
}

/// An optional string field (`null` → 400: no request string is nullable).
pub fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, BfError> {
    match non_null(obj, key, path)? {
        Some(v) => Ok(Some(as_str(v, &join(path, key))?.to_owned())),
        None => Ok(None),
    }
}

/// An optional string-list field (`null` → 400).
pub fn opt_string_list(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<Vec<String>>, BfError> {
    match non_null(obj, key, path)? {
        Some(v) => Ok(Some(string_list(v, &join(path, key))?)),
        None => Ok(None),
    }
}

/// An optional boolean field (`null` → 400).
pub fn opt_bool(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<bool>, BfError> {
    match non_null(obj, key, path)? {
        Some(v) => Ok(Some(as_bool(v, &join(path, key))?)),
        None => Ok(None),
    }
}

/// An integer query parameter (absent = `None`): digits with an optional sign, saturating at
/// the int64 bounds; anything else, the empty value included, → 400.
pub fn query_int(q: &Query, key: &str) -> Result<Option<i64>, BfError> {
    let Some(raw) = q.get(key) else {
        return Ok(None);
    };
    let s = raw.trim();
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BfError::bad_request(format!(
            "invalid {key} parameter: {raw:?} (expected an integer)"
        )));
    }
    let negative = s.starts_with('-');
    Ok(Some(match s.parse::<i64>() {
        Ok(n) => n,
        Err(_) if negative => i64::MIN,
        Err(_) => i64::MAX,
    }))
}

/// A boolean query parameter: `true`/`false` (absent = `None`); anything else, the empty
/// value included, → 400.
pub fn query_bool(q: &Query, key: &str) -> Result<Option<bool>, BfError> {
    match q.get(key).map(str::trim) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(BfError::bad_request(format!(
            "invalid {key} parameter: {other:?} (expected true or false)"
        ))),
    }
}

/// An integer (JSON number without fraction).
pub fn as_i64(v: &Value, path: &str) -> Result<i64, BfError> {
    if let Some(n) = v.as_i64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(f as i64),
        _ => Err(type_error(path, "an integer")),
    }
}

/// The query string reader is the Workato sandbox's (first value wins).
pub use crate::sandbox::workato::request::Query;

/// Default and maximum page sizes (SD-B4).
pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 100;

/// `limit`/`offset` paging; `limit: None` = no paging parameter at all → everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: Option<usize>,
    pub offset: usize,
}

impl Page {
    /// Parse. The published list operations type `limit`/`offset` as integers and document
    /// no 400, so any integer is taken: `limit` ≤ 0 → 25, over 100 → 100, a negative `offset`
    /// → 0, values beyond int64 saturate. What is not an integer (empty included) → 400.
    pub fn from_query(q: &Query) -> Result<Self, BfError> {
        let limit = query_int(q, "limit")?;
        let offset = query_int(q, "offset")?;
        if limit.is_none() && offset.is_none() {
            return Ok(Self {
                limit: None,
                offset: 0,
            });
        }
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if n <= 0 => DEFAULT_LIMIT,
            Some(n) => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
        };
        Ok(Self {
            limit: Some(limit),
            offset: usize::try_from(offset.unwrap_or(0).max(0)).unwrap_or(usize::MAX),
        })
    }

    /// `{"<key>": page, "count", "total_count", "limit", "offset"}` — `count` = this page.
    pub fn envelope(&self, key: &str, all: Vec<Value>) -> Value {
        let total = all.len();
        let limit = self.limit.unwrap_or(total);
        let items: Vec<Value> = all.into_iter().skip(self.offset).take(limit).collect();
        json!({key: items, "count": items.len(), "total_count": total, "limit": limit,
               "offset": self.offset})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(q: &str) -> Result<Page, BfError> {
        Page::from_query(&Query::parse(Some(q)))
    }

    #[test]
    fn paging_clamps() {
        assert_eq!(
            page("").unwrap(),
            Page {
                limit: None,
                offset: 0
            }
        );
        assert_eq!(page("limit=0").unwrap().limit, Some(25));
        assert_eq!(page("limit=500").unwrap().limit, Some(100));
        assert_eq!(page("offset=3").unwrap().limit, Some(25));
        // Integers of any size are taken (the published lists document no 400).
        assert_eq!(page("limit=-1").unwrap().limit, Some(25));
        assert_eq!(page("offset=-2").unwrap().offset, 0);
        assert_eq!(
            page("offset=8692934505742622261248").unwrap().offset,
            usize::try_from(i64::MAX).unwrap()
        );
        for bad in ["limit=x", "offset=1.5", "limit=", "offset=-"] {
            assert_eq!(
                page(bad).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        let all: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let e = page("limit=2&offset=4").unwrap().envelope("x", all.clone());
        assert_eq!(
            e,
            json!({"x": [4], "count": 1, "total_count": 5, "limit": 2, "offset": 4})
        );
        let e = page("").unwrap().envelope("x", all);
        assert_eq!(e["count"], 5);
        assert_eq!(e["limit"], 5);
    }

    #[test]
    fn error_envelope() {
        let e = BfError::rate_limited(3);
        assert_eq!(
            e.body(),
            json!({"is_bifrost_error": false, "status_code": 429,
                   "error": {"type": "rate_limited", "message": "Too Many Requests"}})
        );
        assert_eq!(
            BfError::unauthorized().body(),
            json!({"is_bifrost_error": false, "status_code": 401, "error": {"message": "Unauthorized"}})
        );
    }
}
