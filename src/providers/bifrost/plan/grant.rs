//! What a planned virtual key may do, as the planner decided it: every value already checked
//! against what Bifrost accepts. The Bifrost provider writes it as the create body
//! (`providers::bifrost::create_body`); the planner never sees a wire field.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VirtualKeyGrant {
    pub description: String,
    /// One entry per provider the key may call.
    pub providers: Vec<ProviderGrant>,
    pub budgets: Vec<BudgetGrant>,
    /// `None`: no key-level rate limit.
    pub rate_limit: Option<LimitGrant>,
    pub calendar_aligned: bool,
    /// MCP clients (by name) and the tools the key may execute on each.
    pub tools: Vec<ToolGrant>,
    /// Labels the key carries: the profile's tags (`tag.<tag>`) and keyshift's provenance
    /// (`keyshift.source`, `keyshift.holder`).
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProviderGrant {
    pub provider: String,
    /// Model names, or `["*"]` for every model.
    pub models: Vec<String>,
    /// Provider key ids, or `["*"]` for every key of the provider.
    pub key_ids: Vec<String>,
    pub budgets: Vec<BudgetGrant>,
    pub rate_limit: Option<LimitGrant>,
}

/// A spending cap per window; at most one per window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BudgetGrant {
    pub max_limit: f64,
    /// `1h`, `1d`, `1w`, `1M`, `1Q`, `1Y`, …
    pub window: String,
    /// Only for a quarterly window (`1Q`).
    pub quarter_start_month: Option<u8>,
}

/// Token and request limits, each with its window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LimitGrant {
    pub tokens: Option<Window>,
    pub requests: Option<Window>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Window {
    pub max: i64,
    pub every: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolGrant {
    /// The MCP client's name (Bifrost grants MCP access by name).
    pub client: String,
    /// Tool names, or `["*"]` for every tool.
    pub tools: Vec<String>,
}
