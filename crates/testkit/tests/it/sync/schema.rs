//! The synchronization schema over HTTP: GET → PUT → GET gives the same document; a bad expression, an unknown
//! target attribute and a changed matching attribute are refused with 400 `schemaInvalid`; `parseExpression`
//! parses and evaluates against `testInputObject.properties`.

use serde_json::{Value, json};
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{SyncSetup, configure_sync};

async fn setup(app: &TestApp) -> SyncSetup {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    configure_sync(app, &source, &target).await
}

/// The index of the user mapping's attribute mapping whose target is `name`.
fn mapping_index(schema: &Value, name: &str) -> usize {
    schema["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"]
        .as_array()
        .expect("attributeMappings")
        .iter()
        .position(|mapping| mapping["targetAttributeName"] == name)
        .unwrap_or_else(|| panic!("no mapping for {name}"))
}

#[tokio::test]
async fn schema_round_trips_unchanged() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let original = sync.schema().await;
    assert_eq!(original["synchronizationRules"][0]["name"], "USER_INBOUND_USER");
    sync.put_schema(original.clone()).await.assert_status(204);
    assert_eq!(sync.schema().await, original);

    // An edited schema comes back as written too.
    let mut edited = original.clone();
    let department = mapping_index(&edited, "department");
    edited["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][department]["source"]["expression"] =
        json!("Join(\"-\", [department], \"EU\")");
    edited["synchronizationRules"][0]["objectMappings"][0]["scope"] = json!({"groups": [{"name": "All enabled",
        "clauses": [{"operatorName": "IS TRUE", "sourceOperandName": "accountEnabled", "targetOperand": null}]}]});
    sync.put_schema(edited.clone()).await.assert_status(204);
    assert_eq!(sync.schema().await, edited);
}

/// One change to a schema document.
type SchemaEdit = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn invalid_schemas_are_refused_with_schema_invalid() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let original = sync.schema().await;
    let cases: Vec<(&str, SchemaEdit)> = vec![
        (
            "a bad expression",
            Box::new(|schema: &mut Value| {
                let index = mapping_index(schema, "state");
                schema["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][index]["source"]["expression"] =
                    json!("Jion(\" \", [state])");
            }),
        ),
        (
            "an unknown target attribute",
            Box::new(|schema: &mut Value| {
                let index = mapping_index(schema, "state");
                schema["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][index]["targetAttributeName"] =
                    json!("shoeSize");
            }),
        ),
        (
            "another matching attribute",
            Box::new(|schema: &mut Value| {
                let index = mapping_index(schema, "mail");
                schema["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][index]["matchingPriority"] =
                    json!(2);
            }),
        ),
        (
            "a changed matching expression",
            Box::new(|schema: &mut Value| {
                let index = mapping_index(schema, "alternativeSecurityIds");
                schema["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][index]["source"]["expression"] =
                    json!("[mail]");
            }),
        ),
        (
            "the matching attribute removed",
            Box::new(|schema: &mut Value| {
                let index = mapping_index(schema, "alternativeSecurityIds");
                schema["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"]
                    .as_array_mut()
                    .expect("attributeMappings")
                    .remove(index);
            }),
        ),
    ];
    for (what, edit) in cases {
        let mut schema = original.clone();
        edit(&mut schema);
        let reply = sync.put_schema(schema).await;
        reply.assert_error(400, "schemaInvalid");
        assert_eq!(sync.schema().await, original, "{what}: the stored schema is unchanged");
    }
}

#[tokio::test]
async fn parse_expression_parses_and_evaluates() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let path = sync.job_path("/schema/parseExpression");
    let reply = sync
        .src
        .post(
            &path,
            json!({
                "expression": "Join(\" \", [givenName], [surname])",
                "testInputObject": {"definition": null, "properties": [
                    {"key": "givenName", "value": "Ada"}, {"key": "surname", "value": "Lovelace"},
                ]},
                "targetAttributeDefinition": null,
            }),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.body["parsingSucceeded"], true);
    assert_eq!(reply.body["evaluationSucceeded"], true);
    assert_eq!(reply.body["evaluationResult"], json!(["Ada Lovelace"]));
    assert_eq!(reply.body["error"], json!(null));

    // Parsing only.
    let reply = sync.src.post(&path, json!({"expression": "ToUpper([mail])"})).await;
    reply.assert_status(200);
    assert_eq!(reply.body["parsingSucceeded"], true);
    assert_eq!(reply.body["evaluationSucceeded"], false);
    assert_eq!(reply.body["evaluationResult"], json!(null));

    // A syntax error is an answer, not an HTTP error.
    let reply = sync.src.post(&path, json!({"expression": "Join(\" \", [givenName]"})).await;
    reply.assert_status(200);
    assert_eq!(reply.body["parsingSucceeded"], false);
    assert_eq!(reply.body["evaluationSucceeded"], false);
    assert_eq!(reply.body["error"]["code"], "ExpressionParsingFailed");
}
