//! The state DB: one SQLite file holding the exported inventory, the plan, the operations
//! journal and an append-only event log.
//!
//! # Durability
//! WAL mode with `synchronous=FULL`: a journal entry that `record_*` returned from survives a
//! power cut. Every remote write is preceded by [`StateDb::mark_intent`] (committed before the
//! request leaves) and followed by an outcome. An operation found in `intent` on start-up may
//! or may not have reached the vendor; apply reconciles it by looking the object up by its
//! marker before anything is retried.
//!
//! # Compatibility
//! `PRAGMA application_id` marks the file as keyshift's, `PRAGMA user_version` is the schema
//! version; migrations are append-only. A file of another program, or of a newer keyshift,
//! is refused with a one-line error rather than touched.
//!
//! # Secrets
//! Nothing secret is ever stored here: no credential, only keyed fingerprints of signing
//! secrets (see `secrets.rs`).

mod lock;
pub mod rollout;
mod schema;
mod writer;

pub use lock::WriterLock;

use anyhow::{Context, Result};
use chrono::Utc;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::errors::KeyshiftError;
use crate::model::{ClientSpec, Finding, Inventory, Plan, SourceRecord};

pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

/// One row of the event log: `(at, kind, op_id, detail JSON)`.
pub type EventRow = (String, String, Option<String>, String);

/// Lifecycle of one remote write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpState {
    /// Planned, nothing sent yet.
    Pending,
    /// Recorded as intended; the request may have left. Outcome unknown until reconciled.
    Intent,
    /// Done: the object exists and (for keys) its secret is in the sink.
    Done,
    /// Failed permanently for this run; `apply --retry-failed` tries again.
    Failed,
}

impl OpState {
    pub fn as_str(self) -> &'static str {
        match self {
            OpState::Pending => "pending",
            OpState::Intent => "intent",
            OpState::Done => "done",
            OpState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> OpState {
        match s {
            "intent" => OpState::Intent,
            "done" => OpState::Done,
            "failed" => OpState::Failed,
            _ => OpState::Pending,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    CreateClient,
    CreateKey,
    /// A flat target's credential (Descope access key, Bifrost virtual key).
    CreateItem,
    /// cutover: disable a legacy profile whose replacement verified.
    DisableProfile,
    /// rollback: re-enable a legacy profile cutover disabled.
    EnableProfile,
    /// rollback: disable, then delete, what apply created.
    DisableKey,
    DeleteKey,
    DeleteClient,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::CreateClient => "create_client",
            OpKind::CreateKey => "create_key",
            OpKind::CreateItem => "create_item",
            OpKind::DisableProfile => "disable_profile",
            OpKind::EnableProfile => "enable_profile",
            OpKind::DisableKey => "disable_key",
            OpKind::DeleteKey => "delete_key",
            OpKind::DeleteClient => "delete_client",
        }
    }

    fn parse(s: &str) -> OpKind {
        match s {
            "create_client" => OpKind::CreateClient,
            "create_item" => OpKind::CreateItem,
            "disable_profile" => OpKind::DisableProfile,
            "enable_profile" => OpKind::EnableProfile,
            "disable_key" => OpKind::DisableKey,
            "delete_key" => OpKind::DeleteKey,
            "delete_client" => OpKind::DeleteClient,
            _ => OpKind::CreateKey,
        }
    }
}

/// An operation's state and numeric remote id (see [`StateDb::op_briefs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpBrief {
    pub state: OpState,
    pub remote_id: Option<i64>,
}

/// One row of the operations journal.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Operation {
    pub op_id: String,
    pub kind: OpKind,
    pub workspace: String,
    /// The marker of what it creates (group marker or profile marker).
    pub target: String,
    /// For keys: the marker of the client they go in.
    pub parent: Option<String>,
    pub state: OpState,
    pub remote_id: Option<i64>,
    /// A remote id that is a string (Descope, Bifrost).
    pub remote_ref: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
    pub updated_at: String,
}

pub fn client_op_id(marker: &str) -> String {
    format!("client/{marker}")
}

pub fn key_op_id(source: &str) -> String {
    format!("key/{source}")
}

pub fn item_op_id(source: &str) -> String {
    format!("item/{source}")
}

/// The open state DB. One connection behind a mutex: SQLite serializes writers anyway, and
/// every statement here is short.
pub struct StateDb {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Journal entries go through the group-commit writer (started on first use).
    journal: std::sync::OnceLock<writer::JournalWriter>,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateDb({})", self.path.display())
    }
}

fn state_error(path: &Path, what: impl std::fmt::Display) -> anyhow::Error {
    KeyshiftError::State(format!("state file {}: {what}", path.display())).into()
}

fn damaged(path: &Path, what: &str) -> anyhow::Error {
    state_error(
        path,
        format!(
            "is damaged ({what}) — restore it from a backup, or start over with a new --state \
             path (what was applied is still found again by marker)"
        ),
    )
}

/// `err`, or — when SQLite found the state file damaged while reading it — an error that
/// says so and names the file. Opening checks only the header (a full check reads every page:
/// half a second at 100,000 profiles, on every command); SQLite detects a damaged page when it
/// reads one, and `keyshift doctor` checks every page.
pub fn name_damage(path: &Path, err: anyhow::Error) -> anyhow::Error {
    const SIGNS: [&str; 2] = ["database disk image is malformed", "file is not a database"];
    if err
        .downcast_ref::<KeyshiftError>()
        .is_some_and(|e| matches!(e, KeyshiftError::State(_)))
    {
        return err;
    }
    let coded = err
        .chain()
        .find_map(|e| match e.downcast_ref::<rusqlite::Error>() {
            Some(e @ rusqlite::Error::SqliteFailure(f, _))
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                ) =>
            {
                Some(plain(e))
            }
            _ => None,
        });
    // The journal writer thread hands its errors on as text.
    let text = format!("{err:#}");
    match coded.or_else(|| {
        SIGNS
            .iter()
            .find(|s| text.contains(*s))
            .map(|s| s.to_string())
    }) {
        Some(what) => damaged(path, &what),
        None => err,
    }
}

impl StateDb {
    /// Open an existing state DB, or create one when `create` is set.
    pub fn open(path: &Path, create: bool) -> Result<StateDb> {
        if path.is_dir() {
            return Err(state_error(
                path,
                "is a directory — pass a file path with --state (e.g. --state ./keyshift.db)",
            ));
        }
        let exists = path.exists();
        if !exists && !create {
            return Err(state_error(
                path,
                "does not exist — run `keyshift export` first, or pass --state to the file it wrote",
            ));
        }
        if !exists {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.exists() {
                    crate::secrets::create_private_dir(dir).map_err(|e| {
                        state_error(path, format!("cannot create its directory: {e}"))
                    })?;
                }
            }
            // Create it 0600 before SQLite does, so it never exists world-readable.
            crate::secrets::open_private(path, true).map_err(|e| {
                state_error(
                    path,
                    format!("cannot create it: {e} — choose a writable path with --state"),
                )
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| {
            state_error(
                path,
                format!("cannot open it: {} — check its permissions", plain(&e)),
            )
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let db = StateDb {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            journal: std::sync::OnceLock::new(),
        };
        db.check_and_migrate()?;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every page of the file (`PRAGMA quick_check`): for `doctor`, not for every open.
    pub fn check_integrity(&self) -> Result<()> {
        let check: String = self
            .conn()
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .unwrap_or_else(|e| plain(&e));
        if check == "ok" {
            Ok(())
        } else {
            Err(damaged(&self.path, &check))
        }
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_and_migrate(&self) -> Result<()> {
        let conn = self.conn();
        let probe = |conn: &Connection| -> rusqlite::Result<(i64, i64, i64)> {
            let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
            let ver: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let tables: i64 =
                conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            Ok((app, ver, tables))
        };
        let (app, ver, tables) = probe(&conn).map_err(|e| {
            state_error(
                &self.path,
                format!(
                    "is not a readable SQLite database ({}) — it may be truncated or corrupted; \
                     restore it from a backup or start over with a new --state path",
                    plain(&e)
                ),
            )
        })?;
        if app != APPLICATION_ID as i64 && (app != 0 || tables > 0) {
            return Err(state_error(
                &self.path,
                "is another program's SQLite database, not a keyshift state file — choose \
                 another --state path",
            ));
        }
        if ver > SCHEMA_VERSION {
            return Err(state_error(
                &self.path,
                format!(
                    "was written by a newer keyshift (schema {ver}, this one knows {SCHEMA_VERSION}) \
                     — upgrade keyshift"
                ),
            ));
        }
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .map_err(|e| {
            state_error(
                &self.path,
                format!("cannot be written: {} — check its permissions", plain(&e)),
            )
        })?;
        schema::migrate(&conn, ver).map_err(|e| {
            state_error(
                &self.path,
                format!(
                    "cannot be initialised: {} — check that it is writable",
                    plain(&e)
                ),
            )
        })?;
        Ok(())
    }

    // ---- meta ---------------------------------------------------------------------------

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// The mapping a run uses, as `(origin, text)`: the one export recorded (the registry
    /// parses it against the pairs it knows).
    pub fn recorded_mapping_text(&self) -> Result<(String, String)> {
        let origin = self.meta("mapping.origin")?.unwrap_or_default();
        let text = self.meta("mapping.text")?.ok_or_else(|| {
            KeyshiftError::State(format!(
                "state file {} has no export yet — run `keyshift export` first",
                self.path().display()
            ))
        })?;
        Ok((origin, text))
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    // ---- events -------------------------------------------------------------------------

    pub fn event(&self, kind: &str, op_id: Option<&str>, detail: &serde_json::Value) -> Result<()> {
        self.conn().execute(
            "INSERT INTO events(at, kind, op_id, detail) VALUES (?1, ?2, ?3, ?4)",
            params![now(), kind, op_id, detail.to_string()],
        )?;
        Ok(())
    }

    pub fn events(&self, kind: Option<&str>) -> Result<Vec<EventRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT at, kind, op_id, detail FROM events WHERE ?1 IS NULL OR kind = ?1 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([kind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    // ---- inventory ----------------------------------------------------------------------

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

    // ---- plan ---------------------------------------------------------------------------

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
        let findings = conn
            .prepare("SELECT body FROM findings ORDER BY seq")?
            .query_map([], |r| r.get::<_, String>(0))?
            .map(|r| from_json::<Finding>(&r?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Plan {
            clients,
            items,
            findings,
        })
    }

    // ---- operations journal -------------------------------------------------------------

    /// The state and numeric remote id of every operation: what apply's rounds consult, in
    /// a fraction of the memory of full rows (100,000 operations).
    pub fn op_briefs(&self) -> Result<std::collections::HashMap<String, OpBrief>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT op_id, state, remote_id FROM operations")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                OpBrief {
                    state: OpState::parse(&r.get::<_, String>(1)?),
                    remote_id: r.get(2)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn operations(&self) -> Result<Vec<Operation>> {
        self.operations_where("1")
    }

    /// Only the failed operations (with their errors), for a run's summary.
    pub fn failed_operations(&self) -> Result<Vec<Operation>> {
        self.operations_where("state = 'failed'")
    }

    fn operations_where(&self, filter: &str) -> Result<Vec<Operation>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT op_id, kind, workspace, target, parent, state, remote_id, attempts, error,
                    updated_at, remote_ref
             FROM operations WHERE {filter} ORDER BY rowid"
        ))?;
        let ops = stmt
            .query_map([], |r| {
                Ok(Operation {
                    op_id: r.get(0)?,
                    kind: OpKind::parse(&r.get::<_, String>(1)?),
                    workspace: r.get(2)?,
                    target: r.get(3)?,
                    parent: r.get(4)?,
                    state: OpState::parse(&r.get::<_, String>(5)?),
                    remote_id: r.get(6)?,
                    attempts: r.get(7)?,
                    error: r.get(8)?,
                    updated_at: r.get(9)?,
                    remote_ref: r.get(10)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ops)
    }

    fn journal(&self) -> Result<&writer::JournalWriter> {
        if let Some(j) = self.journal.get() {
            return Ok(j);
        }
        let started = writer::JournalWriter::start(&self.path)
            .map_err(|e| state_error(&self.path, format!("cannot start the journal: {e}")))?;
        Ok(self.journal.get_or_init(|| started))
    }

    async fn transition(
        &self,
        op_id: &str,
        state: OpState,
        remote_id: Option<i64>,
        error: Option<&str>,
        event: serde_json::Value,
    ) -> Result<()> {
        self.journal()?
            .write(writer::Entry::Transition {
                op_id: op_id.to_string(),
                state,
                remote_id,
                error: error.map(str::to_string),
                event: event.to_string(),
            })
            .await
    }

    /// Journal the intent of a write. Returns once it is durable: before the request leaves.
    pub async fn mark_intent(&self, op_id: &str, detail: serde_json::Value) -> Result<()> {
        self.transition(op_id, OpState::Intent, None, None, detail)
            .await
            .with_context(|| format!("cannot journal operation {op_id}"))
    }

    /// Record the remote id of an object whose request succeeded, while keeping the
    /// operation open (a key is only done once its secret is in the sink).
    pub async fn record_remote_id(&self, op_id: &str, remote_id: i64) -> Result<()> {
        self.journal()?
            .write(writer::Entry::RemoteId {
                op_id: op_id.to_string(),
                id: Some(remote_id),
                reference: None,
            })
            .await
    }

    pub async fn mark_done(
        &self,
        op_id: &str,
        remote_id: i64,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.transition(op_id, OpState::Done, Some(remote_id), None, detail)
            .await
    }

    /// Done, for an object whose remote id is a string.
    pub async fn mark_done_ref(
        &self,
        op_id: &str,
        remote_ref: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.set_ref(op_id, remote_ref).await?;
        self.transition(op_id, OpState::Done, None, None, detail)
            .await
    }

    /// Record a string remote id while the operation stays open.
    pub async fn set_ref(&self, op_id: &str, remote_ref: &str) -> Result<()> {
        self.journal()?
            .write(writer::Entry::RemoteId {
                op_id: op_id.to_string(),
                id: None,
                reference: Some(remote_ref.to_string()),
            })
            .await
    }

    /// Record a remote id of either kind while the operation stays open.
    pub async fn record_remote(&self, op_id: &str, id: &crate::model::RemoteId) -> Result<()> {
        match id {
            crate::model::RemoteId::Num(n) => self.record_remote_id(op_id, *n).await,
            crate::model::RemoteId::Text(s) => self.set_ref(op_id, s).await,
        }
    }

    /// Done, with a remote id of either kind.
    pub async fn mark_done_as(
        &self,
        op_id: &str,
        id: &crate::model::RemoteId,
        detail: serde_json::Value,
    ) -> Result<()> {
        match id {
            crate::model::RemoteId::Num(n) => self.mark_done(op_id, *n, detail).await,
            crate::model::RemoteId::Text(s) => self.mark_done_ref(op_id, s, detail).await,
        }
    }

    pub async fn mark_failed(&self, op_id: &str, error: &str) -> Result<()> {
        self.transition(
            op_id,
            OpState::Failed,
            None,
            Some(error),
            serde_json::json!({ "error": error }),
        )
        .await
    }

    /// The operation with this id, created pending if it is not in the journal yet.
    pub fn ensure_op(
        &self,
        op_id: &str,
        kind: OpKind,
        workspace: &str,
        target: &str,
        parent: Option<&str>,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO operations(op_id, kind, workspace, target, parent, state, attempts, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6)",
            params![op_id, kind.as_str(), workspace, target, parent, now()],
        )?;
        Ok(())
    }

    /// Name the operation's parent (a cutover wave: `wave:<n>`).
    pub fn set_parent(&self, op_id: &str, parent: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE operations SET parent = ?2 WHERE op_id = ?1",
            params![op_id, parent],
        )?;
        Ok(())
    }

    /// After rollback deleted its object: the create operation is pending again, so a later
    /// apply would create it anew.
    pub fn reopen(&self, op_id: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE operations SET state = 'pending', remote_id = NULL, remote_ref = NULL,
                 error = NULL, updated_at = ?2
             WHERE op_id = ?1",
            params![op_id, now()],
        )?;
        tx.execute(
            "INSERT INTO events(at, kind, op_id, detail) VALUES (?1, 'reopened', ?2, '{}')",
            params![now(), op_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forget one operation (an undone cutover switch).
    pub fn forget_op(&self, op_id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM operations WHERE op_id = ?1", [op_id])?;
        Ok(())
    }

    /// Forget finished operations of these kinds (a completed rollback's own journal).
    pub fn forget(&self, kinds: &[OpKind]) -> Result<()> {
        let conn = self.conn();
        for k in kinds {
            conn.execute("DELETE FROM operations WHERE kind = ?1", [k.as_str()])?;
        }
        Ok(())
    }

    /// Put failed operations back in line (`apply --retry-failed`).
    pub fn reset_failed(&self) -> Result<usize> {
        Ok(self.conn().execute(
            "UPDATE operations SET state = 'pending', error = NULL
             WHERE state = 'failed' AND kind IN ('create_client', 'create_key', 'create_item')",
            [],
        )?)
    }
}

/// rusqlite's message without the error-code noise.
fn plain(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        other => other.to_string(),
    }
}

/// The meta key of the inventory file `export --from` read (empty when the source is an API).
pub const SOURCE_FILE_META: &str = "export.source_file";

/// The file `export --from` read the source from, if it did.
pub fn source_file(db: &StateDb) -> Result<Option<String>> {
    Ok(db.meta(SOURCE_FILE_META)?.filter(|f| !f.is_empty()))
}

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    Ok(serde_json::to_string(v)?)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).context("the state DB holds a record this version cannot read")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_is_named_whichever_way_it_arrives() {
        let path = Path::new("/tmp/ks.db");
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some("database disk image is malformed".into()),
        );
        let coded = name_damage(
            path,
            anyhow::Error::from(corrupt).context("reading the plan"),
        );
        let text = name_damage(
            path,
            anyhow::anyhow!("cannot write the journal: database disk image is malformed"),
        );
        for err in [coded, text] {
            let msg = err.to_string();
            assert!(
                msg.starts_with("state file /tmp/ks.db: is damaged (database disk image"),
                "{msg}"
            );
            assert!(matches!(
                err.downcast_ref::<KeyshiftError>(),
                Some(KeyshiftError::State(_))
            ));
        }
        let other = name_damage(path, anyhow::anyhow!("GET /api/api_clients: HTTP 500"));
        assert_eq!(other.to_string(), "GET /api/api_clients: HTTP 500");
    }

    #[test]
    fn saving_the_inventory_fingerprints_what_it_stored() {
        use crate::model::{LegacyClient, Profile};
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("ks.db"), true).unwrap();
        let profile = |id: i64, name: &str| Profile {
            active: id % 2 == 0,
            ip_allow_list: vec!["10.0.0.0/8".into()],
            policy_id: Some(2),
            ..Profile::for_test(id, 7, name)
        };
        let inv = Inventory {
            legacy_clients: vec![LegacyClient {
                workspace: "1".into(),
                id: 7,
                name: "Portal \"EU\"".into(),
                project_id: None,
            }],
            profiles: vec![profile(10, "Ünïcode · one"), profile(11, "two")],
            ..Inventory::default()
        };
        let saved = db.save_inventory(&inv).unwrap();
        assert_eq!(
            saved,
            crate::model::source_fingerprint(&inv.legacy_clients, &inv.profiles)
        );
        let loaded = db.load_inventory().unwrap();
        assert_eq!(loaded.profiles, inv.profiles);
        assert_eq!(
            crate::model::source_fingerprint(&loaded.legacy_clients, &loaded.profiles),
            saved
        );
    }

    /// A state file version 2 wrote for a Bifrost export (rows in the `bifrost` workspace,
    /// activity only in the body) reads back as source records after the migration.
    #[test]
    fn a_version_2_file_reads_its_bifrost_rows_as_source_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            schema::migrate_until(&conn, 0, 3).unwrap();
            conn.execute_batch(
                "ALTER TABLE inventory DROP COLUMN active; PRAGMA user_version = 2;
                 INSERT INTO inventory VALUES
                   ('bifrost', 'bifrost_profile', 4, 'ops', '{\"id\":4,\"is_active\":false}'),
                   ('bifrost', 'bifrost_profile', 5, 'dev', '{\"id\":5,\"is_active\":true}'),
                   ('bifrost', 'mcp_client', 0, 'github', '{\"client_id\":\"c\"}');",
            )
            .unwrap();
        }
        let db = StateDb::open(&path, false).unwrap();
        let inv = db.load_inventory().unwrap();
        let seen: Vec<_> = inv
            .records
            .iter()
            .map(|r| (r.kind.as_str(), r.workspace.as_str(), r.id, r.active))
            .collect();
        assert_eq!(
            seen,
            [
                ("bifrost_profile", "default", 4, Some(false)),
                ("bifrost_profile", "default", 5, Some(true)),
                ("mcp_client", "default", 0, None),
            ]
        );
        assert_eq!(inv.source_profile_count(), 2);
        assert_eq!(inv.records[0].body["is_active"], false);
    }
}
