//! One folder per vendor: wire types and HTTP calls. The rest of the code sees only the
//! vendor-neutral types of `model.rs`, through a read-only source and a writing target.

pub mod bifrost;
pub mod descope;
pub mod workato;
