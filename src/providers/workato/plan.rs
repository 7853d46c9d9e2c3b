//! The Workato v2 planner: a Workato inventory + the mapping → v2 clients and API keys +
//! findings.
//!
//! Pure and synchronous: it takes no HTTP client, no database handle and no secret, so the
//! planning step cannot write anywhere remote (design invariant 1). HMAC signing secrets
//! reach it only as keyed fingerprints (enough to group profiles that share one).

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::mapping::{render, valid_ip_entry, Candidate, Mapping, ProfileRef, EXCLUDED_FIELD};
use crate::model::{
    is_rsa_public_key_pem, AuthType, ClientSettings, ClientSpec, Finding, FindingKind, Inventory,
    KeySpec, LegacyClient, Plan, Profile, SigningSecretRef, Text,
};
use crate::secrets::SigningIndex;

use super::sections::ClientSection;

const VENDOR: &str = "workato";

/// Map an inventory to a plan. Profiles that cannot be mapped become blocker findings; all
/// others are planned.
pub fn plan(inv: &Inventory, mapping: &Mapping, signing: &SigningIndex) -> Plan {
    let mut findings = Vec::new();
    let collections: HashSet<(&str, i64)> = inv
        .collections
        .iter()
        .map(|c| (c.workspace.as_str(), c.id))
        .collect();
    let clients: HashMap<(&str, i64), &LegacyClient> = inv
        .legacy_clients
        .iter()
        .map(|c| ((c.workspace.as_str(), c.id), c))
        .collect();

    // (workspace, legacy client id, settings) → profiles, in a stable order.
    type GroupKey = (String, i64, ClientSettings);
    let mut groups: BTreeMap<GroupKey, (Vec<&Profile>, Option<SigningSecretRef>)> = BTreeMap::new();
    let mut profiles: Vec<&Profile> = inv.profiles.iter().collect();
    profiles.sort_by(|a, b| {
        (natural(&a.workspace), a.legacy_client_id, a.id).cmp(&(
            natural(&b.workspace),
            b.legacy_client_id,
            b.id,
        ))
    });
    let external_ids: HashMap<&str, &str> = inv
        .workspaces
        .iter()
        .filter_map(|w| w.external_id.as_deref().map(|e| (w.id.as_str(), e)))
        .collect();
    for p in profiles {
        let client_name = clients
            .get(&(p.workspace.as_str(), p.legacy_client_id))
            .map(|c| c.name.as_str())
            .unwrap_or("");
        let subject = Candidate {
            workspace: &p.workspace,
            workspace_external_id: external_ids.get(p.workspace.as_str()).copied(),
            client_id: p.legacy_client_id,
            client_name,
            profile_id: p.id,
            profile_name: &p.name,
            auth_type: p.auth_type.as_str(),
        };
        if let Some(reason) = mapping.file.filters.excludes(&subject) {
            findings.push(Finding {
                kind: FindingKind::Advice,
                vendor: VENDOR.into(),
                workspace: p.workspace.clone(),
                object_kind: "profile".into(),
                object_id: p.id.to_string(),
                object_name: p.name.clone(),
                field: EXCLUDED_FIELD.into(),
                found: reason,
                fix: "nothing to do, or change [filters] in the mapping file to include it".into(),
            });
            continue;
        }
        // Every problem of a profile in one plan: a missing client does not hide the others.
        let client_missing = !clients.contains_key(&(p.workspace.as_str(), p.legacy_client_id));
        if client_missing {
            findings.push(blocker(
                p,
                "api_client_id",
                format!("legacy API client {} was not found", p.legacy_client_id),
                "re-run export; if the client is gone, the profile cannot be migrated",
            ));
        }
        // Values the vendor stores but that cannot work at the consumer's side.
        let usable = super::usable::profile(VENDOR, p);
        let unusable = usable.iter().any(|f| f.kind == FindingKind::Blocker);
        findings.extend(usable);
        match settings_for(p, mapping, signing, &collections) {
            Ok(_) if client_missing || unusable => {}
            Ok((settings, signing_ref)) => {
                if let Some(method) = stray_jwt_method(p) {
                    findings.push(Finding {
                        kind: FindingKind::Transformed,
                        vendor: VENDOR.into(),
                        workspace: p.workspace.clone(),
                        object_kind: "profile".into(),
                        object_id: p.id.to_string(),
                        object_name: p.name.clone(),
                        field: "jwt_method".into(),
                        found: format!(
                            "a {} profile with jwt_method {method:?}, which Workato refuses \
                             (hmac or rsa only) and a {0} client does not use",
                            p.auth_type
                        ),
                        fix: "not carried; clear it in the source if it matters".into(),
                    });
                }
                let entry = groups
                    .entry((p.workspace.clone(), p.legacy_client_id, settings))
                    .or_insert_with(|| (Vec::new(), None));
                entry.0.push(p);
                if entry.1.is_none() {
                    entry.1 = signing_ref;
                }
            }
            Err(mut problems) => findings.append(&mut problems),
        }
    }

    // Chunk groups, name clients and keys.
    let client: &ClientSection = mapping.own();
    let max = client.max_keys_per_client;
    type Chunk<'a> = (ClientSettings, Vec<&'a Profile>, Option<SigningSecretRef>);
    let mut per_legacy_client: BTreeMap<(String, i64), Vec<Chunk>> = BTreeMap::new();
    for ((ws, client_id, settings), (members, signing_ref)) in groups {
        let list = per_legacy_client.entry((ws, client_id)).or_default();
        for chunk in members.chunks(max) {
            list.push((settings.clone(), chunk.to_vec(), signing_ref.clone()));
        }
    }

    let mut specs = Vec::new();
    let mut taken_client_names: HashSet<(String, String)> = HashSet::new();
    let mut ordered: Vec<_> = per_legacy_client.into_iter().collect();
    ordered.sort_by_key(|((ws, id), _)| (natural(ws), *id));
    for ((ws, client_id), chunks) in ordered {
        let legacy = clients[&(ws.as_str(), client_id)];
        let split = chunks.len() > 1;
        for (index, (settings, members, signing_ref)) in chunks.into_iter().enumerate() {
            let group_no = (index + 1).to_string();
            let client_id_s = client_id.to_string();
            let values = [
                ("legacy_client.name", legacy.name.as_str()),
                ("legacy_client.id", client_id_s.as_str()),
                ("auth_type", settings.auth_type.as_str()),
                ("group", group_no.as_str()),
                ("workspace", ws.as_str()),
            ];
            let template = if split {
                &client.name_when_split
            } else {
                &client.name
            };
            let rendered = render(template, &values);
            // A cut name keeps what tells it apart: the legacy client, and the group if split.
            let suffix = if split {
                format!(" ({client_id}-{group_no})")
            } else {
                format!(" ({client_id})")
            };
            let mut name = acceptable_name(&rendered, &format!("API client {client_id}"), &suffix);
            // A v2 client named otherwise than the template says: a finding on the legacy client.
            let renamed_client = |found: String, fix: String| Finding {
                kind: FindingKind::Transformed,
                vendor: VENDOR.into(),
                workspace: ws.clone(),
                object_kind: "legacy_client".into(),
                object_id: client_id_s.clone(),
                object_name: legacy.name.clone(),
                field: "name".into(),
                found,
                fix: fix.into(),
            };
            if name != rendered {
                findings.push(renamed_client(
                    name_problems(&rendered),
                    format!(
                        "the v2 client is named {name:?}; rename the legacy client or change \
                         [client] name in the mapping file if another name is wanted"
                    ),
                ));
            }
            if !taken_client_names.insert((ws.clone(), name.clone())) {
                let mut renamed = acceptable_name(&format!("{name} ({client_id})"), &name, &suffix);
                let mut n = 2;
                while taken_client_names.contains(&(ws.clone(), renamed.clone())) {
                    let again = format!(" ({client_id}-{n})");
                    renamed = acceptable_name(&format!("{name}{again}"), &name, &again);
                    n += 1;
                }
                findings.push(renamed_client(
                    format!("another planned v2 client is already named {name:?}"),
                    format!("named {renamed:?} instead (v2 client names are unique)"),
                ));
                name = renamed;
                taken_client_names.insert((ws.clone(), name.clone()));
            }
            let marker = format!(
                "keyshift:{VENDOR}:{ws}:group:{}",
                group_digest(&ws, client_id, &settings, signing_ref.as_ref(), index)
            );
            let description = format!(
                "{marker} — migrated by keyshift from legacy API client {client_id} \"{}\"",
                legacy.name
            );
            let keys = key_specs(&ws, legacy, &members, mapping, &mut findings);
            field_findings(&ws, &marker, &name, &settings, mapping, &mut findings);
            specs.push(ClientSpec {
                marker,
                workspace: ws.clone(),
                legacy_client_id: client_id,
                legacy_client_name: legacy.name.clone(),
                name,
                description,
                project_id: legacy.project_id,
                settings,
                signing_secret: signing_ref,
                keys,
            });
        }
    }
    policy_findings(&specs, &mut findings);
    name_clash_findings(inv, &specs, &mut findings);
    Plan {
        clients: specs,
        items: Vec::new(),
        findings,
    }
}

/// Workato's API logs name clients only: a v2 client named like a legacy client of its
/// workspace (or like another v2 client) makes their traffic indistinguishable to `keyshift
/// adoption`.
fn name_clash_findings(inv: &Inventory, specs: &[ClientSpec], findings: &mut Vec<Finding>) {
    let mut taken: HashMap<(&str, &str), usize> = HashMap::new();
    for c in &inv.legacy_clients {
        *taken
            .entry((c.workspace.as_str(), c.name.as_str()))
            .or_default() += 1;
    }
    for s in specs {
        *taken
            .entry((s.workspace.as_str(), s.name.as_str()))
            .or_default() += 1;
    }
    for s in specs {
        if taken
            .get(&(s.workspace.as_str(), s.name.as_str()))
            .copied()
            .unwrap_or(0)
            > 1
        {
            findings.push(Finding {
                kind: FindingKind::Advice,
                vendor: VENDOR.into(),
                workspace: s.workspace.clone(),
                object_kind: "v2_client".into(),
                object_id: s.marker.clone(),
                object_name: s.name.clone(),
                field: "name".into(),
                found: format!(
                    "another client of workspace {} (legacy or v2) is also named {:?}: Workato's \
                     logs name clients only, so adoption cannot tell these apart",
                    s.workspace, s.name
                ),
                fix: "give v2 clients names of their own in the mapping's [client] name, e.g. \
                      \"{legacy_client.name} · keys\""
                    .into(),
            });
        }
    }
}

/// Workato's API has no call that lists API policies, so the export cannot see whether a
/// policy the new clients name still exists (Workato refuses a client naming a missing one).
/// One `manual` finding per policy and workspace says so, instead of calling those clients safe.
fn policy_findings(specs: &[ClientSpec], findings: &mut Vec<Finding>) {
    let mut users: BTreeMap<(u64, String, i64), Vec<&str>> = BTreeMap::new();
    for c in specs {
        if let Some(policy) = c.settings.policy_id {
            users
                .entry((natural(&c.workspace).0, c.workspace.clone(), policy))
                .or_default()
                .push(c.name.as_str());
        }
    }
    for ((_, ws, policy), clients) in users {
        findings.push(Finding {
            kind: FindingKind::Manual,
            vendor: VENDOR.into(),
            workspace: ws.clone(),
            object_kind: "api_policy".into(),
            object_id: policy.to_string(),
            object_name: String::new(),
            field: "api_policy_id".into(),
            found: format!(
                "{} planned v2 client(s) use API policy {policy} (first: {:?}); Workato's API \
                 cannot list policies, so keyshift cannot confirm it still exists",
                clients.len(),
                clients[0]
            ),
            fix: format!(
                "check that API policy {policy} exists in workspace {ws} before apply; if it \
                 was deleted, Workato refuses these clients and apply reports them failed"
            )
            .into(),
        });
    }
}

/// Longest client or key name Workato accepts, in characters (docs/sandbox.md,
/// published-contract decisions).
pub const MAX_NAME_CHARS: usize = 255;

/// `name` as Workato will accept it: runs of control characters become one space, a blank
/// name becomes `fallback`, and a name over [`MAX_NAME_CHARS`] is cut so that it ends with
/// `suffix` (which keeps cut names unique).
pub fn acceptable_name(name: &str, fallback: &str, suffix: &str) -> String {
    let mut clean = String::with_capacity(name.len());
    let mut in_control = false;
    for c in name.chars() {
        if c.is_control() {
            if !in_control {
                clean.push(' ');
            }
            in_control = true;
        } else {
            clean.push(c);
            in_control = false;
        }
    }
    let clean = clean.trim();
    let clean = if clean.is_empty() { fallback } else { clean };
    if clean.chars().count() <= MAX_NAME_CHARS {
        return clean.to_string();
    }
    let keep = MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
    let head: String = clean.chars().take(keep).collect();
    format!("{}{suffix}", head.trim_end())
}

/// What is wrong with a name Workato would refuse, for a finding.
fn name_problems(name: &str) -> String {
    let mut problems = Vec::new();
    if name.trim().is_empty() {
        problems.push("is blank".to_string());
    }
    if name.chars().any(char::is_control) {
        problems.push("contains control characters".to_string());
    }
    let len = name.chars().count();
    if len > MAX_NAME_CHARS {
        problems.push(format!(
            "is {len} characters long (at most {MAX_NAME_CHARS})"
        ));
    }
    format!(
        "the name {}; Workato refuses such names",
        problems.join(" and ")
    )
}

/// Workspace ids sort numerically where they are numbers.
fn natural(ws: &str) -> (u64, String) {
    (ws.parse().unwrap_or(u64::MAX), ws.to_string())
}

fn key_specs(
    ws: &str,
    legacy: &LegacyClient,
    members: &[&Profile],
    mapping: &Mapping,
    findings: &mut Vec<Finding>,
) -> Vec<KeySpec> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut keys = Vec::with_capacity(members.len());
    for p in members {
        let id = p.id.to_string();
        let values = [
            ("profile.name", p.name.as_str()),
            ("profile.id", id.as_str()),
            ("legacy_client.name", legacy.name.as_str()),
            ("workspace", ws),
        ];
        let fallback = format!("Profile {id}");
        let suffix = format!(" ({id})");
        let rendered = render(&mapping.file.key.name, &values);
        let mut name = acceptable_name(&rendered, &fallback, &suffix);
        // A key named otherwise than the template says: a finding on its profile.
        let renamed_key = |found: String, fix: String| Finding {
            kind: FindingKind::Transformed,
            vendor: VENDOR.into(),
            workspace: ws.into(),
            object_kind: "profile".into(),
            object_id: id.clone(),
            object_name: p.name.clone(),
            field: "name".into(),
            found,
            fix: fix.into(),
        };
        if name != rendered {
            findings.push(renamed_key(
                name_problems(&rendered),
                format!(
                    "the key is named {name:?}; rename the profile in the source if another \
                     name is wanted"
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            let renamed = acceptable_name(
                &render(&mapping.file.key.name_when_taken, &values),
                &fallback,
                &suffix,
            );
            findings.push(renamed_key(
                format!(
                    "another profile of legacy client {} with the same settings is also named {name:?}; \
                     key names must be unique within a client",
                    legacy.id
                ),
                format!(
                    "the key is named {renamed:?}; rename the profile first if another name is wanted"
                ),
            ));
            name = renamed;
            seen.insert(name.clone());
        }
        keys.push(KeySpec {
            source: p.marker(VENDOR),
            profile_id: p.id,
            profile_name: p.name.clone(),
            name,
            active: p.active,
            ip_allow_list: p.ip_allow_list.clone(),
        });
    }
    keys
}

/// Conditional field treatments from the mapping file, one finding per matching group.
fn field_findings(
    ws: &str,
    marker: &str,
    client_name: &str,
    settings: &ClientSettings,
    mapping: &Mapping,
    findings: &mut Vec<Finding>,
) {
    for (field, rule) in &mapping.file.fields {
        if !rule.is_conditional() {
            continue;
        }
        if !rule.auth_types.is_empty()
            && !rule
                .auth_types
                .iter()
                .any(|a| a == settings.auth_type.as_str())
        {
            continue;
        }
        let value = match field.as_str() {
            "auth_type" => Some(settings.auth_type.as_str().to_string()),
            "jwt_method" => settings.jwt_method.clone(),
            "oidc_issuer" => settings.oidc_issuer.clone(),
            "oidc_jwks_uri" => settings.oidc_jwks_uri.clone(),
            "access_profile_claim" => settings.access_profile_claim.clone(),
            "api_policy_id" => settings.policy_id.map(|p| p.to_string()),
            _ => None,
        };
        if let Some(want) = &rule.when {
            if value.as_deref() != Some(want.as_str()) {
                continue;
            }
        }
        findings.push(Finding {
            kind: rule.kind(),
            vendor: VENDOR.into(),
            workspace: ws.into(),
            object_kind: "group".into(),
            object_id: marker.into(),
            object_name: client_name.into(),
            field: field.clone().into(),
            found: match &value {
                Some(v) => format!("{field} = {v}: {}", rule.message),
                None => rule.message.clone(),
            },
            fix: if rule.fix.is_empty() {
                "nothing to do".into()
            } else {
                rule.fix.clone().into()
            },
        });
    }
}

fn blocker(p: &Profile, field: impl Into<Text>, found: String, fix: impl Into<Text>) -> Finding {
    let about = ProfileRef::new(VENDOR, &p.workspace, p.id, &p.name);
    about.finding(FindingKind::Blocker, field, found, fix)
}

/// The client settings of one profile, or the blockers that keep it from migrating.
fn settings_for(
    p: &Profile,
    mapping: &Mapping,
    signing: &SigningIndex,
    collections: &HashSet<(&str, i64)>,
) -> Result<(ClientSettings, Option<SigningSecretRef>), Vec<Finding>> {
    let mut problems = Vec::new();
    let mut signing_ref = None;
    let mut jwt_secret_fingerprint = None;

    match &p.auth_type {
        AuthType::Unknown(other) => problems.push(blocker(
            p,
            "auth_type",
            format!("unknown auth type {other:?}"),
            "set auth_type to token, jwt, oauth2 or oidc in the source, or exclude the profile",
        )),
        AuthType::Jwt => match p.jwt_method.as_deref() {
            Some("rsa") => match p.jwt_public_key.as_deref().map(str::trim) {
                None | Some("") => problems.push(blocker(
                    p,
                    "jwt_secret",
                    "RSA-signed JWT profile without a public key (jwt_secret is empty)".into(),
                    "set the consumer's RSA public key (PEM) as the profile's jwt_secret, or \
                     exclude the profile",
                )),
                Some(pem) if !is_rsa_public_key_pem(pem) => problems.push(blocker(
                    p,
                    "jwt_secret",
                    format!(
                        "RSA-signed JWT profile whose jwt_secret is {}; Workato accepts only \
                         an RSA public key in PEM form",
                        if pem.starts_with('(') {
                            pem.trim_matches(|c| c == '(' || c == ')').to_string()
                        } else {
                            "not a PEM public key".to_string()
                        }
                    ),
                    "set the consumer's RSA public key (-----BEGIN PUBLIC KEY-----) as the \
                     profile's jwt_secret, or exclude the profile",
                )),
                Some(_) => {}
            },
            Some("hmac") => match signing.lookup(&p.workspace, p.id, p.legacy_client_id) {
                Some((fingerprint, reference)) => {
                    jwt_secret_fingerprint = Some(fingerprint);
                    signing_ref = Some(reference);
                }
                None => problems.push(blocker(
                    p,
                    "jwt_secret",
                    "HMAC-signed JWT, but no signing secret was supplied (Workato never returns \
                     HMAC secrets)"
                        .into(),
                    "add it to the signing-secrets file (KEYSHIFT_SIGNING_SECRETS, see \
                     docs/security.md) or exclude the profile",
                )),
            },
            other => problems.push(blocker(
                p,
                "jwt_method",
                format!("JWT profile with jwt_method {other:?}"),
                "set jwt_method to \"hmac\" or \"rsa\" in the source, or exclude the profile",
            )),
        },
        AuthType::Oidc => {
            if p.oidc_issuer.is_some() == p.oidc_jwks_uri.is_some() {
                problems.push(blocker(
                    p,
                    "oidc_issuer",
                    "an OIDC profile needs exactly one of oidc_issuer and oidc_jwks_uri".into(),
                    "set one of them in the source, or exclude the profile",
                ));
            }
        }
        AuthType::Token | AuthType::Oauth2 => {}
    }

    let collection_ids: Vec<i64> = p
        .collection_ids
        .iter()
        .map(|id| mapping.file.collections.remapped(&p.workspace, *id))
        .collect();
    if collection_ids.is_empty() {
        problems.push(blocker(
            p,
            "api_collection_ids",
            "the profile grants no API collection".into(),
            "grant at least one collection in the source, or exclude the profile",
        ));
    }
    for (id, source_id) in collection_ids.iter().zip(&p.collection_ids) {
        if !collections.contains(&(p.workspace.as_str(), *id)) {
            let remapped = if id == source_id {
                String::new()
            } else {
                format!(" (remapped from {source_id} by collections.remap)")
            };
            problems.push(blocker(
                p,
                "api_collection_ids",
                format!(
                    "API collection {id}{remapped} does not exist in workspace {}",
                    p.workspace
                ),
                "remove the collection from the profile, or re-run export if it was just created",
            ));
        }
    }
    for entry in &p.ip_allow_list {
        if !valid_ip_entry(entry) {
            problems.push(blocker(
                p,
                "ip_allow_list",
                format!("{entry:?} is not an IPv4/IPv6 address or CIDR range"),
                "correct the entry in the source (e.g. 203.0.113.0/24), or exclude the profile",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let g = |f: &str| mapping.own::<ClientSection>().groups_by(f);
    let settings = ClientSettings {
        auth_type: p.auth_type.clone(),
        jwt_method: p
            .jwt_method
            .clone()
            .filter(|_| g("jwt_method") && stray_jwt_method(p).is_none()),
        jwt_public_key: p.jwt_public_key.clone().filter(|_| g("jwt_secret")),
        jwt_secret_fingerprint: jwt_secret_fingerprint.filter(|_| g("jwt_secret")),
        oidc_issuer: p.oidc_issuer.clone().filter(|_| g("oidc_issuer")),
        oidc_jwks_uri: p.oidc_jwks_uri.clone().filter(|_| g("oidc_jwks_uri")),
        access_profile_claim: p
            .access_profile_claim
            .clone()
            .filter(|_| g("access_profile_claim")),
        required_claims: sorted_if(&p.required_claims, g("required_claims")),
        allowed_issuers: sorted_if(&p.allowed_issuers, g("allowed_issuers")),
        collection_ids: collection_ids.into_iter().collect(),
        policy_id: p.policy_id.filter(|_| g("api_policy_id")),
    };
    Ok((settings, signing_ref))
}

/// A `jwt_method` outside Workato's enum on a profile that is not a JWT one: meaningless
/// there, and refused by the vendor if sent.
fn stray_jwt_method(p: &Profile) -> Option<&str> {
    p.jwt_method
        .as_deref()
        .filter(|m| p.auth_type != AuthType::Jwt && *m != "hmac" && *m != "rsa")
}

fn sorted_if(v: &[String], keep: bool) -> BTreeSet<String> {
    if keep {
        v.iter().cloned().collect()
    } else {
        BTreeSet::new()
    }
}

/// Stable across state files: the HMAC fingerprint is keyed per state file, so the digest
/// uses where the secret comes from instead.
fn group_digest(
    ws: &str,
    legacy_client_id: i64,
    settings: &ClientSettings,
    signing: Option<&SigningSecretRef>,
    chunk: usize,
) -> String {
    let stable = ClientSettings {
        jwt_secret_fingerprint: None,
        ..settings.clone()
    };
    let mut h = Sha256::new();
    h.update(ws.as_bytes());
    h.update(b"\0");
    h.update(legacy_client_id.to_string().as_bytes());
    h.update(b"\0");
    h.update(serde_json::to_vec(&stable).unwrap_or_default());
    h.update(b"\0");
    h.update(serde_json::to_vec(&signing).unwrap_or_default());
    h.update(b"\0");
    h.update(chunk.to_string().as_bytes());
    hex::encode(&h.finalize()[..6])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Collection, Workspace};
    use proptest::prelude::*;

    fn mapping() -> Mapping {
        crate::registry::load_mapping("workato-legacy-to-v2").unwrap()
    }

    fn profile(id: i64, client: i64, name: &str) -> Profile {
        Profile::for_test(id, client, name)
    }

    fn inventory(profiles: Vec<Profile>) -> Inventory {
        let mut clients: Vec<i64> = profiles.iter().map(|p| p.legacy_client_id).collect();
        clients.dedup();
        Inventory {
            workspaces: vec![Workspace {
                id: "1".into(),
                external_id: None,
                name: "Admin".into(),
                admin: true,
            }],
            collections: [10, 11]
                .iter()
                .map(|id| Collection {
                    workspace: "1".into(),
                    id: *id,
                    name: format!("c{id}"),
                    url: None,
                })
                .collect(),
            legacy_clients: clients
                .iter()
                .map(|id| LegacyClient {
                    workspace: "1".into(),
                    id: *id,
                    name: format!("Client {id}"),
                    project_id: None,
                })
                .collect(),
            profiles,
            ..Inventory::default()
        }
    }

    #[test]
    fn splits_by_settings_and_at_twenty() {
        let mut ps: Vec<Profile> = (0..25)
            .map(|i| profile(100 + i, 1, &format!("p{i}")))
            .collect();
        let mut other = profile(200, 1, "other");
        other.collection_ids = vec![11];
        ps.push(other);
        let plan = plan(&inventory(ps), &mapping(), &SigningIndex::default());
        let sizes: Vec<usize> = plan.clients.iter().map(|c| c.keys.len()).collect();
        assert_eq!(sizes, vec![20, 5, 1]);
        let names: Vec<&str> = plan.clients.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "Client 1 · token 1",
                "Client 1 · token 2",
                "Client 1 · token 3"
            ]
        );
        assert!(plan.findings.iter().all(|f| f.kind != FindingKind::Blocker));
    }

    #[test]
    fn bad_data_becomes_blockers_naming_field_and_fix() {
        let mut unknown = profile(1, 1, "u");
        unknown.auth_type = AuthType::Unknown("saml".into());
        let mut badip = profile(2, 1, "ip");
        badip.ip_allow_list = vec!["300.1.2.3".into()];
        let mut missing = profile(3, 1, "col");
        missing.collection_ids = vec![999];
        let mut jwt = profile(4, 1, "jwt");
        jwt.auth_type = AuthType::Jwt;
        jwt.jwt_method = Some("rsa".into());
        let good = profile(5, 1, "good");
        let plan = plan(
            &inventory(vec![unknown, badip, missing, jwt, good]),
            &mapping(),
            &SigningIndex::default(),
        );
        assert_eq!(plan.key_count(), 1);
        let fields: Vec<(&str, &str)> = plan
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::Blocker)
            .map(|f| (f.object_id.as_str(), &*f.field))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("1", "auth_type"),
                ("2", "ip_allow_list"),
                ("3", "api_collection_ids"),
                ("4", "jwt_secret")
            ]
        );
        assert!(plan.findings.iter().all(|f| !f.fix.is_empty()));
    }

    #[test]
    fn duplicate_names_in_a_group_are_made_unique() {
        let plan = plan(
            &inventory(vec![profile(1, 1, "Same"), profile(2, 1, "Same")]),
            &mapping(),
            &SigningIndex::default(),
        );
        let names: Vec<&str> = plan.clients[0]
            .keys
            .iter()
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(names, vec!["Same", "Same (2)"]);
        assert!(plan
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Transformed
                && f.object_id == "2"
                && f.field == "name"));
    }

    proptest! {
        /// Every valid profile lands in exactly one key, inside a client whose settings equal
        /// the profile's, with at most 20 keys per client and unique names.
        #[test]
        fn grouping_is_a_partition(specs in proptest::collection::vec((0i64..4, 0usize..2, 0usize..3, any::<bool>()), 0..80)) {
            let profiles: Vec<Profile> = specs.iter().enumerate().map(|(i, (client, coll, policy, active))| {
                let mut p = profile(1000 + i as i64, *client, if i % 7 == 0 { "dup" } else { "p" });
                p.collection_ids = vec![10 + *coll as i64];
                p.policy_id = if *policy == 0 { None } else { Some(*policy as i64) };
                p.active = *active;
                p
            }).collect();
            let inv = inventory(profiles.clone());
            let plan = plan(&inv, &mapping(), &SigningIndex::default());
            prop_assert_eq!(plan.key_count(), profiles.len());
            let mut seen = HashSet::new();
            let mut names = HashSet::new();
            for c in &plan.clients {
                prop_assert!(c.keys.len() <= 20 && !c.keys.is_empty());
                prop_assert!(names.insert((c.workspace.clone(), c.name.clone())));
                let mut key_names = HashSet::new();
                for k in &c.keys {
                    prop_assert!(seen.insert(k.profile_id));
                    prop_assert!(key_names.insert(k.name.clone()));
                    let p = profiles.iter().find(|p| p.id == k.profile_id).unwrap();
                    prop_assert_eq!(p.legacy_client_id, c.legacy_client_id);
                    prop_assert_eq!(&c.settings.collection_ids, &p.collection_ids.iter().copied().collect());
                    prop_assert_eq!(c.settings.policy_id, p.policy_id);
                    prop_assert_eq!(k.active, p.active);
                }
            }
        }
    }
}
