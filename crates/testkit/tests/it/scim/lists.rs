//! SCIM lists on a tenant larger than one store page (issue 14): storage filters, sorts and pages, and the filters
//! it cannot answer stream; either way the answers are what RFC 7644 §3.4.2 asks for, checked against a model of
//! the tenant built here.

use std::cmp::Ordering;

use serde_json::{Value, json};
use tenantsync_testkit::{ApiClient, TestApp};

use super::{tenant_client, urlencode};

const N_USERS: usize = 1_200;

/// A user as the test wrote it.
#[derive(Clone, Debug)]
struct Written {
    id: String,
    user_name: String,
    display_name: Option<String>,
    external_id: Option<String>,
}

fn user_body(idx: usize) -> (Value, Option<String>, Option<String>) {
    let prefix = ["alpha", "Beta", "ALPHA-x", "gamma"][idx % 4];
    let user_name = format!("{prefix}{idx:04}@lists.example");
    // Many ties (and ties in different cases); every fifth user is created without a display name, and the
    // directory gives it its userName (a directory user always has one).
    let display_name = (!idx.is_multiple_of(5)).then(|| {
        let person = if idx.is_multiple_of(2) { "Person" } else { "person" };
        format!("{person} {}", (idx * 7) % 100)
    });
    let external_id = match idx % 3 {
        0 => Some(format!("EXT-{idx:04}")),
        1 => Some(format!("ext-{idx:04}")),
        _ => None,
    };
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "active": true,
    });
    if let Some(display_name) = &display_name {
        body["displayName"] = json!(display_name);
    }
    if let Some(external_id) = &external_id {
        body["externalId"] = json!(external_id);
    }
    (body, display_name, external_id)
}

/// Creates the users, eight requests in flight; returns them in id order.
async fn create_users(client: &ApiClient) -> Vec<Written> {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let client = client.clone();
        tasks.spawn(async move {
            let mut written = Vec::new();
            for idx in (worker..N_USERS).step_by(8) {
                let (body, display_name, external_id) = user_body(idx);
                let reply = client.post("/scim/v2/Users", body.clone()).await;
                reply.assert_status(201);
                let user_name = body["userName"].as_str().expect("userName").to_owned();
                let display_name = display_name.or_else(|| Some(user_name.clone()));
                written.push(Written { id: reply.id(), user_name, display_name, external_id });
            }
            written
        });
    }
    let mut users = Vec::new();
    while let Some(written) = tasks.join_next().await {
        users.extend(written.expect("creating task"));
    }
    users.sort_by(|left, right| left.id.cmp(&right.id));
    users
}

/// What a list must answer: the matches in id order, stably sorted as RFC 7644 §3.4.2.3 says (strings ignoring
/// case; missing values last when ascending, first when descending), then the window.
fn expected(
    users: &[Written],
    matches: impl Fn(&Written) -> bool,
    sort_value: Option<fn(&Written) -> Option<String>>,
    descending: bool,
    start_index: usize,
    count: usize,
) -> (usize, Vec<&str>) {
    let mut found: Vec<&Written> = users.iter().filter(|user| matches(user)).collect();
    if let Some(sort_value) = sort_value {
        found.sort_by(|left, right| {
            let ordering = match (sort_value(left), sort_value(right)) {
                (Some(left), Some(right)) => left.to_lowercase().cmp(&right.to_lowercase()),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if descending { ordering.reverse() } else { ordering }
        });
    }
    let window = found.iter().skip(start_index - 1).take(count).map(|user| user.id.as_str()).collect();
    (found.len(), window)
}

#[track_caller]
fn assert_page(reply: &tenantsync_testkit::Reply, expected: (usize, Vec<&str>), what: &str) {
    reply.assert_status(200);
    let ids: Vec<&str> = reply.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|resource| resource["id"].as_str().expect("id"))
        .collect();
    assert_eq!(reply.body["totalResults"], expected.0, "{what}: totalResults");
    assert_eq!(reply.body["itemsPerPage"], expected.1.len(), "{what}: itemsPerPage");
    assert_eq!(ids, expected.1, "{what}: the page");
}

fn user_name(user: &Written) -> Option<String> {
    Some(user.user_name.clone())
}
fn display_name(user: &Written) -> Option<String> {
    user.display_name.clone()
}
fn external_id(user: &Written) -> Option<String> {
    user.external_id.clone()
}

#[tokio::test]
async fn scim_lists_filter_sort_and_page_beyond_one_store_page() {
    let app = TestApp::spawn().await;
    let (_tenant, client) = tenant_client(&app, "scimlists").await;
    let users = create_users(&client).await;
    let all = |_: &Written| true;
    let list = |query: String| {
        let client = client.clone();
        async move { client.get(&format!("/scim/v2/Users?{query}")).await }
    };

    // Unfiltered, in id order, paged by the store: every user exactly once.
    for start_index in [1, 501, 1001, 1200, 1201] {
        let reply = list(format!("startIndex={start_index}&count=500")).await;
        assert_page(&reply, expected(&users, all, None, false, start_index, 500), "unfiltered");
    }
    let reply = list("count=0".to_owned()).await;
    assert_page(&reply, (N_USERS, vec![]), "count=0 gives the total only");

    // Sorted by indexed attributes, both directions.
    for (sort_by, value) in [("userName", user_name as fn(&Written) -> Option<String>), ("displayName", display_name)] {
        for descending in [false, true] {
            for start_index in [1, 230, 590, 955, 1190] {
                let order = if descending { "descending" } else { "ascending" };
                let reply = list(format!("sortBy={sort_by}&sortOrder={order}&startIndex={start_index}&count=30")).await;
                let want = expected(&users, all, Some(value), descending, start_index, 30);
                assert_page(&reply, want, &format!("sortBy={sort_by} {order} from {start_index}"));
            }
        }
    }

    // Filters storage answers: userName eq/sw (ignoring case), externalId eq/sw (case-exact), displayName sw.
    let filter = |text: &str| format!("filter={}", urlencode(text));
    let reply = list(filter(r#"userName eq "BETA0005@LISTS.example""#)).await;
    assert_page(&reply, expected(&users, |user| user.user_name == "Beta0005@lists.example", None, false, 1, 100), "eq");
    let alpha = |user: &Written| user.user_name.to_lowercase().starts_with("alpha");
    for descending in [false, true] {
        let order = if descending { "descending" } else { "ascending" };
        let query = format!(
            "{}&sortBy=displayName&sortOrder={order}&startIndex=100&count=50",
            filter(r#"userName sw "ALPHA""#)
        );
        let want = expected(&users, alpha, Some(display_name), descending, 100, 50);
        assert_page(&list(query).await, want, &format!("userName sw, sorted by displayName {order}"));
    }
    let upper_ext = |user: &Written| user.external_id.as_deref().is_some_and(|id| id.starts_with("EXT-"));
    let reply = list(format!("{}&startIndex=300&count=200", filter(r#"externalId sw "EXT-""#))).await;
    assert_page(&reply, expected(&users, upper_ext, None, false, 300, 200), "externalId sw is case-exact");
    let reply = list(filter(r#"externalId eq "ext-0004""#)).await;
    assert_page(
        &reply,
        expected(&users, |user| user.external_id.as_deref() == Some("ext-0004"), None, false, 1, 100),
        "externalId eq",
    );
    let person_1 =
        |user: &Written| user.display_name.as_deref().is_some_and(|name| name.to_lowercase().starts_with("person 1"));
    let reply = list(format!(
        "{}&sortBy=userName&sortOrder=descending&startIndex=7&count=40",
        filter(r#"displayName sw "PERSON 1""#)
    ))
    .await;
    assert_page(&reply, expected(&users, person_1, Some(user_name), true, 7, 40), "displayName sw");
    let both = |user: &Written| alpha(user) && upper_ext(user);
    let reply = list(format!("{}&count=1000", filter(r#"userName sw "alpha" and externalId sw "EXT""#))).await;
    assert_page(&reply, expected(&users, both, None, false, 1, 1000), "two indexed terms");

    // Filters and orders storage cannot answer alone stream: narrowed by an indexed term, or over every user.
    let contains =
        |user: &Written| user.display_name.as_deref().is_some_and(|name| name.to_lowercase().contains("son 1"));
    let reply = list(format!(
        "{}&sortBy=userName&sortOrder=descending&startIndex=20&count=25",
        filter(r#"displayName co "son 1""#)
    ))
    .await;
    assert_page(&reply, expected(&users, contains, Some(user_name), true, 20, 25), "co, sorted");
    let reply = list(format!("{}&startIndex=50&count=25", filter(r#"displayName co "son 1""#))).await;
    assert_page(&reply, expected(&users, contains, None, false, 50, 25), "co, unsorted");
    let alpha_present = |user: &Written| alpha(user) && user.external_id.is_some();
    let reply = list(format!("{}&startIndex=10&count=300", filter(r#"userName sw "alpha" and externalId pr"#))).await;
    assert_page(&reply, expected(&users, alpha_present, None, false, 10, 300), "an indexed term narrows a scan");
    // sortBy externalId (missing for a third of the users) keeps a bounded heap.
    for descending in [false, true] {
        for start_index in [1, 395, 790, 1180] {
            let order = if descending { "descending" } else { "ascending" };
            let reply = list(format!("sortBy=externalId&sortOrder={order}&startIndex={start_index}&count=20")).await;
            let want = expected(&users, all, Some(external_id), descending, start_index, 20);
            assert_page(&reply, want, &format!("sortBy=externalId {order} from {start_index}"));
        }
    }
    // The same query as a SearchRequest.
    let search = client
        .post(
            "/scim/v2/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName sw \"gamma\"",
                   "sortBy": "displayName", "sortOrder": "descending", "startIndex": 40, "count": 60}),
        )
        .await;
    let gamma = |user: &Written| user.user_name.starts_with("gamma");
    assert_page(&search, expected(&users, gamma, Some(display_name), true, 40, 60), ".search");
}
