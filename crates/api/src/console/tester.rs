//! The expression tester: a mapping expression, a scoping filter (Graph's JSON) or a dynamic membership rule,
//! evaluated against attributes typed as a JSON object, through `tenantsync_expr::jsonl` exactly as the CLI's
//! `expr eval`, `scope test` and `rule test` do (`Now()` is the server's clock). It reads and writes nothing, so a
//! read-only credential may use it; the form is still a POST with the CSRF token, like every console form.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};
use tenantsync_expr::jsonl::{self, EvalOptions};
use time::format_description::well_known::Rfc3339;

use super::session::Signed;
use super::{Chrome, ConsoleError, SignedForm, render};
use crate::AppState;

const KINDS: &[(&str, &str)] = &[
    ("mapping", "Attribute mapping expression"),
    ("scope", "Scoping filter (JSON)"),
    ("rule", "Dynamic membership rule"),
];

const EXAMPLE_ATTRIBUTES: &str =
    r#"{"givenName": "Ada", "surname": "Lovelace", "department": "Sales", "userPrincipalName": "ada@contoso.example"}"#;

#[derive(Template)]
#[template(path = "console/tester.html")]
struct TesterPage {
    chrome: Chrome,
    kinds: &'static [(&'static str, &'static str)],
    kind: String,
    expression: String,
    attributes: String,
    /// `Some((true, text))` for an answer, `Some((false, message))` for an error.
    outcome: Option<(bool, String)>,
}

/// `GET /console/tester`.
pub(crate) async fn form(signed: Signed) -> Result<Response, ConsoleError> {
    render(&TesterPage {
        chrome: signed.chrome("tester"),
        kinds: KINDS,
        kind: "mapping".to_owned(),
        expression: r#"Join(" ", [givenName], [surname])"#.to_owned(),
        attributes: EXAMPLE_ATTRIBUTES.to_owned(),
        outcome: None,
    })
}

/// Evaluates one request line with the CLI's JSON-lines entry point; returns its one answer.
fn answer(kind: &str, expression: &str, attributes: Value, now: time::OffsetDateTime) -> Result<Value, String> {
    let now_text = now.format(&Rfc3339).map_err(|err| err.to_string())?;
    let line = match kind {
        "mapping" => json!({"expression": expression, "attributes": attributes, "now": now_text}),
        "scope" => {
            let filter: Value = serde_json::from_str(expression)
                .map_err(|err| format!("The scoping filter must be Graph's JSON filter object: {err}"))?;
            json!({"filter": filter, "user": attributes})
        }
        "rule" => json!({"rule": expression, "user": attributes, "now": now_text}),
        other => return Err(format!("Unknown kind '{other}'.")),
    };
    let mut output = Vec::new();
    let input = format!("{line}\n");
    let options = EvalOptions { now: Some(now), seed: None };
    let result = match kind {
        "mapping" => jsonl::expr_eval_lines(input.as_bytes(), &mut output, &options),
        "scope" => jsonl::scope_test_lines(input.as_bytes(), &mut output),
        _ => jsonl::rule_test_lines(input.as_bytes(), &mut output),
    };
    result.map_err(|err| err.to_string())?;
    serde_json::from_slice(output.trim_ascii()).map_err(|err| err.to_string())
}

/// `POST /console/tester` with `kind`, `expression` and `attributes`.
pub(crate) async fn submit(
    State(state): State<AppState>,
    SignedForm { signed, form }: SignedForm,
) -> Result<Response, ConsoleError> {
    let kind = form.text("kind").to_owned();
    if !KINDS.iter().any(|(known, _)| *known == kind) {
        return Err(ConsoleError::BadRequest(format!("Unknown kind '{kind}'.")));
    }
    let expression = form.get("expression").unwrap_or("").to_owned();
    let attributes_text = form.get("attributes").unwrap_or("").to_owned();
    let outcome =
        match serde_json::from_str::<Value>(if attributes_text.trim().is_empty() { "{}" } else { &attributes_text }) {
            Ok(attributes) if attributes.is_object() => {
                match answer(&kind, &expression, attributes, state.directory.clock().now()) {
                    Ok(answer) => match answer.get("error") {
                        Some(error) => (false, error.as_str().unwrap_or("error").to_owned()),
                        None => (true, describe(&answer)),
                    },
                    Err(message) => (false, message),
                }
            }
            Ok(_) => (false, "The attributes must be a JSON object, like {\"department\": \"Sales\"}.".to_owned()),
            Err(err) => (false, format!("The attributes are not valid JSON: {err}")),
        };
    render(&TesterPage {
        chrome: signed.chrome("tester"),
        kinds: KINDS,
        kind,
        expression,
        attributes: attributes_text,
        outcome: Some(outcome),
    })
}

/// The answer in words.
fn describe(answer: &Value) -> String {
    if let Some(result) = answer.get("result") {
        return format!("Result: {result}");
    }
    if answer.get("ignore_flow").is_some() {
        return "IgnoreFlow: the attribute is left out of the write.".to_owned();
    }
    if let Some(in_scope) = answer.get("in_scope").and_then(Value::as_bool) {
        return if in_scope { "In scope.".to_owned() } else { "Out of scope.".to_owned() };
    }
    if let Some(member) = answer.get("member").and_then(Value::as_bool) {
        return if member { "Member: the rule matches.".to_owned() } else { "Not a member.".to_owned() };
    }
    answer.to_string()
}
