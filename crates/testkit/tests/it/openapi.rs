//! `/openapi.json` covers every route the router serves, and only those: the router's own route table (read from
//! axum's `Debug` rendering of the real `tenantsync_api::router`, the only way axum shows it) is compared with the
//! document both ways, and every documented operation is called on the running server, which must answer it with
//! something other than its not-found or method-not-allowed fallback.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;
use tenantsync_testkit::{CLOCK_START, TestApp};

/// The one served path the document leaves out: the console's catch-all, which answers every unknown console
/// path with its not-found page.
const UNDOCUMENTED: &[&str] = &["/console/{*rest}"];

/// `(method, path)` of every route of the real router.
async fn served_routes() -> BTreeSet<(String, String)> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("routes.db").display());
    let store: Arc<dyn tenantsync_store::Store> =
        Arc::new(tenantsync_store_sqlite::SqliteStore::open(&url).await.expect("open SQLite"));
    let clock = Arc::new(tenantsync_model::ManualClock::new(CLOCK_START));
    let directory = tenantsync_directory::Directory::new(store.clone(), clock);
    let state = tenantsync_api::AppState::new(directory, store).await.expect("the app state");
    let rendered = format!("{:?}", tenantsync_api::router(state));
    // Only the path router: `RouteId(N): MethodRouter(MethodRouter { … allow_header: Bytes(b"GET,HEAD") })` for
    // each route, then `paths: {RouteId(N): "/path", …}`.
    let path_router = rendered.split("fallback_router").next().expect("a path router");
    let mut methods_of = std::collections::HashMap::new();
    for piece in path_router.split("RouteId(").skip(1) {
        let Some((id, rest)) = piece.split_once(')') else { continue };
        if let Some(rest) = rest.strip_prefix(": MethodRouter(") {
            let allow = rest.split("allow_header: ").nth(1).expect("a method router shows allow_header");
            let methods = allow.strip_prefix("Bytes(b\"").and_then(|rest| rest.split('"').next()).unwrap_or("ANY");
            methods_of.insert(id.to_owned(), methods.to_owned());
        } else if let Some(rest) = rest.strip_prefix(": \"") {
            let path = rest.split('"').next().expect("a quoted path").to_owned();
            methods_of.entry(format!("path:{id}")).or_insert(path);
        }
    }
    let mut routes = BTreeSet::new();
    for (key, path) in &methods_of {
        let Some(id) = key.strip_prefix("path:") else { continue };
        let methods = methods_of.get(id).unwrap_or_else(|| panic!("no method router for {path}"));
        for method in methods.split(',').filter(|method| *method != "HEAD") {
            routes.insert((method.to_ascii_lowercase(), path.clone()));
        }
    }
    assert!(routes.len() > 100, "the router's table could not be read from {:.300}", path_router);
    routes
}

fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys().filter(|key| *key != "parameters") {
            routes.insert((method.clone(), path.clone()));
        }
    }
    routes
}

#[tokio::test]
async fn the_document_covers_every_route_the_router_serves() {
    let app = TestApp::spawn().await;
    let reply = app.anonymous().get("/openapi.json").await;
    reply.assert_status(200);
    assert!(reply.header("content-type").is_some_and(|value| value.starts_with("application/json")));
    assert_eq!(reply.body["openapi"], "3.1.0");
    let documented = documented(&reply.body);
    // The console links it on every page.
    let page = app.anonymous().get("/console/sign-in").await;
    assert!(page.text.contains(r#"<a href="/openapi.json""#), "{}", page.text);

    let served = served_routes().await;
    let served: BTreeSet<_> = served.into_iter().filter(|(_, path)| !UNDOCUMENTED.contains(&path.as_str())).collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    assert!(missing.is_empty(), "served but not in /openapi.json: {missing:?}");
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(extra.is_empty(), "in /openapi.json but not served: {extra:?}");
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let token = app.token(&tenant).await;
    let graph = app.client(&token);
    let document = app.anonymous().get("/openapi.json").await.body;
    for (method, path) in documented(&document) {
        // Path parameters get values that name nothing: handlers answer 4xx, routing must not.
        let concrete: String = path
            .split('/')
            .map(|segment| {
                if segment == "{tenant}" {
                    tenant.id.to_string()
                } else if segment == "{segment}" {
                    // The only segment with a shape of its own (Graph's key syntax).
                    "objectConnections('00000000-0000-4000-8000-000000000000')".to_owned()
                } else if segment.starts_with('{') {
                    "00000000-0000-4000-8000-000000000000".to_owned()
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("a method");
        let (content_type, body) = if path.starts_with("/scim/v2") {
            ("application/scim+json", b"{}".to_vec())
        } else if path.starts_with("/console") || path.contains("/oauth2/") {
            ("application/x-www-form-urlencoded", b"x=1".to_vec())
        } else {
            ("application/json", b"{}".to_vec())
        };
        let reply = if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
            graph.send_raw(method.clone(), &concrete, content_type, body).await
        } else {
            graph.send(method.clone(), &concrete, None, &[]).await
        };
        let what = format!("{method} {concrete}: {} {:.300}", reply.status, reply.text);
        assert_ne!(reply.status, 405, "{what}");
        let message = reply.body["error"]["message"].as_str().or(reply.body["detail"].as_str()).unwrap_or("");
        assert!(
            !message.starts_with("Resource not found for the segment") && !message.starts_with("no resource at"),
            "{what}"
        );
        assert!(!reply.text.contains("There is no console page at"), "{what}");
        assert!(reply.status < 500, "{what}");
    }
}
