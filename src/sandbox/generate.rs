//! The seeded Workato inventory (`--seed`, `--workspaces`, `--profiles`).
//!
//! Same seed and sizes, same inventory: every choice comes from one `StdRng` seeded with the
//! seed, and everything is built in a fixed order. The shape is what a real migration meets:
//!
//! - workspace 1 is the admin (Developer / Embed admin) workspace, `external_id` null; the
//!   others are Embedded customers with external ids `A2300`, `A2301`, …;
//! - each workspace has 3–8 API collections and 2–4 access policies;
//! - profiles are spread over legacy clients, about 8 per client; about a third of the
//!   clients with three or more profiles mix settings (auth type, collections or policy), so
//!   they split into several groups; one admin-workspace client holds 25–30 identical token
//!   profiles (a group above the 20-keys-per-client limit) when there are enough profiles;
//! - auth types are roughly token 60 %, oauth2 15 %, HMAC JWT 8 %, RSA JWT 7 %, OIDC 10 %,
//!   and each appears at least once when there are enough profiles; about 20 % are inactive;
//!   names use non-ASCII letters; a quarter carry IP allow lists (IPv4/IPv6, some CIDRs);
//! - about 10 % are bad data of exactly five kinds: an unknown `auth_type` (`saml`), an RSA
//!   JWT profile without `jwt_secret`, an invalid IP entry, a collection id that does not
//!   exist, and a duplicate profile name inside one group.
//!
//! Every profile has a clear legacy `secret`; oauth2 profiles an OAuth client id and secret;
//! HMAC groups a shared `jwt_secret`; RSA and OIDC groups one of the built-in key pairs
//! ([`super::keys`]), so the signing-secrets file can list their private keys.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};

use super::keys::KEYPAIRS;
use super::workato::model::{
    AccessProfile, Collection, LegacyClient, Policy, StoredSecret, WorkatoState, Workspace,
};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct GenOptions {
    pub seed: u64,
    /// Workspaces in total, the admin workspace included (at least 1).
    pub workspaces: u32,
    /// Access profiles in total.
    pub profiles: u32,
}

const ADMIN_NAME: &str = "Acme Integrations";
const ADMIN_PREFIX: &str = "acme";

const CUSTOMER_NAMES: &[&str] = &[
    "Globex Retail",
    "Initech Payroll",
    "Umbrella Health",
    "Zürich Versicherungen",
    "東京 Trading",
    "Café Brasil",
    "Stark Logistics",
    "Nordwind Energie",
    "Łódź Textiles",
    "Soylent Foods",
    "Hooli Cloud",
    "Ελληνικά Ferries",
    "Wayne Freight",
    "Søndergaard Bikes",
    "Vandelay Imports",
];

const COLLECTIONS: &[(&str, &str)] = &[
    ("Orders API", "orders"),
    ("Customers API", "customers"),
    ("Inventory API", "inventory"),
    ("Billing API", "billing"),
    ("Shipping API", "shipping"),
    ("Analytics API", "analytics"),
    ("Partners API", "partners"),
    ("Webhooks API", "webhooks"),
    ("Catalog API", "catalog"),
    ("Payments API", "payments"),
];

const POLICIES: &[&str] = &[
    "Partners - 1000/h",
    "Internal - unlimited",
    "Trial - 100/day",
    "Gold - 10000/h",
    "Bronze - 500/h",
];

const CLIENT_NAMES: &[&str] = &[
    "Partner portal",
    "Zürich Partner",
    "東京 Sync",
    "Café Ops",
    "Mobile app",
    "Data warehouse",
    "Billing bridge",
    "Søren's Integrations",
    "São Paulo Retail",
    "Kraków Logistics",
    "München Fulfilment",
    "Reporting",
    "Support desk",
    "CRM sync",
    "Marketplace",
    "Ελληνικά Partners",
    "Orders bot",
    "Inventory feed",
    "Payments gateway",
    "Analytics export",
    "Field service",
    "HR connector",
    "IoT fleet",
    "Webshop",
    "Montréal Dispatch",
    "Ñandú Labs",
    "İstanbul Depot",
    "Dvořák Audio",
    "北京 Exchange",
    "Reykjavík Fisheries",
    "Supplier EDI",
    "Loyalty program",
];

const ORGS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Zürich Partner",
    "東京 Sync",
    "Café Ops",
    "Nordwind",
    "Łódź Freight",
    "Müller GmbH",
    "Año Nuevo",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Wonka",
    "Ørsted Labs",
    "Δέλτα",
    "Ñandú",
    "Škoda Parts",
    "Čapek Robotics",
    "Gdańsk Port",
    "Québec Maple",
    "Århus Wind",
    "Smørrebrød Co",
];

const ROLES: &[&str] = &[
    "prod",
    "staging",
    "reporting",
    "sync",
    "webhook",
    "mobile",
    "batch",
    "ETL",
    "dashboard",
    "read-only",
    "backoffice",
    "kiosk",
];

const IP_POOL: &[&str] = &[
    "203.0.113.0/24",
    "198.51.100.7",
    "2001:db8::/32",
    "192.0.2.10",
    "2001:db8:85a3::8a2e:370:7334",
    "10.20.0.0/16",
    "127.0.0.0/8",
    "100.64.12.0/22",
];

const BAD_IPS: &[&str] = &["300.1.2.3", "10.0.0.0/33", "192.168.1"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthKind {
    Token,
    OAuth2,
    JwtHmac,
    JwtRsa,
    Oidc,
}

#[derive(Debug, Clone)]
struct Template {
    auth: AuthKind,
    jwt_secret: Option<String>,
    keypair: Option<usize>,
    oidc_issuer: Option<String>,
    oidc_jwks_uri: Option<String>,
    claim: Option<String>,
    required_claims: Vec<String>,
    allowed_issuers: Vec<String>,
    collections: Vec<u64>,
    policy: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientKind {
    Big,
    Uniform,
    Mixed,
}

/// A profile while the generator still needs to know where it came from.
struct Draft {
    ws: u64,
    template: usize,
    big: bool,
    mutated: bool,
    profile: AccessProfile,
}

#[derive(Debug, Clone, Copy)]
enum BadKind {
    UnknownAuth,
    RsaWithoutSecret,
    InvalidIp,
    MissingCollection,
    DuplicateName,
}

const BAD_KINDS: [BadKind; 5] = [
    BadKind::UnknownAuth,
    BadKind::RsaWithoutSecret,
    BadKind::InvalidIp,
    BadKind::MissingCollection,
    BadKind::DuplicateName,
];

struct Gen<'a> {
    rng: StdRng,
    base_url: &'a str,
    state: WorkatoState,
    templates: Vec<Template>,
    drafts: Vec<Draft>,
    /// Auth kinds still owed so every type appears at least once.
    owed: Vec<AuthKind>,
}

fn hex64(rng: &mut StdRng) -> String {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    hex::encode(b)
}

fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_609_459_200, 0).unwrap_or_default() // 2021-01-01T00:00:00Z
}

/// ASCII slug of a name (`"Café Brasil"` → `"caf-brasil"`), possibly empty.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Generate the Workato inventory. `base_url` is the sandbox root (`http://127.0.0.1:<port>`).
pub fn generate(opts: &GenOptions, base_url: &str) -> WorkatoState {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(opts.seed),
        base_url: base_url.trim_end_matches('/'),
        state: WorkatoState::default(),
        templates: Vec::new(),
        drafts: Vec::new(),
        owed: vec![
            AuthKind::OAuth2,
            AuthKind::JwtHmac,
            AuthKind::JwtRsa,
            AuthKind::Oidc,
        ],
    };
    let workspaces = opts.workspaces.max(1);
    let shares = profile_shares(opts.profiles, workspaces);
    g.state.admin_id = 1;
    for (i, share) in shares.into_iter().enumerate() {
        g.workspace(i as u64 + 1, share);
    }
    g.bad_data(opts.profiles);
    let Gen {
        mut state, drafts, ..
    } = g;
    for d in drafts {
        if let Some(ws) = state.workspaces.get_mut(&d.ws) {
            ws.insert_profile(d.profile);
        }
    }
    state
}

/// Profiles per workspace: even, except that the admin workspace gets at least 40 (or all)
/// so the oversized group fits in it.
fn profile_shares(profiles: u32, workspaces: u32) -> Vec<u32> {
    if workspaces == 1 {
        return vec![profiles];
    }
    let admin = (profiles / workspaces).max(profiles.min(40));
    let rest = profiles - admin;
    let customers = workspaces - 1;
    let mut shares = vec![admin];
    for i in 0..customers {
        shares.push(rest / customers + u32::from(i < rest % customers));
    }
    shares
}

impl Gen<'_> {
    fn time(&mut self) -> DateTime<Utc> {
        epoch()
            + Duration::days(self.rng.gen_range(0..1700))
            + Duration::seconds(self.rng.gen_range(0..86_400))
            + Duration::milliseconds(self.rng.gen_range(0..1000))
    }

    fn later(&mut self, t: DateTime<Utc>) -> DateTime<Utc> {
        t + Duration::days(self.rng.gen_range(0..120))
            + Duration::seconds(self.rng.gen_range(0..86_400))
    }

    fn workspace(&mut self, id: u64, profiles: u32) {
        let (name, prefix, external_id) = if id == 1 {
            (ADMIN_NAME.to_owned(), ADMIN_PREFIX.to_owned(), None)
        } else {
            let k = (id - 2) as usize;
            let base = CUSTOMER_NAMES[k % CUSTOMER_NAMES.len()];
            let name = if k < CUSTOMER_NAMES.len() {
                base.to_owned()
            } else {
                format!("{base} {}", k / CUSTOMER_NAMES.len() + 1)
            };
            let slug = slugify(base);
            let prefix = format!("{}-{id}", if slug.is_empty() { "customer" } else { &slug });
            (name, prefix, Some(format!("A{}", 2300 + k)))
        };
        let created = self.time();
        let mut ws = Workspace::new(id, &name, &prefix, created);
        ws.external_id = external_id;
        ws.updated_at = self.later(created);

        let mut picks: Vec<usize> = (0..COLLECTIONS.len()).collect();
        picks.shuffle(&mut self.rng);
        let n_coll = self.rng.gen_range(3..=8);
        let mut picks: Vec<usize> = picks.into_iter().take(n_coll).collect();
        picks.sort_unstable();
        for i in picks {
            let (cname, slug) = COLLECTIONS[i];
            let version = if self.rng.gen_bool(0.25) { "2" } else { "1" };
            let cid = self.state.seq.next_collection();
            let created = self.time();
            let url = format!("{}/workato-apim/{prefix}/{slug}-v{version}", self.base_url);
            let updated_at = self.later(created);
            ws.collections.insert(
                cid,
                Collection {
                    id: cid,
                    name: cname.to_owned(),
                    version: version.to_owned(),
                    slug: slug.to_owned(),
                    api_spec_url: format!("{url}/openapi.json"),
                    url,
                    project_id: Some(format!("{}", 500_000 + id * 10)),
                    created_at: created,
                    updated_at,
                },
            );
        }
        let mut pol: Vec<usize> = (0..POLICIES.len()).collect();
        pol.shuffle(&mut self.rng);
        let n_pol = self.rng.gen_range(2..=4);
        let mut pol: Vec<usize> = pol.into_iter().take(n_pol).collect();
        pol.sort_unstable();
        for i in pol {
            let pid = self.state.seq.next_policy();
            let created = self.time();
            let updated_at = self.later(created);
            ws.policies.insert(
                pid,
                Policy {
                    id: pid,
                    name: POLICIES[i].to_owned(),
                    created_at: created,
                    updated_at,
                },
            );
        }

        // Client sizes: one oversized client in the admin workspace, then 1–14 each.
        let mut sizes: Vec<(u32, ClientKind)> = Vec::new();
        let mut remaining = profiles;
        if id == 1 && profiles >= 30 {
            let big = self.rng.gen_range(25..=30).min(profiles);
            sizes.push((big, ClientKind::Big));
            remaining -= big;
        }
        while remaining > 0 {
            let s = self.rng.gen_range(1..=14).min(remaining);
            let kind = if s >= 3 && self.rng.gen_bool(0.35) {
                ClientKind::Mixed
            } else {
                ClientKind::Uniform
            };
            sizes.push((s, kind));
            remaining -= s;
        }
        sizes.shuffle(&mut self.rng);

        let mut used_names: Vec<String> = Vec::new();
        for (i, (size, kind)) in sizes.into_iter().enumerate() {
            let name = if kind == ClientKind::Big {
                "Reseller network".to_owned()
            } else {
                let base = CLIENT_NAMES[self.rng.gen_range(0..CLIENT_NAMES.len())];
                let mut name = base.to_owned();
                let mut n = 2;
                while used_names.contains(&name) {
                    name = format!("{base} {n}");
                    n += 1;
                }
                name
            };
            used_names.push(name.clone());
            let cid = self.state.seq.next_client();
            let created = self.time();
            let project_id = self
                .rng
                .gen_bool(0.5)
                .then(|| 500_000 + id * 10 + (i as u64 % 3));
            let updated_at = self.later(created);
            ws.legacy_clients.insert(
                cid,
                LegacyClient {
                    id: cid,
                    name,
                    project_id,
                    created_at: created,
                    updated_at,
                },
            );
            self.client_profiles(&ws, cid, size, kind);
        }
        self.state.workspaces.insert(id, ws);
    }

    fn pick_auth(&mut self) -> AuthKind {
        if let Some(k) = self.owed.pop() {
            return k;
        }
        match self.rng.gen_range(0..100) {
            0..=59 => AuthKind::Token,
            60..=74 => AuthKind::OAuth2,
            75..=82 => AuthKind::JwtHmac,
            83..=89 => AuthKind::JwtRsa,
            _ => AuthKind::Oidc,
        }
    }

    fn pick_collections(&mut self, ws: &Workspace) -> Vec<u64> {
        let all: Vec<u64> = ws.collections.keys().copied().collect();
        let n = self.rng.gen_range(1..=3.min(all.len().max(1)));
        let mut picked: Vec<u64> = all.choose_multiple(&mut self.rng, n).copied().collect();
        picked.sort_unstable();
        picked
    }

    fn pick_policy(&mut self, ws: &Workspace) -> Option<u64> {
        let all: Vec<u64> = ws.policies.keys().copied().collect();
        if self.rng.gen_bool(0.7) {
            all.choose(&mut self.rng).copied()
        } else {
            None
        }
    }

    fn new_template(&mut self, ws: &Workspace, auth: AuthKind) -> usize {
        let idp = format!("{}/workato-apim/_idp", self.base_url);
        let mut t = Template {
            auth,
            jwt_secret: None,
            keypair: None,
            oidc_issuer: None,
            oidc_jwks_uri: None,
            claim: None,
            required_claims: Vec::new(),
            allowed_issuers: Vec::new(),
            collections: self.pick_collections(ws),
            policy: self.pick_policy(ws),
        };
        match auth {
            AuthKind::Token | AuthKind::OAuth2 => {}
            AuthKind::JwtHmac => t.jwt_secret = Some(hex64(&mut self.rng)),
            AuthKind::JwtRsa => {
                let k = self.rng.gen_range(0..KEYPAIRS.len());
                t.keypair = Some(k);
                t.jwt_secret = Some(KEYPAIRS[k].public_pem.to_owned());
            }
            AuthKind::Oidc => {
                t.keypair = Some(self.rng.gen_range(0..KEYPAIRS.len()));
                if self.rng.gen_bool(0.5) {
                    t.oidc_jwks_uri = Some(format!("{idp}/jwks.json"));
                } else {
                    t.oidc_issuer = Some(idp.clone());
                }
            }
        }
        if matches!(auth, AuthKind::JwtHmac | AuthKind::JwtRsa | AuthKind::Oidc) {
            t.claim = match self.rng.gen_range(0..10) {
                0..=2 => Some("partner_token".to_owned()),
                3 => Some("https://example.com/api_key".to_owned()),
                _ => None,
            };
            t.required_claims = match self.rng.gen_range(0..10) {
                0..=2 => vec!["iss".to_owned()],
                3 => vec!["iss".to_owned(), "aud".to_owned()],
                _ => Vec::new(),
            };
            if self.rng.gen_bool(0.25) {
                t.allowed_issuers = vec![if auth == AuthKind::Oidc {
                    idp
                } else {
                    "https://auth.partner.example".to_owned()
                }];
            }
        }
        self.templates.push(t);
        self.templates.len() - 1
    }

    /// A variant of `base` that differs in auth type, collections or policy.
    fn variant(&mut self, ws: &Workspace, base: usize) -> usize {
        match self.rng.gen_range(0..3) {
            0 => {
                let mut auth = self.pick_auth();
                if auth == self.templates[base].auth {
                    auth = if auth == AuthKind::Token {
                        AuthKind::OAuth2
                    } else {
                        AuthKind::Token
                    };
                }
                self.new_template(ws, auth)
            }
            1 => {
                let mut t = self.templates[base].clone();
                let other = self.pick_collections(ws);
                t.collections = if other == t.collections {
                    ws.collections.keys().copied().collect()
                } else {
                    other
                };
                self.templates.push(t);
                self.templates.len() - 1
            }
            _ => {
                let mut t = self.templates[base].clone();
                let policies: Vec<u64> = ws.policies.keys().copied().collect();
                t.policy = match t.policy {
                    None => policies.first().copied(),
                    Some(p) => policies.iter().copied().find(|&q| q != p),
                };
                self.templates.push(t);
                self.templates.len() - 1
            }
        }
    }

    fn client_profiles(&mut self, ws: &Workspace, client_id: u64, size: u32, kind: ClientKind) {
        let templates: Vec<usize> = match kind {
            ClientKind::Big => vec![self.new_template(ws, AuthKind::Token)],
            ClientKind::Uniform => {
                let auth = self.pick_auth();
                vec![self.new_template(ws, auth)]
            }
            ClientKind::Mixed => {
                let auth = self.pick_auth();
                let base = self.new_template(ws, auth);
                let n = if size >= 6 && self.rng.gen_bool(0.4) {
                    3
                } else {
                    2
                };
                let mut ts = vec![base];
                while ts.len() < n {
                    let v = self.variant(ws, base);
                    ts.push(v);
                }
                ts
            }
        };
        let mut names: Vec<String> = Vec::new();
        for i in 0..size as usize {
            // every template gets at least one profile, the rest at random
            let template = if i < templates.len() {
                templates[i]
            } else {
                templates[self.rng.gen_range(0..templates.len())]
            };
            let name = if kind == ClientKind::Big {
                format!("Reseller {:02}", i + 1)
            } else {
                self.profile_name(&names)
            };
            names.push(name.clone());
            let profile = self.profile(client_id, template, name);
            self.drafts.push(Draft {
                ws: ws.id,
                template,
                big: kind == ClientKind::Big,
                mutated: false,
                profile,
            });
        }
    }

    fn profile_name(&mut self, taken: &[String]) -> String {
        for _ in 0..12 {
            let org = ORGS[self.rng.gen_range(0..ORGS.len())];
            let role = ROLES[self.rng.gen_range(0..ROLES.len())];
            let name = format!("{org} {role}");
            if !taken.contains(&name) {
                return name;
            }
        }
        let org = ORGS[self.rng.gen_range(0..ORGS.len())];
        format!("{org} {}", taken.len() + 1)
    }

    fn profile(&mut self, client_id: u64, template: usize, name: String) -> AccessProfile {
        let t = self.templates[template].clone();
        let id = self.state.seq.next_profile();
        let created_at = self.time();
        let updated_at = self.later(created_at);
        let ip_allow_list = if self.rng.gen_bool(0.25) {
            let n = self.rng.gen_range(1..=2);
            IP_POOL
                .choose_multiple(&mut self.rng, n)
                .map(|s| (*s).to_owned())
                .collect()
        } else {
            Vec::new()
        };
        let active = self.rng.gen_bool(0.8);
        let secret = hex64(&mut self.rng);
        let (oauth_client_id, oauth_client_secret) = if t.auth == AuthKind::OAuth2 {
            (
                Some(hex64(&mut self.rng)),
                Some(StoredSecret::from_clear(hex64(&mut self.rng))),
            )
        } else {
            (None, None)
        };
        let (auth_type, jwt_method) = match t.auth {
            AuthKind::Token => ("token", None),
            AuthKind::OAuth2 => ("oauth2", None),
            AuthKind::JwtHmac => ("jwt", Some("hmac")),
            AuthKind::JwtRsa => ("jwt", Some("rsa")),
            AuthKind::Oidc => ("oidc", None),
        };
        let keypair = t.keypair.map(|k| &KEYPAIRS[k]);
        AccessProfile {
            id,
            name,
            api_client_id: client_id,
            api_collection_ids: t.collections,
            active,
            auth_type: auth_type.to_owned(),
            jwt_method: jwt_method.map(str::to_owned),
            jwt_secret: t.jwt_secret.map(StoredSecret::from_clear),
            oidc_issuer: t.oidc_issuer,
            oidc_jwks_uri: t.oidc_jwks_uri,
            access_profile_claim: t.claim,
            required_claims: t.required_claims,
            allowed_issuers: t.allowed_issuers,
            ip_allow_list,
            api_policy_id: t.policy,
            oauth_client_id,
            secret: Some(StoredSecret::from_clear(secret)),
            oauth_client_secret,
            signing_key: keypair.map(|k| StoredSecret::from_clear(k.private_pem)),
            signing_kid: keypair.map(|k| k.kid.to_owned()),
            created_at,
            updated_at,
        }
    }

    /// Turn about 10 % of the (non-oversized-group) profiles into bad data, cycling through
    /// the five kinds so each appears when there is room for it.
    fn bad_data(&mut self, total: u32) {
        let target = if total >= 25 {
            ((f64::from(total) * 0.10).round() as usize).max(BAD_KINDS.len())
        } else {
            (f64::from(total) * 0.10).round() as usize
        };
        let mut candidates: Vec<usize> = (0..self.drafts.len())
            .filter(|&i| !self.drafts[i].big)
            .collect();
        candidates.shuffle(&mut self.rng);
        for n in 0..target {
            let kind = BAD_KINDS[n % BAD_KINDS.len()];
            for &i in &candidates {
                if !self.drafts[i].mutated && self.mutate(i, kind, n) {
                    break;
                }
            }
        }
    }

    fn mutate(&mut self, i: usize, kind: BadKind, n: usize) -> bool {
        match kind {
            BadKind::UnknownAuth => {
                let p = &mut self.drafts[i].profile;
                p.auth_type = "saml".to_owned();
                p.jwt_method = None;
                p.jwt_secret = None;
                p.oidc_issuer = None;
                p.oidc_jwks_uri = None;
                p.access_profile_claim = None;
                p.required_claims.clear();
                p.allowed_issuers.clear();
                p.oauth_client_id = None;
                p.oauth_client_secret = None;
                p.signing_key = None;
                p.signing_kid = None;
            }
            BadKind::RsaWithoutSecret => {
                let p = &mut self.drafts[i].profile;
                p.auth_type = "jwt".to_owned();
                p.jwt_method = Some("rsa".to_owned());
                p.jwt_secret = None;
                p.oidc_issuer = None;
                p.oidc_jwks_uri = None;
                p.oauth_client_id = None;
                p.oauth_client_secret = None;
                p.signing_key = None;
                p.signing_kid = None;
            }
            BadKind::InvalidIp => {
                let bad = BAD_IPS[n % BAD_IPS.len()].to_owned();
                self.drafts[i].profile.ip_allow_list.push(bad);
            }
            BadKind::MissingCollection => {
                let missing = 990_000 + n as u64;
                let ids = &mut self.drafts[i].profile.api_collection_ids;
                ids.push(missing);
            }
            BadKind::DuplicateName => {
                let (client, template) = (
                    self.drafts[i].profile.api_client_id,
                    self.drafts[i].template,
                );
                let twin = (0..self.drafts.len()).find(|&j| {
                    j != i
                        && !self.drafts[j].mutated
                        && self.drafts[j].template == template
                        && self.drafts[j].profile.api_client_id == client
                });
                let Some(j) = twin else { return false };
                let name = self.drafts[j].profile.name.clone();
                self.drafts[i].profile.name = name;
                self.drafts[j].mutated = true;
            }
        }
        self.drafts[i].mutated = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn gen(seed: u64, workspaces: u32, profiles: u32) -> WorkatoState {
        generate(
            &GenOptions {
                seed,
                workspaces,
                profiles,
            },
            "http://127.0.0.1:1",
        )
    }

    #[test]
    fn deterministic_per_seed() {
        let a = gen(7, 3, 120).state();
        let b = gen(7, 3, 120).state();
        let c = gen(8, 3, 120).state();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn default_inventory_has_the_promised_shape() {
        let s = gen(1, 1, 300);
        let ws = &s.workspaces[&1];
        assert_eq!(ws.external_id, None);
        assert_eq!(ws.profiles.len(), 300);
        assert!((3..=8).contains(&ws.collections.len()));
        assert!((2..=4).contains(&ws.policies.len()));
        let clients = ws.legacy_clients.len();
        assert!((20..=60).contains(&clients), "{clients} clients");

        // group sizes by (client, settings)
        let mut groups: BTreeMap<String, usize> = BTreeMap::new();
        for p in ws.profiles.values() {
            let key = format!(
                "{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
                p.api_client_id,
                p.auth_type,
                p.jwt_method,
                p.jwt_secret.as_ref().map(|s| s.sha256().to_owned()),
                p.oidc_issuer,
                p.oidc_jwks_uri,
                p.access_profile_claim,
                p.required_claims,
                p.api_collection_ids,
                p.api_policy_id
            );
            *groups.entry(key).or_default() += 1;
        }
        assert!(groups.values().any(|&n| n > 20), "no group above 20");
        let split_clients = ws
            .legacy_clients
            .keys()
            .filter(|c| {
                groups
                    .keys()
                    .filter(|k| k.starts_with(&format!("{c}|")))
                    .count()
                    > 1
            })
            .count();
        assert!(split_clients >= 3, "{split_clients} clients split");

        let types: BTreeSet<(String, Option<String>)> = ws
            .profiles
            .values()
            .map(|p| (p.auth_type.clone(), p.jwt_method.clone()))
            .collect();
        for t in [
            ("token", None),
            ("oauth2", None),
            ("jwt", Some("hmac")),
            ("jwt", Some("rsa")),
            ("oidc", None),
            ("saml", None),
        ] {
            assert!(
                types.contains(&(t.0.to_owned(), t.1.map(str::to_owned))),
                "{t:?} missing"
            );
        }
        let inactive = ws.profiles.values().filter(|p| !p.active).count();
        assert!((30..=90).contains(&inactive), "{inactive} inactive");
        assert!(ws
            .profiles
            .values()
            .any(|p| p.jwt_method.as_deref() == Some("rsa") && p.jwt_secret.is_none()));
        assert!(ws.profiles.values().any(|p| p
            .ip_allow_list
            .iter()
            .any(|ip| !crate::sandbox::workato::request::is_ip_or_cidr(ip))));
        assert!(ws.profiles.values().any(|p| p
            .api_collection_ids
            .iter()
            .any(|c| !ws.collections.contains_key(c))));
        let mut names = BTreeSet::new();
        let dup = ws
            .profiles
            .values()
            .any(|p| !names.insert((p.api_client_id, p.name.clone())));
        assert!(dup, "no duplicate profile name");
        assert!(ws.profiles.values().any(|p| !p.name.is_ascii()));
        assert!(ws.profiles.values().all(|p| p.secret.is_some()));
    }

    #[test]
    fn customers_get_external_ids_and_profiles_add_up() {
        let s = gen(3, 4, 100);
        assert_eq!(s.workspaces.len(), 4);
        assert_eq!(s.workspaces[&2].external_id.as_deref(), Some("A2300"));
        assert_eq!(s.workspaces[&4].external_id.as_deref(), Some("A2302"));
        let total: usize = s.workspaces.values().map(|w| w.profiles.len()).sum();
        assert_eq!(total, 100);
        let secrets = s.signing_secrets();
        assert!(!secrets["hmac"].as_array().unwrap().is_empty());
        assert!(!secrets["probe_keys"].as_array().unwrap().is_empty());
    }

    #[test]
    fn tiny_inventories_do_not_panic() {
        for p in [0, 1, 2, 5, 10, 29, 30] {
            let s = gen(1, 3, p);
            let total: usize = s.workspaces.values().map(|w| w.profiles.len()).sum();
            assert_eq!(total, p as usize);
        }
    }
}
