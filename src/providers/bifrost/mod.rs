//! Bifrost (docs/sandbox-bifrost.md, docs/mapping.md): access profiles (source, on the canonical
//! `/api/governance/...` paths, falling back to the deprecated aliases) and standalone virtual
//! keys (target), the MCP client list, and the quota call a key makes for itself.

pub mod export;
pub mod pair;
pub mod plan;
pub mod sections;
mod source;
mod target;
pub mod usage;
mod wire;

pub use wire::{create_body, source_fingerprint};
use wire::{profile_from_wire, WireProfile};

use anyhow::{anyhow, Context, Result};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::Arc;

use crate::http::{Http, HttpError, RateBudget, Request};
use crate::providers::bifrost::plan::{BifrostProfile, Holding, McpClient};

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
    use crate::providers::bifrost::plan::{
        BudgetGrant, LimitGrant, ProviderGrant, ToolGrant, VirtualKeyGrant, Window,
    };
    use serde_json::json;

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
