//! `[filters]`: which profiles a run covers.

use serde::Deserialize;

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

/// Why a profile is left out by the filters, if it is.
pub struct Candidate<'a> {
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
    pub fn excludes(&self, s: &Candidate) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{load_mapping, parse_mapping};

    #[test]
    fn filters_include_and_exclude() {
        let text = format!(
            "{}\n[filters.include]\nworkspaces = [1, \"A2300\"]\n[filters.exclude]\nprofiles = [\"Old\", 7]\nauth_types = [\"oidc\"]\n",
            load_mapping(crate::registry::default_mapping()).unwrap().text
        );
        let m = parse_mapping("f.toml", &text).unwrap();
        let subject = |ws: &'static str,
                       ext: Option<&'static str>,
                       id: i64,
                       name: &'static str,
                       auth: &'static str| Candidate {
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
}
