//! Secret types, the signing-secrets input, keyed fingerprints and the secret sink.
//!
//! What this module guarantees:
//! - a secret lives in memory only as [`SecretString`], whose `Debug` redacts;
//! - the only place a new credential is written is the sink (JSON lines, 0600, fsynced
//!   before the operation that produced it is marked done — docs/security.md);
//! - the state DB only ever sees [`fingerprint`]s: HMAC-SHA-256 under a random key kept in
//!   `<state>.key` (0600), so a stolen state DB does not reveal or confirm a secret without
//!   that key.

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use sha2::Sha256;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::errors::KeyshiftError;
use crate::model::SigningSecretRef;

pub mod vault;

/// Create (or open for append) a file readable by its owner only.
pub fn open_private(path: &Path, append: bool) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true);
    if append {
        opts.append(true);
    } else {
        opts.write(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Create a directory (and parents) readable by its owner only.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

/// The key under which secrets are fingerprinted for the state DB.
pub struct FingerprintKey([u8; 32]);

impl FingerprintKey {
    /// Read `<state>.key`, creating it (0600, random) on first use.
    pub fn load_or_create(path: &Path) -> Result<FingerprintKey> {
        if let Ok(bytes) = std::fs::read(path) {
            let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                KeyshiftError::State(format!(
                    "fingerprint key {} is damaged (expected 32 bytes) — restore it from backup, \
                     or remove it and re-run plan",
                    path.display()
                ))
            })?;
            return Ok(FingerprintKey(arr));
        }
        let key: [u8; 32] = rand::random();
        let mut f = open_private(path, false)
            .with_context(|| format!("cannot create fingerprint key {}", path.display()))?;
        f.write_all(&key)?;
        f.sync_all()?;
        Ok(FingerprintKey(key))
    }

    pub fn fingerprint(&self, secret: &SecretString) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(secret.expose_secret().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey([redacted])")
    }
}

/// The operator's signing-secrets file (`KEYSHIFT_SIGNING_SECRETS`, docs/cli.md).
#[derive(Debug, Default, Deserialize)]
pub struct SigningSecrets {
    #[serde(default)]
    pub hmac: Vec<HmacEntry>,
    #[serde(default)]
    pub probe_keys: Vec<ProbeKey>,
}

#[derive(Debug, Deserialize)]
pub struct HmacEntry {
    pub workspace: String,
    #[serde(default)]
    pub profile_id: Option<i64>,
    #[serde(default)]
    pub legacy_client_id: Option<i64>,
    pub secret: SecretString,
}

#[derive(Debug, Deserialize)]
pub struct ProbeKey {
    pub workspace: String,
    pub profile_id: i64,
    pub private_key_pem: SecretString,
    #[serde(default)]
    pub kid: Option<String>,
}

impl SigningSecrets {
    pub fn load(path: &Path) -> Result<SigningSecrets> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            KeyshiftError::unreadable(
                "signing-secrets file",
                path,
                &e,
                Some("check KEYSHIFT_SIGNING_SECRETS"),
            )
        })?;
        // serde_json's error names line and column, never the content.
        serde_json::from_str(&text).map_err(|e| {
            KeyshiftError::Config(format!(
                "signing-secrets file {}: {e} — the format is in docs/security.md",
                path.display()
            ))
            .into()
        })
    }

    /// Fingerprints only, for the planner.
    pub fn index(&self, key: &FingerprintKey) -> SigningIndex {
        let mut idx = SigningIndex::default();
        for e in &self.hmac {
            let fp = key.fingerprint(&e.secret);
            if let Some(p) = e.profile_id {
                idx.by_profile.insert((e.workspace.clone(), p), fp);
            } else if let Some(c) = e.legacy_client_id {
                idx.by_client.insert((e.workspace.clone(), c), fp);
            }
        }
        idx
    }

    /// The HMAC secret a planned client refers to.
    pub fn hmac_for(&self, r: &SigningSecretRef) -> Option<&SecretString> {
        let by_profile = r.profile_id.and_then(|p| {
            self.hmac
                .iter()
                .find(|e| e.workspace == r.workspace && e.profile_id == Some(p))
        });
        let by_client = || {
            r.legacy_client_id.and_then(|c| {
                self.hmac.iter().find(|e| {
                    e.workspace == r.workspace
                        && e.profile_id.is_none()
                        && e.legacy_client_id == Some(c)
                })
            })
        };
        by_profile.or_else(by_client).map(|e| &e.secret)
    }
}

/// Which HMAC secrets the operator supplied, as fingerprints: enough to group profiles.
#[derive(Debug, Default, Clone)]
pub struct SigningIndex {
    by_profile: HashMap<(String, i64), String>,
    by_client: HashMap<(String, i64), String>,
}

impl SigningIndex {
    /// A profile entry wins over its client's.
    pub fn lookup(
        &self,
        ws: &str,
        profile_id: i64,
        legacy_client_id: i64,
    ) -> Option<(String, SigningSecretRef)> {
        if let Some(fp) = self.by_profile.get(&(ws.to_string(), profile_id)) {
            return Some((
                fp.clone(),
                SigningSecretRef {
                    workspace: ws.into(),
                    profile_id: Some(profile_id),
                    legacy_client_id: None,
                },
            ));
        }
        self.by_client
            .get(&(ws.to_string(), legacy_client_id))
            .map(|fp| {
                (
                    fp.clone(),
                    SigningSecretRef {
                        workspace: ws.into(),
                        profile_id: None,
                        legacy_client_id: Some(legacy_client_id),
                    },
                )
            })
    }
}

/// One record of the secret sink (docs/security.md). `Debug` redacts the secret. Read back, the
/// secret is `None` when it cannot be read here: encrypted to an age recipient without the
/// identity at hand, handed to a command, or written to a vault (then `vault` names where:
/// [`vault::fetch_secrets`] reads it from there).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SinkRecord {
    pub v: u32,
    pub op_id: String,
    pub vendor: String,
    pub workspace: String,
    pub source: String,
    pub target_kind: String,
    pub client_id: Option<i64>,
    pub key_id: Option<RemoteId>,
    pub key_name: String,
    pub kind: String,
    #[serde(serialize_with = "expose", default)]
    pub secret: Option<SecretString>,
    pub oauth_client_id: Option<String>,
    pub issued_at: String,
    pub supersedes: Option<String>,
    /// A vault receipt: where the secret was written (docs/security.md, "The vault sink").
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<vault::VaultReceipt>,
}

pub use crate::model::RemoteId;

fn expose<S: Serializer>(s: &Option<SecretString>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_str(s.expose_secret()),
        None => ser.serialize_none(),
    }
}

/// How new secrets leave the process.
#[derive(Clone)]
pub enum SinkMode {
    /// JSON lines, 0600, fsynced (the default).
    Plain,
    /// Each record encrypted to an age recipient; only non-secret metadata in the clear.
    Age(Box<age::x25519::Recipient>),
    /// Each record handed to `sh -c CMD` on stdin; only a receipt (no secret) is kept.
    Command(String),
    /// Each secret written to a Vault-compatible KV v2 store (check-and-set); only a receipt
    /// naming the entry and its version is kept.
    Vault(std::sync::Arc<vault::VaultSink>),
}

impl SinkMode {
    pub fn age(recipient: &str) -> Result<SinkMode> {
        let r: age::x25519::Recipient = recipient.parse().map_err(|e| {
            KeyshiftError::Usage(format!(
                "--secrets-recipient {recipient:?} is not an age X25519 recipient ({e}) — it \
                 starts with age1…; `age-keygen -y KEYFILE` prints it"
            ))
        })?;
        Ok(SinkMode::Age(Box::new(r)))
    }

    pub fn describe(&self) -> String {
        match self {
            SinkMode::Plain => "plain JSON lines (0600)".into(),
            SinkMode::Age(r) => format!("age-encrypted to {r}"),
            SinkMode::Command(_) => "handed to --secrets-cmd (receipts only)".into(),
            SinkMode::Vault(v) => format!(
                "written to KV v2 at {} under {} (receipts only)",
                v.client.addr(),
                v.target.data_path()
            ),
        }
    }
}

/// Metadata kept in the clear next to an encrypted record or a command receipt.
#[derive(Serialize)]
struct Envelope<'a> {
    v: u32,
    op_id: &'a str,
    vendor: &'a str,
    workspace: &'a str,
    source: &'a str,
    target_kind: &'a str,
    client_id: Option<i64>,
    key_id: Option<&'a RemoteId>,
    key_name: &'a str,
    kind: &'a str,
    oauth_client_id: Option<&'a str>,
    issued_at: &'a str,
    supersedes: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    vault: Option<&'a vault::VaultReceipt>,
}

impl<'a> Envelope<'a> {
    fn of(r: &'a SinkRecord) -> Envelope<'a> {
        Envelope {
            v: r.v,
            op_id: &r.op_id,
            vendor: &r.vendor,
            workspace: &r.workspace,
            source: &r.source,
            target_kind: &r.target_kind,
            client_id: r.client_id,
            key_id: r.key_id.as_ref(),
            key_name: &r.key_name,
            kind: &r.kind,
            oauth_client_id: r.oauth_client_id.as_deref(),
            issued_at: &r.issued_at,
            supersedes: r.supersedes.as_deref(),
            age: None,
            delivered: None,
            vault: None,
        }
    }
}

/// Where new secrets go.
pub struct SecretSink {
    path: PathBuf,
    mode: SinkMode,
    file: Mutex<File>,
    /// Group fsync: lines written so far, lines known durable, and one syncer at a time.
    written: std::sync::atomic::AtomicU64,
    synced: std::sync::atomic::AtomicU64,
    syncing: tokio::sync::Mutex<()>,
}

impl SecretSink {
    pub fn open(path: &Path, mode: SinkMode) -> Result<SecretSink> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        let file = open_private(path, true).map_err(|e| {
            KeyshiftError::Config(format!(
                "secret sink {}: cannot open it for appending: {e} — set KEYSHIFT_SECRETS to a \
                 writable path",
                path.display()
            ))
        })?;
        Ok(SecretSink {
            path: path.to_path_buf(),
            mode,
            file: Mutex::new(file),
            written: std::sync::atomic::AtomicU64::new(0),
            synced: std::sync::atomic::AtomicU64::new(0),
            syncing: tokio::sync::Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mode(&self) -> &SinkMode {
        &self.mode
    }

    /// Deliver one record and make its line durable. Returns only when the secret is safe
    /// (fsynced, encrypted and fsynced, or accepted by the command).
    /// Not for the vault sink, which writes over the network: use
    /// [`append_grouped`](Self::append_grouped).
    pub fn append(&self, record: &SinkRecord) -> Result<()> {
        let line = self.encode(record, None)?;
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&line)
            .and_then(|_| f.sync_data())
            .with_context(|| format!("cannot write to secret sink {}", self.path.display()))
    }

    /// [`append`](Self::append) for concurrent writers: each line is written at once, and
    /// one fsync covers every line written before it (group commit). Returns only when this
    /// record's line is durable.
    pub async fn append_grouped(&self, record: &SinkRecord) -> Result<()> {
        use std::sync::atomic::Ordering;
        // Vault: the secret goes to the store first; the line is then only its receipt.
        let receipt = match &self.mode {
            SinkMode::Vault(v) => Some(v.write(record).await?),
            _ => None,
        };
        let line = self.encode(record, receipt.as_ref())?;
        let mine = {
            let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
            f.write_all(&line)
                .with_context(|| format!("cannot write to secret sink {}", self.path.display()))?;
            self.written.fetch_add(1, Ordering::SeqCst) + 1
        };
        let _turn = self.syncing.lock().await;
        if self.synced.load(Ordering::SeqCst) >= mine {
            return Ok(()); // an fsync that started after our write covered it
        }
        let upto = self.written.load(Ordering::SeqCst);
        let file = self
            .file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_clone()?;
        tokio::task::spawn_blocking(move || file.sync_data())
            .await?
            .with_context(|| format!("cannot fsync secret sink {}", self.path.display()))?;
        self.synced.store(upto, Ordering::SeqCst);
        Ok(())
    }

    fn encode(
        &self,
        record: &SinkRecord,
        receipt: Option<&vault::VaultReceipt>,
    ) -> Result<Vec<u8>> {
        let mut line = match &self.mode {
            SinkMode::Plain => serde_json::to_vec(record).context("cannot encode a sink record")?,
            SinkMode::Age(recipient) => {
                let plaintext =
                    serde_json::to_vec(record).context("cannot encode a sink record")?;
                let ciphertext = age::encrypt(recipient.as_ref(), &plaintext)
                    .map_err(|e| anyhow::anyhow!("cannot encrypt a sink record: {e}"))?;
                let mut env = Envelope::of(record);
                env.age = Some(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    ciphertext,
                ));
                serde_json::to_vec(&env)?
            }
            SinkMode::Command(cmd) => {
                let json = serde_json::to_vec(record).context("cannot encode a sink record")?;
                deliver_to_command(cmd, &json)?;
                let mut env = Envelope::of(record);
                env.delivered = Some("command");
                serde_json::to_vec(&env)?
            }
            SinkMode::Vault(_) => {
                let mut env = Envelope::of(record);
                env.vault = Some(receipt.ok_or_else(|| {
                    anyhow::anyhow!("the vault sink writes with append_grouped, not append")
                })?);
                serde_json::to_vec(&env)?
            }
        };
        line.push(b'\n');
        Ok(line)
    }
}

/// Run `sh -c cmd` with the record on stdin. The record (with its secret) is never put in
/// the command line or the environment.
fn deliver_to_command(cmd: &str, json: &[u8]) -> Result<()> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| KeyshiftError::Config(format!("--secrets-cmd: cannot start it: {e}")))?;
    // A command that exits without reading its input makes the write fail (broken pipe):
    // that is the same failed delivery as a non-zero exit, so wait for the status either way.
    let written = {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(json).and_then(|()| stdin.write_all(b"\n"))
    };
    let status = child.wait()?;
    if !status.success() || written.is_err() {
        let why = match &written {
            Err(e) if status.success() => format!("did not take the record ({e})"),
            _ => format!("exited with {status}"),
        };
        return Err(KeyshiftError::Config(format!(
            "--secrets-cmd {why}: the secret was not delivered (the key will get a new secret on \
             the next apply) — fix the command and run apply again"
        ))
        .into());
    }
    Ok(())
}

/// Read a sink file back. Plain lines carry their secret; age lines are decrypted when an
/// identity is given; command receipts never carry one. Lines that do not parse (a torn last
/// line after a crash) are skipped.
pub fn read_sink(path: &Path, identity: Option<&age::x25519::Identity>) -> Result<Vec<SinkRecord>> {
    let mut out = Vec::new();
    scan_sink(path, identity, |r| out.push(r))?;
    Ok(out)
}

/// [`read_sink`] one record at a time, for callers that keep only part of each record.
pub fn scan_sink(
    path: &Path,
    identity: Option<&age::x25519::Identity>,
    mut each: impl FnMut(SinkRecord),
) -> Result<()> {
    use std::io::BufRead;
    // Line by line: a sink of 100,000 records is never held as one string.
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        let line = line.as_str();
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let mut record: SinkRecord = match serde_json::from_value(value.clone()) {
            Ok(r) => r,
            Err(_) => continue,
        };
        if let (Some(ct), Some(id)) = (value.get("age").and_then(|v| v.as_str()), identity) {
            let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, ct)
                .map_err(|_| {
                    anyhow::anyhow!("{} line {}: damaged ciphertext", path.display(), i + 1)
                })?;
            let plain = age::decrypt(id, &bytes).map_err(|e| {
                KeyshiftError::Config(format!(
                    "{} line {}: cannot decrypt ({e}) — is it the identity of the recipient apply used?",
                    path.display(),
                    i + 1
                ))
            })?;
            let full: SinkRecord = serde_json::from_slice(&plain)
                .with_context(|| format!("{} line {}: bad record", path.display(), i + 1))?;
            record.secret = full.secret;
        }
        each(record);
    }
    Ok(())
}

/// An age identity from `KEYSHIFT_AGE_IDENTITY` (or `_FILE`: an age key file).
pub fn parse_age_identity(text: &str) -> Result<age::x25519::Identity> {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| {
            KeyshiftError::Config(
                "KEYSHIFT_AGE_IDENTITY: no AGE-SECRET-KEY-… line found — point \
                 KEYSHIFT_AGE_IDENTITY_FILE at the identity file made by age-keygen"
                    .into(),
            )
            .into()
        })
}

/// Reports are written 0600: they name every credential's owner.
pub fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let mut f =
        open_private(path, false).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let r = SinkRecord {
            v: 1,
            op_id: "o".into(),
            vendor: "workato".into(),
            workspace: "1".into(),
            source: "s".into(),
            target_kind: "api_key".into(),
            client_id: Some(1),
            key_id: Some(RemoteId::Num(2)),
            key_name: "k".into(),
            kind: "auth_token".into(),
            secret: Some(SecretString::from("planted-secret-123".to_string())),
            oauth_client_id: None,
            issued_at: "now".into(),
            supersedes: None,
            vault: None,
        };
        assert!(!format!("{r:?}").contains("planted-secret-123"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let sink = SecretSink::open(&path, SinkMode::Plain).unwrap();
        sink.append(&r).unwrap();
        let back = read_sink(&path, None).unwrap();
        assert_eq!(
            back[0].secret.as_ref().unwrap().expose_secret(),
            "planted-secret-123"
        );

        // Age: no plaintext on disk; the identity reads it back.
        let identity = age::x25519::Identity::generate();
        let age_path = dir.path().join("a.jsonl");
        let sink =
            SecretSink::open(&age_path, SinkMode::Age(Box::new(identity.to_public()))).unwrap();
        sink.append(&r).unwrap();
        let bytes = std::fs::read_to_string(&age_path).unwrap();
        assert!(!bytes.contains("planted-secret-123") && bytes.contains("\"op_id\":\"o\""));
        assert!(read_sink(&age_path, None).unwrap()[0].secret.is_none());
        let back = read_sink(&age_path, Some(&identity)).unwrap();
        assert_eq!(
            back[0].secret.as_ref().unwrap().expose_secret(),
            "planted-secret-123"
        );

        // Command: the command gets the record on stdin; the file keeps a receipt only.
        let cmd_path = dir.path().join("c.jsonl");
        let out = dir.path().join("delivered.json");
        let sink = SecretSink::open(
            &cmd_path,
            SinkMode::Command(format!("cat > {}", out.display())),
        )
        .unwrap();
        sink.append(&r).unwrap();
        assert!(std::fs::read_to_string(&out)
            .unwrap()
            .contains("planted-secret-123"));
        let receipt = std::fs::read_to_string(&cmd_path).unwrap();
        assert!(!receipt.contains("planted-secret-123") && receipt.contains("delivered"));
        let failing = SecretSink::open(&cmd_path, SinkMode::Command("exit 3".into())).unwrap();
        let err = failing.append(&r).unwrap_err().to_string();
        assert!(
            err.contains("not delivered") && !err.contains("planted"),
            "{err}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn fingerprints_are_keyed() {
        let dir = tempfile::tempdir().unwrap();
        let a = FingerprintKey::load_or_create(&dir.path().join("a.key")).unwrap();
        let b = FingerprintKey::load_or_create(&dir.path().join("b.key")).unwrap();
        let s = SecretString::from("hmac-secret".to_string());
        assert_ne!(a.fingerprint(&s), b.fingerprint(&s));
        let a2 = FingerprintKey::load_or_create(&dir.path().join("a.key")).unwrap();
        assert_eq!(a.fingerprint(&s), a2.fingerprint(&s));
    }
}
