//! Validation for use: values a vendor stores without complaint but that cannot work where
//! the consumer meets them — the identity provider URLs a gateway fetches, the claim names and
//! issuers it matches. A value that can never work is a blocker; one that might not, a
//! `manual` or `advice` finding. Any planner of Workato profiles calls [`profile`].

use std::net::IpAddr;

use crate::mapping::ProfileRef;
use crate::model::{AuthType, Finding, FindingKind, Profile};

/// The findings for one profile's use-side fields (nothing for fields its auth type ignores).
pub fn profile(vendor: &'static str, p: &Profile) -> Vec<Finding> {
    let about = ProfileRef::new(vendor, &p.workspace, p.id, &p.name);
    let mut out = Vec::new();
    if !matches!(p.auth_type, AuthType::Jwt | AuthType::Oidc) {
        return out;
    }
    for (field, value, issuer) in [
        ("oidc_issuer", &p.oidc_issuer, true),
        ("oidc_jwks_uri", &p.oidc_jwks_uri, false),
    ] {
        if let Some(v) = value {
            out.extend(
                fetched_url(v, issuer)
                    .into_iter()
                    .map(|(kind, found, fix)| about.finding(kind, field, found, fix)),
            );
        }
    }
    if let Some(claim) = &p.access_profile_claim {
        if let Some(why) = unmatchable(claim) {
            out.push(about.finding(
                FindingKind::Blocker,
                "access_profile_claim",
                format!(
                    "the claim name {} {why}: no JWT claim can match it",
                    shown(claim)
                ),
                "set the claim name the consumer's JWTs carry (e.g. workato_key) in the source, \
                 or clear it",
            ));
        }
    }
    for (field, list) in [
        ("required_claims", &p.required_claims),
        ("allowed_issuers", &p.allowed_issuers),
    ] {
        for v in list {
            if let Some(why) = unmatchable(v) {
                out.push(about.finding(
                    FindingKind::Blocker,
                    field,
                    format!("the entry {} {why}: no JWT can match it", shown(v)),
                    "correct or remove the entry in the source",
                ));
            }
        }
    }
    if p.required_claims.iter().any(|c| c.trim() == "iss") && p.allowed_issuers.is_empty() {
        out.push(about.finding(
            FindingKind::Advice,
            "allowed_issuers",
            "iss is required but no issuer is listed: a JWT from any issuer is accepted".into(),
            "list the issuers the consumer's JWTs come from in allowed_issuers",
        ));
    }
    out
}

/// A value the gateway compares with a JWT's: why it can never match, if it cannot.
fn unmatchable(v: &str) -> Option<&'static str> {
    if v.trim().is_empty() {
        Some("is empty")
    } else if v.chars().any(char::is_control) {
        Some("holds a control character")
    } else if v.trim() != v {
        Some("begins or ends with a space")
    } else {
        None
    }
}

/// A value as a message shows it: quoted, control characters visible, at most 80 characters.
fn shown(v: &str) -> String {
    let cut: String = v.chars().take(80).collect();
    let more = if v.chars().count() > 80 { "…" } else { "" };
    format!("{:?}{more}", crate::output::visible(&cut))
}

/// What is wrong with a URL the gateway fetches (an OIDC issuer, whose discovery document it
/// reads, or a JWKS URI): blockers for what cannot work, flags for what might not.
fn fetched_url(v: &str, issuer: bool) -> Vec<(FindingKind, String, &'static str)> {
    let mut out = Vec::new();
    let fix_url = "set the identity provider's https URL in the source, or exclude the profile";
    let u = match url::Url::parse(v.trim()) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => u,
        _ => {
            out.push((
                FindingKind::Blocker,
                format!(
                    "{} is not an absolute http(s) URL the gateway can fetch",
                    shown(v)
                ),
                fix_url,
            ));
            return out;
        }
    };
    if v.trim() != v || v.chars().any(char::is_control) {
        out.push((
            FindingKind::Blocker,
            format!(
                "{} carries spaces or control characters around the URL",
                shown(v)
            ),
            fix_url,
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        out.push((
            FindingKind::Blocker,
            format!(
                "{} carries credentials in the URL, which the gateway does not send",
                shown(v)
            ),
            fix_url,
        ));
    }
    if u.fragment().is_some() || (issuer && u.query().is_some()) {
        out.push((
            FindingKind::Blocker,
            format!(
                "{} has a {}: an OIDC issuer is a plain https URL (OpenID Connect Discovery §4), \
                 and discovery appends /.well-known/openid-configuration to it",
                shown(v),
                if u.fragment().is_some() {
                    "fragment"
                } else {
                    "query"
                }
            ),
            fix_url,
        ));
    }
    if u.scheme() == "http" {
        out.push((
            FindingKind::Manual,
            format!(
                "{} is plain http: identity providers publish keys over https, and a gateway may \
                 refuse to fetch signing keys without TLS",
                shown(v)
            ),
            "serve the discovery document and keys over https and set that URL",
        ));
    }
    let private = match u.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => not_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => not_public(IpAddr::V6(ip)),
        None => false,
    };
    if private {
        out.push((
            FindingKind::Advice,
            format!(
                "{} is a loopback or private address: Workato's cloud gateway cannot reach it \
                 (an on-premise gateway inside that network might)",
                shown(v)
            ),
            "use the identity provider's public URL, unless an on-premise gateway serves these \
             consumers",
        ));
    }
    out
}

fn not_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            v.is_loopback() || v.is_private() || v.is_link_local() || v.is_unspecified()
        }
        IpAddr::V6(v) => {
            v.is_loopback()
                || v.is_unspecified()
                || (v.segments()[0] & 0xfe00) == 0xfc00
                || (v.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(issuer: &str) -> Profile {
        Profile {
            auth_type: AuthType::Oidc,
            oidc_issuer: Some(issuer.into()),
            ..Profile::for_test(1, 2, "p")
        }
    }

    fn kinds(p: &Profile) -> Vec<(FindingKind, String)> {
        profile("workato", p)
            .into_iter()
            .map(|f| (f.kind, f.field.into_owned()))
            .collect()
    }

    #[test]
    fn urls_that_cannot_be_fetched_are_blocked_and_doubtful_ones_flagged() {
        assert!(kinds(&oidc("https://idp.example.com/tenant")).is_empty());
        for bad in [
            "idp.example.com",
            "ftp://idp.example.com",
            "https://idp.example.com/#frag",
            "https://idp.example.com/?tenant=1",
            "https://user:pw@idp.example.com",
            " https://idp.example.com",
        ] {
            assert!(
                kinds(&oidc(bad)).contains(&(FindingKind::Blocker, "oidc_issuer".into())),
                "{bad}"
            );
        }
        let http = kinds(&oidc("http://idp.example.com"));
        assert_eq!(http, [(FindingKind::Manual, "oidc_issuer".to_string())]);
        let local = kinds(&oidc("https://10.1.2.3/idp"));
        assert_eq!(local, [(FindingKind::Advice, "oidc_issuer".to_string())]);
    }

    #[test]
    fn claims_that_cannot_match_are_blocked() {
        let p = Profile {
            auth_type: AuthType::Jwt,
            access_profile_claim: Some(" workato_key".into()),
            required_claims: vec!["iss".into(), "".into()],
            allowed_issuers: vec![],
            ..Profile::for_test(1, 2, "p")
        };
        let k = kinds(&p);
        assert!(k.contains(&(FindingKind::Blocker, "access_profile_claim".into())));
        assert!(k.contains(&(FindingKind::Blocker, "required_claims".into())));
        assert!(k.contains(&(FindingKind::Advice, "allowed_issuers".into())));
        // A token profile ignores these fields.
        let token = Profile {
            auth_type: AuthType::Token,
            ..p
        };
        assert!(kinds(&token).is_empty());
    }
}
