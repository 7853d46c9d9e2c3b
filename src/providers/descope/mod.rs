//! Descope access keys as a target (docs/sandbox-descope.md, docs/mapping.md): create (secret shown once), search,
//! activate/deactivate/delete, rotate, and the consumer-side exchange for a signed JWT.
//!
//! Every call is paced by one budget: 100 requests per rolling 60 s (SD-D4), counted over
//! management calls and exchanges together.

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
use crate::providers::descope::plan::AccessKeyGrant;

pub const VENDOR: &str = "descope";
pub const LIMIT_PER_MINUTE: f64 = 100.0;

pub struct DescopeSettings {
    pub base_url: Option<String>,
    pub project_id: String,
    pub management_key: SecretString,
    pub rate_scale: f64,
    pub max_rate: Option<f64>,
}

pub struct DescopeConn {
    http: Http,
    base: String,
    pub project_id: String,
    management: SecretString,
    budget: RateBudget,
    /// Audit search's own budget (10 per minute).
    audit: RateBudget,
    /// The project's JWKS, read once for live probes.
    jwks: tokio::sync::OnceCell<Option<Value>>,
}

/// An access key as read back. Only non-secret fields.
pub type RemoteKey = crate::providers::RemoteCredential;

/// The base URL for a project id (as Descope's python-sdk `base_url_for_project_id` derives
/// it): a region from ids of 32+ characters.
pub fn base_url_for(project_id: &str) -> String {
    if project_id.len() >= 32 {
        format!(
            "https://api.{}.descope.com",
            &project_id[1..5].to_lowercase()
        )
    } else {
        "https://api.descope.com".into()
    }
}

impl DescopeConn {
    pub fn new(http: Http, s: DescopeSettings) -> Arc<DescopeConn> {
        let base = s
            .base_url
            .unwrap_or_else(|| base_url_for(&s.project_id))
            .trim_end_matches('/')
            .to_string();
        let bearer = SecretString::from(format!(
            "{}:{}",
            s.project_id,
            s.management_key.expose_secret()
        ));
        Arc::new(DescopeConn {
            http,
            base,
            project_id: s.project_id,
            management: bearer,
            budget: RateBudget::new("descope", LIMIT_PER_MINUTE, s.rate_scale, s.max_rate),
            audit: RateBudget::new(
                "descope audit",
                usage::AUDIT_LIMIT_PER_MINUTE,
                s.rate_scale,
                None,
            ),
            jwks: tokio::sync::OnceCell::new(),
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
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Value, HttpError> {
        let req = Request {
            method,
            url: format!("{}{path}", self.base),
            route: path.split('?').next().unwrap_or(path).to_string(),
            body,
            auth: crate::http::Auth::Bearer(&self.management),
            idempotent,
        };
        self.http.send(&self.budget, &req).await
    }

    /// Every key whose description or name carries `text` (our markers): one request.
    pub async fn search(&self, text: &str) -> Result<Vec<RemoteKey>> {
        let body = json!({ "text": text });
        let resp = self
            .call(Method::POST, "/v1/mgmt/accesskey/search", Some(&body), true)
            .await?;
        let keys = resp
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("POST /v1/mgmt/accesskey/search: no keys list"))?;
        Ok(keys.iter().map(remote).collect())
    }

    /// D13 then signature check against D14: `Ok(key id in the JWT)` or the refusal status.
    pub async fn exchange(
        &self,
        cleartext: &SecretString,
        jwks: &Value,
    ) -> Result<String, ExchangeError> {
        let bearer =
            SecretString::from(format!("{}:{}", self.project_id, cleartext.expose_secret()));
        let req = Request {
            method: Method::POST,
            url: format!("{}/v1/auth/accesskey/exchange", self.base),
            route: "/v1/auth/accesskey/exchange".into(),
            body: Some(&json!({ "loginOptions": {} })),
            auth: crate::http::Auth::Bearer(&bearer),
            idempotent: true,
        };
        let resp = self
            .http
            .send(&self.budget, &req)
            .await
            .map_err(|e| match e.status() {
                Some(s @ (400 | 401 | 403)) => ExchangeError::Refused(s, e.to_string()),
                _ => ExchangeError::Other(e.to_string()),
            })?;
        let jwt = resp
            .get("sessionJwt")
            .and_then(Value::as_str)
            .ok_or_else(|| ExchangeError::Other("no sessionJwt in the exchange response".into()))?;
        verify_jwt(jwt, jwks, &self.project_id).map_err(ExchangeError::Other)
    }

    /// D14, fetched once per verify run (not counted by Descope's limit).
    pub async fn jwks(&self) -> Result<Value> {
        let url = format!("{}/v2/keys/{}", self.base, self.project_id);
        let resp = self
            .http
            .reqwest()
            .get(&url)
            .send()
            .await
            .context("GET the project's JWKS")?;
        if !resp.status().is_success() {
            anyhow::bail!("GET /v2/keys/<project>: HTTP {}", resp.status());
        }
        Ok(resp.json().await?)
    }
}

#[derive(Debug)]
pub enum ExchangeError {
    /// The key was refused (401/403/400).
    Refused(u16, String),
    Other(String),
}

fn remote(k: &Value) -> RemoteKey {
    RemoteKey {
        id: k
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        active: k.get("status").and_then(Value::as_str) != Some("inactive"),
        source: k
            .pointer("/customAttributes/migrationSourceId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                k.get("description")
                    .and_then(Value::as_str)
                    .and_then(|d| d.split_whitespace().next())
                    .filter(|m| m.starts_with("keyshift:"))
                    .map(str::to_string)
            }),
        body: k.clone(),
    }
}

fn issued(resp: Value, route: &str) -> Result<(String, SecretString), HttpError> {
    let bad = |what: &str| HttpError::Status {
        method: "POST".into(),
        route: route.into(),
        status: 200,
        message: format!("unexpected response: {what}"),
        retry_after: None,
        body: None,
    };
    let id = resp
        .pointer("/key/id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no key id"))?
        .to_string();
    let secret = resp
        .get("cleartext")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no cleartext"))?;
    Ok((id, SecretString::from(secret.to_string())))
}

/// Check the session JWT's RS256 signature against the JWKS, its issuer, and return its
/// subject (`dsub`, else `sub`).
pub fn verify_jwt(jwt: &str, jwks: &Value, project_id: &str) -> Result<String, String> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|e| format!("not a JWT: {e}"))?;
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("JWKS has no keys")?;
    let jwk = keys
        .iter()
        .find(|k| {
            header.kid.is_none() || k.get("kid").and_then(Value::as_str) == header.kid.as_deref()
        })
        .ok_or("no JWKS key matches the JWT's kid")?;
    let (n, e) = (
        jwk.get("n")
            .and_then(Value::as_str)
            .ok_or("JWK without n")?,
        jwk.get("e")
            .and_then(Value::as_str)
            .ok_or("JWK without e")?,
    );
    let key = jsonwebtoken::DecodingKey::from_rsa_components(n, e)
        .map_err(|e| format!("bad JWK: {e}"))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    // The sandbox's clock may be a rehearsal date; the signature is what proves the key.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map_err(|e| format!("signature check failed: {e}"))?;
    let claims = data.claims;
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if iss != project_id && !iss.ends_with(&format!("/{project_id}")) {
        return Err(format!("issuer {iss:?} is not the project"));
    }
    claims
        .get("dsub")
        .or_else(|| claims.get("sub"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "no subject in the JWT".into())
}

impl crate::providers::standalone::StandaloneApi for DescopeConn {
    const TRAITS: crate::providers::standalone::Traits = crate::providers::standalone::Traits {
        vendor: crate::model::Vendor::Descope,
        words: WORDS,
        kind: "access_key",
        creates_inactive: false,
        rotates_inactive: false,
    };
    fn http(&self) -> &Http {
        &self.http
    }
    fn budget(&self) -> &RateBudget {
        &self.budget
    }
    fn list_ours(&self) -> crate::engine::Fut<'_, Result<Vec<RemoteKey>>> {
        Box::pin(self.search("keyshift:"))
    }
    /// D1. Not idempotent: an ambiguous failure must be reconciled by search.
    /// SD-D5: a tenant's roles go in `keyTenants`, project roles in `roleNames`, never both.
    fn body(item: &crate::model::StandaloneSpec) -> Result<Value> {
        let g = AccessKeyGrant::deserialize(&item.grant)?;
        let (role_names, key_tenants) = match &g.tenant {
            Some(t) => (json!([]), json!([{ "tenantId": t, "roleNames": g.roles }])),
            None => (json!(g.roles), json!([])),
        };
        Ok(json!({
            "name": item.name,
            "description": g.description,
            "expireTime": g.expire_time,
            "roleNames": role_names,
            "keyTenants": key_tenants,
            "customClaims": g.custom_claims,
            "permittedIps": g.permitted_ips,
            "customAttributes": { "migrationSourceId": item.source },
        }))
    }
    fn create<'a>(&'a self, body: &'a Value) -> crate::providers::standalone::Issuing<'a> {
        Box::pin(async move {
            let resp = self
                .call(Method::POST, "/v1/mgmt/accesskey/create", Some(body), false)
                .await?;
            issued(resp, "/v1/mgmt/accesskey/create")
        })
    }
    /// D11: a new secret, same id.
    fn rotate<'a>(&'a self, id: &'a str) -> crate::providers::standalone::Issuing<'a> {
        Box::pin(async move {
            let resp = self
                .call(
                    Method::POST,
                    "/v1/mgmt/accesskey/rotate",
                    Some(&json!({ "id": id })),
                    true,
                )
                .await?;
            issued(resp, "/v1/mgmt/accesskey/rotate")
        })
    }
    fn set_active<'a>(
        &'a self,
        id: &'a str,
        active: bool,
    ) -> crate::providers::standalone::Changing<'a> {
        Box::pin(async move {
            let path = if active {
                "/v1/mgmt/accesskey/activate"
            } else {
                "/v1/mgmt/accesskey/deactivate"
            };
            self.call(Method::POST, path, Some(&json!({ "id": id })), true)
                .await
                .map(|_| ())
        })
    }
    fn delete<'a>(&'a self, id: &'a str) -> crate::providers::standalone::Changing<'a> {
        Box::pin(async move {
            self.call(
                Method::POST,
                "/v1/mgmt/accesskey/delete",
                Some(&json!({ "id": id })),
                true,
            )
            .await
            .map(|_| ())
        })
    }
    /// Exchange the key for a session JWT and check its signature and subject.
    fn probe<'a>(
        &'a self,
        item: &'a crate::model::StandaloneSpec,
        id: &'a str,
        secret: &'a SecretString,
    ) -> crate::engine::Fut<'a, (Verdict, String)> {
        Box::pin(async move {
            let jwks = self
                .jwks
                .get_or_init(|| async { self.jwks().await.ok() })
                .await;
            let Some(jwks) = jwks else {
                return (
                    Verdict::Unverifiable,
                    "the project's JWKS could not be read".into(),
                );
            };
            match self.exchange(secret, jwks).await {
                Ok(sub) if sub == id && item.active => (
                    Verdict::Ok,
                    "exchanged; JWT signature and subject check out".into(),
                ),
                Ok(sub) if sub != id => (
                    Verdict::Rejected,
                    format!("the session JWT's subject {sub} is not the key {id}"),
                ),
                Ok(_) => (Verdict::Rejected, "an inactive key was exchanged".into()),
                Err(ExchangeError::Refused(status, _)) if !item.active => (
                    Verdict::ExpectedInactive,
                    format!("inactive key refused ({status}) as planned"),
                ),
                Err(ExchangeError::Refused(403, _))
                    if AccessKeyGrant::deserialize(&item.grant)
                        .is_ok_and(|g| !g.permitted_ips.is_empty()) =>
                {
                    (
                        Verdict::Unverifiable,
                        "403: the key's permitted IPs may exclude this host".into(),
                    )
                }
                Err(ExchangeError::Refused(status, msg)) => {
                    (Verdict::Rejected, format!("refused with {status}: {msg}"))
                }
                Err(ExchangeError::Other(msg)) => (Verdict::Rejected, msg),
            }
        })
    }
}

/// How descope credentials are called in messages.
pub const WORDS: crate::engine::Words = crate::engine::Words {
    container: "",
    containers: "",
    credential: "access key",
    credentials: "access keys",
    renewal: "rotation",
};

/// The connection from the environment: KEYSHIFT_DESCOPE_PROJECT_ID, KEYSHIFT_DESCOPE_MANAGEMENT_KEY, KEYSHIFT_DESCOPE_URL.
pub fn connect(
    ctx: &crate::context::Ctx,
    max_rate: Option<f64>,
    patience: crate::http::Patience,
) -> Result<Arc<DescopeConn>> {
    use crate::http::check_transport;
    let project_id = ctx.env.require(
        "KEYSHIFT_DESCOPE_PROJECT_ID",
        "the Descope project to create access keys in",
    )?;
    let key = ctx.env.require_secret(
        "KEYSHIFT_DESCOPE_MANAGEMENT_KEY",
        "export a management key, or put it in a file named by \
             KEYSHIFT_DESCOPE_MANAGEMENT_KEY_FILE",
    )?;
    let base_url = ctx.env.get("KEYSHIFT_DESCOPE_URL")?;
    let effective = base_url
        .clone()
        .unwrap_or_else(|| base_url_for(&project_id));
    check_transport("KEYSHIFT_DESCOPE_URL", &effective, ctx.allow_insecure_http)?;
    Ok(DescopeConn::new(
        std::sync::Arc::new(ctx.http_client("KEYSHIFT_DESCOPE_URL", patience)?),
        DescopeSettings {
            base_url,
            project_id,
            management_key: key,
            rate_scale: ctx.rate_scale()?,
            max_rate,
        },
    ))
}

/// `keyshift doctor`: one short search proves URL and management key.
pub async fn doctor(ctx: &crate::context::Ctx) -> Result<String> {
    let conn = connect(ctx, None, crate::http::Patience::OneShort)?;
    let ours = conn.search("keyshift:").await?;
    Ok(format!(
        "reachable, management key accepted: {} access key(s) carry a keyshift marker",
        ours.len()
    ))
}

/// How a consumer tests its new access key (hand-over page).
pub const HOW_TO_TEST: &str = "Exchange the key for a session JWT: `curl -X POST \
https://api.descope.com/v1/auth/accesskey/exchange -H \"Authorization: Bearer \
<project id>:$ACCESS_KEY\" -d '{}'`. A 200 with `sessionJwt` means it works; send that JWT \
where the old Workato credential went.";

/// The hand-over's consumer action for a Descope access key.
pub fn consumer_action(c: &crate::model::ConsumerChange) -> String {
    format!(
        "exchange the new Descope access key ({}) for a session JWT — POST \
         /v1/auth/accesskey/exchange with Authorization: Bearer <project id>:<key> — and send \
         that JWT instead of the Workato credential",
        c.at
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tenant roles go in `keyTenants` and project roles in `roleNames`, never both (SD-D5);
    /// the marker is the key's `migrationSourceId`.
    #[test]
    fn the_create_body_writes_the_grant_in_descope_fields() {
        use crate::providers::standalone::StandaloneApi;
        let grant = AccessKeyGrant {
            description: "d".into(),
            expire_time: 0,
            roles: vec!["reader".into()],
            tenant: None,
            custom_claims: [("team".to_string(), json!("ops"))].into_iter().collect(),
            permitted_ips: vec!["10.0.0.0/8".into()],
        };
        let mut item = crate::model::StandaloneSpec {
            source: "keyshift:workato:1:profile:7".into(),
            workspace: "1".into(),
            profile_id: "7".into(),
            profile_name: "p".into(),
            holder: None,
            name: "key 7".into(),
            active: true,
            grant: serde_json::to_value(&grant).unwrap(),
        };
        let body = DescopeConn::body(&item).unwrap();
        assert_eq!(
            body,
            json!({
                "name": "key 7",
                "description": "d",
                "expireTime": 0,
                "roleNames": ["reader"],
                "keyTenants": [],
                "customClaims": {"team": "ops"},
                "permittedIps": ["10.0.0.0/8"],
                "customAttributes": {"migrationSourceId": "keyshift:workato:1:profile:7"},
            })
        );
        let tenant = AccessKeyGrant {
            tenant: Some("T1".into()),
            ..grant
        };
        item.grant = serde_json::to_value(&tenant).unwrap();
        let body = DescopeConn::body(&item).unwrap();
        assert_eq!(body["roleNames"], json!([]));
        assert_eq!(
            body["keyTenants"],
            json!([{ "tenantId": "T1", "roleNames": ["reader"] }])
        );
    }

    #[test]
    fn region_from_project_id() {
        assert_eq!(
            base_url_for("Peuc12gotLL7ZROo6LTAOK1XGv0cqsqX"),
            "https://api.euc1.descope.com"
        );
        assert_eq!(
            base_url_for("P2aAc4T2V93bddihGEx2Ryhc8e5Z"),
            "https://api.descope.com"
        );
    }
}
