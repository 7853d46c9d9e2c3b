//! The Descope project around the access keys (SD-D14): roles with their permissions, tenants,
//! users that keys may be bound to, and the access-key custom-attribute schema.
//!
//! Seeding (docs/sandbox-descope.md, "The project"): one role per distinct Workato collection name (permission
//! `<collection slug>:invoke`), one tenant per Workato workspace (id `T2ws<workspace id>`, so a
//! mapping can name it with the template `T2ws{workspace}`; name = the workspace name).
//! `[descope]` config adds roles, tenants and users (an entry with a seeded name/id replaces
//! it) and sets the attribute schema (default: `migrationSourceId`, a string). A fixture may
//! replace the lists.
//! This module only describes the project; it never touches access keys.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

pub use super::definitions::{
    default_custom_attributes, AttributeType, RoleDef, TenantDef, UserDef, UserTenantDef,
};
use crate::sandbox::config::DescopeConfig;
use crate::sandbox::generate::slugify;
use crate::sandbox::workato::model::WorkatoState;

/// The id of the tenant seeded for a Workato workspace.
pub fn tenant_id_for_workspace(workspace_id: u64) -> String {
    format!("T2ws{workspace_id}")
}

/// A tenant (wire shape: `{"id","name","selfProvisioningDomains","customAttributes"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub custom_attributes: Map<String, Value>,
}

/// The project: everything but the access keys.
#[derive(Debug, Clone, Default)]
pub struct Project {
    /// In name order.
    pub roles: Vec<RoleDef>,
    pub tenants: Vec<Tenant>,
    pub users: Vec<UserDef>,
    pub attributes: BTreeMap<String, AttributeType>,
}

impl Project {
    /// Roles from the collections, tenants from the workspaces, then the config's additions.
    pub fn seed(workato: &WorkatoState, cfg: &DescopeConfig) -> Self {
        let mut p = Self {
            attributes: cfg.custom_attributes.clone(),
            ..Self::default()
        };
        if cfg.seed_from_workato {
            for ws in workato.workspaces.values() {
                for c in ws.collections.values() {
                    if p.role(&c.name).is_none() {
                        let slug = if c.slug.is_empty() {
                            slugify(&c.name)
                        } else {
                            c.slug.clone()
                        };
                        p.roles.push(RoleDef {
                            name: c.name.clone(),
                            description: format!("Call the {} collection", c.name),
                            permissions: vec![format!("{slug}:invoke")],
                        });
                    }
                }
                let id = tenant_id_for_workspace(ws.id);
                let mut attrs = Map::new();
                attrs.insert("workatoWorkspaceId".into(), json!(ws.id));
                p.tenants.push(Tenant {
                    id,
                    name: ws.name.clone(),
                    custom_attributes: attrs,
                });
            }
        }
        p.add_roles(cfg.roles.iter().cloned());
        p.add_tenants(cfg.tenants.iter().cloned());
        p.add_users(cfg.users.iter().cloned());
        p.roles.sort_by(|a, b| a.name.cmp(&b.name));
        p
    }

    /// Add roles; one with an existing name replaces it.
    pub fn add_roles(&mut self, roles: impl IntoIterator<Item = RoleDef>) {
        for r in roles {
            match self.roles.iter_mut().find(|x| x.name == r.name) {
                Some(x) => *x = r,
                None => self.roles.push(r),
            }
        }
    }

    /// Add tenants; one with an existing id replaces it.
    pub fn add_tenants(&mut self, tenants: impl IntoIterator<Item = TenantDef>) {
        for t in tenants {
            let t = Tenant {
                id: t.id,
                name: t.name,
                custom_attributes: Map::new(),
            };
            match self.tenants.iter_mut().find(|x| x.id == t.id) {
                Some(x) => *x = t,
                None => self.tenants.push(t),
            }
        }
    }

    /// Add users; one with an existing id replaces it.
    pub fn add_users(&mut self, users: impl IntoIterator<Item = UserDef>) {
        for u in users {
            match self.users.iter_mut().find(|x| x.id == u.id) {
                Some(x) => *x = u,
                None => self.users.push(u),
            }
        }
    }

    pub fn role(&self, name: &str) -> Option<&RoleDef> {
        self.roles.iter().find(|r| r.name == name)
    }

    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.id == id)
    }

    pub fn user(&self, id: &str) -> Option<&UserDef> {
        self.users.iter().find(|u| u.id == id)
    }

    /// Sorted, de-duplicated permissions of `roles` (unknown roles grant nothing).
    pub fn permissions_of(&self, roles: &[String]) -> Vec<String> {
        let mut out: Vec<String> = roles
            .iter()
            .filter_map(|r| self.role(r))
            .flat_map(|r| r.permissions.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Wire shape of the roles (`GET /v1/mgmt/role/all` items).
    pub fn roles_wire(&self) -> Vec<Value> {
        self.roles
            .iter()
            .map(|r| {
                json!({"name": r.name, "description": r.description,
                            "permissionNames": r.permissions})
            })
            .collect()
    }

    /// Wire shape of the tenants (`GET /v1/mgmt/tenant/all` items).
    pub fn tenants_wire(&self) -> Vec<Value> {
        self.tenants
            .iter()
            .map(|t| {
                json!({"id": t.id, "name": t.name, "selfProvisioningDomains": [],
                            "customAttributes": t.custom_attributes})
            })
            .collect()
    }

    /// The users, as `/_sandbox/state` lists them.
    pub fn users_wire(&self) -> Vec<Value> {
        self.users
            .iter()
            .map(|u| {
                let tenants: Vec<Value> = u
                    .tenants
                    .iter()
                    .map(|t| json!({"tenantId": t.tenant_id, "roleNames": t.roles}))
                    .collect();
                json!({"userId": u.id, "name": u.name, "roleNames": u.roles,
                       "userTenants": tenants})
            })
            .collect()
    }

    /// The attribute schema, as `/_sandbox/state` lists it.
    pub fn attributes_wire(&self) -> Value {
        let m: Map<String, Value> = self
            .attributes
            .iter()
            .map(|(k, t)| (k.clone(), json!(t.name())))
            .collect();
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::generate::{generate, GenOptions};

    #[test]
    fn seeds_roles_from_collections_and_tenants_from_workspaces() {
        let w = generate(
            &GenOptions {
                seed: 3,
                workspaces: 3,
                profiles: 30,
            },
            "http://127.0.0.1:1",
        );
        let p = Project::seed(&w, &DescopeConfig::default());
        let mut names: Vec<&str> = w
            .workspaces
            .values()
            .flat_map(|ws| ws.collections.values().map(|c| c.name.as_str()))
            .collect();
        names.sort();
        names.dedup();
        let roles: Vec<&str> = p.roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(roles, names);
        assert_eq!(p.tenants.len(), 3);
        assert_eq!(p.tenants[0].id, "T2ws1");
        assert_eq!(p.tenants[2].id, "T2ws3");
        assert_eq!(p.tenants[0].name, "Acme Integrations");
        assert!(p.tenants.iter().all(|t| t.id.starts_with("T2")));
        let orders = p.role("Orders API").map(|r| r.permissions.clone());
        if let Some(perms) = orders {
            assert_eq!(perms, vec!["orders:invoke".to_owned()]);
        }
        assert_eq!(p.attributes, default_custom_attributes());
        // same inventory, same project
        let again = Project::seed(&w, &DescopeConfig::default());
        assert_eq!(again.roles, p.roles);
        assert_eq!(again.tenants, p.tenants);
    }
}
