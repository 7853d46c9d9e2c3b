//! One report model, several renderers. The model is built from the state DB only (no
//! network), and holds no secret: the sink is referenced by path, never read.

pub mod adoption;
pub mod csv;
pub mod handover;
pub mod html;
pub mod markdown;

use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

use crate::mapping::deadline_stance;
use crate::mapping::{Mapping, EXCLUDED_FIELD};
use crate::model::{Finding, FindingKind};
use crate::state::{client_op_id, item_op_id, key_op_id, OpState, StateDb};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub generated_at: String,
    /// `plan` before anything was applied (the dry-run report), `run` after.
    pub stage: &'static str,
    pub state_file: String,
    pub mapping: String,
    pub api: String,
    pub deadlines: DeadlineView,
    pub summary: Summary,
    pub verify: Option<serde_json::Value>,
    pub field_treatments: Vec<FieldTreatment>,
    pub clients: Vec<ClientRow>,
    pub profiles: Vec<ProfileRow>,
    pub findings: Vec<Finding>,
    pub charts: Charts,
    /// The rollout: the latest adoption snapshot, its history, the waves.
    pub adoption: Option<adoption::AdoptionView>,
    /// How the target calls its objects, for the renderers' labels.
    #[serde(skip)]
    pub words: crate::model::Words,
}

struct SourceRef {
    workspace: String,
    id: i64,
}

/// The numbers behind the HTML report's charts (also in the JSON report).
#[derive(Debug, Default, Serialize)]
pub struct Charts {
    pub by_workspace: Vec<Outcomes>,
    pub by_auth_type: Vec<Outcomes>,
    pub findings_by_kind: Vec<(String, usize)>,
    pub rate: Option<RateView>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Outcomes {
    pub label: String,
    pub migrated: usize,
    pub planned: usize,
    pub in_progress: usize,
    pub failed: usize,
    pub blocked: usize,
    pub excluded: usize,
}

impl Outcomes {
    fn add(&mut self, status: &str) {
        match status {
            "migrated" => self.migrated += 1,
            "in_progress" => self.in_progress += 1,
            "failed" => self.failed += 1,
            "blocked" => self.blocked += 1,
            "excluded" => self.excluded += 1,
            _ => self.planned += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.migrated + self.planned + self.in_progress + self.failed + self.blocked + self.excluded
    }
}

/// Requests per minute over the last apply, against the budget.
#[derive(Debug, Serialize)]
pub struct RateView {
    pub limit_per_minute: Option<f64>,
    pub bucket_seconds: i64,
    /// `(seconds since the first request, requests per minute in that bucket)`.
    pub points: Vec<(i64, f64)>,
    pub total_requests: u64,
}

#[derive(Debug, Serialize)]
pub struct DeadlineView {
    pub now: String,
    pub legacy_frozen: String,
    pub legacy_tokens_invalid: String,
    pub stance: String,
    pub stance_code: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub workspaces: usize,
    pub legacy_clients: usize,
    pub profiles: usize,
    pub planned_clients: usize,
    pub planned_keys: usize,
    pub blocked_profiles: usize,
    pub excluded_profiles: usize,
    pub migrated_keys: usize,
    pub created_clients: usize,
    pub pending_keys: usize,
    pub failed: usize,
    pub findings: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub struct FieldTreatment {
    pub field: String,
    pub treatment: String,
    pub applies_to: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct ClientRow {
    pub workspace: String,
    pub marker: String,
    pub name: String,
    pub legacy_client_id: i64,
    pub legacy_client_name: String,
    pub auth_type: String,
    pub collection_ids: Vec<i64>,
    pub policy_id: Option<i64>,
    pub keys: usize,
    pub status: String,
    pub client_id: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ProfileRow {
    pub workspace: String,
    pub profile_id: i64,
    pub profile_name: String,
    pub legacy_client_id: i64,
    pub auth_type: String,
    pub active: bool,
    /// `migrated`, `planned`, `in_progress`, `failed`, `blocked`, `excluded`.
    pub status: String,
    pub client_name: Option<String>,
    pub client_id: Option<i64>,
    pub key_name: Option<String>,
    pub key_id: Option<i64>,
    /// The target's id when it is a string (Descope, Bifrost).
    pub target_id: Option<String>,
    /// The last `verify --live` verdict for the key, if any.
    pub live: Option<String>,
    pub note: Option<String>,
    /// The planned credential's provenance marker (its journal and sink records are keyed by
    /// it), when one is planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Report {
    /// `words`: how the run's target calls its objects (`PairDef::words`).
    pub fn build(
        db: &StateDb,
        now: chrono::DateTime<chrono::Utc>,
        words: crate::model::Words,
    ) -> Result<Report> {
        let mapping = crate::registry::recorded_mapping(db)?;
        let inv = db.load_inventory()?;
        let plan = db.load_plan()?;
        let ops: HashMap<String, crate::state::Operation> = db
            .operations()?
            .into_iter()
            .map(|o| (o.op_id.clone(), o))
            .collect();
        let (stance, code) = deadline_stance(now, mapping.deadlines.as_ref());

        let mut summary = Summary {
            workspaces: inv.workspaces.len(),
            legacy_clients: inv.legacy_clients.len(),
            profiles: inv.source_profile_count(),
            planned_clients: plan.clients.len(),
            planned_keys: plan.key_count(),
            ..Summary::default()
        };
        for f in &plan.findings {
            *summary.findings.entry(f.kind.to_string()).or_default() += 1;
        }
        let blockers: HashMap<(String, String), &Finding> = plan
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::Blocker && f.object_kind == "profile")
            .map(|f| ((f.workspace.clone(), f.object_id.clone()), f))
            .collect();

        let excluded: HashMap<(String, String), &Finding> = plan
            .findings
            .iter()
            .filter(|f| f.object_kind == "profile" && f.field == EXCLUDED_FIELD)
            .map(|f| ((f.workspace.clone(), f.object_id.clone()), f))
            .collect();

        let mut placed: HashMap<
            (String, i64),
            (&crate::model::ClientSpec, &crate::model::KeySpec),
        > = HashMap::new();
        // Flat targets: one item per profile (or profile × holder: the first one names the row).
        let mut items: HashMap<(String, i64), &crate::model::StandaloneSpec> = HashMap::new();
        for it in &plan.items {
            if let Ok(id) = it.profile_id.parse::<i64>() {
                items.entry((it.workspace.clone(), id)).or_insert(it);
            }
        }
        let mut clients = Vec::new();
        for c in &plan.clients {
            let op = ops.get(&client_op_id(&c.marker));
            let status = op.map(|o| o.state.as_str()).unwrap_or("pending");
            if op.is_some_and(|o| o.state == OpState::Done) {
                summary.created_clients += 1;
            }
            clients.push(ClientRow {
                workspace: c.workspace.clone(),
                marker: c.marker.clone(),
                name: c.name.clone(),
                legacy_client_id: c.legacy_client_id,
                legacy_client_name: c.legacy_client_name.clone(),
                auth_type: c.settings.auth_type.to_string(),
                collection_ids: c.settings.collection_ids.iter().copied().collect(),
                policy_id: c.settings.policy_id,
                keys: c.keys.len(),
                status: status.into(),
                client_id: op.and_then(|o| o.remote_id),
            });
            for k in &c.keys {
                placed.insert((c.workspace.clone(), k.profile_id), (c, k));
            }
        }

        let verify = db
            .events(Some("verify"))?
            .last()
            .and_then(|(at, _, _, detail)| {
                let mut v: serde_json::Value = serde_json::from_str(detail).ok()?;
                v.as_object_mut()?.insert("at".into(), at.clone().into());
                Some(v)
            });
        let live: HashMap<String, String> = verify
            .as_ref()
            .and_then(|v| v.get("live"))
            .and_then(|l| l.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|r| {
                        Some((
                            r.get("source")?.as_str()?.to_string(),
                            r.get("verdict")?.as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();

        let mut profiles = Vec::new();
        let mut any_applied = false;
        // The common shape's profiles, then a source's own profile records:
        // (workspace, id, name, client, kind, active).
        let sources: Vec<(String, i64, String, i64, String, bool)> = inv
            .profiles
            .iter()
            .map(|p| {
                (
                    p.workspace.clone(),
                    p.id,
                    p.name.clone(),
                    p.legacy_client_id,
                    p.auth_type.to_string(),
                    p.active,
                )
            })
            .chain(inv.records.iter().filter_map(|r| {
                Some((
                    r.workspace.clone(),
                    r.id,
                    r.name.clone(),
                    0,
                    "access-profile".to_string(),
                    r.active?,
                ))
            }))
            .collect();
        for (ws, id, name, client, kind, active) in sources {
            let p = SourceRef { workspace: ws, id };
            let mut row = ProfileRow {
                workspace: p.workspace.clone(),
                profile_id: id,
                profile_name: name,
                legacy_client_id: client,
                auth_type: kind,
                active,
                status: "planned".into(),
                client_name: None,
                client_id: None,
                key_name: None,
                key_id: None,
                target_id: None,
                live: None,
                note: None,
                source: None,
            };
            if let Some(x) = excluded.get(&(p.workspace.clone(), p.id.to_string())) {
                summary.excluded_profiles += 1;
                row.status = "excluded".into();
                row.note = Some(x.found.clone());
            } else if let Some(b) = blockers.get(&(p.workspace.clone(), p.id.to_string())) {
                summary.blocked_profiles += 1;
                row.status = "blocked".into();
                row.note = Some(format!("{}: {} — {}", b.field, b.found, b.fix));
            } else if let Some(op) = {
                let key = (p.workspace.clone(), p.id);
                if let Some((c, k)) = placed.get(&key) {
                    row.client_name = Some(c.name.clone());
                    row.client_id = ops.get(&client_op_id(&c.marker)).and_then(|o| o.remote_id);
                    row.key_name = Some(k.name.clone());
                    row.live = live.get(&k.source).cloned();
                    row.source = Some(k.source.clone());
                    let op = ops.get(&key_op_id(&k.source));
                    row.key_id = op.and_then(|o| o.remote_id);
                    Some(op)
                } else if let Some(item) = items.get(&key) {
                    row.key_name = Some(item.name.clone());
                    row.live = live.get(&item.source).cloned();
                    row.source = Some(item.source.clone());
                    let op = ops.get(&item_op_id(&item.source));
                    row.target_id = op.and_then(|o| o.remote_ref.clone());
                    Some(op)
                } else {
                    None
                }
            } {
                match op.map(|o| o.state) {
                    Some(OpState::Done) => {
                        any_applied = true;
                        summary.migrated_keys += 1;
                        row.status = "migrated".into();
                    }
                    Some(OpState::Failed) => {
                        any_applied = true;
                        summary.failed += 1;
                        row.status = "failed".into();
                        row.note = op.and_then(|o| o.error.clone());
                    }
                    Some(OpState::Intent) => {
                        any_applied = true;
                        summary.pending_keys += 1;
                        row.status = "in_progress".into();
                    }
                    _ => summary.pending_keys += 1,
                }
            }
            profiles.push(row);
        }
        let charts = charts(&profiles, &plan.findings, db)?;
        Ok(Report {
            format_version: FORMAT_VERSION,
            generated_at: crate::state::now(),
            stage: if any_applied { "run" } else { "plan" },
            state_file: db.path().display().to_string(),
            mapping: mapping.origin.clone(),
            api: db.meta("export.api")?.unwrap_or_else(|| "developer".into()),
            deadlines: DeadlineView {
                now: now.to_rfc3339(),
                legacy_frozen: mapping
                    .deadlines
                    .map(|d| d.legacy_frozen.to_rfc3339())
                    .unwrap_or_default(),
                legacy_tokens_invalid: mapping
                    .deadlines
                    .map(|d| d.legacy_tokens_invalid.to_rfc3339())
                    .unwrap_or_default(),
                stance,
                stance_code: code.into(),
            },
            summary,
            verify,
            field_treatments: field_treatments(&mapping),
            adoption: adoption::view(db)?,
            clients,
            profiles,
            findings: plan.findings,
            charts,
            words,
        })
    }
}

fn field_treatments(mapping: &Mapping) -> Vec<FieldTreatment> {
    mapping
        .file
        .fields
        .iter()
        .map(|(field, rule)| {
            let mut applies = Vec::new();
            if !rule.auth_types.is_empty() {
                applies.push(format!("auth types {}", rule.auth_types.join(", ")));
            }
            if let Some(w) = &rule.when {
                applies.push(format!("when {field} = {w}"));
            }
            FieldTreatment {
                field: field.clone(),
                treatment: rule.treatment.clone(),
                applies_to: if applies.is_empty() {
                    "all profiles".into()
                } else {
                    applies.join("; ")
                },
                message: rule.message.clone(),
            }
        })
        .collect()
}

fn charts(profiles: &[ProfileRow], findings: &[Finding], db: &StateDb) -> Result<Charts> {
    let mut by_ws: BTreeMap<String, Outcomes> = BTreeMap::new();
    let mut by_auth: BTreeMap<String, Outcomes> = BTreeMap::new();
    for p in profiles {
        by_ws
            .entry(p.workspace.clone())
            .or_insert_with(|| Outcomes {
                label: format!("workspace {}", p.workspace),
                ..Outcomes::default()
            })
            .add(&p.status);
        by_auth
            .entry(p.auth_type.clone())
            .or_insert_with(|| Outcomes {
                label: p.auth_type.clone(),
                ..Outcomes::default()
            })
            .add(&p.status);
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for f in findings {
        *kinds.entry(f.kind.to_string()).or_default() += 1;
    }
    let mut by_workspace: Vec<Outcomes> = by_ws.into_values().collect();
    by_workspace.sort_by_key(|o| {
        o.label
            .trim_start_matches("workspace ")
            .parse::<u64>()
            .unwrap_or(u64::MAX)
    });
    Ok(Charts {
        by_workspace,
        by_auth_type: by_auth.into_values().collect(),
        findings_by_kind: kinds.into_iter().collect(),
        rate: rate_view(db)?,
    })
}

/// Bucket the last apply's per-second request counts into about 60 points.
fn rate_view(db: &StateDb) -> Result<Option<RateView>> {
    let Some((_, _, _, detail)) = db
        .events(Some("apply.end"))?
        .into_iter()
        .rev()
        .find(|(_, _, _, d)| d.contains("\"timeline\""))
    else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(&detail)?;
    let timeline: Vec<(i64, u64)> = v["timeline"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_i64()?, p.get(1)?.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    let (Some(first), Some(last)) = (timeline.first(), timeline.last()) else {
        return Ok(None);
    };
    let span = last.0 - first.0 + 1;
    let bucket = (span / 60).max(1);
    let mut buckets: BTreeMap<i64, u64> = BTreeMap::new();
    for (t, n) in &timeline {
        *buckets.entry((t - first.0) / bucket).or_default() += n;
    }
    let points = (0..=(span - 1) / bucket)
        .map(|b| {
            (
                b * bucket,
                *buckets.get(&b).unwrap_or(&0) as f64 * 60.0 / bucket as f64,
            )
        })
        .collect();
    Ok(Some(RateView {
        limit_per_minute: v["budget_per_minute"].as_f64(),
        bucket_seconds: bucket,
        points,
        total_requests: timeline.iter().map(|(_, n)| n).sum(),
    }))
}
