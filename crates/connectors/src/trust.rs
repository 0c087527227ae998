//! What a target hosted here decided about the users a partner syncs into it, as `LocalTarget` applies it: a
//! tombstoned anchor (a synced user the target's administrators deleted) is seen as that deleted user, so the
//! engine never creates it again; the partner's kill switch refuses writes like a withdrawn consent (checked with
//! the consent, in `LocalTarget::check_consent`).

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
}
