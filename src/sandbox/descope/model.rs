//! What the Descope emulator holds: the project ([`Project`]) and its access keys, plus the
//! runtime knobs that are not data (the rate limiter, the pending 503s).
//!
//! An access key keeps only the SHA-256 of its cleartext: the clear secret exists in the D1/D11
//! response and nowhere else (SD-D7). Wire and state forms are built here so every route shows
//! the same object (SD-D6).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Map, Value};

use super::project::Project;
use crate::sandbox::workato::model::sha256_hex;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` random base62 characters.
pub fn base62(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())]))
        .collect()
}

/// A fresh key id: `K` + 27 base62 characters (SD-D7).
pub fn new_key_id() -> String {
    format!("K{}", base62(27))
}

/// A fresh cleartext: 64 base62 characters, never a `:` (SD-D7).
pub fn new_cleartext() -> String {
    base62(64)
}

/// One `keyTenants` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyTenant {
    pub tenant_id: String,
    pub role_names: Vec<String>,
}

/// An access key.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub id: String,
    pub name: String,
    pub description: String,
    pub role_names: Vec<String>,
    pub key_tenants: Vec<KeyTenant>,
    pub active: bool,
    /// Unix seconds (sandbox clock).
    pub created_time: i64,
    /// Unix seconds; 0 = never.
    pub expire_time: i64,
    pub created_by: String,
    /// `""` when not bound.
    pub bound_user_id: String,
    pub custom_claims: Map<String, Value>,
    pub custom_attributes: Map<String, Value>,
    pub permitted_ips: Vec<String>,
    /// SHA-256 (lowercase hex) of the cleartext; `None` = cannot be exchanged.
    pub cleartext_sha256: Option<String>,
    /// Hidden from load, search and exchange until then (SD-D16).
    pub visible_from: DateTime<Utc>,
}

impl AccessKey {
    /// Expired at `now` (sandbox clock): a non-zero `expireTime` that has passed.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expire_time != 0 && self.expire_time <= now.timestamp()
    }

    /// Visible to load, search and exchange at `now`.
    pub fn visible(&self, now: DateTime<Utc>) -> bool {
        self.visible_from <= now
    }

    /// Whether `cleartext` is this key's secret.
    pub fn secret_matches(&self, cleartext: &str) -> bool {
        self.cleartext_sha256
            .as_deref()
            .is_some_and(|h| h == sha256_hex(cleartext))
    }

    /// Tenant ids of `keyTenants`.
    pub fn tenant_ids(&self) -> impl Iterator<Item = &str> {
        self.key_tenants.iter().map(|t| t.tenant_id.as_str())
    }

    /// The `AccessKey` object of every response: all fields present (SD-D6).
    pub fn wire(&self, project: &Project) -> Value {
        let tenants: Vec<Value> = self
            .key_tenants
            .iter()
            .map(|t| {
                let name = project
                    .tenant(&t.tenant_id)
                    .map(|x| x.name.clone())
                    .unwrap_or_default();
                json!({"tenantId": t.tenant_id, "roleNames": t.role_names, "tenantName": name})
            })
            .collect();
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "roleNames": self.role_names,
            "keyTenants": tenants,
            "status": if self.active { "active" } else { "inactive" },
            "createdTime": self.created_time,
            "expireTime": self.expire_time,
            "createdBy": self.created_by,
            "clientId": self.id,
            "boundUserId": self.bound_user_id,
            "customClaims": self.custom_claims,
            "editable": true,
            "permittedIps": self.permitted_ips,
            "customAttributes": self.custom_attributes,
        })
    }

    /// `/_sandbox/state` form: the wire object plus `cleartext_sha256`.
    pub fn state(&self, project: &Project) -> Value {
        let mut v = self.wire(project);
        if let Value::Object(m) = &mut v {
            m.insert("cleartext_sha256".into(), json!(self.cleartext_sha256));
        }
        v
    }
}

/// SD-D4: at most `limit` admitted calls per rolling window; the call that finds the window
/// full starts a backoff during which every counted call is refused. Refused calls take no
/// slot. Runs on the monotonic machine clock, like [`crate::sandbox::ratelimit`].
#[derive(Debug, Default)]
pub struct BackoffLimiter {
    admitted: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl BackoffLimiter {
    /// Admit one call, or return how long the caller must wait. `limit == 0` = unlimited.
    pub fn check(
        &mut self,
        limit: u32,
        window: Duration,
        backoff: Duration,
        now: Instant,
    ) -> Result<(), Duration> {
        if limit == 0 {
            return Ok(());
        }
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until - now);
            }
            self.blocked_until = None;
            self.admitted.clear();
        }
        while let Some(&oldest) = self.admitted.front() {
            if now.saturating_duration_since(oldest) >= window {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        if self.admitted.len() < limit as usize {
            self.admitted.push_back(now);
            return Ok(());
        }
        if backoff.is_zero() {
            // No penalty configured: plain rolling window.
            let oldest = self.admitted.front().copied().unwrap_or(now);
            return Err((oldest + window).saturating_duration_since(now));
        }
        self.blocked_until = Some(now + backoff);
        Err(backoff)
    }
}

/// The Descope part of the sandbox state.
#[derive(Debug, Default)]
pub struct DescopeState {
    pub project: Project,
    /// By id.
    pub keys: BTreeMap<String, AccessKey>,
    pub limiter: BackoffLimiter,
    /// Calls still to be answered with a non-JSON 503 (SD-D16).
    pub fail_next: u32,
    /// Exchanges, for `audit/search` (SD-D17).
    pub audit: super::audit::AuditLog,
}

impl DescopeState {
    /// A key id not yet taken.
    pub fn fresh_key_id(&self) -> String {
        loop {
            let id = new_key_id();
            if !self.keys.contains_key(&id) {
                return id;
            }
        }
    }

    /// The `"descope"` object of `/_sandbox/state` (docs/sandbox-descope.md). `users` and
    /// `custom_attributes` are sandbox additions describing the project.
    pub fn state(&self, project_id: &str) -> Value {
        let mut keys: Vec<&AccessKey> = self.keys.values().collect();
        keys.sort_by(|a, b| (a.created_time, &a.id).cmp(&(b.created_time, &b.id)));
        let access_keys: Vec<Value> = keys.iter().map(|k| k.state(&self.project)).collect();
        json!({
            "project_id": project_id,
            "roles": self.project.roles_wire(),
            "tenants": self.project.tenants_wire(),
            "users": self.project.users_wire(),
            "custom_attributes": self.project.attributes_wire(),
            "access_keys": access_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let id = new_key_id();
        assert_eq!(id.len(), 28);
        assert!(id.starts_with('K') && id.chars().all(|c| c.is_ascii_alphanumeric()));
        let c = new_cleartext();
        assert_eq!(c.len(), 64);
        assert!(c.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn backoff_limiter_blocks_for_the_whole_backoff() {
        let mut l = BackoffLimiter::default();
        let t0 = Instant::now();
        let (w, b) = (Duration::from_secs(60), Duration::from_secs(60));
        for i in 0..3 {
            assert!(l.check(3, w, b, t0 + Duration::from_secs(i)).is_ok());
        }
        assert_eq!(
            l.check(3, w, b, t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(60))
        );
        // the oldest slot frees at 60 s, but the backoff runs until 70 s
        assert_eq!(
            l.check(3, w, b, t0 + Duration::from_secs(61)),
            Err(Duration::from_secs(9))
        );
        assert!(l.check(3, w, b, t0 + Duration::from_secs(70)).is_ok());
        assert!(l.check(0, w, b, t0).is_ok());
    }
}
