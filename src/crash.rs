//! Named crash checkpoints for tests (as rustup's crash tests do).
//!
//! `KEYSHIFT_CRASH_AT=<name>` makes the process park at that point: it writes the name to
//! the file named by `KEYSHIFT_CRASH_MARKER` (if set), then sleeps until killed. A test waits
//! for the marker, sends SIGKILL, runs the command again and checks the end state.
//! `KEYSHIFT_CRASH_AFTER=N` parks at the N-th time the point is reached (default 1). Only
//! debug builds read these variables; a release build has no checkpoint.
//!
//! The points (docs/reliability.md):
//! - `before-write` — the intent is journaled, the write request has not left (apply's
//!   creates, and the switches of cutover, undo and rollback);
//! - `after-response` — the vendor answered (object created or switched), nothing recorded yet;
//! - `after-journal` — the new key's id is journaled, its secret not yet in the sink;
//! - `after-vault-write` — with `--secrets-vault`: the secret is in the store, its receipt
//!   not yet in the sink file;
//! - `after-sink` — the secret is in the sink (fsynced), the operation not yet done;
//! - `export-between-pages` — export has read a list page and not the next.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::env::Env;

pub const POINTS: &[&str] = &[
    "before-write",
    "after-response",
    "after-journal",
    "after-vault-write",
    "after-sink",
    "export-between-pages",
];

/// The configured checkpoint, shared by everything in one command.
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    after: u64,
    hits: AtomicU64,
    marker: Option<std::path::PathBuf>,
}

impl Checkpoints {
    /// Only builds with debug assertions (`cargo build`, `cargo test`) read them: a release
    /// binary ignores `KEYSHIFT_CRASH_AT`, so no setting can make a production run park.
    pub fn from_env(env: &Env) -> Checkpoints {
        if !cfg!(debug_assertions) {
            return Checkpoints::default();
        }
        let Ok(Some(name)) = env.get("KEYSHIFT_CRASH_AT") else {
            return Checkpoints::default();
        };
        let after = env
            .get("KEYSHIFT_CRASH_AFTER")
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let marker = env
            .get("KEYSHIFT_CRASH_MARKER")
            .ok()
            .flatten()
            .map(std::path::PathBuf::from);
        Checkpoints {
            inner: Some(Arc::new(Inner {
                name,
                after,
                hits: AtomicU64::new(0),
                marker,
            })),
        }
    }

    /// Park here forever if this is the configured point (and hit count).
    pub fn hit(&self, point: &str) {
        let Some(inner) = &self.inner else { return };
        if inner.name != point {
            return;
        }
        if inner.hits.fetch_add(1, Ordering::SeqCst) + 1 != inner.after {
            return;
        }
        if let Some(marker) = &inner.marker {
            let _ = std::fs::write(marker, point);
        }
        tracing::warn!(point, "crash checkpoint reached; parking until killed");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
