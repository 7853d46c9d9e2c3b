//! The test harness, shared by every file in `tests/` and by `benches/migration.rs`: the real
//! `keyshift` binary, the real sandbox on 127.0.0.1:0 (started as a child process, as a user
//! would), and a real SQLite file in a temp dir. tests/README.md lists what it offers.
//!
//! - [`Sandbox`]: starts `keyshift sandbox`, reads its connection settings, and reads and
//!   steers it through its `/_sandbox/*` endpoints (state, stats, clock, Logs export, consumer
//!   credentials) and, as a hand-made change would, through the Workato management API.
//! - [`Run`]: a temp dir with a state file, running the binary against a sandbox; crash
//!   checkpoints; the secret sink.
//! - [`net`]: TLS fronts, proxies and unreachable servers for the network tests.
//! - [`workato_defects`], [`bifrost_defects`]: each vendor's create-time rules, broken one at a
//!   time, for the tests that prove the plan predicts every refusal.
#![allow(dead_code)]

pub mod bifrost_defects;
pub mod net;
pub mod workato_defects;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_keyshift");

/// The user's network settings: a proxy or CA of the machine running the tests must not reach
/// the binary (every vendor is on 127.0.0.1; the network tests set their own).
pub const NET_VARS: &[&str] = &[
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
];

/// The named holders of [`Run::bifrost_mapping`]: two users the seeded Bifrost instance keeps
/// profile copies for (u-alice, u-bob), two it does not, and the other copy holders unnamed.
pub const BIFROST_HOLDERS: &[&str] = &["u-alice", "u-bob", "u-carol", "u-dave"];

/// A running `keyshift sandbox`, killed on drop.
pub struct Sandbox {
    child: Child,
    pub env: Vec<(String, String)>,
    pub url: String,
}

impl Sandbox {
    pub fn start(args: &[&str]) -> Sandbox {
        Sandbox::spawn(args, Stdio::inherit())
    }

    fn spawn(args: &[&str], stderr: Stdio) -> Sandbox {
        let mut cmd = Command::new(BIN);
        cmd.arg("sandbox").args(["--port", "0"]).args(args);
        // CI runs the suite once per read-token mode (SD-W9, PC-W1): the sandbox answers
        // Workato reads with the key's token in full (default), masked or omitted.
        if let Ok(mode) = std::env::var("KEYSHIFT_TEST_READ_TOKENS") {
            if !args.contains(&"--read-tokens") {
                cmd.args(["--read-tokens", &mode]);
            }
        }
        clean_env(&mut cmd);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start keyshift sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let env = read_settings(&mut lines);
        // Keep draining stdout so the sandbox never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let url = env
            .iter()
            .find(|(k, _)| k == "KEYSHIFT_SANDBOX_URL")
            .expect("KEYSHIFT_SANDBOX_URL")
            .1
            .clone();
        Sandbox { child, env, url }
    }

    /// The sandbox with its stderr discarded: the benchmarks print figures, not its warnings.
    pub fn start_quiet(args: &[&str]) -> Sandbox {
        Sandbox::spawn(args, Stdio::null())
    }

    pub fn var(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} not printed by the sandbox"))
    }

    pub fn state(&self) -> Value {
        reqwest::blocking::get(format!("{}/_sandbox/state", self.url))
            .expect("GET /_sandbox/state")
            .json()
            .expect("state JSON")
    }

    /// Jump the sandbox clock (`POST /_sandbox/clock`); it keeps running from there.
    pub fn set_clock(&self, now: &str) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/_sandbox/clock", self.url))
            .json(&serde_json::json!({ "now": now }))
            .send()
            .expect("POST /_sandbox/clock");
        assert!(r.status().is_success(), "clock: {}", r.status());
    }

    /// A workspace's Logs export as a user downloads it (`/_sandbox/workato/api-logs.csv`),
    /// written to `path`.
    pub fn download_workato_logs(&self, workspace: i64, path: &Path) {
        let csv = reqwest::blocking::get(format!(
            "{}/_sandbox/workato/api-logs.csv?workspace={workspace}",
            self.url
        ))
        .expect("GET api-logs.csv")
        .text()
        .expect("CSV text");
        std::fs::write(path, csv).expect("write the Logs export");
    }

    /// The ids of a Workato workspace's active legacy profiles.
    pub fn active_profiles(&self, workspace: i64) -> BTreeSet<i64> {
        self.workspace(workspace)["access_profiles"]
            .as_array()
            .expect("access_profiles")
            .iter()
            .filter(|p| p["active"] == true)
            .filter_map(|p| p["id"].as_i64())
            .collect()
    }

    /// The clear old credentials a rehearsal consumer holds (`/_sandbox/consumer-credentials`).
    pub fn consumer_credentials(&self) -> Value {
        reqwest::blocking::get(format!("{}/_sandbox/consumer-credentials", self.url))
            .expect("GET /_sandbox/consumer-credentials")
            .json()
            .expect("credentials JSON")
    }

    /// Zero the request counters (`POST /_sandbox/stats/reset`).
    pub fn reset_stats(&self) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/_sandbox/stats/reset", self.url))
            .send()
            .expect("POST /_sandbox/stats/reset");
        assert!(r.status().is_success(), "stats reset: {}", r.status());
    }

    /// A hand-made change through the Workato management API, as an admin would make it
    /// (`path` is under `KEYSHIFT_WORKATO_URL`); it must succeed.
    pub fn workato_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) {
        let mut req = reqwest::blocking::Client::new()
            .request(
                method,
                format!("{}{path}", self.var("KEYSHIFT_WORKATO_URL")),
            )
            .bearer_auth(self.var("KEYSHIFT_WORKATO_TOKEN"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status();
        assert!(
            status.is_success(),
            "{path}: {status}: {}",
            resp.text().unwrap()
        );
    }

    pub fn stats(&self) -> Value {
        reqwest::blocking::get(format!("{}/_sandbox/stats", self.url))
            .expect("GET /_sandbox/stats")
            .json()
            .expect("stats JSON")
    }

    /// Requests seen so far, by (vendor, method), summed over routes and statuses.
    pub fn request_counts(&self) -> HashMap<(String, String), u64> {
        let mut out = HashMap::new();
        for r in self.stats()["requests"].as_array().expect("requests") {
            let key = (
                r["vendor"].as_str().unwrap().to_string(),
                r["method"].as_str().unwrap().to_string(),
            );
            *out.entry(key).or_default() += r["count"].as_u64().unwrap();
        }
        out
    }

    /// Requests a vendor has seen on routes whose pattern starts with `route`, any method or
    /// status.
    pub fn route_count(&self, vendor: &str, route: &str) -> u64 {
        self.stats()["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .filter(|r| r["vendor"] == vendor && r["route"].as_str().unwrap().starts_with(route))
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    }

    /// Write requests (anything but GET) seen so far.
    pub fn writes(&self) -> u64 {
        self.request_counts()
            .iter()
            .filter(|((_, m), _)| m != "GET")
            .map(|(_, n)| n)
            .sum()
    }

    /// The admin workspace's state.
    pub fn workspace(&self, id: i64) -> Value {
        self.state()["workato"]["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"].as_i64() == Some(id) || w["id"].as_str() == Some(&id.to_string()))
            .cloned()
            .expect("workspace in state")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Strip the user's keyshift and network settings so a developer's setup cannot leak into a
/// test.
pub fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("KEYSHIFT_") {
            cmd.env_remove(k);
        }
    }
    for v in NET_VARS {
        cmd.env_remove(v);
    }
}

/// The connection settings at the top of the sandbox's stdout: `NAME=value` lines, up to the
/// blank line that ends them — however many vendors print theirs.
fn read_settings(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for line in lines {
        let line = line.expect("read the sandbox's stdout");
        if line.trim().is_empty() {
            break;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("the sandbox printed {line:?}, not a NAME=value line"));
        env.push((k.to_string(), v.to_string()));
    }
    assert!(
        env.iter().any(|(k, _)| k == "KEYSHIFT_SANDBOX_URL"),
        "the sandbox stopped before printing its settings (see its stderr): {env:?}"
    );
    env
}

/// The binary with a clean environment and no stdin; the caller adds the rest.
pub fn keyshift() -> Command {
    let mut cmd = Command::new(BIN);
    clean_env(&mut cmd);
    cmd.stdin(Stdio::null());
    cmd
}

/// The binary run in `dir` with the state file `dir/keyshift.db`, a clean environment and no
/// stdin; the caller adds the arguments and the vendor settings.
pub fn keyshift_in(dir: &Path) -> Command {
    let mut cmd = keyshift();
    cmd.current_dir(dir)
        .arg("--state")
        .arg(dir.join("keyshift.db"));
    cmd
}

/// A temp dir with a state file path, running the binary against a sandbox.
pub struct Run {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Done {
    fn from(out: Output) -> Done {
        Done {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Done {
    /// stdout and stderr for a failure message, without the retry warnings a fault-injecting
    /// sandbox causes by the hundred (they are counted), so what went wrong is not cut from
    /// a CI log.
    pub fn shown(&self) -> String {
        let retry = |l: &&str| l.starts_with("warning: ") && l.contains(" failed, next try in ");
        let retries = self.stderr.lines().filter(retry).count();
        let rest: Vec<&str> = self.stderr.lines().filter(|l| !retry(l)).collect();
        format!(
            "exit code {}\nstdout:\n{}\nstderr ({retries} retry warnings left out):\n{}",
            self.code,
            self.stdout,
            rest.join("\n")
        )
    }
}

impl Run {
    pub fn new(sandbox: &Sandbox) -> Run {
        Run {
            dir: tempfile::tempdir().expect("tempdir"),
            env: sandbox.env.clone(),
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("keyshift.db")
    }

    pub fn sink(&self) -> PathBuf {
        self.dir.path().join("keyshift.db.secrets.jsonl")
    }

    pub fn ks(&self, args: &[&str]) -> Done {
        self.ks_with(args, &[])
    }

    pub fn ks_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Done {
        let mut cmd = self.command(args);
        cmd.envs(extra_env.iter().copied());
        cmd.output().expect("run keyshift").into()
    }

    /// `keyshift <args>` against the sandbox, in this run's dir and state file, not started
    /// yet: for a test that signals or races it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = keyshift_in(self.dir.path());
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// A mapping file shipped in `mappings/` (`shipped`, without `.toml`) with each
    /// `(from, to)` replaced, written to `file` in this run's dir; its path.
    pub fn edited_mapping(&self, shipped: &str, edits: &[(&str, &str)], file: &str) -> String {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("mappings/{shipped}.toml")),
        )
        .expect("a shipped mapping");
        let text = edits.iter().fold(text, |text, (from, to)| {
            assert!(text.contains(from), "{shipped}.toml has no {from:?}");
            text.replace(from, to)
        });
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// The shipped Bifrost mapping in `mode` (`per_profile`, `per_holder`, …) with
    /// [`BIFROST_HOLDERS`] named.
    pub fn bifrost_mapping(&self, mode: &str) -> String {
        let holders = format!("holders = {BIFROST_HOLDERS:?}");
        let mode_line = format!("mode = \"{mode}\"");
        self.edited_mapping(
            "bifrost-profiles-to-virtual-keys",
            &[
                ("mode = \"per_profile\"", &mode_line),
                ("holders = []", &holders),
            ],
            &format!("bifrost-{mode}.toml"),
        )
    }

    /// Run and insist on an exit code, showing the output when it differs.
    pub fn ok(&self, args: &[&str], code: i32) -> Done {
        let d = self.ks(args);
        assert_eq!(
            d.code,
            code,
            "keyshift {args:?}: expected exit code {code}; {}",
            d.shown()
        );
        d
    }

    /// Start `keyshift <args>` (plus `extra` environment) with a crash checkpoint; wait until
    /// it parks there; SIGKILL it.
    pub fn crash_at(&self, extra: &[(&str, &str)], args: &[&str], point: &str, after: &str) {
        let marker = self.dir.path().join(format!("crashed-{point}"));
        let mut child = self
            .command(args)
            .envs(extra.iter().copied())
            .env("KEYSHIFT_CRASH_AT", point)
            .env("KEYSHIFT_CRASH_AFTER", after)
            .env("KEYSHIFT_CRASH_MARKER", &marker)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !marker.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("keyshift {args:?} ended ({status}) before reaching {point}");
            }
            assert!(Instant::now() < deadline, "never reached {point}");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        std::fs::remove_file(&marker).unwrap();
    }

    /// The usable new secret per source profile id (the last sink record for each), for
    /// simulated consumers.
    pub fn new_secrets_by_profile(&self) -> BTreeMap<i64, String> {
        self.sink_records()
            .iter()
            .filter_map(|r| {
                let profile = r["source"].as_str()?.rsplit(':').next()?.parse().ok()?;
                Some((profile, r["secret"].as_str()?.to_string()))
            })
            .collect()
    }

    pub fn sink_records(&self) -> Vec<Value> {
        read_jsonl(&self.sink())
    }
}

/// `keyshift --json adoption` output: each consumer's line, by consumer id.
pub fn adoption_lines(d: &Done) -> BTreeMap<String, Value> {
    d.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "adoption.consumer")
        .map(|v| (v["consumer"].as_str().unwrap_or_default().to_string(), v))
        .collect()
}

pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("sink line is JSON"))
        .collect()
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A fixture file in the shape of `/_sandbox/state`.
pub fn write_fixture(dir: &Path, fixture: &Value) -> PathBuf {
    let path = dir.join("fixture.json");
    std::fs::write(&path, serde_json::to_vec_pretty(fixture).unwrap()).unwrap();
    path
}
