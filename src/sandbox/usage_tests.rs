//! End-to-end tests of the usage evidence the sandbox records: the Workato gateway's API-logs
//! download (SD-W20–SD-W22), Bifrost inference and its request logs (SD-B16, SD-B17), the
//! Descope audit of access-key exchanges (SD-D17), and `/_sandbox/consumer-credentials`.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::config::{
    DEFAULT_BIFROST_TOKEN, DEFAULT_DESCOPE_MANAGEMENT_KEY, DEFAULT_DESCOPE_PROJECT_ID,
    DEFAULT_WORKATO_TOKEN,
};
use super::test_http::{send, Resp};
use super::workato::logs::CSV_HEADER;
use super::{Sandbox, SandboxOptions};

fn quiet() -> SandboxOptions {
    SandboxOptions {
        rate_scale: 0.0,
        profiles: 40,
        ..SandboxOptions::default()
    }
}

/// A config file removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(tag: &str, toml: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "keyshift-usage-test-{}-{tag}-{}.toml",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&path, toml).unwrap();
        Self(path)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct T {
    sb: Sandbox,
    http: reqwest::Client,
    _config: Option<ConfigFile>,
}

impl T {
    async fn start(opts: SandboxOptions) -> T {
        T {
            sb: Sandbox::start(opts).await.expect("sandbox starts"),
            http: reqwest::Client::new(),
            _config: None,
        }
    }

    async fn with_config(mut opts: SandboxOptions, toml: &str) -> T {
        let cfg = ConfigFile::new("cfg", toml);
        opts.config = Some(cfg.0.clone());
        let mut t = Self::start(opts).await;
        t._config = Some(cfg);
        t
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.sb.url()));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }

    async fn workato(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let r = self
            .call(
                method,
                &format!("/workato{path}"),
                Some(DEFAULT_WORKATO_TOKEN),
                &[],
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        r
    }

    async fn set_clock(&self, now: &str) {
        let r = self
            .call(
                Method::POST,
                "/_sandbox/clock",
                None,
                &[],
                Some(json!({ "now": now })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }

    /// The API-logs download as text (BOM kept), with its status.
    async fn csv(&self, query: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!(
                "{}/_sandbox/workato/api-logs.csv{query}",
                self.sb.url()
            ))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn bifrost(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call(
            method,
            &format!("/bifrost{path}"),
            Some(DEFAULT_BIFROST_TOKEN),
            &[],
            body,
        )
        .await
    }

    async fn infer(&self, vk: &str, model: &str) -> Resp {
        self.call(
            Method::POST,
            "/bifrost/v1/chat/completions",
            None,
            &[("x-bf-vk", vk)],
            Some(json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})),
        )
        .await
    }

    async fn descope(&self, path: &str, body: Value) -> Resp {
        let bearer = format!("{DEFAULT_DESCOPE_PROJECT_ID}:{DEFAULT_DESCOPE_MANAGEMENT_KEY}");
        self.call(
            Method::POST,
            &format!("/descope{path}"),
            Some(&bearer),
            &[],
            Some(body),
        )
        .await
    }

    async fn exchange(&self, cleartext: &str) -> Resp {
        let bearer = format!("{DEFAULT_DESCOPE_PROJECT_ID}:{cleartext}");
        self.call(
            Method::POST,
            "/descope/v1/auth/accesskey/exchange",
            Some(&bearer),
            &[],
            Some(json!({})),
        )
        .await
    }
}

/// CSV rows (header first) as field vectors, after checking BOM and CRLF.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let body = text.strip_prefix('\u{feff}').expect("a UTF-8 BOM");
    assert!(body.ends_with("\r\n"));
    assert!(!body.replace("\r\n", "").contains('\r'));
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes());
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn col(name: &str) -> usize {
    CSV_HEADER.iter().position(|h| *h == name).unwrap()
}

#[tokio::test]
async fn workato_gateway_calls_land_in_the_api_logs_download() {
    let t = T::start(quiet()).await;
    let colls = t.workato(Method::GET, "/api/api_collections", None).await;
    let coll = colls.body[0].clone();
    let (coll_id, coll_url, coll_name) = (
        coll["id"].as_u64().unwrap(),
        coll["url"].as_str().unwrap().to_owned(),
        coll["name"].as_str().unwrap().to_owned(),
    );
    let probe = format!("{coll_url}/keyshift-probe");

    // a v2 key, and a legacy token profile whose client's name needs quoting
    let r = t
        .workato(
            Method::POST,
            "/api/v2/api_clients",
            Some(json!({"name": "Orders · keys", "auth_type": "token",
                        "api_collection_ids": [coll_id]})),
        )
        .await;
    let v2 = r.body["data"]["id"].as_u64().unwrap();
    let r = t
        .workato(
            Method::POST,
            &format!("/api/v2/api_clients/{v2}/api_keys"),
            Some(json!({"name": "k", "active": true})),
        )
        .await;
    let key_token = r.body["data"]["auth_token"].as_str().unwrap().to_owned();
    let legacy_name = "Orders, \"legacy\"";
    let lc = t
        .workato(
            Method::POST,
            "/api/api_clients",
            Some(json!({ "name": legacy_name })),
        )
        .await;
    let lp = t
        .workato(
            Method::POST,
            "/api/api_access_profiles",
            Some(json!({"name": "p", "api_client_id": lc.body["id"],
                        "api_collection_ids": [coll_id], "auth_type": "token"})),
        )
        .await;
    let legacy_token = lp.body["secret"].as_str().unwrap().to_owned();
    let pid = lp.body["id"].as_u64().unwrap();

    // the consumer credentials list the legacy token with its client
    let creds = t
        .call(
            Method::GET,
            "/_sandbox/consumer-credentials",
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(creds.status, StatusCode::OK);
    let mine = creds.body["workato"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["profile_id"] == pid)
        .expect("the new legacy profile")
        .clone();
    assert_eq!(mine["token"], legacy_token.as_str());
    assert_eq!(mine["legacy_client_name"], legacy_name);
    assert_eq!(mine["auth_type"], "token");
    assert!(!creds.body["bifrost"].as_array().unwrap().is_empty());

    let gw = |token: Option<String>, peer: &'static str| {
        let url = probe.clone();
        let http = t.http.clone();
        async move {
            let mut req = http.get(url).header("x-sandbox-peer", peer);
            if let Some(tok) = token {
                req = req.header("api-token", tok);
            }
            req.send().await.unwrap().status()
        }
    };
    assert_eq!(gw(Some(legacy_token.clone()), "203.0.113.1").await, 200);
    assert_eq!(gw(Some(key_token.clone()), "203.0.113.2").await, 200);
    assert_eq!(gw(None, "203.0.113.3").await, 401);
    assert_eq!(gw(Some("0".repeat(64)), "203.0.113.4").await, 401);
    t.workato(
        Method::PUT,
        &format!("/api/api_access_profiles/{pid}/disable"),
        None,
    )
    .await;
    assert_eq!(gw(Some(legacy_token.clone()), "203.0.113.5").await, 401);

    let (status, text) = t.csv("").await;
    assert_eq!(status, StatusCode::OK);
    let rows = csv_rows(&text);
    assert_eq!(rows[0], CSV_HEADER);
    let rows = &rows[1..];
    assert_eq!(rows.len(), 5, "{text}");
    // newest first: the disabled profile's refusal still names the legacy client
    let ip = |r: &Vec<String>| r[col("IP")].clone();
    assert_eq!(
        rows.iter().map(ip).collect::<Vec<_>>(),
        [
            "203.0.113.5",
            "203.0.113.4",
            "203.0.113.3",
            "203.0.113.2",
            "203.0.113.1"
        ]
    );
    let pick = |r: &Vec<String>, names: &[&str]| -> Vec<String> {
        names.iter().map(|n| r[col(n)].clone()).collect()
    };
    let fields = [
        "Type",
        "Code",
        "Status",
        "Gateway code",
        "Status details",
        "API collection",
        "Endpoint",
        "Client",
        "Job details",
    ];
    let ok = |client: &str| {
        vec![
            "Success",
            "200",
            "OK",
            "",
            "",
            coll_name.as_str(),
            "keyshift-probe",
            client,
            "",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    let refused = |code: &str, details: &str, client: &str| {
        vec![
            "Error",
            "401",
            "Unauthorized",
            code,
            details,
            coll_name.as_str(),
            "keyshift-probe",
            client,
            "",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    assert_eq!(pick(&rows[4], &fields), ok(legacy_name));
    assert_eq!(pick(&rows[3], &fields), ok("Orders · keys"));
    assert_eq!(
        pick(&rows[2], &fields),
        refused("4012", "Missing token", "")
    );
    assert_eq!(
        pick(&rows[1], &fields),
        refused("4011", "Unrecognized token", "")
    );
    assert_eq!(
        pick(&rows[0], &fields),
        refused("4011", "Unrecognized token", legacy_name)
    );
    let date = &rows[0][col("Date")];
    assert!(
        date.starts_with("2025-11-15T00:") && date.ends_with("+00:00") && date.len() == 29,
        "{date}"
    );
    assert!(rows[0][col("Timing")].ends_with(" ms"));
    assert_eq!(rows[0][col("Delay")], "0 ms");

    // after the sunset a re-enabled legacy token is refused, still naming its client
    t.workato(
        Method::PUT,
        &format!("/api/api_access_profiles/{pid}/enable"),
        None,
    )
    .await;
    t.set_clock("2026-07-02T00:00:00Z").await;
    assert_eq!(gw(Some(legacy_token.clone()), "203.0.113.6").await, 401);
    assert_eq!(gw(Some(key_token.clone()), "203.0.113.7").await, 200);
    let (_, text) = t.csv("?from=2026-07-01T00:00:00Z").await;
    let rows = csv_rows(&text);
    assert_eq!(rows.len(), 3, "{text}");
    assert_eq!(
        pick(&rows[2], &fields),
        refused("4011", "Unrecognized token", legacy_name)
    );
    assert_eq!(rows[1][col("Client")], "Orders · keys");
    let (_, text) = t.csv("?to=2026-01-01T00:00:00Z&workspace=1").await;
    assert_eq!(csv_rows(&text).len(), 6);

    // unknown workspace, bad dates; the download is never counted
    assert_eq!(t.csv("?workspace=999").await.0, StatusCode::NOT_FOUND);
    assert_eq!(t.csv("?from=yesterday").await.0, StatusCode::BAD_REQUEST);
    let stats = t
        .call(Method::GET, "/_sandbox/stats", None, &[], None)
        .await;
    let routes = stats.body["requests"].to_string();
    assert!(!routes.contains("api-logs"), "{routes}");
    assert!(routes.contains("workato-apim"));
    t.sb.shutdown().await;
}

#[tokio::test]
async fn bifrost_inference_is_logged_per_virtual_key() {
    let t = T::start(quiet()).await;
    let creds = t
        .call(
            Method::GET,
            "/_sandbox/consumer-credentials",
            None,
            &[],
            None,
        )
        .await;
    let held = creds.body["bifrost"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["active"] == true)
        .expect("an active profile-managed key")
        .clone();
    let (old_value, old_id) = (
        held["value"].as_str().unwrap().to_owned(),
        held["virtual_key_id"].as_str().unwrap().to_owned(),
    );
    let r = t
        .bifrost(
            Method::POST,
            "/api/governance/virtual-keys",
            Some(json!({"name": "new key"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new_value = r.body["virtual_key"]["value"].as_str().unwrap().to_owned();
    let new_id = r.body["virtual_key"]["id"].as_str().unwrap().to_owned();

    let r = t.infer(&old_value, "gpt-4o").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["object"], "chat.completion");
    assert_eq!(r.body["model"], "gpt-4o");
    assert!(r.body["id"].is_string());
    assert_eq!(r.body["choices"][0]["message"]["role"], "assistant");

    // the holder's profile deactivated: its profile-managed key keeps working
    let profile = held["profile_id"].as_u64().unwrap();
    let r = t
        .bifrost(
            Method::PUT,
            &format!("/api/governance/access-profiles/{profile}/deactivate"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    t.set_clock("2025-11-16T00:00:00Z").await;
    assert_eq!(t.infer(&old_value, "gpt-4o-mini").await.status, 200);

    t.set_clock("2025-11-17T00:00:00Z").await;
    let r = t
        .call(
            Method::POST,
            "/bifrost/v1/chat/completions",
            Some(&new_value),
            &[],
            Some(json!({"model": "claude"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = t.infer("sk-bf-nobody", "gpt-4o").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["is_bifrost_error"], false);
    assert_eq!(r.body["status_code"], 401);
    assert!(r.body["error"]["message"].is_string());
    // an inactive standalone key: 401, logged under the key
    let r = t
        .bifrost(
            Method::PUT,
            &format!("/api/governance/virtual-keys/{new_id}"),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    t.set_clock("2025-11-18T00:00:00Z").await;
    assert_eq!(t.infer(&new_value, "claude").await.status, 401);

    let logs = |q: String| {
        let t = &t;
        async move {
            let r = t.bifrost(Method::GET, &format!("/api/logs{q}"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            r.body
        }
    };
    let all = logs(String::new()).await;
    assert_eq!(all["total"], 5);
    assert_eq!(all["limit"], 50);
    assert_eq!(all["offset"], 0);
    let models: Vec<&str> = all["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        models,
        ["claude", "gpt-4o", "claude", "gpt-4o-mini", "gpt-4o"]
    );
    let unknown = &all["logs"][1];
    assert_eq!(unknown["status"], "error");
    assert!(unknown.get("virtual_key_id").is_none());
    assert_eq!(unknown["provider"], "sandbox");

    let old = logs(format!("?virtual_key_ids={old_id}&order=asc")).await;
    assert_eq!(old["total"], 2);
    assert_eq!(old["logs"][0]["timestamp"], "2025-11-15T00:00:00Z");
    assert_eq!(old["logs"][0]["virtual_key_id"], old_id.as_str());
    assert_eq!(old["logs"][0]["status"], "success");
    assert_eq!(old["logs"][1]["model"], "gpt-4o-mini");
    let both = logs(format!("?virtual_key_ids={old_id},{new_id}&limit=1")).await;
    assert_eq!(both["total"], 4);
    assert_eq!(both["logs"].as_array().unwrap().len(), 1);
    assert_eq!(both["logs"][0]["virtual_key_id"], new_id.as_str());
    assert_eq!(both["logs"][0]["virtual_key_name"], "new key");
    assert_eq!(both["logs"][0]["status"], "error");
    let window = logs(format!(
        "?virtual_key_ids={new_id}&status=success&start_time=2025-11-16T12:00:00Z&end_time=2025-11-17T12:00:00%2B00:00"
    ))
    .await;
    assert_eq!(window["total"], 1);
    let page = logs("?offset=4&limit=10&sort_by=timestamp&order=desc".into()).await;
    assert_eq!(page["logs"].as_array().unwrap().len(), 1);
    assert_eq!(page["logs"][0]["model"], "gpt-4o");

    let stats = t
        .bifrost(
            Method::GET,
            &format!("/api/logs/stats?virtual_key_ids={old_id}"),
            None,
        )
        .await;
    assert_eq!(stats.body["total_requests"], 2);
    assert_eq!(stats.body["success_rate"], 100);
    let dropped = t.bifrost(Method::GET, "/api/logs/dropped", None).await;
    assert_eq!(dropped.body, json!({"dropped_requests": 0}));
    for bad in [
        "limit=1001",
        "limit=x",
        "order=up",
        "sort_by=name",
        "start_time=now",
    ] {
        let r = t
            .bifrost(Method::GET, &format!("/api/logs?{bad}"), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // management auth applies; the read-only token may read logs
    let r = t
        .call(Method::GET, "/bifrost/api/logs", None, &[], None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t
        .call(
            Method::GET,
            "/bifrost/api/logs",
            Some(super::config::DEFAULT_BIFROST_READONLY_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn bifrost_logging_off_or_dropped() {
    let t = T::with_config(quiet(), "[bifrost]\nlogging = false\n").await;
    let creds = t
        .call(
            Method::GET,
            "/_sandbox/consumer-credentials",
            None,
            &[],
            None,
        )
        .await;
    let value = creds.body["bifrost"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["active"] == true)
        .expect("an active profile-managed key")["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.infer(&value, "m").await.status, StatusCode::OK);
    let r = t.bifrost(Method::GET, "/api/logs", None).await;
    assert_eq!(r.body["logs"], json!([]));
    assert_eq!(r.body["total"], 0);
    t.sb.shutdown().await;

    let t = T::with_config(quiet(), "[bifrost]\nlog_drop_rate = 1.0\n").await;
    assert_eq!(t.infer("sk-bf-nobody", "m").await.status, 401);
    assert_eq!(t.infer("sk-bf-nobody", "m").await.status, 401);
    let r = t.bifrost(Method::GET, "/api/logs", None).await;
    assert_eq!(r.body["total"], 0);
    let r = t.bifrost(Method::GET, "/api/logs/dropped", None).await;
    assert_eq!(r.body, json!({"dropped_requests": 2}));
    t.sb.shutdown().await;
}

#[tokio::test]
async fn descope_exchanges_are_audited() {
    let t = T::start(quiet()).await;
    let r = t
        .descope("/v1/mgmt/accesskey/create", json!({"name": "consumer"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.body["key"]["id"].as_str().unwrap().to_owned();
    let clear = r.body["cleartext"].as_str().unwrap().to_owned();

    assert_eq!(t.exchange(&clear).await.status, StatusCode::OK);
    assert_eq!(t.exchange("not-a-key").await.status, 401);
    let r = t
        .descope("/v1/mgmt/accesskey/deactivate", json!({ "id": id }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    t.set_clock("2025-11-16T00:00:00Z").await;
    assert_eq!(t.exchange(&clear).await.status, 401);

    let r = t
        .descope("/v1/mgmt/audit/search", json!({ "userIds": [id] }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 2);
    let audits = r.body["audits"].as_array().unwrap();
    assert_eq!(audits[0]["action"], "LoginFailed");
    assert!(audits[0]["data"]["error_message"].is_string());
    let ok = &audits[1];
    assert_eq!(ok["action"], "LoginSucceed");
    assert_eq!(ok["method"], "accessKey");
    assert_eq!(ok["userId"], id.as_str());
    assert_eq!(ok["actorId"], id.as_str());
    assert_eq!(ok["projectId"], DEFAULT_DESCOPE_PROJECT_ID);
    assert_eq!(ok["remoteAddress"], "127.0.0.1");
    let t0 = chrono::DateTime::parse_from_rfc3339("2025-11-15T00:00:00Z")
        .unwrap()
        .timestamp_millis();
    let occurred = ok["occurred"].as_i64().unwrap();
    assert!((t0..t0 + 60_000).contains(&occurred), "{occurred}");

    let r = t
        .descope(
            "/v1/mgmt/audit/search",
            json!({"actions": ["LoginFailed"], "size": 1, "page": 1}),
        )
        .await;
    assert_eq!(r.body["total"], 2);
    assert_eq!(r.body["audits"][0]["userId"], "");
    let r = t
        .descope(
            "/v1/mgmt/audit/search",
            json!({"from": t0 + 86_400_000, "to": t0 + 2 * 86_400_000}),
        )
        .await;
    assert_eq!(r.body["total"], 1);
    let r = t
        .descope(
            "/v1/mgmt/audit/search",
            json!({"from": t0 - 31 * 86_400_000_i64}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["errorCode"].is_string());
    let r = t
        .descope("/v1/mgmt/audit/search", json!({"size": 1001}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn descope_audit_search_has_its_own_budget() {
    let t = T::start(SandboxOptions {
        rate_scale: 1.0,
        profiles: 40,
        ..SandboxOptions::default()
    })
    .await;
    for n in 0..10 {
        let r = t.descope("/v1/mgmt/audit/search", json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "call {n}: {}", r.body);
    }
    let r = t.descope("/v1/mgmt/audit/search", json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // other management calls have the project budget
    let r = t.descope("/v1/mgmt/accesskey/search", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    t.sb.shutdown().await;
}
