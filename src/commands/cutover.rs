//! `keyshift cutover`: disable the source profiles whose replacements all verified live —
//! only while the source still accepts writes. After the freeze there is nothing to disable:
//! the legacy tokens stop working on their own date. Journaled and resumable.

use anyhow::Result;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

use super::judged_now;
use crate::cli::CutoverArgs;
use crate::context::Ctx;
use crate::engine::{self, CredSpec};
use crate::errors::{ExitCode, KeyshiftError};
use crate::state::{OpKind, OpState, StateDb};

pub fn op_id(source: &str) -> String {
    format!("cutover/{source}")
}

pub async fn run(ctx: &Ctx, args: &CutoverArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let _lock = super::writer_lock(ctx, "cutover")?;
    let mapping = db.recorded_mapping()?;
    let now = judged_now(ctx, &db)?;
    let p = &ctx.printer;
    let pair = crate::registry::Pair::recorded(ctx, &db)?;
    if let Some(d) = &mapping.deadlines {
        if let Some(file) = pair.source_file() {
            p.line(format!(
                "nothing to disable: the source of this run is a file ({}, keyshift export \
                 --from), not the legacy API, so keyshift cannot disable legacy profiles. If the \
                 legacy API still runs them, disable them there; after the sunset ({}) their \
                 tokens no longer work anyway.",
                file.display(),
                d.legacy_tokens_invalid.format("%Y-%m-%d")
            ));
            return Ok(ExitCode::Ok);
        }
        if now >= d.legacy_frozen {
            p.line(format!(
                "nothing to disable: legacy clients and profiles are frozen since {} and can no \
                 longer be modified; their tokens stop working on their own on {}. Make sure every \
                 consumer uses its new key before then (keyshift handover, keyshift verify --live).",
                d.legacy_frozen.format("%Y-%m-%d"),
                d.legacy_tokens_invalid.format("%Y-%m-%d")
            ));
            return Ok(ExitCode::Ok);
        }
    }
    let verdicts = last_live_verdicts(&db)?.ok_or_else(|| {
        KeyshiftError::Usage(
            "cutover acts only on keys proven live — run `keyshift verify --live` first".into(),
        )
    })?;
    let plan = db.load_plan()?;
    let source = pair.source()?;
    let active = source.exported_active(&db.load_inventory()?);
    // A profile is disabled once every one of its replacements verified live (one per
    // holder on a per-holder plan).
    let eligible = |v: Option<&String>| {
        let v = v.map(String::as_str);
        v == Some("ok") || (args.include_unverifiable && v == Some("unverifiable"))
    };
    let mut profiles: BTreeMap<(String, i64), bool> = BTreeMap::new();
    for u in engine::units(&plan) {
        for cred in &u.creds {
            let profile = match cred.spec {
                CredSpec::Key(k) => Some(k.profile_id),
                CredSpec::Item(i) => i.profile_id.parse::<i64>().ok(),
            };
            if let Some(id) = profile {
                let ok = eligible(verdicts.get(cred.source()));
                *profiles
                    .entry((u.workspace.to_string(), id))
                    .or_insert(true) &= ok;
            }
        }
    }
    let planned_active = profiles.iter().filter(|(k, _)| active.contains(*k));
    let chosen: Vec<(String, i64)> = planned_active
        .clone()
        .filter(|(_, ok)| **ok)
        .map(|(k, _)| k.clone())
        .collect();
    let skipped = planned_active.count() - chosen.len();
    for (ws, id) in &chosen {
        let marker = source.profile_marker(ws, *id);
        db.ensure_op(&op_id(&marker), OpKind::DisableProfile, ws, &marker, None)?;
    }
    let ops: HashMap<String, OpState> = db
        .operations()?
        .into_iter()
        .map(|o| (o.op_id, o.state))
        .collect();
    let todo: Vec<&(String, i64)> = chosen
        .iter()
        .filter(|(ws, id)| ops.get(&op_id(&source.profile_marker(ws, *id))) != Some(&OpState::Done))
        .collect();
    let noun = source.profile_noun();
    if todo.is_empty() {
        p.line(format!(
            "nothing to do: {} {noun}(s) already disabled; {skipped} active profile(s) wait for \
             a live-verified replacement",
            chosen.len()
        ));
        return Ok(ExitCode::Ok);
    }
    let question = format!(
        "cutover will disable {} {noun}(s) whose new keys verified live — their consumers must \
         already use the new keys; {skipped} other active profile(s) stay",
        todo.len()
    );
    if !super::confirm(ctx, args.yes, &question)? {
        p.line("nothing was done");
        return Ok(ExitCode::Ok);
    }
    let (mut done, mut failed, mut frozen) = (0usize, 0usize, false);
    let bar = p.progress(todo.len() as u64, "cutover");
    for (ws, profile_id) in todo {
        let id = op_id(&source.profile_marker(ws, *profile_id));
        db.mark_intent(
            &id,
            json!({ "request": "disable_profile", "profile_id": profile_id }),
        )
        .await?;
        match source.set_profile_active(ws, *profile_id, false).await {
            Ok(()) => {
                db.mark_done(&id, *profile_id, json!({ "profile_id": profile_id }))
                    .await?;
                done += 1;
            }
            Err(e)
                if mapping
                    .deadlines
                    .is_some_and(|d| source.is_frozen(&e, now, d.legacy_frozen)) =>
            {
                db.mark_failed(&id, &format!("{noun} {profile_id}: frozen — {e}"))
                    .await?;
                frozen = true;
                failed += 1;
                break;
            }
            Err(e) => {
                db.mark_failed(&id, &format!("{noun} {profile_id}: {e}"))
                    .await?;
                failed += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    db.event(
        "cutover",
        None,
        &json!({ "disabled": done, "failed": failed, "frozen": frozen }),
    )?;
    p.line(format!(
        "cutover: disabled {done} {noun}(s); {failed} failed; {skipped} wait for a \
         live-verified replacement.{}",
        source.disable_note()
    ));
    if let (true, Some(d)) = (frozen, &mapping.deadlines) {
        p.line(format!(
            "the source refused legacy writes: it is frozen. Nothing more can be disabled; legacy \
             tokens stop working on {}",
            d.legacy_tokens_invalid.format("%Y-%m-%d")
        ));
    }
    p.event(
        "cutover.done",
        json!({ "disabled": done, "failed": failed, "frozen": frozen }),
    );
    Ok(if failed > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}

/// `source → verdict` from the last `verify --live`.
pub fn last_live_verdicts(db: &StateDb) -> Result<Option<HashMap<String, String>>> {
    for (_, _, _, detail) in db.events(Some("verify"))?.into_iter().rev() {
        let v: serde_json::Value = serde_json::from_str(&detail)?;
        if let Some(items) = v.get("live").and_then(|l| l.as_array()) {
            return Ok(Some(
                items
                    .iter()
                    .filter_map(|r| {
                        Some((
                            r.get("source")?.as_str()?.to_string(),
                            r.get("verdict")?.as_str()?.to_string(),
                        ))
                    })
                    .collect(),
            ));
        }
    }
    Ok(None)
}
