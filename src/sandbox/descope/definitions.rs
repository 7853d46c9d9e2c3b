//! What a Descope project is made of, as `[descope]` config and fixtures define it: roles,
//! tenants, users and the access-key attribute schema. Plain definitions with no dependency on
//! the rest of the sandbox, so the config can name them without importing the project.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// `[[descope.roles]]`: a project role.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Permission names the role grants (they appear in exchanged JWTs).
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// `[[descope.tenants]]`: a tenant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDef {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// `[[descope.users]]`: a user access keys may be bound to (`userId`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDef {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Project-level roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tenant memberships.
    #[serde(default)]
    pub tenants: Vec<UserTenantDef>,
}

/// A user's roles in one tenant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTenantDef {
    pub tenant_id: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Type of a custom attribute in the access-key schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeType {
    #[serde(alias = "text")]
    String,
    #[serde(alias = "numeric")]
    Number,
    #[serde(alias = "bool")]
    Boolean,
    #[serde(alias = "multiselect")]
    Array,
}

impl AttributeType {
    /// Whether `v` is a value of this type.
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            Self::String => v.is_string(),
            Self::Number => v.is_number(),
            Self::Boolean => v.is_boolean(),
            Self::Array => v.is_array(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Array => "array",
        }
    }
}

/// The default attribute schema: `migrationSourceId` (string).
pub fn default_custom_attributes() -> BTreeMap<String, AttributeType> {
    BTreeMap::from([("migrationSourceId".to_owned(), AttributeType::String)])
}
