//! Vendor-neutral types: the inventory a source exports, the plan the mapping engine makes,
//! findings, and the rollout's consumers and judged statuses. Wire types stay inside `providers/<vendor>/`; everything else sees these.
//!
//! Nothing in here ever holds a secret value: HMAC signing secrets are represented by a keyed
//! fingerprint, new credentials never pass through the model at all.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The vendors keyshift reads from and writes to. Behaviour is chosen by matching on this,
/// never by comparing a vendor's name as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    Workato,
    Bifrost,
    Descope,
    /// The test-only pair's vendor (`providers::toy`).
    #[cfg(test)]
    Toy,
}

impl Vendor {
    /// The name in markers, findings and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Workato => "workato",
            Vendor::Bifrost => "bifrost",
            Vendor::Descope => "descope",
            #[cfg(test)]
            Vendor::Toy => "toy",
        }
    }
}

impl Vendor {
    /// The name in sentences.
    pub fn title(self) -> &'static str {
        match self {
            Vendor::Workato => "Workato",
            Vendor::Bifrost => "Bifrost",
            Vendor::Descope => "Descope",
            #[cfg(test)]
            Vendor::Toy => "Toy",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A workspace (account) of a vendor. Workato's admin/Developer workspace is `"1"` in the
/// sandbox; Embedded customer workspaces are addressed by numeric id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Workspace {
    pub id: String,
    pub external_id: Option<String>,
    pub name: String,
    /// true for the workspace the management token belongs to (Developer API).
    pub admin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Collection {
    pub workspace: String,
    pub id: i64,
    pub name: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LegacyClient {
    pub workspace: String,
    pub id: i64,
    pub name: String,
    pub project_id: Option<i64>,
}

/// How a consumer authenticates. Unknown values are kept verbatim so that bad data becomes
/// a finding rather than an export failure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthType {
    Token,
    Jwt,
    Oauth2,
    Oidc,
    Unknown(String),
}

impl AuthType {
    pub fn parse(s: &str) -> AuthType {
        match s {
            "token" => AuthType::Token,
            "jwt" => AuthType::Jwt,
            "oauth2" => AuthType::Oauth2,
            "oidc" => AuthType::Oidc,
            other => AuthType::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            AuthType::Token => "token",
            AuthType::Jwt => "jwt",
            AuthType::Oauth2 => "oauth2",
            AuthType::Oidc => "oidc",
            AuthType::Unknown(s) => s,
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuthType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuthType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(AuthType::parse(&s))
    }
}

/// A legacy access profile as exported: access settings + per-credential fields.
/// `jwt_public_key` holds an RSA public key PEM when the source returns one (never an HMAC
/// secret: the source does not return those, and the tool would not store one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    pub workspace: String,
    pub id: i64,
    pub name: String,
    pub legacy_client_id: i64,
    pub collection_ids: Vec<i64>,
    pub active: bool,
    pub auth_type: AuthType,
    pub jwt_method: Option<String>,
    pub jwt_public_key: Option<String>,
    pub oidc_issuer: Option<String>,
    pub oidc_jwks_uri: Option<String>,
    pub access_profile_claim: Option<String>,
    pub required_claims: Vec<String>,
    pub allowed_issuers: Vec<String>,
    pub ip_allow_list: Vec<String>,
    pub policy_id: Option<i64>,
    pub oauth_client_id: Option<String>,
}

impl Profile {
    pub fn marker(&self, vendor: &str) -> String {
        format!("keyshift:{vendor}:{}:profile:{}", self.workspace, self.id)
    }

    /// An active token profile in workspace 1 with one collection, for unit tests.
    #[cfg(test)]
    pub fn for_test(id: i64, client: i64, name: &str) -> Profile {
        Profile {
            workspace: "1".into(),
            id,
            name: name.into(),
            legacy_client_id: client,
            collection_ids: vec![10],
            active: true,
            auth_type: AuthType::Token,
            jwt_method: None,
            jwt_public_key: None,
            oidc_issuer: None,
            oidc_jwks_uri: None,
            access_profile_claim: None,
            required_claims: vec![],
            allowed_issuers: vec![],
            ip_allow_list: vec![],
            policy_id: None,
            oauth_client_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Policy {
    pub workspace: String,
    pub id: i64,
    pub name: String,
}

/// Everything `export` read from the source.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Inventory {
    pub workspaces: Vec<Workspace>,
    pub collections: Vec<Collection>,
    pub legacy_clients: Vec<LegacyClient>,
    pub profiles: Vec<Profile>,
    /// A source's own records (Bifrost's access profiles, MCP clients, holders' copies).
    #[serde(default)]
    pub records: Vec<SourceRecord>,
}

/// A record a source exports beyond the common shape (a gateway's access profiles and its
/// tool clients, named holders' copies), kept as the source wrote it: its planner reads the
/// body back into its own types. The state, the engine and the reports see only these fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceRecord {
    /// What it is, as stored (`bifrost_profile`, `mcp_client`, …).
    pub kind: String,
    pub workspace: String,
    pub id: i64,
    pub name: String,
    /// `Some` for a source profile (a migrated object, a row in the reports): whether it is
    /// active; `None` for what only informs the plan.
    pub active: Option<bool>,
    pub body: serde_json::Value,
}

impl Inventory {
    /// How many source profiles the export read: the common shape's and the records'.
    pub fn source_profile_count(&self) -> usize {
        self.profiles.len() + self.records.iter().filter(|r| r.active.is_some()).count()
    }
}

/// The access settings a v2 client carries. Two profiles of one legacy client with equal
/// settings share a v2 client. `jwt_secret_fingerprint` stands in for an HMAC secret
/// supplied by the operator; the secret itself is looked up at apply time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientSettings {
    pub auth_type: AuthType,
    pub jwt_method: Option<String>,
    pub jwt_public_key: Option<String>,
    pub jwt_secret_fingerprint: Option<String>,
    pub oidc_issuer: Option<String>,
    pub oidc_jwks_uri: Option<String>,
    pub access_profile_claim: Option<String>,
    pub required_claims: BTreeSet<String>,
    pub allowed_issuers: BTreeSet<String>,
    pub collection_ids: BTreeSet<i64>,
    pub policy_id: Option<i64>,
}

/// Where the HMAC signing secret of a planned client comes from (the signing-secrets file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SigningSecretRef {
    pub workspace: String,
    pub profile_id: Option<i64>,
    pub legacy_client_id: Option<i64>,
}

/// One target client to create, with the keys that go in it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientSpec {
    /// Provenance marker, also the idempotency key (first in the remote description).
    pub marker: String,
    pub workspace: String,
    pub legacy_client_id: i64,
    pub legacy_client_name: String,
    pub name: String,
    pub description: String,
    pub project_id: Option<i64>,
    pub settings: ClientSettings,
    pub signing_secret: Option<SigningSecretRef>,
    pub keys: Vec<KeySpec>,
}

/// One target key to create: one per source profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeySpec {
    /// Provenance marker of the source profile.
    pub source: String,
    pub profile_id: i64,
    pub profile_name: String,
    pub name: String,
    pub active: bool,
    pub ip_allow_list: Vec<String>,
}

/// One standalone credential to create (a Descope access key, a Bifrost virtual key):
/// no client grouping, one item per source profile (or profile × holder).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StandaloneSpec {
    /// Provenance marker: the idempotency key, and the sink record's `source`.
    pub source: String,
    pub workspace: String,
    pub profile_id: String,
    pub profile_name: String,
    pub holder: Option<String>,
    pub name: String,
    pub active: bool,
    /// What the credential may do, as the pair's planner decided it, in the planner's own
    /// terms (`providers::descope::plan::AccessKeyGrant`, `providers::bifrost::plan::VirtualKeyGrant`);
    /// never a secret. The target's provider turns it into its create body, and verify
    /// checks the vendor's object against that body. Absent in plans made before grants
    /// existed: apply then asks for `keyshift plan` again.
    #[serde(default)]
    pub grant: serde_json::Value,
}

/// What the mapping engine produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub clients: Vec<ClientSpec>,
    #[serde(default)]
    pub items: Vec<StandaloneSpec>,
    pub findings: Vec<Finding>,
}

impl Plan {
    pub fn key_count(&self) -> usize {
        self.clients.iter().map(|c| c.keys.len()).sum::<usize>() + self.items.len()
    }

    pub fn blockers(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.kind == FindingKind::Blocker)
            .count()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    Carried,
    Transformed,
    Lossy,
    Manual,
    Advice,
    Blocker,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Carried => "carried",
            FindingKind::Transformed => "transformed",
            FindingKind::Lossy => "lossy",
            FindingKind::Manual => "manual",
            FindingKind::Advice => "advice",
            FindingKind::Blocker => "blocker",
        }
    }

    pub fn parse(s: &str) -> Option<FindingKind> {
        Some(match s {
            "carried" => FindingKind::Carried,
            "transformed" => FindingKind::Transformed,
            "lossy" => FindingKind::Lossy,
            "manual" => FindingKind::Manual,
            "advice" => FindingKind::Advice,
            "blocker" => FindingKind::Blocker,
            _ => return None,
        })
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statement about one object: what was found in which field, and the fix.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub vendor: Text,
    pub workspace: String,
    /// `profile`, `legacy_client`, `group`, `mapping`.
    pub object_kind: Text,
    pub object_id: String,
    pub object_name: String,
    pub field: Text,
    pub found: String,
    pub fix: Text,
}

/// Text that is most often a constant (a finding's field name, its fix): a planner of 100,000
/// profiles writes tens of thousands of findings, and each shares its constant parts instead
/// of copying them.
pub type Text = std::borrow::Cow<'static, str>;

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] workspace {}, {} {} \"{}\", field {}: {} — {}",
            self.kind,
            self.workspace,
            self.object_kind.replace('_', " "),
            self.object_id,
            self.object_name,
            self.field,
            self.found,
            self.fix
        )
    }
}

// ---- digests: what the stale-plan check compares -----------------------------------------

/// The fingerprint of what the source held: legacy clients and profiles, order-independent.
pub fn source_fingerprint(clients: &[LegacyClient], profiles: &[Profile]) -> String {
    let digests = clients
        .iter()
        .map(|c| object_digest("legacy_client", c))
        .chain(profiles.iter().map(|p| object_digest("profile", p)))
        .collect();
    combine_digests(digests)
}

/// One object's digest: its kind and its JSON. Computed page by page, so a stale-plan check
/// of 100,000 profiles holds 32 bytes per object, not the objects.
pub fn object_digest<T: Serialize>(kind: &str, v: &T) -> [u8; 32] {
    json_digest(kind, &serde_json::to_vec(v).unwrap_or_default())
}

/// [`object_digest`] of an object already serialized (`json` = `serde_json::to_vec(v)`).
pub fn json_digest(kind: &str, json: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b"\0");
    h.update(json);
    h.finalize().into()
}

pub fn combine_digests(mut digests: Vec<[u8; 32]>) -> String {
    use sha2::{Digest, Sha256};
    digests.sort_unstable();
    let mut h = Sha256::new();
    for d in &digests {
        h.update(d);
    }
    hex::encode(h.finalize())
}

/// Whether `pem` is an RSA public key in PEM form (`PUBLIC KEY` or `RSA PUBLIC KEY`), the only
/// thing an RSA-signed JWT client may carry as its `jwt_secret`. A private key, another key
/// type or free text is not.
pub fn is_rsa_public_key_pem(pem: &str) -> bool {
    let pem = pem.trim();
    let labelled = ["PUBLIC KEY", "RSA PUBLIC KEY"].iter().any(|label| {
        pem.starts_with(&format!("-----BEGIN {label}-----"))
            && pem.ends_with(&format!("-----END {label}-----"))
    });
    labelled && jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).is_ok()
}

/// What an RSA profile's `jwt_secret` is kept as when it is not a PEM public key: a short
/// description, never the value (which may be a secret pasted into the wrong field).
pub fn not_a_public_key(value: &str) -> String {
    let what = if value.contains("PRIVATE KEY") {
        "a PEM private key"
    } else {
        "not a PEM public key"
    };
    format!("({what}, {} characters)", value.chars().count())
}

/// A vendor's id: a number (Workato) or a string (Descope, Bifrost).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RemoteId {
    Num(i64),
    Text(String),
}

impl RemoteId {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            RemoteId::Num(n) => Some(*n),
            RemoteId::Text(_) => None,
        }
    }
}

impl std::fmt::Display for RemoteId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteId::Num(n) => write!(f, "{n}"),
            RemoteId::Text(s) => f.write_str(s),
        }
    }
}

/// What a migrated consumer must change, for the target's `consumer_action`.
#[derive(Debug, Clone)]
pub struct ConsumerChange {
    /// The source profile's auth type (`token`, `oauth2`, `jwt`, `oidc`, …).
    pub auth_type: String,
    /// The JWT claim the profile carries its token in, when it says.
    pub claim: Option<String>,
    pub oauth_client_id: Option<String>,
    /// Where the new secret is: the sink line or the vault entry.
    pub at: String,
}

/// How a target's objects are called in messages.
#[derive(Debug, Clone, Copy)]
pub struct Words {
    /// One container, e.g. `v2 client` (empty for targets without containers).
    pub container: &'static str,
    /// Containers, e.g. `v2 API clients`.
    pub containers: &'static str,
    /// One credential in a failure message, e.g. `API key`.
    pub credential: &'static str,
    /// Credentials in a summary, e.g. `API keys`.
    pub credentials: &'static str,
    /// How a credential whose secret was lost gets a new one, e.g. `refresh`.
    pub renewal: &'static str,
}

// ---- the rollout: consumers, the window a snapshot judges, and what it judged -------------

/// How a usage source finds one credential's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Ident {
    /// Requests whose log names this client (Workato's logs name clients, never keys).
    Client { workspace: String, name: String },
    /// Requests made with this credential id (a virtual key id, an access key id).
    Key { workspace: String, id: String },
}

impl Ident {
    pub fn workspace(&self) -> &str {
        match self {
            Ident::Client { workspace, .. } | Ident::Key { workspace, .. } => workspace,
        }
    }
}

/// One consumer: who moves from old credentials to new ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    /// What `adoption` prints and `--consumer` takes: a legacy client id, `<profile>:<user>`.
    pub id: String,
    pub workspace: String,
    /// A human name (legacy client name, `profile · user`).
    pub name: String,
    /// The source client it belongs to (`--client`), when the source has clients.
    pub client: Option<String>,
    /// The source profiles whose disabling is this consumer's cutover (opaque ids).
    pub profiles: Vec<String>,
    /// The provenance markers of its new credentials (verify's verdicts are keyed by them).
    pub creds: Vec<String>,
    /// Where its old use shows.
    pub old: Vec<Ident>,
    /// Where its new use shows (empty until apply created them, for sources that need the
    /// created ids).
    pub new: Vec<Ident>,
    /// Why its traffic cannot be attributed, known from the inventory and plan alone (e.g.
    /// two legacy clients with one name).
    pub blind: Option<String>,
}

/// The window a snapshot judges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// Old use at or after this instant is "recent" (now minus the quiet period).
    pub quiet_from: DateTime<Utc>,
    /// When keyshift's own live probes ran (`verify --live`, on the judged clock): a record
    /// inside one of these spans is ours, not a consumer's, where the source cannot tell
    /// otherwise.
    #[serde(default)]
    pub own: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Window {
    /// The last instant a record may carry: now, plus the resolution of a clock read from
    /// `Date` headers (whole seconds).
    pub fn until(&self) -> DateTime<Utc> {
        self.now + Duration::seconds(2)
    }

    /// Whether keyshift's own probes ran at `t`.
    pub fn ours(&self, t: DateTime<Utc>) -> bool {
        self.own.iter().any(|(a, b)| *a <= t && t <= *b)
    }
}

/// A record of the vendor's that shows something: when, and where to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at: DateTime<Utc>,
    /// Where it is: `logs-ws1.csv line 17`, `Bifrost log 8f2c…`, `Descope audit LoginSucceed`.
    pub what: String,
}

/// A consumer's status (first match wins, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Unknown,
    Broken,
    Moving,
    Waiting,
    Moved,
    Idle,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Broken,
        Status::Unknown,
        Status::Waiting,
        Status::Moving,
        Status::Moved,
        Status::Idle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Broken => "broken",
            Status::Moving => "moving",
            Status::Waiting => "waiting",
            Status::Moved => "moved",
            Status::Idle => "idle",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One consumer's judged status and the records behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judged {
    pub consumer: String,
    pub workspace: String,
    pub name: String,
    pub status: Status,
    pub last_old: Option<Record>,
    pub first_new: Option<Record>,
    pub last_new: Option<Record>,
    pub refused_since_cutover: u64,
    pub last_refusal: Option<Record>,
    /// The sources read, e.g. `Workato Logs export a.csv; Workato Logs export a.csv`.
    pub source: String,
    /// Why this status, in one sentence.
    pub why: String,
}
