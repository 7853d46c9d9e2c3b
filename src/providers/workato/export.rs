//! Export from Workato's legacy API: the workspaces of the Developer or Embedded API, each
//! with its collections, legacy clients and access profiles.

use anyhow::Result;
use serde_json::json;
use std::sync::Arc;

use super::{inventory_file, Api, LegacyApi, WorkatoConn};
use crate::engine::Exported;
use crate::errors::KeyshiftError;
use crate::http::HttpError;
use crate::mapping::Mapping;
use crate::model::Inventory;
use crate::printer::Printer;

/// Read the legacy side: `api` (default: the mapping's), `workspaces` (`all` or a list, Embedded
/// only); `to_file` also writes the inventory (no secrets) in the fixture format.
pub async fn export(
    conn: Arc<WorkatoConn>,
    mapping: &Mapping,
    api: Option<&str>,
    workspaces: Option<&str>,
    to_file: Option<&std::path::Path>,
    printer: &Printer,
) -> Result<Exported> {
    let api_name = api.unwrap_or(&mapping.file.source.api).to_string();
    let api = Api::parse(&api_name).ok_or_else(|| {
        KeyshiftError::Usage(format!("--api {api_name:?}: use developer or embedded"))
    })?;
    let filter: Option<Vec<String>> = match workspaces {
        None | Some("all") => None,
        Some(list) => Some(list.split(',').map(|s| s.trim().to_string()).collect()),
    };
    if filter.is_some() && api == Api::Developer {
        return Err(KeyshiftError::Usage(
            "--workspaces applies to the Embedded API only — add --api embedded".into(),
        )
        .into());
    }

    let source = LegacyApi::new(conn.clone());
    let workspaces = source.workspaces(api, filter.as_deref()).await?;
    if workspaces.is_empty() {
        printer.warn("no workspace matched — check --workspaces against `GET /api/managed_users`");
    }
    let bar = printer.progress(workspaces.len() as u64, "export");
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
        printer.event(
            "export.workspace",
            json!({ "workspace": ws.id, "profiles": inv.profiles.iter().filter(|p| p.workspace == ws.id).count() }),
        );
    }
    bar.finish_and_clear();

    let mut notes = Vec::new();
    if let Some(path) = to_file {
        crate::secrets::write_private(
            path,
            &serde_json::to_string_pretty(&inventory_file::render(&inv))?,
        )?;
        notes.push(format!(
            "wrote the inventory (no secrets) to {} — `keyshift export --from {0}` reads it \
             back when the legacy API is gone",
            path.display()
        ));
    }
    let requests = conn.http().requests_sent();
    Ok(Exported {
        summary: format!(
            "exported {} workspace(s): {} legacy API clients, {} access profiles, {} API \
             collections ({requests} requests)",
            inv.workspaces.len(),
            inv.legacy_clients.len(),
            inv.profiles.len(),
            inv.collections.len(),
        ),
        counts: counts(&inv),
        api: api.as_str().into(),
        server_offset_secs: conn
            .http()
            .server_now()
            .map(|t| (t - chrono::Utc::now()).num_seconds()),
        requests,
        inv,
        notes,
        ..Exported::default()
    })
}

fn counts(inv: &Inventory) -> serde_json::Map<String, serde_json::Value> {
    let v = json!({
        "workspaces": inv.workspaces.len(),
        "legacy_clients": inv.legacy_clients.len(),
        "profiles": inv.profiles.len(),
        "collections": inv.collections.len(),
    });
    v.as_object().cloned().unwrap_or_default()
}

/// `export --from FILE`: the inventory from a file instead of the legacy API.
pub fn from_file(path: &std::path::Path) -> Result<Exported> {
    let inv = inventory_file::read(path)?;
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut counts = counts(&inv);
    counts.insert("from_file".into(), json!(absolute.display().to_string()));
    Ok(Exported {
        summary: format!(
            "read {} workspace(s): {} legacy API clients, {} access profiles, {} API collections \
             from {} (no request to the legacy API)",
            inv.workspaces.len(),
            inv.legacy_clients.len(),
            inv.profiles.len(),
            inv.collections.len(),
            path.display(),
        ),
        counts,
        api: Api::Developer.as_str().into(),
        source_file: Some(absolute.display().to_string()),
        inv,
        ..Exported::default()
    })
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
