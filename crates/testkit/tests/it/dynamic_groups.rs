//! Dynamic membership groups through the real server, on SQLite and (when `TENANTSYNC_TEST_POSTGRES_URL` is set)
//! PostgreSQL: Entra's documented rule examples give the documented members; user writes move members in the same
//! request; a new, edited or resumed rule is evaluated in the background with its processing status; invalid
//! rules, device rules and manual membership changes are Graph 400s; computed members show wherever members do.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantsync_testkit::postgres::PgTestDatabase;
use tenantsync_testkit::{ApiClient, TestApp, fixtures};

/// Runs `scenario` on SQLite, and on a fresh PostgreSQL database when one is configured.
macro_rules! on_both_backends {
    ($scenario:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            let app = TestApp::spawn().await;
            $scenario(&app).await;
            app.shutdown().await;
        }

        #[tokio::test]
        async fn $postgres() {
            let Some(database) = PgTestDatabase::create(stringify!($postgres)).await else { return };
            let app = TestApp::spawn_on(database.store().await).await;
            $scenario(&app).await;
            app.shutdown().await;
        }
    };
}

on_both_backends!(documented_examples, documented_examples_on_sqlite, documented_examples_on_postgres);
on_both_backends!(user_writes_move_members, user_writes_move_members_on_sqlite, user_writes_move_members_on_postgres);
on_both_backends!(
    concurrent_writes_move_members,
    concurrent_writes_move_members_on_sqlite,
    concurrent_writes_move_members_on_postgres
);
on_both_backends!(bad_requests, bad_requests_on_sqlite, bad_requests_on_postgres);
on_both_backends!(rule_edits_and_pauses, rule_edits_and_pauses_on_sqlite, rule_edits_and_pauses_on_postgres);
on_both_backends!(members_show_everywhere, members_show_everywhere_on_sqlite, members_show_everywhere_on_postgres);
on_both_backends!(
    writes_during_an_evaluation_end_right,
    writes_during_an_evaluation_end_right_on_sqlite,
    writes_during_an_evaluation_end_right_on_postgres
);

async fn contoso(app: &TestApp) -> ApiClient {
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    app.as_tenant(&tenant).await
}

fn dynamic_group(display_name: &str, rule: &str) -> Value {
    let mut body = fixtures::group(display_name);
    body["groupTypes"] = json!(["DynamicMembership"]);
    body["membershipRule"] = json!(rule);
    body["membershipRuleProcessingState"] = json!("On");
    body
}

/// Creates a dynamic group and waits until its first evaluation succeeded; returns its id.
async fn create_dynamic(graph: &ApiClient, display_name: &str, rule: &str) -> String {
    let created = graph.post("/v1.0/groups", dynamic_group(display_name, rule)).await;
    created.assert_status(201);
    let id = created.id();
    wait_succeeded(graph, &id).await;
    id
}

/// Polls the group until its `membershipRuleProcessingStatus.status` is `Succeeded` and returns the group.
async fn wait_succeeded(graph: &ApiClient, group: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = graph.get(&format!("/v1.0/groups/{group}")).await;
        reply.assert_status(200);
        let status = reply.body["membershipRuleProcessingStatus"]["status"].as_str().unwrap_or_default().to_owned();
        assert!(["NotStarted", "Running", "Succeeded"].contains(&status.as_str()), "{}", reply.text);
        if status == "Succeeded" {
            return reply.body;
        }
        assert!(Instant::now() < deadline, "the evaluation of {group} did not finish: {}", reply.text);
        tokio::task::yield_now().await;
    }
}

async fn member_ids(graph: &ApiClient, group: &str) -> BTreeSet<String> {
    let reply = graph.get(&format!("/v1.0/groups/{group}/members")).await;
    reply.assert_status(200);
    reply.field_of_values("id").into_iter().collect()
}

async fn group_ids_of(graph: &ApiClient, user: &str) -> BTreeSet<String> {
    let reply = graph.get(&format!("/v1.0/users/{user}/memberOf")).await;
    reply.assert_status(200);
    reply.field_of_values("id").into_iter().collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).clone()).collect()
}

async fn user(graph: &ApiClient, local: &str, properties: Value) -> String {
    let mut body = fixtures::user(&format!("{local}@contoso.com"), local);
    if let (Value::Object(body), Value::Object(properties)) = (&mut body, properties) {
        body.extend(properties);
    }
    graph.create_user(body).await
}

/// Entra's documented examples (shared/reference/expressions.md Part 3) over a real directory.
async fn documented_examples(app: &TestApp) {
    let graph = contoso(app).await;
    let ada = user(
        &graph,
        "ada",
        json!({"department": "Sales", "jobTitle": "Manager", "country": "US",
                                        "mail": "ada@contoso.com"}),
    )
    .await;
    let bob = user(&graph, "bob", json!({"department": "sales", "jobTitle": "SDE II", "country": "US"})).await;
    let cy = user(&graph, "cy", json!({"department": "Marketing", "country": "US"})).await;
    let dee = user(&graph, "dee", json!({"department": "Marketing", "country": "DE"})).await;
    let dav = user(&graph, "dav", json!({"department": "David", "country": "US"})).await;
    let ada2 = user(&graph, "ada2", json!({"department": "aDa"})).await;
    let gus = user(&graph, "gus", json!({"department": "Sales", "country": "US", "userType": "Guest"})).await;
    for report in [&bob, &cy] {
        let body = fixtures::reference(app.base_url(), &ada);
        graph.put(&format!("/v1.0/users/{report}/manager/$ref"), body).await.assert_status(204);
    }
    let everyone = set(&[&ada, &bob, &cy, &dee, &dav, &ada2, &gus]);
    let members_only: BTreeSet<String> = everyone.iter().filter(|id| **id != gus).cloned().collect();
    let examples: Vec<(&str, String, BTreeSet<String>)> = vec![
        // Rules with multiple expressions (DM#rules-with-multiple-expressions).
        (
            "multiple",
            r#"(user.department -eq "Sales") -and -not (user.jobTitle -startsWith "SDE")"#.to_owned(),
            set(&[&ada, &gus]),
        ),
        // Operator precedence, with the en dashes the documentation prints (DM#operator-precedence).
        (
            "precedence",
            "user.country –eq \"US\" –and (user.department –eq \"Marketing\" –or user.department –eq \"Sales\")"
                .to_owned(),
            set(&[&ada, &bob, &cy, &gus]),
        ),
        ("all users", "user.objectId -ne null".to_owned(), everyone.clone()),
        ("members only", r#"(user.objectId -ne null) -and (user.userType -eq "Member")"#.to_owned(), members_only),
        ("direct reports", format!(r#"Direct Reports for "{ada}""#), set(&[&bob, &cy])),
        // -match is an unanchored, case-insensitive .NET regex: ^Da.* matches David, not aDa.
        ("match", r#"user.department -match "^Da.*""#.to_owned(), set(&[&dav])),
        ("in", r#"user.department -in ["Marketing","David"]"#.to_owned(), set(&[&cy, &dee, &dav])),
        ("null", "user.mail –ne null".to_owned(), set(&[&ada])),
        // DM example 3: -all over an empty collection is true (users without plans).
        ("all", "user.assignedPlans -all (assignedPlan.servicePlanId -eq null)".to_owned(), everyone.clone()),
    ];
    for (name, rule, expected) in &examples {
        let group = create_dynamic(&graph, name, rule).await;
        assert_eq!(&member_ids(&graph, &group).await, expected, "{name}: {rule}");
        let read = graph.get(&format!("/v1.0/groups/{group}")).await;
        assert_eq!(read.body["membershipRule"], json!(rule));
        assert_eq!(read.body["groupTypes"], json!(["DynamicMembership"]));
        assert_eq!(read.body["membershipRuleProcessingState"], "On");
        let status = &read.body["membershipRuleProcessingStatus"];
        assert_eq!(status["status"], "Succeeded", "{}", read.text);
        assert_eq!(status["lastMembershipUpdated"], "2030-01-01T09:00:00Z", "the test clock's time");
        assert_eq!(status["errorMessage"], Value::Null);
    }
}

/// Create, change (enter and leave), disable, delete, restore and manager changes move members within the
/// user's own request: the next GET sees them, with no evaluation in between.
async fn user_writes_move_members(app: &TestApp) {
    let graph = contoso(app).await;
    let sales = create_dynamic(&graph, "Sales", r#"user.department -eq "Sales""#).await;
    let enabled_sales =
        create_dynamic(&graph, "Enabled sales", r#"user.accountEnabled -eq true -and user.department -eq "Sales""#)
            .await;
    let titles = create_dynamic(&graph, "Titles", r#"user.jobTitle -startsWith "Lead""#).await;

    let ada = user(&graph, "ada", json!({"department": "Sales"})).await;
    assert_eq!(group_ids_of(&graph, &ada).await, set(&[&sales, &enabled_sales]), "a new user enters at once");

    let path = format!("/v1.0/users/{ada}");
    graph.patch(&path, json!({"department": "Marketing"})).await.assert_status(204);
    assert!(group_ids_of(&graph, &ada).await.is_empty(), "leaves when the department changes");
    graph.patch(&path, json!({"department": "SALES", "jobTitle": "Lead engineer"})).await.assert_status(204);
    assert_eq!(group_ids_of(&graph, &ada).await, set(&[&sales, &enabled_sales, &titles]), "enters again");

    graph.patch(&path, json!({"accountEnabled": false})).await.assert_status(204);
    assert_eq!(
        group_ids_of(&graph, &ada).await,
        set(&[&sales, &titles]),
        "a disabled user is still evaluated: accountEnabled is a property like any other"
    );
    graph.patch(&path, json!({"accountEnabled": true})).await.assert_status(204);

    graph.delete(&path).await.assert_status(204);
    assert!(member_ids(&graph, &sales).await.is_empty(), "a deleted user is no member");
    graph.post_empty(&format!("/v1.0/directory/deletedItems/{ada}/restore")).await.assert_status(200);
    assert_eq!(group_ids_of(&graph, &ada).await, set(&[&sales, &enabled_sales, &titles]), "restore re-evaluates");

    // SCIM writes go through the same directory functions.
    let scim_patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Engineer"}],
    });
    graph.patch(&format!("/scim/v2/Users/{ada}"), scim_patch).await.assert_status(200);
    assert_eq!(group_ids_of(&graph, &ada).await, set(&[&sales, &enabled_sales]), "SCIM PATCH moves members too");

    // Direct reports follow manager changes.
    let boss = user(&graph, "boss", json!({})).await;
    let reports = create_dynamic(&graph, "Reports", &format!(r#"Direct Reports for "{boss}""#)).await;
    let manager_path = format!("/v1.0/users/{ada}/manager/$ref");
    graph.put(&manager_path, fixtures::reference(app.base_url(), &boss)).await.assert_status(204);
    assert_eq!(member_ids(&graph, &reports).await, set(&[&ada]));
    graph.delete(&manager_path).await.assert_status(204);
    assert!(member_ids(&graph, &reports).await.is_empty());
}

/// Concurrent writes of one tenant share commits (group commit) and each still moves its user's memberships:
/// PATCHes by id and by userPrincipalName, SCIM patches and creates, a user changed twice in one burst, all at once;
/// afterwards the group holds exactly the users whose last write put them in.
async fn concurrent_writes_move_members(app: &TestApp) {
    let graph = contoso(app).await;
    let sales = create_dynamic(&graph, "Sales", r#"user.department -eq "Sales""#).await;
    let leads = create_dynamic(&graph, "Leads", r#"user.jobTitle -startsWith "Lead""#).await;
    let mut ids = Vec::new();
    for idx in 0..12 {
        let department = if idx % 2 == 0 { "Sales" } else { "Marketing" };
        ids.push(user(&graph, &format!("burst{idx}"), json!({"department": department})).await);
    }
    for round in 0..3 {
        let mut writes = tokio::task::JoinSet::new();
        for (idx, id) in ids.iter().enumerate() {
            let graph = graph.clone();
            let in_sales = (idx + round) % 3 == 0;
            let department = if in_sales { "Sales" } else { "Marketing" };
            let (path, id) = match idx % 3 {
                0 => (format!("/v1.0/users/{id}"), id.clone()),
                1 => (format!("/v1.0/users/burst{idx}@contoso.com"), id.clone()),
                _ => (format!("/scim/v2/Users/{id}"), id.clone()),
            };
            writes.spawn(async move {
                let status = if path.starts_with("/scim") {
                    let patch = json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": department}],
                    });
                    graph.patch(&path, patch).await.status
                } else {
                    graph.patch(&path, json!({"department": department})).await.status
                };
                (id, status)
            });
        }
        // One user changed twice in the burst: a title that makes them a lead, then the same title again with an
        // office (the second sees the first).
        for office in ["North", "South"] {
            let (graph, path) = (graph.clone(), format!("/v1.0/users/{}", ids[0]));
            writes.spawn(async move {
                let status = graph
                    .patch(&path, json!({"jobTitle": format!("Lead {round}"), "officeLocation": office}))
                    .await
                    .status;
                (format!("title {office}"), status)
            });
        }
        // A create joins the burst and enters the group at once.
        let created = {
            let graph = graph.clone();
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "userName": format!("new{round}@contoso.com"), "active": true,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"},
            });
            tokio::spawn(async move { graph.post("/scim/v2/Users", body).await })
        };
        while let Some(answer) = writes.join_next().await {
            let (label, status) = answer.expect("the write task ends");
            assert!(status == 204 || status == 200, "round {round}: {label} answered {status}");
        }
        let created = created.await.expect("the create task ends");
        created.assert_status(201);
        let new_id = created.body["id"].as_str().expect("the created user has an id").to_owned();

        let mut expected: BTreeSet<String> =
            ids.iter().enumerate().filter(|(idx, _)| (idx + round) % 3 == 0).map(|(_, id)| id.clone()).collect();
        expected.insert(new_id.clone());
        for earlier in 0..round {
            let earlier_user = graph.get(&format!("/v1.0/users/new{earlier}@contoso.com")).await;
            expected.insert(earlier_user.body["id"].as_str().expect("an earlier create").to_owned());
        }
        assert_eq!(member_ids(&graph, &sales).await, expected, "round {round}: Sales follows the last writes");
        assert_eq!(
            member_ids(&graph, &leads).await,
            set(&[&ids[0]]),
            "round {round}: the twice-changed user is a lead"
        );
        let first = graph.get(&format!("/v1.0/users/{}", ids[0])).await;
        assert_eq!(first.body["jobTitle"], format!("Lead {round}"));
        assert!(["North", "South"].contains(&first.body["officeLocation"].as_str().unwrap_or_default()));
    }
}

/// Graph 400s, and nothing half-written behind them.
async fn bad_requests(app: &TestApp) {
    let graph = contoso(app).await;
    let invalid = graph.post("/v1.0/groups", dynamic_group("Bad", r#"(user.invalidProperty -eq "Value")"#)).await;
    invalid.assert_error(400, "Request_BadRequest");
    assert_eq!(
        invalid.body["error"]["message"],
        "Error: Attribute not supported. (unknown property 'user.invalidProperty' at 1:2)",
        "the message `tenantsync rule test` gives"
    );
    let operator = graph.post("/v1.0/groups", dynamic_group("Bad", "(user.accountEnabled -contains true)")).await;
    operator.assert_error(400, "Request_BadRequest");
    assert_eq!(
        operator.body["error"]["message"],
        "Error: Operator is not supported on attribute. (-contains is not supported on 'user.accountEnabled' at 1:22)"
    );
    let device = graph
        .post("/v1.0/groups", dynamic_group("Devices", r#"device.devicePhysicalIDs -any _ -startsWith "[ZTDId]""#))
        .await;
    device.assert_error(400, "Request_BadRequest");
    assert!(device.body["error"]["message"].as_str().unwrap_or_default().contains("Device rules"), "{}", device.text);

    let mut no_rule = fixtures::group("No rule");
    no_rule["groupTypes"] = json!(["DynamicMembership"]);
    graph.post("/v1.0/groups", no_rule).await.assert_error(400, "Request_BadRequest");
    let mut rule_only = fixtures::group("Rule only");
    rule_only["membershipRule"] = json!("user.objectId -ne null");
    graph.post("/v1.0/groups", rule_only).await.assert_error(400, "Request_BadRequest");
    let mut bad_state = dynamic_group("State", "user.objectId -ne null");
    bad_state["membershipRuleProcessingState"] = json!("Evaluating");
    graph.post("/v1.0/groups", bad_state).await.assert_error(400, "Request_BadRequest");
    let mut status = dynamic_group("Status", "user.objectId -ne null");
    status["membershipRuleProcessingStatus"] = json!({"status": "Succeeded"});
    graph.post("/v1.0/groups", status).await.assert_error(400, "Request_BadRequest");
    assert!(graph.get("/v1.0/groups").await.values().is_empty(), "nothing was created");

    let ada = user(&graph, "ada", json!({"department": "Sales"})).await;
    let bob = user(&graph, "bob", json!({"department": "Marketing"})).await;
    let sales = create_dynamic(&graph, "Sales", r#"user.department -eq "Sales""#).await;
    let path = format!("/v1.0/groups/{sales}");
    graph.patch(&path, json!({"membershipRule": "user.department -eq"})).await.assert_error(400, "Request_BadRequest");
    graph.patch(&path, json!({"groupTypes": []})).await.assert_error(400, "Request_BadRequest");
    graph
        .patch(&path, json!({"membershipRule": "device.deviceOSType -eq \"Windows\""}))
        .await
        .assert_error(400, "Request_BadRequest");
    assert_eq!(graph.get(&path).await.body["membershipRule"], r#"user.department -eq "Sales""#);

    // Members of a dynamic group are not edited by hand, through Graph or SCIM.
    graph.add_member(&sales, &bob).await.assert_error(400, "Request_BadRequest");
    graph.delete(&format!("{path}/members/{ada}/$ref")).await.assert_error(400, "Request_BadRequest");
    let static_group = graph.create_group("Static").await;
    graph.add_member(&sales, &static_group).await.assert_error(400, "Request_BadRequest");
    let scim_add = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": bob}]}],
    });
    let scim = graph.patch(&format!("/scim/v2/Groups/{sales}"), scim_add).await;
    scim.assert_status(400);
    assert_eq!(scim.body["scimType"], "mutability", "{}", scim.text);
    let scim_remove = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{ada}\"]")}],
    });
    graph.patch(&format!("/scim/v2/Groups/{sales}"), scim_remove).await.assert_status(400);
    assert_eq!(member_ids(&graph, &sales).await, set(&[&ada]), "membership is unchanged");
}

/// Editing the rule re-evaluates the tenant; Paused freezes the members until On.
async fn rule_edits_and_pauses(app: &TestApp) {
    let graph = contoso(app).await;
    let ada = user(&graph, "ada", json!({"department": "Sales", "country": "US"})).await;
    let bob = user(&graph, "bob", json!({"department": "Marketing", "country": "US"})).await;

    // Created Paused: never evaluated, so NotStarted and empty, until switched On.
    let mut paused = dynamic_group("Paused", r#"user.department -eq "Sales""#);
    paused["membershipRuleProcessingState"] = json!("Paused");
    let created = graph.post("/v1.0/groups", paused).await;
    created.assert_status(201);
    let status = &created.body["membershipRuleProcessingStatus"];
    assert_eq!(status, &json!({"status": "NotStarted", "lastMembershipUpdated": null, "errorMessage": null}));
    let paused = created.id();
    assert_eq!(
        graph.get(&format!("/v1.0/groups/{paused}")).await.body["membershipRuleProcessingStatus"]["status"],
        "NotStarted"
    );
    assert!(member_ids(&graph, &paused).await.is_empty());
    graph
        .patch(&format!("/v1.0/groups/{paused}"), json!({"membershipRuleProcessingState": "On"}))
        .await
        .assert_status(204);
    wait_succeeded(&graph, &paused).await;
    assert_eq!(member_ids(&graph, &paused).await, set(&[&ada]));

    let group = create_dynamic(&graph, "Team", r#"user.department -eq "Sales""#).await;
    let path = format!("/v1.0/groups/{group}");
    assert_eq!(member_ids(&graph, &group).await, set(&[&ada]));

    graph.patch(&path, json!({"membershipRule": r#"user.department -eq "Marketing""#})).await.assert_status(204);
    wait_succeeded(&graph, &group).await;
    assert_eq!(member_ids(&graph, &group).await, set(&[&bob]), "an edited rule evaluates the tenant again");

    graph.patch(&path, json!({"membershipRuleProcessingState": "Paused"})).await.assert_status(204);
    assert_eq!(graph.get(&path).await.body["membershipRuleProcessingState"], "Paused");
    graph.patch(&format!("/v1.0/users/{ada}"), json!({"department": "Marketing"})).await.assert_status(204);
    graph.patch(&format!("/v1.0/users/{bob}"), json!({"department": "Sales"})).await.assert_status(204);
    graph.patch(&path, json!({"membershipRule": r#"user.country -eq "US""#})).await.assert_status(204);
    graph.patch(&path, json!({"membershipRule": r#"user.department -eq "Marketing""#})).await.assert_status(204);
    assert_eq!(member_ids(&graph, &group).await, set(&[&bob]), "paused: no membership change at all");

    graph.patch(&path, json!({"membershipRuleProcessingState": "On"})).await.assert_status(204);
    wait_succeeded(&graph, &group).await;
    assert_eq!(member_ids(&graph, &group).await, set(&[&ada]), "back On: evaluated again");

    // Back to assigned membership: the members stay, and can be edited by hand again.
    graph.patch(&path, json!({"groupTypes": [], "membershipRule": null})).await.assert_status(204);
    let read = graph.get(&path).await;
    assert_eq!(read.body["groupTypes"], json!([]));
    assert!(read.body.get("membershipRuleProcessingStatus").is_none(), "{}", read.text);
    assert_eq!(member_ids(&graph, &group).await, set(&[&ada]));
    graph.add_member(&group, &bob).await.assert_status(204);
    graph.patch(&format!("/v1.0/users/{ada}"), json!({"department": "Sales"})).await.assert_status(204);
    assert_eq!(member_ids(&graph, &group).await, set(&[&ada, &bob]), "no rule applies any more");

    // A static group with a nested group turned dynamic holds users only.
    let nested = graph.create_group("Nested").await;
    graph.add_member(&group, &nested).await.assert_status(204);
    let dynamic = json!({"groupTypes": ["DynamicMembership"], "membershipRule": r#"user.department -eq "Sales""#});
    graph.patch(&path, dynamic).await.assert_status(204);
    wait_succeeded(&graph, &group).await;
    assert_eq!(member_ids(&graph, &group).await, set(&[&ada, &bob]), "the nested group left");

    // A deleted dynamic group stops evaluating; restored, it evaluates again.
    graph.delete(&path).await.assert_status(204);
    graph.patch(&format!("/v1.0/users/{bob}"), json!({"department": "Marketing"})).await.assert_status(204);
    graph.post_empty(&format!("/v1.0/directory/deletedItems/{group}/restore")).await.assert_status(200);
    wait_succeeded(&graph, &group).await;
    assert_eq!(member_ids(&graph, &group).await, set(&[&ada]), "bob left while the group was deleted");
}

/// Computed members are ordinary members: members, transitiveMembers, memberOf, group delta and SCIM.
async fn members_show_everywhere(app: &TestApp) {
    let graph = contoso(app).await;
    let ada = user(&graph, "ada", json!({"department": "Sales"})).await;
    let dynamic = create_dynamic(&graph, "Sales", r#"user.department -eq "Sales""#).await;
    let parent = graph.create_group("All staff").await;
    graph.add_member(&parent, &dynamic).await.assert_status(204);

    let transitive = graph.get(&format!("/v1.0/groups/{parent}/transitiveMembers")).await;
    assert_eq!(transitive.field_of_values("id").into_iter().collect::<BTreeSet<_>>(), set(&[&dynamic, &ada]));
    assert_eq!(group_ids_of(&graph, &ada).await, set(&[&dynamic]));
    let scim = graph.get(&format!("/scim/v2/Groups/{dynamic}")).await;
    scim.assert_status(200);
    assert_eq!(scim.body["members"][0]["value"], json!(ada), "{}", scim.text);

    let round = graph.get("/v1.0/groups/delta").await;
    let entry = round.values().iter().find(|group| group["id"] == json!(dynamic)).cloned().expect("group in delta");
    assert_eq!(entry["members@delta"], json!([{"@odata.type": "#microsoft.graph.user", "id": ada}]));
    let delta_link = round.body["@odata.deltaLink"].as_str().expect("deltaLink").to_owned();

    let bob = user(&graph, "bob", json!({"department": "Sales"})).await;
    graph.patch(&format!("/v1.0/users/{ada}"), json!({"department": "Marketing"})).await.assert_status(204);
    let changes = graph.get(&delta_link).await;
    changes.assert_status(200);
    let entry = changes.values().iter().find(|group| group["id"] == json!(dynamic)).cloned().expect("changed group");
    let mut member_delta = entry["members@delta"].as_array().expect("members@delta").clone();
    member_delta.sort_by_key(|member| member["id"].as_str().unwrap_or_default().to_owned());
    let mut expected = vec![
        json!({"@odata.type": "#microsoft.graph.user", "id": ada, "@removed": {"reason": "deleted"}}),
        json!({"@odata.type": "#microsoft.graph.user", "id": bob}),
    ];
    expected.sort_by_key(|member| member["id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(member_delta, expected, "{}", changes.text);
}

/// Users written while a new rule's evaluation pages through the tenant end as the rule says.
async fn writes_during_an_evaluation_end_right(app: &TestApp) {
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    let tenant_id = tenant.id;
    let mut users = Vec::new();
    for idx in 0..1_200 {
        let body = json!({
            "userPrincipalName": format!("user{idx}@contoso.com"), "displayName": format!("User {idx}"),
            "mailNickname": format!("user{idx}"), "accountEnabled": true,
            "department": if idx % 3 == 0 { "Sales" } else { "Marketing" },
        });
        users.push(serde_json::from_value(complete_user(body)).expect("a user"));
    }
    let created = app.directory().create_users(tenant_id, users).await.expect("create users");
    let ids: Vec<String> = created.into_iter().map(|user| user.expect("created").id.to_string()).collect();

    let reply = graph.post("/v1.0/groups", dynamic_group("Sales", r#"user.department -eq "Sales""#)).await;
    reply.assert_status(201);
    let group = reply.id();
    // While the evaluation runs (three pages), move users across the rule in both directions.
    let mut expected: BTreeSet<String> = ids.iter().step_by(3).cloned().collect();
    for (idx, id) in ids.iter().enumerate().step_by(7) {
        let now_sales = idx % 3 != 0;
        let department = if now_sales { "Sales" } else { "Marketing" };
        graph.patch(&format!("/v1.0/users/{id}"), json!({"department": department})).await.assert_status(204);
        if now_sales {
            expected.insert(id.clone());
        } else {
            expected.remove(id);
        }
    }
    wait_succeeded(&graph, &group).await;
    let (members, _) = graph.get_all(&format!("/v1.0/groups/{group}/members"), &[]).await;
    let members: BTreeSet<String> =
        members.iter().map(|member| member["id"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(members.len(), expected.len());
    assert_eq!(members, expected);
}

/// A Graph user body completed with the fields the directory's `User` needs to deserialize.
fn complete_user(mut body: Value) -> Value {
    body["id"] = json!(tenantsync_model::ObjectId::new_random().to_string());
    body["createdDateTime"] = json!("2030-01-01T09:00:00Z");
    body
}
