//! The sandbox: a local emulator of the vendor APIs keyshift migrates between, for rehearsals,
//! the demo, tests and benchmarks (docs/sandbox.md).
//!
//! One HTTP server on `127.0.0.1` serves every vendor under its own mount — `/workato`
//! (management API), `/workato-apim` (gateway), `/bifrost` and `/descope` — plus the
//! sandbox's own `/_sandbox/*` routes for tests: request counters, a state dump with hashed
//! secrets, the signing-secrets document, the clear old credentials of simulated consumers,
//! the Workato API-logs download and a settable clock.
//!
//! Layout: [`workato`] (one module per vendor), [`generate`] (seeded inventory), [`fixture`]
//! (user inventory), [`clock`], [`config`], [`ratelimit`], [`stats`], [`faults`], [`keys`].
//!
//! All mutable state sits behind one `Mutex` ([`Inner`]); handlers take it, do their work
//! synchronously and release it before anything is awaited. The library never prints: the
//! CLI prints [`Sandbox::env`].

pub mod bifrost;
pub mod clock;
pub mod config;
pub mod consumers;
pub mod descope;
pub mod faults;
pub mod fixture;
mod fixture_json;
pub mod generate;
pub mod keys;
pub mod ratelimit;
pub mod stats;
pub mod workato;

#[cfg(test)]
mod test_http;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod usage_tests;

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::clock::{http_date, parse_instant, wire_time, SandboxClock};
use self::config::SandboxConfig;
use self::faults::{ConnInfo, FaultSpec, SandboxListener};
use self::generate::GenOptions;
use self::ratelimit::RateLimiter;
use self::stats::RequestStats;
use self::workato::model::WorkatoState;

/// How to start a sandbox (the `keyshift sandbox` flags).
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// RNG seed for the generated inventory.
    pub seed: u64,
    /// Workato workspaces in total (the first is the admin workspace).
    pub workspaces: u32,
    /// Workato access profiles in total.
    pub profiles: u32,
    /// Load this inventory instead of generating one.
    pub fixture: Option<PathBuf>,
    /// TOML config (tokens, dates, rate limits, delays).
    pub config: Option<PathBuf>,
    /// `--faults key=value,...`.
    pub faults: Option<String>,
    /// Every "L per 60 s" limit becomes "L per 60/X s"; 0 = unlimited.
    pub rate_scale: f64,
    /// Clock start: RFC 3339, `YYYY-MM-DD` or `system`; default 2025-11-15T00:00:00Z.
    pub now: Option<String>,
    /// Overrides `[workato] read_tokens` of the config.
    pub read_tokens: Option<config::ReadTokens>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            port: 0,
            seed: 1,
            workspaces: 1,
            profiles: 300,
            fixture: None,
            config: None,
            faults: None,
            rate_scale: 1.0,
            now: None,
            read_tokens: None,
        }
    }
}

/// Mutable sandbox state; one lock for all of it.
pub(crate) struct Inner {
    pub clock: SandboxClock,
    pub workato: WorkatoState,
    pub descope: descope::model::DescopeState,
    pub bifrost: bifrost::model::BifrostState,
    pub stats: RequestStats,
    pub limiter: RateLimiter,
    /// Gateway requests for the API-logs download (SD-W20).
    pub workato_logs: workato::logs::GatewayLog,
    /// Inference calls behind `/api/logs` (SD-B16, SD-B17).
    pub bifrost_logs: bifrost::logs::LogStore,
}

/// What every handler can reach.
pub(crate) struct Shared {
    pub base_url: String,
    pub config: SandboxConfig,
    /// Rate-limit window (`60/X` s); `None` = limits off.
    pub rate_window: Option<Duration>,
    pub faults: Option<FaultSpec>,
    /// When the server started (fault storms are phased from here).
    pub started: Instant,
    /// The signing-secrets document as written at start.
    pub signing_secrets: Value,
    inner: Mutex<Inner>,
}

impl Shared {
    /// Take the state lock (a panic elsewhere does not wedge the sandbox).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Cheap handle on [`Shared`] for axum state.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A private directory holding the signing-secrets file; removed on drop.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    const PREFIX: &'static str = "keyshift-sandbox-";

    /// Remove directories left by sandboxes that were killed (SIGKILL skips `Drop`): on
    /// Linux, those whose process no longer exists. Other users' directories are not ours to
    /// delete and fail harmlessly.
    fn sweep_stale() {
        let proc = Path::new("/proc");
        if !proc.is_dir() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(Self::PREFIX)) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().filter(|p| p.parse::<u32>().is_ok()) else {
                continue;
            };
            if !proc.join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    fn create() -> anyhow::Result<Self> {
        Self::sweep_stale();
        let name = format!(
            "{}{}-{}",
            Self::PREFIX,
            std::process::id(),
            &workato::fresh_secret()[..12]
        );
        let path = std::env::temp_dir().join(name);
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    fn write_private(&self, name: &str, contents: &[u8]) -> anyhow::Result<PathBuf> {
        use std::io::Write;
        let path = self.0.join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(contents)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running sandbox. Dropping it stops the server (without waiting); [`Sandbox::shutdown`]
/// stops it and waits.
pub struct Sandbox {
    addr: SocketAddr,
    url: String,
    rate_scale: f64,
    app: AppState,
    signing_secrets_path: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _dir: PrivateDir,
}

impl Sandbox {
    /// Bind `127.0.0.1:<port>`, build the inventory, write the signing-secrets file and start
    /// serving on a spawned task.
    pub async fn start(opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        if !opts.rate_scale.is_finite() || opts.rate_scale < 0.0 {
            bail!(
                "--rate-scale must be a number >= 0, got {}",
                opts.rate_scale
            );
        }
        if opts.workspaces == 0 {
            bail!("--workspaces must be at least 1");
        }
        let mut config = match &opts.config {
            Some(p) => SandboxConfig::load(p)?,
            None => SandboxConfig::default(),
        };
        if let Some(mode) = opts.read_tokens {
            config.workato.read_tokens = mode;
        }
        let start = clock::parse_start(opts.now.as_deref())?;
        let faults = opts.faults.as_deref().map(FaultSpec::parse).transpose()?;

        let listener = TcpListener::bind(("127.0.0.1", opts.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", opts.port))?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");

        let workato = match &opts.fixture {
            Some(path) => fixture::load_file(path, &url, start)?,
            None => generate::generate(
                &GenOptions {
                    seed: opts.seed,
                    workspaces: opts.workspaces,
                    profiles: opts.profiles,
                },
                &url,
            ),
        };
        let bifrost = match &opts.fixture {
            Some(path) => bifrost::fixture::load_file(path, start)?,
            None => bifrost::generate::generate(opts.seed, config.bifrost.generated_profiles),
        };
        let descope = descope::build(&config.descope, &workato, opts.fixture.as_deref(), start)?;
        let signing_secrets = workato.signing_secrets();
        let dir = PrivateDir::create()?;
        let signing_secrets_path = dir.write_private(
            "signing-secrets.json",
            serde_json::to_string_pretty(&signing_secrets)?.as_bytes(),
        )?;

        let app = AppState(Arc::new(Shared {
            base_url: url.clone(),
            config,
            rate_window: ratelimit::window_for(opts.rate_scale),
            faults,
            started: Instant::now(),
            signing_secrets,
            inner: Mutex::new(Inner {
                clock: SandboxClock::starting_at(start),
                workato,
                descope,
                bifrost,
                stats: RequestStats::default(),
                limiter: RateLimiter::default(),
                workato_logs: workato::logs::GatewayLog::default(),
                bifrost_logs: bifrost::logs::LogStore::default(),
            }),
        }));
        let router = router(app.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let service = router.into_make_service_with_connect_info::<ConnInfo>();
        let task = tokio::spawn(async move {
            let served = axum::serve(SandboxListener(listener), service)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!("sandbox server stopped: {e}");
            }
        });
        tracing::debug!(%url, "sandbox listening");
        Ok(Sandbox {
            addr,
            url,
            rate_scale: opts.rate_scale,
            app,
            signing_secrets_path,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the signing-secrets file (docs/sandbox.md, "Signing secrets") was written.
    pub fn signing_secrets_path(&self) -> &Path {
        &self.signing_secrets_path
    }

    /// The env lines, in the order docs/sandbox.md lists them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let cfg = &self.app.config;
        vec![
            ("KEYSHIFT_SANDBOX_URL", self.url.clone()),
            (
                "KEYSHIFT_WORKATO_URL",
                format!("{}{}", self.url, workato::MOUNT),
            ),
            ("KEYSHIFT_WORKATO_TOKEN", cfg.workato.token.clone()),
            (
                "KEYSHIFT_WORKATO_GATEWAY_URL",
                format!("{}{}", self.url, workato::GATEWAY_MOUNT),
            ),
            ("KEYSHIFT_BIFROST_URL", format!("{}/bifrost", self.url)),
            ("KEYSHIFT_BIFROST_TOKEN", cfg.bifrost.token.clone()),
            ("KEYSHIFT_DESCOPE_URL", format!("{}/descope", self.url)),
            (
                "KEYSHIFT_DESCOPE_PROJECT_ID",
                cfg.descope.project_id.clone(),
            ),
            (
                "KEYSHIFT_DESCOPE_MANAGEMENT_KEY",
                cfg.descope.management_key.clone(),
            ),
            (
                "KEYSHIFT_SIGNING_SECRETS",
                self.signing_secrets_path.display().to_string(),
            ),
            ("KEYSHIFT_RATE_SCALE", format!("{}", self.rate_scale)),
        ]
    }

    /// Stop accepting, let in-flight requests finish (at most 5 s), and remove the private
    /// directory.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Every route of the sandbox.
fn router(app: AppState) -> Router {
    Router::new()
        .nest(workato::MOUNT, workato::management_router(&app))
        .nest(workato::GATEWAY_MOUNT, workato::gateway_router(&app))
        .nest(descope::MOUNT, descope::router(&app))
        .route(
            "/_sandbox/descope/fail-next",
            get(descope::get_fail_next).post(descope::set_fail_next),
        )
        .nest(bifrost::MOUNT, bifrost::router(&app))
        .route("/_sandbox/stats", get(get_stats))
        .route("/_sandbox/stats/reset", post(reset_stats))
        .route("/_sandbox/state", get(get_state))
        .route("/_sandbox/signing-keys", get(get_signing_keys))
        .route(
            "/_sandbox/consumer-credentials",
            get(get_consumer_credentials),
        )
        .route(
            "/_sandbox/workato/api-logs.csv",
            get(workato::logs::api_logs_csv),
        )
        .route("/_sandbox/clock", get(get_clock).post(set_clock))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), common_headers))
        .with_state(app)
}

const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// `Date` from the sandbox clock on every response; `x-correlation-id` echoed (SD-W16).
async fn common_headers(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let correlation = req.headers().get(&CORRELATION_ID).cloned();
    let mut resp = next.run(req).await;
    let now = app.lock().clock.now();
    if let Ok(v) = HeaderValue::from_str(&http_date(now)) {
        resp.headers_mut().insert(header::DATE, v);
    }
    if let Some(c) = correlation {
        resp.headers_mut().insert(CORRELATION_ID, c);
    }
    resp
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"message": "Not found"}))).into_response()
}

async fn get_stats(State(app): State<AppState>) -> Json<Value> {
    Json(app.lock().stats.to_json())
}

async fn reset_stats(State(app): State<AppState>) -> Json<Value> {
    app.lock().stats.reset();
    Json(json!({"success": true}))
}

async fn get_state(State(app): State<AppState>) -> Json<Value> {
    let workato = app.lock().workato.state();
    let descope = app.lock().descope.state(&app.config.descope.project_id);
    Json(json!({
        "workato": workato,
        "bifrost": app.lock().bifrost.state(),
        "descope": descope,
    }))
}

async fn get_signing_keys(State(app): State<AppState>) -> Json<Value> {
    Json(app.signing_secrets.clone())
}

/// The clear old credentials a simulated consumer would hold: legacy Workato token profiles
/// whose token is known, and the profile-managed Bifrost keys of users' profile copies.
async fn get_consumer_credentials(State(app): State<AppState>) -> Json<Value> {
    let inner = app.lock();
    let mut workato = Vec::new();
    for ws in inner.workato.workspaces.values() {
        for p in ws.profiles.values() {
            let Some(token) = p.secret.as_ref().and_then(|s| s.clear()) else {
                continue;
            };
            if p.auth_type != "token" {
                continue;
            }
            workato.push(json!({
                "workspace": ws.id,
                "legacy_client_id": p.api_client_id,
                "legacy_client_name": ws.legacy_clients.get(&p.api_client_id).map(|c| c.name.as_str()),
                "profile_id": p.id,
                "auth_type": p.auth_type,
                "active": p.active,
                "token": token,
            }));
        }
    }
    let b = &inner.bifrost;
    let mut bifrost = Vec::new();
    for copy in b.user_profiles.values() {
        let Some(profile_id) = copy.parent_profile_id else {
            continue;
        };
        for vk_id in &copy.virtual_key_ids {
            let Some(vk) = b.vk(vk_id).filter(|k| k.is_access_profile_managed) else {
                continue;
            };
            let Some(value) = vk.value.clear() else {
                continue;
            };
            bifrost.push(json!({
                "user_id": copy.user_id,
                "profile_id": profile_id,
                "virtual_key_id": vk.id,
                "value": value,
                "active": vk.is_active,
            }));
        }
    }
    Json(json!({ "workato": workato, "bifrost": bifrost }))
}

async fn get_clock(State(app): State<AppState>) -> Json<Value> {
    let now = app.lock().clock.now();
    Json(json!({ "now": wire_time(now) }))
}

/// `POST /_sandbox/clock {"now": "<RFC 3339 or YYYY-MM-DD>"}`: jump the clock.
async fn set_clock(State(app): State<AppState>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("now").and_then(Value::as_str).map(parse_instant));
    match parsed {
        Some(Ok(t)) => {
            let mut inner = app.lock();
            inner.clock.set(t);
            Json(json!({ "now": wire_time(inner.clock.now()) })).into_response()
        }
        Some(Err(e)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "message": e.to_string() })),
        )
            .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "expected {\"now\": \"<RFC 3339 date-time>\"}"})),
        )
            .into_response(),
    }
}
