//! What a pair is: the traits each source→target pair and each vendor implement in its
//! folder, and that the registry (`registry::PAIRS`) lists. Names no pair.

use anyhow::Result;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::cli::ExportArgs;
use crate::context::{Ctx, Section};
use crate::engine::adoption::{Consumer, UsageSource};
use crate::engine::verify::Prober;
use crate::engine::{Exported, Fut, Source, Target, Words};
use crate::mapping::{Mapping, PairSpec};
use crate::model::{ConsumerChange, Inventory, Plan, Workspace};
use crate::secrets::SigningIndex;

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
    /// The setting whose presence means this machine uses the vendor, so `doctor` checks it;
    /// `None`: always checked.
    fn configured_by(&self) -> Option<&'static str>;
    /// Whether `doctor` checks it on this machine.
    fn doctor_applies(&self, ctx: &Ctx) -> Result<bool> {
        Ok(match self.configured_by() {
            Some(setting) => ctx.env.get(setting)?.is_some(),
            None => true,
        })
    }
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
