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
use std::sync::Arc;
use std::time::Duration;

use crate::context::{Ctx, Section};
use crate::engine::adoption::{Consumer, UsageSource};
use crate::engine::verify::Prober;
use crate::engine::{Source, Target};
use crate::mapping::{Mapping, PairSpec};
use crate::model::{Inventory, Plan};
pub use crate::pair::{Connected, Lazy, PairDef, Run, VendorDef};
use crate::providers;
use crate::state::StateDb;

/// The pairs keyshift migrates. The first is the default mapping's.
pub static PAIRS: &[&dyn PairDef] = &[
    &providers::workato::pair::LEGACY_TO_V2,
    &providers::descope::pair::WORKATO_TO_DESCOPE,
    &providers::bifrost::pair::PROFILES_TO_VIRTUAL_KEYS,
    #[cfg(test)]
    &providers::toy::pair::PAIR,
];

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
    /// The mapping the plan was made with.
    pub mapping: Mapping,
    pub def: &'static dyn PairDef,
    source_file: Option<PathBuf>,
    conn: Box<dyn Connected + 'c>,
}

impl<'c> Live<'c> {
    /// The pair the state file's plan was made for; `max_rate` caps writes (`--max-rate`).
    pub fn recorded(ctx: &'c Ctx, db: &StateDb, max_rate: Option<f64>) -> Result<Live<'c>> {
        let mapping = recorded_mapping(db)?;
        let def = pair_of(&mapping);
        let source_file = crate::state::source_file(db)?.map(PathBuf::from);
        let conn = def.connect(Run {
            ctx,
            workspaces: db.load_inventory_of(&["workspace"])?.workspaces,
            source_file: source_file.clone(),
            max_rate,
        });
        Ok(Live {
            ctx,
            mapping,
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
