//! The one registry: the pairs keyshift migrates, as one table of definitions ([`PAIRS`]).
//! Everything else is derived from it — the shipped mappings and the pairs a mapping file may
//! name, the vendors' config sections, `doctor`'s checks — and nowhere else lists a pair or
//! builds a vendor's source or target: commands ask a pair's definition for them and hand them
//! to the engine.
//!
//! A new pair is one folder (its provider, planner and definition) and one line in [`PAIRS`];
//! docs/architecture.md walks through it, and a test-only pair (`providers::toy`) proves it.

use anyhow::Result;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::cli::ExportArgs;
use crate::context::{Ctx, Section};
use crate::engine::adoption::{Consumer, UsageSource};
use crate::engine::verify::Prober;
use crate::engine::{Exported, Fut, Source, Target, Words};
use crate::mapping::{Mapping, PairSpec};
use crate::model::{ConsumerChange, Inventory, Plan, Workspace};
use crate::providers;
use crate::secrets::SigningIndex;
use crate::state::StateDb;

/// The pairs keyshift migrates. The first is the default mapping's.
pub static PAIRS: &[&dyn PairDef] = &[
    &providers::workato::pair::LEGACY_TO_V2,
    &providers::descope::pair::WORKATO_TO_DESCOPE,
    &providers::bifrost::pair::PROFILES_TO_VIRTUAL_KEYS,
];

/// One source→target pair: what its mapping files hold, how it exports, plans and connects,
/// and how its target speaks to people. Implemented once per pair, in its vendor's folder.
pub trait PairDef: Sync {
    /// Its `[pair]`, shipped mapping, own sections and checks.
    fn spec(&self) -> &'static PairSpec;
    /// The vendors it talks to, the source's first: their config sections and `doctor` checks.
    fn vendors(&self) -> &'static [&'static dyn VendorDef];
    /// How the target calls its objects (for commands that open no connection).
    fn words(&self) -> Words;
    /// The rate limit (requests per minute) that paces writes to the target; `api` is the API
    /// the export read (`export.api`).
    fn write_limit(&self, api: &str) -> f64;
    /// How a consumer proves its new credential works, for its hand-over page.
    fn how_to_test(&self) -> &'static str;
    /// What a migrated consumer must change, in the hand-over.
    fn consumer_action(&self, change: &ConsumerChange) -> String;
    /// The consumers of a plan, from the state alone (no connection): who moves, as the
    /// source's usage records can tell them apart.
    fn consumers(&self, inv: &Inventory, plan: &Plan) -> Result<Vec<Consumer>>;
    /// Map the exported inventory into the plan: pure, no network. `taken_names`: names on
    /// the target already used by credentials that are not ours.
    fn plan(
        &self,
        inv: &Inventory,
        mapping: &Mapping,
        signing: &SigningIndex,
        taken_names: &[String],
    ) -> Result<Plan>;
    /// Read the mapping's source into an inventory (`keyshift export`): live, or from an
    /// inventory file where the source has one.
    fn export<'a>(
        &'a self,
        ctx: &'a Ctx,
        mapping: &'a Mapping,
        args: &'a ExportArgs,
    ) -> Fut<'a, Result<Exported>>;
    /// The pair's connections for one command run, opened lazily; a source and a target on
    /// the same vendor share one connection (and so one rate budget).
    fn connect<'c>(&self, run: Run<'c>) -> Box<dyn Connected + 'c>;
}

/// What one command run tells a pair when it connects.
pub struct Run<'c> {
    pub ctx: &'c Ctx,
    /// The workspaces the export read.
    pub workspaces: Vec<Workspace>,
    /// The inventory file `export --from` read, when the source is a file.
    pub source_file: Option<PathBuf>,
    /// Cap writes below the vendor's limit (`--max-rate`).
    pub max_rate: Option<f64>,
}

/// A pair's live side for one run.
pub trait Connected: Send + Sync {
    fn source(&self) -> Result<Arc<dyn Source>>;
    fn target(&self) -> Result<Arc<dyn Target>>;
    /// The target's live prober (`verify --live`).
    fn prober(&self, inv: &Inventory, deadline: Duration) -> Result<Box<dyn Prober>>;
    /// Where the old and the new credentials' use shows (`keyshift adoption`); `logs`: the
    /// request-log exports the user passed (`--workato-logs`), for a source that needs them.
    fn usage(&self, logs: &[String]) -> Result<(Arc<dyn UsageSource>, Arc<dyn UsageSource>)>;
    /// The vendor's clock now, from one fresh read (never an offset remembered from an
    /// earlier run); `None` when no vendor answered.
    fn vendor_now(&self) -> Fut<'_, Option<DateTime<Utc>>>;
}

/// One vendor a pair talks to.
pub trait VendorDef: Sync {
    fn name(&self) -> &'static str;
    /// Its section of `keyshift.toml`, with its check, if it has one.
    fn config_section(&self) -> Option<Section> {
        None
    }
    /// Whether `doctor` checks it on this machine (it is configured, or always checked).
    fn doctor_applies(&self, ctx: &Ctx) -> Result<bool>;
    /// One short read that proves address and credential; the vendor's clock, when its
    /// response said.
    fn doctor<'a>(&'a self, ctx: &'a Ctx) -> Fut<'a, Result<(String, Option<DateTime<Utc>>)>>;
}

/// One connection, opened on first use and shared after.
pub struct Lazy<C>(OnceLock<Arc<C>>);

impl<C> Default for Lazy<C> {
    fn default() -> Self {
        Lazy(OnceLock::new())
    }
}

impl<C> Lazy<C> {
    pub fn get(&self, open: impl FnOnce() -> Result<Arc<C>>) -> Result<Arc<C>> {
        if let Some(c) = self.0.get() {
            return Ok(c.clone());
        }
        let c = open()?;
        Ok(self.0.get_or_init(|| c).clone())
    }
}

/// The `[pair]` specs of every pair, for the mapping parser.
pub fn specs() -> Vec<&'static PairSpec> {
    PAIRS.iter().map(|p| p.spec()).collect()
}

/// The definition of a parsed mapping's pair.
pub fn pair_of(mapping: &Mapping) -> &'static dyn PairDef {
    *PAIRS
        .iter()
        .find(|p| p.spec() == mapping.pair)
        .expect("a mapping is parsed against the registry's pairs")
}

/// The shipped mapping `export` uses when none is named.
pub fn default_mapping() -> &'static str {
    PAIRS[0].spec().name
}

/// A shipped mapping's name or a path to a mapping file.
pub fn load_mapping(spec: &str) -> Result<Mapping> {
    Mapping::load(spec, &specs())
}

/// Parse a mapping file's text (`origin` names it in messages).
pub fn parse_mapping(origin: &str, text: &str) -> Result<Mapping> {
    Mapping::parse(origin, text, &specs())
}

/// The mapping the state file's plan was made with.
pub fn recorded_mapping(db: &StateDb) -> Result<Mapping> {
    let (origin, text) = db.recorded_mapping_text()?;
    parse_mapping(&origin, &text)
}

/// The vendors of every pair, each once, in the table's order.
pub fn vendors() -> Vec<&'static dyn VendorDef> {
    let mut out: Vec<&'static dyn VendorDef> = Vec::new();
    for v in PAIRS.iter().flat_map(|p| p.vendors().iter().copied()) {
        if !out.iter().any(|o| o.name() == v.name()) {
            out.push(v);
        }
    }
    out
}

/// The vendor sections `keyshift.toml` may hold, each with its provider's check.
pub fn config_sections() -> Vec<Section> {
    vendors()
        .iter()
        .filter_map(|v| v.config_section())
        .collect()
}

/// `keyshift doctor`'s vendor checks, for each vendor that is configured (or always checked);
/// and the vendor's clock, from the first response that said.
pub async fn doctor(ctx: &Ctx) -> Result<(Vec<(&'static str, Result<String>)>, Option<ServerNow>)> {
    let mut out = Vec::new();
    let mut server_now = None;
    for v in vendors() {
        if !v.doctor_applies(ctx)? {
            continue;
        }
        match v.doctor(ctx).await {
            Ok((detail, now)) => {
                server_now = server_now.or(now);
                out.push((v.name(), Ok(detail)));
            }
            Err(e) => out.push((v.name(), Err(e))),
        }
    }
    Ok((out, server_now))
}

type ServerNow = DateTime<Utc>;

/// The recorded pair of a state file, connected for one run.
pub struct Live<'c> {
    ctx: &'c Ctx,
    pub def: &'static dyn PairDef,
    source_file: Option<PathBuf>,
    conn: Box<dyn Connected + 'c>,
}

impl<'c> Live<'c> {
    /// The pair the state file's plan was made for; `max_rate` caps writes (`--max-rate`).
    pub fn recorded(ctx: &'c Ctx, db: &StateDb, max_rate: Option<f64>) -> Result<Live<'c>> {
        let def = pair_of(&recorded_mapping(db)?);
        let source_file = crate::state::source_file(db)?.map(PathBuf::from);
        let conn = def.connect(Run {
            ctx,
            workspaces: db.load_inventory_of(&["workspace"])?.workspaces,
            source_file: source_file.clone(),
            max_rate,
        });
        Ok(Live {
            ctx,
            def,
            source_file,
            conn,
        })
    }

    pub fn source(&self) -> Result<Arc<dyn Source>> {
        self.conn.source()
    }

    pub fn target(&self) -> Result<Arc<dyn Target>> {
        self.conn.target()
    }

    pub fn prober(&self, inv: &Inventory, deadline: Duration) -> Result<Box<dyn Prober>> {
        self.conn.prober(inv, deadline)
    }

    /// Whether the source is an inventory file rather than the vendor's API.
    pub fn source_file(&self) -> Option<&Path> {
        self.source_file.as_deref()
    }

    /// Where the old and the new credentials' use shows (`keyshift adoption`).
    pub fn usage(&self, logs: &[String]) -> Result<(Arc<dyn UsageSource>, Arc<dyn UsageSource>)> {
        self.conn.usage(logs)
    }

    /// "Now" for the rollout: `--now`, else the vendor's clock from one fresh read, else the
    /// machine's.
    pub async fn judged_now(&self) -> DateTime<Utc> {
        match self.ctx.now_override {
            Some(t) => t,
            None => self.conn.vendor_now().await.unwrap_or_else(Utc::now),
        }
    }

    /// The consumers of the recorded plan with both sides filled: the source names them,
    /// the target says where their new credentials' use shows (`ops`: apply's journal).
    pub fn consumers(
        &self,
        inv: &Inventory,
        plan: &Plan,
        ops: &[crate::state::Operation],
    ) -> Result<Vec<Consumer>> {
        crate::engine::adoption::consumers(
            self.source()?.as_ref(),
            self.target()?.as_ref(),
            inv,
            plan,
            &crate::engine::rollout::created(ops),
        )
    }
}
