//! The exported inventory: replaced whole by each export, read back by kind.

use anyhow::{Context, Result};
use rusqlite::params;
use serde::Serialize;

use super::{from_json, to_json, StateDb};
use crate::model::{Inventory, SourceRecord};

impl StateDb {
    /// Replace the inventory in one transaction. Returns the source fingerprint of what was
    /// saved ([`crate::model::source_fingerprint`] of its legacy clients and profiles).
    pub fn save_inventory(&self, inv: &Inventory) -> Result<String> {
        let digests;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM inventory", [])?;
        {
            let mut ins = tx.prepare(
                "INSERT INTO inventory(workspace, kind, id, name, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for w in &inv.workspaces {
                ins.execute(params![w.id, "workspace", 0, w.name, to_json(w)?])?;
            }
            for c in &inv.collections {
                ins.execute(params![
                    c.workspace,
                    "collection",
                    c.id,
                    c.name,
                    to_json(c)?
                ])?;
            }
            // Legacy clients and profiles are serialized once: the same bytes are stored and
            // digested into the source fingerprint.
            let mut row = DigestedRows::default();
            for c in &inv.legacy_clients {
                row.insert(&mut ins, &c.workspace, "legacy_client", c.id, &c.name, c)?;
            }
            for p in &inv.profiles {
                row.insert(&mut ins, &p.workspace, "profile", p.id, &p.name, p)?;
            }
            digests = row.digests;
            let mut rec = tx.prepare(
                "INSERT INTO inventory(workspace, kind, id, name, body, active) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in &inv.records {
                rec.execute(params![
                    r.workspace,
                    r.kind,
                    r.id,
                    r.name,
                    to_json(&r.body)?,
                    r.active
                ])?;
            }
        }
        tx.commit()?;
        Ok(crate::model::combine_digests(digests))
    }

    pub fn load_inventory(&self) -> Result<Inventory> {
        self.load_inventory_of(&[])
    }

    /// Only the named kinds (`workspace`, `collection`, …; none: all): apply and verify need
    /// the workspaces, not 100,000 profiles in memory. Kinds other than the common shape's
    /// are the source's own records.
    pub fn load_inventory_of(&self, kinds: &[&str]) -> Result<Inventory> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT kind, body, workspace, id, name, active FROM inventory ORDER BY rowid",
        )?;
        let mut inv = Inventory::default();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let kind: String = row.get(0)?;
            if !kinds.is_empty() && !kinds.contains(&kind.as_str()) {
                continue;
            }
            let body: String = row.get(1)?;
            match kind.as_str() {
                "workspace" => inv.workspaces.push(from_json(&body)?),
                "collection" => inv.collections.push(from_json(&body)?),
                "legacy_client" => inv.legacy_clients.push(from_json(&body)?),
                "profile" => inv.profiles.push(from_json(&body)?),
                _ => inv.records.push(SourceRecord {
                    kind,
                    workspace: row.get(2)?,
                    id: row.get(3)?,
                    name: row.get(4)?,
                    active: row.get(5)?,
                    body: from_json(&body)?,
                }),
            }
        }
        Ok(inv)
    }
}

/// Inventory rows whose JSON is also digested (one serialization for both).
#[derive(Default)]
struct DigestedRows {
    json: Vec<u8>,
    digests: Vec<[u8; 32]>,
}

impl DigestedRows {
    fn insert<T: Serialize>(
        &mut self,
        ins: &mut rusqlite::Statement<'_>,
        workspace: &str,
        kind: &str,
        id: i64,
        name: &str,
        v: &T,
    ) -> Result<()> {
        self.json.clear();
        serde_json::to_writer(&mut self.json, v)?;
        self.digests
            .push(crate::model::json_digest(kind, &self.json));
        let body = std::str::from_utf8(&self.json).context("serde_json wrote invalid UTF-8")?;
        ins.execute(params![workspace, kind, id, name, body])?;
        Ok(())
    }
}
