//! The secrets-manager sink: each new secret goes to a Vault-compatible KV v2 store
//! (HashiCorp Vault, OpenBao); the local sink file keeps a receipt line without the secret.
//!
//! Settings, as Vault's own CLI reads them: `VAULT_ADDR`, `VAULT_TOKEN` (or
//! `VAULT_TOKEN_FILE`), `VAULT_NAMESPACE` (sent as `X-Vault-Namespace`) and `VAULT_CACERT`
//! (a PEM file of extra trusted CAs). Proxies and keyshift's own CA files apply as for every
//! other host (`crate::http::net`).
//!
//! Layout (docs/security.md): `--secrets-vault MOUNT/PATH` puts the entry of a key at
//! `PATH/<vendor>/<workspace>/<target_kind>/<item>` inside the KV v2 mount `MOUNT`, where
//! `<item>` is the key's provenance marker without `keyshift:<vendor>:<workspace>:` and with
//! `:` as `-` (e.g. `secret/keyshift/workato/1/api_key/profile-1356466`). One entry per
//! planned key, whatever its id on the target: a recovery refresh writes a new *version*.
//!
//! Writes use check-and-set: the first with `cas = 0` (only if the entry does not exist).
//! When it exists, it is read: the same `op_id` and the same secret means an earlier attempt
//! got through (a lost response) and is taken as done; otherwise the new secret supersedes it
//! with `cas = <current version>`. So every secret is written exactly once and the latest
//! version is the key's usable secret.
//!
//! Secrets are never put in a URL, a header, a log line or an error: errors name the entry's
//! path and the HTTP status (plus Vault's own `errors` text of the response).

use anyhow::Result;
use backon::Retryable;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

use super::SinkRecord;
use crate::env::Env;
use crate::errors::KeyshiftError;
use crate::http::{NetConfig, RetryPolicy};

/// Where a secret was written: kept in the receipt line (docs/security.md, "The vault sink").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultReceipt {
    pub vault_mount: String,
    /// Inside the mount, without `data/`.
    pub vault_path: String,
    pub vault_version: u64,
}

impl VaultReceipt {
    /// `mount/path` as a person types it (`bao kv get -mount=… …` or `vault kv get mount/path`).
    pub fn location(&self) -> String {
        format!("{}/{}", self.vault_mount, self.vault_path)
    }
}

/// `--secrets-vault MOUNT/PATH`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultTarget {
    pub mount: String,
    /// May be empty: entries then start at the mount's root.
    pub prefix: String,
}

impl VaultTarget {
    pub fn parse(s: &str) -> Result<VaultTarget> {
        let t = s.trim().trim_matches('/');
        let (mount, prefix) = t.split_once('/').unwrap_or((t, ""));
        let ok = |p: &str| {
            p.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
        };
        if mount.is_empty() || !ok(mount) || (!prefix.is_empty() && !ok(prefix)) {
            return Err(KeyshiftError::Usage(format!(
                "--secrets-vault {s:?}: expected MOUNT/PATH, e.g. secret/keyshift (the KV v2 \
                 mount, then a path inside it; letters, digits, '-', '_', '.')"
            ))
            .into());
        }
        Ok(VaultTarget {
            mount: mount.into(),
            prefix: prefix.into(),
        })
    }

    /// The entry of a key, inside the mount (docs/security.md).
    pub fn entry_path(&self, r: &SinkRecord) -> String {
        // `keyshift:<source vendor>:<workspace>:<rest>` → `<rest>`, `:` as `-`.
        let fields: Vec<&str> = r.source.splitn(4, ':').collect();
        let item = match fields.as_slice() {
            ["keyshift", _, ws, rest] if *ws == r.workspace => rest.replace(':', "-"),
            _ => r.source.replace(':', "-"),
        };
        let parts = [
            segment(&r.vendor),
            segment(&r.workspace),
            segment(&r.target_kind),
            segment(&item),
        ];
        let tail = parts.join("/");
        if self.prefix.is_empty() {
            tail
        } else {
            format!("{}/{tail}", self.prefix)
        }
    }

    pub fn data_path(&self) -> String {
        if self.prefix.is_empty() {
            format!("{}/data/*", self.mount)
        } else {
            format!("{}/data/{}/*", self.mount, self.prefix)
        }
    }
}

/// One path segment: letters, digits, `-`, `_`, `.`; anything else becomes `_`, and then a
/// short hash of the original keeps two different names apart.
fn segment(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == s && !s.is_empty() && s != "." && s != ".." {
        clean
    } else {
        use sha2::Digest;
        let h = hex::encode(&sha2::Sha256::digest(s.as_bytes())[..4]);
        format!("{clean}-{h}")
    }
}

/// A KV v2 client: address, token, namespace and the HTTP client (proxies and CAs applied).
pub struct VaultClient {
    addr: String,
    token: SecretString,
    namespace: Option<String>,
    http: reqwest::Client,
    /// Retries per call: the shared policy with [`RETRIES`] in a run, none for `doctor`.
    policy: RetryPolicy,
    /// Set once the server has answered: only then is a failure to connect retried (a
    /// restart), never on first contact (a wrong address ends the command at once).
    answered: std::sync::atomic::AtomicBool,
    /// Retries are announced here, as for every other host.
    printer: Option<crate::printer::Printer>,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("addr", &self.addr)
            .field("token", &"[redacted]")
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// Retries after the first attempt: a few seconds in all (the sink waits on the store while
/// the secret is held only in memory).
const RETRIES: usize = 4;
/// Check-and-set rounds for one write: each round reads what moved the entry on (another
/// writer, or our own earlier attempt) and writes over it.
const CAS_ROUNDS: usize = 5;
/// How one attempt of a vault call failed.
enum Failed {
    /// Worth another attempt: a transport failure after the server has answered, 429, 5xx.
    Transient(String),
    /// Not worth one: the command ends with this error.
    Final(anyhow::Error),
}

const TIMEOUT: Duration = Duration::from_secs(30);

impl VaultClient {
    /// From `VAULT_ADDR`, `VAULT_TOKEN`/`VAULT_TOKEN_FILE`, `VAULT_NAMESPACE`, `VAULT_CACERT`.
    pub fn from_env(env: &Env, mut net: NetConfig, allow_insecure: bool) -> Result<VaultClient> {
        let addr = env.require(
            "VAULT_ADDR",
            "--secrets-vault needs the address of the Vault or OpenBao server, e.g. \
             https://vault.example.com:8200",
        )?;
        let addr = addr.trim_end_matches('/').to_string();
        crate::http::check_transport("VAULT_ADDR", &addr, allow_insecure)?;
        let token = env.require_secret(
            "VAULT_TOKEN",
            "give the token in VAULT_TOKEN or a file named by VAULT_TOKEN_FILE",
        )?;
        let namespace = env.get("VAULT_NAMESPACE")?;
        if let Some(ca) = env.get("VAULT_CACERT")? {
            net.ca_files.push(("VAULT_CACERT".into(), ca.into()));
        }
        let http = net
            .client_builder()?
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("keyshift/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(VaultClient {
            addr,
            token,
            namespace,
            http,
            policy: RetryPolicy {
                retries: RETRIES,
                ..RetryPolicy::RUN
            },
            answered: std::sync::atomic::AtomicBool::new(false),
            printer: None,
        })
    }

    /// Announce retries (one warning line, or a `vault.retry` event with `--json`).
    pub fn with_printer(mut self, printer: crate::printer::Printer) -> VaultClient {
        self.printer = Some(printer);
        self
    }

    /// One attempt per call, no retries (`doctor`).
    pub fn one_short_attempt(mut self) -> VaultClient {
        self.policy = RetryPolicy::ONE_SHORT;
        self
    }

    fn announce_retry(
        &self,
        method: &reqwest::Method,
        what: &str,
        error: &str,
        attempt: usize,
        wait: Duration,
    ) {
        let secs = wait.as_secs_f64();
        tracing::debug!(what, attempt, error, "vault: retrying");
        let Some(p) = &self.printer else { return };
        match p.mode() {
            crate::printer::Mode::Quiet => {}
            crate::printer::Mode::Json => p.event(
                "vault.retry",
                json!({ "addr": self.addr, "method": method.as_str(), "path": what,
                        "error": error, "attempt": attempt, "of": self.policy.attempts(),
                        "next_in_secs": secs }),
            ),
            crate::printer::Mode::Human => p.warn(format!(
                "vault {}: {method} {what}: {error} — attempt {attempt} of {} failed, next try \
                 in {secs:.1} s",
                self.addr,
                self.policy.attempts()
            )),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// One API call, retried on transport failures, 429 and 5xx (every call here is safe to
    /// repeat: reads, and check-and-set writes). Returns the status and the JSON body of a
    /// definite answer. `what` names the call for messages (a path, never a body).
    async fn call(
        &self,
        method: reqwest::Method,
        api_path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<(u16, Value)> {
        let url = format!("{}/v1/{api_path}", self.addr);
        // Marked sensitive: never shown by an HTTP library's debug output.
        let mut token = reqwest::header::HeaderValue::from_str(self.token.expose_secret())
            .map_err(|_| {
                KeyshiftError::Config("VAULT_TOKEN holds characters a header cannot".into())
            })?;
        token.set_sensitive(true);
        let attempt = || async {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("X-Vault-Token", token.clone())
                .header("X-Vault-Request", "true");
            if let Some(ns) = &self.namespace {
                req = req.header("X-Vault-Namespace", ns);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(resp) => {
                    self.answered
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    let status = resp.status().as_u16();
                    let bytes = resp.bytes().await.unwrap_or_default();
                    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if status == 429 || (500..600).contains(&status) && status != 501 {
                        Err(Failed::Transient(format!(
                            "HTTP {status}{}",
                            vault_errors(&value)
                        )))
                    } else {
                        Ok((status, value))
                    }
                }
                Err(e) => {
                    let first_contact =
                        e.is_connect() && !self.answered.load(std::sync::atomic::Ordering::Relaxed);
                    // reqwest's message names the URL (no secret in it), never a header.
                    let last = crate::errors::one_line(&anyhow::Error::new(e)).to_string();
                    if first_contact {
                        return Err(Failed::Final(
                            KeyshiftError::Config(format!(
                                "vault {}: cannot connect ({last}) — check VAULT_ADDR, that the \
                                 server runs and is reachable from here (NO_PROXY for an \
                                 internal host), and VAULT_CACERT for a private CA",
                                self.addr
                            ))
                            .into(),
                        ));
                    }
                    Err(Failed::Transient(last))
                }
            }
        };
        let mut failed = 0usize;
        let outcome = attempt
            .retry(self.policy.backoff())
            .sleep(tokio::time::sleep)
            .when(|f: &Failed| matches!(f, Failed::Transient(_)))
            .notify(|f: &Failed, wait: Duration| {
                failed += 1;
                if let Failed::Transient(last) = f {
                    self.announce_retry(&method, what, last, failed, wait);
                }
            })
            .await;
        match outcome {
            Ok(answer) => Ok(answer),
            Err(Failed::Final(e)) => Err(e),
            Err(Failed::Transient(last)) => Err(KeyshiftError::Config(format!(
                "vault {}: {method} {what}: {last} (after {} attempt(s)) — check that the \
                 server is unsealed and reachable",
                self.addr,
                failed + 1
            ))
            .into()),
        }
    }

    fn status_error(&self, method: &str, what: &str, status: u16, body: &Value) -> anyhow::Error {
        let hint = match status {
            403 => {
                " — the token lacks a capability on this path (see `keyshift doctor \
                    --secrets-vault`), or VAULT_TOKEN/VAULT_NAMESPACE is wrong"
            }
            404 => " — is the mount a KV version 2 secrets engine, and the path right?",
            _ => "",
        };
        KeyshiftError::Config(format!(
            "vault {}: {method} {what}: HTTP {status}{}{hint}",
            self.addr,
            vault_errors(body)
        ))
        .into()
    }

    /// Write the record's secret (and its context) at `path` in `mount` with check-and-set.
    /// Returns the version that holds this record's secret.
    pub async fn write_record(&self, mount: &str, path: &str, r: &SinkRecord) -> Result<u64> {
        let secret = r.secret.as_ref().ok_or_else(|| {
            anyhow::anyhow!("vault {mount}/{path}: the record has no secret to write")
        })?;
        let what = format!("{mount}/{path}");
        let api = format!("{mount}/data/{path}");
        let mut cas: u64 = 0;
        for _ in 0..CAS_ROUNDS {
            let mut data = entry_data(r, secret);
            if cas > 0 {
                data["supersedes_version"] = json!(cas);
            }
            let body = json!({ "options": { "cas": cas }, "data": data });
            let (status, resp) = self
                .call(reqwest::Method::POST, &api, Some(&body), &what)
                .await?;
            if (200..300).contains(&status) {
                return resp["data"]["version"].as_u64().ok_or_else(|| {
                    anyhow::anyhow!(
                        "vault {}: POST {what}: the answer names no version — is {mount} a KV \
                         version 2 mount?",
                        self.addr
                    )
                });
            }
            if status != 400 || !vault_errors(&resp).contains("check-and-set") {
                return Err(self.status_error("POST", &what, status, &resp));
            }
            // The entry exists (cas 0) or moved on (cas n): see what is there.
            match self.read_latest(mount, path).await? {
                Some((version, existing)) => {
                    let same_op = existing["op_id"].as_str() == Some(r.op_id.as_str());
                    let same_secret = existing["secret"].as_str() == Some(secret.expose_secret());
                    if same_op && same_secret {
                        return Ok(version); // an earlier attempt got through
                    }
                    cas = version;
                }
                None => {
                    cas = self.current_version(mount, path).await?;
                }
            }
        }
        Err(KeyshiftError::Config(format!(
            "vault {}: POST {what}: check-and-set kept failing (another writer on this path?)",
            self.addr
        ))
        .into())
    }

    /// The latest version's number and data, or `None` when it is deleted or absent.
    async fn read_latest(&self, mount: &str, path: &str) -> Result<Option<(u64, Value)>> {
        let what = format!("{mount}/{path}");
        let (status, resp) = self
            .call(
                reqwest::Method::GET,
                &format!("{mount}/data/{path}"),
                None,
                &what,
            )
            .await?;
        match status {
            200 => {
                let version = resp["data"]["metadata"]["version"].as_u64().unwrap_or(0);
                Ok(Some((version, resp["data"]["data"].clone())))
            }
            404 => Ok(None),
            _ => Err(self.status_error("GET", &what, status, &resp)),
        }
    }

    async fn current_version(&self, mount: &str, path: &str) -> Result<u64> {
        let what = format!("{mount}/metadata/{path}");
        let (status, resp) = self
            .call(
                reqwest::Method::GET,
                &format!("{mount}/metadata/{path}"),
                None,
                &what,
            )
            .await?;
        match status {
            200 => Ok(resp["data"]["current_version"].as_u64().unwrap_or(0)),
            404 => Ok(0),
            _ => Err(self.status_error("GET", &what, status, &resp)),
        }
    }

    /// The secret a receipt names: that version of that entry, which must belong to the
    /// receipt's operation.
    pub async fn read_secret(&self, receipt: &VaultReceipt, op_id: &str) -> Result<SecretString> {
        let what = format!("{} version {}", receipt.location(), receipt.vault_version);
        let (status, resp) = self
            .call(
                reqwest::Method::GET,
                &format!(
                    "{}/data/{}?version={}",
                    receipt.vault_mount, receipt.vault_path, receipt.vault_version
                ),
                None,
                &what,
            )
            .await?;
        if status != 200 {
            return Err(self.status_error("GET", &what, status, &resp));
        }
        let data = &resp["data"]["data"];
        if data["op_id"].as_str() != Some(op_id) {
            return Err(KeyshiftError::Config(format!(
                "vault {}: {what} belongs to another operation than the receipt's ({op_id}) — \
                 was the entry overwritten outside keyshift?",
                self.addr
            ))
            .into());
        }
        let secret = data["secret"].as_str().ok_or_else(|| {
            KeyshiftError::Config(format!(
                "vault {}: {what} has no `secret` (deleted or destroyed?)",
                self.addr
            ))
        })?;
        Ok(SecretString::from(secret.to_string()))
    }

    /// The token's capabilities on each path (`sys/capabilities-self`); nothing is written.
    pub async fn capabilities(&self, paths: &[String]) -> Result<HashMap<String, Vec<String>>> {
        let body = json!({ "paths": paths });
        let (status, resp) = self
            .call(
                reqwest::Method::POST,
                "sys/capabilities-self",
                Some(&body),
                "sys/capabilities-self",
            )
            .await?;
        if status != 200 {
            return Err(self.status_error("POST", "sys/capabilities-self", status, &resp));
        }
        let mut out = HashMap::new();
        for p in paths {
            let caps = resp
                .get(p)
                .or_else(|| resp["data"].get(p))
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            out.insert(p.clone(), caps);
        }
        Ok(out)
    }

    /// Can this token write and read entries under `target`? `Ok(description)` when it can.
    pub async fn check_access(&self, target: &VaultTarget) -> Result<String> {
        let probe = if target.prefix.is_empty() {
            "keyshift-doctor-probe".to_string()
        } else {
            format!("{}/keyshift-doctor-probe", target.prefix)
        };
        let data = format!("{}/data/{probe}", target.mount);
        let caps = self.capabilities(std::slice::from_ref(&data)).await?;
        let have = caps.get(&data).cloned().unwrap_or_default();
        let can = |c: &str| have.iter().any(|h| h == c || h == "root");
        let missing: Vec<&str> = ["create", "update", "read"]
            .into_iter()
            .filter(|c| !can(c))
            .collect();
        if missing.is_empty() {
            Ok(format!(
                "{} reachable; the token may create, update and read {}",
                self.addr,
                target.data_path()
            ))
        } else {
            Err(KeyshiftError::Config(format!(
                "vault {}: the token lacks {} on {} (it has: {}) — grant a policy with \
                 capabilities [\"create\", \"update\", \"read\"] on that path",
                self.addr,
                missing.join(", "),
                target.data_path(),
                if have.is_empty() {
                    "nothing".to_string()
                } else {
                    have.join(", ")
                }
            ))
            .into())
        }
    }
}

/// Vault's `errors` list of a response, for messages (` (permission denied)`).
fn vault_errors(body: &Value) -> String {
    let list: Vec<String> = body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str())
                .map(|e| e.chars().take(200).collect())
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        String::new()
    } else {
        format!(" ({})", list.join("; "))
    }
}

/// The entry's data: the secret, the OAuth client id, and non-secret context.
fn entry_data(r: &SinkRecord, secret: &SecretString) -> Value {
    json!({
        "secret": secret.expose_secret(),
        "oauth_client_id": r.oauth_client_id,
        "op_id": r.op_id,
        "vendor": r.vendor,
        "workspace": r.workspace,
        "source": r.source,
        "target_kind": r.target_kind,
        "kind": r.kind,
        "client_id": r.client_id,
        "key_id": r.key_id,
        "key_name": r.key_name,
        "issued_at": r.issued_at,
        "supersedes": r.supersedes,
        "written_by": "keyshift",
    })
}

/// The vault sink of one `apply`: where entries go, and the client that writes them.
pub struct VaultSink {
    pub client: VaultClient,
    pub target: VaultTarget,
    pub crash: crate::crash::Checkpoints,
}

impl VaultSink {
    /// Write the record's secret; the receipt names where it went.
    pub async fn write(&self, r: &SinkRecord) -> Result<VaultReceipt> {
        let path = self.target.entry_path(r);
        let version = self
            .client
            .write_record(&self.target.mount, &path, r)
            .await?;
        self.crash.hit("after-vault-write");
        Ok(VaultReceipt {
            vault_mount: self.target.mount.clone(),
            vault_path: path,
            vault_version: version,
        })
    }
}

/// Fill in the secrets of records that are vault receipts, reading each from the store
/// (at most 8 reads at once). A no-op, without any setting read, when none is a receipt.
pub async fn fetch_secrets<'a>(
    env: &Env,
    net: NetConfig,
    allow_insecure: bool,
    printer: &crate::printer::Printer,
    records: impl IntoIterator<Item = &'a mut SinkRecord>,
) -> Result<usize> {
    use futures::stream::{self, StreamExt};
    let todo: Vec<&mut SinkRecord> = records
        .into_iter()
        .filter(|r| r.secret.is_none() && r.vault.is_some())
        .collect();
    if todo.is_empty() {
        return Ok(0);
    }
    let client = VaultClient::from_env(env, net, allow_insecure)?.with_printer(printer.clone());
    let n = todo.len();
    let results: Vec<Result<()>> = stream::iter(todo)
        .map(|r| {
            let client = &client;
            async move {
                let receipt = r.vault.clone().expect("filtered");
                r.secret = Some(client.read_secret(&receipt, &r.op_id).await?);
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(source: &str) -> SinkRecord {
        SinkRecord {
            v: 1,
            op_id: format!("key/{source}"),
            vendor: "workato".into(),
            workspace: "1".into(),
            source: source.into(),
            target_kind: "api_key".into(),
            client_id: Some(7),
            key_id: None,
            key_name: "k".into(),
            kind: "auth_token".into(),
            secret: None,
            oauth_client_id: None,
            issued_at: "now".into(),
            supersedes: None,
            vault: None,
        }
    }

    #[test]
    fn targets_and_layout() {
        let t = VaultTarget::parse("secret/keyshift").unwrap();
        assert_eq!(
            (t.mount.as_str(), t.prefix.as_str()),
            ("secret", "keyshift")
        );
        assert_eq!(
            t.entry_path(&record("keyshift:workato:1:profile:1356466")),
            "keyshift/workato/1/api_key/profile-1356466"
        );
        assert_eq!(t.data_path(), "secret/data/keyshift/*");
        let root = VaultTarget::parse("/kv/").unwrap();
        assert_eq!(root.prefix, "");
        assert_eq!(
            root.entry_path(&record("keyshift:workato:1:profile:5")),
            "workato/1/api_key/profile-5"
        );
        // A Descope key keeps its Workato marker: the target vendor leads, the item follows.
        let mut descope = record("keyshift:workato:2:profile:6");
        descope.vendor = "descope".into();
        descope.workspace = "2".into();
        descope.target_kind = "access_key".into();
        assert_eq!(
            t.entry_path(&descope),
            "keyshift/descope/2/access_key/profile-6"
        );
        // A holder with characters a path segment does not take gets a hash suffix.
        let odd = t.entry_path(&record("keyshift:workato:1:profile:5:holder:a b/c"));
        assert!(odd.starts_with("keyshift/workato/1/api_key/profile-5-holder-a_b_c-"));
        for bad in ["", "/", "secret/../x", "sec ret/x", "a//b"] {
            assert!(VaultTarget::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn receipts_round_trip_without_a_secret() {
        let mut r = record("keyshift:workato:1:profile:9");
        r.vault = Some(VaultReceipt {
            vault_mount: "secret".into(),
            vault_path: "keyshift/workato/1/api_key/profile-9".into(),
            vault_version: 3,
        });
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains("\"vault_version\":3"), "{line}");
        let back: SinkRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.vault, r.vault);
        let plain: SinkRecord = serde_json::from_str(
            &serde_json::to_string(&record("keyshift:workato:1:profile:9")).unwrap(),
        )
        .unwrap();
        assert!(plain.vault.is_none());
    }
}
