//! End-to-end tests of the Bifrost emulator over HTTP: a real sandbox on `127.0.0.1:0`,
//! driven with reqwest, asserting on what a Bifrost client would see — status codes, bodies,
//! headers, `/_sandbox/stats` and `/_sandbox/state`.

use std::io::Write;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::sandbox::config::{
    DEFAULT_BIFROST_ADMIN_PASSWORD, DEFAULT_BIFROST_READONLY_TOKEN, DEFAULT_BIFROST_TOKEN,
};
use crate::sandbox::test_http::{send, Resp};
use crate::sandbox::workato::model::sha256_hex;
use crate::sandbox::{Sandbox, SandboxOptions};

const AP: &str = "/api/governance/access-profiles";
const VK: &str = "/api/governance/virtual-keys";
const QUOTA: &str = "/api/governance/virtual-keys/quota";

struct T {
    sb: Sandbox,
    http: reqwest::Client,
}

enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
    Vk(&'a str),
}

fn quiet() -> SandboxOptions {
    SandboxOptions {
        rate_scale: 0.0,
        profiles: 5,
        ..SandboxOptions::default()
    }
}

impl T {
    async fn start(opts: SandboxOptions) -> T {
        let sb = Sandbox::start(opts).await.expect("sandbox starts");
        T {
            sb,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: Method, path: &str, auth: Auth<'_>, body: Option<Value>) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}/bifrost{path}", self.sb.url()));
        req = match auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
            Auth::Vk(v) => req.header("x-bf-vk", v),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }

    /// A management call with the admin token.
    async fn b(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call(method, path, Auth::Bearer(DEFAULT_BIFROST_TOKEN), body)
            .await
    }

    async fn get(&self, path: &str) -> Resp {
        self.b(Method::GET, path, None).await
    }

    async fn quota(&self, value: &str) -> Resp {
        self.call(Method::GET, QUOTA, Auth::Vk(value), None).await
    }

    async fn sandbox(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}/_sandbox{path}", self.sb.url()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    }

    async fn state(&self) -> Value {
        self.sandbox(Method::GET, "/state", None).await["bifrost"].clone()
    }

    /// Create a standalone key; returns (id, value).
    async fn create_vk(&self, body: Value) -> (String, String) {
        let r = self.b(Method::POST, VK, Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        (
            r.body["virtual_key"]["id"].as_str().unwrap().to_owned(),
            r.body["virtual_key"]["value"].as_str().unwrap().to_owned(),
        )
    }
}

fn envelope(status: u16, message: &str) -> Value {
    json!({"is_bifrost_error": false, "status_code": status, "error": {"message": message}})
}

fn temp_file(contents: &str, suffix: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(suffix)
        .tempfile()
        .expect("temp file");
    f.write_all(contents.as_bytes()).expect("write");
    f
}

#[tokio::test]
async fn list_wrappers_and_paging_clamps() {
    let t = T::start(quiet()).await;
    let all = t.get(AP).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["count"], 40, "no paging parameter → every profile");
    assert_eq!(all.body["total_count"], 40);
    let ids: Vec<u64> = all.body["access_profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending ids");

    let big = t.get(&format!("{AP}?limit=500")).await;
    assert_eq!(big.body["limit"], 100);
    assert_eq!(big.body["count"], 40);
    let zero = t.get(&format!("{AP}?limit=0")).await;
    assert_eq!(zero.body["limit"], 25);
    assert_eq!(zero.body["count"], 25, "count = items in this page");
    assert_eq!(zero.body["total_count"], 40);
    let last = t.get(&format!("{AP}?limit=10&offset=35")).await;
    assert_eq!(last.body["count"], 5);
    assert_eq!(last.body["offset"], 35);
    assert_eq!(last.body["access_profiles"][0]["id"], ids[35]);
    // listAccessProfiles types limit/offset as integers and documents no 400: negative
    // values clamp (published-contract decision), non-integers are refused.
    let neg = t.get(&format!("{AP}?limit=-1&offset=-3")).await;
    assert_eq!(neg.status, StatusCode::OK);
    assert_eq!(neg.body["limit"], 25);
    assert_eq!(neg.body["offset"], 0);
    for bad in ["limit=ten", "offset=1.5", "limit="] {
        let r = t.get(&format!("{AP}?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.body["is_bifrost_error"], false);
        assert_eq!(r.body["status_code"], 400);
    }
    let inactive = t.get(&format!("{AP}?is_active=false")).await;
    assert!(inactive.body["access_profiles"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["is_active"] == false));
    let search = t.get(&format!("{AP}?search=support")).await;
    assert!(search.body["total_count"].as_u64().unwrap() >= 2);

    let vks = t.get(&format!("{VK}?limit=2")).await;
    assert_eq!(vks.body["count"], 2);
    assert_eq!(vks.body["limit"], 2);
    assert!(vks.body["total_count"].as_u64().unwrap() > 10);
    let mcp = t.get("/api/mcp/clients").await;
    assert_eq!(mcp.body["count"], 6);
    assert_eq!(mcp.body["clients"][0]["config"]["client_id"], "gh-1");
    assert!(mcp.body["clients"][0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "delete_repo"));
    t.sb.shutdown().await;
}

#[tokio::test]
async fn aliases_answer_with_deprecation_headers() {
    let t = T::start(quiet()).await;
    let canonical = t.get(&format!("{AP}/3")).await;
    assert_eq!(canonical.status, StatusCode::OK);
    assert!(canonical.headers.get("deprecation").is_none());
    let alias = t.get("/api/access-profiles/3").await;
    assert_eq!(alias.status, StatusCode::OK);
    assert_eq!(alias.body, canonical.body);
    assert_eq!(alias.headers["deprecation"], "true");
    assert_eq!(
        alias.headers["link"],
        "</api/governance/access-profiles/3>; rel=\"successor-version\""
    );
    assert_eq!(alias.headers["x-bifrost-deprecated-route"], "true");
    assert_eq!(
        alias.headers["x-bifrost-route-removal"],
        "following-major-release"
    );
    let list = t.get("/api/access-profiles?limit=5").await;
    assert_eq!(list.body["count"], 5);
    assert_eq!(list.headers["deprecation"], "true");

    let u = t.get("/api/governance/users/u-alice/access-profiles").await;
    assert_eq!(u.status, StatusCode::OK);
    let copies = u.body["access_profiles"].as_array().unwrap();
    assert!(!copies.is_empty());
    assert!(copies.iter().all(|c| c["user_id"] == "u-alice"
        && c["virtual_key_values"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v.as_str().unwrap().contains("****"))));
    let ua = t.get("/api/users/u-alice/access-profiles").await;
    assert_eq!(ua.body, u.body);
    assert_eq!(
        ua.headers["link"],
        "</api/governance/users/u-alice/access-profiles>; rel=\"successor-version\""
    );
    let nobody = t
        .get("/api/governance/users/u-nobody/access-profiles")
        .await;
    assert_eq!(nobody.body, json!({"access_profiles": []}));

    let detail = t.get(&format!("{AP}/14")).await;
    assert_eq!(detail.body["access_profile"]["is_active"], false);
    assert!(detail.body["user_count"].as_u64().unwrap() >= 1);
    assert!(!detail.body["roles"].as_array().unwrap().is_empty());
    assert_eq!(detail.body["roles"][0]["access_profile_id"], 14);
    let missing = t.get(&format!("{AP}/999")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, envelope(404, "access profile not found"));
    t.sb.shutdown().await;
}

#[tokio::test]
async fn management_auth_bearer_basic_and_scopes() {
    let t = T::start(quiet()).await;
    let r = t.call(Method::GET, AP, Auth::None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, envelope(401, "Unauthorized"));
    let r = t
        .call(Method::GET, AP, Auth::Bearer("bfst-nope"), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t
        .call(
            Method::GET,
            AP,
            Auth::Basic("admin", DEFAULT_BIFROST_ADMIN_PASSWORD),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t
        .call(Method::GET, AP, Auth::Basic("admin", "wrong"), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let ro = Auth::Bearer(DEFAULT_BIFROST_READONLY_TOKEN);
    assert_eq!(
        t.call(Method::GET, VK, ro, None).await.status,
        StatusCode::OK
    );
    let r = t
        .call(
            Method::POST,
            VK,
            Auth::Bearer(DEFAULT_BIFROST_READONLY_TOKEN),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body,
        envelope(403, "missing permission VirtualKeys:Create")
    );
    let r = t
        .call(
            Method::PUT,
            &format!("{AP}/1/deactivate"),
            Auth::Bearer(DEFAULT_BIFROST_READONLY_TOKEN),
            None,
        )
        .await;
    assert_eq!(
        r.body,
        envelope(403, "missing permission AccessProfiles:Update")
    );

    // A virtual key is no management credential, and a management token is no virtual key.
    let (_, value) = t.create_vk(json!({"name": "auth-probe"})).await;
    let r = t.call(Method::GET, AP, Auth::Bearer(&value), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t
        .call(
            Method::GET,
            QUOTA,
            Auth::Bearer(DEFAULT_BIFROST_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The published 401 of the quota call is `{"error": "<string>"}`.
    assert_eq!(r.body, json!({"error": "invalid virtual key"}));
    let r = t.call(Method::GET, QUOTA, Auth::Bearer(&value), None).await;
    assert_eq!(r.status, StatusCode::OK, "Bearer form of Q1");

    t.sb.shutdown().await;
}

#[tokio::test]
async fn profile_create_and_partial_update() {
    let t = T::start(quiet()).await;
    let body = json!({"name": "Keyshift Test", "description": "d", "tags": ["a", "b"],
        "provider_configs": [{"provider_name": "openai", "allowed_models": ["gpt-4o"],
            "budgets": [{"max_limit": 10, "reset_duration": "1M"}]}],
        "budgets": [{"max_limit": 100, "reset_duration": "1M"}],
        "rate_limit": {"token_max_limit": 1000, "token_reset_duration": "1d"},
        "calendar_aligned": true, "auto_rotation_interval": "30d",
        "mcp_servers": [{"mcp_server_id": "gh-1"}],
        "mcp_tool_overrides": [{"mcp_client_id": "gh-1", "tool_name": "delete_repo", "action": "exclude"}]});
    let r = t.b(Method::POST, AP, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let p = &r.body["access_profile"];
    assert_eq!(p["is_active"], false, "new profiles are inactive");
    assert_eq!(p["version"], 1);
    assert_eq!(
        p["auto_rotation_interval"],
        30 * 24 * 3_600_000_000_000i64,
        "\"30d\" = 30 days in ns"
    );
    assert!(
        p["next_rotation_at"].is_string(),
        "defaults to now + interval"
    );
    assert_eq!(p["budgets"][0]["scope"], "total");
    assert_eq!(
        p["provider_configs"][0]["budgets"][0]["scope"],
        "provider:openai"
    );
    let id = p["id"].as_u64().unwrap();
    let path = format!("{AP}/{id}");

    let dup = t
        .b(Method::POST, AP, Some(json!({"name": "Keyshift Test"})))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(
        dup.body,
        envelope(409, "access profile name already exists")
    );
    let r = t
        .b(Method::POST, AP, Some(json!({"description": "no name"})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .b(Method::POST, AP, Some(json!({"name": "bad", "mcp_tool_overrides": [{"mcp_client_id": "gh-1", "tool_name": "x"}]})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // omitted keeps, explicit null clears
    let r = t
        .b(Method::PUT, &path, Some(json!({"description": null, "rate_limit": null,
            "calendar_aligned": null, "auto_rotation_interval": "", "is_active": true, "version": 99})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let p = &r.body["access_profile"];
    assert_eq!(p["description"], Value::Null);
    assert!(
        p.get("rate_limit").is_none(),
        "no rate limit: left out (the schema has an object, not null)"
    );
    assert_eq!(p["calendar_aligned"], false);
    assert_eq!(p["auto_rotation_interval"], 0);
    assert_eq!(
        p["next_rotation_at"],
        Value::Null,
        "interval off: no schedule"
    );
    assert_eq!(p["tags"], json!(["a", "b"]));
    assert_eq!(
        p["provider_configs"][0]["allowed_models"],
        json!(["gpt-4o"])
    );
    assert_eq!(p["mcp_tool_overrides"][0]["action"], "exclude");
    assert_eq!(p["is_active"], false, "is_active is not accepted on update");
    assert_eq!(p["version"], 2);
    let r = t
        .b(Method::PUT, &path, Some(json!({"name": "Engineering"})))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Lists are not nullable in UpdateAccessProfileRequest: `null` is refused, `[]` clears.
    let r = t.b(Method::PUT, &path, Some(json!({"tags": null}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t.b(Method::PUT, &path, Some(json!({"tags": []}))).await;
    assert_eq!(r.body["access_profile"]["tags"], json!([]));

    // activate/deactivate are idempotent
    for _ in 0..2 {
        let r = t.b(Method::PUT, &format!("{path}/activate"), None).await;
        assert_eq!(r.body["access_profile"]["is_active"], true);
    }
    let v = t.get(&path).await.body["access_profile"]["version"].clone();
    let r = t.b(Method::PUT, &format!("{path}/activate"), None).await;
    assert_eq!(r.body["access_profile"]["version"], v);
    let r = t.b(Method::PUT, &format!("{path}/deactivate"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["access_profile"]["is_active"], false);
    let r = t
        .b(Method::PUT, &format!("{AP}/424242/deactivate"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // delete is refused while user copies exist
    let r = t.b(Method::DELETE, &format!("{AP}/14"), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = t.b(Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::OK);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn update_size_limits_apply_on_update_only() {
    let t = T::start(quiet()).await;
    // #6 holds 58 tags, #12 holds 104 provider configs (seeded).
    let r = t
        .b(
            Method::PUT,
            &format!("{AP}/6"),
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("50 tags"));
    let r = t
        .b(
            Method::PUT,
            &format!("{AP}/6"),
            Some(json!({"tags": ["ok"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "trimmed → updatable");
    let r = t
        .b(
            Method::PUT,
            &format!("{AP}/12"),
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("100 provider configs"));
    // deactivation ignores the limits
    let r = t.b(Method::PUT, &format!("{AP}/12/deactivate"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    // create has no limits
    let tags: Vec<String> = (0..60).map(|i| format!("t{i}")).collect();
    let budgets: Vec<Value> = (0..101)
        .map(|_| json!({"max_limit": 1, "reset_duration": "1d"}))
        .collect();
    let r = t
        .b(
            Method::POST,
            AP,
            Some(json!({"name": "Big", "tags": tags, "budgets": budgets})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["access_profile"]["id"].as_u64().unwrap();
    let r = t
        .b(
            Method::PUT,
            &format!("{AP}/{id}"),
            Some(json!({"tags": []})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "still 101 budgets");
    t.sb.shutdown().await;
}

#[tokio::test]
async fn virtual_key_create_rules_and_deny_by_default() {
    let t = T::start(quiet()).await;
    let state = t.state().await;
    let openai_key = state["provider_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["provider"] == "openai")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"name": "Engineering VK", "description": "keyshift: access profile 1",
        "provider_configs": [
            {"provider": "anthropic", "allowed_models": ["claude-sonnet-4"], "key_ids": ["*"],
             "budgets": [{"max_limit": 50, "reset_duration": "1M"}],
             "rate_limit": {"request_max_limit": 600, "request_reset_duration": "1h"}},
            {"provider": "openai", "allowed_models": ["*"], "key_ids": [openai_key]},
            {"provider": "gemini", "allowed_models": ["gemini-2.5-pro"]}],
        "budgets": [{"max_limit": 200, "reset_duration": "1M"}, {"max_limit": 900, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 2}}],
        "rate_limit": {"token_max_limit": 2000000, "token_reset_duration": "1d"},
        "calendar_aligned": true, "budget": {"max_limit": 1},
        "mcp_configs": [{"mcp_client_name": "github", "tools_to_execute": ["list_repos"]}],
        "metadata": {"keyshift.source": "keyshift:bifrost:default:profile:1", "tag.eng": "1"}});
    let r = t.b(Method::POST, VK, Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Virtual key created successfully");
    let k = &r.body["virtual_key"];
    let id = k["id"].as_str().unwrap().to_owned();
    let value = k["value"].as_str().unwrap().to_owned();
    assert!(value.starts_with("sk-bf-") && !value.contains('*'));
    assert_eq!(id.len(), 36);
    assert!(k.get("team_id").is_none() && k.get("customer_id").is_none());
    let pcs = k["provider_configs"].as_array().unwrap();
    assert_eq!(pcs[0]["allow_all_keys"], true);
    assert_eq!(pcs[0]["keys"], json!([]));
    assert_eq!(pcs[0]["rate_limit"]["request_max_limit"], 600);
    assert_eq!(pcs[1]["allow_all_keys"], false);
    assert_eq!(pcs[1]["keys"][0]["key_id"], openai_key.as_str());
    assert_eq!(pcs[2]["allow_all_keys"], false, "omitted key_ids → none");
    assert_eq!(pcs[2]["keys"], json!([]));
    assert_eq!(k["budgets"].as_array().unwrap().len(), 2);
    assert_eq!(k["budgets"][1]["reset_config"]["quarter_start_month"], 2);
    assert_eq!(k["mcp_configs"][0]["mcp_client"]["name"], "github");
    assert!(k["config_hash"].as_str().unwrap().len() == 64);

    // reads mask the value
    let r = t.get(&format!("{VK}/{id}")).await;
    let masked = r.body["virtual_key"]["value"].as_str().unwrap();
    assert_eq!(masked, format!("sk-bf-****{}", &value[value.len() - 4..]));
    let r = t
        .get(&format!(
            "{VK}?metadata_keyshift.source=keyshift:bifrost:default:profile:1"
        ))
        .await;
    assert_eq!(r.body["total_count"], 1);
    assert_eq!(r.body["virtual_keys"][0]["id"], id.as_str());
    assert!(r.body["virtual_keys"][0]["value"]
        .as_str()
        .unwrap()
        .contains("****"));
    let r = t
        .get(&format!(
            "{VK}?metadata_keyshift.source=keyshift:bifrost:default:profile:1&metadata_tag.eng=2"
        ))
        .await;
    assert_eq!(r.body["total_count"], 0, "metadata filters are ANDed");

    let cases = [
        (
            json!({"name": "Engineering VK"}),
            409,
            "virtual key name already exists",
        ),
        (
            json!({"name": "Interns"}),
            409,
            "virtual key name already exists",
        ),
        (json!({"name": "  "}), 400, "name is required"),
        (
            json!({"name": "x1", "team_id": "t", "customer_id": "c"}),
            400,
            "a virtual key cannot belong to both a team and a customer",
        ),
        (
            json!({"name": "x2", "provider_configs": [{"provider": "openai", "key_ids": ["nope"]}]}),
            400,
            "failed to create provider config: key not found: nope",
        ),
        (
            json!({"name": "x3", "mcp_configs": [{"mcp_client_name": "gitlab"}]}),
            400,
            "mcp client not found: gitlab",
        ),
        (
            json!({"name": "x4", "calendar_aligned": true, "budgets": [{"max_limit": 1, "reset_duration": "1h"}]}),
            400,
            "calendar_aligned cannot be used with a budget reset_duration of 1h",
        ),
    ];
    for (body, status, message) in cases {
        let r = t.b(Method::POST, VK, Some(body.clone())).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        assert_eq!(r.body, envelope(status, message), "{body}");
    }
    for bad in [
        json!({"name": "y1", "metadata": {"bad key": "v"}}),
        json!({"name": "y2", "budgets": [{"max_limit": -1, "reset_duration": "1M"}]}),
        json!({"name": "y3", "budgets": [{"max_limit": 1, "reset_duration": "1M"}, {"max_limit": 2, "reset_duration": "1M"}]}),
        json!({"name": "y4", "provider_configs": [{"provider": "openai", "allowed_models": ["*", "gpt-4o"]}]}),
        json!({"name": "y5", "mcp_configs": [{"mcp_client_name": "github"}, {"mcp_client_name": "github"}]}),
        json!({"name": "y6", "provider_configs": [{"allowed_models": ["gpt-4o"]}]}),
        json!({"name": "y7", "expires_at": "2001-01-01T00:00:00Z"}),
        json!({"name": "y8", "rate_limit": {"request_max_limit": 1.5, "request_reset_duration": "1h"}}),
    ] {
        let r = t.b(Method::POST, VK, Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let r = t
        .call(Method::POST, VK, Auth::Bearer(DEFAULT_BIFROST_TOKEN), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "empty body: no name");
    let r = t
        .http
        .post(format!("{}/bifrost{VK}", t.sb.url()))
        .bearer_auth(DEFAULT_BIFROST_TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    t.sb.shutdown().await;
}

/// PC-B16: a provider config naming a provider the instance has not configured (no provider
/// key of it) is refused on V2 and V4 with Bifrost's text, and nothing changes.
#[tokio::test]
async fn a_provider_the_instance_lacks_is_refused() {
    let t = T::start(quiet()).await;
    let state = t.state().await;
    let configured: Vec<&str> = state["provider_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["provider"].as_str().unwrap())
        .collect();
    assert!(configured.contains(&"openai") && !configured.contains(&"cohere"));
    // #12's region providers got keys of their own, so the seeded profiles stay migratable.
    assert!(configured.contains(&"openai-region-006"));
    let before = t.state().await["virtual_keys"].clone();
    let r = t
        .b(
            Method::POST,
            VK,
            Some(json!({"name": "p1", "provider_configs": [
                {"provider": "openai", "key_ids": ["*"]},
                {"provider": "cohere", "allowed_models": ["command-r"], "key_ids": ["*"]}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body, envelope(400, "invalid provider name: cohere"));
    // Surrounding spaces are trimmed before the check, as for every provider name.
    let r = t
        .b(
            Method::POST,
            VK,
            Some(json!({"name": "p2", "provider_configs": [{"provider": " cohere "}]})),
        )
        .await;
    assert_eq!(r.body, envelope(400, "invalid provider name: cohere"));
    assert_eq!(t.state().await["virtual_keys"], before, "nothing created");
    // V4: the same refusal, and the key keeps its configs.
    let (id, _) = t
        .create_vk(json!({"name": "p3", "provider_configs": [
            {"provider": "openai-region-006", "key_ids": ["*"]}]}))
        .await;
    let path = format!("{VK}/{id}");
    let r = t
        .b(
            Method::PUT,
            &path,
            Some(json!({"provider_configs": [{"provider": "cohere"}]})),
        )
        .await;
    assert_eq!(r.body, envelope(400, "invalid provider name: cohere"));
    let k = t.get(&path).await.body["virtual_key"].clone();
    assert_eq!(k["provider_configs"][0]["provider"], "openai-region-006");
    assert_eq!(k["provider_configs"].as_array().unwrap().len(), 1);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn rotate_changes_the_value_and_the_old_one_fails_quota() {
    let t = T::start(quiet()).await;
    let (id, old) = t
        .create_vk(
            json!({"name": "Rotating", "budgets": [{"max_limit": 5, "reset_duration": "1d"}],
            "provider_configs": [{"provider": "openai", "key_ids": ["*"]}]}),
        )
        .await;
    let q = t.quota(&old).await;
    assert_eq!(q.status, StatusCode::OK);
    assert_eq!(q.body["virtual_key_name"], "Rotating");
    assert_eq!(q.body["is_active"], true);
    assert_eq!(q.body["budgets"][0]["max_limit"], 5);
    assert_eq!(q.body["rate_limit"], Value::Null);
    assert_eq!(q.body["provider_configs"][0]["keys"], Value::Null);
    assert_eq!(q.body["provider_configs"][0]["allow_all_keys"], true);

    let r = t.b(Method::POST, &format!("{VK}/{id}/rotate"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["message"], "Virtual key rotated successfully");
    assert_eq!(r.body["virtual_key"]["id"], id.as_str());
    let new = r.body["virtual_key"]["value"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let q = t.quota(&old).await;
    assert_eq!(q.status, StatusCode::UNAUTHORIZED);
    assert_eq!(q.body, json!({"error": "invalid virtual key"}));
    assert_eq!(t.quota(&new).await.status, StatusCode::OK);

    // inactive keys answer 200 with is_active false, and can still be rotated
    let r = t
        .b(
            Method::PUT,
            &format!("{VK}/{id}"),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let q = t.quota(&new).await;
    assert_eq!(q.status, StatusCode::OK);
    assert_eq!(q.body["is_active"], false);
    let r = t.b(Method::POST, &format!("{VK}/{id}/rotate"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let newer = r.body["virtual_key"]["value"].as_str().unwrap().to_owned();
    assert_eq!(t.quota(&newer).await.body["is_active"], false);

    assert_eq!(
        t.call(Method::GET, QUOTA, Auth::None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.quota("sk-bf-unknown").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = t.b(Method::POST, &format!("{VK}/nope/rotate"), None).await;
    assert_eq!(r.body, envelope(404, "Virtual key not found"));

    let r = t.b(Method::DELETE, &format!("{VK}/{id}"), None).await;
    assert_eq!(
        r.body,
        json!({"message": "Virtual key deleted successfully"})
    );
    assert_eq!(t.quota(&newer).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.get(&format!("{VK}/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    t.sb.shutdown().await;
}

#[tokio::test]
async fn virtual_key_update_semantics() {
    let t = T::start(quiet()).await;
    let (id, _) = t
        .create_vk(json!({"name": "Upd", "team_id": "team-1",
            "provider_configs": [{"provider": "openai", "key_ids": ["*"],
                                  "budgets": [{"max_limit": 5, "reset_duration": "1d"}]},
                                 {"provider": "anthropic", "key_ids": ["*"]}],
            "mcp_configs": [{"mcp_client_name": "github", "tools_to_execute": ["*"]}],
            "rate_limit": {"token_max_limit": 100, "token_reset_duration": "1d"},
            "budgets": [{"max_limit": 10, "reset_duration": "1M"}],
            "metadata": {"a": "1"}}))
        .await;
    let path = format!("{VK}/{id}");
    let before = t.get(&path).await.body["virtual_key"].clone();
    let openai_pc = before["provider_configs"][0]["id"].clone();
    let budget_id = before["budgets"][0]["id"].clone();

    // team cleared when both owners are omitted; rate limit merged; metadata kept
    let r = t
        .b(
            Method::PUT,
            &path,
            Some(json!({"description": "d2",
            "rate_limit": {"request_max_limit": 5, "request_reset_duration": "1h"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message"], "Virtual key updated successfully");
    let k = &r.body["virtual_key"];
    assert!(k.get("team_id").is_none(), "omitted owner is cleared");
    assert_eq!(k["rate_limit"]["token_max_limit"], 100);
    assert_eq!(k["rate_limit"]["request_max_limit"], 5);
    assert_eq!(k["metadata"], json!({"a": "1"}));
    assert!(k["value"].as_str().unwrap().contains("****"));
    assert_eq!(k["provider_configs"].as_array().unwrap().len(), 2);

    // reconcile: keep openai by id (full desired state), drop anthropic, add mistral
    let r = t
        .b(Method::PUT, &path, Some(json!({"customer_id": "c-1",
            "provider_configs": [{"id": openai_pc, "provider": "openai", "key_ids": ["*"]},
                                 {"provider": "mistral"}],
            "budgets": [{"max_limit": 20, "reset_duration": "1M"}, {"max_limit": 1, "reset_duration": "1w"}],
            "rate_limit": {}, "metadata": {}, "mcp_configs": []})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let k = &r.body["virtual_key"];
    assert_eq!(k["customer_id"], "c-1");
    let pcs = k["provider_configs"].as_array().unwrap();
    assert_eq!(pcs.len(), 2);
    assert_eq!(pcs[0]["id"], openai_pc);
    assert_eq!(
        pcs[0]["budgets"],
        json!([]),
        "item is the full desired state"
    );
    assert_eq!(pcs[1]["provider"], "mistral");
    assert_eq!(pcs[1]["allow_all_keys"], false);
    assert!(k.get("rate_limit").is_none(), "{{}} removes the rate limit");
    assert_eq!(k["metadata"], json!({}));
    assert_eq!(k["mcp_configs"], json!([]));
    assert_eq!(
        k["budgets"][0]["id"], budget_id,
        "matched by reset_duration"
    );
    assert_eq!(k["budgets"][0]["max_limit"], 20);

    let r = t
        .b(
            Method::PUT,
            &path,
            Some(json!({"provider_configs": [{"id": 999999, "provider": "openai"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .b(
            Method::PUT,
            &path,
            Some(json!({"mcp_configs": [{"mcp_client_name": "nope"}]})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "unknown MCP client: 400, never 5xx"
    );
    let r = t
        .b(Method::PUT, &path, Some(json!({"name": "ci-bot"})))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = t
        .b(Method::PUT, &format!("{VK}/missing"), Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // profile-managed keys accept only name/description
    let state = t.state().await;
    let managed = state["virtual_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["is_access_profile_managed"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mpath = format!("{VK}/{managed}");
    let r = t
        .b(Method::PUT, &mpath, Some(json!({"is_active": false})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .b(
            Method::PUT,
            &mpath,
            Some(json!({"name": "renamed managed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn state_hashes_secrets_and_stats_use_route_patterns() {
    let t = T::start(quiet()).await;
    let (id, value) = t.create_vk(json!({"name": "Hashed"})).await;
    t.get(&format!("{AP}/1")).await;
    t.get("/api/access-profiles/1").await;
    t.quota(&value).await;
    t.call(Method::GET, AP, Auth::None, None).await;

    let state = t.sandbox(Method::GET, "/state", None).await;
    let text = state.to_string();
    assert!(!text.contains(&value), "no clear value in the state");
    let b = &state["bifrost"];
    for key in [
        "access_profiles",
        "user_access_profiles",
        "virtual_keys",
        "mcp_clients",
        "provider_keys",
    ] {
        assert!(b[key].is_array(), "{key}");
    }
    let k = b["virtual_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    assert_eq!(k["value_sha256"], sha256_hex(&value));
    assert!(k["value"].as_str().unwrap().starts_with("sk-bf-****"));
    assert!(b["provider_keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["value_sha256"].as_str().unwrap().len() == 64 && p.get("value").is_none()));
    assert!(b["access_profiles"][0]["roles"].is_array());
    assert!(b["mcp_clients"][0]["id"].is_u64());

    let stats = t.sandbox(Method::GET, "/stats", None).await;
    let find = |route: &str, status: u64| {
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["vendor"] == "bifrost" && r["route"] == route && r["status"] == status)
            .map(|r| r["count"].as_u64().unwrap())
    };
    assert_eq!(
        find("/api/governance/access-profiles/:profile_id", 200),
        Some(1)
    );
    assert_eq!(find("/api/access-profiles/:profile_id", 200), Some(1));
    assert_eq!(find("/api/governance/virtual-keys", 200), Some(1));
    assert_eq!(find("/api/governance/virtual-keys/quota", 200), Some(1));
    assert_eq!(find("/api/governance/access-profiles", 401), Some(1));
    t.sb.shutdown().await;
}

#[tokio::test]
async fn unimplemented_and_unknown_routes() {
    let t = T::start(quiet()).await;
    for (m, p) in [
        (Method::POST, format!("{AP}/1/clone")),
        (Method::GET, format!("{AP}/1/versions")),
        (
            Method::DELETE,
            "/api/governance/users/u-alice/access-profiles/1".to_owned(),
        ),
        (Method::GET, "/api/api-keys".to_owned()),
    ] {
        let r = t.b(m, &p, None).await;
        assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{p}");
        assert_eq!(r.body["status_code"], 501);
    }
    let r = t.get(&format!("{VK}/some-id/reveal")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["is_bifrost_error"], false);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn rate_limit_per_credential_but_not_on_quota() {
    let cfg = temp_file("[bifrost]\nrate_per_minute = 3\n", ".toml");
    let t = T::start(SandboxOptions {
        rate_scale: 1.0,
        profiles: 5,
        config: Some(cfg.path().to_owned()),
        ..SandboxOptions::default()
    })
    .await;
    let (_, value) = t.create_vk(json!({"name": "limited"})).await;
    t.get(AP).await;
    t.get(AP).await;
    let r = t.get(AP).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.body,
        json!({"is_bifrost_error": false, "status_code": 429,
               "error": {"type": "rate_limited", "message": "Too Many Requests"}})
    );
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(secs >= 1);
    // another credential has its own window; the quota call is not limited
    let r = t
        .call(
            Method::GET,
            AP,
            Auth::Basic("admin", DEFAULT_BIFROST_ADMIN_PASSWORD),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(t.quota(&value).await.status, StatusCode::OK);
    }
    t.sb.shutdown().await;
}

#[tokio::test]
async fn faults_hit_management_routes_but_not_quota() {
    let value = "sk-bf-fixture-known-0001";
    let fixture = temp_file(
        &json!({"bifrost": {"virtual_keys": [{"name": "faulty", "value": value}]}}).to_string(),
        ".json",
    );
    let t = T::start(SandboxOptions {
        faults: Some("error_rate=1".to_owned()),
        fixture: Some(fixture.path().to_owned()),
        ..quiet()
    })
    .await;
    let r = t.get(AP).await;
    assert!([502, 503, 504].contains(&r.status.as_u16()), "{}", r.status);
    assert_eq!(r.body["is_bifrost_error"], false);
    assert_eq!(r.body["status_code"], r.status.as_u16());
    let q = t.quota(value).await;
    assert_eq!(q.status, StatusCode::OK);
    assert_eq!(q.body["virtual_key_name"], "faulty");
    t.sb.shutdown().await;
}

#[tokio::test]
async fn fixture_replaces_generation() {
    let doc = json!({"bifrost": {
        "mcp_clients": [{"config": {"client_id": "gh-1", "name": "github"}, "tools": ["list_repos", "delete_repo"]}],
        "provider_keys": [{"id": "pk-1", "provider": "openai", "value": "sk-upstream"}],
        "access_profiles": [{"id": 12, "name": "Engineering", "tags": ["eng"],
            "mcp_servers": [{"mcp_server_id": "gh-1"}],
            "mcp_tool_overrides": [{"mcp_client_id": "gh-1", "tool_name": "delete_repo", "action": "exclude"}]},
            {"id": 13, "name": "Engineering"}],
        "user_access_profiles": [{"id": 40, "user_id": "u-1", "parent_profile_id": 12,
                                   "virtual_key_ids": ["vk-1"]}],
        "virtual_keys": [{"id": "vk-1", "name": "Engineering (u-1)", "value": "sk-bf-known-abcd",
                          "is_access_profile_managed": true}]
    }});
    let fixture = temp_file(&doc.to_string(), ".json");
    let t = T::start(SandboxOptions {
        fixture: Some(fixture.path().to_owned()),
        ..quiet()
    })
    .await;
    let all = t.get(AP).await;
    assert_eq!(all.body["total_count"], 2);
    assert_eq!(all.body["access_profiles"][1]["name"], "Engineering");
    assert_eq!(all.body["access_profiles"][0]["is_active"], true);
    let d = t.get(&format!("{AP}/12")).await;
    assert_eq!(d.body["user_count"], 1);
    let u = t.get("/api/governance/users/u-1/access-profiles").await;
    assert_eq!(
        u.body["access_profiles"][0]["virtual_key_values"]["vk-1"],
        "sk-bf-****abcd"
    );
    assert_eq!(t.quota("sk-bf-known-abcd").await.status, StatusCode::OK);
    let r = t
        .b(Method::POST, VK, Some(json!({"name": "n", "provider_configs": [{"provider": "openai", "key_ids": ["pk-1"]}]})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let created = t.b(Method::POST, AP, Some(json!({"name": "New"}))).await;
    assert_eq!(
        created.body["access_profile"]["id"], 41,
        "ids continue after the largest"
    );
    t.sb.shutdown().await;
}

#[tokio::test]
async fn propagation_delay_and_rotation_lag() {
    let cfg = temp_file(
        "[bifrost]\npropagation_delay_ms = 60000\nrotation_lag_ms = 60000\n",
        ".toml",
    );
    let t = T::start(SandboxOptions {
        config: Some(cfg.path().to_owned()),
        ..quiet()
    })
    .await;
    let (id, old) = t.create_vk(json!({"name": "slow"})).await;
    assert_eq!(
        t.quota(&old).await.status,
        StatusCode::UNAUTHORIZED,
        "not yet"
    );
    let now = t.sandbox(Method::GET, "/clock", None).await["now"]
        .as_str()
        .unwrap()
        .to_owned();
    let later = crate::sandbox::clock::parse_instant(&now).unwrap() + chrono::Duration::seconds(61);
    t.sandbox(
        Method::POST,
        "/clock",
        Some(json!({"now": later.to_rfc3339()})),
    )
    .await;
    assert_eq!(t.quota(&old).await.status, StatusCode::OK);
    let r = t.b(Method::POST, &format!("{VK}/{id}/rotate"), None).await;
    let new = r.body["virtual_key"]["value"].as_str().unwrap().to_owned();
    assert_eq!(t.quota(&old).await.status, StatusCode::OK, "cluster lag");
    assert_eq!(t.quota(&new).await.status, StatusCode::UNAUTHORIZED);
    let later = later + chrono::Duration::seconds(61);
    t.sandbox(
        Method::POST,
        "/clock",
        Some(json!({"now": later.to_rfc3339()})),
    )
    .await;
    assert_eq!(t.quota(&old).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.quota(&new).await.status, StatusCode::OK);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn seeded_inventory_is_deterministic_and_shaped() {
    let a = T::start(SandboxOptions { seed: 9, ..quiet() }).await;
    let b = T::start(SandboxOptions { seed: 9, ..quiet() }).await;
    let (sa, sb) = (a.state().await, b.state().await);
    assert_eq!(sa, sb);
    let profiles = sa["access_profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 40);
    assert!(profiles.iter().any(|p| p["rate_limit"].is_null()));
    assert!(profiles.iter().any(|p| p["is_active"] == false));
    assert!(profiles
        .iter()
        .any(|p| p["tags"].as_array().unwrap().len() > 50));
    assert!(profiles
        .iter()
        .any(|p| p["provider_configs"].as_array().unwrap().len() > 100));
    assert!(profiles.iter().any(|p| p["mcp_tool_overrides"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["action"] == "exclude")));
    let mut names: Vec<&str> = profiles
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert!(names.windows(2).any(|w| w[0] == w[1]), "a duplicate name");
    assert!(!sa["user_access_profiles"].as_array().unwrap().is_empty());
    assert_eq!(sa["mcp_clients"].as_array().unwrap().len(), 6);
    a.sb.shutdown().await;
    b.sb.shutdown().await;
}

/// The published schemas (accessprofiles.yaml, governance.yaml, mcp.yaml): objects where the
/// schema has an object (never `null`), enums never `null`, and the fields it requires.
#[tokio::test]
async fn read_shapes_follow_the_published_schemas() {
    let t = T::start(quiet()).await;
    // A profile without a rate limit, and one whose rate limit sets only requests.
    let r = t
        .b(
            Method::POST,
            AP,
            Some(
                json!({"name": "Shapes", "provider_configs": [{"provider_name": "openai"}],
                "rate_limit": {"request_max_limit": 10, "request_reset_duration": "1h"}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let p = &r.body["access_profile"];
    assert!(p["provider_configs"][0].get("rate_limit").is_none());
    let rl = &p["rate_limit"];
    assert_eq!(rl["request_reset_duration"], "1h");
    assert!(
        rl.get("token_reset_duration").is_none(),
        "an unset enum is left out, not null: {rl}"
    );
    assert_eq!(
        rl["token_max_limit"],
        Value::Null,
        "max limits are nullable"
    );
    let listed = t.get(AP).await.body["access_profiles"].clone();
    for p in listed.as_array().unwrap() {
        assert!(!p["rate_limit"].is_null() || p.get("rate_limit").is_none());
        for pc in p["provider_configs"].as_array().unwrap() {
            assert!(pc.get("rate_limit").is_none_or(Value::is_object), "{pc}");
        }
    }

    // Virtual-key budgets and rate limits carry config_hash, created_at, updated_at.
    let (id, value) = t
        .create_vk(json!({"name": "Shaped VK",
            "provider_configs": [{"provider": "openai", "key_ids": ["*"],
                "budgets": [{"max_limit": 5, "reset_duration": "1d"}],
                "rate_limit": {"request_max_limit": 5, "request_reset_duration": "1h"}}],
            "budgets": [{"max_limit": 9, "reset_duration": "1M"}],
            "rate_limit": {"request_max_limit": 7, "request_reset_duration": "1h"},
            "mcp_configs": [{"mcp_client_name": "postgres", "tools_to_execute": ["query"]}]}))
        .await;
    let k = t.get(&format!("{VK}/{id}")).await.body["virtual_key"].clone();
    let pc = &k["provider_configs"][0];
    for obj in [
        &k["budgets"][0],
        &k["rate_limit"],
        &pc["budgets"][0],
        &pc["rate_limit"],
    ] {
        for f in ["id", "config_hash", "created_at", "updated_at"] {
            assert!(obj[f].is_string(), "{f} missing in {obj}");
        }
    }
    for f in [
        "token_current_usage",
        "request_current_usage",
        "token_last_reset",
        "request_last_reset",
    ] {
        assert!(!k["rate_limit"][f].is_null(), "{f}");
    }
    assert!(
        k["rate_limit"].get("token_max_limit").is_none()
            && k["rate_limit"].get("token_reset_duration").is_none(),
        "not nullable in the VK schema: left out when unset"
    );
    let q = t.quota(&value).await;
    assert!(
        q.body["budgets"][0]["config_hash"].is_string(),
        "{}",
        q.body
    );
    assert!(q.body["rate_limit"]["created_at"].is_string());

    // MCP clients: stdio clients have no connection_string; vk_configs name the key.
    let m = t.get("/api/mcp/clients").await.body;
    let pg = m["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["config"]["client_id"] == "pg-1")
        .unwrap()
        .clone();
    assert_eq!(pg["config"]["connection_type"], "stdio");
    assert!(pg["config"].get("connection_string").is_none(), "{pg}");
    assert!(pg["vk_configs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["virtual_key_name"] == "Shaped VK"));
    t.sb.shutdown().await;
}

#[tokio::test]
async fn request_bodies_are_refused_as_the_published_schemas_say() {
    let t = T::start(quiet()).await;
    let (id, _) = t
        .create_vk(json!({"name": "Owned", "team_id": "team-1"}))
        .await;
    let path = format!("{VK}/{id}");
    // An empty body is not `{}`: refused, and the owner is kept.
    for (method, p) in [
        (Method::PUT, path.as_str()),
        (Method::PUT, &format!("{AP}/1")),
        (Method::POST, VK),
        (Method::POST, AP),
    ] {
        let r = t
            .call(method.clone(), p, Auth::Bearer(DEFAULT_BIFROST_TOKEN), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {p}");
        assert_eq!(r.body["is_bifrost_error"], false);
    }
    assert_eq!(t.get(&path).await.body["virtual_key"]["team_id"], "team-1");
    // Limits of 0, nulls where the schema has none, names and allow-lists.
    let long = "n".repeat(256);
    for bad in [
        json!({"name": "z1", "rate_limit": {"request_max_limit": 0, "request_reset_duration": "1h"}}),
        json!({"name": "z2", "provider_configs": [{"provider": "openai", "rate_limit": {"token_max_limit": 0, "token_reset_duration": "1d"}}]}),
        json!({"name": "z3", "budgets": [{"max_limit": 0, "reset_duration": "1M"}]}),
        json!({"name": "z4", "description": null}),
        json!({"name": "z5", "provider_configs": null}),
        json!({"name": "z6", "rate_limit": {"token_max_limit": null}}),
        json!({"name": long}),
        json!({"name": "tab\there"}),
        json!({"name": "z7", "mcp_configs": [{"mcp_client_name": "github", "tools_to_execute": ["*", "list_repos"]}]}),
        json!({"name": "z8", "provider_configs": [{"provider": "openai", "key_ids": ["*", "*"]}]}),
        json!({"name": "z9", "budgets": [{"max_limit": 1, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 1, "extra": 1}}]}),
    ] {
        let r = t.b(Method::POST, VK, Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(r.body["error"]["message"].is_string());
    }
    let r = t
        .b(Method::POST, VK, Some(json!({"name": "ok-weight", "provider_configs": [{"provider": "openai", "weight": null}]})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "weight is nullable: {}", r.body);
    for bad in [
        json!({"name": "a1", "rate_limit": {"token_max_limit": 0, "token_reset_duration": "1d"}}),
        json!({"name": "a2", "description": null}),
        json!({"name": "a3", "rate_limit": null}),
        json!({"name": "a4", "tags": null}),
        json!({"name": "a5", "provider_configs": [{"provider_name": "openai", "rate_limit": null}]}),
        json!({"name": "a6", "rate_limit": {"token_max_limit": 5, "token_reset_duration": null}}),
        json!({"name": "a7\u{0}"}),
        json!({"name": "a8", "auto_rotation_interval": "59m"}),
        json!({"name": "a9", "auto_rotation_interval": "366d"}),
        json!({"name": "a10", "auto_rotation_interval": "soon"}),
        json!({"name": "a11", "auto_rotation_interval": -3_600_000_000_000i64}),
        json!({"name": "a12", "next_rotation_at": "2099-01-01T00:00:00Z"}),
        json!({"name": "a13", "auto_rotation_interval": "1d", "next_rotation_at": "2001-01-01T00:00:00Z"}),
    ] {
        let r = t.b(Method::POST, AP, Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    // Every published form of the rotation interval.
    for (sent, ns) in [
        (json!("30d"), 30 * 24 * 3_600_000_000_000i64),
        (json!("12h"), 12 * 3_600_000_000_000),
        (json!("1h30m"), 5_400_000_000_000),
        (json!(3_600_000_000_000i64), 3_600_000_000_000),
        (json!("365d"), 365 * 24 * 3_600_000_000_000),
    ] {
        let name = format!("rot {sent}");
        let r = t
            .b(
                Method::POST,
                AP,
                Some(json!({"name": name, "auto_rotation_interval": sent})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{sent}: {}", r.body);
        assert_eq!(r.body["access_profile"]["auto_rotation_interval"], ns);
        let pid = r.body["access_profile"]["id"].as_u64().unwrap();
        // null clears next_rotation_at only while the interval is off
        let r = t
            .b(
                Method::PUT,
                &format!("{AP}/{pid}"),
                Some(json!({"next_rotation_at": null})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        let r = t
            .b(
                Method::PUT,
                &format!("{AP}/{pid}"),
                Some(json!({"auto_rotation_interval": 0, "next_rotation_at": null})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["access_profile"]["next_rotation_at"], Value::Null);
    }
    // Update nullables clear.
    let r = t
        .b(
            Method::PUT,
            &format!("{AP}/1"),
            Some(json!({"rate_limit": null, "description": null, "calendar_aligned": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    t.sb.shutdown().await;
}

/// The `client_id`s M1 answers for query `q`.
async fn client_ids(t: &T, q: &str) -> Vec<String> {
    let r = t.get(&format!("/api/mcp/clients{q}")).await;
    assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
    r.body["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["config"]["client_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn mcp_client_filters_and_bounds() {
    let t = T::start(quiet()).await;
    let (vk, _) = t
        .create_vk(json!({"name": "Uses jira", "mcp_configs": [{"mcp_client_name": "jira"}]}))
        .await;
    assert_eq!(client_ids(&t, "").await.len(), 6);
    assert_eq!(client_ids(&t, "?search=GIT").await, ["gh-1"]);
    assert_eq!(client_ids(&t, "?server=slack-1").await, ["slack-1"]);
    assert_eq!(
        client_ids(&t, "?connection_type=stdio,sse").await,
        ["slack-1", "pg-1", "fs-1"]
    );
    assert_eq!(client_ids(&t, "?state=unstable").await, ["web-1"]);
    assert_eq!(client_ids(&t, "?state=healthy").await.len(), 5);
    assert_eq!(client_ids(&t, "?state=healthy,unstable").await.len(), 6);
    assert_eq!(
        client_ids(&t, &format!("?virtual_keys={vk}")).await,
        ["jira-1"]
    );
    assert!(client_ids(&t, "?all_virtual_keys=true").await.is_empty());
    assert_eq!(
        client_ids(&t, "?disabled=false&code_mode=false")
            .await
            .len(),
        6
    );
    assert!(client_ids(&t, "?auth_type=oauth").await.is_empty());
    let r = t.get("/api/mcp/clients?limit=2&offset=1").await;
    assert_eq!(r.body["count"], 2);
    assert_eq!(r.body["total_count"], 6);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "offset=-1",
        "disabled=maybe",
        "code_mode=1",
        "all_virtual_keys=yes",
        "disabled=",
        "limit=",
    ] {
        let r = t.get(&format!("/api/mcp/clients?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.body["status_code"], 400);
    }
    for bad in ["from_memory=perhaps", "from_memory="] {
        let r = t.get(&format!("{VK}?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = t.get(&format!("{AP}?is_active=")).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "an empty boolean is not one"
    );
    assert_eq!(
        t.get(&format!("{VK}?from_memory=false")).await.status,
        StatusCode::OK
    );
    t.sb.shutdown().await;
}

/// The plan predicts every refusal of the virtual-key create call: inventories of random
/// profiles with defects drawn from every create-time rule are planned with the shipped
/// mapping, then every planned body is sent to this emulator's V2 in process. Each must be
/// accepted; each defect must give the finding its class promises (a blocker that keeps the
/// profile out of the plan, or a transformed finding), naming the field. A failure prints
/// the seed and the one profile that reproduces it. `KS_BIFROST_PLAN_SEED` replays a seed.
#[test]
#[allow(clippy::print_stderr)] // the seed and what was covered, for the test's note
fn plan_predicts_every_virtual_key_refusal() {
    use crate::model::FindingKind;
    use crate::providers::bifrost::plan::{
        BifrostInventory, BifrostProfile, Budget as MBudget, McpClient as MClient, ProviderAccess,
        RateLimit as MRate, ToolOverride,
    };
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A defect class: what it breaks and the finding the plan must give.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum D {
        UnknownServer,
        UnknownOverrideClient,
        BadAction,
        ZeroRate,
        SubUnitRate,
        FractionalRate,
        BadRateWindow,
        MissingWindow,
        ZeroBudget,
        NegativeBudget,
        BadBudgetWindow,
        RepeatedWindow,
        BadQuarter,
        RepeatedProvider,
        BlankProvider,
        StarWithModels,
        RepeatedModels,
        ProviderRateZero,
        ProviderBudgetZero,
        BlankName,
        LongName,
        ControlName,
        TakenName,
        CalendarSubDay,
    }
    const ALL: &[D] = &[
        D::UnknownServer,
        D::UnknownOverrideClient,
        D::BadAction,
        D::ZeroRate,
        D::SubUnitRate,
        D::FractionalRate,
        D::BadRateWindow,
        D::MissingWindow,
        D::ZeroBudget,
        D::NegativeBudget,
        D::BadBudgetWindow,
        D::RepeatedWindow,
        D::BadQuarter,
        D::RepeatedProvider,
        D::BlankProvider,
        D::StarWithModels,
        D::RepeatedModels,
        D::ProviderRateZero,
        D::ProviderBudgetZero,
        D::BlankName,
        D::LongName,
        D::ControlName,
        D::TakenName,
        D::CalendarSubDay,
    ];
    /// (kind, field prefix) the plan must report for a defect.
    fn expect(d: D) -> (FindingKind, &'static str) {
        use FindingKind::{Blocker, Transformed};
        match d {
            D::UnknownServer => (Blocker, "mcp_servers"),
            D::UnknownOverrideClient | D::BadAction => (Blocker, "mcp_tool_overrides"),
            D::ZeroRate | D::SubUnitRate => (Blocker, "rate_limit.token_max_limit"),
            D::FractionalRate => (Transformed, "rate_limit.token_max_limit"),
            D::BadRateWindow => (Blocker, "rate_limit.request_reset_duration"),
            D::MissingWindow => (Transformed, "rate_limit.request_reset_duration"),
            D::ZeroBudget | D::NegativeBudget => (Blocker, "budgets["),
            D::BadBudgetWindow | D::BadQuarter => (Blocker, "budgets["),
            D::RepeatedWindow => (Transformed, "budgets["),
            D::RepeatedProvider | D::BlankProvider => (Blocker, "provider_configs["),
            D::StarWithModels => (Blocker, "provider_configs[0].allowed_models"),
            D::RepeatedModels => (Transformed, "provider_configs[0].allowed_models"),
            D::ProviderRateZero => (Blocker, "provider_configs[0].rate_limit"),
            D::ProviderBudgetZero => (Blocker, "provider_configs[0].budgets["),
            D::BlankName | D::LongName | D::ControlName | D::TakenName => (Transformed, "name"),
            D::CalendarSubDay => (Transformed, "calendar_aligned"),
        }
    }

    /// Defects that change the same field exclude each other in one profile.
    fn slot(d: D) -> u8 {
        match d {
            D::ZeroRate | D::SubUnitRate | D::FractionalRate => 1,
            D::BadRateWindow | D::MissingWindow => 2,
            D::ZeroBudget | D::NegativeBudget | D::BadBudgetWindow | D::RepeatedWindow => 3,
            D::StarWithModels | D::RepeatedModels => 4,
            D::BlankName | D::LongName | D::ControlName | D::TakenName => 5,
            _ => 10 + d as u8,
        }
    }

    let seed: u64 = std::env::var("KS_BIFROST_PLAN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    let mut rng = StdRng::seed_from_u64(seed);
    let base = super::generate::generate(seed, 0);
    let clients: Vec<MClient> = base
        .mcp_clients
        .values()
        .map(|c| MClient {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            tools: c.tools.iter().map(|t| t.name.clone()).collect(),
        })
        .collect();
    let taken: Vec<String> = base.virtual_keys.iter().map(|k| k.name.clone()).collect();
    let providers = [
        "openai",
        "anthropic",
        "azure",
        "bedrock",
        "gemini",
        "mistral",
    ];
    let windows = ["1h", "1d", "1w", "1M", "1Y"];
    const N: i64 = 2000;
    let mut defects: Vec<Vec<D>> = Vec::new();
    let mut profiles = Vec::new();
    for id in 1..=N {
        let n_providers = rng.gen_range(1..=3);
        let mut pcs: Vec<ProviderAccess> = Vec::new();
        for name in providers.iter().take(n_providers) {
            pcs.push(ProviderAccess {
                provider: (*name).to_owned(),
                all_models_allowed: rng.gen_bool(0.3),
                allowed_models: vec![format!("{name}-model-a"), format!("{name}-model-b")],
                budgets: vec![MBudget {
                    max_limit: f64::from(rng.gen_range(1..500u32)),
                    reset_duration: windows[rng.gen_range(0..windows.len())].to_owned(),
                    quarter_start_month: None,
                    scope: format!("provider:{name}"),
                    current_usage: 0.0,
                }],
                rate_limit: rng.gen_bool(0.5).then(|| MRate {
                    token_max_limit: None,
                    token_reset_duration: None,
                    request_max_limit: Some(f64::from(rng.gen_range(1..1000u32))),
                    request_reset_duration: Some("1h".to_owned()),
                }),
            });
        }
        let mut p = BifrostProfile {
            id,
            name: format!("Profile {id} ✓"),
            description: rng.gen_bool(0.5).then(|| format!("team {id}")),
            is_active: rng.gen_bool(0.9),
            tags: vec![],
            provider_configs: pcs,
            budgets: vec![MBudget {
                max_limit: 100.0,
                reset_duration: "1M".to_owned(),
                quarter_start_month: None,
                scope: "total".to_owned(),
                current_usage: 0.0,
            }],
            rate_limit: Some(MRate {
                token_max_limit: Some(1_000_000.0),
                token_reset_duration: Some("1d".to_owned()),
                request_max_limit: Some(600.0),
                request_reset_duration: Some("1h".to_owned()),
            }),
            calendar_aligned: rng.gen_bool(0.3),
            auto_rotation_interval: 0,
            mcp_servers: vec![],
            mcp_tool_groups: vec![],
            mcp_tool_overrides: vec![],
        };
        if rng.gen_bool(0.5) {
            let c = &clients[rng.gen_range(0..clients.len())];
            p.mcp_servers.push(c.client_id.clone());
            if rng.gen_bool(0.5) && !c.tools.is_empty() {
                p.mcp_tool_overrides.push(ToolOverride {
                    mcp_client_id: c.client_id.clone(),
                    tool_name: c.tools[0].clone(),
                    action: "exclude".to_owned(),
                });
            }
        }
        if rng.gen_bool(0.3) {
            let c = &clients[rng.gen_range(0..clients.len())];
            if !p.mcp_servers.contains(&c.client_id) && !c.tools.is_empty() {
                p.mcp_tool_overrides.push(ToolOverride {
                    mcp_client_id: c.client_id.clone(),
                    tool_name: c.tools[c.tools.len() - 1].clone(),
                    action: "include".to_owned(),
                });
            }
        }
        // 0–3 defects; about one profile in five is clean.
        let mut ds: Vec<D> = Vec::new();
        if !rng.gen_bool(0.2) {
            for _ in 0..rng.gen_range(1..=3) {
                let d = ALL[rng.gen_range(0..ALL.len())];
                if !ds.iter().any(|x| slot(*x) == slot(d)) {
                    ds.push(d);
                }
            }
        }
        let rl = p.rate_limit.as_mut().unwrap();
        for d in &ds {
            match d {
                D::UnknownServer => p.mcp_servers.push(format!("ghost-{id}")),
                D::UnknownOverrideClient => p.mcp_tool_overrides.push(ToolOverride {
                    mcp_client_id: format!("phantom-{id}"),
                    tool_name: "t".into(),
                    action: "include".into(),
                }),
                D::BadAction => p.mcp_tool_overrides.push(ToolOverride {
                    mcp_client_id: clients[0].client_id.clone(),
                    tool_name: clients[0].tools[0].clone(),
                    action: "deny".into(),
                }),
                D::ZeroRate => rl.token_max_limit = Some(0.0),
                D::SubUnitRate => rl.token_max_limit = Some(0.5),
                D::FractionalRate => rl.token_max_limit = Some(1234.75),
                D::BadRateWindow => rl.request_reset_duration = Some("1Q".into()),
                D::MissingWindow => rl.request_reset_duration = None,
                D::ZeroBudget => p.budgets[0].max_limit = 0.0,
                D::NegativeBudget => p.budgets[0].max_limit = -3.0,
                D::BadBudgetWindow => p.budgets[0].reset_duration = "2h".into(),
                D::RepeatedWindow => {
                    let mut b = p.budgets[0].clone();
                    b.max_limit = 7.0;
                    p.budgets.push(b);
                }
                D::BadQuarter => p.budgets.push(MBudget {
                    max_limit: 9.0,
                    reset_duration: "1Q".into(),
                    quarter_start_month: Some(0),
                    scope: "total".into(),
                    current_usage: 0.0,
                }),
                D::RepeatedProvider => {
                    let again = p.provider_configs[0].clone();
                    p.provider_configs.push(again);
                }
                D::BlankProvider => {
                    let mut blank = p.provider_configs[0].clone();
                    blank.provider = " ".into();
                    p.provider_configs.push(blank);
                }
                D::StarWithModels => {
                    let pc = &mut p.provider_configs[0];
                    pc.all_models_allowed = false;
                    pc.allowed_models = vec!["*".into(), "gpt-4o".into()];
                }
                D::RepeatedModels => {
                    let pc = &mut p.provider_configs[0];
                    pc.all_models_allowed = false;
                    pc.allowed_models = vec!["m".into(), "m".into(), "".into()];
                }
                D::ProviderRateZero => {
                    p.provider_configs[0].rate_limit = Some(MRate {
                        token_max_limit: None,
                        token_reset_duration: None,
                        request_max_limit: Some(0.0),
                        request_reset_duration: Some("1h".into()),
                    })
                }
                D::ProviderBudgetZero => p.provider_configs[0].budgets[0].max_limit = 0.0,
                D::BlankName => p.name = "   ".into(),
                D::LongName => p.name = format!("{id}-{}", "long ".repeat(60)),
                D::ControlName => p.name = format!("Ctl\u{7}{id}\n"),
                D::TakenName => p.name = taken[rng.gen_range(0..taken.len())].clone(),
                D::CalendarSubDay => {
                    p.calendar_aligned = true;
                    p.budgets.push(MBudget {
                        max_limit: 3.0,
                        reset_duration: "1h".into(),
                        quarter_start_month: None,
                        scope: "total".into(),
                        current_usage: 0.0,
                    });
                }
            }
        }
        defects.push(ds);
        profiles.push(p);
    }
    let inv = BifrostInventory {
        profiles: profiles.clone(),
        mcp_clients: clients,
        holdings: vec![],
    };
    let mapping = crate::registry::load_mapping("bifrost-profiles-to-virtual-keys").unwrap();
    let plan = crate::providers::bifrost::plan::plan(&inv, &mapping, &[], &taken);

    let mut st = base.clone();
    let cfg = crate::sandbox::config::BifrostConfig::default();
    let params = super::Params::default();
    let ctx = super::Ctx {
        now: crate::sandbox::clock::parse_instant(crate::sandbox::clock::DEFAULT_START).unwrap(),
        cfg: &cfg,
        params: &params,
    };
    let show = |id: &str| {
        let p = profiles.iter().find(|p| p.id.to_string() == id).unwrap();
        let ds = &defects[(p.id - 1) as usize];
        format!(
            "seed {seed} (KS_BIFROST_PLAN_SEED={seed}), defects {ds:?}, smallest inventory: {p:?}"
        )
    };
    for item in &plan.items {
        let input = super::Input {
            query: super::request::Query::parse(None),
            body: serde_json::to_vec(&crate::providers::bifrost::create_body(item).unwrap())
                .unwrap()
                .into(),
        };
        if let Err(e) = super::virtual_keys::create(&mut st, &ctx, &input) {
            panic!(
                "planned item refused by V2 ({} {}): {}",
                e.status,
                e.message,
                show(&item.profile_id)
            );
        }
    }
    // Every provider the planned keys name is configured here (the generator gives each a
    // key), and the plan names each once as a `manual` finding (PC-B16).
    let named: std::collections::BTreeSet<String> = plan
        .items
        .iter()
        .map(|i| crate::providers::bifrost::create_body(i).unwrap())
        .flat_map(|b| b["provider_configs"].as_array().unwrap().clone())
        .map(|c| c["provider"].as_str().unwrap().to_owned())
        .collect();
    let manual: Vec<&str> = plan
        .findings
        .iter()
        .filter(|f| f.object_kind == "bifrost_provider" && f.kind == FindingKind::Manual)
        .map(|f| f.object_id.as_str())
        .collect();
    assert_eq!(manual, named.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(named.iter().all(|p| base.has_provider(p)), "{named:?}");
    let planned: std::collections::HashSet<&str> =
        plan.items.iter().map(|i| i.profile_id.as_str()).collect();
    let mut classes_seen = std::collections::BTreeSet::new();
    for (p, ds) in profiles.iter().zip(&defects) {
        let id = p.id.to_string();
        let mine: Vec<_> = plan.findings.iter().filter(|f| f.object_id == id).collect();
        for d in ds {
            classes_seen.insert(format!("{d:?}"));
            let (kind, field) = expect(*d);
            assert!(
                mine.iter()
                    .any(|f| f.kind == kind && f.field.starts_with(field) && !f.fix.is_empty()),
                "no {kind:?} finding on {field} for {d:?}: {:?} — {}",
                mine.iter().map(|f| (&f.kind, &f.field)).collect::<Vec<_>>(),
                show(&id)
            );
        }
        let blocking = ds.iter().any(|d| expect(*d).0 == FindingKind::Blocker);
        assert_eq!(
            planned.contains(id.as_str()),
            !blocking,
            "planned iff no blocking defect — {}",
            show(&id)
        );
        assert!(
            mine.iter().all(|f| f.kind != FindingKind::Blocker) || blocking,
            "a blocker without a defect: {:?} — {}",
            mine.iter()
                .filter(|f| f.kind == FindingKind::Blocker)
                .collect::<Vec<_>>(),
            show(&id)
        );
    }
    assert_eq!(classes_seen.len(), ALL.len(), "every defect class drawn");
    eprintln!(
        "plan_predicts_every_virtual_key_refusal: seed {seed}, {N} profiles, {} defect classes, {} planned",
        ALL.len(),
        plan.items.len()
    );
}
