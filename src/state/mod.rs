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

mod inventory;
mod journal;
mod lock;
mod plan;
pub mod rollout;
mod schema;
mod writer;

pub use journal::{client_op_id, item_op_id, key_op_id, OpBrief, OpKind, OpState, Operation};

pub use lock::WriterLock;

use anyhow::{Context, Result};
use chrono::Utc;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::errors::KeyshiftError;

pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

/// One row of the event log: `(at, kind, op_id, detail JSON)`.
pub type EventRow = (String, String, Option<String>, String);

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

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    Ok(serde_json::to_string(v)?)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).context("the state DB holds a record this version cannot read")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Inventory;

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
