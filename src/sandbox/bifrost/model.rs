//! What the Bifrost emulator holds, and how each object looks on the wire
//! (docs/sandbox-bifrost.md) and in `/_sandbox/state` (docs/sandbox.md).
//!
//! Access profiles (templates), users' profile copies, virtual keys, MCP clients and provider
//! keys. Secrets — virtual-key `value`s and provider-key values — are [`StoredSecret`]s: the
//! clear value when the sandbox minted it or a fixture supplied it, otherwise only its SHA-256.
//! Reads show a virtual key's value masked (SD-B5); the state dump shows only `value_sha256`.
//!
//! Numbers that the spec types as "number" (budget limits, AP rate limits) are kept as `f64`
//! so bad data such as a fractional rate limit survives; they are written as JSON integers
//! when they are whole.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::{json, Map, Value};

use crate::sandbox::workato::model::{sha256_hex, StoredSecret};

/// Lowercase UUID v4 from `rng` (SD-B13).
pub fn uuid_v4(rng: &mut impl RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A fresh virtual-key secret: `sk-bf-` + UUID v4 (SD-B13).
pub fn fresh_vk_value(rng: &mut impl RngCore) -> String {
    format!("sk-bf-{}", uuid_v4(rng))
}

/// A virtual-key value as reads show it: `sk-bf-****<last 4 chars>` (SD-B5).
pub fn mask_value(clear: &str) -> String {
    let chars: Vec<char> = clear.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("sk-bf-****{tail}")
}

/// RFC 3339 UTC with `Z`, whole seconds (SD-B13).
pub fn bf_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(bf_time(t)))
}

/// A JSON number, written as an integer when it is whole.
pub fn num(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

fn opt_num(x: Option<f64>) -> Value {
    x.map_or(Value::Null, num)
}

/// A budget line: a profile's (`scope` set) or a virtual key's (`scope` unset).
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub id: String,
    pub max_limit: f64,
    pub reset_duration: String,
    /// `reset_config.quarter_start_month` (only with `1Q`, SD-B9).
    pub quarter_start_month: Option<u32>,
    /// Profile lines: `"total"` or `"provider:<name>"` (SD-B9).
    pub scope: Option<String>,
    /// Virtual-key lines: aligned to calendar periods.
    pub calendar_aligned: bool,
    pub current_usage: f64,
    pub last_reset: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Budget {
    fn reset_config(&self) -> Option<Value> {
        self.quarter_start_month
            .map(|m| json!({ "quarter_start_month": m }))
    }

    /// Access-profile shape (`accessprofiles.yaml`, docs/sandbox-bifrost.md).
    pub fn ap_wire(&self) -> Value {
        let mut v = json!({
            "id": self.id, "max_limit": num(self.max_limit), "reset_duration": self.reset_duration,
            "scope": self.scope.clone().unwrap_or_else(|| "total".to_owned()),
            "current_usage": num(self.current_usage), "last_reset": bf_time(self.last_reset),
        });
        if let Some(rc) = self.reset_config() {
            v["reset_config"] = rc;
        }
        v
    }

    /// Virtual-key shape (governance.yaml `Budget`: `config_hash`, `created_at` and
    /// `updated_at` are required).
    pub fn vk_wire(&self) -> Value {
        let mut v = json!({
            "id": self.id, "max_limit": num(self.max_limit), "reset_duration": self.reset_duration,
            "calendar_aligned": self.calendar_aligned, "current_usage": num(self.current_usage),
            "last_reset": bf_time(self.last_reset), "created_at": bf_time(self.created_at),
            "updated_at": bf_time(self.updated_at),
        });
        if let Some(rc) = self.reset_config() {
            v["reset_config"] = rc;
        }
        v["config_hash"] = json!(config_hash(&v));
        v
    }

    /// Quota shape (Q1): the same `Budget` schema as the virtual key's.
    pub fn quota_wire(&self) -> Value {
        self.vk_wire()
    }
}

/// Token and request limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub id: String,
    pub token_max_limit: Option<f64>,
    pub token_reset_duration: Option<String>,
    pub request_max_limit: Option<f64>,
    pub request_reset_duration: Option<String>,
    pub token_current_usage: f64,
    pub request_current_usage: f64,
    pub token_last_reset: DateTime<Utc>,
    pub request_last_reset: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A whole number as JSON (int64 fields: usage counters, virtual-key limits).
fn int(x: f64) -> Value {
    json!(x.floor() as i64)
}

impl RateLimit {
    /// Access-profile shape (accessprofiles.yaml `RateLimit`): the max limits are nullable,
    /// the reset durations are enums that are not, so an unset duration is left out.
    pub fn ap_wire(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "token_max_limit": opt_num(self.token_max_limit),
            "request_max_limit": opt_num(self.request_max_limit),
            "token_current_usage": num(self.token_current_usage),
            "request_current_usage": num(self.request_current_usage),
        });
        if let Some(d) = &self.token_reset_duration {
            v["token_reset_duration"] = json!(d);
        }
        if let Some(d) = &self.request_reset_duration {
            v["request_reset_duration"] = json!(d);
        }
        v
    }

    /// Virtual-key shape (governance.yaml `RateLimit`): `token_max_limit` and
    /// `token_reset_duration` are not nullable (left out when unset), the request ones are;
    /// counters are int64; `config_hash`, `created_at`, `updated_at` are required.
    pub fn vk_wire(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "token_current_usage": int(self.token_current_usage),
            "token_last_reset": bf_time(self.token_last_reset),
            "request_max_limit": self.request_max_limit.map(int),
            "request_reset_duration": self.request_reset_duration,
            "request_current_usage": int(self.request_current_usage),
            "request_last_reset": bf_time(self.request_last_reset),
            "created_at": bf_time(self.created_at),
            "updated_at": bf_time(self.updated_at),
        });
        if let Some(t) = self.token_max_limit {
            v["token_max_limit"] = int(t);
        }
        if let Some(d) = &self.token_reset_duration {
            v["token_reset_duration"] = json!(d);
        }
        v["config_hash"] = json!(config_hash(&v));
        v
    }
}

/// One provider of an access profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ApProviderConfig {
    pub id: u64,
    pub provider_name: String,
    pub all_models_allowed: bool,
    pub allowed_models: Vec<String>,
    pub budgets: Vec<Budget>,
    pub rate_limit: Option<RateLimit>,
}

impl ApProviderConfig {
    /// `rate_limit` is a `RateLimit` object in the published schema, never `null`: a config
    /// without one leaves it out.
    pub fn wire(&self) -> Value {
        let mut v = json!({
            "id": self.id, "provider_name": self.provider_name,
            "all_models_allowed": self.all_models_allowed, "allowed_models": self.allowed_models,
            "budgets": self.budgets.iter().map(Budget::ap_wire).collect::<Vec<_>>(),
        });
        if let Some(rl) = &self.rate_limit {
            v["rate_limit"] = rl.ap_wire();
        }
        v
    }
}

/// `mcp_tool_overrides[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOverride {
    pub mcp_client_id: String,
    pub tool_name: String,
    pub action: String,
}

/// A role the profile is attached to (A2 `roles[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleBinding {
    pub id: u64,
    pub role_id: u64,
    pub role_name: String,
    pub is_default: bool,
}

/// An access profile (template).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessProfile {
    pub id: u64,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    pub version: i64,
    pub tags: Vec<String>,
    pub provider_configs: Vec<ApProviderConfig>,
    pub budgets: Vec<Budget>,
    pub rate_limit: Option<RateLimit>,
    pub calendar_aligned: bool,
    /// Nanoseconds; 0 = off.
    pub auto_rotation_interval: i64,
    pub next_rotation_at: Option<DateTime<Utc>>,
    pub last_rotation_at: Option<DateTime<Utc>>,
    pub mcp_tool_groups: Vec<u64>,
    /// MCP client `client_id`s.
    pub mcp_servers: Vec<String>,
    pub mcp_tool_overrides: Vec<ToolOverride>,
    pub roles: Vec<RoleBinding>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AccessProfile {
    /// The `access_profile` object of A1–A6 (`rate_limit` left out when there is none: the
    /// published schema has an object there, not `null`).
    pub fn wire(&self) -> Value {
        let mut v = json!({
            "id": self.id, "name": self.name, "description": self.description,
            "is_active": self.is_active, "version": self.version, "tags": self.tags,
            "provider_configs": self.provider_configs.iter().map(ApProviderConfig::wire).collect::<Vec<_>>(),
            "budgets": self.budgets.iter().map(Budget::ap_wire).collect::<Vec<_>>(),
            "calendar_aligned": self.calendar_aligned,
            "auto_rotation_interval": self.auto_rotation_interval,
            "next_rotation_at": opt_time(self.next_rotation_at),
            "last_rotation_at": opt_time(self.last_rotation_at),
            "mcp_tool_groups": self.mcp_tool_groups.iter().map(|g| json!({"tool_group_id": g})).collect::<Vec<_>>(),
            "mcp_servers": self.mcp_servers.iter().map(|s| json!({"mcp_server_id": s})).collect::<Vec<_>>(),
            "mcp_tool_overrides": self.mcp_tool_overrides.iter().map(|o| json!({
                "mcp_client_id": o.mcp_client_id, "tool_name": o.tool_name, "action": o.action,
            })).collect::<Vec<_>>(),
            "created_at": bf_time(self.created_at), "updated_at": bf_time(self.updated_at),
        });
        if let Some(rl) = &self.rate_limit {
            v["rate_limit"] = rl.ap_wire();
        }
        v
    }

    /// A2 `roles[]`.
    pub fn roles_wire(&self) -> Vec<Value> {
        self.roles
            .iter()
            .map(|r| {
                json!({"id": r.id, "access_profile_id": self.id, "role_id": r.role_id,
                       "role_name": r.role_name, "is_default": r.is_default})
            })
            .collect()
    }
}

/// A user's copy of a profile (SD-B15).
#[derive(Debug, Clone, PartialEq)]
pub struct UserAccessProfile {
    pub id: u64,
    pub user_id: String,
    pub parent_profile_id: Option<u64>,
    pub name: String,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub virtual_key_ids: Vec<String>,
}

/// A virtual key's provider config.
#[derive(Debug, Clone, PartialEq)]
pub struct VkProviderConfig {
    pub id: u64,
    pub provider: String,
    pub weight: Option<f64>,
    pub allowed_models: Vec<String>,
    pub blacklisted_models: Vec<String>,
    /// `key_ids: ["*"]`.
    pub allow_all_keys: bool,
    /// Provider-key ids when not all keys are allowed (empty = none, SD-B11).
    pub key_ids: Vec<String>,
    pub budgets: Vec<Budget>,
    pub rate_limit: Option<RateLimit>,
}

/// A virtual key's MCP config.
#[derive(Debug, Clone, PartialEq)]
pub struct VkMcpConfig {
    pub id: u64,
    /// The MCP client's table id ([`McpClient::id`]).
    pub mcp_client_id: u64,
    pub tools_to_execute: Vec<String>,
}

/// A virtual key (`governance.yaml`, docs/sandbox-bifrost.md).
#[derive(Debug, Clone)]
pub struct VirtualKey {
    /// Creation order (lists are in this order).
    pub seq: u64,
    pub id: String,
    pub name: String,
    pub value: StoredSecret,
    /// What reads show instead of the value.
    pub masked: String,
    pub description: String,
    pub is_active: bool,
    pub provider_configs: Vec<VkProviderConfig>,
    pub mcp_configs: Vec<VkMcpConfig>,
    pub team_id: Option<String>,
    pub customer_id: Option<String>,
    pub budgets: Vec<Budget>,
    pub rate_limit: Option<RateLimit>,
    pub calendar_aligned: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub metadata: BTreeMap<String, String>,
    pub created_by_user_id: Option<String>,
    /// Issued from a user's profile copy (SD-B12).
    pub is_access_profile_managed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The current value passes Q1 from here (SD-B14).
    pub usable_from: DateTime<Utc>,
    /// Rotated-out values and until when they still pass Q1 (SD-B14).
    pub retired_values: Vec<(StoredSecret, DateTime<Utc>)>,
}

impl VirtualKey {
    /// Whether `presented` authenticates this key at `now` (Q1).
    pub fn accepts(&self, presented: &str, now: DateTime<Utc>) -> bool {
        (self.value.matches(presented) && now >= self.usable_from)
            || self
                .retired_values
                .iter()
                .any(|(v, until)| now < *until && v.matches(presented))
    }
}

/// One tool an MCP client offers.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    pub name: String,
    pub description: String,
}

/// An MCP client (M1).
#[derive(Debug, Clone, PartialEq)]
pub struct McpClient {
    /// Table id, what virtual-key `mcp_configs[].mcp_client_id` refers to.
    pub id: u64,
    /// `config.client_id`, what profiles' `mcp_servers[].mcp_server_id` refers to.
    pub client_id: String,
    pub name: String,
    /// `http`, `stdio`, `sse` or `inprocess`.
    pub connection_type: String,
    /// The URL of an HTTP/SSE client; stdio and in-process clients have none.
    pub connection_string: Option<String>,
    /// `none`, `headers`, `oauth`, … (M1's `auth_type` filter).
    pub auth_type: String,
    pub is_code_mode_client: bool,
    pub disabled: bool,
    pub allow_on_all_virtual_keys: bool,
    pub tools: Vec<McpTool>,
    /// `connected`, `disconnected`, `error`, … (`MCPConnectionState`).
    pub state: String,
}

impl McpClient {
    /// What M1's `state` filter calls healthy: connected and enabled.
    pub fn healthy(&self) -> bool {
        self.state == "connected" && !self.disabled
    }
}

/// An upstream provider key (SD-B11); never served, only referenced by `key_ids`.
#[derive(Debug, Clone)]
pub struct ProviderKey {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub value: StoredSecret,
    pub models: Vec<String>,
    pub weight: f64,
}

impl ProviderKey {
    /// How a virtual key's provider config lists it.
    pub fn vk_wire(&self) -> Value {
        json!({"key_id": self.id, "name": self.name, "models": self.models,
               "weight": num(self.weight)})
    }
}

/// Next free integer id per kind.
#[derive(Debug, Clone)]
pub struct BifrostSeq {
    /// Access profiles and user copies (one table).
    pub profile: u64,
    pub ap_provider_config: u64,
    pub vk_provider_config: u64,
    pub vk_mcp_config: u64,
    pub mcp_client: u64,
    pub role_binding: u64,
    pub vk: u64,
}

impl Default for BifrostSeq {
    fn default() -> Self {
        Self {
            profile: 1,
            ap_provider_config: 1,
            vk_provider_config: 1,
            vk_mcp_config: 1,
            mcp_client: 1,
            role_binding: 1,
            vk: 1,
        }
    }
}

fn take(counter: &mut u64) -> u64 {
    let id = *counter;
    *counter += 1;
    id
}

impl BifrostSeq {
    pub fn next_profile(&mut self) -> u64 {
        take(&mut self.profile)
    }
    pub fn next_ap_provider_config(&mut self) -> u64 {
        take(&mut self.ap_provider_config)
    }
    pub fn next_vk_provider_config(&mut self) -> u64 {
        take(&mut self.vk_provider_config)
    }
    pub fn next_vk_mcp_config(&mut self) -> u64 {
        take(&mut self.vk_mcp_config)
    }
    pub fn next_mcp_client(&mut self) -> u64 {
        take(&mut self.mcp_client)
    }
    pub fn next_role_binding(&mut self) -> u64 {
        take(&mut self.role_binding)
    }
    pub fn next_vk(&mut self) -> u64 {
        take(&mut self.vk)
    }

    /// Continue every sequence after the largest id held in `s`.
    pub fn continue_after(s: &BifrostState) -> Self {
        let after = |m: Option<u64>, d: u64| m.map_or(d, |m| m + 1);
        let d = Self::default();
        Self {
            profile: after(
                s.profiles
                    .keys()
                    .chain(s.user_profiles.keys())
                    .max()
                    .copied(),
                d.profile,
            ),
            ap_provider_config: after(
                s.profiles
                    .values()
                    .flat_map(|p| p.provider_configs.iter().map(|c| c.id))
                    .max(),
                d.ap_provider_config,
            ),
            vk_provider_config: after(
                s.virtual_keys
                    .iter()
                    .flat_map(|k| k.provider_configs.iter().map(|c| c.id))
                    .max(),
                d.vk_provider_config,
            ),
            vk_mcp_config: after(
                s.virtual_keys
                    .iter()
                    .flat_map(|k| k.mcp_configs.iter().map(|c| c.id))
                    .max(),
                d.vk_mcp_config,
            ),
            mcp_client: after(s.mcp_clients.keys().max().copied(), d.mcp_client),
            role_binding: after(
                s.profiles
                    .values()
                    .flat_map(|p| p.roles.iter().map(|r| r.id))
                    .max(),
                d.role_binding,
            ),
            vk: after(s.virtual_keys.iter().map(|k| k.seq).max(), d.vk),
        }
    }
}

/// How a virtual key's `value` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueShown {
    /// The full secret (V2, V6).
    Full,
    /// `sk-bf-****abcd` (V1, V3, V4).
    Masked,
    /// The masked value plus `value_sha256` (`/_sandbox/state`).
    Hash,
}

/// The whole Bifrost side of the sandbox.
#[derive(Debug, Clone, Default)]
pub struct BifrostState {
    pub profiles: BTreeMap<u64, AccessProfile>,
    pub user_profiles: BTreeMap<u64, UserAccessProfile>,
    /// In creation order.
    pub virtual_keys: Vec<VirtualKey>,
    pub mcp_clients: BTreeMap<u64, McpClient>,
    pub provider_keys: Vec<ProviderKey>,
    pub seq: BifrostSeq,
}

impl BifrostState {
    pub fn vk(&self, id: &str) -> Option<&VirtualKey> {
        self.virtual_keys.iter().find(|k| k.id == id)
    }

    pub fn vk_mut(&mut self, id: &str) -> Option<&mut VirtualKey> {
        self.virtual_keys.iter_mut().find(|k| k.id == id)
    }

    pub fn mcp_by_name(&self, name: &str) -> Option<&McpClient> {
        self.mcp_clients.values().find(|c| c.name == name)
    }

    pub fn provider_key(&self, id: &str) -> Option<&ProviderKey> {
        self.provider_keys.iter().find(|k| k.id == id)
    }

    /// Whether the instance has `provider` configured: it holds a provider key of it (PC-B16).
    pub fn has_provider(&self, provider: &str) -> bool {
        self.provider_keys.iter().any(|k| k.provider == provider)
    }

    /// Users' copies of profile `id`.
    pub fn user_count(&self, id: u64) -> usize {
        self.user_profiles
            .values()
            .filter(|u| u.parent_profile_id == Some(id))
            .count()
    }

    /// A virtual key's provider config as V1–V6 show it.
    pub fn vk_provider_wire(&self, vk_id: &str, pc: &VkProviderConfig) -> Value {
        let keys: Vec<Value> = pc
            .key_ids
            .iter()
            .map(|id| match self.provider_key(id) {
                Some(k) => k.vk_wire(),
                None => json!({ "key_id": id }),
            })
            .collect();
        let mut v = json!({
            "id": pc.id, "virtual_key_id": vk_id, "provider": pc.provider,
            "weight": opt_num(pc.weight), "allowed_models": pc.allowed_models,
            "blacklisted_models": pc.blacklisted_models, "allow_all_keys": pc.allow_all_keys,
            "keys": if pc.allow_all_keys { Vec::new() } else { keys },
            "budgets": pc.budgets.iter().map(Budget::vk_wire).collect::<Vec<_>>(),
        });
        if let Some(rl) = &pc.rate_limit {
            v["rate_limit_id"] = json!(rl.id);
            v["rate_limit"] = rl.vk_wire();
        }
        v
    }

    /// The `virtual_key` object.
    pub fn vk_wire(&self, k: &VirtualKey, shown: ValueShown) -> Value {
        let mcp: Vec<Value> = k
            .mcp_configs
            .iter()
            .map(|m| {
                // `MCPClientConfig` is an object: a client gone from the table shows as `{}`.
                let client = self.mcp_clients.get(&m.mcp_client_id).map_or_else(
                    || json!({}),
                    |c| json!({"id": c.id, "client_id": c.client_id, "name": c.name}),
                );
                json!({"id": m.id, "virtual_key_id": k.id, "mcp_client_id": m.mcp_client_id,
                       "mcp_client": client, "tools_to_execute": m.tools_to_execute})
            })
            .collect();
        let config = json!({
            "name": k.name, "description": k.description, "is_active": k.is_active,
            "provider_configs": k.provider_configs.iter().map(|pc| self.vk_provider_wire(&k.id, pc)).collect::<Vec<_>>(),
            "mcp_configs": mcp,
            "team_id": k.team_id, "customer_id": k.customer_id,
            "budgets": k.budgets.iter().map(Budget::vk_wire).collect::<Vec<_>>(),
            "rate_limit": k.rate_limit.as_ref().map(RateLimit::vk_wire),
            "calendar_aligned": k.calendar_aligned,
            "metadata": k.metadata,
            "expires_at": opt_time(k.expires_at),
        });
        let hash_input = config_hash(&config);
        let Value::Object(mut m) = config else {
            return Value::Null;
        };
        let mut out = Map::new();
        out.insert("id".into(), json!(k.id));
        out.append(&mut m);
        match shown {
            ValueShown::Full => {
                let v = k
                    .value
                    .clear()
                    .map_or_else(|| k.masked.clone(), str::to_owned);
                out.insert("value".into(), json!(v));
            }
            ValueShown::Masked => {
                out.insert("value".into(), json!(k.masked));
            }
            ValueShown::Hash => {
                out.insert("value".into(), json!(k.masked));
                out.insert("value_sha256".into(), json!(k.value.sha256()));
            }
        }
        for key in ["team_id", "customer_id"] {
            if out.get(key).is_some_and(Value::is_null) {
                out.remove(key);
            }
        }
        match &k.rate_limit {
            Some(rl) => {
                out.insert("rate_limit_id".into(), json!(rl.id));
            }
            None => {
                out.remove("rate_limit");
            }
        }
        if let Some(u) = &k.created_by_user_id {
            out.insert("created_by_user_id".into(), json!(u));
        }
        out.insert(
            "is_access_profile_managed".into(),
            json!(k.is_access_profile_managed),
        );
        out.insert("config_hash".into(), json!(hash_input));
        out.insert("created_at".into(), json!(bf_time(k.created_at)));
        out.insert("updated_at".into(), json!(bf_time(k.updated_at)));
        Value::Object(out)
    }

    /// Q1's `VirtualKeyQuotaResponse`.
    pub fn quota_wire(&self, k: &VirtualKey) -> Value {
        let pcs: Vec<Value> = k
            .provider_configs
            .iter()
            .map(|pc| {
                json!({"id": pc.id, "virtual_key_id": k.id, "provider": pc.provider,
                       "weight": opt_num(pc.weight), "allowed_models": pc.allowed_models,
                       "blacklisted_models": pc.blacklisted_models,
                       "allow_all_keys": pc.allow_all_keys, "keys": null})
            })
            .collect();
        let budgets: Vec<Value> = k.budgets.iter().map(Budget::quota_wire).collect();
        json!({
            "virtual_key_name": k.name,
            "is_active": k.is_active,
            "budgets": if budgets.is_empty() { Value::Null } else { json!(budgets) },
            "rate_limit": k.rate_limit.as_ref().map(RateLimit::vk_wire),
            "provider_configs": if pcs.is_empty() { Value::Null } else { json!(pcs) },
        })
    }

    /// U1's `UserAccessProfile`.
    pub fn user_profile_wire(&self, u: &UserAccessProfile) -> Value {
        let values: Map<String, Value> = u
            .virtual_key_ids
            .iter()
            .filter_map(|id| self.vk(id).map(|k| (id.clone(), json!(k.masked))))
            .collect();
        json!({
            "id": u.id, "user_id": u.user_id, "parent_profile_id": u.parent_profile_id,
            "name": u.name, "is_active": u.is_active, "expires_at": opt_time(u.expires_at),
            "virtual_key_ids": u.virtual_key_ids, "virtual_key_values": values,
        })
    }

    /// An M1 `clients[]` item.
    pub fn mcp_wire(&self, c: &McpClient) -> Value {
        let vk_configs: Vec<Value> = self
            .virtual_keys
            .iter()
            .flat_map(|k| {
                k.mcp_configs
                    .iter()
                    .filter(|m| m.mcp_client_id == c.id)
                    .map(|m| {
                        json!({"virtual_key_id": k.id, "virtual_key_name": k.name,
                               "tools_to_execute": m.tools_to_execute})
                    })
            })
            .collect();
        let mut config = json!({
            "client_id": c.client_id, "name": c.name,
            "is_code_mode_client": c.is_code_mode_client,
            "connection_type": c.connection_type, "auth_type": c.auth_type,
            "tools_to_execute": ["*"],
            "allow_on_all_virtual_keys": c.allow_on_all_virtual_keys, "disabled": c.disabled,
        });
        // `connection_string` is a string in `MCPClientConfig`, never `null`.
        if let Some(url) = &c.connection_string {
            config["connection_string"] = json!(url);
        }
        json!({
            "config": config,
            "tools": c.tools.iter().map(|t| json!({"name": t.name, "description": t.description})).collect::<Vec<_>>(),
            "state": c.state,
            "vk_configs": vk_configs,
        })
    }

    /// The `"bifrost"` object of `/_sandbox/state` (docs/sandbox-bifrost.md).
    pub fn state(&self) -> Value {
        let profiles: Vec<Value> = self
            .profiles
            .values()
            .map(|p| {
                let mut v = p.wire();
                v["roles"] = json!(p.roles_wire());
                v
            })
            .collect();
        let users: Vec<Value> = self
            .user_profiles
            .values()
            .map(|u| self.user_profile_wire(u))
            .collect();
        let vks: Vec<Value> = self
            .virtual_keys
            .iter()
            .map(|k| self.vk_wire(k, ValueShown::Hash))
            .collect();
        let mcp: Vec<Value> = self
            .mcp_clients
            .values()
            .map(|c| {
                let mut v = self.mcp_wire(c);
                v["id"] = json!(c.id);
                v
            })
            .collect();
        let pkeys: Vec<Value> = self
            .provider_keys
            .iter()
            .map(|k| {
                json!({"id": k.id, "provider": k.provider, "name": k.name, "models": k.models,
                       "weight": num(k.weight), "value_sha256": k.value.sha256()})
            })
            .collect();
        json!({
            "access_profiles": profiles, "user_access_profiles": users, "virtual_keys": vks,
            "mcp_clients": mcp, "provider_keys": pkeys,
        })
    }
}

/// `config_hash` of a wire object: SHA-256 of its configuration (usage, timestamps and ids
/// left out), so it changes exactly when the configuration does.
pub fn config_hash(v: &Value) -> String {
    sha256_hex(&without_volatile(v))
}

/// The config part of a virtual key minus usage and timestamps, serialized for `config_hash`.
fn without_volatile(v: &Value) -> String {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| {
                        !k.ends_with("current_usage")
                            && !k.ends_with("last_reset")
                            && !k.ends_with("_at")
                            && *k != "id"
                            && *k != "config_hash"
                    })
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    strip(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn uuid_and_mask_formats() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let u = uuid_v4(&mut rng);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        let v = fresh_vk_value(&mut rng);
        assert!(v.starts_with("sk-bf-"));
        let m = mask_value(&v);
        assert!(m.starts_with("sk-bf-****"));
        assert!(v.ends_with(&m[10..]));
        assert_eq!(num(50.0), json!(50));
        assert_eq!(num(99.5), json!(99.5));
    }
}
