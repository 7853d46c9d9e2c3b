//! One writer per state DB (design invariant 7).
//!
//! An OS file lock (`flock`) on `<state>.lock`, held for the command's lifetime. The OS
//! releases it when the process dies, however it dies, so a lock left by a crashed or killed
//! run is never mistaken for a live one: the file's recorded pid is then only reported as a
//! stale lock taken over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::errors::KeyshiftError;

#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    path: PathBuf,
    /// The pid a previous, dead holder recorded, if the lock was stale.
    pub took_over_from: Option<String>,
}

impl WriterLock {
    pub fn acquire(state: &Path, command: &str) -> anyhow::Result<WriterLock> {
        let path = crate::context::with_suffix(state, ".lock");
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&path).map_err(|e| {
            KeyshiftError::State(format!(
                "state file {}: cannot create its lock file {}: {e}",
                state.display(),
                path.display()
            ))
        })?;
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(KeyshiftError::State(format!(
                    "state file {} is in use by another keyshift ({}) — wait for it to finish; \
                     only one command may write a state file at a time",
                    state.display(),
                    describe(&previous)
                ))
                .into())
            }
            Err(TryLockError::Error(e)) => {
                return Err(KeyshiftError::State(format!(
                    "state file {}: cannot lock {}: {e}",
                    state.display(),
                    path.display()
                ))
                .into())
            }
        }
        let took_over_from = (!previous.trim().is_empty()).then(|| describe(&previous));
        file.set_len(0)?;
        file.rewind()?;
        write!(
            file,
            "pid={} command={command} since={}",
            std::process::id(),
            crate::state::now()
        )?;
        file.flush()?;
        Ok(WriterLock {
            _file: file,
            path,
            took_over_from,
        })
    }
}

fn describe(recorded: &str) -> String {
    let r = recorded.trim();
    if r.is_empty() {
        "holder unknown".into()
    } else {
        r.to_string()
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Clear the record; the OS lock goes with the file handle.
        let _ = std::fs::write(&self.path, b"");
    }
}
