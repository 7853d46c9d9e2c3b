//! The engine's target for vendors whose credentials stand alone — one per source profile,
//! no container: a Descope access key, a Bifrost virtual key. Each such vendor implements the
//! small [`StandaloneApi`] in its folder; [`Standalone`] turns it into an [`engine::Target`].

use anyhow::Result;
use futures::FutureExt;
use secrecy::SecretString;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

use super::RemoteCredential;
use crate::engine::verify::{differing_fields, Drift, ReadBack, Verdict};
use crate::engine::{
    self, At, Call, Cred, CredSpec, Found, Fut, Issued, RemoteId, Survey, Unit, Words,
};
use crate::http::{Http, HttpError, RateBudget};
use crate::model::{StandaloneSpec, Vendor};

/// What sets one vendor's standalone credentials apart.
pub struct Traits {
    pub vendor: Vendor,
    pub words: Words,
    /// The sink record's `target_kind` and `kind`.
    pub kind: &'static str,
    /// Whether a create honours the planned `active` flag (else it creates active, and the
    /// engine deactivates after the secret is safe).
    pub creates_inactive: bool,
    /// Whether an inactive credential can be rotated as it is (else it is activated first).
    pub rotates_inactive: bool,
}

/// A call that issues a secret: the credential's id and the secret.
pub type Issuing<'a> = Fut<'a, Result<(String, SecretString), HttpError>>;
/// A call that only changes state.
pub type Changing<'a> = Fut<'a, Result<(), HttpError>>;

/// A vendor's standalone credentials, by id.
pub trait StandaloneApi: Send + Sync {
    const TRAITS: Traits;
    fn http(&self) -> &Http;
    /// The budget that paces every call to the vendor.
    fn budget(&self) -> &RateBudget;
    /// Our credentials (they carry a keyshift marker): one search.
    fn list_ours(&self) -> Fut<'_, Result<Vec<RemoteCredential>>>;
    /// The create body of a planned credential, from its item (name, marker, activity) and
    /// its planner's grant.
    fn body(item: &StandaloneSpec) -> Result<Value>;
    /// Create from the body: the new id and its secret.
    fn create<'a>(&'a self, body: &'a Value) -> Issuing<'a>;
    fn rotate<'a>(&'a self, id: &'a str) -> Issuing<'a>;
    fn set_active<'a>(&'a self, id: &'a str, active: bool) -> Changing<'a>;
    fn delete<'a>(&'a self, id: &'a str) -> Changing<'a>;
    /// The planned body as the vendor reads it back (a vendor may echo some fields in
    /// another shape than it accepts them).
    fn expected_read(&self, body: &Value) -> Value {
        body.clone()
    }
    /// Live check of one credential with its secret.
    fn probe<'a>(
        &'a self,
        item: &'a StandaloneSpec,
        id: &'a str,
        secret: &'a SecretString,
    ) -> Fut<'a, (Verdict, String)>;
}

/// A [`StandaloneApi`] as the engine's target.
pub struct Standalone<A>(pub Arc<A>);

/// The create body, or why the plan cannot give it.
fn body<A: StandaloneApi>(item: &StandaloneSpec) -> Result<Value, HttpError> {
    A::body(item).map_err(|e| {
        engine::refused_here(
            A::TRAITS.vendor,
            format!(
                "the plan's grant for {} cannot be read ({e:#}) — run `keyshift plan` again",
                item.source
            ),
        )
    })
}

fn text(id: &RemoteId) -> String {
    id.to_string()
}

impl<A: StandaloneApi> Standalone<A> {
    fn issued(&self, (id, secret): (String, SecretString), active: bool) -> Issued {
        Issued {
            id: RemoteId::Text(id),
            secret,
            kind: A::TRAITS.kind.into(),
            oauth_client_id: None,
            active,
        }
    }
}

impl<A: StandaloneApi> engine::Target for Standalone<A> {
    fn vendor(&self) -> Vendor {
        A::TRAITS.vendor
    }

    fn http(&self) -> &Http {
        self.0.http()
    }

    fn words(&self) -> Words {
        A::TRAITS.words
    }

    fn credential_kind(&self) -> &'static str {
        A::TRAITS.kind
    }

    fn per_minute(&self, _workspace: &str) -> Option<f64> {
        self.0.budget().per_minute
    }

    fn survey<'a>(&'a self, _units: &'a [&'a Unit<'a>]) -> Fut<'a, Result<Survey>> {
        async move {
            let creds = self
                .0
                .list_ours()
                .await?
                .into_iter()
                .filter_map(|k| {
                    let found = Found {
                        id: RemoteId::Text(k.id),
                        active: Some(k.active),
                    };
                    Some((k.source?, found))
                })
                .collect();
            Ok(Survey {
                containers: HashMap::new(),
                creds,
            })
        }
        .boxed()
    }

    fn create<'a>(&'a self, _: At<'a>, cred: &'a Cred<'a>) -> Call<'a, Issued> {
        async move {
            let item = cred.item(A::TRAITS.vendor)?;
            let created = self.0.create(&body::<A>(item)?).await?;
            Ok(self.issued(created, !A::TRAITS.creates_inactive || item.active))
        }
        .boxed()
    }

    /// Rotate; a vendor that cannot rotate an inactive key activates it first.
    fn renew<'a>(&'a self, _: At<'a>, _: &'a Cred<'a>, found: &'a Found) -> Call<'a, Issued> {
        async move {
            let id = text(&found.id);
            let mut active = found.active != Some(false);
            if !active && !A::TRAITS.rotates_inactive {
                self.0.set_active(&id, true).await?;
                active = true;
            }
            let rotated = self.0.rotate(&id).await?;
            Ok(self.issued(rotated, active))
        }
        .boxed()
    }

    fn deactivate<'a>(&'a self, _: At<'a>, id: &'a RemoteId) -> Call<'a, ()> {
        async move { self.0.set_active(&text(id), false).await }.boxed()
    }

    fn delete<'a>(&'a self, _: At<'a>, id: &'a RemoteId) -> Call<'a, ()> {
        async move { self.0.delete(&text(id)).await }.boxed()
    }

    fn read_back<'a>(&'a self, units: &'a [Unit<'a>]) -> Fut<'a, Result<ReadBack>> {
        async move {
            let vendor = A::TRAITS.vendor.as_str();
            let ours: HashMap<String, RemoteCredential> = self
                .0
                .list_ours()
                .await?
                .into_iter()
                .filter_map(|k| Some((k.source.clone()?, k)))
                .collect();
            let mut out = ReadBack::for_units(units);
            let planned: std::collections::HashSet<&str> = units
                .iter()
                .flat_map(|u| &u.creds)
                .map(|c| c.source())
                .collect();
            let mut unplanned: Vec<(&String, &RemoteCredential)> = ours
                .iter()
                .filter(|(m, _)| !planned.contains(m.as_str()))
                .collect();
            unplanned.sort_by(|a, b| a.0.cmp(b.0));
            for (marker, r) in unplanned {
                let drift = Drift {
                    workspace: marker.split(':').nth(2).unwrap_or("").into(),
                    object: format!("{vendor} {}", r.id),
                    field: "existence".into(),
                    expected: "only planned credentials carry a keyshift marker".into(),
                    found: format!("unplanned credential marked {marker}"),
                };
                out.drift.push((None, drift));
            }
            for (ui, u) in units.iter().enumerate() {
                for (ci, cred) in u.creds.iter().enumerate() {
                    let (CredSpec::Standalone(item), Some(r)) =
                        (cred.spec, ours.get(cred.source()))
                    else {
                        continue;
                    };
                    let expected = self.0.expected_read(&body::<A>(item)?);
                    for field in differing_fields(&r.body, &expected) {
                        let drift = Drift {
                            workspace: item.workspace.clone(),
                            object: self.object(u, cred),
                            expected: expected[&field].to_string(),
                            found: r
                                .body
                                .get(&field)
                                .map(|v| v.to_string())
                                .unwrap_or_else(|| "absent".into()),
                            field,
                        };
                        out.drift.push((Some(cred.op_id().clone()), drift));
                    }
                    let found = Found {
                        id: RemoteId::Text(r.id.clone()),
                        active: Some(r.active),
                    };
                    out.found(ui, ci, found);
                }
            }
            Ok(out)
        }
        .boxed()
    }

    fn object(&self, _unit: &Unit, cred: &Cred) -> String {
        format!("{} {:?}", A::TRAITS.vendor.as_str(), cred.name())
    }
}

impl<A: StandaloneApi> crate::engine::verify::Prober for Standalone<A> {
    /// Probes share the vendor's rate budget with everything else.
    fn concurrency(&self) -> usize {
        4
    }

    fn probe<'a>(
        &'a self,
        _unit: &'a Unit<'a>,
        cred: &'a Cred<'a>,
        found: &'a Found,
        _record: &'a crate::secrets::SinkRecord,
        secret: &'a SecretString,
    ) -> Fut<'a, (Verdict, String)> {
        async move {
            let CredSpec::Standalone(item) = cred.spec else {
                return (Verdict::Unverifiable, "not a standalone credential".into());
            };
            self.0.probe(item, &found.id.to_string(), secret).await
        }
        .boxed()
    }
}
