//! `keyshift rollback`: undo a run from its journal, in reverse order — re-enable the legacy
//! profiles cutover disabled (while the source allows), then for every key apply created:
//! disable, then delete; then delete the clients apply created. Every object is confirmed as
//! ours before it is touched (the client by the marker in its description, the key by its
//! planned name inside that client); anything else — even a key someone added to one of our
//! clients — is left alone. Journaled and resumable; afterwards the create operations are
//! pending again, so a later apply would create everything anew.

use anyhow::Result;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

use super::judged_now;
use crate::cli::RollbackArgs;
use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::http::HttpError;
use crate::providers::workato::{is_frozen, RemoteClient, WorkatoTarget, WsAddr};
use crate::state::{client_op_id, key_op_id, OpKind, OpState, Operation, StateDb};

pub async fn run(ctx: &Ctx, args: &RollbackArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let _lock = super::writer_lock(ctx, "rollback")?;
    let mapping = db.recorded_mapping()?;
    let plan = db.load_plan()?;
    let inv = db.load_inventory()?;
    let ops: HashMap<String, Operation> = db
        .operations()?
        .into_iter()
        .map(|o| (o.op_id.clone(), o))
        .collect();
    // An operation that may have created something remotely.
    let touched = |id: &str| {
        ops.get(id).is_some_and(|o| match o.state {
            OpState::Done | OpState::Intent => true,
            OpState::Failed => o.remote_id.is_some(),
            OpState::Pending => false,
        })
    };
    let clients: Vec<_> = plan
        .clients
        .iter()
        .filter(|c| {
            touched(&client_op_id(&c.marker))
                || c.keys.iter().any(|k| touched(&key_op_id(&k.source)))
        })
        .collect();
    let cutover_done: Vec<&Operation> = ops
        .values()
        .filter(|o| o.kind == OpKind::DisableProfile && o.state == OpState::Done)
        .collect();
    let p = &ctx.printer;
    if let Some(file) = super::source_file(&db)? {
        p.line(format!(
            "the source of this run is a file ({file}, keyshift export --from): no legacy \
             profile was disabled by keyshift, so none is re-enabled; only what apply created \
             is undone"
        ));
    }
    let flat = mapping.pair != crate::mapping::PairKind::WorkatoV2;
    let items_touched = plan
        .items
        .iter()
        .filter(|i| touched(&crate::state::item_op_id(&i.source)))
        .count();
    if clients.is_empty() && cutover_done.is_empty() && items_touched == 0 {
        p.line("nothing to roll back: this state file records no created object");
        return Ok(ExitCode::Ok);
    }
    let question = format!(
        "rollback will re-enable {} legacy profile(s), then disable and delete the API keys and \
         v2 clients keyshift created in {} client group(s)",
        cutover_done.len(),
        clients.len()
    );
    if !super::confirm(ctx, args.yes, &question)? {
        p.line("nothing was done");
        return Ok(ExitCode::Ok);
    }
    let now = judged_now(ctx, &db)?;
    let mut failed = 0usize;
    let mut tally = Tally::default();

    // 1. Legacy profiles first, so their consumers work again before keys go away.
    for op in &cutover_done {
        let id = format!("rollback/enable/{}", op.target);
        db.ensure_op(&id, OpKind::EnableProfile, &op.workspace, &op.target, None)?;
        let Some(profile_id) = op.remote_id else {
            continue;
        };
        db.mark_intent(
            &id,
            json!({ "request": "enable_profile", "profile_id": profile_id }),
        )
        .await?;
        let result = if flat && mapping.pair == crate::mapping::PairKind::BifrostVirtualKeys {
            ctx.bifrost(None)?
                .set_profile_active(profile_id, true)
                .await
        } else {
            WorkatoTarget::new(ctx.workato(None)?)
                .enable_profile(&WsAddr::find(&inv.workspaces, &op.workspace), profile_id)
                .await
        };
        match result {
            Ok(()) => {
                db.mark_done(&id, profile_id, json!({ "profile_id": profile_id }))
                    .await?;
                db.reopen(&op.op_id)?;
                tally.enabled += 1;
            }
            Err(e)
                if mapping
                    .deadlines
                    .is_some_and(|d| is_frozen(&e, now, d.legacy_frozen)) =>
            {
                db.mark_failed(
                    &id,
                    &format!("legacy profile {profile_id}: frozen, cannot be re-enabled — {e}"),
                )
                .await?;
                failed += 1;
            }
            Err(e) => {
                db.mark_failed(&id, &format!("legacy profile {profile_id}: {e}"))
                    .await?;
                failed += 1;
            }
        }
    }

    if flat {
        let flat_target = super::flat::target(ctx, &mapping, None)?;
        let (deleted, problems) = super::flat::rollback(ctx, &db, &plan, &flat_target).await?;
        tally.keys += deleted;
        failed += problems;
        return finish(ctx, &db, tally, failed);
    }

    // 2. Keys, then clients, newest first; found again by marker and name.
    let target = WorkatoTarget::new(ctx.workato(None)?);
    let spaces: BTreeSet<&str> = clients.iter().map(|c| c.workspace.as_str()).collect();
    let mut remote: HashMap<String, RemoteClient> = HashMap::new();
    for ws in spaces {
        for rc in target
            .list_clients(&WsAddr::find(&inv.workspaces, ws))
            .await?
        {
            if let Some(m) = rc.marker() {
                remote.insert(m.to_string(), rc.clone());
            }
        }
    }
    let bar = p.progress(clients.len() as u64, "rollback");
    for spec in clients.iter().rev() {
        bar.inc(1);
        let ws = WsAddr::find(&inv.workspaces, &spec.workspace);
        let Some(rc) = remote.get(&spec.marker) else {
            // Already gone (an earlier rollback, or deleted by hand): nothing of ours is left.
            db.reopen(&client_op_id(&spec.marker))?;
            for k in &spec.keys {
                db.reopen(&key_op_id(&k.source))?;
            }
            continue;
        };
        let planned: HashMap<&str, &crate::model::KeySpec> =
            spec.keys.iter().map(|k| (k.name.as_str(), k)).collect();
        let keys = target.list_keys(&ws, rc.id).await?;
        let mut foreign = Vec::new();
        for key in keys.iter().rev() {
            let Some(k) = planned.get(key.name.as_str()) else {
                foreign.push(key.name.clone());
                continue;
            };
            let disable = format!("rollback/disable/{}", k.source);
            let delete = format!("rollback/delete/{}", k.source);
            db.ensure_op(
                &disable,
                OpKind::DisableKey,
                &spec.workspace,
                &k.source,
                Some(&spec.marker),
            )?;
            db.ensure_op(
                &delete,
                OpKind::DeleteKey,
                &spec.workspace,
                &k.source,
                Some(&spec.marker),
            )?;
            if key.active {
                db.mark_intent(
                    &disable,
                    json!({ "request": "disable_key", "key_id": key.id }),
                )
                .await?;
                match target.disable_key(&ws, rc.id, key.id).await {
                    Ok(()) => {
                        db.mark_done(&disable, key.id, json!({ "key_id": key.id }))
                            .await?
                    }
                    Err(e) => {
                        failed +=
                            record_failure(&db, &disable, &format!("API key {:?}", key.name), e)
                                .await?;
                        continue;
                    }
                }
                tally.disabled += 1;
            }
            db.mark_intent(
                &delete,
                json!({ "request": "delete_key", "key_id": key.id }),
            )
            .await?;
            match target.delete_key(&ws, rc.id, key.id).await {
                Ok(()) => {
                    db.mark_done(&delete, key.id, json!({ "key_id": key.id }))
                        .await?;
                    db.reopen(&key_op_id(&k.source))?;
                    tally.keys += 1;
                }
                Err(e) => {
                    failed +=
                        record_failure(&db, &delete, &format!("API key {:?}", key.name), e).await?;
                }
            }
        }
        // Planned keys that never got created (or are gone) are pending again.
        let present: BTreeSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        for k in spec
            .keys
            .iter()
            .filter(|k| !present.contains(k.name.as_str()))
        {
            db.reopen(&key_op_id(&k.source))?;
        }
        if !foreign.is_empty() {
            p.warn(format!(
                "v2 client {:?} (id {}) also holds key(s) keyshift did not create ({}); the client \
                 is kept — delete it by hand once they are moved",
                spec.name,
                rc.id,
                foreign.join(", ")
            ));
            failed += 1;
            continue;
        }
        let id = format!("rollback/client/{}", spec.marker);
        db.ensure_op(
            &id,
            OpKind::DeleteClient,
            &spec.workspace,
            &spec.marker,
            None,
        )?;
        db.mark_intent(
            &id,
            json!({ "request": "delete_client", "client_id": rc.id }),
        )
        .await?;
        match target.delete_client(&ws, rc.id).await {
            Ok(()) => {
                db.mark_done(&id, rc.id, json!({ "client_id": rc.id }))
                    .await?;
                db.reopen(&client_op_id(&spec.marker))?;
                tally.clients += 1;
            }
            Err(e) => {
                failed += record_failure(&db, &id, &format!("v2 client {:?}", spec.name), e).await?
            }
        }
    }
    bar.finish_and_clear();

    finish(ctx, &db, tally, failed)
}

fn finish(ctx: &Ctx, db: &StateDb, tally: Tally, failed: usize) -> Result<ExitCode> {
    let p = &ctx.printer;
    let summary = json!({ "enabled_profiles": tally.enabled, "disabled_keys": tally.disabled,
                          "deleted_keys": tally.keys, "deleted_clients": tally.clients, "failed": failed });
    db.event("rollback", None, &summary)?;
    if failed == 0 {
        // A finished rollback leaves no journal of its own behind: the run can start afresh.
        db.forget(&[
            OpKind::EnableProfile,
            OpKind::DisableKey,
            OpKind::DeleteKey,
            OpKind::DeleteClient,
            OpKind::DisableProfile,
        ])?;
    }
    p.line(format!(
        "rollback: re-enabled {} source profile(s), disabled {} and deleted {} key(s), deleted \
         {} v2 client(s); {failed} problem(s)",
        tally.enabled, tally.disabled, tally.keys, tally.clients
    ));
    p.event("rollback.done", summary);
    Ok(if failed > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}

#[derive(Default)]
struct Tally {
    enabled: usize,
    disabled: usize,
    keys: usize,
    clients: usize,
}

/// A 404 means it is already gone: done. Anything else fails this item.
async fn record_failure(db: &StateDb, op_id: &str, what: &str, e: HttpError) -> Result<usize> {
    if e.status() == Some(404) {
        db.mark_done(op_id, 0, json!({ "already": "gone" })).await?;
        return Ok(0);
    }
    db.mark_failed(op_id, &format!("{what}: {e}")).await?;
    Ok(1)
}
