//! `keyshift cutover`: a wave — switch off the old credentials of the consumers that moved
//! (latest adoption snapshot) and whose new credentials verified live, narrowed by the scope
//! flags; `--undo` gives them back (`undo.rs`). Only while the source accepts writes.
//! Journaled and resumable (`engine::switch`); each run is a numbered wave.

use anyhow::Result;
use serde_json::json;

use crate::cli::CutoverArgs;
use crate::context::Ctx;
use crate::engine::rollout::{self, Grounds, Scope};
use crate::engine::switch;
use crate::errors::{ExitCode, KeyshiftError};
use crate::state::rollout::Wave;
use crate::state::{OpKind, StateDb};

pub async fn run(ctx: &Ctx, args: &CutoverArgs) -> Result<ExitCode> {
    let scope = Scope {
        consumers: args.consumer.clone(),
        clients: args.client.clone(),
        profiles: args.profile.clone(),
        workspaces: args.workspace.clone(),
    };
    if args.without_evidence && scope.is_empty() {
        return Err(KeyshiftError::Usage(
            "--without-evidence takes consumers without `moved` evidence, so it needs a scope: \
             add --consumer, --client, --profile or --workspace"
                .into(),
        )
        .into());
    }
    if args.wave.is_some() && !args.undo {
        return Err(KeyshiftError::Usage("--wave is for --undo".into()).into());
    }
    let db = StateDb::open(&ctx.state_path, false)?;
    let _lock = super::writer_lock(ctx, "cutover")?;
    let pair = crate::registry::Live::recorded(ctx, &db, None)?;
    let mapping = &pair.mapping;
    let now = pair.judged_now().await;
    let p = &ctx.printer;
    if let Some(d) = &mapping.deadlines {
        if let Some(file) = pair.source_file() {
            p.line(format!(
                "nothing to switch: the source of this run is a file ({}, keyshift export \
                 --from), not the legacy API, so keyshift cannot disable or re-enable legacy \
                 profiles. `keyshift adoption` still shows who calls with legacy tokens; their \
                 tokens stop working on {}.",
                file.display(),
                d.legacy_tokens_invalid.format("%Y-%m-%d")
            ));
            return Ok(ExitCode::Ok);
        }
        if now >= d.legacy_frozen {
            p.line(format!(
                "nothing to switch: the vendor no longer allows it — legacy clients and profiles \
                 are frozen since {}; their tokens stop working on their own on {}. `keyshift \
                 adoption` shows who still calls with legacy tokens before then, and who broke \
                 after.",
                d.legacy_frozen.format("%Y-%m-%d"),
                d.legacy_tokens_invalid.format("%Y-%m-%d")
            ));
            return Ok(ExitCode::Ok);
        }
    }
    let inv = db.load_inventory()?;
    let scope = scope.resolve(&inv.workspaces);
    let plan = db.load_planned()?;
    let ops = db.operations()?;
    let consumers = pair.consumers(&inv, &plan, &ops)?;
    let source = pair.source()?;
    let run = switch::Run {
        db: &db,
        source: source.as_ref(),
        printer: p,
        crash: &ctx.crash,
        active: args.undo,
        kind: if args.undo {
            OpKind::EnableProfile
        } else {
            OpKind::DisableProfile
        },
        parent: None,
        now,
        frozen_at: mapping.deadlines.map(|d| d.legacy_frozen),
        stop: None,
    };
    // What an earlier wave left open is finished first, in that wave.
    let kind = run.kind;
    let open = rollout::open_switches(&ops, kind);
    if !open.is_empty() && !args.dry_run {
        let code = super::undo::resume(ctx, &open, &run).await?;
        if code != ExitCode::Ok {
            return Ok(code);
        }
    }
    if args.undo {
        return super::undo::run(ctx, args, &scope, &consumers, &db.operations()?, run).await;
    }
    let verdicts = super::verify::last_live_verdicts(&db)?.ok_or_else(|| {
        KeyshiftError::Usage(
            "cutover acts only on credentials proven live — run `keyshift verify --live` first"
                .into(),
        )
    })?;
    let snapshot = db.latest_snapshot()?;
    let judged = match &snapshot {
        Some(s) => db.snapshot_consumers(s.id)?,
        None => Vec::new(),
    };
    let grounds = Grounds {
        snapshot: snapshot.as_ref(),
        judged: &judged,
        verdicts: &verdicts,
        include_unverifiable: args.include_unverifiable,
        without_evidence: args.without_evidence,
        now,
    };
    let off = rollout::switched_off(&db.operations()?, &db.waves()?);
    let active = source.exported_active(&inv);
    let sel = rollout::select(&consumers, &scope, &grounds, source.as_ref(), &active, &off);
    let noun = source.profile_noun();
    for (c, why) in &sel.taken {
        p.line(format!("  take  {} (consumer {}): {why}", c.name, c.id));
        p.event(
            "cutover.take",
            json!({ "consumer": c.id, "workspace": c.workspace, "why": why }),
        );
    }
    // Every reason on a dry run or an empty wave; otherwise the ones that hold back a
    // consumer whose evidence alone would have let it go.
    let held = |why: &str| why.contains("not verified live") || why.contains("stays on");
    for (c, why) in &sel.waiting {
        if args.dry_run || sel.switches.is_empty() || held(why) {
            p.line(format!("  wait  {} (consumer {}): {why}", c.name, c.id));
        }
        p.event(
            "cutover.wait",
            json!({ "consumer": c.id, "workspace": c.workspace, "why": why }),
        );
    }
    if sel.switches.is_empty() {
        let why = sel.blocked.clone().unwrap_or_else(|| {
            if sel.taken.is_empty() {
                "no consumer in scope has moved with verified new credentials (see the reasons \
                 above; `keyshift adoption` shows the evidence)"
                    .into()
            } else {
                format!("their {noun}s are already off, or shared with consumers that wait")
            }
        });
        p.line(format!("nothing to cut over: {why}"));
        p.event("cutover.done", json!({ "disabled": 0, "why": why }));
        return Ok(ExitCode::Ok);
    }
    let question = format!(
        "cutover wave: disable {} {noun}(s) of {} consumer(s) — their old credentials stop \
         working; {} consumer(s) in scope wait",
        sel.switches.len(),
        sel.taken.len(),
        sel.waiting.len()
    );
    if !super::undo::go_ahead(ctx, args, &question)? {
        return Ok(ExitCode::Ok);
    }
    let wave = Wave {
        n: 0,
        kind: "cutover".into(),
        at: now,
        snapshot: snapshot.as_ref().map(|s| s.id),
        consumers: sel
            .taken
            .iter()
            .map(|(c, w)| (c.id.clone(), w.clone()))
            .collect(),
        profiles: Vec::new(),
        scope: scope.describe(),
        of_wave: None,
    };
    let mut items = sel.switches;
    let (n, out) = super::undo::in_wave(run, wave, &mut items, |_, marker| {
        rollout::cutover_op(marker)
    })
    .await?;
    super::undo::summarize(ctx, &db, "cutover", n, &out, source.disable_note())
}
