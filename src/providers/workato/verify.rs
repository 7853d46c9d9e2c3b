//! Workato's side of verify: v2 clients and their keys read back (one V1 listing per
//! workspace, one K1 listing per client) and compared with the plan field by field; and the
//! live probe of a key through the API gateway.

use anyhow::Result;
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::probe::{Credential, JwtKey, ProbeTarget, Prober};
use super::{RemoteClient, V2Api, WsAddr};
use crate::engine::verify::{Drift, ReadBack, Verdict};
use crate::engine::{CredSpec, Found, Fut, RemoteId, Unit};
use crate::model::{AuthType, ClientSpec, Inventory, KeySpec, Workspace};
use crate::secrets::{SigningSecrets, SinkRecord};

/// Read our v2 clients and their keys back and compare them with the units.
pub(super) async fn read_back(
    target: &V2Api,
    workspaces: &[Workspace],
    units: &[Unit<'_>],
) -> Result<ReadBack> {
    {
        let mut out = ReadBack::for_units(units);
        let spaces: BTreeSet<&str> = units.iter().map(|u| u.workspace).collect();
        for ws in spaces {
            let addr = WsAddr::find(workspaces, ws);
            let remote: HashMap<String, RemoteClient> = target
                .list_clients(&addr)
                .await?
                .into_iter()
                .filter_map(|c| Some((c.marker()?.to_string(), c)))
                .collect();
            for (ui, u) in units.iter().enumerate().filter(|(_, u)| u.workspace == ws) {
                let Some(spec) = u.container else { continue };
                let client = format!("v2 client {:?}", spec.name);
                let drift = |object: &str, field: &str, expected: String, found: String| Drift {
                    workspace: ws.into(),
                    object: object.into(),
                    field: field.into(),
                    expected,
                    found,
                };
                let Some(rc) = remote.get(&spec.marker) else {
                    out.missing_containers.insert(spec.marker.clone());
                    out.drift.push((
                        None,
                        drift(
                            &client,
                            "existence",
                            "present".into(),
                            "missing (not applied yet, or deleted)".into(),
                        ),
                    ));
                    continue;
                };
                out.drift.extend(compare_client(spec, rc).into_iter().map(
                    |(field, expected, found)| (None, drift(&client, &field, expected, found)),
                ));
                let keys = target.list_keys(&addr, rc.id).await?;
                let planned: BTreeSet<&str> = u.creds.iter().map(|c| c.name()).collect();
                for extra in keys.iter().filter(|k| !planned.contains(k.name.as_str())) {
                    let found = format!("unplanned key {:?}", extra.name);
                    let expected = "only planned keys".to_string();
                    out.drift
                        .push((None, drift(&client, "api_keys", expected, found)));
                }
                let keys: HashMap<&str, &super::RemoteKey> =
                    keys.iter().map(|k| (k.name.as_str(), k)).collect();
                for (ci, cred) in u.creds.iter().enumerate() {
                    let (CredSpec::Key(key), Some(rk)) = (cred.spec, keys.get(cred.name())) else {
                        continue;
                    };
                    let object = key_object(spec, key);
                    let op = Some(cred.op_id().clone());
                    let want: BTreeSet<&str> =
                        key.ip_allow_list.iter().map(String::as_str).collect();
                    let got: BTreeSet<&str> = rk.ip_allow_list.iter().map(String::as_str).collect();
                    if want != got {
                        let (w, g) = (format!("{want:?}"), format!("{got:?}"));
                        out.drift
                            .push((op.clone(), drift(&object, "ip_allow_list", w, g)));
                    }
                    if !rk.ip_deny_list.is_empty() {
                        let found = format!("{:?}", rk.ip_deny_list);
                        out.drift
                            .push((op, drift(&object, "ip_deny_list", "[]".into(), found)));
                    }
                    let found = Found {
                        id: RemoteId::Num(rk.id),
                        active: Some(rk.active),
                    };
                    out.found(ui, ci, found);
                }
            }
        }
        Ok(out)
    }
}

pub(super) fn key_object(spec: &ClientSpec, key: &KeySpec) -> String {
    format!("API key {:?} in client {:?}", key.name, spec.name)
}

/// The client-level differences: (field, expected, found).
fn compare_client(spec: &ClientSpec, rc: &RemoteClient) -> Vec<(String, String, String)> {
    let s = &spec.settings;
    let mut out = Vec::new();
    let mut check = |field: &str, expected: String, found: Option<String>| {
        // A field the vendor does not echo cannot be verified (SD-W10 variant).
        if let Some(found) = found.filter(|f| *f != expected) {
            out.push((field.to_string(), expected, found));
        }
    };
    let set = |v: &Option<Vec<String>>| {
        v.as_ref()
            .map(|v| format!("{:?}", v.iter().cloned().collect::<BTreeSet<_>>()))
    };
    check("name", spec.name.clone(), Some(rc.name.clone()));
    check(
        "auth_type",
        s.auth_type.as_str().to_string(),
        rc.auth_type.clone(),
    );
    check(
        "api_collection_ids",
        format!("{:?}", s.collection_ids),
        rc.collection_ids
            .as_ref()
            .map(|v| format!("{:?}", v.iter().copied().collect::<BTreeSet<i64>>())),
    );
    check(
        "api_policy_id",
        format!("{:?}", s.policy_id),
        rc.policy_id.map(|p| format!("{p:?}")),
    );
    let opt = |v: &Option<String>| Some(format!("{v:?}"));
    if matches!(s.auth_type, AuthType::Jwt | AuthType::Oidc) {
        let e = |v: &Option<String>| format!("{v:?}");
        check("jwt_method", e(&s.jwt_method), opt(&rc.jwt_method));
        check("oidc_issuer", e(&s.oidc_issuer), opt(&rc.oidc_issuer));
        check("oidc_jwks_uri", e(&s.oidc_jwks_uri), opt(&rc.oidc_jwks_uri));
        check(
            "access_profile_claim",
            e(&s.access_profile_claim),
            opt(&rc.access_profile_claim),
        );
        check(
            "required_claims",
            format!("{:?}", s.required_claims),
            set(&rc.required_claims),
        );
        check(
            "allowed_issuers",
            format!("{:?}", s.allowed_issuers),
            set(&rc.allowed_issuers),
        );
    }
    out
}

/// Live probes through the API gateway, the way each key's consumer will call.
pub struct GatewayProbe {
    prober: Prober,
    collection_urls: HashMap<(String, i64), String>,
    signing: SigningSecrets,
}

impl GatewayProbe {
    /// The prober `verify --live` uses: the gateway's address from
    /// KEYSHIFT_WORKATO_GATEWAY_URL, the config's `gateway_url`, or derived from the
    /// management URL.
    pub fn connect(
        ctx: &crate::context::Ctx,
        inv: &Inventory,
        deadline: Duration,
    ) -> Result<GatewayProbe> {
        let management = ctx.env.get("KEYSHIFT_WORKATO_URL")?.unwrap_or_default();
        let gateway = match ctx.env.get("KEYSHIFT_WORKATO_GATEWAY_URL")? {
            Some(g) => Some(g),
            None => {
                ctx.config
                    .section::<super::Config>(super::VENDOR)?
                    .gateway_url
            }
        }
        .or_else(|| super::probe::derive_gateway(&management))
        .ok_or_else(|| {
            crate::errors::KeyshiftError::Config(
                "verify --live needs the API gateway's address — set \
                 KEYSHIFT_WORKATO_GATEWAY_URL (e.g. https://apim.workato.com)"
                    .into(),
            )
        })?;
        crate::http::check_transport(
            "KEYSHIFT_WORKATO_GATEWAY_URL",
            &gateway,
            ctx.allow_insecure_http,
        )?;
        let signing = ctx.signing_secrets()?.unwrap_or_default();
        GatewayProbe::new(&gateway, deadline, &ctx.net()?, inv, signing)
    }

    pub fn new(
        gateway: &str,
        deadline: Duration,
        net: &crate::http::NetConfig,
        inv: &Inventory,
        signing: SigningSecrets,
    ) -> Result<GatewayProbe> {
        Ok(GatewayProbe {
            prober: Prober::new(gateway, deadline, net)?,
            collection_urls: inv
                .collections
                .iter()
                .filter_map(|c| c.url.clone().map(|u| ((c.workspace.clone(), c.id), u)))
                .collect(),
            signing,
        })
    }

    /// How this key's consumer will call: the probe for it, or why it cannot be probed.
    fn target(
        &self,
        spec: &ClientSpec,
        key: &KeySpec,
        remote_active: bool,
        record: &SinkRecord,
        secret: &SecretString,
    ) -> std::result::Result<ProbeTarget, String> {
        let url = spec
            .settings
            .collection_ids
            .iter()
            .find_map(|id| self.collection_urls.get(&(spec.workspace.clone(), *id)))
            .ok_or("no gateway URL for the client's collections")?
            .clone();
        let s = &spec.settings;
        let secret = SecretString::from(secret.expose_secret().to_string());
        let credential = match &s.auth_type {
            AuthType::Token => Credential::Token(secret),
            AuthType::Oauth2 => Credential::OAuth {
                client_id: record
                    .oauth_client_id
                    .clone()
                    .ok_or("no OAuth client id in the sink")?,
                secret,
            },
            AuthType::Jwt | AuthType::Oidc => {
                let (jwt_key, kid) = match (&s.auth_type, s.jwt_method.as_deref()) {
                    (AuthType::Jwt, Some("hmac")) => {
                        let shared = spec
                            .signing_secret
                            .as_ref()
                            .and_then(|r| self.signing.hmac_for(r))
                            .ok_or("no HMAC signing secret in the signing-secrets file")?;
                        (
                            JwtKey::Hmac(SecretString::from(shared.expose_secret().to_string())),
                            None,
                        )
                    }
                    _ => {
                        let probe = self
                            .signing
                            .probe_keys
                            .iter()
                            .find(|k| k.workspace == spec.workspace && k.profile_id == key.profile_id)
                            .ok_or("no probe key for this RSA/OIDC consumer (probe_keys in the signing-secrets file)")?;
                        (
                            JwtKey::RsaPem(SecretString::from(
                                probe.private_key_pem.expose_secret().to_string(),
                            )),
                            probe.kid.clone(),
                        )
                    }
                };
                Credential::Jwt {
                    key: jwt_key,
                    kid,
                    claim: s
                        .access_profile_claim
                        .clone()
                        .unwrap_or_else(|| "sub".into()),
                    token: secret,
                    required_claims: s.required_claims.iter().cloned().collect(),
                    issuer: s.allowed_issuers.iter().next().cloned(),
                }
            }
            AuthType::Unknown(a) => return Err(format!("auth type {a} cannot be probed")),
        };
        Ok(ProbeTarget {
            url,
            credential,
            active: remote_active && key.active,
            ip_restricted: !key.ip_allow_list.is_empty(),
        })
    }
}

impl crate::engine::verify::Prober for GatewayProbe {
    fn concurrency(&self) -> usize {
        16
    }

    fn probe<'a>(
        &'a self,
        unit: &'a Unit<'a>,
        cred: &'a crate::engine::Cred<'a>,
        found: &'a Found,
        record: &'a SinkRecord,
        secret: &'a SecretString,
    ) -> Fut<'a, (Verdict, String)> {
        Box::pin(async move {
            let (Some(spec), CredSpec::Key(key)) = (unit.container, cred.spec) else {
                return (
                    Verdict::Unverifiable,
                    "not an API key in a v2 client".into(),
                );
            };
            let active = found.active.unwrap_or(true);
            match self.target(spec, key, active, record, secret) {
                Ok(t) => self.prober.probe(&t).await,
                Err(reason) => (Verdict::Unverifiable, reason),
            }
        })
    }
}
