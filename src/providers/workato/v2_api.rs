//! Workato's v2 side, the only one that writes: v2 API clients and their API keys. Only the
//! commands that write (`apply`, `cutover`, `rollback`) construct a [`V2Api`].

use anyhow::Result;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::Arc;

use super::{wire, WorkatoConn, WsAddr};
use crate::http::HttpError;
use crate::model::{ClientSpec, KeySpec};

/// A v2 client as read back.
#[derive(Debug, Clone)]
pub struct RemoteClient {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub auth_type: Option<String>,
    pub collection_ids: Option<Vec<i64>>,
    pub policy_id: Option<Option<i64>>,
    pub jwt_method: Option<String>,
    pub oidc_issuer: Option<String>,
    pub oidc_jwks_uri: Option<String>,
    pub access_profile_claim: Option<String>,
    pub required_claims: Option<Vec<String>>,
    pub allowed_issuers: Option<Vec<String>>,
}

impl RemoteClient {
    /// The provenance marker at the start of the description, if it is one of ours.
    pub fn marker(&self) -> Option<&str> {
        let first = self.description.split_whitespace().next()?;
        first.starts_with("keyshift:").then_some(first)
    }
}

/// A key as read back.
#[derive(Debug, Clone)]
pub struct RemoteKey {
    pub id: i64,
    pub name: String,
    pub active: bool,
    pub ip_allow_list: Vec<String>,
    pub ip_deny_list: Vec<String>,
}

/// A freshly issued credential. `Debug` redacts.
#[derive(Debug)]
pub struct Issued {
    pub key_id: i64,
    pub secret: SecretString,
    /// `auth_token` or `oauth_client_secret`.
    pub kind: &'static str,
    pub oauth_client_id: Option<String>,
}

/// Write access to the v2 side. Constructed only by commands that write.
pub struct V2Api {
    conn: Arc<WorkatoConn>,
}

impl V2Api {
    pub fn new(conn: Arc<WorkatoConn>) -> V2Api {
        V2Api { conn }
    }

    pub fn conn(&self) -> &WorkatoConn {
        &self.conn
    }

    /// Our side of V1: the non-legacy clients of a workspace.
    pub async fn list_clients(&self, ws: &WsAddr) -> Result<Vec<RemoteClient>> {
        let all = self
            .conn
            .list_map(
                ws,
                true,
                "api_clients",
                "api_clients",
                |c: wire::ApiClient| {
                    if c.is_legacy {
                        return Ok(None);
                    }
                    Ok(Some(RemoteClient {
                        id: c.id,
                        name: c.name,
                        description: c.description.unwrap_or_default(),
                        auth_type: c.auth_type,
                        collection_ids: c
                            .api_collections
                            .map(|v| v.into_iter().map(|x| x.id).collect()),
                        policy_id: c.api_policies.map(|v| v.first().map(|x| x.id)),
                        jwt_method: c.jwt_method,
                        oidc_issuer: c.oidc_issuer,
                        oidc_jwks_uri: c.oidc_jwks_uri,
                        access_profile_claim: c.access_profile_claim,
                        required_claims: c.required_claims,
                        allowed_issuers: c.allowed_issuers,
                    }))
                },
            )
            .await?;
        let out: Vec<RemoteClient> = all.into_iter().flatten().collect();
        Ok(out)
    }

    /// V2. `hmac_secret` is sent only here, only for HMAC JWT clients.
    pub async fn create_client(
        &self,
        ws: &WsAddr,
        spec: &ClientSpec,
        hmac_secret: Option<&SecretString>,
    ) -> Result<i64, HttpError> {
        let s = &spec.settings;
        let mut body = json!({
            "name": spec.name,
            "description": spec.description,
            "auth_type": s.auth_type.as_str(),
            "api_collection_ids": s.collection_ids.iter().collect::<Vec<_>>(),
        });
        let obj = body.as_object_mut().expect("object");
        // Absent optionals are omitted, never sent as null.
        if let Some(p) = spec.project_id {
            obj.insert("project_id".into(), json!(p));
        }
        if let Some(p) = s.policy_id {
            obj.insert("api_policy_id".into(), json!(p));
        }
        if let Some(m) = &s.jwt_method {
            obj.insert("jwt_method".into(), json!(m));
        }
        if let Some(pem) = &s.jwt_public_key {
            obj.insert("jwt_secret".into(), json!(pem));
        }
        if let Some(secret) = hmac_secret {
            use secrecy::ExposeSecret;
            obj.insert("jwt_secret".into(), json!(secret.expose_secret()));
        }
        for (k, v) in [
            ("oidc_issuer", &s.oidc_issuer),
            ("oidc_jwks_uri", &s.oidc_jwks_uri),
            ("access_profile_claim", &s.access_profile_claim),
        ] {
            if let Some(v) = v {
                obj.insert(k.into(), json!(v));
            }
        }
        if !s.required_claims.is_empty() {
            obj.insert("required_claims".into(), json!(s.required_claims));
        }
        if !s.allowed_issuers.is_empty() {
            obj.insert("allowed_issuers".into(), json!(s.allowed_issuers));
        }
        let (url, route) = self.conn.path(ws, true, "api_clients", "api_clients");
        let resp = self
            .conn
            .call(ws, Method::POST, url, route.clone(), Some(&body))
            .await?;
        created_id(resp, "POST", &route)
    }

    /// K1: every key of one of our clients.
    pub async fn list_keys(&self, ws: &WsAddr, client_id: i64) -> Result<Vec<RemoteKey>> {
        let rest = format!("api_clients/{client_id}/api_keys");
        self.conn
            .list_map(
                ws,
                true,
                &rest,
                "api_clients/:api_client_id/api_keys",
                |k: wire::ApiKey| {
                    Ok(RemoteKey {
                        id: k.id,
                        name: k.name,
                        active: k.active,
                        ip_allow_list: k.ip_allow_list,
                        ip_deny_list: k.ip_deny_list,
                    })
                },
            )
            .await
    }

    /// K2. The response carries the key's only copy of its secret.
    pub async fn create_key(
        &self,
        ws: &WsAddr,
        client_id: i64,
        key: &KeySpec,
    ) -> Result<Issued, HttpError> {
        let body = json!({
            "name": key.name,
            "active": key.active,
            "ip_allow_list": key.ip_allow_list,
            "ip_deny_list": [],
        });
        let (url, route) = self.conn.path(
            ws,
            true,
            &format!("api_clients/{client_id}/api_keys"),
            "api_clients/:api_client_id/api_keys",
        );
        let resp = self
            .conn
            .call(ws, Method::POST, url, route.clone(), Some(&body))
            .await?;
        issued(resp, "POST", &route, None)
    }

    /// K7 on one of *our* keys (never a legacy profile): a new secret for a key whose first
    /// one was lost before it reached the sink.
    pub async fn refresh_key(
        &self,
        ws: &WsAddr,
        client_id: i64,
        key_id: i64,
    ) -> Result<Issued, HttpError> {
        let (url, route) = self.conn.path(
            ws,
            true,
            &format!("api_clients/{client_id}/api_keys/{key_id}/refresh_secret"),
            "api_clients/:api_client_id/api_keys/:api_key_id/refresh_secret",
        );
        // Not idempotent in effect (each call issues a new secret), but a repeat after an
        // ambiguous failure only supersedes a secret nobody has yet.
        let resp = self
            .conn
            .call(ws, Method::PUT, url, route.clone(), None)
            .await?;
        issued(resp, "PUT", &route, Some(key_id))
    }
}

impl V2Api {
    async fn simple(
        &self,
        ws: &WsAddr,
        method: Method,
        v2: bool,
        rest: String,
        route_rest: &str,
    ) -> Result<(), HttpError> {
        let (url, route) = self.conn.path(ws, v2, &rest, route_rest);
        self.conn
            .call(ws, method, url, route, None)
            .await
            .map(|_| ())
    }

    /// L7: disable a legacy profile (cutover). Fails with 4xx once the source is frozen.
    pub async fn disable_profile(&self, ws: &WsAddr, profile_id: i64) -> Result<(), HttpError> {
        self.simple(
            ws,
            Method::PUT,
            false,
            format!("api_access_profiles/{profile_id}/disable"),
            "api_access_profiles/:api_access_profile_id/disable",
        )
        .await
    }

    /// L6: enable a legacy profile (rollback of a cutover).
    pub async fn enable_profile(&self, ws: &WsAddr, profile_id: i64) -> Result<(), HttpError> {
        self.simple(
            ws,
            Method::PUT,
            false,
            format!("api_access_profiles/{profile_id}/enable"),
            "api_access_profiles/:api_access_profile_id/enable",
        )
        .await
    }

    /// K6: disable one of our keys.
    pub async fn disable_key(
        &self,
        ws: &WsAddr,
        client_id: i64,
        key_id: i64,
    ) -> Result<(), HttpError> {
        self.simple(
            ws,
            Method::PUT,
            true,
            format!("api_clients/{client_id}/api_keys/{key_id}/disable"),
            "api_clients/:api_client_id/api_keys/:api_key_id/disable",
        )
        .await
    }

    /// K4: delete one of our keys.
    pub async fn delete_key(
        &self,
        ws: &WsAddr,
        client_id: i64,
        key_id: i64,
    ) -> Result<(), HttpError> {
        self.simple(
            ws,
            Method::DELETE,
            true,
            format!("api_clients/{client_id}/api_keys/{key_id}"),
            "api_clients/:api_client_id/api_keys/:api_key_id",
        )
        .await
    }

    /// V5: delete one of our clients (and, on the vendor's side, any keys left in it).
    pub async fn delete_client(&self, ws: &WsAddr, client_id: i64) -> Result<(), HttpError> {
        self.simple(
            ws,
            Method::DELETE,
            true,
            format!("api_clients/{client_id}"),
            "api_clients/:api_client_id",
        )
        .await
    }
}

/// A legacy write refused because the source is frozen (SD-W4 and its variants: any 4xx on
/// a legacy write once the freeze date has passed).
pub fn is_frozen(
    err: &HttpError,
    now: chrono::DateTime<chrono::Utc>,
    frozen: chrono::DateTime<chrono::Utc>,
) -> bool {
    matches!(err.status(), Some(400 | 403 | 404 | 405 | 410 | 422)) && now >= frozen
        || err
            .to_string()
            .contains("can no longer be created or modified")
}

fn protocol_error(method: &str, route: &str, what: &str) -> HttpError {
    HttpError::Status {
        method: method.into(),
        route: route.into(),
        status: 200,
        message: format!("unexpected response: {what}"),
        retry_after: None,
        body: None,
    }
}

fn created_id(resp: Value, method: &str, route: &str) -> Result<i64, HttpError> {
    let obj = wire::object(resp);
    serde_json::from_value::<wire::IdName>(obj)
        .map(|x| x.id)
        .map_err(|_| protocol_error(method, route, "no id in the created object"))
}

fn issued(
    resp: Value,
    method: &str,
    route: &str,
    known_id: Option<i64>,
) -> Result<Issued, HttpError> {
    let k: wire::IssuedKey = serde_json::from_value(wire::object(resp))
        .map_err(|_| protocol_error(method, route, "not an API key"))?;
    let key_id =
        k.id.or(known_id)
            .ok_or_else(|| protocol_error(method, route, "no key id"))?;
    let (secret, kind) = match (k.oauth_client_secret, k.auth_token) {
        (Some(s), _) => (s, "oauth_client_secret"),
        (None, Some(t)) => (t, "auth_token"),
        (None, None) => return Err(protocol_error(method, route, "no secret in the response")),
    };
    Ok(Issued {
        key_id,
        secret,
        kind,
        oauth_client_id: k.oauth_client_id,
    })
}
