//! Switching source profiles off (cutover) and on again (`cutover --undo`, rollback), one
//! journaled operation each: intent (durable) → send → done. Profile ids are the source's own
//! strings, passed through untouched. An operation left in `intent` by a killed run is sent
//! again by the next: turning a profile off or on twice is harmless.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::atomic::Ordering;

use super::Source;
use crate::crash::Checkpoints;
use crate::printer::Printer;
use crate::state::{OpKind, OpState, StateDb};

/// One profile to switch.
#[derive(Debug, Clone)]
pub struct Switch {
    pub op_id: String,
    pub workspace: String,
    /// The source's profile id, as the source spells it.
    pub profile: String,
    /// The profile's provenance marker.
    pub marker: String,
}

/// How a run of switches ended.
#[derive(Debug, Default)]
pub struct Switched {
    pub done: Vec<Switch>,
    pub failed: Vec<(Switch, String)>,
    /// The source refused because it is frozen: the rest was not tried.
    pub frozen: bool,
    /// Ctrl-C: the rest was not tried.
    pub stopped: bool,
}

/// What the switches are for.
pub struct Run<'a> {
    pub db: &'a StateDb,
    pub source: &'a dyn Source,
    pub printer: &'a Printer,
    pub crash: &'a Checkpoints,
    /// Turn on (undo, rollback) or off (cutover).
    pub active: bool,
    pub kind: OpKind,
    /// The journal's parent of each operation (e.g. `wave:3`).
    pub parent: Option<&'a str>,
    /// The judged now and the freeze, to tell a frozen source's refusal.
    pub now: DateTime<Utc>,
    pub frozen_at: Option<DateTime<Utc>>,
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
}

impl Run<'_> {
    /// Journal every switch (pending), then do them in order; a switch already done is left.
    pub async fn go(&self, items: &[Switch]) -> Result<Switched> {
        for s in items {
            self.db
                .ensure_op(&s.op_id, self.kind, &s.workspace, &s.marker, self.parent)?;
            if let Some(parent) = self.parent {
                self.db.set_parent(&s.op_id, parent)?;
            }
        }
        let states = self.db.op_briefs()?;
        let noun = self.source.profile_noun();
        let verb = if self.active { "enable" } else { "disable" };
        let mut out = Switched::default();
        let bar = self.printer.progress(items.len() as u64, verb);
        for s in items {
            if states.get(&s.op_id).map(|b| b.state) == Some(OpState::Done) {
                bar.inc(1);
                continue;
            }
            if self.stop.is_some_and(|f| f.load(Ordering::SeqCst)) {
                out.stopped = true;
                break;
            }
            self.db
                .mark_intent(
                    &s.op_id,
                    json!({ "request": format!("{verb}_profile"), "profile": s.profile }),
                )
                .await?;
            self.crash.hit("before-write");
            match self
                .source
                .set_profile_active(&s.workspace, &s.profile, self.active)
                .await
            {
                Ok(()) => {
                    self.crash.hit("after-response");
                    self.db
                        .mark_done_ref(&s.op_id, &s.profile, json!({ "profile": s.profile }))
                        .await?;
                    out.done.push(s.clone());
                }
                Err(e) => {
                    let frozen = self
                        .frozen_at
                        .is_some_and(|f| self.source.is_frozen(&e, self.now, f));
                    let message = if frozen {
                        format!(
                            "{noun} {}: frozen, the source no longer allows it — {e}",
                            s.profile
                        )
                    } else {
                        format!("{noun} {}: {e}", s.profile)
                    };
                    self.db.mark_failed(&s.op_id, &message).await?;
                    out.failed.push((s.clone(), message));
                    if frozen {
                        out.frozen = true;
                        break;
                    }
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(out)
    }
}
