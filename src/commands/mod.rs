//! One file per command; orchestration only. [`run`] builds the context and maps the outcome
//! to an exit code.

pub mod adoption;
pub mod apply;
pub mod cutover;
#[cfg(feature = "sandbox")]
pub mod demo;
#[cfg(feature = "sandbox")]
mod demo_rollout;
pub mod doctor;
pub mod export;
pub mod handover;
pub mod plan;
pub mod report;
pub mod rollback;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod secrets;
pub mod status;
mod undo;
pub mod verify;

use anyhow::Result;
use chrono::{DateTime, Utc};
use std::io::IsTerminal;

use crate::cli::{Cli, Command};
use crate::context::{ConfigFile, Ctx, Env};
use crate::errors::{exit_code_for, one_line, ExitCode, KeyshiftError};
use crate::mapping::parse_instant;
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
    let config = ConfigFile::load(cli.config.as_deref(), &crate::registry::config_sections())?;
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
        Command::Adoption(a) => adoption::run(&ctx, a).await,
        Command::Cutover(a) => cutover::run(&ctx, a).await,
        Command::Rollback(a) => rollback::run(&ctx, a).await,
        Command::Status => status::run(&ctx),
        Command::Doctor { secrets_vault } => doctor::run(&ctx, secrets_vault.as_deref()).await,
        Command::Report(a) => report::run(&ctx, a),
        Command::Secrets(a) => secrets::run(&ctx, a).await,
        Command::Handover { out, per_consumer } => handover::run(&ctx, out, *per_consumer),
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

/// Ask on a TTY; refuse without `--yes` elsewhere (docs/cli.md).
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
