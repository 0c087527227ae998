//! `GET /openapi.json`: the published contract, an OpenAPI 3.1 document built from the same definitions the server
//! uses. Its operations are [`OPERATIONS`], one table of every route the router serves (a test in
//! `crates/testkit/tests/it/openapi.rs` compares it with the router's own route table, both ways, so neither can
//! drift); the `User` and `Group` schemas are generated from the property table every entry path checks
//! (`tenantsync_model::properties`), with its lengths, formats and multiplicities; error bodies are each family's
//! (`crate::protocol::Family`).

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};
use tenantsync_model::properties::{Format, GROUP_PROPERTIES, PropertyKind, PropertySpec, USER_PROPERTIES};

use crate::AppState;
use crate::protocol::Family;

/// A documented path: its tag, the path (axum's syntax, which is OpenAPI's), and each method with a summary.
pub type DocumentedPath = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// Every route the router serves.
pub const OPERATIONS: &[DocumentedPath] = &[
    // The token endpoint and discovery.
    ("OAuth", "/{tenant}/oauth2/v2.0/token", &[("post", "Get an access token (client credentials grant)")]),
    ("OAuth", "/{tenant}/discovery/v2.0/keys", &[("get", "The tenant's token signing keys (JWKS)")]),
    // Users.
    ("Users", "/v1.0/users", &[("get", "List users"), ("post", "Create a user")]),
    ("Users", "/v1.0/users/$count", &[("get", "Count users")]),
    ("Users", "/v1.0/users/delta", &[("get", "Track user changes (delta)")]),
    ("Users", "/v1.0/users/delta()", &[("get", "Track user changes (delta)")]),
    ("Users", "/v1.0/users/{key}", &[("get", "Get a user"), ("patch", "Update a user"), ("delete", "Delete a user")]),
    ("Users", "/v1.0/users/{key}/manager", &[("get", "Get a user's manager")]),
    (
        "Users",
        "/v1.0/users/{key}/manager/$ref",
        &[("get", "Get the manager reference"), ("put", "Set the manager"), ("delete", "Remove the manager")],
    ),
    ("Users", "/v1.0/users/{key}/directReports", &[("get", "List direct reports")]),
    ("Users", "/v1.0/users/{key}/memberOf", &[("get", "List the groups a user is a member of")]),
    // Groups.
    ("Groups", "/v1.0/groups", &[("get", "List groups"), ("post", "Create a group")]),
    ("Groups", "/v1.0/groups/$count", &[("get", "Count groups")]),
    ("Groups", "/v1.0/groups/delta", &[("get", "Track group changes (delta)")]),
    ("Groups", "/v1.0/groups/delta()", &[("get", "Track group changes (delta)")]),
    (
        "Groups",
        "/v1.0/groups/{id}",
        &[("get", "Get a group"), ("patch", "Update a group"), ("delete", "Delete a group")],
    ),
    ("Groups", "/v1.0/groups/{id}/members", &[("get", "List members")]),
    ("Groups", "/v1.0/groups/{id}/members/$ref", &[("post", "Add a member")]),
    ("Groups", "/v1.0/groups/{id}/members/{member}/$ref", &[("delete", "Remove a member")]),
    ("Groups", "/v1.0/groups/{id}/transitiveMembers", &[("get", "List transitive members")]),
    ("Groups", "/v1.0/groups/{id}/memberOf", &[("get", "List the groups a group is a member of")]),
    // Directory objects.
    ("Directory", "/v1.0/directoryObjects/{id}", &[("get", "Get a user or group by id")]),
    ("Directory", "/v1.0/directory/deletedItems/microsoft.graph.user", &[("get", "List deleted users")]),
    ("Directory", "/v1.0/directory/deletedItems/microsoft.graph.group", &[("get", "List deleted groups")]),
    (
        "Directory",
        "/v1.0/directory/deletedItems",
        &[("get", "Not supported: name a type (answers 400)"), ("delete", "Not supported (answers 400)")],
    ),
    ("Directory", "/v1.0/directory/deletedItems/{id}", &[("get", "Get a deleted object"), ("delete", "Purge it")]),
    ("Directory", "/v1.0/directory/deletedItems/{id}/restore", &[("post", "Restore a deleted object")]),
    ("Directory", "/v1.0/organization", &[("get", "The tenant")]),
    ("Directory", "/v1.0/organization/{id}", &[("get", "The tenant by id")]),
    ("Batch", "/v1.0/$batch", &[("post", "Run up to 20 requests in one (JSON batching)")]),
    // Cross-tenant access policy and partners.
    ("Partners", "/v1.0/policies/crossTenantAccessPolicy", &[("get", "The cross-tenant access policy")]),
    ("Partners", "/v1.0/policies/crossTenantAccessPolicy/default", &[("get", "The default configuration")]),
    (
        "Partners",
        "/v1.0/policies/crossTenantAccessPolicy/partners",
        &[("get", "List partners"), ("post", "Add a partner")],
    ),
    (
        "Partners",
        "/v1.0/policies/crossTenantAccessPolicy/partners/{partner}",
        &[("get", "Get a partner"), ("patch", "Update a partner"), ("delete", "Remove a partner")],
    ),
    (
        "Partners",
        "/v1.0/policies/crossTenantAccessPolicy/partners/{partner}/identitySynchronization",
        &[
            ("get", "A partner's identity synchronization policy"),
            ("put", "Set it"),
            ("patch", "Update it"),
            ("delete", "Remove it"),
        ],
    ),
    // Trust: tombstones and the kill switch.
    (
        "Trust",
        "/v1.0/policies/crossTenantAccessPolicy/partners/{partner}/identitySynchronization/tombstones",
        &[("get", "List tombstones (users this tenant deleted, not to be created again)")],
    ),
    (
        "Trust",
        "/v1.0/policies/crossTenantAccessPolicy/partners/{partner}/identitySynchronization/tombstones/{id}",
        &[("get", "Get a tombstone"), ("delete", "Remove a tombstone")],
    ),
    (
        "Trust",
        "/v1.0/policies/crossTenantAccessPolicy/partners/{partner}/identitySynchronization/blockInboundUsers",
        &[("post", "Block every inbound write of a partner (kill switch)")],
    ),
    (
        "Trust",
        "/v1.0/policies/crossTenantAccessPolicy/partners/{partner}/identitySynchronization/unblockInboundUsers",
        &[("post", "Lift the block")],
    ),
    // Inbound guardrails and held changes.
    (
        "Guardrails",
        "/v1.0/policies/crossTenantAccessPolicy/default/inboundSyncGuardrails",
        &[("get", "Default inbound guardrails"), ("put", "Set them"), ("patch", "Update them"), ("delete", "Remove")],
    ),
    (
        "Guardrails",
        "/v1.0/policies/crossTenantAccessPolicy/partners/{partner}/inboundSyncGuardrails",
        &[
            ("get", "A partner's inbound guardrails"),
            ("put", "Set them"),
            ("patch", "Update them"),
            ("delete", "Remove"),
        ],
    ),
    ("Guardrails", "/v1.0/policies/crossTenantAccessPolicy/heldInboundChanges", &[("get", "List held changes")]),
    ("Guardrails", "/v1.0/policies/crossTenantAccessPolicy/heldInboundChanges/approve", &[("post", "Approve all")]),
    ("Guardrails", "/v1.0/policies/crossTenantAccessPolicy/heldInboundChanges/reject", &[("post", "Reject all")]),
    ("Guardrails", "/v1.0/policies/crossTenantAccessPolicy/heldInboundChanges/{id}", &[("get", "Get a held change")]),
    ("Guardrails", "/v1.0/policies/crossTenantAccessPolicy/heldInboundChanges/{id}/approve", &[("post", "Approve it")]),
    ("Guardrails", "/v1.0/policies/crossTenantAccessPolicy/heldInboundChanges/{id}/reject", &[("post", "Reject it")]),
    // Applications and service principals.
    ("Applications", "/v1.0/applicationTemplates/{template}", &[("get", "Get an application template")]),
    ("Applications", "/v1.0/applicationTemplates/{template}/instantiate", &[("post", "Instantiate it")]),
    ("Applications", "/v1.0/applications", &[("get", "List applications")]),
    ("Applications", "/v1.0/applications/{id}", &[("get", "Get an application"), ("delete", "Delete it")]),
    (
        "Applications",
        "/v1.0/applications/{id}/extensionProperties",
        &[("get", "List directory extension properties"), ("post", "Register one")],
    ),
    ("Applications", "/v1.0/applications/{id}/extensionProperties/{property}", &[("delete", "Remove one")]),
    ("Applications", "/v1.0/servicePrincipals", &[("get", "List service principals")]),
    ("Applications", "/v1.0/servicePrincipals/{id}", &[("get", "Get a service principal"), ("delete", "Delete it")]),
    (
        "Applications",
        "/v1.0/servicePrincipals/{id}/appRoleAssignedTo",
        &[("get", "List assignments (sync scope)"), ("post", "Assign a user or group")],
    ),
    ("Applications", "/v1.0/servicePrincipals/{id}/appRoleAssignedTo/{assignment}", &[("delete", "Unassign")]),
    // Synchronization.
    ("Synchronization", "/v1.0/servicePrincipals/{sp}/synchronization/templates", &[("get", "Sync templates")]),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/secrets",
        &[("get", "Sync secrets (sealed values shown as *****)"), ("put", "Set sync secrets")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs",
        &[("get", "List sync jobs"), ("post", "Create a sync job")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/validateCredentials",
        &[("post", "Validate credentials")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}",
        &[("get", "Get a sync job"), ("delete", "Delete it")],
    ),
    ("Synchronization", "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/start", &[("post", "Start")]),
    ("Synchronization", "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/pause", &[("post", "Pause")]),
    ("Synchronization", "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/restart", &[("post", "Restart")]),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/schema",
        &[("get", "The job's synchronization schema"), ("put", "Replace it")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/schema/parseExpression",
        &[("post", "Parse and evaluate a mapping expression")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/provisionOnDemand",
        &[("post", "Provision one object now")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/plan",
        &[("post", "Dry run: what a cycle would do")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/deadLetters",
        &[("get", "List dead letters")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/deadLetters/retry",
        &[("post", "Retry all")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/deadLetters/drop",
        &[("post", "Drop all")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/deadLetters/{object}/retry",
        &[("post", "Retry one")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/deadLetters/{object}/drop",
        &[("post", "Drop one")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/stagedDeletions",
        &[("get", "List staged deletions")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/stagedDeletions/approve",
        &[("post", "Approve all")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/stagedDeletions/reject",
        &[("post", "Reject all")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/stagedDeletions/{object}/approve",
        &[("post", "Approve one")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/stagedDeletions/{object}/reject",
        &[("post", "Reject one")],
    ),
    (
        "Synchronization",
        "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/{segment}",
        &[
            ("get", "An object's connection; the segment is objectConnections('{objectId}')"),
            ("delete", "Forget an object's connection"),
        ],
    ),
    // Logs and alerts.
    ("Logs", "/v1.0/auditLogs/provisioning", &[("get", "Provisioning logs")]),
    ("Logs", "/v1.0/auditLogs/directoryAudits", &[("get", "Directory audit logs")]),
    ("Security", "/v1.0/security/alerts_v2", &[("get", "List security alerts")]),
    ("Security", "/v1.0/security/alerts_v2/{id}", &[("get", "Get an alert"), ("patch", "Update an alert")]),
    (
        "Security",
        "/v1.0/security/alertSettings",
        &[("get", "Alert settings (webhook)"), ("put", "Set them"), ("patch", "Update them")],
    ),
    // SCIM 2.0.
    ("SCIM", "/scim/v2/ServiceProviderConfig", &[("get", "Service provider configuration")]),
    ("SCIM", "/scim/v2/ResourceTypes", &[("get", "Resource types")]),
    ("SCIM", "/scim/v2/ResourceTypes/{id}", &[("get", "A resource type")]),
    ("SCIM", "/scim/v2/Schemas", &[("get", "Schemas")]),
    ("SCIM", "/scim/v2/Schemas/{id}", &[("get", "A schema")]),
    ("SCIM", "/scim/v2/Users", &[("get", "List or filter users"), ("post", "Create a user")]),
    ("SCIM", "/scim/v2/Users/.search", &[("post", "Search users")]),
    (
        "SCIM",
        "/scim/v2/Users/{id}",
        &[("get", "Get a user"), ("put", "Replace a user"), ("patch", "Patch a user"), ("delete", "Delete a user")],
    ),
    ("SCIM", "/scim/v2/Groups", &[("get", "List or filter groups"), ("post", "Create a group")]),
    ("SCIM", "/scim/v2/Groups/.search", &[("post", "Search groups")]),
    (
        "SCIM",
        "/scim/v2/Groups/{id}",
        &[("get", "Get a group"), ("put", "Replace a group"), ("patch", "Patch a group"), ("delete", "Delete a group")],
    ),
    ("SCIM", "/scim/v2/.search", &[("post", "Search users and groups")]),
    // The web console (HTML pages and forms).
    ("Console", "/console", &[("get", "Console home (redirects)")]),
    ("Console", "/console/", &[("get", "Console home (redirects)")]),
    ("Console", "/console/sign-in", &[("get", "Sign-in page"), ("post", "Sign in with an app credential")]),
    ("Console", "/console/sign-out", &[("post", "Sign out")]),
    ("Console", "/console/topology", &[("get", "Topology page")]),
    ("Console", "/console/jobs", &[("get", "Jobs page")]),
    ("Console", "/console/jobs/{sp}/{job}", &[("get", "Job page")]),
    ("Console", "/console/jobs/{sp}/{job}/live", &[("get", "Job status fragment")]),
    ("Console", "/console/jobs/{sp}/{job}/dry-run", &[("get", "Dry run page")]),
    ("Console", "/console/jobs/{sp}/{job}/start", &[("post", "Start the job")]),
    ("Console", "/console/jobs/{sp}/{job}/pause", &[("post", "Pause the job")]),
    ("Console", "/console/jobs/{sp}/{job}/restart", &[("post", "Restart the job")]),
    ("Console", "/console/jobs/{sp}/{job}/settings", &[("post", "Change the job's settings")]),
    ("Console", "/console/jobs/{sp}/{job}/provision", &[("post", "Provision on demand")]),
    ("Console", "/console/jobs/{sp}/{job}/staged/{decision}", &[("post", "Decide staged deletions")]),
    ("Console", "/console/jobs/{sp}/{job}/dead-letters/{decision}", &[("post", "Decide dead letters")]),
    ("Console", "/console/queues", &[("get", "Queues page")]),
    ("Console", "/console/logs", &[("get", "Provisioning logs page")]),
    ("Console", "/console/logs/{seq}", &[("get", "Provisioning log entry page")]),
    ("Console", "/console/audit", &[("get", "Audit logs page")]),
    ("Console", "/console/tester", &[("get", "Expression tester"), ("post", "Evaluate an expression")]),
    ("Console", "/console/static/htmx.min.js", &[("get", "Vendored htmx")]),
    ("Console", "/console/static/console.css", &[("get", "Style sheet")]),
    ("Console", "/console/static/favicon.svg", &[("get", "Icon")]),
    // Operations.
    ("Operations", "/healthz", &[("get", "Liveness")]),
    ("Operations", "/metrics", &[("get", "Prometheus metrics")]),
    ("Operations", "/openapi.json", &[("get", "This document")]),
];

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

async fn openapi_json() -> Json<Value> {
    Json(document())
}

/// The whole OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (tag, path, methods) in OPERATIONS {
        let family = Family::of(path);
        let parameters: Vec<Value> = path_parameters(path)
            .into_iter()
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut item = Map::new();
        if !parameters.is_empty() {
            item.insert("parameters".to_owned(), Value::Array(parameters));
        }
        for (method, summary) in *methods {
            item.insert((*method).to_owned(), operation(tag, path, method, summary, family));
        }
        paths.insert((*path).to_owned(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tenantsync",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Graph-compatible directory API, SCIM 2.0, cross-tenant synchronization",
            "description": "Tenants of users and groups served through a Microsoft Graph-compatible API under /v1.0 \
                (with tenantsync's own additions: held inbound changes, tombstones, security alerts, dead letters, \
                dry runs), a SCIM 2.0 service provider under /scim/v2, and an OAuth 2.0 client-credentials token \
                endpoint. Errors: Graph's error body under /v1.0, SCIM's error schema under /scim/v2, RFC 6749 \
                errors at the token endpoint, HTML pages under /console.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "tags": tags(),
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from POST /{tenant}/oauth2/v2.0/token (client credentials)."
                },
                "consoleSession": {"type": "apiKey", "in": "cookie", "name": "tenantsync_session"},
            },
            "schemas": schemas(),
        },
    })
}

fn tags() -> Vec<Value> {
    let mut names: Vec<&str> = Vec::new();
    for (tag, _, _) in OPERATIONS {
        if !names.contains(tag) {
            names.push(tag);
        }
    }
    names.into_iter().map(|name| json!({"name": name})).collect()
}

/// The `{name}` segments of a path, in order.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|segment| segment.strip_prefix('{').and_then(|rest| rest.strip_suffix('}'))).collect()
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn operation(tag: &str, path: &str, method: &str, summary: &str, family: Family) -> Value {
    let mut op = Map::new();
    op.insert("tags".to_owned(), json!([tag]));
    op.insert("summary".to_owned(), json!(summary));
    op.insert("operationId".to_owned(), json!(operation_id(path, method)));
    let public = matches!(family, Family::OAuth | Family::Console) || is_operations(path);
    if !public {
        op.insert("security".to_owned(), json!([{"bearer": []}]));
    }
    if family == Family::Console && !path.contains("/static/") && !path.ends_with("sign-in") && path != "/console" {
        op.insert("security".to_owned(), json!([{"consoleSession": []}]));
    }
    if matches!(method, "post" | "put" | "patch") {
        op.insert("requestBody".to_owned(), request_body(path, method, family));
    }
    let (success_type, success_schema) = match family {
        Family::Graph if path == "/metrics" => ("text/plain", json!({"type": "string"})),
        Family::Graph if path.contains("/$count") => ("text/plain", json!({"type": "integer"})),
        Family::Graph => ("application/json", success_schema(path, method)),
        Family::Scim => ("application/scim+json", json!({"type": "object"})),
        Family::OAuth if path.ends_with("/token") => ("application/json", schema_ref("TokenResponse")),
        Family::OAuth => ("application/json", json!({"type": "object"})),
        Family::Console => ("text/html", json!({"type": "string"})),
    };
    let (error_type, error_schema) = match family {
        Family::Graph => ("application/json", "GraphError"),
        Family::Scim => ("application/scim+json", "ScimError"),
        Family::OAuth => ("application/json", "OAuthError"),
        Family::Console => ("text/html", "HtmlPage"),
    };
    op.insert(
        "responses".to_owned(),
        json!({
            "2XX": {"description": "Success", "content": {success_type: {"schema": success_schema}}},
            "3XX": {"description": "A redirect (console pages and forms)"},
            "4XX": {"description": "Refused: the body names why", "content": {error_type: {"schema": schema_ref(error_schema)}}},
            "5XX": {"description": "Internal error", "content": {error_type: {"schema": schema_ref(error_schema)}}},
        }),
    );
    Value::Object(op)
}

fn is_operations(path: &str) -> bool {
    matches!(path, "/healthz" | "/metrics" | "/openapi.json")
}

/// `get /v1.0/users/{key}` → `get_v1.0_users_key`: unique per operation, stable while the route is.
fn operation_id(path: &str, method: &str) -> String {
    let mut id = method.to_owned();
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        id.push('_');
        id.extend(segment.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '$' | '-')));
    }
    if path.ends_with('/') {
        id.push_str("_slash");
    }
    if path.ends_with("()") {
        id.push_str("_fn");
    }
    id
}

fn success_schema(path: &str, method: &str) -> Value {
    match (method, path) {
        ("get", "/v1.0/users") => schema_ref("UserCollection"),
        ("get", "/v1.0/groups") => schema_ref("GroupCollection"),
        ("get" | "patch", "/v1.0/users/{key}") | ("post", "/v1.0/users") => schema_ref("User"),
        ("get" | "patch", "/v1.0/groups/{id}") | ("post", "/v1.0/groups") => schema_ref("Group"),
        _ => json!({"type": "object"}),
    }
}

fn request_body(path: &str, method: &str, family: Family) -> Value {
    let (media_type, schema) = match family {
        Family::Graph => {
            let schema = match (method, path) {
                ("post", "/v1.0/users") => schema_ref("UserCreate"),
                ("patch", "/v1.0/users/{key}") => schema_ref("User"),
                ("post", "/v1.0/groups") => schema_ref("GroupCreate"),
                ("patch", "/v1.0/groups/{id}") => schema_ref("Group"),
                ("post", "/v1.0/$batch") => schema_ref("BatchRequest"),
                _ => json!({"type": "object"}),
            };
            ("application/json", schema)
        }
        Family::Scim => ("application/scim+json", json!({"type": "object", "required": ["schemas"]})),
        Family::OAuth => ("application/x-www-form-urlencoded", schema_ref("TokenRequest")),
        Family::Console => ("application/x-www-form-urlencoded", json!({"type": "object"})),
    };
    let required = !path.contains("/jobs/{job}/") || path.ends_with("/schema") || path.ends_with("parseExpression");
    json!({"required": required && family != Family::Console, "content": {media_type: {"schema": schema}}})
}

/// The JSON Schema of one property of the table.
fn property_schema(spec: &PropertySpec) -> Value {
    let mut schema = match spec.kind {
        PropertyKind::String => string_schema(spec),
        PropertyKind::Boolean => json!({"type": "boolean"}),
        PropertyKind::DateTime => json!({"type": "string", "format": "date-time"}),
        PropertyKind::Guid => json!({"type": "string", "format": "uuid"}),
        PropertyKind::Enum(values) => json!({"type": "string", "enum": values}),
        PropertyKind::StringCollection => {
            let mut schema = json!({"type": "array", "items": string_schema(spec)});
            if let Some(max_items) = spec.max_items {
                schema["maxItems"] = json!(max_items);
            }
            schema
        }
        PropertyKind::Object => object_schema(spec.fields),
        PropertyKind::ObjectCollection => {
            let mut schema = json!({"type": "array", "items": object_schema(spec.fields)});
            if let Some(max_items) = spec.max_items {
                schema["maxItems"] = json!(max_items);
            }
            schema
        }
        PropertyKind::AlternativeSecurityIds => json!({"type": "array", "items": {"type": "object", "properties": {
            "type": {"type": "integer"}, "identityProvider": {"type": ["string", "null"]}, "key": {"type": "string"}
        }}}),
    };
    schema["description"] = json!(spec.source);
    if spec.read_only {
        schema["readOnly"] = json!(true);
    }
    schema
}

fn string_schema(spec: &PropertySpec) -> Value {
    let mut schema = json!({"type": "string"});
    if let Some(max_len) = spec.max_len {
        schema["maxLength"] = json!(max_len);
    }
    match spec.format {
        Some(Format::Email) => schema["format"] = json!("email"),
        Some(Format::CountryCode) => schema["pattern"] = json!("^[A-Z]{2}$"),
        Some(Format::LanguageTag) => schema["pattern"] = json!("^[A-Za-z]{2}(-[A-Za-z0-9]{1,8})*$"),
        Some(Format::MailNickname) => schema["pattern"] = json!("^[!#-'*+\\-./0-9=?A-Z^_`a-z{|}~]+$"),
        Some(Format::UserPrincipalName) => schema["pattern"] = json!("^[^@\\s]+@[^@\\s]+$"),
        None => {}
    }
    schema
}

fn object_schema(fields: &[PropertySpec]) -> Value {
    let properties: Map<String, Value> =
        fields.iter().map(|field| (field.name.to_owned(), property_schema(field))).collect();
    json!({"type": "object", "properties": properties})
}

fn entity_schema(table: &[PropertySpec]) -> Value {
    let mut schema = object_schema(table);
    schema["properties"]["@odata.type"] = json!({"type": "string"});
    schema
}

fn create_schema(name: &str, table: &[PropertySpec]) -> Value {
    let required: Vec<&str> = table.iter().filter(|spec| spec.required_on_create).map(|spec| spec.name).collect();
    json!({"allOf": [schema_ref(name)], "required": required})
}

fn schemas() -> Value {
    json!({
        "User": entity_schema(USER_PROPERTIES),
        "UserCreate": create_schema("User", USER_PROPERTIES),
        "Group": entity_schema(GROUP_PROPERTIES),
        "GroupCreate": create_schema("Group", GROUP_PROPERTIES),
        "UserCollection": collection_schema("User"),
        "GroupCollection": collection_schema("Group"),
        "BatchRequest": {
            "type": "object",
            "required": ["requests"],
            "properties": {"requests": {"type": "array", "maxItems": crate::batch::MAX_STEPS, "items": {
                "type": "object",
                "required": ["id", "method", "url"],
                "properties": {
                    "id": {"type": "string"},
                    "method": {"type": "string", "enum": ["GET", "POST", "PATCH", "PUT", "DELETE"]},
                    "url": {"type": "string"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "body": {},
                    "dependsOn": {"type": "array", "items": {"type": "string"}},
                },
            }}},
        },
        "GraphError": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "innerError": {"type": "object", "properties": {
                        "request-id": {"type": "string"}, "client-request-id": {"type": "string"}
                    }},
                },
            }},
        },
        "ScimError": {
            "type": "object",
            "required": ["schemas", "status"],
            "properties": {
                "schemas": {"type": "array", "items": {"const": tenantsync_scim::ERROR_URN}},
                "status": {"type": "string"},
                "scimType": {"type": "string"},
                "detail": {"type": "string"},
            },
        },
        "OAuthError": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "error_description": {"type": "string"},
                "error_codes": {"type": "array", "items": {"type": "integer"}},
            },
        },
        "TokenRequest": {
            "type": "object",
            "required": ["grant_type", "client_id", "client_secret", "scope"],
            "properties": {
                "grant_type": {"const": "client_credentials"},
                "client_id": {"type": "string", "format": "uuid"},
                "client_secret": {"type": "string"},
                "scope": {"type": "string", "examples": ["https://graph.microsoft.com/.default"]},
            },
        },
        "TokenResponse": {
            "type": "object",
            "properties": {
                "token_type": {"const": "Bearer"},
                "expires_in": {"type": "integer"},
                "ext_expires_in": {"type": "integer"},
                "access_token": {"type": "string"},
            },
        },
        "HtmlPage": {"type": "string"},
    })
}

fn collection_schema(item: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            "value": {"type": "array", "items": schema_ref(item)},
            "@odata.nextLink": {"type": "string", "format": "uri"},
            "@odata.count": {"type": "integer"},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique_and_parameters_declared() {
        let document = document();
        let mut ids = std::collections::HashSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let id = op["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "{id} twice");
            }
            let declared = item["parameters"].as_array().map_or(0, Vec::len);
            assert_eq!(declared, path_parameters(path).len(), "{path}");
        }
    }

    #[test]
    fn user_and_group_schemas_come_from_the_property_table() {
        let document = document();
        let user = &document["components"]["schemas"]["User"]["properties"];
        assert_eq!(user["displayName"]["maxLength"], 256);
        assert_eq!(user["businessPhones"]["maxItems"], 1);
        assert_eq!(user["mail"]["format"], "email");
        assert_eq!(user["id"]["readOnly"], true);
        for spec in USER_PROPERTIES {
            assert!(user.get(spec.name).is_some(), "{}", spec.name);
        }
        let group = &document["components"]["schemas"]["Group"]["properties"];
        for spec in GROUP_PROPERTIES {
            assert!(group.get(spec.name).is_some(), "{}", spec.name);
        }
        assert!(
            document["components"]["schemas"]["UserCreate"]["required"]
                .as_array()
                .unwrap()
                .contains(&json!("userPrincipalName"))
        );
    }
}
