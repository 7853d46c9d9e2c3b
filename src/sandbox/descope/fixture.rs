//! The `descope` object of a `--fixture` file: the shape of `/_sandbox/state`'s `"descope"`, so
//! a state dump loads back, plus a clear `cleartext` per key if the rehearsal needs to exchange
//! it.
//!
//! Lenient like the Workato part ([`crate::sandbox::fixture`]): missing fields take defaults,
//! keys may name roles, tenants and users that do not exist, permitted IPs are kept as given,
//! and the wire-only fields (`clientId`, `editable`, `tenantName`) are ignored. Only a
//! structurally broken object is refused, with the field path
//! (`descope.access_keys[2].keyTenants[0].tenantId: required`). `project_id` is ignored: the
//! project id comes from `--config`.
//!
//! Lists that are present replace the seeded ones (`roles`, `tenants`, `users`); the config's
//! roles, tenants and users are then added on top, and `custom_attributes` is merged over the
//! config's schema.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::model::{new_key_id, AccessKey, KeyTenant};
use super::project::{AttributeType, Project, RoleDef, Tenant, UserDef, UserTenantDef};
use crate::sandbox::config::DescopeConfig;
use crate::sandbox::fixture_json::kind;
use crate::sandbox::workato::model::sha256_hex;

/// Apply the fixture's `descope` object (if any) to the seeded project; returns the keys.
pub fn load(
    doc: &Value,
    project: &mut Project,
    cfg: &DescopeConfig,
    start: DateTime<Utc>,
) -> anyhow::Result<BTreeMap<String, AccessKey>> {
    let mut keys = BTreeMap::new();
    let Some(d) = doc.get("descope").filter(|v| !v.is_null()) else {
        return Ok(keys);
    };
    let d = Obj::of(d, "descope")?;
    if let Some(roles) = d.array("roles")? {
        project.roles = roles.iter().map(role).collect::<anyhow::Result<_>>()?;
        project.add_roles(cfg.roles.iter().cloned());
        project.roles.sort_by(|a, b| a.name.cmp(&b.name));
    }
    if let Some(tenants) = d.array("tenants")? {
        project.tenants.clear();
        for t in tenants {
            let t = Obj::of(t.value, &t.path)?;
            let tenant = Tenant {
                id: t.required_string("id")?,
                name: t.string("name")?.unwrap_or_default(),
                custom_attributes: t.object("customAttributes")?.cloned().unwrap_or_default(),
            };
            match project.tenants.iter_mut().find(|x| x.id == tenant.id) {
                Some(x) => *x = tenant,
                None => project.tenants.push(tenant),
            }
        }
        project.add_tenants(cfg.tenants.iter().cloned());
    }
    if let Some(users) = d.array("users")? {
        project.users = users.iter().map(user).collect::<anyhow::Result<_>>()?;
        project.add_users(cfg.users.iter().cloned());
    }
    if let Some(attrs) = d.object("custom_attributes")? {
        for (name, ty) in attrs {
            let ty: AttributeType = serde_json::from_value(ty.clone()).with_context(|| {
                format!("descope.custom_attributes.{name}: expected \"string\", \"number\", \"boolean\" or \"array\"")
            })?;
            project.attributes.insert(name.clone(), ty);
        }
    }
    for k in d.array("access_keys")?.unwrap_or_default() {
        let key = access_key(&k, cfg, start)?;
        if keys.contains_key(&key.id) {
            bail!("{}.id: duplicate access key id {}", k.path, key.id);
        }
        keys.insert(key.id.clone(), key);
    }
    Ok(keys)
}

fn role(item: &Item) -> anyhow::Result<RoleDef> {
    if let Value::String(name) = item.value {
        return Ok(RoleDef {
            name: name.clone(),
            description: String::new(),
            permissions: Vec::new(),
        });
    }
    let r = Obj::of(item.value, &item.path)?;
    let permissions = match r.string_list("permissionNames")? {
        Some(p) => p,
        None => r.string_list("permissions")?.unwrap_or_default(),
    };
    Ok(RoleDef {
        name: r.required_string("name")?,
        description: r.string("description")?.unwrap_or_default(),
        permissions,
    })
}

fn user(item: &Item) -> anyhow::Result<UserDef> {
    let u = Obj::of(item.value, &item.path)?;
    let id = match u.string("userId")? {
        Some(id) => id,
        None => u.required_string("id")?,
    };
    let mut tenants = Vec::new();
    for t in u.array("userTenants")?.unwrap_or_default() {
        let t = Obj::of(t.value, &t.path)?;
        tenants.push(UserTenantDef {
            tenant_id: t.required_string("tenantId")?,
            roles: t.string_list("roleNames")?.unwrap_or_default(),
        });
    }
    Ok(UserDef {
        id,
        name: u.string("name")?.unwrap_or_default(),
        roles: u.string_list("roleNames")?.unwrap_or_default(),
        tenants,
    })
}

fn access_key(item: &Item, cfg: &DescopeConfig, start: DateTime<Utc>) -> anyhow::Result<AccessKey> {
    let k = Obj::of(item.value, &item.path)?;
    let active = match k.string("status")?.as_deref() {
        None | Some("active") => true,
        Some("inactive") => false,
        Some(other) => bail!(
            "{}: expected \"active\" or \"inactive\", found {other:?}",
            k.join("status")
        ),
    };
    let mut key_tenants = Vec::new();
    for t in k.array("keyTenants")?.unwrap_or_default() {
        let t = Obj::of(t.value, &t.path)?;
        key_tenants.push(KeyTenant {
            tenant_id: t.required_string("tenantId")?,
            role_names: t.string_list("roleNames")?.unwrap_or_default(),
        });
    }
    let cleartext_sha256 = match (k.string("cleartext")?, k.string("cleartext_sha256")?) {
        (Some(clear), _) => Some(sha256_hex(&clear)),
        (None, Some(h)) => {
            if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                bail!("{}: expected 64 hex characters", k.join("cleartext_sha256"));
            }
            Some(h.to_ascii_lowercase())
        }
        (None, None) => None,
    };
    let bound_user_id = match k.string("boundUserId")? {
        Some(u) => u,
        None => k.string("userId")?.unwrap_or_default(),
    };
    Ok(AccessKey {
        id: k.string("id")?.unwrap_or_else(new_key_id),
        name: k.string("name")?.unwrap_or_default(),
        description: k.string("description")?.unwrap_or_default(),
        role_names: k.string_list("roleNames")?.unwrap_or_default(),
        key_tenants,
        active,
        created_time: k.seconds("createdTime")?.unwrap_or(start.timestamp()),
        expire_time: k.seconds("expireTime")?.unwrap_or(0),
        created_by: k
            .string("createdBy")?
            .unwrap_or_else(|| cfg.management_key_id.clone()),
        bound_user_id,
        custom_claims: k.object("customClaims")?.cloned().unwrap_or_default(),
        custom_attributes: k.object("customAttributes")?.cloned().unwrap_or_default(),
        permitted_ips: k.string_list("permittedIps")?.unwrap_or_default(),
        cleartext_sha256,
        visible_from: DateTime::<Utc>::MIN_UTC,
    })
}

/// An array element with its path.
struct Item<'a> {
    value: &'a Value,
    path: String,
}

/// A JSON object with its path, for error messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn of(v: &'a Value, path: &str) -> anyhow::Result<Self> {
        match v {
            Value::Object(map) => Ok(Self {
                map,
                path: path.to_owned(),
            }),
            other => Err(anyhow!("{path}: expected an object, found {}", kind(other))),
        }
    }

    fn join(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn array(&self, key: &str) -> anyhow::Result<Option<Vec<Item<'a>>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, value)| Item {
                        value,
                        path: format!("{}[{i}]", self.join(key)),
                    })
                    .collect(),
            )),
            Some(other) => bail!(
                "{}: expected an array, found {}",
                self.join(key),
                kind(other)
            ),
        }
    }

    fn object(&self, key: &str) -> anyhow::Result<Option<&'a Map<String, Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => bail!(
                "{}: expected an object, found {}",
                self.join(key),
                kind(other)
            ),
        }
    }

    fn string(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // Ids and names given as numbers are read as their decimal text.
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => bail!(
                "{}: expected a string, found {}",
                self.join(key),
                kind(other)
            ),
        }
    }

    fn required_string(&self, key: &str) -> anyhow::Result<String> {
        self.string(key)?
            .ok_or_else(|| anyhow!("{}: required", self.join(key)))
    }

    fn string_list(&self, key: &str) -> anyhow::Result<Option<Vec<String>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let err = || {
            anyhow!(
                "{}: expected an array of strings, found {}",
                self.join(key),
                kind(v)
            )
        };
        let items = v.as_array().ok_or_else(err)?;
        items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(err))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }

    fn seconds(&self, key: &str) -> anyhow::Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| anyhow!("{}: expected whole seconds", self.join(key))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| anyhow!("{}: expected whole seconds, found {s:?}", self.join(key))),
            Some(other) => bail!(
                "{}: expected seconds, found {}",
                self.join(key),
                kind(other)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn start() -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_164_800, 0).unwrap()
    }

    #[test]
    fn lenient_keys_and_replaced_lists() {
        let doc = json!({"descope": {
        "project_id": "Pignored",
        "roles": ["Reader", {"name": "Writer", "permissionNames": ["w"]}],
        "tenants": [{"id": "T2x", "name": "X"}],
        "access_keys": [
            {"id": "K1", "name": "a", "cleartext": "s3cret", "roleNames": ["Ghost"],
             "permittedIps": ["300.1.2.3"], "status": "inactive", "expireTime": "0",
             "clientId": "K1", "editable": true},
            {"name": "b", "keyTenants": [{"tenantId": "T2missing", "tenantName": "?"}],
             "cleartext_sha256": sha256_hex("other")},
            {}
        ]}});
        let mut p = Project::default();
        let keys = load(&doc, &mut p, &DescopeConfig::default(), start()).unwrap();
        assert_eq!(p.roles.len(), 2);
        assert_eq!(p.role("Writer").unwrap().permissions, vec!["w".to_owned()]);
        assert_eq!(p.tenants.len(), 1);
        assert_eq!(keys.len(), 3);
        let k1 = &keys["K1"];
        assert!(!k1.active && k1.secret_matches("s3cret"));
        assert_eq!(k1.permitted_ips, vec!["300.1.2.3".to_owned()]);
        assert_eq!(k1.created_time, start().timestamp());
        let b = keys.values().find(|k| k.name == "b").unwrap();
        assert!(b.id.starts_with('K') && b.secret_matches("other"));
        assert_eq!(b.key_tenants[0].tenant_id, "T2missing");
    }

    #[test]
    fn broken_shapes_name_the_field() {
        let mut p = Project::default();
        let cfg = DescopeConfig::default();
        let err = |doc: Value| {
            load(&doc, &mut Project::default(), &cfg, start())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(json!({"descope": {"access_keys": [{}, {"keyTenants": [{}]}]}})),
            "descope.access_keys[1].keyTenants[0].tenantId: required"
        );
        assert_eq!(
            err(json!({"descope": {"access_keys": [{"roleNames": "x"}]}})),
            "descope.access_keys[0].roleNames: expected an array of strings, found a string"
        );
        assert!(
            err(json!({"descope": {"access_keys": [{"id": "K1"}, {"id": "K1"}]}}))
                .contains("duplicate")
        );
        assert!(load(&json!({"workato": {}}), &mut p, &cfg, start())
            .unwrap()
            .is_empty());
    }
}
