//! The demo's rollout: simulated consumers call the sandbox's gateway with their real old and
//! new credentials; a week passes; `adoption` judges them; a cutover wave disables the moved
//! ones; one of them keeps calling with its old token and `adoption` finds it broken; `cutover
//! --undo` gives that one consumer its credential back.

use anyhow::Result;

use crate::cli::{AdoptionArgs, CutoverArgs};
use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::sandbox::consumers::{Role, World};

/// The sandbox days the story takes (the demo starts on 2025-11-15, before the freeze).
const MOVED_DAY: &str = "2025-11-23T09:00:00Z";
const LAGGARD_DAY: &str = "2025-11-24T09:00:00Z";
const WORKSPACE: &str = "1";

pub struct Told {
    pub consumers: usize,
    pub broken_found: bool,
    pub undone: bool,
}

/// Play the rollout against the sandbox at `base`; `demo` is the demo's context (with no
/// `--now`: the sandbox clock is the judged clock from here on).
pub async fn run(demo: &Ctx, base: &str, dir: &std::path::Path) -> Result<Told> {
    let p = &demo.printer;
    let world = World::new(base, WORKSPACE, &demo.sink_path()?).await?;
    let count = |r: Role| world.consumers.iter().filter(|c| c.role == r).count();
    p.line(format!(
        "{} consumers call the gateway with their real credentials: {} will move, {} use both, \
         {} never move, {} stay idle",
        world.consumers.len(),
        count(Role::Mover),
        count(Role::Both),
        count(Role::Never),
        count(Role::Idle)
    ));
    world.before().await?;
    world.set_clock(MOVED_DAY).await?;
    world.after().await?;
    p.line("a week later (sandbox clock 2025-11-23) — consumers have made their moves");

    let logs = dir.join("api-logs.csv");
    let adoption = |logs: std::path::PathBuf| AdoptionArgs {
        logs_exports: vec![format!("{WORKSPACE}={}", logs.display())],
        ..AdoptionArgs::default()
    };
    p.line("\n== adoption (the gateway's Logs export, downloaded as a user would) ==");
    crate::secrets::write_private(&logs, &world.logs_csv(WORKSPACE).await?)?;
    super::adoption::run(demo, &adoption(logs.clone())).await?;

    p.line("\n== cutover: the first wave takes the consumers that moved ==");
    super::cutover::run(
        demo,
        &CutoverArgs {
            yes: true,
            ..CutoverArgs::default()
        },
    )
    .await?;
    // One cut-over consumer keeps calling with its old token.
    let mut laggard = None;
    for c in world.consumers.iter().filter(|c| c.role == Role::Mover) {
        if !world.profile_active(WORKSPACE, c.profile_id).await? {
            laggard = Some(c.clone());
            break;
        }
    }
    let Some(laggard) = laggard else {
        p.line("no consumer was cut over, so nobody can break");
        return Ok(Told {
            consumers: world.consumers.len(),
            broken_found: false,
            undone: false,
        });
    };
    world.set_clock(LAGGARD_DAY).await?;
    let status = world.call_old(&laggard).await?;
    p.line(format!(
        "\na day later, {:?} still calls with its old token: the gateway answers {status}",
        laggard.name
    ));
    p.line("\n== adoption again ==");
    crate::secrets::write_private(&logs, &world.logs_csv(WORKSPACE).await?)?;
    let code = super::adoption::run(demo, &adoption(logs.clone())).await?;
    let broken_found = code == ExitCode::Drift;

    let id = laggard.legacy_client_id.to_string();
    p.line(format!(
        "\n== cutover --undo --consumer {id}: its old credential works again, every new key stays =="
    ));
    let undo = super::cutover::run(
        demo,
        &CutoverArgs {
            yes: true,
            undo: true,
            consumer: vec![id],
            ..CutoverArgs::default()
        },
    )
    .await?;
    let status = world.call_old(&laggard).await?;
    p.line(format!(
        "{:?} calls with its old token again: {status}",
        laggard.name
    ));
    crate::secrets::write_private(&logs, &world.logs_csv(WORKSPACE).await?)?;
    p.line("\n== adoption: the final snapshot ==");
    super::adoption::run(demo, &adoption(logs)).await?;
    Ok(Told {
        consumers: world.consumers.len(),
        broken_found,
        undone: undo == ExitCode::Ok && status == 200,
    })
}
