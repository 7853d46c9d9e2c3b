//! Reading Descope requests and writing Descope errors (docs/sandbox-descope.md, SD-D3).
//!
//! Bodies are parsed by hand from bytes, never with axum's `Json` extractor, so every malformed
//! request gets Descope's error body instead of an axum rejection. `null` always means "absent"
//! (SD-D5, SD-D8); a field of the wrong JSON type is a 400 `E011003` naming the field.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// A Descope error response: `{"errorCode","errorDescription","errorMessage"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct DescopeError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: &'static str,
    pub message: String,
    /// `Retry-After` seconds (429 only).
    pub retry_after: Option<u64>,
}

impl DescopeError {
    fn new(
        status: StatusCode,
        code: &'static str,
        description: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            description,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `E011001`: the body is not a JSON object.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "E011001", "Bad request", message)
    }

    /// 400 `E011002`: a required field is missing.
    pub fn missing(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "E011002",
            "Missing arguments",
            message,
        )
    }

    /// 400 `E011003`: any other validation failure.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "E011003",
            "Invalid request",
            message,
        )
    }

    /// 401 `E011003`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "E011003", "Unauthorized", message)
    }

    /// 403 `E011003`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "E011003", "Forbidden", message)
    }

    /// 404 `E011003` for an access key id.
    pub fn key_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "E011003",
            "Access key not found",
            format!("Access key {id} not found"),
        )
    }

    /// 404 `E011003` for anything else (unknown project in the JWKS path, unknown route).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "E011003", "Not found", message)
    }

    /// 429 `E130429` with `Retry-After` (SD-D4).
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "E130429",
            "Too many requests",
            format!("Rate limit exceeded, retry after {retry_after} seconds"),
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 501 for D12 import (SD-D15).
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "E011001",
            "Not implemented",
            message,
        )
    }

    /// 500: the sandbox itself failed (never expected).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E011001",
            "Internal error",
            message,
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"errorCode": self.code, "errorDescription": self.description,
               "errorMessage": self.message})
    }
}

impl IntoResponse for DescopeError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Result of a Descope operation: the JSON body of a 200, or an error.
pub type DescopeResult = Result<Value, DescopeError>;

/// A request body as a JSON object; an empty body is `{}`.
pub fn body_object(body: &[u8]) -> Result<Map<String, Value>, DescopeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(DescopeError::malformed(
            "The request body must be a JSON object",
        )),
        Err(e) => Err(DescopeError::malformed(format!(
            "The request body is not valid JSON: {e}"
        ))),
    }
}

/// A field, with `null` read as absent.
pub fn field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

/// An optional string field.
pub fn opt_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, DescopeError> {
    match field(m, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(DescopeError::invalid(format!(
            "The {key} field must be a string"
        ))),
    }
}

/// A required, non-blank string field; absent or blank is `E011002` "The `<key>` field is
/// required".
pub fn required_string(m: &Map<String, Value>, key: &str) -> Result<String, DescopeError> {
    match opt_string(m, key)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(DescopeError::missing(format!(
            "The {key} field is required"
        ))),
    }
}

/// An optional list of strings.
pub fn opt_string_list(
    m: &Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<String>>, DescopeError> {
    let Some(v) = field(m, key) else {
        return Ok(None);
    };
    let err = || DescopeError::invalid(format!("The {key} field must be an array of strings"));
    let items = v.as_array().ok_or_else(err)?;
    items
        .iter()
        .map(|i| i.as_str().map(str::to_owned).ok_or_else(err))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// An optional JSON object.
pub fn opt_object<'a>(
    m: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, DescopeError> {
    match field(m, key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(DescopeError::invalid(format!(
            "The {key} field must be an object"
        ))),
    }
}

/// Unix seconds as a number or a numeric string (SD-D5).
pub fn opt_seconds(m: &Map<String, Value>, key: &str) -> Result<Option<i64>, DescopeError> {
    let err = || DescopeError::invalid(format!("The {key} field must be a number of seconds"));
    match field(m, key) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(err),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| err()),
        Some(_) => Err(err()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_fields() {
        assert!(body_object(b"").unwrap().is_empty());
        assert!(body_object(b"  \n").unwrap().is_empty());
        assert_eq!(body_object(b"[1]").unwrap_err().code, "E011001");
        assert_eq!(body_object(b"{").unwrap_err().code, "E011001");
        let m = body_object(br#"{"a": null, "b": "x", "t": "1700000000", "n": 5, "l": ["p", 1]}"#)
            .unwrap();
        assert_eq!(opt_string(&m, "a").unwrap(), None);
        assert_eq!(opt_string(&m, "b").unwrap().as_deref(), Some("x"));
        assert_eq!(opt_seconds(&m, "t").unwrap(), Some(1_700_000_000));
        assert_eq!(opt_seconds(&m, "n").unwrap(), Some(5));
        assert_eq!(opt_seconds(&m, "b").unwrap_err().code, "E011003");
        assert_eq!(opt_string_list(&m, "l").unwrap_err().code, "E011003");
        let e = required_string(&m, "name").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("E011002", "The name field is required")
        );
    }
}
