//! Workato: legacy API clients + access profiles (source) and v2 API clients + API keys
//! (target), over the Developer API or the Embedded API (`managed_users`).
//!
//! [`LegacyApi`] can only read. [`V2Api`] writes; only `apply` (and later
//! `cutover`/`rollback`) construct one, so planning code has no way to reach a write
//! endpoint. Paths are joined onto the configured base without dropping its path prefix
//! (SD-W2: any base URL, with or without a path).

pub mod export;
pub mod inventory_file;
mod legacy_api;
pub mod logs;
pub mod pair;
pub mod plan;
pub mod probe;
pub mod sections;
pub mod source;
pub mod target;
pub mod usable;
pub mod usage;
mod v2_api;
pub mod verify;
pub mod wire;

pub use legacy_api::LegacyApi;
use legacy_api::{legacy_client_from_wire, profile_from_wire};
pub use v2_api::{is_frozen, Issued, RemoteClient, RemoteKey, V2Api};

use anyhow::{anyhow, Context, Result};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::Value;
use std::sync::Arc;

use crate::http::{Http, HttpError, RateBudget, Request};
use crate::model::Workspace;

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

pub use crate::model::{combine_digests, object_digest, source_fingerprint};

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
        None => config.url.clone().ok_or(KeyshiftError::MissingSetting {
            name: "KEYSHIFT_WORKATO_URL",
            fix: "point it at your Workato host (e.g. https://www.workato.com), or start \
                  `keyshift sandbox` and load its env lines",
        })?,
    };
    check_transport("KEYSHIFT_WORKATO_URL", &url, ctx.allow_insecure_http)?;
    let token = ctx.env.require_secret(
        "KEYSHIFT_WORKATO_TOKEN",
        "export the Developer API client token, or put it in a file named by \
         KEYSHIFT_WORKATO_TOKEN_FILE",
    )?;
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
