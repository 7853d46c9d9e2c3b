//! Loading `--fixture FILE.json`: a user's own inventory instead of the generated one.
//!
//! The format is the shape of `/_sandbox/state` (so a state dump loads back), plus the clear
//! secrets a rehearsal may need: `secret`, `oauth_client_secret`, `jwt_secret`, `auth_token`
//! and, for RSA/OIDC consumers, a `signing_key` private PEM. `docs/fixtures.md` has the field
//! list and an example.
//!
//! Loading is lenient on purpose, because the sandbox must hold bad data as faithfully as a
//! real account would: missing optional fields take defaults (timestamps = the clock's start,
//! lists = `[]`, nullable fields = `null`, `active` = `true`, `auth_type` = `"token"`), and
//! unknown auth types, invalid IP strings, dangling collection/policy/client ids and duplicate
//! names are all kept as given. Only a structurally broken document is refused, with one line
//! naming the field path (`workato.workspaces[0].access_profiles[3].api_client_id: …`).
//! Collection `url`s are rewritten to this sandbox's gateway; ids continue after the largest
//! id of each kind.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::fixture_json::Obj;
use super::generate::slugify;
use super::keys;
use super::workato::model::{
    AccessProfile, ApiKey, Collection, IdMap, LegacyClient, Policy, StoredSecret, V2Client,
    WorkatoState, Workspace,
};

/// Read and load a fixture file.
pub fn load_file(path: &Path, base_url: &str, now: DateTime<Utc>) -> anyhow::Result<WorkatoState> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading fixture {}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .with_context(|| format!("fixture {}: not valid JSON", path.display()))?;
    load(&doc, base_url, now).with_context(|| format!("fixture {}", path.display()))
}

/// Load a parsed fixture document.
pub fn load(doc: &Value, base_url: &str, now: DateTime<Utc>) -> anyhow::Result<WorkatoState> {
    let root = Obj::of(doc, String::new())?;
    let mut state = WorkatoState::default();
    let workspaces = match root.get("workato") {
        Some(w) => Obj::of(w, "workato".to_owned())?.array("workspaces")?,
        None => Vec::new(),
    };
    let loader = Loader {
        base_url: base_url.trim_end_matches('/'),
        now,
    };
    // Ids may be omitted: such workspaces get the next free id after the largest given.
    let mut next_ws = 1 + workspaces
        .iter()
        .filter_map(|w| w.u64("id").ok().flatten())
        .max()
        .unwrap_or(0);
    let mut pending = Vec::new();
    for (i, w) in workspaces.iter().enumerate() {
        let id = match w.u64("id")? {
            Some(id) => id,
            None => {
                next_ws += 1;
                next_ws - 1
            }
        };
        if i == 0 {
            state.admin_id = id;
        }
        let (ws, unnumbered) = loader.workspace(w, id)?;
        if state.workspaces.insert(id, ws).is_some() {
            bail!("{}: duplicate workspace id {id}", w.path);
        }
        pending.push((id, unnumbered));
    }
    if state.workspaces.is_empty() {
        state.admin_id = 1;
        state
            .workspaces
            .insert(1, Workspace::new(1, "Admin workspace", "acme", now));
    }
    state.seq.continue_after(&state.workspaces);
    for (wid, unnumbered) in pending {
        number(&mut state, wid, unnumbered)?;
    }
    Ok(state)
}

/// Objects that came without an id, numbered once every given id is known.
#[derive(Default)]
struct Unnumbered {
    collections: Vec<Collection>,
    policies: Vec<Policy>,
    legacy_clients: Vec<LegacyClient>,
    profiles: Vec<AccessProfile>,
    v2_clients: Vec<V2Client>,
    keys: Vec<ApiKey>,
}

fn number(state: &mut WorkatoState, wid: u64, u: Unnumbered) -> anyhow::Result<()> {
    let seq = &mut state.seq;
    let ws = state
        .workspaces
        .get_mut(&wid)
        .ok_or_else(|| anyhow!("workspace {wid} vanished"))?;
    for mut c in u.collections {
        c.id = seq.next_collection();
        ws.collections.insert(c.id, c);
    }
    for mut p in u.policies {
        p.id = seq.next_policy();
        ws.policies.insert(p.id, p);
    }
    for mut c in u.legacy_clients {
        c.id = seq.next_client();
        ws.legacy_clients.insert(c.id, c);
    }
    for mut c in u.v2_clients {
        c.id = seq.next_client();
        ws.v2_clients.insert(c.id, c);
    }
    for mut p in u.profiles {
        p.id = seq.next_profile();
        ws.insert_profile(p);
    }
    for mut k in u.keys {
        k.id = seq.next_key();
        ws.insert_key(k);
    }
    Ok(())
}

/// A collection of objects by id: a plain map, or an [`IdMap`] that also keeps positions.
trait ById<T> {
    /// Insert; `Some` if the id was taken.
    fn put(&mut self, id: u64, item: T) -> Option<T>;
}

impl<T> ById<T> for BTreeMap<u64, T> {
    fn put(&mut self, id: u64, item: T) -> Option<T> {
        self.insert(id, item)
    }
}

impl<T> ById<T> for IdMap<T> {
    fn put(&mut self, id: u64, item: T) -> Option<T> {
        self.insert(id, item)
    }
}

/// Insert `item` under its id, or park it for numbering; a repeated id is an error.
fn place<T>(
    map: &mut impl ById<T>,
    parked: &mut Vec<T>,
    id: Option<u64>,
    item: T,
    path: &str,
) -> anyhow::Result<()> {
    match id {
        Some(id) => {
            if map.put(id, item).is_some() {
                bail!("{path}.id: duplicate id {id}");
            }
        }
        None => parked.push(item),
    }
    Ok(())
}

struct Loader<'a> {
    base_url: &'a str,
    now: DateTime<Utc>,
}

impl Loader<'_> {
    fn workspace(&self, w: &Obj, id: u64) -> anyhow::Result<(Workspace, Unnumbered)> {
        let now = self.now;
        let name = w
            .string("name")?
            .unwrap_or_else(|| format!("Workspace {id}"));
        let collections = w.array("api_collections")?;
        let prefix = match w.string("prefix")? {
            Some(p) => p,
            None => collections
                .iter()
                .find_map(|c| c.string("url").ok().flatten().and_then(|u| url_prefix(&u)))
                .unwrap_or_else(|| {
                    let s = slugify(&name);
                    if s.is_empty() {
                        format!("workspace-{id}")
                    } else {
                        s
                    }
                }),
        };
        let mut ws = Workspace::new(id, &name, &prefix, now);
        ws.external_id = w.string("external_id")?;
        ws.created_at = w.time("created_at", now)?;
        ws.updated_at = w.time("updated_at", ws.created_at)?;
        let mut u = Unnumbered::default();

        for c in &collections {
            let cid = c.u64("id")?;
            let cname = c
                .string("name")?
                .unwrap_or_else(|| format!("Collection {}", cid.unwrap_or(0)));
            let given_url = c.string("url")?;
            let from_url = given_url.as_deref().and_then(url_slug_version);
            let slug = match c.string("slug")? {
                Some(s) => s,
                None => match &from_url {
                    Some((s, _)) => s.clone(),
                    None => {
                        let s = slugify(&cname);
                        if s.is_empty() {
                            format!("collection-{}", cid.unwrap_or(0))
                        } else {
                            s
                        }
                    }
                },
            };
            let version = match c.string("version")? {
                Some(v) => v,
                None => from_url.map_or_else(|| "1".to_owned(), |(_, v)| v),
            };
            let url = format!("{}/workato-apim/{prefix}/{slug}-v{version}", self.base_url);
            let created_at = c.time("created_at", now)?;
            let item = Collection {
                id: cid.unwrap_or(0),
                name: cname,
                version,
                slug,
                api_spec_url: format!("{url}/openapi.json"),
                url,
                project_id: c.string("project_id")?,
                created_at,
                updated_at: c.time("updated_at", created_at)?,
            };
            place(&mut ws.collections, &mut u.collections, cid, item, &c.path)?;
        }

        for p in w.array("api_policies")? {
            let pid = p.u64("id")?;
            let created_at = p.time("created_at", now)?;
            let item = Policy {
                id: pid.unwrap_or(0),
                name: p
                    .string("name")?
                    .unwrap_or_else(|| format!("Policy {}", pid.unwrap_or(0))),
                created_at,
                updated_at: p.time("updated_at", created_at)?,
            };
            place(&mut ws.policies, &mut u.policies, pid, item, &p.path)?;
        }

        for c in w.array("legacy_clients")? {
            let cid = c.u64("id")?;
            let created_at = c.time("created_at", now)?;
            let item = LegacyClient {
                id: cid.unwrap_or(0),
                name: c.string("name")?.unwrap_or_default(),
                project_id: c.u64("project_id")?,
                created_at,
                updated_at: c.time("updated_at", created_at)?,
            };
            place(
                &mut ws.legacy_clients,
                &mut u.legacy_clients,
                cid,
                item,
                &c.path,
            )?;
        }

        for p in w.array("access_profiles")? {
            let pid = p.u64("id")?;
            let item = self.profile(&p, pid)?;
            match pid {
                // Through `insert_profile`, so the per-client index knows it.
                Some(id) if ws.profiles.contains_key(&id) => {
                    bail!("{}.id: duplicate id {id}", p.path)
                }
                Some(_) => ws.insert_profile(item),
                None => u.profiles.push(item),
            }
        }

        for c in w.array("v2_clients")? {
            let cid = c.u64("id")?;
            let item = self.v2_client(&c, cid)?;
            if ws.legacy_clients.contains_key(&item.id) && cid.is_some() {
                bail!("{}.id: {} is already a legacy client's id", c.path, item.id);
            }
            place(&mut ws.v2_clients, &mut u.v2_clients, cid, item, &c.path)?;
        }

        for k in w.array("api_keys")? {
            let kid = k.u64("id")?;
            let item = self.key(&k, kid)?;
            place(&mut ws.keys, &mut u.keys, kid, item, &k.path)?;
        }
        Ok((ws, u))
    }

    fn profile(&self, p: &Obj, id: Option<u64>) -> anyhow::Result<AccessProfile> {
        let created_at = p.time("created_at", self.now)?;
        let signing_key = p.secret("signing_key")?;
        let signing_kid = match p.string("signing_kid")? {
            Some(k) => Some(k),
            None => signing_key
                .as_ref()
                .and_then(StoredSecret::clear)
                .and_then(keys::by_private_pem)
                .map(|k| k.kid.to_owned()),
        };
        Ok(AccessProfile {
            id: id.unwrap_or(0),
            name: p.string("name")?.unwrap_or_default(),
            api_client_id: p.required_u64("api_client_id")?,
            api_collection_ids: p.id_list("api_collection_ids")?,
            active: p.bool("active", true)?,
            auth_type: p.string("auth_type")?.unwrap_or_else(|| "token".to_owned()),
            jwt_method: p.string("jwt_method")?,
            jwt_secret: p.secret("jwt_secret")?,
            oidc_issuer: p.string("oidc_issuer")?,
            oidc_jwks_uri: p.string("oidc_jwks_uri")?,
            access_profile_claim: p.string("access_profile_claim")?,
            required_claims: p.string_list("required_claims")?,
            allowed_issuers: p.string_list("allowed_issuers")?,
            ip_allow_list: p.string_list("ip_allow_list")?,
            api_policy_id: p.u64("api_policy_id")?,
            oauth_client_id: p.string("oauth_client_id")?,
            secret: p.secret("secret")?,
            oauth_client_secret: p.secret("oauth_client_secret")?,
            signing_key,
            signing_kid,
            created_at,
            updated_at: p.time("updated_at", created_at)?,
        })
    }

    fn v2_client(&self, c: &Obj, id: Option<u64>) -> anyhow::Result<V2Client> {
        let created_at = c.time("created_at", self.now)?;
        // Accept the request form (`api_collection_ids`, `api_policy_id`) or the read form
        // (`api_collections`, `api_policies` as [{"id","name"}]).
        let api_collection_ids = if c.get("api_collection_ids").is_some() {
            c.id_list("api_collection_ids")?
        } else {
            c.array("api_collections")?
                .iter()
                .map(|o| o.required_u64("id"))
                .collect::<anyhow::Result<_>>()?
        };
        let api_policy_id = match c.u64("api_policy_id")? {
            Some(p) => Some(p),
            None => match c.array("api_policies")?.first() {
                Some(o) => Some(o.required_u64("id")?),
                None => None,
            },
        };
        let cert_bundle_ids = match c.get("cert_bundle_ids") {
            Some(_) => Some(c.id_list("cert_bundle_ids")?),
            None => None,
        };
        Ok(V2Client {
            id: id.unwrap_or(0),
            name: c.string("name")?.unwrap_or_default(),
            description: c.string("description")?,
            project_id: c.u64("project_id")?,
            auth_type: c.string("auth_type")?.unwrap_or_else(|| "token".to_owned()),
            api_collection_ids,
            api_policy_id,
            jwt_method: c.string("jwt_method")?,
            jwt_secret: c.secret("jwt_secret")?,
            oidc_issuer: c.string("oidc_issuer")?,
            oidc_jwks_uri: c.string("oidc_jwks_uri")?,
            access_profile_claim: c.string("access_profile_claim")?,
            required_claims: c.string_list("required_claims")?,
            allowed_issuers: c.string_list("allowed_issuers")?,
            email: c.string("email")?,
            api_portal_id: c.u64("api_portal_id")?,
            mtls_enabled: c.opt_bool("mtls_enabled")?,
            validation_formula: c.string("validation_formula")?,
            cert_bundle_ids,
            logo: c.string("logo")?,
            logo_2x: c.string("logo_2x")?,
            created_at,
            updated_at: c.time("updated_at", created_at)?,
        })
    }

    fn key(&self, k: &Obj, id: Option<u64>) -> anyhow::Result<ApiKey> {
        let created_at = k.time("created_at", self.now)?;
        Ok(ApiKey {
            id: id.unwrap_or(0),
            api_client_id: k.required_u64("api_client_id")?,
            name: k.string("name")?.unwrap_or_default(),
            active: k.bool("active", true)?,
            active_since: k.time("active_since", created_at)?,
            ip_allow_list: k.string_list("ip_allow_list")?,
            ip_deny_list: k.string_list("ip_deny_list")?,
            auth_token: k.secret("auth_token")?,
            oauth_client_id: k.string("oauth_client_id")?,
            oauth_client_secret: k.secret("oauth_client_secret")?,
            created_at,
            usable_from: created_at,
        })
    }
}

/// `https://apim.workato.com/acme/orders-v1` → `acme`.
fn url_prefix(url: &str) -> Option<String> {
    let segs = path_segments(url)?;
    (segs.len() >= 2).then(|| segs[segs.len() - 2].clone())
}

/// `https://apim.workato.com/acme/orders-v1` → (`orders`, `1`).
fn url_slug_version(url: &str) -> Option<(String, String)> {
    let segs = path_segments(url)?;
    let last = segs.last()?;
    let (slug, version) = last.rsplit_once("-v")?;
    if slug.is_empty() || version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((slug.to_owned(), version.to_owned()))
}

fn path_segments(url: &str) -> Option<Vec<String>> {
    let parsed = url::Url::parse(url).ok()?;
    let segs: Vec<String> = parsed
        .path_segments()?
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Some(segs)
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
    fn holds_bad_data_and_defaults() {
        let doc = json!({"workato": {"workspaces": [{
            "id": 1, "name": "Acme",
            "api_collections": [{"id": 7, "name": "Orders API",
                                 "url": "https://apim.workato.com/acme/orders-v3"}],
            "api_policies": [{"id": 3, "name": "Gold"}],
            "legacy_clients": [{"id": 10, "name": "Portal"}],
            "access_profiles": [
                {"id": 20, "name": "A", "api_client_id": 10, "api_collection_ids": [7, 99],
                 "auth_type": "saml", "ip_allow_list": ["300.1.2.3"], "secret": "s3cret"},
                {"id": 21, "name": "A", "api_client_id": "10", "active": false,
                 "jwt_method": "rsa", "auth_type": "jwt"},
                {"name": "no id", "api_client_id": 10}
            ]
        }]}});
        let s = load(&doc, "http://127.0.0.1:9", now()).unwrap();
        let ws = &s.workspaces[&1];
        assert_eq!(ws.prefix, "acme");
        assert_eq!(
            ws.collections[&7].url,
            "http://127.0.0.1:9/workato-apim/acme/orders-v3"
        );
        let p = &ws.profiles[&20];
        assert_eq!(p.auth_type, "saml");
        assert_eq!(p.ip_allow_list, vec!["300.1.2.3"]);
        assert_eq!(p.api_collection_ids, vec![7, 99]);
        assert!(p.active);
        assert_eq!(p.created_at, now());
        assert!(p.secret.as_ref().unwrap().matches("s3cret"));
        assert_eq!(ws.profiles[&21].name, "A");
        assert!(!ws.profiles[&21].active);
        assert_eq!(ws.profiles[&22].name, "no id");
        // sequences continue after the largest ids
        let mut seq = s.seq.clone();
        assert_eq!(seq.next_profile(), 23);
        assert_eq!(seq.next_client(), 11);
    }

    #[test]
    fn structural_errors_name_the_field() {
        let doc = json!({"workato": {"workspaces": [{"id": 1,
            "access_profiles": [{"id": 1, "name": "x"}]}]}});
        let e = load(&doc, "http://x", now()).unwrap_err().to_string();
        assert_eq!(
            e,
            "workato.workspaces[0].access_profiles[0].api_client_id: required"
        );
        let doc = json!({"workato": {"workspaces": [{"id": 1,
            "access_profiles": [{"api_client_id": 1, "ip_allow_list": "10.0.0.1"}]}]}});
        let e = load(&doc, "http://x", now()).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "workato.workspaces[0].access_profiles[0].ip_allow_list: expected an array"
            ),
            "{e}"
        );
        let doc = json!({"workato": {"workspaces": {}}});
        assert!(load(&doc, "http://x", now()).is_err());
    }

    #[test]
    fn state_dump_round_trips() {
        let g = super::super::generate::generate(
            &super::super::generate::GenOptions {
                seed: 5,
                workspaces: 2,
                profiles: 60,
            },
            "http://127.0.0.1:1",
        );
        let dump = json!({"workato": g.state()});
        let back = load(&dump, "http://127.0.0.1:1", now()).unwrap();
        assert_eq!(back.state(), g.state());
    }

    #[test]
    fn documented_example_loads() {
        let doc = include_str!("../../docs/fixtures.md");
        let start = doc.find("```json").expect("example block") + "```json".len();
        let end = start + doc[start..].find("```").expect("block end");
        let example: Value = serde_json::from_str(&doc[start..end]).expect("example is JSON");
        let s = load(&example, "http://127.0.0.1:9", now()).unwrap();
        assert_eq!(s.admin_id, 1);
        let ws = &s.workspaces[&1];
        assert_eq!(ws.profiles.len(), 4);
        assert_eq!(ws.profiles[&203].auth_type, "saml");
        assert_eq!(
            s.workspaces[&2].collections[&11].url,
            "http://127.0.0.1:9/workato-apim/globex-retail/orders-api-v2"
        );
        assert_eq!(
            s.signing_secrets()["hmac"][0]["secret"],
            "shared-hmac-secret"
        );
    }
}
