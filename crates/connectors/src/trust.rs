//! What a target hosted here decided about the users a partner syncs into it, as `LocalTarget` applies it: a
//! tombstoned anchor (a synced user the target's administrators deleted) is seen as that deleted user, so the
//! engine never creates it again, and a create or restore of it (a partner writing through the Graph API) is
//! refused; the partner's kill switch refuses writes like a withdrawn consent (checked with
//! the consent, in `LocalTarget::check_consent`).

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use tenantsync_engine::connector::{Anchor, PeerError, TargetUser};
use tenantsync_model::ObjectId;

use crate::local::LocalTarget;

impl LocalTarget {
    /// `found` (the users the directory holds for `anchors`), with the anchors it lacks filled by their
    /// tombstones: a deleted user the engine will not restore or create again.
    pub(crate) async fn with_tombstones(
        &self,
        anchors: &[Anchor],
        mut found: Vec<Option<TargetUser>>,
    ) -> Result<Vec<Option<TargetUser>>, PeerError> {
        let missing: Vec<String> =
            anchors.iter().zip(&found).filter(|(_, user)| user.is_none()).map(|(anchor, _)| anchor.key()).collect();
        let tombstones =
            self.repo.tombstoned(self.tenant, &missing).await.map_err(|err| PeerError::Unavailable(Box::new(err)))?;
        if tombstones.is_empty() {
            return Ok(found);
        }
        for (anchor, user) in anchors.iter().zip(found.iter_mut()) {
            let Some(tombstone) = tombstones.get(&anchor.key()).filter(|_| user.is_none()) else { continue };
            let Ok(id) = ObjectId::parse(&tombstone.id) else { continue };
            let mut attributes = Map::new();
            attributes.insert("displayName".to_owned(), json!(tombstone.display_name));
            attributes.insert("userPrincipalName".to_owned(), json!(tombstone.user_principal_name));
            attributes.insert("accountEnabled".to_owned(), Value::Bool(false));
            *user = Some(TargetUser { id, attributes, deleted: true, manager: None });
        }
        Ok(found)
    }

    /// The refusals of the anchors among `anchors` the target keeps a tombstone of, by anchor key.
    pub(crate) async fn tombstoned(&self, anchors: &[Anchor]) -> Result<HashMap<String, PeerError>, PeerError> {
        let keys: Vec<String> = anchors.iter().map(Anchor::key).collect();
        let tombstones =
            self.repo.tombstoned(self.tenant, &keys).await.map_err(|err| PeerError::Unavailable(Box::new(err)))?;
        Ok(tombstones.into_iter().map(|(key, tombstone)| (key, refusal(&tombstone.id))).collect())
    }

    /// Refuses to restore a deleted user the target keeps a tombstone of.
    pub(crate) async fn refuse_tombstoned_restore(&self, id: ObjectId) -> Result<(), PeerError> {
        let Ok(tenantsync_model::DirectoryObject::User(user)) =
            self.directory.get_deleted(self.tenant, &id.to_string()).await
        else {
            return Ok(());
        };
        let Some(anchor) = user.anchor() else { return Ok(()) };
        let found = self
            .repo
            .tombstoned(self.tenant, std::slice::from_ref(&anchor))
            .await
            .map_err(|err| PeerError::Unavailable(Box::new(err)))?;
        match found.values().next() {
            Some(tombstone) => Err(refusal(&tombstone.id)),
            None => Ok(()),
        }
    }
}

/// Why a write of a tombstoned user is refused: the target's decision, as a withdrawn consent is.
fn refusal(deleted_id: &str) -> PeerError {
    PeerError::ConsentDenied(format!(
        "the target's administrators deleted this user ({deleted_id}): its tombstone stands, so it is not created or restored again"
    ))
}
