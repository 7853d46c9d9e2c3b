//! Bad input: findings that name object, field and fix, while valid profiles still migrate;
//! bad state files give one-line errors and exit 1, never a panic.

mod common;

use common::{keyshift, write_fixture, Run, Sandbox};
use serde_json::{json, Value};

fn profile(id: i64, client: i64, name: &str) -> Value {
    json!({
        "id": id, "name": name, "api_client_id": client, "api_collection_ids": [10],
        "active": true, "auth_type": "token", "jwt_method": null, "jwt_secret": null,
        "oidc_issuer": null, "oidc_jwks_uri": null, "access_profile_claim": null,
        "required_claims": [], "allowed_issuers": [], "ip_allow_list": [],
        "api_policy_id": null, "oauth_client_id": null,
        "secret": format!("{:064x}", id)
    })
}

fn bad_fixture() -> Value {
    let mut unknown = profile(201, 100, "Legacy SAML");
    unknown["auth_type"] = json!("saml");
    let mut jwt = profile(202, 100, "JWT without key");
    jwt["auth_type"] = json!("jwt");
    jwt["jwt_method"] = json!("rsa");
    let mut bad_ip = profile(203, 100, "Bad IP");
    bad_ip["ip_allow_list"] = json!(["300.1.2.3"]);
    let mut missing = profile(204, 100, "Missing collection");
    missing["api_collection_ids"] = json!([10, 999]);
    let mut inactive = profile(207, 101, "Night batch");
    inactive["active"] = json!(false);
    inactive["ip_allow_list"] = json!(["203.0.113.0/24", "2001:db8::/32"]);
    let mut other_policy = profile(208, 101, "Reporting");
    other_policy["api_collection_ids"] = json!([11]);
    other_policy["api_policy_id"] = json!(5);
    json!({"workato": {"workspaces": [{
        "id": 1, "external_id": null, "name": "Acme",
        "api_collections": [
            {"id": 10, "name": "Orders API", "version": "1", "url": "x", "api_spec_url": "x",
             "project_id": "1", "created_at": "2024-01-01T00:00:00.000+00:00",
             "updated_at": "2024-01-01T00:00:00.000+00:00"},
            {"id": 11, "name": "Reports API", "version": "1", "url": "x", "api_spec_url": "x",
             "project_id": "1", "created_at": "2024-01-01T00:00:00.000+00:00",
             "updated_at": "2024-01-01T00:00:00.000+00:00"}
        ],
        "api_policies": [{"id": 5, "name": "Partners - 1000/h"}],
        "legacy_clients": [
            {"id": 100, "name": "Partner portal", "project_id": null},
            {"id": 101, "name": "Warehouse", "project_id": null}
        ],
        "access_profiles": [
            unknown, jwt, bad_ip, missing,
            profile(205, 100, "Partner A"), profile(206, 100, "Partner A"),
            inactive, other_policy, profile(209, 101, "Ops")
        ],
        "v2_clients": [], "api_keys": []
    }]}})
}

#[test]
fn bad_data_gives_findings_and_every_valid_profile_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = write_fixture(dir.path(), &bad_fixture());
    let sandbox = Sandbox::start(&["--fixture", fixture.to_str().unwrap(), "--rate-scale", "0"]);
    let run = Run::new(&sandbox);
    run.ok(&["export"], 0);
    let plan = run.ok(&["plan"], 3);
    // Each bad profile is named with its field and a fix.
    for (id, field, fix) in [
        (
            "201",
            "auth_type",
            "set auth_type to token, jwt, oauth2 or oidc",
        ),
        ("202", "jwt_secret", "RSA public key"),
        ("203", "ip_allow_list", "correct the entry"),
        ("204", "api_collection_ids", "remove the collection"),
    ] {
        let line = plan
            .stdout
            .lines()
            .find(|l| {
                l.contains(&format!("profile {id} ")) && l.contains(&format!("field {field}"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no finding for profile {id} field {field}:\n{}",
                    plan.stdout
                )
            });
        assert!(line.contains("[blocker]") && line.contains(fix), "{line}");
    }
    let report: Value =
        serde_json::from_str(&run.ok(&["report", "--format", "json"], 0).stdout).unwrap();
    let dup = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["object_id"] == "206" && f["field"] == "name")
        .expect("duplicate name finding");
    assert_eq!(dup["kind"], "transformed");
    assert!(dup["fix"].as_str().unwrap().contains("Partner A (206)"));

    run.ok(&["apply", "--yes"], 0);
    run.ok(&["verify"], 0);
    let ws = sandbox.workspace(1);
    let keys = ws["api_keys"].as_array().unwrap();
    let mut names: Vec<&str> = keys.iter().map(|k| k["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "Night batch",
            "Ops",
            "Partner A",
            "Partner A (206)",
            "Reporting"
        ]
    );
    // 100's valid profiles share a client; 101 splits by collection/policy into two.
    assert_eq!(ws["v2_clients"].as_array().unwrap().len(), 3);
    let night = keys.iter().find(|k| k["name"] == "Night batch").unwrap();
    assert_eq!(night["active"], false);
    assert_eq!(
        night["ip_allow_list"],
        json!(["203.0.113.0/24", "2001:db8::/32"])
    );
    // The blocked profiles were not touched, and their keys do not exist.
    assert_eq!(run.sink_records().len(), 5);
}

fn expect_one_line_error(args: &[&str], state: &std::path::Path, what: &str) {
    let out = keyshift()
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line, got {stderr}");
    assert!(
        lines[0].starts_with("error: state file"),
        "{what}: {stderr}"
    );
}

#[test]
fn bad_state_paths_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A directory.
    expect_one_line_error(&["status"], dir.path(), "directory");
    expect_one_line_error(&["export"], dir.path(), "directory");
    // Unwritable: its parent is a regular file.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    expect_one_line_error(&["export"], &file.join("keyshift.db"), "unwritable");
    // Another program's SQLite database.
    let foreign = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    conn.execute_batch(
        "CREATE TABLE notes(id INTEGER, body TEXT); INSERT INTO notes VALUES (1, 'x');",
    )
    .unwrap();
    drop(conn);
    expect_one_line_error(&["status"], &foreign, "foreign sqlite");
    expect_one_line_error(&["export"], &foreign, "foreign sqlite");
    // Not a database at all, and a truncated one.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(
        &garbage,
        b"this is not a database, just text that is long enough",
    )
    .unwrap();
    expect_one_line_error(&["status"], &garbage, "garbage");
    // Missing state for a read command.
    expect_one_line_error(&["status"], &dir.path().join("none.db"), "missing");
}
