//! Reading Workato requests and writing Workato errors.
//!
//! Bodies are parsed by hand from bytes (never with axum's `Json` extractor) so that every
//! malformed request gets Workato's 400 shape instead of an axum rejection. Field readers are
//! lenient the way SD-W14 asks: ids may be ints or numeric strings, unknown fields are ignored,
//! and every problem is collected into one `{"message":"Validation failed","errors":{…}}`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ipnet::IpNet;
use serde_json::{json, Map, Value};

/// A Workato error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            body: json!({ "message": message }),
        }
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found")
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden")
    }
    pub fn bad_request(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 400 `Validation failed` with a single field error.
    pub fn invalid(field: &str, message: &str) -> Self {
        let mut e = Errors::default();
        e.add(field, message);
        e.into_error()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// Result of a Workato operation: the JSON body of a 200, or an error.
pub type ApiResult = Result<Value, ApiError>;

/// Validation errors, field → messages.
#[derive(Debug, Default)]
pub struct Errors(BTreeMap<String, Vec<String>>);

impl Errors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn into_error(self) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"message": "Validation failed", "errors": self.0}),
        }
    }
    /// `Ok(())` when no error was recorded.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }
}

/// A field in a request body: absent, explicitly `null`, or set.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<T> {
    Absent,
    Null,
    Set(T),
}

impl<T> Field<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
    }
    /// `Some(value)` when set.
    pub fn set(self) -> Option<T> {
        match self {
            Field::Set(v) => Some(v),
            _ => None,
        }
    }
    /// Apply to a nullable stored value: absent keeps, null clears, set replaces.
    pub fn apply_to(self, target: &mut Option<T>) {
        match self {
            Field::Absent => {}
            Field::Null => *target = None,
            Field::Set(v) => *target = Some(v),
        }
    }
}

/// Parse a request body: empty = `{}`; anything but a JSON object → 400.
pub fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
        Err(_) => Err(ApiError::bad_request("Invalid JSON in request body")),
    }
}

/// An id: a non-negative integer or a string of digits.
pub fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Typed readers over a request body that record type errors.
pub struct BodyReader<'a> {
    pub body: &'a Map<String, Value>,
    pub errors: Errors,
}

impl<'a> BodyReader<'a> {
    pub fn new(body: &'a Map<String, Value>) -> Self {
        Self {
            body,
            errors: Errors::default(),
        }
    }

    fn raw(&self, key: &str) -> Field<&'a Value> {
        match self.body.get(key) {
            None => Field::Absent,
            Some(Value::Null) => Field::Null,
            Some(v) => Field::Set(v),
        }
    }

    pub fn string(&mut self, key: &str) -> Field<String> {
        match self.raw(key) {
            Field::Set(Value::String(s)) => Field::Set(s.clone()),
            Field::Set(_) => {
                self.errors.add(key, "must be a string");
                Field::Absent
            }
            Field::Null => Field::Null,
            Field::Absent => Field::Absent,
        }
    }

    /// A required, non-blank string.
    pub fn required_string(&mut self, key: &str) -> Option<String> {
        match self.string(key) {
            Field::Set(s) if !s.trim().is_empty() => Some(s),
            _ => {
                if !self.errors.has(key) {
                    self.errors.add(key, "can't be blank");
                }
                None
            }
        }
    }

    /// A required object name: non-blank, at most [`MAX_NAME_CHARS`] characters, no control
    /// characters (docs/sandbox.md, published-contract decisions).
    pub fn required_name(&mut self, key: &str) -> Option<String> {
        let name = self.required_string(key)?;
        self.check_name(key, &name).then_some(name)
    }

    /// An optional object name (updates): absent keeps, anything else must be a valid name.
    pub fn optional_name(&mut self, key: &str) -> Field<String> {
        match self.string(key) {
            Field::Set(s) if s.trim().is_empty() => {
                self.errors.add(key, "can't be blank");
                Field::Absent
            }
            Field::Set(s) => {
                if self.check_name(key, &s) {
                    Field::Set(s)
                } else {
                    Field::Absent
                }
            }
            Field::Null => {
                if !self.errors.has(key) {
                    self.errors.add(key, "can't be blank");
                }
                Field::Absent
            }
            Field::Absent => Field::Absent,
        }
    }

    fn check_name(&mut self, key: &str, name: &str) -> bool {
        let mut ok = true;
        if name.chars().count() > MAX_NAME_CHARS {
            self.errors.add(
                key,
                format!("is too long (maximum is {MAX_NAME_CHARS} characters)"),
            );
            ok = false;
        }
        if name.chars().any(char::is_control) {
            self.errors.add(key, "must not contain control characters");
            ok = false;
        }
        ok
    }

    pub fn id(&mut self, key: &str) -> Field<u64> {
        match self.raw(key) {
            Field::Set(v) => match id_of(v) {
                Some(id) => Field::Set(id),
                None => {
                    self.errors.add(key, "is not a number");
                    Field::Absent
                }
            },
            Field::Null => Field::Null,
            Field::Absent => Field::Absent,
        }
    }

    pub fn bool(&mut self, key: &str) -> Field<bool> {
        match self.raw(key) {
            Field::Set(Value::Bool(b)) => Field::Set(*b),
            Field::Set(_) => {
                self.errors.add(key, "must be true or false");
                Field::Absent
            }
            Field::Null => Field::Null,
            Field::Absent => Field::Absent,
        }
    }

    pub fn id_list(&mut self, key: &str) -> Field<Vec<u64>> {
        match self.raw(key) {
            Field::Set(Value::Array(items)) => {
                let ids: Option<Vec<u64>> = items.iter().map(id_of).collect();
                match ids {
                    Some(ids) => Field::Set(ids),
                    None => {
                        self.errors.add(key, "must be a list of ids");
                        Field::Absent
                    }
                }
            }
            Field::Set(_) => {
                self.errors.add(key, "must be a list of ids");
                Field::Absent
            }
            Field::Null => Field::Null,
            Field::Absent => Field::Absent,
        }
    }

    pub fn string_list(&mut self, key: &str) -> Field<Vec<String>> {
        match self.raw(key) {
            Field::Set(Value::Array(items)) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect();
                match strings {
                    Some(s) => Field::Set(s),
                    None => {
                        self.errors.add(key, "must be a list of strings");
                        Field::Absent
                    }
                }
            }
            Field::Set(_) => {
                self.errors.add(key, "must be a list of strings");
                Field::Absent
            }
            Field::Null => Field::Null,
            Field::Absent => Field::Absent,
        }
    }

    /// A list of IP addresses / CIDRs (SD-W14). `null` reads as `[]`.
    pub fn ip_list(&mut self, key: &str) -> Field<Vec<String>> {
        match self.string_list(key) {
            Field::Set(list) => {
                let bad: Vec<&String> = list.iter().filter(|s| !is_ip_or_cidr(s)).collect();
                if bad.is_empty() {
                    Field::Set(list)
                } else {
                    for b in bad {
                        self.errors.add(
                            key,
                            format!("{b:?} is not a valid IP address or CIDR range"),
                        );
                    }
                    Field::Absent
                }
            }
            Field::Null => Field::Set(Vec::new()),
            Field::Absent => Field::Absent,
        }
    }
}

/// An IPv4/IPv6 address, optionally with a CIDR prefix.
pub fn is_ip_or_cidr(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok() || s.parse::<IpNet>().is_ok()
}

/// Longest name Workato accepts for clients, keys and profiles, in characters (the published
/// spec gives none; 255 is the length of the string columns behind them — docs/sandbox.md).
pub const MAX_NAME_CHARS: usize = 255;

/// `page` / `per_page` from a query string (SD-W6, PC-W3: the published spec gives `per_page`
/// `maximum: 100`, so 101 is refused, not clamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u64,
    pub per_page: u64,
}

impl Page {
    pub const MAX_PER_PAGE: u64 = 100;

    /// Parse; `page` < 1, `per_page` > 100 or non-numeric → 400. The published spec gives
    /// `page` a minimum of 1 and `per_page` only a maximum, so a `per_page` below 1 is a valid
    /// request and means the default (PC-W3).
    pub fn from_query(q: &Query) -> Result<Self, ApiError> {
        let mut errors = Errors::default();
        let mut read = |key: &str, default: i64, max: i64| -> i64 {
            match q.get(key) {
                None | Some("") => default,
                Some(s) => match saturating_int(s.trim()) {
                    Ok(n) if (1..=max).contains(&n) => n,
                    Ok(n) if n > max => {
                        errors.add(key, format!("must be less than or equal to {max}"));
                        default
                    }
                    Ok(_) if key == "per_page" => default,
                    Ok(_) => {
                        errors.add(key, "must be greater than or equal to 1");
                        default
                    }
                    Err(_) => {
                        errors.add(key, "is not a number");
                        default
                    }
                },
            }
        };
        let page = read("page", 1, i64::MAX);
        let per_page = read(
            "per_page",
            Self::MAX_PER_PAGE as i64,
            Self::MAX_PER_PAGE as i64,
        );
        errors.finish()?;
        Ok(Self {
            page: page.unsigned_abs(),
            per_page: per_page.unsigned_abs(),
        })
    }

    /// This page of an iterator, lazily: only the page's items are ever built.
    pub fn window<T>(&self, items: impl Iterator<Item = T>) -> impl Iterator<Item = T> {
        let start = (self.page - 1).saturating_mul(self.per_page);
        items
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(self.per_page as usize)
    }

    /// This page of an [`IdMap`](super::model::IdMap), found by position (no walk from the
    /// first entry).
    pub fn of_map<'a, T>(
        &self,
        map: &'a super::model::IdMap<T>,
    ) -> impl Iterator<Item = &'a T> + 'a {
        let start = (self.page - 1).saturating_mul(self.per_page);
        map.values_from(usize::try_from(start).unwrap_or(usize::MAX))
            .take(self.per_page as usize)
    }

    /// The items of this page.
    pub fn slice<T: Clone>(&self, items: &[T]) -> Vec<T> {
        let start = (self.page - 1).saturating_mul(self.per_page);
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        items
            .iter()
            .skip(start)
            .take(self.per_page as usize)
            .cloned()
            .collect()
    }

    /// A v2 list envelope: `{"data","count","page","per_page"}`, `count` = total.
    pub fn envelope(&self, all: &[Value]) -> Value {
        json!({"data": self.slice(all), "count": all.len(), "page": self.page,
               "per_page": self.per_page})
    }
}

/// An integer, saturating: an integer beyond `i64` is still an integer (a huge `page` is a
/// page past the end, not a malformed request).
pub(crate) fn saturating_int(s: &str) -> Result<i64, std::num::ParseIntError> {
    s.parse::<i64>().or_else(|e| {
        let digits = s.strip_prefix('-').unwrap_or(s);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(if s.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            })
        } else {
            Err(e)
        }
    })
}

/// A decoded query string (first value wins; `key[]` is kept as its own key).
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every `(key, value)` pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_validation() {
        for ok in [
            "10.0.0.1",
            "10.0.0.0/8",
            "2001:db8::/32",
            "::1",
            "203.0.113.7/32",
        ] {
            assert!(is_ip_or_cidr(ok), "{ok}");
        }
        for bad in ["300.1.2.3", "10.0.0.0/33", "example.com", "", "10.0.0/8"] {
            assert!(!is_ip_or_cidr(bad), "{bad}");
        }
    }

    #[test]
    fn pagination() {
        let p = Page::from_query(&Query::parse(Some("page=2&per_page=100"))).unwrap();
        assert_eq!(
            p,
            Page {
                page: 2,
                per_page: 100
            }
        );
        // The published spec's `maximum: 100`: 101 is refused (PC-W3).
        assert!(Page::from_query(&Query::parse(Some("per_page=101"))).is_err());
        assert!(Page::from_query(&Query::parse(Some("page=0"))).is_err());
        // No minimum in the published spec: below 1 means the default (PC-W3).
        assert_eq!(
            Page::from_query(&Query::parse(Some("per_page=0")))
                .unwrap()
                .per_page,
            100
        );
        assert!(Page::from_query(&Query::parse(Some("per_page=x"))).is_err());
        // An integer beyond i64 is still an integer: a page past the end.
        let huge = Page::from_query(&Query::parse(Some("page=9696123422202891124563001737216")));
        assert!(huge.unwrap().slice(&[1, 2, 3]).is_empty());
        let p = Page::from_query(&Query::parse(Some("page=2&per_page=2"))).unwrap();
        assert_eq!(p.slice(&[1, 2, 3, 4, 5]), vec![3, 4]);
        let p = Page::from_query(&Query::parse(Some("page=9&per_page=2"))).unwrap();
        assert!(p.slice(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn ids_as_ints_or_strings() {
        assert_eq!(id_of(&json!(5)), Some(5));
        assert_eq!(id_of(&json!("123")), Some(123));
        assert_eq!(id_of(&json!("x")), None);
        assert_eq!(id_of(&json!(-1)), None);
    }
}
