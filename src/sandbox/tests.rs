//! End-to-end tests of the sandbox over HTTP: a real server on `127.0.0.1:0`, driven with
//! reqwest, asserting on status codes, bodies, headers, `/_sandbox/stats` and
//! `/_sandbox/state` — what a vendor client would see.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::config::{ReadTokens, DEFAULT_WORKATO_TOKEN};
use super::test_http::{send, Resp};
use super::workato::model::sha256_hex;
use super::{Sandbox, SandboxOptions};

struct T {
    sb: Sandbox,
    http: reqwest::Client,
    token: String,
}

fn quiet() -> SandboxOptions {
    SandboxOptions {
        rate_scale: 0.0,
        profiles: 40,
        ..SandboxOptions::default()
    }
}

impl T {
    async fn start(opts: SandboxOptions) -> T {
        let sb = Sandbox::start(opts).await.expect("sandbox starts");
        T {
            sb,
            http: reqwest::Client::new(),
            token: DEFAULT_WORKATO_TOKEN.to_owned(),
        }
    }

    async fn raw(
        &self,
        method: Method,
        url: String,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }

    /// A Workato management call with the admin token.
    async fn w(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let url = format!("{}/workato{path}", self.sb.url());
        self.raw(method, url, Some(&self.token.clone()), body).await
    }

    async fn get(&self, path: &str) -> Resp {
        self.w(Method::GET, path, None).await
    }

    async fn sandbox(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_sandbox{path}", self.sb.url());
        let r = self.raw(method, url, None, body).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        r.body
    }

    async fn set_clock(&self, now: &str) {
        self.sandbox(Method::POST, "/clock", Some(json!({ "now": now })))
            .await;
    }

    async fn first_collection(&self) -> u64 {
        let r = self.get("/api/api_collections").await;
        r.body[0]["id"].as_u64().expect("a collection")
    }

    async fn new_client(&self, name: &str, auth_type: &str) -> u64 {
        let coll = self.first_collection().await;
        let mut body = json!({"name": name, "auth_type": auth_type, "api_collection_ids": [coll]});
        if auth_type == "jwt" {
            body["jwt_method"] = json!("hmac");
            body["jwt_secret"] = json!("shh");
        }
        let r = self
            .w(Method::POST, "/api/v2/api_clients", Some(body))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["data"]["id"].as_u64().expect("id")
    }
}

fn is_hex64(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 64
            && s.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

#[tokio::test]
async fn wrappers_and_pagination() {
    let t = T::start(quiet()).await;
    let l1 = t.get("/api/api_clients").await;
    assert_eq!(l1.status, StatusCode::OK);
    let legacy = l1.body.as_array().expect("bare array").len();
    assert!(legacy > 1);

    let v1 = t.get("/api/v2/api_clients?per_page=100").await;
    assert_eq!(v1.body["per_page"], 100);
    assert_eq!(v1.body["page"], 1);
    assert_eq!(v1.body["count"], legacy);
    assert!(v1.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["is_legacy"] == true && c["api_token"].is_null()));

    let page2 = t.get("/api/v2/api_clients?per_page=1&page=2").await;
    assert_eq!(page2.body["count"], legacy, "count is the total");
    assert_eq!(page2.body["per_page"], 1);
    assert_eq!(page2.body["data"].as_array().unwrap().len(), 1);
    let ids: Vec<u64> = v1.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending ids");
    assert_eq!(page2.body["data"][0]["id"], ids[1]);

    let past = t.get("/api/api_access_profiles?page=999").await;
    assert_eq!(past.body, json!([]));
    // per_page=101: the published spec's maximum is 100, so it is refused (PC-W3).
    for bad in ["page=0", "page=x", "per_page=101"] {
        let r = t.get(&format!("/api/v2/api_clients?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let profiles = t.get("/api/api_access_profiles?per_page=100").await;
    assert_eq!(profiles.body.as_array().unwrap().len(), 40);
    // Small pages, read to the end, give the same profiles in the same order; so do the
    // pages of one client's profiles.
    let all = profiles.body.as_array().unwrap().clone();
    let client = all[0]["api_client_id"].as_u64().unwrap();
    for (filter, want) in [
        (String::new(), all.clone()),
        (
            format!("&api_client_id={client}"),
            all.iter()
                .filter(|p| p["api_client_id"] == client)
                .cloned()
                .collect(),
        ),
    ] {
        let mut paged = Vec::new();
        for page in 1.. {
            let r = t
                .get(&format!(
                    "/api/api_access_profiles?per_page=7&page={page}{filter}"
                ))
                .await;
            let items = r.body.as_array().unwrap().clone();
            let n = items.len();
            paged.extend(items);
            if n < 7 {
                break;
            }
        }
        assert_eq!(paged, want, "pages of 7 {filter}");
    }
    assert!(profiles
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p.get("secret").is_none() && p.get("oauth_client_secret").is_none()));

    let c1 = t.get("/api/api_collections").await;
    let url = c1.body[0]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/workato-apim/acme/", t.sb.url())),
        "{url}"
    );
    t.sb.shutdown().await;
}

#[tokio::test]
async fn auth_headers_and_env() {
    let t = T::start(quiet()).await;
    let url = format!("{}/workato/api/v2/api_clients", t.sb.url());
    let r = t.raw(Method::GET, url.clone(), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, json!({"message": "Unauthorized"}));
    let r = t.raw(Method::GET, url, Some("nope"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let mu = format!("{}/workato/api/managed_users", t.sb.url());
    let r = t
        .raw(
            Method::GET,
            mu,
            Some(super::config::DEFAULT_WORKATO_DEVELOPER_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let resp = t
        .http
        .get(format!("{}/workato/api/api_clients", t.sb.url()))
        .bearer_auth(&t.token)
        .header("x-correlation-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-correlation-id"], "abc-123");
    assert_eq!(resp.headers()["date"], "Sat, 15 Nov 2025 00:00:00 GMT");

    let env = t.sb.env();
    let names: Vec<&str> = env.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "KEYSHIFT_SANDBOX_URL",
            "KEYSHIFT_WORKATO_URL",
            "KEYSHIFT_WORKATO_TOKEN",
            "KEYSHIFT_WORKATO_GATEWAY_URL",
            "KEYSHIFT_BIFROST_URL",
            "KEYSHIFT_BIFROST_TOKEN",
            "KEYSHIFT_DESCOPE_URL",
            "KEYSHIFT_DESCOPE_PROJECT_ID",
            "KEYSHIFT_DESCOPE_MANAGEMENT_KEY",
            "KEYSHIFT_SIGNING_SECRETS",
            "KEYSHIFT_RATE_SCALE",
        ]
    );
    assert_eq!(env[1].1, format!("{}/workato", t.sb.url()));
    assert_eq!(env[10].1, "0");
    let path = std::path::PathBuf::from(&env[9].1);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let served = t.sandbox(Method::GET, "/signing-keys", None).await;
    assert_eq!(file, served);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    t.sb.shutdown().await;
    assert!(!path.exists(), "private dir removed on shutdown");
}

#[tokio::test]
async fn v2_clients_and_keys() {
    let t = T::start(quiet()).await;
    let coll = t.first_collection().await;

    // validation
    let r = t
        .w(
            Method::POST,
            "/api/v2/api_clients",
            Some(json!({"name": "X", "auth_type": "token", "api_collection_ids": [999_999]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["errors"]["api_collection_ids"].is_array(),
        "{}",
        r.body
    );
    let r = t
        .w(Method::POST, "/api/v2/api_clients", Some(json!({"name": "X", "auth_type": "token", "api_collection_ids": [coll], "api_policy_id": 424242})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["errors"]["api_policy_id"].is_array());

    // create with ids as strings; unknown fields ignored
    let r = t
        .w(Method::POST, "/api/v2/api_clients", Some(json!({"name": "Partner portal", "auth_type": "token",
            "api_collection_ids": [coll.to_string()], "description": "keyshift:workato:1:group:abc", "whatever": 1})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let client = r.body["data"].clone();
    assert_eq!(client["is_legacy"], false);
    assert_eq!(client["api_collections"][0]["id"], coll);
    assert!(client["api_collections"][0]["name"].is_string());
    assert!(client.get("jwt_secret").is_none());
    assert!(client["created_at"].as_str().unwrap().ends_with("+00:00"));
    let cid = client["id"].as_u64().unwrap();

    let dup = t
        .w(Method::POST, "/api/v2/api_clients", Some(json!({"name": "Partner portal", "auth_type": "token", "api_collection_ids": [coll]})))
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        dup.body,
        json!({"message": "Validation failed", "errors": {"name": ["has already been taken"]}})
    );

    // V4: auth_type immutable, name + collections required
    let r = t
        .w(
            Method::PUT,
            &format!("/api/v2/api_clients/{cid}"),
            Some(json!({"name": "P", "api_collection_ids": [coll], "auth_type": "jwt"})),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"message": "Validation failed", "errors": {"auth_type": ["cannot be changed"]}})
    );
    let r = t
        .w(
            Method::PUT,
            &format!("/api/v2/api_clients/{cid}"),
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .w(Method::PUT, &format!("/api/v2/api_clients/{cid}"), Some(json!({"name": "Partner portal", "api_collection_ids": [coll], "auth_type": "token", "description": null})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["data"]["description"].is_null());

    // keys: secret only on create/refresh
    let keys = format!("/api/v2/api_clients/{cid}/api_keys");
    let r = t
        .w(Method::POST, &keys, Some(json!({"name": "Partner A", "active": true, "ip_allow_list": ["203.0.113.0/24"], "ip_deny_list": []})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let key = r.body["data"].clone();
    assert!(is_hex64(&key["auth_token"]), "{key}");
    assert_eq!(key["auth_type"], "token");
    let kid = key["id"].as_u64().unwrap();
    let listed = t.get(&keys).await;
    assert_eq!(listed.body["count"], 1);
    // SD-W9, PC-W1: the published model requires `auth_token` on reads; `full`
    // by default.
    assert_eq!(listed.body["data"][0]["auth_token"], key["auth_token"]);

    let bad_ip = t
        .w(
            Method::POST,
            &keys,
            Some(json!({"name": "B", "active": true, "ip_allow_list": ["10.0.0.0/33"]})),
        )
        .await;
    assert_eq!(bad_ip.status, StatusCode::BAD_REQUEST);
    assert!(bad_ip.body["errors"]["ip_allow_list"].is_array());
    let dup = t
        .w(
            Method::POST,
            &keys,
            Some(json!({"name": "Partner A", "active": true})),
        )
        .await;
    assert_eq!(
        dup.body["errors"]["name"],
        json!(["has already been taken"])
    );

    // K3 ignores active; K6/K5 idempotent
    let r = t
        .w(
            Method::PUT,
            &format!("{keys}/{kid}"),
            Some(json!({"name": "Partner A2", "active": false})),
        )
        .await;
    assert_eq!(r.body["data"]["active"], true);
    assert_eq!(r.body["data"]["name"], "Partner A2");
    // K3 shows the current token as reads do (full by default), never a new one.
    assert_eq!(r.body["data"]["auth_token"], key["auth_token"]);
    for action in ["disable", "disable", "enable", "enable"] {
        let r = t
            .w(Method::PUT, &format!("{keys}/{kid}/{action}"), None)
            .await;
        assert_eq!(r.body, json!({"success": true}));
    }
    let r = t
        .w(Method::PUT, &format!("{keys}/{kid}/refresh_secret"), None)
        .await;
    assert!(is_hex64(&r.body["data"]["auth_token"]));
    assert_ne!(r.body["data"]["auth_token"], key["auth_token"]);
    let fresh_token = r.body["data"]["auth_token"].as_str().unwrap().to_owned();

    // state shows only hashes
    let state = t.sandbox(Method::GET, "/state", None).await;
    let ws = &state["workato"]["workspaces"][0];
    let k = ws["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == kid)
        .unwrap();
    assert_eq!(k["auth_token_sha256"], sha256_hex(&fresh_token));
    assert_eq!(k["api_client_id"], cid);
    assert!(k.get("auth_token").is_none());
    assert!(!state.to_string().contains(&fresh_token));
    assert!(ws["access_profiles"][0]["secret_sha256"].is_string());
    assert!(ws["access_profiles"][0].get("secret").is_none());

    // 20 keys per client, then 400
    for i in 2..=20 {
        let r = t
            .w(
                Method::POST,
                &keys,
                Some(json!({"name": format!("k{i}"), "active": i % 2 == 0})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = t
        .w(
            Method::POST,
            &keys,
            Some(json!({"name": "k21", "active": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({"message": "Validation failed", "errors": {"base": ["API client can have at most 20 API keys"]}})
    );
    let got = t.get(&format!("/api/v2/api_clients/{cid}")).await;
    assert_eq!(got.body["data"]["total_api_keys_count"], 20);
    assert_eq!(got.body["data"]["active_api_keys_count"], 11);

    // K4, V5 cascade
    let r = t.w(Method::DELETE, &format!("{keys}/{kid}"), None).await;
    assert_eq!(r.body, json!({"success": true}));
    let r = t.w(Method::DELETE, &format!("{keys}/{kid}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, json!({"message": "Not found"}));
    let r = t
        .w(Method::DELETE, &format!("/api/v2/api_clients/{cid}"), None)
        .await;
    assert_eq!(r.body, json!({"success": true}));
    let state = t.sandbox(Method::GET, "/state", None).await;
    assert_eq!(state["workato"]["workspaces"][0]["api_keys"], json!([]));
    assert_eq!(state["workato"]["workspaces"][0]["v2_clients"], json!([]));
    assert_eq!(t.get(&keys).await.status, StatusCode::NOT_FOUND);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn oauth2_keys_carry_client_credentials() {
    let t = T::start(quiet()).await;
    let cid = t.new_client("OAuth partner", "oauth2").await;
    let keys = format!("/api/v2/api_clients/{cid}/api_keys");
    let r = t
        .w(
            Method::POST,
            &keys,
            Some(json!({"name": "o", "active": false})),
        )
        .await;
    let key = &r.body["data"];
    // The published model requires `auth_token`; an oauth2 key's is its client secret.
    assert_eq!(key["auth_token"], key["oauth_client_secret"]);
    assert!(is_hex64(&key["oauth_client_id"]));
    assert!(is_hex64(&key["oauth_client_secret"]));
    assert_eq!(key["active"], false);
    let kid = key["id"].as_u64().unwrap();
    let listed = t.get(&keys).await;
    assert_eq!(
        listed.body["data"][0]["oauth_client_id"],
        key["oauth_client_id"]
    );
    assert!(listed.body["data"][0].get("oauth_client_secret").is_none());
    // K7 works on inactive keys and keeps the client id
    let r = t
        .w(Method::PUT, &format!("{keys}/{kid}/refresh_secret"), None)
        .await;
    assert_eq!(r.body["data"]["oauth_client_id"], key["oauth_client_id"]);
    assert_ne!(
        r.body["data"]["oauth_client_secret"],
        key["oauth_client_secret"]
    );
    t.sb.shutdown().await;
}

#[tokio::test]
async fn legacy_routes_freeze_and_sunset() {
    let t = T::start(quiet()).await;
    let coll = t.first_collection().await;
    let r = t
        .w(
            Method::POST,
            "/api/api_clients",
            Some(json!({"name": "Fixture client", "project_id": "77"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["project_id"], 77);
    let lcid = r.body["id"].as_u64().unwrap();

    let r = t
        .w(
            Method::POST,
            "/api/api_access_profiles",
            Some(json!({"name": "Tok", "api_client_id": lcid.to_string(),
            "api_collection_ids": [coll], "auth_type": "token", "ip_allow_list": ["10.1.0.0/16"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(is_hex64(&r.body["secret"]));
    assert_eq!(r.body["active"], true);
    assert!(r.body["jwt_secret"].is_null());
    let pid = r.body["id"].as_u64().unwrap();
    let secret = r.body["secret"].as_str().unwrap().to_owned();

    let r = t
        .w(
            Method::POST,
            "/api/api_access_profiles",
            Some(json!({"name": "Tok", "api_client_id": lcid,
            "api_collection_ids": [coll], "auth_type": "token"})),
        )
        .await;
    assert_eq!(r.body["errors"]["name"], json!(["has already been taken"]));

    let r = t
        .w(Method::POST, "/api/api_access_profiles", Some(json!({"name": "Jwt", "api_client_id": lcid,
            "api_collection_ids": [coll], "auth_type": "jwt", "jwt_method": "hmac", "jwt_secret": "k"})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body["jwt_secret"].is_null(),
        "hmac secret never read back"
    );
    assert!(r.body.get("secret").is_none());
    let jwt_pid = r.body["id"].as_u64().unwrap();
    let r = t
        .w(
            Method::PUT,
            &format!("/api/api_access_profiles/{jwt_pid}/refresh_secret"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({"message": "Refresh is not supported for JWT or OIDC access profiles"})
    );

    let listed = t
        .get(&format!("/api/api_access_profiles?api_client_id={lcid}"))
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    assert!(listed.body[0].get("secret").is_none());
    assert_eq!(listed.body[0]["ip_allow_list"], json!(["10.1.0.0/16"]));

    let r = t
        .w(
            Method::PUT,
            &format!("/api/api_access_profiles/{pid}"),
            Some(json!({"name": "Tok 2"})),
        )
        .await;
    assert_eq!(r.body["name"], "Tok 2");
    assert_eq!(r.body["api_collection_ids"], json!([coll]));
    let r = t
        .w(
            Method::PUT,
            &format!("/api/api_access_profiles/{pid}/disable"),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"result": "success"}));

    // legacy clients in V1/V3/K1; v2 writes refused
    let v3 = t.get(&format!("/api/v2/api_clients/{lcid}")).await;
    assert_eq!(v3.body["data"]["is_legacy"], true);
    let k1 = t.get(&format!("/api/v2/api_clients/{lcid}/api_keys")).await;
    assert_eq!(k1.body["count"], 0);
    let k2 = t
        .w(
            Method::POST,
            &format!("/api/v2/api_clients/{lcid}/api_keys"),
            Some(json!({"name": "x", "active": true})),
        )
        .await;
    assert_eq!(
        k2.body,
        json!({"message": "Legacy API clients cannot be managed with this endpoint"})
    );

    // state: legacy credential only as a hash
    let state = t.sandbox(Method::GET, "/state", None).await;
    let p = state["workato"]["workspaces"][0]["access_profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == pid)
        .unwrap()
        .clone();
    assert_eq!(p["secret_sha256"], sha256_hex(&secret));
    assert_eq!(p["active"], false);

    // freeze
    t.set_clock("2025-12-01T00:00:00Z").await;
    let frozen = json!({"message": "Legacy API clients and access profiles can no longer be created or modified. Use API clients (v2) and API keys instead."});
    let r = t
        .w(
            Method::POST,
            "/api/api_clients",
            Some(json!({"name": "late"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, frozen);
    let r = t
        .w(
            Method::PUT,
            &format!("/api/api_access_profiles/{pid}/enable"),
            None,
        )
        .await;
    assert_eq!(r.body, frozen);
    assert_eq!(t.get("/api/api_clients").await.status, StatusCode::OK);
    assert_eq!(
        t.get("/api/api_access_profiles").await.status,
        StatusCode::OK
    );
    let resp = t
        .http
        .get(format!("{}/workato/api/api_clients", t.sb.url()))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["date"]
        .to_str()
        .unwrap()
        .starts_with("Mon, 01 Dec 2025"));

    // sunset
    t.set_clock("2026-07-01").await;
    let r = t.get("/api/api_clients").await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(
        r.body,
        json!({"message": "Legacy API clients and access profiles have been retired."})
    );
    let v1 = t.get("/api/v2/api_clients").await;
    assert_eq!(v1.body["count"], 0);
    assert_eq!(
        t.get(&format!("/api/v2/api_clients/{lcid}")).await.status,
        StatusCode::NOT_FOUND
    );
    t.sb.shutdown().await;
}

#[tokio::test]
async fn stats_count_route_patterns_and_statuses() {
    let t = T::start(quiet()).await;
    let cid = t.new_client("Stats", "token").await;
    for i in 0..3 {
        t.w(
            Method::POST,
            &format!("/api/v2/api_clients/{cid}/api_keys"),
            Some(json!({"name": format!("k{i}"), "active": true})),
        )
        .await;
    }
    let url = format!("{}/workato/api/api_clients", t.sb.url());
    t.raw(Method::GET, url, None, None).await;
    t.sandbox(Method::GET, "/state", None).await;
    let stats = t.sandbox(Method::GET, "/stats", None).await;
    let rows = stats["requests"].as_array().unwrap();
    let find = |method: &str, route: &str, status: u16| {
        rows.iter()
            .find(|r| r["method"] == method && r["route"] == route && r["status"] == status)
            .map(|r| r["count"].as_u64().unwrap())
    };
    assert_eq!(
        find("POST", "/api/v2/api_clients/:api_client_id/api_keys", 200),
        Some(3)
    );
    assert_eq!(find("GET", "/api/api_clients", 401), Some(1));
    assert_eq!(find("POST", "/api/v2/api_clients", 200), Some(1));
    assert!(rows.iter().all(|r| r["vendor"] == "workato"));
    assert!(rows
        .iter()
        .all(|r| !r["route"].as_str().unwrap().starts_with("/_sandbox")));
    t.sandbox(Method::POST, "/stats/reset", None).await;
    let stats = t.sandbox(Method::GET, "/stats", None).await;
    assert_eq!(stats, json!({"requests": []}));
    t.sb.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let dir = std::env::temp_dir().join(format!("keyshift-rl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("sandbox.toml");
    std::fs::write(&cfg, "[workato]\ndeveloper_rate_per_minute = 3\n").unwrap();
    let t = T::start(SandboxOptions {
        rate_scale: 1.0,
        profiles: 10,
        config: Some(cfg),
        ..SandboxOptions::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(t.get("/api/api_clients").await.status, StatusCode::OK);
    }
    let r = t.get("/api/v2/api_clients").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body, json!({"message": "Too Many Requests"}));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let stats = t.sandbox(Method::GET, "/stats", None).await;
    assert!(stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["status"] == 429 && r["route"] == "/api/v2/api_clients"));
    t.sb.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn fixture_is_loaded_leniently() {
    let dir = std::env::temp_dir().join(format!("keyshift-fx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fixture.json");
    let fixture = json!({"workato": {"workspaces": [
        {"id": 1, "name": "Acme",
         "api_collections": [{"id": 5, "name": "Orders API", "version": "1",
                              "url": "https://apim.workato.com/acme/orders-v1"}],
         "api_policies": [{"id": 2, "name": "Gold"}],
         "legacy_clients": [{"id": 100, "name": "Portal", "project_id": 9}],
         "access_profiles": [
            {"id": 200, "name": "Dup", "api_client_id": 100, "api_collection_ids": [5, 77],
             "auth_type": "basic", "ip_allow_list": ["300.1.2.3"], "secret": "legacy-token"},
            {"id": 201, "name": "Dup", "api_client_id": 100, "api_collection_ids": [5],
             "auth_type": "jwt", "jwt_method": "hmac", "jwt_secret": "hmac-secret", "active": false}
         ]},
        {"id": 2, "external_id": "A2300", "name": "Customer",
         "api_collections": [{"id": 6, "name": "Orders API"}]}
    ]}});
    std::fs::write(&path, fixture.to_string()).unwrap();
    let t = T::start(SandboxOptions {
        fixture: Some(path),
        rate_scale: 0.0,
        ..SandboxOptions::default()
    })
    .await;
    let profiles = t.get("/api/api_access_profiles").await;
    assert_eq!(profiles.body[0]["auth_type"], "basic");
    assert_eq!(profiles.body[0]["ip_allow_list"], json!(["300.1.2.3"]));
    assert_eq!(profiles.body[0]["api_collection_ids"], json!([5, 77]));
    assert_eq!(profiles.body[1]["name"], "Dup");
    assert_eq!(profiles.body[1]["active"], false);
    assert!(profiles.body[1]["jwt_secret"].is_null());
    let c1 = t.get("/api/api_collections").await;
    assert_eq!(
        c1.body[0]["url"],
        format!("{}/workato-apim/acme/orders-v1", t.sb.url())
    );
    let signing = t.sandbox(Method::GET, "/signing-keys", None).await;
    assert_eq!(
        signing["hmac"],
        json!([{"workspace": "1", "profile_id": 201, "secret": "hmac-secret"}])
    );
    // ids continue after the fixture's
    let r = t
        .w(
            Method::POST,
            "/api/v2/api_clients",
            Some(json!({"name": "New", "auth_type": "token", "api_collection_ids": [5]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["data"]["id"].as_u64().unwrap() > 100);

    // Embedded forms
    let mu = t.get("/api/managed_users").await;
    assert_eq!(mu.body["result"][0]["external_id"], "A2300");
    assert_eq!(mu.body["result"].as_array().unwrap().len(), 1);
    let by_ext = t.get("/api/managed_users/EA2300/api_collections").await;
    assert_eq!(by_ext.body["result"][0]["id"], 6);
    let by_id = t.get("/api/managed_users/2/api_clients").await;
    assert_eq!(by_id.body, json!({"result": []}));
    let admin_as_customer = t.get("/api/managed_users/1/api_clients").await;
    assert_eq!(admin_as_customer.status, StatusCode::NOT_FOUND);
    let v2 = t
        .w(
            Method::POST,
            "/api/v2/managed_users/EA2300/api_clients",
            Some(json!({"name": "New", "auth_type": "token", "api_collection_ids": [6]})),
        )
        .await;
    assert_eq!(v2.status, StatusCode::OK, "{}", v2.body);
    let wrong_ws = t
        .w(
            Method::POST,
            "/api/v2/managed_users/2/api_clients",
            Some(json!({"name": "Other", "auth_type": "token", "api_collection_ids": [5]})),
        )
        .await;
    assert_eq!(
        wrong_ws.status,
        StatusCode::BAD_REQUEST,
        "collection 5 is not the customer's"
    );
    t.sb.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn broken_fixture_names_the_field() {
    let dir = std::env::temp_dir().join(format!("keyshift-fxb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fixture.json");
    std::fs::write(
        &path,
        r#"{"workato":{"workspaces":[{"id":1,"access_profiles":[{"id":1,"api_client_id":"abc"}]}]}}"#,
    )
    .unwrap();
    let err = Sandbox::start(SandboxOptions {
        fixture: Some(path),
        ..SandboxOptions::default()
    })
    .await
    .err()
    .expect("refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("workato.workspaces[0].access_profiles[0].api_client_id"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn gateway_checks_tokens_collections_and_ips() {
    let t = T::start(quiet()).await;
    let c1 = t.get("/api/api_collections").await;
    let colls = c1.body.as_array().unwrap().clone();
    let (granted, other) = (&colls[0], &colls[1]);
    let granted_id = granted["id"].as_u64().unwrap();
    let r = t
        .w(
            Method::POST,
            "/api/v2/api_clients",
            Some(json!({"name": "GW", "auth_type": "token", "api_collection_ids": [granted_id]})),
        )
        .await;
    let cid = r.body["data"]["id"].as_u64().unwrap();
    let keys = format!("/api/v2/api_clients/{cid}/api_keys");
    let r = t
        .w(Method::POST, &keys, Some(json!({"name": "a", "active": true, "ip_allow_list": ["127.0.0.0/8", "203.0.113.0/24"], "ip_deny_list": ["203.0.113.66"]})))
        .await;
    let token = r.body["data"]["auth_token"].as_str().unwrap().to_owned();
    let kid = r.body["data"]["id"].as_u64().unwrap();
    let probe = format!("{}/orders/42", granted["url"].as_str().unwrap());

    let call = |headers: Vec<(&'static str, String)>, url: String| {
        let mut req = t.http.get(url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, b) = call(vec![("api-token", token.clone())], probe.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b,
        json!({"status": "ok", "api_client_id": cid, "api_key_id": kid})
    );
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("api-token:{token}"),
    );
    let (s, _) = call(
        vec![("authorization", format!("Basic {basic}"))],
        probe.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(vec![], format!("{probe}?api_token={token}")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = call(vec![], probe.clone()).await;
    assert_eq!(
        (s, b),
        (StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"}))
    );
    let (s, _) = call(vec![("api-token", "0".repeat(64))], probe.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // not granted / IP rules
    let other_probe = format!("{}/x", other["url"].as_str().unwrap());
    let (s, b) = call(vec![("api-token", token.clone())], other_probe).await;
    assert_eq!(
        (s, b),
        (StatusCode::FORBIDDEN, json!({"message": "Forbidden"}))
    );
    let (s, _) = call(
        vec![
            ("api-token", token.clone()),
            ("x-sandbox-peer", "198.51.100.1".into()),
        ],
        probe.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        vec![
            ("api-token", token.clone()),
            ("x-sandbox-peer", "203.0.113.5".into()),
        ],
        probe.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        vec![
            ("api-token", token.clone()),
            ("x-sandbox-peer", "203.0.113.66".into()),
        ],
        probe.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // inactive → 401; refreshed → old token dead
    t.w(Method::PUT, &format!("{keys}/{kid}/disable"), None)
        .await;
    let (s, _) = call(vec![("api-token", token.clone())], probe.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    t.w(Method::PUT, &format!("{keys}/{kid}/enable"), None)
        .await;
    let r = t
        .w(Method::PUT, &format!("{keys}/{kid}/refresh_secret"), None)
        .await;
    let fresh = r.body["data"]["auth_token"].as_str().unwrap().to_owned();
    let (s, _) = call(vec![("api-token", token.clone())], probe.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(vec![("api-token", fresh)], probe.clone()).await;
    assert_eq!(s, StatusCode::OK);

    // legacy profile credential works until the sunset
    let lc = t
        .w(Method::POST, "/api/api_clients", Some(json!({"name": "L"})))
        .await;
    let lp = t
        .w(
            Method::POST,
            "/api/api_access_profiles",
            Some(json!({"name": "p", "api_client_id": lc.body["id"],
            "api_collection_ids": [granted_id], "auth_type": "token"})),
        )
        .await;
    let legacy = lp.body["secret"].as_str().unwrap().to_owned();
    let (s, b) = call(vec![("api-token", legacy.clone())], probe.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["api_access_profile_id"], lp.body["id"]);
    t.set_clock("2026-07-01").await;
    let (s, _) = call(vec![("api-token", legacy)], probe.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let stats = t.sandbox(Method::GET, "/stats", None).await;
    assert!(stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["vendor"] == "workato-apim"
            && r["route"] == "/:prefix/:collection/*path"
            && r["status"] == 403));
    t.sb.shutdown().await;
}

#[tokio::test]
async fn gateway_oauth2_client_credentials() {
    let t = T::start(quiet()).await;
    let cid = t.new_client("OAuth GW", "oauth2").await;
    let r = t
        .w(
            Method::POST,
            &format!("/api/v2/api_clients/{cid}/api_keys"),
            Some(json!({"name": "o", "active": true})),
        )
        .await;
    let id = r.body["data"]["oauth_client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = r.body["data"]["oauth_client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_url = format!("{}/workato-apim/oauth2/token", t.sb.url());
    let resp = t
        .http
        .post(&token_url)
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let resp = t
        .http
        .post(&token_url)
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": "wrong"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = t
        .http
        .post(&token_url)
        .json(&json!({"grant_type": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let c1 = t.get("/api/api_collections").await;
    let probe = format!("{}/ping", c1.body[0]["url"].as_str().unwrap());
    let resp = t
        .http
        .get(&probe)
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn gateway_hmac_jwt_carries_the_key_token() {
    use hmac::{Hmac, Mac};
    let t = T::start(quiet()).await;
    let cid = t.new_client("JWT GW", "jwt").await; // hmac secret "shh"
    let r = t
        .w(
            Method::POST,
            &format!("/api/v2/api_clients/{cid}/api_keys"),
            Some(json!({"name": "j", "active": true})),
        )
        .await;
    let claim = r.body["data"]["auth_token"].as_str().unwrap().to_owned();
    let b64 =
        |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    let sign = |payload: Value, key: &str| {
        let input = format!(
            "{}.{}",
            b64(br#"{"alg":"HS256","typ":"JWT"}"#),
            b64(payload.to_string().as_bytes())
        );
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    };
    let c1 = t.get("/api/api_collections").await;
    let probe = format!("{}/ping", c1.body[0]["url"].as_str().unwrap());
    let good = sign(json!({"sub": claim}), "shh");
    let resp = t.http.get(&probe).bearer_auth(good).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let wrong_key = sign(json!({"sub": claim}), "nope");
    let resp = t
        .http
        .get(&probe)
        .bearer_auth(wrong_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let expired = sign(json!({"sub": claim, "exp": 1}), "shh");
    let resp = t
        .http
        .get(&probe)
        .bearer_auth(expired)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn faults_drop_connections_before_or_after_applying() {
    async fn post_client(t: &T, name: &str) -> Result<reqwest::Response, reqwest::Error> {
        let coll = {
            let state = t.sandbox(Method::GET, "/state", None).await;
            state["workato"]["workspaces"][0]["api_collections"][0]["id"].clone()
        };
        t.http
            .post(format!("{}/workato/api/v2/api_clients", t.sb.url()))
            .bearer_auth(&t.token)
            .json(&json!({"name": name, "auth_type": "token", "api_collection_ids": [coll]}))
            .send()
            .await
    }
    async fn v2_names(t: &T) -> Vec<Value> {
        let state = t.sandbox(Method::GET, "/state", None).await;
        state["workato"]["workspaces"][0]["v2_clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect()
    }

    let t = T::start(SandboxOptions {
        faults: Some("reset_rate=1".into()),
        ..quiet()
    })
    .await;
    assert!(post_client(&t, "lost").await.is_err(), "connection closed");
    assert!(v2_names(&t).await.is_empty(), "reset: nothing applied");
    t.sb.shutdown().await;

    let t = T::start(SandboxOptions {
        faults: Some("commit_drop_rate=1".into()),
        ..quiet()
    })
    .await;
    assert!(post_client(&t, "applied").await.is_err(), "no response");
    assert_eq!(
        v2_names(&t).await,
        vec![json!("applied")],
        "commit drop: applied"
    );
    t.sb.shutdown().await;

    let t = T::start(SandboxOptions {
        faults: Some("error_rate=1,latency=5ms".into()),
        ..quiet()
    })
    .await;
    let r = post_client(&t, "x").await.unwrap();
    assert!([502, 503, 504].contains(&r.status().as_u16()));
    assert!(v2_names(&t).await.is_empty());
    // the gateway and /_sandbox are never faulted
    let r = t
        .http
        .get(format!("{}/workato-apim/_idp/jwks.json", t.sb.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    t.sb.shutdown().await;

    let t = T::start(SandboxOptions {
        faults: Some("throttle_rate=1".into()),
        ..quiet()
    })
    .await;
    let r = post_client(&t, "x").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    t.sb.shutdown().await;
}

#[tokio::test]
async fn gateway_rsa_and_oidc_jwts() {
    use super::keys::KEYPAIRS;
    use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    let t = T::start(quiet()).await;
    let coll = t.first_collection().await;
    let b64 =
        |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    let sign = |payload: Value, pair: usize| {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": KEYPAIRS[pair].kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let body: String = KEYPAIRS[pair]
            .private_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap();
        let kp = RsaKeyPair::from_pkcs8(&der).unwrap();
        let mut sig = vec![0u8; kp.public().modulus_len()];
        kp.sign(
            &RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", b64(&sig))
    };
    let tr = &t;
    let make = |body: Value| async move {
        let t = tr;
        let r = t.w(Method::POST, "/api/v2/api_clients", Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let cid = r.body["data"]["id"].as_u64().unwrap();
        let k = t
            .w(
                Method::POST,
                &format!("/api/v2/api_clients/{cid}/api_keys"),
                Some(json!({"name": "k", "active": true})),
            )
            .await;
        k.body["data"]["auth_token"].as_str().unwrap().to_owned()
    };
    let rsa_token = make(
        json!({"name": "RSA", "auth_type": "jwt", "jwt_method": "rsa",
        "jwt_secret": KEYPAIRS[0].public_pem, "api_collection_ids": [coll],
        "access_profile_claim": "partner_token"}),
    )
    .await;
    let idp = format!("{}/workato-apim/_idp", t.sb.url());
    let oidc_token = make(json!({"name": "OIDC", "auth_type": "oidc",
        "oidc_jwks_uri": format!("{idp}/jwks.json"), "api_collection_ids": [coll],
        "required_claims": ["iss"], "allowed_issuers": [idp]}))
    .await;

    let c1 = t.get("/api/api_collections").await;
    let probe = format!("{}/ping", c1.body[0]["url"].as_str().unwrap());
    let status = |jwt: String| {
        let req = t.http.get(&probe).bearer_auth(jwt);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(
        status(sign(json!({"partner_token": rsa_token}), 0)).await,
        StatusCode::OK
    );
    assert_eq!(
        status(sign(json!({"partner_token": rsa_token}), 1)).await,
        StatusCode::UNAUTHORIZED,
        "wrong key"
    );
    assert_eq!(
        status(sign(json!({"sub": rsa_token}), 0)).await,
        StatusCode::UNAUTHORIZED,
        "claim is configured"
    );
    assert_eq!(
        status(sign(json!({"sub": oidc_token, "iss": idp}), 2)).await,
        StatusCode::OK
    );
    assert_eq!(
        status(sign(json!({"sub": oidc_token}), 2)).await,
        StatusCode::UNAUTHORIZED,
        "iss required"
    );
    let jwks: Value = t
        .http
        .get(format!("{idp}/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn propagation_delay_holds_new_keys_back() {
    let dir = std::env::temp_dir().join(format!("keyshift-pd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("sandbox.toml");
    std::fs::write(&cfg, "[workato]\npropagation_delay_ms = 400\n").unwrap();
    let t = T::start(SandboxOptions {
        config: Some(cfg),
        ..quiet()
    })
    .await;
    let cid = t.new_client("Delayed", "token").await;
    let r = t
        .w(
            Method::POST,
            &format!("/api/v2/api_clients/{cid}/api_keys"),
            Some(json!({"name": "k", "active": true})),
        )
        .await;
    let token = r.body["data"]["auth_token"].as_str().unwrap().to_owned();
    let c1 = t.get("/api/api_collections").await;
    let probe = format!("{}/ping", c1.body[0]["url"].as_str().unwrap());
    let status = || async {
        t.http
            .get(&probe)
            .header("api-token", &token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(status().await, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(status().await, StatusCode::OK);
    t.sb.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// SD-W9, PC-W1: reads carry `auth_token` in full, masked or not at all, by setting; clients
/// carry the published model's `active`, `active_since` and `auth_token` too.
#[tokio::test]
async fn read_tokens_full_masked_or_omitted() {
    for (mode, check) in [
        (ReadTokens::Full, "full"),
        (ReadTokens::Masked, "masked"),
        (ReadTokens::Omitted, "omitted"),
    ] {
        let t = T::start(SandboxOptions {
            read_tokens: Some(mode),
            ..quiet()
        })
        .await;
        let cid = t.new_client("Tokens", "token").await;
        let keys = format!("/api/v2/api_clients/{cid}/api_keys");
        let created = t
            .w(
                Method::POST,
                &keys,
                Some(json!({"name": "k", "active": true})),
            )
            .await;
        let secret = created.body["data"]["auth_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            is_hex64(&json!(secret)),
            "create always shows the secret ({check})"
        );
        let read = t.get(&keys).await.body["data"][0].clone();
        let client = t.get(&format!("/api/v2/api_clients/{cid}")).await.body["data"].clone();
        assert_eq!(client["active"], true, "{check}");
        assert!(client["active_since"].is_string(), "{check}");
        match mode {
            ReadTokens::Full => {
                assert_eq!(read["auth_token"], json!(secret));
                assert!(is_hex64(&client["auth_token"]));
            }
            ReadTokens::Masked => {
                let shown = read["auth_token"].as_str().unwrap();
                assert!(shown.starts_with("****") && secret.ends_with(&shown[shown.len() - 4..]));
                assert!(!shown.contains(&secret[..8]));
                assert!(client["auth_token"].as_str().unwrap().starts_with("****"));
            }
            ReadTokens::Omitted => {
                assert!(read.get("auth_token").is_none());
                assert!(client.get("auth_token").is_none());
            }
        }
    }
}

/// Names the published contract and docs/sandbox.md settle: non-blank, at most 255
/// characters, no control characters; an RSA `jwt_secret` must be a PEM public key.
#[tokio::test]
async fn names_and_rsa_keys_are_validated() {
    let t = T::start(quiet()).await;
    let coll = t.get("/api/api_collections").await.body[0]["id"].clone();
    let long = "x".repeat(256);
    for (name, problem) in [
        ("   ", "can't be blank"),
        (long.as_str(), "is too long"),
        ("bad\u{0}name", "control characters"),
    ] {
        let r = t
            .w(
                Method::POST,
                "/api/v2/api_clients",
                Some(json!({"name": name, "auth_type": "token", "api_collection_ids": [coll]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name:?}");
        assert!(
            r.body["errors"]["name"][0]
                .as_str()
                .unwrap()
                .contains(problem),
            "{}",
            r.body
        );
    }
    let ok = "y".repeat(255);
    let r = t
        .w(
            Method::POST,
            "/api/v2/api_clients",
            Some(json!({"name": ok, "auth_type": "token", "api_collection_ids": [coll]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "255 characters are allowed");
    for secret in [
        "hello",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ] {
        let r = t
            .w(
                Method::POST,
                "/api/v2/api_clients",
                Some(
                    json!({"name": format!("rsa {secret:.5}"), "auth_type": "jwt",
                            "jwt_method": "rsa", "jwt_secret": secret,
                            "api_collection_ids": [coll]}),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{secret:?}");
        assert!(r.body["errors"]["jwt_secret"].is_array(), "{}", r.body);
    }
    let pem = super::keys::KEYPAIRS[0].public_pem;
    let r = t
        .w(
            Method::POST,
            "/api/v2/api_clients",
            Some(
                json!({"name": "rsa good", "auth_type": "jwt", "jwt_method": "rsa",
                        "jwt_secret": pem, "api_collection_ids": [coll]}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
