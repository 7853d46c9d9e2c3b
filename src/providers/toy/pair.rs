//! The toy pair's entry in the registry: its spec (with a `[toy]` section of its own), export,
//! planner and connections.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use super::{ToyConn, WORKSPACE};
use crate::cli::ExportArgs;
use crate::context::Ctx;
use crate::engine::adoption::{Consumer, UsageSource};
use crate::engine::verify::Prober;
use crate::engine::{Exported, Fut, Source, Target, Words};
use crate::http::{Patience, RateBudget};
use crate::mapping::{check_template, render, Mapping, Own, PairSpec};
use crate::model::{ConsumerChange, Inventory, Plan, StandaloneSpec, Vendor, Workspace};
use crate::pair::{Connected, Lazy, PairDef, Run, VendorDef};
use crate::providers::standalone::Standalone;
use crate::secrets::SigningIndex;

/// The toy vendor: checked by `doctor` when KEYSHIFT_TOY_STORE is set.
pub struct Toy;

pub static VENDOR_DEF: Toy = Toy;

impl VendorDef for Toy {
    fn name(&self) -> &'static str {
        super::VENDOR
    }
    fn configured_by(&self) -> Option<&'static str> {
        Some("KEYSHIFT_TOY_STORE")
    }
    fn doctor<'a>(&'a self, ctx: &'a Ctx) -> Fut<'a, Result<(String, Option<DateTime<Utc>>)>> {
        Box::pin(async move {
            let store = store(ctx)?;
            let n = super::world(&store).profiles.len();
            Ok((format!("store {store:?}: {n} toy profile(s)"), None))
        })
    }
}

/// Toy profiles → toy keys.
pub struct ProfilesToKeys;

pub static PAIR: ProfilesToKeys = ProfilesToKeys;

static SPEC: PairSpec = PairSpec {
    name: "toy-profiles-to-keys",
    source: "toy-profiles",
    target: "toy-keys",
    shipped: "[pair]\nsource = \"toy-profiles\"\ntarget = \"toy-keys\"\n\n[toy]\nname = \"{profile.name} (new)\"\nscope = \"read\"\n",
    source_vendor: Vendor::Toy,
    target_vendor: Vendor::Toy,
    sections: &["toy"],
    source_fields: &["name"],
    needs_deadlines: false,
    load,
};

/// `[toy]`: the key name template and the scope every key gets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToySection {
    pub name: String,
    pub scope: String,
}

fn load(mapping: &Mapping, problems: &mut Vec<String>) -> Result<Own, String> {
    let Some(toy) = mapping.section::<ToySection>("toy")? else {
        return Err(format!(
            "mapping file {}: key toy: missing — add [toy] name and scope",
            mapping.origin
        ));
    };
    check_template(
        "toy.name",
        &toy.name,
        &["profile.name", "profile.id"],
        problems,
    );
    if !["read", "write"].contains(&toy.scope.as_str()) {
        problems.push(format!(
            "key toy.scope: {:?} — use \"read\" or \"write\"",
            toy.scope
        ));
    }
    Ok(Own::new(toy))
}

fn store(ctx: &Ctx) -> Result<String> {
    ctx.env.require("KEYSHIFT_TOY_STORE", "name the toy store")
}

fn connect(ctx: &Ctx, max_rate: Option<f64>) -> Result<Arc<ToyConn>> {
    Ok(Arc::new(ToyConn {
        store: store(ctx)?,
        http: Arc::new(ctx.http_client("KEYSHIFT_TOY_STORE", Patience::Run)?),
        budget: RateBudget::new(super::VENDOR, 6000.0, ctx.rate_scale()?, max_rate),
    }))
}

impl PairDef for ProfilesToKeys {
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
        6000.0
    }
    fn how_to_test(&self) -> &'static str {
        "Call the toy vendor with the new key."
    }
    fn consumer_action(&self, change: &ConsumerChange) -> String {
        format!(
            "use the new toy key ({}) instead of the old credential",
            change.at
        )
    }
    fn consumers(&self, inv: &Inventory, plan: &Plan) -> Result<Vec<Consumer>> {
        super::consumers(inv, plan)
    }
    fn plan(
        &self,
        inv: &Inventory,
        mapping: &Mapping,
        _signing: &SigningIndex,
        _taken_names: &[String],
    ) -> Result<Plan> {
        let toy: &ToySection = mapping.own();
        let items = inv
            .records
            .iter()
            .filter(|r| r.active.is_some())
            .map(|r| {
                let id = r.id.to_string();
                StandaloneSpec {
                    source: super::profile_marker(&id),
                    workspace: WORKSPACE.into(),
                    profile_id: id.clone(),
                    profile_name: r.name.clone(),
                    holder: None,
                    name: render(&toy.name, &[("profile.name", &r.name), ("profile.id", &id)]),
                    active: r.active == Some(true),
                    grant: json!({ "scope": toy.scope }),
                }
            })
            .collect();
        Ok(Plan {
            items,
            ..Plan::default()
        })
    }
    fn export<'a>(
        &'a self,
        ctx: &'a Ctx,
        _mapping: &'a Mapping,
        _args: &'a ExportArgs,
    ) -> Fut<'a, Result<Exported>> {
        Box::pin(async move {
            let store = store(ctx)?;
            let profiles = super::world(&store).profiles.clone();
            let inv = Inventory {
                workspaces: vec![Workspace {
                    id: WORKSPACE.into(),
                    external_id: None,
                    name: "Toy".into(),
                    admin: true,
                }],
                records: super::records(&profiles),
                ..Inventory::default()
            };
            Ok(Exported {
                summary: format!("read {} toy profile(s)", profiles.len()),
                fingerprint: Some(super::fingerprint(
                    profiles.into_iter().map(|p| (p.id, p.name, p.active)),
                )),
                api: "toy".into(),
                inv,
                ..Exported::default()
            })
        })
    }
    fn connect<'c>(&self, run: Run<'c>) -> Box<dyn Connected + 'c> {
        Box::new(ToyLive {
            run,
            conn: Lazy::default(),
        })
    }
}

struct ToyLive<'c> {
    run: Run<'c>,
    conn: Lazy<ToyConn>,
}

impl ToyLive<'_> {
    fn conn(&self) -> Result<Arc<ToyConn>> {
        self.conn.get(|| connect(self.run.ctx, self.run.max_rate))
    }
}

impl Connected for ToyLive<'_> {
    fn source(&self) -> Result<Arc<dyn Source>> {
        Ok(self.conn()?)
    }
    fn target(&self) -> Result<Arc<dyn Target>> {
        Ok(Arc::new(Standalone(self.conn()?)))
    }
    fn prober(&self, _inv: &Inventory, _deadline: Duration) -> Result<Box<dyn Prober>> {
        Ok(Box::new(Standalone(self.conn()?)))
    }
    fn usage(&self, _logs: &[String]) -> Result<(Arc<dyn UsageSource>, Arc<dyn UsageSource>)> {
        let c: Arc<dyn UsageSource> = self.conn()?;
        Ok((c.clone(), c))
    }
    fn vendor_now(&self) -> Fut<'_, Option<DateTime<Utc>>> {
        Box::pin(async { None })
    }
}
