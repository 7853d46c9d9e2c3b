//! Shared HTTP: one reqwest client, a rate budget per vendor quota scope, retries that honour
//! `Retry-After`, and errors that never carry a credential.
//!
//! Which failures are retried is decided in one place, [`HttpError::retry_class`] and
//! [`HttpError::unreachable`], and tested below. A request that may have reached the vendor
//! (a write answered by 502/504, or whose connection broke after sending) is *not* retried
//! here: the caller journals it as unknown and reconciles by looking the object up before
//! trying again.
//!
//! A host that cannot be reached at all — its name does not resolve, nothing listens, the TLS
//! handshake fails, or it never answers — is not a transient failure the first time: the
//! command ends at once with a message that names the host and what to check. Only once a
//! host has answered in this run are such failures retried like any other transport error.
//! Every retry is announced: one warning line (or a `http.retry` event with `--json`).

use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::printer::{Mode, Printer};

mod net;
pub use net::NetConfig;

/// Statuses that are retried for every request: the vendor did not apply it.
pub const RETRY_ALWAYS: &[u16] = &[429, 503];
/// Statuses retried only for reads (and idempotent writes): a gateway error on a create may
/// come after the vendor committed it.
pub const RETRY_IF_IDEMPOTENT: &[u16] = &[502, 504];
/// Without a Retry-After on a 429, wait this long (spec SD-W1), with jitter.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Retries after the first attempt, for a normal run.
pub const MAX_RETRIES: usize = 8;
/// A host that has not answered yet in this run must connect and answer within this long;
/// after that, a request has [`REQUEST_TIMEOUT`].
pub const FIRST_CONTACT_TIMEOUT: Duration = Duration::from_secs(8);
/// A request to a host that has answered before.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A request budget for one vendor quota scope (e.g. Workato Developer API, 60/min).
pub struct RateBudget {
    pub name: String,
    /// Requests per minute this budget allows (after scaling and `--max-rate`); `None` =
    /// unlimited.
    pub per_minute: Option<f64>,
    limiter: Option<DefaultDirectRateLimiter>,
}

impl RateBudget {
    /// `limit_per_minute` is the vendor's documented limit; `scale` is KEYSHIFT_RATE_SCALE
    /// (rehearsal only: 0 = unlimited); `max_rate` is the user's `--max-rate`.
    pub fn new(name: &str, limit_per_minute: f64, scale: f64, max_rate: Option<f64>) -> RateBudget {
        let scaled = if scale <= 0.0 {
            None
        } else {
            Some(limit_per_minute * scale)
        };
        let per_minute = match (scaled, max_rate) {
            (Some(s), Some(m)) => Some(s.min(m * scale.max(1.0))),
            (Some(s), None) => Some(s),
            (None, m) => m,
        };
        // A rehearsal keeps the vendor's count per window and shortens the window (60/scale s).
        let window_secs = 60.0 / if scale > 0.0 { scale } else { 1.0 };
        let limiter = per_minute.map(|rpm| {
            RateLimiter::direct(Pace::for_window(rpm * window_secs / 60.0).quota(window_secs))
        });
        RateBudget {
            name: name.into(),
            per_minute,
            limiter,
        }
    }

    pub async fn acquire(&self) {
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
    }
}

/// How requests are paced against a limit of `limit` requests per window (the vendors count
/// arrivals in a rolling minute).
///
/// Requests leave evenly spaced, at most `limit - slack` in any window, `slack` =
/// max(1, limit/200): they reach the vendor with jitter, and the slack keeps a request that
/// arrives a little early from being the one too many. A burst of `slack` lets a request that
/// woke late (timers have millisecond granularity) be followed at once, so lateness does not
/// add up into unused budget. With a burst of `b` and `n` requests per window, a paced
/// sequence puts at most `b + ⌊n⌋` requests into any window; `n = limit − 2·slack + 0.99`
/// makes that `limit − slack`. Embedded's 1,000/min is paced at 990.99/min with a burst of 5,
/// the Developer API's 60/min at 58.99/min, one at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pace {
    per_window: f64,
    burst: u32,
}

impl Pace {
    fn for_window(limit: f64) -> Pace {
        let slack = (limit / 200.0).floor().max(1.0);
        let per_window = limit - 2.0 * slack + 0.99;
        if per_window >= limit * 0.9 {
            return Pace {
                per_window,
                burst: slack as u32,
            };
        }
        // Small limits (a user's --max-rate of a few per minute): one below, one at a time.
        Pace {
            per_window: (limit - 1.01).max(limit * 0.5),
            burst: 1,
        }
    }

    /// The governor quota for a window of `window_secs`.
    fn quota(&self, window_secs: f64) -> Quota {
        let period = Duration::from_secs_f64(window_secs / self.per_window);
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("positive period")
            .allow_burst(NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN))
    }

    /// The most requests a paced sequence can put into one window.
    #[cfg(test)]
    fn most_per_window(&self) -> u32 {
        self.burst + self.per_window.floor() as u32
    }
}

/// What went wrong with a request. Messages name method and route, never a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    #[error("{method} {route}: HTTP {status}: {message}")]
    Status {
        method: String,
        route: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
        body: Option<Value>,
    },
    #[error("{method} {route}: {message}")]
    Transport {
        method: String,
        route: String,
        message: String,
        /// true when the request may have reached the server.
        maybe_sent: bool,
        kind: TransportKind,
        /// The host had answered an earlier request of this run.
        reached_before: bool,
    },
}

/// What kind of transport failure ended a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The host name does not resolve.
    Dns,
    /// Nothing listens at the address: the connection was refused.
    Refused,
    /// No TCP connection within the connect timeout (e.g. a firewall drops the packets).
    ConnectTimeout,
    /// The TLS handshake failed: an untrusted CA, a certificate for another name, not TLS.
    Tls,
    /// Connected and sent, but no answer came within the timeout.
    NoAnswer,
    /// Anything else: a reset, a response that broke off.
    Broken,
}

/// How a failed request may be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Not applied by the vendor: safe to send again.
    Retry,
    /// May have been applied: a read may be repeated, a create must be reconciled first.
    Ambiguous,
    /// A definite answer (4xx other than 429, or 500): retrying changes nothing.
    Permanent,
}

impl HttpError {
    pub fn retry_class(&self) -> RetryClass {
        match self {
            HttpError::Status { status, .. } if RETRY_ALWAYS.contains(status) => RetryClass::Retry,
            HttpError::Status { status, .. } if RETRY_IF_IDEMPOTENT.contains(status) => {
                RetryClass::Ambiguous
            }
            HttpError::Status { .. } => RetryClass::Permanent,
            HttpError::Transport {
                kind: TransportKind::Tls,
                ..
            } => RetryClass::Permanent,
            HttpError::Transport {
                maybe_sent: false, ..
            } => RetryClass::Retry,
            HttpError::Transport {
                maybe_sent: true, ..
            } => RetryClass::Ambiguous,
        }
    }

    /// The host cannot be reached at all, so trying again now will not help: its name does
    /// not resolve, nothing listens, it never answered, or TLS with it fails. Only a host
    /// that has answered earlier in the run is given the benefit of the doubt (a restart, a
    /// DNS blip) and retried; TLS failures never are.
    pub fn unreachable(&self) -> bool {
        match self {
            HttpError::Status { .. } => false,
            HttpError::Transport {
                kind: TransportKind::Tls,
                ..
            } => true,
            HttpError::Transport {
                kind:
                    TransportKind::Dns
                    | TransportKind::Refused
                    | TransportKind::ConnectTimeout
                    | TransportKind::NoAnswer,
                reached_before,
                ..
            } => !reached_before,
            HttpError::Transport { .. } => false,
        }
    }

    /// Whether the retry loop sends this request again.
    fn retried(&self, idempotent: bool) -> bool {
        if self.unreachable() {
            return false;
        }
        match self.retry_class() {
            RetryClass::Retry => true,
            RetryClass::Ambiguous => idempotent,
            RetryClass::Permanent => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::Transport { .. } => None,
        }
    }

    pub fn body(&self) -> Option<&Value> {
        match self {
            HttpError::Status { body, .. } => body.as_ref(),
            HttpError::Transport { .. } => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::Status {
                status: 429,
                retry_after,
                ..
            } => Some(retry_after.unwrap_or(DEFAULT_RETRY_AFTER)),
            HttpError::Status { retry_after, .. } => *retry_after,
            HttpError::Transport { .. } => None,
        }
    }
}

/// How a request authenticates. Credentials are only ever put in headers.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Bearer(&'a SecretString),
    Basic(&'a str, &'a SecretString),
}

/// One request, described without credentials so it can be retried and reported.
pub struct Request<'a> {
    pub method: Method,
    pub url: String,
    /// Path pattern for messages and stats (`/api/v2/api_clients/:id`), never the query.
    pub route: String,
    pub body: Option<&'a Value>,
    pub auth: Auth<'a>,
    /// Reads and idempotent writes are retried on ambiguous failures too.
    pub idempotent: bool,
}

/// How patient a client is: a run retries transient failures; `doctor` makes one short
/// attempt per request and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Up to [`MAX_RETRIES`] retries within 10 minutes, each announced.
    Run,
    /// One attempt, answered within [`FIRST_CONTACT_TIMEOUT`].
    OneShort,
}

/// What a client is built from: the network settings, how patient it is, who hears about
/// retries, and the setting that names its host (for messages).
#[derive(Clone)]
pub struct ClientOptions {
    pub net: NetConfig,
    pub patience: Patience,
    /// Retry warnings go here (`None`: only to the debug log).
    pub printer: Option<Printer>,
    /// The setting that holds the host's URL, e.g. `KEYSHIFT_WORKATO_URL`.
    pub url_setting: &'static str,
}

impl ClientOptions {
    pub fn new(net: NetConfig, url_setting: &'static str) -> ClientOptions {
        ClientOptions {
            net,
            patience: Patience::Run,
            printer: None,
            url_setting,
        }
    }
}

/// The shared client: connection pool, retry policy, the server's clock and a request count.
pub struct HttpClient {
    inner: reqwest::Client,
    /// Server `Date` minus local clock, in seconds, from the last response (0 = unknown).
    server_offset: AtomicI64,
    seen_date: AtomicU64,
    requests: AtomicU64,
    /// Requests sent per wall-clock second (unix time), for the report's rate chart.
    timeline: std::sync::Mutex<std::collections::BTreeMap<i64, u32>>,
    /// Hosts (`host:port`) that have answered in this run.
    answered: std::sync::Mutex<std::collections::HashSet<String>>,
    max_retries: usize,
    deadline: Duration,
    patience: Patience,
    printer: Option<Printer>,
    url_setting: &'static str,
    net: NetConfig,
}

impl HttpClient {
    /// A client with no proxy, the built-in roots only, and silent retries (unit tests, the
    /// sandbox's own calls).
    pub fn new() -> anyhow::Result<HttpClient> {
        HttpClient::with_options(ClientOptions::new(NetConfig::default(), "the URL"))
    }

    pub fn with_options(opts: ClientOptions) -> anyhow::Result<HttpClient> {
        let inner = opts
            .net
            .client_builder()?
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(FIRST_CONTACT_TIMEOUT)
            .pool_max_idle_per_host(32)
            .user_agent(concat!("keyshift/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpClient {
            inner,
            server_offset: AtomicI64::new(0),
            seen_date: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            timeline: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            answered: std::sync::Mutex::new(std::collections::HashSet::new()),
            max_retries: match opts.patience {
                Patience::Run => MAX_RETRIES,
                Patience::OneShort => 0,
            },
            deadline: Duration::from_secs(600),
            patience: opts.patience,
            printer: opts.printer,
            url_setting: opts.url_setting,
            net: opts.net,
        })
    }

    /// The configured reqwest client (proxies and CAs applied), for calls outside the
    /// retry loop (e.g. probes with a key's own credential).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// Requests sent so far (every attempt counts).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `(unix second, requests sent in it)`, oldest first.
    pub fn timeline(&self) -> Vec<(i64, u32)> {
        let t = self.timeline.lock().unwrap_or_else(|p| p.into_inner());
        t.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// The server's clock as of its last `Date` header, if one was seen.
    pub fn server_now(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        if self.seen_date.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let offset = self.server_offset.load(Ordering::Relaxed);
        Some(chrono::Utc::now() + chrono::Duration::seconds(offset))
    }

    /// Send with pacing and retries; returns the parsed JSON body (Null for an empty one).
    pub async fn send(&self, budget: &RateBudget, req: &Request<'_>) -> Result<Value, HttpError> {
        let bytes = self.send_raw(budget, req).await?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// [`send`](Self::send), returning a successful response's body as bytes, for callers
    /// that parse it into their own types (list pages: no JSON tree per page).
    pub async fn send_raw(
        &self,
        budget: &RateBudget,
        req: &Request<'_>,
    ) -> Result<bytes::Bytes, HttpError> {
        let idempotent = req.idempotent;
        let attempt = || async {
            budget.acquire().await;
            self.send_once(req).await
        };
        let mut failed = 0usize;
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(30))
                    .with_max_times(self.max_retries)
                    .with_total_delay(Some(self.deadline))
                    .with_jitter(),
            )
            .sleep(tokio::time::sleep)
            .when(move |e: &HttpError| e.retried(idempotent))
            .adjust(|e: &HttpError, backoff| match (e.retry_after(), backoff) {
                // Retry-After is the vendor's word; add a little jitter so parallel
                // workers do not return in lock-step.
                (Some(ra), Some(_)) => {
                    Some(ra + Duration::from_millis(rand::random::<u64>() % 250))
                }
                (_, b) => b,
            })
            .notify(|e: &HttpError, wait: Duration| {
                failed += 1;
                self.announce_retry(req, e, failed, wait);
            })
            .await
    }

    /// One line per retry: what failed, attempt n of N, when the next try is.
    fn announce_retry(&self, req: &Request<'_>, e: &HttpError, attempt: usize, wait: Duration) {
        let of = self.max_retries + 1;
        let host = host_of(&req.url);
        let secs = (wait.as_secs_f64() * 10.0).round() / 10.0;
        tracing::debug!(%host, attempt, of, wait_secs = secs, error = %e, "retrying");
        let Some(p) = &self.printer else {
            return;
        };
        match p.mode() {
            Mode::Quiet => {}
            Mode::Json => p.event(
                "http.retry",
                serde_json::json!({
                    "host": host,
                    "method": req.method.as_str(),
                    "route": req.route,
                    "error": e.to_string(),
                    "status": e.status(),
                    "attempt": attempt,
                    "of": of,
                    "next_in_secs": secs,
                }),
            ),
            Mode::Human => p.warn(format!(
                "{e} (host {host}) — attempt {attempt} of {of} failed, next try in {secs:.1} s"
            )),
        }
    }

    async fn send_once(&self, req: &Request<'_>) -> Result<bytes::Bytes, HttpError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(method = %req.method, route = %req.route, "request");
        {
            let mut t = self.timeline.lock().unwrap_or_else(|p| p.into_inner());
            *t.entry(chrono::Utc::now().timestamp()).or_default() += 1;
        }
        let authority = authority_of(&req.url);
        let reached_before = self
            .answered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&authority);
        let mut rb = self
            .inner
            .request(req.method.clone(), &req.url)
            .header("accept", "application/json");
        if !reached_before || self.patience == Patience::OneShort {
            // A host that never answered gets a short first chance: a silent server ends
            // the command in seconds, not after minutes of retries.
            rb = rb.timeout(FIRST_CONTACT_TIMEOUT);
        }
        rb = match req.auth {
            Auth::Bearer(t) => rb.bearer_auth(t.expose_secret()),
            Auth::Basic(user, password) => rb.basic_auth(user, Some(password.expose_secret())),
        };
        if let Some(body) = req.body {
            rb = rb.json(body);
        }
        let method = req.method.to_string();
        let resp = rb.send().await.map_err(|e| {
            let kind = classify(&e);
            let proxy = self.net.proxy_for(&req.url);
            HttpError::Transport {
                method: method.clone(),
                route: req.route.clone(),
                message: match &proxy {
                    Some(proxy) => describe_via_proxy(&e, kind, &req.url, proxy),
                    None => describe_transport(&e, kind, &req.url, self.url_setting),
                },
                maybe_sent: !(e.is_connect() || e.is_builder()),
                kind,
                reached_before,
            }
        })?;
        if !reached_before {
            self.answered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(authority);
        }
        self.note_date(resp.headers());
        let status = resp.status();
        tracing::trace!(method = %req.method, route = %req.route, status = status.as_u16(), "response");
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp.bytes().await.map_err(|e| HttpError::Transport {
            method: method.clone(),
            route: req.route.clone(),
            message: describe_transport(&e, TransportKind::Broken, &req.url, self.url_setting),
            maybe_sent: true,
            kind: TransportKind::Broken,
            reached_before: true,
        })?;
        if status.is_success() {
            return Ok(bytes);
        }
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        Err(HttpError::Status {
            method,
            route: req.route.clone(),
            status: status.as_u16(),
            message: error_message(status, body.as_ref()),
            retry_after,
            body,
        })
    }

    fn note_date(&self, headers: &reqwest::header::HeaderMap) {
        let Some(date) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| chrono::DateTime::parse_from_rfc2822(s).ok())
        else {
            return;
        };
        let offset = date.timestamp() - chrono::Utc::now().timestamp();
        self.server_offset.store(offset, Ordering::Relaxed);
        self.seen_date.store(1, Ordering::Relaxed);
    }
}

/// `host:port` of a URL (the key for "has this host answered").
fn authority_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or("?"),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => url.to_string(),
    }
}

/// The host of a URL, with the port when it is not the scheme's default.
fn host_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.port() {
            Some(port) => format!("{}:{port}", u.host_str().unwrap_or("?")),
            None => u.host_str().unwrap_or("?").to_string(),
        },
        Err(_) => "?".into(),
    }
}

/// `Retry-After` as integer seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    let wait = at.timestamp() - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(wait.max(1) as u64))
}

/// The vendor's own words from an error body, without echoing anything else.
fn error_message(status: StatusCode, body: Option<&Value>) -> String {
    let Some(body) = body else {
        return status.canonical_reason().unwrap_or("error").to_string();
    };
    // Workato `message`, Bifrost `error.message`, Descope `errorMessage`, OAuth `error`.
    let mut msg = [
        body.get("message"),
        body.pointer("/error/message"),
        body.get("errorMessage"),
        body.get("error"),
        body.get("errorDescription"),
    ]
    .into_iter()
    .flatten()
    .find_map(Value::as_str)
    .unwrap_or_else(|| status.canonical_reason().unwrap_or("error"))
    .to_string();
    if let Some(errors) = body.get("errors").and_then(Value::as_object) {
        let details: Vec<String> = errors
            .iter()
            .map(|(field, v)| {
                let text = match v {
                    Value::Array(items) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{field} {text}")
            })
            .collect();
        if !details.is_empty() {
            msg = format!("{msg} ({})", details.join("; "));
        }
    }
    msg
}

/// Which transport failure a reqwest error is, from its chain of causes.
fn classify(e: &reqwest::Error) -> TransportKind {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut text = String::new();
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return TransportKind::Tls;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return TransportKind::Tls;
            }
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return TransportKind::Refused;
            }
        }
        text.push_str(&s.to_string().to_lowercase());
        text.push('\n');
        source = s.source();
    }
    if text.contains("dns error") || text.contains("failed to lookup address") {
        TransportKind::Dns
    } else if text.contains("certificate") || text.contains("tls") {
        TransportKind::Tls
    } else if e.is_timeout() && e.is_connect() {
        TransportKind::ConnectTimeout
    } else if e.is_timeout() {
        TransportKind::NoAnswer
    } else {
        TransportKind::Broken
    }
}

/// The innermost cause's words, which say most (e.g. "invalid peer certificate:
/// UnknownIssuer"), without reqwest's URL.
fn innermost(e: &reqwest::Error) -> String {
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                detail = inner.to_string();
                break;
            }
        }
        detail = s.to_string();
        source = s.source();
    }
    detail
}

/// [`describe_transport`] when the request went to a proxy: a refused, unresolvable or silent
/// connection is the proxy's, and a refused tunnel is the proxy's word about the host.
fn describe_via_proxy(
    e: &reqwest::Error,
    kind: TransportKind,
    url: &str,
    (var, proxy): &(String, String),
) -> String {
    let host = host_of(url);
    let detail = innermost(e);
    let what = match kind {
        TransportKind::Dns => "does not resolve".to_string(),
        TransportKind::Refused => "refused the connection".to_string(),
        TransportKind::ConnectTimeout => format!(
            "did not accept a connection within {} s",
            FIRST_CONTACT_TIMEOUT.as_secs()
        ),
        TransportKind::NoAnswer => format!("sent no answer for {host} in time"),
        TransportKind::Tls => {
            return format!(
                "{} (through the proxy {proxy} from {var})",
                describe_transport(e, kind, url, "the URL")
            )
        }
        TransportKind::Broken if detail.to_lowercase().contains("tunnel") => {
            format!("would not open a tunnel to {host} ({detail})")
        }
        TransportKind::Broken => format!("failed while carrying the request to {host} ({detail})"),
    };
    let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
    format!(
        "the proxy {proxy} (from {var}) {what} — check {var}, or list {name} in NO_PROXY if it \
         should be reached directly"
    )
}

/// One line for the user: the host, what failed, what to check. reqwest's own Display
/// includes the URL; ours is built from the configured base and holds no credential, but it
/// is kept out anyway.
fn describe_transport(e: &reqwest::Error, kind: TransportKind, url: &str, setting: &str) -> String {
    let host = host_of(url);
    let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
    let detail = innermost(e);
    match kind {
        TransportKind::Dns => format!(
            "the host {name} does not resolve (DNS lookup failed) — check the host name in \
             {setting}, this machine's DNS, or set HTTPS_PROXY if this network reaches the \
             internet only through a proxy"
        ),
        TransportKind::Refused => format!(
            "{host} refused the connection (nothing listens there) — check the port in \
             {setting}, that the service is running, or a firewall; behind a proxy set \
             HTTPS_PROXY"
        ),
        TransportKind::ConnectTimeout => format!(
            "no connection to {host} within {} s — a firewall may drop the traffic; check \
             {setting}, the network, or set HTTPS_PROXY",
            FIRST_CONTACT_TIMEOUT.as_secs()
        ),
        TransportKind::Tls => {
            let why = if detail.contains("UnknownIssuer") || detail.contains("unknown issuer") {
                "its certificate is signed by a CA this machine does not trust".to_string()
            } else if detail.contains("NotValidForName") || detail.contains("not valid for name") {
                format!("its certificate is not valid for the name {name}")
            } else if detail.contains("Expired") || detail.contains("expired") {
                "its certificate has expired".to_string()
            } else {
                format!("the handshake failed ({detail})")
            };
            format!(
                "TLS with {host} failed: {why} — check the host name and scheme in {setting}; \
                 if a proxy or private CA signs the certificate, put that CA (PEM) in \
                 KEYSHIFT_CA_FILE"
            )
        }
        TransportKind::NoAnswer if e.is_connect() => format!(
            "no connection to {host} within {} s — check {setting}, the network, or \
             HTTPS_PROXY",
            FIRST_CONTACT_TIMEOUT.as_secs()
        ),
        TransportKind::NoAnswer => format!(
            "{host} accepted the connection but sent no answer in time — check that {setting} \
             points at the API (right host, port and scheme), or your proxy"
        ),
        TransportKind::Broken => {
            let what = if e.is_connect() {
                "could not connect"
            } else if e.is_body() || e.is_decode() {
                "the response broke off"
            } else {
                "the connection failed"
            };
            if detail.is_empty() {
                format!("{what} ({host})")
            } else {
                format!("{what} ({host}: {detail})")
            }
        }
    }
}

/// Refuse plain HTTP to anything but loopback unless the user allowed it.
pub fn check_transport(name: &str, url: &str, allow_insecure: bool) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| {
        crate::errors::KeyshiftError::Config(format!(
            "{name}: {url:?} is not a URL ({e}) — give the full address, e.g. https://host.example.com"
        ))
    })?;
    if parsed.scheme() == "https" || allow_insecure {
        return Ok(());
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if parsed.scheme() == "http" && loopback {
        return Ok(());
    }
    Err(crate::errors::KeyshiftError::Config(format!(
        "{name}: refusing plain {}:// to {} — credentials would cross the network unencrypted; \
         use https, or pass --allow-insecure-http if you really mean it",
        parsed.scheme(),
        parsed.host_str().unwrap_or("?")
    ))
    .into())
}

/// A shared, cheaply clonable handle.
pub type Http = Arc<HttpClient>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_leaves_slack_in_every_window_and_little_unused() {
        for limit in [1u32, 2, 5, 10, 60, 100, 400, 1000, 5000] {
            let pace = Pace::for_window(f64::from(limit));
            let most = pace.most_per_window();
            if limit >= 5 {
                assert!(most < limit, "limit {limit}: up to {most} in a window");
            } else {
                assert!(most <= limit, "limit {limit}: up to {most} in a window");
            }
            if limit >= 60 {
                let used = pace.per_window / f64::from(limit);
                assert!(used > 0.98, "limit {limit}: paced at {used}");
            }
        }
        let embedded = Pace::for_window(1000.0);
        assert_eq!((embedded.burst, embedded.most_per_window()), (5, 995));
        assert_eq!(Pace::for_window(60.0).most_per_window(), 59);
    }

    /// The real limiter on a simulated clock, with callers that always have a request ready
    /// and wake up to 0.9 ms late: no rolling window ever holds more than `limit - slack`,
    /// and the lateness does not eat into the rate.
    #[test]
    fn paced_requests_fill_the_budget_without_overfilling_any_window() {
        use governor::clock::FakeRelativeClock;
        // The documented windows, and Embedded as the benchmark scales it (5×).
        for (limit, window_secs) in [(1000.0, 60.0), (1000.0, 12.0), (60.0, 60.0), (100.0, 60.0)] {
            let pace = Pace::for_window(limit);
            let clock = FakeRelativeClock::default();
            let limiter = RateLimiter::direct_with_clock(pace.quota(window_secs), clock.clone());
            let window = Duration::from_secs_f64(window_secs);
            let run = window * 5;
            let mut sent: Vec<Duration> = Vec::new();
            let mut now = Duration::ZERO;
            let mut late = 0u64;
            while now < run {
                match limiter.check() {
                    Ok(()) => sent.push(now),
                    Err(not_until) => {
                        // Sleep until allowed, then wake 0.1–0.9 ms late (timer granularity).
                        let wait = not_until.wait_time_from(governor::clock::Clock::now(&clock));
                        late = (late * 7 + 3) % 9;
                        let step = wait + Duration::from_micros(100 + late * 100);
                        clock.advance(step);
                        now += step;
                    }
                }
            }
            let most = sent
                .iter()
                .enumerate()
                .map(|(i, t)| sent[i..].iter().take_while(|u| **u < *t + window).count())
                .max()
                .unwrap();
            assert!(
                most as u32 <= pace.most_per_window() && (most as f64) < limit,
                "limit {limit}: {most} requests in one window"
            );
            let ideal = limit * run.as_secs_f64() / window_secs;
            let used = sent.len() as f64 / ideal;
            assert!(used > 0.98, "limit {limit}: {used:.4} of the budget used");
        }
    }

    fn status(code: u16) -> HttpError {
        HttpError::Status {
            method: "POST".into(),
            route: "/x".into(),
            status: code,
            message: String::new(),
            retry_after: None,
            body: None,
        }
    }

    /// The retry table, in one place: a change here is a change of behaviour.
    #[test]
    fn retried_statuses_and_errors() {
        let table: Vec<(u16, RetryClass)> =
            [400, 401, 403, 404, 409, 410, 422, 429, 500, 502, 503, 504]
                .iter()
                .map(|c| (*c, status(*c).retry_class()))
                .collect();
        assert_eq!(
            table,
            vec![
                (400, RetryClass::Permanent),
                (401, RetryClass::Permanent),
                (403, RetryClass::Permanent),
                (404, RetryClass::Permanent),
                (409, RetryClass::Permanent),
                (410, RetryClass::Permanent),
                (422, RetryClass::Permanent),
                (429, RetryClass::Retry),
                (500, RetryClass::Permanent),
                (502, RetryClass::Ambiguous),
                (503, RetryClass::Retry),
                (504, RetryClass::Ambiguous),
            ]
        );
        let t = |kind, maybe_sent, reached_before| HttpError::Transport {
            method: "GET".into(),
            route: "/x".into(),
            message: String::new(),
            maybe_sent,
            kind,
            reached_before,
        };
        use TransportKind::*;
        assert_eq!(t(Broken, false, true).retry_class(), RetryClass::Retry);
        assert_eq!(t(Broken, true, true).retry_class(), RetryClass::Ambiguous);
        assert_eq!(t(Tls, false, true).retry_class(), RetryClass::Permanent);
        // A host that never answered is unreachable: the command ends, nothing is retried.
        // Once it has answered, the same failures are transient.
        for kind in [Dns, Refused, ConnectTimeout, NoAnswer] {
            let sent = kind == NoAnswer;
            assert!(t(kind, sent, false).unreachable(), "{kind:?}");
            assert!(!t(kind, sent, false).retried(true), "{kind:?}");
            assert!(!t(kind, sent, true).unreachable(), "{kind:?}");
            assert!(t(kind, sent, true).retried(true), "{kind:?}");
        }
        assert!(t(Tls, false, true).unreachable());
        assert!(!t(Broken, false, false).unreachable());
        assert!(t(Broken, false, false).retried(false));
        // A write that may have been applied is not retried blindly.
        assert!(!t(NoAnswer, true, true).retried(false));
        assert!(!status(502).retried(false) && status(502).retried(true));
        assert!(status(429).retried(false) && !status(500).retried(true));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = parse_retry_after(&later).unwrap();
        assert!(d >= Duration::from_secs(28) && d <= Duration::from_secs(31));
        assert_eq!(parse_retry_after("soon"), None);
        // 429 without Retry-After waits the documented default.
        assert_eq!(status(429).retry_after(), Some(DEFAULT_RETRY_AFTER));
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_transport("u", "http://127.0.0.1:8080/workato", false).is_ok());
        assert!(check_transport("u", "http://localhost:1", false).is_ok());
        assert!(check_transport("u", "https://www.workato.com", false).is_ok());
        let err = check_transport("KEYSHIFT_WORKATO_URL", "http://www.workato.com", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("refusing plain http://"), "{err}");
        assert!(check_transport("u", "http://www.workato.com", true).is_ok());
    }

    #[test]
    fn budgets_scale() {
        assert_eq!(RateBudget::new("w", 60.0, 1.0, None).per_minute, Some(60.0));
        assert_eq!(
            RateBudget::new("w", 60.0, 20.0, None).per_minute,
            Some(1200.0)
        );
        assert_eq!(RateBudget::new("w", 60.0, 0.0, None).per_minute, None);
        assert_eq!(
            RateBudget::new("w", 60.0, 1.0, Some(30.0)).per_minute,
            Some(30.0)
        );
    }
}
