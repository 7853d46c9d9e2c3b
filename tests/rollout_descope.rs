//! The rollout, Workato → Descope access keys: the old side's evidence is the Workato
//! gateway's Logs export (legacy clients), the new side's is Descope's audit search (access-key
//! exchanges). keyshift's own verify exchanges are left out. A wave disables the moved
//! consumer's legacy profile; a call with its old token after that makes it broken; undo gives
//! it back while its access key keeps working.

mod common;

use common::{adoption_lines, write_fixture, Run, Sandbox};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

fn token(n: u8) -> String {
    format!("{n}").repeat(64)
}

fn fixture() -> Value {
    let clients = [(100, "Mover"), (101, "Never"), (102, "Idle")];
    json!({"workato": {"workspaces": [{
        "id": 1, "name": "Acme",
        "api_collections": [{"id": 10, "name": "Orders API", "version": "1"}],
        "api_policies": [],
        "legacy_clients": clients.iter().map(|(id, n)| json!({"id": id, "name": n})).collect::<Vec<_>>(),
        "access_profiles": clients.iter().enumerate().map(|(i, (id, n))| json!({
            "id": 200 + i as i64, "name": format!("{n} profile"), "api_client_id": id,
            "api_collection_ids": [10], "active": true, "auth_type": "token",
            "ip_allow_list": [], "secret": token(i as u8 + 1)})).collect::<Vec<_>>(),
        "v2_clients": [], "api_keys": []
    }]}})
}

struct World {
    sandbox: Sandbox,
    run: Run,
    gateway: String,
    /// profile id → access key cleartext
    new: BTreeMap<i64, String>,
}

impl World {
    fn old(&self, profile: i64) -> u16 {
        reqwest::blocking::Client::new()
            .get(format!("{}/orders", self.gateway))
            .header("api-token", token((profile - 200) as u8 + 1))
            .send()
            .unwrap()
            .status()
            .as_u16()
    }

    fn exchange(&self, profile: i64) -> u16 {
        let project = self.sandbox.var("KEYSHIFT_DESCOPE_PROJECT_ID");
        reqwest::blocking::Client::new()
            .post(format!(
                "{}/v1/auth/accesskey/exchange",
                self.sandbox.var("KEYSHIFT_DESCOPE_URL")
            ))
            .bearer_auth(format!("{project}:{}", self.new[&profile]))
            .json(&json!({}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    }

    fn adoption(&self, code: i32) -> BTreeMap<String, Value> {
        let path = self.run.dir.path().join("logs.csv");
        self.sandbox.download_workato_logs(1, &path);
        let d = self.run.ok(
            &[
                "--json",
                "adoption",
                "--workato-logs",
                path.to_str().unwrap(),
            ],
            code,
        );
        adoption_lines(&d)
    }

    fn active(&self) -> BTreeSet<i64> {
        self.sandbox.active_profiles(1)
    }
}

#[test]
fn descope_exchanges_are_the_new_side_and_a_wave_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path(), &fixture());
    let sandbox = Sandbox::start(&["--fixture", path.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export", "--mapping", "workato-legacy-to-descope"], 0);
    run.ok(&["plan"], 0);
    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify", "--live", "--probe-deadline", "5"], 0);
    let gateway = sandbox.workspace(1)["api_collections"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let new = run.new_secrets_by_profile();
    let w = World {
        sandbox,
        run,
        gateway,
        new,
    };
    assert_eq!(w.old(200), 200);
    assert_eq!(w.old(201), 200);
    w.sandbox.set_clock("2025-11-23T12:00:00Z");
    assert_eq!(w.exchange(200), 200);
    assert_eq!(w.old(201), 200);
    let a = w.adoption(0);
    assert_eq!(a["100"]["status"], "moved", "{}", a["100"]);
    assert!(
        a["100"]["why"].as_str().unwrap().contains("Descope audit"),
        "{}",
        a["100"]
    );
    assert_eq!(a["101"]["status"], "waiting");
    // verify --live exchanged Idle's key too; that is keyshift's own traffic, not adoption.
    assert_eq!(a["102"]["status"], "idle", "{}", a["102"]);

    w.run.ok(&["cutover", "--yes"], 0);
    assert_eq!(w.active(), BTreeSet::from([201, 202]));
    assert_eq!(w.old(200), 401);
    let a = w.adoption(4);
    assert_eq!(a["100"]["status"], "broken");
    w.run
        .ok(&["cutover", "--undo", "--yes", "--client", "100"], 0);
    assert_eq!(w.active(), BTreeSet::from([200, 201, 202]));
    assert_eq!(w.old(200), 200);
    assert_eq!(w.exchange(200), 200, "the access key stays");
    assert_eq!(
        w.sandbox.state()["descope"]["access_keys"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}
