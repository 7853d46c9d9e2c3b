//! Workato's legacy side, read only: workspaces, legacy API clients, access profiles and
//! API collections (the source of both Workato pairs).

use anyhow::{anyhow, Result};
use reqwest::Method;
use std::sync::Arc;

use super::{object_digest, parse, wire, Api, WorkatoConn, WsAddr, PER_PAGE};
use crate::model::{AuthType, Collection, Inventory, LegacyClient, Profile, Workspace};

/// Read-only access to the legacy side.
pub struct LegacyApi {
    conn: Arc<WorkatoConn>,
}

impl LegacyApi {
    pub fn new(conn: Arc<WorkatoConn>) -> LegacyApi {
        LegacyApi { conn }
    }

    /// The workspaces a run covers: the Developer API's own, or the Embedded customers.
    pub async fn workspaces(&self, api: Api, filter: Option<&[String]>) -> Result<Vec<Workspace>> {
        let admin = WsAddr {
            id: self.conn.admin_workspace.clone(),
            managed: false,
        };
        let all = match api {
            Api::Developer => vec![Workspace {
                id: self.conn.admin_workspace.clone(),
                external_id: None,
                name: "Developer API workspace".into(),
                admin: true,
            }],
            Api::Embedded => {
                // Counted in the Embedded scope (SD-W19).
                let admin_embedded = WsAddr {
                    managed: true,
                    ..admin
                };
                let mut out = Vec::new();
                for page in 1.. {
                    let url = format!(
                        "{}/api/managed_users?page={page}&per_page={PER_PAGE}",
                        self.conn.base
                    );
                    let body = self
                        .conn
                        .call(
                            &admin_embedded,
                            Method::GET,
                            url,
                            "/api/managed_users".into(),
                            None,
                        )
                        .await?;
                    let items = wire::list_items(body)
                        .map_err(|e| anyhow!("GET /api/managed_users: {e}"))?;
                    let n = items.len();
                    for item in items {
                        let u: wire::ManagedUser = parse("managed user", item)?;
                        out.push(Workspace {
                            id: u.id.to_string(),
                            external_id: u.external_id,
                            name: u.name,
                            admin: false,
                        });
                    }
                    if n < PER_PAGE {
                        break;
                    }
                }
                out
            }
        };
        Ok(match filter {
            None => all,
            Some(f) => all
                .into_iter()
                .filter(|w| {
                    f.iter()
                        .any(|x| *x == w.id || Some(x.as_str()) == w.external_id.as_deref())
                })
                .collect(),
        })
    }

    /// Read one workspace's legacy clients, profiles and collections.
    pub async fn export_workspace(&self, ws: &Workspace, inv: &mut Inventory) -> Result<()> {
        let (clients, profiles) = self.read_legacy(ws).await?;
        let addr = WsAddr::for_workspace(ws);
        let collections = self
            .conn
            .list_map(
                &addr,
                false,
                "api_collections",
                "api_collections",
                |c: wire::Collection| {
                    Ok(Collection {
                        workspace: ws.id.clone(),
                        id: c.id,
                        name: c.name,
                        url: c.url,
                    })
                },
            )
            .await?;
        inv.collections.extend(collections);
        inv.legacy_clients.extend(clients);
        inv.profiles.extend(profiles);
        Ok(())
    }

    /// The digests of the legacy list pages (L1 + L3), for the stale-plan check: the same
    /// requests as `read_legacy`, without keeping the objects.
    pub async fn legacy_digests(&self, ws: &Workspace) -> Result<Vec<[u8; 32]>> {
        let addr = WsAddr::for_workspace(ws);
        let mut digests = self
            .conn
            .list_map(
                &addr,
                false,
                "api_clients",
                "api_clients",
                |c: wire::LegacyClient| {
                    Ok(object_digest(
                        "legacy_client",
                        &legacy_client_from_wire(&ws.id, c),
                    ))
                },
            )
            .await?;
        digests.extend(
            self.conn
                .list_map(
                    &addr,
                    false,
                    "api_access_profiles",
                    "api_access_profiles",
                    |p: wire::AccessProfile| {
                        let p = profile_from_wire(&ws.id, p);
                        Ok(object_digest("profile", &p))
                    },
                )
                .await?,
        );
        Ok(digests)
    }

    /// The legacy list pages (L1 + L3): what the export fingerprint covers, and what apply
    /// re-reads to detect a stale plan.
    pub async fn read_legacy(&self, ws: &Workspace) -> Result<(Vec<LegacyClient>, Vec<Profile>)> {
        let addr = WsAddr::for_workspace(ws);
        let clients = self
            .conn
            .list_map(
                &addr,
                false,
                "api_clients",
                "api_clients",
                |c: wire::LegacyClient| Ok(legacy_client_from_wire(&ws.id, c)),
            )
            .await?;
        let profiles = self
            .conn
            .list_map(
                &addr,
                false,
                "api_access_profiles",
                "api_access_profiles",
                |p: wire::AccessProfile| Ok(profile_from_wire(&ws.id, p)),
            )
            .await?;
        Ok((clients, profiles))
    }
}

pub(super) fn legacy_client_from_wire(ws: &str, c: wire::LegacyClient) -> LegacyClient {
    LegacyClient {
        workspace: ws.to_string(),
        id: c.id,
        name: c.name,
        project_id: c.project_id,
    }
}

pub(super) fn profile_from_wire(ws: &str, p: wire::AccessProfile) -> Profile {
    let auth_type = AuthType::parse(p.auth_type.as_deref().unwrap_or(""));
    // Only an RSA public key is kept; an HMAC secret echoed by a server is dropped unread, and
    // an RSA profile's value that is not a public key (perhaps a secret pasted into the wrong
    // field) is kept only as a description the plan reports.
    let jwt_public_key = match p.jwt_method.as_deref() {
        Some("rsa") => p.jwt_secret.filter(|s| !s.trim().is_empty()).map(|s| {
            if crate::model::is_rsa_public_key_pem(&s) {
                s
            } else {
                crate::model::not_a_public_key(&s)
            }
        }),
        _ => None,
    };
    Profile {
        workspace: ws.to_string(),
        id: p.id,
        name: p.name,
        legacy_client_id: p.api_client_id,
        collection_ids: p.api_collection_ids,
        active: p.active,
        auth_type,
        jwt_method: p.jwt_method,
        jwt_public_key,
        oidc_issuer: p.oidc_issuer,
        oidc_jwks_uri: p.oidc_jwks_uri,
        access_profile_claim: p.access_profile_claim,
        required_claims: p.required_claims,
        allowed_issuers: p.allowed_issuers,
        ip_allow_list: p.ip_allow_list,
        policy_id: p.api_policy_id,
        oauth_client_id: p.oauth_client_id,
    }
}
