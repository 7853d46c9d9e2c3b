//! Workato: legacy API clients + access profiles (source) and v2 API clients + API keys
//! (target), over the Developer API or the Embedded API (`managed_users`).
//!
//! [`LegacyApi`] can only read. [`V2Api`] writes; only `apply` (and later
//! `cutover`/`rollback`) construct one, so planning code has no way to reach a write
//! endpoint. Paths are joined onto the configured base without dropping its path prefix
//! (SD-W2: any base URL, with or without a path).

pub mod export;
pub mod inventory_file;
pub mod logs;
pub mod pair;
pub mod plan;
pub mod probe;
pub mod sections;
pub mod source;
pub mod target;
pub mod usable;
pub mod usage;
pub mod verify;
pub mod wire;

use anyhow::{anyhow, Context, Result};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::http::{Http, HttpError, RateBudget, Request};
use crate::model::{
    AuthType, ClientSpec, Collection, Inventory, KeySpec, LegacyClient, Profile, Workspace,
};

pub const VENDOR: &str = "workato";
/// Documented limits (docs.workato.com `workato-api/limits`, `oem/oem-api/limits`; SD-W1).
pub const DEVELOPER_LIMIT_PER_MINUTE: f64 = 60.0;
pub const EMBEDDED_LIMIT_PER_MINUTE: f64 = 1000.0;
const PER_PAGE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Developer,
    Embedded,
}

impl Api {
    pub fn parse(s: &str) -> Option<Api> {
        match s {
            "developer" => Some(Api::Developer),
            "embedded" => Some(Api::Embedded),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Api::Developer => "developer",
            Api::Embedded => "embedded",
        }
    }
}

/// Connection settings, from the environment or config file (docs/cli.md).
pub struct WorkatoSettings {
    pub base_url: String,
    pub token: SecretString,
    /// The id keyshift uses for the Developer API's own workspace in markers.
    pub admin_workspace: String,
    pub rate_scale: f64,
    pub max_rate: Option<f64>,
    pub checkpoints: crate::crash::Checkpoints,
}

/// The shared connection: base URL, token, and one budget per quota scope.
pub struct WorkatoConn {
    http: Http,
    base: String,
    token: SecretString,
    admin_workspace: String,
    developer: RateBudget,
    embedded: RateBudget,
    checkpoints: crate::crash::Checkpoints,
}

/// How a workspace is addressed on the wire.
#[derive(Debug, Clone)]
pub struct WsAddr {
    pub id: String,
    /// Customer workspace of an Embedded admin: routes go through `managed_users/:id`.
    pub managed: bool,
}

impl WsAddr {
    /// The address of workspace `ws` among the exported ones (the Developer workspace when
    /// it is not among them).
    pub fn find(workspaces: &[Workspace], ws: &str) -> WsAddr {
        workspaces
            .iter()
            .find(|w| w.id == ws)
            .map(WsAddr::for_workspace)
            .unwrap_or(WsAddr {
                id: ws.to_string(),
                managed: false,
            })
    }

    pub fn for_workspace(ws: &Workspace) -> WsAddr {
        WsAddr {
            id: ws.id.clone(),
            managed: !ws.admin,
        }
    }
}

impl WorkatoConn {
    pub fn new(http: Http, s: WorkatoSettings) -> Arc<WorkatoConn> {
        Arc::new(WorkatoConn {
            http,
            base: s.base_url.trim_end_matches('/').to_string(),
            token: s.token,
            admin_workspace: s.admin_workspace,
            developer: RateBudget::new(
                "workato developer API",
                DEVELOPER_LIMIT_PER_MINUTE,
                s.rate_scale,
                s.max_rate,
            ),
            embedded: RateBudget::new(
                "workato embedded API",
                EMBEDDED_LIMIT_PER_MINUTE,
                s.rate_scale,
                s.max_rate,
            ),
            checkpoints: s.checkpoints,
        })
    }

    pub fn checkpoints(&self) -> &crate::crash::Checkpoints {
        &self.checkpoints
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The budget of the scope a workspace's calls count against.
    pub fn budget(&self, ws: &WsAddr) -> &RateBudget {
        if ws.managed {
            &self.embedded
        } else {
            &self.developer
        }
    }

    /// `(url, route)` for a legacy (`v2 = false`) or v2 path of a workspace.
    fn path(&self, ws: &WsAddr, v2: bool, rest: &str, route_rest: &str) -> (String, String) {
        let (prefix, route_prefix) = match (v2, ws.managed) {
            (false, false) => ("/api".to_string(), "/api".to_string()),
            (true, false) => ("/api/v2".to_string(), "/api/v2".to_string()),
            (false, true) => (
                format!("/api/managed_users/{}", ws.id),
                "/api/managed_users/:managed_user_id".to_string(),
            ),
            (true, true) => (
                format!("/api/v2/managed_users/{}", ws.id),
                "/api/v2/managed_users/:managed_user_id".to_string(),
            ),
        };
        (
            format!("{}{prefix}/{rest}", self.base),
            format!("{route_prefix}/{route_rest}"),
        )
    }

    fn request<'a>(
        &'a self,
        method: Method,
        url: String,
        route: String,
        body: Option<&'a Value>,
    ) -> Request<'a> {
        let idempotent = method == Method::GET || method == Method::PUT || method == Method::DELETE;
        Request {
            method,
            url,
            route,
            body,
            auth: crate::http::Auth::Bearer(&self.token),
            idempotent,
        }
    }

    async fn call(
        &self,
        ws: &WsAddr,
        method: Method,
        url: String,
        route: String,
        body: Option<&Value>,
    ) -> Result<Value, HttpError> {
        let req = self.request(method, url, route, body);
        self.http.send(self.budget(ws), &req).await
    }

    /// A GET whose successful body is parsed by the caller.
    async fn get_raw(
        &self,
        ws: &WsAddr,
        url: String,
        route: String,
    ) -> Result<bytes::Bytes, HttpError> {
        let req = self.request(Method::GET, url, route, None);
        self.http.send_raw(self.budget(ws), &req).await
    }

    /// Every item of a paginated list, each mapped as its page arrives (so no page of raw
    /// JSON outlives its parsing). Stops on a short page, or when a v2 `count` says so.
    ///
    /// Pages are read one at a time when a rate budget applies — then requests, not latency,
    /// decide the pace, and reading ahead would only waste them. Unthrottled (a sandbox
    /// rehearsal), a few pages are read at once: v2 lists know their total after the first
    /// page; legacy lists may read up to `LIST_WINDOW - 1` pages past the end.
    async fn list_map<W: serde::de::DeserializeOwned, T>(
        &self,
        ws: &WsAddr,
        v2: bool,
        rest: &str,
        route_rest: &str,
        mut map: impl FnMut(W) -> Result<T>,
    ) -> Result<Vec<T>> {
        const LIST_WINDOW: u64 = 4;
        let window = if self.budget(ws).per_minute.is_none() {
            LIST_WINDOW
        } else {
            1
        };
        let mut out = Vec::new();
        let mut seen: u64 = 0;
        let mut total: Option<u64> = None;
        let mut page: u64 = 1;
        loop {
            let mut last = page + if page == 1 { 0 } else { window - 1 };
            if let Some(t) = total {
                last = last.min(t.div_ceil(PER_PAGE as u64).max(1));
            }
            let pages = (page..=last).map(|p| self.fetch_page(ws, v2, rest, route_rest, p));
            let bodies = futures::future::try_join_all(pages).await?;
            let mut done = false;
            for (route, body) in bodies {
                if done {
                    break; // read ahead past the end: nothing there
                }
                let page: wire::ListPage<W> = serde_json::from_slice(&body)
                    .map_err(|e| anyhow!("GET {route}: unexpected list from Workato: {e}"))?;
                if let Some(t) = page.count {
                    total = Some(t);
                }
                let items = page.items;
                let n = items.len();
                seen += n as u64;
                for item in items {
                    out.push(map(item)?);
                }
                done = n < PER_PAGE || total.is_some_and(|t| seen >= t);
            }
            if done {
                break;
            }
            page = last + 1;
            self.checkpoints.hit("export-between-pages");
        }
        Ok(out)
    }

    async fn fetch_page(
        &self,
        ws: &WsAddr,
        v2: bool,
        rest: &str,
        route_rest: &str,
        page: u64,
    ) -> Result<(String, bytes::Bytes)> {
        let sep = if rest.contains('?') { '&' } else { '?' };
        let (url, route) = self.path(
            ws,
            v2,
            &format!("{rest}{sep}page={page}&per_page={PER_PAGE}"),
            route_rest,
        );
        let body = self.get_raw(ws, url, route.clone()).await?;
        Ok((route, body))
    }
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Result<T> {
    serde_json::from_value(v).with_context(|| format!("unexpected {what} from Workato"))
}

/// Read-only access to the legacy side.
pub struct LegacyApi {
    conn: Arc<WorkatoConn>,
}

impl LegacyApi {
    pub fn new(conn: Arc<WorkatoConn>) -> LegacyApi {
        LegacyApi { conn }
    }

    /// The workspaces a run covers: the Developer API's own, or the Embedded customers.
    pub async fn workspaces(&self, api: Api, filter: Option<&[String]>) -> Result<Vec<Workspace>> {
        let admin = WsAddr {
            id: self.conn.admin_workspace.clone(),
            managed: false,
        };
        let all = match api {
            Api::Developer => vec![Workspace {
                id: self.conn.admin_workspace.clone(),
                external_id: None,
                name: "Developer API workspace".into(),
                admin: true,
            }],
            Api::Embedded => {
                // Counted in the Embedded scope (SD-W19).
                let admin_embedded = WsAddr {
                    managed: true,
                    ..admin
                };
                let mut out = Vec::new();
                for page in 1.. {
                    let url = format!(
                        "{}/api/managed_users?page={page}&per_page={PER_PAGE}",
                        self.conn.base
                    );
                    let body = self
                        .conn
                        .call(
                            &admin_embedded,
                            Method::GET,
                            url,
                            "/api/managed_users".into(),
                            None,
                        )
                        .await?;
                    let items = wire::list_items(body)
                        .map_err(|e| anyhow!("GET /api/managed_users: {e}"))?;
                    let n = items.len();
                    for item in items {
                        let u: wire::ManagedUser = parse("managed user", item)?;
                        out.push(Workspace {
                            id: u.id.to_string(),
                            external_id: u.external_id,
                            name: u.name,
                            admin: false,
                        });
                    }
                    if n < PER_PAGE {
                        break;
                    }
                }
                out
            }
        };
        Ok(match filter {
            None => all,
            Some(f) => all
                .into_iter()
                .filter(|w| {
                    f.iter()
                        .any(|x| *x == w.id || Some(x.as_str()) == w.external_id.as_deref())
                })
                .collect(),
        })
    }

    /// Read one workspace's legacy clients, profiles and collections.
    pub async fn export_workspace(&self, ws: &Workspace, inv: &mut Inventory) -> Result<()> {
        let (clients, profiles) = self.read_legacy(ws).await?;
        let addr = WsAddr::for_workspace(ws);
        let collections = self
            .conn
            .list_map(
                &addr,
                false,
                "api_collections",
                "api_collections",
                |c: wire::Collection| {
                    Ok(Collection {
                        workspace: ws.id.clone(),
                        id: c.id,
                        name: c.name,
                        url: c.url,
                    })
                },
            )
            .await?;
        inv.collections.extend(collections);
        inv.legacy_clients.extend(clients);
        inv.profiles.extend(profiles);
        Ok(())
    }

    /// The digests of the legacy list pages (L1 + L3), for the stale-plan check: the same
    /// requests as `read_legacy`, without keeping the objects.
    pub async fn legacy_digests(&self, ws: &Workspace) -> Result<Vec<[u8; 32]>> {
        let addr = WsAddr::for_workspace(ws);
        let mut digests = self
            .conn
            .list_map(
                &addr,
                false,
                "api_clients",
                "api_clients",
                |c: wire::LegacyClient| {
                    Ok(object_digest(
                        "legacy_client",
                        &legacy_client_from_wire(&ws.id, c),
                    ))
                },
            )
            .await?;
        digests.extend(
            self.conn
                .list_map(
                    &addr,
                    false,
                    "api_access_profiles",
                    "api_access_profiles",
                    |p: wire::AccessProfile| {
                        let p = profile_from_wire(&ws.id, p);
                        Ok(object_digest("profile", &p))
                    },
                )
                .await?,
        );
        Ok(digests)
    }

    /// The legacy list pages (L1 + L3): what the export fingerprint covers, and what apply
    /// re-reads to detect a stale plan.
    pub async fn read_legacy(&self, ws: &Workspace) -> Result<(Vec<LegacyClient>, Vec<Profile>)> {
        let addr = WsAddr::for_workspace(ws);
        let clients = self
            .conn
            .list_map(
                &addr,
                false,
                "api_clients",
                "api_clients",
                |c: wire::LegacyClient| Ok(legacy_client_from_wire(&ws.id, c)),
            )
            .await?;
        let profiles = self
            .conn
            .list_map(
                &addr,
                false,
                "api_access_profiles",
                "api_access_profiles",
                |p: wire::AccessProfile| Ok(profile_from_wire(&ws.id, p)),
            )
            .await?;
        Ok((clients, profiles))
    }
}

fn legacy_client_from_wire(ws: &str, c: wire::LegacyClient) -> LegacyClient {
    LegacyClient {
        workspace: ws.to_string(),
        id: c.id,
        name: c.name,
        project_id: c.project_id,
    }
}

fn profile_from_wire(ws: &str, p: wire::AccessProfile) -> Profile {
    let auth_type = AuthType::parse(p.auth_type.as_deref().unwrap_or(""));
    // Only an RSA public key is kept; an HMAC secret echoed by a server is dropped unread, and
    // an RSA profile's value that is not a public key (perhaps a secret pasted into the wrong
    // field) is kept only as a description the plan reports.
    let jwt_public_key = match p.jwt_method.as_deref() {
        Some("rsa") => p.jwt_secret.filter(|s| !s.trim().is_empty()).map(|s| {
            if crate::model::is_rsa_public_key_pem(&s) {
                s
            } else {
                crate::model::not_a_public_key(&s)
            }
        }),
        _ => None,
    };
    Profile {
        workspace: ws.to_string(),
        id: p.id,
        name: p.name,
        legacy_client_id: p.api_client_id,
        collection_ids: p.api_collection_ids,
        active: p.active,
        auth_type,
        jwt_method: p.jwt_method,
        jwt_public_key,
        oidc_issuer: p.oidc_issuer,
        oidc_jwks_uri: p.oidc_jwks_uri,
        access_profile_claim: p.access_profile_claim,
        required_claims: p.required_claims,
        allowed_issuers: p.allowed_issuers,
        ip_allow_list: p.ip_allow_list,
        policy_id: p.api_policy_id,
        oauth_client_id: p.oauth_client_id,
    }
}

pub use crate::model::{combine_digests, object_digest, source_fingerprint};

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

/// The `[workato]` section of `keyshift.toml`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub url: Option<String>,
    pub gateway_url: Option<String>,
    /// The id used in markers for the Developer API's own workspace (default "1").
    pub workspace_id: Option<String>,
}

/// The config file's check of the `[workato]` section (the registry lists it).
pub fn check_config(file: &crate::context::ConfigFile) -> Result<()> {
    file.section::<Config>(VENDOR).map(drop)
}

/// The connection from the environment: KEYSHIFT_WORKATO_URL (or the config's url) and KEYSHIFT_WORKATO_TOKEN.
pub fn connect(
    ctx: &crate::context::Ctx,
    max_rate: Option<f64>,
    patience: crate::http::Patience,
) -> Result<Arc<WorkatoConn>> {
    use crate::errors::KeyshiftError;
    use crate::http::check_transport;
    let config: Config = ctx.config.section(VENDOR)?;
    let url = match ctx.env.get("KEYSHIFT_WORKATO_URL")? {
        Some(u) => u,
        None => config.url.clone().ok_or_else(|| {
            KeyshiftError::Config(
                "KEYSHIFT_WORKATO_URL is not set — point it at your Workato host (e.g. \
                 https://www.workato.com), or start `keyshift sandbox` and load its env lines"
                    .into(),
            )
        })?,
    };
    check_transport("KEYSHIFT_WORKATO_URL", &url, ctx.allow_insecure_http)?;
    let token = ctx.env.secret("KEYSHIFT_WORKATO_TOKEN")?.ok_or_else(|| {
        KeyshiftError::Config(
            "KEYSHIFT_WORKATO_TOKEN is not set — export the Developer API client token, or \
             put it in a file named by KEYSHIFT_WORKATO_TOKEN_FILE"
                .into(),
        )
    })?;
    let http = std::sync::Arc::new(ctx.http_client("KEYSHIFT_WORKATO_URL", patience)?);
    Ok(WorkatoConn::new(
        http,
        WorkatoSettings {
            base_url: url,
            token,
            admin_workspace: config.workspace_id.unwrap_or_else(|| "1".into()),
            rate_scale: ctx.rate_scale()?,
            max_rate,
            checkpoints: ctx.crash.clone(),
        },
    ))
}

/// `keyshift doctor`: one short read of the legacy client list proves URL, token and
/// API-platform rights; the vendor's clock comes with it.
pub async fn doctor(
    ctx: &crate::context::Ctx,
) -> Result<(String, Option<chrono::DateTime<chrono::Utc>>)> {
    let conn = connect(ctx, None, crate::http::Patience::OneShort)?;
    let source = LegacyApi::new(conn.clone());
    let ws = source.workspaces(Api::Developer, None).await?;
    let (clients, profiles) = source.read_legacy(&ws[0]).await?;
    Ok((
        format!(
            "reachable, token accepted: {} legacy client(s), {} access profile(s)",
            clients.len(),
            profiles.len()
        ),
        conn.http().server_now(),
    ))
}

/// Workato's clock now: one read of one v2 client page (its `Date` header), whatever it
/// answered; `None` when nothing answered.
pub async fn clock(ctx: &crate::context::Ctx) -> Option<chrono::DateTime<chrono::Utc>> {
    let conn = connect(ctx, None, crate::http::Patience::OneShort).ok()?;
    let ws = WsAddr {
        id: conn.admin_workspace.clone(),
        managed: false,
    };
    let (url, route) = conn.path(&ws, true, "api_clients", "api_clients");
    let _ = conn
        .get_raw(&ws, format!("{url}?page=1&per_page=1"), route)
        .await;
    conn.http().server_now()
}

/// How a consumer tests its new API key (hand-over page).
pub const HOW_TO_TEST: &str = "Call one endpoint of a collection the key is granted with the new \
credential, e.g. `curl -H \"api-token: $NEW_TOKEN\" https://apim.workato.com/<prefix>/<collection>/<endpoint>` \
(token keys; OAuth2 and JWT keys send `Authorization: Bearer <access token or JWT>`). A 200 \
means it works; 401 means the credential is wrong or not active yet (allow a minute after \
creation).";

/// The hand-over's consumer action for a Workato API key: per the profile's auth type.
pub fn consumer_action(c: &crate::model::ConsumerChange) -> String {
    let at = &c.at;
    let claim = c
        .claim
        .as_ref()
        .map(|c| format!("claim `{c}`"))
        .unwrap_or_else(|| "`sub` claim (or `https://www.workato.com/sub`)".into());
    match c.auth_type.as_str() {
        "token" => format!(
            "replace the api-token with the new key's auth_token ({at}); URL and IP allow list \
             stay the same"
        ),
        "oauth2" => format!(
            "use the new OAuth client id {} and its client secret ({at}) at the gateway's \
             /oauth2/token endpoint",
            c.oauth_client_id.as_deref().unwrap_or("(see the sink)")
        ),
        "jwt" => format!(
            "put the new key's auth_token ({at}) in the JWT {claim}; the signing key stays the \
             same"
        ),
        "oidc" => {
            format!("have the identity provider put the new key's auth_token ({at}) in the {claim}")
        }
        other => format!("auth type {other}: see the report"),
    }
}
