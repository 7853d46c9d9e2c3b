//! Workato's create-time rules for an access profile's successor, broken one class at a time:
//! the defect classes, a seeded generator of legacy profiles carrying them, and the fixture
//! (one admin workspace, 40 legacy clients, three collections) they are loaded in. Used by
//! `tests/plan_predicts_refusals.rs` for both pairs with a Workato source (→ v2, → Descope),
//! which say per pair which class the target refuses.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// A public key the sandbox's gateway and keyshift's plan both accept.
pub const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA25HQqG8bqqTiTohz05pU\nXwXXULVU9L7o4OthCUi7qr8z/HXkIELQqyrQhshEOoG/THD9bSloL1CFBJ91B1QZ\ntK1h7hc8vW7REA211svc1CYCseNENagaU+bJy2xjRRl0J3ZeCzXwf8VNL9LWXqkE\nlgz6mYUiL+48lHuN432DXdcIog64YkXTVSL2vl6PerB0dZWs6GHTMM0nHl5cd6+K\n/ACUb0SpZGHsFVekE4Yc77ixvFnpem7ciqAel5YSM0C3uBYNwdaz1NrEruqwQhVQ\nzKylBLRxtQxgsr6vfW6Iduz/gO7Dj3fmlIdIroWi0TWuzbZvbyFm6QPzOVy4LC51\n0wIDAQAB\n-----END PUBLIC KEY-----\n";

/// A defect class: one rule of the vendor's, broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Defect {
    /// `jwt_method: rsa` with a `jwt_secret` that is free text.
    RsaNotPem,
    /// `jwt_method: rsa` with a private key where the public key belongs.
    RsaPrivateKey,
    /// A PEM armour around bytes that are not a key.
    RsaBrokenPem,
    UnknownAuthType,
    JwtUnknownMethod,
    OidcBothIssuerAndJwks,
    MissingCollection,
    NoCollection,
    BadIp,
    UnknownLegacyClient,
    BlankName,
    LongName,
    ControlCharName,
    DuplicateName,
    /// A `jwt_method` outside the enum on a profile that is not a JWT one.
    StrayJwtMethod,
    /// Accepted by the vendor, but cannot work: an OIDC issuer the gateway cannot fetch
    /// discovery from (no scheme, a fragment, a query, credentials in the URL).
    IssuerNotFetchable,
    /// Accepted by the vendor, but cannot work: a claim name no JWT claim can match.
    UnmatchableClaim,
}

use Defect::*;

/// The classes in the auth group replace each other; one per profile at most.
pub const AUTH: &[Defect] = &[
    RsaNotPem,
    RsaPrivateKey,
    RsaBrokenPem,
    UnknownAuthType,
    JwtUnknownMethod,
    OidcBothIssuerAndJwks,
    IssuerNotFetchable,
    UnmatchableClaim,
];
pub const COLLECTION: &[Defect] = &[MissingCollection, NoCollection];
pub const NAME: &[Defect] = &[
    BlankName,
    LongName,
    ControlCharName,
    DuplicateName,
    StrayJwtMethod,
];
pub const OTHER: &[Defect] = &[BadIp, UnknownLegacyClient];

/// One generated profile and the defects it was given.
#[derive(Clone, Debug)]
pub struct Case {
    pub profile: Value,
    pub defects: BTreeSet<Defect>,
}

pub const COLLECTIONS: [i64; 3] = [10, 11, 12];
pub const CLIENTS: i64 = 40;
pub const CLIENT_BASE: i64 = 100;

pub fn generate(rng: &mut StdRng, count: usize) -> Vec<Case> {
    let mut cases = Vec::with_capacity(count);
    for i in 0..count {
        let id = 10_000 + i as i64;
        let client = CLIENT_BASE + rng.gen_range(0..CLIENTS);
        let n = rng.gen_range(1..=2);
        let mut collections: Vec<i64> = COLLECTIONS.choose_multiple(rng, n).copied().collect();
        collections.sort_unstable();
        let mut p = json!({
            "id": id, "name": format!("Consumer {i}"), "api_client_id": client,
            "api_collection_ids": collections, "active": rng.gen_bool(0.85),
            "auth_type": "token", "jwt_method": null, "jwt_secret": null,
            "oidc_issuer": null, "oidc_jwks_uri": null, "access_profile_claim": null,
            "required_claims": [], "allowed_issuers": [], "ip_allow_list": [],
            "api_policy_id": if rng.gen_bool(0.3) { json!(5) } else { Value::Null },
            "oauth_client_id": null, "secret": format!("{:064x}", id),
        });
        match rng.gen_range(0..4) {
            0 => {}
            1 => {
                p["auth_type"] = json!("oauth2");
                p["oauth_client_id"] = json!(format!("{:064x}", id + 7));
                p["oauth_client_secret"] = json!(format!("{:064x}", id + 9));
            }
            2 => {
                p["auth_type"] = json!("jwt");
                p["jwt_method"] = json!("rsa");
                p["jwt_secret"] = json!(RSA_PUBLIC_PEM);
            }
            _ => {
                p["auth_type"] = json!("oidc");
                p["oidc_issuer"] = json!("https://idp.example.com");
            }
        }
        if rng.gen_bool(0.2) {
            p["ip_allow_list"] = json!(["203.0.113.0/24"]);
        }
        let mut defects = BTreeSet::new();
        if rng.gen_bool(0.55) {
            let groups: [&[Defect]; 4] = [AUTH, COLLECTION, NAME, OTHER];
            let n = rng.gen_range(1..=3);
            for group in groups.choose_multiple(rng, n) {
                defects.insert(*group.choose(rng).unwrap());
            }
        }
        for d in &defects {
            apply_defect(&mut p, *d, rng);
        }
        cases.push(Case {
            profile: p,
            defects,
        });
    }
    cases
}

pub fn apply_defect(p: &mut Value, d: Defect, rng: &mut StdRng) {
    let rsa = |p: &mut Value, secret: &str| {
        p["auth_type"] = json!("jwt");
        p["jwt_method"] = json!("rsa");
        p["jwt_secret"] = json!(secret);
        p["oidc_issuer"] = Value::Null;
    };
    match d {
        RsaNotPem => rsa(p, "hello"),
        RsaPrivateKey => rsa(
            p,
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
        ),
        RsaBrokenPem => rsa(
            p,
            "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PUBLIC KEY-----",
        ),
        UnknownAuthType => p["auth_type"] = json!("saml"),
        JwtUnknownMethod => {
            p["auth_type"] = json!("jwt");
            p["jwt_method"] = json!("es256");
            p["jwt_secret"] = json!(RSA_PUBLIC_PEM);
            p["oidc_issuer"] = Value::Null;
        }
        OidcBothIssuerAndJwks => {
            p["auth_type"] = json!("oidc");
            p["jwt_method"] = Value::Null;
            p["jwt_secret"] = Value::Null;
            p["oidc_issuer"] = json!("https://idp.example.com");
            p["oidc_jwks_uri"] = json!("https://idp.example.com/jwks");
        }
        MissingCollection => p["api_collection_ids"] = json!([10, 999]),
        NoCollection => p["api_collection_ids"] = json!([]),
        BadIp => p["ip_allow_list"] = json!(["300.1.2.3"]),
        UnknownLegacyClient => p["api_client_id"] = json!(90_000),
        BlankName => p["name"] = json!(["", "   ", "\t"][rng.gen_range(0..3)]),
        LongName => p["name"] = json!("N".repeat(rng.gen_range(256..400))),
        ControlCharName => {
            p["name"] = json!(format!("Partner\u{0}{}\nnight", p["id"]));
        }
        DuplicateName => p["name"] = json!("Shared name"),
        IssuerNotFetchable => {
            p["auth_type"] = json!("oidc");
            p["jwt_method"] = Value::Null;
            p["jwt_secret"] = Value::Null;
            p["oidc_jwks_uri"] = Value::Null;
            let bad = [
                "idp.example.com",
                "https://idp.example.com/#tenant",
                "https://idp.example.com/?tenant=1",
                "https://user:pw@idp.example.com",
            ];
            p["oidc_issuer"] = json!(bad[rng.gen_range(0..bad.len())]);
        }
        UnmatchableClaim => {
            p["auth_type"] = json!("oidc");
            p["jwt_method"] = Value::Null;
            p["jwt_secret"] = Value::Null;
            p["oidc_jwks_uri"] = Value::Null;
            p["oidc_issuer"] = json!("https://idp.example.com");
            let bad = [" workato_key", "", "key\u{1}name", "workato_key "];
            p["access_profile_claim"] = json!(bad[rng.gen_range(0..bad.len())]);
        }
        StrayJwtMethod => {
            if p["auth_type"] != "jwt" {
                p["jwt_method"] = json!("ecdsa");
            }
        }
    }
}

pub fn fixture(cases: &[Case]) -> Value {
    let collection = |id: i64, name: &str| {
        json!({"id": id, "name": name, "version": "1", "url": "x", "api_spec_url": "x",
               "project_id": "1", "created_at": "2024-01-01T00:00:00.000+00:00",
               "updated_at": "2024-01-01T00:00:00.000+00:00"})
    };
    let clients: Vec<Value> = (0..CLIENTS)
        .map(|i| {
            let name = match i {
                // Client names the vendor refuses as they are: the plan renames the v2 client.
                0 => " ".to_string(),
                1 => "C".repeat(300),
                2 => "Line\nbreak".to_string(),
                _ => format!("Legacy client {i}"),
            };
            json!({"id": CLIENT_BASE + i, "name": name, "project_id": null})
        })
        .collect();
    let profiles: Vec<&Value> = cases.iter().map(|c| &c.profile).collect();
    json!({"workato": {"workspaces": [{
        "id": 1, "external_id": null, "name": "Acme",
        "api_collections": [collection(10, "Orders API"), collection(11, "Reports API"),
                            collection(12, "Billing API")],
        "api_policies": [{"id": 5, "name": "Partners - 1000/h"}],
        "legacy_clients": clients,
        "access_profiles": profiles,
        "v2_clients": [], "api_keys": []
    }]}})
}
