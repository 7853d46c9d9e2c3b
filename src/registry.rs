//! The one registry: the vendors keyshift knows and the pairs it migrates. Nowhere else
//! matches on a pair or builds a vendor's source or target — commands ask a [`Pair`] for
//! them and hand them to the engine.

use anyhow::Result;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::cli::ExportArgs;
use crate::context::Ctx;
use crate::engine::adoption::UsageSource;
use crate::engine::verify::Prober;
use crate::engine::{Exported, Source, Target, Words};
use crate::errors::KeyshiftError;
use crate::http::Patience;
use crate::mapping::{Mapping, PairKind};
use crate::model::ConsumerChange;
use crate::model::{Inventory, Plan, Workspace};
use crate::providers;
use crate::providers::bifrost::BifrostConn;
use crate::providers::descope::DescopeConn;
use crate::providers::flat::Flat;
use crate::providers::workato::source::Legacy;
use crate::providers::workato::target::ApiKeys;
use crate::providers::workato::usage::WorkatoLogs;
use crate::providers::workato::verify::GatewayProbe;
use crate::providers::workato::WorkatoConn;
use crate::secrets::SigningIndex;
use crate::state::StateDb;

/// The recorded pair of a state file, with its source and target built on demand. A source
/// and a target on the same vendor share one connection (and so one rate budget).
pub struct Pair<'c> {
    ctx: &'c Ctx,
    pub kind: PairKind,
    workspaces: Vec<Workspace>,
    /// The inventory file `export --from` read, when the source is a file.
    source_file: Option<PathBuf>,
    max_rate: Option<f64>,
    workato: OnceLock<Arc<WorkatoConn>>,
    bifrost: OnceLock<Arc<BifrostConn>>,
    descope: OnceLock<Arc<DescopeConn>>,
}

impl<'c> Pair<'c> {
    /// The pair the state file's plan was made for.
    pub fn recorded(ctx: &'c Ctx, db: &StateDb) -> Result<Pair<'c>> {
        let kind = db.recorded_mapping()?.pair;
        Ok(Pair {
            ctx,
            kind,
            workspaces: db.load_inventory_of(&["workspace"])?.workspaces,
            source_file: crate::state::source_file(db)?.map(PathBuf::from),
            max_rate: None,
            workato: OnceLock::new(),
            bifrost: OnceLock::new(),
            descope: OnceLock::new(),
        })
    }

    /// Cap writes below the vendor's limit (`--max-rate`).
    pub fn with_max_rate(mut self, max_rate: Option<f64>) -> Self {
        self.max_rate = max_rate;
        self
    }

    fn workato(&self) -> Result<Arc<WorkatoConn>> {
        if let Some(c) = self.workato.get() {
            return Ok(c.clone());
        }
        let c = providers::workato::connect(self.ctx, self.max_rate, Patience::Run)?;
        Ok(self.workato.get_or_init(|| c).clone())
    }

    fn bifrost(&self) -> Result<Arc<BifrostConn>> {
        if let Some(c) = self.bifrost.get() {
            return Ok(c.clone());
        }
        let c = providers::bifrost::connect(self.ctx, self.max_rate, Patience::Run)?;
        Ok(self.bifrost.get_or_init(|| c).clone())
    }

    fn descope(&self) -> Result<Arc<DescopeConn>> {
        if let Some(c) = self.descope.get() {
            return Ok(c.clone());
        }
        let c = providers::descope::connect(self.ctx, self.max_rate, Patience::Run)?;
        Ok(self.descope.get_or_init(|| c).clone())
    }

    pub fn target(&self) -> Result<Arc<dyn Target>> {
        Ok(match self.kind {
            PairKind::WorkatoV2 => Arc::new(ApiKeys::new(self.workato()?, self.workspaces.clone())),
            PairKind::WorkatoToDescope => Arc::new(Flat(self.descope()?)),
            PairKind::BifrostVirtualKeys => Arc::new(Flat(self.bifrost()?)),
        })
    }

    pub fn source(&self) -> Result<Arc<dyn Source>> {
        if let Some(path) = &self.source_file {
            return Ok(Arc::new(Legacy::File(path.clone())));
        }
        Ok(match self.kind {
            PairKind::WorkatoV2 | PairKind::WorkatoToDescope => {
                Arc::new(Legacy::api(self.workato()?, self.workspaces.clone()))
            }
            PairKind::BifrostVirtualKeys => self.bifrost()?,
        })
    }

    /// The live prober of the target: Workato's API gateway (its address from
    /// KEYSHIFT_WORKATO_GATEWAY_URL, the config, or derived from the management URL), a
    /// Descope exchange, a Bifrost quota call.
    pub fn prober(&self, inv: &Inventory, deadline: Duration) -> Result<Box<dyn Prober>> {
        Ok(match self.kind {
            PairKind::WorkatoV2 => Box::new(GatewayProbe::connect(self.ctx, inv, deadline)?),
            PairKind::WorkatoToDescope => Box::new(Flat(self.descope()?)),
            PairKind::BifrostVirtualKeys => Box::new(Flat(self.bifrost()?)),
        })
    }

    /// Whether the source is an inventory file rather than the vendor's API.
    pub fn source_file(&self) -> Option<&std::path::Path> {
        self.source_file.as_deref()
    }
}

impl Pair<'_> {
    /// Where the old and the new credentials' use shows (`keyshift adoption`): Workato's Logs
    /// exports (`workato_logs`: `[WORKSPACE=]FILE`), Bifrost's request logs, Descope's audit.
    pub fn usage(
        &self,
        workato_logs: &[String],
    ) -> Result<(Arc<dyn UsageSource>, Arc<dyn UsageSource>)> {
        let logs = || -> Result<Arc<dyn UsageSource>> {
            Ok(Arc::new(WorkatoLogs::read(workato_logs, &self.workspaces)?))
        };
        if !workato_logs.is_empty() && self.kind == PairKind::BifrostVirtualKeys {
            return Err(KeyshiftError::Usage(
                "--workato-logs is for Workato sources; this run reads Bifrost's own request \
                 logs — drop it"
                    .into(),
            )
            .into());
        }
        Ok(match self.kind {
            PairKind::WorkatoV2 => {
                let l = logs()?;
                (l.clone(), l)
            }
            PairKind::WorkatoToDescope => (logs()?, self.descope()?),
            PairKind::BifrostVirtualKeys => {
                let b: Arc<dyn UsageSource> = self.bifrost()?;
                (b.clone(), b)
            }
        })
    }

    /// "Now" for the rollout: `--now`, else the vendor's clock from one fresh read, else the
    /// machine's.
    pub async fn judged_now(&self) -> chrono::DateTime<chrono::Utc> {
        match self.ctx.now_override {
            Some(t) => t,
            None => self.vendor_now().await.unwrap_or_else(chrono::Utc::now),
        }
    }

    /// The consumers of the recorded plan with both sides filled: the source names them,
    /// the target says where their new credentials' use shows (`ops`: apply's journal).
    pub fn consumers(
        &self,
        inv: &Inventory,
        plan: &Plan,
        ops: &[crate::state::Operation],
    ) -> Result<Vec<crate::engine::adoption::Consumer>> {
        crate::engine::adoption::consumers(
            self.source()?.as_ref(),
            self.target()?.as_ref(),
            inv,
            plan,
            &crate::engine::rollout::created(ops),
        )
    }

    /// The vendor's clock now, from one fresh read (never an offset remembered from an
    /// earlier run); `None` when no vendor answered.
    pub async fn vendor_now(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let seen = match self.kind {
            PairKind::WorkatoV2 | PairKind::WorkatoToDescope => None,
            PairKind::BifrostVirtualKeys => self.bifrost().ok().and_then(|b| b.http().server_now()),
        };
        if seen.is_some() {
            return seen;
        }
        match self.kind {
            PairKind::WorkatoV2 => providers::workato::clock(self.ctx).await,
            PairKind::WorkatoToDescope => match providers::workato::clock(self.ctx).await {
                Some(t) => Some(t),
                None => {
                    let d = self.descope().ok()?;
                    let _ = d.search("keyshift:").await;
                    d.http().server_now()
                }
            },
            PairKind::BifrostVirtualKeys => {
                let b = self.bifrost().ok()?;
                let _ = b.mcp_clients().await;
                b.http().server_now()
            }
        }
    }
}

/// Read the mapping's source into an inventory (`keyshift export`): live, or with `--from`
/// from an inventory file.
pub async fn export(ctx: &Ctx, mapping: &Mapping, args: &ExportArgs) -> Result<Exported> {
    match (mapping.pair, &args.from) {
        (PairKind::BifrostVirtualKeys, _) => {
            // Workato's flags mean nothing to a Bifrost export: say so rather than ignore one.
            let workato_only = [
                ("--from", args.from.is_some()),
                ("--to-file", args.to_file.is_some()),
                ("--api", args.api.is_some()),
                ("--workspaces", args.workspaces.is_some()),
            ];
            if let Some((flag, _)) = workato_only.iter().find(|(_, given)| *given) {
                return Err(KeyshiftError::Usage(format!(
                    "export {flag} is for Workato sources; the mapping {:?} reads Bifrost \
                     access profiles, always live from KEYSHIFT_BIFROST_URL — drop {flag}",
                    mapping.origin
                ))
                .into());
            }
            providers::bifrost::export::export(
                &*providers::bifrost::connect(ctx, None, Patience::Run)?,
                mapping,
            )
            .await
        }
        (PairKind::WorkatoV2 | PairKind::WorkatoToDescope, Some(path)) => {
            providers::workato::export::from_file(path)
        }
        (PairKind::WorkatoV2 | PairKind::WorkatoToDescope, None) => {
            providers::workato::export::export(
                providers::workato::connect(ctx, None, Patience::Run)?,
                mapping,
                args.api.as_deref(),
                args.workspaces.as_deref(),
                args.to_file.as_deref(),
                &ctx.printer,
            )
            .await
        }
    }
}

/// The vendor sections `keyshift.toml` may hold, each with its provider's check.
pub const CONFIG_SECTIONS: &[crate::context::Section] =
    &[(providers::workato::VENDOR, providers::workato::check_config)];

/// How the target of `pair` calls its objects (for commands that open no connection).
pub fn words(pair: PairKind) -> Words {
    match pair {
        PairKind::WorkatoV2 => providers::workato::target::WORDS,
        PairKind::WorkatoToDescope => providers::descope::WORDS,
        PairKind::BifrostVirtualKeys => providers::bifrost::WORDS,
    }
}

/// Map the exported inventory into the plan of `mapping`'s pair: pure, no network.
/// `taken_names`: names on the target already used by credentials that are not ours.
pub fn plan(
    inv: &Inventory,
    mapping: &Mapping,
    signing: &SigningIndex,
    taken_names: &[String],
) -> Result<Plan> {
    Ok(match mapping.pair {
        PairKind::WorkatoV2 => crate::providers::workato::plan::plan(inv, mapping, signing),
        PairKind::WorkatoToDescope => crate::providers::descope::plan::plan(inv, mapping),
        PairKind::BifrostVirtualKeys => {
            let read = crate::providers::bifrost::plan::BifrostInventory::read(inv)?;
            crate::providers::bifrost::plan::plan(&read, mapping, &mapping.named_holders()?, taken_names)
        }
    })
}

/// `keyshift doctor`'s vendor checks: Workato always, Descope and Bifrost when configured;
/// and the vendor's clock, when a response said.
pub async fn doctor(ctx: &Ctx) -> Result<(Vec<(&'static str, Result<String>)>, Option<ServerNow>)> {
    let mut out = Vec::new();
    let (workato, server_now) = match providers::workato::doctor(ctx).await {
        Ok((detail, server_now)) => (Ok(detail), server_now),
        Err(e) => (Err(e), None),
    };
    out.push(("workato", workato));
    if ctx.env.get("KEYSHIFT_DESCOPE_PROJECT_ID")?.is_some() {
        out.push(("descope", providers::descope::doctor(ctx).await));
    }
    if ctx.env.get("KEYSHIFT_BIFROST_URL")?.is_some() {
        out.push(("bifrost", providers::bifrost::doctor(ctx).await));
    }
    Ok((out, server_now))
}

type ServerNow = chrono::DateTime<chrono::Utc>;

/// What a migrated consumer must change, in the hand-over, for the target of `pair`.
pub fn consumer_action(pair: PairKind) -> fn(&ConsumerChange) -> String {
    match pair {
        PairKind::WorkatoV2 => providers::workato::consumer_action,
        PairKind::WorkatoToDescope => providers::descope::consumer_action,
        PairKind::BifrostVirtualKeys => providers::bifrost::consumer_action,
    }
}

/// The consumers of a plan, from the state alone (no connection): who moves, as the source's
/// usage records can tell them apart.
pub fn consumers(
    pair: PairKind,
    inv: &Inventory,
    plan: &Plan,
) -> Result<Vec<crate::engine::adoption::Consumer>> {
    match pair {
        PairKind::WorkatoV2 | PairKind::WorkatoToDescope => {
            Ok(providers::workato::usage::consumers(inv, plan))
        }
        PairKind::BifrostVirtualKeys => providers::bifrost::usage::consumers(
            &crate::providers::bifrost::plan::BifrostInventory::read(inv)?,
            plan,
        ),
    }
}

/// How a consumer proves its new credential works, for its hand-over page.
pub fn how_to_test(pair: PairKind) -> &'static str {
    match pair {
        PairKind::WorkatoV2 => providers::workato::HOW_TO_TEST,
        PairKind::WorkatoToDescope => providers::descope::HOW_TO_TEST,
        PairKind::BifrostVirtualKeys => providers::bifrost::HOW_TO_TEST,
    }
}

/// The rate limit (requests per minute) that paces writes to the target of `pair`; `api` is
/// the API the export read (`export.api`).
pub fn write_limit(pair: PairKind, api: &str) -> f64 {
    match pair {
        PairKind::WorkatoV2 if api == "embedded" => providers::workato::EMBEDDED_LIMIT_PER_MINUTE,
        PairKind::WorkatoV2 => providers::workato::DEVELOPER_LIMIT_PER_MINUTE,
        PairKind::WorkatoToDescope => providers::descope::LIMIT_PER_MINUTE,
        PairKind::BifrostVirtualKeys => providers::bifrost::LIMIT_PER_MINUTE,
    }
}
