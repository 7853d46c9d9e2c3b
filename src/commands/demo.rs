//! `keyshift demo`: start an embedded sandbox with a realistic inventory and run the whole
//! pipeline against it — export → plan → apply → verify --live → the rollout (simulated
//! consumers, adoption, a cutover wave, a broken consumer found and undone) — writing
//! everything a real run writes into one directory.

use anyhow::{Context, Result};
use std::time::Instant;

use crate::cli::{ApplyArgs, DemoArgs, ExportArgs, PlanArgs, ReportFormat, VerifyArgs};
use crate::context::{ConfigFile, Ctx, Env};
use crate::errors::ExitCode;
use crate::report::Report;
use crate::sandbox::{Sandbox, SandboxOptions};
use crate::secrets::create_private_dir;
use crate::state::StateDb;

/// The sandbox runs the vendors' real pacing, this much faster (`--rate-scale`, docs/sandbox.md).
const DEMO_RATE_SCALE: f64 = 20.0;
/// One date for the sandbox clock and the tool (before the freeze: every route works).
const DEMO_NOW: &str = "2025-11-15T00:00:00Z";

pub async fn run(ctx: &Ctx, args: &DemoArgs) -> Result<ExitCode> {
    let dir = &args.dir;
    create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // A demo is a fresh rehearsal: remove what an earlier demo left here.
    for name in [
        "keyshift.db",
        "keyshift.db-wal",
        "keyshift.db-shm",
        "keyshift.db.key",
        "secrets.jsonl",
        "plan-report.md",
        "report.md",
        "report.json",
        "report.html",
        "handover.csv",
        "handover.json",
        "api-logs.csv",
    ] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let _ = std::fs::remove_dir_all(dir.join("consumers"));
    let p = &ctx.printer;
    // The demo runs the default pair, whose source the sandbox's generator fills.
    let vendor = crate::registry::PAIRS[0].spec().source_vendor.title();
    p.line(format!(
        "keyshift demo: starting a sandbox with {} {vendor} access profiles (seed {}) at {}× the real rate limits",
        args.profiles, args.seed, DEMO_RATE_SCALE
    ));
    let sandbox = Sandbox::start(SandboxOptions {
        port: 0,
        seed: args.seed,
        workspaces: 1,
        profiles: args.profiles,
        rate_scale: DEMO_RATE_SCALE,
        now: Some(DEMO_NOW.into()),
        ..SandboxOptions::default()
    })
    .await?;
    p.line(format!("sandbox listening on {}", sandbox.url()));

    let mut env = Env::default();
    for (name, value) in sandbox.env() {
        env.set(name, &value);
    }
    let state = dir.join("keyshift.db");
    let secrets = dir.join("secrets.jsonl");
    env.set("KEYSHIFT_SECRETS", &secrets.display().to_string());
    let demo = Ctx {
        printer: ctx.printer.clone(),
        env,
        config: ConfigFile::default(),
        state_path: state.clone(),
        now_override: crate::mapping::parse_instant(DEMO_NOW),
        allow_insecure_http: false,
        crash: Default::default(),
    };

    let started = Instant::now();
    p.line("\n== export ==");
    super::export::run(&demo, &ExportArgs::default()).await?;
    p.line("\n== plan ==");
    let plan_code = super::plan::run(&demo, &PlanArgs::default())?;
    let db = StateDb::open(&state, false)?;
    let words = crate::registry::pair_of(&crate::registry::recorded_mapping(&db)?).words();
    let plan_report = Report::build(&db, super::judged_now(&demo, &db)?, words)?;
    crate::secrets::write_private(
        &dir.join("plan-report.md"),
        &super::report::render(&plan_report, ReportFormat::Md)?,
    )?;
    p.line("\n== apply ==");
    let apply_code = super::apply::run(
        &demo,
        &ApplyArgs {
            yes: true,
            concurrency: 16,
            ..ApplyArgs::default()
        },
    )
    .await?;
    p.line("\n== verify --live ==");
    let verify_code = super::verify::run(
        &demo,
        &VerifyArgs {
            live: true,
            probe_deadline: 10,
            ..VerifyArgs::default()
        },
    )
    .await?;
    // From here the sandbox's clock is the judged clock: the story spans days.
    let rollout_ctx = Ctx {
        now_override: None,
        ..demo.clone()
    };
    p.line("\n== the rollout ==");
    let told = super::demo_rollout::run(&rollout_ctx, &sandbox.url(), dir).await?;

    let report = Report::build(&db, super::judged_now(&rollout_ctx, &db)?, words)?;
    crate::secrets::write_private(
        &dir.join("report.md"),
        &super::report::render(&report, ReportFormat::Md)?,
    )?;
    crate::secrets::write_private(
        &dir.join("report.html"),
        &super::report::render(&report, ReportFormat::Html)?,
    )?;
    crate::secrets::write_private(
        &dir.join("report.json"),
        &super::report::render(&report, ReportFormat::Json)?,
    )?;
    super::handover::run(&rollout_ctx, dir, true)?;
    let elapsed = started.elapsed();
    let requests = total_requests(&db)?;
    sandbox.shutdown().await;

    let s = &report.summary;
    let api = db.meta("export.api")?.unwrap_or_default();
    let pair = crate::registry::pair_of(&crate::registry::recorded_mapping(&db)?);
    let limit = pair.write_limit(&api);
    p.line("\n== summary ==");
    p.line(format!(
        "{} legacy clients, {} access profiles → {} v2 API clients, {} API keys migrated, {} \
         profiles blocked by bad data (see the report)",
        s.legacy_clients, s.profiles, s.created_clients, s.migrated_keys, s.blocked_profiles
    ));
    p.line(format!(
        "{requests} requests in {:.1}s at {}× speed; at {}'s real limit ({} requests/min) \
         the same run takes about {:.0} minutes",
        elapsed.as_secs_f64(),
        DEMO_RATE_SCALE,
        pair.spec().target_vendor.title(),
        limit,
        requests as f64 / limit
    ));
    p.line(format!(
        "rollout: {} simulated consumers; broken consumer found: {}; given its old credential \
         back: {}",
        told.consumers,
        if told.broken_found { "yes" } else { "no" },
        if told.undone { "yes" } else { "no" }
    ));
    p.line(format!("written to {}/:", dir.display()));
    p.line("  keyshift.db      state: inventory, plan, journal, events (no secrets)");
    p.line("  plan-report.md   the dry-run report");
    p.line("  report.html      the final report, one self-contained page (also .md, .json)");
    p.line("  secrets.jsonl    every new key's secret, once (0600)");
    p.line("  handover.csv/.json  per profile: new client and key, what its consumer changes");
    p.line("  consumers/       one hand-over page per consumer, with its adoption status");
    p.line("  api-logs.csv     the gateway's Logs export that adoption read");
    p.line(format!("try: keyshift --state {} status", state.display()));
    // Blocked profiles are expected in the demo's data; the run itself succeeded.
    let _ = plan_code;
    Ok(apply_code.and(verify_code))
}

/// Requests the run sent, from the events export/apply/verify recorded.
fn total_requests(db: &StateDb) -> Result<u64> {
    let mut total = 0;
    for kind in ["export", "apply.end", "verify"] {
        for (_, _, _, detail) in db.events(Some(kind))? {
            let v: serde_json::Value = serde_json::from_str(&detail)?;
            total += v.get("requests").and_then(|r| r.as_u64()).unwrap_or(0);
        }
    }
    Ok(total)
}
