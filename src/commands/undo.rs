//! `keyshift cutover --undo`: switch back on what cutover switched off, within the scope or
//! of one wave; no new credential is touched. Each undo is a wave of its own, journaled and
//! resumable; the cutover operations it reverses become pending again, so a later wave may
//! switch them off anew.

use anyhow::Result;
use serde_json::json;

use crate::cli::CutoverArgs;
use crate::context::Ctx;
use crate::engine::adoption::Consumer;
use crate::engine::rollout::{self, Scope};
use crate::engine::switch::{self, Switched};
use crate::errors::{ExitCode, KeyshiftError};
use crate::state::rollout::Wave;
use crate::state::{Operation, StateDb};

pub async fn run(
    ctx: &Ctx,
    args: &CutoverArgs,
    scope: &Scope,
    consumers: &[Consumer],
    ops: &[Operation],
    run: switch::Run<'_>,
) -> Result<ExitCode> {
    if scope.is_empty() && args.wave.is_none() {
        return Err(KeyshiftError::Usage(
            "--undo needs a scope: --consumer, --client, --profile, --workspace or --wave N \
             (`keyshift rollback` undoes everything, new keys included)"
                .into(),
        )
        .into());
    }
    let p = &ctx.printer;
    let source = run.source;
    let mut items = rollout::undo_selection(consumers, scope, args.wave, ops, source);
    let noun = source.profile_noun();
    if items.is_empty() {
        p.line(format!(
            "nothing to undo: no {noun} that cutover switched off is in this scope{}",
            args.wave
                .map(|w| format!(" (wave {w})"))
                .unwrap_or_default()
        ));
        return Ok(ExitCode::Ok);
    }
    for s in &items {
        p.line(format!(
            "  give back {noun} {} (workspace {})",
            s.profile, s.workspace
        ));
    }
    let question = format!(
        "cutover --undo: re-enable {} {noun}(s) — their old credentials work again; every new \
         credential stays",
        items.len()
    );
    if !go_ahead(ctx, args, &question)? {
        return Ok(ExitCode::Ok);
    }
    let wave = Wave {
        n: 0,
        kind: "undo".into(),
        at: run.now,
        snapshot: None,
        consumers: consumers
            .iter()
            .filter(|c| !scope.is_empty() && scope.admits(c))
            .map(|c| (c.id.clone(), "undo".to_string()))
            .collect(),
        profiles: Vec::new(),
        scope: scope.describe(),
        of_wave: args.wave,
    };
    let db = run.db;
    let (n, out) = in_wave(run, wave, &mut items, rollout::undo_op).await?;
    // The cutover switches it reversed are forgotten: a later wave may switch them off anew
    // (the waves and events keep the history).
    for s in &out.done {
        db.forget_op(&rollout::cutover_op(&s.marker))?;
    }
    summarize(ctx, db, "undo", n, &out, "")
}

/// On a dry run, say what would happen; otherwise ask (or take `--yes`). `false`: write
/// nothing.
pub fn go_ahead(ctx: &Ctx, args: &CutoverArgs, question: &str) -> Result<bool> {
    let p = &ctx.printer;
    if args.dry_run {
        p.line(format!("dry run: {question}. Nothing was written."));
        return Ok(false);
    }
    if !super::confirm(ctx, args.yes, question)? {
        p.line("nothing was done");
        return Ok(false);
    }
    Ok(true)
}

/// Record a new wave (its profiles from `items`), give each switch its journal id in that
/// wave (`op_id(wave, marker)`), and switch them with Ctrl-C heeded.
pub async fn in_wave(
    run: switch::Run<'_>,
    mut wave: Wave,
    items: &mut [switch::Switch],
    op_id: impl Fn(i64, &str) -> String,
) -> Result<(i64, Switched)> {
    wave.profiles = items
        .iter()
        .map(|s| format!("{}/{}", s.workspace, s.profile))
        .collect();
    let n = run.db.start_wave(&wave)?;
    for s in items.iter_mut() {
        s.op_id = op_id(n, &s.marker);
    }
    let parent = rollout::wave_parent(n);
    let stop = crate::engine::ctrl_c_flag();
    let out = switch::Run {
        parent: Some(&parent),
        stop: Some(&stop),
        ..run
    }
    .go(items)
    .await?;
    Ok((n, out))
}

/// Finish the switches earlier waves left open (`(wave parent, switch)`), each in its wave;
/// an undo's finished switch-ons forget the cutover switches they reverse.
pub async fn resume(
    ctx: &Ctx,
    open: &[(String, switch::Switch)],
    run: &switch::Run<'_>,
) -> Result<ExitCode> {
    let mut waves: std::collections::BTreeMap<&str, Vec<switch::Switch>> = Default::default();
    for (parent, s) in open {
        waves.entry(parent.as_str()).or_default().push(s.clone());
    }
    let mut code = ExitCode::Ok;
    for (parent, items) in waves {
        let n: i64 = parent.trim_start_matches("wave:").parse().unwrap_or(0);
        ctx.printer.line(format!(
            "wave {n}: {} switch(es) left open by an earlier run — finishing them first",
            items.len()
        ));
        let out = switch::Run {
            parent: Some(parent),
            ..*run
        }
        .go(&items)
        .await?;
        if run.active {
            for s in &out.done {
                run.db.forget_op(&rollout::cutover_op(&s.marker))?;
            }
        }
        let kind = if run.active { "undo" } else { "cutover" };
        code = code.and(summarize(ctx, run.db, kind, n, &out, "")?);
    }
    Ok(code)
}

/// Print and journal how a wave ended; exit 6 when anything is left to do.
pub fn summarize(
    ctx: &Ctx,
    db: &StateDb,
    kind: &str,
    n: i64,
    out: &Switched,
    note: &str,
) -> Result<ExitCode> {
    let p = &ctx.printer;
    let verb = if kind == "undo" {
        "re-enabled"
    } else {
        "disabled"
    };
    for (s, why) in &out.failed {
        p.line(format!("  failed: {} — {why}", s.marker));
    }
    let summary = json!({ "wave": n, "kind": kind, "done": out.done.len(),
                          "failed": out.failed.len(), "frozen": out.frozen, "stopped": out.stopped });
    db.event(kind, None, &summary)?;
    p.line(format!(
        "{kind} wave {n}: {verb} {} profile(s); {} failed{}.{note}",
        out.done.len(),
        out.failed.len(),
        if out.stopped {
            "; stopped (Ctrl-C) — run it again to finish"
        } else {
            ""
        }
    ));
    if out.frozen {
        p.line("the source refused: it is frozen. The vendor no longer allows switching legacy profiles.");
    }
    if !out.failed.is_empty() && !out.frozen {
        p.line("run the same command again to retry what failed");
    }
    p.event(&format!("{kind}.done"), summary);
    Ok(if out.failed.is_empty() && !out.stopped {
        ExitCode::Ok
    } else {
        ExitCode::Partial
    })
}
