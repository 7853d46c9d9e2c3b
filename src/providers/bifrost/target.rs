//! Bifrost as a target: standalone virtual keys (create, rotate, activate, delete, probe).

use anyhow::Result;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

use super::{create_body, BifrostConn, RemoteVk, WORDS};
use crate::engine::verify::Verdict;
use crate::http::{Http, HttpError, RateBudget};

impl crate::providers::standalone::StandaloneApi for BifrostConn {
    const TRAITS: crate::providers::standalone::Traits = crate::providers::standalone::Traits {
        vendor: crate::model::Vendor::Bifrost,
        words: WORDS,
        kind: "virtual_key",
        creates_inactive: true,
        rotates_inactive: true,
    };
    fn http(&self) -> &Http {
        &self.http
    }
    fn budget(&self) -> &RateBudget {
        &self.budget
    }
    fn list_ours(&self) -> crate::engine::Fut<'_, Result<Vec<RemoteVk>>> {
        Box::pin(BifrostConn::list_ours(self))
    }
    /// V2. Not idempotent: an ambiguous failure is reconciled by listing.
    fn body(item: &crate::model::StandaloneSpec) -> Result<Value> {
        create_body(item)
    }
    fn create<'a>(&'a self, body: &'a Value) -> crate::providers::standalone::Issuing<'a> {
        Box::pin(async move {
            let v = self
                .call(
                    Method::POST,
                    "/api/governance/virtual-keys",
                    "/api/governance/virtual-keys",
                    Some(body),
                    false,
                )
                .await?;
            issued(v, "/api/governance/virtual-keys")
        })
    }
    /// V6.
    fn rotate<'a>(&'a self, id: &'a str) -> crate::providers::standalone::Issuing<'a> {
        Box::pin(async move {
            let v = self
                .call(
                    Method::POST,
                    &format!("/api/governance/virtual-keys/{id}/rotate"),
                    "/api/governance/virtual-keys/:vk_id/rotate",
                    None,
                    true,
                )
                .await?;
            issued(v, "/api/governance/virtual-keys/:vk_id/rotate")
        })
    }
    /// V4 with `is_active` only.
    fn set_active<'a>(
        &'a self,
        id: &'a str,
        active: bool,
    ) -> crate::providers::standalone::Changing<'a> {
        let body = json!({ "is_active": active });
        Box::pin(async move { self.on_key(Method::PUT, id, Some(&body)).await })
    }
    /// V5.
    fn delete<'a>(&'a self, id: &'a str) -> crate::providers::standalone::Changing<'a> {
        Box::pin(self.on_key(Method::DELETE, id, None))
    }
    /// Bifrost echoes provider keys and MCP clients in another shape than it accepts them.
    fn expected_read(&self, body: &Value) -> Value {
        let mut b = body.clone();
        if let Some(pcs) = b.get_mut("provider_configs").and_then(Value::as_array_mut) {
            for pc in pcs.iter_mut().filter_map(Value::as_object_mut) {
                if pc.remove("key_ids") == Some(json!(["*"])) {
                    pc.insert("allow_all_keys".into(), json!(true));
                }
            }
        }
        if let Some(mcs) = b.get_mut("mcp_configs").and_then(Value::as_array_mut) {
            for mc in mcs.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(name) = mc.remove("mcp_client_name") {
                    mc.insert("mcp_client".into(), json!({ "name": name }));
                }
            }
        }
        b
    }
    /// One quota call with the key: it authenticates, and names the planned key.
    fn probe<'a>(
        &'a self,
        item: &'a crate::model::StandaloneSpec,
        _id: &'a str,
        secret: &'a SecretString,
    ) -> crate::engine::Fut<'a, (Verdict, String)> {
        Box::pin(async move {
            match self.quota(secret).await {
                Err(msg) => (Verdict::Unverifiable, msg),
                Ok((200, body)) => {
                    let active = body.get("is_active").and_then(Value::as_bool) == Some(true);
                    let named = body.get("virtual_key_name").and_then(Value::as_str)
                        == Some(item.name.as_str());
                    match (item.active, active, named) {
                        (_, _, false) => {
                            (Verdict::Rejected, "the quota call names another key".into())
                        }
                        (true, true, true) => (Verdict::Ok, "quota call authenticated".into()),
                        (false, false, true) => (
                            Verdict::ExpectedInactive,
                            "inactive key answers is_active: false as planned".into(),
                        ),
                        (true, false, true) => (Verdict::Rejected, "the key is inactive".into()),
                        (false, true, true) => {
                            (Verdict::Rejected, "a key planned inactive is active".into())
                        }
                    }
                }
                Ok((404, _)) => (
                    Verdict::Unverifiable,
                    "the quota endpoint is missing (older Bifrost)".into(),
                ),
                Ok((status @ (401 | 403), _)) => {
                    (Verdict::Rejected, format!("refused with {status}"))
                }
                Ok((status, _)) => (
                    Verdict::Unverifiable,
                    format!("quota call answered {status}"),
                ),
            }
        })
    }
}

fn issued(v: Value, route: &str) -> Result<(String, SecretString), HttpError> {
    let bad = |what: &str| HttpError::Status {
        method: "POST".into(),
        route: route.into(),
        status: 200,
        message: format!("unexpected response: {what}"),
        retry_after: None,
        body: None,
    };
    let vk = v.get("virtual_key").ok_or_else(|| bad("no virtual_key"))?;
    let id = vk
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no id"))?;
    let value = vk
        .get("value")
        .and_then(Value::as_str)
        .filter(|s| !s.contains('*'))
        .ok_or_else(|| bad("no (unmasked) value"))?;
    Ok((id.to_string(), SecretString::from(value.to_string())))
}
