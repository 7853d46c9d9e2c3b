//! Error kinds that carry an exit code, and the one place that maps errors to exit codes.
//!
//! Commands use `anyhow` with context; where an error decides the exit code it is a
//! [`KeyshiftError`] somewhere in the chain. Anything else is exit code 1.

use std::fmt;

/// The process exit codes (docs/cli.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    Ok = 0,
    Error = 1,
    Usage = 2,
    Blockers = 3,
    Drift = 4,
    StalePlan = 5,
    Partial = 6,
}

impl ExitCode {
    /// Rank for "highest precedence wins": 1 > 2 > 5 > 6 > 4 > 3 > 0.
    fn precedence(self) -> u8 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Blockers => 1,
            ExitCode::Drift => 2,
            ExitCode::Partial => 3,
            ExitCode::StalePlan => 4,
            ExitCode::Usage => 5,
            ExitCode::Error => 6,
        }
    }

    /// Combine two outcomes: the one with the higher precedence wins.
    pub fn and(self, other: ExitCode) -> ExitCode {
        if other.precedence() > self.precedence() {
            other
        } else {
            self
        }
    }

    pub fn code(self) -> i32 {
        self as i32
    }
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// Errors whose kind decides the exit code. Messages are written for the user: what went
/// wrong, with which object, and what to do. The kinds that recur across the code carry
/// their parts as fields and are worded here, once; the rest carry their sentence.
#[derive(Debug, thiserror::Error)]
pub enum KeyshiftError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    StalePlan(String),
    #[error("{0}")]
    State(String),
    #[error("{0}")]
    Config(String),
    /// A setting a command needs (an environment variable, or its `_FILE`) is not set.
    #[error("{name} is not set — {fix}")]
    MissingSetting {
        name: &'static str,
        fix: &'static str,
    },
    /// A file the user named cannot be read.
    #[error("{what} {}: cannot read it: {reason}{}", .path.display(), fix_suffix(*.fix))]
    Unreadable {
        /// What the file is, e.g. `mapping file`, or the setting that named it.
        what: String,
        path: std::path::PathBuf,
        reason: String,
        fix: Option<&'static str>,
    },
}

fn fix_suffix(fix: Option<&'static str>) -> String {
    fix.map(|f| format!(" — {f}")).unwrap_or_default()
}

impl KeyshiftError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            KeyshiftError::Usage(_) => ExitCode::Usage,
            KeyshiftError::StalePlan(_) => ExitCode::StalePlan,
            KeyshiftError::State(_)
            | KeyshiftError::Config(_)
            | KeyshiftError::MissingSetting { .. }
            | KeyshiftError::Unreadable { .. } => ExitCode::Error,
        }
    }

    /// A file that cannot be read: what it is, where, and why (the I/O error's words).
    pub fn unreadable(
        what: impl Into<String>,
        path: impl Into<std::path::PathBuf>,
        e: &std::io::Error,
        fix: Option<&'static str>,
    ) -> KeyshiftError {
        KeyshiftError::Unreadable {
            what: what.into(),
            path: path.into(),
            reason: e.to_string(),
            fix,
        }
    }
}

/// The exit code for an error that ended a command.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|e| e.downcast_ref::<KeyshiftError>())
        .map(KeyshiftError::exit_code)
        .unwrap_or(ExitCode::Error)
}

/// One line for the user: the chain of contexts joined, outermost first.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recurring_kinds_are_worded_once() {
        let missing = KeyshiftError::MissingSetting {
            name: "KEYSHIFT_X_URL",
            fix: "point it at the host",
        };
        assert_eq!(
            missing.to_string(),
            "KEYSHIFT_X_URL is not set — point it at the host"
        );
        assert_eq!(missing.exit_code(), ExitCode::Error);
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let unreadable = KeyshiftError::unreadable("mapping file", "m.toml", &e, None);
        assert_eq!(
            unreadable.to_string(),
            "mapping file m.toml: cannot read it: No such file"
        );
        let with_fix =
            KeyshiftError::unreadable("SSL_CERT_FILE", "/ca.pem", &e, Some("point it at a PEM"));
        assert_eq!(
            with_fix.to_string(),
            "SSL_CERT_FILE /ca.pem: cannot read it: No such file — point it at a PEM"
        );
        let env = crate::env::Env::from_pairs([]);
        let err = env.require("KEYSHIFT_Y", "set it").unwrap_err();
        assert!(matches!(
            err.downcast_ref::<KeyshiftError>(),
            Some(KeyshiftError::MissingSetting {
                name: "KEYSHIFT_Y",
                ..
            })
        ));
    }

    #[test]
    fn precedence_follows_the_contract() {
        // 1 > 2 > 5 > 6 > 4 > 3 > 0
        let order = [
            ExitCode::Error,
            ExitCode::Usage,
            ExitCode::StalePlan,
            ExitCode::Partial,
            ExitCode::Drift,
            ExitCode::Blockers,
            ExitCode::Ok,
        ];
        for (i, hi) in order.iter().enumerate() {
            for lo in &order[i..] {
                assert_eq!(hi.and(*lo), *hi);
                assert_eq!(lo.and(*hi), *hi);
            }
        }
    }

    #[test]
    fn exit_code_found_through_context() {
        let err = anyhow::Error::new(KeyshiftError::StalePlan("changed".into())).context("apply");
        assert_eq!(exit_code_for(&err), ExitCode::StalePlan);
        assert_eq!(exit_code_for(&anyhow::anyhow!("x")), ExitCode::Error);
    }
}
