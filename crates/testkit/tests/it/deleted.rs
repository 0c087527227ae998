//! Soft delete: deleted users and groups move to `/directory/deletedItems`, can be read, restored or purged, and
//! purge themselves 30 days later; their links hide while deleted, come back on restore and go on purge.

use serde_json::json;
use tenantsync_testkit::{ApiClient, TestApp, fixtures};

async fn contoso(app: &TestApp) -> ApiClient {
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    app.as_tenant(&tenant).await
}

const DELETED_USERS: &str = "/v1.0/directory/deletedItems/microsoft.graph.user";
const DELETED_GROUPS: &str = "/v1.0/directory/deletedItems/microsoft.graph.group";

#[tokio::test]
async fn deleted_user_moves_to_deleted_items_and_restores() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;
    assert!(graph.get(DELETED_USERS).await.values().is_empty());

    app.clock().advance(time::Duration::minutes(30));
    graph.delete(&format!("/v1.0/users/{ada}")).await.assert_status(204);
    let deleted = graph.get(DELETED_USERS).await;
    deleted.assert_status(200);
    assert_eq!(deleted.field_of_values("id"), [ada.as_str()]);
    assert_eq!(deleted.values()[0]["deletedDateTime"], "2030-01-01T09:30:00Z", "stamped by the clock");
    assert!(graph.get(DELETED_GROUPS).await.values().is_empty());
    let one = graph.get(&format!("/v1.0/directory/deletedItems/{ada}")).await;
    one.assert_status(200);
    assert_eq!(
        (&one.body["@odata.type"], &one.body["userPrincipalName"]),
        (&json!("#microsoft.graph.user"), &json!("ada@contoso.com"))
    );
    assert_eq!(graph.count("users").await, 1);
    let deleted_count =
        graph.get_with(&format!("{DELETED_USERS}?$count=true"), &[("ConsistencyLevel", "eventual")]).await;
    assert_eq!(deleted_count.body["@odata.count"], 1);

    // The userPrincipalName stays taken while the user can be restored, as in Entra.
    graph
        .post("/v1.0/users", fixtures::user("ada@contoso.com", "New Ada"))
        .await
        .assert_error(400, "Request_BadRequest");

    let restored = graph.post_empty(&format!("/v1.0/directory/deletedItems/{ada}/restore")).await;
    restored.assert_status(200);
    assert_eq!((&restored.body["id"], &restored.body["deletedDateTime"]), (&json!(ada), &json!(null)));
    graph.get(&format!("/v1.0/users/{ada}")).await.assert_status(200);
    assert!(graph.get(DELETED_USERS).await.values().is_empty());
    graph.get(&format!("/v1.0/directory/deletedItems/{ada}")).await.assert_error(404, "Request_ResourceNotFound");
    graph
        .post_empty(&format!("/v1.0/directory/deletedItems/{ada}/restore"))
        .await
        .assert_error(404, "Request_ResourceNotFound");
    assert_eq!(graph.count("users").await, 2);
}

#[tokio::test]
async fn purged_user_is_gone_and_frees_its_name() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    // Only deleted items can be purged.
    graph.delete(&format!("/v1.0/directory/deletedItems/{ada}")).await.assert_error(404, "Request_ResourceNotFound");
    graph.delete(&format!("/v1.0/users/{ada}")).await.assert_status(204);
    graph.delete(&format!("/v1.0/directory/deletedItems/{ada}")).await.assert_status(204);
    graph.get(&format!("/v1.0/directory/deletedItems/{ada}")).await.assert_error(404, "Request_ResourceNotFound");
    graph
        .post_empty(&format!("/v1.0/directory/deletedItems/{ada}/restore"))
        .await
        .assert_error(404, "Request_ResourceNotFound");
    graph.delete(&format!("/v1.0/directory/deletedItems/{ada}")).await.assert_error(404, "Request_ResourceNotFound");
    assert!(graph.get(DELETED_USERS).await.values().is_empty());
    let again = graph.create_user(fixtures::user("ada@contoso.com", "Ada again")).await;
    assert_ne!(again, ada);
}

#[tokio::test]
async fn deleted_items_purge_themselves_after_thirty_days() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    let old_user = graph.create_user(fixtures::user("old@contoso.com", "Old")).await;
    let old_group = graph.create_group("Old group").await;
    graph.delete(&format!("/v1.0/users/{old_user}")).await.assert_status(204);
    graph.delete(&format!("/v1.0/groups/{old_group}")).await.assert_status(204);
    app.clock().advance(time::Duration::days(20));
    let graph = app.as_tenant(&tenant).await;
    let recent = graph.create_user(fixtures::user("recent@contoso.com", "Recent")).await;
    graph.delete(&format!("/v1.0/users/{recent}")).await.assert_status(204);

    app.clock().advance(time::Duration::days(10) - time::Duration::seconds(1));
    assert_eq!(app.directory().purge_expired().await.expect("purge"), 0, "29 days, 23:59:59 is not yet 30 days");
    app.clock().advance(time::Duration::seconds(2));
    assert_eq!(app.directory().purge_expired().await.expect("purge"), 2);
    // A new token: the first one expired long ago on this clock.
    let graph = app.as_tenant(&tenant).await;
    assert_eq!(graph.get(DELETED_USERS).await.field_of_values("id"), [recent.as_str()]);
    assert!(graph.get(DELETED_GROUPS).await.values().is_empty());
    graph.get(&format!("/v1.0/directory/deletedItems/{old_user}")).await.assert_error(404, "Request_ResourceNotFound");
    graph
        .post_empty(&format!("/v1.0/directory/deletedItems/{old_group}/restore"))
        .await
        .assert_error(404, "Request_ResourceNotFound");
    graph.create_user(fixtures::user("old@contoso.com", "Old again")).await;

    app.clock().advance(time::Duration::days(21));
    assert_eq!(app.directory().purge_expired().await.expect("purge"), 1);
    assert!(app.as_tenant(&tenant).await.get(DELETED_USERS).await.values().is_empty());
}

#[tokio::test]
async fn links_of_a_deleted_user_hide_and_come_back_on_restore() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let group = graph.create_group("Team").await;
    let boss = graph.create_user(fixtures::user("boss@contoso.com", "Boss")).await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let bob = graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;
    graph.add_member(&group, &ada).await.assert_status(204);
    graph.add_member(&group, &bob).await.assert_status(204);
    graph
        .put(&format!("/v1.0/users/{ada}/manager/$ref"), fixtures::reference(app.base_url(), &boss))
        .await
        .assert_status(204);
    graph
        .put(&format!("/v1.0/users/{boss}/manager/$ref"), fixtures::reference(app.base_url(), &bob))
        .await
        .assert_status(204);

    // Ada deleted: gone from the group and from her manager's reports.
    graph.delete(&format!("/v1.0/users/{ada}")).await.assert_status(204);
    assert_eq!(graph.get(&format!("/v1.0/groups/{group}/members")).await.field_of_values("id"), [bob.as_str()]);
    assert_eq!(
        graph.get(&format!("/v1.0/groups/{group}/transitiveMembers")).await.field_of_values("id"),
        [bob.as_str()]
    );
    assert!(graph.get(&format!("/v1.0/users/{boss}/directReports")).await.values().is_empty());
    // The boss deleted: Bob's reports and the boss's manager link hide too.
    graph.delete(&format!("/v1.0/users/{boss}")).await.assert_status(204);
    assert!(graph.get(&format!("/v1.0/users/{bob}/directReports")).await.values().is_empty());

    graph.post_empty(&format!("/v1.0/directory/deletedItems/{ada}/restore")).await.assert_status(200);
    graph.post_empty(&format!("/v1.0/directory/deletedItems/{boss}/restore")).await.assert_status(200);
    let mut members = graph.get(&format!("/v1.0/groups/{group}/members")).await.field_of_values("id");
    members.sort();
    let mut expected = vec![ada.clone(), bob.clone()];
    expected.sort();
    assert_eq!(members, expected, "membership is back");
    assert_eq!(graph.get(&format!("/v1.0/users/{ada}/manager")).await.body["id"], boss.as_str());
    assert_eq!(graph.get(&format!("/v1.0/users/{ada}/memberOf")).await.field_of_values("id"), [group.as_str()]);
    assert_eq!(graph.get(&format!("/v1.0/users/{bob}/directReports")).await.field_of_values("id"), [boss.as_str()]);
}

#[tokio::test]
async fn links_of_a_purged_user_go_for_good() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let group = graph.create_group("Team").await;
    let boss = graph.create_user(fixtures::user("boss@contoso.com", "Boss")).await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    graph.add_member(&group, &ada).await.assert_status(204);
    graph
        .put(&format!("/v1.0/users/{ada}/manager/$ref"), fixtures::reference(app.base_url(), &boss))
        .await
        .assert_status(204);
    graph.delete(&format!("/v1.0/users/{boss}")).await.assert_status(204);
    graph.delete(&format!("/v1.0/directory/deletedItems/{boss}")).await.assert_status(204);
    graph.get(&format!("/v1.0/users/{ada}/manager")).await.assert_error(404, "Request_ResourceNotFound");
    graph.delete(&format!("/v1.0/users/{ada}")).await.assert_status(204);
    graph.delete(&format!("/v1.0/directory/deletedItems/{ada}")).await.assert_status(204);
    assert!(graph.get(&format!("/v1.0/groups/{group}/members")).await.values().is_empty());
    // The group can take a new member with the same name, and nothing of Ada's links comes back.
    let new_ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada 2")).await;
    graph.add_member(&group, &new_ada).await.assert_status(204);
    assert_eq!(graph.get(&format!("/v1.0/groups/{group}/members")).await.field_of_values("id"), [new_ada.as_str()]);
    graph.get(&format!("/v1.0/users/{new_ada}/manager")).await.assert_error(404, "Request_ResourceNotFound");
}

#[tokio::test]
async fn deleted_group_hides_its_memberships_until_restored() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let outer = graph.create_group("Outer").await;
    let inner = graph.create_group("Inner").await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    graph.add_member(&outer, &inner).await.assert_status(204);
    graph.add_member(&inner, &ada).await.assert_status(204);

    graph.delete(&format!("/v1.0/groups/{inner}")).await.assert_status(204);
    let deleted = graph.get(DELETED_GROUPS).await;
    assert_eq!(deleted.field_of_values("id"), [inner.as_str()]);
    assert_eq!(
        graph.get(&format!("/v1.0/directory/deletedItems/{inner}")).await.body["@odata.type"],
        "#microsoft.graph.group"
    );
    assert!(graph.get(&format!("/v1.0/groups/{outer}/members")).await.values().is_empty());
    assert!(graph.get(&format!("/v1.0/groups/{outer}/transitiveMembers")).await.values().is_empty());
    assert!(graph.get(&format!("/v1.0/users/{ada}/memberOf")).await.values().is_empty());
    graph.get(&format!("/v1.0/groups/{inner}/members")).await.assert_error(404, "Request_ResourceNotFound");
    // A deleted group cannot gain members.
    graph.add_member(&inner, &ada).await.assert_error(404, "Request_ResourceNotFound");

    graph.post_empty(&format!("/v1.0/directory/deletedItems/{inner}/restore")).await.assert_status(200);
    assert_eq!(graph.get(&format!("/v1.0/groups/{outer}/members")).await.field_of_values("id"), [inner.as_str()]);
    assert_eq!(graph.get(&format!("/v1.0/users/{ada}/memberOf")).await.field_of_values("id"), [inner.as_str()]);
    let mut transitive = graph.get(&format!("/v1.0/groups/{outer}/transitiveMembers")).await.field_of_values("id");
    transitive.sort();
    let mut expected = vec![inner.clone(), ada.clone()];
    expected.sort();
    assert_eq!(transitive, expected);
}

#[tokio::test]
async fn deleted_items_collection_needs_a_type() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    graph.get("/v1.0/directory/deletedItems").await.assert_error(400, "Request_BadRequest");
    graph.get("/v1.0/directory/deletedItems/not-a-guid").await.assert_error(404, "Request_ResourceNotFound");
}
