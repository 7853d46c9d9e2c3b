//! The plan predicts every refusal, for every pair: inventories with defects drawn from every
//! rule the sandbox enforces at create time go through export → plan → apply against the real
//! sandbox. Every planned item must be accepted (apply exits 0, and the vendor answered no
//! write with a 4xx); every item the vendor would refuse must have been blocked at plan with a
//! finding naming the object and the exact field — all of an object's problems in one plan.
//! Each vendor's defect classes live in the harness (`common::workato_defects`,
//! `common::bifrost_defects`); `cargo test --test plan_predicts_refusals workato_source::` or
//! `bifrost::` runs one source's half.
//!
//! Generation is seeded; a failure prints the seed and the smallest inventory (by removing
//! profiles while the failure persists) that still reproduces it (the Workato source also
//! writes it as a fixture to the system temp dir). `KEYSHIFT_PROPTEST_SEED=N` replays one seed
//! of the Workato source, `KS_BIFROST_E2E_SEED=N` one of Bifrost.

mod common;

/// Workato legacy profiles → Workato v2 keys and → Descope access keys.
mod workato_source {
    use super::common::workato_defects::Defect::{self, *};
    use super::common::workato_defects::{fixture, generate, Case, CLIENT_BASE};
    use super::common::{write_fixture, Run, Sandbox};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::{json, Value};
    use std::collections::{BTreeMap, BTreeSet};

    /// Which target a scenario writes to (both read a Workato legacy source).
    #[derive(Clone, Copy, Debug)]
    enum Target {
        WorkatoV2,
        Descope,
    }

    impl Target {
        fn mapping(self) -> &'static str {
            match self {
                Target::WorkatoV2 => "workato-legacy-to-v2",
                Target::Descope => "workato-legacy-to-descope",
            }
        }

        /// The field a blocker must name for `d`, when the target refuses what `d` produces.
        fn blocked_field(self, d: Defect) -> Option<&'static str> {
            match (self, d) {
                (_, UnknownAuthType) => Some("auth_type"),
                (_, BadIp) => Some("ip_allow_list"),
                (_, MissingCollection) => Some("api_collection_ids"),
                (Target::WorkatoV2, RsaNotPem | RsaPrivateKey | RsaBrokenPem) => Some("jwt_secret"),
                (Target::WorkatoV2, JwtUnknownMethod) => Some("jwt_method"),
                (Target::WorkatoV2, OidcBothIssuerAndJwks) => Some("oidc_issuer"),
                (Target::WorkatoV2, NoCollection) => Some("api_collection_ids"),
                (Target::WorkatoV2, UnknownLegacyClient) => Some("api_client_id"),
                (Target::WorkatoV2, IssuerNotFetchable) => Some("oidc_issuer"),
                (Target::WorkatoV2, UnmatchableClaim) => Some("access_profile_claim"),
                // Descope keys carry no JWT settings; a key without roles is valid; names are
                // built from the client and profile names and never blank.
                _ => None,
            }
        }

        /// Whether `d` makes the plan rename the key (a `transformed` finding on `name`).
        fn renames(self, d: Defect) -> bool {
            matches!(self, Target::WorkatoV2) && matches!(d, BlankName | LongName | ControlCharName)
        }
    }

    /// Run one inventory through export → plan → apply; `Err` describes the first broken
    /// promise.
    fn check(target: Target, cases: &[Case], dir: &std::path::Path) -> Result<(), String> {
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
        let export = run.ks(&["export", "--mapping", target.mapping()]);
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
                .filter_map(|d| target.blocked_field(*d))
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
                if target.renames(*d)
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
    fn shrink(target: Target, mut cases: Vec<Case>, dir: &std::path::Path) -> (Vec<Case>, String) {
        let mut last = check(target, &cases, dir).err().unwrap_or_default();
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
                match check(target, &trial, dir) {
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

    fn run_property(target: Target, default_seeds: &[u64], profiles: usize) -> usize {
        let mut covered = 0;
        let mut classes = BTreeSet::new();
        for seed in seeds(default_seeds) {
            let mut rng = StdRng::seed_from_u64(seed);
            let cases = generate(&mut rng, profiles);
            for c in &cases {
                classes.extend(c.defects.iter().copied());
            }
            let dir = tempfile::tempdir().unwrap();
            if let Err(first) = check(target, &cases, dir.path()) {
                let (small, why) = shrink(target, cases, dir.path());
                let out =
                    std::env::temp_dir().join(format!("keyshift-proptest-{target:?}-{seed}.json"));
                std::fs::write(&out, serde_json::to_vec_pretty(&fixture(&small)).unwrap()).unwrap();
                panic!(
                    "{target:?}, seed {seed} (replay: KEYSHIFT_PROPTEST_SEED={seed}): {first}\n\
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
            "{target:?}: only {} defect classes drawn: {classes:?}",
            classes.len()
        );
        eprintln!(
            "{target:?}: {covered} profiles, {} defect classes: {classes:?}",
            classes.len()
        );
        covered
    }

    #[test]
    fn workato_v2_plan_predicts_every_refusal() {
        run_property(Target::WorkatoV2, &[1, 2, 3, 4], 600);
    }

    #[test]
    fn workato_descope_plan_predicts_every_refusal() {
        run_property(Target::Descope, &[5, 6], 600);
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
}

/// Bifrost access profiles → virtual keys.
mod bifrost {
    use super::common::bifrost_defects::{self, expected, profile_json, slot, Defect, CASES};
    use super::common::{write_fixture, Run, Sandbox};
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// PC-B16: Bifrost refuses a virtual key naming a provider the instance has not configured,
    /// and the export cannot list providers: the plan says so once per provider (manual), and
    /// apply reports the vendor's refusal naming the provider while everything else migrates.
    #[test]
    fn an_unconfigured_provider_is_a_manual_finding_and_apply_names_the_refusal() {
        let mut profiles: Vec<Value> = (1..=6).map(|id| profile_json(id, &[])).collect();
        // The fixture configures openai and anthropic only (provider keys).
        profiles[3]["provider_configs"][1]["provider_name"] = "cohere".into();
        let dir = tempfile::tempdir().unwrap();
        let path = write_fixture(dir.path(), &bifrost_defects::fixture(profiles.clone()));
        let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
        let run = Run::new(&sandbox);
        let m = run.bifrost_mapping("per_profile");
        run.ok(&["export", "--mapping", &m], 0);
        run.ok(&["plan"], 0);
        let report: Value =
            serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
        let providers: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["object_kind"] == "bifrost_provider")
            .collect();
        let named: BTreeSet<&str> = providers
            .iter()
            .map(|f| f["object_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            named,
            BTreeSet::from(["anthropic", "cohere", "openai"]),
            "one finding per provider: {providers:#?}"
        );
        assert_eq!(providers.len(), 3, "{providers:#?}");
        let cohere = providers
            .iter()
            .find(|f| f["object_id"] == "cohere")
            .unwrap();
        assert_eq!(cohere["kind"], "manual");
        assert_eq!(cohere["field"], "provider_configs");
        assert!(
            cohere["found"]
                .as_str()
                .unwrap()
                .contains("cannot list configured providers"),
            "{cohere}"
        );
        assert!(
            cohere["fix"].as_str().unwrap().contains("before apply"),
            "{cohere}"
        );
        let apply = run.ks(&["apply", "--yes"]);
        assert_eq!(apply.code, 6, "{}\n{}", apply.stdout, apply.stderr);
        // apply names the failed item with the vendor's reason, as the Workato path does.
        assert!(
            apply
                .stdout
                .lines()
                .any(|l| l.contains("failed:") && l.contains("invalid provider name: cohere")),
            "{}",
            apply.stdout
        );
        // The vendor's refusal, naming the provider, is what apply recorded for the profile.
        let report: Value =
            serde_json::from_str(&run.ks(&["report", "--format", "json"]).stdout).unwrap();
        let rows = report["profiles"].as_array().unwrap();
        let row = rows.iter().find(|r| r["profile_id"] == 4).unwrap();
        assert_eq!(row["status"], "failed", "{row}");
        assert!(
            row["note"]
                .as_str()
                .unwrap_or("")
                .contains("invalid provider name: cohere"),
            "{row}"
        );
        assert!(
            rows.iter()
                .filter(|r| r["profile_id"] != 4)
                .all(|r| r["status"] == "migrated"),
            "{rows:#?}"
        );
        assert_eq!(run.sink_records().len(), profiles.len() - 1);
        let ours: Vec<String> = sandbox.state()["bifrost"]["virtual_keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k["metadata"]["keyshift.source"].as_str().map(String::from))
            .collect();
        assert_eq!(ours.len(), profiles.len() - 1, "{ours:?}");
        assert!(!ours.iter().any(|s| s.ends_with(":profile:4")), "{ours:?}");
    }

    /// What a run against one fixture shows.
    struct Outcome {
        report: Value,
        apply_code: i32,
        verify_code: i32,
        /// Virtual-key creates the vendor refused (status ≥ 400).
        refused_creates: u64,
    }

    fn run_fixture(profiles: Vec<Value>) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let path = write_fixture(dir.path(), &bifrost_defects::fixture(profiles));
        let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
        let run = Run::new(&sandbox);
        let m = run.bifrost_mapping("per_profile");
        run.ok(&["export", "--mapping", &m], 0);
        let plan = run.ks(&["plan"]);
        assert!(plan.code == 0 || plan.code == 3, "plan: {}", plan.stderr);
        let apply = run.ks(&["apply", "--yes"]);
        // What was created is what was planned (transformed names, lists and limits included).
        let verify = run.ks(&["verify"]);
        let report: Value =
            serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
        let refused_creates = sandbox.stats()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["vendor"] == "bifrost"
                    && r["method"] == "POST"
                    && r["route"] == "/api/governance/virtual-keys"
                    && r["status"].as_u64().unwrap_or(0) >= 400
            })
            .map(|r| r["count"].as_u64().unwrap_or(0))
            .sum();
        Outcome {
            report,
            apply_code: apply.code,
            verify_code: verify.code,
            refused_creates,
        }
    }

    /// What is wrong with an outcome for profiles `(id, defects)`, if anything.
    fn problems(o: &Outcome, cases: &[(i64, Vec<Defect>)]) -> Vec<String> {
        let mut out = Vec::new();
        if o.apply_code != 0 {
            out.push(format!("apply exited {}", o.apply_code));
        }
        if o.verify_code != 0 {
            out.push(format!("verify exited {}", o.verify_code));
        }
        if o.refused_creates > 0 {
            out.push(format!(
                "{} virtual-key create(s) refused by Bifrost",
                o.refused_creates
            ));
        }
        let findings = o.report["findings"].as_array().unwrap();
        let rows = o.report["profiles"].as_array().unwrap();
        for (id, defects) in cases {
            let sid = id.to_string();
            let mine: Vec<&Value> = findings.iter().filter(|f| f["object_id"] == sid).collect();
            for d in defects {
                let (kind, field) = expected(*d);
                let hit = mine.iter().any(|f| {
                    f["kind"] == kind
                        && f["field"].as_str().unwrap_or("").starts_with(field)
                        && !f["fix"].as_str().unwrap_or("").is_empty()
                        && f["object_kind"] == "profile"
                });
                if !hit {
                    out.push(format!(
                        "profile {id}: no {kind} finding on {field} for {d:?}; findings: {:?}",
                        mine.iter()
                            .map(|f| format!("{} {}", f["kind"], f["field"]))
                            .collect::<Vec<_>>()
                    ));
                }
            }
            let blocking = defects.iter().any(|d| expected(*d).0 == "blocker");
            let status = rows
                .iter()
                .find(|r| r["profile_id"] == *id)
                .map(|r| r["status"].as_str().unwrap_or("").to_string())
                .unwrap_or_default();
            let want = if blocking { "blocked" } else { "migrated" };
            if status != want {
                out.push(format!(
                    "profile {id} ({defects:?}): status {status:?}, expected {want}"
                ));
            }
        }
        out
    }

    #[test]
    fn fixture_with_every_refusal_case_is_planned_around_and_applies() {
        // One profile per row of CASES (ids 1…), then a clean one.
        let mut cases: Vec<(i64, Vec<Defect>)> = CASES
            .iter()
            .enumerate()
            .map(|(i, (d, _, _))| (i as i64 + 1, vec![*d]))
            .collect();
        cases.push((CASES.len() as i64 + 1, vec![]));
        let profiles = cases.iter().map(|(id, d)| profile_json(*id, d)).collect();
        let o = run_fixture(profiles);
        let wrong = problems(&o, &cases);
        assert!(wrong.is_empty(), "{wrong:#?}");
        // The finding names the exact field and the fix, e.g. the override on a missing client.
        let f = o.report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["object_id"] == "2" && f["kind"] == "blocker")
            .unwrap();
        assert_eq!(f["field"], "mcp_tool_overrides");
        assert!(f["found"].as_str().unwrap().contains("phantom-2"), "{f}");
        assert!(f["fix"].as_str().unwrap().contains("MCP client"), "{f}");
    }

    #[test]
    fn random_defects_are_blocked_or_carried_and_apply_is_accepted() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let seed: u64 = std::env::var("KS_BIFROST_E2E_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| rand::thread_rng().gen());
        let mut rng = StdRng::seed_from_u64(seed);
        const N: i64 = 400;
        let cases: Vec<(i64, Vec<Defect>)> = (1..=N)
            .map(|id| {
                let mut ds: Vec<Defect> = Vec::new();
                if !rng.gen_bool(0.25) {
                    for _ in 0..rng.gen_range(1..=3) {
                        let d = CASES[rng.gen_range(0..CASES.len())].0;
                        if !ds.iter().any(|x| slot(*x) == slot(d)) {
                            ds.push(d);
                        }
                    }
                }
                ds.sort();
                (id, ds)
            })
            .collect();
        let o = run_fixture(cases.iter().map(|(id, d)| profile_json(*id, d)).collect());
        let wrong = problems(&o, &cases);
        if wrong.is_empty() {
            return;
        }
        // Smallest inventory that still fails: one profile (or, failing that, all of them).
        let suspects: Vec<&(i64, Vec<Defect>)> = cases
            .iter()
            .filter(|(id, _)| {
                wrong.iter().any(|w| {
                    w.starts_with(&format!("profile {id}:"))
                        || w.starts_with(&format!("profile {id} ("))
                })
            })
            .take(10)
            .collect();
        for case in suspects {
            let one = vec![case.clone()];
            let o1 = run_fixture(vec![profile_json(case.0, &case.1)]);
            let w1 = problems(&o1, &one);
            if !w1.is_empty() {
                panic!(
                    "seed {seed} (KS_BIFROST_E2E_SEED={seed}); smallest inventory: {:#}\n{w1:#?}",
                    bifrost_defects::fixture(vec![profile_json(case.0, &case.1)])
                );
            }
        }
        panic!("seed {seed} (KS_BIFROST_E2E_SEED={seed}); {N} profiles: {wrong:#?}");
    }
}
