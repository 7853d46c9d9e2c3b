//! Descope's usage evidence: audit search (`POST /v1/mgmt/audit/search`) for access-key
//! exchanges (docs/evidence.md). That an exchange is recorded as `LoginSucceed` /
//! `LoginFailed` with the key's id as `userId` is an inference, so the source is named
//! "Descope audit: access-key exchanges" for users to check on their project. One walk over
//! the window for all keys at once (cheaper than per-key look-ups), within audit search's own
//! budget of 10 requests a minute and its 30-day reach.

use anyhow::Result;
use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;

use super::DescopeConn;
use crate::engine::adoption::{Evidence, Ident, Record, Seen, UsageSource, Want, Window};
use crate::engine::Fut;
use crate::http::Request;

/// Audit search's documented limit.
pub const AUDIT_LIMIT_PER_MINUTE: f64 = 10.0;
/// How far back audit search may reach.
pub const AUDIT_REACH_DAYS: i64 = 30;
const PAGE: usize = 1000;
const IDS_PER_SEARCH: usize = 100;
/// A bound on one walk, so a runaway answer cannot loop: pages per batch of keys.
const MAX_PAGES: usize = 200;

/// `occurred` as epoch milliseconds (a number or a string of one).
fn occurred(v: &Value) -> Option<DateTime<Utc>> {
    let ms = match v.get("occurred")? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| {
            DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|t| t.timestamp_millis())
        })?,
        _ => return None,
    };
    Utc.timestamp_millis_opt(ms).single()
}

impl DescopeConn {
    async fn audit_page(&self, body: &Value) -> Result<Value> {
        let req = Request {
            method: Method::POST,
            url: format!("{}/v1/mgmt/audit/search", self.base),
            route: "/v1/mgmt/audit/search".into(),
            body: Some(body),
            auth: crate::http::Auth::Bearer(&self.management),
            idempotent: true,
        };
        Ok(self.http.send(&self.audit, &req).await?)
    }

    async fn evidence(&self, wants: &[Want], w: &Window) -> Result<Evidence> {
        let before = self.http.requests_sent();
        let mut notes = Vec::new();
        let reach = w.now - Duration::days(AUDIT_REACH_DAYS) + Duration::minutes(5);
        let from = if w.from < reach {
            notes.push(format!(
                "Descope's audit search reaches back 30 days: its evidence starts {}, not {}",
                reach.format("%Y-%m-%d %H:%M UTC"),
                w.from.format("%Y-%m-%d")
            ));
            reach
        } else {
            w.from
        };
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, want) in wants.iter().enumerate() {
            for ident in &want.idents {
                if let Ident::Key { id, .. } = ident {
                    by_key.entry(id.as_str()).or_default().push(i);
                }
            }
        }
        let mut seen: Vec<Result<Seen, String>> = wants
            .iter()
            .map(|want| {
                if want.idents.is_empty() {
                    Err("nothing to look for yet (no access key created)".to_string())
                } else {
                    Ok(Seen::default())
                }
            })
            .collect();
        let mut ids: Vec<&str> = by_key.keys().copied().collect();
        ids.sort_unstable();
        let mut probes = 0u64;
        for batch in ids.chunks(IDS_PER_SEARCH) {
            for page in 0..MAX_PAGES {
                let body = json!({
                    "userIds": batch,
                    "actions": ["LoginSucceed", "LoginFailed"],
                    "from": from.timestamp_millis(),
                    "to": w.until().timestamp_millis(),
                    "size": PAGE,
                    "page": page,
                });
                let answer = self.audit_page(&body).await?;
                let audits = answer
                    .get("audits")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for a in &audits {
                    let (Some(user), Some(at)) =
                        (a.get("userId").and_then(Value::as_str), occurred(a))
                    else {
                        continue;
                    };
                    let Some(hits) = by_key.get(user) else {
                        continue;
                    };
                    let action = a.get("action").and_then(Value::as_str).unwrap_or("");
                    if action == "LoginSucceed" && w.ours(at) {
                        probes += 1;
                        continue;
                    }
                    let record = Record {
                        at,
                        what: format!("Descope audit {action} of access key {user}"),
                    };
                    for &i in hits {
                        let Some(Ok(s)) = seen.get_mut(i) else {
                            continue;
                        };
                        match action {
                            "LoginSucceed" => s.used(record.clone()),
                            "LoginFailed" if wants[i].refusals_after.is_some_and(|t| at >= t) => {
                                s.refused(record.clone())
                            }
                            _ => {}
                        }
                    }
                }
                if audits.len() < PAGE {
                    break;
                }
            }
        }
        if probes > 0 {
            notes.push(format!(
                "{probes} exchange(s) during keyshift's own verify --live probes were left out"
            ));
        }
        Ok(Evidence {
            seen,
            notes,
            label: "Descope audit: access-key exchanges".into(),
            requests: self.http.requests_sent() - before,
        })
    }
}

impl UsageSource for DescopeConn {
    fn read<'a>(&'a self, wants: &'a [Want], window: &'a Window) -> Fut<'a, Result<Evidence>> {
        Box::pin(self.evidence(wants, window))
    }
}
