//! Schema versions. Append-only: never edit a released migration, add the next one.

use rusqlite::Connection;

/// "KSHF" — marks a SQLite file as keyshift's state.
pub const APPLICATION_ID: i32 = 0x4B53_4846;
pub const SCHEMA_VERSION: i64 = 4;

const MIGRATIONS: &[&str] = &[
    // 1: inventory, plan, operations journal, events.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE inventory (
         workspace TEXT NOT NULL, kind TEXT NOT NULL, id INTEGER NOT NULL,
         name TEXT NOT NULL, body TEXT NOT NULL,
         PRIMARY KEY (workspace, kind, id));
     CREATE TABLE plan_clients (
         marker TEXT PRIMARY KEY, ord INTEGER NOT NULL, workspace TEXT NOT NULL,
         spec TEXT NOT NULL);
     CREATE TABLE findings (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
     CREATE TABLE operations (
         op_id TEXT PRIMARY KEY, kind TEXT NOT NULL, workspace TEXT NOT NULL,
         target TEXT NOT NULL, parent TEXT,
         state TEXT NOT NULL CHECK (state IN ('pending','intent','done','failed')),
         remote_id INTEGER, attempts INTEGER NOT NULL DEFAULT 0, error TEXT,
         updated_at TEXT NOT NULL);
     CREATE TABLE events (
         seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
         op_id TEXT, detail TEXT NOT NULL);",
    // 2: standalone credentials (Descope access keys, Bifrost virtual keys): planned items, and remote
    // ids that are strings.
    "CREATE TABLE plan_items (
         source TEXT PRIMARY KEY, ord INTEGER NOT NULL, workspace TEXT NOT NULL,
         spec TEXT NOT NULL);
     ALTER TABLE operations ADD COLUMN remote_ref TEXT;",
    // 3: a source's own records say whether they are source profiles (and active); the
    // Bifrost rows version 2 wrote get theirs from their bodies and the instance's workspace.
    "ALTER TABLE inventory ADD COLUMN active INTEGER;
     UPDATE inventory SET active = json_extract(body, '$.is_active')
         WHERE kind = 'bifrost_profile';
     UPDATE inventory SET workspace = 'default' WHERE workspace = 'bifrost';",
    // 4: the rollout — adoption snapshots (history kept) with each consumer's judged status,
    // and cutover waves (a wave's operations name it as their parent, `wave:<n>`).
    "CREATE TABLE snapshots (
         id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, body TEXT NOT NULL);
     CREATE TABLE snapshot_consumers (
         snapshot INTEGER NOT NULL, workspace TEXT NOT NULL, consumer TEXT NOT NULL,
         status TEXT NOT NULL, body TEXT NOT NULL,
         PRIMARY KEY (snapshot, workspace, consumer));
     CREATE TABLE waves (
         n INTEGER PRIMARY KEY, kind TEXT NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL);",
];

pub fn migrate(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    migrate_until(conn, from, MIGRATIONS.len() as i64)
}

/// Migrate from version `from` up to version `until` (tests build old files with it).
pub fn migrate_until(conn: &Connection, from: i64, until: i64) -> rusqlite::Result<()> {
    let steps = (until - from).max(0) as usize;
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(from as usize)
        .take(steps)
    {
        let version = i as i64 + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {version}; COMMIT;"
        ))?;
    }
    Ok(())
}
