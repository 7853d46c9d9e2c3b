//! The rollout, Bifrost access profiles → standalone virtual keys: holders call the sandbox's
//! inference route with their profile-managed keys (old) and their new keys; Bifrost's
//! request logs are the evidence. A profile is deactivated only once all its holders moved;
//! the holders' profile-managed keys keep working after that, so nobody becomes
//! broken; undo re-activates it. With logging switched off, nothing is guessed.

mod common;

use common::{adoption_lines, Run, Sandbox, BIFROST_HOLDERS};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

struct World {
    sandbox: Sandbox,
    run: Run,
    /// consumer id (`profile:user`) → old key value
    old: BTreeMap<String, String>,
    /// consumer id → new key value
    new: BTreeMap<String, String>,
}

impl World {
    fn start(extra: &[&str]) -> World {
        World::start_in("per_holder", extra)
    }

    fn start_in(mode: &str, extra: &[&str]) -> World {
        let mut args = vec!["--seed", "5", "--rate-scale", "0"];
        args.extend_from_slice(extra);
        let sandbox = Sandbox::start(&args);
        let run = Run::new(&sandbox);
        let m = run.bifrost_mapping(mode);
        run.ok(&["export", "--mapping", &m], 0);
        let _ = run.ks(&["plan"]);
        run.ok(&["apply", "--yes"], 0);
        run.ok(&["verify", "--live"], 0);
        let creds = sandbox.consumer_credentials();
        let mut old = BTreeMap::new();
        for c in creds["bifrost"].as_array().unwrap() {
            let user = c["user_id"].as_str().unwrap();
            if BIFROST_HOLDERS.contains(&user) {
                old.insert(
                    format!("{}:{user}", c["profile_id"]),
                    c["value"].as_str().unwrap().to_string(),
                );
            }
        }
        let mut new = BTreeMap::new();
        for r in run.sink_records() {
            // keyshift:bifrost:default:profile:<p>[:holder:<u>] — shared mode: one key per
            // profile, the same new credential for each of its holders.
            let parts: Vec<&str> = r["source"].as_str().unwrap().split(':').collect();
            let secret = r["secret"].as_str().unwrap().to_string();
            match parts.get(6) {
                Some(user) => {
                    new.insert(format!("{}:{user}", parts[4]), secret);
                }
                None => {
                    for c in old
                        .keys()
                        .filter(|c| c.starts_with(&format!("{}:", parts[4])))
                    {
                        new.insert(c.clone(), secret.clone());
                    }
                }
            }
        }
        World {
            sandbox,
            run,
            old,
            new,
        }
    }

    fn infer(&self, key: &str) -> u16 {
        reqwest::blocking::Client::new()
            .post(format!("{}/v1/chat/completions", self.sandbox.var("KEYSHIFT_BIFROST_URL")))
            .header("x-bf-vk", key)
            .json(&json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    }

    fn clock(&self, now: &str) {
        self.sandbox.set_clock(now);
    }

    fn adoption(&self, code: i32) -> BTreeMap<String, Value> {
        let d = self.run.ok(&["--json", "adoption"], code);
        adoption_lines(&d)
    }

    /// Consumers of active profiles that hold both an old and a new credential.
    fn callable(&self) -> Vec<String> {
        let active = self.active_profiles();
        self.old
            .keys()
            .filter(|c| {
                self.new.contains_key(*c)
                    && active.contains(&c.split(':').next().unwrap().parse().unwrap())
            })
            .cloned()
            .collect()
    }

    fn active_profiles(&self) -> BTreeSet<i64> {
        self.sandbox.state()["bifrost"]["access_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["is_active"] == true)
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    }
}

fn status(a: &BTreeMap<String, Value>, c: &str) -> String {
    a.get(c)
        .unwrap_or_else(|| panic!("no consumer {c}: {a:#?}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn holders_move_a_profile_is_cut_over_when_all_its_holders_moved_and_undone() {
    let w = World::start(&[]);
    // Consumers of active profiles with both an old and a new credential, by profile.
    let active = w.active_profiles();
    let mut by_profile: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &w.callable() {
        by_profile
            .entry(c.split(':').next().unwrap().to_string())
            .or_default()
            .push(c.clone());
    }
    assert!(by_profile.len() >= 2, "{by_profile:?}");
    // The profile whose holders all move, and another one's holders who do not.
    let (moving_profile, movers) = by_profile.iter().next().unwrap();
    let (_, others) = by_profile.iter().nth(1).unwrap();
    let waiter = &others[0];

    // Day 0: everyone calls with the old key.
    for c in movers.iter().chain(others) {
        assert_eq!(w.infer(&w.old[c]), 200, "old key of {c}");
    }
    // Day 8: the movers call with their new keys only; the waiter still with the old one.
    w.clock("2025-11-23T12:00:00Z");
    for c in movers {
        assert_eq!(w.infer(&w.new[c]), 200, "new key of {c}");
    }
    assert_eq!(w.infer(&w.old[waiter]), 200);
    let a = w.adoption(0);
    for c in movers {
        assert_eq!(status(&a, c), "moved", "{}", a[c]);
        assert!(
            a[c]["why"].as_str().unwrap().contains("Bifrost log entry"),
            "{}",
            a[c]
        );
    }
    assert_eq!(status(&a, waiter), "waiting");

    // The wave deactivates exactly the profile whose holders all moved.
    let before = w.active_profiles();
    w.run.ok(&["cutover", "--yes"], 0);
    let after = w.active_profiles();
    let off: BTreeSet<i64> = before.difference(&after).copied().collect();
    assert_eq!(
        off,
        BTreeSet::from([moving_profile.parse::<i64>().unwrap()])
    );
    // The holders' profile-managed keys keep working: no one is broken, and
    // adoption keeps reporting old use after the cutover.
    assert_eq!(w.infer(&w.old[&movers[0]]), 200);
    let a = w.adoption(0);
    assert_eq!(status(&a, &movers[0]), "moving");
    assert!(a.values().all(|v| v["status"] != "broken"));

    // Undo by profile: active again; every new key still answers.
    w.run.ok(
        &["cutover", "--undo", "--yes", "--profile", moving_profile],
        0,
    );
    assert_eq!(w.active_profiles(), before);
    for (c, key) in &w.new {
        if active.contains(&c.split(':').next().unwrap().parse().unwrap()) {
            assert_eq!(w.infer(key), 200, "new key of {c} after undo");
        }
    }
}

#[test]
fn with_logging_switched_off_nothing_is_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sandbox.toml");
    std::fs::write(&config, "[bifrost]\nlogging = false\n").unwrap();
    let w = World::start(&["--config", config.to_str().unwrap()]);
    let c = w.callable().into_iter().next().unwrap();
    assert_eq!(w.infer(&w.new[&c]), 200);
    let a = w.adoption(0);
    assert!(!a.is_empty());
    for v in a.values() {
        assert_eq!(v["status"], "unknown", "{v}");
        assert!(v["why"].as_str().unwrap().contains("logging"), "{v}");
    }
}

#[test]
fn in_shared_mode_each_named_holder_is_a_consumer_of_the_profile_key() {
    let w = World::start_in("per_profile", &[]);
    let c = w.callable().into_iter().next().unwrap();
    assert_eq!(w.infer(&w.old[&c]), 200);
    w.clock("2025-11-23T12:00:00Z");
    assert_eq!(w.infer(&w.new[&c]), 200);
    let a = w.adoption(0);
    assert!(a
        .keys()
        .all(|id| !id.ends_with(":*") || !w.old.contains_key(id)));
    // New use is the profile's: every holder of that profile shows it; old quiet is the
    // holder's own.
    assert_eq!(status(&a, &c), "moved", "{}", a[&c]);
}
