//! Group commit for the operations journal.
//!
//! Every journal entry must be durable before the code that wrote it goes on (an intent
//! before its request leaves, an outcome before the next step). Committing each entry on its
//! own costs one fsync per entry, which caps a migration at a few hundred keys per second.
//! Instead, entries go to one writer thread with its own connection; it commits whatever is
//! queued in one transaction (one fsync) and then answers every waiter. Under concurrency the
//! batches grow by themselves while a commit is in flight; alone, an entry still commits at
//! once.

use anyhow::{anyhow, Result};
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::mpsc;

use super::{now, OpState};

/// One journal entry.
pub(crate) enum Entry {
    /// A state transition, with its event.
    Transition {
        op_id: String,
        state: OpState,
        remote_id: Option<i64>,
        error: Option<String>,
        event: String,
    },
    /// The remote id (numeric or string) of an object whose operation stays open.
    RemoteId {
        op_id: String,
        id: Option<i64>,
        reference: Option<String>,
    },
}

type Reply = tokio::sync::oneshot::Sender<Result<(), String>>;

pub(crate) struct JournalWriter {
    queue: mpsc::Sender<(Entry, Reply)>,
}

/// Most entries committed in one transaction.
const MAX_BATCH: usize = 1024;

impl JournalWriter {
    pub(crate) fn start(path: &Path) -> Result<JournalWriter> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
        let (queue, rx) = mpsc::channel::<(Entry, Reply)>();
        std::thread::Builder::new()
            .name("keyshift-journal".into())
            .spawn(move || run(conn, rx))?;
        Ok(JournalWriter { queue })
    }

    /// Queue an entry; resolves once it is committed.
    pub(crate) async fn write(&self, entry: Entry) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue
            .send((entry, tx))
            .map_err(|_| anyhow!("the journal writer has stopped"))?;
        rx.await
            .map_err(|_| anyhow!("the journal writer has stopped"))?
            .map_err(|e| anyhow!(e))
    }
}

fn run(mut conn: Connection, rx: mpsc::Receiver<(Entry, Reply)>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (entries, replies): (Vec<Entry>, Vec<Reply>) = batch.into_iter().unzip();
        let outcome = commit(&mut conn, &entries);
        for (reply, result) in replies.into_iter().zip(outcome) {
            let _ = reply.send(result);
        }
    }
}

/// Commit all entries in one transaction; one result per entry (an entry naming an unknown
/// operation fails alone; a failed commit fails them all).
fn commit(conn: &mut Connection, entries: &[Entry]) -> Vec<Result<(), String>> {
    let apply = |conn: &mut Connection| -> rusqlite::Result<Vec<Result<(), String>>> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        let mut results = Vec::with_capacity(entries.len());
        {
            let mut transition = tx.prepare_cached(
                "UPDATE operations SET state = ?2, remote_id = COALESCE(?3, remote_id), error = ?4,
                     attempts = attempts + ?5, updated_at = ?6 WHERE op_id = ?1",
            )?;
            let mut event = tx.prepare_cached(
                "INSERT INTO events(at, kind, op_id, detail) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut remote = tx.prepare_cached(
                "UPDATE operations SET remote_id = COALESCE(?2, remote_id),
                     remote_ref = COALESCE(?3, remote_ref), updated_at = ?4 WHERE op_id = ?1",
            )?;
            for e in entries {
                let n = match e {
                    Entry::Transition {
                        op_id,
                        state,
                        remote_id,
                        error,
                        event: detail,
                    } => {
                        let bump = i64::from(*state == OpState::Intent);
                        let n = transition.execute(params![
                            op_id,
                            state.as_str(),
                            remote_id,
                            error,
                            bump,
                            at
                        ])?;
                        if n == 1 {
                            event.execute(params![at, state.as_str(), op_id, detail])?;
                        }
                        (n, op_id)
                    }
                    Entry::RemoteId {
                        op_id,
                        id,
                        reference,
                    } => (remote.execute(params![op_id, id, reference, at])?, op_id),
                };
                results.push(if n.0 == 1 {
                    Ok(())
                } else {
                    Err(format!("operation {} is not in the journal", n.1))
                });
            }
        }
        tx.commit()?;
        Ok(results)
    };
    match apply(conn) {
        Ok(results) => results,
        Err(e) => entries
            .iter()
            .map(|_| Err(format!("cannot write the journal: {e}")))
            .collect(),
    }
}
