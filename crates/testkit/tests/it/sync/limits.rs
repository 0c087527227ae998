//! Issue 16 in sync: a mapped value past the property table's limit is never written to the target. Entra does not
//! truncate such a value: its provisioning log records the object as failed (the target refused it), and so does
//! tenantsync, naming the property, with the change escrowed and retried once the source is fixed.

use serde_json::{Value, json};
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::configure_sync;

const OVER_LONG_JOB_TITLE: &str =
    "Invalid value specified for property 'jobTitle' of resource 'User': at most 128 characters are allowed.";

#[tokio::test]
async fn an_over_long_mapped_value_fails_the_object_and_is_never_written() {
    let app = TestApp::spawn().await;
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(&app, &source, &target).await;
    // The source may hold a 300-character street address (its limit is 1024); mapped to jobTitle (128), it is too
    // long for the target.
    sync.edit_user_mapping(|mapping| {
        let attributes = mapping["attributeMappings"].as_array_mut().expect("attributeMappings");
        let job_title = attributes
            .iter_mut()
            .find(|attribute| attribute["targetAttributeName"] == "jobTitle")
            .expect("a jobTitle mapping");
        job_title["source"] = json!({"expression": "[streetAddress]", "name": "streetAddress", "type": "Attribute",
                                     "parameters": []});
    })
    .await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({"streetAddress": "x".repeat(300)})).await;
    let bob = sync.source_user("bob", "Bob Builder", json!({"streetAddress": "1 Main Street"})).await;
    sync.assign(&ada).await;
    sync.assign(&bob).await;
    sync.start().await;

    let failed = sync.wait_log(&ada, "create", "failure").await;
    let error = &failed["provisioningStatusInfo"]["errorInformation"];
    assert_eq!(error["reason"], OVER_LONG_JOB_TITLE, "{failed}");
    assert_eq!(error["errorCode"], "UnprocessableEntity", "{failed}");
    let created = sync.wait_b2b_user(&bob, "created beside the failed one", |_| true).await;
    assert_eq!(created["jobTitle"], "1 Main Street");
    assert!(sync.b2b_user_of(&ada).await.is_none(), "nothing of the refused user is written");

    // An update past the limit fails the same way and leaves the target user as it was.
    sync.src.patch(&format!("/v1.0/users/{bob}"), json!({"streetAddress": "y".repeat(129)})).await.assert_status(204);
    let failed = sync.wait_log(&bob, "update", "failure").await;
    assert_eq!(failed["provisioningStatusInfo"]["errorInformation"]["reason"], OVER_LONG_JOB_TITLE, "{failed}");
    let after: Value = sync.b2b_user_of(&bob).await.expect("still there");
    assert_eq!(after["jobTitle"], "1 Main Street", "the target keeps its value");

    // Fixed in the source, the escrowed user goes through.
    sync.src
        .patch(&format!("/v1.0/users/{ada}"), json!({"streetAddress": "10 Downing Street"}))
        .await
        .assert_status(204);
    let created = sync.wait_b2b_user(&ada, "created once the value fits", |_| true).await;
    assert_eq!(created["jobTitle"], "10 Downing Street");
}
