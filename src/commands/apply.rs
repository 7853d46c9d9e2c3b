//! `keyshift apply`: execute the saved plan, resumably, on the recorded pair's target. The
//! engine does the work (`engine::apply`); this file checks the plan, asks, and reports.

use anyhow::Result;
use serde_json::json;
use std::sync::Arc;

use crate::cli::ApplyArgs;
use crate::context::Ctx;
use crate::engine::{self, apply::Apply};
use crate::errors::{ExitCode, KeyshiftError};
use crate::secrets::{SecretSink, SinkMode};
use crate::state::{OpState, Operation, StateDb};

pub async fn run(ctx: &Ctx, args: &ApplyArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let _lock = super::writer_lock(ctx, "apply")?;
    let plan = db.load_planned()?;
    let export_fp = db.meta("export.fingerprint")?;
    let plan_fp = db.meta("plan.fingerprint")?;
    if plan_fp.is_none() {
        return Err(KeyshiftError::State(format!(
            "state file {} has no plan — run `keyshift plan` first",
            ctx.state_path.display()
        ))
        .into());
    }
    if plan_fp != export_fp {
        return Err(KeyshiftError::StalePlan(
            "the plan was made from an older export — re-run `keyshift plan`".into(),
        )
        .into());
    }
    if args.retry_failed {
        let n = db.reset_failed()?;
        if n > 0 {
            ctx.printer
                .line(format!("retrying {n} failed operation(s)"));
        }
    }
    let pair = crate::registry::Live::recorded(ctx, &db, args.max_rate)?;
    let target = pair.target()?;
    let words = target.words();
    let units = engine::units(&plan);
    let standing = engine::apply::standing(&units, &db.op_briefs()?);
    let p = &ctx.printer;
    if standing.open_units == 0 {
        if standing.failed > 0 {
            p.line(format!(
                "{} operation(s) failed earlier; run `keyshift apply --retry-failed` to try again",
                standing.failed
            ));
            return Ok(ExitCode::Partial);
        }
        p.line(format!(
            "nothing to do: all {} planned {} exist",
            plan.key_count(),
            words.credentials
        ));
        p.event(
            "apply.done",
            json!({ "created_clients": 0, "created_keys": 0, "failed": 0 }),
        );
        return Ok(ExitCode::Ok);
    }
    let containers = if standing.containers_todo > 0 {
        format!("{} {} and ", standing.containers_todo, words.containers)
    } else {
        String::new()
    };
    let question = format!(
        "apply will create up to {containers}{} {} in {} workspace(s)",
        standing.creds_todo, words.credentials, standing.workspaces
    );
    if !super::confirm(ctx, args.yes, &question)? {
        p.line("nothing was done");
        return Ok(ExitCode::Ok);
    }
    engine::check_source(&db, pair.source()?.as_ref(), export_fp).await?;

    let signing = ctx.signing_secrets()?.unwrap_or_default();
    let sink = open_sink(ctx, args).await?;
    let stop = engine::ctrl_c_flag();
    db.event(
        "apply.start",
        None,
        &json!({ "clients": standing.containers_todo, "keys": standing.creds_todo }),
    )?;
    let started = std::time::Instant::now();
    let out = engine::apply::run(
        Apply {
            db: &db,
            target: target.as_ref(),
            sink: &sink,
            signing: &signing,
            crash: ctx.crash.clone(),
            printer: p,
            stop: stop.clone(),
            concurrency: usize::from(args.concurrency),
            todo: standing.creds_todo,
        },
        &units,
    )
    .await?;
    if out.interrupted {
        p.warn("interrupted: in-flight requests abandoned; the next apply reconciles them");
    }
    let requests = target.http().requests_sent();
    let summary = json!({
        "created_clients": out.created_containers,
        "created_keys": out.created,
        "created": out.created,
        "recovered_keys": out.recovered,
        "recovered": out.recovered,
        "failed": out.failed.len(),
        "unfinished": out.unfinished.len(),
        "requests": requests,
        "seconds": started.elapsed().as_secs_f64(),
        "secrets": sink.path().display().to_string(),
        "timeline": target.http().timeline(),
        "budget_per_minute": units.first().and_then(|u| target.per_minute(u.workspace)),
    });
    db.event("apply.end", None, &summary)?;
    let containers = if words.containers.is_empty() {
        String::new()
    } else {
        format!("{} {} and ", out.created_containers, words.containers)
    };
    p.line(format!(
        "apply: created {containers}{} {} ({} recovered by {}) with {requests} requests in \
         {:.1}s; secrets {} in {}",
        out.created,
        words.credentials,
        out.recovered,
        words.renewal,
        started.elapsed().as_secs_f64(),
        sink.mode().describe(),
        sink.path().display()
    ));
    print_ops(p, "failed", &out.failed);
    p.event("apply.done", summary);
    if out.interrupted {
        p.line("interrupted: run `keyshift apply` again to resume");
        return Ok(ExitCode::Partial);
    }
    if !out.unfinished.is_empty() {
        print_ops(p, "open", &out.unfinished);
        p.line(format!(
            "{} operation(s) still open: the vendor's answers were lost or its lookups kept \
             failing (see the warnings above); run `keyshift apply` again — it looks them up \
             before it sends anything",
            out.unfinished.len()
        ));
    }
    if !out.failed.is_empty() {
        p.line("some operations failed: fix what the messages say, then `keyshift apply --retry-failed`");
    }
    if !out.failed.is_empty() || !out.unfinished.is_empty() {
        return Ok(ExitCode::Partial);
    }
    p.line("next: keyshift verify");
    Ok(ExitCode::Ok)
}

async fn open_sink(ctx: &Ctx, args: &ApplyArgs) -> Result<SecretSink> {
    let mode = match (
        &args.secrets_cmd,
        &args.secrets_recipient,
        &args.secrets_vault,
    ) {
        (Some(cmd), _, _) => SinkMode::Command(cmd.clone()),
        (None, Some(r), _) => SinkMode::age(r)?,
        (None, None, Some(v)) => {
            let target = crate::secrets::vault::VaultTarget::parse(v)?;
            let client = crate::secrets::vault::VaultClient::from_env(
                &ctx.env,
                ctx.net()?,
                ctx.allow_insecure_http,
            )?
            .with_printer(ctx.printer.clone());
            // Before any key is made: a token that cannot write there would leave every new
            // key without its secret.
            client.check_access(&target).await?;
            SinkMode::Vault(Arc::new(crate::secrets::vault::VaultSink {
                client,
                target,
                crash: ctx.crash.clone(),
            }))
        }
        (None, None, None) => SinkMode::Plain,
    };
    SecretSink::open(&ctx.sink_path()?, mode)
}

/// Up to 20 operations, one line each (`failed: target — reason`, `open: target`).
fn print_ops(p: &crate::printer::Printer, how: &str, ops: &[Operation]) {
    for o in ops.iter().take(20) {
        match (&o.error, o.state) {
            (Some(e), OpState::Failed) => p.line(format!("  {how}: {} — {e}", o.target)),
            _ => p.line(format!("  {how}: {}", o.target)),
        }
    }
    if ops.len() > 20 {
        p.line(format!("  … and {} more (keyshift report)", ops.len() - 20));
    }
}
