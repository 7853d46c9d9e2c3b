//! The Workato parts of a mapping file: the legacy source's fields, and `[client]` (how the
//! v2 planner groups profiles into clients), with their checks.

use serde::Deserialize;

use crate::mapping::{check_template, Mapping, Own};

/// Source fields of a Workato access profile a treatment may be declared for.
pub const SOURCE_FIELDS: &[&str] = &[
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

const CLIENT_PLACEHOLDERS: &[&str] = &[
    "legacy_client.name",
    "legacy_client.id",
    "auth_type",
    "group",
    "workspace",
];

/// `[client]`: how profiles are grouped into v2 clients, and how those are named.
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
            group_by: default_group_by(),
            max_keys_per_client: default_max_keys(),
            name: default_client_name(),
            name_when_split: default_client_name_split(),
        }
    }
}

impl ClientSection {
    pub fn groups_by(&self, field: &str) -> bool {
        self.group_by.iter().any(|f| f == field)
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

/// The v2 pair's own sections: `[client]`, with its defaults.
pub fn load_v2(mapping: &Mapping, problems: &mut Vec<String>) -> Result<Own, String> {
    let client: ClientSection = mapping.section("client")?.unwrap_or_default();
    check_client(&client, problems);
    Ok(Own::new(client))
}

fn check_client(client: &ClientSection, problems: &mut Vec<String>) {
    for field in &client.group_by {
        if !GROUP_FIELDS.contains(&field.as_str()) {
            problems.push(format!(
                "key client.group_by: unknown field {field:?} — use any of {}",
                GROUP_FIELDS.join(", ")
            ));
        }
    }
    for must in ["auth_type", "api_collection_ids"] {
        if !client.groups_by(must) {
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
}

#[cfg(test)]
mod tests {
    use crate::registry::{load_mapping, parse_mapping};

    fn shipped() -> String {
        load_mapping("workato-legacy-to-v2").unwrap().text
    }

    #[test]
    fn mistakes_name_file_key_and_fix() {
        let text = shipped()
            .replace("max_keys_per_client = 20", "max_keys_per_client = 25")
            .replace("\"api_policy_id\"]", "\"api_policy\"]")
            .replace(
                "{legacy_client.name} · {auth_type} {group}",
                "{client} {auth_type}",
            );
        let err = parse_mapping("my.toml", &text).unwrap_err().to_string();
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
        let text = shipped().replace("max_keys_per_client", "max_key_per_client");
        let err = parse_mapping("m.toml", &text).unwrap_err().to_string();
        assert!(err.contains("m.toml (line"), "{err}");
        assert!(err.contains("max_key_per_client"), "{err}");
    }

    #[test]
    fn another_pairs_section_is_named_as_such() {
        let text = load_mapping("workato-legacy-to-descope").unwrap().text + "\n[client]\n";
        let err = parse_mapping("d.toml", &text).unwrap_err().to_string();
        assert!(
            err.contains("key client: only for a workato-v2 target — remove [client]"),
            "{err}"
        );
    }
}
