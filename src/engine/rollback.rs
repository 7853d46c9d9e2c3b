//! Rollback of what apply created, newest first: for every credential of ours, disable then
//! delete; then the containers. Every object is confirmed as ours before it is touched (a
//! container by its marker, a credential by its marker or its planned name inside our
//! container); anything else — even a credential someone added to one of our containers — is
//! left alone, and so is that container. Journaled; afterwards the create operations are
//! pending again, so a later apply creates everything anew.

use anyhow::Result;
use serde_json::json;
use std::collections::HashMap;

use super::{transient, At, Cred, Found, RemoteId, Target, Unit};
use crate::http::HttpError;
use crate::printer::Printer;
use crate::state::{OpKind, OpState, Operation, StateDb};

/// What a rollback removed, and how many problems it met.
#[derive(Debug, Default, Clone, Copy)]
pub struct Removed {
    pub disabled: usize,
    pub deleted: usize,
    pub containers: usize,
    pub problems: usize,
}

/// The units of which apply may have created something remotely.
pub fn touched<'u, 'p>(
    units: &'u [Unit<'p>],
    ops: &HashMap<String, Operation>,
) -> Vec<&'u Unit<'p>> {
    let touched = |id: String| {
        ops.get(&id).is_some_and(|o| match o.state {
            OpState::Done | OpState::Intent => true,
            OpState::Failed => o.remote_id.is_some() || o.remote_ref.is_some(),
            OpState::Pending => false,
        })
    };
    units.iter().filter(|u| u.op_ids().any(touched)).collect()
}

pub async fn run(
    db: &StateDb,
    target: &dyn Target,
    printer: &Printer,
    units: &[&Unit<'_>],
) -> Result<Removed> {
    let mut removed = Removed::default();
    if units.is_empty() {
        return Ok(removed);
    }
    let survey = target.survey(units).await?;
    let words = target.words();
    let bar = printer.progress(units.len() as u64, "rollback");
    for u in units.iter().rev() {
        bar.inc(1);
        let container = match u.container {
            None => None,
            Some(spec) => match survey.containers.get(&spec.marker) {
                Some(found) => Some(found.id.clone()),
                None => {
                    // Already gone (an earlier rollback, or deleted by hand): nothing of
                    // ours is left.
                    for id in u.op_ids() {
                        db.reopen(&id)?;
                    }
                    continue;
                }
            },
        };
        let container = container.as_ref();
        let (existing, foreign): (Vec<(&Cred, Found)>, Vec<String>) = match container {
            Some(c) => {
                let mut inside = match target.list_in(u, c).await {
                    Ok(inside) => inside,
                    // This container waits for the next rollback; the others go on.
                    Err(e) if transient(&e) => {
                        printer.warn(format!(
                            "{} {:?} (id {c}): its listing failed after its retries ({e:#}); \
                             it is left as it is — run `keyshift rollback` again",
                            words.container,
                            u.container.map_or("", |s| s.name.as_str()),
                        ));
                        removed.problems += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let ours = u
                    .creds
                    .iter()
                    .filter_map(|cred| Some((cred, inside.remove(cred.name())?)))
                    .collect();
                let mut foreign: Vec<String> = inside.into_keys().collect();
                foreign.sort();
                (ours, foreign)
            }
            None => (
                u.creds
                    .iter()
                    .filter_map(|cred| Some((cred, survey.creds.get(cred.source())?.clone())))
                    .collect(),
                Vec::new(),
            ),
        };
        // Planned credentials that never got created (or are gone) are pending again.
        for cred in u
            .creds
            .iter()
            .filter(|c| !existing.iter().any(|(e, _)| e.op_id() == c.op_id()))
        {
            db.reopen(&cred.op_id())?;
        }
        for (cred, found) in existing.iter().rev() {
            let parent = u.container.map(|c| c.marker.as_str());
            let what = format!("{} {:?}", words.credential, cred.name());
            if found.active != Some(false) {
                let op = format!("rollback/disable/{}", cred.source());
                db.ensure_op(&op, OpKind::DisableKey, u.workspace, cred.source(), parent)?;
                db.mark_intent(&op, json!({ "request": "disable", "id": found.id }))
                    .await?;
                match target
                    .deactivate(At { unit: u, container }, &found.id)
                    .await
                {
                    Ok(()) => {
                        db.mark_done_as(&op, &found.id, json!({ "id": found.id }))
                            .await?;
                        removed.disabled += 1;
                    }
                    Err(e) => {
                        if !settle(db, printer, &op, &what, e).await? {
                            removed.problems += 1;
                            continue;
                        }
                    }
                }
            }
            let op = format!("rollback/delete/{}", cred.source());
            db.ensure_op(&op, OpKind::DeleteKey, u.workspace, cred.source(), parent)?;
            db.mark_intent(&op, json!({ "request": "delete", "id": found.id }))
                .await?;
            let result = target.delete(At { unit: u, container }, &found.id).await;
            let gone = match result {
                Ok(()) => {
                    db.mark_done_as(&op, &found.id, json!({ "id": found.id }))
                        .await?;
                    true
                }
                Err(e) => settle(db, printer, &op, &what, e).await?,
            };
            if gone {
                // Listed a moment ago and gone now: a 404 here is nearly always our own
                // delete, committed before its answer was lost and then retried.
                db.event(
                    "rollback.deleted",
                    Some(&cred.op_id()),
                    &json!({ "id": found.id }),
                )?;
                removed.deleted += 1;
                db.reopen(&cred.op_id())?;
            } else {
                removed.problems += 1;
            }
        }
        let (Some(spec), Some(id)) = (u.container, container) else {
            continue;
        };
        if !foreign.is_empty() {
            printer.warn(format!(
                "{} {:?} (id {id}) also holds credential(s) keyshift did not create ({}); it is \
                 kept — delete it by hand once they are moved",
                words.container,
                spec.name,
                foreign.join(", ")
            ));
            removed.problems += 1;
            continue;
        }
        let op = format!("rollback/client/{}", spec.marker);
        db.ensure_op(&op, OpKind::DeleteClient, u.workspace, &spec.marker, None)?;
        db.mark_intent(&op, json!({ "request": "delete_client", "client_id": id }))
            .await?;
        let what = format!("{} {:?}", words.container, spec.name);
        let gone = match target.delete_container(u, id).await {
            Ok(()) => {
                db.mark_done_as(&op, id, json!({ "client_id": id })).await?;
                true
            }
            Err(e) => settle(db, printer, &op, &what, e).await?,
        };
        if gone {
            removed.containers += 1;
            if let Some(op) = u.container_op() {
                db.reopen(&op)?;
            }
        } else {
            removed.problems += 1;
        }
    }
    bar.finish_and_clear();
    Ok(removed)
}

/// A 404 means it is already gone: done. Anything else fails this step. Whether it is gone.
async fn settle(
    db: &StateDb,
    printer: &Printer,
    op_id: &str,
    what: &str,
    e: HttpError,
) -> Result<bool> {
    if e.status() == Some(404) {
        db.mark_done_as(op_id, &RemoteId::Num(0), json!({ "already": "gone" }))
            .await?;
        return Ok(true);
    }
    printer.warn(format!("{what}: {e}"));
    db.mark_failed(op_id, &format!("{what}: {e}")).await?;
    Ok(false)
}
