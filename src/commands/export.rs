//! `keyshift export`: read every source object into the state DB. Never writes remotely.

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::ExportArgs;
use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::registry;
use crate::state::StateDb;

pub async fn run(ctx: &Ctx, args: &ExportArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, true)?;
    let _lock = super::writer_lock(ctx, "export")?;
    // A re-export keeps the recorded mapping unless told otherwise.
    let mapping = match (&args.mapping, db.meta("mapping.text")?) {
        (Some(m), _) => registry::load_mapping(m)?,
        (None, Some(text)) => {
            registry::parse_mapping(&db.meta("mapping.origin")?.unwrap_or_default(), &text)?
        }
        (None, None) => registry::load_mapping(registry::default_mapping())?,
    };
    let out = registry::pair_of(&mapping)
        .export(ctx, &mapping, args)
        .await?;
    let saved = db.save_inventory(&out.inv)?;
    let fingerprint = out.fingerprint.unwrap_or(saved);
    db.set_meta("mapping.origin", &mapping.origin)?;
    db.set_meta("mapping.text", &mapping.text)?;
    db.set_meta("export.fingerprint", &fingerprint)?;
    db.set_meta("export.api", &out.api)?;
    db.set_meta(
        crate::state::SOURCE_FILE_META,
        out.source_file.as_deref().unwrap_or(""),
    )?;
    for (key, value) in &out.meta {
        db.set_meta(key, value)?;
    }
    db.set_meta("export.at", &crate::state::now())?;
    if let Some(offset) = out.server_offset_secs {
        db.set_meta("export.server_offset_secs", &offset.to_string())?;
    }
    let mut event = out.counts.clone();
    event.insert("fingerprint".into(), json!(fingerprint));
    event.insert("requests".into(), json!(out.requests));
    db.event("export", None, &Value::Object(event.clone()))?;
    let p = &ctx.printer;
    for w in &out.warnings {
        p.warn(w);
    }
    for n in &out.notes {
        p.line(n);
    }
    p.line(format!("{} into {}", out.summary, ctx.state_path.display()));
    p.line("next: keyshift plan");
    p.event("export.done", Value::Object(event));
    Ok(ExitCode::Ok)
}
