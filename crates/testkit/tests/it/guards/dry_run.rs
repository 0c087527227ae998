//! The dry run, `POST …/jobs/{id}/plan`: its JSON (guards with verdicts), paging with `$top` and
//! `@odata.nextLink`, CSV with `Accept: text/csv`; it writes nothing, and the next full run (a restart) performs
//! exactly the actions it lists, reference resolution of managers aside.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{SyncSetup, wait_for};

use super::setup;

/// (source id, action) of a dry-run row or a log entry.
fn pair(value: &Value, action: &str) -> (String, String) {
    (
        value["sourceIdentity"]["id"].as_str().expect("sourceIdentity.id").to_owned(),
        value[action].as_str().expect("action").to_owned(),
    )
}

/// A paused job with every action ahead of it: (setup, ids by what the next run does with them).
struct Scenario {
    sync: SyncSetup,
    create: String,
    update: String,
    disable: String,
    delete: String,
    skip: String,
    skip_disabled: String,
}

async fn scenario(app: &TestApp) -> Scenario {
    let sync = setup(app).await;
    let boss = sync.source_user("boss", "Boss", json!({"jobTitle": "Boss"})).await;
    let update = sync.source_user("upd", "To Update", json!({"jobTitle": "Analyst"})).await;
    let disable = sync.source_user("dis", "To Disable", json!({"jobTitle": "Analyst"})).await;
    let delete = sync.source_user("del", "To Delete", json!({"jobTitle": "Analyst"})).await;
    let create = sync.source_user("new", "To Create", json!({"jobTitle": "Analyst"})).await;
    let skip_disabled = sync.source_user("off", "Disabled Newcomer", json!({"accountEnabled": false})).await;
    let _never = sync.source_user("never", "Never Assigned", json!({})).await;
    sync.assign(&boss).await;
    sync.assign(&update).await;
    sync.assign(&disable).await;
    let delete_assignment = sync.assign(&delete).await;
    sync.start().await;
    for id in [&boss, &update, &disable, &delete] {
        sync.wait_b2b_user(id, "created", |_| true).await;
    }
    sync.settle(&boss).await;
    sync.pause().await;
    sync.src.patch(&format!("/v1.0/users/{update}"), json!({"jobTitle": "Countess"})).await.assert_status(204);
    sync.src.patch(&format!("/v1.0/users/{disable}"), json!({"accountEnabled": false})).await.assert_status(204);
    sync.unassign(&delete_assignment).await;
    // The newcomer reports to the boss: the run also sets her manager (reference resolution, not predicted).
    sync.src
        .put(
            &format!("/v1.0/users/{create}/manager/$ref"),
            tenantsync_testkit::fixtures::reference(app.base_url(), &boss),
        )
        .await
        .assert_status(204);
    sync.assign(&create).await;
    sync.assign(&skip_disabled).await;
    Scenario { sync, create, update, disable, delete, skip: boss, skip_disabled }
}

#[tokio::test]
async fn dry_run_lists_exactly_what_the_next_full_run_does() {
    let app = TestApp::spawn().await;
    let s = scenario(&app).await;
    let sync = &s.sync;
    let users_before = sync.target_users().await;
    let logs_before = sync.logs().await;

    let rows = sync.plan().await;
    let planned: BTreeSet<(String, String)> = rows.iter().map(|row| pair(row, "action")).collect();
    let expected: BTreeSet<(String, String)> = [
        (&s.create, "create"),
        (&s.update, "update"),
        (&s.disable, "disable"),
        (&s.delete, "delete"),
        (&s.skip, "other"),
        (&s.skip_disabled, "other"),
    ]
    .into_iter()
    .map(|(id, action)| (id.clone(), action.to_owned()))
    .collect();
    assert_eq!(planned, expected, "{rows:#?}");
    assert_eq!(rows.len(), expected.len(), "one row per user");
    // Nothing was written.
    assert_eq!(sync.target_users().await, users_before);
    assert_eq!(sync.logs().await.len(), logs_before.len());

    // The next full run.
    let cycles_before: BTreeSet<String> =
        logs_before.iter().map(|entry| entry["cycleId"].as_str().expect("cycleId").to_owned()).collect();
    sync.restart("Watermark").await;
    let cycle = wait_for("the restart's cycle", || async {
        sync.logs_for(&s.create)
            .await
            .into_iter()
            .find(|entry| entry["provisioningAction"] == "create")
            .and_then(|entry| entry["cycleId"].as_str().map(str::to_owned))
            .filter(|cycle| !cycles_before.contains(cycle))
    })
    .await;
    wait_for("the restart's cycle to end", || async {
        (sync.job().await["status"]["lastExecution"]["activityIdentifier"] == cycle.as_str()).then_some(())
    })
    .await;
    let run: Vec<Value> = sync.logs().await.into_iter().filter(|entry| entry["cycleId"] == cycle.as_str()).collect();
    let references = |entry: &Value| {
        entry["provisioningSteps"]
            .as_array()
            .is_some_and(|steps| steps.iter().any(|step| step["provisioningStepType"] == "referenceResolution"))
    };
    assert!(run.iter().any(references), "the run set the newcomer's manager: {run:#?}");
    let performed: BTreeSet<(String, String)> =
        run.iter().filter(|entry| !references(entry)).map(|entry| pair(entry, "provisioningAction")).collect();
    assert_eq!(performed, planned, "{run:#?}");
}

#[tokio::test]
async fn dry_run_shape_paging_and_csv() {
    let app = TestApp::spawn().await;
    let s = scenario(&app).await;
    let sync = &s.sync;

    let first = sync.src.post_empty(&sync.job_path("/plan")).await;
    first.assert_status(200);
    let all = sync.plan().await;
    assert_eq!(first.values(), &all, "six rows fit the default page");
    let update = all.iter().find(|row| row["sourceIdentity"]["id"] == s.update.as_str()).expect("the update row");
    let b2b = sync.b2b_user_of(&s.update).await.expect("synced");
    assert_eq!(
        update,
        &json!({
            "sourceIdentity": {"id": s.update, "displayName": "To Update", "identityType": "User"},
            "targetIdentity": {"id": b2b["id"], "identityType": "User"},
            "action": "update",
            "modifiedProperties": [{"displayName": "jobTitle", "oldValue": "Analyst", "newValue": "Countess"}],
            "reason": "Attributes changed in the source",
            "guards": [
                {"name": "Ownership", "verdict": "pass"},
                {"name": "SourceReadIntegrity", "verdict": "pass"},
                {"name": "DeletionThreshold", "verdict": "pass"},
            ],
        })
    );
    let create = all.iter().find(|row| row["sourceIdentity"]["id"] == s.create.as_str()).expect("the create row");
    assert_eq!(create["targetIdentity"]["id"], Value::Null);

    // Paging: $top=4 gives 4 rows and a link to the other 2.
    let page = sync.src.post_empty(&sync.job_path("/plan?$top=4")).await;
    page.assert_status(200);
    assert_eq!(page.values().len(), 4);
    let next = page.body["@odata.nextLink"].as_str().expect("@odata.nextLink").to_owned();
    assert!(next.contains("$top=4"), "{next}");
    let rest = sync.src.post_empty(&next).await;
    rest.assert_status(200);
    assert_eq!(rest.values().len(), 2);
    assert!(rest.body.get("@odata.nextLink").is_none());
    let paged: Vec<Value> = page.values().iter().chain(rest.values()).cloned().collect();
    assert_eq!(paged, all);
    sync.src.post_empty(&sync.job_path("/plan?$top=0")).await.assert_error(400, "Request_BadRequest");

    // CSV.
    let csv = sync.src.send(reqwest::Method::POST, &sync.job_path("/plan"), None, &[("Accept", "text/csv")]).await;
    csv.assert_status(200);
    assert!(csv.header("content-type").is_some_and(|kind| kind.starts_with("text/csv")), "{:?}", csv.headers);
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "sourceId,sourceDisplayName,targetId,action,modifiedProperties,reason,guards");
    assert_eq!(lines.len(), 1 + all.len(), "{}", csv.text);
    let update_line = lines.iter().find(|line| line.starts_with(s.update.as_str())).expect("the update line");
    assert!(update_line.contains(",update,jobTitle: Analyst -> Countess,"), "{update_line}");
    assert!(update_line.ends_with("Ownership=pass; SourceReadIntegrity=pass; DeletionThreshold=pass"), "{update_line}");
}
