//! Fault injection (`--faults key=value,...`, docs/sandbox.md) and the connection plumbing it needs.
//!
//! Faults apply to vendor management routes only — never to the gateway, `/_sandbox/*` or (once
//! they exist) Bifrost's quota and Descope's exchange/JWKS routes. Knobs:
//!
//! | key | effect |
//! |---|---|
//! | `latency=5ms` | every request waits this long first |
//! | `jitter=20ms` | plus a uniform random extra wait up to this |
//! | `error_rate=0.1` | 502/503/504 with the vendor's error body, nothing applied |
//! | `throttle_rate=0.05` | 429 with `Retry-After: 1`, nothing applied |
//! | `storm_every=30s`, `storm_for=5s` | every request 429s during the first `storm_for` of each `storm_every` period |
//! | `reset_rate=0.02` | the connection is closed before the request is applied |
//! | `commit_drop_rate=0.05` | the request is applied, then the connection is closed with no response |
//!
//! Closing a connection without an answer needs the socket itself, so the sandbox serves through
//! [`SandboxListener`], whose streams carry a kill switch: the middleware finds it through
//! [`ConnInfo`] (axum `ConnectInfo`), flips it, and the next read or write on that socket fails,
//! so hyper drops the connection before writing the response. [`ConnInfo`] also gives the
//! gateway the TCP peer address (SD-W13).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::AppState;

/// Parsed `--faults`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub latency: Duration,
    pub jitter: Duration,
    pub error_rate: f64,
    pub throttle_rate: f64,
    pub storm_every: Option<Duration>,
    pub storm_for: Duration,
    pub reset_rate: f64,
    pub commit_drop_rate: f64,
}

impl FaultSpec {
    /// Parse `key=value,...`. Unknown keys, bad numbers and rates outside 0..=1 are errors.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut f = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .with_context(|| format!("--faults: {part:?} is not key=value"))?;
            let (key, value) = (key.trim(), value.trim());
            let ctx = || format!("--faults {key}={value}");
            match key {
                "latency" => f.latency = parse_duration(value).with_context(ctx)?,
                "jitter" => f.jitter = parse_duration(value).with_context(ctx)?,
                "error_rate" => f.error_rate = parse_rate(value).with_context(ctx)?,
                "throttle_rate" => f.throttle_rate = parse_rate(value).with_context(ctx)?,
                "storm_every" => f.storm_every = Some(parse_duration(value).with_context(ctx)?),
                "storm_for" => f.storm_for = parse_duration(value).with_context(ctx)?,
                "reset_rate" => f.reset_rate = parse_rate(value).with_context(ctx)?,
                "commit_drop_rate" => f.commit_drop_rate = parse_rate(value).with_context(ctx)?,
                other => bail!(
                    "--faults: unknown key {other:?} (known: latency, jitter, error_rate, \
                     throttle_rate, storm_every, storm_for, reset_rate, commit_drop_rate)"
                ),
            }
        }
        if f.storm_every.is_some_and(|e| e.is_zero()) {
            bail!("--faults: storm_every must be greater than 0");
        }
        Ok(f)
    }

    /// Time left in the current storm, if one is raging `elapsed` after the sandbox started.
    /// A storm fills the last `storm_for` of each `storm_every` period, so the first requests
    /// after start are never caught in one.
    fn storm_left(&self, elapsed: Duration) -> Option<Duration> {
        let every = self.storm_every?;
        let phase = Duration::from_nanos((elapsed.as_nanos() % every.as_nanos()) as u64);
        let starts = every.saturating_sub(self.storm_for);
        (phase >= starts).then(|| every - phase)
    }
}

/// `250ms`, `5s`, `2m`, or `0`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let (num, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        bail!("expected a duration like 5ms, 2s or 1m, got {s:?}");
    };
    let n: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("bad number in duration {s:?}"))?;
    if !n.is_finite() || n < 0.0 {
        bail!("duration {s:?} must be non-negative");
    }
    Ok(Duration::from_secs_f64(n * unit))
}

fn parse_rate(s: &str) -> anyhow::Result<f64> {
    let r: f64 = s.parse().with_context(|| format!("bad rate {s:?}"))?;
    if !(0.0..=1.0).contains(&r) {
        bail!("rate {s:?} must be between 0 and 1");
    }
    Ok(r)
}

/// Per-connection handle the sandbox can use to drop a connection without answering.
#[derive(Debug, Clone, Default)]
pub struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    /// Make every further read and write on the connection fail.
    pub fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn killed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A TCP stream with a [`KillSwitch`].
#[derive(Debug)]
pub struct KillableStream {
    inner: TcpStream,
    kill: KillSwitch,
}

fn killed_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "dropped by sandbox fault")
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The sandbox's listener: a TCP listener whose streams can be killed.
pub struct SandboxListener(pub TcpListener);

impl Listener for SandboxListener {
    type Io = KillableStream;
    type Addr = (SocketAddr, KillSwitch);

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((inner, addr)) => {
                    let _ = inner.set_nodelay(true);
                    let kill = KillSwitch::default();
                    return (
                        KillableStream {
                            inner,
                            kill: kill.clone(),
                        },
                        (addr, kill),
                    );
                }
                // Too many open files and the like: back off briefly, as axum's own loop does.
                Err(e) => {
                    tracing::debug!("sandbox accept error: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok((self.0.local_addr()?, KillSwitch::default()))
    }
}

/// What a handler knows about its connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub kill: KillSwitch,
}

impl Connected<IncomingStream<'_, SandboxListener>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, SandboxListener>) -> Self {
        let (peer, kill) = stream.remote_addr().clone();
        Self { peer, kill }
    }
}

/// How a vendor writes an injected fault: status, message and (for 429s) `Retry-After`
/// seconds, in that vendor's error body.
pub(crate) type FaultResponder = fn(StatusCode, &'static str, Option<u64>) -> Response;

/// Middleware body for a vendor's management routes: applies the configured faults, written
/// in that vendor's error bodies by `respond`.
pub(crate) async fn inject_as(
    app: &AppState,
    respond: FaultResponder,
    req: Request,
    next: Next,
) -> Response {
    let Some(f) = app.faults.as_ref() else {
        return next.run(req).await;
    };
    let kill = req
        .extensions()
        .get::<ConnectInfo<ConnInfo>>()
        .map(|c| c.0.kill.clone());
    // Decide everything up front so the RNG is not held across an await.
    let (wait, roll_throttle, roll_error, error_pick, roll_reset, roll_drop) = {
        let mut rng = rand::thread_rng();
        let jitter = if f.jitter.is_zero() {
            Duration::ZERO
        } else {
            f.jitter.mul_f64(rng.gen::<f64>())
        };
        (
            f.latency + jitter,
            rng.gen::<f64>() < f.throttle_rate,
            rng.gen::<f64>() < f.error_rate,
            rng.gen_range(0..3u8),
            rng.gen::<f64>() < f.reset_rate,
            rng.gen::<f64>() < f.commit_drop_rate,
        )
    };
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    if let Some(left) = f.storm_left(app.started.elapsed()) {
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        return respond(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            Some(secs.max(1)),
        );
    }
    if roll_throttle {
        return respond(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", Some(1));
    }
    if roll_error {
        let (status, message) = match error_pick {
            0 => (StatusCode::BAD_GATEWAY, "Bad Gateway"),
            1 => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
            _ => (StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout"),
        };
        return respond(status, message, None);
    }
    if roll_reset {
        if let Some(k) = &kill {
            k.kill();
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    let resp = next.run(req).await;
    if roll_drop {
        if let Some(k) = &kill {
            k.kill();
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spec() {
        let f = FaultSpec::parse(
            "latency=5ms, jitter=20ms,error_rate=0.1,throttle_rate=0.05,storm_every=30s,storm_for=5s,reset_rate=0.02,commit_drop_rate=0.05",
        )
        .unwrap();
        assert_eq!(f.latency, Duration::from_millis(5));
        assert_eq!(f.jitter, Duration::from_millis(20));
        assert_eq!(f.storm_every, Some(Duration::from_secs(30)));
        assert_eq!(f.commit_drop_rate, 0.05);
        assert!(FaultSpec::parse("latency=5").is_err());
        assert!(FaultSpec::parse("error_rate=2").is_err());
        assert!(FaultSpec::parse("bogus=1").is_err());
        assert_eq!(FaultSpec::parse("").unwrap(), FaultSpec::default());
    }

    #[test]
    fn storm_phases() {
        let f = FaultSpec::parse("storm_every=30s,storm_for=5s").unwrap();
        assert_eq!(
            f.storm_left(Duration::from_secs(57)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(f.storm_left(Duration::from_secs(62)), None);
        assert_eq!(f.storm_left(Duration::from_secs(1)), None);
        assert_eq!(FaultSpec::default().storm_left(Duration::ZERO), None);
    }
}
