//! The emulated Workato account: workspaces and everything in them, and how each object looks
//! on the wire and in `/_sandbox/state`.
//!
//! Fields are deliberately loose (`auth_type` is any string, IP entries are unchecked strings,
//! collection ids need not exist) because the sandbox must hold bad data as faithfully as good:
//! validation happens only on the write routes, never on what a fixture or the generator put
//! in. Secrets are kept as [`StoredSecret`]: the clear value when the sandbox made it or a
//! fixture supplied it, otherwise only its SHA-256 (a state dump loaded back as a fixture).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::sandbox::clock::wire_time;
use crate::sandbox::config::ReadTokens;

/// Lowercase hex SHA-256 of a string's UTF-8.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A credential the sandbox holds. `Debug` never shows the clear value.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    clear: Option<String>,
    sha256: String,
}

impl StoredSecret {
    /// A secret whose clear value is known.
    pub fn from_clear(clear: impl Into<String>) -> Self {
        let clear = clear.into();
        Self {
            sha256: sha256_hex(&clear),
            clear: Some(clear),
        }
    }

    /// A secret known only by its hash (e.g. loaded from a state dump).
    pub fn from_sha256(sha256: impl Into<String>) -> Self {
        Self {
            clear: None,
            sha256: sha256.into().to_ascii_lowercase(),
        }
    }

    /// The clear value, when known.
    pub fn clear(&self) -> Option<&str> {
        self.clear.as_deref()
    }

    /// Lowercase hex SHA-256 of the clear value.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Whether `presented` is this secret.
    pub fn matches(&self, presented: &str) -> bool {
        match &self.clear {
            Some(c) => c == presented,
            None => sha256_hex(presented) == self.sha256,
        }
    }
}

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredSecret(sha256={})", self.sha256)
    }
}

/// A client's `auth_token` as reads show it. Clients carry no credential of their own in
/// this model (keys do), so the sandbox derives a stable per-client value that nothing
/// accepts; in `full` mode it is still a secret-shaped string keyshift must not keep.
fn with_client_token(mut v: Value, id: u64, created: DateTime<Utc>, tokens: ReadTokens) -> Value {
    let token = sha256_hex(&format!(
        "sandbox-client-token:{id}:{}",
        created.timestamp_micros()
    ));
    if let (Value::Object(m), Some(shown)) = (&mut v, tokens.show(&token)) {
        m.insert("auth_token".into(), json!(shown));
    }
    v
}

fn sha_of(s: &Option<StoredSecret>) -> Value {
    match s {
        Some(s) => Value::String(s.sha256().to_owned()),
        None => Value::Null,
    }
}

/// Next free id per object kind. Legacy and v2 clients share `client` (SD-W16).
#[derive(Debug, Clone)]
pub struct IdSequences {
    pub client: u64,
    pub profile: u64,
    pub key: u64,
    pub collection: u64,
    pub policy: u64,
}

impl Default for IdSequences {
    fn default() -> Self {
        Self {
            client: 1001,
            profile: 5001,
            key: 70001,
            collection: 101,
            policy: 11,
        }
    }
}

impl IdSequences {
    fn take(counter: &mut u64) -> u64 {
        let id = *counter;
        *counter += 1;
        id
    }
    pub fn next_client(&mut self) -> u64 {
        Self::take(&mut self.client)
    }
    pub fn next_profile(&mut self) -> u64 {
        Self::take(&mut self.profile)
    }
    pub fn next_key(&mut self) -> u64 {
        Self::take(&mut self.key)
    }
    pub fn next_collection(&mut self) -> u64 {
        Self::take(&mut self.collection)
    }
    pub fn next_policy(&mut self) -> u64 {
        Self::take(&mut self.policy)
    }

    /// Continue every sequence right after the largest id of its kind in `workspaces`
    /// (kinds with no objects keep their default start).
    pub fn continue_after(&mut self, workspaces: &BTreeMap<u64, Workspace>) {
        let max = |f: &dyn Fn(&Workspace) -> Option<u64>| workspaces.values().filter_map(f).max();
        let next = |counter: &mut u64, m: Option<u64>| {
            if let Some(m) = m {
                *counter = m + 1;
            }
        };
        next(
            &mut self.client,
            max(&|w| {
                w.legacy_clients
                    .keys()
                    .chain(w.v2_clients.keys())
                    .max()
                    .copied()
            }),
        );
        next(
            &mut self.profile,
            max(&|w| w.profiles.keys().max().copied()),
        );
        next(&mut self.key, max(&|w| w.keys.keys().max().copied()));
        next(
            &mut self.collection,
            max(&|w| w.collections.keys().max().copied()),
        );
        next(&mut self.policy, max(&|w| w.policies.keys().max().copied()));
    }
}

/// The whole Workato side of the sandbox.
#[derive(Debug, Clone, Default)]
pub struct WorkatoState {
    /// By id. The admin workspace is one of them.
    pub workspaces: BTreeMap<u64, Workspace>,
    /// The Developer / Embed admin workspace; the others are its Embedded customers.
    pub admin_id: u64,
    pub seq: IdSequences,
    /// OAuth2 access tokens the gateway issued: token → grant.
    pub oauth_tokens: BTreeMap<String, OAuthGrant>,
}

/// An access token issued by the gateway's `/oauth2/token`.
#[derive(Debug, Clone)]
pub struct OAuthGrant {
    pub workspace_id: u64,
    pub credential: Credential,
    pub expires_at: DateTime<Utc>,
}

/// What a gateway credential resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A v2 API key.
    Key(u64),
    /// A legacy access profile.
    Profile(u64),
}

/// A map by id that also knows each id's position, so that page `k` of a list is found
/// without walking the `(k-1) × per_page` entries before it (legacy lists page by offset;
/// reading 1,000 pages of 100,000 profiles would otherwise be quadratic). Reads go through
/// `Deref` to the map; writes go through `insert`/`get_mut`, which keep the order.
#[derive(Debug, Clone)]
pub struct IdMap<T> {
    map: BTreeMap<u64, T>,
    /// The map's keys, ascending.
    order: Vec<u64>,
}

impl<T> Default for IdMap<T> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            order: Vec::new(),
        }
    }
}

impl<T> std::ops::Deref for IdMap<T> {
    type Target = BTreeMap<u64, T>;
    fn deref(&self) -> &BTreeMap<u64, T> {
        &self.map
    }
}

impl<T> IdMap<T> {
    pub fn insert(&mut self, id: u64, value: T) -> Option<T> {
        let old = self.map.insert(id, value);
        if old.is_none() {
            // New ids are almost always the largest: push; otherwise keep the order.
            match self.order.last() {
                Some(last) if *last > id => {
                    let at = self.order.partition_point(|k| *k < id);
                    self.order.insert(at, id);
                }
                _ => self.order.push(id),
            }
        }
        old
    }

    pub fn get_mut(&mut self, id: &u64) -> Option<&mut T> {
        self.map.get_mut(id)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.map.values_mut()
    }

    /// The values from position `start` on, in id order.
    pub fn values_from(&self, start: usize) -> impl Iterator<Item = &T> {
        self.order
            .get(start..)
            .unwrap_or_default()
            .iter()
            .filter_map(|id| self.map.get(id))
    }
}

/// One workspace (admin or Embedded customer).
#[derive(Debug, Clone)]
pub struct Workspace {
    pub id: u64,
    pub external_id: Option<String>,
    pub name: String,
    /// Gateway path prefix: collections live at `<gateway>/<prefix>/<slug>-v<version>`.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub collections: BTreeMap<u64, Collection>,
    pub policies: BTreeMap<u64, Policy>,
    pub legacy_clients: IdMap<LegacyClient>,
    pub profiles: IdMap<AccessProfile>,
    pub v2_clients: BTreeMap<u64, V2Client>,
    pub keys: BTreeMap<u64, ApiKey>,
    /// client id → its key ids, and legacy client id → its profile ids: per-client lookups
    /// stay cheap at 100,000 objects. Kept by `insert_key`/`remove_key`/`insert_profile`.
    pub key_index: BTreeMap<u64, std::collections::BTreeSet<u64>>,
    pub profile_index: BTreeMap<u64, std::collections::BTreeSet<u64>>,
}

/// An API collection (C1).
#[derive(Debug, Clone)]
pub struct Collection {
    pub id: u64,
    pub name: String,
    pub version: String,
    pub slug: String,
    /// Live gateway address, rewritten to this sandbox on load.
    pub url: String,
    pub api_spec_url: String,
    pub project_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An access policy (rate limit / quota), shared by both models (SD-W7).
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: u64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A legacy API client (4.1).
#[derive(Debug, Clone)]
pub struct LegacyClient {
    pub id: u64,
    pub name: String,
    pub project_id: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A legacy access profile (4.2).
#[derive(Debug, Clone)]
pub struct AccessProfile {
    pub id: u64,
    pub name: String,
    pub api_client_id: u64,
    pub api_collection_ids: Vec<u64>,
    pub active: bool,
    pub auth_type: String,
    pub jwt_method: Option<String>,
    pub jwt_secret: Option<StoredSecret>,
    pub oidc_issuer: Option<String>,
    pub oidc_jwks_uri: Option<String>,
    pub access_profile_claim: Option<String>,
    pub required_claims: Vec<String>,
    pub allowed_issuers: Vec<String>,
    pub ip_allow_list: Vec<String>,
    pub api_policy_id: Option<u64>,
    pub oauth_client_id: Option<String>,
    /// The legacy credential for any auth type (the token, or the JWT claim value).
    pub secret: Option<StoredSecret>,
    pub oauth_client_secret: Option<StoredSecret>,
    /// Private key PEM a consumer signs with (RSA/OIDC), sandbox-only.
    pub signing_key: Option<StoredSecret>,
    /// Key id that goes with `signing_key`.
    pub signing_kid: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A v2 API client (4.4).
#[derive(Debug, Clone)]
pub struct V2Client {
    pub id: u64,
    pub name: String,
    pub description: Option<String>,
    pub project_id: Option<u64>,
    pub auth_type: String,
    pub api_collection_ids: Vec<u64>,
    pub api_policy_id: Option<u64>,
    pub jwt_method: Option<String>,
    pub jwt_secret: Option<StoredSecret>,
    pub oidc_issuer: Option<String>,
    pub oidc_jwks_uri: Option<String>,
    pub access_profile_claim: Option<String>,
    pub required_claims: Vec<String>,
    pub allowed_issuers: Vec<String>,
    pub email: Option<String>,
    pub api_portal_id: Option<u64>,
    pub mtls_enabled: Option<bool>,
    pub validation_formula: Option<String>,
    pub cert_bundle_ids: Option<Vec<u64>>,
    pub logo: Option<String>,
    pub logo_2x: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A v2 API key (4.5).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: u64,
    pub api_client_id: u64,
    pub name: String,
    pub active: bool,
    pub active_since: DateTime<Utc>,
    pub ip_allow_list: Vec<String>,
    pub ip_deny_list: Vec<String>,
    pub auth_token: Option<StoredSecret>,
    pub oauth_client_id: Option<String>,
    pub oauth_client_secret: Option<StoredSecret>,
    pub created_at: DateTime<Utc>,
    /// The gateway accepts this key's current secret from this instant on (SD-W17).
    pub usable_from: DateTime<Utc>,
}

impl Collection {
    /// C1 item.
    pub fn wire(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "version": self.version, "url": self.url,
            "api_spec_url": self.api_spec_url, "project_id": self.project_id,
            "created_at": wire_time(self.created_at), "updated_at": wire_time(self.updated_at),
        })
    }
}

impl Policy {
    pub fn wire(&self) -> Value {
        json!({"id": self.id, "name": self.name,
               "created_at": wire_time(self.created_at), "updated_at": wire_time(self.updated_at)})
    }
}

impl LegacyClient {
    /// L1 item / L2 response.
    pub fn wire(&self) -> Value {
        json!({"id": self.id, "name": self.name, "project_id": self.project_id,
               "created_at": wire_time(self.created_at), "updated_at": wire_time(self.updated_at)})
    }
}

impl AccessProfile {
    /// L3 item / L5 response: no credential; `jwt_secret` only for non-HMAC methods (SD-W8).
    pub fn wire(&self) -> Value {
        let jwt_secret = if self.jwt_method.as_deref() == Some("hmac") {
            Value::Null
        } else {
            self.jwt_secret
                .as_ref()
                .and_then(StoredSecret::clear)
                .map_or(Value::Null, |s| Value::String(s.to_owned()))
        };
        json!({
            "id": self.id, "name": self.name, "api_client_id": self.api_client_id,
            "api_collection_ids": self.api_collection_ids, "active": self.active,
            "auth_type": self.auth_type, "jwt_method": self.jwt_method, "jwt_secret": jwt_secret,
            "oidc_issuer": self.oidc_issuer, "oidc_jwks_uri": self.oidc_jwks_uri,
            "access_profile_claim": self.access_profile_claim,
            "required_claims": self.required_claims, "allowed_issuers": self.allowed_issuers,
            "ip_allow_list": self.ip_allow_list, "api_policy_id": self.api_policy_id,
            "oauth_client_id": self.oauth_client_id,
            "created_at": wire_time(self.created_at), "updated_at": wire_time(self.updated_at),
        })
    }

    /// L4 / L8 response: the wire object plus the credential — `secret` for token profiles,
    /// `oauth_client_secret` for oauth2 profiles, nothing for the others (SD-W9).
    pub fn wire_with_secret(&self) -> Value {
        let mut v = self.wire();
        let (field, secret) = match self.auth_type.as_str() {
            "token" => ("secret", &self.secret),
            "oauth2" => ("oauth_client_secret", &self.oauth_client_secret),
            _ => return v,
        };
        if let (Value::Object(m), Some(s)) = (&mut v, secret.as_ref().and_then(StoredSecret::clear))
        {
            m.insert(field.into(), json!(s));
        }
        v
    }

    /// `/_sandbox/state` form: the wire object plus every secret as `<field>_sha256`.
    pub fn state(&self) -> Value {
        let mut v = self.wire();
        if let Value::Object(m) = &mut v {
            m.insert("secret_sha256".into(), sha_of(&self.secret));
            m.insert(
                "oauth_client_secret_sha256".into(),
                sha_of(&self.oauth_client_secret),
            );
            m.insert("jwt_secret_sha256".into(), sha_of(&self.jwt_secret));
            m.insert("signing_key_sha256".into(), sha_of(&self.signing_key));
        }
        v
    }
}

impl ApiKey {
    /// K1 item / K3 response. `auth_type` is the parent client's; `auth_token` is the key's
    /// current secret as `tokens` shows it (SD-W9, PC-W1).
    pub fn wire(&self, auth_type: &str, tokens: ReadTokens) -> Value {
        let mut v = self.fields(auth_type);
        let current = self
            .auth_token
            .as_ref()
            .or(self.oauth_client_secret.as_ref());
        if let (Value::Object(m), Some(shown)) = (
            &mut v,
            current
                .and_then(StoredSecret::clear)
                .and_then(|s| tokens.show(s)),
        ) {
            m.insert("auth_token".into(), json!(shown));
        }
        v
    }

    /// The key's fields without any credential.
    fn fields(&self, auth_type: &str) -> Value {
        let mut v = json!({
            "id": self.id, "name": self.name, "auth_type": auth_type,
            "ip_allow_list": self.ip_allow_list, "ip_deny_list": self.ip_deny_list,
            "active": self.active, "active_since": wire_time(self.active_since),
        });
        if let (Value::Object(m), Some(id)) = (&mut v, &self.oauth_client_id) {
            m.insert("oauth_client_id".into(), json!(id));
        }
        v
    }

    /// K2 / K7 response: plus the fresh secret(s) (SD-W9). The published model requires
    /// `auth_token` here too; an oauth2 key's is its client secret.
    pub fn wire_with_secret(&self, auth_type: &str) -> Value {
        let mut v = self.wire(auth_type, ReadTokens::Full);
        if let Value::Object(m) = &mut v {
            if let Some(s) = self.auth_token.as_ref().and_then(StoredSecret::clear) {
                m.insert("auth_token".into(), json!(s));
            }
            if let Some(s) = self
                .oauth_client_secret
                .as_ref()
                .and_then(StoredSecret::clear)
            {
                m.insert("oauth_client_secret".into(), json!(s));
            }
        }
        v
    }

    /// `/_sandbox/state` form.
    pub fn state(&self, auth_type: &str) -> Value {
        let mut v = self.fields(auth_type);
        if let Value::Object(m) = &mut v {
            m.insert("api_client_id".into(), json!(self.api_client_id));
            m.insert("created_at".into(), json!(wire_time(self.created_at)));
            m.insert("auth_token_sha256".into(), sha_of(&self.auth_token));
            m.insert(
                "oauth_client_secret_sha256".into(),
                sha_of(&self.oauth_client_secret),
            );
        }
        v
    }
}

impl Workspace {
    /// An empty workspace.
    pub fn new(id: u64, name: &str, prefix: &str, now: DateTime<Utc>) -> Self {
        Self {
            id,
            external_id: None,
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            created_at: now,
            updated_at: now,
            collections: BTreeMap::new(),
            policies: BTreeMap::new(),
            legacy_clients: IdMap::default(),
            profiles: IdMap::default(),
            v2_clients: BTreeMap::new(),
            keys: BTreeMap::new(),
            key_index: BTreeMap::new(),
            profile_index: BTreeMap::new(),
        }
    }

    pub fn insert_key(&mut self, key: ApiKey) {
        if let Some(old) = self.keys.get(&key.id) {
            if let Some(set) = self.key_index.get_mut(&old.api_client_id) {
                set.remove(&key.id);
            }
        }
        self.key_index
            .entry(key.api_client_id)
            .or_default()
            .insert(key.id);
        self.keys.insert(key.id, key);
    }

    pub fn remove_key(&mut self, id: u64) -> Option<ApiKey> {
        let key = self.keys.remove(&id)?;
        if let Some(set) = self.key_index.get_mut(&key.api_client_id) {
            set.remove(&id);
        }
        Some(key)
    }

    /// Delete every key of a client (V5 cascades).
    pub fn remove_keys_of(&mut self, client_id: u64) {
        for id in self.key_index.remove(&client_id).unwrap_or_default() {
            self.keys.remove(&id);
        }
    }

    pub fn insert_profile(&mut self, profile: AccessProfile) {
        if let Some(old) = self.profiles.get(&profile.id) {
            if let Some(set) = self.profile_index.get_mut(&old.api_client_id) {
                set.remove(&profile.id);
            }
        }
        self.profile_index
            .entry(profile.api_client_id)
            .or_default()
            .insert(profile.id);
        self.profiles.insert(profile.id, profile);
    }

    /// `GET /api/managed_users` item (SD-W19).
    pub fn managed_user_wire(&self) -> Value {
        json!({"id": self.id, "external_id": self.external_id, "name": self.name,
               "created_at": wire_time(self.created_at), "updated_at": wire_time(self.updated_at)})
    }

    fn policies_wire(&self, id: Option<u64>) -> Value {
        match id {
            Some(id) => {
                let name = self.policies.get(&id).map(|p| p.name.clone());
                json!([{"id": id, "name": name}])
            }
            None => json!([]),
        }
    }

    fn collections_wire(&self, ids: &[u64]) -> Value {
        Value::Array(
            ids.iter()
                .map(|id| {
                    let name = self.collections.get(id).map(|c| c.name.clone());
                    json!({"id": id, "name": name})
                })
                .collect(),
        )
    }

    /// Keys of a client, ascending id.
    pub fn keys_of(&self, client_id: u64) -> impl Iterator<Item = &ApiKey> {
        self.key_index
            .get(&client_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.keys.get(id))
    }

    /// Profiles of a legacy client, ascending id.
    pub fn profiles_of(&self, client_id: u64) -> impl Iterator<Item = &AccessProfile> {
        self.profile_index
            .get(&client_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.profiles.get(id))
    }

    /// `ApiClient` wire object of a v2 client (V1 item, V2/V3/V4 `data`). The published
    /// model requires `active`, `active_since` and `auth_token` on clients as well.
    pub fn client_wire(&self, c: &V2Client, tokens: ReadTokens) -> Value {
        let total = self.keys_of(c.id).count();
        let active = self.keys_of(c.id).filter(|k| k.active).count();
        let v = json!({
            "id": c.id, "name": c.name, "description": c.description, "project_id": c.project_id,
            "active_api_keys_count": active, "total_api_keys_count": total,
            "created_at": wire_time(c.created_at), "updated_at": wire_time(c.updated_at),
            "logo": c.logo, "logo_2x": c.logo_2x, "is_legacy": false, "email": c.email,
            "auth_type": c.auth_type, "api_token": null, "mtls_enabled": c.mtls_enabled,
            "validation_formula": c.validation_formula, "cert_bundle_ids": c.cert_bundle_ids,
            "api_policies": self.policies_wire(c.api_policy_id),
            "api_collections": self.collections_wire(&c.api_collection_ids),
            "jwt_method": c.jwt_method, "oidc_issuer": c.oidc_issuer,
            "oidc_jwks_uri": c.oidc_jwks_uri, "access_profile_claim": c.access_profile_claim,
            "required_claims": c.required_claims, "allowed_issuers": c.allowed_issuers,
            "active": true, "active_since": wire_time(c.created_at),
        });
        with_client_token(v, c.id, c.created_at, tokens)
    }

    /// A legacy client as V1/V3 show it (`is_legacy: true`). Its access settings live on its
    /// profiles, so the client-level ones are empty; the key counts count its profiles.
    pub fn legacy_client_as_v2_wire(&self, c: &LegacyClient, tokens: ReadTokens) -> Value {
        let total = self.profiles_of(c.id).count();
        let active = self.profiles_of(c.id).filter(|p| p.active).count();
        let v = json!({
            "id": c.id, "name": c.name, "description": null, "project_id": c.project_id,
            "active_api_keys_count": active, "total_api_keys_count": total,
            "created_at": wire_time(c.created_at), "updated_at": wire_time(c.updated_at),
            "logo": null, "logo_2x": null, "is_legacy": true, "email": null,
            "auth_type": "token", "api_token": null, "mtls_enabled": null,
            "validation_formula": null, "cert_bundle_ids": null,
            "api_policies": [], "api_collections": [],
            "jwt_method": null, "oidc_issuer": null, "oidc_jwks_uri": null,
            "access_profile_claim": null, "required_claims": [], "allowed_issuers": [],
            "active": true, "active_since": wire_time(c.created_at),
        });
        with_client_token(v, c.id, c.created_at, tokens)
    }

    /// The auth type a key inherits from its client.
    pub fn key_auth_type(&self, k: &ApiKey) -> &str {
        self.v2_clients
            .get(&k.api_client_id)
            .map_or("token", |c| c.auth_type.as_str())
    }

    /// This workspace in `/_sandbox/state`.
    pub fn state(&self) -> Value {
        let v2_clients: Vec<Value> = self
            .v2_clients
            .values()
            .map(|c| {
                let mut v = self.client_wire(c, ReadTokens::Omitted);
                if let Value::Object(m) = &mut v {
                    m.insert("jwt_secret_sha256".into(), sha_of(&c.jwt_secret));
                    m.insert("api_portal_id".into(), json!(c.api_portal_id));
                }
                v
            })
            .collect();
        json!({
            "id": self.id, "external_id": self.external_id, "name": self.name,
            "api_collections": self.collections.values().map(Collection::wire).collect::<Vec<_>>(),
            "api_policies": self.policies.values().map(Policy::wire).collect::<Vec<_>>(),
            "legacy_clients": self.legacy_clients.values().map(LegacyClient::wire).collect::<Vec<_>>(),
            "access_profiles": self.profiles.values().map(AccessProfile::state).collect::<Vec<_>>(),
            "v2_clients": v2_clients,
            "api_keys": self.keys.values().map(|k| k.state(self.key_auth_type(k))).collect::<Vec<_>>(),
        })
    }
}

impl WorkatoState {
    /// The `"workato"` part of `/_sandbox/state`.
    pub fn state(&self) -> Value {
        json!({"workspaces": self.workspaces.values().map(Workspace::state).collect::<Vec<_>>()})
    }

    /// The signing-secrets document (docs/sandbox.md, "Signing secrets") for every seeded JWT/OIDC consumer: HMAC
    /// shared secrets and RSA private keys the sandbox knows in clear.
    pub fn signing_secrets(&self) -> Value {
        let mut hmac = Vec::new();
        let mut probe_keys = Vec::new();
        for ws in self.workspaces.values() {
            for p in ws.profiles.values() {
                let is_hmac = p.auth_type == "jwt" && p.jwt_method.as_deref() == Some("hmac");
                if is_hmac {
                    if let Some(s) = p.jwt_secret.as_ref().and_then(StoredSecret::clear) {
                        hmac.push(json!({"workspace": ws.id.to_string(), "profile_id": p.id,
                                         "secret": s}));
                    }
                } else if let Some(pem) = p.signing_key.as_ref().and_then(StoredSecret::clear) {
                    let kid = p
                        .signing_kid
                        .clone()
                        .unwrap_or_else(|| format!("profile-{}", p.id));
                    probe_keys.push(json!({"workspace": ws.id.to_string(), "profile_id": p.id,
                                           "private_key_pem": pem, "kid": kid}));
                }
            }
        }
        json!({"hmac": hmac, "probe_keys": probe_keys})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_secret_matches_and_hides() {
        let s = StoredSecret::from_clear("abc");
        assert!(s.matches("abc"));
        assert!(!s.matches("abd"));
        let h = StoredSecret::from_sha256(s.sha256());
        assert!(h.matches("abc"));
        assert_eq!(h.clear(), None);
        assert!(!format!("{s:?}").contains("abc\""));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn id_map_pages_by_position_in_id_order() {
        let mut m = IdMap::default();
        for id in [5, 9, 2, 7, 1] {
            assert!(m.insert(id, id * 10).is_none());
        }
        assert_eq!(
            m.insert(7, 71),
            Some(70),
            "a second insert replaces, order kept"
        );
        let all: Vec<u64> = m.values_from(0).copied().collect();
        assert_eq!(all, vec![10, 20, 50, 71, 90]);
        assert_eq!(all, m.values().copied().collect::<Vec<_>>());
        assert_eq!(m.values_from(3).copied().collect::<Vec<_>>(), vec![71, 90]);
        assert_eq!(m.values_from(5).count(), 0);
        assert_eq!(m.values_from(99).count(), 0);
    }
}
