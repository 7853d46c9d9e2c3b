//! Mapping files: parse, validate, and name every mistake with file, key and fix.
//!
//! A mapping file declares a source→target pair (see `mappings/` and docs/mapping.md).
//! Shipped mappings are compiled into the binary; a user passes a path to their own copy.
//! Parsing is strict (unknown keys are errors) because a typo in a mapping file silently
//! ignored would change what gets migrated.


use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

use crate::errors::KeyshiftError;
use crate::model::{Finding, FindingKind, Vendor};

/// The shipped mappings, by name.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "workato-legacy-to-v2",
        include_str!("../../mappings/workato-legacy-to-v2.toml"),
    ),
    (
        "workato-legacy-to-descope",
        include_str!("../../mappings/workato-legacy-to-descope.toml"),
    ),
    (
        "bifrost-profiles-to-virtual-keys",
        include_str!("../../mappings/bifrost-profiles-to-virtual-keys.toml"),
    ),
];

pub const DEFAULT_MAPPING: &str = "workato-legacy-to-v2";

/// Fields a v2 client can be grouped by (docs/architecture.md, "Grouping (Workato)").
pub const GROUP_FIELDS: &[&str] = &[
    "auth_type",
    "jwt_method",
    "jwt_secret",
    "oidc_issuer",
    "oidc_jwks_uri",
    "access_profile_claim",
    "required_claims",
    "allowed_issuers",
    "api_collection_ids",
    "api_policy_id",
];

/// Source fields a treatment may be declared for.
pub const SOURCE_FIELDS: &[&str] = &[
    // Bifrost access profiles
    "provider_configs",
    "budgets",
    "rate_limit",
    "mcp_servers",
    "mcp_tool_overrides",
    "tags",
    "roles",
    "auto_rotation_interval",
    "is_active",
    // Workato access profiles
    "name",
    "api_collection_ids",
    "auth_type",
    "jwt_method",
    "jwt_secret",
    "oidc_issuer",
    "oidc_jwks_uri",
    "access_profile_claim",
    "required_claims",
    "allowed_issuers",
    "ip_allow_list",
    "api_policy_id",
    "active",
    "secret",
    "oauth_client_id",
    "created_at",
];

const CLIENT_PLACEHOLDERS: &[&str] = &[
    "legacy_client.name",
    "legacy_client.id",
    "auth_type",
    "group",
    "workspace",
];
const KEY_PLACEHOLDERS: &[&str] = &[
    "profile.name",
    "profile.id",
    "legacy_client.name",
    "workspace",
];

/// A parsed and validated mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Where it came from: a shipped name or a path, for messages and reports.
    pub origin: String,
    /// The file's text, kept in the state DB so later commands of a run use the same mapping.
    pub text: String,
    pub pair: PairKind,
    pub file: MappingFile,
    /// `[client]` resolved with its defaults (Workato v2 targets).
    pub client: ClientSection,
    /// The source's vendor deadlines, when it has any.
    pub deadlines: Option<Deadlines>,
}

/// The source→target pairs keyshift migrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairKind {
    /// Workato legacy API clients + access profiles → v2 API clients + API keys.
    WorkatoV2,
    /// Workato legacy access profiles → Descope access keys.
    WorkatoToDescope,
    /// Bifrost access profiles → Bifrost virtual keys.
    BifrostVirtualKeys,
}

impl PairKind {
    pub fn from_pair(source: &str, target: &str) -> Option<PairKind> {
        match (source, target) {
            ("workato-legacy", "workato-v2") => Some(PairKind::WorkatoV2),
            ("workato-legacy", "descope") => Some(PairKind::WorkatoToDescope),
            ("bifrost-profiles", "bifrost-virtual-keys") => Some(PairKind::BifrostVirtualKeys),
            _ => None,
        }
    }

    pub fn source_vendor(self) -> Vendor {
        match self {
            PairKind::WorkatoV2 | PairKind::WorkatoToDescope => Vendor::Workato,
            PairKind::BifrostVirtualKeys => Vendor::Bifrost,
        }
    }

    pub fn target_vendor(self) -> Vendor {
        match self {
            PairKind::WorkatoV2 => Vendor::Workato,
            PairKind::WorkatoToDescope => Vendor::Descope,
            PairKind::BifrostVirtualKeys => Vendor::Bifrost,
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Deadlines {
    pub legacy_frozen: DateTime<Utc>,
    pub legacy_tokens_invalid: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    pub pair: Pair,
    #[serde(default)]
    pub source: SourceSection,
    #[serde(default)]
    pub deadlines: Option<DeadlineSection>,
    #[serde(default)]
    pub client: Option<ClientSection>,
    #[serde(default)]
    pub key: KeySection,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRule>,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub collections: CollectionsSection,
    #[serde(default)]
    pub descope: Option<DescopeSection>,
    #[serde(default)]
    pub bifrost: Option<BifrostSection>,
}

/// `[descope]`: how each source profile becomes a Descope access key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescopeSection {
    /// Key name template: {legacy_client.name} {profile.name} {profile.id} {workspace}.
    #[serde(default = "default_descope_name")]
    pub name: String,
    /// API collection (id or name) → Descope role name.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// A collection missing from `roles` uses its own name as the role name (else it blocks).
    #[serde(default)]
    pub roles_from_collection_names: bool,
    /// Workspace id (or external id) → tenant id. Listed workspaces get tenant roles
    /// (`keyTenants`); others get project roles (`roleNames`).
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
    /// Tenant id template for workspaces not in `tenants`: {workspace} {workspace.external_id}.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Absolute expiry, Unix seconds; 0 = never.
    #[serde(default)]
    pub expire_time: i64,
    /// Static claims put in every key's JWT.
    #[serde(default)]
    pub custom_claims: BTreeMap<String, toml::Value>,
}

fn default_descope_name() -> String {
    "{legacy_client.name} / {profile.name}".into()
}

impl Default for DescopeSection {
    fn default() -> Self {
        DescopeSection {
            name: default_descope_name(),
            roles: BTreeMap::new(),
            roles_from_collection_names: true,
            tenants: BTreeMap::new(),
            tenant: None,
            expire_time: 0,
            custom_claims: BTreeMap::new(),
        }
    }
}

/// `[bifrost]`: how access profiles become virtual keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BifrostSection {
    /// `per_profile` (one key per profile: shared counters) or `per_holder` (one per profile
    /// holder: isolated counters, as profiles behave).
    #[serde(default = "default_bifrost_mode")]
    pub mode: String,
    /// Holders (user ids) for `per_holder` mode.
    #[serde(default)]
    pub holders: Vec<String>,
    /// Or a CSV file with a `user_id` column.
    #[serde(default)]
    pub holders_csv: Option<String>,
    /// Key name templates: {profile.name} {profile.id} {holder}.
    #[serde(default = "default_bifrost_name")]
    pub name: String,
    #[serde(default = "default_bifrost_holder_name")]
    pub name_per_holder: String,
    /// Provider keys a virtual key may use when the profile does not say (deny-by-default
    /// otherwise): `["*"]` = all.
    #[serde(default = "default_key_ids")]
    pub key_ids: Vec<String>,
}

fn default_bifrost_mode() -> String {
    "per_profile".into()
}
fn default_bifrost_name() -> String {
    "{profile.name}".into()
}
fn default_bifrost_holder_name() -> String {
    "{profile.name} · {holder}".into()
}
fn default_key_ids() -> Vec<String> {
    vec!["*".into()]
}

impl Default for BifrostSection {
    fn default() -> Self {
        BifrostSection {
            mode: default_bifrost_mode(),
            holders: Vec::new(),
            holders_csv: None,
            name: default_bifrost_name(),
            name_per_holder: default_bifrost_holder_name(),
            key_ids: default_key_ids(),
        }
    }
}

/// Which profiles a run covers. Empty lists select everything; `exclude` wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(default)]
    pub include: Selector,
    #[serde(default)]
    pub exclude: Selector,
}

/// Ids or names (numbers or strings) per object kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Workspace ids or external ids.
    #[serde(default)]
    pub workspaces: Vec<IdOrName>,
    /// Legacy client ids or names.
    #[serde(default)]
    pub clients: Vec<IdOrName>,
    /// Profile ids or names.
    #[serde(default)]
    pub profiles: Vec<IdOrName>,
    #[serde(default)]
    pub auth_types: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum IdOrName {
    Id(i64),
    Name(String),
}

impl IdOrName {
    pub fn matches(&self, id: &str, names: &[&str]) -> bool {
        match self {
            IdOrName::Id(n) => n.to_string() == id,
            IdOrName::Name(s) => s == id || names.contains(&s.as_str()),
        }
    }
}

impl Selector {
    fn is_empty(&self) -> bool {
        self.workspaces.is_empty()
            && self.clients.is_empty()
            && self.profiles.is_empty()
            && self.auth_types.is_empty()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionsSection {
    /// Collection ids to replace, e.g. when the target environment has its own copies.
    #[serde(default)]
    pub remap: Vec<Remap>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remap {
    /// Only in this workspace (default: every workspace).
    #[serde(default)]
    pub workspace: Option<String>,
    pub from: i64,
    pub to: i64,
}

/// The source profile a planner's finding is about.
/// The `field` of the finding that records a profile left out by the mapping's filters.
pub const EXCLUDED_FIELD: &str = "filters";

/// An IPv4/IPv6 address, optionally with a CIDR prefix.
pub fn valid_ip_entry(entry: &str) -> bool {
    entry.parse::<std::net::IpAddr>().is_ok() || entry.parse::<ipnet::IpNet>().is_ok()
}

pub struct About<'a> {
    pub vendor: &'a str,
    pub workspace: &'a str,
    pub id: i64,
    pub name: &'a str,
}

impl<'a> About<'a> {
    pub fn new(vendor: &'a str, workspace: &'a str, id: i64, name: &'a str) -> About<'a> {
        About {
            vendor,
            workspace,
            id,
            name,
        }
    }

    pub fn finding(&self, kind: FindingKind, field: &str, found: String, fix: &str) -> Finding {
        Finding {
            kind,
            vendor: self.vendor.into(),
            workspace: self.workspace.into(),
            object_kind: "profile".into(),
            object_id: self.id.to_string(),
            object_name: self.name.into(),
            field: field.into(),
            found,
            fix: fix.into(),
        }
    }
}

/// Why a profile is left out by the filters, if it is.
pub struct Subject<'a> {
    pub workspace: &'a str,
    pub workspace_external_id: Option<&'a str>,
    pub client_id: i64,
    pub client_name: &'a str,
    pub profile_id: i64,
    pub profile_name: &'a str,
    pub auth_type: &'a str,
}

impl Filters {
    /// `None` when the profile is selected, else which rule left it out.
    pub fn excludes(&self, s: &Subject) -> Option<String> {
        let ws_names: Vec<&str> = s.workspace_external_id.into_iter().collect();
        let client_id = s.client_id.to_string();
        let profile_id = s.profile_id.to_string();
        let hits = |sel: &Selector| -> Vec<&'static str> {
            let mut out = Vec::new();
            if sel
                .workspaces
                .iter()
                .any(|w| w.matches(s.workspace, &ws_names))
            {
                out.push("workspaces");
            }
            if sel
                .clients
                .iter()
                .any(|c| c.matches(&client_id, &[s.client_name]))
            {
                out.push("clients");
            }
            if sel
                .profiles
                .iter()
                .any(|p| p.matches(&profile_id, &[s.profile_name]))
            {
                out.push("profiles");
            }
            if sel.auth_types.iter().any(|a| a == s.auth_type) {
                out.push("auth_types");
            }
            out
        };
        if let Some(rule) = hits(&self.exclude).first() {
            return Some(format!("excluded by filters.exclude.{rule}"));
        }
        let inc = &self.include;
        if inc.is_empty() {
            return None;
        }
        let selected = |list_empty: bool, hit: bool| list_empty || hit;
        let h = hits(inc);
        let ok = selected(inc.workspaces.is_empty(), h.contains(&"workspaces"))
            && selected(inc.clients.is_empty(), h.contains(&"clients"))
            && selected(inc.profiles.is_empty(), h.contains(&"profiles"))
            && selected(inc.auth_types.is_empty(), h.contains(&"auth_types"));
        (!ok).then(|| "not selected by filters.include".to_string())
    }
}

impl CollectionsSection {
    pub fn remapped(&self, workspace: &str, id: i64) -> i64 {
        // A workspace's own entry wins over a global one.
        let specific = self
            .remap
            .iter()
            .find(|r| r.from == id && r.workspace.as_deref() == Some(workspace));
        let global = || {
            self.remap
                .iter()
                .find(|r| r.from == id && r.workspace.is_none())
        };
        specific.or_else(global).map(|r| r.to).unwrap_or(id)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    #[serde(default = "default_api")]
    pub api: String,
}

impl Default for SourceSection {
    fn default() -> Self {
        SourceSection { api: default_api() }
    }
}

fn default_api() -> String {
    "developer".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineSection {
    pub legacy_frozen: String,
    pub legacy_tokens_invalid: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    #[serde(default = "default_max_keys")]
    pub max_keys_per_client: usize,
    #[serde(default = "default_client_name")]
    pub name: String,
    #[serde(default = "default_client_name_split")]
    pub name_when_split: String,
}

impl Default for ClientSection {
    fn default() -> Self {
        ClientSection {
            group_by: GROUP_FIELDS.iter().map(|f| f.to_string()).collect(),
            max_keys_per_client: default_max_keys(),
            name: default_client_name(),
            name_when_split: default_client_name_split(),
        }
    }
}

fn default_group_by() -> Vec<String> {
    GROUP_FIELDS.iter().map(|f| f.to_string()).collect()
}

fn default_max_keys() -> usize {
    20
}
fn default_client_name() -> String {
    "{legacy_client.name} · keys".into()
}
fn default_client_name_split() -> String {
    "{legacy_client.name} · {auth_type} {group}".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySection {
    #[serde(default = "default_key_name")]
    pub name: String,
    #[serde(default = "default_key_name_taken")]
    pub name_when_taken: String,
}

impl Default for KeySection {
    fn default() -> Self {
        KeySection {
            name: default_key_name(),
            name_when_taken: default_key_name_taken(),
        }
    }
}

fn default_key_name() -> String {
    "{profile.name}".into()
}
fn default_key_name_taken() -> String {
    "{profile.name} ({profile.id})".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    pub treatment: String,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub auth_types: Vec<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fix: String,
}

impl FieldRule {
    pub fn kind(&self) -> FindingKind {
        // Validated at load time.
        FindingKind::parse(&self.treatment).unwrap_or(FindingKind::Advice)
    }

    /// A conditional rule yields a finding per matching group; an unconditional one is only
    /// listed in the report's field table.
    pub fn is_conditional(&self) -> bool {
        self.when.is_some() || !self.auth_types.is_empty()
    }
}

impl Mapping {
    /// `spec` is a shipped mapping's name or a path to a TOML file.
    pub fn load(spec: &str) -> Result<Mapping> {
        if let Some((name, text)) = SHIPPED.iter().find(|(n, _)| *n == spec) {
            return Mapping::parse(name, text);
        }
        let path = Path::new(spec);
        if !path.exists() {
            let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
            return Err(KeyshiftError::Config(format!(
                "mapping {spec:?}: no such file and no shipped mapping of that name — pass a path \
                 to a mapping file or one of: {}",
                names.join(", ")
            ))
            .into());
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            KeyshiftError::Config(format!(
                "mapping file {}: cannot read it: {e}",
                path.display()
            ))
        })?;
        Mapping::parse(&path.display().to_string(), &text)
    }

    /// Parse and validate. Every problem is reported at once, each naming file, key and fix.
    pub fn parse(origin: &str, text: &str) -> Result<Mapping> {
        let file: MappingFile = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_string();
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            KeyshiftError::Config(format!(
                "mapping file {origin}{at}: {msg} — fix the key as docs/mapping.md describes"
            ))
        })?;
        let mut problems = Vec::new();
        let pair = PairKind::from_pair(&file.pair.source, &file.pair.target);
        let deadlines = match pair {
            Some(pair) => validate(pair, &file, &mut problems),
            None => {
                problems.push(format!(
                    "key pair: {} → {} is not a pair keyshift migrates — use workato-legacy → \
                     workato-v2, workato-legacy → descope, or bifrost-profiles → \
                     bifrost-virtual-keys",
                    file.pair.source, file.pair.target
                ));
                None
            }
        };
        if !problems.is_empty() {
            let list = problems
                .iter()
                .map(|p| format!("mapping file {origin}: {p}"))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(KeyshiftError::Config(list).into());
        }
        Ok(Mapping {
            origin: origin.to_string(),
            text: text.to_string(),
            pair: pair.expect("validated"),
            client: file.client.clone().unwrap_or_default(),
            file,
            deadlines,
        })
    }

    pub fn groups_by(&self, field: &str) -> bool {
        self.client.group_by.iter().any(|f| f == field)
    }
}

fn validate(pair: PairKind, file: &MappingFile, problems: &mut Vec<String>) -> Option<Deadlines> {
    let default_client = ClientSection::default();
    let client = file.client.as_ref().unwrap_or(&default_client);
    if pair != PairKind::WorkatoV2 && file.client.is_some() {
        problems.push(format!(
            "key client: only a workato-v2 target groups profiles into clients — remove [client] \
             (this mapping targets {})",
            file.pair.target
        ));
    }
    if pair == PairKind::BifrostVirtualKeys && !file.collections.remap.is_empty() {
        problems.push("key collections: Bifrost has no API collections — remove it".into());
    }
    pair_sections(pair, file, problems);
    if !["developer", "embedded"].contains(&file.source.api.as_str()) {
        problems.push(format!(
            "key source.api: {:?} is not an API — use \"developer\" or \"embedded\"",
            file.source.api
        ));
    }
    for field in &client.group_by {
        if !GROUP_FIELDS.contains(&field.as_str()) {
            problems.push(format!(
                "key client.group_by: unknown field {field:?} — use any of {}",
                GROUP_FIELDS.join(", ")
            ));
        }
    }
    for must in ["auth_type", "api_collection_ids"] {
        if !client.group_by.iter().any(|f| f == must) {
            problems.push(format!(
                "key client.group_by: {must:?} is missing — a v2 client has exactly one {must}, \
                 so profiles that differ in it cannot share a client; add it"
            ));
        }
    }
    if !(1..=20).contains(&client.max_keys_per_client) {
        problems.push(format!(
            "key client.max_keys_per_client: {} is out of range — Workato allows 1 to 20 keys \
             per client",
            client.max_keys_per_client
        ));
    }
    check_template("client.name", &client.name, CLIENT_PLACEHOLDERS, problems);
    check_template(
        "client.name_when_split",
        &client.name_when_split,
        CLIENT_PLACEHOLDERS,
        problems,
    );
    if !client.name_when_split.contains("{group}") {
        problems.push(
            "key client.name_when_split: it must contain {group}, or split clients would share \
             one name — add {group}"
                .into(),
        );
    }
    check_template("key.name", &file.key.name, KEY_PLACEHOLDERS, problems);
    check_template(
        "key.name_when_taken",
        &file.key.name_when_taken,
        KEY_PLACEHOLDERS,
        problems,
    );
    if !file.key.name_when_taken.contains("{profile.id}") {
        problems.push(
            "key key.name_when_taken: it must contain {profile.id} to make names unique — add it"
                .into(),
        );
    }
    for (field, rule) in &file.fields {
        if !SOURCE_FIELDS.contains(&field.as_str()) {
            problems.push(format!(
                "key fields.{field}: unknown source field — use any of {}",
                SOURCE_FIELDS.join(", ")
            ));
        }
        if FindingKind::parse(&rule.treatment).is_none() {
            problems.push(format!(
                "key fields.{field}.treatment: {:?} is not a treatment — use carried, \
                 transformed, lossy, manual, advice or blocker",
                rule.treatment
            ));
        }
        for a in &rule.auth_types {
            if !["token", "jwt", "oauth2", "oidc"].contains(&a.as_str()) {
                problems.push(format!(
                    "key fields.{field}.auth_types: {a:?} is not an auth type — use token, jwt, \
                     oauth2 or oidc"
                ));
            }
        }
    }
    for (kind, sel) in [
        ("include", &file.filters.include),
        ("exclude", &file.filters.exclude),
    ] {
        for a in &sel.auth_types {
            if !["token", "jwt", "oauth2", "oidc"].contains(&a.as_str()) {
                problems.push(format!(
                    "key filters.{kind}.auth_types: {a:?} is not an auth type — use token, jwt, \
                     oauth2 or oidc"
                ));
            }
        }
    }
    let mut seen_remaps = std::collections::HashSet::new();
    for (i, r) in file.collections.remap.iter().enumerate() {
        if !seen_remaps.insert((r.workspace.clone(), r.from)) {
            problems.push(format!(
                "key collections.remap[{i}]: collection {} is remapped twice{} — keep one entry",
                r.from,
                r.workspace
                    .as_deref()
                    .map(|w| format!(" in workspace {w}"))
                    .unwrap_or_default()
            ));
        }
        if r.from == r.to {
            problems.push(format!(
                "key collections.remap[{i}]: from and to are both {} — remove the entry",
                r.from
            ));
        }
    }
    let Some(deadlines) = &file.deadlines else {
        if pair.source_vendor() == Vendor::Workato {
            problems.push(
                "key deadlines: missing — a Workato source needs [deadlines] legacy_frozen and \
                 legacy_tokens_invalid (copy them from the shipped mapping)"
                    .into(),
            );
        }
        return None;
    };
    let frozen = parse_deadline(
        "deadlines.legacy_frozen",
        &deadlines.legacy_frozen,
        problems,
    );
    let invalid = parse_deadline(
        "deadlines.legacy_tokens_invalid",
        &deadlines.legacy_tokens_invalid,
        problems,
    );
    match (frozen, invalid) {
        (Some(f), Some(i)) if f > i => {
            problems.push(
                "key deadlines: legacy_frozen comes after legacy_tokens_invalid — tokens cannot \
                 die before their profiles freeze; swap or correct the dates"
                    .into(),
            );
            None
        }
        (Some(f), Some(i)) => Some(Deadlines {
            legacy_frozen: f,
            legacy_tokens_invalid: i,
        }),
        _ => None,
    }
}

/// Sections that belong to one pair only, and their own checks.
fn pair_sections(pair: PairKind, file: &MappingFile, problems: &mut Vec<String>) {
    if pair != PairKind::WorkatoToDescope && file.descope.is_some() {
        problems.push(format!(
            "key descope: only for a descope target — remove [descope] (this mapping targets {})",
            file.pair.target
        ));
    }
    if pair != PairKind::BifrostVirtualKeys && file.bifrost.is_some() {
        problems.push(format!(
            "key bifrost: only for bifrost-virtual-keys — remove [bifrost] (this mapping targets {})",
            file.pair.target
        ));
    }
    if let Some(d) = &file.descope {
        check_template(
            "descope.name",
            &d.name,
            &[
                "legacy_client.name",
                "profile.name",
                "profile.id",
                "workspace",
            ],
            problems,
        );
        if let Some(t) = &d.tenant {
            check_template(
                "descope.tenant",
                t,
                &["workspace", "workspace.external_id"],
                problems,
            );
        }
        if d.expire_time < 0 {
            problems
                .push("key descope.expire_time: negative — use 0 (never) or Unix seconds".into());
        }
    }
    if let Some(b) = &file.bifrost {
        if !["per_profile", "per_holder"].contains(&b.mode.as_str()) {
            problems.push(format!(
                "key bifrost.mode: {:?} — use \"per_profile\" or \"per_holder\"",
                b.mode
            ));
        }
        if b.mode == "per_holder" && b.holders.is_empty() && b.holders_csv.is_none() {
            problems.push(
                "key bifrost.holders: per_holder mode needs holders (user ids) or holders_csv — \
                 add them, or use mode = \"per_profile\""
                    .into(),
            );
        }
        check_template(
            "bifrost.name",
            &b.name,
            &["profile.name", "profile.id"],
            problems,
        );
        check_template(
            "bifrost.name_per_holder",
            &b.name_per_holder,
            &["profile.name", "profile.id", "holder"],
            problems,
        );
        if b.mode == "per_holder" && !b.name_per_holder.contains("{holder}") {
            problems.push(
                "key bifrost.name_per_holder: it must contain {holder} — virtual key names are \
                 unique"
                    .into(),
            );
        }
    }
}

fn check_template(key: &str, template: &str, allowed: &[&str], problems: &mut Vec<String>) {
    if template.trim().is_empty() {
        problems.push(format!("key {key}: empty — give a name template"));
    }
    for placeholder in placeholders(template) {
        if !allowed.contains(&placeholder.as_str()) {
            problems.push(format!(
                "key {key}: unknown placeholder {{{placeholder}}} — use any of {}",
                allowed
                    .iter()
                    .map(|a| format!("{{{a}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
    }
}

fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push(rest[start + 1..start + len].to_string());
        rest = &rest[start + len + 1..];
    }
    out
}

/// Fill `{name}` placeholders from `values`.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// A date (`2025-12-01`, midnight UTC) or an RFC 3339 instant.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

fn parse_deadline(key: &str, value: &str, problems: &mut Vec<String>) -> Option<DateTime<Utc>> {
    let parsed = parse_instant(value);
    if parsed.is_none() {
        problems.push(format!(
            "key {key}: {value:?} is not a date — write YYYY-MM-DD or an RFC 3339 instant"
        ));
    }
    parsed
}

/// Where a run stands against the vendor's dates, in one sentence.
pub fn deadline_stance(now: DateTime<Utc>, d: Option<&Deadlines>) -> (String, &'static str) {
    let Some(d) = d else {
        return (
            "the source has no vendor deadline in this mapping".into(),
            "none",
        );
    };
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let days = |t: DateTime<Utc>| (t - now).num_days();
    if now < d.legacy_frozen {
        (
            format!(
                "{} days until legacy clients and profiles freeze ({}); legacy tokens stop \
                 working on {} — migrate and cut over before the freeze",
                days(d.legacy_frozen),
                fmt(d.legacy_frozen),
                fmt(d.legacy_tokens_invalid)
            ),
            "before_freeze",
        )
    } else if now < d.legacy_tokens_invalid {
        (
            format!(
                "legacy objects are frozen since {} (read-only, cannot be disabled); legacy \
                 tokens stop working in {} days ({}) — consumers must switch to their new keys \
                 before then",
                fmt(d.legacy_frozen),
                days(d.legacy_tokens_invalid),
                fmt(d.legacy_tokens_invalid)
            ),
            "frozen",
        )
    } else {
        (
            format!(
                "legacy tokens stopped working on {}; the legacy API may be gone — consumers \
                 without a new key are already failing",
                fmt(d.legacy_tokens_invalid)
            ),
            "sunset",
        )
    }
}

impl Mapping {
    /// Named holders of the mapping: `[bifrost] holders`, plus the `user_id` column of
    /// `holders_csv`.
    pub fn named_holders(&self) -> Result<Vec<String>> {
        let mapping = self;
        let Some(b) = &mapping.file.bifrost else {
            return Ok(Vec::new());
        };
        let mut out = b.holders.clone();
        if let Some(path) = &b.holders_csv {
            let bad = |e: csv::Error| {
                let line = e.position().map(|p| p.line()).unwrap_or(1);
                KeyshiftError::Config(format!(
                    "{path}:{line}: {} — the holders CSV needs a header row with a user_id column \
                     and one holder per row (mapping {}, key bifrost.holders_csv)",
                    crate::output::visible(&e.to_string()),
                    mapping.origin
                ))
            };
            let mut r = csv::Reader::from_path(path).map_err(|e| {
                KeyshiftError::Config(format!(
                    "mapping {}: key bifrost.holders_csv: cannot read {path}: {e}",
                    mapping.origin
                ))
            })?;
            let col = r
                .headers()
                .map_err(bad)?
                .iter()
                .position(|h| h.trim().trim_start_matches('\u{feff}') == "user_id")
                .ok_or_else(|| {
                    KeyshiftError::Config(format!(
                        "{path}:1: column \"user_id\": missing — the holders CSV needs a header \
                         row with user_id"
                    ))
                })?;
            for rec in r.records() {
                if let Some(u) = rec
                    .map_err(bad)?
                    .get(col)
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                {
                    out.push(u.to_string());
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_mappings_are_valid() {
        for (name, _) in SHIPPED {
            Mapping::load(name).unwrap();
        }
    }

    #[test]
    fn mistakes_name_file_key_and_fix() {
        let text = SHIPPED[0]
            .1
            .replace("max_keys_per_client = 20", "max_keys_per_client = 25")
            .replace("\"api_policy_id\"]", "\"api_policy\"]")
            .replace(
                "{legacy_client.name} · {auth_type} {group}",
                "{client} {auth_type}",
            );
        let err = Mapping::parse("my.toml", &text).unwrap_err().to_string();
        assert!(
            err.contains("my.toml: key client.max_keys_per_client: 25"),
            "{err}"
        );
        assert!(err.contains("unknown field \"api_policy\""), "{err}");
        assert!(err.contains("unknown placeholder {client}"), "{err}");
        assert!(err.contains("must contain {group}"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let text = SHIPPED[0]
            .1
            .replace("max_keys_per_client", "max_key_per_client");
        let err = Mapping::parse("m.toml", &text).unwrap_err().to_string();
        assert!(err.contains("m.toml (line"), "{err}");
        assert!(err.contains("max_key_per_client"), "{err}");
    }

    #[test]
    fn filters_include_and_exclude() {
        let text = format!(
            "{}\n[filters.include]\nworkspaces = [1, \"A2300\"]\n[filters.exclude]\nprofiles = [\"Old\", 7]\nauth_types = [\"oidc\"]\n",
            SHIPPED[0].1
        );
        let m = Mapping::parse("f.toml", &text).unwrap();
        let subject = |ws: &'static str,
                       ext: Option<&'static str>,
                       id: i64,
                       name: &'static str,
                       auth: &'static str| Subject {
            workspace: ws,
            workspace_external_id: ext,
            client_id: 1,
            client_name: "c",
            profile_id: id,
            profile_name: name,
            auth_type: auth,
        };
        let f = &m.file.filters;
        assert_eq!(f.excludes(&subject("1", None, 1, "p", "token")), None);
        assert_eq!(
            f.excludes(&subject("9", Some("A2300"), 1, "p", "token")),
            None
        );
        assert!(f
            .excludes(&subject("9", None, 1, "p", "token"))
            .unwrap()
            .contains("include"));
        assert!(f
            .excludes(&subject("1", None, 7, "p", "token"))
            .unwrap()
            .contains("exclude.profiles"));
        assert!(f
            .excludes(&subject("1", None, 2, "Old", "token"))
            .unwrap()
            .contains("exclude.profiles"));
        assert!(f
            .excludes(&subject("1", None, 2, "p", "oidc"))
            .unwrap()
            .contains("exclude.auth_types"));
    }

    #[test]
    fn remaps_validate_and_apply() {
        let text = format!(
            "{}\n[[collections.remap]]\nfrom = 10\nto = 20\n[[collections.remap]]\nworkspace = \"2\"\nfrom = 10\nto = 30\n",
            SHIPPED[0].1
        );
        let m = Mapping::parse("r.toml", &text).unwrap();
        assert_eq!(m.file.collections.remapped("1", 10), 20);
        assert_eq!(m.file.collections.remapped("1", 11), 11);
        let bad = format!(
            "{}\n[[collections.remap]]\nfrom = 10\nto = 10\n",
            SHIPPED[0].1
        );
        let err = Mapping::parse("r.toml", &bad).unwrap_err().to_string();
        assert!(err.contains("key collections.remap[0]"), "{err}");
    }

    #[test]
    fn dates_parse_both_ways() {
        assert_eq!(
            parse_instant("2025-12-01").unwrap().to_rfc3339(),
            "2025-12-01T00:00:00+00:00"
        );
        assert!(parse_instant("2025-12-01T10:00:00+02:00").is_some());
        assert!(parse_instant("tomorrow").is_none());
    }
}
