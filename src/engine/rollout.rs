//! The rollout's decisions, apart from any vendor: which consumers a cutover wave takes (and
//! why each other one waits), which source profiles that disables, and what an undo gives
//! back. Commands print and confirm; the journal loop is [`super::switch`].

use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};

use super::adoption::{Consumer, Judged, Status};
use super::switch::Switch;
use super::Source;
use crate::model::Workspace;
use crate::state::rollout::{Snapshot, Wave};
use crate::state::{OpKind, OpState, Operation};

/// How old the latest snapshot may be for a wave to rely on it.
pub const SNAPSHOT_MAX_AGE_HOURS: i64 = 24;

/// The journal id of a cutover's switch-off of one source profile.
pub fn cutover_op(marker: &str) -> String {
    format!("cutover/{marker}")
}

/// The journal id of an undo's switch-on, in undo wave `n`.
pub fn undo_op(n: i64, marker: &str) -> String {
    format!("undo/{n}/{marker}")
}

/// The source profile id a profile marker names (`keyshift:<vendor>:<ws>:profile:<id>`).
fn profile_of(marker: &str) -> Option<String> {
    marker
        .split_once(":profile:")
        .map(|(_, id)| id.to_string())
        .filter(|id| !id.is_empty())
}

/// The wave a switch belongs to, as the journal's parent.
pub fn wave_parent(n: i64) -> String {
    format!("wave:{n}")
}

/// Scope flags: each list that is not empty must match.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub consumers: Vec<String>,
    pub clients: Vec<String>,
    pub profiles: Vec<String>,
    pub workspaces: Vec<String>,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
            && self.clients.is_empty()
            && self.profiles.is_empty()
            && self.workspaces.is_empty()
    }

    /// Workspaces given as `E<external id>` become ids.
    pub fn resolve(mut self, workspaces: &[Workspace]) -> Scope {
        for w in &mut self.workspaces {
            if let Some(ws) = workspaces.iter().find(|x| {
                x.external_id
                    .as_deref()
                    .is_some_and(|e| format!("E{e}") == *w)
            }) {
                *w = ws.id.clone();
            }
        }
        self
    }

    pub fn admits(&self, c: &Consumer) -> bool {
        (self.consumers.is_empty() || self.consumers.contains(&c.id))
            && (self.clients.is_empty()
                || c.client.as_ref().is_some_and(|x| self.clients.contains(x)))
            && (self.profiles.is_empty() || c.profiles.iter().any(|p| self.profiles.contains(p)))
            && (self.workspaces.is_empty() || self.workspaces.contains(&c.workspace))
    }

    /// The flags as given, for the wave's record.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, list) in [
            ("--consumer", &self.consumers),
            ("--client", &self.clients),
            ("--profile", &self.profiles),
            ("--workspace", &self.workspaces),
        ] {
            out.extend(list.iter().map(|v| format!("{flag} {v}")));
        }
        out
    }
}

/// Source marker → created credential id, from apply's journal.
pub fn created(ops: &[Operation]) -> HashMap<String, String> {
    ops.iter()
        .filter(|o| matches!(o.kind, OpKind::CreateKey | OpKind::CreateItem))
        .filter_map(|o| {
            let id = o
                .remote_ref
                .clone()
                .or_else(|| o.remote_id.map(|n| n.to_string()))?;
            Some((o.target.clone(), id))
        })
        .collect()
}

/// When each source profile was switched off and is still off: marker → the time of the wave
/// that did it (on the judged clock), else the journal's time.
pub fn switched_off(ops: &[Operation], waves: &[Wave]) -> HashMap<String, DateTime<Utc>> {
    let at: HashMap<String, DateTime<Utc>> =
        waves.iter().map(|w| (wave_parent(w.n), w.at)).collect();
    ops.iter()
        .filter(|o| o.kind == OpKind::DisableProfile && o.state == OpState::Done)
        .filter_map(|o| {
            let t = o
                .parent
                .as_ref()
                .and_then(|p| at.get(p).copied())
                .or_else(|| {
                    DateTime::parse_from_rfc3339(&o.updated_at)
                        .ok()
                        .map(|t| t.with_timezone(&Utc))
                })?;
            Some((o.target.clone(), t))
        })
        .collect()
}

/// The judged clock comes from `Date` headers, whole seconds: a switch-off's time is known
/// to within this much.
const CLOCK_SLACK_SECS: i64 = 2;

/// Per consumer: since when its old credentials are refused by design — switched off by
/// keyshift (where that refuses them) or retired by the vendor.
pub fn off_since(
    consumers: &[Consumer],
    source: &dyn Source,
    off: &HashMap<String, DateTime<Utc>>,
    retired: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<Option<DateTime<Utc>>> {
    let retired = retired.filter(|r| *r <= now);
    consumers
        .iter()
        .map(|c| {
            let switched = source
                .disabling_refuses_old()
                .then(|| {
                    c.profiles
                        .iter()
                        .filter_map(|p| off.get(&source.profile_marker(&c.workspace, p)).copied())
                        .min()
                        .map(|t| t - Duration::seconds(CLOCK_SLACK_SECS))
                })
                .flatten();
            match (switched, retired) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        })
        .collect()
}

/// A wave's selection.
#[derive(Debug, Default)]
pub struct Selection {
    /// Consumers taken, with why.
    pub taken: Vec<(Consumer, String)>,
    /// Consumers in scope that wait, with why.
    pub waiting: Vec<(Consumer, String)>,
    /// The profiles to switch off.
    pub switches: Vec<Switch>,
    /// Why nothing could be taken at all (no snapshot, too old…), when that is the case.
    pub blocked: Option<String>,
}

/// What a cutover wave may rely on.
pub struct Grounds<'a> {
    pub snapshot: Option<&'a Snapshot>,
    pub judged: &'a [Judged],
    /// Source marker of each new credential → its last live verdict.
    pub verdicts: &'a HashMap<String, String>,
    pub include_unverifiable: bool,
    pub without_evidence: bool,
    pub now: DateTime<Utc>,
}

/// Choose a cutover wave: consumers in scope whose new credentials all verified live and whose
/// latest snapshot (at most a day old) says `moved` — or any verified one with
/// `--without-evidence`; then the active profiles they alone hold that are not off yet.
pub fn select(
    consumers: &[Consumer],
    scope: &Scope,
    g: &Grounds,
    source: &dyn Source,
    active: &HashSet<(String, String)>,
    off: &HashMap<String, DateTime<Utc>>,
) -> Selection {
    let mut sel = Selection::default();
    let fresh = g
        .snapshot
        .filter(|s| g.now - s.at <= Duration::hours(SNAPSHOT_MAX_AGE_HOURS));
    if !g.without_evidence {
        sel.blocked = match (g.snapshot, fresh) {
            (None, _) => Some(
                "no adoption snapshot yet — run `keyshift adoption` first (a wave takes only \
                 consumers whose records show they moved)"
                    .into(),
            ),
            (Some(s), None) => Some(format!(
                "the latest adoption snapshot is from {}, more than {SNAPSHOT_MAX_AGE_HOURS} h \
                 before now ({}) — run `keyshift adoption` again",
                s.at.format("%Y-%m-%d %H:%M UTC"),
                g.now.format("%Y-%m-%d %H:%M UTC")
            )),
            _ => None,
        };
    }
    let status: HashMap<(&str, &str), &Judged> = if fresh.is_some() {
        g.judged
            .iter()
            .map(|j| ((j.workspace.as_str(), j.consumer.as_str()), j))
            .collect()
    } else {
        HashMap::new()
    };
    // `expected-inactive`: planned inactive, as its profile is — nothing for its consumer
    // to move to, nothing to hold the wave back.
    let ok = |v: Option<&String>| {
        let v = v.map(String::as_str);
        matches!(v, Some("ok" | "expected-inactive"))
            || (g.include_unverifiable && v == Some("unverifiable"))
    };
    for c in consumers.iter().filter(|c| scope.admits(c)) {
        let unverified: Vec<&String> = c.creds.iter().filter(|m| !ok(g.verdicts.get(*m))).collect();
        let judged = status.get(&(c.workspace.as_str(), c.id.as_str()));
        let reason = if c.creds.is_empty() {
            Err("no new credential planned".to_string())
        } else if let Some(m) = unverified.first() {
            let verdict = g
                .verdicts
                .get(*m)
                .map(String::as_str)
                .unwrap_or("not probed");
            let fix = if verdict == "unverifiable" {
                "check it from the consumer's side, then pass --include-unverifiable"
            } else {
                "run `keyshift verify --live`"
            };
            Err(format!(
                "{} of its {} new credential(s) not verified live ({m}: {verdict}) — {fix}",
                unverified.len(),
                c.creds.len(),
            ))
        } else {
            match judged {
                Some(j) if j.status == Status::Moved => Ok(format!("moved: {}", j.why)),
                _ if g.without_evidence => Ok(format!(
                    "--without-evidence: verified, taken without moved evidence{}",
                    judged
                        .map(|j| format!(" (adoption says {})", j.status.as_str()))
                        .unwrap_or_default()
                )),
                Some(j) => Err(format!("{}: {}", j.status.as_str(), j.why)),
                None if sel.blocked.is_some() => Err("no recent adoption snapshot".into()),
                None => Err("not in the latest adoption snapshot — run `keyshift adoption`".into()),
            }
        };
        match reason {
            Ok(why) => sel.taken.push((c.clone(), why)),
            Err(why) => sel.waiting.push((c.clone(), why)),
        }
    }
    // A profile goes off only when every consumer holding it is taken.
    let taken_ids: HashSet<(&str, &str)> = sel
        .taken
        .iter()
        .map(|(c, _)| (c.workspace.as_str(), c.id.as_str()))
        .collect();
    let mut holders: HashMap<(String, String), Vec<&Consumer>> = HashMap::new();
    for c in consumers {
        for p in &c.profiles {
            holders
                .entry((c.workspace.clone(), p.clone()))
                .or_default()
                .push(c);
        }
    }
    let mut seen = BTreeSet::new();
    for (c, _) in &sel.taken {
        for p in &c.profiles {
            let key = (c.workspace.clone(), p.clone());
            if !active.contains(&key) || !seen.insert(key.clone()) {
                continue;
            }
            let marker = source.profile_marker(&c.workspace, p);
            if off.contains_key(&marker) {
                continue;
            }
            let others: Vec<&str> = holders
                .get(&key)
                .into_iter()
                .flatten()
                .filter(|o| !taken_ids.contains(&(o.workspace.as_str(), o.id.as_str())))
                .map(|o| o.id.as_str())
                .collect();
            if !others.is_empty() {
                sel.waiting.push((
                    c.clone(),
                    format!(
                        "{} {p} stays on: it is shared with consumer(s) {} not in this wave",
                        source.profile_noun(),
                        others.join(", ")
                    ),
                ));
                continue;
            }
            sel.switches.push(Switch {
                op_id: cutover_op(&marker),
                workspace: c.workspace.clone(),
                profile: p.clone(),
                marker,
            });
        }
    }
    sel
}

/// What an undo gives back: the profiles cutover switched off (and that are still off), in
/// the scope or of one wave.
pub fn undo_selection(
    consumers: &[Consumer],
    scope: &Scope,
    wave: Option<i64>,
    ops: &[Operation],
    source: &dyn Source,
) -> Vec<Switch> {
    let in_scope: HashSet<String> = consumers
        .iter()
        .filter(|c| scope.admits(c))
        .flat_map(|c| {
            c.profiles
                .iter()
                .map(|p| source.profile_marker(&c.workspace, p))
        })
        .collect();
    let parent = wave.map(wave_parent);
    ops.iter()
        .filter(|o| o.kind == OpKind::DisableProfile && o.state == OpState::Done)
        .filter(|o| parent.is_none() || o.parent == parent)
        .filter(|o| scope.is_empty() || in_scope.contains(&o.target))
        .filter_map(|o| {
            let profile = o
                .remote_ref
                .clone()
                .or_else(|| o.remote_id.map(|n| n.to_string()))
                .or_else(|| profile_of(&o.target))?;
            Some(Switch {
                op_id: String::new(),
                workspace: o.workspace.clone(),
                profile,
                marker: o.target.clone(),
            })
        })
        .collect()
}

/// Switches an earlier wave left open (a killed run, a failure): `(wave parent, switch)`, for
/// the next run to finish before it chooses anything new. `kind` tells cutover's switch-offs
/// from undo's switch-ons.
pub fn open_switches(ops: &[Operation], kind: OpKind) -> Vec<(String, Switch)> {
    ops.iter()
        .filter(|o| o.kind == kind && o.state != OpState::Done)
        .filter_map(|o| {
            let parent = o.parent.clone().filter(|p| p.starts_with("wave:"))?;
            let profile = o.remote_ref.clone().or_else(|| profile_of(&o.target))?;
            Some((
                parent,
                Switch {
                    op_id: o.op_id.clone(),
                    workspace: o.workspace.clone(),
                    profile,
                    marker: o.target.clone(),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::adoption::Ident;
    use crate::engine::switch;
    use crate::engine::Fut;
    use crate::http::HttpError;
    use crate::model::{Inventory, Plan};
    use crate::printer::{Mode, Printer};
    use crate::state::StateDb;
    use std::sync::Mutex;

    /// A source whose profile ids are UUIDs: whatever it is asked to switch, it records.
    #[derive(Default)]
    struct Uuids {
        calls: Mutex<Vec<(String, bool)>>,
    }

    impl Source for Uuids {
        fn fingerprint(&self) -> Fut<'_, anyhow::Result<String>> {
            Box::pin(async { Ok(String::new()) })
        }
        fn fingerprint_with_disabled(
            &self,
            _: Inventory,
            _: &HashSet<String>,
        ) -> anyhow::Result<String> {
            Ok(String::new())
        }
        fn stale(&self) -> String {
            String::new()
        }
        fn profile_noun(&self) -> &'static str {
            "profile"
        }
        fn profile_marker(&self, ws: &str, profile: &str) -> String {
            format!("keyshift:test:{ws}:profile:{profile}")
        }
        fn exported_active(&self, _: &Inventory) -> HashSet<(String, String)> {
            HashSet::new()
        }
        fn set_profile_active<'a>(
            &'a self,
            _: &'a str,
            profile: &'a str,
            active: bool,
        ) -> Fut<'a, Result<(), HttpError>> {
            self.calls
                .lock()
                .unwrap()
                .push((profile.to_string(), active));
            Box::pin(async { Ok(()) })
        }
        fn consumers(&self, _: &Inventory, _: &Plan) -> anyhow::Result<Vec<Consumer>> {
            Ok(Vec::new())
        }
    }

    const A: &str = "5f0c9a3e-2b1d-4c6e-9f7a-0d1e2f3a4b5c";
    const B: &str = "a1b2c3d4-e5f6-4711-8899-aabbccddeeff";

    fn consumer(id: &str, profiles: &[&str]) -> Consumer {
        Consumer {
            id: id.into(),
            workspace: "w".into(),
            name: id.into(),
            client: None,
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
            creds: vec![format!("cred:{id}")],
            old: vec![Ident::Key {
                workspace: "w".into(),
                id: format!("old-{id}"),
            }],
            new: Vec::new(),
            blind: None,
        }
    }

    #[tokio::test]
    async fn opaque_profile_ids_go_through_a_wave_and_its_undo_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.db"), true).unwrap();
        let source = Uuids::default();
        // Two consumers share profile B; only one of them is in the wave.
        let consumers = vec![
            consumer("c1", &[A]),
            consumer("c2", &[B]),
            consumer("c3", &[B]),
        ];
        let verdicts: HashMap<String, String> = ["c1", "c2", "c3"]
            .iter()
            .map(|c| (format!("cred:{c}"), "ok".to_string()))
            .collect();
        let now = crate::mapping::parse_instant("2026-01-10").unwrap();
        let grounds = Grounds {
            snapshot: None,
            judged: &[],
            verdicts: &verdicts,
            include_unverifiable: false,
            without_evidence: true,
            now,
        };
        let active: HashSet<(String, String)> = [A, B]
            .iter()
            .map(|p| ("w".to_string(), p.to_string()))
            .collect();
        let scope = Scope {
            consumers: vec!["c1".into(), "c2".into()],
            ..Scope::default()
        };
        let sel = select(
            &consumers,
            &scope,
            &grounds,
            &source,
            &active,
            &HashMap::new(),
        );
        assert_eq!(sel.switches.len(), 1, "B is shared with c3, which waits");
        assert_eq!(sel.switches[0].profile, A);
        assert!(sel
            .waiting
            .iter()
            .any(|(c, why)| c.id == "c2" && why.contains("c3")));

        let printer = Printer::new(Mode::Quiet);
        let crash = crate::crash::Checkpoints::default();
        let run = switch::Run {
            db: &db,
            source: &source,
            printer: &printer,
            crash: &crash,
            active: false,
            kind: OpKind::DisableProfile,
            parent: Some("wave:1"),
            now,
            frozen_at: None,
            stop: None,
        };
        let out = run.go(&sel.switches).await.unwrap();
        assert_eq!(out.done.len(), 1);
        let ops = db.operations().unwrap();
        assert_eq!(switched_off(&ops, &[]).len(), 1);
        // Undo by consumer finds the UUID again, from the journal alone.
        let undo = undo_selection(
            &consumers,
            &Scope {
                consumers: vec!["c1".into()],
                ..Scope::default()
            },
            None,
            &ops,
            &source,
        );
        assert_eq!(undo.len(), 1);
        assert_eq!(undo[0].profile, A);
        assert_eq!(
            *source.calls.lock().unwrap(),
            vec![(A.to_string(), false)],
            "the source saw the id exactly as given"
        );
        assert!(open_switches(&ops, OpKind::DisableProfile).is_empty());
    }
}
