//! The seeded Bifrost inventory (`--seed`; size from `[bifrost] generated_profiles`, default
//! 40, independent of `--profiles`, which sizes the Workato side).
//!
//! Same seed and size, same inventory: every choice comes from one `StdRng` seeded from the
//! seed (mixed with a Bifrost-only constant, so the Workato inventory of the same seed is not
//! disturbed), and everything is built in a fixed order. What it holds:
//!
//! - 9 provider keys over 6 providers (`openai`, `anthropic`, `azure`, `bedrock`, `gemini`,
//!   `mistral`), values `sk-prov-<hex>`, and one more for each other provider a profile names
//!   (#12's `<provider>-region-NNN`), so that every provider a profile uses is configured
//!   (Bifrost refuses virtual keys naming a missing one, PC-B16);
//! - 6 MCP clients with 2–5 tools each (`github` = `gh-1` has `delete_repo`, …; `web-search`
//!   is `disconnected`);
//! - access profiles with ids `1..=N`: 1–3 providers with model allow-lists or
//!   `all_models_allowed`, provider and global budgets, rate limits (about 30 % with
//!   `rate_limit: null`), calendar alignment, MCP servers with include/exclude overrides,
//!   tags, roles; about 15 % inactive;
//! - at fixed positions (all present when N ≥ 38), the cases a migration must handle:
//!   deny-all models (#3), tags that are not valid metadata keys (#4), over 50 tags (#6), never
//!   attached to a role and inactive (#8), scheduled rotation (#10), over 100 provider configs
//!   (#12), deactivated but still held by users (#14), no provider at all (#16), the same name
//!   as profile #3 (#18), a fractional rate limit (#20), a name already used by a standalone
//!   virtual key (#22), calendar alignment with an hourly budget (#24), a bare profile (#26),
//!   MCP tool groups (#30), an MCP server id no client has (#32), a `1Q` budget with
//!   `quarter_start_month` (#38);
//! - 3 standalone virtual keys (one owned by a team, one by a customer and inactive, one with
//!   the name of profile #22);
//! - 10 holders `u-alice` … `u-jun` with 1–3 profile copies each, every copy with one
//!   profile-managed virtual key (`is_access_profile_managed: true`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};

use super::model::{
    mask_value, uuid_v4, AccessProfile, ApProviderConfig, BifrostSeq, BifrostState, Budget,
    McpClient, McpTool, ProviderKey, RateLimit, RoleBinding, ToolOverride, UserAccessProfile,
    VirtualKey, VkMcpConfig, VkProviderConfig,
};
use crate::sandbox::workato::model::StoredSecret;

/// Mixed into the seed so Bifrost draws its own random stream.
const STREAM: u64 = 0xb1f7_05b1_f705_0001;
/// The stream of the keys of providers only profiles name (drawn last, apart, so that the
/// rest of the inventory does not depend on those keys).
const NAMED_PROVIDER_STREAM: u64 = 0x0000_0000_0000_0b16;

/// Providers with their model names.
const PROVIDERS: &[(&str, &[&str])] = &[
    ("openai", &["gpt-4o", "gpt-4o-mini", "o3-mini", "gpt-4.1"]),
    (
        "anthropic",
        &["claude-sonnet-4", "claude-opus-4", "claude-3-5-haiku"],
    ),
    ("azure", &["gpt-4o", "gpt-4o-mini"]),
    (
        "bedrock",
        &["anthropic.claude-3-5-sonnet", "meta.llama3-70b-instruct"],
    ),
    ("gemini", &["gemini-2.5-pro", "gemini-2.5-flash"]),
    ("mistral", &["mistral-large-latest", "codestral-latest"]),
];

/// Provider keys: (provider, name).
const PROVIDER_KEYS: &[(&str, &str)] = &[
    ("openai", "openai-primary"),
    ("openai", "openai-batch"),
    ("anthropic", "anthropic-primary"),
    ("anthropic", "anthropic-eu"),
    ("azure", "azure-westeurope"),
    ("bedrock", "bedrock-us-east-1"),
    ("gemini", "gemini-main"),
    ("mistral", "mistral-la-plateforme"),
    ("openai", "openai-research"),
];

/// MCP clients: (client_id, name, connection type, tools).
const MCP_CLIENTS: &[(&str, &str, &str, &[&str])] = &[
    (
        "gh-1",
        "github",
        "http",
        &[
            "list_repos",
            "get_issue",
            "create_issue",
            "merge_pr",
            "delete_repo",
        ],
    ),
    (
        "jira-1",
        "jira",
        "http",
        &[
            "search_issues",
            "get_issue",
            "create_issue",
            "transition_issue",
        ],
    ),
    (
        "slack-1",
        "slack",
        "sse",
        &["post_message", "list_channels", "delete_message"],
    ),
    (
        "pg-1",
        "postgres",
        "stdio",
        &["query", "list_tables", "drop_table"],
    ),
    (
        "fs-1",
        "filesystem",
        "stdio",
        &["read_file", "write_file", "delete_file", "list_dir"],
    ),
    ("web-1", "web-search", "http", &["search", "fetch"]),
];

const NAMES: &[&str] = &[
    "Engineering",
    "Data Science",
    "Support",
    "Marketing",
    "Sales Ops",
    "Research",
    "Platform",
    "Security",
    "Finance",
    "Legal",
    "Design",
    "QA",
    "Mobile",
    "Growth",
    "Zürich Research",
    "東京 Support",
    "Café Analytics",
    "Søren's Lab",
    "Infrastructure",
    "Customer Success",
    "Partner Integrations",
    "Interns",
    "ML Ops",
    "Localization",
    "Compliance",
    "São Paulo Sales",
    "Docs",
    "Recruiting",
    "Kraków Engineering",
    "Executive Assistants",
    "Trust & Safety",
    "Evaluation",
    "Benchmarks",
    "Red Team",
    "Field Engineering",
    "Procurement",
    "Ops Automation",
    "Ñandú Labs",
    "Observability",
    "Contractors",
];

const TAGS: &[&str] = &[
    "eng",
    "tier-1",
    "tier-2",
    "prod",
    "beta",
    "research",
    "cost-center.42",
    "pii",
    "eu",
];

/// Tags with characters metadata keys do not allow (`[a-zA-Z0-9._-]`).
const BAD_TAGS: &[&str] = &["cost center", "team/ml", "owner:platform", "ünïcode"];

const ROLES: &[(u64, &str)] = &[
    (1, "Engineer"),
    (2, "Analyst"),
    (3, "Support Agent"),
    (4, "Admin"),
    (5, "Contractor"),
];

const USERS: &[&str] = &[
    "u-alice", "u-bob", "u-chen", "u-dana", "u-emile", "u-farah", "u-goran", "u-hana", "u-ivan",
    "u-jun",
];

/// 30 days in nanoseconds.
const THIRTY_DAYS_NS: i64 = 30 * 24 * 3600 * 1_000_000_000;

/// The special cases, by 0-based profile position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    DenyAllModels,
    BadTags,
    OverTags,
    NeverAttached,
    AutoRotation,
    OverProviders,
    Deactivated,
    NoProviders,
    DuplicateName,
    FractionalRateLimit,
    VkNameClash,
    AlignedHourly,
    Bare,
    ToolGroups,
    UnknownMcpServer,
    QuarterBudget,
}

const CASES: &[(usize, Case)] = &[
    (2, Case::DenyAllModels),
    (3, Case::BadTags),
    (5, Case::OverTags),
    (7, Case::NeverAttached),
    (9, Case::AutoRotation),
    (11, Case::OverProviders),
    (13, Case::Deactivated),
    (15, Case::NoProviders),
    (17, Case::DuplicateName),
    (19, Case::FractionalRateLimit),
    (21, Case::VkNameClash),
    (23, Case::AlignedHourly),
    (25, Case::Bare),
    (29, Case::ToolGroups),
    (31, Case::UnknownMcpServer),
    (37, Case::QuarterBudget),
];

fn case_at(i: usize) -> Option<Case> {
    CASES.iter().find(|(at, _)| *at == i).map(|(_, c)| *c)
}

fn base_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_748_736_000, 0).unwrap_or_default() // 2025-06-01T00:00:00Z
}

struct Gen {
    rng: StdRng,
    state: BifrostState,
}

/// Build the inventory for `seed` with `profiles` access profiles.
pub fn generate(seed: u64, profiles: u32) -> BifrostState {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed ^ STREAM),
        state: BifrostState {
            seq: BifrostSeq::default(),
            ..BifrostState::default()
        },
    };
    g.provider_keys();
    g.mcp_clients();
    for i in 0..profiles as usize {
        g.profile(i);
    }
    g.standalone_keys();
    g.holders();
    g.rng = StdRng::seed_from_u64(seed ^ STREAM ^ NAMED_PROVIDER_STREAM);
    g.keys_for_named_providers();
    g.state
}

impl Gen {
    fn uuid(&mut self) -> String {
        uuid_v4(&mut self.rng)
    }

    fn time(&mut self, i: usize) -> DateTime<Utc> {
        base_time()
            + Duration::days(i as i64 * 3)
            + Duration::seconds(self.rng.gen_range(0..86_400))
    }

    fn provider_keys(&mut self) {
        for (provider, name) in PROVIDER_KEYS {
            let mut b = [0u8; 24];
            self.rng.fill_bytes(&mut b);
            let models = PROVIDERS
                .iter()
                .find(|(p, _)| p == provider)
                .map(|(_, m)| m.iter().map(|s| (*s).to_owned()).collect())
                .unwrap_or_default();
            let key = ProviderKey {
                id: self.uuid(),
                provider: (*provider).to_owned(),
                name: (*name).to_owned(),
                value: StoredSecret::from_clear(format!("sk-prov-{}", hex::encode(b))),
                models,
                weight: 1.0,
            };
            self.state.provider_keys.push(key);
        }
    }

    /// Bifrost refuses a virtual key naming a provider it has not configured (PC-B16): every
    /// provider a profile or key names (e.g. #12's `openai-region-006`) gets a provider key.
    fn keys_for_named_providers(&mut self) {
        let named: std::collections::BTreeSet<String> = self
            .state
            .profiles
            .values()
            .flat_map(|p| p.provider_configs.iter().map(|c| c.provider_name.clone()))
            .chain(
                self.state
                    .virtual_keys
                    .iter()
                    .flat_map(|k| k.provider_configs.iter().map(|c| c.provider.clone())),
            )
            .filter(|p| !p.trim().is_empty() && !self.state.has_provider(p))
            .collect();
        for provider in named {
            let mut b = [0u8; 24];
            self.rng.fill_bytes(&mut b);
            let models = PROVIDERS
                .iter()
                .find(|(p, _)| provider.starts_with(&format!("{p}-")))
                .map(|(_, m)| m.iter().map(|s| (*s).to_owned()).collect())
                .unwrap_or_default();
            let key = ProviderKey {
                id: self.uuid(),
                name: format!("{provider}-key"),
                provider,
                value: StoredSecret::from_clear(format!("sk-prov-{}", hex::encode(b))),
                models,
                weight: 1.0,
            };
            self.state.provider_keys.push(key);
        }
    }

    fn mcp_clients(&mut self) {
        for (client_id, name, kind, tools) in MCP_CLIENTS {
            let id = self.state.seq.next_mcp_client();
            let client = McpClient {
                id,
                client_id: (*client_id).to_owned(),
                name: (*name).to_owned(),
                connection_type: (*kind).to_owned(),
                connection_string: (*kind != "stdio")
                    .then(|| format!("https://mcp.{name}.example.internal/mcp")),
                auth_type: "none".to_owned(),
                is_code_mode_client: false,
                disabled: false,
                allow_on_all_virtual_keys: false,
                tools: tools
                    .iter()
                    .map(|t| McpTool {
                        name: (*t).to_owned(),
                        description: format!("{} ({name})", t.replace('_', " ")),
                    })
                    .collect(),
                state: if *name == "web-search" {
                    "disconnected".to_owned()
                } else {
                    "connected".to_owned()
                },
            };
            self.state.mcp_clients.insert(id, client);
        }
    }

    fn budget(
        &mut self,
        max: f64,
        duration: &str,
        scope: &str,
        t: DateTime<Utc>,
        usage: bool,
    ) -> Budget {
        let current_usage = if usage {
            (self.rng.gen_range(0.0..max) * 100.0).round() / 100.0
        } else {
            0.0
        };
        Budget {
            id: self.uuid(),
            max_limit: max,
            reset_duration: duration.to_owned(),
            quarter_start_month: None,
            scope: Some(scope.to_owned()),
            calendar_aligned: false,
            current_usage,
            last_reset: t,
            created_at: t,
            updated_at: t,
        }
    }

    fn rate_limit(&mut self, t: DateTime<Utc>) -> RateLimit {
        let tokens = self.rng.gen_bool(0.7);
        let requests = !tokens || self.rng.gen_bool(0.5);
        RateLimit {
            id: self.uuid(),
            token_max_limit: tokens.then(|| f64::from(self.rng.gen_range(1..50u32) * 100_000)),
            token_reset_duration: Some(if tokens { "1d" } else { "1h" }.to_owned()),
            request_max_limit: requests.then(|| f64::from(self.rng.gen_range(1..40u32) * 30)),
            request_reset_duration: Some(if requests { "1h" } else { "1d" }.to_owned()),
            token_current_usage: 0.0,
            request_current_usage: f64::from(self.rng.gen_range(0..30u32)),
            token_last_reset: t,
            request_last_reset: t,
            created_at: t,
            updated_at: t,
        }
    }

    fn provider_config(
        &mut self,
        provider: &str,
        models: &[&str],
        t: DateTime<Utc>,
    ) -> ApProviderConfig {
        let all = self.rng.gen_bool(0.3);
        let allowed_models: Vec<String> = if all {
            Vec::new()
        } else {
            let n = self.rng.gen_range(1..=models.len());
            let mut picked: Vec<String> = models
                .choose_multiple(&mut self.rng, n)
                .map(|s| (*s).to_owned())
                .collect();
            picked.sort();
            picked
        };
        let scope = format!("provider:{provider}");
        let budgets = if self.rng.gen_bool(0.4) {
            let d = *["1d", "1w", "1M"].choose(&mut self.rng).unwrap_or(&"1M");
            let max = f64::from(self.rng.gen_range(1..40u32) * 5);
            vec![self.budget(max, d, &scope, t, true)]
        } else {
            Vec::new()
        };
        let rate_limit = self.rng.gen_bool(0.5).then(|| self.rate_limit(t));
        ApProviderConfig {
            id: self.state.seq.next_ap_provider_config(),
            provider_name: provider.to_owned(),
            all_models_allowed: all,
            allowed_models,
            budgets,
            rate_limit,
        }
    }

    fn profile(&mut self, i: usize) {
        let case = case_at(i);
        let id = self.state.seq.next_profile();
        let created_at = self.time(i);
        let updated_at = created_at + Duration::days(self.rng.gen_range(0..60));
        let name = match case {
            Some(Case::DuplicateName) => NAMES[2].to_owned(),
            _ if i < NAMES.len() => NAMES[i].to_owned(),
            _ => format!("{} {}", NAMES[i % NAMES.len()], i / NAMES.len() + 1),
        };
        let description = if case == Some(Case::Bare) || self.rng.gen_bool(0.2) {
            None
        } else {
            Some(format!("Default policy for {}", name.to_lowercase()))
        };
        let is_active = match case {
            Some(Case::NeverAttached | Case::Deactivated) => false,
            _ => !self.rng.gen_bool(0.12),
        };

        let mut tags: Vec<String> = if case == Some(Case::Bare) {
            Vec::new()
        } else {
            let n = self.rng.gen_range(0..=3);
            TAGS.choose_multiple(&mut self.rng, n)
                .map(|s| (*s).to_owned())
                .collect()
        };
        match case {
            Some(Case::BadTags) => tags.extend(BAD_TAGS.iter().take(2).map(|s| (*s).to_owned())),
            Some(Case::OverTags) => {
                tags = (1..=57).map(|n| format!("label-{n:02}")).collect();
                tags.push(BAD_TAGS[2].to_owned());
            }
            _ => {}
        }

        let provider_configs: Vec<ApProviderConfig> = match case {
            Some(Case::NoProviders) => Vec::new(),
            Some(Case::OverProviders) => (0..104)
                .map(|n| {
                    let (p, models) = PROVIDERS[n % PROVIDERS.len()];
                    let name = if n < PROVIDERS.len() {
                        p.to_owned()
                    } else {
                        format!("{p}-region-{n:03}")
                    };
                    ApProviderConfig {
                        id: self.state.seq.next_ap_provider_config(),
                        provider_name: name,
                        all_models_allowed: false,
                        allowed_models: vec![models[0].to_owned()],
                        budgets: Vec::new(),
                        rate_limit: None,
                    }
                })
                .collect(),
            _ => {
                let n = if case == Some(Case::Bare) {
                    1
                } else {
                    self.rng.gen_range(1..=3)
                };
                let picked: Vec<(&str, &[&str])> = PROVIDERS
                    .choose_multiple(&mut self.rng, n)
                    .copied()
                    .collect();
                let mut pcs: Vec<ApProviderConfig> = picked
                    .into_iter()
                    .map(|(p, m)| self.provider_config(p, m, created_at))
                    .collect();
                if case == Some(Case::Bare) {
                    for pc in &mut pcs {
                        pc.budgets.clear();
                        pc.rate_limit = None;
                    }
                }
                if case == Some(Case::DenyAllModels) {
                    if let Some(pc) = pcs.first_mut() {
                        pc.all_models_allowed = false;
                        pc.allowed_models.clear();
                    }
                }
                pcs
            }
        };

        let mut budgets = Vec::new();
        if case != Some(Case::Bare) {
            let n = self.rng.gen_range(0..=2);
            let durations: Vec<&str> = ["1d", "1w", "1M", "1Y"]
                .choose_multiple(&mut self.rng, n)
                .copied()
                .collect();
            for d in durations {
                let max = f64::from(self.rng.gen_range(5..100u32) * 10);
                let b = self.budget(max, d, "total", created_at, true);
                budgets.push(b);
            }
        }
        match case {
            Some(Case::AlignedHourly) => {
                let b = self.budget(25.0, "1h", "total", created_at, true);
                budgets.push(b);
            }
            Some(Case::QuarterBudget) => {
                let mut b = self.budget(1500.0, "1Q", "total", created_at, true);
                b.quarter_start_month = Some(2);
                budgets.push(b);
            }
            _ => {}
        }

        let mut rate_limit = if case == Some(Case::Bare) || self.rng.gen_bool(0.3) {
            None
        } else {
            Some(self.rate_limit(created_at))
        };
        if case == Some(Case::FractionalRateLimit) {
            let mut rl = self.rate_limit(created_at);
            rl.request_max_limit = Some(99.5);
            rl.request_reset_duration = Some("1h".to_owned());
            rl.token_max_limit = Some(250_000.75);
            rl.token_reset_duration = Some("1d".to_owned());
            rate_limit = Some(rl);
        }
        let calendar_aligned = case == Some(Case::AlignedHourly)
            || (case != Some(Case::Bare) && self.rng.gen_bool(0.4));

        let (mut mcp_servers, mut overrides) = (Vec::new(), Vec::new());
        if case != Some(Case::Bare) && (i == 0 || self.rng.gen_bool(0.45)) {
            let n = self.rng.gen_range(1..=2);
            // Disconnected web-search (the last client) is never picked at random.
            let pool = &MCP_CLIENTS[..MCP_CLIENTS.len() - 1];
            let mut picked: Vec<_> = pool.choose_multiple(&mut self.rng, n).copied().collect();
            if i == 0 && !picked.iter().any(|c| c.0 == "gh-1") {
                picked[0] = MCP_CLIENTS[0];
            }
            for (client_id, _, _, tools) in picked {
                mcp_servers.push(client_id.to_owned());
                let roll: f64 = self.rng.gen();
                let exclude = (i == 0 && client_id == "gh-1") || roll < 0.35;
                if exclude {
                    let tool = tools.last().copied().unwrap_or("delete");
                    overrides.push(ToolOverride {
                        mcp_client_id: client_id.to_owned(),
                        tool_name: tool.to_owned(),
                        action: "exclude".to_owned(),
                    });
                } else if roll < 0.5 {
                    overrides.push(ToolOverride {
                        mcp_client_id: client_id.to_owned(),
                        tool_name: tools[0].to_owned(),
                        action: "include".to_owned(),
                    });
                }
            }
        }
        if case == Some(Case::UnknownMcpServer) {
            mcp_servers.push("ghost-9".to_owned());
        }
        let mcp_tool_groups = if case == Some(Case::ToolGroups) {
            vec![3, 7]
        } else {
            Vec::new()
        };

        let (auto_rotation_interval, next_rotation_at, last_rotation_at) =
            if case == Some(Case::AutoRotation) {
                (
                    THIRTY_DAYS_NS,
                    Some(updated_at + Duration::days(30)),
                    Some(updated_at),
                )
            } else {
                (0, None, None)
            };

        let roles = if case == Some(Case::NeverAttached) {
            Vec::new()
        } else {
            let n = self.rng.gen_range(1..=2);
            let picked: Vec<(u64, &str)> =
                ROLES.choose_multiple(&mut self.rng, n).copied().collect();
            picked
                .into_iter()
                .map(|(role_id, role_name)| RoleBinding {
                    id: self.state.seq.next_role_binding(),
                    role_id,
                    role_name: role_name.to_owned(),
                    is_default: self.rng.gen_bool(0.2),
                })
                .collect()
        };

        let p = AccessProfile {
            id,
            name,
            description,
            is_active,
            version: self.rng.gen_range(1..=6),
            tags,
            provider_configs,
            budgets,
            rate_limit,
            calendar_aligned,
            auto_rotation_interval,
            next_rotation_at,
            last_rotation_at,
            mcp_tool_groups,
            mcp_servers,
            mcp_tool_overrides: overrides,
            roles,
            created_at,
            updated_at,
        };
        self.state.profiles.insert(id, p);
    }

    fn new_vk(&mut self, name: String, t: DateTime<Utc>) -> VirtualKey {
        let value = format!("sk-bf-{}", self.uuid());
        VirtualKey {
            seq: self.state.seq.next_vk(),
            id: self.uuid(),
            name,
            masked: mask_value(&value),
            value: StoredSecret::from_clear(value),
            description: String::new(),
            is_active: true,
            provider_configs: Vec::new(),
            mcp_configs: Vec::new(),
            team_id: None,
            customer_id: None,
            budgets: Vec::new(),
            rate_limit: None,
            calendar_aligned: false,
            expires_at: None,
            metadata: BTreeMap::new(),
            created_by_user_id: None,
            is_access_profile_managed: false,
            created_at: t,
            updated_at: t,
            usable_from: t,
            retired_values: Vec::new(),
        }
    }

    fn vk_provider(
        &mut self,
        provider: &str,
        models: Vec<String>,
        all_keys: bool,
    ) -> VkProviderConfig {
        VkProviderConfig {
            id: self.state.seq.next_vk_provider_config(),
            provider: provider.to_owned(),
            weight: None,
            allowed_models: models,
            blacklisted_models: Vec::new(),
            allow_all_keys: all_keys,
            key_ids: Vec::new(),
            budgets: Vec::new(),
            rate_limit: None,
        }
    }

    fn standalone_keys(&mut self) {
        let t = base_time() + Duration::days(100);
        let mut ci = self.new_vk("ci-bot".to_owned(), t);
        ci.description = "CI pipelines".to_owned();
        ci.team_id = Some("team-platform".to_owned());
        ci.provider_configs = vec![self.vk_provider("openai", vec!["*".to_owned()], true)];
        ci.metadata
            .insert("owner".to_owned(), "platform".to_owned());
        if let Some(gh) = self
            .state
            .mcp_clients
            .values()
            .find(|c| c.client_id == "gh-1")
        {
            let mcp_client_id = gh.id;
            ci.mcp_configs.push(VkMcpConfig {
                id: self.state.seq.next_vk_mcp_config(),
                mcp_client_id,
                tools_to_execute: vec!["list_repos".to_owned(), "get_issue".to_owned()],
            });
        }
        self.state.virtual_keys.push(ci);

        let mut legacy = self.new_vk("legacy-support-bot".to_owned(), t + Duration::days(3));
        legacy.is_active = false;
        legacy.customer_id = Some("cust-42".to_owned());
        // Deny by default: a provider config without key ids reaches no provider key.
        let pc = self.vk_provider("anthropic", vec!["claude-3-5-haiku".to_owned()], false);
        legacy.provider_configs = vec![pc];
        self.state.virtual_keys.push(legacy);

        let clash = self
            .state
            .profiles
            .values()
            .nth(21)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "Interns".to_owned());
        let mut manual = self.new_vk(clash, t + Duration::days(5));
        manual.description = "created by hand before the migration".to_owned();
        let key_id = self
            .state
            .provider_keys
            .iter()
            .find(|k| k.provider == "gemini")
            .map(|k| k.id.clone());
        let mut pc = self.vk_provider("gemini", vec!["gemini-2.5-flash".to_owned()], false);
        pc.key_ids.extend(key_id);
        manual.provider_configs = vec![pc];
        self.state.virtual_keys.push(manual);
    }

    fn holders(&mut self) {
        let mut holdable: Vec<u64> = self
            .state
            .profiles
            .values()
            .filter(|p| p.is_active && !p.roles.is_empty() && p.provider_configs.len() <= 3)
            .map(|p| p.id)
            .collect();
        // A deactivated profile keeps its copies.
        let deactivated = self.state.profiles.values().nth(13).map(|p| p.id);
        holdable.extend(deactivated);
        if holdable.is_empty() {
            return;
        }
        for (u, user) in USERS.iter().enumerate() {
            let n = self.rng.gen_range(1..=3).min(holdable.len());
            let mut picked: Vec<u64> = holdable
                .choose_multiple(&mut self.rng, n)
                .copied()
                .collect();
            if u == 0 {
                if let Some(d) = deactivated {
                    if !picked.contains(&d) {
                        picked.push(d);
                    }
                }
            }
            picked.sort_unstable();
            let mut names_taken: Vec<String> = Vec::new();
            for pid in picked {
                let Some(parent) = self.state.profiles.get(&pid).cloned() else {
                    continue;
                };
                if names_taken.contains(&parent.name) {
                    continue;
                }
                names_taken.push(parent.name.clone());
                let t = parent.updated_at + Duration::days(self.rng.gen_range(1..30));
                let mut vk = self.new_vk(format!("{} ({user})", parent.name), t);
                vk.is_access_profile_managed = true;
                vk.created_by_user_id = Some((*user).to_owned());
                vk.description = format!("access profile {} for {user}", parent.id);
                vk.calendar_aligned = parent.calendar_aligned;
                vk.provider_configs = parent
                    .provider_configs
                    .iter()
                    .map(|pc| {
                        let models = if pc.all_models_allowed {
                            vec!["*".to_owned()]
                        } else {
                            pc.allowed_models.clone()
                        };
                        self.vk_provider(&pc.provider_name, models, true)
                    })
                    .collect();
                let vk_id = vk.id.clone();
                self.state.virtual_keys.push(vk);
                let expires_at = self.rng.gen_bool(0.1).then(|| t + Duration::days(365));
                let copy = UserAccessProfile {
                    id: 0,
                    user_id: (*user).to_owned(),
                    parent_profile_id: Some(parent.id),
                    name: parent.name.clone(),
                    is_active: true,
                    expires_at,
                    virtual_key_ids: vec![vk_id],
                };
                let id = self.state.seq.next_profile();
                self.state
                    .user_profiles
                    .insert(id, UserAccessProfile { id, ..copy });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_seed() {
        assert_eq!(generate(7, 40).state(), generate(7, 40).state());
        assert_ne!(generate(7, 40).state(), generate(8, 40).state());
    }

    #[test]
    fn default_inventory_has_every_case() {
        let s = generate(1, 40);
        assert_eq!(s.profiles.len(), 40);
        let p = |i: usize| s.profiles.values().nth(i).unwrap();
        assert!(p(5).tags.len() > 50);
        assert!(p(11).provider_configs.len() > 100);
        assert_eq!(p(17).name, p(2).name);
        assert!(!p(7).is_active && p(7).roles.is_empty());
        assert!(!p(13).is_active && s.user_count(p(13).id) > 0);
        assert!(p(15).provider_configs.is_empty());
        assert!(p(2).provider_configs[0].allowed_models.is_empty());
        assert!(p(23).calendar_aligned && p(23).budgets.iter().any(|b| b.reset_duration == "1h"));
        assert!(p(31).mcp_servers.iter().any(|m| m == "ghost-9"));
        assert!(p(37)
            .budgets
            .iter()
            .any(|b| b.quarter_start_month == Some(2)));
        assert!(s.virtual_keys.iter().any(|k| k.name == p(21).name));
        assert!(
            s.profiles
                .values()
                .filter(|p| p.rate_limit.is_none())
                .count()
                >= 5
        );
        assert!(s
            .profiles
            .values()
            .any(|p| p.mcp_tool_overrides.iter().any(|o| o.action == "exclude")));
        assert!(s.profiles.values().filter(|p| !p.is_active).count() >= 3);
        assert!(s.user_profiles.len() >= 10);
        assert!(s.user_profiles.values().all(|u| u
            .virtual_key_ids
            .iter()
            .all(|id| s.vk(id).is_some_and(|k| k.is_access_profile_managed))));
        let mut names: Vec<&str> = s.virtual_keys.iter().map(|k| k.name.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "virtual key names are unique");
        assert_eq!(s.mcp_clients.len(), 6);
        // 9 keys, plus one per region provider of #12 (104 configs, 6 of them the base ones).
        assert_eq!(s.provider_keys.len(), 9 + 98);
        assert!(s
            .profiles
            .values()
            .flat_map(|p| &p.provider_configs)
            .all(|c| s.has_provider(&c.provider_name)));
        assert!(s
            .virtual_keys
            .iter()
            .flat_map(|k| &k.provider_configs)
            .all(|c| s.has_provider(&c.provider)));
        assert_eq!(generate(1, 5).provider_keys.len(), 9);
    }

    #[test]
    fn small_and_empty_inventories() {
        let s = generate(3, 0);
        assert!(s.profiles.is_empty() && s.user_profiles.is_empty());
        let s = generate(3, 5);
        assert_eq!(s.profiles.len(), 5);
    }
}
