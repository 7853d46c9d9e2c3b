//! `keyshift rollback`: undo a run from its journal, in reverse order — re-enable the source
//! profiles cutover disabled (while the source allows), then remove what apply created
//! (`engine::rollback`: every credential disabled then deleted, then the containers; each
//! confirmed as ours first). Journaled and resumable; afterwards the create operations are
//! pending again, so a later apply would create everything anew.

use anyhow::Result;
use serde_json::json;
use std::collections::HashMap;

use super::judged_now;
use crate::cli::RollbackArgs;
use crate::context::Ctx;
use crate::engine;
use crate::engine::switch::{self, Switch};
use crate::errors::ExitCode;
use crate::model::Words;
use crate::state::{OpKind, OpState, Operation, StateDb};

pub async fn run(ctx: &Ctx, args: &RollbackArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let _lock = super::writer_lock(ctx, "rollback")?;
    let plan = db.load_planned()?;
    let ops: HashMap<String, Operation> = db
        .operations()?
        .into_iter()
        .map(|o| (o.op_id.clone(), o))
        .collect();
    let units = engine::units(&plan);
    let touched = engine::rollback::touched(&units, &ops);
    let cutover_done: Vec<&Operation> = ops
        .values()
        .filter(|o| o.kind == OpKind::DisableProfile && o.state == OpState::Done)
        .collect();
    let pair = crate::registry::Live::recorded(ctx, &db, None)?;
    let p = &ctx.printer;
    if let Some(file) = pair.source_file() {
        p.line(format!(
            "the source of this run is a file ({}, keyshift export --from): no legacy \
             profile was disabled by keyshift, so none is re-enabled; only what apply created \
             is undone",
            file.display()
        ));
    }
    if touched.is_empty() && cutover_done.is_empty() {
        p.line("nothing to roll back: this state file records no created object");
        return Ok(ExitCode::Ok);
    }
    let target = pair.target()?;
    let words = target.words();
    let containers = if words.containers.is_empty() {
        String::new()
    } else {
        format!(" and {}", words.containers)
    };
    let question = format!(
        "rollback will re-enable {} source profile(s), then disable and delete the {}{containers} \
         keyshift created for {} planned group(s)",
        cutover_done.len(),
        words.credentials,
        touched.len()
    );
    if !super::confirm(ctx, args.yes, &question)? {
        p.line("nothing was done");
        return Ok(ExitCode::Ok);
    }
    let now = judged_now(ctx, &db)?;
    let mut tally = Tally::default();

    // 1. Source profiles first, so their consumers work again before keys go away.
    if !cutover_done.is_empty() {
        let source = pair.source()?;
        let items: Vec<Switch> = cutover_done
            .iter()
            .filter_map(|op| {
                let profile = op
                    .remote_ref
                    .clone()
                    .or_else(|| op.remote_id.map(|n| n.to_string()))?;
                Some(Switch {
                    op_id: format!("rollback/enable/{}", op.target),
                    workspace: op.workspace.clone(),
                    profile,
                    marker: op.target.clone(),
                })
            })
            .collect();
        let out = switch::Run {
            db: &db,
            source: source.as_ref(),
            printer: p,
            crash: &ctx.crash,
            active: true,
            kind: OpKind::EnableProfile,
            parent: None,
            now,
            frozen_at: pair.mapping.deadlines.map(|d| d.legacy_frozen),
            stop: None,
        }
        .go(&items)
        .await?;
        for s in &out.done {
            db.reopen(&format!("cutover/{}", s.marker))?;
        }
        tally.enabled += out.done.len();
        tally.problems += out.failed.len();
    }

    // 2. What apply created, newest first.
    let removed = engine::rollback::run(&db, target.as_ref(), p, &touched).await?;
    tally.disabled = removed.disabled;
    tally.keys = removed.deleted;
    tally.clients = removed.containers;
    tally.problems += removed.problems;
    finish(ctx, &db, tally, &words)
}

fn finish(ctx: &Ctx, db: &StateDb, tally: Tally, words: &Words) -> Result<ExitCode> {
    let failed = tally.problems;
    let p = &ctx.printer;
    let summary = json!({ "enabled_profiles": tally.enabled, "disabled_keys": tally.disabled,
                          "deleted_keys": tally.keys, "deleted_clients": tally.clients, "failed": failed });
    db.event("rollback", None, &summary)?;
    if failed == 0 {
        // A finished rollback leaves no journal of its own behind: the run can start afresh.
        db.forget(&[
            OpKind::EnableProfile,
            OpKind::DisableKey,
            OpKind::DeleteKey,
            OpKind::DeleteClient,
            OpKind::DisableProfile,
        ])?;
    }
    // In the target's words: a target without containers deletes none.
    let containers = if words.containers.is_empty() {
        String::new()
    } else {
        format!(", deleted {} {}", tally.clients, words.containers)
    };
    p.line(format!(
        "rollback: re-enabled {} source profile(s), disabled {} and deleted {} {}{containers}; \
         {failed} problem(s)",
        tally.enabled, tally.disabled, tally.keys, words.credentials
    ));
    p.event("rollback.done", summary);
    Ok(if failed > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}

#[derive(Default)]
struct Tally {
    enabled: usize,
    disabled: usize,
    keys: usize,
    clients: usize,
    problems: usize,
}
