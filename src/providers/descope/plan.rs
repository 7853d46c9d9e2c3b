//! Workato legacy access profiles → Descope access keys (docs/mapping.md): one key per
//! profile, in the customer's tenant, roles from the collections. Pure, like the Workato
//! engine: inventory + mapping in, plan out.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::sections::DescopeSection;
use crate::mapping::{render, Candidate, Mapping, ProfileRef};
use crate::mapping::{valid_ip_entry, EXCLUDED_FIELD};
use crate::model::{
    AuthType, Finding, FindingKind, Inventory, Plan, Profile, StandaloneSpec, Text,
};

/// The vendor of the profiles this planner reads (findings name the source)
const SOURCE_VENDOR: &str = "workato";

fn finding(
    p: &Profile,
    kind: FindingKind,
    field: impl Into<Text>,
    found: String,
    fix: impl Into<Text>,
) -> Finding {
    ProfileRef::new(SOURCE_VENDOR, &p.workspace, p.id, &p.name).finding(kind, field, found, fix)
}

/// What one planned access key may do. The Descope provider turns it into the create body
/// (the key's name and marker come from its item).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AccessKeyGrant {
    pub description: String,
    /// Unix seconds; 0 = never.
    pub expire_time: i64,
    /// Project roles, or the roles in `tenant` when there is one (never both, SD-D5).
    pub roles: Vec<String>,
    pub tenant: Option<String>,
    pub custom_claims: Map<String, Value>,
    pub permitted_ips: Vec<String>,
}

pub fn plan(inv: &Inventory, mapping: &Mapping) -> Plan {
    let d = mapping.own::<DescopeSection>().clone();
    let clients: HashMap<(&str, i64), &str> = inv
        .legacy_clients
        .iter()
        .map(|c| ((c.workspace.as_str(), c.id), c.name.as_str()))
        .collect();
    let collections: HashMap<(&str, i64), &str> = inv
        .collections
        .iter()
        .map(|c| ((c.workspace.as_str(), c.id), c.name.as_str()))
        .collect();
    let external: HashMap<&str, Option<&str>> = inv
        .workspaces
        .iter()
        .map(|w| (w.id.as_str(), w.external_id.as_deref()))
        .collect();
    let mut findings = Vec::new();
    let mut items = Vec::new();
    // Roles and tenants the keys name → the first workspace that needs each.
    let mut needed_roles: BTreeMap<String, String> = BTreeMap::new();
    let mut needed_tenants: BTreeMap<String, String> = BTreeMap::new();
    let mut profiles: Vec<&Profile> = inv.profiles.iter().collect();
    profiles.sort_by(|a, b| {
        (
            a.workspace.parse::<u64>().unwrap_or(u64::MAX),
            a.legacy_client_id,
            a.id,
        )
            .cmp(&(
                b.workspace.parse::<u64>().unwrap_or(u64::MAX),
                b.legacy_client_id,
                b.id,
            ))
    });
    for p in profiles {
        let client_name = clients
            .get(&(p.workspace.as_str(), p.legacy_client_id))
            .copied()
            .unwrap_or("");
        let ext = external.get(p.workspace.as_str()).copied().flatten();
        let subject = Candidate {
            workspace: &p.workspace,
            workspace_external_id: ext,
            client_id: p.legacy_client_id,
            client_name,
            profile_id: p.id,
            profile_name: &p.name,
            auth_type: p.auth_type.as_str(),
        };
        if let Some(reason) = mapping.file.filters.excludes(&subject) {
            findings.push(finding(
                p,
                FindingKind::Advice,
                EXCLUDED_FIELD,
                reason,
                "nothing to do, or change [filters] in the mapping file to include it",
            ));
            continue;
        }
        let mut blocked = Vec::new();
        if let AuthType::Unknown(a) = &p.auth_type {
            // Descope keys do not carry an auth type, but an unknown one means the source
            // record is not understood: do not guess what its consumer does.
            blocked.push(finding(
                p,
                FindingKind::Blocker,
                "auth_type",
                format!("unknown auth type {a:?}"),
                "set auth_type to token, jwt, oauth2 or oidc in the source, or exclude the profile",
            ));
        }
        for entry in &p.ip_allow_list {
            if !valid_ip_entry(entry) {
                blocked.push(finding(
                    p,
                    FindingKind::Blocker,
                    "ip_allow_list",
                    format!("{entry:?} is not an IPv4/IPv6 address or CIDR range"),
                    "correct the entry in the source (e.g. 203.0.113.0/24), or exclude the profile",
                ));
            }
        }
        let mut roles = BTreeSet::new();
        for id in &p.collection_ids {
            let id = mapping.file.collections.remapped(&p.workspace, *id);
            let name = collections.get(&(p.workspace.as_str(), id)).copied();
            let role = d
                .roles
                .get(&id.to_string())
                .or_else(|| name.and_then(|n| d.roles.get(n)))
                .cloned()
                .or_else(|| {
                    name.filter(|_| d.roles_from_collection_names)
                        .map(str::to_string)
                });
            match role {
                Some(r) => {
                    roles.insert(r);
                }
                None => blocked.push(finding(
                    p,
                    FindingKind::Blocker,
                    "api_collection_ids",
                    match name {
                        Some(n) => format!("collection {id} {n:?} has no Descope role in [descope.roles]"),
                        None => format!("API collection {id} does not exist in workspace {}", p.workspace),
                    },
                    "map the collection to a role in [descope.roles] (or set roles_from_collection_names), or exclude the profile",
                )),
            }
        }
        if !blocked.is_empty() {
            findings.append(&mut blocked);
            continue;
        }
        let marker = p.marker(SOURCE_VENDOR);
        let id = p.id.to_string();
        let name = render(
            &d.name,
            &[
                ("legacy_client.name", client_name),
                ("profile.name", p.name.as_str()),
                ("profile.id", id.as_str()),
                ("workspace", p.workspace.as_str()),
            ],
        );
        // Descope refuses an empty name ("The name field is required", SD-D3).
        let name = if name.trim().is_empty() {
            let named = format!("Workato profile {id}");
            findings.push(finding(
                p,
                FindingKind::Transformed,
                "name",
                "the [descope] name template gives a blank name for this profile; Descope \
                 requires one"
                    .to_string(),
                format!("the key is named {named:?}; name the profile in the source or change [descope] name"),
            ));
            named
        } else {
            name
        };
        let roles: Vec<String> = roles.into_iter().collect();
        let tenant = tenant_for(&d, &p.workspace, ext);
        for r in &roles {
            needed_roles
                .entry(r.clone())
                .or_insert_with(|| p.workspace.clone());
        }
        if let Some(t) = &tenant {
            needed_tenants
                .entry(t.clone())
                .or_insert_with(|| p.workspace.clone());
        }
        let grant = AccessKeyGrant {
            description: format!(
                "{marker} — migrated by keyshift from Workato profile {} {:?} (legacy client {:?})",
                p.id, p.name, client_name
            ),
            expire_time: d.expire_time,
            roles,
            tenant,
            custom_claims: d
                .custom_claims
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
            permitted_ips: p.ip_allow_list.clone(),
        };
        rule_findings(p, mapping, &mut findings);
        items.push(StandaloneSpec {
            source: marker,
            workspace: p.workspace.clone(),
            profile_id: id,
            profile_name: p.name.clone(),
            holder: None,
            name,
            active: p.active,
            grant: serde_json::to_value(&grant).expect("a grant is plain data"),
        });
    }
    // Descope refuses a key naming a role or tenant the project lacks (SD-D5), and the
    // access-key API keyshift uses cannot list them: say so once per name instead of calling
    // the keys safe.
    let needed = needed_roles
        .into_iter()
        .map(|(name, ws)| ("descope_role", "roleNames", name, ws))
        .chain(
            needed_tenants
                .into_iter()
                .map(|(name, ws)| ("descope_tenant", "keyTenants", name, ws)),
        );
    for (kind, field, name, ws) in needed {
        let what = kind.trim_start_matches("descope_");
        findings.push(Finding {
            kind: FindingKind::Manual,
            vendor: "descope".into(),
            workspace: ws,
            object_kind: kind.into(),
            object_id: name.clone(),
            object_name: name.clone(),
            field: field.into(),
            found: format!(
                "planned access keys name the {what} {name:?}; keyshift cannot list Descope \
                 {what}s, so it cannot confirm the {what} exists"
            ),
            fix: format!(
                "create the {what} {name:?} in the Descope project before apply (Descope refuses \
                 keys naming a missing {what}), or change the mapping's [descope] section"
            )
            .into(),
        });
    }
    Plan {
        clients: Vec::new(),
        items,
        findings,
    }
}

fn tenant_for(d: &DescopeSection, ws: &str, ext: Option<&str>) -> Option<String> {
    d.tenants
        .get(ws)
        .or_else(|| ext.and_then(|e| d.tenants.get(e)))
        .cloned()
        .or_else(|| {
            d.tenant.as_ref().map(|t| {
                render(
                    t,
                    &[
                        ("workspace", ws),
                        ("workspace.external_id", ext.unwrap_or(ws)),
                    ],
                )
            })
        })
}

/// Conditional field rules of the mapping, one finding per matching profile.
fn rule_findings(p: &Profile, mapping: &Mapping, findings: &mut Vec<Finding>) {
    for (field, rule) in &mapping.file.fields {
        if !rule.is_conditional() {
            continue;
        }
        if !rule.auth_types.is_empty() && !rule.auth_types.iter().any(|a| a == p.auth_type.as_str())
        {
            continue;
        }
        let value = match field.as_str() {
            "auth_type" => Some(p.auth_type.as_str().to_string()),
            "jwt_method" => p.jwt_method.clone(),
            "api_policy_id" => p.policy_id.map(|x| x.to_string()),
            "active" => Some(p.active.to_string()),
            _ => None,
        };
        if let Some(want) = &rule.when {
            if value.as_deref() != Some(want.as_str()) {
                continue;
            }
        }
        let fix: Text = if rule.fix.is_empty() {
            "nothing to do".into()
        } else {
            rule.fix.clone().into()
        };
        findings.push(finding(
            p,
            rule.kind(),
            field.clone(),
            rule.message.clone(),
            fix,
        ));
    }
}

fn toml_to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
