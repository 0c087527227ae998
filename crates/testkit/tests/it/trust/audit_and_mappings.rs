//! What had no test before issue 13: the directory audit of a configuration made through the Graph API (each step
//! in the tenant that made it, with Entra's activity names and categories, and in the target every write sync made
//! there, naming the source tenant and the job), and `defaultValue` in attribute mappings (written on create when
//! the source has no value, never on update).

use serde_json::{Value, json};
use tenantsync_testkit::TestApp;

use super::setup;

/// The audit entries of a tenant.
async fn audit_trail(client: &tenantsync_testkit::ApiClient) -> Vec<Value> {
    client.get_all("/v1.0/auditLogs/directoryAudits", &[]).await.0
}

#[tokio::test]
async fn directory_audits_record_each_configuration_step_and_each_inbound_write() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({"jobTitle": "Analyst"})).await;
    sync.assign(&ada).await;
    sync.start().await;
    let b2b = sync.wait_b2b_user(&ada, "created", |_| true).await;
    sync.edit_user_mapping(|_| {}).await;
    sync.pause().await;
    sync.restart("").await;

    let source = audit_trail(&sync.src).await;
    let activities: Vec<&str> = source.iter().filter_map(|entry| entry["activityDisplayName"].as_str()).collect();
    let expected = [
        "Add a partner to cross-tenant access setting",
        "Update a partner cross-tenant access setting",
        "Add service principal",
        "Add synchronization job",
        "Update provisioning setting or credentials",
        "Add app role assignment grant to user",
        "Enable/start provisioning configuration",
        "Update attribute mappings or scope",
        "Disable/pause provisioning configuration",
        "Enable/restart provisioning configuration",
    ];
    // The manual clock does not move, so entries of one instant have no order among them: each appears once.
    for activity in expected {
        let n_seen = activities.iter().filter(|seen| **seen == activity).count();
        assert_eq!(n_seen, 1, "'{activity}' in {activities:?}");
    }
    assert_eq!(activities.len(), expected.len(), "{activities:?}");
    for entry in &source {
        let category = entry["category"].as_str().expect("category");
        let expected_category = match entry["targetResources"][0]["type"].as_str() {
            Some("Policy") => "CrossTenantAccessSettings",
            _ => "ProvisioningManagement",
        };
        assert_eq!(category, expected_category, "{entry}");
        assert_eq!(entry["initiatedBy"]["app"]["appId"], sync.source.client_id.to_string());
        assert_eq!(entry["result"], "success");
        assert!(entry["activityDateTime"].as_str().is_some_and(|at| at.ends_with('Z')), "{entry}");
    }
    let job_entry = source.iter().find(|entry| entry["activityDisplayName"] == "Add synchronization job").expect("job");
    assert_eq!(job_entry["targetResources"][0]["id"], sync.job_id.as_str());
    assert_eq!(job_entry["targetResources"][0]["type"], "SynchronizationJob");

    // In the target: its consent (identity sync settings apart) and the user sync wrote, naming source and job.
    let target = audit_trail(&sync.tgt).await;
    let sync_setting = target
        .iter()
        .find(|entry| entry["activityDisplayName"] == "Update a partner cross-tenant identity sync setting")
        .expect("the inbound sync policy");
    assert_eq!(sync_setting["category"], "CrossTenantIdentitySyncSettings");
    assert_eq!(sync_setting["targetResources"][0]["id"], sync.source.id.to_string());
    let added = target.iter().find(|entry| entry["activityDisplayName"] == "Add user").expect("the inbound write");
    assert_eq!(added["category"], "UserManagement");
    assert_eq!(added["targetResources"][0]["id"], b2b["id"]);
    let details = added["additionalDetails"].to_string();
    assert!(details.contains(&sync.source.id.to_string()) && details.contains(&sync.job_id), "{details}");
    // $filter on the category picks the identity sync settings out.
    let (filtered, _) = sync
        .tgt
        .get_all("/v1.0/auditLogs/directoryAudits?$filter=category eq 'CrossTenantIdentitySyncSettings'", &[])
        .await;
    assert!(!filtered.is_empty());
    assert!(filtered.iter().all(|entry| entry["category"] == "CrossTenantIdentitySyncSettings"));
}

#[tokio::test]
async fn default_value_is_written_on_create_only_when_the_source_has_none() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    sync.edit_user_mapping(|mapping| {
        let attributes = mapping["attributeMappings"].as_array_mut().expect("attributeMappings");
        let department = attributes
            .iter_mut()
            .find(|attribute| attribute["targetAttributeName"] == "department")
            .expect("a department mapping");
        department["defaultValue"] = json!("Unassigned");
    })
    .await;
    let ada = sync.source_user("ada", "Ada", json!({})).await;
    let bob = sync.source_user("bob", "Bob", json!({"department": "R&D"})).await;
    sync.assign(&ada).await;
    sync.assign(&bob).await;
    sync.start().await;
    let ada_b2b = sync.wait_b2b_user(&ada, "created", |_| true).await;
    let bob_b2b = sync.wait_b2b_user(&bob, "created", |_| true).await;
    assert_eq!(ada_b2b["department"], "Unassigned", "no source value: the default");
    assert_eq!(bob_b2b["department"], "R&D", "a source value wins over the default");

    // On update the default is never written: a department that goes away in the source is not replaced by it.
    sync.src
        .patch(&format!("/v1.0/users/{bob}"), json!({"department": null, "jobTitle": "Lead"}))
        .await
        .assert_status(204);
    let updated = sync.wait_b2b_user(&bob, "the new title", |user| user["jobTitle"] == "Lead").await;
    assert_eq!(updated["department"], "R&D");
    let update = sync.wait_log(&bob, "update", "success").await;
    assert!(!update["modifiedProperties"].to_string().contains("Unassigned"), "{update}");
}
