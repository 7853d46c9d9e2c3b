//! Workato in the registry: the vendor (config section, `doctor`), the legacy → v2 pair, and
//! the legacy source every pair that reads Workato shares (export, source, usage logs).

use anyhow::Result;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

use super::source::Legacy;
use super::target::ApiKeys;
use super::usage::WorkatoLogs;
use super::verify::GatewayProbe;
use super::{sections, WorkatoConn};
use crate::cli::ExportArgs;
use crate::context::{Ctx, Section};
use crate::engine::adoption::{Consumer, UsageSource};
use crate::engine::verify::Prober;
use crate::engine::{Exported, Fut, Source, Target, Words};
use crate::http::Patience;
use crate::mapping::{Mapping, PairSpec};
use crate::model::{ConsumerChange, Inventory, Plan, Vendor};
use crate::pair::{Connected, Lazy, PairDef, Run, VendorDef};
use crate::secrets::SigningIndex;

/// Workato as a vendor: `[workato]` in keyshift.toml, and always checked by `doctor`.
pub struct Workato;

pub static VENDOR_DEF: Workato = Workato;

impl VendorDef for Workato {
    fn name(&self) -> &'static str {
        super::VENDOR
    }
    fn config_section(&self) -> Option<Section> {
        Some((super::VENDOR, super::check_config))
    }
    fn configured_by(&self) -> Option<&'static str> {
        None
    }
    fn doctor<'a>(&'a self, ctx: &'a Ctx) -> Fut<'a, Result<(String, Option<DateTime<Utc>>)>> {
        Box::pin(super::doctor(ctx))
    }
}

/// Workato legacy API clients + access profiles → v2 API clients + API keys.
pub struct LegacyToV2;

pub static LEGACY_TO_V2: LegacyToV2 = LegacyToV2;

static LEGACY_TO_V2_SPEC: PairSpec = PairSpec {
    name: "workato-legacy-to-v2",
    source: "workato-legacy",
    target: "workato-v2",
    shipped: include_str!("../../../mappings/workato-legacy-to-v2.toml"),
    source_vendor: Vendor::Workato,
    target_vendor: Vendor::Workato,
    sections: &["client"],
    source_fields: sections::SOURCE_FIELDS,
    needs_deadlines: true,
    load: sections::load_v2,
};

impl PairDef for LegacyToV2 {
    fn spec(&self) -> &'static PairSpec {
        &LEGACY_TO_V2_SPEC
    }
    fn vendors(&self) -> &'static [&'static dyn VendorDef] {
        static VENDORS: [&dyn VendorDef; 1] = [&VENDOR_DEF];
        &VENDORS
    }
    fn words(&self) -> Words {
        super::target::WORDS
    }
    fn write_limit(&self, api: &str) -> f64 {
        if api == "embedded" {
            super::EMBEDDED_LIMIT_PER_MINUTE
        } else {
            super::DEVELOPER_LIMIT_PER_MINUTE
        }
    }
    fn how_to_test(&self) -> &'static str {
        super::HOW_TO_TEST
    }
    fn consumer_action(&self, change: &ConsumerChange) -> String {
        super::consumer_action(change)
    }
    fn consumers(&self, inv: &Inventory, plan: &Plan) -> Result<Vec<Consumer>> {
        Ok(super::usage::consumers(inv, plan))
    }
    fn plan(
        &self,
        inv: &Inventory,
        mapping: &Mapping,
        signing: &SigningIndex,
        _taken_names: &[String],
    ) -> Result<Plan> {
        Ok(super::plan::plan(inv, mapping, signing))
    }
    fn export<'a>(
        &'a self,
        ctx: &'a Ctx,
        mapping: &'a Mapping,
        args: &'a ExportArgs,
    ) -> Fut<'a, Result<Exported>> {
        Box::pin(export_legacy(ctx, mapping, args))
    }
    fn connect<'c>(&self, run: Run<'c>) -> Box<dyn Connected + 'c> {
        Box::new(V2Live {
            legacy: LegacyLive::new(run),
        })
    }
}

/// Read Workato's legacy objects (`keyshift export`): live, or with `--from` from an
/// inventory file.
pub async fn export_legacy(ctx: &Ctx, mapping: &Mapping, args: &ExportArgs) -> Result<Exported> {
    match &args.from {
        Some(path) => super::export::from_file(path),
        None => {
            super::export::export(
                super::connect(ctx, None, Patience::Run)?,
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

/// The live side of a Workato legacy source, for every pair that reads one.
pub struct LegacyLive<'c> {
    pub run: Run<'c>,
    workato: Lazy<WorkatoConn>,
}

impl<'c> LegacyLive<'c> {
    pub fn new(run: Run<'c>) -> Self {
        LegacyLive {
            run,
            workato: Lazy::default(),
        }
    }

    pub fn conn(&self) -> Result<Arc<WorkatoConn>> {
        self.workato
            .get(|| super::connect(self.run.ctx, self.run.max_rate, Patience::Run))
    }

    /// The legacy API, or the inventory file `export --from` read.
    pub fn source(&self) -> Result<Arc<dyn Source>> {
        if let Some(path) = &self.run.source_file {
            return Ok(Arc::new(Legacy::File(path.clone())));
        }
        Ok(Arc::new(Legacy::api(
            self.conn()?,
            self.run.workspaces.clone(),
        )))
    }

    /// The API platform's Logs exports (`[WORKSPACE=]FILE`).
    pub fn logs(&self, logs: &[String]) -> Result<Arc<dyn UsageSource>> {
        Ok(Arc::new(WorkatoLogs::read(logs, &self.run.workspaces)?))
    }

    /// Workato's clock now (one fresh read).
    pub async fn clock(&self) -> Option<DateTime<Utc>> {
        super::clock(self.run.ctx).await
    }
}

struct V2Live<'c> {
    legacy: LegacyLive<'c>,
}

impl Connected for V2Live<'_> {
    fn source(&self) -> Result<Arc<dyn Source>> {
        self.legacy.source()
    }
    fn target(&self) -> Result<Arc<dyn Target>> {
        Ok(Arc::new(ApiKeys::new(
            self.legacy.conn()?,
            self.legacy.run.workspaces.clone(),
        )))
    }
    /// Workato's API gateway (its address from KEYSHIFT_WORKATO_GATEWAY_URL, the config, or
    /// derived from the management URL).
    fn prober(&self, inv: &Inventory, deadline: Duration) -> Result<Box<dyn Prober>> {
        Ok(Box::new(GatewayProbe::connect(
            self.legacy.run.ctx,
            inv,
            deadline,
        )?))
    }
    fn usage(&self, logs: &[String]) -> Result<(Arc<dyn UsageSource>, Arc<dyn UsageSource>)> {
        let l = self.legacy.logs(logs)?;
        Ok((l.clone(), l))
    }
    fn vendor_now(&self) -> Fut<'_, Option<DateTime<Utc>>> {
        Box::pin(self.legacy.clock())
    }
}
