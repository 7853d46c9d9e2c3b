//! Secrets never leak: plant known secrets, run everything at maximum verbosity with
//! injected failures, and search every output and every file but the sink.

mod common;

use common::{read_jsonl, Run, Sandbox};
use serde_json::Value;

const PLANTED_TOKEN: &str = "planted-management-token-5f1c2a9e";

#[test]
fn no_secret_appears_outside_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sandbox.toml");
    std::fs::write(&config, format!("[workato]\ntoken = \"{PLANTED_TOKEN}\"\n")).unwrap();
    let sandbox = Sandbox::start(&[
        "--seed",
        "13",
        "--profiles",
        "150",
        "--rate-scale",
        "0",
        "--config",
        config.to_str().unwrap(),
        "--faults",
        "error_rate=0.2,commit_drop_rate=0.05",
        // Every Workato read carries the key's (and a client's) token in clear: the
        // strictest case for keyshift's hygiene (SD-W9, PC-W1).
        "--read-tokens",
        "full",
    ]);
    assert_eq!(sandbox.var("KEYSHIFT_WORKATO_TOKEN"), PLANTED_TOKEN);
    let run = Run::new(&sandbox);
    let mut outputs = Vec::new();
    for args in [
        vec!["-vvv", "export"],
        vec!["-vvv", "plan"],
        vec![
            "-vvv",
            "report",
            "--format",
            "md",
            "--out",
            "plan-report.md",
        ],
        vec!["-vvv", "apply", "--yes"],
        vec!["-vvv", "--json", "apply", "--yes"],
        vec!["-vvv", "verify", "--live", "--probe-deadline", "5"],
        vec!["-vvv", "status"],
        vec!["-vvv", "report", "--format", "json", "--out", "report.json"],
        vec!["-vvv", "report", "--format", "md"],
        vec!["-vvv", "handover", "--out", "handover"],
        vec!["-vvv", "secrets", "show"],
    ] {
        let d = run.ks(&args);
        assert!(
            d.code == 0 || d.code == 3,
            "{args:?}: {}\n{}",
            d.stdout,
            d.stderr
        );
        outputs.push(d.stdout);
        outputs.push(d.stderr);
    }
    // An injected failure: a wrong management token, at maximum verbosity.
    let d = run.ks_with(
        &["-vvv", "export"],
        &[("KEYSHIFT_WORKATO_TOKEN", "planted-wrong-token-77aa")],
    );
    assert_eq!(d.code, 1);
    assert!(d.stderr.contains("401"), "{}", d.stderr);
    outputs.push(d.stdout);
    outputs.push(d.stderr);

    // The planted secrets: the management token, the HMAC signing secrets, every issued key
    // secret and OAuth client secret.
    let mut planted: Vec<String> = vec![PLANTED_TOKEN.into(), "planted-wrong-token-77aa".into()];
    let signing: Value = reqwest::blocking::get(format!("{}/_sandbox/signing-keys", sandbox.url))
        .unwrap()
        .json()
        .unwrap();
    for h in signing["hmac"].as_array().unwrap() {
        planted.push(h["secret"].as_str().unwrap().to_string());
    }
    let sink = read_jsonl(&run.sink());
    assert!(sink.len() > 50);
    let mut kinds = std::collections::BTreeSet::new();
    for r in &sink {
        planted.push(r["secret"].as_str().unwrap().to_string());
        kinds.insert(r["kind"].as_str().unwrap().to_string());
    }
    assert!(kinds.contains("oauth_client_secret") && kinds.contains("auth_token"));
    // Tokens that arrived on reads: every client's and key's `auth_token` as V1/K1 show it.
    let client = reqwest::blocking::Client::new();
    // The sandbox injects faults here too: try until a read answers 200.
    let get = |path: &str| -> Value {
        for _ in 0..50 {
            let r = client
                .get(format!("{}{path}", sandbox.var("KEYSHIFT_WORKATO_URL")))
                .bearer_auth(PLANTED_TOKEN)
                .send();
            if let Some(v) = r
                .ok()
                .filter(|r| r.status().is_success())
                .and_then(|r| r.json::<Value>().ok())
            {
                return v;
            }
        }
        panic!("GET {path} kept failing");
    };
    let mut read_tokens = 0;
    let mut page = 1;
    loop {
        let clients = get(&format!("/api/v2/api_clients?per_page=100&page={page}"));
        let data = clients["data"].as_array().unwrap().clone();
        for c in &data {
            planted.push(c["auth_token"].as_str().unwrap().to_string());
            read_tokens += 1;
            if c["is_legacy"] == false {
                let keys = get(&format!("/api/v2/api_clients/{}/api_keys", c["id"]));
                for k in keys["data"].as_array().unwrap() {
                    planted.push(k["auth_token"].as_str().unwrap().to_string());
                    read_tokens += 1;
                }
            }
        }
        if data.len() < 100 {
            break;
        }
        page += 1;
    }
    assert!(read_tokens > sink.len(), "reads carried tokens to plant");
    assert!(
        planted.len() > sink.len() + 3,
        "HMAC secrets were planted too"
    );

    let mut haystacks: Vec<(String, Vec<u8>)> = outputs
        .into_iter()
        .enumerate()
        .map(|(i, o)| (format!("output {i}"), o.into_bytes()))
        .collect();
    let mut stack = vec![run.dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path != run.sink() {
                haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    assert!(haystacks.iter().any(|(n, _)| n.ends_with("keyshift.db")));
    assert!(haystacks.iter().any(|(n, _)| n.ends_with("handover.csv")));
    for secret in &planted {
        for (name, h) in &haystacks {
            assert!(
                !h.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a planted secret appears in {name}"
            );
        }
    }
}

#[test]
fn age_sink_decrypts_with_the_identity_and_holds_every_secret_once() {
    let identity = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    let recipient = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
    let sandbox = Sandbox::start(&["--seed", "8", "--profiles", "60", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);
    run.ok(&["apply", "--yes", "--secrets-recipient", recipient], 0);
    let text = std::fs::read_to_string(run.sink()).unwrap();
    let keys = sandbox.workspace(1)["api_keys"].as_array().unwrap().clone();
    assert_eq!(text.lines().count(), keys.len());
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v.get("secret").is_none() && v["age"].is_string(), "{line}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(run.sink()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Without the identity nothing can be exported; with it, every secret exactly once.
    let d = run.ks(&["secrets", "export", "--out", "plain.jsonl"]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    let idfile = run.dir.path().join("id.txt");
    std::fs::write(&idfile, format!("# created: test\n{identity}\n")).unwrap();
    let d = run.ks_with(
        &["secrets", "export", "--out", "plain.jsonl"],
        &[("KEYSHIFT_AGE_IDENTITY_FILE", idfile.to_str().unwrap())],
    );
    assert_eq!(d.code, 0, "{}", d.stderr);
    let plain = read_jsonl(&run.dir.path().join("plain.jsonl"));
    assert_eq!(plain.len(), keys.len());
    for k in &keys {
        let r = plain
            .iter()
            .find(|r| r["key_id"] == k["id"])
            .expect("record per key");
        let want = k["auth_token_sha256"]
            .as_str()
            .or_else(|| k["oauth_client_secret_sha256"].as_str())
            .unwrap();
        assert_eq!(common::sha256_hex(r["secret"].as_str().unwrap()), want);
    }
    // verify --live can use the encrypted sink with the identity.
    let d = run.ks_with(
        &["verify", "--live", "--probe-deadline", "5"],
        &[("KEYSHIFT_AGE_IDENTITY_FILE", idfile.to_str().unwrap())],
    );
    assert_eq!(d.code, 0, "{}", d.stdout);
}

#[test]
fn secrets_cmd_gets_each_record_and_only_receipts_stay() {
    let sandbox = Sandbox::start(&["--seed", "9", "--profiles", "40", "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let _ = run.ks(&["plan"]);
    let vault = run.dir.path().join("vault.jsonl");
    let cmd = format!("cat >> {}", vault.display());
    run.ok(&["apply", "--yes", "--secrets-cmd", &cmd], 0);
    let delivered = read_jsonl(&vault);
    let receipts = std::fs::read_to_string(run.sink()).unwrap();
    let keys = sandbox.workspace(1)["api_keys"].as_array().unwrap().len();
    assert_eq!(delivered.len(), keys);
    assert_eq!(receipts.lines().count(), keys);
    for r in &delivered {
        assert!(!receipts.contains(r["secret"].as_str().unwrap()));
    }
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::keyshift()
        .arg("--state")
        .arg(dir.path().join("s.db"))
        .arg("export")
        .env("KEYSHIFT_WORKATO_URL", "http://workato.example.com")
        .env("KEYSHIFT_WORKATO_TOKEN", "t")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("refusing plain http:// to workato.example.com"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-insecure-http"), "{stderr}");
}
