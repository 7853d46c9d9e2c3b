//! The consumer side of Descope: D13 (exchange an access key's cleartext for a signed session
//! JWT) and D14 (the project JWKS that verifies it), per SD-D12 and SD-D13.
//!
//! JWTs are signed RS256 with [`SIGNING_KEY_PEM`], a 2048-bit RSA key built into the sandbox
//! (`ring` can sign with RSA but cannot generate RSA keys, so the key is fixed rather than
//! per-run; clients must fetch D14, never pin the key). It is **test material only** and is
//! deliberately not one of [`crate::sandbox::keys`]'s pairs, whose private halves go to
//! consumers through the signing-secrets file.
//!
//! Time claims (`iat`, `exp`) use the machine clock, not the sandbox clock: consumers verify
//! them with their own clocks, as with the gateway's JWTs. Key expiry (`expireTime`) is judged by
//! the sandbox clock, and caps the token's lifetime as a remaining duration.
//!
//! Neither route gets injected faults (docs/sandbox.md, `--faults`); D13 is rate limited (SD-D4), D14 is not.

use std::net::IpAddr;
use std::sync::OnceLock;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::audit::AuditRecord;
use super::model::AccessKey;
use super::ops::ip_matches;
use super::project::Project;
use super::request::{body_object, opt_object, opt_string, DescopeError};
use super::MOUNT;
use crate::sandbox::faults::ConnInfo;
use crate::sandbox::AppState;

/// Claims a key's `customClaims` may not override.
const RESERVED_CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "iat",
    "exp",
    "nbf",
    "jti",
    "roles",
    "permissions",
    "tenants",
    "nsec",
    "dct",
];

/// PKCS#8 private key signing every exchanged JWT (test material only).
pub const SIGNING_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDRkcMRdTsyyvsm
XYWUFdy5GSTOcC6ARhbRathn9irM72QFYZo5EKUPbmO2BGV8iN7xMNhsEmUInvQ1
kgBIMgJJRGQTe8nnf8Sdi6qhNvcEkuXxMUo9VW2+9T7oMcjQfVzSAKOTFdnT2fKQ
/HrIYO8Wj82vrn3fUb1axqiQU+2tsTS363VpqjNhzS4mPfMoynARlQk+L8G/j34H
jiYXuazAA7f5RBZ68FElsQRzhuys9haH1Yu9jRCVpss4qSbk6xid+tG+pSGZv5Ih
4jJ3Yb9n0mvDCpARpsj4i5tuBClBb/kq4eicAaakbyE8tH8TM1jj3jlVRyNQvJkU
mUaHpuIlAgMBAAECggEADxMrY0TZzIpN3SFik7er4DO3ElN/ANKp3wgOx5GtW/8H
ZJyz/ZFdMjo4WXZA/5+P2+0t0D5VfrSCcB0PwKG6SN9uzHj92dV2xPdwP3cG91EC
0eIAC1/rDE6zZvv3zEmMRP3vRkwO1n6pxHSo92ODp02SV+YXH1qPoqlCJFmpMfJ5
ObmwtcOHLjaH+wI3rMcy+b14bWch3mIEzEzOiFjgFKTSwYzLRfkM7snrpqBYq8dG
EYTwoTiBdsOj+tm23Y/gqU9cCfr4RzDj2G2wDxW6MpNnyv3E5PU6ZajLDQpEKB+E
2SWpbcphi/jilIvjbrsjnx16Exfte01YEYta3rAfyQKBgQDs2pq94C4c20y3jMYC
+r49vEdTEKJ5OpZEzP/AOKWYaNlROd7PjN6pGz3RfVD3t5HLaLWj9etGCQM8B1Rb
Mcc/EyeygpCp5/xX/5t5UYNYRVQw4nv6kgFts4CVrXCHQa8yHbLuOl6Ojg2KF//D
fxuSXlfCXq82E7OIHJinDY1k7QKBgQDigonArRTOTWPnGbj05BRh9ewo9IQ2o6JJ
mPUDbKqEed7pU7/5MZPlDzkcekNocQ6qTLLGR4lRRm61dqqK7Ys0SWbIAUFZUQML
lBupSkOAI3qA9hywT+uNNTQJjIlpvyZJKsdBHT0YCoUFQsqzGcU+BB1kDFr+gg0N
EKIZUWZDGQKBgQCL5IHI7APQX2ZscuTxFZAPfojR8t1DpOrkMABOVCbaYfMZGokT
JSzNzJ0ygkW0SeP+tBW0hac0clZKujmEs13vTyz/LkarU62jfAEkIpTlKe2UAfEg
CeR2GrMztIDmIlGL1Ca+thLrN9OfYJVbrlNmm/pRfwMVeYVsOxeec06z8QKBgQCl
mBltKxwS1rE6uqtlHXlpRIiqSFiAOZDjjVdScZcX0qEMo5WtcHlW9JIkJ54wNLcr
+XaZTqMtL/iv4Vk8x/0E9MSXY5OK4JcBV/4A/bHrdASTU1oV69ehHEw2zu+Gx6AN
zaBuEhogAVDOT84wsZ5pgEicZAwCFMHF02suZzwDwQKBgQC81XLsoaJiVgrWg97F
UPTWTvzYozIXJ0KWFL0Pa5TWJCtFUWqd+pRGTcpknXfKAVTBU9wlp5R7vqnNPc6m
CpAAzhH0lLyhM4foIR4zTgUYlnmKFHPSZ6RInq5+oG94v6AJcSWsiHk9ZHuRtjuC
joWTpr/Du7loi6MGJwVUuNz2zw==
-----END PRIVATE KEY-----
";

/// The parsed signing key and its public JWK.
pub struct Signer {
    pair: RsaKeyPair,
    rng: SystemRandom,
    pub kid: String,
    pub jwk: Value,
}

impl Signer {
    fn from_pem(pem: &str) -> Option<Self> {
        let b64: String = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(b64).ok()?;
        let pair = RsaKeyPair::from_pkcs8(&der).ok()?;
        let parts = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
        let n = URL_SAFE_NO_PAD.encode(&parts.n);
        let e = URL_SAFE_NO_PAD.encode(&parts.e);
        let kid = format!(
            "descope-sandbox-{}",
            &hex::encode(Sha256::digest(&parts.n))[..16]
        );
        let jwk = json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": n, "e": e});
        Some(Self {
            pair,
            rng: SystemRandom::new(),
            kid,
            jwk,
        })
    }

    /// A compact RS256 JWT over `claims`.
    pub fn sign(&self, claims: &Value) -> Option<String> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).ok()?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).ok()?)
        );
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut sig)
            .ok()?;
        Some(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// The sandbox's signer, parsed once.
pub fn signer() -> Option<&'static Signer> {
    static SIGNER: OnceLock<Option<Signer>> = OnceLock::new();
    SIGNER
        .get_or_init(|| Signer::from_pem(SIGNING_KEY_PEM))
        .as_ref()
}

/// D14 `GET /v2/keys/:project_id`.
pub(crate) async fn jwks(State(app): State<AppState>, Path(project_id): Path<String>) -> Response {
    if project_id != app.config.descope.project_id {
        return DescopeError::not_found(format!("Project {project_id} not found")).into_response();
    }
    match signer() {
        Some(s) => Json(json!({"keys": [s.jwk]})).into_response(),
        None => DescopeError::internal("The sandbox signing key is unusable").into_response(),
    }
}

/// `Bearer <ProjectID>:<secret>[:<ignored>]` → `(project id, secret)`.
pub fn project_bearer(req_auth: Option<&str>) -> Option<(&str, &str)> {
    let (scheme, token) = req_auth?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut parts = token.trim().split(':');
    let project = parts.next()?;
    let secret = parts.next()?;
    Some((project, secret))
}

/// The key's authorization: its own roles and tenants, or its bound user's.
fn authorization(key: &AccessKey, project: &Project) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    if !key.bound_user_id.is_empty() {
        if let Some(u) = project.user(&key.bound_user_id) {
            let tenants = u
                .tenants
                .iter()
                .map(|t| (t.tenant_id.clone(), t.roles.clone()))
                .collect();
            return (u.roles.clone(), tenants);
        }
        return (Vec::new(), Vec::new());
    }
    let tenants = key
        .key_tenants
        .iter()
        .map(|t| (t.tenant_id.clone(), t.role_names.clone()))
        .collect();
    (key.role_names.clone(), tenants)
}

/// Everything D13 needs from the request, read before the state lock is taken.
struct Exchange {
    project: String,
    secret: String,
    peer: Option<IpAddr>,
    login_claims: Map<String, Value>,
    selected_tenant: Option<String>,
}

fn read_exchange(parts: &Parts, body: &[u8]) -> Result<Exchange, DescopeError> {
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (project, secret) =
        project_bearer(auth).ok_or_else(|| DescopeError::unauthorized("Invalid access key"))?;
    let m = body_object(body)?;
    let (login_claims, selected_tenant) = match opt_object(&m, "loginOptions")? {
        Some(lo) => (
            opt_object(lo, "customClaims")?.cloned().unwrap_or_default(),
            opt_string(lo, "selectedTenant")?.filter(|t| !t.is_empty()),
        ),
        None => (Map::new(), None),
    };
    Ok(Exchange {
        project: project.to_owned(),
        secret: secret.to_owned(),
        peer: parts
            .extensions
            .get::<ConnectInfo<ConnInfo>>()
            .map(|c| c.0.peer.ip()),
        login_claims,
        selected_tenant,
    })
}

/// The key an exchange presented, once recognised: for its audit record.
#[derive(Debug, Default)]
struct Seen {
    key_id: String,
    tenants: Vec<String>,
}

/// D13 `POST /v1/auth/accesskey/exchange` (SD-D12, SD-D13); every answer writes an audit
/// record (SD-D17).
pub(crate) async fn exchange(State(app): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let remote = parts
        .extensions
        .get::<ConnectInfo<ConnInfo>>()
        .map(|c| c.0.peer.ip().to_string())
        .unwrap_or_default();
    let mut seen = Seen::default();
    let result = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(body) => exchange_inner(&app, &parts, &body, &mut seen),
        Err(_) => Err(DescopeError::malformed(
            "The request body could not be read",
        )),
    };
    let mut inner = app.lock();
    let now = inner.clock.now();
    let record = match &result {
        Ok(_) => AuditRecord::succeeded(now, &seen.key_id, remote, seen.tenants),
        Err(e) => AuditRecord::failed(now, &seen.key_id, remote, seen.tenants, &e.message),
    };
    inner
        .descope
        .audit
        .push(record, app.config.descope.audit_max_records);
    drop(inner);
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn exchange_inner(
    app: &AppState,
    parts: &Parts,
    body: &[u8],
    seen: &mut Seen,
) -> Result<Value, DescopeError> {
    let x = read_exchange(parts, body)?;
    let cfg = &app.config.descope;
    let invalid = || DescopeError::unauthorized("Invalid access key");
    if x.project != cfg.project_id || x.secret.is_empty() {
        return Err(invalid());
    }
    let inner = app.lock();
    let now = inner.clock.now();
    let state = &inner.descope;
    let key = state
        .keys
        .values()
        .find(|k| k.visible(now) && k.secret_matches(&x.secret))
        .ok_or_else(invalid)?;
    seen.key_id.clone_from(&key.id);
    seen.tenants = authorization(key, &state.project)
        .1
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if !key.active {
        return Err(DescopeError::unauthorized("Access key is inactive"));
    }
    if key.expired(now) {
        return Err(DescopeError::unauthorized("Access key has expired"));
    }
    if !key.permitted_ips.is_empty()
        && !x
            .peer
            .is_some_and(|ip| key.permitted_ips.iter().any(|e| ip_matches(e, ip)))
    {
        return Err(DescopeError::forbidden("IP address not permitted"));
    }
    let (roles, tenants) = authorization(key, &state.project);
    if let Some(t) = &x.selected_tenant {
        if !tenants.iter().any(|(id, _)| id == t) {
            return Err(DescopeError::invalid(format!(
                "Tenant {t} is not associated with this access key"
            )));
        }
    }

    let iat = chrono::Utc::now().timestamp();
    let mut ttl = i64::try_from(cfg.token_ttl_secs).unwrap_or(i64::MAX / 2);
    if key.expire_time != 0 {
        ttl = ttl.min(key.expire_time - now.timestamp()).max(1);
    }
    let mut tenant_claims = Map::new();
    for (id, r) in &tenants {
        tenant_claims.insert(
            id.clone(),
            json!({"roles": r, "permissions": state.project.permissions_of(r)}),
        );
    }
    let mut claims = Map::new();
    for (k, v) in &key.custom_claims {
        if !RESERVED_CLAIMS.contains(&k.as_str()) {
            claims.insert(k.clone(), v.clone());
        }
    }
    let reserved = json!({
        "iss": format!("{}{MOUNT}/{}", app.base_url, cfg.project_id),
        "sub": key.id,
        "aud": cfg.project_id,
        "iat": iat,
        "exp": iat + ttl,
        "roles": roles,
        "permissions": state.project.permissions_of(&roles),
        "tenants": tenant_claims,
    });
    if let Value::Object(r) = reserved {
        claims.extend(r);
    }
    if !x.login_claims.is_empty() {
        claims.insert("nsec".into(), Value::Object(x.login_claims));
    }
    if let Some(t) = x.selected_tenant {
        claims.insert("dct".into(), json!(t));
    }
    let key_id = key.id.clone();
    drop(inner);
    let jwt = signer()
        .and_then(|s| s.sign(&Value::Object(claims)))
        .ok_or_else(|| DescopeError::internal("The sandbox could not sign the session JWT"))?;
    Ok(json!({"keyId": key_id, "sessionJwt": jwt}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_parses_and_signs() {
        let s = signer().expect("built-in key parses");
        assert_eq!(s.jwk["kty"], "RSA");
        assert_eq!(s.jwk["e"], "AQAB");
        let jwt = s.sign(&json!({"sub": "K1"})).unwrap();
        assert_eq!(jwt.split('.').count(), 3);
    }

    #[test]
    fn bearer_forms() {
        assert_eq!(project_bearer(Some("Bearer P1:abc")), Some(("P1", "abc")));
        assert_eq!(
            project_bearer(Some("bearer P1:abc:ignored")),
            Some(("P1", "abc"))
        );
        assert_eq!(project_bearer(Some("Bearer P1")), None);
        assert_eq!(project_bearer(Some("Basic P1:abc")), None);
        assert_eq!(project_bearer(None), None);
    }
}
