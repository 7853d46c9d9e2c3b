//! The rollout's records: adoption snapshots (every one kept, so progress can be drawn over
//! time) and cutover waves.

use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::StateDb;
use crate::model::{Judged, Window};

/// One adoption run: when, over which window, from which sources, with what caveats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(default)]
    pub id: i64,
    pub at: DateTime<Utc>,
    pub window: Window,
    pub sources: Vec<String>,
    pub notes: Vec<String>,
    pub requests: u64,
}

/// One cutover wave or undo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Wave {
    #[serde(default)]
    pub n: i64,
    /// `cutover` or `undo`.
    pub kind: String,
    pub at: DateTime<Utc>,
    /// The snapshot the selection was judged by (none with `--without-evidence` alone).
    pub snapshot: Option<i64>,
    /// The consumers selected, and why each.
    pub consumers: Vec<(String, String)>,
    /// The source profiles it switches, as `workspace/profile`.
    pub profiles: Vec<String>,
    /// The scope flags as given.
    pub scope: Vec<String>,
    /// For an undo of one wave: that wave.
    pub of_wave: Option<i64>,
}

/// One snapshot's consumers by status: `(snapshot, at, [(status, n)])`.
pub type SnapshotCounts = (i64, DateTime<Utc>, Vec<(String, u64)>);

impl StateDb {
    /// Record a snapshot and its consumers in one transaction; returns its id.
    pub fn save_snapshot(&self, s: &Snapshot, judged: &[Judged]) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO snapshots(at, body) VALUES (?1, ?2)",
            params![s.at.to_rfc3339(), serde_json::to_string(s)?],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut stmt = tx.prepare(
                "INSERT OR REPLACE INTO snapshot_consumers(snapshot, workspace, consumer, status, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for j in judged {
                stmt.execute(params![
                    id,
                    j.workspace,
                    j.consumer,
                    j.status.as_str(),
                    serde_json::to_string(j)?
                ])?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, body FROM snapshots ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            let mut s: Snapshot = serde_json::from_str(&body)?;
            s.id = id;
            out.push(s);
        }
        Ok(out)
    }

    /// The newest snapshot, if any.
    pub fn latest_snapshot(&self) -> Result<Option<Snapshot>> {
        let body: Option<(i64, String)> = self
            .conn()
            .query_row(
                "SELECT id, body FROM snapshots ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match body {
            Some((id, b)) => {
                let mut s: Snapshot = serde_json::from_str(&b)?;
                s.id = id;
                Some(s)
            }
            None => None,
        })
    }

    /// The consumers of one snapshot, in the order they were judged.
    pub fn snapshot_consumers(&self, snapshot: i64) -> Result<Vec<Judged>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT body FROM snapshot_consumers WHERE snapshot = ?1 ORDER BY rowid")?;
        let rows = stmt.query_map([snapshot], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// Counts by status per snapshot, oldest first.
    pub fn snapshot_counts(&self) -> Result<Vec<SnapshotCounts>> {
        let snaps = self.snapshots()?;
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT status, COUNT(*) FROM snapshot_consumers WHERE snapshot = ?1
             GROUP BY status ORDER BY status",
        )?;
        let mut out = Vec::new();
        for s in snaps {
            let counts = stmt
                .query_map([s.id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            out.push((s.id, s.at, counts));
        }
        Ok(out)
    }

    /// Record a new wave; returns its number.
    pub fn start_wave(&self, w: &Wave) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n: i64 = tx.query_row("SELECT COALESCE(MAX(n), 0) + 1 FROM waves", [], |r| {
            r.get(0)
        })?;
        tx.execute(
            "INSERT INTO waves(n, kind, at, body) VALUES (?1, ?2, ?3, ?4)",
            params![n, w.kind, w.at.to_rfc3339(), serde_json::to_string(w)?],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Every wave, oldest first.
    pub fn waves(&self) -> Result<Vec<Wave>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT n, body FROM waves ORDER BY n")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (n, body) = row?;
            let mut w: Wave = serde_json::from_str(&body)?;
            w.n = n;
            out.push(w);
        }
        Ok(out)
    }
}
