//! keyshift's benchmark harness (`cargo bench --bench migration`): request economy, budget
//! use, a naive baseline in the same run, local cost with the sandbox unthrottled, and the
//! scale curve. Everything runs against `keyshift sandbox` on loopback, started by the test
//! harness (`tests/common`); figures go to stdout and to `target/benchmarks.md`.
//! docs/benchmarks.md explains them.
//!
//! `KS_BENCH_QUICK=1` runs a smaller set (for a smoke check).
#![allow(clippy::print_stdout)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{clean_env, Sandbox, BIN};

/// Requests each vendor saw since the last reset (all statuses, the gateway's traffic left
/// out), and the 429s among them.
fn vendor_requests(sandbox: &Sandbox) -> (BTreeMap<String, u64>, u64) {
    let mut by_vendor = BTreeMap::new();
    let mut throttled = 0;
    for r in sandbox.stats()["requests"].as_array().unwrap() {
        if r["vendor"] == "workato-apim" {
            continue;
        }
        let n = r["count"].as_u64().unwrap();
        *by_vendor
            .entry(r["vendor"].as_str().unwrap().to_string())
            .or_default() += n;
        if r["status"] == 429 {
            throttled += n;
        }
    }
    (by_vendor, throttled)
}

/// A finished command: wall time and peak RSS (kB, from wait4).
struct Ran {
    secs: f64,
    max_rss_kb: i64,
    stdout: String,
}

#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives the peak RSS
fn keyshift(sandbox: &Sandbox, state: &std::path::Path, args: &[&str]) -> Ran {
    let started = Instant::now();
    let mut cmd = Command::new(BIN);
    clean_env(&mut cmd);
    let child = cmd
        .arg("--state")
        .arg(state)
        .args(args)
        .envs(sandbox.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut out = String::new();
    let mut stdout = child.stdout.unwrap();
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child; `usage` is a valid out-pointer.
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    assert!(
        code == 0 || code == 3,
        "keyshift {args:?} exited {code}:\n{out}"
    );
    Ran {
        secs: started.elapsed().as_secs_f64(),
        max_rss_kb: usage.ru_maxrss,
        stdout: out,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// What a scenario migrates to.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// Workato v2 clients and keys, Developer API.
    Developer,
    /// Workato v2 clients and keys, Embedded API (`managed_users`).
    Embedded,
    /// Descope access keys, from the Workato Developer API.
    Descope,
}

impl Target {
    fn export_args(self) -> Vec<String> {
        match self {
            Target::Developer => vec!["--api".into(), "developer".into()],
            Target::Embedded => vec!["--api".into(), "embedded".into()],
            Target::Descope => vec![
                "--mapping".into(),
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/mappings/workato-legacy-to-descope.toml"
                )
                .into(),
            ],
        }
    }

    /// The documented limit per minute of each vendor scope the run uses (the sandbox's
    /// `/_sandbox/stats` vendor names).
    fn limit(self, vendor: &str) -> f64 {
        match (self, vendor) {
            (Target::Embedded, "workato") => 1000.0,
            (_, "workato") => 60.0,
            (_, "descope") => 100.0,
            (_, other) => panic!("no limit known for {other}"),
        }
    }
}

/// The fewest requests the job needs (docs/benchmarks.md, "Request economy"). Workato v2: list pages to export, the
/// same legacy pages again for the stale check, one v2 list page per workspace, one create per
/// client and key, then one v2 list page per workspace and one key page per client to verify.
/// Descope: the same export and stale check, one search for keys already there, one create per
/// key and one deactivation per inactive key, then one search to verify.
fn minimum(state: &Value, target: Target, clients: u64, keys: u64) -> BTreeMap<&'static str, u64> {
    let pages = |n: usize| (n / 100 + 1) as u64; // legacy lists end on a short page
    let embedded = target == Target::Embedded;
    let mut export = 0;
    let mut stale = 0;
    let mut v1 = 0;
    let workspaces: Vec<&Value> = state["workato"]["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .skip(usize::from(embedded))
        .collect();
    if embedded {
        export += pages(workspaces.len());
    }
    for ws in &workspaces {
        let c = ws["legacy_clients"].as_array().unwrap().len();
        let p = ws["access_profiles"].as_array().unwrap().len();
        let k = ws["api_collections"].as_array().unwrap().len();
        export += pages(c) + pages(p) + pages(k);
        stale += pages(c) + pages(p);
        v1 += 1;
    }
    let mut m = BTreeMap::new();
    m.insert("export", export);
    m.insert("plan", 0);
    if target == Target::Descope {
        let ours: Vec<&Value> = state["descope"]["access_keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["customAttributes"]["migrationSourceId"].is_string())
            .collect();
        let inactive = ours.iter().filter(|k| k["status"] == "inactive").count();
        m.insert("apply", stale + 1 + (ours.len() + inactive) as u64);
        m.insert("verify", 1);
    } else {
        m.insert("apply", stale + v1 + clients + keys);
        m.insert("verify", v1 + clients);
    }
    m
}

struct Phases {
    requests: BTreeMap<&'static str, u64>,
    throttled: u64,
    secs: BTreeMap<&'static str, f64>,
    minimum: BTreeMap<&'static str, u64>,
    apply_budget_secs: f64,
}

fn keyshift_run(args: &[&str], target: Target) -> Phases {
    let sandbox = Sandbox::start_quiet(args);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ks.db");
    let mut requests = BTreeMap::new();
    let mut secs = BTreeMap::new();
    let mut throttled = 0;
    let mut apply_by_vendor = BTreeMap::new();
    let export: Vec<String> = std::iter::once("export".to_string())
        .chain(target.export_args())
        .collect();
    for (phase, cmd) in [
        ("export", export.iter().map(String::as_str).collect()),
        ("plan", vec!["plan"]),
        ("apply", vec!["apply", "--yes"]),
        ("verify", vec!["verify"]),
    ] {
        sandbox.reset_stats();
        let ran = keyshift(&sandbox, &state, &cmd);
        let (by_vendor, t) = vendor_requests(&sandbox);
        requests.insert(phase, by_vendor.values().sum());
        secs.insert(phase, ran.secs);
        throttled += t;
        if phase == "apply" {
            apply_by_vendor = by_vendor;
        }
    }
    let report: Value =
        serde_json::from_str(&keyshift(&sandbox, &state, &["report", "--format", "json"]).stdout)
            .unwrap();
    let planned = |k: &str| report["summary"][k].as_u64().unwrap_or(0);
    let minimum = minimum(
        &sandbox.state(),
        target,
        planned("planned_clients"),
        planned("planned_keys"),
    );
    let scale: f64 = sandbox.var("KEYSHIFT_RATE_SCALE").parse().unwrap();
    // Each vendor scope has its own budget; the stale check's reads come before the writes,
    // so the ideal is the sum of each scope's requests ÷ its limit.
    let apply_budget_secs = apply_by_vendor
        .iter()
        .map(|(vendor, n)| *n as f64 / (target.limit(vendor) * scale) * 60.0)
        .sum();
    Phases {
        apply_budget_secs,
        requests,
        throttled,
        secs,
        minimum,
    }
}

/// The straightforward migrator: one v2 client per profile, a read after every create, no
/// pacing (it only waits when told to by a 429).
fn baseline(args: &[&str]) -> (u64, f64) {
    let sandbox = Sandbox::start_quiet(args);
    let base = sandbox.var("KEYSHIFT_WORKATO_URL");
    let token = sandbox.var("KEYSHIFT_WORKATO_TOKEN");
    let http = reqwest::blocking::Client::new();
    let send = |method: reqwest::Method, path: String, body: Option<Value>| -> (u16, Value) {
        loop {
            let mut req = http
                .request(method.clone(), format!("{base}{path}"))
                .bearer_auth(&token);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req.send().unwrap();
            let status = resp.status().as_u16();
            if status == 429 {
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                std::thread::sleep(Duration::from_secs(wait));
                continue;
            }
            return (status, resp.json().unwrap_or(Value::Null));
        }
    };
    sandbox.reset_stats();
    let started = Instant::now();
    let mut profiles = Vec::new();
    for page in 1.. {
        let (_, v) = send(
            reqwest::Method::GET,
            format!("/api/api_access_profiles?page={page}&per_page=100"),
            None,
        );
        let items = v.as_array().cloned().unwrap_or_default();
        let n = items.len();
        profiles.extend(items);
        if n < 100 {
            break;
        }
    }
    for p in &profiles {
        let mut body = json!({
            "name": format!("{} {}", p["name"].as_str().unwrap_or(""), p["id"]),
            "auth_type": p["auth_type"], "api_collection_ids": p["api_collection_ids"],
        });
        for f in [
            "jwt_method",
            "jwt_secret",
            "oidc_issuer",
            "oidc_jwks_uri",
            "api_policy_id",
        ] {
            if !p[f].is_null() {
                body[f] = p[f].clone();
            }
        }
        let (status, created) = send(
            reqwest::Method::POST,
            "/api/v2/api_clients".into(),
            Some(body),
        );
        if status != 200 {
            continue;
        }
        let id = created["data"]["id"].clone();
        send(
            reqwest::Method::GET,
            format!("/api/v2/api_clients/{id}"),
            None,
        );
        let (status, _) = send(
            reqwest::Method::POST,
            format!("/api/v2/api_clients/{id}/api_keys"),
            Some(
                json!({"name": p["name"], "active": p["active"], "ip_allow_list": p["ip_allow_list"]}),
            ),
        );
        if status == 200 {
            send(
                reqwest::Method::GET,
                format!("/api/v2/api_clients/{id}/api_keys"),
                None,
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    (vendor_requests(&sandbox).0.values().sum(), secs)
}

/// Local cost, the sandbox unthrottled: each command's wall time and peak RSS, and the keys
/// apply created.
struct Local {
    /// `(command, seconds, peak RSS in kB)`, in pipeline order.
    commands: Vec<(&'static str, f64, i64)>,
    keys: u64,
}

impl Local {
    fn secs(&self, command: &str) -> f64 {
        self.commands.iter().find(|c| c.0 == command).unwrap().1
    }

    fn peak_rss_kb(&self) -> i64 {
        self.commands.iter().map(|c| c.2).max().unwrap()
    }
}

fn local_cost(profiles: u32) -> Local {
    let n = profiles.to_string();
    let sandbox = Sandbox::start_quiet(&["--seed", "9", "--profiles", &n, "--rate-scale", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ks.db");
    let mut commands = Vec::new();
    for (name, args) in [
        ("export", &["export"][..]),
        ("plan", &["plan"]),
        ("apply", &["apply", "--yes", "--concurrency", "64"]),
        ("verify", &["verify"]),
    ] {
        let ran = keyshift(&sandbox, &state, args);
        commands.push((name, ran.secs, ran.max_rss_kb));
    }
    // The planned keys, from `status` (apply finished with exit 0, so every one was created).
    // Not from the JSON report: at 100,000 profiles it is a few hundred megabytes to parse,
    // which this process would keep, and every later child's peak RSS (measured through
    // wait4) would include it.
    let status = keyshift(&sandbox, &state, &["--json", "status"]).stdout;
    let keys = status
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "status")
        .and_then(|e| e["keys"].as_u64())
        .expect("a status event with the planned keys");
    Local { commands, keys }
}

/// Requests the sandbox counted since the last reset on one route of one vendor, and the 429s
/// among them.
fn route_requests(sandbox: &Sandbox, vendor: &str, route: &str) -> (u64, u64) {
    let v = sandbox.stats();
    let mut n = (0, 0);
    for r in v["requests"].as_array().unwrap() {
        if r["vendor"] == vendor && r["route"] == route {
            let c = r["count"].as_u64().unwrap();
            n.0 += c;
            if r["status"] == 429 {
                n.1 += c;
            }
        }
    }
    n
}

fn consumers_in(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.contains("\"event\":\"adoption.consumer\""))
        .count()
}

/// One adoption run's cost.
struct Cost {
    consumers: usize,
    requests: u64,
    searches: u64,
    throttled: u64,
    secs: f64,
    rss_kb: i64,
}

/// Adoption's cost on each vendor's evidence.
fn adoption_cost(runs: usize) -> String {
    let mut md = String::from(
        "\n## Adoption: evidence cost (medians)\n\n| evidence | consumers | requests | per consumer | 429s | wall time | peak RSS |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    // Bifrost: holders call with old and new keys; adoption reads /api/logs.
    let mut rows = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sandbox.toml");
        std::fs::write(&config, "[bifrost]\ngenerated_profiles = 400\n").unwrap();
        let sandbox = Sandbox::start_quiet(&[
            "--seed",
            "5",
            "--rate-scale",
            "0",
            "--config",
            config.to_str().unwrap(),
        ]);
        let state = dir.path().join("ks.db");
        // Every user the seeded instance has copies for is a named holder.
        let mut holders: Vec<String> = sandbox.state()["bifrost"]["user_access_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["user_id"].as_str().map(String::from))
            .collect();
        holders.sort();
        holders.dedup();
        let mapping = dir.path().join("m.toml");
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mappings/bifrost-profiles-to-virtual-keys.toml"
        ))
        .unwrap()
        .replace("mode = \"per_profile\"", "mode = \"per_holder\"")
        .replace("holders = []", &format!("holders = {holders:?}"));
        std::fs::write(&mapping, text).unwrap();
        keyshift(
            &sandbox,
            &state,
            &["export", "--mapping", mapping.to_str().unwrap()],
        );
        keyshift(&sandbox, &state, &["plan"]);
        keyshift(&sandbox, &state, &["apply", "--yes"]);
        let creds = sandbox.consumer_credentials();
        let sink = std::fs::read_to_string(dir.path().join("ks.db.secrets.jsonl")).unwrap();
        let mut keys: Vec<String> = sink
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|r| r["secret"].as_str().map(String::from))
            .collect();
        keys.extend(
            creds["bifrost"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["value"].as_str().map(String::from)),
        );
        let infer = format!(
            "{}/v1/chat/completions",
            sandbox.var("KEYSHIFT_BIFROST_URL")
        );
        let http = reqwest::blocking::Client::new();
        for k in &keys {
            let _ = http
                .post(&infer)
                .header("x-bf-vk", k)
                .json(&json!({"model": "m", "messages": []}))
                .send();
        }
        sandbox.reset_stats();
        let ran = keyshift(&sandbox, &state, &["--json", "adoption"]);
        let (logs, t1) = route_requests(&sandbox, "bifrost", "/api/logs");
        let (stats, _) = route_requests(&sandbox, "bifrost", "/api/logs/stats");
        let (dropped, _) = route_requests(&sandbox, "bifrost", "/api/logs/dropped");
        rows.push(Cost {
            consumers: consumers_in(&ran.stdout),
            requests: logs + stats + dropped,
            searches: logs,
            throttled: t1,
            secs: ran.secs,
            rss_kb: ran.max_rss_kb,
        });
    }
    let med = |f: fn(&Cost) -> f64| median(rows.iter().map(f).collect());
    let (c, all, logs) = (
        med(|r| r.consumers as f64),
        med(|r| r.requests as f64),
        med(|r| r.searches as f64),
    );
    md.push_str(&format!(
        "| Bifrost `/api/logs` (per-holder, every holder named) | {c:.0} | {all:.0} ({logs:.0} searches + stats + dropped) | {:.2} | {:.0} | {:.2} s | {:.0} MB |\n",
        logs / c.max(1.0),
        med(|r| r.throttled as f64),
        med(|r| r.secs),
        med(|r| r.rss_kb as f64) / 1024.0
    ));
    println!(
        "adoption bifrost: {c:.0} consumers, {logs:.0} log searches ({:.2}/consumer)",
        logs / c.max(1.0)
    );

    // Descope: one walk over the window for every access key, on audit search's own budget
    // (10 a minute, scaled like every limit).
    let mut rows = Vec::new();
    for _ in 0..runs {
        let sandbox =
            Sandbox::start_quiet(&["--seed", "3", "--profiles", "3000", "--rate-scale", "60"]);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("ks.db");
        let mapping = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mappings/workato-legacy-to-descope.toml"
        );
        keyshift(&sandbox, &state, &["export", "--mapping", mapping]);
        keyshift(&sandbox, &state, &["plan"]);
        keyshift(&sandbox, &state, &["apply", "--yes"]);
        sandbox.reset_stats();
        let ran = keyshift(&sandbox, &state, &["--json", "adoption"]);
        let (audit, t) = route_requests(&sandbox, "descope", "/v1/mgmt/audit/search");
        rows.push(Cost {
            consumers: consumers_in(&ran.stdout),
            requests: audit,
            searches: audit,
            throttled: t,
            secs: ran.secs,
            rss_kb: ran.max_rss_kb,
        });
    }
    let med = |f: fn(&Cost) -> f64| median(rows.iter().map(f).collect());
    let (c, audit) = (med(|r| r.consumers as f64), med(|r| r.requests as f64));
    md.push_str(&format!(
        "| Descope audit search (3,000 profiles, budget 10/min × 60) | {c:.0} | {audit:.0} | {:.2} | {:.0} | {:.2} s | {:.0} MB |\n",
        audit / c.max(1.0),
        med(|r| r.throttled as f64),
        med(|r| r.secs),
        med(|r| r.rss_kb as f64) / 1024.0
    ));
    println!("adoption descope: {c:.0} consumers, {audit:.0} audit searches");

    // Workato: a 200,000-row Logs export read from disk, no request at all.
    let mut rows = Vec::new();
    for _ in 0..runs {
        let sandbox =
            Sandbox::start_quiet(&["--seed", "3", "--profiles", "300", "--rate-scale", "0"]);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("ks.db");
        keyshift(&sandbox, &state, &["export"]);
        keyshift(&sandbox, &state, &["plan"]);
        keyshift(&sandbox, &state, &["apply", "--yes"]);
        let names: Vec<String> = sandbox.state()["workato"]["workspaces"][0]["legacy_clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        let mut csv = String::from("\u{feff}Date,Type,Code,Status,Gateway code,Status details,IP,Timing,Delay,API collection,Endpoint,Client,Job details\r\n");
        for i in 0..200_000u32 {
            let name = &names[i as usize % names.len()];
            let client = if i % 3 == 0 {
                format!("{name} · keys")
            } else {
                name.clone()
            };
            csv.push_str(&format!(
                "2025-11-{:02}T{:02}:{:02}:00.000+00:00,Success,200,OK,,,10.0.0.1,35 ms,0 ms,Orders API,orders,\"{}\",\r\n",
                14 - (i / 20_000) % 10,
                (i / 60) % 24,
                i % 60,
                client.replace('"', "\"\"")
            ));
        }
        let file = dir.path().join("api-logs.csv");
        std::fs::write(&file, csv).unwrap();
        sandbox.reset_stats();
        let arg = format!("1={}", file.display());
        let ran = keyshift(
            &sandbox,
            &state,
            &[
                "--json",
                "--now",
                "2025-11-15T00:00:00Z",
                "adoption",
                "--workato-logs",
                &arg,
            ],
        );
        let (all, _) = vendor_requests(&sandbox);
        rows.push(Cost {
            consumers: consumers_in(&ran.stdout),
            requests: all.values().sum::<u64>(),
            searches: 0,
            throttled: 0,
            secs: ran.secs,
            rss_kb: ran.max_rss_kb,
        });
    }
    let med = |f: fn(&Cost) -> f64| median(rows.iter().map(f).collect());
    let c = med(|r| r.consumers as f64);
    md.push_str(&format!(
        "| Workato Logs export, 200,000 rows (23 MB) | {c:.0} | {:.0} | {:.2} | 0 | {:.2} s | {:.0} MB |\n",
        med(|r| r.requests as f64),
        med(|r| r.requests as f64) / c.max(1.0),
        med(|r| r.secs),
        med(|r| r.rss_kb as f64) / 1024.0
    ));
    println!(
        "adoption workato: {c:.0} consumers, 200k rows in {:.2}s",
        med(|r| r.secs)
    );
    md
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let quick = std::env::var("KS_BENCH_QUICK").is_ok();
    // `KS_BENCH_ONLY=local` runs only the local-cost part.
    // `KS_BENCH_ONLY=economy` only request economy and budget use (1 + 2).
    let only = std::env::var("KS_BENCH_ONLY").unwrap_or_default();
    let only_local = only == "local";
    let only_economy = only == "economy";
    let only_adoption = only == "adoption";
    let runs = if quick { 1 } else { 3 };
    let mut md = String::from("# keyshift benchmark run\n\n");

    // 1 + 2: request economy and budget use, Developer and Embedded, at 20× the real limits.
    let scenarios: &[(&str, Vec<&str>, Target)] = &[
        (
            "Developer, 300 profiles",
            vec!["--seed", "3", "--profiles", "300", "--rate-scale", "20"],
            Target::Developer,
        ),
        (
            "Embedded, 10 workspaces, 1,500 profiles",
            vec![
                "--seed",
                "4",
                "--profiles",
                "1500",
                "--workspaces",
                "11",
                "--rate-scale",
                "5",
            ],
            Target::Embedded,
        ),
        (
            "Workato → Descope, 300 profiles",
            vec!["--seed", "3", "--profiles", "300", "--rate-scale", "20"],
            Target::Descope,
        ),
    ];
    if !only_local && !only_adoption {
        md.push_str("## Request economy and budget use\n\n| scenario | phase | requests (median) | minimum | over minimum |\n|---|---|---:|---:|---:|\n");
        let mut budget_rows = String::new();
        for (name, args, target) in scenarios {
            let all: Vec<Phases> = (0..runs).map(|_| keyshift_run(args, *target)).collect();
            for phase in ["export", "plan", "apply", "verify"] {
                let req = median(all.iter().map(|p| p.requests[phase] as f64).collect());
                let min = all[0].minimum[phase] as f64;
                let over = if min > 0.0 {
                    format!("{:+.1}%", (req - min) / min * 100.0)
                } else {
                    "—".into()
                };
                md.push_str(&format!(
                    "| {name} | {phase} | {req:.0} | {min:.0} | {over} |\n"
                ));
                println!("{name:45} {phase:7} requests {req:6.0}  minimum {min:6.0}  {over}");
            }
            let wall = median(all.iter().map(|p| p.secs["apply"]).collect());
            let ideal = median(all.iter().map(|p| p.apply_budget_secs).collect());
            let throttled = median(all.iter().map(|p| p.throttled as f64).collect());
            budget_rows.push_str(&format!(
                "| {name} | {wall:.2} s | {ideal:.2} s | {:+.1}% | {throttled:.0} |\n",
                (wall - ideal) / ideal * 100.0
            ));
            println!("{name:45} apply wall {wall:.2}s vs requests/limit {ideal:.2}s ({:+.1}%), 429s {throttled:.0}", (wall - ideal) / ideal * 100.0);
        }
        md.push_str("\n### Budget use (apply)\n\n| scenario | wall time (median) | requests ÷ limit | difference | 429 responses |\n|---|---:|---:|---:|---:|\n");
        md.push_str(&budget_rows);
    }
    if !only_local && !only_economy && !only_adoption {
        // 3: the naive baseline against an identical sandbox, same limits.
        let args = ["--seed", "3", "--profiles", "300", "--rate-scale", "20"];
        let ks: Vec<Phases> = (0..runs)
            .map(|_| keyshift_run(&args, Target::Developer))
            .collect();
        let ks_req = median(
            ks.iter()
                .map(|p| p.requests.values().sum::<u64>() as f64)
                .collect(),
        );
        let ks_secs = median(ks.iter().map(|p| p.secs.values().sum::<f64>()).collect());
        let base: Vec<(u64, f64)> = (0..runs).map(|_| baseline(&args)).collect();
        let b_req = median(base.iter().map(|b| b.0 as f64).collect());
        let b_secs = median(base.iter().map(|b| b.1).collect());
        md.push_str(&format!(
        "\n## Baseline (Developer, 300 profiles, 20× limits)\n\n| | requests | wall time |\n|---|---:|---:|\n| keyshift (export→verify) | {ks_req:.0} | {ks_secs:.1} s |\n| naive sequential migrator | {b_req:.0} | {b_secs:.1} s |\n| ratio naive ÷ keyshift | {:.2}× | {:.2}× |\n",
        b_req / ks_req,
        b_secs / ks_secs
    ));
        println!(
            "baseline: keyshift {ks_req:.0} req {ks_secs:.1}s; naive {b_req:.0} req {b_secs:.1}s"
        );
    }

    // 6: what adoption costs: requests per consumer (Bifrost), the audit walk under its own
    // budget (Descope), a large Logs export read locally (Workato).
    if only == "adoption" || (!only_local && !only_economy) {
        md.push_str(&adoption_cost(runs));
        if only == "adoption" {
            let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/benchmarks.md");
            std::fs::write(&out, md).unwrap();
            println!("written to {}", out.display());
            return;
        }
    }

    // 4 + 5: local cost and the scale curve.
    let sizes: &[u32] = if only_economy {
        &[]
    } else if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    md.push_str("\n## Local cost, sandbox unthrottled (medians)\n\n| profiles | export + plan | apply | keys/s | peak RSS | µs per profile (export+plan) | RSS per profile |\n|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut per_command = String::new();
    for &n in sizes {
        let res: Vec<Local> = (0..runs).map(|_| local_cost(n)).collect();
        let ep = median(
            res.iter()
                .map(|x| x.secs("export") + x.secs("plan"))
                .collect(),
        );
        let ap = median(res.iter().map(|x| x.secs("apply")).collect());
        let kps = median(
            res.iter()
                .map(|x| x.keys as f64 / x.secs("apply"))
                .collect(),
        );
        let rss = median(res.iter().map(|x| x.peak_rss_kb() as f64).collect());
        md.push_str(&format!(
            "| {n} | {ep:.2} s | {ap:.2} s | {kps:.0} | {:.0} MB | {:.1} | {:.2} kB |\n",
            rss / 1024.0,
            ep * 1e6 / n as f64,
            rss / n as f64
        ));
        println!("{n:7} profiles: export+plan {ep:.2}s, apply {ap:.2}s ({kps:.0} keys/s), peak RSS {:.0} MB", rss / 1024.0);
        per_command = format!(
            "\n### Per command, {n} profiles (medians)\n\n| command | wall time | peak RSS |\n|---|---:|---:|\n"
        );
        for (i, (name, _, _)) in res[0].commands.iter().enumerate() {
            let secs = median(res.iter().map(|x| x.commands[i].1).collect());
            let kb = median(res.iter().map(|x| x.commands[i].2 as f64).collect());
            per_command.push_str(&format!(
                "| {name} | {secs:.2} s | {:.0} MB |\n",
                kb / 1024.0
            ));
        }
    }
    md.push_str(&per_command);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/benchmarks.md");
    std::fs::write(&out, md).unwrap();
    println!("written to {}", out.display());
}
