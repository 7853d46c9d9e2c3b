//! Verify: read every target object back (list pages, not one GET per credential), compare it
//! with the plan field by field, check that each credential's secret is in the sink, and with
//! `--live` prove each one authenticates the way its consumer will call.

use anyhow::Result;
use futures::stream::{self, StreamExt};
use secrecy::SecretString;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

use super::{Cred, Found, Fut, RemoteId, Target, Unit};
use crate::printer::Printer;
use crate::secrets::SinkRecord;
use crate::state::OpState;

/// The outcome of one live probe (`verify --live`, docs/cli.md).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    Rejected,
    Unverifiable,
    ExpectedInactive,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Rejected => "rejected",
            Verdict::Unverifiable => "unverifiable",
            Verdict::ExpectedInactive => "expected-inactive",
        }
    }
}

/// One difference between the plan and what the vendor holds.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub workspace: String,
    pub object: String,
    pub field: String,
    pub expected: String,
    pub found: String,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "workspace {}, {}: {} expected {}, found {}",
            self.workspace, self.object, self.field, self.expected, self.found
        )
    }
}

/// What a target read back: the credentials it found (by position: unit, then credential
/// within it), the containers it did not find (by marker), and every difference it saw, each
/// with the journal id of the credential it concerns (none for a container or an unplanned
/// object).
#[derive(Debug, Default)]
pub struct ReadBack {
    found: Vec<Vec<Option<Found>>>,
    pub missing_containers: HashSet<String>,
    pub drift: Vec<(Option<String>, Drift)>,
}

impl ReadBack {
    /// Nothing found yet, for these units.
    pub fn for_units(units: &[Unit]) -> ReadBack {
        ReadBack {
            found: units.iter().map(|u| vec![None; u.creds.len()]).collect(),
            ..ReadBack::default()
        }
    }

    /// Credential `cred` of unit `unit` exists on the target.
    pub fn found(&mut self, unit: usize, cred: usize, found: Found) {
        self.found[unit][cred] = Some(found);
    }

    fn get(&self, unit: usize, cred: usize) -> Option<&Found> {
        self.found.get(unit)?.get(cred)?.as_ref()
    }
}

/// Proves credentials authenticate, the way their consumers will call.
pub trait Prober: Send + Sync {
    /// Probes in flight at once.
    fn concurrency(&self) -> usize;
    fn probe<'a>(
        &'a self,
        unit: &'a Unit<'a>,
        cred: &'a Cred<'a>,
        found: &'a Found,
        record: &'a SinkRecord,
        secret: &'a SecretString,
    ) -> Fut<'a, (Verdict, String)>;
}

/// The live verdict of one credential.
#[derive(Debug, Clone, Serialize)]
pub struct LiveResult {
    pub source: String,
    pub key_id: RemoteId,
    pub verdict: Verdict,
    pub detail: String,
}

/// What verify found.
#[derive(Debug, Default)]
pub struct Verified {
    pub checked: usize,
    pub ok: usize,
    pub drift: Vec<Drift>,
    pub live: Vec<LiveResult>,
}

impl Verified {
    pub fn count(&self, v: Verdict) -> usize {
        self.live.iter().filter(|r| r.verdict == v).count()
    }
}

/// What the sink holds: the last record's credential id per operation, and (for live probes)
/// the last records themselves.
#[derive(Default)]
pub struct Sunk {
    pub ids: HashMap<String, Option<RemoteId>>,
    pub records: HashMap<String, SinkRecord>,
}

const UNREADABLE: &str = "its secret is not readable here (age-encrypted without \
                          KEYSHIFT_AGE_IDENTITY, or handed to --secrets-cmd)";

pub async fn run(
    target: &dyn Target,
    prober: Option<&dyn Prober>,
    printer: &Printer,
    units: &[Unit<'_>],
    states: &HashMap<String, OpState>,
    sunk: &Sunk,
) -> Result<Verified> {
    let mut read = target.read_back(units).await?;
    // Credentials the target found a difference in.
    let flagged: HashSet<String> = read.drift.iter().filter_map(|(op, _)| op.clone()).collect();
    let mut out = Verified {
        drift: std::mem::take(&mut read.drift)
            .into_iter()
            .map(|(_, d)| d)
            .collect(),
        ..Verified::default()
    };
    let mut probes = Vec::new();
    for (ui, u) in units.iter().enumerate() {
        let container_missing = u
            .container
            .is_some_and(|c| read.missing_containers.contains(&c.marker));
        for (ci, cred) in u.creds.iter().enumerate() {
            out.checked += 1;
            let before = out.drift.len();
            let object = target.object(u, cred);
            let drift = |field: &str, expected: String, found: String| Drift {
                workspace: u.workspace.to_string(),
                object: object.clone(),
                field: field.into(),
                expected,
                found,
            };
            let Some(found) = read.get(ui, ci) else {
                if !container_missing {
                    out.drift.push(drift(
                        "existence",
                        "present".into(),
                        "missing (not applied yet, or deleted)".into(),
                    ));
                }
                continue;
            };
            if let Some(active) = found.active.filter(|a| *a != cred.active()) {
                out.drift.push(drift(
                    "active",
                    cred.active().to_string(),
                    active.to_string(),
                ));
            }
            let record_id = sunk.ids.get(&cred.op_id()).cloned().flatten();
            let in_sink = record_id.as_ref().map(RemoteId::to_string) == Some(found.id.to_string());
            if states.get(&cred.op_id()) == Some(&OpState::Done) && !in_sink {
                out.drift.push(drift(
                    "secret",
                    "a usable secret in the sink".into(),
                    "none for this credential id".into(),
                ));
            }
            if let Some(record) = sunk.records.get(&cred.op_id()).filter(|_| in_sink) {
                probes.push((u, cred, found, record));
            }
            if out.drift.len() == before && !flagged.contains(&cred.op_id()) {
                out.ok += 1;
            }
        }
    }
    if let Some(prober) = prober {
        let bar = printer.progress(probes.len() as u64, "probe");
        let results: Vec<(LiveResult, String, String)> = stream::iter(probes)
            .map(|(u, cred, found, record)| {
                let bar = &bar;
                async move {
                    let (verdict, detail) = match &record.secret {
                        None => (Verdict::Unverifiable, UNREADABLE.to_string()),
                        Some(secret) => prober.probe(u, cred, found, record, secret).await,
                    };
                    bar.inc(1);
                    let result = LiveResult {
                        source: cred.source().to_string(),
                        key_id: found.id.clone(),
                        verdict,
                        detail,
                    };
                    (result, u.workspace.to_string(), target.object(u, cred))
                }
            })
            .buffer_unordered(prober.concurrency().max(1))
            .collect()
            .await;
        bar.finish_and_clear();
        for (r, workspace, object) in results {
            if r.verdict == Verdict::Rejected {
                out.drift.push(Drift {
                    workspace,
                    object,
                    field: "live".into(),
                    expected: "the credential authenticates".into(),
                    found: r.detail.clone(),
                });
            }
            out.live.push(r);
        }
        out.live.sort_by(|a, b| a.source.cmp(&b.source));
    }
    Ok(out)
}

/// Does the vendor's object carry every planned field? Lists compare as multisets, objects
/// by the planned keys (the vendor may add fields, e.g. `tenantName`).
pub fn carries(remote: &serde_json::Value, planned: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (remote, planned) {
        (Value::Object(r), Value::Object(p)) => p
            .iter()
            .all(|(k, v)| r.get(k).is_some_and(|rv| carries(rv, v))),
        (Value::Array(r), Value::Array(p)) => {
            r.len() == p.len() && p.iter().all(|pv| r.iter().any(|rv| carries(rv, pv)))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (r, p) => r == p,
    }
}

/// The fields of `planned` that `remote` does not carry.
pub fn differing_fields(remote: &serde_json::Value, planned: &serde_json::Value) -> Vec<String> {
    match planned.as_object() {
        Some(p) => p
            .iter()
            .filter(|(k, v)| !remote.get(*k).is_some_and(|rv| carries(rv, v)))
            .map(|(k, _)| k.clone())
            .collect(),
        None => Vec::new(),
    }
}
