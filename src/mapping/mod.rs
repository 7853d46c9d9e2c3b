//! Mapping files: parse, validate, and name every mistake with file, key and fix.
//!
//! A mapping file declares a source→target pair (see `mappings/` and docs/mapping.md).
//! Shipped mappings are compiled into the binary; a user passes a path to their own copy.
//! Parsing is strict (unknown keys are errors) because a typo in a mapping file silently
//! ignored would change what gets migrated.

use anyhow::Result;
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

mod deadlines;
mod filters;
mod templates;

use deadlines::parse_deadline;
pub use deadlines::{deadline_stance, parse_instant, DeadlineSection, Deadlines};
pub use filters::{Candidate, Filters, IdOrName, Selector};
pub use templates::{check_template, render};

use crate::errors::KeyshiftError;
use crate::model::{Finding, FindingKind, Text, Vendor};

/// What the mapping parser knows of one source→target pair: its `[pair]` keys, its shipped
/// mapping, and the sections and checks that are its own. Each pair's definition carries one
/// (the registry lists them); nothing in here names a pair.
pub struct PairSpec {
    /// The shipped mapping's name, e.g. `workato-legacy-to-v2`.
    pub name: &'static str,
    /// `[pair] source` and `target`.
    pub source: &'static str,
    pub target: &'static str,
    /// The shipped mapping file's text.
    pub shipped: &'static str,
    pub source_vendor: Vendor,
    pub target_vendor: Vendor,
    /// Top-level tables only this pair's mappings may hold (e.g. `[client]`).
    pub sections: &'static [&'static str],
    /// Source fields a `[fields.<name>]` treatment may be declared for.
    pub source_fields: &'static [&'static str],
    /// The source has vendor deadlines, so `[deadlines]` is required.
    pub needs_deadlines: bool,
    /// Parse and check the pair's own sections: the parsed value (the planner reads it back
    /// with [`Mapping::own`]), problems pushed one per mistake; `Err` for a section that does
    /// not parse (with its line).
    pub load: fn(&Mapping, &mut Vec<String>) -> Result<Own, String>,
}

impl fmt::Debug for PairSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.source, self.target)
    }
}

impl PartialEq for PairSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// A pair's own parsed sections, typed by the pair (read back with [`Mapping::own`]).
#[derive(Clone)]
pub struct Own(Arc<dyn Any + Send + Sync>);

impl Own {
    pub fn new<T: Any + Send + Sync>(value: T) -> Own {
        Own(Arc::new(value))
    }
}

impl fmt::Debug for Own {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Own(..)")
    }
}

/// A `load` for a pair with no section of its own.
pub fn nothing_own(_: &Mapping, _: &mut Vec<String>) -> Result<Own, String> {
    Ok(Own::new(()))
}

/// Top-level tables every mapping may hold.
const COMMON_SECTIONS: &[&str] = &[
    "pair",
    "source",
    "deadlines",
    "key",
    "fields",
    "filters",
    "collections",
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
    pub pair: &'static PairSpec,
    pub file: MappingFile,
    /// The source's vendor deadlines, when it has any.
    pub deadlines: Option<Deadlines>,
    /// The pair's own sections, parsed by its `load`.
    own: Own,
}

/// The tables every mapping file may hold; a pair's own tables are read by its definition
/// ([`PairSpec::load`], [`Mapping::section`]).
#[derive(Debug, Clone, Deserialize)]
pub struct MappingFile {
    pub pair: PairSection,
    #[serde(default)]
    pub source: SourceSection,
    #[serde(default)]
    pub deadlines: Option<DeadlineSection>,
    #[serde(default)]
    pub key: KeySection,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRule>,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub collections: CollectionsSection,
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

/// The `field` of the finding that records a profile left out by the mapping's filters.
pub const EXCLUDED_FIELD: &str = "filters";

/// An IPv4/IPv6 address, optionally with a CIDR prefix.
pub fn valid_ip_entry(entry: &str) -> bool {
    entry.parse::<std::net::IpAddr>().is_ok() || entry.parse::<ipnet::IpNet>().is_ok()
}

/// The source profile a planner's finding is about.
pub struct ProfileRef<'a> {
    pub vendor: &'static str,
    pub workspace: &'a str,
    pub id: i64,
    pub name: &'a str,
}

impl<'a> ProfileRef<'a> {
    pub fn new(vendor: &'static str, workspace: &'a str, id: i64, name: &'a str) -> ProfileRef<'a> {
        ProfileRef {
            vendor,
            workspace,
            id,
            name,
        }
    }

    pub fn finding(
        &self,
        kind: FindingKind,
        field: impl Into<Text>,
        found: String,
        fix: impl Into<Text>,
    ) -> Finding {
        let mut found = found;
        // `format!` leaves spare capacity; tens of thousands of findings keep it otherwise.
        found.shrink_to_fit();
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

/// `[pair]`: the source and the target a mapping file is for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSection {
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
    /// `spec` is a shipped mapping's name or a path to a TOML file; `pairs` are the pairs
    /// keyshift knows (the registry's).
    pub fn load(spec: &str, pairs: &[&'static PairSpec]) -> Result<Mapping> {
        if let Some(pair) = pairs.iter().find(|p| p.name == spec) {
            return Mapping::parse(pair.name, pair.shipped, pairs);
        }
        let path = Path::new(spec);
        if !path.exists() {
            let names: Vec<&str> = pairs.iter().map(|p| p.name).collect();
            return Err(KeyshiftError::Config(format!(
                "mapping {spec:?}: no such file and no shipped mapping of that name — pass a path \
                 to a mapping file or one of: {}",
                names.join(", ")
            ))
            .into());
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyshiftError::unreadable("mapping file", path, &e, None))?;
        Mapping::parse(&path.display().to_string(), &text, pairs)
    }

    /// Parse and validate. Every problem is reported at once, each naming file, key and fix.
    pub fn parse(origin: &str, text: &str, pairs: &[&'static PairSpec]) -> Result<Mapping> {
        let config = |msg: String| anyhow::Error::from(KeyshiftError::Config(msg));
        let file: MappingFile =
            toml::from_str(text).map_err(|e| config(toml_problem(origin, text, &e)))?;
        let Some(&pair) = pairs
            .iter()
            .find(|p| p.source == file.pair.source && p.target == file.pair.target)
        else {
            let known: Vec<String> = pairs
                .iter()
                .map(|p| format!("{} → {}", p.source, p.target))
                .collect();
            return Err(config(format!(
                "mapping file {origin}: key pair: {} → {} is not a pair keyshift migrates — use \
                 {}",
                file.pair.source,
                file.pair.target,
                known.join(", or ")
            )));
        };
        top_level_keys(origin, text, pair, pairs).map_err(config)?;
        let mut mapping = Mapping {
            origin: origin.to_string(),
            text: text.to_string(),
            pair,
            file,
            deadlines: None,
            own: Own::new(()),
        };
        let mut problems = Vec::new();
        mapping.own = (pair.load)(&mapping, &mut problems).map_err(config)?;
        mapping.deadlines = validate(pair, &mapping.file, &mut problems);
        if !problems.is_empty() {
            let list = problems
                .iter()
                .map(|p| format!("mapping file {origin}: {p}"))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(config(list));
        }
        Ok(mapping)
    }

    /// The pair's own sections as its `load` parsed them.
    ///
    /// # Panics
    /// When `T` is not the type the pair's `load` returned: a planner reading another pair's
    /// sections, which is a bug.
    pub fn own<T: Any>(&self) -> &T {
        self.own
            .0
            .downcast_ref::<T>()
            .expect("a planner reads its own pair's sections")
    }

    /// One top-level table of the file, typed by the pair that owns it (`None` when absent).
    /// Errors name the file and the line.
    pub fn section<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, String> {
        struct Seed<'k, T>(&'k str, PhantomData<T>);
        impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Seed<'_, T> {
            type Value = Option<T>;
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
                d.deserialize_map(self)
            }
        }
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Seed<'_, T> {
            type Value = Option<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping file")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
                let mut out = None;
                while let Some(k) = map.next_key::<String>()? {
                    if k == self.0 {
                        out = Some(map.next_value::<T>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(out)
            }
        }
        Seed(key, PhantomData)
            .deserialize(toml::Deserializer::new(&self.text))
            .map_err(|e| toml_problem(&self.origin, &self.text, &e))
    }
}

/// A TOML error as one line: file, line, what, and where the fix is described.
fn toml_problem(origin: &str, text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
    let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
    format!("mapping file {origin}{at}: {msg} — fix the key as docs/mapping.md describes")
}

/// Every top-level table is a common one or the pair's own; another pair's table is named as
/// such. Unknown keys are errors, because a typo silently ignored would change what gets
/// migrated.
fn top_level_keys(
    origin: &str,
    text: &str,
    pair: &PairSpec,
    pairs: &[&'static PairSpec],
) -> Result<(), String> {
    let table: toml::Table = text.parse().map_err(|e| toml_problem(origin, text, &e))?;
    let line_of = |key: &str| {
        text.lines()
            .position(|l| {
                let l = l.trim_start();
                l.strip_prefix('[')
                    .map(|r| r.trim_start_matches('[').trim_start())
                    .unwrap_or(l)
                    .starts_with(key)
            })
            .map(|n| format!(" (line {})", n + 1))
            .unwrap_or_default()
    };
    for key in table.keys() {
        if COMMON_SECTIONS.contains(&key.as_str()) || pair.sections.contains(&key.as_str()) {
            continue;
        }
        let owners: Vec<String> = pairs
            .iter()
            .filter(|p| p.sections.contains(&key.as_str()))
            .map(|p| p.target.to_string())
            .collect();
        let at = line_of(key);
        if owners.is_empty() {
            let mut known: Vec<&str> = COMMON_SECTIONS.to_vec();
            known.extend(pair.sections);
            return Err(format!(
                "mapping file {origin}{at}: key {key}: unknown — use any of {}; fix the key as \
                 docs/mapping.md describes",
                known.join(", ")
            ));
        }
        return Err(format!(
            "mapping file {origin}{at}: key {key}: only for a {} target — remove [{key}] (this \
             mapping targets {})",
            owners.join(" or "),
            pair.target
        ));
    }
    Ok(())
}

fn validate(pair: &PairSpec, file: &MappingFile, problems: &mut Vec<String>) -> Option<Deadlines> {
    if !["developer", "embedded"].contains(&file.source.api.as_str()) {
        problems.push(format!(
            "key source.api: {:?} is not an API — use \"developer\" or \"embedded\"",
            file.source.api
        ));
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
        if !pair.source_fields.contains(&field.as_str()) {
            problems.push(format!(
                "key fields.{field}: unknown source field — use any of {}",
                pair.source_fields.join(", ")
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
        if pair.needs_deadlines {
            problems.push(format!(
                "key deadlines: missing — a {} source needs [deadlines] legacy_frozen and \
                 legacy_tokens_invalid (copy them from the shipped mapping)",
                pair.source_vendor.title()
            ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{load_mapping, parse_mapping, specs};

    /// The default pair's shipped mapping.
    fn shipped() -> String {
        load_mapping(crate::registry::default_mapping())
            .unwrap()
            .text
    }

    #[test]
    fn shipped_mappings_are_valid() {
        for pair in specs() {
            let m = Mapping::load(pair.name, &specs()).unwrap();
            assert_eq!(m.pair, pair);
        }
    }

    #[test]
    fn an_unknown_table_is_named_with_its_line_and_the_known_ones() {
        let text = shipped() + "\n[clinet]\nname = \"x\"\n";
        let err = parse_mapping("u.toml", &text).unwrap_err().to_string();
        let line = text.lines().position(|l| l == "[clinet]").unwrap() + 1;
        assert!(
            err.contains(&format!("u.toml (line {line}): key clinet: unknown")),
            "{err}"
        );
        assert!(
            err.contains("client"),
            "the pair's own tables are listed: {err}"
        );
    }

    #[test]
    fn remaps_validate_and_apply() {
        let text = format!(
            "{}\n[[collections.remap]]\nfrom = 10\nto = 20\n[[collections.remap]]\nworkspace = \"2\"\nfrom = 10\nto = 30\n",
            shipped()
        );
        let m = parse_mapping("r.toml", &text).unwrap();
        assert_eq!(m.file.collections.remapped("1", 10), 20);
        assert_eq!(m.file.collections.remapped("1", 11), 11);
        let bad = format!("{}\n[[collections.remap]]\nfrom = 10\nto = 10\n", shipped());
        let err = parse_mapping("r.toml", &bad).unwrap_err().to_string();
        assert!(err.contains("key collections.remap[0]"), "{err}");
    }
}
