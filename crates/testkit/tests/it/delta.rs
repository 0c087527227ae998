//! Change tracking: `/users/delta()` and `/groups/delta()` rounds (initial enumeration in pages, then only what
//! changed), `@removed` for soft-deleted and purged objects, `$select`, `$deltatoken=latest`, `members@delta`,
//! expired and garbled tokens, and absolute links on the client's host.

use serde_json::{Value, json};
use tenantsync_testkit::{ApiClient, TestApp, TestTenant, fixtures};

const PAGE_OF_TWO: &[(&str, &str)] = &[("Prefer", "odata.maxpagesize=2")];

/// One whole round from `path`: every entry, the number of pages, and the final deltaLink.
async fn round(graph: &ApiClient, path: &str, headers: &[(&str, &str)]) -> (Vec<Value>, usize, String) {
    let mut values = Vec::new();
    let mut n_pages = 0;
    let mut reply = graph.get_with(path, headers).await;
    loop {
        reply.assert_status(200);
        n_pages += 1;
        values.extend(reply.values().iter().cloned());
        if let Some(next) = reply.body["@odata.nextLink"].as_str().map(str::to_owned) {
            assert!(reply.body.get("@odata.deltaLink").is_none(), "a page has one link: {}", reply.text);
            reply = graph.get_with(&next, headers).await;
            continue;
        }
        let delta_link = reply.body["@odata.deltaLink"].as_str().unwrap_or_else(|| panic!("no link: {}", reply.text));
        return (values, n_pages, delta_link.to_owned());
    }
}

fn ids(values: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = values.iter().map(|value| value["id"].as_str().unwrap_or_default().to_owned()).collect();
    ids.sort();
    ids
}

async fn contoso(app: &TestApp) -> (TestTenant, ApiClient) {
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    (tenant, graph)
}

#[tokio::test]
async fn initial_round_pages_then_later_rounds_bring_only_changes() {
    let app = TestApp::spawn().await;
    let (_, graph) = contoso(&app).await;
    let mut created = Vec::new();
    for idx in 0..5 {
        created
            .push(graph.create_user(fixtures::user(&format!("user{idx}@contoso.com"), &format!("User {idx}"))).await);
    }
    created.sort();
    for start in ["/v1.0/users/delta()", "/v1.0/users/delta"] {
        let (values, n_pages, delta_link) = round(&graph, start, PAGE_OF_TWO).await;
        assert_eq!(ids(&values), created, "{start}: every user once");
        assert_eq!(n_pages, 3, "{start}: pages of two");
        assert!(delta_link.starts_with(&format!("{}/v1.0/users/delta()?$deltatoken=", app.base_url())), "{delta_link}");
        assert!(values.iter().all(|value| value["userPrincipalName"].is_string() && value.get("@removed").is_none()));
        let (nothing, _, _) = round(&graph, &delta_link, &[]).await;
        assert!(nothing.is_empty(), "no change since: {nothing:?}");
    }
    let (_, _, delta_link) = round(&graph, "/v1.0/users/delta()?$top=2", &[]).await;

    let new_user = graph.create_user(fixtures::user("new@contoso.com", "New")).await;
    graph.patch(&format!("/v1.0/users/{}", created[0]), json!({"jobTitle": "Changed"})).await.assert_status(204);
    graph.patch(&format!("/v1.0/users/{}", created[0]), json!({"department": "Twice"})).await.assert_status(204);
    graph.delete(&format!("/v1.0/users/{}", created[1])).await.assert_status(204);
    graph.delete(&format!("/v1.0/users/{}", created[2])).await.assert_status(204);
    graph.delete(&format!("/v1.0/directory/deletedItems/{}", created[2])).await.assert_status(204);
    // Groups' changes do not show in the users' round.
    graph.create_group("Unrelated").await;

    let (changes, _, next_link) = round(&graph, &delta_link, &[]).await;
    let mut expected = vec![new_user.clone(), created[0].clone(), created[1].clone(), created[2].clone()];
    expected.sort();
    assert_eq!(ids(&changes), expected, "each changed user once: {changes:?}");
    let by_id = |id: &str| changes.iter().find(|value| value["id"] == id).cloned().expect("in the page");
    let changed = by_id(&created[0]);
    assert_eq!(
        (&changed["jobTitle"], &changed["department"]),
        (&json!("Changed"), &json!("Twice")),
        "the latest state"
    );
    assert_eq!(by_id(&created[1]), json!({"id": created[1], "@removed": {"reason": "changed"}}));
    assert_eq!(by_id(&created[2]), json!({"id": created[2], "@removed": {"reason": "deleted"}}));
    assert_eq!(by_id(&new_user)["userPrincipalName"], "new@contoso.com");

    // Restore shows the user again; the purge of a soft-deleted one after that is "deleted".
    graph.post_empty(&format!("/v1.0/directory/deletedItems/{}/restore", created[1])).await.assert_status(200);
    let (restored, _, _) = round(&graph, &next_link, &[]).await;
    assert_eq!(ids(&restored), [created[1].as_str()]);
    assert_eq!(restored[0]["userPrincipalName"], "user1@contoso.com");
}

#[tokio::test]
async fn changes_during_the_initial_round_come_in_the_next_round() {
    let app = TestApp::spawn().await;
    let (_, graph) = contoso(&app).await;
    let mut created = Vec::new();
    for idx in 0..4 {
        created.push(graph.create_user(fixtures::user(&format!("user{idx}@contoso.com"), "User")).await);
    }
    let first = graph.get_with("/v1.0/users/delta()", PAGE_OF_TWO).await;
    first.assert_status(200);
    let seen_first: Vec<String> = first.field_of_values("id");
    graph.patch(&format!("/v1.0/users/{}", seen_first[0]), json!({"jobTitle": "During"})).await.assert_status(204);
    let late = graph.create_user(fixtures::user("late@contoso.com", "Late")).await;
    let next = first.body["@odata.nextLink"].as_str().expect("more pages");
    let (rest, _, delta_link) = round(&graph, next, PAGE_OF_TWO).await;
    let mut initial: Vec<String> = seen_first.clone();
    initial.extend(ids(&rest));
    initial.sort();
    assert!(created.iter().all(|id| initial.contains(id)), "{initial:?}");
    let (changes, _, _) = round(&graph, &delta_link, &[]).await;
    let changed_ids = ids(&changes);
    assert!(changed_ids.contains(&seen_first[0]), "the user changed mid-round comes again: {changed_ids:?}");
    assert!(changed_ids.contains(&late), "the user created mid-round is not missed: {changed_ids:?}");
    let patched = changes.iter().find(|value| value["id"] == seen_first[0].as_str()).expect("patched");
    assert_eq!(patched["jobTitle"], "During");
}

#[tokio::test]
async fn select_is_honoured_and_kept_in_links() {
    let app = TestApp::spawn().await;
    let (_, graph) = contoso(&app).await;
    for idx in 0..3 {
        graph.create_user(fixtures::user(&format!("user{idx}@contoso.com"), &format!("User {idx}"))).await;
    }
    let (values, _, delta_link) = round(&graph, "/v1.0/users/delta()?$select=displayName,jobTitle", PAGE_OF_TWO).await;
    assert_eq!(values.len(), 3);
    for value in &values {
        let mut keys: Vec<&String> = value.as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(keys, ["displayName", "id", "jobTitle"], "id is always there: {value}");
    }
    assert!(delta_link.contains("$select=displayName,jobTitle"), "{delta_link}");
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let (changes, _, _) = round(&graph, &delta_link, &[]).await;
    assert_eq!(changes, vec![json!({"id": ada, "displayName": "Ada", "jobTitle": null})]);
    graph.get("/v1.0/users/delta()?$select=shoeSize").await.assert_error(400, "Request_BadRequest");
}

#[tokio::test]
async fn latest_token_skips_the_initial_round() {
    let app = TestApp::spawn().await;
    let (_, graph) = contoso(&app).await;
    graph.create_user(fixtures::user("old@contoso.com", "Old")).await;
    let latest = graph.get("/v1.0/users/delta()?$deltatoken=latest").await;
    latest.assert_status(200);
    assert!(latest.values().is_empty());
    let delta_link = latest.body["@odata.deltaLink"].as_str().expect("deltaLink").to_owned();
    assert!(delta_link.starts_with(app.base_url()), "{delta_link}");
    let new = graph.create_user(fixtures::user("new@contoso.com", "New")).await;
    let (changes, _, _) = round(&graph, &delta_link, &[]).await;
    assert_eq!(ids(&changes), [new]);
    let groups_latest = graph.get("/v1.0/groups/delta()?$deltatoken=latest").await;
    groups_latest.assert_status(200);
    assert!(groups_latest.values().is_empty());
}

#[tokio::test]
async fn group_delta_reports_member_changes() {
    let app = TestApp::spawn().await;
    let (_, graph) = contoso(&app).await;
    let group = graph.create_group("Team").await;
    let empty = graph.create_group("Empty").await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let bob = graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;
    let inner = graph.create_group("Inner").await;
    graph.add_member(&group, &ada).await.assert_status(204);
    graph.add_member(&group, &inner).await.assert_status(204);

    let (values, _, delta_link) = round(&graph, "/v1.0/groups/delta()", &[]).await;
    assert_eq!(ids(&values), {
        let mut expected = vec![group.clone(), empty.clone(), inner.clone()];
        expected.sort();
        expected
    });
    let team = values.iter().find(|value| value["id"] == group.as_str()).expect("team");
    let mut members = team["members@delta"].as_array().expect("members@delta").clone();
    members.sort_by_key(|member| member["id"].as_str().unwrap_or_default().to_owned());
    let mut expected_members = vec![
        json!({"id": ada, "@odata.type": "#microsoft.graph.user"}),
        json!({"id": inner, "@odata.type": "#microsoft.graph.group"}),
    ];
    expected_members.sort_by_key(|member| member["id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(members, expected_members);
    assert_eq!(team["displayName"], "Team");

    graph.add_member(&group, &bob).await.assert_status(204);
    graph.delete(&format!("/v1.0/groups/{group}/members/{ada}/$ref")).await.assert_status(204);
    let (changes, _, delta_link) = round(&graph, &delta_link, &[]).await;
    assert_eq!(ids(&changes), [group.as_str()], "only the group whose members changed");
    let mut member_delta = changes[0]["members@delta"].as_array().expect("members@delta").clone();
    member_delta.sort_by_key(|member| member["id"].as_str().unwrap_or_default().to_owned());
    let mut expected_delta = vec![
        json!({"id": bob, "@odata.type": "#microsoft.graph.user"}),
        json!({"id": ada, "@odata.type": "#microsoft.graph.user", "@removed": {"reason": "deleted"}}),
    ];
    expected_delta.sort_by_key(|member| member["id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(member_delta, expected_delta);

    // A rename without member changes has no members@delta; $select without members drops it too.
    graph.patch(&format!("/v1.0/groups/{group}"), json!({"description": "d"})).await.assert_status(204);
    let (renamed, _, delta_link) = round(&graph, &delta_link, &[]).await;
    assert_eq!(renamed.len(), 1);
    assert!(renamed[0].get("members@delta").is_none(), "{}", renamed[0]);
    graph.add_member(&empty, &ada).await.assert_status(204);
    let link_with_select = format!("{delta_link}&$select=displayName");
    let (selected, _, _) = round(&graph, &link_with_select, &[]).await;
    assert_eq!(selected, vec![json!({"id": empty, "displayName": "Empty"})]);

    // Deleting a group reports it removed.
    graph.delete(&format!("/v1.0/groups/{inner}")).await.assert_status(204);
    let (removed, _, _) = round(&graph, &delta_link, &[]).await;
    let inner_entry = removed.iter().find(|value| value["id"] == inner.as_str()).expect("inner reported");
    assert_eq!(inner_entry["@removed"], json!({"reason": "changed"}));
}

#[tokio::test]
async fn tokens_older_than_retention_are_gone() {
    let app = TestApp::spawn().await;
    let (tenant, graph) = contoso(&app).await;
    graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let (_, _, delta_link) = round(&graph, "/v1.0/users/delta()", &[]).await;
    let mid_round = graph.get_with("/v1.0/users/delta()", &[("Prefer", "odata.maxpagesize=1")]).await;
    let next_link = mid_round.body["@odata.nextLink"].as_str().map(str::to_owned);
    graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;

    app.clock().advance(time::Duration::days(29));
    app.directory().purge_expired().await.expect("purge");
    let graph = app.as_tenant(&tenant).await;
    let (still, _, _) = round(&graph, &delta_link, &[]).await;
    assert_eq!(still.len(), 1, "29 days old is still within retention");

    app.clock().advance(time::Duration::days(2));
    app.directory().purge_expired().await.expect("purge");
    let graph = app.as_tenant(&tenant).await;
    let gone = graph.get(&delta_link).await;
    gone.assert_error(410, "syncStateNotFound");
    if let Some(next_link) = next_link {
        graph.get(&next_link).await.assert_error(410, "syncStateNotFound");
    }
    // A new round works.
    let (fresh, _, _) = round(&graph, "/v1.0/users/delta()", &[]).await;
    assert_eq!(fresh.len(), 2);
}

#[tokio::test]
async fn garbled_or_foreign_tokens_are_bad_requests() {
    let app = TestApp::spawn().await;
    let (_, graph) = contoso(&app).await;
    graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let (_, _, users_link) = round(&graph, "/v1.0/users/delta()", &[]).await;
    let token = users_link.split("$deltatoken=").nth(1).expect("token").to_owned();
    for path in [
        "/v1.0/users/delta()?$deltatoken=garbage!".to_owned(),
        "/v1.0/users/delta()?$skiptoken=AAAA".to_owned(),
        "/v1.0/users/delta()?$deltatoken=".to_owned(),
        format!("/v1.0/groups/delta()?$deltatoken={token}"),
        format!("/v1.0/users/delta()?$deltatoken={token}&$skiptoken={token}"),
        format!("/v1.0/users/delta()?$deltatoken={token}&$deltatoken={token}"),
        // A well-formed token from the future of this tenant.
        format!("/v1.0/users/delta()?$deltatoken={}", base64_url("d1\nusers\nc\n999999\n")),
        "/v1.0/users/delta()?$filter=displayName eq 'x'".to_owned(),
        "/v1.0/users/delta()?$top=0".to_owned(),
    ] {
        let reply = graph.get(&path).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text);
        assert_eq!(reply.body["error"]["code"], "Request_BadRequest", "{path}");
    }
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn links_keep_the_host_and_scheme_the_client_used() {
    let app = TestApp::spawn().await;
    let (_, graph) = contoso(&app).await;
    for idx in 0..3 {
        graph.create_user(fixtures::user(&format!("user{idx}@contoso.com"), "User")).await;
    }
    let port = app.base_url().rsplit(':').next().expect("port").to_owned();
    let localhost = format!("http://localhost:{port}");
    let reply = graph.get_with(&format!("{localhost}/v1.0/users/delta()"), PAGE_OF_TWO).await;
    reply.assert_status(200);
    let next = reply.body["@odata.nextLink"].as_str().expect("nextLink");
    assert!(next.starts_with(&format!("{localhost}/v1.0/users/delta()?")), "{next}");
    let list = graph.get(&format!("{localhost}/v1.0/users?$top=1")).await;
    assert!(list.body["@odata.nextLink"].as_str().is_some_and(|link| link.starts_with(&localhost)), "{}", list.text);
    let proxied = graph.get_with("/v1.0/users?$top=1", &[("X-Forwarded-Proto", "https")]).await;
    let https_link = proxied.body["@odata.nextLink"].as_str().expect("nextLink");
    assert!(https_link.starts_with(&format!("https://127.0.0.1:{port}/v1.0/users?")), "{https_link}");
}

/// An initial round of groups shows each group's live members, whatever the page holds: members shared between
/// groups, a deleted member left out, an empty group with an empty list.
#[tokio::test]
async fn initial_group_pages_show_each_groups_live_members() {
    let app = TestApp::spawn().await;
    let (_, graph) = contoso(&app).await;
    let mut users = Vec::new();
    for idx in 0..4 {
        users.push(graph.create_user(fixtures::user(&format!("m{idx}@contoso.com"), &format!("Member {idx}"))).await);
    }
    let mut groups = Vec::new();
    for idx in 0..5 {
        let group = graph.create_group(&format!("Group {idx}")).await;
        // Group idx holds the users below idx: group 0 is empty, group 4 holds all four.
        for user in users.iter().take(idx) {
            graph.add_member(&group, user).await.assert_status(204);
        }
        groups.push(group);
    }
    graph.delete(&format!("/v1.0/users/{}", users[1])).await.assert_status(204);
    for headers in [PAGE_OF_TWO, &[][..]] {
        let (values, _, _) = round(&graph, "/v1.0/groups/delta()", headers).await;
        assert_eq!(values.len(), groups.len());
        for (idx, group) in groups.iter().enumerate() {
            let entry = values.iter().find(|value| value["id"] == group.as_str()).expect("each group");
            let mut members: Vec<String> = entry["members@delta"]
                .as_array()
                .expect("members@delta on every group of an initial round")
                .iter()
                .map(|member| member["id"].as_str().unwrap_or_default().to_owned())
                .collect();
            members.sort();
            let mut expected: Vec<String> =
                users.iter().take(idx).enumerate().filter(|(at, _)| *at != 1).map(|(_, id)| id.clone()).collect();
            expected.sort();
            assert_eq!(members, expected, "group {idx} with {headers:?}");
        }
    }
}

/// While a client reads a page that has a `nextLink`, the server renders the next one (issue 14's read-ahead): that
/// page is served with an `Age` header, and a change made meanwhile is never lost — a user changed after its page was
/// rendered comes with its latest state in the round's change pages. A page older than thirty seconds (the
/// directory's clock) is rendered again when asked for.
#[tokio::test]
async fn pages_rendered_ahead_keep_every_change_and_expire() {
    let app = TestApp::spawn().await;
    let (_, graph) = contoso(&app).await;
    let mut created = Vec::new();
    for idx in 0..5 {
        created.push(graph.create_user(fixtures::user(&format!("user{idx}@contoso.com"), "User")).await);
    }
    created.sort();
    let first = graph.get_with("/v1.0/users/delta()", PAGE_OF_TWO).await;
    first.assert_status(200);
    assert_eq!(first.header("age"), None, "the first page is rendered for its request");
    assert_eq!(first.field_of_values("id"), created[..2].to_vec());
    // The second page (created[2], created[3]) is being rendered now; let it finish, then change a user on it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    graph.patch(&format!("/v1.0/users/{}", created[2]), json!({"jobTitle": "After"})).await.assert_status(204);
    let second = graph.get_with(first.body["@odata.nextLink"].as_str().expect("more pages"), PAGE_OF_TWO).await;
    second.assert_status(200);
    assert_eq!(second.header("age"), Some("0"), "rendered ahead: {:?}", second.header("age"));
    assert_eq!(second.field_of_values("id"), created[2..4].to_vec());
    let third = graph.get_with(second.body["@odata.nextLink"].as_str().expect("more pages"), PAGE_OF_TWO).await;
    third.assert_status(200);
    assert!(third.header("age").is_some(), "the third page was rendered ahead too");
    let delta_link = third.body["@odata.deltaLink"].as_str().expect("the round ends").to_owned();
    let (changes, _, _) = round(&graph, &delta_link, &[]).await;
    let changed =
        changes.iter().find(|value| value["id"] == created[2].as_str()).expect("the changed user comes again");
    assert_eq!(changed["jobTitle"], "After", "{changes:?}");

    // A page left waiting longer than thirty seconds is rendered anew, with what changed meanwhile.
    let first = graph.get_with("/v1.0/users/delta()", PAGE_OF_TWO).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    graph.patch(&format!("/v1.0/users/{}", created[3]), json!({"jobTitle": "Later"})).await.assert_status(204);
    app.clock().advance(time::Duration::seconds(31));
    let second = graph.get_with(first.body["@odata.nextLink"].as_str().expect("more pages"), PAGE_OF_TWO).await;
    second.assert_status(200);
    assert_eq!(second.header("age"), None, "an expired page is not served");
    let later = second.values().iter().find(|value| value["id"] == created[3].as_str()).cloned().expect("on page two");
    assert_eq!(later["jobTitle"], "Later");
}
