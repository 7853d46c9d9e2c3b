//! All output goes through here: human lines, JSON-lines events (`--json`), progress bars on
//! a TTY only, and nothing but errors with `--quiet`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;

/// Write a line to stdout; a closed pipe (`keyshift report | head`) is not an error worth a
/// panic: the reader has what it wanted.
fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}").is_err() {
        std::process::exit(0);
    }
}

fn err(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
use serde_json::{json, Value};
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Human,
    Json,
    Quiet,
}

#[derive(Debug, Clone)]
pub struct Printer {
    mode: Mode,
    tty: bool,
}

impl Printer {
    pub fn new(mode: Mode) -> Printer {
        Printer {
            mode,
            tty: std::io::stdout().is_terminal(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A line for people. Suppressed by `--json` and `--quiet`. Control and hiding characters
    /// (vendor text) are shown, not sent to the terminal (`output::visible`).
    pub fn line(&self, msg: impl AsRef<str>) {
        if self.mode == Mode::Human {
            out(&crate::output::visible(msg.as_ref()));
        }
    }

    /// A warning, on stderr (not with `--quiet`).
    pub fn warn(&self, msg: impl AsRef<str>) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Json => self.event("warning", json!({ "message": msg.as_ref() })),
            Mode::Human => err(&format!(
                "warning: {}",
                crate::output::visible(msg.as_ref())
            )),
        }
    }

    /// An error that ends the command: always shown, on stderr, one line.
    pub fn error(&self, msg: impl AsRef<str>) {
        err(&format!("error: {}", crate::output::visible(msg.as_ref())));
    }

    /// A machine-readable event, printed only with `--json`.
    pub fn event(&self, kind: &str, mut data: Value) {
        if self.mode != Mode::Json {
            return;
        }
        if let Value::Object(map) = &mut data {
            map.insert("event".into(), Value::String(kind.into()));
        }
        out(&data.to_string());
    }

    /// Plain text that is the command's product (e.g. the sandbox's env lines, a report on
    /// stdout): printed in every mode.
    pub fn raw(&self, text: impl AsRef<str>) {
        out(text.as_ref());
    }

    /// A progress bar on a TTY in human mode; hidden otherwise.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        if self.mode != Mode::Human || !self.tty {
            return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar
    }
}
