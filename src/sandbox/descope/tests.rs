//! End-to-end tests of the Descope emulator over HTTP: a real sandbox on `127.0.0.1:0`, driven
//! with reqwest, asserting on what a Descope client sees — status, error body, headers, the
//! exchanged JWT verified against the served JWKS — and on `/_sandbox/state` and stats.

use std::path::PathBuf;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::sandbox::config::{
    DEFAULT_DESCOPE_MANAGEMENT_KEY, DEFAULT_DESCOPE_MANAGEMENT_KEY_ID, DEFAULT_DESCOPE_PROJECT_ID,
};
use crate::sandbox::test_http::{send, Resp};
use crate::sandbox::workato::model::sha256_hex;
use crate::sandbox::{Sandbox, SandboxOptions};

const PROJECT: &str = DEFAULT_DESCOPE_PROJECT_ID;

struct T {
    sb: Sandbox,
    http: reqwest::Client,
    _dir: Option<TempDir>,
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "keyshift-descope-{tag}-{}-{}",
            std::process::id(),
            crate::sandbox::descope::model::base62(8)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn quiet() -> SandboxOptions {
    SandboxOptions {
        rate_scale: 0.0,
        profiles: 30,
        workspaces: 2,
        ..SandboxOptions::default()
    }
}

impl T {
    async fn start(opts: SandboxOptions) -> T {
        Self::start_in(opts, None).await
    }

    async fn start_in(opts: SandboxOptions, dir: Option<TempDir>) -> T {
        let sb = Sandbox::start(opts).await.expect("sandbox starts");
        T {
            sb,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// Start with a `--config` holding `toml`.
    async fn with_config(mut opts: SandboxOptions, toml: &str) -> T {
        let dir = TempDir::new("cfg");
        opts.config = Some(dir.write("sandbox.toml", toml));
        Self::start_in(opts, Some(dir)).await
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}/descope{path}", self.sb.url()));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }

    fn mgmt_bearer() -> String {
        format!("{PROJECT}:{DEFAULT_DESCOPE_MANAGEMENT_KEY}")
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.raw(Method::POST, path, Some(&Self::mgmt_bearer()), Some(body))
            .await
    }

    async fn get(&self, path: &str) -> Resp {
        self.raw(Method::GET, path, Some(&Self::mgmt_bearer()), None)
            .await
    }

    /// D1; panics unless 200. Returns `(key, cleartext)`.
    async fn create(&self, body: Value) -> (Value, String) {
        let r = self.post("/v1/mgmt/accesskey/create", body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let clear = r.body["cleartext"].as_str().unwrap().to_owned();
        (r.body["key"].clone(), clear)
    }

    async fn load(&self, id: &str) -> Resp {
        self.get(&format!("/v1/mgmt/accesskey?id={id}")).await
    }

    async fn status(&self, id: &str) -> Value {
        self.load(id).await.body["key"]["status"].clone()
    }

    async fn search(&self, body: Value) -> Vec<Value> {
        let r = self.post("/v1/mgmt/accesskey/search", body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["keys"].as_array().unwrap().clone()
    }

    async fn exchange(&self, cleartext: &str, body: Value) -> Resp {
        self.raw(
            Method::POST,
            "/v1/auth/accesskey/exchange",
            Some(&format!("{PROJECT}:{cleartext}")),
            Some(body),
        )
        .await
    }

    async fn sandbox(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}/_sandbox{path}", self.sb.url()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    async fn state(&self) -> Value {
        self.sandbox(Method::GET, "/state", None).await["descope"].clone()
    }

    /// Verify `jwt` against the served JWKS; returns the claims.
    async fn verify(&self, jwt: &str) -> Value {
        let jwks = self.get(&format!("/v2/keys/{PROJECT}")).await;
        assert_eq!(jwks.status, StatusCode::OK);
        let header = jsonwebtoken::decode_header(jwt).unwrap();
        let jwk = jwks.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| Some(k["kid"].as_str().unwrap()) == header.kid.as_deref())
            .expect("kid served by the JWKS")
            .clone();
        let key = DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .unwrap();
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[PROJECT]);
        v.set_issuer(&[format!("{}/descope/{PROJECT}", self.sb.url())]);
        jsonwebtoken::decode::<Value>(jwt, &key, &v)
            .expect("JWT verifies")
            .claims
    }
}

fn error(r: &Resp) -> (u16, &str, &str) {
    (
        r.status.as_u16(),
        r.body["errorCode"].as_str().unwrap_or("<none>"),
        r.body["errorMessage"].as_str().unwrap_or("<none>"),
    )
}

/// The first seeded role and tenant.
async fn seeded(t: &T) -> (String, String) {
    let s = t.state().await;
    (
        s["roles"][0]["name"].as_str().unwrap().to_owned(),
        s["tenants"][0]["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn create_shows_the_cleartext_once_and_state_only_its_hash() {
    let t = T::start(quiet()).await;
    let (role, _) = seeded(&t).await;
    let (key, clear) = t
        .create(
            json!({"name": "Orders API / Partner A", "expireTime": 0, "roleNames": [role],
                       "keyTenants": [], "userId": null, "customClaims": {"partner": "A"},
                       "description": "keyshift: workato profile 1356466",
                       "permittedIps": ["203.0.113.0/24"],
                       "customAttributes": {"migrationSourceId": "workato:1356466"}}),
        )
        .await;
    let id = key["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 28);
    assert!(id.starts_with('K'));
    assert_eq!(clear.len(), 64);
    assert!(clear.chars().all(|c| c.is_ascii_alphanumeric()));
    // the sandbox clock starts at 2025-11-15T00:00:00Z and runs in real time
    let created = key["createdTime"].as_i64().unwrap();
    assert!(
        (1_763_164_800..1_763_164_800 + 60).contains(&created),
        "{created}"
    );
    // every AccessKey field is present (SD-D6)
    assert_eq!(
        key,
        json!({"id": id, "name": "Orders API / Partner A",
               "description": "keyshift: workato profile 1356466", "roleNames": [role],
               "keyTenants": [], "status": "active", "createdTime": created,
               "expireTime": 0, "createdBy": DEFAULT_DESCOPE_MANAGEMENT_KEY_ID, "clientId": id,
               "boundUserId": "", "customClaims": {"partner": "A"}, "editable": true,
               "permittedIps": ["203.0.113.0/24"],
               "customAttributes": {"migrationSourceId": "workato:1356466"}})
    );

    let loaded = t.load(&id).await;
    assert_eq!(loaded.status, StatusCode::OK);
    assert_eq!(loaded.body, json!({"key": key}));
    let found = t.search(json!({})).await;
    assert_eq!(found, vec![key.clone()]);
    for text in [loaded.body.to_string(), json!(found).to_string()] {
        assert!(!text.contains(&clear) && !text.contains("cleartext"));
    }

    let state = t.state().await;
    assert_eq!(state["project_id"], PROJECT);
    let dumped = &state["access_keys"][0];
    assert_eq!(dumped["cleartext_sha256"], sha256_hex(&clear));
    assert!(!state.to_string().contains(&clear));
    assert!(dumped.get("cleartext").is_none());

    // names are not unique
    let (dup, _) = t.create(json!({"name": "Orders API / Partner A"})).await;
    assert_ne!(dup["id"], key["id"]);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn project_is_seeded_from_the_workato_inventory_with_no_keys() {
    let t = T::start(quiet()).await;
    let all = t.sandbox(Method::GET, "/state", None).await;
    let mut collections: Vec<String> = all["workato"]["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["api_collections"].as_array().unwrap().clone())
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    collections.sort();
    collections.dedup();
    let d = &all["descope"];
    let roles: Vec<String> = d["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roles, collections);
    let tenants = d["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 2);
    assert_eq!(tenants[0]["id"], "T2ws1");
    assert_eq!(tenants[1]["id"], "T2ws2");
    assert_eq!(tenants[0]["name"], "Acme Integrations");
    assert_eq!(d["access_keys"], json!([]));
    // the same reads over the API
    let r = t.get("/v1/mgmt/role/all").await;
    assert_eq!(r.body["roles"], d["roles"]);
    let r = t.get("/v1/mgmt/tenant/all").await;
    assert_eq!(r.body["tenants"], d["tenants"]);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn create_validates_per_sd_d5() {
    let t = T::start(quiet()).await;
    let (role, tenant) = seeded(&t).await;
    let c = |body: Value| t.post("/v1/mgmt/accesskey/create", body);

    let r = c(json!({"name": ""})).await;
    assert_eq!(error(&r), (400, "E011002", "The name field is required"));
    assert_eq!(r.body["errorDescription"], "Missing arguments");
    let r = c(json!({"name": null})).await;
    assert_eq!(error(&r).1, "E011002");
    let r = t
        .raw(
            Method::POST,
            "/v1/mgmt/accesskey/create",
            Some(&T::mgmt_bearer()),
            None,
        )
        .await;
    assert_eq!(error(&r).1, "E011002");

    for (body, what) in [
        (
            json!({"name": "x", "roleNames": [role], "keyTenants": [{"tenantId": tenant}]}),
            "both role forms",
        ),
        (
            json!({"name": "x", "roleNames": ["No such role"]}),
            "unknown role",
        ),
        (
            json!({"name": "x", "keyTenants": [{"tenantId": "T2nope"}]}),
            "unknown tenant",
        ),
        (
            json!({"name": "x", "keyTenants": [{"tenantId": tenant, "roleNames": ["Nope"]}]}),
            "unknown tenant role",
        ),
        (json!({"name": "x", "userId": "U2nobody"}), "unknown user"),
        (
            json!({"name": "x", "customAttributes": {"team": "a"}}),
            "undefined attribute",
        ),
        (
            json!({"name": "x", "customAttributes": {"migrationSourceId": 7}}),
            "attribute of the wrong type",
        ),
        (
            json!({"name": "x", "permittedIps": ["10.0.0.0/33"]}),
            "bad CIDR",
        ),
        (
            json!({"name": "x", "permittedIps": ["192.168.1"]}),
            "bad IP",
        ),
        (
            json!({"name": "x", "expireTime": 1_700_000_000}),
            "past expiry",
        ),
        (
            json!({"name": "x", "expireTime": "soon"}),
            "non-numeric expiry",
        ),
        (
            json!({"name": "x", "customClaims": ["a"]}),
            "claims not an object",
        ),
        (
            json!({"name": "x", "roleNames": "admin"}),
            "roleNames not a list",
        ),
    ] {
        let r = c(body).await;
        assert_eq!(
            (r.status.as_u16(), r.body["errorCode"].as_str()),
            (400, Some("E011003")),
            "{what}: {}",
            r.body
        );
    }
    let r = c(json!({"name": "x", "keyTenants": [{"roleNames": []}]})).await;
    assert_eq!(
        error(&r),
        (400, "E011002", "The tenantId field is required")
    );

    let r = t
        .http
        .post(format!("{}/descope/v1/mgmt/accesskey/create", t.sb.url()))
        .bearer_auth(T::mgmt_bearer())
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "E011001");

    // nothing above created a key
    assert!(t.search(json!({})).await.is_empty());

    // expireTime as a numeric string; tenant roles; IPv6
    let (k, _) = t
        .create(
            json!({"name": "y", "expireTime": "1900000000", "roleNames": [],
                       "keyTenants": [{"tenantId": tenant, "roleNames": [role]}],
                       "permittedIps": ["2001:db8::/32", "198.51.100.7"]}),
        )
        .await;
    assert_eq!(k["expireTime"], 1_900_000_000);
    assert_eq!(
        k["keyTenants"],
        json!([{"tenantId": tenant, "roleNames": [role], "tenantName": "Acme Integrations"}])
    );
    t.sb.shutdown().await;
}

#[tokio::test]
async fn search_filters_and_sorts_per_sd_d11() {
    let t = T::start(quiet()).await;
    let s = t.state().await;
    let t1 = s["tenants"][0]["id"].as_str().unwrap().to_owned();
    let t2 = s["tenants"][1]["id"].as_str().unwrap().to_owned();
    let (a, _) = t
        .create(json!({"name": "Bravo", "keyTenants": [{"tenantId": t1}],
                       "customAttributes": {"migrationSourceId": "workato:1"}}))
        .await;
    let (b, _) = t
        .create(json!({"name": "Alpha", "description": "KeyShift marker",
                       "keyTenants": [{"tenantId": t2}],
                       "customAttributes": {"migrationSourceId": "workato:2"}}))
        .await;
    let (c, _) = t.create(json!({"name": "Charlie"})).await;
    let ids = |keys: Vec<Value>| -> Vec<Value> { keys.iter().map(|k| k["id"].clone()).collect() };

    // default order: createdTime, then id
    let order = |mut keys: Vec<&Value>| -> Vec<Value> {
        keys.sort_by_key(|k| {
            (
                k["createdTime"].as_i64(),
                k["id"].as_str().map(str::to_owned),
            )
        });
        keys.iter().map(|k| k["id"].clone()).collect()
    };
    assert_eq!(ids(t.search(json!({})).await), order(vec![&a, &b, &c]));
    assert_eq!(
        ids(t.search(json!({"tenantIds": [t1]})).await),
        vec![a["id"].clone()]
    );
    let both = order(vec![&a, &b]);
    assert_eq!(
        ids(t.search(json!({"tenantIds": [t1, t2, "T2other"]})).await),
        both
    );
    assert_eq!(
        ids(t.search(json!({"text": "keyshift"})).await),
        vec![b["id"].clone()]
    );
    assert_eq!(
        ids(t.search(json!({"text": "CHAR"})).await),
        vec![c["id"].clone()]
    );
    let id_part = &a["id"].as_str().unwrap()[3..12];
    assert_eq!(
        ids(t.search(json!({"text": id_part})).await),
        vec![a["id"].clone()]
    );
    assert_eq!(
        ids(t
            .search(json!({"customAttributes": {"migrationSourceId": "workato:2"}}))
            .await),
        vec![b["id"].clone()]
    );
    assert!(t
        .search(json!({"customAttributes": {"migrationSourceId": "workato:9"}}))
        .await
        .is_empty());
    assert_eq!(
        t.search(json!({"creatingUser": DEFAULT_DESCOPE_MANAGEMENT_KEY_ID}))
            .await
            .len(),
        3
    );
    assert!(t
        .search(json!({"creatingUser": "K2someoneelse"}))
        .await
        .is_empty());
    assert!(t.search(json!({"boundUserId": "U2abc"})).await.is_empty());
    assert_eq!(
        ids(t
            .search(json!({"sort": [{"field": "name", "desc": true}]}))
            .await),
        vec![c["id"].clone(), a["id"].clone(), b["id"].clone()]
    );
    assert_eq!(
        ids(t
            .search(json!({"sort": [{"field": "unknownField"}, {"field": "name"}]}))
            .await),
        vec![b["id"].clone(), a["id"].clone(), c["id"].clone()]
    );
    // deleted keys never appear
    t.post("/v1/mgmt/accesskey/delete", json!({"id": a["id"]}))
        .await;
    assert_eq!(t.search(json!({})).await.len(), 2);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn update_keeps_what_is_absent_and_replaces_what_is_sent() {
    let t = T::start(quiet()).await;
    let (role, tenant) = seeded(&t).await;
    let (k, _) = t
        .create(
            json!({"name": "n1", "description": "d1", "roleNames": [role],
                       "customClaims": {"a": 1}, "permittedIps": ["203.0.113.0/24"],
                       "customAttributes": {"migrationSourceId": "workato:1"}}),
        )
        .await;
    let id = k["id"].as_str().unwrap();
    let up = |body: Value| t.post("/v1/mgmt/accesskey/update", body);

    let r = up(json!({"id": id, "name": "n2", "permittedIps": [], "description": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut want = k.clone();
    want["name"] = json!("n2");
    want["permittedIps"] = json!([]);
    assert_eq!(r.body["key"], want);

    // lists and maps are replaced, not merged
    let r = up(json!({"id": id, "name": "n2", "customClaims": {"b": true}})).await;
    assert_eq!(r.body["key"]["customClaims"], json!({"b": true}));
    assert_eq!(r.body["key"]["roleNames"], json!([role]));

    // expireTime, userId and status in the body are ignored
    let r = up(
        json!({"id": id, "name": "n2", "expireTime": 1_900_000_000, "status": "inactive",
                      "userId": "U2x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["key"]["expireTime"], 0);
    assert_eq!(r.body["key"]["status"], "active");
    assert_eq!(r.body["key"]["boundUserId"], "");

    // roleNames + keyTenants after the update → 400, nothing changed
    let r = up(json!({"id": id, "name": "zzz", "keyTenants": [{"tenantId": tenant}]})).await;
    assert_eq!(error(&r).0, 400);
    assert_eq!(t.load(id).await.body["key"]["name"], "n2");
    // switching forms in one call works
    let r = up(json!({"id": id, "name": "n3", "roleNames": [],
                      "keyTenants": [{"tenantId": tenant, "roleNames": [role]}]}))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["key"]["roleNames"], json!([]));

    assert_eq!(
        error(&up(json!({"name": "n"})).await),
        (400, "E011002", "The id field is required")
    );
    assert_eq!(
        error(&up(json!({"id": id})).await),
        (400, "E011002", "The name field is required")
    );
    let r = up(json!({"id": "K2unknown", "name": "n"})).await;
    assert_eq!(error(&r).0, 404);
    assert_eq!(r.body["errorDescription"], "Access key not found");
    t.sb.shutdown().await;
}

#[tokio::test]
async fn status_changes_and_batches_per_sd_d9() {
    let t = T::start(quiet()).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (k, _) = t.create(json!({"name": format!("k{i}")})).await;
        ids.push(k["id"].as_str().unwrap().to_owned());
    }

    for _ in 0..2 {
        let r = t
            .post("/v1/mgmt/accesskey/deactivate", json!({"id": ids[0]}))
            .await;
        assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!({})));
    }
    assert_eq!(t.status(&ids[0]).await, "inactive");
    let r = t
        .post("/v1/mgmt/accesskey/activate", json!({"id": ids[0]}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.status(&ids[0]).await, "active");
    assert_eq!(
        error(&t.post("/v1/mgmt/accesskey/activate", json!({})).await),
        (400, "E011002", "The id field is required")
    );
    assert_eq!(
        error(
            &t.post("/v1/mgmt/accesskey/delete", json!({"id": "K2gone"}))
                .await
        )
        .0,
        404
    );

    // all-or-nothing: one unknown id → 404 naming it, nothing changes
    let r = t
        .post(
            "/v1/mgmt/accesskey/deactivate/batch",
            json!({"ids": [ids[0], "K2missing", ids[1]]}),
        )
        .await;
    assert_eq!(error(&r).0, 404);
    assert!(r.body["errorMessage"]
        .as_str()
        .unwrap()
        .contains("K2missing"));
    assert_eq!(t.status(&ids[0]).await, "active");
    assert_eq!(
        error(
            &t.post("/v1/mgmt/accesskey/delete/batch", json!({"ids": []}))
                .await
        ),
        (400, "E011003", "The ids field must list at least one id")
    );
    let many: Vec<String> = (0..101).map(|_| ids[0].clone()).collect();
    assert_eq!(
        error(
            &t.post("/v1/mgmt/accesskey/activate/batch", json!({"ids": many}))
                .await
        )
        .1,
        "E011003"
    );

    let r = t
        .post(
            "/v1/mgmt/accesskey/deactivate/batch",
            json!({"ids": [ids[0], ids[1]]}),
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!({})));
    assert_eq!(t.status(&ids[1]).await, "inactive");
    assert_eq!(t.status(&ids[2]).await, "active");
    t.post(
        "/v1/mgmt/accesskey/activate/batch",
        json!({"ids": [ids[1]]}),
    )
    .await;
    assert_eq!(t.status(&ids[1]).await, "active");
    let r = t
        .post(
            "/v1/mgmt/accesskey/delete/batch",
            json!({"ids": [ids[0], ids[2]]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let left: Vec<Value> = t.search(json!({})).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], ids[1]);
    assert_eq!(t.load(&ids[0]).await.status, StatusCode::NOT_FOUND);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn exchange_issues_a_jwt_that_verifies_against_the_jwks() {
    let t = T::start(quiet()).await;
    let (role, tenant) = seeded(&t).await;
    let (k, clear) = t
        .create(json!({"name": "consumer", "roleNames": [role],
                       "customClaims": {"partner": "A", "sub": "forged"}}))
        .await;
    let id = k["id"].as_str().unwrap();

    let r = t.exchange(&clear, json!({"loginOptions": {}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let obj = r.body.as_object().unwrap();
    assert_eq!(obj.len(), 2);
    assert_eq!(r.body["keyId"], id);
    let claims = t.verify(r.body["sessionJwt"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], id);
    assert!(claims.get("dsub").is_none());
    assert_eq!(claims["aud"], PROJECT);
    assert_eq!(claims["partner"], "A");
    assert_eq!(claims["roles"], json!([role]));
    let perms = claims["permissions"].as_array().unwrap();
    assert_eq!(perms.len(), 1);
    assert!(perms[0].as_str().unwrap().ends_with(":invoke"));
    assert_eq!(claims["tenants"], json!({}));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(claims.get("nsec").is_none());

    // exchange-time claims land under nsec; the third bearer segment is ignored; {} is fine
    let r = t
        .raw(
            Method::POST,
            "/v1/auth/accesskey/exchange",
            Some(&format!("{PROJECT}:{clear}:extra")),
            Some(json!({"loginOptions": {"customClaims": {"k": "v"}}})),
        )
        .await;
    let claims = t.verify(r.body["sessionJwt"].as_str().unwrap()).await;
    assert_eq!(claims["nsec"], json!({"k": "v"}));
    assert_eq!(t.exchange(&clear, json!({})).await.status, StatusCode::OK);
    let r = t
        .exchange(&clear, json!({"loginOptions": {"selectedTenant": tenant}}))
        .await;
    assert_eq!(error(&r).0, 400);

    // tenant-scoped key: tenants claim and selectedTenant
    let (tk, tclear) = t
        .create(json!({"name": "tenant key",
                       "keyTenants": [{"tenantId": tenant, "roleNames": [role]}]}))
        .await;
    let r = t
        .exchange(&tclear, json!({"loginOptions": {"selectedTenant": tenant}}))
        .await;
    let claims = t.verify(r.body["sessionJwt"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], tk["id"]);
    assert_eq!(claims["tenants"][&tenant]["roles"], json!([role]));
    assert_eq!(claims["dct"], json!(tenant));
    assert_eq!(claims["roles"], json!([]));

    // bad credentials
    let r = t.exchange("not-the-secret", json!({})).await;
    assert_eq!(error(&r), (401, "E011003", "Invalid access key"));
    let r = t
        .raw(
            Method::POST,
            "/v1/auth/accesskey/exchange",
            Some(&format!("P2other:{clear}")),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t.get("/v2/keys/P2other").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn inactive_rotated_expired_and_ip_restricted_keys_fail_exchange() {
    let t = T::start(quiet()).await;
    let (k, clear) = t
        .create(json!({"name": "k", "expireTime": 1_763_251_200}))
        .await; // 2025-11-16, a day after the sandbox clock's start
    let id = k["id"].as_str().unwrap();

    t.post("/v1/mgmt/accesskey/deactivate", json!({"id": id}))
        .await;
    assert_eq!(
        error(&t.exchange(&clear, json!({})).await),
        (401, "E011003", "Access key is inactive")
    );
    assert_eq!(
        error(&t.post("/v1/mgmt/accesskey/rotate", json!({"id": id})).await),
        (400, "E011003", "Access key is not active")
    );
    t.post("/v1/mgmt/accesskey/activate", json!({"id": id}))
        .await;
    assert_eq!(t.exchange(&clear, json!({})).await.status, StatusCode::OK);

    // rotate: same key, new secret; the old one stops at once
    let r = t.post("/v1/mgmt/accesskey/rotate", json!({"id": id})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["key"]["id"], id);
    assert_eq!(r.body["key"]["name"], "k");
    let fresh = r.body["cleartext"].as_str().unwrap().to_owned();
    assert_ne!(fresh, clear);
    assert_eq!(
        error(&t.exchange(&clear, json!({})).await),
        (401, "E011003", "Invalid access key")
    );
    let r = t.exchange(&fresh, json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let claims = t.verify(r.body["sessionJwt"].as_str().unwrap()).await;
    let ttl = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((1..=600).contains(&ttl), "{ttl}");
    assert_eq!(
        t.state().await["access_keys"][0]["cleartext_sha256"],
        sha256_hex(&fresh)
    );

    // permitted IPs: the TCP peer is 127.0.0.1
    let (ipk, ipclear) = t
        .create(json!({"name": "ip", "permittedIps": ["10.0.0.0/8"]}))
        .await;
    assert_eq!(
        error(&t.exchange(&ipclear, json!({})).await),
        (403, "E011003", "IP address not permitted")
    );
    t.post(
        "/v1/mgmt/accesskey/update",
        json!({"id": ipk["id"], "name": "ip", "permittedIps": ["127.0.0.1"]}),
    )
    .await;
    assert_eq!(t.exchange(&ipclear, json!({})).await.status, StatusCode::OK);

    // past expireTime (sandbox clock)
    t.sandbox(Method::POST, "/clock", Some(json!({"now": "2025-11-17"})))
        .await;
    assert_eq!(
        error(&t.exchange(&fresh, json!({})).await),
        (401, "E011003", "Access key has expired")
    );
    assert_eq!(
        error(&t.post("/v1/mgmt/accesskey/rotate", json!({"id": id})).await),
        (400, "E011003", "Access key has expired")
    );
    t.sb.shutdown().await;
}

#[tokio::test]
async fn management_auth_per_sd_d2() {
    let t = T::start(quiet()).await;
    let unauthorized = json!({"errorCode": "E011003", "errorDescription": "Unauthorized",
                              "errorMessage": "Invalid project ID or management key"});
    for bearer in [
        None,
        Some(DEFAULT_DESCOPE_MANAGEMENT_KEY.to_owned()),
        Some(format!("{PROJECT}:wrong")),
        Some(format!("P2other:{DEFAULT_DESCOPE_MANAGEMENT_KEY}")),
    ] {
        let r = t
            .raw(
                Method::POST,
                "/v1/mgmt/accesskey/search",
                bearer.as_deref(),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            (r.status, &r.body),
            (StatusCode::UNAUTHORIZED, &unauthorized)
        );
    }
    let r = t
        .http
        .post(format!("{}/descope/v1/mgmt/accesskey/search", t.sb.url()))
        .bearer_auth(format!("{}:ignored", T::mgmt_bearer()))
        .header("x-descope-project-id", PROJECT)
        .header("x-descope-license", "whatever")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // the JWKS needs no auth
    let r = t
        .raw(Method::GET, &format!("/v2/keys/{PROJECT}"), None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["keys"][0]["alg"], "RS256");

    assert_eq!(
        t.get("/v1/mgmt/license").await.body,
        json!({"rateLimitTier": "tier1"})
    );
    let r = t
        .post("/v1/mgmt/accesskey/import", json!({"keys": []}))
        .await;
    assert_eq!(
        error(&r),
        (501, "E011001", "Import is not available in the sandbox")
    );
    assert_eq!(
        error(&t.get("/v1/mgmt/accesskey").await),
        (400, "E011002", "ID is required")
    );
    assert_eq!(error(&t.get("/v1/mgmt/nothing/here").await).0, 404);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn config_defines_roles_tenants_users_and_the_attribute_schema() {
    let t = T::with_config(
        quiet(),
        r#"
[descope]
seed_from_workato = false
token_ttl_secs = 120
management_key_id = "K2mgmtOther"

[[descope.roles]]
name = "reader"
permissions = ["data:read", "data:list"]

[[descope.tenants]]
id = "T2acme"
name = "Acme"

[[descope.users]]
id = "U2alice"
roles = ["reader"]
tenants = [{ tenant_id = "T2acme", roles = ["reader"] }]

[descope.custom_attributes]
team = "string"
"#,
    )
    .await;
    let s = t.state().await;
    assert_eq!(
        s["roles"],
        json!([{"name": "reader", "description": "", "permissionNames": ["data:read", "data:list"]}])
    );
    assert_eq!(s["tenants"][0]["id"], "T2acme");
    assert_eq!(s["custom_attributes"], json!({"team": "string"}));
    let c = |body: Value| t.post("/v1/mgmt/accesskey/create", body);
    assert_eq!(
        error(&c(json!({"name": "x", "roleNames": ["Orders API"]})).await).0,
        400
    );
    let r = c(json!({"name": "x", "customAttributes": {"migrationSourceId": "w:1"}})).await;
    assert_eq!(error(&r).0, 400);

    // a bound key ignores roles and takes the user's authorization
    let (k, clear) = t
        .create(
            json!({"name": "alice's key", "userId": "U2alice", "roleNames": ["nope"],
                       "customAttributes": {"team": "blue"}}),
        )
        .await;
    assert_eq!(k["boundUserId"], "U2alice");
    assert_eq!(k["roleNames"], json!([]));
    assert_eq!(k["createdBy"], "K2mgmtOther");
    assert_eq!(t.search(json!({"boundUserId": "U2alice"})).await.len(), 1);
    assert_eq!(t.search(json!({"tenantIds": ["T2acme"]})).await.len(), 0);
    let r = t.exchange(&clear, json!({})).await;
    let claims = t.verify(r.body["sessionJwt"].as_str().unwrap()).await;
    assert_eq!(claims["roles"], json!(["reader"]));
    assert_eq!(claims["permissions"], json!(["data:list", "data:read"]));
    assert_eq!(
        claims["tenants"],
        json!({"T2acme": {"roles": ["reader"], "permissions": ["data:list", "data:read"]}})
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    t.sb.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_429_e130429_then_backs_off() {
    let t = T::with_config(
        SandboxOptions {
            rate_scale: 1.0,
            ..quiet()
        },
        "[descope]\nrate_per_minute = 3\n",
    )
    .await;
    let (_, clear) = t.create(json!({"name": "k"})).await;
    assert_eq!(t.search(json!({})).await.len(), 1);
    assert_eq!(t.exchange(&clear, json!({})).await.status, StatusCode::OK);
    let r = t.post("/v1/mgmt/accesskey/search", json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.body,
        json!({"errorCode": "E130429", "errorDescription": "Too many requests",
               "errorMessage": "Rate limit exceeded, retry after 60 seconds"})
    );
    assert_eq!(r.headers["retry-after"], "60");
    // the backoff covers the exchange too, but not the JWKS
    let r = t.exchange(&clear, json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let r = t.get(&format!("/v2/keys/{PROJECT}")).await;
    assert_eq!(r.status, StatusCode::OK);

    let stats = t.sandbox(Method::GET, "/stats", None).await;
    let count = |route: &str, status: u16| -> u64 {
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["vendor"] == "descope" && r["route"] == route && r["status"] == status)
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(count("/v1/mgmt/accesskey/create", 200), 1);
    assert_eq!(count("/v1/mgmt/accesskey/search", 429), 1);
    assert_eq!(count("/v1/auth/accesskey/exchange", 429), 1);
    assert_eq!(count("/v2/keys/:project_id", 200), 1);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn rate_scale_shortens_window_and_backoff() {
    let t = T::with_config(
        SandboxOptions {
            rate_scale: 60.0,
            ..quiet()
        },
        "[descope]\nrate_per_minute = 2\n",
    )
    .await;
    for _ in 0..2 {
        assert_eq!(t.get("/v1/mgmt/license").await.status, StatusCode::OK);
    }
    let r = t.get("/v1/mgmt/license").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers["retry-after"], "1");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(t.get("/v1/mgmt/license").await.status, StatusCode::OK);
    t.sb.shutdown().await;
}

#[tokio::test]
async fn fixture_descope_object_loads_leniently() {
    let dir = TempDir::new("fx");
    let fixture = json!({
        "workato": {"workspaces": [{"id": 1, "name": "Solo", "prefix": "solo",
            "api_collections": [{"id": 1, "name": "Orders API"}]}]},
        "descope": {
            "project_id": "P2ignored",
            "roles": ["Orders API", {"name": "Auditor", "permissionNames": ["audit:read"]}],
            "access_keys": [
                {"id": "K2fixtureKey00000000000000001", "name": "from fixture",
                 "cleartext": "fixture-secret", "roleNames": ["Auditor"],
                 "permittedIps": ["300.1.2.3", "127.0.0.1"], "createdTime": "1700000000",
                 "customAttributes": {"migrationSourceId": "workato:9"}},
                {"name": "hash only", "status": "inactive",
                 "cleartext_sha256": sha256_hex("other-secret"),
                 "keyTenants": [{"tenantId": "T2unknown", "tenantName": "x"}]}
            ]}
    });
    let path = dir.write("fixture.json", &fixture.to_string());
    let t = T::start_in(
        SandboxOptions {
            fixture: Some(path),
            ..quiet()
        },
        Some(dir),
    )
    .await;
    let s = t.state().await;
    assert_eq!(s["project_id"], PROJECT);
    assert_eq!(s["roles"].as_array().unwrap().len(), 2);
    assert_eq!(
        s["tenants"],
        json!([{"id": "T2ws1", "name": "Solo",
        "selfProvisioningDomains": [], "customAttributes": {"workatoWorkspaceId": 1}}])
    );
    let keys = s["access_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    // ordered by createdTime: the fixture's 1700000000, then the clock's start
    assert_eq!(keys[0]["cleartext_sha256"], sha256_hex("fixture-secret"));
    assert_eq!(keys[1]["status"], "inactive");
    assert_eq!(keys[1]["createdBy"], DEFAULT_DESCOPE_MANAGEMENT_KEY_ID);
    assert_eq!(keys[1]["keyTenants"][0]["tenantName"], "");

    let r = t.exchange("fixture-secret", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let claims = t.verify(r.body["sessionJwt"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "K2fixtureKey00000000000000001");
    assert_eq!(claims["permissions"], json!(["audit:read"]));
    assert_eq!(
        t.search(json!({"customAttributes": {"migrationSourceId": "workato:9"}}))
            .await
            .len(),
        1
    );

    // a state dump loads back
    let dump = t.sandbox(Method::GET, "/state", None).await;
    t.sb.shutdown().await;
    let dir = TempDir::new("fx2");
    let path = dir.write("dump.json", &dump.to_string());
    let t = T::start_in(
        SandboxOptions {
            fixture: Some(path),
            ..quiet()
        },
        Some(dir),
    )
    .await;
    assert_eq!(t.state().await, dump["descope"]);
    assert_eq!(
        t.exchange("fixture-secret", json!({})).await.status,
        StatusCode::OK
    );
    t.sb.shutdown().await;
}

#[tokio::test]
async fn broken_descope_fixture_names_the_field() {
    let dir = TempDir::new("bad");
    let path = dir.write(
        "bad.json",
        &json!({"descope": {"access_keys": [{"permittedIps": "10.0.0.1"}]}}).to_string(),
    );
    let err = Sandbox::start(SandboxOptions {
        fixture: Some(path),
        ..quiet()
    })
    .await
    .err()
    .expect("refused");
    assert!(
        format!("{err:#}").contains("descope.access_keys[0].permittedIps: expected an array"),
        "{err:#}"
    );
}

#[tokio::test]
async fn faults_spare_the_exchange_and_jwks() {
    let dir = TempDir::new("faults");
    let path = dir.write(
        "fixture.json",
        &json!({"descope": {"access_keys": [{"name": "k", "cleartext": "s"}]}}).to_string(),
    );
    let t = T::start_in(
        SandboxOptions {
            fixture: Some(path),
            faults: Some("error_rate=1".into()),
            ..quiet()
        },
        Some(dir),
    )
    .await;
    let r = t.post("/v1/mgmt/accesskey/search", json!({})).await;
    assert!([502, 503, 504].contains(&r.status.as_u16()), "{}", r.status);
    assert!(r.body.is_string(), "CDN errors are not JSON");
    assert_eq!(t.exchange("s", json!({})).await.status, StatusCode::OK);
    assert_eq!(
        t.get(&format!("/v2/keys/{PROJECT}")).await.status,
        StatusCode::OK
    );
    t.sb.shutdown().await;
}

#[tokio::test]
async fn test_knobs_cdn_503_and_visibility_delay() {
    let t = T::with_config(quiet(), "[descope]\nvisibility_delay_ms = 60000\n").await;
    let (k, clear) = t.create(json!({"name": "slow"})).await;
    let id = k["id"].as_str().unwrap();
    assert_eq!(t.load(id).await.status, StatusCode::NOT_FOUND);
    assert!(t.search(json!({})).await.is_empty());
    assert_eq!(
        t.exchange(&clear, json!({})).await.status,
        StatusCode::UNAUTHORIZED
    );
    t.sandbox(
        Method::POST,
        "/clock",
        Some(json!({"now": "2025-11-15T00:02:00Z"})),
    )
    .await;
    assert_eq!(t.load(id).await.status, StatusCode::OK);
    assert_eq!(t.exchange(&clear, json!({})).await.status, StatusCode::OK);

    let v = t
        .sandbox(
            Method::POST,
            "/descope/fail-next",
            Some(json!({"count": 2})),
        )
        .await;
    assert_eq!(v, json!({"fail_next": 2}));
    for _ in 0..2 {
        let r = t.load(id).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.body.is_string());
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
    assert_eq!(t.load(id).await.status, StatusCode::OK);
    t.sb.shutdown().await;
}
