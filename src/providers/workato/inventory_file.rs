//! The Workato inventory as a file: what `export --to-file` writes and `export --from` reads,
//! in the fixture format of docs/fixtures.md (the shape of the sandbox's `/_sandbox/state`).
//!
//! For teams past the legacy sunset: the legacy API answers 410, but an earlier export (or a
//! sandbox state dump) still says which consumers must move. Reading goes through the same
//! lenient wire types as the live API, so a file is held to the same rules: no credential is
//! ever read from it (HMAC secrets, tokens and OAuth secrets in a fixture are ignored), and an
//! RSA profile's `jwt_secret` is kept only if it is a public key.

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::Path;

use super::{legacy_client_from_wire, profile_from_wire, wire};
use crate::errors::KeyshiftError;
use crate::model::{Collection, Inventory, Workspace};

#[derive(Deserialize)]
struct FileDoc {
    workato: Option<FileWorkato>,
}

#[derive(Deserialize)]
struct FileWorkato {
    #[serde(default)]
    workspaces: Vec<FileWorkspace>,
}

#[derive(Deserialize)]
struct FileWorkspace {
    #[serde(deserialize_with = "wire::id")]
    id: i64,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    api_collections: Vec<wire::Collection>,
    #[serde(default)]
    legacy_clients: Vec<wire::LegacyClient>,
    #[serde(default)]
    access_profiles: Vec<wire::AccessProfile>,
}

/// Read an inventory file. The first workspace is the admin (Developer) workspace, as in a
/// fixture.
pub fn read(path: &Path) -> Result<Inventory> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the inventory file {}", path.display()))?;
    parse(&text).map_err(|e| {
        KeyshiftError::Config(format!(
            "inventory file {}: {e} — it must be in the fixture format of docs/fixtures.md \
             (what `keyshift export --to-file` writes)",
            path.display()
        ))
        .into()
    })
}

fn parse(text: &str) -> std::result::Result<Inventory, String> {
    let doc: FileDoc = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let workspaces = doc
        .workato
        .ok_or("no \"workato\" object at the top")?
        .workspaces;
    if workspaces.is_empty() {
        return Err("\"workato.workspaces\" is empty".into());
    }
    let mut inv = Inventory::default();
    for (i, w) in workspaces.into_iter().enumerate() {
        let ws = w.id.to_string();
        inv.workspaces.push(Workspace {
            id: ws.clone(),
            external_id: w.external_id,
            name: w.name.unwrap_or_else(|| format!("Workspace {ws}")),
            admin: i == 0,
        });
        inv.collections
            .extend(w.api_collections.into_iter().map(|c| Collection {
                workspace: ws.clone(),
                id: c.id,
                name: c.name,
                url: c.url,
            }));
        inv.legacy_clients.extend(
            w.legacy_clients
                .into_iter()
                .map(|c| legacy_client_from_wire(&ws, c)),
        );
        inv.profiles.extend(
            w.access_profiles
                .into_iter()
                .map(|p| profile_from_wire(&ws, p)),
        );
    }
    Ok(inv)
}

/// The inventory in the fixture format. It holds no secret: the model never does (an RSA
/// profile's public key is not one).
pub fn render(inv: &Inventory) -> Value {
    let workspaces: Vec<Value> = inv
        .workspaces
        .iter()
        .map(|w| {
            let of = |ws: &str| ws == w.id;
            json!({
                "id": w.id.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(w.id)),
                "external_id": w.external_id,
                "name": w.name,
                "api_collections": inv.collections.iter().filter(|c| of(&c.workspace))
                    .map(|c| json!({"id": c.id, "name": c.name, "url": c.url}))
                    .collect::<Vec<_>>(),
                "legacy_clients": inv.legacy_clients.iter().filter(|c| of(&c.workspace))
                    .map(|c| json!({"id": c.id, "name": c.name, "project_id": c.project_id}))
                    .collect::<Vec<_>>(),
                "access_profiles": inv.profiles.iter().filter(|p| of(&p.workspace))
                    .map(|p| json!({
                        "id": p.id, "name": p.name, "api_client_id": p.legacy_client_id,
                        "api_collection_ids": p.collection_ids, "active": p.active,
                        "auth_type": p.auth_type.as_str(), "jwt_method": p.jwt_method,
                        "jwt_secret": p.jwt_public_key.as_deref()
                            .filter(|k| crate::model::is_rsa_public_key_pem(k)),
                        "oidc_issuer": p.oidc_issuer, "oidc_jwks_uri": p.oidc_jwks_uri,
                        "access_profile_claim": p.access_profile_claim,
                        "required_claims": p.required_claims,
                        "allowed_issuers": p.allowed_issuers,
                        "ip_allow_list": p.ip_allow_list, "api_policy_id": p.policy_id,
                        "oauth_client_id": p.oauth_client_id,
                    }))
                    .collect::<Vec<_>>(),
                "v2_clients": [], "api_keys": [],
            })
        })
        .collect();
    json!({"workato": {"workspaces": workspaces}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Profile;

    #[test]
    fn a_rendered_inventory_reads_back_the_same() {
        let mut inv = Inventory {
            workspaces: vec![Workspace {
                id: "1".into(),
                external_id: None,
                name: "Acme".into(),
                admin: true,
            }],
            collections: vec![Collection {
                workspace: "1".into(),
                id: 10,
                name: "Orders".into(),
                url: Some("https://apim.example/acme/orders-v1".into()),
            }],
            ..Inventory::default()
        };
        inv.legacy_clients.push(crate::model::LegacyClient {
            workspace: "1".into(),
            id: 100,
            name: "Portal".into(),
            project_id: Some(5),
        });
        let mut p = Profile::for_test(200, 100, "Partner A");
        p.ip_allow_list = vec!["203.0.113.0/24".into()];
        p.policy_id = Some(5);
        inv.profiles.push(p);
        let text = serde_json::to_string(&render(&inv)).unwrap();
        assert_eq!(parse(&text).unwrap(), inv);
    }

    #[test]
    fn credentials_in_a_fixture_are_never_read() {
        let text = r#"{"workato":{"workspaces":[{"id":1,"legacy_clients":[{"id":1,"name":"c"}],
            "access_profiles":[{"id":2,"name":"p","api_client_id":1,"auth_type":"jwt",
            "jwt_method":"hmac","jwt_secret":"shared-hmac-secret","secret":"token-value"}]}]}}"#;
        let inv = parse(text).unwrap();
        let dumped = serde_json::to_string(&inv).unwrap();
        assert!(!dumped.contains("shared-hmac-secret") && !dumped.contains("token-value"));
    }

    #[test]
    fn a_file_that_is_not_an_inventory_is_named() {
        assert!(parse("{}").unwrap_err().contains("workato"));
        assert!(parse(r#"{"workato":{"workspaces":[]}}"#)
            .unwrap_err()
            .contains("empty"));
    }
}
