//! One folder per vendor: wire types and HTTP calls. The rest of the code sees only the
//! vendor-neutral types of `model.rs`, through a read-only source and a writing target.

pub mod bifrost;
pub mod descope;
pub mod flat;
pub mod workato;

/// A credential of a flat target (Descope access key, Bifrost virtual key) as read back:
/// never its secret.
#[derive(Debug, Clone)]
pub struct RemoteCredential {
    pub id: String,
    pub active: bool,
    /// keyshift's provenance marker, when the credential carries one.
    pub source: Option<String>,
    /// The vendor's object, for field-by-field comparison.
    pub body: serde_json::Value,
}
