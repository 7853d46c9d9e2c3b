//! Descope in the registry: the vendor (`doctor` when configured) and the Workato legacy →
//! Descope access keys pair.

use anyhow::Result;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

use super::{sections, DescopeConn};
use crate::cli::ExportArgs;
use crate::context::Ctx;
use crate::engine::adoption::{Consumer, UsageSource};
use crate::engine::verify::Prober;
use crate::engine::{Exported, Fut, Source, Target, Words};
use crate::http::Patience;
use crate::mapping::{Mapping, PairSpec};
use crate::model::{ConsumerChange, Inventory, Plan, Vendor};
use crate::pair::{Connected, Lazy, PairDef, Run, VendorDef};
use crate::providers::standalone::Standalone;
use crate::providers::workato;
use crate::providers::workato::pair::LegacyLive;
use crate::secrets::SigningIndex;

/// Descope as a vendor: checked by `doctor` when KEYSHIFT_DESCOPE_PROJECT_ID is set.
pub struct Descope;

pub static VENDOR_DEF: Descope = Descope;

impl VendorDef for Descope {
    fn name(&self) -> &'static str {
        super::VENDOR
    }
    fn configured_by(&self) -> Option<&'static str> {
        Some("KEYSHIFT_DESCOPE_PROJECT_ID")
    }
    fn doctor<'a>(&'a self, ctx: &'a Ctx) -> Fut<'a, Result<(String, Option<DateTime<Utc>>)>> {
        Box::pin(async move { Ok((super::doctor(ctx).await?, None)) })
    }
}

/// Workato legacy access profiles → Descope access keys.
pub struct WorkatoToDescope;

pub static WORKATO_TO_DESCOPE: WorkatoToDescope = WorkatoToDescope;

static SPEC: PairSpec = PairSpec {
    name: "workato-legacy-to-descope",
    source: "workato-legacy",
    target: "descope",
    shipped: include_str!("../../../mappings/workato-legacy-to-descope.toml"),
    source_vendor: Vendor::Workato,
    target_vendor: Vendor::Descope,
    sections: &["descope"],
    source_fields: workato::sections::SOURCE_FIELDS,
    needs_deadlines: true,
    load: sections::load,
};

impl PairDef for WorkatoToDescope {
    fn spec(&self) -> &'static PairSpec {
        &SPEC
    }
    fn vendors(&self) -> &'static [&'static dyn VendorDef] {
        static VENDORS: [&dyn VendorDef; 2] = [&workato::pair::VENDOR_DEF, &VENDOR_DEF];
        &VENDORS
    }
    fn words(&self) -> Words {
        super::WORDS
    }
    fn write_limit(&self, _api: &str) -> f64 {
        super::LIMIT_PER_MINUTE
    }
    fn how_to_test(&self) -> &'static str {
        super::HOW_TO_TEST
    }
    fn consumer_action(&self, change: &ConsumerChange) -> String {
        super::consumer_action(change)
    }
    fn consumers(&self, inv: &Inventory, plan: &Plan) -> Result<Vec<Consumer>> {
        Ok(workato::usage::consumers(inv, plan))
    }
    fn plan(
        &self,
        inv: &Inventory,
        mapping: &Mapping,
        _signing: &SigningIndex,
        _taken_names: &[String],
    ) -> Result<Plan> {
        Ok(super::plan::plan(inv, mapping))
    }
    fn export<'a>(
        &'a self,
        ctx: &'a Ctx,
        mapping: &'a Mapping,
        args: &'a ExportArgs,
    ) -> Fut<'a, Result<Exported>> {
        Box::pin(workato::pair::export_legacy(ctx, mapping, args))
    }
    fn connect<'c>(&self, run: Run<'c>) -> Box<dyn Connected + 'c> {
        Box::new(DescopeLive {
            legacy: LegacyLive::new(run),
            descope: Lazy::default(),
        })
    }
}

struct DescopeLive<'c> {
    legacy: LegacyLive<'c>,
    descope: Lazy<DescopeConn>,
}

impl DescopeLive<'_> {
    fn descope(&self) -> Result<Arc<DescopeConn>> {
        let run = &self.legacy.run;
        self.descope
            .get(|| super::connect(run.ctx, run.max_rate, Patience::Run))
    }
}

impl Connected for DescopeLive<'_> {
    fn source(&self) -> Result<Arc<dyn Source>> {
        self.legacy.source()
    }
    fn target(&self) -> Result<Arc<dyn Target>> {
        Ok(Arc::new(Standalone(self.descope()?)))
    }
    /// A Descope exchange per key.
    fn prober(&self, _inv: &Inventory, _deadline: Duration) -> Result<Box<dyn Prober>> {
        Ok(Box::new(Standalone(self.descope()?)))
    }
    /// Workato's Logs exports for the old side, Descope's audit for the new.
    fn usage(&self, logs: &[String]) -> Result<(Arc<dyn UsageSource>, Arc<dyn UsageSource>)> {
        Ok((self.legacy.logs(logs)?, self.descope()?))
    }
    /// Workato's clock, else Descope's from one search.
    fn vendor_now(&self) -> Fut<'_, Option<DateTime<Utc>>> {
        Box::pin(async move {
            if let Some(t) = self.legacy.clock().await {
                return Some(t);
            }
            let d = self.descope().ok()?;
            let _ = d.search("keyshift:").await;
            d.http().server_now()
        })
    }
}
