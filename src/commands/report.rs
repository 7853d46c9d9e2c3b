//! `keyshift report`: render the run's report (before apply: the dry-run report).

use anyhow::Result;

use super::judged_now;
use crate::cli::{ReportArgs, ReportFormat};
use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::report::{markdown, Report};
use crate::secrets::write_private;
use crate::state::StateDb;

pub fn run(ctx: &Ctx, args: &ReportArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let report = Report::build(
        &db,
        judged_now(ctx, &db)?,
        crate::registry::pair_of(&crate::registry::recorded_mapping(&db)?).words(),
    )?;
    if args.format == ReportFormat::Csv {
        let dir = args
            .out
            .clone()
            .unwrap_or_else(|| std::path::PathBuf::from("."));
        let files = crate::report::csv::write_all(&report, &dir)?;
        ctx.printer
            .line(format!("wrote {} into {}", files.join(", "), dir.display()));
        return Ok(ExitCode::Ok);
    }
    let text = render(&report, args.format)?;
    match &args.out {
        Some(path) => {
            write_private(path, &text)?;
            ctx.printer
                .line(format!("report written to {}", path.display()));
        }
        None => ctx.printer.raw(text.trim_end()),
    }
    Ok(ExitCode::Ok)
}

pub fn render(report: &Report, format: ReportFormat) -> Result<String> {
    Ok(match format {
        ReportFormat::Md => markdown::render(report),
        ReportFormat::Html => crate::report::html::render(report),
        ReportFormat::Json => serde_json::to_string_pretty(report)? + "\n",
        ReportFormat::Csv => anyhow::bail!("CSV is a directory of files: use --out DIR"),
    })
}
