//! Consumer-side probes (SD-W13): prove a new key authenticates the way its
//! consumer will call the gateway — `api-token` for token keys, the OAuth2 client-credentials
//! exchange then Bearer for oauth2 keys, a signed JWT carrying the key's token in the right
//! claim for jwt/oidc keys.
//!
//! Verdicts: 401/403 = rejected; 429/5xx = inconclusive, retried within the
//! deadline; anything else = accepted. An active key that is refused is polled with
//! exponential backoff until the deadline (propagation delay, SD-W17).

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// Path appended to a collection URL for probes; it need not exist.
const PROBE_PATH: &str = "keyshift-probe";

pub use crate::engine::verify::Verdict;

/// How a probe authenticates.
pub enum Credential {
    Token(SecretString),
    OAuth {
        client_id: String,
        secret: SecretString,
    },
    Jwt {
        /// HS256 with a shared secret, or RS256 with a private key PEM.
        key: JwtKey,
        kid: Option<String>,
        claim: String,
        token: SecretString,
        required_claims: Vec<String>,
        issuer: Option<String>,
    },
}

pub enum JwtKey {
    Hmac(SecretString),
    RsaPem(SecretString),
}

pub struct ProbeTarget {
    pub url: String,
    pub credential: Credential,
    pub active: bool,
    /// The key has an IP allow list: a 403 may only mean this host is not on it.
    pub ip_restricted: bool,
}

pub struct Prober {
    http: reqwest::Client,
    gateway: String,
    deadline: Duration,
}

impl Prober {
    /// `net`: the proxies and extra CAs every client of the run uses.
    pub fn new(
        gateway: &str,
        deadline: Duration,
        net: &crate::http::NetConfig,
    ) -> anyhow::Result<Prober> {
        Ok(Prober {
            http: net
                .client_builder()?
                .timeout(Duration::from_secs(30))
                .build()?,
            gateway: gateway.trim_end_matches('/').to_string(),
            deadline,
        })
    }

    /// Probe one key; returns the verdict and a short reason (never a credential).
    pub async fn probe(&self, target: &ProbeTarget) -> (Verdict, String) {
        let started = Instant::now();
        let mut wait = Duration::from_secs(1);
        loop {
            let outcome = self.attempt(target).await;
            let (verdict, detail, retry) = match outcome {
                Err(e) => (Verdict::Unverifiable, e, true),
                Ok(status) => judge(status, target),
            };
            if !retry || started.elapsed() + wait > self.deadline {
                return (verdict, detail);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(8));
        }
    }

    async fn attempt(&self, target: &ProbeTarget) -> Result<StatusCode, String> {
        let url = format!("{}/{PROBE_PATH}", target.url.trim_end_matches('/'));
        let req = self.http.get(&url);
        let req = match &target.credential {
            Credential::Token(t) => req.header("api-token", t.expose_secret()),
            Credential::OAuth { client_id, secret } => {
                let resp = self
                    .http
                    .post(format!("{}/oauth2/token", self.gateway))
                    .basic_auth(client_id, Some(secret.expose_secret()))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .map_err(|e| format!("token endpoint: {}", kind(&e)))?;
                let status = resp.status();
                if !status.is_success() {
                    return Ok(status);
                }
                let body: Value = resp
                    .json()
                    .await
                    .map_err(|_| "token endpoint: not JSON".to_string())?;
                let access = body
                    .get("access_token")
                    .and_then(Value::as_str)
                    .ok_or("token endpoint: no access_token")?
                    .to_string();
                req.bearer_auth(SecretString::from(access).expose_secret())
            }
            Credential::Jwt { .. } => {
                let jwt = sign(&target.credential)?;
                req.bearer_auth(jwt.expose_secret())
            }
        };
        req.send()
            .await
            .map(|r| r.status())
            .map_err(|e| format!("gateway: {}", kind(&e)))
    }
}

/// `(verdict, detail, keep polling)`.
fn judge(status: StatusCode, target: &ProbeTarget) -> (Verdict, String, bool) {
    let code = status.as_u16();
    let refused = code == 401 || code == 403;
    let inconclusive = code == 429 || status.is_server_error();
    match (target.active, refused, inconclusive) {
        (_, _, true) => (
            Verdict::Unverifiable,
            format!("gateway answered {code}"),
            true,
        ),
        (true, false, _) => (Verdict::Ok, format!("accepted ({code})"), false),
        (true, true, _) if code == 403 && target.ip_restricted => (
            Verdict::Unverifiable,
            "403: the key's IP allow list may exclude this host".into(),
            false,
        ),
        (true, true, _) => (
            Verdict::Rejected,
            format!("refused with {code}"),
            code == 401,
        ),
        (false, true, _) => (
            Verdict::ExpectedInactive,
            format!("inactive key refused ({code}) as planned"),
            false,
        ),
        (false, false, _) => (
            Verdict::Rejected,
            format!("inactive key was accepted ({code})"),
            false,
        ),
    }
}

fn sign(credential: &Credential) -> Result<SecretString, String> {
    let Credential::Jwt {
        key,
        kid,
        claim,
        token,
        required_claims,
        issuer,
    } = credential
    else {
        return Err("not a JWT credential".into());
    };
    let now = chrono::Utc::now().timestamp();
    let mut claims = Map::new();
    for name in required_claims {
        claims.insert(name.clone(), json!("keyshift-probe"));
    }
    claims.insert(
        "iss".into(),
        json!(issuer.as_deref().unwrap_or("keyshift-probe")),
    );
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + 300));
    claims.insert(claim.clone(), json!(token.expose_secret()));
    let (alg, encoding) = match key {
        JwtKey::Hmac(s) => (
            jsonwebtoken::Algorithm::HS256,
            jsonwebtoken::EncodingKey::from_secret(s.expose_secret().as_bytes()),
        ),
        JwtKey::RsaPem(pem) => (
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes())
                .map_err(|_| "probe key is not an RSA private key PEM".to_string())?,
        ),
    };
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.clone();
    jsonwebtoken::encode(&header, &Value::Object(claims), &encoding)
        .map(SecretString::from)
        .map_err(|_| "could not sign the probe JWT".to_string())
}

fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
}

/// The gateway root for a management URL (`KEYSHIFT_WORKATO_GATEWAY_URL` in docs/cli.md).
pub fn derive_gateway(management: &str) -> Option<String> {
    let url = url::Url::parse(management).ok()?;
    let host = url.host_str()?;
    let gw = if host == "www.workato.com" {
        "apim.workato.com".to_string()
    } else if let Some(dc) = host
        .strip_prefix("app.")
        .and_then(|h| h.strip_suffix(".workato.com"))
    {
        format!("apim.{dc}.workato.com")
    } else {
        return None;
    };
    Some(format!("https://{gw}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(active: bool, ip_restricted: bool) -> ProbeTarget {
        ProbeTarget {
            url: "http://x".into(),
            credential: Credential::Token(SecretString::from("t".to_string())),
            active,
            ip_restricted,
        }
    }

    #[test]
    fn verdict_table() {
        let v = |code: u16, active, ip| {
            let (v, _, retry) = judge(StatusCode::from_u16(code).unwrap(), &target(active, ip));
            (v, retry)
        };
        assert_eq!(v(200, true, false), (Verdict::Ok, false));
        assert_eq!(v(404, true, false), (Verdict::Ok, false));
        assert_eq!(v(401, true, false), (Verdict::Rejected, true));
        assert_eq!(v(403, true, false), (Verdict::Rejected, false));
        assert_eq!(v(403, true, true), (Verdict::Unverifiable, false));
        assert_eq!(v(429, true, false), (Verdict::Unverifiable, true));
        assert_eq!(v(503, true, false), (Verdict::Unverifiable, true));
        assert_eq!(v(401, false, false), (Verdict::ExpectedInactive, false));
        assert_eq!(v(200, false, false), (Verdict::Rejected, false));
    }

    #[test]
    fn gateway_hosts() {
        assert_eq!(
            derive_gateway("https://www.workato.com").as_deref(),
            Some("https://apim.workato.com")
        );
        assert_eq!(
            derive_gateway("https://app.eu.workato.com").as_deref(),
            Some("https://apim.eu.workato.com")
        );
        assert_eq!(derive_gateway("http://127.0.0.1:9/workato"), None);
    }
}
