//! The operations journal: one row per remote write, its lifecycle, and the ids that name
//! it.

use anyhow::{Context, Result};
use rusqlite::params;

use super::{now, state_error, writer, StateDb};

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
    /// A standalone credential (Descope access key, Bifrost virtual key).
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

impl StateDb {
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
        self.operations_where("1", &[])
    }

    /// Only the failed operations (with their errors), for a run's summary.
    pub fn failed_operations(&self) -> Result<Vec<Operation>> {
        self.operations_where("state = 'failed'", &[])
    }

    /// Only the finished operations of one kind (e.g. the profiles cutover switched off).
    pub fn done_operations(&self, kind: OpKind) -> Result<Vec<Operation>> {
        self.operations_where("state = 'done' AND kind = ?1", &[&kind.as_str()])
    }

    /// Only the operations still open (`intent` or `pending`), for a run's summary: never the
    /// whole journal's rows (118,000 at 100,000 profiles).
    pub fn open_operations(&self) -> Result<Vec<Operation>> {
        self.operations_where("state IN ('intent', 'pending')", &[])
    }

    fn operations_where(
        &self,
        filter: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Operation>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT op_id, kind, workspace, target, parent, state, remote_id, attempts, error,
                    updated_at, remote_ref
             FROM operations WHERE {filter} ORDER BY rowid"
        ))?;
        let ops = stmt
            .query_map(params, |r| {
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
