//! The plan predicts every refusal: inventories with random defects, drawn from
//! every rule the sandbox enforces at create time, go through export → plan → apply against
//! the real sandbox. Every planned item must be accepted (apply exits 0, and the vendor
//! answered no write with a 4xx); every item the vendor would refuse must have been blocked
//! at plan with a finding naming the object and the exact field — all of an object's
//! problems in one plan.
//!
//! Generation is seeded; a failure prints the seed and the smallest inventory (by removing
//! profiles while the failure persists) that still reproduces it, written beside the test's
//! temp dir. `KEYSHIFT_PROPTEST_SEED=N` replays one seed.

mod common;

use common::{write_fixture, Run, Sandbox};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A public key the sandbox's gateway and keyshift's plan both accept.
const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA25HQqG8bqqTiTohz05pU\nXwXXULVU9L7o4OthCUi7qr8z/HXkIELQqyrQhshEOoG/THD9bSloL1CFBJ91B1QZ\ntK1h7hc8vW7REA211svc1CYCseNENagaU+bJy2xjRRl0J3ZeCzXwf8VNL9LWXqkE\nlgz6mYUiL+48lHuN432DXdcIog64YkXTVSL2vl6PerB0dZWs6GHTMM0nHl5cd6+K\n/ACUb0SpZGHsFVekE4Yc77ixvFnpem7ciqAel5YSM0C3uBYNwdaz1NrEruqwQhVQ\nzKylBLRxtQxgsr6vfW6Iduz/gO7Dj3fmlIdIroWi0TWuzbZvbyFm6QPzOVy4LC51\n0wIDAQAB\n-----END PUBLIC KEY-----\n";

/// A defect class: one rule of the vendor's, broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Defect {
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
const AUTH: &[Defect] = &[
    RsaNotPem,
    RsaPrivateKey,
    RsaBrokenPem,
    UnknownAuthType,
    JwtUnknownMethod,
    OidcBothIssuerAndJwks,
    IssuerNotFetchable,
    UnmatchableClaim,
];
const COLLECTION: &[Defect] = &[MissingCollection, NoCollection];
const NAME: &[Defect] = &[
    BlankName,
    LongName,
    ControlCharName,
    DuplicateName,
    StrayJwtMethod,
];
const OTHER: &[Defect] = &[BadIp, UnknownLegacyClient];

/// Which pair a scenario runs.
#[derive(Clone, Copy, Debug)]
enum Pair {
    WorkatoV2,
    WorkatoDescope,
}

impl Pair {
    fn mapping(self) -> &'static str {
        match self {
            Pair::WorkatoV2 => "workato-legacy-to-v2",
            Pair::WorkatoDescope => "workato-legacy-to-descope",
        }
    }

    /// The field a blocker must name for `d`, when the target refuses what `d` produces.
    fn blocked_field(self, d: Defect) -> Option<&'static str> {
        match (self, d) {
            (_, UnknownAuthType) => Some("auth_type"),
            (_, BadIp) => Some("ip_allow_list"),
            (_, MissingCollection) => Some("api_collection_ids"),
            (Pair::WorkatoV2, RsaNotPem | RsaPrivateKey | RsaBrokenPem) => Some("jwt_secret"),
            (Pair::WorkatoV2, JwtUnknownMethod) => Some("jwt_method"),
            (Pair::WorkatoV2, OidcBothIssuerAndJwks) => Some("oidc_issuer"),
            (Pair::WorkatoV2, NoCollection) => Some("api_collection_ids"),
            (Pair::WorkatoV2, UnknownLegacyClient) => Some("api_client_id"),
            (Pair::WorkatoV2, IssuerNotFetchable) => Some("oidc_issuer"),
            (Pair::WorkatoV2, UnmatchableClaim) => Some("access_profile_claim"),
            // Descope keys carry no JWT settings; a key without roles is valid; names are
            // built from the client and profile names and never blank.
            _ => None,
        }
    }

    /// Whether `d` makes the plan rename the key (a `transformed` finding on `name`).
    fn renames(self, d: Defect) -> bool {
        matches!(self, Pair::WorkatoV2) && matches!(d, BlankName | LongName | ControlCharName)
    }
}

/// One generated profile and the defects it was given.
#[derive(Clone, Debug)]
struct Case {
    profile: Value,
    defects: BTreeSet<Defect>,
}

const COLLECTIONS: [i64; 3] = [10, 11, 12];
const CLIENTS: i64 = 40;
const CLIENT_BASE: i64 = 100;

fn generate(rng: &mut StdRng, count: usize) -> Vec<Case> {
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

fn apply_defect(p: &mut Value, d: Defect, rng: &mut StdRng) {
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

fn fixture(cases: &[Case]) -> Value {
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

/// Run one inventory through export → plan → apply; `Err` describes the first broken
/// promise.
fn check(pair: Pair, cases: &[Case], dir: &std::path::Path) -> Result<(), String> {
    let path = write_fixture(dir, &fixture(cases));
    let sandbox = Sandbox::start(&[
        "--fixture",
        path.to_str().unwrap(),
        "--rate-scale",
        "0",
        "--read-tokens",
        "full",
    ]);
    let run = Run::new(&sandbox);
    let export = run.ks(&["export", "--mapping", pair.mapping()]);
    if export.code != 0 {
        return Err(format!("export exited {}: {}", export.code, export.stderr));
    }
    let plan = run.ks(&["plan"]);
    if plan.code != 0 && plan.code != 3 {
        return Err(format!("plan exited {}: {}", plan.code, plan.stderr));
    }
    let report: Value = serde_json::from_str(&run.ks(&["report", "--format", "json"]).stdout)
        .map_err(|e| format!("report json: {e}"))?;
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let mut by_profile: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for f in &findings {
        if f["object_kind"] == "profile" {
            by_profile
                .entry(f["object_id"].as_str().unwrap_or("").to_string())
                .or_default()
                .push((
                    f["kind"].as_str().unwrap_or("").to_string(),
                    f["field"].as_str().unwrap_or("").to_string(),
                ));
        }
    }

    // The plan: every refusal predicted, with the exact field; nothing else blocked.
    let mut expect_migrated = BTreeSet::new();
    for c in cases {
        let id = c.profile["id"].to_string();
        let got = by_profile.get(&id).cloned().unwrap_or_default();
        let blockers: BTreeSet<&str> = got
            .iter()
            .filter(|(k, _)| k == "blocker")
            .map(|(_, f)| f.as_str())
            .collect();
        let want: BTreeSet<&str> = c
            .defects
            .iter()
            .filter_map(|d| pair.blocked_field(*d))
            .collect();
        // A client that is not there hides nothing else, but an unknown auth type makes the
        // JWT/OIDC checks moot: compare what the vendor would refuse first.
        if want != blockers {
            return Err(format!(
                "profile {id} with defects {:?}: blockers on {blockers:?}, expected {want:?}",
                c.defects
            ));
        }
        for d in &c.defects {
            if pair.renames(*d)
                && want.is_empty()
                && !got.iter().any(|(k, f)| k == "transformed" && f == "name")
            {
                return Err(format!(
                    "profile {id} ({d:?}): no transformed finding on name"
                ));
            }
        }
        if want.is_empty() {
            expect_migrated.insert(format!("keyshift:workato:1:profile:{id}"));
        }
    }

    // A private key pasted where a public key belongs is never kept (only described).
    let db = std::fs::read(run.state()).unwrap_or_default();
    if db.windows(20).any(|w| w == b"MIIEvQIBADANBgkqhkiG") {
        return Err("a private key from jwt_secret was stored in the state file".into());
    }

    // Apply: everything planned is accepted, and no write was refused.
    let apply = run.ks(&["apply", "--yes"]);
    if apply.code != 0 {
        return Err(format!(
            "apply exited {}\n{}\n{}",
            apply.code, apply.stdout, apply.stderr
        ));
    }
    for r in sandbox.stats()["requests"].as_array().unwrap() {
        let status = r["status"].as_u64().unwrap_or(0);
        if r["method"] != "GET" && (400..500).contains(&status) {
            return Err(format!("the vendor refused a write: {r}"));
        }
    }
    let migrated: BTreeSet<String> = run
        .sink_records()
        .iter()
        .map(|r| r["source"].as_str().unwrap_or("").to_string())
        .collect();
    if migrated != expect_migrated {
        let missing: Vec<_> = expect_migrated.difference(&migrated).collect();
        let extra: Vec<_> = migrated.difference(&expect_migrated).collect();
        return Err(format!(
            "migrated profiles differ: missing {missing:?}, unexpected {extra:?}"
        ));
    }
    Ok(())
}

/// Remove profiles while the failure persists (halves, then quarters, …), within a budget.
fn shrink(pair: Pair, mut cases: Vec<Case>, dir: &std::path::Path) -> (Vec<Case>, String) {
    let mut last = check(pair, &cases, dir).err().unwrap_or_default();
    let mut chunk = cases.len() / 2;
    let mut budget = 40;
    while chunk >= 1 && budget > 0 {
        let mut start = 0;
        let mut removed_any = false;
        while start < cases.len() && budget > 0 {
            let mut trial = cases.clone();
            let end = (start + chunk).min(trial.len());
            trial.drain(start..end);
            budget -= 1;
            match check(pair, &trial, dir) {
                Err(e) if !trial.is_empty() => {
                    cases = trial;
                    last = e;
                    removed_any = true;
                }
                _ => start += chunk,
            }
        }
        if !removed_any {
            chunk /= 2;
        }
    }
    (cases, last)
}

fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("KEYSHIFT_PROPTEST_SEED") {
        Ok(s) => vec![s.parse().expect("KEYSHIFT_PROPTEST_SEED is a number")],
        Err(_) => default.to_vec(),
    }
}

fn run_property(pair: Pair, default_seeds: &[u64], profiles: usize) -> usize {
    let mut covered = 0;
    let mut classes = BTreeSet::new();
    for seed in seeds(default_seeds) {
        let mut rng = StdRng::seed_from_u64(seed);
        let cases = generate(&mut rng, profiles);
        for c in &cases {
            classes.extend(c.defects.iter().copied());
        }
        let dir = tempfile::tempdir().unwrap();
        if let Err(first) = check(pair, &cases, dir.path()) {
            let (small, why) = shrink(pair, cases, dir.path());
            let out = std::env::temp_dir().join(format!("keyshift-proptest-{pair:?}-{seed}.json"));
            std::fs::write(&out, serde_json::to_vec_pretty(&fixture(&small)).unwrap()).unwrap();
            panic!(
                "{pair:?}, seed {seed} (replay: KEYSHIFT_PROPTEST_SEED={seed}): {first}\n\
                 smallest inventory found ({} profiles, fixture at {}): {why}\n{}",
                small.len(),
                out.display(),
                serde_json::to_string(&small.iter().map(|c| &c.profile).collect::<Vec<_>>())
                    .unwrap()
            );
        }
        covered += profiles;
    }
    assert!(
        classes.len() >= 12,
        "{pair:?}: only {} defect classes drawn: {classes:?}",
        classes.len()
    );
    eprintln!(
        "{pair:?}: {covered} profiles, {} defect classes: {classes:?}",
        classes.len()
    );
    covered
}

#[test]
fn workato_v2_plan_predicts_every_refusal() {
    run_property(Pair::WorkatoV2, &[1, 2, 3, 4], 600);
}

#[test]
fn workato_descope_plan_predicts_every_refusal() {
    run_property(Pair::WorkatoDescope, &[5, 6], 600);
}

/// The known refusal cases, one profile each: every one is blocked or transformed at plan with
/// a finding naming the profile and the field, and apply then exits 0 with the rest migrated.
#[test]
fn each_reported_case_is_caught_at_plan() {
    let base = |id: i64, name: &str| Case {
        profile: json!({
            "id": id, "name": name, "api_client_id": CLIENT_BASE + 3, "api_collection_ids": [10],
            "active": true, "auth_type": "token", "jwt_method": null, "jwt_secret": null,
            "oidc_issuer": null, "oidc_jwks_uri": null, "access_profile_claim": null,
            "required_claims": [], "allowed_issuers": [], "ip_allow_list": [],
            "api_policy_id": null, "oauth_client_id": null, "secret": format!("{id:064x}"),
        }),
        defects: BTreeSet::new(),
    };
    let mut rsa_hello = base(1, "RSA with hello");
    rsa_hello.profile["auth_type"] = json!("jwt");
    rsa_hello.profile["jwt_method"] = json!("rsa");
    rsa_hello.profile["jwt_secret"] = json!("hello");
    let blank = base(2, "  ");
    let long = base(3, &"L".repeat(300));
    let nul = base(4, "Partner\u{0}B");
    let ok = base(5, "Partner C");
    let cases = vec![rsa_hello, blank, long, nul, ok];
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path(), &fixture(&cases));
    let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    run.ok(&["plan"], 3);
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    let finding = |id: &str, kind: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["object_id"] == id && f["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} finding for profile {id}: {report:#}"))
            .clone()
    };
    let rsa = finding("1", "blocker");
    assert_eq!(rsa["field"], "jwt_secret");
    assert!(rsa["found"]
        .as_str()
        .unwrap()
        .contains("not a PEM public key"));
    assert!(rsa["fix"].as_str().unwrap().contains("BEGIN PUBLIC KEY"));
    for id in ["2", "3", "4"] {
        let f = finding(id, "transformed");
        assert_eq!(f["field"], "name", "{f}");
    }
    run.ok(&["apply", "--yes"], 0);
    let ws = sandbox.workspace(1);
    let mut names: Vec<String> = ws["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let long_key = format!("{} (3)", "L".repeat(251));
    let mut want = vec![
        long_key,
        "Partner B".to_string(),
        "Partner C".to_string(),
        "Profile 2".to_string(),
    ];
    want.sort();
    assert_eq!(names, want);
}

/// A policy the export cannot see (Workato has no policy list call) is a `manual` finding at
/// plan, never a silent pass; if it really is gone, apply names the vendor's refusal and
/// migrates everything else.
#[test]
fn an_unknown_policy_is_a_manual_finding_and_apply_names_the_refusal() {
    let mut cases = generate(&mut StdRng::seed_from_u64(11), 30);
    for c in &mut cases {
        c.defects.clear();
        c.profile["name"] = json!(format!("Consumer {}", c.profile["id"]));
        c.profile["auth_type"] = json!("token");
        c.profile["jwt_method"] = Value::Null;
        c.profile["jwt_secret"] = Value::Null;
        c.profile["oidc_issuer"] = Value::Null;
        c.profile["oidc_jwks_uri"] = Value::Null;
        c.profile["ip_allow_list"] = json!([]);
        c.profile["api_collection_ids"] = json!([10]);
        c.profile["api_client_id"] = json!(CLIENT_BASE + 5);
        c.profile["api_policy_id"] = Value::Null;
    }
    cases[0].profile["api_policy_id"] = json!(77);
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path(), &fixture(&cases));
    let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    run.ok(&["plan"], 0);
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    let manual = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "manual" && f["field"] == "api_policy_id")
        .expect("a manual finding for the policy");
    assert_eq!(manual["object_id"], "77");
    assert!(manual["fix"]
        .as_str()
        .unwrap()
        .contains("exists in workspace 1"));
    let apply = run.ks(&["apply", "--yes"]);
    assert_eq!(apply.code, 6, "{}", apply.stdout);
    assert!(apply.stdout.contains("api_policy_id"), "{}", apply.stdout);
    assert_eq!(run.sink_records().len(), cases.len() - 1);
}
