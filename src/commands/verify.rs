//! `keyshift verify`: read every target object back and compare it with the plan field by
//! field (`engine::verify`); with `--live`, prove each credential authenticates. Drift exits
//! 4, each difference listed.

use anyhow::Result;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

use crate::cli::VerifyArgs;
use crate::context::Ctx;
use crate::engine::{self, verify::Sunk, verify::Verdict};
use crate::errors::ExitCode;
use crate::state::{OpState, StateDb};

pub async fn run(ctx: &Ctx, args: &VerifyArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let plan = db.load_planned()?;
    let pair = crate::registry::Live::recorded(ctx, &db, None)?;
    let target = pair.target()?;
    let units = engine::units(&plan);
    let states: HashMap<String, OpState> = db
        .op_briefs()?
        .into_iter()
        .map(|(id, o)| (id, o.state))
        .collect();
    // The last record per credential is its usable secret. Without --live only its id
    // matters: keep that, not 100,000 full records.
    let mut sunk = Sunk::default();
    crate::secrets::scan_sink(&ctx.sink_path()?, ctx.age_identity()?.as_ref(), |r| {
        sunk.ids.insert(r.op_id.clone(), r.key_id.clone());
        if args.live {
            sunk.records.insert(r.op_id.clone(), r);
        }
    })?;
    // Vault receipts: the probes need the secrets themselves, read from the store.
    ctx.fetch_vault_secrets(sunk.records.values_mut()).await?;
    let prober = if args.live {
        let inv = db.load_inventory_of(&["workspace", "collection"])?;
        Some(pair.prober(&inv, Duration::from_secs(args.probe_deadline))?)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let v = engine::verify::run(
        target.as_ref(),
        prober.as_deref(),
        &ctx.printer,
        &units,
        &states,
        &sunk,
    )
    .await?;
    let unverifiable = v.count(Verdict::Unverifiable);
    let requests = target.http().requests_sent();
    // When the probes ran, on the judged clock: adoption leaves out what they caused.
    let probed_to = ctx.now(target.http().server_now());
    let probed_from = probed_to
        - chrono::Duration::from_std(started.elapsed())
            .unwrap_or_else(|_| chrono::Duration::zero())
        - chrono::Duration::seconds(1);
    db.event(
        "verify",
        None,
        &json!({ "checked_keys": v.checked, "ok_keys": v.ok, "drift": v.drift,
                 "requests": requests, "live": if args.live { json!(v.live) } else { Value::Null },
                 "probed_from": args.live.then(|| probed_from.to_rfc3339()),
                 "probed_to": args.live.then(|| (probed_to + chrono::Duration::seconds(1)).to_rfc3339()) }),
    )?;
    db.set_meta("verify.at", &crate::state::now())?;
    let p = &ctx.printer;
    for d in &v.drift {
        p.line(format!("  drift: {d}"));
        p.event("verify.drift", serde_json::to_value(d)?);
    }
    let words = target.words();
    let containers = if plan.clients.is_empty() {
        String::new()
    } else {
        format!(" in {} {}", plan.clients.len(), words.containers)
    };
    p.line(format!(
        "verify: {} of {} planned {} match the plan{containers}; {} difference(s) ({requests} \
         requests)",
        v.ok,
        v.checked,
        words.credentials,
        v.drift.len()
    ));
    if args.live {
        for r in v
            .live
            .iter()
            .filter(|r| r.verdict == Verdict::Unverifiable)
            .take(20)
        {
            p.line(format!(
                "  unverifiable: {} (key {}): {}",
                r.source, r.key_id, r.detail
            ));
        }
        p.line(format!(
            "verify --live: {} ok, {} expected-inactive, {} rejected, {unverifiable} unverifiable{}",
            v.count(Verdict::Ok),
            v.count(Verdict::ExpectedInactive),
            v.count(Verdict::Rejected),
            if args.strict { " (--strict: unverifiable fails)" } else { "" }
        ));
    }
    p.event(
        "verify.done",
        json!({ "checked_keys": v.checked, "ok_keys": v.ok, "drift": v.drift.len(),
                "live": args.live.then(|| json!({
                    "ok": v.count(Verdict::Ok),
                    "expected_inactive": v.count(Verdict::ExpectedInactive),
                    "rejected": v.count(Verdict::Rejected), "unverifiable": unverifiable })) }),
    );
    Ok(
        if !v.drift.is_empty() || (args.strict && unverifiable > 0) {
            ExitCode::Drift
        } else {
            ExitCode::Ok
        },
    )
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
