//! Bifrost (docs/sandbox-bifrost.md, docs/mapping.md): access profiles (source, on the canonical
//! `/api/governance/...` paths, falling back to the deprecated aliases) and standalone virtual
//! keys (target), the MCP client list, and the quota call a key makes for itself.

pub mod export;
pub mod pair;
pub mod plan;
pub mod sections;
pub mod usage;

use anyhow::{anyhow, Context, Result};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::engine::verify::Verdict;
use crate::http::{Http, HttpError, RateBudget, Request};
use crate::providers::bifrost::plan::{
    BifrostInventory, BifrostProfile, Budget, BudgetGrant, Holding, LimitGrant, McpClient,
    ProviderAccess, RateLimit, ToolOverride, VirtualKeyGrant,
};

pub const VENDOR: &str = "bifrost";
/// The sandbox's (and the client's default) pace: 600 per minute per credential (SD-B2).
pub const LIMIT_PER_MINUTE: f64 = 600.0;
pub use crate::providers::bifrost::plan::{profile_marker, WORKSPACE};
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
    /// The log store's health for a window (entries in it, dropped writes), read once per
    /// run however many sides ask.
    log_health: tokio::sync::OnceCell<usage::LogHealth>,
}

/// A virtual key as read back (the value is never read: reads mask it).
pub type RemoteVk = crate::providers::RemoteCredential;

impl BifrostConn {
    /// A change to one virtual key (V4, V5): its answer is not needed.
    async fn on_key(
        &self,
        method: Method,
        id: &str,
        body: Option<&Value>,
    ) -> Result<(), HttpError> {
        let path = format!("/api/governance/virtual-keys/{id}");
        let route = "/api/governance/virtual-keys/:vk_id";
        self.call(method, &path, route, body, true).await.map(drop)
    }

    pub fn new(http: Http, s: BifrostSettings) -> Arc<BifrostConn> {
        Arc::new(BifrostConn {
            http,
            base: s.base_url.trim_end_matches('/').to_string(),
            credential: s.credential,
            budget: RateBudget::new("bifrost", LIMIT_PER_MINUTE, s.rate_scale, s.max_rate),
            log_health: tokio::sync::OnceCell::new(),
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
                    .filter_map(|c| {
                        let profile_id = c.get("parent_profile_id").and_then(Value::as_i64)?;
                        let virtual_key_ids = c
                            .get("virtual_key_ids")
                            .and_then(Value::as_array)
                            .map(|ids| {
                                ids.iter()
                                    .filter_map(|v| v.as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default();
                        Some(Holding {
                            user_id: user_id.to_string(),
                            profile_id,
                            virtual_key_ids,
                        })
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
pub fn source_fingerprint(profiles: &[BifrostProfile]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<_> = profiles.iter().collect();
    sorted.sort_by_key(|p| p.id);
    hex::encode(Sha256::digest(
        serde_json::to_vec(&sorted).unwrap_or_default(),
    ))
}

/// The V2 create body of a planned virtual key: its item's name, activity and the
/// planner's grant, in Bifrost's fields.
pub fn create_body(item: &crate::model::StandaloneSpec) -> Result<Value> {
    let g = VirtualKeyGrant::deserialize(&item.grant)?;
    let budgets = |bs: &[BudgetGrant]| -> Vec<Value> {
        bs.iter()
            .map(|b| {
                let mut o = json!({ "max_limit": b.max_limit, "reset_duration": b.window });
                if let Some(m) = b.quarter_start_month {
                    o["reset_config"] = json!({ "quarter_start_month": m });
                }
                o
            })
            .collect()
    };
    let limit = |l: &LimitGrant| -> Value {
        let mut o = serde_json::Map::new();
        for (kind, w) in [("token", &l.tokens), ("request", &l.requests)] {
            if let Some(w) = w {
                o.insert(format!("{kind}_max_limit"), json!(w.max));
                o.insert(format!("{kind}_reset_duration"), json!(w.every));
            }
        }
        Value::Object(o)
    };
    let providers: Vec<Value> = g
        .providers
        .iter()
        .map(|p| {
            let mut o = json!({
                "provider": p.provider,
                "allowed_models": p.models,
                "key_ids": p.key_ids,
                "budgets": budgets(&p.budgets),
            });
            if let Some(l) = &p.rate_limit {
                o["rate_limit"] = limit(l);
            }
            o
        })
        .collect();
    let tools: Vec<Value> = g
        .tools
        .iter()
        .map(|t| json!({ "mcp_client_name": t.client, "tools_to_execute": t.tools }))
        .collect();
    let mut body = json!({
        "name": item.name,
        "description": g.description,
        "is_active": item.active,
        "provider_configs": providers,
        "budgets": budgets(&g.budgets),
        "calendar_aligned": g.calendar_aligned,
        "mcp_configs": tools,
        "metadata": g.labels,
    });
    if let Some(l) = &g.rate_limit {
        body["rate_limit"] = limit(l);
    }
    Ok(body)
}

impl crate::providers::standalone::StandaloneApi for BifrostConn {
    const TRAITS: crate::providers::standalone::Traits = crate::providers::standalone::Traits {
        vendor: crate::model::Vendor::Bifrost,
        words: WORDS,
        kind: "virtual_key",
        creates_inactive: true,
        rotates_inactive: true,
    };
    fn http(&self) -> &Http {
        &self.http
    }
    fn budget(&self) -> &RateBudget {
        &self.budget
    }
    fn list_ours(&self) -> crate::engine::Fut<'_, Result<Vec<RemoteVk>>> {
        Box::pin(BifrostConn::list_ours(self))
    }
    /// V2. Not idempotent: an ambiguous failure is reconciled by listing.
    fn body(item: &crate::model::StandaloneSpec) -> Result<Value> {
        create_body(item)
    }
    fn create<'a>(&'a self, body: &'a Value) -> crate::providers::standalone::Issuing<'a> {
        Box::pin(async move {
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
        })
    }
    /// V6.
    fn rotate<'a>(&'a self, id: &'a str) -> crate::providers::standalone::Issuing<'a> {
        Box::pin(async move {
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
        })
    }
    /// V4 with `is_active` only.
    fn set_active<'a>(
        &'a self,
        id: &'a str,
        active: bool,
    ) -> crate::providers::standalone::Changing<'a> {
        let body = json!({ "is_active": active });
        Box::pin(async move { self.on_key(Method::PUT, id, Some(&body)).await })
    }
    /// V5.
    fn delete<'a>(&'a self, id: &'a str) -> crate::providers::standalone::Changing<'a> {
        Box::pin(self.on_key(Method::DELETE, id, None))
    }
    /// Bifrost echoes provider keys and MCP clients in another shape than it accepts them.
    fn expected_read(&self, body: &Value) -> Value {
        let mut b = body.clone();
        if let Some(pcs) = b.get_mut("provider_configs").and_then(Value::as_array_mut) {
            for pc in pcs.iter_mut().filter_map(Value::as_object_mut) {
                if pc.remove("key_ids") == Some(json!(["*"])) {
                    pc.insert("allow_all_keys".into(), json!(true));
                }
            }
        }
        if let Some(mcs) = b.get_mut("mcp_configs").and_then(Value::as_array_mut) {
            for mc in mcs.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(name) = mc.remove("mcp_client_name") {
                    mc.insert("mcp_client".into(), json!({ "name": name }));
                }
            }
        }
        b
    }
    /// One quota call with the key: it authenticates, and names the planned key.
    fn probe<'a>(
        &'a self,
        item: &'a crate::model::StandaloneSpec,
        _id: &'a str,
        secret: &'a SecretString,
    ) -> crate::engine::Fut<'a, (Verdict, String)> {
        Box::pin(async move {
            match self.quota(secret).await {
                Err(msg) => (Verdict::Unverifiable, msg),
                Ok((200, body)) => {
                    let active = body.get("is_active").and_then(Value::as_bool) == Some(true);
                    let named = body.get("virtual_key_name").and_then(Value::as_str)
                        == Some(item.name.as_str());
                    match (item.active, active, named) {
                        (_, _, false) => {
                            (Verdict::Rejected, "the quota call names another key".into())
                        }
                        (true, true, true) => (Verdict::Ok, "quota call authenticated".into()),
                        (false, false, true) => (
                            Verdict::ExpectedInactive,
                            "inactive key answers is_active: false as planned".into(),
                        ),
                        (true, false, true) => (Verdict::Rejected, "the key is inactive".into()),
                        (false, true, true) => {
                            (Verdict::Rejected, "a key planned inactive is active".into())
                        }
                    }
                }
                Ok((404, _)) => (
                    Verdict::Unverifiable,
                    "the quota endpoint is missing (older Bifrost)".into(),
                ),
                Ok((status @ (401 | 403), _)) => {
                    (Verdict::Rejected, format!("refused with {status}"))
                }
                Ok((status, _)) => (
                    Verdict::Unverifiable,
                    format!("quota call answered {status}"),
                ),
            }
        })
    }
}

/// Bifrost's access profiles as the engine's source.
impl crate::engine::Source for BifrostConn {
    fn fingerprint(&self) -> crate::engine::Fut<'_, Result<String>> {
        Box::pin(async move {
            let (profiles, _) = self.list_profiles().await?;
            Ok(source_fingerprint(&profiles))
        })
    }

    fn fingerprint_with_disabled(
        &self,
        inv: crate::model::Inventory,
        disabled: &std::collections::HashSet<String>,
    ) -> Result<String> {
        let mut profiles = BifrostInventory::read(&inv)?.profiles;
        for p in &mut profiles {
            if disabled.contains(&profile_marker(p.id)) {
                p.is_active = false;
            }
        }
        Ok(source_fingerprint(&profiles))
    }

    fn stale(&self) -> String {
        "the source changed since export (access profiles differ) — re-run `keyshift export` \
         and `keyshift plan`, review, then apply"
            .into()
    }

    fn profile_noun(&self) -> &'static str {
        "access profile"
    }

    fn disable_note(&self) -> &'static str {
        " Existing user copies keep working until revoked by an operator."
    }

    fn profile_marker(&self, _workspace: &str, profile: &str) -> String {
        format!("keyshift:bifrost:{WORKSPACE}:profile:{profile}")
    }

    fn exported_active(
        &self,
        inv: &crate::model::Inventory,
    ) -> std::collections::HashSet<(String, String)> {
        inv.records
            .iter()
            .filter(|r| r.active == Some(true))
            .map(|r| (r.workspace.clone(), r.id.to_string()))
            .collect()
    }

    /// Holders' profile-managed keys keep working after the profile is deactivated: cutover
    /// does not turn them away.
    fn disabling_refuses_old(&self) -> bool {
        false
    }

    fn consumers(
        &self,
        inv: &crate::model::Inventory,
        plan: &crate::model::Plan,
    ) -> Result<Vec<crate::engine::adoption::Consumer>> {
        usage::consumers(&BifrostInventory::read(inv)?, plan)
    }

    /// A3: deactivation only retires the profile; existing user copies keep working until an
    /// operator revokes them (docs/sandbox-bifrost.md).
    fn set_profile_active<'a>(
        &'a self,
        _workspace: &'a str,
        profile: &'a str,
        active: bool,
    ) -> crate::engine::Fut<'a, Result<(), HttpError>> {
        Box::pin(async move {
            let Ok(id) = profile.parse::<i64>() else {
                let what = format!("access profile id {profile:?} (Bifrost's ids are numbers)");
                return Err(crate::engine::refused_here(
                    crate::model::Vendor::Bifrost,
                    what,
                ));
            };
            BifrostConn::set_profile_active(self, id, active).await
        })
    }
}

/// How bifrost credentials are called in messages.
pub const WORDS: crate::engine::Words = crate::engine::Words {
    container: "",
    containers: "",
    credential: "virtual key",
    credentials: "virtual keys",
    renewal: "rotation",
};

/// The connection from the environment: KEYSHIFT_BIFROST_URL and KEYSHIFT_BIFROST_TOKEN (or user and password).
pub fn connect(
    ctx: &crate::context::Ctx,
    max_rate: Option<f64>,
    patience: crate::http::Patience,
) -> Result<Arc<BifrostConn>> {
    use crate::errors::KeyshiftError;
    use crate::http::check_transport;
    let url = ctx.env.require(
        "KEYSHIFT_BIFROST_URL",
        "point it at your Bifrost deployment (e.g. http://bifrost.internal:8080)",
    )?;
    check_transport("KEYSHIFT_BIFROST_URL", &url, ctx.allow_insecure_http)?;
    let credential = match ctx.env.secret("KEYSHIFT_BIFROST_TOKEN")? {
        Some(t) => BifrostCredential::Bearer(t),
        None => match (
            ctx.env.get("KEYSHIFT_BIFROST_USER")?,
            ctx.env.secret("KEYSHIFT_BIFROST_PASSWORD")?,
        ) {
            (Some(u), Some(p)) => BifrostCredential::Basic(u, p),
            _ => {
                return Err(KeyshiftError::MissingSetting {
                    name: "KEYSHIFT_BIFROST_TOKEN",
                    fix: "export a management API key (bfst-…), or KEYSHIFT_BIFROST_USER \
                              and KEYSHIFT_BIFROST_PASSWORD for the admin",
                }
                .into())
            }
        },
    };
    Ok(BifrostConn::new(
        std::sync::Arc::new(ctx.http_client("KEYSHIFT_BIFROST_URL", patience)?),
        BifrostSettings {
            base_url: url,
            credential,
            rate_scale: ctx.rate_scale()?,
            max_rate,
        },
    ))
}

/// `keyshift doctor`: one short read proves URL and credential.
pub async fn doctor(ctx: &crate::context::Ctx) -> Result<String> {
    let conn = connect(ctx, None, crate::http::Patience::OneShort)?;
    let clients = conn.mcp_clients().await?;
    Ok(format!(
        "reachable, credential accepted: {} MCP client(s)",
        clients.len()
    ))
}

/// How a consumer tests its new virtual key (hand-over page).
pub const HOW_TO_TEST: &str = "Send one small inference request with the new key: `curl -X POST \
<bifrost>/v1/chat/completions -H \"x-bf-vk: $VIRTUAL_KEY\" -H 'content-type: application/json' \
-d '{\"model\": \"<provider/model>\", \"messages\": [{\"role\": \"user\", \"content\": \"ping\"}]}'`. \
A 200 means it works; 401 means the key is wrong or inactive.";

/// The hand-over's consumer action for a Bifrost virtual key.
pub fn consumer_action(c: &crate::model::ConsumerChange) -> String {
    format!(
        "use the new virtual key ({}) in x-bf-vk (or Authorization: Bearer) instead of the \
         profile-managed key; budgets and rate limits start from zero",
        c.at
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StandaloneSpec;
    use crate::providers::bifrost::plan::{ProviderGrant, ToolGrant, Window};

    fn item(grant: &VirtualKeyGrant) -> StandaloneSpec {
        StandaloneSpec {
            source: profile_marker(4),
            workspace: WORKSPACE.into(),
            profile_id: "4".into(),
            profile_name: "Tab".into(),
            holder: None,
            name: "Tabname".into(),
            active: false,
            grant: serde_json::to_value(grant).unwrap(),
        }
    }

    /// The grant in V2's fields: budgets with `reset_duration` (and `reset_config` only for
    /// a quarter), limits as `<kind>_max_limit`/`<kind>_reset_duration`, MCP access by
    /// client name, labels as metadata; no `rate_limit` when the grant has none.
    #[test]
    fn the_create_body_writes_the_grant_in_bifrost_fields() {
        let quarter = BudgetGrant {
            max_limit: 20.0,
            window: "1Q".into(),
            quarter_start_month: Some(2),
        };
        let day = BudgetGrant {
            max_limit: 5.0,
            window: "1d".into(),
            quarter_start_month: None,
        };
        let limit = LimitGrant {
            tokens: Some(Window {
                max: 250_000,
                every: "1d".into(),
            }),
            requests: None,
        };
        let grant = VirtualKeyGrant {
            description: "d".into(),
            providers: vec![ProviderGrant {
                provider: "openai".into(),
                models: vec!["gpt-4o".into()],
                key_ids: vec!["*".into()],
                budgets: vec![day.clone()],
                rate_limit: Some(limit.clone()),
            }],
            budgets: vec![quarter, day],
            rate_limit: Some(limit),
            calendar_aligned: true,
            tools: vec![ToolGrant {
                client: "github".into(),
                tools: vec!["*".into()],
            }],
            labels: [("tag.x".to_string(), "1".to_string())].into(),
        };
        let body = create_body(&item(&grant)).unwrap();
        assert_eq!(
            body,
            json!({
                "name": "Tabname",
                "description": "d",
                "is_active": false,
                "provider_configs": [{
                    "provider": "openai",
                    "allowed_models": ["gpt-4o"],
                    "key_ids": ["*"],
                    "budgets": [{"max_limit": 5.0, "reset_duration": "1d"}],
                    "rate_limit": {"token_max_limit": 250000, "token_reset_duration": "1d"},
                }],
                "budgets": [
                    {"max_limit": 20.0, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 2}},
                    {"max_limit": 5.0, "reset_duration": "1d"},
                ],
                "rate_limit": {"token_max_limit": 250000, "token_reset_duration": "1d"},
                "calendar_aligned": true,
                "mcp_configs": [{"mcp_client_name": "github", "tools_to_execute": ["*"]}],
                "metadata": {"tag.x": "1"},
            })
        );
        let bare = create_body(&item(&VirtualKeyGrant::default())).unwrap();
        assert!(bare.get("rate_limit").is_none());
        let mut broken = item(&grant);
        broken.grant = json!({ "providers": "none" });
        assert!(create_body(&broken).is_err());
    }
}
