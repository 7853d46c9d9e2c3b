//! Bifrost's usage evidence: the consumers of a Bifrost source (one per holder of a planned
//! access profile) and the request logs (`GET /api/logs` filtered by `virtual_key_ids`,
//! docs/evidence.md). Cost is bounded: per consumer side, the newest use and either the
//! oldest use (new side) or the refusals since switch-off (old side) — at most four requests
//! per consumer — plus two per run (`/api/logs/dropped`, and `/api/logs/stats` to tell an
//! empty log from a quiet one). Never a walk over the inference logs.

use anyhow::Result;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::Value;

use super::BifrostConn;
use crate::engine::adoption::{Consumer, Evidence, Ident, Record, Seen, UsageSource, Want, Window};
use crate::engine::Fut;
use crate::model::Plan;
use crate::providers::bifrost::plan::{BifrostInventory, WORKSPACE};

/// One consumer per (profile, holder): its old keys are the holder's profile-managed virtual
/// keys, its new ones the key planned for the holder (per-holder) or for the profile.
pub fn consumers(inv: &BifrostInventory, plan: &Plan) -> Result<Vec<Consumer>> {
    let mut out = Vec::new();
    for item in &plan.items {
        let profile_name = inv
            .profiles
            .iter()
            .find(|p| p.id.to_string() == item.profile_id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| item.profile_name.clone());
        let holdings: Vec<_> = inv
            .holdings
            .iter()
            .filter(|h| h.profile_id.to_string() == item.profile_id)
            .filter(|h| item.holder.as_ref().is_none_or(|u| *u == h.user_id))
            .collect();
        if holdings.is_empty() {
            out.push(Consumer {
                id: format!("{}:*", item.profile_id),
                workspace: WORKSPACE.into(),
                name: format!("{profile_name} · (holders not named)"),
                client: None,
                profiles: vec![item.profile_id.clone()],
                creds: vec![item.source.clone()],
                old: Vec::new(),
                new: Vec::new(),
                blind: Some(
                    "Bifrost has no route that lists a profile's holders: name them in the \
                     mapping ([bifrost] holders or holders_csv) and export again"
                        .into(),
                ),
            });
            continue;
        }
        for h in holdings {
            out.push(Consumer {
                id: format!("{}:{}", item.profile_id, h.user_id),
                workspace: WORKSPACE.into(),
                name: format!("{profile_name} · {}", h.user_id),
                client: None,
                profiles: vec![item.profile_id.clone()],
                creds: vec![item.source.clone()],
                old: h
                    .virtual_key_ids
                    .iter()
                    .map(|id| Ident::Key {
                        workspace: WORKSPACE.into(),
                        id: id.clone(),
                    })
                    .collect(),
                new: Vec::new(),
                blind: None,
            });
        }
    }
    Ok(out)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One log entry's time and id.
fn entry(v: &Value) -> Option<Record> {
    let at = v.get("timestamp")?.as_str()?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    let id = v.get("id").and_then(Value::as_str).unwrap_or("?");
    Some(Record {
        at,
        what: format!("Bifrost log entry {id}"),
    })
}

/// The total of a search (`total`, or the newer `pagination.total_count`).
fn total(body: &Value) -> u64 {
    body.get("total")
        .and_then(Value::as_u64)
        .or_else(|| {
            body.pointer("/pagination/total_count")
                .and_then(Value::as_u64)
        })
        .unwrap_or(0)
}

/// What the log store says about itself over a window.
#[derive(Debug, Clone, Copy)]
pub struct LogHealth {
    /// Entries in the window, for every key.
    all: u64,
    /// Requests never logged (`/api/logs/dropped`).
    dropped: u64,
}

impl BifrostConn {
    /// An empty log over the whole window cannot tell quiet from logging switched off; dropped
    /// writes make absence no proof.
    async fn read_health(&self, w: &Window) -> Result<LogHealth> {
        let stats = self
            .call(
                Method::GET,
                &format!(
                    "/api/logs/stats?{}",
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("start_time", &rfc3339(w.from))
                        .append_pair("end_time", &rfc3339(w.until()))
                        .finish()
                ),
                "/api/logs/stats",
                None,
                true,
            )
            .await?;
        let dropped = self
            .call(
                Method::GET,
                "/api/logs/dropped",
                "/api/logs/dropped",
                None,
                true,
            )
            .await?;
        Ok(LogHealth {
            all: stats
                .get("total_requests")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            dropped: dropped
                .get("dropped_requests")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    }

    async fn logs(&self, query: &[(&str, String)]) -> Result<Value> {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        Ok(self
            .call(
                Method::GET,
                &format!("/api/logs?{q}"),
                "/api/logs",
                None,
                true,
            )
            .await?)
    }

    /// The newest (or oldest) entry for these keys with this status in [from, to].
    async fn one(
        &self,
        keys: &str,
        status: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        order: &str,
    ) -> Result<(Option<Record>, u64)> {
        let body = self
            .logs(&[
                ("virtual_key_ids", keys.to_string()),
                ("status", status.to_string()),
                ("start_time", rfc3339(from)),
                ("end_time", rfc3339(to)),
                ("sort_by", "timestamp".into()),
                ("order", order.into()),
                ("limit", "1".into()),
            ])
            .await?;
        let first = body
            .get("logs")
            .and_then(Value::as_array)
            .and_then(|l| l.first())
            .and_then(entry);
        Ok((first, total(&body)))
    }

    async fn evidence(&self, wants: &[Want], w: &Window) -> Result<Evidence> {
        let before = self.http().requests_sent();
        let mut notes = Vec::new();
        let LogHealth { all, dropped } = *self
            .log_health
            .get_or_try_init(|| self.read_health(w))
            .await?;
        if dropped > 0 {
            notes.push(format!(
                "Bifrost reports {dropped} request(s) that were never logged: the logs are \
                 incomplete, so a consumer without recorded use may still have called"
            ));
        }
        let blind = (all == 0).then(|| {
            format!(
                "Bifrost's log holds no request at all since {}: logging may be switched off \
                 (no logs is not no traffic) — check the logs store settings",
                w.from.format("%Y-%m-%d")
            )
        });
        let mut seen = Vec::with_capacity(wants.len());
        for want in wants {
            if let Some(b) = &blind {
                seen.push(Err(b.clone()));
                continue;
            }
            let keys: Vec<&str> = want
                .idents
                .iter()
                .filter_map(|i| match i {
                    Ident::Key { id, .. } => Some(id.as_str()),
                    Ident::Client { .. } => None,
                })
                .collect();
            let mut s = Seen::default();
            if keys.is_empty() {
                seen.push(Ok(s));
                continue;
            }
            let keys = keys.join(",");
            let (newest, _) = self
                .one(&keys, "success", w.from, w.until(), "desc")
                .await?;
            if let Some(n) = newest {
                if want.first_use {
                    let (oldest, _) = self.one(&keys, "success", w.from, w.until(), "asc").await?;
                    if let Some(o) = oldest {
                        s.used(o);
                    }
                }
                s.used(n);
            }
            if let Some(after) = want.refusals_after {
                let (last, count) = self
                    .one(&keys, "error", after.max(w.from), w.until(), "desc")
                    .await?;
                if let Some(l) = last {
                    s.refused(l);
                    s.refusals = count.max(1);
                }
            }
            seen.push(Ok(s));
        }
        Ok(Evidence {
            seen,
            notes,
            label: "Bifrost request logs (/api/logs)".into(),
            requests: self.http().requests_sent() - before,
        })
    }
}

impl UsageSource for BifrostConn {
    fn read<'a>(&'a self, wants: &'a [Want], window: &'a Window) -> Fut<'a, Result<Evidence>> {
        Box::pin(self.evidence(wants, window))
    }
}
