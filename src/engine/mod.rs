//! The engine: apply and rollback over any target, behind one [`Target`] trait. It names no
//! vendor — a target is whatever `crate::registry` builds for the recorded pair.
//!
//! The plan is read as *units*: a unit is an optional container (a Workato v2 client) and the
//! credentials that go in it (its API keys), or one credential on its own (a Descope access
//! key, a Bifrost virtual key). Every remote write follows one discipline:
//! journal the intent (durable) → send → record the remote id → secret to the sink (fsynced)
//! → done. An operation left in `intent` is reconciled by looking its object up (by marker,
//! or by name inside our container) before anything is sent again; a credential that exists
//! but whose secret never reached the sink gets a new secret — it is ours and nobody uses it
//! yet. Legacy objects are never touched here.

pub mod adoption;
pub mod apply;
mod progress;
pub mod rollback;
pub mod rollout;
mod stale;
pub mod switch;
#[cfg(test)]
mod tests;
pub mod verify;

use anyhow::Result;
use futures::future::BoxFuture;
use secrecy::SecretString;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::http::{Http, HttpError, RetryClass};
use crate::model::{ClientSpec, Inventory, KeySpec, Plan, StandaloneSpec, Vendor};
use crate::state::{client_op_id, item_op_id, key_op_id};

pub use crate::model::{RemoteId, Words};
pub use progress::{Next, Progress};
pub use stale::check_source;

/// A future a target returns (boxed, so the trait is object-safe).
pub type Fut<'a, T> = BoxFuture<'a, T>;
/// A write to the target: its result, or the vendor's refusal.
pub type Call<'a, T> = Fut<'a, Result<T, HttpError>>;
/// The credentials inside a container, by name.
pub type Listing<'a> = Fut<'a, Result<HashMap<String, Found>>>;

/// Where a credential lives: its unit, and the id of the unit's container once it exists.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub unit: &'a Unit<'a>,
    pub container: Option<&'a RemoteId>,
}

/// A container and its credentials, or one credential on its own.
#[derive(Debug)]
pub struct Unit<'p> {
    pub workspace: &'p str,
    pub container: Option<&'p ClientSpec>,
    pub creds: Vec<Cred<'p>>,
}

impl Unit<'_> {
    /// The journal id of the container's create, if the unit has one.
    pub fn container_op(&self) -> Option<String> {
        self.container.map(|c| client_op_id(&c.marker))
    }

    /// Every journal id the unit owns: its container's, then its credentials'.
    pub fn op_ids(&self) -> impl Iterator<Item = String> + '_ {
        self.container_op()
            .into_iter()
            .chain(self.creds.iter().map(Cred::op_id))
    }
}

/// One planned credential: a view of its spec in the plan (nothing copied, so the units of
/// a 100,000-key plan cost little more than the plan).
#[derive(Debug)]
pub struct Cred<'p> {
    pub spec: CredSpec<'p>,
}

impl<'p> Cred<'p> {
    /// Its journal id.
    pub fn op_id(&self) -> String {
        match self.spec {
            CredSpec::Key(k) => key_op_id(&k.source),
            CredSpec::Standalone(i) => item_op_id(&i.source),
        }
    }

    /// Its provenance marker (the source profile's).
    pub fn source(&self) -> &'p str {
        match self.spec {
            CredSpec::Key(k) => &k.source,
            CredSpec::Standalone(i) => &i.source,
        }
    }

    pub fn name(&self) -> &'p str {
        match self.spec {
            CredSpec::Key(k) => &k.name,
            CredSpec::Standalone(i) => &i.name,
        }
    }

    pub fn active(&self) -> bool {
        match self.spec {
            CredSpec::Key(k) => k.active,
            CredSpec::Standalone(i) => i.active,
        }
    }

    /// Its key spec, for a target whose credentials live in containers.
    pub fn key(&self, vendor: Vendor) -> Result<&'p KeySpec, HttpError> {
        match self.spec {
            CredSpec::Key(k) => Ok(k),
            CredSpec::Standalone(_) => Err(not_supported(vendor, "a standalone credential")),
        }
    }

    /// Its item spec, for a target whose credentials stand alone.
    pub fn item(&self, vendor: Vendor) -> Result<&'p StandaloneSpec, HttpError> {
        match self.spec {
            CredSpec::Standalone(i) => Ok(i),
            CredSpec::Key(_) => Err(not_supported(vendor, "a key inside a client")),
        }
    }
}

/// What the plan says about a credential, in the plan's own type.
#[derive(Debug, Clone, Copy)]
pub enum CredSpec<'p> {
    /// An API key inside a container.
    Key(&'p KeySpec),
    /// A standalone credential with its planned body.
    Standalone(&'p StandaloneSpec),
}

/// The plan as units, in plan order.
pub fn units(plan: &Plan) -> Vec<Unit<'_>> {
    let grouped = plan.clients.iter().map(|c| Unit {
        workspace: &c.workspace,
        container: Some(c),
        creds: c
            .keys
            .iter()
            .map(|k| Cred {
                spec: CredSpec::Key(k),
            })
            .collect(),
    });
    let flat = plan.items.iter().map(|i| Unit {
        workspace: &i.workspace,
        container: None,
        creds: vec![Cred {
            spec: CredSpec::Standalone(i),
        }],
    });
    grouped.chain(flat).collect()
}

/// A credential that exists on the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub id: RemoteId,
    /// Whether it is active, when the lookup said.
    pub active: Option<bool>,
}

/// A freshly issued secret. `Debug` redacts (the secret is a `SecretString`).
#[derive(Debug)]
pub struct Issued {
    pub id: RemoteId,
    pub secret: SecretString,
    /// The sink record's `kind` (e.g. `auth_token`, `oauth_client_secret`, `access_key`).
    pub kind: String,
    pub oauth_client_id: Option<String>,
    /// Whether the credential is active now (a target that cannot create inactive says so,
    /// and the engine deactivates it after the secret is safe).
    pub active: bool,
}

/// What one lookup found of ours on the target: containers and standalone credentials, by
/// marker.
#[derive(Debug, Default)]
pub struct Survey {
    pub containers: HashMap<String, Found>,
    pub creds: HashMap<String, Found>,
}

/// A migration target: where new credentials are created. Implemented once per vendor in its
/// folder; the engine sees nothing else of the vendor.
pub trait Target: Send + Sync {
    fn vendor(&self) -> Vendor;
    fn http(&self) -> &Http;
    fn words(&self) -> Words;
    /// The sink record's `target_kind` (`api_key`, `access_key`, `virtual_key`).
    fn credential_kind(&self) -> &'static str;
    /// The rate budget that paces writes to `workspace`, per minute (for the ETA).
    fn per_minute(&self, workspace: &str) -> Option<f64>;

    /// One lookup for these units: their containers (by marker) and any standalone
    /// credentials of ours (by source marker).
    fn survey<'a>(&'a self, units: &'a [&'a Unit<'a>]) -> Fut<'a, Result<Survey>>;
    /// The credentials inside one of our containers, by name (a target without containers
    /// has none).
    fn list_in<'a>(&'a self, _unit: &'a Unit<'a>, _container: &'a RemoteId) -> Listing<'a> {
        Box::pin(async { Ok(HashMap::new()) })
    }
    fn create_container<'a>(
        &'a self,
        _spec: &'a ClientSpec,
        _signing_secret: Option<&'a SecretString>,
    ) -> Call<'a, RemoteId> {
        let vendor = self.vendor();
        Box::pin(async move { Err(not_supported(vendor, "a container")) })
    }
    fn delete_container<'a>(&'a self, _unit: &'a Unit<'a>, _id: &'a RemoteId) -> Call<'a, ()> {
        let vendor = self.vendor();
        Box::pin(async move { Err(not_supported(vendor, "a container")) })
    }

    fn create<'a>(&'a self, at: At<'a>, cred: &'a Cred<'a>) -> Call<'a, Issued>;
    /// A new secret for one of our credentials whose first secret was lost.
    fn renew<'a>(&'a self, at: At<'a>, cred: &'a Cred<'a>, found: &'a Found) -> Call<'a, Issued>;
    fn deactivate<'a>(&'a self, at: At<'a>, id: &'a RemoteId) -> Call<'a, ()>;
    fn delete<'a>(&'a self, at: At<'a>, id: &'a RemoteId) -> Call<'a, ()>;

    /// Read the units' objects back and compare each with the plan, field by field (one
    /// listing per scope, never one GET per credential).
    fn read_back<'a>(&'a self, units: &'a [Unit<'a>]) -> Fut<'a, Result<verify::ReadBack>>;
    /// How a credential is named in a difference, e.g. `API key "x" in client "y"`.
    fn object(&self, unit: &Unit, cred: &Cred) -> String;

    /// Where each planned credential's use shows in the target's records, by its source
    /// marker; `created` maps source markers to the ids apply journaled.
    fn usage_idents(
        &self,
        plan: &Plan,
        created: &HashMap<String, String>,
    ) -> HashMap<String, adoption::Ident> {
        plan.items
            .iter()
            .filter_map(|i| {
                let id = created.get(&i.source)?;
                Some((
                    i.source.clone(),
                    adoption::Ident::Key {
                        workspace: i.workspace.clone(),
                        id: id.clone(),
                    },
                ))
            })
            .collect()
    }

    /// A create refused because the name is taken — perhaps by our own lost earlier attempt,
    /// so the engine looks the name up inside the container before failing.
    fn name_taken(&self, _e: &HttpError) -> bool {
        false
    }
    /// What to check, appended to a failure message.
    fn hint(&self, _e: &HttpError) -> &'static str {
        ""
    }
}

/// A migration source: where the legacy credentials are read from, checked for change since
/// export, and disabled (cutover) or re-enabled (rollback). Implemented once per vendor in
/// its folder.
pub trait Source: Send + Sync {
    /// The source as it is now, as the fingerprint export recorded.
    fn fingerprint(&self) -> Fut<'_, Result<String>>;
    /// The exported inventory's fingerprint with the profiles whose markers are in
    /// `disabled` (keyshift's own cutover) counted inactive.
    fn fingerprint_with_disabled(
        &self,
        inv: Inventory,
        disabled: &HashSet<String>,
    ) -> Result<String>;
    /// The whole message when the source no longer matches the export.
    fn stale(&self) -> String;
    /// How a source profile is called in messages, e.g. `legacy profile`.
    fn profile_noun(&self) -> &'static str;
    /// The marker a cutover journals for one source profile (ids are the source's strings).
    fn profile_marker(&self, workspace: &str, profile: &str) -> String;
    /// What a user should know once profiles are disabled (empty when nothing).
    fn disable_note(&self) -> &'static str {
        ""
    }
    /// The profiles of the exported inventory that were active at export.
    fn exported_active(&self, inv: &Inventory) -> HashSet<(String, String)>;
    /// Disable (cutover) or re-enable (undo, rollback) one source profile.
    fn set_profile_active<'a>(
        &'a self,
        workspace: &'a str,
        profile: &'a str,
        active: bool,
    ) -> Fut<'a, Result<(), HttpError>>;
    /// The consumers of the planned profiles — who moves, as the source's usage records can
    /// tell them apart — with their old side and the markers of their new credentials
    /// (`Consumer::new` is the target's to fill).
    fn consumers(&self, inv: &Inventory, plan: &Plan) -> Result<Vec<adoption::Consumer>>;
    /// Whether disabling a profile turns its consumers' old credentials away (then a refusal
    /// after cutover makes a consumer `broken`).
    fn disabling_refuses_old(&self) -> bool {
        true
    }
    /// When the source's vendor retires every old credential on its own (a sunset).
    fn retired_at(
        &self,
        _mapping: &crate::mapping::Mapping,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        None
    }
    /// A write refused because the source is frozen (no more legacy writes after
    /// `frozen_at`).
    fn is_frozen(
        &self,
        _e: &HttpError,
        _now: chrono::DateTime<chrono::Utc>,
        _frozen_at: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        false
    }
}

/// What an export read from a source, and what to record about it.
#[derive(Debug, Default)]
pub struct Exported {
    pub inv: Inventory,
    /// The source's own fingerprint; `None` for the legacy one the state computes as it saves
    /// the inventory.
    pub fingerprint: Option<String>,
    /// The API it was read through (`export.api`).
    pub api: String,
    /// More meta to record.
    pub meta: Vec<(&'static str, String)>,
    /// The inventory file it was read from (`export --from`), absolute.
    pub source_file: Option<String>,
    /// The vendor's clock minus ours, when a response said.
    pub server_offset_secs: Option<i64>,
    pub requests: u64,
    /// Counts for the journal's export event.
    pub counts: serde_json::Map<String, serde_json::Value>,
    /// What was read, in one sentence (the command adds where it went).
    pub summary: String,
    /// Lines to show before the summary.
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

/// After Ctrl-C, how long requests in flight may take to finish (docs/reliability.md, "Interruptions").
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(4);

/// Set on Ctrl-C: no new work is taken after it.
pub fn ctrl_c_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    stop
}

/// Whether a failed lookup may succeed if asked again later (the vendor throttled, erred or
/// dropped the connection through all the retries), rather than being refused.
pub fn transient(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<HttpError>())
        .any(|h| h.retry_class() != RetryClass::Permanent && !h.unreachable())
}

/// Wait for the stop flag, then for the grace period: in-flight requests get that long.
pub async fn stopped_with_grace(stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(GRACE).await;
}

/// A step a target does not have (e.g. a container on a target without containers): a
/// plain refusal, never retried.
pub fn not_supported(vendor: Vendor, what: &str) -> HttpError {
    refused_here(vendor, format!("{what} is not supported by this target"))
}

/// A call refused before it was sent, e.g. a plan a target cannot read.
pub fn refused_here(vendor: Vendor, message: String) -> HttpError {
    HttpError::Status {
        method: "-".into(),
        route: vendor.as_str().into(),
        status: 400,
        message,
        retry_after: None,
        body: None,
    }
}
