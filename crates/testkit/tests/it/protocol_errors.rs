//! Every route family answers the HTTP layer's refusals in its own protocol's error format: an over-long request
//! target (414), over-large headers (431), a body too large (413) and a body of the wrong media type (415), both
//! where the server's middleware refuses them and where hyper does (a target over 65,534 bytes, more headers than
//! hyper holds), and nothing is stored by a refused request.

use reqwest::Method;
use serde_json::{Value, json};
use tenantsync_testkit::{TestApp, TestTenant, fixtures};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Graph,
    Scim,
    OAuth,
    Html,
}

/// One route of a family, as a client calls it.
struct Route {
    family: &'static str,
    method: Method,
    path: String,
    format: Format,
    /// A media type the route reads, for requests meant to fail on something else.
    content_type: &'static str,
    body: &'static str,
}

fn routes(tenant: &TestTenant) -> Vec<Route> {
    let user_body = r#"{"displayName": "Eve"}"#;
    vec![
        Route {
            family: "Graph",
            method: Method::POST,
            path: "/v1.0/users".to_owned(),
            format: Format::Graph,
            content_type: "application/json",
            body: user_body,
        },
        Route {
            family: "$batch",
            method: Method::POST,
            path: "/v1.0/$batch".to_owned(),
            format: Format::Graph,
            content_type: "application/json",
            body: r#"{"requests": []}"#,
        },
        Route {
            family: "SCIM",
            method: Method::POST,
            path: "/scim/v2/Users".to_owned(),
            format: Format::Scim,
            content_type: "application/scim+json",
            body: r#"{"userName": "eve@contoso.com"}"#,
        },
        Route {
            family: "token endpoint",
            method: Method::POST,
            path: format!("/{}/oauth2/v2.0/token", tenant.id),
            format: Format::OAuth,
            content_type: "application/x-www-form-urlencoded",
            body: "grant_type=client_credentials",
        },
        Route {
            family: "console",
            method: Method::POST,
            path: "/console/sign-in".to_owned(),
            format: Format::Html,
            content_type: "application/x-www-form-urlencoded",
            body: "tenant=contoso",
        },
        Route {
            family: "health",
            method: Method::GET,
            path: "/healthz".to_owned(),
            format: Format::Graph,
            content_type: "application/json",
            body: "",
        },
    ]
}

#[track_caller]
fn assert_format(format: Format, status: u16, content_type: &str, text: &str, expected: u16, what: &str) {
    assert_eq!(status, expected, "{what}: {text}");
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    match format {
        Format::Graph => {
            assert!(content_type.starts_with("application/json"), "{what}: {content_type}");
            assert!(body["error"]["code"].as_str().is_some_and(|code| !code.is_empty()), "{what}: {text}");
            assert!(body["error"]["message"].as_str().is_some_and(|text| !text.is_empty()), "{what}: {text}");
            assert!(body["error"]["innerError"]["request-id"].is_string(), "{what}: {text}");
        }
        Format::Scim => {
            assert!(content_type.starts_with("application/scim+json"), "{what}: {content_type}");
            assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{what}: {text}");
            assert_eq!(body["status"], json!(expected.to_string()), "{what}: {text}");
            assert!(body["detail"].as_str().is_some_and(|text| !text.is_empty()), "{what}: {text}");
        }
        Format::OAuth => {
            assert!(content_type.starts_with("application/json"), "{what}: {content_type}");
            assert!(body["error"].as_str().is_some_and(|code| !code.is_empty()), "{what}: {text}");
            assert!(body["error_description"].as_str().is_some_and(|text| !text.is_empty()), "{what}: {text}");
        }
        Format::Html => {
            assert!(content_type.starts_with("text/html"), "{what}: {content_type}");
            assert!(text.contains("<html") && text.contains("class=\"error\""), "{what}: {text}");
        }
    }
}

struct RawReply {
    status: u16,
    content_type: String,
    body: String,
}

/// Sends `request` over a plain TCP connection and reads the answer until the server closes it, writing and
/// reading at once (the server may answer before it has read everything).
async fn send_raw_tcp(app: &TestApp, request: Vec<u8>) -> RawReply {
    let addr = app.base_url().trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.expect("connect to the test server");
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        // The server may close the connection before taking everything: that is not the test's failure.
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut received = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), reader.read_to_end(&mut received)).await;
    let _ = writing.await;
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response head in {text:?}"));
    let status = head.get(9..12).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("status of {head:?}"));
    let content_type = head
        .lines()
        .find_map(|line| line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("content-type")))
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    RawReply { status, content_type, body: body.to_owned() }
}

fn raw_request(route: &Route, target: &str, extra_headers: &str, token: &str) -> Vec<u8> {
    let body = route.body;
    let mut text =
        format!("{} {target} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\n", route.method);
    if !body.is_empty() {
        text.push_str(&format!("content-type: {}\r\ncontent-length: {}\r\n", route.content_type, body.len()));
    }
    text.push_str(extra_headers);
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

async fn n_users(app: &TestApp, tenant: &TestTenant) -> usize {
    let graph = app.as_tenant(tenant).await;
    graph.get("/v1.0/users").await.assert_status(200).values().len()
}

#[tokio::test]
async fn every_route_family_refuses_the_http_layer_in_its_own_format() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let token = app.token(&tenant).await;
    let graph = app.client(&token);
    graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let users_before = n_users(&app, &tenant).await;
    let http = reqwest::Client::new();

    for route in routes(&tenant) {
        let family = route.family;
        let url = app.url(&route.path);
        let send = |request: reqwest::RequestBuilder| async {
            let response = request.send().await.expect("the request reaches the server");
            let status = response.status().as_u16();
            let content_type =
                response.headers().get("content-type").and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
            (status, content_type, response.text().await.expect("read the body"))
        };
        let base = || {
            let request = http.request(route.method.clone(), &url).bearer_auth(&token);
            if route.body.is_empty() {
                request
            } else {
                request.header("content-type", route.content_type).body(route.body)
            }
        };

        // A query string over the server's limit, under hyper's.
        let long_query = format!("x={}", "a".repeat(tenantsync_api::MAX_URI_BYTES));
        let (status, content_type, text) =
            send(http.request(route.method.clone(), format!("{url}?{long_query}")).bearer_auth(&token)).await;
        assert_format(route.format, status, &content_type, &text, 414, &format!("{family}: long query"));

        // A query string over hyper's limit of 65,534 bytes: hyper answers, in the family's format.
        let target = format!("{}?x={}", route.path, "a".repeat(70_000));
        let reply = send_raw_tcp(&app, raw_request(&route, &target, "", &token)).await;
        assert_format(route.format, reply.status, &reply.content_type, &reply.body, 414, &format!("{family}: 70 KB"));

        // One header over the server's limit.
        let (status, content_type, text) = send(base().header("x-padding", "p".repeat(70 * 1024))).await;
        assert_format(route.format, status, &content_type, &text, 431, &format!("{family}: large header"));

        // More headers than hyper holds (100): hyper answers, in the family's format.
        let many: String = (0..150).map(|idx| format!("x-h{idx}: {idx}\r\n")).collect();
        let reply = send_raw_tcp(&app, raw_request(&route, &route.path, &many, &token)).await;
        assert_format(route.format, reply.status, &reply.content_type, &reply.body, 431, &format!("{family}: 150"));

        // A head over hyper's buffer (about 400 KB).
        let huge = format!("x-padding: {}\r\n", "p".repeat(500 * 1024));
        let reply = send_raw_tcp(&app, raw_request(&route, &route.path, &huge, &token)).await;
        assert_format(route.format, reply.status, &reply.content_type, &reply.body, 431, &format!("{family}: 500 KB"));

        // A body of the wrong media type, and one without any.
        let body = if route.body.is_empty() { "{}" } else { route.body };
        // OAuth answers every malformed token request 400 `invalid_request` (RFC 6749 §5.2).
        let refused = if route.format == Format::OAuth { 400 } else { 415 };
        let request = http.request(route.method.clone(), &url).bearer_auth(&token);
        let (status, content_type, text) = send(request.header("content-type", "text/plain").body(body)).await;
        assert_format(route.format, status, &content_type, &text, refused, &format!("{family}: text/plain"));
        if route.format != Format::Html {
            // (The console hands a body without a media type to its form parser, which refuses what is not a form.)
            let request = http.request(route.method.clone(), &url).bearer_auth(&token);
            let (status, content_type, text) = send(request.body(body)).await;
            assert_format(route.format, status, &content_type, &text, refused, &format!("{family}: no content type"));
        }

        // A body over the limit, declared and streamed.
        let large = vec![b' '; tenantsync_api::MAX_BODY_BYTES + 10];
        let request = http.request(route.method.clone(), &url).bearer_auth(&token);
        let (status, content_type, text) =
            send(request.header("content-type", route.content_type).body(large.clone())).await;
        assert_format(route.format, status, &content_type, &text, 413, &format!("{family}: large body"));

        // A malformed request line: hyper answers 400, in the family's format.
        let reply = send_raw_tcp(
            &app,
            format!("{} {}\u{1} HTTP/1.1\r\nhost: x\r\n\r\n", route.method, route.path).into_bytes(),
        )
        .await;
        assert_format(
            route.format,
            reply.status,
            &reply.content_type,
            &reply.body,
            400,
            &format!("{family}: malformed"),
        );
    }
    assert_eq!(n_users(&app, &tenant).await, users_before, "a refused request stored nothing");
}

#[tokio::test]
async fn a_batch_step_of_the_wrong_media_type_is_refused_in_graph_format() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    let users_before = n_users(&app, &tenant).await;
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": "text/plain"},
         "body": fixtures::user("eve@contoso.com", "Eve")},
        {"id": "2", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json; charset=utf-8"},
         "body": {"displayName": 5}},
    ]});
    let reply = graph.post("/v1.0/$batch", batch).await;
    reply.assert_status(200);
    let responses = reply.body["responses"].as_array().expect("responses");
    let step = |id: &str| responses.iter().find(|step| step["id"] == id).expect("the step's answer").clone();
    assert_eq!(step("1")["status"], 415, "{}", reply.text);
    assert_eq!(step("1")["body"]["error"]["code"], "Request_UnsupportedMediaType", "{}", reply.text);
    // A JSON media type with parameters is read (and this body is then refused for what it says).
    assert_eq!(step("2")["status"], 400, "{}", reply.text);
    assert_eq!(n_users(&app, &tenant).await, users_before);
}
