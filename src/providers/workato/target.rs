//! Workato v2 as the engine's target: v2 API clients are the containers, API keys the
//! credentials. Clients are found again by the marker in their description, keys by name
//! inside our client.

use anyhow::Result;
use futures::FutureExt;
use secrecy::SecretString;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::{V2Api, WorkatoConn, WsAddr};
use crate::engine::verify::ReadBack;
use crate::engine::{
    self, At, Call, Cred, CredSpec, Found, Fut, Issued, Listing, RemoteId, Survey, Unit, Words,
};
use crate::http::{Http, HttpError};
use crate::model::{ClientSpec, Vendor, Workspace};

/// How v2 clients and API keys are called in messages.
pub const WORDS: Words = Words {
    container: "v2 client",
    containers: "v2 API clients",
    credential: "API key",
    credentials: "API keys",
    renewal: "refresh",
};

/// The v2 side of the workspaces of one export.
pub struct ApiKeys {
    target: V2Api,
    workspaces: Vec<Workspace>,
}

impl ApiKeys {
    pub fn new(conn: Arc<WorkatoConn>, workspaces: Vec<Workspace>) -> ApiKeys {
        ApiKeys {
            target: V2Api::new(conn),
            workspaces,
        }
    }

    fn addr(&self, ws: &str) -> WsAddr {
        WsAddr::find(&self.workspaces, ws)
    }

    /// K6 or K4 on one of our keys.
    async fn on_key(&self, at: At<'_>, id: &RemoteId, write: KeyWrite) -> Result<(), HttpError> {
        let (ws, client, key) = (self.addr(at.unit.workspace), container(at)?, num(id)?);
        match write {
            KeyWrite::Disable => self.target.disable_key(&ws, client, key).await,
            KeyWrite::Delete => self.target.delete_key(&ws, client, key).await,
        }
    }
}

enum KeyWrite {
    Disable,
    Delete,
}

/// A numeric id, as every Workato object has.
fn num(id: &RemoteId) -> Result<i64, HttpError> {
    id.as_i64()
        .ok_or_else(|| engine::not_supported(Vendor::Workato, "a non-numeric id"))
}

/// The id of the client a key goes in.
fn container(at: At<'_>) -> Result<i64, HttpError> {
    let id = at.container;
    num(id.ok_or_else(|| engine::not_supported(Vendor::Workato, "an API key outside a client"))?)
}

fn issued(k: super::Issued, active: bool) -> Issued {
    Issued {
        id: RemoteId::Num(k.key_id),
        secret: k.secret,
        kind: k.kind.into(),
        oauth_client_id: k.oauth_client_id,
        active,
    }
}

impl engine::Target for ApiKeys {
    fn vendor(&self) -> Vendor {
        Vendor::Workato
    }

    /// Workato's logs name the client of a request: a key's use shows as its v2 client's.
    fn usage_idents(
        &self,
        plan: &crate::model::Plan,
        _created: &std::collections::HashMap<String, String>,
    ) -> std::collections::HashMap<String, engine::adoption::Ident> {
        plan.clients
            .iter()
            .flat_map(|c| {
                c.keys.iter().map(move |k| {
                    (
                        k.source.clone(),
                        engine::adoption::Ident::Client {
                            workspace: c.workspace.clone(),
                            name: c.name.clone(),
                        },
                    )
                })
            })
            .collect()
    }

    fn http(&self) -> &Http {
        self.target.conn().http()
    }

    fn words(&self) -> Words {
        WORDS
    }

    fn credential_kind(&self) -> &'static str {
        "api_key"
    }

    fn per_minute(&self, workspace: &str) -> Option<f64> {
        self.target.conn().budget(&self.addr(workspace)).per_minute
    }

    /// One V1 listing per workspace.
    fn survey<'a>(&'a self, units: &'a [&'a Unit<'a>]) -> Fut<'a, Result<Survey>> {
        async move {
            let mut survey = Survey::default();
            let spaces: BTreeSet<&str> = units
                .iter()
                .filter(|u| u.container.is_some())
                .map(|u| u.workspace)
                .collect();
            for ws in spaces {
                for rc in self.target.list_clients(&self.addr(ws)).await? {
                    if let Some(m) = rc.marker() {
                        let found = Found {
                            id: RemoteId::Num(rc.id),
                            active: None,
                        };
                        survey.containers.insert(m.to_string(), found);
                    }
                }
            }
            Ok(survey)
        }
        .boxed()
    }

    fn list_in<'a>(&'a self, unit: &'a Unit<'a>, container: &'a RemoteId) -> Listing<'a> {
        async move {
            let keys = self
                .target
                .list_keys(&self.addr(unit.workspace), num(container)?)
                .await?;
            Ok(keys
                .into_iter()
                .map(|k| {
                    let found = Found {
                        id: RemoteId::Num(k.id),
                        active: Some(k.active),
                    };
                    (k.name, found)
                })
                .collect())
        }
        .boxed()
    }

    fn create_container<'a>(
        &'a self,
        spec: &'a ClientSpec,
        signing_secret: Option<&'a SecretString>,
    ) -> Call<'a, RemoteId> {
        async move {
            let ws = self.addr(&spec.workspace);
            let id = self.target.create_client(&ws, spec, signing_secret).await?;
            Ok(RemoteId::Num(id))
        }
        .boxed()
    }

    fn create<'a>(&'a self, at: At<'a>, cred: &'a Cred<'a>) -> Call<'a, Issued> {
        async move {
            let key = cred.key(Vendor::Workato)?;
            let ws = self.addr(at.unit.workspace);
            let k = self.target.create_key(&ws, container(at)?, key).await?;
            Ok(issued(k, key.active))
        }
        .boxed()
    }

    /// K7 on the new key (never a legacy profile).
    fn renew<'a>(&'a self, at: At<'a>, cred: &'a Cred<'a>, found: &'a Found) -> Call<'a, Issued> {
        async move {
            let ws = self.addr(at.unit.workspace);
            let (client, key) = (container(at)?, num(&found.id)?);
            let k = self.target.refresh_key(&ws, client, key).await?;
            Ok(issued(k, cred.active()))
        }
        .boxed()
    }

    fn deactivate<'a>(&'a self, at: At<'a>, id: &'a RemoteId) -> Call<'a, ()> {
        Box::pin(self.on_key(at, id, KeyWrite::Disable))
    }

    fn delete<'a>(&'a self, at: At<'a>, id: &'a RemoteId) -> Call<'a, ()> {
        Box::pin(self.on_key(at, id, KeyWrite::Delete))
    }

    fn delete_container<'a>(&'a self, unit: &'a Unit<'a>, id: &'a RemoteId) -> Call<'a, ()> {
        async move {
            let ws = self.addr(unit.workspace);
            self.target.delete_client(&ws, num(id)?).await
        }
        .boxed()
    }

    fn read_back<'a>(&'a self, units: &'a [Unit<'a>]) -> Fut<'a, Result<ReadBack>> {
        Box::pin(super::verify::read_back(
            &self.target,
            &self.workspaces,
            units,
        ))
    }

    fn object(&self, unit: &Unit, cred: &Cred) -> String {
        match (unit.container, cred.spec) {
            (Some(spec), CredSpec::Key(key)) => super::verify::key_object(spec, key),
            _ => format!("API key {:?}", cred.name()),
        }
    }

    fn name_taken(&self, e: &HttpError) -> bool {
        e.status() == Some(400) && e.to_string().contains("already been taken")
    }

    fn hint(&self, e: &HttpError) -> &'static str {
        match e.status() {
            Some(400 | 422) if e.to_string().contains("already been taken") => {
                " — another object already has this name; rename it, or change the name \
                 template in the mapping file, then apply --retry-failed"
            }
            Some(401) => " — check KEYSHIFT_WORKATO_TOKEN",
            Some(403) => " — the token lacks the API platform privilege",
            Some(429) | Some(503) => " — the vendor kept refusing; run apply again later",
            _ => "",
        }
    }
}
