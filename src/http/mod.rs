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

use backon::Retryable;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::printer::{Mode, Printer};

mod budget;
mod error;
mod net;
mod retry;
pub use budget::RateBudget;
use error::{classify, describe_transport, describe_via_proxy, error_message};
pub use error::{parse_retry_after, HttpError, RetryClass, TransportKind};
pub use net::NetConfig;
pub use retry::RetryPolicy;

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
    policy: RetryPolicy,
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
            policy: match opts.patience {
                Patience::Run => RetryPolicy::RUN,
                Patience::OneShort => RetryPolicy::ONE_SHORT,
            },
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
            .retry(self.policy.backoff())
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
        let of = self.policy.attempts();
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
}
