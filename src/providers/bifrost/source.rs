//! Bifrost as a source: its access profiles — fingerprint, markers, switching a profile off
//! and on for cutover and rollback, and their consumers.

use anyhow::Result;

use super::{profile_marker, source_fingerprint, usage, BifrostConn, WORKSPACE};
use crate::http::HttpError;
use crate::providers::bifrost::plan::BifrostInventory;

/// Bifrost's access profiles as the engine's source.
impl crate::engine::Source for BifrostConn {
    fn fingerprint(&self) -> crate::engine::Fut<'_, Result<String>> {
        Box::pin(async move {
            let (profiles, _) = self.list_profiles().await?;
            Ok(source_fingerprint(&profiles))
        })
    }

    fn fingerprint_with_disabled(
        &self,
        inv: crate::model::Inventory,
        disabled: &std::collections::HashSet<String>,
    ) -> Result<String> {
        let mut profiles = BifrostInventory::read(&inv)?.profiles;
        for p in &mut profiles {
            if disabled.contains(&profile_marker(p.id)) {
                p.is_active = false;
            }
        }
        Ok(source_fingerprint(&profiles))
    }

    fn stale(&self) -> String {
        "the source changed since export (access profiles differ) — re-run `keyshift export` \
         and `keyshift plan`, review, then apply"
            .into()
    }

    fn profile_noun(&self) -> &'static str {
        "access profile"
    }

    fn disable_note(&self) -> &'static str {
        " Existing user copies keep working until revoked by an operator."
    }

    fn profile_marker(&self, _workspace: &str, profile: &str) -> String {
        format!("keyshift:bifrost:{WORKSPACE}:profile:{profile}")
    }

    fn exported_active(
        &self,
        inv: &crate::model::Inventory,
    ) -> std::collections::HashSet<(String, String)> {
        inv.records
            .iter()
            .filter(|r| r.active == Some(true))
            .map(|r| (r.workspace.clone(), r.id.to_string()))
            .collect()
    }

    /// Holders' profile-managed keys keep working after the profile is deactivated: cutover
    /// does not turn them away.
    fn disabling_refuses_old(&self) -> bool {
        false
    }

    fn consumers(
        &self,
        inv: &crate::model::Inventory,
        plan: &crate::model::Plan,
    ) -> Result<Vec<crate::engine::adoption::Consumer>> {
        usage::consumers(&BifrostInventory::read(inv)?, plan)
    }

    /// A3: deactivation only retires the profile; existing user copies keep working until an
    /// operator revokes them (docs/sandbox-bifrost.md).
    fn set_profile_active<'a>(
        &'a self,
        _workspace: &'a str,
        profile: &'a str,
        active: bool,
    ) -> crate::engine::Fut<'a, Result<(), HttpError>> {
        Box::pin(async move {
            let Ok(id) = profile.parse::<i64>() else {
                let what = format!("access profile id {profile:?} (Bifrost's ids are numbers)");
                return Err(crate::engine::refused_here(
                    crate::model::Vendor::Bifrost,
                    what,
                ));
            };
            BifrostConn::set_profile_active(self, id, active).await
        })
    }
}
