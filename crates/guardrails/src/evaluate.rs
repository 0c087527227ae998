//! One proposed inbound user write against the partner's effective policy: blocked and not-allowed attributes are
//! dropped, overrides written, then constraints, protected dynamic groups (their rules against the user as it would
//! be after the write), impersonation and quotas decide whether the write is held.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tenantsync_expr::Rule;

use crate::attrs::{UserView, after_write, attribute_value, canonical_attribute, changed_attributes, remove_attribute};
use crate::confusable::{ProtectedIdentity, identity_keys};
use crate::policy::{EffectivePolicy, Mode};

/// Which guardrail held a change (`reasons[].guardrail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Guardrail {
    AttributeConstraint,
    ProtectedGroup,
    Impersonation,
    Quota,
}

impl Guardrail {
    pub fn as_str(self) -> &'static str {
        match self {
            Guardrail::AttributeConstraint => "attributeConstraint",
            Guardrail::ProtectedGroup => "protectedGroup",
            Guardrail::Impersonation => "impersonation",
            Guardrail::Quota => "quota",
        }
    }
}

/// Why a change is held: `{"guardrail", "detail"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldReason {
    pub guardrail: Guardrail,
    pub detail: String,
    /// The protected group a `protectedGroup` hold names (approval records an exception for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

impl HoldReason {
    fn new(guardrail: Guardrail, detail: String) -> HoldReason {
        HoldReason { guardrail, detail, group_id: None }
    }
}

/// Whether the change creates a user or changes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeAction {
    Create,
    Update,
}

/// A protected group: its id and name, and its membership rule when it is dynamic (static groups only contribute
/// their members as protected identities).
#[derive(Clone, Debug)]
pub struct ProtectedGroup {
    pub id: String,
    pub display_name: String,
    pub rule: Option<Rule>,
}

/// The volume of a partner's inbound writes so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Users of the tenant from this partner.
    pub partner_users: u64,
    /// All users of the tenant, the partner's included.
    pub tenant_users: u64,
    /// Users this partner created in the sliding hour before now.
    pub creates_last_hour: u64,
}

impl Usage {
    /// Counts a create that was written (the next evaluation of the same batch sees it).
    pub fn count_create(&mut self) {
        self.partner_users += 1;
        self.tenant_users += 1;
        self.creates_last_hour += 1;
    }
}

/// What the evaluation needs to know about the target and the partner, read once per batch by the caller.
#[derive(Clone, Debug, Default)]
pub struct PartnerContext {
    pub usage: Usage,
    pub protected_groups: Vec<ProtectedGroup>,
    pub protected_identities: Vec<ProtectedIdentity>,
}

/// One proposed inbound write.
pub struct ProposedChange<'a> {
    pub action: ChangeAction,
    /// The target user's id, for an update.
    pub target_id: Option<&'a str>,
    /// The target user's JSON now, for an update.
    pub current: Option<&'a Map<String, Value>>,
    /// The attributes the source wants written.
    pub changes: &'a Map<String, Value>,
    /// Protected groups this user was approved for (exceptions recorded by an approval).
    pub exempt_groups: &'a [String],
}

/// The decision.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Write the changes as proposed.
    Write(Map<String, Value>),
    /// Write these changes instead (blocked attributes dropped, overrides written); `notes` say what changed. In
    /// audit mode the changes are the proposed ones, and `would_hold` lists what `enforce` would have held.
    WriteWithChanges { changes: Map<String, Value>, notes: Vec<String>, would_hold: Vec<HoldReason> },
    /// Write nothing.
    Hold(Vec<HoldReason>),
}

/// Decides one proposed write. Pure: everything it reads is in its arguments.
pub fn evaluate(policy: &EffectivePolicy, ctx: &PartnerContext, change: &ProposedChange<'_>) -> Outcome {
    if policy.mode == Mode::Off {
        return Outcome::Write(change.changes.clone());
    }
    let mut changes = change.changes.clone();
    let mut notes = Vec::new();
    for attribute in &policy.blocked_attributes {
        if remove_attribute(&mut changes, attribute) {
            notes.push(format!("blocked attribute '{attribute}' not written"));
        }
    }
    if let Some(allowed) = &policy.allowed_attributes {
        for attribute in changed_attributes(&changes) {
            let canonical = canonical_attribute(&attribute);
            if !allowed.iter().any(|name| name.eq_ignore_ascii_case(&canonical)) {
                remove_attribute(&mut changes, &attribute);
                notes.push(format!("attribute '{canonical}' is not in allowedAttributes and was not written"));
            }
        }
    }
    let mut reasons = Vec::new();
    for constraint in &policy.constraints {
        if policy.overrides.iter().any(|entry| entry.attribute.eq_ignore_ascii_case(&constraint.attribute)) {
            continue;
        }
        let Some(value) = attribute_value(&changes, &constraint.attribute) else { continue };
        let texts: Vec<String> = match value {
            Value::Null => continue,
            Value::String(text) => vec![text.clone()],
            Value::Array(items) => {
                items.iter().map(|item| item.as_str().map_or(item.to_string(), str::to_owned)).collect()
            }
            other => vec![other.to_string()],
        };
        for text in texts {
            if let Some(allowed) = &constraint.allowed_values
                && !allowed.iter().any(|value| value == &text)
            {
                reasons.push(HoldReason::new(
                    Guardrail::AttributeConstraint,
                    format!("{} '{text}' is not one of the allowed values", constraint.attribute),
                ));
            }
            if let Some((pattern, regex)) = &constraint.pattern
                && !regex.is_match(&text)
            {
                reasons.push(HoldReason::new(
                    Guardrail::AttributeConstraint,
                    format!("{} '{text}' does not match the pattern '{pattern}'", constraint.attribute),
                ));
            }
            if let Some(max_length) = constraint.max_length
                && text.chars().count() as u64 > max_length
            {
                reasons.push(HoldReason::new(
                    Guardrail::AttributeConstraint,
                    format!("{} is longer than {max_length} characters", constraint.attribute),
                ));
            }
        }
    }
    for entry in &policy.overrides {
        let current = change.current.and_then(|current| attribute_value(current, &entry.attribute));
        let proposed = attribute_value(&changes, &entry.attribute).cloned();
        remove_attribute(&mut changes, &entry.attribute);
        // Written on create, and on update when the target's value differs; never echoed otherwise.
        if change.action == ChangeAction::Create || current != Some(&entry.value) {
            changes.insert(entry.attribute.clone(), entry.value.clone());
        }
        if proposed.is_some_and(|proposed| proposed != entry.value) {
            notes.push(format!("attribute '{}' overridden by the target", entry.attribute));
        }
    }
    let after = after_write(change.current, &changes);
    let view = UserView(&after);
    for group in &ctx.protected_groups {
        let Some(rule) = &group.rule else { continue };
        if change.exempt_groups.iter().any(|id| id.eq_ignore_ascii_case(&group.id)) {
            continue;
        }
        if rule.matches(&view) {
            reasons.push(HoldReason {
                guardrail: Guardrail::ProtectedGroup,
                detail: format!("the user would qualify for protected group '{}' ({})", group.display_name, group.id),
                group_id: Some(group.id.clone()),
            });
        }
    }
    let names_change = change.action == ChangeAction::Create
        || changed_attributes(&changes).iter().any(|name| {
            ["displayName", "givenName", "surname", "mail", "mailNickname", "userPrincipalName"]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(name))
        });
    if policy.impersonation_check && names_change && !ctx.protected_identities.is_empty() {
        let keys = identity_keys(&after);
        let mut resembled: BTreeMap<&str, &ProtectedIdentity> = BTreeMap::new();
        for identity in &ctx.protected_identities {
            if change.target_id.is_some_and(|id| id.eq_ignore_ascii_case(&identity.id)) {
                continue;
            }
            if identity.keys.iter().any(|key| keys.contains(key)) {
                resembled.insert(&identity.id, identity);
            }
        }
        for identity in resembled.values() {
            reasons.push(HoldReason::new(
                Guardrail::Impersonation,
                format!("the user resembles protected identity '{}' ({})", identity.display_name, identity.id),
            ));
        }
    }
    if change.action == ChangeAction::Create {
        let usage = &ctx.usage;
        if let Some(max_users) = policy.quotas.max_users
            && usage.partner_users + 1 > max_users
        {
            reasons.push(HoldReason::new(
                Guardrail::Quota,
                format!("the partner already has {} users here (maxUsers {max_users})", usage.partner_users),
            ));
        }
        if let Some(max_creates) = policy.quotas.max_creates_per_hour
            && usage.creates_last_hour + 1 > max_creates
        {
            reasons.push(HoldReason::new(
                Guardrail::Quota,
                format!(
                    "the partner created {} users in the last hour (maxCreatesPerHour {max_creates})",
                    usage.creates_last_hour
                ),
            ));
        }
        if let Some(max_share) = policy.quotas.max_share_of_tenant {
            let share = (usage.partner_users + 1) as f64 / (usage.tenant_users + 1) as f64;
            if share > max_share {
                reasons.push(HoldReason::new(
                    Guardrail::Quota,
                    format!(
                        "the partner's users would be {:.1} % of the tenant's users (maxShareOfTenant {max_share})",
                        share * 100.0
                    ),
                ));
            }
        }
    }
    match policy.mode {
        Mode::Audit if notes.is_empty() && reasons.is_empty() => Outcome::Write(change.changes.clone()),
        Mode::Audit => Outcome::WriteWithChanges {
            changes: change.changes.clone(),
            notes: notes.into_iter().map(|note| format!("audit: {note}")).collect(),
            would_hold: reasons,
        },
        _ if !reasons.is_empty() => Outcome::Hold(reasons),
        _ if notes.is_empty() && changes == *change.changes => Outcome::Write(changes),
        _ => Outcome::WriteWithChanges { changes, notes, would_hold: Vec::new() },
    }
}
