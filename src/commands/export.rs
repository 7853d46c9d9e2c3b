//! `keyshift export`: read every source object into the state DB. Never writes remotely.

use anyhow::Result;
use serde_json::json;

use crate::cli::ExportArgs;
use crate::context::Ctx;
use crate::errors::{ExitCode, KeyshiftError};
use crate::http::HttpError;
use crate::mapping::{Mapping, DEFAULT_MAPPING};
use crate::model::{Inventory, Vendor};
use crate::providers::workato::{inventory_file, Api, WorkatoSource};
use crate::secrets::write_private;
use crate::state::StateDb;

/// Bifrost: access profiles (canonical paths, aliases as a fallback), MCP clients, and the
/// named holders' copies in per-holder mode.
async fn export_bifrost(ctx: &Ctx, db: &StateDb, mapping: &Mapping) -> Result<ExitCode> {
    let conn = ctx.bifrost(None)?;
    let (profiles, deprecated_only) = conn.list_profiles().await?;
    let mcp_clients = conn.mcp_clients().await?;
    let mut holdings = Vec::new();
    if mapping
        .file
        .bifrost
        .as_ref()
        .is_some_and(|b| b.mode == "per_holder")
    {
        for user in mapping.named_holders()? {
            holdings.extend(conn.holdings(&user).await?);
        }
    }
    let inv = Inventory {
        workspaces: vec![crate::model::Workspace {
            id: crate::providers::bifrost::WORKSPACE.into(),
            external_id: None,
            name: "Bifrost".into(),
            admin: true,
        }],
        bifrost_profiles: profiles,
        mcp_clients,
        holdings,
        ..Inventory::default()
    };
    // Virtual-key names are unique instance-wide: the plan avoids names already in use by
    // keys that are not ours.
    let taken: Vec<String> = conn
        .list_ours()
        .await?
        .into_iter()
        .filter(|k| k.source.is_none())
        .filter_map(|k| {
            k.body
                .get("name")
                .and_then(|n| n.as_str())
                .map(String::from)
        })
        .collect();
    db.set_meta("export.taken_names", &serde_json::to_string(&taken)?)?;
    let fingerprint = crate::providers::bifrost::source_fingerprint(&inv.bifrost_profiles);
    db.save_inventory(&inv)?;
    db.set_meta("mapping.origin", &mapping.origin)?;
    db.set_meta("mapping.text", &mapping.text)?;
    db.set_meta("export.fingerprint", &fingerprint)?;
    db.set_meta("export.api", "bifrost")?;
    db.set_meta("export.at", &crate::state::now())?;
    db.set_meta("export.deprecated_paths_only", &deprecated_only.to_string())?;
    let requests = conn.http().requests_sent();
    db.event(
        "export",
        None,
        &json!({ "profiles": inv.bifrost_profiles.len(), "mcp_clients": inv.mcp_clients.len(),
                 "holdings": inv.holdings.len(), "fingerprint": fingerprint, "requests": requests,
                 "deprecated_paths_only": deprecated_only }),
    )?;
    if deprecated_only {
        ctx.printer.warn(
            "this Bifrost deployment answers only the deprecated /api/access-profiles paths; \
             they are removed in the next major release — upgrade soon",
        );
    }
    ctx.printer.line(format!(
        "exported {} Bifrost access profiles, {} MCP clients, {} holder copies ({requests} \
         requests) into {}",
        inv.bifrost_profiles.len(),
        inv.mcp_clients.len(),
        inv.holdings.len(),
        ctx.state_path.display()
    ));
    ctx.printer.line("next: keyshift plan");
    Ok(ExitCode::Ok)
}

pub async fn run(ctx: &Ctx, args: &ExportArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, true)?;
    let _lock = super::writer_lock(ctx, "export")?;
    // A re-export keeps the recorded mapping unless told otherwise.
    let mapping = match (&args.mapping, db.meta("mapping.text")?) {
        (Some(m), _) => Mapping::load(m)?,
        (None, Some(text)) => {
            Mapping::parse(&db.meta("mapping.origin")?.unwrap_or_default(), &text)?
        }
        (None, None) => Mapping::load(DEFAULT_MAPPING)?,
    };
    if mapping.pair.source_vendor() == Vendor::Bifrost {
        return export_bifrost(ctx, &db, &mapping).await;
    }
    if let Some(path) = &args.from {
        return export_from_file(ctx, &db, &mapping, path);
    }
    let api_name = args
        .api
        .clone()
        .unwrap_or_else(|| mapping.file.source.api.clone());
    let api = Api::parse(&api_name).ok_or_else(|| {
        KeyshiftError::Usage(format!("--api {api_name:?}: use developer or embedded"))
    })?;
    let filter: Option<Vec<String>> = match args.workspaces.as_deref() {
        None | Some("all") => None,
        Some(list) => Some(list.split(',').map(|s| s.trim().to_string()).collect()),
    };
    if filter.is_some() && api == Api::Developer {
        return Err(KeyshiftError::Usage(
            "--workspaces applies to the Embedded API only — add --api embedded".into(),
        )
        .into());
    }

    let conn = ctx.workato(None)?;
    let source = WorkatoSource::new(conn.clone());
    let workspaces = source.workspaces(api, filter.as_deref()).await?;
    if workspaces.is_empty() {
        ctx.printer
            .warn("no workspace matched — check --workspaces against `GET /api/managed_users`");
    }
    let bar = ctx.printer.progress(workspaces.len() as u64, "export");
    let mut inv = Inventory {
        workspaces: workspaces.clone(),
        ..Inventory::default()
    };
    for ws in &workspaces {
        bar.set_message(ws.name.clone());
        source
            .export_workspace(ws, &mut inv)
            .await
            .map_err(legacy_api_gone)?;
        bar.inc(1);
        ctx.printer.event(
            "export.workspace",
            json!({ "workspace": ws.id, "profiles": inv.profiles.iter().filter(|p| p.workspace == ws.id).count() }),
        );
    }
    bar.finish_and_clear();

    let fingerprint = db.save_inventory(&inv)?;
    db.set_meta("mapping.origin", &mapping.origin)?;
    db.set_meta("mapping.text", &mapping.text)?;
    db.set_meta("export.fingerprint", &fingerprint)?;
    db.set_meta("export.api", api.as_str())?;
    db.set_meta(SOURCE_FILE_META, "")?;
    if let Some(path) = &args.to_file {
        write_private(
            path,
            &serde_json::to_string_pretty(&inventory_file::render(&inv))?,
        )?;
        ctx.printer.line(format!(
            "wrote the inventory (no secrets) to {} — `keyshift export --from {0}` reads it \
             back when the legacy API is gone",
            path.display()
        ));
    }
    db.set_meta("export.at", &crate::state::now())?;
    if let Some(server_now) = conn.http().server_now() {
        let offset = (server_now - chrono::Utc::now()).num_seconds();
        db.set_meta("export.server_offset_secs", &offset.to_string())?;
    }
    let requests = conn.http().requests_sent();
    db.event(
        "export",
        None,
        &json!({
            "workspaces": inv.workspaces.len(),
            "legacy_clients": inv.legacy_clients.len(),
            "profiles": inv.profiles.len(),
            "collections": inv.collections.len(),
            "fingerprint": fingerprint,
            "requests": requests,
        }),
    )?;
    ctx.printer.line(format!(
        "exported {} workspace(s): {} legacy API clients, {} access profiles, {} API collections \
         ({} requests) into {}",
        inv.workspaces.len(),
        inv.legacy_clients.len(),
        inv.profiles.len(),
        inv.collections.len(),
        requests,
        ctx.state_path.display()
    ));
    ctx.printer.line("next: keyshift plan");
    ctx.printer.event(
        "export.done",
        json!({
            "workspaces": inv.workspaces.len(),
            "legacy_clients": inv.legacy_clients.len(),
            "profiles": inv.profiles.len(),
            "fingerprint": fingerprint,
        }),
    );
    Ok(ExitCode::Ok)
}

/// Where `export --from` recorded its file (empty after a live export).
pub const SOURCE_FILE_META: &str = "export.source_file";

/// `export --from FILE`: the Workato inventory from a file instead of the legacy API.
fn export_from_file(
    ctx: &Ctx,
    db: &StateDb,
    mapping: &Mapping,
    path: &std::path::Path,
) -> Result<ExitCode> {
    if mapping.pair.source_vendor() != Vendor::Workato {
        return Err(KeyshiftError::Usage(
            "export --from reads Workato inventories; Bifrost profiles are always read live".into(),
        )
        .into());
    }
    let inv = inventory_file::read(path)?;
    let fingerprint = db.save_inventory(&inv)?;
    db.set_meta("mapping.origin", &mapping.origin)?;
    db.set_meta("mapping.text", &mapping.text)?;
    db.set_meta("export.fingerprint", &fingerprint)?;
    db.set_meta("export.api", "developer")?;
    db.set_meta("export.at", &crate::state::now())?;
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    db.set_meta(SOURCE_FILE_META, &absolute.display().to_string())?;
    db.event(
        "export",
        None,
        &json!({ "from_file": absolute.display().to_string(), "workspaces": inv.workspaces.len(),
                 "profiles": inv.profiles.len(), "fingerprint": fingerprint, "requests": 0 }),
    )?;
    ctx.printer.line(format!(
        "read {} workspace(s): {} legacy API clients, {} access profiles, {} API collections \
         from {} (no request to the legacy API) into {}",
        inv.workspaces.len(),
        inv.legacy_clients.len(),
        inv.profiles.len(),
        inv.collections.len(),
        path.display(),
        ctx.state_path.display()
    ));
    ctx.printer.line("next: keyshift plan");
    Ok(ExitCode::Ok)
}

/// A 410 (or 404) from a legacy route: the legacy API is retired. Say so, and the way on.
fn legacy_api_gone(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<HttpError>() {
        Some(HttpError::Status { status, route, .. })
            if (*status == 410 || *status == 404)
                && route.contains("api_")
                && !route.contains("/v2/") =>
        {
            KeyshiftError::Config(format!(
                "the legacy API answered HTTP {status} on {route}: Workato has retired legacy API \
                 clients and access profiles (legacy tokens stopped working on the sunset date), \
                 so they can no longer be listed. If you exported before, run `keyshift export \
                 --from FILE` with the file `keyshift export --to-file FILE` wrote (or a sandbox \
                 state dump); plan, apply, verify and handover then run against the live target \
                 — docs/runbook.md, \"When the legacy API is gone\""
            ))
            .into()
        }
        _ => e,
    }
}
