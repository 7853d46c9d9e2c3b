//! Command-line types (clap). No behaviour here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "keyshift",
    version,
    about = "Migrate machine credentials off deprecated access profiles onto API keys",
    long_about = "Migrate machine credentials off deprecated access profiles onto API keys.\n\n\
        Pipeline: export → plan → apply → verify (→ cutover), with status and report at any time.\n\
        Connections come from the environment (KEYSHIFT_WORKATO_URL, KEYSHIFT_WORKATO_TOKEN, …; \
        docs/cli.md). Try `keyshift demo` first."
)]
pub struct Cli {
    /// State file (SQLite) that holds the inventory, the plan and the journal.
    #[arg(long, global = true, default_value = "keyshift.db", value_name = "DB")]
    pub state: PathBuf,
    /// Judge deadlines as of this date (YYYY-MM-DD or RFC 3339), or `system`. For `sandbox`:
    /// where its clock starts.
    #[arg(long, global = true, value_name = "DATE|system")]
    pub now: Option<String>,
    /// JSON-lines events on stdout instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Only errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More log detail on stderr (-v, -vv, -vvv). Logs never contain secrets.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Allow plain http:// to hosts other than loopback.
    #[arg(long, global = true)]
    pub allow_insecure_http: bool,
    /// Non-secret settings file (default: ./keyshift.toml if present). For `sandbox`: the
    /// sandbox's own settings (docs/sandbox.md).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read every source object into the state file (never writes remotely).
    Export(ExportArgs),
    /// Map the inventory into target operations and findings; a dry run (never writes remotely).
    Plan(PlanArgs),
    /// Execute the saved plan; resumable, journaled.
    Apply(ApplyArgs),
    /// Read the targets back and compare them with the plan.
    Verify(VerifyArgs),
    /// Which consumers use their new credentials: reads where each vendor records use and
    /// records a snapshot (moved, moving, waiting, idle, broken, unknown).
    Adoption(AdoptionArgs),
    /// A wave: disable the old credentials of consumers that moved and whose new keys verified
    /// live (before the freeze only); `--undo` gives them back.
    Cutover(CutoverArgs),
    /// Undo what apply (and cutover) did: disable then delete the created keys and clients,
    /// re-enable what cutover disabled. Never touches anything keyshift did not create.
    Rollback(RollbackArgs),
    /// Progress: counts by state, findings, deadlines, rate budget and ETA.
    Status,
    /// Check connectivity, credentials and permissions (one read per vendor), the state
    /// file and the clock.
    Doctor {
        /// Also check that the vault token may create, update and read entries under this
        /// KV v2 MOUNT/PATH (as `apply --secrets-vault` uses it); nothing is written.
        #[arg(long, value_name = "MOUNT/PATH")]
        secrets_vault: Option<String>,
    },
    /// Render the run's report.
    Report(ReportArgs),
    /// Write handover.csv and handover.json: per profile, the new key and what its consumer
    /// must change (no secrets; each row names its line in the secret sink).
    Handover {
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
        /// Also write one page per consumer (consumers/<id>.md): what it changes, where its
        /// new secret is, how to test it, and its adoption status.
        #[arg(long)]
        per_consumer: bool,
    },
    /// Read back the secrets written by apply, for the hand-over.
    Secrets(SecretsArgs),
    /// Run the local emulator of the vendor APIs.
    Sandbox(SandboxArgs),
    /// Start an embedded sandbox with realistic data and run the whole pipeline against it.
    Demo(DemoArgs),
    /// Print a shell completion script: `keyshift completions bash > /etc/bash_completion.d/keyshift`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args, Default, Clone)]
pub struct ExportArgs {
    /// Mapping file path, or a shipped mapping's name (default workato-legacy-to-v2).
    #[arg(long, value_name = "M")]
    pub mapping: Option<String>,
    /// Which Workato API to read (default: the mapping's [source] api).
    #[arg(long, value_parser = ["developer", "embedded"])]
    pub api: Option<String>,
    /// Embedded only: `all` or a comma-separated list of workspace ids / external ids.
    #[arg(long, value_name = "all|ID,...")]
    pub workspaces: Option<String>,
    /// Also write the exported Workato inventory (no secrets) to FILE, in the fixture format.
    #[arg(long, value_name = "FILE", conflicts_with = "from")]
    pub to_file: Option<PathBuf>,
    /// Read the Workato inventory from FILE (written by --to-file, or a fixture) instead of
    /// the legacy API — for when that API is gone; the target still goes live.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Args, Default, Clone)]
pub struct PlanArgs {
    /// Use this mapping instead of the one recorded by export.
    #[arg(long, value_name = "M")]
    pub mapping: Option<String>,
}

#[derive(Debug, Args, Default, Clone)]
pub struct ApplyArgs {
    /// Do not ask; required when not on a terminal.
    #[arg(long)]
    pub yes: bool,
    /// Stay below this many requests per minute (per quota scope).
    #[arg(long, value_name = "N/min", value_parser = parse_rate)]
    pub max_rate: Option<f64>,
    /// Try operations that failed in an earlier run again.
    #[arg(long)]
    pub retry_failed: bool,
    /// Hand each new secret to this command on stdin (e.g. a vault CLI) instead of the
    /// sink file; only a receipt without the secret is kept.
    #[arg(long, value_name = "CMD", conflicts_with = "secrets_recipient")]
    pub secrets_cmd: Option<String>,
    /// Encrypt each new secret to this age recipient (age1…): no plaintext touches disk.
    #[arg(long, value_name = "AGE_RECIPIENT")]
    pub secrets_recipient: Option<String>,
    /// Write each new secret to a Vault-compatible KV v2 store (Vault, OpenBao) at MOUNT/PATH
    /// (e.g. secret/keyshift), with check-and-set; VAULT_ADDR, VAULT_TOKEN[_FILE],
    /// VAULT_NAMESPACE, VAULT_CACERT as Vault's CLI reads them. Only receipts stay local.
    #[arg(
        long,
        value_name = "MOUNT/PATH",
        conflicts_with_all = ["secrets_cmd", "secrets_recipient"]
    )]
    pub secrets_vault: Option<String>,
    /// Requests in flight at once (within the rate budget).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.trim_end_matches("/min");
    match n.parse::<f64>() {
        Ok(v) if v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a rate — write e.g. 30 or 30/min")),
    }
}

#[derive(Debug, Args, Default, Clone)]
pub struct VerifyArgs {
    /// Also prove each new key authenticates at the consumer side (the API gateway).
    #[arg(long)]
    pub live: bool,
    /// Treat unverifiable keys as failures.
    #[arg(long)]
    pub strict: bool,
    /// How long a live probe keeps polling a refused key (propagation delay), in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub probe_deadline: u64,
}

#[derive(Debug, Args, Default, Clone)]
pub struct CutoverArgs {
    /// Do not ask; required when not on a terminal.
    #[arg(long)]
    pub yes: bool,
    /// Print the selection and each consumer's reason; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only this consumer (an id `keyshift adoption` prints); repeatable.
    #[arg(long, value_name = "ID")]
    pub consumer: Vec<String>,
    /// Only consumers of this legacy API client id; repeatable.
    #[arg(long, value_name = "ID")]
    pub client: Vec<String>,
    /// Only consumers of this source profile id; repeatable.
    #[arg(long, value_name = "ID")]
    pub profile: Vec<String>,
    /// Only consumers in this workspace (id, or E<external id>); repeatable.
    #[arg(long, value_name = "ID")]
    pub workspace: Vec<String>,
    /// Admit verified consumers without `moved` evidence (needs a scope flag).
    #[arg(long)]
    pub without_evidence: bool,
    /// Also admit credentials that could not be probed (e.g. IP allow lists).
    #[arg(long)]
    pub include_unverifiable: bool,
    /// Re-enable what cutover disabled within the scope (or one --wave); new keys stay.
    #[arg(long)]
    pub undo: bool,
    /// With --undo: only what this wave disabled.
    #[arg(long, value_name = "N")]
    pub wave: Option<i64>,
}

#[derive(Debug, Args, Default, Clone)]
pub struct AdoptionArgs {
    /// A Workato Logs export (API platform → Logs → Download results) as [WORKSPACE=]FILE:
    /// WORKSPACE is a workspace id or E<external id>; a bare path is the admin workspace's.
    /// Repeat once per workspace.
    #[arg(long = "workato-logs", value_name = "[WORKSPACE=]FILE")]
    pub logs_exports: Vec<String>,
    /// Start of the window: a date, or a duration before now (default 30d).
    #[arg(long, value_name = "DATE|DURATION")]
    pub since: Option<String>,
    /// How long an old credential must be quiet for a consumer to count as moved (default 7d).
    #[arg(long, value_name = "DURATION")]
    pub quiet_for: Option<String>,
}

#[derive(Debug, Args, Default, Clone)]
pub struct RollbackArgs {
    /// Do not ask; required when not on a terminal.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    Md,
    Html,
    Json,
    /// One file per category into the --out directory.
    Csv,
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    #[arg(long, value_enum)]
    pub format: ReportFormat,
    /// Write here instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub action: SecretsAction,
}

#[derive(Debug, Subcommand, Clone)]
pub enum SecretsAction {
    /// List the usable secret per key (without printing secrets unless --reveal).
    Show {
        /// Print the secret values too.
        #[arg(long)]
        reveal: bool,
    },
    /// Write the usable secret per key as JSON lines to a 0600 file.
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Args, Clone)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// RNG seed: same seed, same inventory.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Workato workspaces in total (the first is the admin workspace).
    #[arg(long, default_value_t = 1)]
    pub workspaces: u32,
    /// Workato access profiles in total.
    #[arg(long, default_value_t = 300)]
    pub profiles: u32,
    /// Load this inventory (the shape of /_sandbox/state) instead of generating one.
    #[arg(long, value_name = "FILE")]
    pub fixture: Option<PathBuf>,
    /// Fault injection, e.g. `error_rate=0.1,latency=5ms`.
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Scale every rate limit (20 = 20× faster windows; 0 = unlimited).
    #[arg(long, default_value_t = 1.0)]
    pub rate_scale: f64,
    /// How Workato reads show `auth_token`: full (default), masked or omitted.
    #[arg(long, value_name = "MODE", value_parser = ["full", "masked", "omitted"])]
    pub read_tokens: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Where to write the state file, reports and secrets.
    #[arg(long, default_value = "keyshift-demo")]
    pub dir: PathBuf,
    /// Access profiles in the demo inventory.
    #[arg(long, default_value_t = 300)]
    pub profiles: u32,
    /// Seed of the demo inventory.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}
