//! Corporate networks. Proxies from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`
//! (as keyshift's environment gives them, not reqwest's reading of the process),
//! extra CAs from `KEYSHIFT_CA_FILE` and `SSL_CERT_FILE`, and `doctor` showing both.
//!
//! The vendor is the sandbox behind a TLS front whose certificate comes from a CA the test
//! makes; the proxy is a small CONNECT / forward proxy in `common::net` that records what it
//! carried. Everything is on 127.0.0.1.

mod common;

use common::net::{addr_of, closed_port, ks, Ca, Proxy, TlsFront};
use common::Sandbox;
use std::time::Duration;

const BOUND: Duration = Duration::from_secs(15);

struct Setup {
    sandbox: Sandbox,
    front: TlsFront,
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl Setup {
    /// The sandbox, and a TLS front for it with a certificate for `names` from a new CA.
    fn new(names: &[&str]) -> Setup {
        let sandbox = Sandbox::start(&["--seed", "11", "--profiles", "40", "--rate-scale", "0"]);
        let ca = Ca::new("keyshift corporate test CA");
        let (chain, key) = ca.leaf(names);
        let front = TlsFront::start(chain, key, Some(addr_of(&sandbox.url)));
        let dir = tempfile::tempdir().unwrap();
        let ca_pem = ca
            .write_pem(dir.path(), "corp-ca.pem")
            .display()
            .to_string();
        Setup {
            sandbox,
            front,
            dir,
            ca_pem,
        }
    }

    fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}/workato", self.front.port)
    }

    /// The sandbox's env lines with Workato behind the TLS front, plus `extra`.
    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .sandbox
            .env
            .iter()
            .filter(|(k, _)| k == "KEYSHIFT_WORKATO_TOKEN" || k == "KEYSHIFT_RATE_SCALE")
            .cloned()
            .collect();
        env.push(("KEYSHIFT_WORKATO_URL".into(), self.https_url()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> common::Done {
        let env = self.env(extra);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let sub = tempfile::tempdir_in(self.dir.path()).unwrap();
        let (d, took) = ks(sub.path(), args, &pairs);
        assert!(took < BOUND * 4, "{args:?} took {took:?}");
        std::mem::forget(sub); // kept with self.dir
        d
    }
}

#[test]
fn through_a_connect_proxy_to_a_server_signed_by_a_private_ca() {
    let s = Setup::new(&["127.0.0.1"]);
    let proxy = Proxy::start();
    let extra = [
        ("HTTPS_PROXY", proxy.url()),
        ("KEYSHIFT_CA_FILE", s.ca_pem.clone()),
    ];
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let d = s.run(&["export"], &extra);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert!(d.stdout.contains("40 access profile"), "{}", d.stdout);
    let tunnel = format!("CONNECT 127.0.0.1:{}", s.front.port);
    assert!(
        proxy.seen().iter().any(|l| l.starts_with(&tunnel)),
        "the proxy carried the run: {:?}",
        proxy.seen()
    );

    let d = s.run(&["doctor"], &extra);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let network = d
        .stdout
        .lines()
        .find(|l| l.starts_with("ok    network:"))
        .unwrap_or_else(|| panic!("{}", d.stdout));
    assert!(
        network.contains(&format!("https via {} (from HTTPS_PROXY)", proxy.url())),
        "{network}"
    );
    assert!(
        network.contains(&format!(
            "1 certificate(s) from KEYSHIFT_CA_FILE={}",
            s.ca_pem
        )),
        "{network}"
    );
    assert!(
        d.stdout.contains("ok    workato: reachable"),
        "{}",
        d.stdout
    );

    // Without the CA the same server is refused, naming the fix.
    let d = s.run(&["export"], &[("HTTPS_PROXY", &proxy.url())]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(d.stderr.contains("does not trust"), "{}", d.stderr);
    assert!(d.stderr.contains("KEYSHIFT_CA_FILE"), "{}", d.stderr);
}

#[test]
fn ssl_cert_file_is_trusted_too_and_lowercase_proxy_names_work() {
    let s = Setup::new(&["127.0.0.1", "localhost"]);
    let proxy = Proxy::start();
    let d = s.run(
        &["export"],
        &[("SSL_CERT_FILE", &s.ca_pem), ("https_proxy", &proxy.url())],
    );
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert!(!proxy.seen().is_empty(), "https_proxy was not used");
}

#[test]
fn a_certificate_for_another_name_is_refused_with_its_own_message() {
    let s = Setup::new(&["keyshift-other.invalid"]);
    let d = s.run(&["export"], &[("KEYSHIFT_CA_FILE", &s.ca_pem)]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr
            .contains("its certificate is not valid for the name 127.0.0.1"),
        "{}",
        d.stderr
    );
    assert!(!d.stderr.contains("attempt"), "not retried: {}", d.stderr);
}

#[test]
fn http_proxy_forwards_plain_http_and_no_proxy_goes_direct() {
    let s = Setup::new(&["127.0.0.1"]);
    let workato = s.sandbox.var("KEYSHIFT_WORKATO_URL");
    let proxy = Proxy::start();
    let d = s.run(
        &["export"],
        &[
            ("KEYSHIFT_WORKATO_URL", &workato),
            ("HTTP_PROXY", &proxy.url()),
        ],
    );
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let forwarded = format!("GET {workato}/api/");
    assert!(
        proxy.seen().iter().any(|l| l.starts_with(&forwarded)),
        "{:?}",
        proxy.seen()
    );

    let direct = Proxy::start();
    let d = s.run(
        &["export"],
        &[
            ("KEYSHIFT_WORKATO_URL", &workato),
            ("HTTP_PROXY", &direct.url()),
            ("NO_PROXY", "localhost,127.0.0.1"),
        ],
    );
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert!(
        direct.seen().is_empty(),
        "NO_PROXY ignored: {:?}",
        direct.seen()
    );
}

#[test]
fn a_proxy_that_refuses_is_named_and_its_password_never_shown() {
    let s = Setup::new(&["127.0.0.1"]);
    let port = closed_port();
    let proxy = format!("http://ops:pr0xy-pa55@127.0.0.1:{port}");
    let d = s.run(
        &["export"],
        &[("HTTPS_PROXY", &proxy), ("KEYSHIFT_CA_FILE", &s.ca_pem)],
    );
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr.contains(&format!(
            "the proxy http://***@127.0.0.1:{port} (from HTTPS_PROXY) refused the connection"
        )),
        "{}",
        d.stderr
    );
    let d2 = s.run(&["doctor"], &[("HTTPS_PROXY", &proxy)]);
    assert_eq!(d2.code, 1, "{}", d2.stdout);
    assert!(d2.stdout.contains("FAIL  workato: "), "{}", d2.stdout);
    for out in [&d.stdout, &d.stderr, &d2.stdout, &d2.stderr] {
        assert!(!out.contains("pr0xy-pa55"), "{out}");
    }
}
