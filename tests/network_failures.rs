//! Unreachable vendors: a vendor that cannot be reached ends the command in seconds with a
//! message naming the host, what failed and what to check — a name that does not resolve, a
//! closed port, a server that never answers, a TLS certificate from a CA the client does not
//! trust. Transient failures are retried, and every retry is announced.
//!
//! Only loopback and `.invalid` names (which never resolve) are used.

mod common;

use common::net::{closed_port, ks, silent_server, Ca, TlsFront};
use common::Sandbox;
use std::time::Duration;

/// Generous: the point is "seconds, not the minutes eight back-off retries take".
const BOUND: Duration = Duration::from_secs(15);
const TOKEN: &str = "ks-test-token-not-to-be-printed";

/// `export` and `doctor` against `url`: both exit 1 within the bound, and every message holds
/// each of `want` and never the token.
fn fails_fast(url: &str, want: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("KEYSHIFT_WORKATO_URL", url),
        ("KEYSHIFT_WORKATO_TOKEN", TOKEN),
    ];
    let (d, took) = ks(dir.path(), &["export"], &env);
    assert_eq!(d.code, 1, "export: {}\n{}", d.stdout, d.stderr);
    assert!(took < BOUND, "export took {took:?}: {}", d.stderr);
    for w in want {
        assert!(d.stderr.contains(w), "export: want {w:?} in {}", d.stderr);
    }
    assert!(!d.stderr.contains("attempt"), "not retried: {}", d.stderr);
    assert!(!d.stderr.contains(TOKEN) && !d.stdout.contains(TOKEN));

    let (d, took) = ks(dir.path(), &["doctor"], &env);
    assert_eq!(d.code, 1, "doctor: {}\n{}", d.stdout, d.stderr);
    assert!(took < BOUND, "doctor took {took:?}: {}", d.stdout);
    let line = d
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL  workato:"))
        .unwrap_or_else(|| panic!("doctor names the failing vendor:\n{}", d.stdout));
    for w in want {
        assert!(line.contains(w), "doctor: want {w:?} in {line}");
    }
    assert!(!d.stderr.contains(TOKEN) && !d.stdout.contains(TOKEN));
}

#[test]
fn a_host_that_does_not_resolve() {
    fails_fast(
        "https://keyshift-test.invalid",
        &[
            "keyshift-test.invalid does not resolve",
            "KEYSHIFT_WORKATO_URL",
            "DNS",
        ],
    );
}

#[test]
fn a_closed_port() {
    let port = closed_port();
    fails_fast(
        &format!("http://127.0.0.1:{port}/workato"),
        &[
            &format!("127.0.0.1:{port} refused the connection"),
            "check the port in KEYSHIFT_WORKATO_URL",
        ],
    );
}

#[test]
fn a_server_that_accepts_and_never_answers() {
    let port = silent_server();
    fails_fast(
        &format!("http://127.0.0.1:{port}/workato"),
        &[
            &format!("127.0.0.1:{port} accepted the connection but sent no answer"),
            "KEYSHIFT_WORKATO_URL",
        ],
    );
}

#[test]
fn a_tls_server_whose_ca_is_not_trusted() {
    let ca = Ca::new("keyshift test CA (not trusted)");
    let (chain, key) = ca.leaf(&["127.0.0.1", "localhost"]);
    let front = TlsFront::start(chain, key, None);
    fails_fast(
        &format!("https://127.0.0.1:{}/workato", front.port),
        &[
            &format!("TLS with 127.0.0.1:{} failed", front.port),
            "signed by a CA this machine does not trust",
            "KEYSHIFT_CA_FILE",
        ],
    );
}

/// Transient failures are still retried — and each retry is one warning line (human) or one
/// `http.retry` event (`--json`), and the run still succeeds.
#[test]
fn retries_are_announced_and_the_run_goes_on() {
    let sandbox = Sandbox::start(&[
        "--seed",
        "7",
        "--profiles",
        "60",
        "--rate-scale",
        "0",
        "--faults",
        "error_rate=0.4",
    ]);
    let env: Vec<(&str, &str)> = sandbox
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let token = sandbox.var("KEYSHIFT_WORKATO_TOKEN");

    // An export is a handful of requests: run it until the faults hit one (40% of requests
    // fail, so almost always the first time).
    let run = |args: &[&str], hit: &dyn Fn(&common::Done) -> bool| {
        for _ in 0..8 {
            let dir = tempfile::tempdir().unwrap();
            let (d, _) = ks(dir.path(), args, &env);
            assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
            if hit(&d) {
                return d;
            }
        }
        panic!("eight exports under 40% faults and no retry announced")
    };
    let d = run(&["export"], &|d| d.stderr.contains("next try in"));
    let retries: Vec<&str> = d
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:") && l.contains(" failed, next try in "))
        .collect();
    assert!(!retries.is_empty(), "no retry was announced:\n{}", d.stderr);
    for line in &retries {
        assert!(line.contains("HTTP 50"), "{line}");
        assert!(
            line.contains("attempt ") && line.contains(" of 9 "),
            "{line}"
        );
        assert!(line.contains(" s"), "{line}");
    }
    assert!(!d.stderr.contains(&token) && !d.stdout.contains(&token));

    let d = run(&["--json", "export"], &|d| d.stdout.contains("http.retry"));
    let events: Vec<serde_json::Value> = d
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "http.retry")
        .collect();
    assert!(!events.is_empty(), "no http.retry event:\n{}", d.stdout);
    for e in &events {
        assert!(e["attempt"].as_u64().unwrap() >= 1, "{e}");
        assert_eq!(e["of"], 9, "{e}");
        assert!(e["next_in_secs"].as_f64().is_some(), "{e}");
        assert!(e["error"].as_str().unwrap().contains("HTTP 50"), "{e}");
        assert!(e["host"].as_str().unwrap().starts_with("127.0.0.1:"), "{e}");
    }
    assert!(
        !d.stderr.contains("warning:"),
        "--json prints events, not warnings"
    );
    assert!(!d.stdout.contains(&token));
}
