//! Loading the `bifrost` object of `--fixture FILE.json` (the shape of `/_sandbox/state`'s
//! `"bifrost"`, so a state dump loads back), plus the clear secrets a rehearsal may need:
//! a virtual key's `value` and a provider key's `value` (or their `value_sha256`).
//!
//! Lenient like the Workato loader: missing optional fields take defaults (ids are numbered
//! after the largest given, UUIDs are minted, timestamps = the clock's start, lists = `[]`,
//! `is_active` = `true`, budget `scope` = `"total"` / `"provider:<name>"`), and bad data —
//! duplicate names, lists over the update limits, fractional or windowless rate limits,
//! unknown durations, MCP server ids or key ids no object has — is kept as given. Only a
//! structurally broken document is refused, with one line naming the field path
//! (`bifrost.access_profiles[3].tags: expected an array …`). A virtual key without a value
//! gets a fresh one nobody knows; a masked `value` (`sk-bf-****…`, as the state dump writes
//! it beside `value_sha256`) is only what reads show. A fixture without `provider_keys` gets a
//! provider key for each provider its profiles and keys name (PC-B16); one that lists them gets
//! exactly those.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::{
    fresh_vk_value, mask_value, uuid_v4, AccessProfile, ApProviderConfig, BifrostSeq, BifrostState,
    Budget, McpClient, McpTool, ProviderKey, RateLimit, RoleBinding, ToolOverride,
    UserAccessProfile, VirtualKey, VkMcpConfig, VkProviderConfig,
};
use crate::sandbox::fixture_json::{join, kind, Obj};
use crate::sandbox::workato::model::StoredSecret;

/// Load the `bifrost` object of a parsed fixture document (absent → empty).
pub fn load(doc: &Value, now: DateTime<Utc>) -> anyhow::Result<BifrostState> {
    let root = Obj::of(doc, String::new())?;
    let Some(b) = root.get("bifrost") else {
        return Ok(BifrostState::default());
    };
    let b = Obj::of(b, "bifrost".to_owned())?;
    let l = Loader { now };
    let mut st = BifrostState::default();

    for k in b.array("provider_keys")? {
        st.provider_keys.push(l.provider_key(&k)?);
    }
    let mut unnumbered_mcp = Vec::new();
    for c in b.array("mcp_clients")? {
        let (id, client) = l.mcp_client(&c)?;
        match id {
            Some(id) => {
                if st.mcp_clients.insert(id, client).is_some() {
                    bail!("{}.id: duplicate id {id}", c.path);
                }
            }
            None => unnumbered_mcp.push(client),
        }
    }
    let first_free = st.mcp_clients.keys().max().map_or(1, |m| m + 1);
    for (id, mut c) in (first_free..).zip(unnumbered_mcp) {
        c.id = id;
        st.mcp_clients.insert(id, c);
    }

    let mut pending_profiles = Vec::new();
    for p in b.array("access_profiles")? {
        let (id, profile) = l.profile(&p)?;
        match id {
            Some(id) => {
                if st.profiles.insert(id, profile).is_some() {
                    bail!("{}.id: duplicate id {id}", p.path);
                }
            }
            None => pending_profiles.push(profile),
        }
    }
    let mut pending_users = Vec::new();
    for u in b.array("user_access_profiles")? {
        let (id, copy) = l.user_profile(&u, &st)?;
        match id {
            Some(id) => {
                if st.profiles.contains_key(&id) || st.user_profiles.insert(id, copy).is_some() {
                    bail!("{}.id: duplicate id {id}", u.path);
                }
            }
            None => pending_users.push(copy),
        }
    }
    let mut next_profile = st
        .profiles
        .keys()
        .chain(st.user_profiles.keys())
        .max()
        .map_or(1, |m| m + 1);
    for mut p in pending_profiles {
        p.id = next_profile;
        next_profile += 1;
        st.profiles.insert(p.id, p);
    }
    for mut u in pending_users {
        u.id = next_profile;
        next_profile += 1;
        st.user_profiles.insert(u.id, u);
    }

    for (i, k) in b.array("virtual_keys")?.iter().enumerate() {
        let vk = l.virtual_key(k, i as u64 + 1, &st)?;
        if st.vk(&vk.id).is_some() {
            bail!("{}.id: duplicate id {}", k.path, vk.id);
        }
        st.virtual_keys.push(vk);
    }
    if b.get("provider_keys").is_none() {
        configure_named_providers(&mut st);
    }
    st.seq = BifrostSeq::continue_after(&st);
    // Ids given as 0 (or omitted) inside nested lists are numbered here.
    let mut seq = st.seq.clone();
    for p in st.profiles.values_mut() {
        for pc in p.provider_configs.iter_mut().filter(|c| c.id == 0) {
            pc.id = seq.next_ap_provider_config();
        }
        for r in p.roles.iter_mut().filter(|r| r.id == 0) {
            r.id = seq.next_role_binding();
        }
    }
    for k in &mut st.virtual_keys {
        for pc in k.provider_configs.iter_mut().filter(|c| c.id == 0) {
            pc.id = seq.next_vk_provider_config();
        }
        for m in k.mcp_configs.iter_mut().filter(|c| c.id == 0) {
            m.id = seq.next_vk_mcp_config();
        }
    }
    st.seq = seq;
    Ok(st)
}

/// A fixture without `provider_keys` gets one provider key (value nobody knows) for each
/// provider its profiles and virtual keys name, so that they stay usable: Bifrost
/// refuses virtual keys naming a provider it has not configured (PC-B16). A fixture that lists
/// provider keys (`[]` included) gets exactly those.
fn configure_named_providers(st: &mut BifrostState) {
    let named: std::collections::BTreeSet<String> = st
        .profiles
        .values()
        .flat_map(|p| p.provider_configs.iter().map(|c| c.provider_name.trim()))
        .chain(
            st.virtual_keys
                .iter()
                .flat_map(|k| k.provider_configs.iter().map(|c| c.provider.trim())),
        )
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    for provider in named {
        st.provider_keys.push(ProviderKey {
            id: fresh_uuid(),
            name: format!("{provider}-key"),
            value: StoredSecret::from_clear(format!("sk-prov-{}", fresh_uuid())),
            provider,
            models: Vec::new(),
            weight: 1.0,
        });
    }
}

/// Read a fixture file and load its `bifrost` object.
pub fn load_file(path: &std::path::Path, now: DateTime<Utc>) -> anyhow::Result<BifrostState> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading fixture {}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .with_context(|| format!("fixture {}: not valid JSON", path.display()))?;
    load(&doc, now).with_context(|| format!("fixture {}", path.display()))
}

struct Loader {
    now: DateTime<Utc>,
}

fn fresh_uuid() -> String {
    uuid_v4(&mut rand::thread_rng())
}

impl Loader {
    fn budget(&self, b: &Obj, default_scope: Option<&str>) -> anyhow::Result<Budget> {
        let quarter_start_month = match b.get("reset_config") {
            Some(rc) => Obj::of(rc, join(&b.path, "reset_config"))?
                .u64("quarter_start_month")?
                .map(|m| m as u32),
            None => None,
        };
        let created_at = b.time("created_at", self.now)?;
        Ok(Budget {
            id: b.string("id")?.unwrap_or_else(fresh_uuid),
            max_limit: b.f64("max_limit")?.unwrap_or(0.0),
            reset_duration: b
                .string("reset_duration")?
                .unwrap_or_else(|| "1M".to_owned()),
            quarter_start_month,
            scope: match b.string("scope")? {
                Some(s) => Some(s),
                None => default_scope.map(str::to_owned),
            },
            calendar_aligned: b.bool("calendar_aligned", false)?,
            current_usage: b.f64("current_usage")?.unwrap_or(0.0),
            last_reset: b.time("last_reset", self.now)?,
            created_at,
            updated_at: b.time("updated_at", created_at)?,
        })
    }

    fn budgets(&self, o: &Obj, default_scope: Option<&str>) -> anyhow::Result<Vec<Budget>> {
        o.array("budgets")?
            .iter()
            .map(|b| self.budget(b, default_scope))
            .collect()
    }

    fn rate_limit(&self, o: &Obj) -> anyhow::Result<Option<RateLimit>> {
        let Some(v) = o.get("rate_limit") else {
            return Ok(None);
        };
        let r = Obj::of(v, join(&o.path, "rate_limit"))?;
        let created_at = r.time("created_at", self.now)?;
        Ok(Some(RateLimit {
            id: r.string("id")?.unwrap_or_else(fresh_uuid),
            token_max_limit: r.f64("token_max_limit")?,
            token_reset_duration: r.string("token_reset_duration")?,
            request_max_limit: r.f64("request_max_limit")?,
            request_reset_duration: r.string("request_reset_duration")?,
            token_current_usage: r.f64("token_current_usage")?.unwrap_or(0.0),
            request_current_usage: r.f64("request_current_usage")?.unwrap_or(0.0),
            token_last_reset: r.time("token_last_reset", self.now)?,
            request_last_reset: r.time("request_last_reset", self.now)?,
            created_at,
            updated_at: r.time("updated_at", created_at)?,
        }))
    }

    fn profile(&self, p: &Obj) -> anyhow::Result<(Option<u64>, AccessProfile)> {
        let id = p.u64("id")?;
        let mut provider_configs = Vec::new();
        for pc in p.array("provider_configs")? {
            let name = pc
                .string("provider_name")?
                .or(pc.string("provider")?)
                .unwrap_or_default();
            let scope = format!("provider:{name}");
            provider_configs.push(ApProviderConfig {
                id: pc.u64("id")?.unwrap_or(0),
                all_models_allowed: pc.bool("all_models_allowed", false)?,
                allowed_models: pc.string_list("allowed_models")?,
                budgets: self.budgets(&pc, Some(&scope))?,
                rate_limit: self.rate_limit(&pc)?,
                provider_name: name,
            });
        }
        let mcp_tool_groups = p
            .array_or_scalars("mcp_tool_groups", "tool_group_id")?
            .iter()
            .map(|v| {
                super::super::workato::request::id_of(v).ok_or_else(|| {
                    anyhow!("{}: expected integer ids", join(&p.path, "mcp_tool_groups"))
                })
            })
            .collect::<anyhow::Result<Vec<u64>>>()?;
        let mcp_servers = p
            .array_or_scalars("mcp_servers", "mcp_server_id")?
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => bail!("{}: expected string ids", join(&p.path, "mcp_servers")),
            })
            .collect::<anyhow::Result<Vec<String>>>()?;
        let mut overrides = Vec::new();
        for o in p.array("mcp_tool_overrides")? {
            overrides.push(ToolOverride {
                mcp_client_id: o.string("mcp_client_id")?.unwrap_or_default(),
                tool_name: o.string("tool_name")?.unwrap_or_default(),
                action: o.string("action")?.unwrap_or_else(|| "include".to_owned()),
            });
        }
        let mut roles = Vec::new();
        for r in p.array("roles")? {
            roles.push(RoleBinding {
                id: r.u64("id")?.unwrap_or(0),
                role_id: r.u64("role_id")?.unwrap_or(0),
                role_name: r.string("role_name")?.unwrap_or_default(),
                is_default: r.bool("is_default", false)?,
            });
        }
        let created_at = p.time("created_at", self.now)?;
        let name = p
            .string("name")?
            .unwrap_or_else(|| format!("Access profile {}", id.unwrap_or(0)));
        Ok((
            id,
            AccessProfile {
                id: id.unwrap_or(0),
                name,
                description: p.string("description")?,
                is_active: p.bool("is_active", true)?,
                version: p.u64("version")?.map_or(1, |v| v as i64),
                tags: p.string_list("tags")?,
                provider_configs,
                budgets: self.budgets(p, Some("total"))?,
                rate_limit: self.rate_limit(p)?,
                calendar_aligned: p.bool("calendar_aligned", false)?,
                auto_rotation_interval: p.u64("auto_rotation_interval")?.map_or(0, |v| v as i64),
                next_rotation_at: p.opt_time("next_rotation_at")?,
                last_rotation_at: p.opt_time("last_rotation_at")?,
                mcp_tool_groups,
                mcp_servers,
                mcp_tool_overrides: overrides,
                roles,
                created_at,
                updated_at: p.time("updated_at", created_at)?,
            },
        ))
    }

    fn user_profile(
        &self,
        u: &Obj,
        st: &BifrostState,
    ) -> anyhow::Result<(Option<u64>, UserAccessProfile)> {
        let user_id = u
            .string("user_id")?
            .ok_or_else(|| anyhow!("{}: required", join(&u.path, "user_id")))?;
        let parent = u.u64("parent_profile_id")?;
        let name = match u.string("name")? {
            Some(n) => n,
            None => parent
                .and_then(|p| st.profiles.get(&p))
                .map(|p| p.name.clone())
                .unwrap_or_default(),
        };
        Ok((
            u.u64("id")?,
            UserAccessProfile {
                id: u.u64("id")?.unwrap_or(0),
                user_id,
                parent_profile_id: parent,
                name,
                is_active: u.bool("is_active", true)?,
                expires_at: u.opt_time("expires_at")?,
                virtual_key_ids: u.string_list("virtual_key_ids")?,
            },
        ))
    }

    fn virtual_key(&self, k: &Obj, seq: u64, st: &BifrostState) -> anyhow::Result<VirtualKey> {
        let given = k.string("value")?;
        let shown = given.clone().filter(|v| v.contains("****"));
        let clear = given.filter(|v| !v.contains("****"));
        let (value, masked) = match (clear, k.secret_hash("value")?) {
            (Some(c), _) => (StoredSecret::from_clear(c.clone()), mask_value(&c)),
            (None, Some(h)) => (h, shown.unwrap_or_else(|| "sk-bf-****".to_owned())),
            (None, None) => {
                let c = fresh_vk_value(&mut rand::thread_rng());
                (StoredSecret::from_clear(c.clone()), mask_value(&c))
            }
        };
        let mut provider_configs = Vec::new();
        for pc in k.array("provider_configs")? {
            let mut key_ids = pc.string_list("key_ids")?;
            for key in pc.array("keys")? {
                if let Some(id) = key.string("key_id")?.or(key.string("id")?) {
                    if !key_ids.contains(&id) {
                        key_ids.push(id);
                    }
                }
            }
            let allow_all_keys =
                pc.bool("allow_all_keys", false)? || key_ids.iter().any(|i| i == "*");
            key_ids.retain(|i| i != "*");
            provider_configs.push(VkProviderConfig {
                id: pc.u64("id")?.unwrap_or(0),
                provider: pc
                    .string("provider")?
                    .or(pc.string("provider_name")?)
                    .unwrap_or_default(),
                weight: pc.f64("weight")?,
                allowed_models: pc.string_list("allowed_models")?,
                blacklisted_models: pc.string_list("blacklisted_models")?,
                allow_all_keys,
                key_ids,
                budgets: self.budgets(&pc, None)?,
                rate_limit: self.rate_limit(&pc)?,
            });
        }
        let mut mcp_configs = Vec::new();
        for m in k.array("mcp_configs")? {
            let by_id = m.u64("mcp_client_id")?;
            let nested = match m.get("mcp_client") {
                Some(v) => {
                    let c = Obj::of(v, join(&m.path, "mcp_client"))?;
                    (c.string("client_id")?, c.string("name")?)
                }
                None => (None, None),
            };
            let name = m.string("mcp_client_name")?.or(nested.1);
            let resolved = by_id
                .filter(|id| st.mcp_clients.contains_key(id))
                .or_else(|| {
                    st.mcp_clients
                        .values()
                        .find(|c| {
                            nested.0.as_deref() == Some(c.client_id.as_str())
                                || name.as_deref() == Some(c.name.as_str())
                        })
                        .map(|c| c.id)
                })
                .or(by_id)
                .ok_or_else(|| {
                    anyhow!(
                        "{}: no MCP client matches (give mcp_client_id, mcp_client_name or \
                         mcp_client.client_id of a listed client)",
                        m.path
                    )
                })?;
            mcp_configs.push(VkMcpConfig {
                id: m.u64("id")?.unwrap_or(0),
                mcp_client_id: resolved,
                tools_to_execute: m.string_list("tools_to_execute")?,
            });
        }
        let metadata = match k.get("metadata") {
            Some(v) => {
                let o = Obj::of(v, join(&k.path, "metadata"))?;
                o.map
                    .iter()
                    .map(|(key, v)| match v {
                        Value::String(s) => Ok((key.clone(), s.clone())),
                        Value::Number(n) => Ok((key.clone(), n.to_string())),
                        Value::Bool(b) => Ok((key.clone(), b.to_string())),
                        other => bail!(
                            "{}: expected a string, found {}",
                            join(&o.path, key),
                            kind(other)
                        ),
                    })
                    .collect::<anyhow::Result<BTreeMap<String, String>>>()?
            }
            None => BTreeMap::new(),
        };
        let created_at = k.time("created_at", self.now)?;
        let name = k
            .string("name")?
            .unwrap_or_else(|| format!("virtual key {seq}"));
        Ok(VirtualKey {
            seq,
            id: k.string("id")?.unwrap_or_else(fresh_uuid),
            name,
            value,
            masked,
            description: k.string("description")?.unwrap_or_default(),
            is_active: k.bool("is_active", true)?,
            provider_configs,
            mcp_configs,
            team_id: k.string("team_id")?,
            customer_id: k.string("customer_id")?,
            budgets: self.budgets(k, None)?,
            rate_limit: self.rate_limit(k)?,
            calendar_aligned: k.bool("calendar_aligned", false)?,
            expires_at: k.opt_time("expires_at")?,
            metadata,
            created_by_user_id: k.string("created_by_user_id")?,
            is_access_profile_managed: k.bool("is_access_profile_managed", false)?,
            created_at,
            updated_at: k.time("updated_at", created_at)?,
            usable_from: self.now,
            retired_values: Vec::new(),
        })
    }

    fn mcp_client(&self, c: &Obj) -> anyhow::Result<(Option<u64>, McpClient)> {
        let config = match c.get("config") {
            Some(v) => Some(Obj::of(v, join(&c.path, "config"))?),
            None => None,
        };
        let pick = |key: &str| -> anyhow::Result<Option<String>> {
            match &config {
                Some(cfg) => Ok(cfg.string(key)?.or(c.string(key)?)),
                None => c.string(key),
            }
        };
        let flag = |key: &str| -> anyhow::Result<bool> {
            match &config {
                Some(cfg) => Ok(cfg.opt_bool(key)?.or(c.opt_bool(key)?).unwrap_or(false)),
                None => c.bool(key, false),
            }
        };
        let client_id = pick("client_id")?
            .ok_or_else(|| anyhow!("{}: required", join(&c.path, "config.client_id")))?;
        let name = pick("name")?.unwrap_or_else(|| client_id.clone());
        let mut tools = Vec::new();
        for t in c.array_or_scalars("tools", "name")? {
            match t {
                Value::String(s) => tools.push(McpTool {
                    name: s,
                    description: String::new(),
                }),
                Value::Object(m) => {
                    let o = Obj {
                        map: &m,
                        path: join(&c.path, "tools"),
                    };
                    tools.push(McpTool {
                        name: o.string("name")?.unwrap_or_default(),
                        description: o.string("description")?.unwrap_or_default(),
                    });
                }
                other => bail!(
                    "{}: expected tool objects, found {}",
                    join(&c.path, "tools"),
                    kind(&other)
                ),
            }
        }
        Ok((
            c.u64("id")?,
            McpClient {
                id: c.u64("id")?.unwrap_or(0),
                client_id,
                name,
                connection_type: pick("connection_type")?.unwrap_or_else(|| "http".to_owned()),
                connection_string: pick("connection_string")?,
                auth_type: pick("auth_type")?.unwrap_or_else(|| "none".to_owned()),
                is_code_mode_client: flag("is_code_mode_client")?,
                disabled: flag("disabled")?,
                allow_on_all_virtual_keys: flag("allow_on_all_virtual_keys")?,
                tools,
                state: c.string("state")?.unwrap_or_else(|| "connected".to_owned()),
            },
        ))
    }

    fn provider_key(&self, k: &Obj) -> anyhow::Result<ProviderKey> {
        let value = match (k.string("value")?, k.secret_hash("value")?) {
            (Some(c), _) => StoredSecret::from_clear(c),
            (None, Some(h)) => h,
            (None, None) => StoredSecret::from_clear(format!("sk-prov-{}", fresh_uuid())),
        };
        let provider = k
            .string("provider")?
            .ok_or_else(|| anyhow!("{}: required", join(&k.path, "provider")))?;
        Ok(ProviderKey {
            id: k.string("id")?.unwrap_or_else(fresh_uuid),
            name: k
                .string("name")?
                .unwrap_or_else(|| format!("{provider}-key")),
            provider,
            value,
            models: k.string_list("models")?,
            weight: k.f64("weight")?.unwrap_or(1.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::clock::parse_instant;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        parse_instant("2025-11-15").unwrap()
    }

    #[test]
    fn lenient_defaults_and_bad_data() {
        let doc = json!({"bifrost": {
            "mcp_clients": [{"config": {"client_id": "gh-1", "name": "github"},
                             "tools": [{"name": "list_repos"}, "delete_repo"]}],
            "provider_keys": [{"provider": "openai", "value": "sk-up"}],
            "access_profiles": [
                {"id": 12, "name": "Eng", "tags": ["a b"], "mcp_servers": ["gh-1", "ghost"],
                 "rate_limit": {"request_max_limit": 99.5},
                 "provider_configs": [{"provider_name": "anthropic", "budgets": [{"max_limit": 5}]}]},
                {"name": "Eng"}
            ],
            "user_access_profiles": [{"user_id": "u-1", "parent_profile_id": 12}],
            "virtual_keys": [{"name": "k", "value": "sk-bf-clear-1234",
                              "mcp_configs": [{"mcp_client_name": "github"}],
                              "provider_configs": [{"provider": "openai", "key_ids": ["*"]}]},
                             {"name": "h", "value_sha256": "ab".repeat(32), "value": "sk-bf-****1234"}]
        }});
        let s = load(&doc, now()).unwrap();
        assert_eq!(s.profiles.len(), 2);
        assert_eq!(s.profiles[&13].name, "Eng", "duplicate names are kept");
        let p = &s.profiles[&12];
        assert!(p.is_active);
        assert_eq!(p.mcp_servers, vec!["gh-1", "ghost"]);
        assert_eq!(p.rate_limit.as_ref().unwrap().request_max_limit, Some(99.5));
        assert_eq!(
            p.provider_configs[0].budgets[0].scope.as_deref(),
            Some("provider:anthropic")
        );
        assert_ne!(p.provider_configs[0].id, 0);
        assert_eq!(s.user_profiles[&14].name, "Eng");
        assert_eq!(s.user_count(12), 1);
        let k = &s.virtual_keys[0];
        assert!(k.value.matches("sk-bf-clear-1234"));
        assert_eq!(k.masked, "sk-bf-****1234");
        assert!(k.provider_configs[0].allow_all_keys);
        assert_eq!(k.mcp_configs[0].mcp_client_id, 1);
        assert_eq!(s.virtual_keys[1].value.sha256(), "ab".repeat(32));
        assert_eq!(s.mcp_clients[&1].tools.len(), 2);
        assert!(s.provider_keys[0].value.matches("sk-up"));
        assert_eq!(s.seq.profile, 15);
    }

    #[test]
    fn structural_errors_name_the_field() {
        let e = load(
            &json!({"bifrost": {"access_profiles": [{"tags": "x"}]}}),
            now(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("bifrost.access_profiles[0].tags: expected an array"),
            "{e}"
        );
        let e = load(&json!({"bifrost": {"user_access_profiles": [{}]}}), now())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "bifrost.user_access_profiles[0].user_id: required");
        assert!(load(&json!({}), now()).unwrap().profiles.is_empty());
    }

    #[test]
    fn providers_are_configured_only_when_the_fixture_lists_no_provider_keys() {
        let profiles = json!([{"name": "A", "provider_configs": [
            {"provider_name": "openai"}, {"provider_name": " cohere "}, {"provider_name": " "}]}]);
        let vks = json!([{"name": "k", "provider_configs": [{"provider": "mistral"}]}]);
        let s = load(
            &json!({"bifrost": {"access_profiles": profiles, "virtual_keys": vks}}),
            now(),
        )
        .unwrap();
        let mut got: Vec<&str> = s
            .provider_keys
            .iter()
            .map(|k| k.provider.as_str())
            .collect();
        got.sort_unstable();
        assert_eq!(got, ["cohere", "mistral", "openai"]);
        let s = load(
            &json!({"bifrost": {"access_profiles": profiles, "provider_keys": []}}),
            now(),
        )
        .unwrap();
        assert!(s.provider_keys.is_empty() && !s.has_provider("openai"));
    }

    #[test]
    fn state_dump_round_trips() {
        let g = super::super::generate::generate(4, 40);
        let dump = json!({"bifrost": g.state()});
        let back = load(&dump, now()).unwrap();
        assert_eq!(back.state(), g.state());
    }
}
