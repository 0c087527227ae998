//! `provisionOnDemand`: the step trace of one user (import, scoping with each clause's result in
//! `ScopeEvaluationResult`, matching, action) and its modified properties, for a create, an update and a skip.

use serde_json::{Value, json};
use tenantsync_testkit::Reply;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::configure_sync;

/// The `key` and `value` documents of a `provisionOnDemand` answer.
fn decode(reply: &Reply) -> (Value, Value) {
    reply.assert_status(200);
    let key = serde_json::from_str(reply.body["key"].as_str().expect("key")).expect("key is JSON");
    let value = serde_json::from_str(reply.body["value"].as_str().expect("value")).expect("value is JSON");
    (key, value)
}

fn steps(value: &Value) -> Vec<(String, String, String)> {
    value["provisioningSteps"]
        .as_array()
        .expect("provisioningSteps")
        .iter()
        .map(|step| {
            (
                step["name"].as_str().unwrap_or_default().to_owned(),
                step["provisioningStepType"].as_str().unwrap_or_default().to_owned(),
                step["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn step<'a>(value: &'a Value, kind: &str) -> &'a Value {
    value["provisioningSteps"]
        .as_array()
        .expect("provisioningSteps")
        .iter()
        .find(|step| step["provisioningStepType"] == kind)
        .unwrap_or_else(|| panic!("no {kind} step in {value}"))
}

fn owned(triples: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    triples.iter().map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned())).collect()
}

#[tokio::test]
async fn provision_on_demand_returns_the_step_trace() {
    let app = TestApp::spawn().await;
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(&app, &source, &target).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({"department": "R&D", "jobTitle": "Analyst"})).await;
    let bob = sync.source_user("bob", "Bob Sales", json!({"department": "Sales", "jobTitle": "Seller"})).await;
    sync.assign(&ada).await;
    sync.assign(&bob).await;
    sync.edit_user_mapping(|mapping| {
        mapping["scope"] = json!({"groups": [{"name": "Engineers", "clauses": [
            {"operatorName": "EQUALS", "sourceOperandName": "department", "targetOperand": {"values": ["R&D"]}},
            {"operatorName": "REGEX MATCH", "sourceOperandName": "jobTitle", "targetOperand": {"values": ["^Ana"]}},
        ]}]});
    })
    .await;

    // Create.
    let (key, value) = decode(&sync.provision_on_demand(&ada).await);
    assert_eq!(key, json!({"result": "Success", "details": {"errorCode": null, "errorMessage": null}}));
    assert_eq!(value["action"], "Create");
    assert_eq!(
        steps(&value),
        owned(&[
            ("EntryImport", "import", "success"),
            ("EntrySynchronizationScoping", "scoping", "success"),
            ("EntrySynchronizationMatch", "matching", "success"),
            ("EntrySynchronizationAdd", "processing", "success"),
        ])
    );
    assert_eq!(step(&value, "import")["details"]["department"], "R&D");
    let scoping = &step(&value, "scoping")["details"];
    assert_eq!(
        scoping["ScopeEvaluationResult"],
        json!({"Engineers.department EQUALS 'R&D'": true, "Engineers.jobTitle REGEX MATCH '^Ana'": true})
    );
    assert_eq!(scoping["Scoping filter evaluation passed"], true);
    assert_eq!(scoping["Assigned to the application"], true);
    assert_eq!(scoping["Active in the source system"], true);
    let modified = value["modifiedProperties"].as_array().expect("modifiedProperties");
    assert!(
        modified.contains(&json!({"displayName": "jobTitle", "oldValue": null, "newValue": "Analyst"})),
        "{modified:?}"
    );
    assert!(
        modified.contains(&json!({"displayName": "userType", "oldValue": null, "newValue": "Member"})),
        "{modified:?}"
    );
    let b2b = sync.b2b_user_of(&ada).await.expect("created on demand");
    assert_eq!(value["targetIdentity"]["id"], b2b["id"]);
    assert_eq!(value["sourceIdentity"]["id"], ada.as_str());

    // Update: only what changed.
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Analyst II"})).await.assert_status(204);
    let (key, value) = decode(&sync.provision_on_demand(&ada).await);
    assert_eq!(key["result"], "Success");
    assert_eq!(value["action"], "Update");
    assert_eq!(
        value["modifiedProperties"],
        json!([{"displayName": "jobTitle", "oldValue": "Analyst", "newValue": "Analyst II"}])
    );
    assert_eq!(step(&value, "matching")["description"].as_str().map(|text| text.contains("linked")), Some(true));

    // Nothing to do.
    let (key, value) = decode(&sync.provision_on_demand(&ada).await);
    assert_eq!(key["result"], "Skipped");
    assert_eq!(value["action"], "Other");
    assert_eq!(value["modifiedProperties"], json!([]));
    assert_eq!(step(&value, "processing")["status"], "skipped");

    // Out of scope by the filter: each clause's verdict.
    let (key, value) = decode(&sync.provision_on_demand(&bob).await);
    assert_eq!(key["result"], "Skipped");
    let scoping = &step(&value, "scoping")["details"];
    assert_eq!(
        scoping["ScopeEvaluationResult"],
        json!({"Engineers.department EQUALS 'R&D'": false, "Engineers.jobTitle REGEX MATCH '^Ana'": false})
    );
    assert_eq!(scoping["Scoping filter evaluation passed"], false);
    assert!(sync.b2b_user_of(&bob).await.is_none());

    // The job is still disabled: on-demand runs anyway, and leaves a log entry per call.
    assert_eq!(sync.job().await["schedule"]["state"], "Disabled");
    let creates = sync.logs_for(&ada).await.into_iter().filter(|entry| entry["provisioningAction"] == "create").count();
    assert_eq!(creates, 1);
}

#[tokio::test]
async fn provision_on_demand_refuses_bad_subjects() {
    let app = TestApp::spawn().await;
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(&app, &source, &target).await;
    let group = sync.src.create_group("Team").await;
    let reply = sync
        .src
        .post(
            &sync.job_path("/provisionOnDemand"),
            json!({"parameters": [{"ruleId": sync.rule_id, "subjects": [{"objectId": group, "objectTypeName": "Device"}]}]}),
        )
        .await;
    reply.assert_status(400);
    // Groups on demand are supported (issue 11; Entra refuses them): with the group mapping disabled, the group is
    // skipped as Entra logs it.
    let reply = sync
        .src
        .post(
            &sync.job_path("/provisionOnDemand"),
            json!({"parameters": [{"ruleId": sync.rule_id, "subjects": [{"objectId": group, "objectTypeName": "Group"}]}]}),
        )
        .await;
    reply.assert_status(200);
    let details: serde_json::Value = serde_json::from_str(reply.body["value"].as_str().expect("value")).expect("JSON");
    assert_eq!(details["statusInfo"]["status"], "Skipped");
    assert!(
        details["statusInfo"]["additionalDetails"]
            .as_str()
            .is_some_and(|text| text.starts_with("EntityTypeNotSupported"))
    );
    let reply = sync
        .src
        .post(
            &sync.job_path("/provisionOnDemand"),
            json!({"parameters": [{"ruleId": "not-the-rule", "subjects": [{"objectId": group, "objectTypeName": "User"}]}]}),
        )
        .await;
    reply.assert_status(400);
    sync.provision_on_demand("00000000-0000-0000-0000-00000000beef").await.assert_status(404);
}
