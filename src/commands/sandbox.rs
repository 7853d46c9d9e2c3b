//! `keyshift sandbox`: run the emulator in the foreground. Its first stdout lines are the
//! `NAME=value` connection settings (docs/sandbox.md), always plain.

use anyhow::Result;
use std::path::Path;

use crate::cli::SandboxArgs;
use crate::errors::ExitCode;
use crate::printer::Printer;
use crate::sandbox::config::ReadTokens;
use crate::sandbox::{Sandbox, SandboxOptions};

pub async fn run(
    printer: &Printer,
    args: &SandboxArgs,
    config: Option<&Path>,
    now: Option<&str>,
) -> Result<ExitCode> {
    let sandbox = Sandbox::start(SandboxOptions {
        port: args.port,
        seed: args.seed,
        workspaces: args.workspaces,
        profiles: args.profiles,
        fixture: args.fixture.clone(),
        config: config.map(Path::to_path_buf),
        faults: args.faults.clone(),
        rate_scale: args.rate_scale,
        now: now.map(str::to_string),
        read_tokens: args.read_tokens.as_deref().map(ReadTokens::parse),
    })
    .await?;
    for (name, value) in sandbox.env() {
        printer.raw(format!("{name}={value}"));
    }
    // A blank line ends the settings, however many vendors print theirs.
    printer.raw("");
    wait_for_shutdown().await;
    sandbox.shutdown().await;
    Ok(ExitCode::Ok)
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
