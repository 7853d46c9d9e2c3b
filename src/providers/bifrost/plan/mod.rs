//! Bifrost access profiles → standalone virtual keys (docs/mapping.md).
//! One key per profile (shared counters), or one per profile holder (isolated counters, as
//! profiles behave). Pure: inventory + mapping in, plan out.
//!
//! The plan predicts every refusal of the virtual-key create call (docs/sandbox-bifrost.md,
//! "Virtual keys" and the published-contract decisions): each rule Bifrost enforces on
//! `POST /api/governance/virtual-keys` has a check here that blocks the item, or transforms
//! it with a finding, before anything is written. Every problem of a profile is reported in
//! the same plan (no early exit), each naming the profile field it comes from:
//!
//! | Bifrost refuses | the plan |
//! |---|---|
//! | a blank name, one over 255 characters, one with control characters | transforms (`name`) |
//! | a name in use (409) | transforms with ` (<profile id>)` (`name`) |
//! | a blank or repeated `provider` | blocks (`provider_configs[i].provider_name`) |
//! | `"*"` mixed with model names; blank or repeated models | blocks / transforms (`provider_configs[i].allowed_models`) |
//! | key ids that break the allow-list rules | blocks (`provider_configs[i].key_ids`); explicit ids it cannot see are `manual` |
//! | a budget `max_limit` ≤ 0, an unknown `reset_duration`, a bad `quarter_start_month` | blocks (`…budgets[j].…`) |
//! | two budgets with one `reset_duration` in a list | transforms: keeps the smallest limit (`…budgets`) |
//! | `calendar_aligned` with a sub-day budget | transforms: sends `false` (`calendar_aligned`) |
//! | a rate limit ≤ 0, over int64, or an unknown duration | blocks (`…rate_limit.…`) |
//! | a fractional rate limit | transforms: floors it (`…rate_limit.…`); blocks when that gives 0 |
//! | a limit without its window | transforms: the default window (`…rate_limit.…_reset_duration`) |
//! | an MCP client that does not exist | blocks (`mcp_servers` / `mcp_tool_overrides`) |
//! | a blank, unnamed or ambiguously named MCP client; a bad override action; `"*"` mixed with tools | blocks (`mcp_servers` / `mcp_tool_overrides`) |
//! | metadata values over 512 characters (the holder marker) | blocks (`holders`) |
//! | a provider the instance has not configured (`invalid provider name`) | one `manual` finding per provider the planned keys name (`bifrost_provider`, `provider_configs`): the export cannot list configured providers |

use std::collections::{BTreeMap, HashMap, HashSet};

use super::sections::BifrostSection;
use crate::mapping::EXCLUDED_FIELD;
use crate::mapping::{render, Candidate, Mapping, ProfileRef};
use crate::model::{Finding, FindingKind, Plan, StandaloneSpec, Text};
pub use inventory::{
    profile_marker, BifrostInventory, BifrostProfile, Budget, Holding, McpClient, ProviderAccess,
    RateLimit, ToolOverride, WORKSPACE,
};

mod grant;
mod inventory;
pub use grant::{BudgetGrant, LimitGrant, ProviderGrant, ToolGrant, VirtualKeyGrant, Window};

const VENDOR: &str = "bifrost";
const WS: &str = WORKSPACE;
/// Metadata holds at most 50 entries; keyshift keeps two (`keyshift.source`, `keyshift.holder`).
const MAX_TAGS: usize = 48;
/// Longest virtual-key name Bifrost accepts.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest metadata value Bifrost accepts.
const MAX_METADATA_VALUE: usize = 512;
/// Virtual-key budget windows (`30s 5m 1h 1d 1w 1M 1Q 1Y`).
pub const BUDGET_DURATIONS: &[&str] = &["30s", "5m", "1h", "1d", "1w", "1M", "1Q", "1Y"];
/// Virtual-key rate-limit windows (no `1Q`).
pub const RATE_DURATIONS: &[&str] = &["30s", "5m", "1h", "1d", "1w", "1M", "1Y"];

fn finding(
    p: &BifrostProfile,
    kind: FindingKind,
    field: impl Into<Text>,
    found: String,
    fix: impl Into<Text>,
) -> Finding {
    ProfileRef::new(VENDOR, WS, p.id, p.name.as_str()).finding(kind, field, found, fix)
}

/// The findings of one profile, and whether any of them blocks it.
struct Checks<'a> {
    p: &'a BifrostProfile,
    findings: &'a mut Vec<Finding>,
    blocked: bool,
}

impl Checks<'_> {
    fn note(
        &mut self,
        kind: FindingKind,
        field: impl Into<Text>,
        found: String,
        fix: impl Into<Text>,
    ) {
        if kind == FindingKind::Blocker {
            self.blocked = true;
        }
        self.findings.push(finding(self.p, kind, field, found, fix));
    }

    fn block(&mut self, field: impl Into<Text>, found: String, fix: impl Into<Text>) {
        self.note(FindingKind::Blocker, field, found, fix);
    }

    fn transform(&mut self, field: impl Into<Text>, found: String, fix: impl Into<Text>) {
        self.note(FindingKind::Transformed, field, found, fix);
    }
}

const FIX_PROFILE: &str = "correct the access profile in Bifrost, then export and plan again";

pub fn marker(profile_id: i64, holder: Option<&str>) -> String {
    match holder {
        None => profile_marker(profile_id),
        Some(h) => format!("{}:holder:{h}", profile_marker(profile_id)),
    }
}

/// `taken_by_others`: names of virtual keys that exist and are not ours (names are unique).
pub fn plan(
    inv: &BifrostInventory,
    mapping: &Mapping,
    holders_from_file: &[String],
    taken_by_others: &[String],
) -> Plan {
    let b = mapping.own::<BifrostSection>().clone();
    let per_holder = b.mode == "per_holder";
    let mcp: HashMap<&str, &McpClient> = inv
        .mcp_clients
        .iter()
        .map(|m| (m.client_id.as_str(), m))
        .collect();
    // Bifrost finds MCP clients by name: names held by several clients are ambiguous.
    let mut name_count: HashMap<&str, usize> = HashMap::new();
    for m in &inv.mcp_clients {
        *name_count.entry(m.name.trim()).or_default() += 1;
    }
    let mut holders: Vec<String> = b.holders.clone();
    holders.extend(holders_from_file.iter().cloned());
    let mut findings = Vec::new();
    let mut items = Vec::new();
    // The planned keys' names by the provider they name.
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let others: HashSet<&str> = taken_by_others.iter().map(String::as_str).collect();
    let mut taken: HashSet<String> = HashSet::new();
    let mut profiles: Vec<&BifrostProfile> = inv.profiles.iter().collect();
    profiles.sort_by_key(|p| p.id);
    let duplicate_names: HashSet<String> = {
        let mut seen = HashSet::new();
        profiles
            .iter()
            .map(|p| clean_name(&p.name))
            .filter(|n| !seen.insert(n.clone()))
            .collect()
    };
    for p in profiles {
        let subject = Candidate {
            workspace: WS,
            workspace_external_id: None,
            client_id: 0,
            client_name: "",
            profile_id: p.id,
            profile_name: &p.name,
            auth_type: "",
        };
        if let Some(reason) = mapping.file.filters.excludes(&subject) {
            findings.push(finding(
                p,
                FindingKind::Advice,
                EXCLUDED_FIELD,
                reason,
                "nothing to do, or change [filters]",
            ));
            continue;
        }
        let mut c = Checks {
            p,
            findings: &mut findings,
            blocked: false,
        };
        let mcp_configs = mcp_configs(&mut c, &mcp, &name_count);
        // Findings the contract settles.
        if !p.mcp_tool_groups.is_empty() {
            c.note(
                FindingKind::Manual,
                "mcp_tool_groups",
                format!(
                    "{} MCP tool group(s) cannot be attached to a virtual key by the API",
                    p.mcp_tool_groups.len()
                ),
                "attach the equivalent Virtual MCP to the new key by hand",
            );
        }
        if p.auto_rotation_interval > 0 {
            c.note(
                FindingKind::Lossy,
                "auto_rotation_interval",
                "scheduled rotation has no virtual-key equivalent".into(),
                "rotate the key on a schedule yourself (keyshift or the API's rotate call)",
            );
        }
        let usage = p
            .budgets
            .iter()
            .chain(p.provider_configs.iter().flat_map(|c| c.budgets.iter()))
            .any(|x| x.current_usage > 0.0);
        if usage {
            c.note(
                FindingKind::Lossy,
                "budgets",
                "usage counters restart at zero on the new key".into(),
                "nothing to do; budgets start fresh",
            );
        }
        if p.rate_limit.is_none() {
            c.note(
                FindingKind::Carried,
                "rate_limit",
                "rate_limit is null: the virtual key gets no key-level rate limit".into(),
                "nothing to do",
            );
        }
        if p.provider_configs.len() > 100 || p.budgets.len() > 100 || p.tags.len() > 50 {
            c.note(
                FindingKind::Advice,
                "provider_configs",
                format!(
                    "over the update size limits ({} provider configs, {} budgets, {} tags; limits 100/100/50): the profile cannot be updated until trimmed",
                    p.provider_configs.len(), p.budgets.len(), p.tags.len()
                ),
                "nothing blocks the migration (keyshift only reads and deactivates profiles)",
            );
        }
        let sub_day = p
            .budgets
            .iter()
            .chain(p.provider_configs.iter().flat_map(|c| c.budgets.iter()))
            .any(|x| {
                x.reset_duration == "1h"
                    || x.reset_duration.ends_with('s')
                    || x.reset_duration.ends_with('m')
            });
        let calendar_aligned = if p.calendar_aligned && sub_day {
            c.transform(
                "calendar_aligned",
                "calendar alignment is invalid with sub-day budgets on a virtual key".into(),
                "sent as false",
            );
            false
        } else {
            p.calendar_aligned
        };
        let (tags, dropped) = tag_metadata(&p.tags);
        if dropped > 0 {
            c.note(
                FindingKind::Lossy,
                "tags",
                format!(
                    "{dropped} tag(s) cannot be kept (metadata holds 48 tags, keys [a-zA-Z0-9._-])"
                ),
                "keep them elsewhere if they matter",
            );
        }
        let provider_configs = provider_configs(&mut c, &b.key_ids);
        let budgets = budgets(&mut c, &p.budgets, "budgets");
        let rate_limit = p
            .rate_limit
            .as_ref()
            .map(|r| rate_limit(&mut c, r, "rate_limit"));
        let holders_of_p: Vec<Option<&str>> = if per_holder {
            inv.holdings
                .iter()
                .filter(|h| h.profile_id == p.id && holders.contains(&h.user_id))
                .map(|h| Some(h.user_id.as_str()))
                .collect()
        } else {
            vec![None]
        };
        if per_holder && holders_of_p.is_empty() {
            c.note(
                FindingKind::Advice,
                "holders",
                "none of the named holders holds this profile".into(),
                "nothing to migrate per holder; add holders to [bifrost] if someone is missing",
            );
        }
        let base_blocked = c.blocked;
        for holder in holders_of_p {
            let source = marker(p.id, holder);
            if let Some(h) = holder {
                let longest = source.chars().count().max(h.chars().count());
                if longest > MAX_METADATA_VALUE {
                    c.block(
                        "holders",
                        format!(
                            "holder {:?}…: its provenance marker is {longest} characters; Bifrost metadata values hold at most {MAX_METADATA_VALUE}",
                            h.chars().take(40).collect::<String>()
                        ),
                        "use a shorter user id for this holder",
                    );
                    continue;
                }
            }
            let id_s = p.id.to_string();
            let rendered = match holder {
                None => render(&b.name, &[("profile.name", &p.name), ("profile.id", &id_s)]),
                Some(h) => render(
                    &b.name_per_holder,
                    &[
                        ("profile.name", &p.name),
                        ("profile.id", &id_s),
                        ("holder", h),
                    ],
                ),
            };
            let mut name = key_name(&mut c, &rendered, p.id);
            let clash = if others.contains(name.as_str()) {
                Some(format!(
                    "a virtual key named {name:?} already exists; names are unique"
                ))
            } else if duplicate_names.contains(&clean_name(&p.name)) || taken.contains(&name) {
                Some(format!(
                    "another access profile is also named {:?}; virtual key names are unique",
                    p.name
                ))
            } else {
                None
            };
            if let Some(why) = clash {
                let renamed = with_suffix(&name, p.id);
                c.transform("name", why, format!("the key is named {renamed:?}"));
                if !base_blocked {
                    taken.insert(name.clone());
                }
                name = renamed;
            }
            // A blocked profile's problems are all listed (its name's too), but it is not
            // planned and holds no name.
            if base_blocked {
                continue;
            }
            taken.insert(name.clone());
            let mut labels = tags.clone();
            labels.insert("keyshift.source".into(), source.clone());
            if let Some(h) = holder {
                labels.insert("keyshift.holder".into(), h.to_owned());
            }
            let description = match &p.description {
                Some(d) if !d.is_empty() => format!("{source} — {d}"),
                _ => format!(
                    "{source} — migrated by keyshift from access profile {} {:?}",
                    p.id, p.name
                ),
            };
            let grant = VirtualKeyGrant {
                description,
                providers: provider_configs.clone(),
                budgets: budgets.clone(),
                rate_limit: rate_limit.clone(),
                calendar_aligned,
                tools: mcp_configs.clone(),
                labels,
            };
            for pc in &grant.providers {
                users
                    .entry(pc.provider.clone())
                    .or_default()
                    .push(name.clone());
            }
            items.push(StandaloneSpec {
                source,
                workspace: WS.into(),
                profile_id: p.id.to_string(),
                profile_name: p.name.clone(),
                holder: holder.map(String::from),
                name,
                active: p.is_active,
                grant: serde_json::to_value(&grant).expect("a grant is plain data"),
            });
        }
    }
    provider_findings(users, &mut findings);
    Plan {
        clients: Vec::new(),
        items,
        findings,
    }
}

/// Bifrost refuses a virtual key whose provider config names a provider the instance has not
/// configured (`invalid provider name`), and the export cannot list configured providers: say
/// so once per provider the planned keys name instead of calling them safe.
/// `users`: the planned keys' names by the provider they name.
fn provider_findings(users: BTreeMap<String, Vec<String>>, findings: &mut Vec<Finding>) {
    for (provider, keys) in users {
        findings.push(Finding {
            kind: FindingKind::Manual,
            vendor: VENDOR.into(),
            workspace: WS.into(),
            object_kind: "bifrost_provider".into(),
            object_id: provider.to_owned(),
            object_name: provider.to_owned(),
            field: "provider_configs".into(),
            found: format!(
                "{} planned virtual key(s) name provider {provider:?} (first: {:?}); keyshift \
                 cannot list configured providers, so it cannot confirm {provider:?} is configured",
                keys.len(),
                keys[0]
            ),
            fix: format!(
                "configure the provider {provider:?} (a provider key) in Bifrost before apply — \
                 Bifrost refuses virtual keys naming a missing provider (invalid provider name)"
            )
            .into(),
        });
    }
}

/// A name as Bifrost stores it: control characters removed, trimmed.
fn clean_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `name (<id>)`, cut so that the whole stays within [`MAX_NAME_CHARS`].
fn with_suffix(name: &str, id: i64) -> String {
    let suffix = format!(" ({id})");
    let room = MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
    let base: String = name.chars().take(room).collect();
    format!("{}{suffix}", base.trim_end())
}

/// The key's name from the rendered template, made acceptable to Bifrost (non-blank, at most
/// 255 characters, no control characters) with a `transformed` finding for each change.
fn key_name(c: &mut Checks, rendered: &str, id: i64) -> String {
    let mut name = clean_name(rendered);
    if name.chars().count() != rendered.chars().count() {
        if rendered.chars().any(char::is_control) {
            c.transform(
                "name",
                format!("{rendered:?} holds control characters, which Bifrost refuses in names"),
                format!("they are removed: the key is named {name:?}"),
            );
        } else if !name.is_empty() {
            c.transform(
                "name",
                format!("{rendered:?} has leading or trailing spaces, which Bifrost trims"),
                format!("the key is named {name:?}"),
            );
        }
    }
    if name.is_empty() {
        name = format!("access profile {id}");
        c.transform(
            "name",
            "the name is blank; Bifrost requires a virtual key name".into(),
            format!("the key is named {name:?}"),
        );
    }
    if name.chars().count() > MAX_NAME_CHARS {
        let cut = with_suffix(&name, id);
        c.transform(
            "name",
            format!(
                "the name is {} characters; Bifrost takes at most {MAX_NAME_CHARS}",
                name.chars().count()
            ),
            format!("the key is named {cut:?}"),
        );
        name = cut;
    }
    name
}

/// Bifrost's allow-list rules (`WhiteList`): `"*"` alone, no blank or repeated entry.
/// Returns what is wrong, if anything.
fn allow_list_problem(items: &[String]) -> Option<String> {
    if items.iter().any(|m| m == "*") && items.len() > 1 {
        return Some("\"*\" cannot be combined with names".into());
    }
    if items.iter().any(|m| m.trim().is_empty()) {
        return Some("an entry is blank".into());
    }
    let mut seen = HashSet::new();
    items
        .iter()
        .find(|m| !seen.insert(m.as_str()))
        .map(|m| format!("{m:?} is listed twice"))
}

/// The providers the key may call, with their checks.
fn provider_configs(c: &mut Checks, key_ids: &[String]) -> Vec<ProviderGrant> {
    let p = c.p;
    if !p.provider_configs.is_empty() {
        if let Some(why) = allow_list_problem(key_ids) {
            c.block(
                "provider_configs[].key_ids",
                format!("the mapping's [bifrost] key_ids {key_ids:?}: {why}; Bifrost refuses it"),
                "fix key_ids in the mapping file ([\"*\"] = every provider key)",
            );
        } else if key_ids.is_empty() {
            c.note(
                FindingKind::Manual,
                "provider_configs[].key_ids",
                "the mapping's [bifrost] key_ids is empty: the key may use no provider key (deny by default)".into(),
                "set key_ids in the mapping file ([\"*\"] = every provider key) unless that is meant",
            );
        } else if key_ids != ["*"] {
            c.note(
                FindingKind::Manual,
                "provider_configs[].key_ids",
                format!(
                    "the mapping names provider keys {key_ids:?}; keyshift cannot list provider keys, and Bifrost refuses an id that is not a key of the config's provider"
                ),
                "make sure every listed id is a key of each of this profile's providers, or use [\"*\"]",
            );
        }
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for (i, pc) in p.provider_configs.iter().enumerate() {
        let at = format!("provider_configs[{i}]");
        let provider = pc.provider.trim().to_owned();
        if provider.is_empty() {
            c.block(
                format!("{at}.provider_name"),
                "the provider name is blank; Bifrost requires one".into(),
                FIX_PROFILE,
            );
        } else if !seen.insert(provider.clone()) {
            c.block(
                format!("{at}.provider_name"),
                format!(
                    "provider {provider:?} appears twice; a virtual key holds one config per provider"
                ),
                "merge the two provider configs in the access profile, then export again",
            );
        } else if provider != pc.provider {
            c.transform(
                format!("{at}.provider_name"),
                format!(
                    "{:?} has surrounding spaces, which Bifrost trims",
                    pc.provider
                ),
                format!("sent as {provider:?}"),
            );
        }
        let models = if pc.all_models_allowed {
            vec!["*".to_string()]
        } else {
            allowed_models(c, &pc.allowed_models, format!("{at}.allowed_models").into())
        };
        out.push(ProviderGrant {
            provider,
            models,
            key_ids: key_ids.to_vec(),
            budgets: budgets(c, &pc.budgets, &format!("{at}.budgets")),
            rate_limit: pc
                .rate_limit
                .as_ref()
                .map(|r| rate_limit(c, r, &format!("{at}.rate_limit"))),
        });
    }
    out
}

/// An allow-list of models: `"*"` mixed with names blocks (it would widen or be refused);
/// blank and repeated names are dropped (nothing is granted or lost by that).
fn allowed_models(c: &mut Checks, models: &[String], field: Text) -> Vec<String> {
    if models.iter().any(|m| m == "*") && models.len() > 1 {
        c.block(
            field.clone(),
            format!("{models:?} mixes \"*\" with model names; Bifrost refuses it"),
            "keep either \"*\" (all models) or the names in the access profile",
        );
        return models.to_vec();
    }
    // A name with spaces around it or a control character in it is stored as written, but
    // no request names its model that way: it grants nothing.
    for m in models.iter().filter(|m| {
        !m.trim().is_empty() && (m.trim() != m.as_str() || m.chars().any(char::is_control))
    }) {
        c.note(
            FindingKind::Manual,
            field.clone(),
            format!(
                "the model name {:?} has spaces around it or a control character in it: no \
                 request names a model that way, so it grants nothing",
                crate::output::visible(m)
            ),
            "correct the model name in the access profile, then export and plan again",
        );
    }
    let mut seen = HashSet::new();
    let kept: Vec<String> = models
        .iter()
        .filter(|m| !m.trim().is_empty() && seen.insert(m.as_str()))
        .cloned()
        .collect();
    if kept.len() != models.len() {
        c.transform(
            field.clone(),
            format!(
                "{} blank or repeated model name(s), which Bifrost refuses",
                models.len() - kept.len()
            ),
            "sent once each, blanks left out",
        );
    }
    kept
}

/// A budget list. Bifrost refuses a `max_limit` ≤ 0, unknown windows, a bad
/// `quarter_start_month` and a repeated window in one list; the last is carried by keeping
/// the smallest limit per window (never more spending than before).
fn budgets(c: &mut Checks, budgets: &[Budget], at: &str) -> Vec<BudgetGrant> {
    let mut by_window: BTreeMap<&str, (usize, &Budget)> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (j, b) in budgets.iter().enumerate() {
        let f = format!("{at}[{j}]");
        if !b.max_limit.is_finite() || b.max_limit <= 0.0 {
            c.block(
                format!("{f}.max_limit"),
                format!(
                    "max_limit {}: Bifrost refuses a budget that is not above 0",
                    b.max_limit
                ),
                FIX_PROFILE,
            );
        }
        if !BUDGET_DURATIONS.contains(&b.reset_duration.as_str()) {
            c.block(
                format!("{f}.reset_duration"),
                format!(
                    "reset_duration {:?} is not a virtual-key budget window ({})",
                    b.reset_duration,
                    BUDGET_DURATIONS.join(" ")
                ),
                FIX_PROFILE,
            );
        }
        if let (Some(m), "1Q") = (b.quarter_start_month, b.reset_duration.as_str()) {
            if !(1..=12).contains(&m) {
                c.block(
                    format!("{f}.reset_config.quarter_start_month"),
                    format!("quarter_start_month {m} is not a month (1–12)"),
                    FIX_PROFILE,
                );
            }
        }
        match by_window.get_mut(b.reset_duration.as_str()) {
            Some((first, kept)) => {
                let first = *first;
                if b.max_limit < kept.max_limit {
                    *kept = b;
                }
                c.transform(
                    format!("{f}.reset_duration"),
                    format!(
                        "{at}[{first}] and {at}[{j}] both reset every {:?}; a virtual key holds one budget per window",
                        b.reset_duration
                    ),
                    format!("one budget per window is sent, with the smaller limit ({})", kept.max_limit),
                );
            }
            None => {
                by_window.insert(b.reset_duration.as_str(), (j, b));
                order.push(b.reset_duration.as_str());
            }
        }
    }
    order
        .into_iter()
        .map(|w| {
            let b = by_window[w].1;
            BudgetGrant {
                max_limit: b.max_limit,
                window: b.reset_duration.clone(),
                quarter_start_month: b.quarter_start_month.filter(|_| w == "1Q"),
            }
        })
        .collect()
}

/// A rate limit. Virtual-key limits are int64 above 0: fractions are floored
/// (transformed), anything that is then not ≥ 1 or does not fit blocks; a limit without its
/// window gets the default window (transformed); an unknown window blocks.
fn rate_limit(c: &mut Checks, r: &RateLimit, at: &str) -> LimitGrant {
    let mut out = LimitGrant::default();
    for (kind, max, window, default) in [
        ("token", r.token_max_limit, &r.token_reset_duration, "1d"),
        (
            "request",
            r.request_max_limit,
            &r.request_reset_duration,
            "1h",
        ),
    ] {
        let Some(max) = max else { continue };
        let field = format!("{at}.{kind}_max_limit");
        let whole = max.floor();
        if !max.is_finite() || !(1.0..9.2e18).contains(&whole) {
            c.block(
                field.clone(),
                format!("{kind}_max_limit {max}: Bifrost takes a whole number above 0 (int64)"),
                FIX_PROFILE,
            );
        } else if whole != max {
            c.transform(
                field.clone(),
                format!(
                    "{kind}_max_limit {max} is not a whole number; virtual-key limits are integers"
                ),
                format!("sent as {}", whole as i64),
            );
        }
        let every = match window {
            Some(w) if RATE_DURATIONS.contains(&w.as_str()) => w.clone(),
            Some(w) => {
                c.block(
                    format!("{at}.{kind}_reset_duration"),
                    format!(
                        "{kind}_reset_duration {w:?} is not a virtual-key rate-limit window ({})",
                        RATE_DURATIONS.join(" ")
                    ),
                    FIX_PROFILE,
                );
                w.clone()
            }
            None => {
                c.transform(
                    format!("{at}.{kind}_reset_duration"),
                    format!("{kind}_max_limit has no window; Bifrost requires one"),
                    format!("sent with {default:?}"),
                );
                default.to_owned()
            }
        };
        let limit = Some(Window {
            max: whole as i64,
            every,
        });
        match kind {
            "token" => out.tokens = limit,
            _ => out.requests = limit,
        }
    }
    out
}

/// MCP access: servers, include overrides, exclude overrides (enumerated, lossy). Every
/// reference must name an MCP client that exists under a name only it holds.
fn mcp_configs(
    c: &mut Checks,
    mcp: &HashMap<&str, &McpClient>,
    name_count: &HashMap<&str, usize>,
) -> Vec<ToolGrant> {
    let p = c.p;
    const FIX_MCP: &str =
        "remove it from the profile or add the MCP client in Bifrost, then export again";
    // Which clients, and where each was first named.
    let mut clients: Vec<(&str, String)> = Vec::new();
    for (i, s) in p.mcp_servers.iter().enumerate() {
        if !clients.iter().any(|(id, _)| *id == s.as_str()) {
            clients.push((s, format!("mcp_servers[{i}]")));
        }
    }
    for (i, o) in p.mcp_tool_overrides.iter().enumerate() {
        let at = format!("mcp_tool_overrides[{i}]");
        if o.action != "include" && o.action != "exclude" {
            c.block(
                "mcp_tool_overrides",
                format!(
                    "{at}.action is {:?}; Bifrost knows include and exclude",
                    o.action
                ),
                "correct the override in the access profile, then export again",
            );
        }
        if o.tool_name.trim().is_empty() {
            c.block(
                "mcp_tool_overrides",
                format!("{at}.tool_name is blank"),
                "correct the override in the access profile, then export again",
            );
        }
        if !clients
            .iter()
            .any(|(id, _)| *id == o.mcp_client_id.as_str())
        {
            clients.push((&o.mcp_client_id, at));
        }
    }
    let mut out = Vec::new();
    for (client_id, at) in clients {
        let field = at.split('[').next().unwrap_or("mcp_servers").to_owned();
        let Some(client) = mcp.get(client_id) else {
            c.block(
                field.clone(),
                format!("{at} names MCP client {client_id:?}, which does not exist"),
                FIX_MCP,
            );
            continue;
        };
        let name = client.name.trim();
        if name.is_empty() {
            c.block(
                field.clone(),
                format!("{at}: MCP client {client_id:?} has no name; Bifrost grants MCP access by client name"),
                "name the MCP client in Bifrost, then export again",
            );
            continue;
        }
        if name_count.get(name).copied().unwrap_or(0) > 1 {
            c.block(
                field.clone(),
                format!("{at}: MCP client {client_id:?} shares its name {name:?} with another client; Bifrost grants MCP access by client name"),
                "give each MCP client its own name in Bifrost, then export again",
            );
            continue;
        }
        let overrides: Vec<_> = p
            .mcp_tool_overrides
            .iter()
            .filter(|o| o.mcp_client_id == client_id)
            .collect();
        let excluded: HashSet<&str> = overrides
            .iter()
            .filter(|o| o.action == "exclude")
            .map(|o| o.tool_name.as_str())
            .collect();
        let mut included: Vec<String> = Vec::new();
        for o in overrides.iter().filter(|o| o.action == "include") {
            let t = o.tool_name.trim();
            if !t.is_empty() && !included.iter().any(|x| x == t) {
                included.push(t.to_owned());
            }
        }
        let whole = p.mcp_servers.iter().any(|s| s == client_id);
        let tools: Vec<String> = if !excluded.is_empty() {
            let mut seen = HashSet::new();
            let tools: Vec<String> = client
                .tools
                .iter()
                .filter(|t| !t.trim().is_empty() && t.as_str() != "*")
                .filter(|t| !excluded.contains(t.as_str()) && seen.insert(t.as_str()))
                .cloned()
                .collect();
            c.note(
                FindingKind::Lossy,
                "mcp_tool_overrides",
                format!(
                    "exclude overrides on {:?} are carried by listing its other tools ({}); tools added to it later are not granted",
                    client.name,
                    tools.len()
                ),
                "review the tool list after adding tools to the MCP client",
            );
            tools
        } else if whole {
            vec!["*".to_string()]
        } else {
            if included.iter().any(|t| t == "*") && included.len() > 1 {
                c.block(
                    "mcp_tool_overrides",
                    format!(
                        "the include overrides on {client_id:?} mix \"*\" with tool names; Bifrost refuses it"
                    ),
                    "keep either \"*\" or the tool names in the access profile",
                );
            }
            included
        };
        out.push(ToolGrant {
            client: name.to_owned(),
            tools,
        });
    }
    out
}

/// Tags → `tag.<tag>: "1"`; at most 48, keys limited to `[a-zA-Z0-9._-]`.
fn tag_metadata(tags: &[String]) -> (BTreeMap<String, String>, usize) {
    let mut out = BTreeMap::new();
    let mut dropped = 0;
    for t in tags {
        let ok = !t.is_empty()
            && t.len() <= 250
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if ok && out.len() < MAX_TAGS {
            out.insert(format!("tag.{t}"), "1".to_owned());
        } else {
            dropped += 1;
        }
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(item: &StandaloneSpec) -> VirtualKeyGrant {
        serde_json::from_value(item.grant.clone()).unwrap()
    }

    pub(super) fn profile(id: i64, name: &str) -> BifrostProfile {
        BifrostProfile {
            id,
            name: name.into(),
            description: None,
            is_active: true,
            tags: vec![],
            provider_configs: vec![ProviderAccess {
                provider: "openai".into(),
                all_models_allowed: false,
                allowed_models: vec!["gpt-4o".into()],
                budgets: vec![],
                rate_limit: None,
            }],
            budgets: vec![],
            rate_limit: None,
            calendar_aligned: false,
            auto_rotation_interval: 0,
            mcp_servers: vec![],
            mcp_tool_groups: vec![],
            mcp_tool_overrides: vec![],
        }
    }

    fn budget(max: f64, window: &str) -> Budget {
        Budget {
            max_limit: max,
            reset_duration: window.into(),
            quarter_start_month: None,
            scope: "total".into(),
            current_usage: 0.0,
        }
    }

    fn rate(token: Option<f64>, window: Option<&str>) -> RateLimit {
        RateLimit {
            token_max_limit: token,
            token_reset_duration: window.map(String::from),
            request_max_limit: None,
            request_reset_duration: None,
        }
    }

    fn inventory(profiles: Vec<BifrostProfile>) -> BifrostInventory {
        BifrostInventory {
            profiles,
            mcp_clients: vec![
                McpClient {
                    client_id: "gh-1".into(),
                    name: "github".into(),
                    tools: vec!["list_repos".into(), "delete_repo".into()],
                },
                McpClient {
                    client_id: "jira-1".into(),
                    name: "jira".into(),
                    tools: vec!["get_issue".into()],
                },
            ],
            holdings: vec![],
        }
    }

    fn mapping() -> Mapping {
        crate::registry::load_mapping("bifrost-profiles-to-virtual-keys").unwrap()
    }

    fn run(profiles: Vec<BifrostProfile>) -> Plan {
        plan(&inventory(profiles), &mapping(), &[], &[])
    }

    fn of(plan: &Plan, id: i64, kind: FindingKind) -> Vec<&Finding> {
        plan.findings
            .iter()
            .filter(|f| f.object_id == id.to_string() && f.kind == kind)
            .collect()
    }

    fn fields(findings: &[&Finding]) -> Vec<String> {
        findings.iter().map(|f| f.field.to_string()).collect()
    }

    #[test]
    fn a_clean_profile_is_planned_without_blockers() {
        let mut p = profile(1, "Engineering");
        p.mcp_servers = vec!["gh-1".into()];
        p.budgets = vec![budget(10.0, "1M")];
        p.rate_limit = Some(rate(Some(1000.0), Some("1d")));
        let plan = run(vec![p]);
        assert!(of(&plan, 1, FindingKind::Blocker).is_empty());
        assert_eq!(plan.items.len(), 1);
        let g = grant(&plan.items[0]);
        assert_eq!(g.tools[0].client, "github");
        assert_eq!(g.tools[0].tools, ["*"]);
        assert_eq!(g.rate_limit.unwrap().tokens.unwrap().max, 1000);
        assert_eq!(g.providers[0].key_ids, ["*"]);
    }

    #[test]
    fn each_provider_the_planned_keys_name_is_one_manual_finding() {
        let mut two = profile(2, "Two");
        two.provider_configs.push(ProviderAccess {
            provider: " cohere ".into(),
            all_models_allowed: true,
            allowed_models: vec![],
            budgets: vec![],
            rate_limit: None,
        });
        // A blocked profile's providers are not planned, so not named.
        let mut blocked = profile(3, "Blocked");
        blocked.provider_configs[0].provider = "mistral".into();
        blocked.mcp_servers = vec!["ghost-9".into()];
        let plan = run(vec![profile(1, "One"), two, blocked]);
        let manual: Vec<&Finding> = plan
            .findings
            .iter()
            .filter(|f| f.object_kind == "bifrost_provider")
            .collect();
        let ids: Vec<&str> = manual.iter().map(|f| f.object_id.as_str()).collect();
        assert_eq!(ids, ["cohere", "openai"], "{manual:?}");
        for f in &manual {
            assert_eq!(f.kind, FindingKind::Manual);
            assert_eq!(f.field, "provider_configs");
            assert!(
                f.found.contains("cannot list configured providers"),
                "{}",
                f.found
            );
            assert!(f.fix.contains("before apply"), "{}", f.fix);
        }
        assert!(manual[1].found.starts_with("2 planned virtual key(s)"));
        assert!(manual[0].fix.contains("\"cohere\""), "{}", manual[0].fix);
    }

    #[test]
    fn an_override_on_a_missing_client_names_mcp_tool_overrides() {
        let mut p = profile(7, "Overrides");
        p.mcp_tool_overrides = vec![ToolOverride {
            mcp_client_id: "ghost-2".into(),
            tool_name: "x".into(),
            action: "include".into(),
        }];
        let plan = run(vec![p]);
        let b = of(&plan, 7, FindingKind::Blocker);
        assert_eq!(fields(&b), ["mcp_tool_overrides"], "{b:?}");
        assert!(b[0].found.contains("mcp_tool_overrides[0]") && b[0].found.contains("ghost-2"));
        assert!(b[0].fix.contains("add the MCP client"), "{}", b[0].fix);
        assert!(plan.items.is_empty());
        // An unknown server is a problem of mcp_servers.
        let mut p = profile(8, "Servers");
        p.mcp_servers = vec!["gh-1".into(), "ghost-9".into()];
        let plan = run(vec![p]);
        assert_eq!(fields(&of(&plan, 8, FindingKind::Blocker)), ["mcp_servers"]);
    }

    #[test]
    fn every_problem_of_a_profile_is_listed_in_one_plan() {
        let mut p = profile(3, "Many defects");
        p.mcp_servers = vec!["ghost-9".into()];
        p.mcp_tool_overrides = vec![
            ToolOverride {
                mcp_client_id: "ghost-2".into(),
                tool_name: "t".into(),
                action: "include".into(),
            },
            ToolOverride {
                mcp_client_id: "gh-1".into(),
                tool_name: "t".into(),
                action: "allow".into(),
            },
        ];
        p.rate_limit = Some(RateLimit {
            token_max_limit: Some(0.0),
            token_reset_duration: Some("1d".into()),
            request_max_limit: Some(5.0),
            request_reset_duration: Some("1Q".into()),
        });
        let mut q = budget(5.0, "1Q");
        q.quarter_start_month = Some(13);
        p.budgets = vec![budget(0.0, "1M"), budget(3.0, "2h"), q];
        p.provider_configs.push(ProviderAccess {
            provider: "openai".into(),
            all_models_allowed: false,
            allowed_models: vec!["*".into(), "gpt-4o".into()],
            budgets: vec![],
            rate_limit: Some(rate(Some(0.4), Some("1d"))),
        });
        p.provider_configs.push(ProviderAccess {
            provider: "  ".into(),
            all_models_allowed: true,
            allowed_models: vec![],
            budgets: vec![budget(-1.0, "1d")],
            rate_limit: None,
        });
        let plan = run(vec![p]);
        let mut got = fields(&of(&plan, 3, FindingKind::Blocker));
        got.sort();
        let mut want = vec![
            "budgets[0].max_limit",
            "budgets[1].reset_duration",
            "budgets[2].reset_config.quarter_start_month",
            "mcp_servers",
            "mcp_tool_overrides",
            "mcp_tool_overrides",
            "provider_configs[1].allowed_models",
            "provider_configs[1].provider_name",
            "provider_configs[1].rate_limit.token_max_limit",
            "provider_configs[2].budgets[0].max_limit",
            "provider_configs[2].provider_name",
            "rate_limit.request_reset_duration",
            "rate_limit.token_max_limit",
        ];
        want.sort();
        assert_eq!(got, want);
        assert!(plan.items.is_empty(), "blocked: nothing is planned");
        for f in of(&plan, 3, FindingKind::Blocker) {
            assert!(!f.fix.is_empty() && !f.found.is_empty(), "{f}");
            assert_eq!(f.object_name, "Many defects");
        }
    }

    #[test]
    fn a_model_name_no_request_can_name_is_flagged() {
        let mut p = profile(4, "ops");
        p.provider_configs[0].allowed_models =
            vec![" gpt-4o".into(), "o3\u{1}".into(), "o1".into()];
        let plan = run(vec![p]);
        let manual = of(&plan, 4, FindingKind::Manual);
        assert_eq!(
            fields(&manual)
                .iter()
                .filter(|f| f.as_str() == "provider_configs[0].allowed_models")
                .count(),
            2,
            "{manual:?}"
        );
        assert!(plan.findings.iter().all(|f| f.kind != FindingKind::Blocker));
    }

    #[test]
    fn what_can_be_carried_is_transformed_with_a_finding() {
        let mut p = profile(4, "  Tab\tname ");
        p.rate_limit = Some(RateLimit {
            token_max_limit: Some(250_000.75),
            token_reset_duration: Some("1d".into()),
            request_max_limit: Some(99.0),
            request_reset_duration: None,
        });
        p.budgets = vec![budget(50.0, "1M"), budget(20.0, "1M"), budget(5.0, "1d")];
        p.provider_configs[0].allowed_models =
            vec!["gpt-4o".into(), "gpt-4o".into(), " ".into(), "o3".into()];
        let long = profile(5, &"x".repeat(300));
        let blank = profile(6, " ");
        let plan = run(vec![p, long, blank]);
        assert!(plan.findings.iter().all(|f| f.kind != FindingKind::Blocker));
        let t = fields(&of(&plan, 4, FindingKind::Transformed));
        for f in [
            "name",
            "rate_limit.token_max_limit",
            "rate_limit.request_reset_duration",
            "budgets[1].reset_duration",
            "provider_configs[0].allowed_models",
        ] {
            assert!(t.iter().any(|x| x == f), "{f} in {t:?}");
        }
        let item = |id: &str| plan.items.iter().find(|i| i.profile_id == id).unwrap();
        let g = grant(item("4"));
        assert_eq!(item("4").name, "Tabname");
        let limit = g.rate_limit.unwrap();
        assert_eq!(limit.tokens.unwrap().max, 250_000);
        assert_eq!(limit.requests.unwrap().every, "1h");
        let budgets: Vec<(f64, &str)> = g
            .budgets
            .iter()
            .map(|b| (b.max_limit, b.window.as_str()))
            .collect();
        assert_eq!(budgets, [(20.0, "1M"), (5.0, "1d")]);
        assert_eq!(g.providers[0].models, ["gpt-4o", "o3"]);
        assert_eq!(item("5").name.chars().count(), MAX_NAME_CHARS);
        assert!(item("5").name.ends_with(" (5)"));
        assert_eq!(item("6").name, "access profile 6");
    }

    #[test]
    fn ambiguous_mcp_names_and_mapping_key_ids() {
        let mut inv = inventory(vec![{
            let mut p = profile(9, "Ambiguous");
            p.mcp_servers = vec!["gh-2".into()];
            p
        }]);
        inv.mcp_clients.push(McpClient {
            client_id: "gh-2".into(),
            name: "github".into(),
            tools: vec![],
        });
        let plan = plan(&inv, &mapping(), &[], &[]);
        let b = of(&plan, 9, FindingKind::Blocker);
        assert_eq!(fields(&b), ["mcp_servers"]);
        assert!(b[0].found.contains("shares its name"));

        let with_key_ids = |ids: &str| {
            let text = mapping()
                .text
                .replace("key_ids = [\"*\"]", &format!("key_ids = {ids}"));
            crate::registry::parse_mapping("m.toml", &text).unwrap()
        };
        let m = with_key_ids(r#"["*", "k1"]"#);
        let plan2 = plan_with(&m, vec![profile(10, "Keys")]);
        assert_eq!(
            fields(&of(&plan2, 10, FindingKind::Blocker)),
            ["provider_configs[].key_ids"]
        );
        let m = with_key_ids(r#"["k1"]"#);
        let plan3 = plan_with(&m, vec![profile(10, "Keys")]);
        assert_eq!(
            fields(&of(&plan3, 10, FindingKind::Manual)),
            ["provider_configs[].key_ids"]
        );
        assert_eq!(plan3.items.len(), 1, "manual: planned, with the warning");
    }

    fn plan_with(m: &Mapping, profiles: Vec<BifrostProfile>) -> Plan {
        plan(&inventory(profiles), m, &[], &[])
    }
}
