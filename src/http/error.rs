//! What went wrong with a request, and in which words: the error type, which failures are
//! retried, and the one-line descriptions that name the host and what to check — never a
//! credential.

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

use super::{host_of, DEFAULT_RETRY_AFTER, FIRST_CONTACT_TIMEOUT};
use super::{RETRY_ALWAYS, RETRY_IF_IDEMPOTENT};

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
    pub(super) fn retried(&self, idempotent: bool) -> bool {
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

    pub(super) fn retry_after(&self) -> Option<Duration> {
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
pub(super) fn error_message(status: StatusCode, body: Option<&Value>) -> String {
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
pub(super) fn classify(e: &reqwest::Error) -> TransportKind {
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
pub(super) fn describe_via_proxy(
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
pub(super) fn describe_transport(
    e: &reqwest::Error,
    kind: TransportKind,
    url: &str,
    setting: &str,
) -> String {
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
