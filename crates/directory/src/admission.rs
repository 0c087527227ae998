//! Defence in depth for the inbound sync guardrails: dynamic membership never admits a partner's user (a B2B user
//! anchored to another tenant's identity) to a protected group (one named in `protectedGroupIds` of a guardrail
//! policy in `enforce` mode) unless an approval recorded an exception for that user and group, whatever made the
//! rule match: an inbound write the guardrails let through, a target administrator's edit of the user, or a later
//! edit of the group's rule. The guardrails hold such writes before they happen; this is the net under them.
//!
//! The policies and exceptions are the sync engine's documents of the tenant ([`GUARDRAIL_POLICIES`],
//! [`GUARDRAIL_EXCEPTIONS`]; `tenantsync-connectors` tests that the names agree with the engine's), read here in
//! the membership write's own transaction, and only when a partner user is about to be added to some dynamic
//! group. This module reads only `mode` and `protectedGroupIds` of a policy and does not evaluate anything else.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use tenantsync_model::{ObjectId, User};
use tenantsync_store::{ChangeOp, ChangeRow, DirectoryTx};

use crate::DirectoryError;

/// The engine's collection of inbound sync guardrail policies (`tenantsync_engine::policy::GUARDRAILS`).
pub const GUARDRAIL_POLICIES: &str = "inboundSyncGuardrails";
/// The engine's collection of protected-group exceptions approvals recorded, keyed by target user id, each a list
/// of group ids (`tenantsync_engine::policy::GUARDRAIL_EXCEPTIONS`).
pub const GUARDRAIL_EXCEPTIONS: &str = "guardrailException";

/// The part of a guardrail policy this module reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyProtection {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    protected_group_ids: Option<Vec<String>>,
}

/// Whether `user` is a partner's user: a B2B user anchored to a source tenant's identity.
pub(crate) fn is_partner_user(user: &User) -> bool {
    user.anchor().is_some()
}

/// Every group protected by a policy in `enforce` mode (an omitted mode is `enforce`).
async fn protected_groups(tx: &mut dyn DirectoryTx) -> Result<HashSet<ObjectId>, DirectoryError> {
    let mut protected = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let docs = tx.list_docs(GUARDRAIL_POLICIES, after.as_deref(), 100).await?;
        let Some(last) = docs.last() else { break };
        after = Some(last.key.clone());
        for doc in &docs {
            let Ok(policy) = serde_json::from_str::<PolicyProtection>(&doc.data) else {
                tracing::warn!(key = doc.key, "a guardrail policy is unreadable; its protected groups are not known");
                continue;
            };
            if policy.mode.as_deref().is_none_or(|mode| mode.eq_ignore_ascii_case("enforce")) {
                protected.extend(
                    policy.protected_group_ids.unwrap_or_default().iter().filter_map(|id| ObjectId::parse(id).ok()),
                );
            }
        }
        if docs.len() < 100 {
            break;
        }
    }
    Ok(protected)
}

/// The groups an approval let `user` into.
async fn exceptions_of(tx: &mut dyn DirectoryTx, user: ObjectId) -> Result<HashSet<ObjectId>, DirectoryError> {
    let Some(doc) = tx.get_doc(GUARDRAIL_EXCEPTIONS, &user.to_string()).await? else { return Ok(HashSet::new()) };
    let groups: Vec<String> = serde_json::from_str(&doc.data).unwrap_or_default();
    Ok(groups.iter().filter_map(|id| ObjectId::parse(id).ok()).collect())
}

/// Drops from `added` (group, member) pairs, and their change entries, every admission of a partner user
/// (`partner_users`) to a protected group without an exception. Reads nothing unless a partner user is added.
pub(crate) async fn refuse_protected(
    tx: &mut dyn DirectoryTx,
    partner_users: &HashSet<ObjectId>,
    added: &mut Vec<(ObjectId, ObjectId)>,
    changes: &mut Vec<ChangeRow>,
) -> Result<(), DirectoryError> {
    if !added.iter().any(|(_, member)| partner_users.contains(member)) {
        return Ok(());
    }
    let protected = protected_groups(tx).await?;
    if protected.is_empty() {
        return Ok(());
    }
    let mut exceptions: HashMap<ObjectId, HashSet<ObjectId>> = HashMap::new();
    let mut refused = HashSet::new();
    for (group, member) in added.iter() {
        if !protected.contains(group) || !partner_users.contains(member) {
            continue;
        }
        if !exceptions.contains_key(member) {
            exceptions.insert(*member, exceptions_of(tx, *member).await?);
        }
        if !exceptions.get(member).is_some_and(|groups| groups.contains(group)) {
            tracing::info!(%group, %member, "a partner user matched a protected group's rule; not admitted");
            refused.insert((*group, *member));
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    added.retain(|pair| !refused.contains(pair));
    changes.retain(|change| {
        let refused_add = change.op == ChangeOp::LinkAdded
            && change.related.is_some_and(|member| refused.contains(&(change.object_id, member)));
        !refused_add
    });
    Ok(())
}
