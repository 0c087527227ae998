//! The guardrail policy in Graph's JSON shape (`inboundSyncGuardrails`), its validation, and the effective policy
//! of one partner: the partner's policy over the default policy, a null property falling back to the default
//! policy's value and then to the documented default ([`Defaults`]).

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::attrs::{canonical_attribute, is_known_attribute};

/// `mode`: what a guardrail match does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Matches are held; blocked attributes and overrides are applied.
    Enforce,
    /// Nothing is held or changed: every change is written as proposed, and what `enforce` would have done is
    /// reported.
    Audit,
    /// The policy is kept but not evaluated.
    Off,
}

/// One entry of `attributeConstraints`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeConstraint {
    pub attribute: String,
    #[serde(default)]
    pub allowed_values: Option<Vec<String>>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub max_length: Option<u64>,
}

/// One entry of `attributeOverrides`: the target's value, written whatever the source sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeOverride {
    pub attribute: String,
    pub value: Value,
}

/// `quotas`; a null member falls back like any other property.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quotas {
    #[serde(default)]
    pub max_users: Option<u64>,
    #[serde(default)]
    pub max_creates_per_hour: Option<u64>,
    #[serde(default)]
    pub max_share_of_tenant: Option<f64>,
}

/// `inboundSyncGuardrails`, as stored and as the API shows it: every property may be null (unset).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardrailPolicy {
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub blocked_attributes: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_attributes: Option<Vec<String>>,
    #[serde(default)]
    pub attribute_constraints: Option<Vec<AttributeConstraint>>,
    #[serde(default)]
    pub attribute_overrides: Option<Vec<AttributeOverride>>,
    #[serde(default)]
    pub protected_group_ids: Option<Vec<String>>,
    #[serde(default)]
    pub protected_user_ids: Option<Vec<String>>,
    #[serde(default)]
    pub impersonation_check: Option<bool>,
    #[serde(default)]
    pub quotas: Option<Quotas>,
}

/// The documented defaults of a property left null by both the partner's and the default policy. They are chosen
/// so that an 80,000-user flood into a 500-user tenant writes at most 2,000 users (the share quota: 2,000 partner
/// users over 2,500 is 0.8) while a benign organisation of 10,000 users joining a tenant of 10,000 (a share of
/// 0.5, 10,000 creates in its first hour) holds nothing. `docs/design/guardrails.md` explains them.
pub struct Defaults;

impl Defaults {
    pub const MODE: Mode = Mode::Enforce;
    pub const IMPERSONATION_CHECK: bool = true;
    /// No absolute cap: tenant sizes vary too much for one number; the share is the scale-free guard.
    pub const MAX_USERS: Option<u64> = None;
    /// A benign organisation's initial sync of 10,000 users fits in one hour.
    pub const MAX_CREATES_PER_HOUR: Option<u64> = Some(10_000);
    /// A partner may bring at most four users for each user of the tenant not from it.
    pub const MAX_SHARE_OF_TENANT: Option<f64> = Some(0.8);
}

/// The longest `pattern` accepted, and the compiled size limit (the regex crate runs in linear time; the limits
/// keep a hostile pattern from costing memory).
pub const MAX_PATTERN_LEN: usize = 1_000;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A policy refused by validation; messages follow Graph's 400 wording.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GuardrailError {
    #[error("Invalid value for property '{property}': '{attribute}' is not a user attribute")]
    UnknownAttribute { property: &'static str, attribute: String },
    #[error(
        "Invalid value for property 'attributeConstraints': the pattern for '{attribute}' is not a valid regular expression: {message}"
    )]
    BadPattern { attribute: String, message: String },
    #[error("Invalid value for property 'protectedGroupIds': group '{id}' does not exist in this tenant")]
    UnknownGroup { id: String },
    #[error("Invalid value for property 'protectedUserIds': user '{id}' does not exist in this tenant")]
    UnknownUser { id: String },
    #[error("Invalid value for property '{property}': {message}")]
    BadValue { property: &'static str, message: String },
}

impl GuardrailPolicy {
    /// Checks the policy: attribute names are user attributes, patterns compile, quotas are in range, and the
    /// protected groups and users exist (asked through the closures, which the caller answers from the tenant).
    pub fn validate(
        &self,
        group_exists: &dyn Fn(&str) -> bool,
        user_exists: &dyn Fn(&str) -> bool,
    ) -> Result<(), GuardrailError> {
        let names = |property: &'static str, list: &Option<Vec<String>>| -> Result<(), GuardrailError> {
            for attribute in list.iter().flatten() {
                if !is_known_attribute(attribute) {
                    return Err(GuardrailError::UnknownAttribute { property, attribute: attribute.clone() });
                }
            }
            Ok(())
        };
        names("blockedAttributes", &self.blocked_attributes)?;
        names("allowedAttributes", &self.allowed_attributes)?;
        for constraint in self.attribute_constraints.iter().flatten() {
            if !is_known_attribute(&constraint.attribute) {
                return Err(GuardrailError::UnknownAttribute {
                    property: "attributeConstraints",
                    attribute: constraint.attribute.clone(),
                });
            }
            if let Some(pattern) = &constraint.pattern {
                compile_pattern(&constraint.attribute, pattern)?;
            }
        }
        for entry in self.attribute_overrides.iter().flatten() {
            if !is_known_attribute(&entry.attribute) {
                return Err(GuardrailError::UnknownAttribute {
                    property: "attributeOverrides",
                    attribute: entry.attribute.clone(),
                });
            }
            if matches!(entry.value, Value::Object(_)) {
                return Err(GuardrailError::BadValue {
                    property: "attributeOverrides",
                    message: format!(
                        "the value for '{}' must be a string, number, Boolean, array or null",
                        entry.attribute
                    ),
                });
            }
        }
        if let Some(share) = self.quotas.as_ref().and_then(|quotas| quotas.max_share_of_tenant)
            && !(share > 0.0 && share <= 1.0)
        {
            return Err(GuardrailError::BadValue {
                property: "quotas",
                message: "maxShareOfTenant must be greater than 0 and at most 1".to_owned(),
            });
        }
        for id in self.protected_group_ids.iter().flatten() {
            if !group_exists(id) {
                return Err(GuardrailError::UnknownGroup { id: id.clone() });
            }
        }
        for id in self.protected_user_ids.iter().flatten() {
            if !user_exists(id) {
                return Err(GuardrailError::UnknownUser { id: id.clone() });
            }
        }
        Ok(())
    }

    /// This policy with `patch`'s properties written over it (Graph's PATCH: a property present in the patch, null
    /// included, replaces the stored one). The result still has to be validated.
    pub fn patched(&self, patch: &serde_json::Map<String, Value>) -> Result<GuardrailPolicy, serde_json::Error> {
        let mut merged = match serde_json::to_value(self).expect("policies always serialize") {
            Value::Object(map) => map,
            _ => unreachable!("a policy serializes to a JSON object"),
        };
        for (name, value) in patch {
            merged.insert(name.clone(), value.clone());
        }
        serde_json::from_value(Value::Object(merged))
    }
}

fn compile_pattern(attribute: &str, pattern: &str) -> Result<Regex, GuardrailError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(GuardrailError::BadPattern {
            attribute: attribute.to_owned(),
            message: format!("longer than {MAX_PATTERN_LEN} characters"),
        });
    }
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|err| GuardrailError::BadPattern {
            attribute: attribute.to_owned(),
            message: err.to_string().lines().last().unwrap_or_default().trim().to_owned(),
        })
}

/// A constraint ready to check.
#[derive(Clone, Debug)]
pub struct CompiledConstraint {
    pub attribute: String,
    pub allowed_values: Option<Vec<String>>,
    pub pattern: Option<(String, Regex)>,
    pub max_length: Option<u64>,
}

/// The quotas in force.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveQuotas {
    pub max_users: Option<u64>,
    pub max_creates_per_hour: Option<u64>,
    pub max_share_of_tenant: Option<f64>,
}

/// The policy in force for one partner, every property resolved.
#[derive(Clone, Debug)]
pub struct EffectivePolicy {
    pub mode: Mode,
    /// Canonical attribute names.
    pub blocked_attributes: Vec<String>,
    pub allowed_attributes: Option<Vec<String>>,
    pub constraints: Vec<CompiledConstraint>,
    pub overrides: Vec<AttributeOverride>,
    pub protected_group_ids: Vec<String>,
    pub protected_user_ids: Vec<String>,
    pub impersonation_check: bool,
    pub quotas: EffectiveQuotas,
}

impl EffectivePolicy {
    /// This policy's shaping of a write (blocked and allowed attributes, overrides) without anything that holds:
    /// what an approval of a held change writes.
    pub fn without_holds(&self) -> EffectivePolicy {
        EffectivePolicy {
            mode: Mode::Enforce,
            constraints: Vec::new(),
            protected_group_ids: Vec::new(),
            protected_user_ids: Vec::new(),
            impersonation_check: false,
            quotas: EffectiveQuotas { max_users: None, max_creates_per_hour: None, max_share_of_tenant: None },
            ..self.clone()
        }
    }

    /// The policy for a partner: its own policy over the default policy over [`Defaults`]. None when neither policy
    /// exists (the tenant is unguarded, as before guardrails).
    pub fn resolve(
        default: Option<&GuardrailPolicy>,
        partner: Option<&GuardrailPolicy>,
    ) -> Result<Option<EffectivePolicy>, GuardrailError> {
        if default.is_none() && partner.is_none() {
            return Ok(None);
        }
        fn pick<'a, T>(
            partner: Option<&'a GuardrailPolicy>,
            default: Option<&'a GuardrailPolicy>,
            get: impl Fn(&'a GuardrailPolicy) -> Option<&'a T>,
        ) -> Option<&'a T> {
            partner.and_then(&get).or_else(|| default.and_then(&get))
        }
        let quota = |get: &dyn Fn(&Quotas) -> Option<u64>, fallback: Option<u64>| -> Option<u64> {
            partner
                .and_then(|policy| policy.quotas.as_ref())
                .and_then(get)
                .or_else(|| default.and_then(|policy| policy.quotas.as_ref()).and_then(get))
                .or(fallback)
        };
        let share = partner
            .and_then(|policy| policy.quotas.as_ref())
            .and_then(|quotas| quotas.max_share_of_tenant)
            .or_else(|| default.and_then(|policy| policy.quotas.as_ref()).and_then(|quotas| quotas.max_share_of_tenant))
            .or(Defaults::MAX_SHARE_OF_TENANT);
        let names = |list: Option<&Vec<String>>| -> Vec<String> {
            list.into_iter().flatten().map(|name| canonical_attribute(name)).collect()
        };
        let mut constraints = Vec::new();
        for constraint in pick(partner, default, |policy| policy.attribute_constraints.as_ref()).into_iter().flatten() {
            let pattern = match &constraint.pattern {
                Some(pattern) => Some((pattern.clone(), compile_pattern(&constraint.attribute, pattern)?)),
                None => None,
            };
            constraints.push(CompiledConstraint {
                attribute: canonical_attribute(&constraint.attribute),
                allowed_values: constraint.allowed_values.clone(),
                pattern,
                max_length: constraint.max_length,
            });
        }
        let overrides = pick(partner, default, |policy| policy.attribute_overrides.as_ref())
            .into_iter()
            .flatten()
            .map(|entry| AttributeOverride {
                attribute: canonical_attribute(&entry.attribute),
                value: entry.value.clone(),
            })
            .collect();
        Ok(Some(EffectivePolicy {
            mode: pick(partner, default, |policy| policy.mode.as_ref()).copied().unwrap_or(Defaults::MODE),
            blocked_attributes: names(pick(partner, default, |policy| policy.blocked_attributes.as_ref())),
            allowed_attributes: pick(partner, default, |policy| policy.allowed_attributes.as_ref())
                .map(|list| names(Some(list))),
            constraints,
            overrides,
            protected_group_ids: pick(partner, default, |policy| policy.protected_group_ids.as_ref())
                .cloned()
                .unwrap_or_default(),
            protected_user_ids: pick(partner, default, |policy| policy.protected_user_ids.as_ref())
                .cloned()
                .unwrap_or_default(),
            impersonation_check: pick(partner, default, |policy| policy.impersonation_check.as_ref())
                .copied()
                .unwrap_or(Defaults::IMPERSONATION_CHECK),
            quotas: EffectiveQuotas {
                max_users: quota(&|quotas| quotas.max_users, Defaults::MAX_USERS),
                max_creates_per_hour: quota(&|quotas| quotas.max_creates_per_hour, Defaults::MAX_CREATES_PER_HOUR),
                max_share_of_tenant: share,
            },
        }))
    }
}
