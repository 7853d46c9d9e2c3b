//! `keyshift handover`: handover.csv + handover.json for the people who own the consumers.

use anyhow::Result;
use std::path::Path;

use super::judged_now;
use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::report::{handover, Report};
use crate::secrets::create_private_dir;
use crate::secrets::write_private;
use crate::state::StateDb;

pub fn run(ctx: &Ctx, out: &Path, per_consumer: bool) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    // One report, one inventory read and one pass over the sink for both outputs.
    let pair = crate::registry::pair_of(&crate::registry::recorded_mapping(&db)?);
    let report = Report::build(&db, judged_now(ctx, &db)?, pair.words())?;
    let inv = db.load_inventory()?;
    let sink = ctx.sink_path()?;
    let rows = handover::rows(&report, &inv, &sink, &|c| pair.consumer_action(c))?;
    write(out, &rows)?;
    if per_consumer {
        let consumers = pair.consumers(&inv, &db.load_planned()?)?;
        let judged = match db.latest_snapshot()? {
            Some(s) => db.snapshot_consumers(s.id)?,
            None => Vec::new(),
        };
        let pages =
            handover::consumer_pages(&consumers, &rows, &judged, &sink, pair.how_to_test())?;
        let dir = out.join("consumers");
        create_private_dir(&dir)?;
        for (name, text) in &pages {
            write_private(&dir.join(name), text)?;
        }
        ctx.printer.line(format!(
            "{} consumer page(s) written to {}/consumers/",
            pages.len(),
            out.display()
        ));
    }
    ctx.printer.line(format!(
        "hand-over for {} profile(s) written to {}/handover.csv and handover.json (no secrets; \
         each row names its line in the secret sink)",
        rows.len(),
        out.display()
    ));
    Ok(ExitCode::Ok)
}

/// `handover.csv` and `handover.json` (0600).
fn write(out: &Path, rows: &[handover::HandoverRow]) -> Result<()> {
    create_private_dir(out)?;
    write_private(&out.join("handover.csv"), &handover::to_csv(rows)?)?;
    write_private(
        &out.join("handover.json"),
        &(serde_json::to_string_pretty(&serde_json::json!({
            "format_version": 1,
            "generated_at": crate::state::now(),
            "profiles": rows,
        }))? + "\n"),
    )?;
    Ok(())
}
