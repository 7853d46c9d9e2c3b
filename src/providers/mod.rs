//! One folder per vendor: its connection, wire types and calls, and the seams it plays — an
//! `engine::Target` (directly, or through `standalone::StandaloneApi`), an `engine::Source`, a live
//! prober, an export. The rest of the code sees only model types and those traits, and only
//! `registry.rs` names what is in here.

pub mod bifrost;
pub mod descope;
pub mod standalone;
#[cfg(test)]
pub mod toy;
pub mod workato;

/// A standalone credential (Descope access key, Bifrost virtual key) as read back:
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
