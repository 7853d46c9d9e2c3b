//! The plan: clients, standalone items and findings, with their operations made pending.

use anyhow::Result;
use rusqlite::{params, Connection};

use super::{client_op_id, item_op_id, key_op_id, OpKind};
use super::{from_json, now, to_json, StateDb};
use crate::model::{ClientSpec, Finding, Plan};

impl StateDb {
    /// Replace the plan and its findings; add a pending operation for every planned object
    /// that has none yet (operations already journaled keep their state, so re-planning
    /// never forgets what was done).
    pub fn save_plan(&self, plan: &Plan) -> Result<()> {
        let conn = self.conn();
        let _cache = BulkCache::set(&conn)?;
        let tx = conn.unchecked_transaction()?;
        tx.execute("DELETE FROM plan_clients", [])?;
        tx.execute("DELETE FROM plan_items", [])?;
        tx.execute("DELETE FROM findings", [])?;
        {
            let mut ins = tx.prepare(
                "INSERT INTO plan_clients(marker, ord, workspace, spec) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut op = tx.prepare(
                "INSERT OR IGNORE INTO operations(op_id, kind, workspace, target, parent, state, attempts, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6)",
            )?;
            let at = now();
            for (i, c) in plan.clients.iter().enumerate() {
                ins.execute(params![c.marker, i as i64, c.workspace, to_json(c)?])?;
                op.execute(params![
                    client_op_id(&c.marker),
                    OpKind::CreateClient.as_str(),
                    c.workspace,
                    c.marker,
                    Option::<String>::None,
                    at
                ])?;
                for k in &c.keys {
                    op.execute(params![
                        key_op_id(&k.source),
                        OpKind::CreateKey.as_str(),
                        c.workspace,
                        k.source,
                        c.marker,
                        at
                    ])?;
                }
            }
            // Planned-but-never-started operations of objects the new plan dropped go;
            // anything that may have reached the vendor stays in the journal.
            let planned: std::collections::HashSet<String> = plan
                .clients
                .iter()
                .flat_map(|c| {
                    std::iter::once(client_op_id(&c.marker))
                        .chain(c.keys.iter().map(|k| key_op_id(&k.source)))
                })
                .chain(plan.items.iter().map(|i| item_op_id(&i.source)))
                .collect();
            let pending: Vec<String> = tx
                .prepare(
                    "SELECT op_id FROM operations WHERE state = 'pending'
                       AND kind IN ('create_client', 'create_key', 'create_item')",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for op in pending.iter().filter(|op| !planned.contains(*op)) {
                tx.execute("DELETE FROM operations WHERE op_id = ?1", [op])?;
            }
            let mut item = tx.prepare(
                "INSERT INTO plan_items(source, ord, workspace, spec) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (i, it) in plan.items.iter().enumerate() {
                item.execute(params![it.source, i as i64, it.workspace, to_json(it)?])?;
                op.execute(params![
                    item_op_id(&it.source),
                    OpKind::CreateItem.as_str(),
                    it.workspace,
                    it.source,
                    Option::<String>::None,
                    at
                ])?;
            }
            let mut f = tx.prepare("INSERT INTO findings(body) VALUES (?1)")?;
            for finding in &plan.findings {
                f.execute([to_json(finding)?])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn load_plan(&self) -> Result<Plan> {
        let mut plan = self.load_planned()?;
        plan.findings = self
            .conn()
            .prepare("SELECT body FROM findings ORDER BY seq")?
            .query_map([], |r| r.get::<_, String>(0))?
            .map(|r| from_json::<Finding>(&r?))
            .collect::<Result<Vec<_>>>()?;
        Ok(plan)
    }

    /// The plan's clients and standalone credentials, without its findings: what the
    /// commands that write, verify or switch need (the findings of 100,000 profiles can be
    /// tens of megabytes they never read).
    pub fn load_planned(&self) -> Result<Plan> {
        let conn = self.conn();
        let clients = conn
            .prepare("SELECT spec FROM plan_clients ORDER BY ord")?
            .query_map([], |r| r.get::<_, String>(0))?
            .map(|r| from_json::<ClientSpec>(&r?))
            .collect::<Result<Vec<_>>>()?;
        let items = conn
            .prepare("SELECT spec FROM plan_items ORDER BY ord")?
            .query_map([], |r| r.get::<_, String>(0))?
            .map(|r| from_json::<crate::model::StandaloneSpec>(&r?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Plan {
            clients,
            items,
            findings: Vec::new(),
        })
    }
}

/// A larger page cache for one bulk write (100,000 rows), so the transaction's pages are not
/// spilled and re-read; back to SQLite's default (2 MB) afterwards.
struct BulkCache<'c>(&'c Connection);

impl<'c> BulkCache<'c> {
    const KIB: i64 = 32 * 1024;

    fn set(conn: &'c Connection) -> Result<Self> {
        conn.execute_batch(&format!("PRAGMA cache_size = -{}", Self::KIB))?;
        Ok(Self(conn))
    }
}

impl Drop for BulkCache<'_> {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("PRAGMA cache_size = -2000");
    }
}
