//! A test-only pair, registered in the registry's table like the real ones: toy profiles →
//! toy keys, held in memory. It is the proof that a new pair is one folder and one entry
//! (docs/architecture.md, "Adding a pair"): everything it needs is in this folder, and its
//! test drives it through export → plan → apply → verify → adoption → cutover → rollback with
//! the real commands.
//!
//! The toy vendor keeps one [`World`] per store name (`KEYSHIFT_TOY_STORE`), so tests running
//! at once do not share one.

pub mod pair;
#[cfg(test)]
mod tests;

use anyhow::Result;
use chrono::{DateTime, Utc};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use super::standalone::{Changing, Issuing, StandaloneApi, Traits};
use super::RemoteCredential;
use crate::engine::adoption::{Evidence, Seen, UsageSource, Want};
use crate::engine::verify::Verdict;
use crate::engine::{Fut, Words};
use crate::http::{Http, HttpError, RateBudget};
use crate::model::{Ident, Inventory, Plan, Record, SourceRecord, StandaloneSpec, Vendor};

pub const VENDOR: &str = "toy";
/// The toy's one workspace.
pub const WORKSPACE: &str = "default";
const PROFILE_KIND: &str = "toy_profile";

/// The toy vendor's state: its profiles (the old side), the keys keyshift creates (the new
/// side), and every request made with a credential.
#[derive(Debug, Default, Clone)]
pub struct World {
    pub profiles: Vec<ToyProfile>,
    pub keys: Vec<ToyKey>,
    pub uses: Vec<Use>,
    next_key: u64,
}

/// An access profile, and the id of the old credential its consumer holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ToyProfile {
    pub id: i64,
    pub name: String,
    pub active: bool,
    pub old_credential: String,
}

/// A key keyshift created.
#[derive(Debug, Clone)]
pub struct ToyKey {
    pub id: String,
    pub body: Value,
    pub secret: SecretString,
}

impl ToyKey {
    pub fn active(&self) -> bool {
        self.body["active"] == json!(true)
    }
}

/// One request made with a credential (an old credential id or a key id).
#[derive(Debug, Clone)]
pub struct Use {
    pub credential: String,
    pub at: DateTime<Utc>,
    pub refused: bool,
}

static WORLDS: Mutex<BTreeMap<String, World>> = Mutex::new(BTreeMap::new());

/// The world of one store.
pub fn world(store: &str) -> WorldGuard {
    let mut all = WORLDS.lock().unwrap_or_else(|e| e.into_inner());
    all.entry(store.to_string()).or_default();
    WorldGuard(all, store.to_string())
}

pub struct WorldGuard(MutexGuard<'static, BTreeMap<String, World>>, String);

impl std::ops::Deref for WorldGuard {
    type Target = World;
    fn deref(&self) -> &World {
        &self.0[&self.1]
    }
}

impl std::ops::DerefMut for WorldGuard {
    fn deref_mut(&mut self) -> &mut World {
        self.0.get_mut(&self.1).expect("created on lock")
    }
}

impl World {
    /// A consumer calls with a credential: refused when its profile or key is off.
    pub fn call(&mut self, credential: &str, at: DateTime<Utc>) -> bool {
        let ok = self
            .profiles
            .iter()
            .any(|p| p.old_credential == credential && p.active)
            || self.keys.iter().any(|k| k.id == credential && k.active());
        self.uses.push(Use {
            credential: credential.into(),
            at,
            refused: !ok,
        });
        ok
    }
}

/// How toy keys are called in messages.
pub const WORDS: Words = Words {
    container: "",
    containers: "",
    credential: "toy key",
    credentials: "toy keys",
    renewal: "rotation",
};

/// The connection to one store.
pub struct ToyConn {
    store: String,
    http: Http,
    budget: RateBudget,
}

impl ToyConn {
    fn world(&self) -> WorldGuard {
        world(&self.store)
    }
}

/// The export's records: one per profile.
pub fn records(profiles: &[ToyProfile]) -> Vec<SourceRecord> {
    profiles
        .iter()
        .map(|p| SourceRecord {
            kind: PROFILE_KIND.into(),
            workspace: WORKSPACE.into(),
            id: p.id,
            name: p.name.clone(),
            active: Some(p.active),
            body: json!({ "old_credential": p.old_credential }),
        })
        .collect()
}

/// The source's fingerprint: the profiles' ids, names and activity.
fn fingerprint(profiles: impl Iterator<Item = (i64, String, bool)>) -> String {
    use sha2::{Digest, Sha256};
    let mut all: Vec<_> = profiles.collect();
    all.sort();
    hex::encode(Sha256::digest(serde_json::to_vec(&all).unwrap_or_default()))
}

fn profile_marker(profile: &str) -> String {
    format!("keyshift:{VENDOR}:{WORKSPACE}:profile:{profile}")
}

fn refused(what: String) -> HttpError {
    crate::engine::refused_here(Vendor::Toy, what)
}

impl World {
    fn key_mut(&mut self, id: &str) -> Result<&mut ToyKey, HttpError> {
        self.keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| refused(format!("toy key {id} does not exist")))
    }
}

impl StandaloneApi for ToyConn {
    const TRAITS: Traits = Traits {
        vendor: Vendor::Toy,
        words: WORDS,
        kind: "toy_key",
        creates_inactive: true,
        rotates_inactive: true,
    };
    fn http(&self) -> &Http {
        &self.http
    }
    fn budget(&self) -> &RateBudget {
        &self.budget
    }
    fn list_ours(&self) -> Fut<'_, Result<Vec<RemoteCredential>>> {
        let keys = self.world().keys.clone();
        Box::pin(async move {
            Ok(keys
                .into_iter()
                .map(|k| RemoteCredential {
                    active: k.active(),
                    source: k.body["marker"].as_str().map(String::from),
                    id: k.id,
                    body: k.body,
                })
                .collect())
        })
    }
    fn body(item: &StandaloneSpec) -> Result<Value> {
        Ok(json!({
            "name": item.name,
            "active": item.active,
            "marker": item.source,
            "scope": item.grant["scope"],
        }))
    }
    fn create<'a>(&'a self, body: &'a Value) -> Issuing<'a> {
        Box::pin(async move {
            let mut w = self.world();
            w.next_key += 1;
            let id = format!("k{}", w.next_key);
            let secret = new_secret();
            w.keys.push(ToyKey {
                id: id.clone(),
                body: body.clone(),
                secret: secret.clone(),
            });
            Ok((id, secret))
        })
    }
    fn rotate<'a>(&'a self, id: &'a str) -> Issuing<'a> {
        Box::pin(async move {
            let mut w = self.world();
            let key = w.key_mut(id)?;
            key.secret = new_secret();
            Ok((id.to_string(), key.secret.clone()))
        })
    }
    fn set_active<'a>(&'a self, id: &'a str, active: bool) -> Changing<'a> {
        Box::pin(async move {
            let mut w = self.world();
            let key = w.key_mut(id)?;
            key.body["active"] = json!(active);
            Ok(())
        })
    }
    fn delete<'a>(&'a self, id: &'a str) -> Changing<'a> {
        Box::pin(async move {
            self.world().keys.retain(|k| k.id != id);
            Ok(())
        })
    }
    fn probe<'a>(
        &'a self,
        item: &'a StandaloneSpec,
        id: &'a str,
        secret: &'a SecretString,
    ) -> Fut<'a, (Verdict, String)> {
        let w = self.world();
        let key = w.keys.iter().find(|k| k.id == id).cloned();
        drop(w);
        Box::pin(async move {
            let accepted = key
                .as_ref()
                .is_some_and(|k| k.active() && k.secret.expose_secret() == secret.expose_secret());
            match (accepted, item.active) {
                (true, _) => (Verdict::Ok, "the toy vendor accepted the key".into()),
                (false, false) => (Verdict::ExpectedInactive, "inactive, as planned".into()),
                (false, true) => (Verdict::Rejected, "the toy vendor refused the key".into()),
            }
        })
    }
}

fn new_secret() -> SecretString {
    let n: u128 = rand::thread_rng().gen();
    SecretString::from(format!("toy-{n:032x}"))
}

impl crate::engine::Source for ToyConn {
    fn fingerprint(&self) -> Fut<'_, Result<String>> {
        let profiles = self.world().profiles.clone();
        Box::pin(async move {
            Ok(fingerprint(
                profiles.into_iter().map(|p| (p.id, p.name, p.active)),
            ))
        })
    }
    fn fingerprint_with_disabled(
        &self,
        inv: Inventory,
        disabled: &HashSet<String>,
    ) -> Result<String> {
        Ok(fingerprint(inv.records.into_iter().map(|r| {
            let off = disabled.contains(&profile_marker(&r.id.to_string()));
            (r.id, r.name, r.active == Some(true) && !off)
        })))
    }
    fn stale(&self) -> String {
        "the toy profiles changed since export — export and plan again".into()
    }
    fn profile_noun(&self) -> &'static str {
        "toy profile"
    }
    fn profile_marker(&self, _workspace: &str, profile: &str) -> String {
        profile_marker(profile)
    }
    fn exported_active(&self, inv: &Inventory) -> HashSet<(String, String)> {
        inv.records
            .iter()
            .filter(|r| r.active == Some(true))
            .map(|r| (r.workspace.clone(), r.id.to_string()))
            .collect()
    }
    fn set_profile_active<'a>(
        &'a self,
        _workspace: &'a str,
        profile: &'a str,
        active: bool,
    ) -> Fut<'a, Result<(), HttpError>> {
        Box::pin(async move {
            let mut w = self.world();
            let p = w
                .profiles
                .iter_mut()
                .find(|p| p.id.to_string() == profile)
                .ok_or_else(|| refused(format!("toy profile {profile} does not exist")))?;
            p.active = active;
            Ok(())
        })
    }
    /// One consumer per profile: whoever holds its old credential.
    fn consumers(&self, inv: &Inventory, plan: &Plan) -> Result<Vec<crate::model::Consumer>> {
        consumers(inv, plan)
    }
}

/// The consumers of a toy plan: one per profile, its old credential the old side.
pub fn consumers(inv: &Inventory, plan: &Plan) -> Result<Vec<crate::model::Consumer>> {
    Ok(plan
        .items
        .iter()
        .filter_map(|item| {
            let r = inv
                .records
                .iter()
                .find(|r| r.id.to_string() == item.profile_id)?;
            Some(crate::model::Consumer {
                id: item.profile_id.clone(),
                workspace: WORKSPACE.into(),
                name: r.name.clone(),
                client: None,
                profiles: vec![item.profile_id.clone()],
                creds: vec![item.source.clone()],
                old: vec![Ident::Key {
                    workspace: WORKSPACE.into(),
                    id: r.body["old_credential"].as_str()?.to_string(),
                }],
                new: Vec::new(),
                blind: None,
            })
        })
        .collect())
}

/// The toy vendor's request log: every use and refusal, by credential id.
impl UsageSource for ToyConn {
    fn read<'a>(
        &'a self,
        wants: &'a [Want],
        window: &'a crate::model::Window,
    ) -> Fut<'a, Result<Evidence>> {
        let uses = self.world().uses.clone();
        Box::pin(async move {
            let seen = wants
                .iter()
                .map(|want| {
                    let mut seen = Seen::default();
                    for (n, u) in uses.iter().enumerate() {
                        let named = want.idents.iter().any(|i| match i {
                            Ident::Key { id, .. } => *id == u.credential,
                            Ident::Client { .. } => false,
                        });
                        if !named || u.at < window.from || u.at > window.now {
                            continue;
                        }
                        let record = Record {
                            at: u.at,
                            what: format!("toy request {n}"),
                        };
                        if !u.refused {
                            seen.used(record);
                        } else if want.refusals_after.is_some_and(|t| u.at >= t) {
                            seen.refused(record);
                        }
                    }
                    Ok(seen)
                })
                .collect();
            Ok(Evidence {
                seen,
                notes: Vec::new(),
                label: "the toy request log".into(),
                requests: 0,
            })
        })
    }
}
