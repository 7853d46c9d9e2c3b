//! Reading a fixture's JSON leniently, with the path of every value for error messages
//! (`workato.workspaces[0].access_profiles[3].id: expected …`). Shared by the Workato and
//! Bifrost fixture loaders.

use anyhow::{anyhow, bail};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::clock::parse_instant;
use super::workato::model::StoredSecret;

/// A JSON object with the path it was found at, for error messages.
pub struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Obj<'a> {
    pub fn of(v: &'a Value, path: String) -> anyhow::Result<Self> {
        match v {
            Value::Object(map) => Ok(Self { map, path }),
            other => bail!(
                "{}: expected an object, found {}",
                if path.is_empty() {
                    "(top level)"
                } else {
                    &path
                },
                kind(other)
            ),
        }
    }

    /// The value of `key`, treating `null` as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Each item of the array under `key`, with its path (absent is empty; `what_list` names
    /// the array in the error when it is something else).
    fn each<T>(
        &self,
        key: &str,
        what_list: &str,
        item: impl Fn(String, &'a Value) -> anyhow::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        let path = join(&self.path, key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| item(format!("{path}[{i}]"), v))
                .collect(),
            Some(other) => bail!("{path}: expected {what_list}, found {}", kind(other)),
        }
    }

    pub fn array(&self, key: &str) -> anyhow::Result<Vec<Obj<'a>>> {
        self.each(key, "an array", |path, v| Obj::of(v, path))
    }

    pub fn u64(&self, key: &str) -> anyhow::Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match super::workato::request::id_of(v) {
                Some(n) => Ok(Some(n)),
                None => bail!(
                    "{}: expected a non-negative integer, found {}",
                    join(&self.path, key),
                    kind(v)
                ),
            },
        }
    }

    pub fn required_u64(&self, key: &str) -> anyhow::Result<u64> {
        self.u64(key)?
            .ok_or_else(|| anyhow!("{}: required", join(&self.path, key)))
    }

    /// A string; numbers are taken as their decimal text (e.g. a numeric `project_id`).
    pub fn string(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => bail!(
                "{}: expected a string, found {}",
                join(&self.path, key),
                kind(other)
            ),
        }
    }

    pub fn opt_bool(&self, key: &str) -> anyhow::Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => bail!(
                "{}: expected true or false, found {}",
                join(&self.path, key),
                kind(other)
            ),
        }
    }

    pub fn bool(&self, key: &str, default: bool) -> anyhow::Result<bool> {
        Ok(self.opt_bool(key)?.unwrap_or(default))
    }

    /// A list whose items each pass `item` (`what` names one item, `what_list` the list, in
    /// error messages); absent is empty.
    fn list<T>(
        &self,
        key: &str,
        what: &str,
        what_list: &str,
        item: impl Fn(&Value) -> Option<T>,
    ) -> anyhow::Result<Vec<T>> {
        self.each(key, what_list, |path, v| {
            item(v).ok_or_else(|| anyhow!("{path}: expected {what}, found {}", kind(v)))
        })
    }

    pub fn string_list(&self, key: &str) -> anyhow::Result<Vec<String>> {
        self.list(key, "a string", "an array of strings", |v| {
            v.as_str().map(str::to_owned)
        })
    }

    pub fn id_list(&self, key: &str) -> anyhow::Result<Vec<u64>> {
        self.list(
            key,
            "an integer id",
            "an array of ids",
            super::workato::request::id_of,
        )
    }

    pub fn time(&self, key: &str, default: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
        Ok(self.opt_time(key)?.unwrap_or(default))
    }

    /// A secret given in clear (`<key>`) or as a hash (`<key>_sha256`); clear wins.
    pub fn secret(&self, key: &str) -> anyhow::Result<Option<StoredSecret>> {
        match self.string(key)? {
            Some(clear) => Ok(Some(StoredSecret::from_clear(clear))),
            None => self.secret_hash(key),
        }
    }

    /// A list given as scalars (`["gh-1"]`) or as objects (`[{"<field>": "gh-1"}]`); objects
    /// are reduced to that field, except that `field = "name"` keeps tool objects whole.
    pub fn array_or_scalars(&self, key: &str, field: &str) -> anyhow::Result<Vec<Value>> {
        self.each(key, "an array", |path, v| match v {
            Value::Object(m) if field == "name" => Ok(Value::Object(m.clone())),
            Value::Object(m) => m
                .get(field)
                .cloned()
                .ok_or_else(|| anyhow!("{path}.{field}: required")),
            other => Ok(other.clone()),
        })
    }

    pub fn f64(&self, key: &str) -> anyhow::Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) if s.trim().parse::<f64>().is_ok() => {
                Ok(s.trim().parse::<f64>().ok())
            }
            Some(other) => bail!(
                "{}: expected a number, found {}",
                join(&self.path, key),
                kind(other)
            ),
        }
    }

    pub fn opt_time(&self, key: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => parse_instant(s)
                .map(Some)
                .map_err(|e| anyhow!("{}: {e}", join(&self.path, key))),
            Some(other) => bail!(
                "{}: expected an RFC 3339 timestamp, found {}",
                join(&self.path, key),
                kind(other)
            ),
        }
    }

    /// `<key>_sha256` as a hash-only secret.
    pub fn secret_hash(&self, key: &str) -> anyhow::Result<Option<StoredSecret>> {
        let hkey = format!("{key}_sha256");
        match self.string(&hkey)? {
            Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
                Ok(Some(StoredSecret::from_sha256(h)))
            }
            Some(_) => bail!("{}: expected 64 hex characters", join(&self.path, &hkey)),
            None => Ok(None),
        }
    }
}
