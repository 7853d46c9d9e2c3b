//! Simulated consumers for a rehearsal (`keyshift demo`): API clients of the seeded Workato
//! workspace calling the sandbox's gateway with their real credentials — the legacy token
//! they hold (from `/_sandbox/consumer-credentials`) and the new key apply issued (from the
//! secret sink) — so that the gateway's Logs export has something to show. Roles are dealt
//! by legacy client: some move, some use both, some never move, the rest stay idle.

use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What a simulated consumer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Calls with the old token, later only with the new key.
    Mover,
    /// Keeps calling with both.
    Both,
    /// Never moves.
    Never,
    /// Calls nobody.
    Idle,
}

/// One consumer: a legacy client with one token profile that has a new key.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub legacy_client_id: i64,
    pub name: String,
    pub profile_id: i64,
    pub role: Role,
    old_token: String,
    new_token: String,
    /// A gateway URL of a collection the profile is granted.
    url: String,
}

/// The simulated consumers of workspace `ws` of a sandbox at `base`, with new secrets from
/// the sink at `sink`.
pub struct World {
    http: reqwest::Client,
    pub consumers: Vec<Consumer>,
    base: String,
}

impl World {
    pub async fn new(base: &str, ws: &str, sink: &Path) -> Result<World> {
        let http = reqwest::Client::new();
        let get = |path: &str| {
            let http = http.clone();
            let url = format!("{base}{path}");
            async move {
                http.get(&url)
                    .send()
                    .await
                    .with_context(|| format!("GET {url}"))?
                    .json::<Value>()
                    .await
                    .with_context(|| format!("GET {url}: not JSON"))
            }
        };
        let creds = get("/_sandbox/consumer-credentials").await?;
        let state = get("/_sandbox/state").await?;
        let workspace = state["workato"]["workspaces"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["id"].to_string().trim_matches('"') == ws)
            .cloned()
            .unwrap_or_default();
        let urls: HashMap<i64, String> = workspace["api_collections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c["id"].as_i64()?, c["url"].as_str()?.to_string())))
            .collect();
        let grants: HashMap<i64, Vec<i64>> = workspace["access_profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let ids = p["api_collection_ids"].as_array()?;
                Some((
                    p["id"].as_i64()?,
                    ids.iter().filter_map(Value::as_i64).collect(),
                ))
            })
            .collect();
        // A client whose active profiles are all plain tokens without IP rules has keys that
        // verify live from here: movers are dealt to those first, so a wave can take them.
        let mut clean: HashMap<i64, bool> = HashMap::new();
        for p in workspace["access_profiles"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if p["active"] != true {
                continue;
            }
            let ok = p["auth_type"] == "token"
                && p["ip_allow_list"].as_array().is_none_or(|l| l.is_empty());
            if let Some(client) = p["api_client_id"].as_i64() {
                *clean.entry(client).or_insert(true) &= ok;
            }
        }
        let ip_free: HashMap<i64, bool> = workspace["access_profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let empty = p["ip_allow_list"].as_array().is_none_or(|l| l.is_empty());
                Some((p["id"].as_i64()?, empty))
            })
            .collect();
        let mut new: HashMap<i64, String> = HashMap::new();
        for line in std::fs::read_to_string(sink).unwrap_or_default().lines() {
            let Ok(r) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let (Some(source), Some(secret)) = (r["source"].as_str(), r["secret"].as_str()) else {
                continue;
            };
            if r["kind"] != "auth_token" {
                continue;
            }
            if let Some(id) = source.rsplit(':').next().and_then(|s| s.parse().ok()) {
                new.insert(id, secret.to_string());
            }
        }
        // One profile per legacy client: active, a token, a new key, a granted collection,
        // no IP restriction (the demo calls from loopback).
        let mut by_client: BTreeMap<i64, Consumer> = BTreeMap::new();
        for c in creds["workato"].as_array().into_iter().flatten() {
            if c["workspace"].to_string().trim_matches('"') != ws || c["active"] != true {
                continue;
            }
            let (Some(client), Some(profile), Some(old)) = (
                c["legacy_client_id"].as_i64(),
                c["profile_id"].as_i64(),
                c["token"].as_str(),
            ) else {
                continue;
            };
            let Some(new_token) = new.get(&profile) else {
                continue;
            };
            let Some(url) = grants
                .get(&profile)
                .and_then(|g| g.iter().find_map(|id| urls.get(id)))
            else {
                continue;
            };
            if !ip_free.get(&profile).copied().unwrap_or(false) {
                continue;
            }
            by_client.entry(client).or_insert_with(|| Consumer {
                legacy_client_id: client,
                name: c["legacy_client_name"].as_str().unwrap_or("").to_string(),
                profile_id: profile,
                role: Role::Idle,
                old_token: old.to_string(),
                new_token: new_token.clone(),
                url: url.clone(),
            });
        }
        let mut consumers: Vec<Consumer> = by_client.into_values().collect();
        consumers.sort_by_key(|c| {
            let clean = clean.get(&c.legacy_client_id).copied().unwrap_or(false);
            (!clean, c.legacy_client_id)
        });
        for (i, c) in consumers.iter_mut().enumerate() {
            c.role = match i % 6 {
                0..=2 => Role::Mover,
                3 => Role::Both,
                4 => Role::Never,
                _ => Role::Idle,
            };
        }
        Ok(World {
            http,
            consumers,
            base: base.to_string(),
        })
    }

    async fn call(&self, url: &str, token: &str) -> Result<u16> {
        Ok(self
            .http
            .get(format!("{url}/orders"))
            .header("api-token", token)
            .send()
            .await?
            .status()
            .as_u16())
    }

    /// Calls with the old token; returns the gateway's status.
    pub async fn call_old(&self, c: &Consumer) -> Result<u16> {
        self.call(&c.url, &c.old_token).await
    }

    /// Calls with the new key.
    pub async fn call_new(&self, c: &Consumer) -> Result<u16> {
        self.call(&c.url, &c.new_token).await
    }

    /// Before the move: everyone but the idle calls with the old token.
    pub async fn before(&self) -> Result<usize> {
        let mut n = 0;
        for c in self.consumers.iter().filter(|c| c.role != Role::Idle) {
            self.call_old(c).await?;
            n += 1;
        }
        Ok(n)
    }

    /// After the move: movers call with their new keys only, the both-users with both, the
    /// others with their old tokens.
    pub async fn after(&self) -> Result<usize> {
        let mut n = 0;
        for c in &self.consumers {
            match c.role {
                Role::Mover => self.call_new(c).await.map(drop)?,
                Role::Both => {
                    self.call_new(c).await?;
                    self.call_old(c).await.map(drop)?
                }
                Role::Never => self.call_old(c).await.map(drop)?,
                Role::Idle => continue,
            }
            n += 1;
        }
        Ok(n)
    }

    /// Jump the sandbox clock to `now` (RFC 3339).
    pub async fn set_clock(&self, now: &str) -> Result<()> {
        self.http
            .post(format!("{}/_sandbox/clock", self.base))
            .json(&serde_json::json!({ "now": now }))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The workspace's Logs export, as a user downloads it.
    pub async fn logs_csv(&self, ws: &str) -> Result<String> {
        Ok(self
            .http
            .get(format!(
                "{}/_sandbox/workato/api-logs.csv?workspace={ws}",
                self.base
            ))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// Whether the legacy profile is still active in the sandbox.
    pub async fn profile_active(&self, ws: &str, profile: i64) -> Result<bool> {
        let state: Value = self
            .http
            .get(format!("{}/_sandbox/state", self.base))
            .send()
            .await?
            .json()
            .await?;
        Ok(state["workato"]["workspaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| w["id"].to_string().trim_matches('"') == ws)
            .flat_map(|w| w["access_profiles"].as_array().cloned().unwrap_or_default())
            .any(|p| p["id"].as_i64() == Some(profile) && p["active"] == true))
    }
}
