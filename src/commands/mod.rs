//! One file per command; orchestration only. [`run`] builds the context and maps the outcome
//! to an exit code.

pub mod apply;
pub mod cutover;
#[cfg(feature = "sandbox")]
pub mod demo;
pub mod doctor;
pub mod export;
pub mod flat;
pub mod handover;
pub mod plan;
pub mod report;
pub mod rollback;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod secrets;
pub mod status;
pub mod verify;

use anyhow::Result;
use chrono::{DateTime, Utc};
use std::io::IsTerminal;

use crate::cli::{Cli, Command};
use crate::context::{ConfigFile, Ctx, Env};
use crate::errors::{exit_code_for, one_line, ExitCode, KeyshiftError};
use crate::mapping::{parse_instant, Mapping};
use crate::model::Vendor;
use crate::printer::{Mode, Printer};
use crate::state::StateDb;

/// Run one command line. Errors are printed here, as one line.
pub async fn run(cli: Cli, env: Env) -> ExitCode {
    let mode = if cli.json {
        Mode::Json
    } else if cli.quiet {
        Mode::Quiet
    } else {
        Mode::Human
    };
    let printer = Printer::new(mode);
    let state_path = cli.state.clone();
    match dispatch(cli, env, printer.clone()).await {
        Ok(code) => code,
        Err(err) => {
            let err = crate::state::name_damage(&state_path, err);
            printer.error(one_line(&err));
            printer.event("error", serde_json::json!({ "message": one_line(&err) }));
            exit_code_for(&err)
        }
    }
}

async fn dispatch(cli: Cli, env: Env, printer: Printer) -> Result<ExitCode> {
    let now_override = match cli.now.as_deref() {
        None | Some("system") => None,
        Some(s) => Some(parse_instant(s).ok_or_else(|| {
            KeyshiftError::Usage(format!(
                "--now {s:?} is not a date — write YYYY-MM-DD, an RFC 3339 instant, or `system`"
            ))
        })?),
    };
    // Completions need nothing but the command line's own shape.
    if let Command::Completions { shell } = &cli.command {
        use clap::CommandFactory;
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut Cli::command(), "keyshift", &mut script);
        printer.raw(String::from_utf8_lossy(&script).trim_end());
        return Ok(ExitCode::Ok);
    }
    // The sandbox reads --config and --now as its own settings.
    if let Command::Sandbox(args) = &cli.command {
        #[cfg(feature = "sandbox")]
        return sandbox::run(&printer, args, cli.config.as_deref(), cli.now.as_deref()).await;
        #[cfg(not(feature = "sandbox"))]
        return Err(without_sandbox("sandbox", args));
    }
    let config = ConfigFile::load(cli.config.as_deref())?;
    let crash = crate::crash::Checkpoints::from_env(&env);
    let ctx = Ctx {
        crash,
        printer,
        env,
        config,
        state_path: cli.state.clone(),
        now_override,
        allow_insecure_http: cli.allow_insecure_http,
    };
    match &cli.command {
        Command::Export(a) => export::run(&ctx, a).await,
        Command::Plan(a) => plan::run(&ctx, a),
        Command::Apply(a) => apply::run(&ctx, a).await,
        Command::Verify(a) => verify::run(&ctx, a).await,
        Command::Cutover(a) => cutover::run(&ctx, a).await,
        Command::Rollback(a) => rollback::run(&ctx, a).await,
        Command::Status => status::run(&ctx),
        Command::Doctor { secrets_vault } => doctor::run(&ctx, secrets_vault.as_deref()).await,
        Command::Report(a) => report::run(&ctx, a),
        Command::Secrets(a) => secrets::run(&ctx, a).await,
        Command::Handover { out } => handover::run(&ctx, out),
        #[cfg(feature = "sandbox")]
        Command::Demo(a) => demo::run(&ctx, a).await,
        #[cfg(not(feature = "sandbox"))]
        Command::Demo(a) => Err(without_sandbox("demo", a)),
        Command::Sandbox(_) | Command::Completions { .. } => unreachable!("handled above"),
    }
}

/// `sandbox` and `demo` in a build without the emulator: say how to get it.
#[cfg(not(feature = "sandbox"))]
fn without_sandbox<A>(command: &str, _args: &A) -> anyhow::Error {
    KeyshiftError::Usage(format!(
        "`keyshift {command}` needs the sandbox, which this binary was built without \
         (--no-default-features); build it with the default features (`cargo build --release`) \
         or add `--features sandbox`"
    ))
    .into()
}

/// "Now" for deadlines: `--now`, else the vendor's clock as last seen, else ours.
pub fn judged_now(ctx: &Ctx, db: &StateDb) -> Result<DateTime<Utc>> {
    let offset = db
        .meta("export.server_offset_secs")?
        .and_then(|s| s.parse::<i64>().ok());
    Ok(ctx.now(offset.map(|o| Utc::now() + chrono::Duration::seconds(o))))
}

/// Ask on a TTY; refuse without `--yes` elsewhere (contract §1).
pub fn confirm(ctx: &Ctx, yes: bool, summary: &str) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() || ctx.printer.mode() == Mode::Json {
        return Err(KeyshiftError::Usage(format!(
            "{summary} — not on a terminal, so nothing was done; pass --yes to go ahead"
        ))
        .into());
    }
    ctx.printer.line(format!("{summary}. Go ahead? [y/N]"));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Refuse to apply a plan whose source changed since export: re-read the source's list
/// pages and compare the fingerprint.
pub async fn check_source(
    ctx: &Ctx,
    db: &StateDb,
    mapping: &Mapping,
    exported: Option<String>,
) -> Result<()> {
    let exported = expected_fingerprint(db, exported)?;
    let inv = db.load_inventory_of(&["workspace"])?;
    match mapping.pair.source_vendor() {
        Vendor::Workato if source_file(db)?.is_some() => check_source_file(db, exported),
        Vendor::Workato => {
            let source = crate::providers::workato::WorkatoSource::new(ctx.workato(None)?);
            apply::check_source_unchanged(&source, &inv.workspaces, exported).await
        }
        Vendor::Bifrost => {
            let (profiles, _) = ctx.bifrost(None)?.list_profiles().await?;
            if Some(crate::providers::bifrost::source_fingerprint(&profiles)) != exported {
                return Err(KeyshiftError::StalePlan(
                    "the source changed since export (access profiles differ) — re-run \
                     `keyshift export` and `keyshift plan`, review, then apply"
                        .into(),
                )
                .into());
            }
            Ok(())
        }
        Vendor::Descope => unreachable!("no pair reads from Descope"),
    }
}

/// The file `export --from` read the source from, if it did.
pub fn source_file(db: &StateDb) -> Result<Option<String>> {
    Ok(db.meta(export::SOURCE_FILE_META)?.filter(|f| !f.is_empty()))
}

/// The stale-plan check of a run whose source is a file: compare with the file, not the
/// legacy API (which may be gone).
pub fn check_source_file(db: &StateDb, exported: Option<String>) -> Result<()> {
    let path = source_file(db)?.unwrap_or_default();
    let inv = crate::providers::workato::inventory_file::read(std::path::Path::new(&path))?;
    let now = crate::model::source_fingerprint(&inv.legacy_clients, &inv.profiles);
    if Some(now) != exported {
        return Err(KeyshiftError::StalePlan(format!(
            "the inventory file {path} changed since export — re-run `keyshift export --from \
             {path}` and `keyshift plan`, review, then apply"
        ))
        .into());
    }
    Ok(())
}

/// What the source should look like now: as exported, except for the profiles keyshift's own
/// `cutover` disabled (those are expected to be inactive, and are no reason to call the plan
/// stale). Without a cutover this is the export's fingerprint itself.
pub fn expected_fingerprint(db: &StateDb, exported: Option<String>) -> Result<Option<String>> {
    use crate::state::{OpKind, OpState};
    let disabled: std::collections::HashSet<String> = db
        .operations()?
        .into_iter()
        .filter(|o| o.kind == OpKind::DisableProfile && o.state == OpState::Done)
        .map(|o| o.target)
        .collect();
    if disabled.is_empty() {
        return Ok(exported);
    }
    let mut inv = db.load_inventory()?;
    for p in &mut inv.profiles {
        if disabled.contains(&p.marker("workato")) {
            p.active = false;
        }
    }
    for p in &mut inv.bifrost_profiles {
        if disabled.contains(&crate::mapping::bifrost::marker(p.id, None)) {
            p.is_active = false;
        }
    }
    Ok(Some(if inv.bifrost_profiles.is_empty() {
        crate::providers::workato::source_fingerprint(&inv.legacy_clients, &inv.profiles)
    } else {
        crate::providers::bifrost::source_fingerprint(&inv.bifrost_profiles)
    }))
}

/// Take the one-writer lock of the state file, saying so when a dead run's lock is taken over.
pub fn writer_lock(ctx: &Ctx, command: &str) -> Result<crate::state::WriterLock> {
    let lock = crate::state::WriterLock::acquire(&ctx.state_path, command)?;
    if let Some(previous) = &lock.took_over_from {
        ctx.printer.warn(format!(
            "took over a stale lock left by an interrupted run ({previous})"
        ));
    }
    Ok(lock)
}

/// When reconcile-then-create rounds stop (apply's, and the flat targets'): once nothing is
/// left open, or when rounds stop making progress. A round that leaves as many operations
/// open as the one before made none; under a fault storm the last few creates can fail
/// ambiguously several rounds running, so a stalled round is tried again after a pause
/// (0.5, 1, 2 s) before the run gives up and says what is unfinished.
pub struct Progress {
    last_open: usize,
    stalled: u32,
}

impl Progress {
    /// Rounds at the most.
    pub const MAX_ROUNDS: usize = 20;
    const MAX_STALLED: u32 = 3;

    pub fn new() -> Progress {
        Progress {
            last_open: usize::MAX,
            stalled: 0,
        }
    }

    /// Whether to run another round now that `open` operations are open (after a pause, if
    /// the last round changed nothing).
    pub async fn another(&mut self, open: usize) -> bool {
        if open < self.last_open {
            self.last_open = open;
            self.stalled = 0;
            return true;
        }
        if self.stalled >= Self::MAX_STALLED {
            return false;
        }
        self.stalled += 1;
        tracing::debug!(
            open,
            stalled = self.stalled,
            "a round made no progress; pausing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250 << self.stalled)).await;
        true
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod progress_tests {
    use super::Progress;

    #[tokio::test]
    async fn stalled_rounds_get_three_more_tries_then_stop() {
        let mut p = Progress::new();
        assert!(p.another(10).await);
        assert!(p.another(4).await, "progress");
        let started = std::time::Instant::now();
        for _ in 0..3 {
            assert!(p.another(4).await, "a stalled round is tried again");
        }
        assert!(started.elapsed() >= std::time::Duration::from_millis(3_500));
        assert!(
            !p.another(4).await,
            "three stalled rounds in a row end the run"
        );

        let mut p = Progress::new();
        assert!(p.another(10).await);
        for _ in 0..3 {
            assert!(p.another(10).await);
        }
        assert!(p.another(9).await, "progress resets the count");
        assert!(p.another(9).await, "so a stalled round is tried again");
    }
}
