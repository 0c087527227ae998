//! The values a mapping expression computes with (spec §1.3) and their rendering (§1.4).
//!
//! Rendering is what flows to a target: strings as they are, Booleans as `True`/`False`, numbers in
//! invariant decimal, date-times as `M/d/yyyy h:mm:ss tt` in UTC.

use time::OffsetDateTime;

use crate::datetime;

/// An integer, or a decimal where an expression wrote one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Integer(i64),
    Decimal(f64),
}

impl Number {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Number::Integer(integer) => integer as f64,
            Number::Decimal(decimal) => decimal,
        }
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Integer(integer) => write!(f, "{integer}"),
            Number::Decimal(decimal) => write!(f, "{decimal}"),
        }
    }
}

/// One entry of a user's `alternativeSecurityIds`, as produced by the cross-tenant sync template's
/// `AltSecIdFromNetId`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlternativeSecurityId {
    /// 6 for the identities CTS creates.
    #[serde(rename = "type")]
    pub kind: i32,
    #[serde(rename = "identityProvider")]
    pub identity_provider: String,
    /// Base64 of the source user's net id (its object id as text).
    pub key: String,
}

/// A value during and after evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Absent. A Null result is not flowed.
    Null,
    String(String),
    Boolean(bool),
    Number(Number),
    /// A UTC instant.
    DateTime(OffsetDateTime),
    Multi(Vec<String>),
    /// The structured anchor value of `AltSecIdFromNetId`.
    AlternativeSecurityIds(Vec<AlternativeSecurityId>),
}

impl Value {
    /// The rendered text of a single value (spec §1.4); `None` for Null and multi-valued values.
    pub fn render_text(&self) -> Option<String> {
        match self {
            Value::Null | Value::Multi(_) | Value::AlternativeSecurityIds(_) => None,
            Value::String(text) => Some(text.clone()),
            Value::Boolean(true) => Some("True".to_owned()),
            Value::Boolean(false) => Some("False".to_owned()),
            Value::Number(number) => Some(number.to_string()),
            Value::DateTime(instant) => Some(datetime::render(*instant)),
        }
    }

    /// The rendered value as JSON: `null`, a string, a list of strings, or (for
    /// alternativeSecurityIds) a list of objects.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Multi(values) => values.iter().map(|value| serde_json::Value::String(value.clone())).collect(),
            Value::AlternativeSecurityIds(ids) => serde_json::to_value(ids).unwrap_or(serde_json::Value::Null),
            other => serde_json::Value::String(other.render_text().unwrap_or_default()),
        }
    }
}
