//! Ownership: the engine modifies or deletes only the target users it created or adopted (matched by its own
//! anchor). A member with a look-alike UPN and name, a B2B user of the same person from another source tenant,
//! and a guest already holding the external UPN stay exactly as they were, whatever the mappings say.

use base64::Engine;
use serde_json::{Value, json};
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{SyncSetup, initial_domain};

use super::{entries, setup};

/// A target user as Graph returns it.
async fn target_user(sync: &SyncSetup, id: &str) -> Value {
    let reply = sync.tgt.get(&format!("/v1.0/users/{id}")).await;
    reply.assert_status(200);
    reply.body
}

#[tokio::test]
async fn users_the_job_did_not_create_or_adopt_are_never_touched() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let other_source = app.create_tenant("northwind", &[]).await.id.to_string();
    let source_domain = initial_domain(&sync.source);
    let target_domain = initial_domain(&sync.target);
    let ada = sync.source_user("ada", "Ada Lovelace", json!({"jobTitle": "Analyst", "department": "R&D"})).await;
    let grace = sync.source_user("grace", "Grace Hopper", json!({"jobTitle": "Admiral"})).await;

    // A plain member of the target that looks like Ada.
    let member = sync
        .tgt
        .create_user(json!({
            "accountEnabled": true, "displayName": "Ada Lovelace", "mailNickname": "ada", "jobTitle": "Local",
            "userPrincipalName": format!("ada@{target_domain}"),
            "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "Correct-Horse-42"},
        }))
        .await;
    // A B2B user of "Ada" from another source tenant, with the same source object id.
    let foreign = sync
        .tgt
        .create_user(json!({
            "accountEnabled": true, "displayName": "Ada Lovelace", "mailNickname": "ada_northwind", "jobTitle": "Foreign",
            "userPrincipalName": format!("ada_northwind#EXT#@{target_domain}"),
            "userType": "Member", "creationType": "Invitation", "externalUserState": "Accepted",
            "identities": [{"signInType": "federated", "issuer": other_source, "issuerAssignedId": ada}],
            "alternativeSecurityIds": [{"type": 6, "identityProvider": other_source,
                "key": base64::engine::general_purpose::STANDARD.encode(ada.as_bytes())}],
            "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "Correct-Horse-42"},
        }))
        .await;
    // A guest without the job's anchor that already holds the UPN Grace's B2B user would get.
    let squatter = sync
        .tgt
        .create_user(json!({
            "accountEnabled": true, "displayName": "Grace Hopper", "mailNickname": "grace_squat", "jobTitle": "Squatter",
            "userPrincipalName": format!("grace_{source_domain}#EXT#@{target_domain}"), "userType": "Guest",
            "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "Correct-Horse-42"},
        }))
        .await;
    let untouched = [member.clone(), foreign.clone(), squatter.clone()];
    let mut before = Vec::new();
    for id in &untouched {
        before.push(target_user(&sync, id).await);
    }

    // Mappings that would rewrite these users if the engine matched them.
    sync.edit_user_mapping(|mapping| {
        for attribute in mapping["attributeMappings"].as_array_mut().expect("attributeMappings") {
            if attribute["targetAttributeName"] == "jobTitle" {
                attribute["source"]["expression"] = json!("Join(\"-\", [jobTitle], \"synced\")");
            }
        }
    })
    .await;
    let ada_assignment = sync.assign(&ada).await;
    let grace_assignment = sync.assign(&grace).await;
    sync.start().await;
    let ada_b2b = sync.wait_b2b_user(&ada, "created", |user| user["jobTitle"] == "Analyst-synced").await;
    assert!(!untouched.contains(&ada_b2b["id"].as_str().expect("id").to_owned()), "a new user, not a look-alike");
    // Grace's B2B user cannot be created while the guest holds its UPN; the guest is not taken over.
    let failed = sync.wait_log(&grace, "create", "failure").await;
    assert_eq!(failed["targetIdentity"]["id"], "", "{failed}");

    // Out of scope: only the job's own user is deleted.
    sync.unassign(&ada_assignment).await;
    sync.unassign(&grace_assignment).await;
    sync.wait_b2b_deleted(&ada).await;
    sync.wait_log(&ada, "delete", "success").await;
    let dry_run = sync.plan().await;
    assert!(
        dry_run.iter().all(|row| !untouched.contains(&row["targetIdentity"]["id"].as_str().unwrap_or("").to_owned())),
        "{dry_run:?}"
    );
    assert!(entries(&sync, &grace, "delete").await.is_empty());
    for (id, before) in untouched.iter().zip(&before) {
        assert_eq!(&target_user(&sync, id).await, before, "{id} is unchanged");
    }
    let deleted = sync.tgt.get_all("/v1.0/directory/deletedItems/microsoft.graph.user?$top=999", &[]).await.0;
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["id"], ada_b2b["id"]);
}
