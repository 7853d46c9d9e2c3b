//! Bifrost (specs/bifrost.md): access profiles (source, on the canonical
//! `/api/governance/...` paths, falling back to the deprecated aliases) and standalone virtual
//! keys (target), the MCP client list, and the quota call a key makes for itself.

use anyhow::{anyhow, Context, Result};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::http::{Http, HttpError, RateBudget, Request};
use crate::model::{
    BifrostProfile, Budget, Holding, McpClient, ProviderAccess, RateLimit, ToolOverride,
};

pub const VENDOR: &str = "bifrost";
/// The sandbox's (and the client's default) pace: 600 per minute per credential (SD-B2).
pub const LIMIT_PER_MINUTE: f64 = 600.0;
/// Markers need a workspace; one Bifrost deployment is one.
pub const WORKSPACE: &str = "default";
const PAGE: usize = 100;

pub struct BifrostSettings {
    pub base_url: String,
    /// `Bearer <token>` or `Basic <user:password>` credentials, already formatted.
    pub credential: BifrostCredential,
    pub rate_scale: f64,
    pub max_rate: Option<f64>,
}

pub enum BifrostCredential {
    Bearer(SecretString),
    Basic(String, SecretString),
}

pub struct BifrostConn {
    http: Http,
    base: String,
    credential: BifrostCredential,
    budget: RateBudget,
}

/// A virtual key as read back (the value is never read: reads mask it).
pub type RemoteVk = crate::providers::RemoteCredential;

impl BifrostConn {
    pub fn new(http: Http, s: BifrostSettings) -> Arc<BifrostConn> {
        Arc::new(BifrostConn {
            http,
            base: s.base_url.trim_end_matches('/').to_string(),
            credential: s.credential,
            budget: RateBudget::new("bifrost", LIMIT_PER_MINUTE, s.rate_scale, s.max_rate),
        })
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    pub fn budget(&self) -> &RateBudget {
        &self.budget
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        route: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Value, HttpError> {
        let auth = match &self.credential {
            BifrostCredential::Bearer(t) => crate::http::Auth::Bearer(t),
            BifrostCredential::Basic(u, p) => crate::http::Auth::Basic(u, p),
        };
        let req = Request {
            method,
            url: format!("{}{path}", self.base),
            route: route.into(),
            body,
            auth,
            idempotent,
        };
        self.http.send(&self.budget, &req).await
    }

    /// Every access profile (A1, paged). Returns whether only the deprecated alias answered.
    pub async fn list_profiles(&self) -> Result<(Vec<BifrostProfile>, bool)> {
        match self
            .list_profiles_at("/api/governance/access-profiles")
            .await
        {
            Ok(p) => Ok((p, false)),
            Err(e) if is_not_found(&e) => {
                let p = self.list_profiles_at("/api/access-profiles").await?;
                Ok((p, true))
            }
            Err(e) => Err(e),
        }
    }

    async fn list_profiles_at(&self, base: &str) -> Result<Vec<BifrostProfile>> {
        let items = self.list_all(base, "access_profiles").await?;
        items
            .into_iter()
            .map(|v| {
                serde_json::from_value::<WireProfile>(v)
                    .map(profile_from_wire)
                    .context("unexpected access profile from Bifrost")
            })
            .collect()
    }

    async fn list_all(&self, path: &str, field: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let url = format!("{path}?limit={PAGE}&offset={offset}");
            let body = self.call(Method::GET, &url, path, None, true).await?;
            let items = body
                .get(field)
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| anyhow!("GET {path}: no {field} list"))?;
            let n = items.len();
            out.extend(items);
            let total = body
                .get("total_count")
                .and_then(Value::as_u64)
                .map(|t| t as usize);
            offset += n;
            match total {
                Some(t) if offset >= t => break,
                None if n < PAGE => break,
                _ if n == 0 => break,
                _ => {}
            }
        }
        Ok(out)
    }

    /// M1: MCP clients with their tool names.
    pub async fn mcp_clients(&self) -> Result<Vec<McpClient>> {
        let body = self
            .call(
                Method::GET,
                "/api/mcp/clients",
                "/api/mcp/clients",
                None,
                true,
            )
            .await?;
        let clients = body
            .get("clients")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(clients
            .iter()
            .map(|c| McpClient {
                client_id: c
                    .pointer("/config/client_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
                name: c
                    .pointer("/config/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
                tools: c
                    .get("tools")
                    .and_then(Value::as_array)
                    .map(|t| {
                        t.iter()
                            .filter_map(|x| x.get("name").and_then(Value::as_str).map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// U1: which profiles a named holder has a copy of.
    pub async fn holdings(&self, user_id: &str) -> Result<Vec<Holding>> {
        let path = format!("/api/governance/users/{user_id}/access-profiles");
        let body = match self
            .call(
                Method::GET,
                &path,
                "/api/governance/users/:user_id/access-profiles",
                None,
                true,
            )
            .await
        {
            Ok(b) => b,
            Err(e) if e.status() == Some(404) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(body
            .get("access_profiles")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("parent_profile_id").and_then(Value::as_i64))
                    .map(|profile_id| Holding {
                        user_id: user_id.to_string(),
                        profile_id,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Our virtual keys (V1, all pages), by provenance marker.
    pub async fn list_ours(&self) -> Result<Vec<RemoteVk>> {
        let items = self
            .list_all("/api/governance/virtual-keys", "virtual_keys")
            .await?;
        Ok(items
            .into_iter()
            .map(|v| RemoteVk {
                id: v.get("id").and_then(Value::as_str).unwrap_or("").into(),
                active: v.get("is_active").and_then(Value::as_bool).unwrap_or(true),
                source: v
                    .pointer("/metadata/keyshift.source")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .or_else(|| {
                        v.get("description")
                            .and_then(Value::as_str)
                            .and_then(|d| d.split_whitespace().next())
                            .filter(|m| m.starts_with("keyshift:"))
                            .map(String::from)
                    }),
                body: v,
            })
            .collect())
    }

    /// V2. Not idempotent: an ambiguous failure is reconciled by listing.
    pub async fn create(&self, body: &Value) -> Result<(String, SecretString), HttpError> {
        let v = self
            .call(
                Method::POST,
                "/api/governance/virtual-keys",
                "/api/governance/virtual-keys",
                Some(body),
                false,
            )
            .await?;
        issued(v, "/api/governance/virtual-keys")
    }

    /// V6.
    pub async fn rotate(&self, id: &str) -> Result<(String, SecretString), HttpError> {
        let v = self
            .call(
                Method::POST,
                &format!("/api/governance/virtual-keys/{id}/rotate"),
                "/api/governance/virtual-keys/:vk_id/rotate",
                None,
                true,
            )
            .await?;
        issued(v, "/api/governance/virtual-keys/:vk_id/rotate")
    }

    /// V4 with `is_active` only.
    pub async fn set_active(&self, id: &str, active: bool) -> Result<(), HttpError> {
        self.call(
            Method::PUT,
            &format!("/api/governance/virtual-keys/{id}"),
            "/api/governance/virtual-keys/:vk_id",
            Some(&json!({ "is_active": active })),
            true,
        )
        .await
        .map(|_| ())
    }

    /// V5.
    pub async fn delete(&self, id: &str) -> Result<(), HttpError> {
        self.call(
            Method::DELETE,
            &format!("/api/governance/virtual-keys/{id}"),
            "/api/governance/virtual-keys/:vk_id",
            None,
            true,
        )
        .await
        .map(|_| ())
    }

    /// A3/A4: retire a profile after cutover, or bring it back on rollback.
    pub async fn set_profile_active(&self, profile_id: i64, active: bool) -> Result<(), HttpError> {
        let verb = if active { "activate" } else { "deactivate" };
        self.call(
            Method::PUT,
            &format!("/api/governance/access-profiles/{profile_id}/{verb}"),
            &format!("/api/governance/access-profiles/:profile_id/{verb}"),
            None,
            true,
        )
        .await
        .map(|_| ())
    }

    /// Q1 with the key itself: `(status, body)`.
    pub async fn quota(&self, value: &SecretString) -> Result<(u16, Value), String> {
        // The shared client's connection settings (proxies, CAs), outside its retry loop.
        let resp = self
            .http
            .reqwest()
            .get(format!("{}/api/governance/virtual-keys/quota", self.base))
            .header("x-bf-vk", value.expose_secret())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "quota call failed: {}",
                    if e.is_connect() {
                        "could not connect"
                    } else {
                        "transport error"
                    }
                )
            })?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<HttpError>().and_then(HttpError::status) == Some(404))
}

fn issued(v: Value, route: &str) -> Result<(String, SecretString), HttpError> {
    let bad = |what: &str| HttpError::Status {
        method: "POST".into(),
        route: route.into(),
        status: 200,
        message: format!("unexpected response: {what}"),
        retry_after: None,
        body: None,
    };
    let vk = v.get("virtual_key").ok_or_else(|| bad("no virtual_key"))?;
    let id = vk
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no id"))?;
    let value = vk
        .get("value")
        .and_then(Value::as_str)
        .filter(|s| !s.contains('*'))
        .ok_or_else(|| bad("no (unmasked) value"))?;
    Ok((id.to_string(), SecretString::from(value.to_string())))
}

#[derive(Deserialize)]
struct WireProfile {
    id: i64,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    is_active: bool,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    provider_configs: Option<Vec<WireProvider>>,
    #[serde(default)]
    budgets: Option<Vec<WireBudget>>,
    #[serde(default)]
    rate_limit: Option<WireRate>,
    #[serde(default)]
    calendar_aligned: Option<bool>,
    #[serde(default)]
    auto_rotation_interval: Option<i64>,
    #[serde(default)]
    mcp_servers: Option<Vec<Value>>,
    #[serde(default)]
    mcp_tool_groups: Option<Vec<Value>>,
    #[serde(default)]
    mcp_tool_overrides: Option<Vec<WireOverride>>,
}

#[derive(Deserialize)]
struct WireProvider {
    provider_name: String,
    #[serde(default)]
    all_models_allowed: bool,
    #[serde(default)]
    allowed_models: Option<Vec<String>>,
    #[serde(default)]
    budgets: Option<Vec<WireBudget>>,
    #[serde(default)]
    rate_limit: Option<WireRate>,
}

#[derive(Deserialize)]
struct WireBudget {
    max_limit: f64,
    reset_duration: String,
    #[serde(default)]
    reset_config: Option<Value>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    current_usage: Option<f64>,
}

#[derive(Deserialize)]
struct WireRate {
    #[serde(default)]
    token_max_limit: Option<f64>,
    #[serde(default)]
    token_reset_duration: Option<String>,
    #[serde(default)]
    request_max_limit: Option<f64>,
    #[serde(default)]
    request_reset_duration: Option<String>,
}

#[derive(Deserialize)]
struct WireOverride {
    mcp_client_id: String,
    tool_name: String,
    action: String,
}

fn budget(b: WireBudget) -> Budget {
    Budget {
        max_limit: b.max_limit,
        reset_duration: b.reset_duration,
        quarter_start_month: b
            .reset_config
            .and_then(|c| c.get("quarter_start_month").and_then(Value::as_u64))
            .map(|m| m as u8),
        scope: b.scope.unwrap_or_else(|| "total".into()),
        current_usage: b.current_usage.unwrap_or(0.0),
    }
}

fn rate(r: WireRate) -> RateLimit {
    RateLimit {
        token_max_limit: r.token_max_limit,
        token_reset_duration: r.token_reset_duration,
        request_max_limit: r.request_max_limit,
        request_reset_duration: r.request_reset_duration,
    }
}

fn profile_from_wire(p: WireProfile) -> BifrostProfile {
    let mut providers: Vec<ProviderAccess> = p
        .provider_configs
        .unwrap_or_default()
        .into_iter()
        .map(|c| ProviderAccess {
            provider: c.provider_name,
            all_models_allowed: c.all_models_allowed,
            allowed_models: c.allowed_models.unwrap_or_default(),
            budgets: c
                .budgets
                .unwrap_or_default()
                .into_iter()
                .map(budget)
                .collect(),
            rate_limit: c.rate_limit.map(rate),
        })
        .collect();
    // SD-B9 variant: provider-scoped lines in the top-level list move to their provider.
    let mut top = Vec::new();
    for b in p.budgets.unwrap_or_default().into_iter().map(budget) {
        match b.scope.strip_prefix("provider:").map(str::to_string) {
            Some(name) => match providers.iter_mut().find(|c| c.provider == name) {
                Some(c) => c.budgets.push(b),
                None => top.push(b),
            },
            None => top.push(b),
        }
    }
    BifrostProfile {
        id: p.id,
        name: p.name,
        description: p.description,
        is_active: p.is_active,
        tags: p.tags.unwrap_or_default(),
        provider_configs: providers,
        budgets: top,
        rate_limit: p.rate_limit.map(rate),
        calendar_aligned: p.calendar_aligned.unwrap_or(false),
        auto_rotation_interval: p.auto_rotation_interval.unwrap_or(0),
        mcp_servers: p
            .mcp_servers
            .unwrap_or_default()
            .iter()
            .filter_map(|m| {
                m.get("mcp_server_id")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect(),
        mcp_tool_groups: p
            .mcp_tool_groups
            .unwrap_or_default()
            .iter()
            .filter_map(|g| g.get("tool_group_id").and_then(Value::as_i64))
            .collect(),
        mcp_tool_overrides: p
            .mcp_tool_overrides
            .unwrap_or_default()
            .into_iter()
            .map(|o| ToolOverride {
                mcp_client_id: o.mcp_client_id,
                tool_name: o.tool_name,
                action: o.action,
            })
            .collect(),
    }
}

/// What the stale-plan check compares for a Bifrost source: a digest of the profiles in id
/// order.
pub fn source_fingerprint(profiles: &[crate::model::BifrostProfile]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<_> = profiles.iter().collect();
    sorted.sort_by_key(|p| p.id);
    hex::encode(Sha256::digest(
        serde_json::to_vec(&sorted).unwrap_or_default(),
    ))
}
