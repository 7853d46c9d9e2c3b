//! Bifrost in the registry: the vendor (`doctor` when configured) and the access profiles →
//! virtual keys pair.

use anyhow::Result;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

use super::{sections, BifrostConn};
use crate::cli::ExportArgs;
use crate::context::Ctx;
use crate::engine::adoption::{Consumer, UsageSource};
use crate::engine::verify::Prober;
use crate::engine::{Exported, Fut, Source, Target, Words};
use crate::errors::KeyshiftError;
use crate::http::Patience;
use crate::mapping::{Mapping, PairSpec};
use crate::model::{ConsumerChange, Inventory, Plan, Vendor};
use crate::pair::{Connected, Lazy, PairDef, Run, VendorDef};
use crate::providers::standalone::Standalone;
use crate::secrets::SigningIndex;

/// Bifrost as a vendor: checked by `doctor` when KEYSHIFT_BIFROST_URL is set.
pub struct Bifrost;

pub static VENDOR_DEF: Bifrost = Bifrost;

impl VendorDef for Bifrost {
    fn name(&self) -> &'static str {
        super::VENDOR
    }
    fn configured_by(&self) -> Option<&'static str> {
        Some("KEYSHIFT_BIFROST_URL")
    }
    fn doctor<'a>(&'a self, ctx: &'a Ctx) -> Fut<'a, Result<(String, Option<DateTime<Utc>>)>> {
        Box::pin(async move { Ok((super::doctor(ctx).await?, None)) })
    }
}

/// Bifrost access profiles → standalone virtual keys.
pub struct ProfilesToVirtualKeys;

pub static PROFILES_TO_VIRTUAL_KEYS: ProfilesToVirtualKeys = ProfilesToVirtualKeys;

static SPEC: PairSpec = PairSpec {
    name: "bifrost-profiles-to-virtual-keys",
    source: "bifrost-profiles",
    target: "bifrost-virtual-keys",
    shipped: include_str!("../../../mappings/bifrost-profiles-to-virtual-keys.toml"),
    source_vendor: Vendor::Bifrost,
    target_vendor: Vendor::Bifrost,
    sections: &["bifrost"],
    source_fields: sections::SOURCE_FIELDS,
    needs_deadlines: false,
    load: sections::load,
};

impl PairDef for ProfilesToVirtualKeys {
    fn spec(&self) -> &'static PairSpec {
        &SPEC
    }
    fn vendors(&self) -> &'static [&'static dyn VendorDef] {
        static VENDORS: [&dyn VendorDef; 1] = [&VENDOR_DEF];
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
        super::usage::consumers(&super::plan::BifrostInventory::read(inv)?, plan)
    }
    fn plan(
        &self,
        inv: &Inventory,
        mapping: &Mapping,
        _signing: &SigningIndex,
        taken_names: &[String],
    ) -> Result<Plan> {
        let read = super::plan::BifrostInventory::read(inv)?;
        let holders = sections::named_holders(mapping)?;
        Ok(super::plan::plan(&read, mapping, &holders, taken_names))
    }
    fn export<'a>(
        &'a self,
        ctx: &'a Ctx,
        mapping: &'a Mapping,
        args: &'a ExportArgs,
    ) -> Fut<'a, Result<Exported>> {
        Box::pin(async move {
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
            super::export::export(&*super::connect(ctx, None, Patience::Run)?, mapping).await
        })
    }
    fn connect<'c>(&self, run: Run<'c>) -> Box<dyn Connected + 'c> {
        Box::new(BifrostLive {
            run,
            bifrost: Lazy::default(),
        })
    }
}

struct BifrostLive<'c> {
    run: Run<'c>,
    bifrost: Lazy<BifrostConn>,
}

impl BifrostLive<'_> {
    fn bifrost(&self) -> Result<Arc<BifrostConn>> {
        self.bifrost
            .get(|| super::connect(self.run.ctx, self.run.max_rate, Patience::Run))
    }
}

impl Connected for BifrostLive<'_> {
    fn source(&self) -> Result<Arc<dyn Source>> {
        Ok(self.bifrost()?)
    }
    fn target(&self) -> Result<Arc<dyn Target>> {
        Ok(Arc::new(Standalone(self.bifrost()?)))
    }
    /// A quota call per key.
    fn prober(&self, _inv: &Inventory, _deadline: Duration) -> Result<Box<dyn Prober>> {
        Ok(Box::new(Standalone(self.bifrost()?)))
    }
    /// Bifrost's own request logs, for both sides.
    fn usage(&self, logs: &[String]) -> Result<(Arc<dyn UsageSource>, Arc<dyn UsageSource>)> {
        if !logs.is_empty() {
            return Err(KeyshiftError::Usage(
                "--workato-logs is for Workato sources; this run reads Bifrost's own request \
                 logs — drop it"
                    .into(),
            )
            .into());
        }
        let b: Arc<dyn UsageSource> = self.bifrost()?;
        Ok((b.clone(), b))
    }
    /// The clock of the last response, else one read of the MCP clients.
    fn vendor_now(&self) -> Fut<'_, Option<DateTime<Utc>>> {
        Box::pin(async move {
            let b = self.bifrost().ok()?;
            if let Some(t) = b.http().server_now() {
                return Some(t);
            }
            let _ = b.mcp_clients().await;
            b.http().server_now()
        })
    }
}
