//! keyshift — migrate machine credentials off deprecated access profiles onto API keys.
//!
//! The library holds everything; `main.rs` only parses arguments, calls [`run`] and turns
//! the outcome into an exit code. All output goes through [`printer::Printer`], so the
//! library never prints on its own.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cli;
pub mod commands;
pub mod context;
pub mod crash;
pub mod engine;
pub mod env;
pub mod errors;
pub mod http;
pub mod mapping;
pub mod model;
pub mod output;
pub mod pair;
pub mod printer;
pub mod providers;
pub mod registry;
pub mod report;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod secrets;
pub mod state;

pub use commands::run;
pub use errors::ExitCode;
