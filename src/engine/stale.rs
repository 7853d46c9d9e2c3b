//! The stale-plan check: a plan is applied only to the source it was made from.

use anyhow::Result;
use std::collections::HashSet;

use super::Source;
use crate::errors::KeyshiftError;
use crate::state::{OpKind, StateDb};

/// Refuse to apply a plan whose source changed since export: re-read the source and
/// compare its fingerprint with the export's (as keyshift's own cutover left it).
pub async fn check_source(
    db: &StateDb,
    source: &dyn Source,
    exported: Option<String>,
) -> Result<()> {
    let expected = expected_fingerprint(db, source, exported)?;
    if Some(source.fingerprint().await?) != expected {
        return Err(KeyshiftError::StalePlan(source.stale()).into());
    }
    Ok(())
}

/// What the source should look like now: as exported, except for the profiles keyshift's own
/// `cutover` disabled (those are expected to be inactive, and are no reason to call the plan
/// stale). Without a cutover this is the export's fingerprint itself.
fn expected_fingerprint(
    db: &StateDb,
    source: &dyn Source,
    exported: Option<String>,
) -> Result<Option<String>> {
    let disabled: HashSet<String> = db
        .done_operations(OpKind::DisableProfile)?
        .into_iter()
        .map(|o| o.target)
        .collect();
    if disabled.is_empty() {
        return Ok(exported);
    }
    Ok(Some(source.fingerprint_with_disabled(
        db.load_inventory()?,
        &disabled,
    )?))
}
