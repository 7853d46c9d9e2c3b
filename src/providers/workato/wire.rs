//! Workato wire types: lenient on read (the "keyshift also accepts" column of docs/sandbox.md's sandbox decisions).
//!
//! Secrets are never deserialized from reads. Create/refresh responses are parsed by
//! [`IssuedKey`], which holds them as `SecretString` from the first moment.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An id sent as a number or a numeric string.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| serde::de::Error::custom("id is not an integer")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("id {s:?} is not numeric"))),
        other => Err(serde::de::Error::custom(format!(
            "id {other} is not a number"
        ))),
    }
}

pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_i64()),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(s.trim().parse().ok()),
        _ => Ok(None),
    }
}

fn ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    let v = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
    Ok(v.into_iter()
        .filter_map(|x| match x {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .collect())
}

fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn default_true() -> bool {
    true
}

/// The list inside any of the wrappers the spec allows: bare array, `result`, `data`.
pub fn list_items(body: Value) -> Result<Vec<Value>, String> {
    match body {
        Value::Array(items) => Ok(items),
        Value::Object(mut map) => {
            for key in ["data", "result", "items"] {
                if let Some(Value::Array(items)) = map.remove(key) {
                    return Ok(items);
                }
            }
            Err("expected a list (bare, or under data/result)".into())
        }
        _ => Err("expected a list".into()),
    }
}

/// One list page parsed straight from the response bytes, in any wrapper the spec allows
/// (bare array, or an object with the list under `data`, `result` or `items`, and v2's
/// `count`), without building a JSON tree first: 100,000 profiles are 1,000 pages.
#[derive(Debug)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub count: Option<u64>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ListPage<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        use std::marker::PhantomData;

        /// A member that is the list, or anything else (skipped).
        enum Member<T> {
            List(Vec<T>),
            Other,
        }
        impl<'de, T: Deserialize<'de>> Deserialize<'de> for Member<T> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<T>(PhantomData<T>);
                impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
                    type Value = Member<T>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("any JSON value")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Member<T>, A::Error> {
                        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(100));
                        while let Some(item) = seq.next_element()? {
                            items.push(item);
                        }
                        Ok(Member::List(items))
                    }
                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Member<T>, A::Error> {
                        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                        Ok(Member::Other)
                    }
                    fn visit_bool<E>(self, _: bool) -> Result<Member<T>, E> {
                        Ok(Member::Other)
                    }
                    fn visit_i64<E>(self, _: i64) -> Result<Member<T>, E> {
                        Ok(Member::Other)
                    }
                    fn visit_u64<E>(self, _: u64) -> Result<Member<T>, E> {
                        Ok(Member::Other)
                    }
                    fn visit_f64<E>(self, _: f64) -> Result<Member<T>, E> {
                        Ok(Member::Other)
                    }
                    fn visit_str<E>(self, _: &str) -> Result<Member<T>, E> {
                        Ok(Member::Other)
                    }
                    fn visit_unit<E>(self) -> Result<Member<T>, E> {
                        Ok(Member::Other)
                    }
                }
                d.deserialize_any(V(PhantomData))
            }
        }

        struct PageVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for PageVisitor<T> {
            type Value = ListPage<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list (bare, or under data/result)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ListPage<T>, A::Error> {
                let Member::List(items) =
                    Member::<T>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?
                else {
                    unreachable!("a sequence is a list")
                };
                Ok(ListPage { items, count: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListPage<T>, A::Error> {
                // The first of data/result/items that holds a list wins, as in `list_items`.
                let mut found: [Option<Vec<T>>; 3] = [None, None, None];
                let mut count = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "data" => 0,
                        "result" => 1,
                        "items" => 2,
                        "count" => {
                            count = map.next_value::<Value>()?.as_u64();
                            continue;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if let Member::List(items) = map.next_value::<Member<T>>()? {
                        found[slot] = Some(items);
                    }
                }
                match found.into_iter().flatten().next() {
                    Some(items) => Ok(ListPage { items, count }),
                    None => Err(serde::de::Error::custom(
                        "expected a list (bare, or under data/result)",
                    )),
                }
            }
        }
        d.deserialize_any(PageVisitor(PhantomData))
    }
}

/// The object inside `{"data": …}` / `{"result": …}` or bare.
pub fn object(body: Value) -> Value {
    match body {
        Value::Object(mut map) => {
            for key in ["data", "result"] {
                if matches!(map.get(key), Some(Value::Object(_))) {
                    return map.remove(key).unwrap_or(Value::Null);
                }
            }
            Value::Object(map)
        }
        other => other,
    }
}

#[derive(Debug, Deserialize)]
pub struct LegacyClient {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    pub name: String,
    #[serde(default, deserialize_with = "opt_id")]
    pub project_id: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct ManagedUser {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Collection {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub url: Option<String>,
}

/// A legacy access profile as read (L3). No credential field is read from it.
#[derive(Debug, Deserialize)]
pub struct AccessProfile {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    pub name: String,
    #[serde(deserialize_with = "id")]
    pub api_client_id: i64,
    #[serde(default, deserialize_with = "ids")]
    pub api_collection_ids: Vec<i64>,
    #[serde(default = "default_true")]
    pub active: bool,
    #[serde(default)]
    pub auth_type: Option<String>,
    #[serde(default)]
    pub jwt_method: Option<String>,
    /// RSA public key PEM; for HMAC it must be ignored even if a server returns it.
    #[serde(default)]
    pub jwt_secret: Option<String>,
    #[serde(default)]
    pub oidc_issuer: Option<String>,
    #[serde(default)]
    pub oidc_jwks_uri: Option<String>,
    #[serde(default)]
    pub access_profile_claim: Option<String>,
    #[serde(default, deserialize_with = "strings")]
    pub required_claims: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    pub allowed_issuers: Vec<String>,
    #[serde(default, alias = "ip_whitelist", deserialize_with = "strings")]
    pub ip_allow_list: Vec<String>,
    #[serde(default, alias = "api_policy", deserialize_with = "opt_id")]
    pub api_policy_id: Option<i64>,
    #[serde(default)]
    pub oauth_client_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct IdName {
    #[serde(deserialize_with = "id")]
    pub id: i64,
}

/// A v2 client as read back (V1/V3).
#[derive(Debug, Deserialize)]
pub struct ApiClient {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub is_legacy: bool,
    #[serde(default)]
    pub auth_type: Option<String>,
    #[serde(default)]
    pub api_collections: Option<Vec<IdName>>,
    #[serde(default)]
    pub api_policies: Option<Vec<IdName>>,
    #[serde(default)]
    pub jwt_method: Option<String>,
    #[serde(default)]
    pub oidc_issuer: Option<String>,
    #[serde(default)]
    pub oidc_jwks_uri: Option<String>,
    #[serde(default)]
    pub access_profile_claim: Option<String>,
    #[serde(default)]
    pub required_claims: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_issuers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_id")]
    pub project_id: Option<i64>,
}

/// A key as read back (K1). Any credential a server might echo is not read.
#[derive(Debug, Deserialize)]
pub struct ApiKey {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    pub name: String,
    #[serde(default = "default_true")]
    pub active: bool,
    #[serde(default, deserialize_with = "strings")]
    pub ip_allow_list: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    pub ip_deny_list: Vec<String>,
    #[serde(default, alias = "client_id")]
    pub oauth_client_id: Option<String>,
}

/// A create (K2) or refresh (K7) response: the key and the secret it was issued with.
#[derive(Debug, Deserialize)]
pub struct IssuedKey {
    #[serde(default, deserialize_with = "opt_id")]
    pub id: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub auth_token: Option<SecretString>,
    #[serde(default, alias = "client_id")]
    pub oauth_client_id: Option<String>,
    #[serde(default, alias = "client_secret")]
    pub oauth_client_secret: Option<SecretString>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        id: i64,
    }

    fn page(json: &str) -> Result<ListPage<Item>, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn list_pages_in_every_wrapper() {
        let ids = |p: ListPage<Item>| (p.items.iter().map(|i| i.id).collect::<Vec<_>>(), p.count);
        assert_eq!(
            ids(page(r#"[{"id":1},{"id":2}]"#).unwrap()),
            (vec![1, 2], None)
        );
        assert_eq!(
            ids(page(r#"{"result":[{"id":3}]}"#).unwrap()),
            (vec![3], None)
        );
        assert_eq!(
            ids(page(r#"{"page":1,"data":[{"id":4,"extra":{"x":[1]}}],"count":"n/a"}"#).unwrap()),
            (vec![4], None),
            "unknown members and a non-numeric count are ignored"
        );
        assert_eq!(
            ids(page(r#"{"count":250,"data":[{"id":5}],"per_page":100}"#).unwrap()),
            (vec![5], Some(250))
        );
        // `data` that is not a list does not hide a list under `result`.
        assert_eq!(
            ids(page(r#"{"data":{"id":9},"result":[{"id":6}]}"#).unwrap()),
            (vec![6], None)
        );
        assert_eq!(ids(page(r#"{"items":[]}"#).unwrap()), (vec![], None));
        let err = page(r#"{"message":"nope"}"#).unwrap_err().to_string();
        assert!(err.contains("expected a list"), "{err}");
        let err = page(r#"[{"name":"no id"}]"#).unwrap_err().to_string();
        assert!(err.contains("missing field `id`"), "{err}");
        assert!(page("42").is_err());
    }
}
