//! Inbound sync guardrails: what a target tenant lets a partner it does not fully trust write into it.
//!
//! The policy ([`GuardrailPolicy`], Graph's `inboundSyncGuardrails` shape) is pure data; [`EffectivePolicy::resolve`]
//! lays a partner's policy over the default policy and the documented [`Defaults`], and [`evaluate`] decides one
//! proposed user write: [`Outcome::Write`], [`Outcome::WriteWithChanges`] (blocked attributes dropped, overrides
//! written) or [`Outcome::Hold`] (attribute constraints, protected dynamic groups, impersonation of protected
//! identities, volume quotas). The crate does no IO: the caller reads the policy, the protected groups and users
//! and the partner's [`QuotaLedger`] once per batch, and writes or holds. `docs/design/guardrails.md` has the model.

mod attrs;
mod confusable;
mod evaluate;
mod policy;
mod quota;

pub use attrs::{USER_ATTRIBUTES, UserView, after_write, attribute_value, canonical_attribute, is_known_attribute};
pub use confusable::{MIN_KEY_CHARS, ProtectedIdentity, comparison_key, folded_key, identity_keys, local_part};
pub use evaluate::{
    ChangeAction, Guardrail, HoldReason, Outcome, PartnerContext, ProposedChange, ProtectedGroup, Usage, evaluate,
};
pub use policy::{
    AttributeConstraint, AttributeOverride, CompiledConstraint, Defaults, EffectivePolicy, EffectiveQuotas,
    GuardrailError, GuardrailPolicy, MAX_PATTERN_LEN, Mode, Quotas,
};
pub use quota::QuotaLedger;

#[cfg(test)]
mod tests;
