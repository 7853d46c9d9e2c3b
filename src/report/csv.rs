//! CSV per category, for spreadsheets: migrated, skipped (blocked or excluded), failed, and
//! manual action (findings someone must act on). Every cell is neutralised for spreadsheets
//! (`output::csv_cell`).

use anyhow::Result;
use std::path::Path;

use super::{ProfileRow, Report};

fn profiles_csv<'a>(rows: impl Iterator<Item = &'a ProfileRow>) -> Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    crate::output::neutralize_csv(&w.into_inner()?)
}

/// Write the four files into `dir`; returns their names.
pub fn write_all(report: &Report, dir: &Path) -> Result<Vec<String>> {
    crate::secrets::create_private_dir(dir)?;
    let write = |name: &str, text: String| -> Result<String> {
        crate::secrets::write_private(&dir.join(name), &text)?;
        Ok(name.to_string())
    };
    let mut out = Vec::new();
    out.push(write(
        "migrated.csv",
        profiles_csv(report.profiles.iter().filter(|p| p.status == "migrated"))?,
    )?);
    out.push(write(
        "skipped.csv",
        profiles_csv(
            report
                .profiles
                .iter()
                .filter(|p| p.status == "blocked" || p.status == "excluded"),
        )?,
    )?);
    out.push(write(
        "failed.csv",
        profiles_csv(report.profiles.iter().filter(|p| p.status == "failed"))?,
    )?);
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for f in report
        .findings
        .iter()
        .filter(|f| f.kind.as_str() == "manual")
    {
        w.serialize(f)?;
    }
    out.push(write(
        "manual_action.csv",
        crate::output::neutralize_csv(&w.into_inner()?)?,
    )?);
    Ok(out)
}
