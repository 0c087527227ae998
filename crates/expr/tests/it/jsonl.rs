//! The JSON-lines entry points: several lines in, including bad ones, exact lines out.

use expect_test::{Expect, expect};
use tenantsync_expr::jsonl::{EvalOptions, LineStats, expr_eval_lines, rule_test_lines, scope_test_lines};
use time::macros::datetime;

fn run(input: &str, function: impl FnOnce(&[u8], &mut Vec<u8>) -> std::io::Result<LineStats>, expect: Expect) {
    let mut output = Vec::new();
    let stats = function(input.as_bytes(), &mut output).expect("in-memory IO does not fail");
    let text = String::from_utf8(output).expect("output is UTF-8");
    expect.assert_eq(&format!("{text}-- {} lines, {} errors\n", stats.n_lines, stats.n_errors));
}

#[test]
fn expr_eval() {
    let input = r#"{"expression": "Join(\", \", [surname], [givenName])", "attributes": {"surname": "Doe", "givenName": "John"}}
{"expression": "Split([x], \",\")", "attributes": {"x": "a, b"}}
{"expression": "[missing]", "attributes": {}}
{"expression": "IgnoreFlowIfNullOrEmpty([department])", "attributes": {"department": null}}

{"expression": "Jion([a])", "attributes": {}}
not json
{"attributes": {}}
{"expression": "SelectUniqueValue([a], Append([a], \"1\"))", "attributes": {"a": "jdoe"}, "existing_target_values": ["JDOE"]}
{"expression": "Now()", "attributes": {}}
{"expression": "Guid()"}
{"expression": "AltSecIdFromNetId([netId])", "attributes": {"netId": "abc"}, "source_tenant_id": "t1"}
{"expression": "Item([x], 5)", "attributes": {"x": ["a"]}}
"#;
    let options = EvalOptions { now: Some(datetime!(2021-07-02 15:33:38 UTC)), seed: Some(1) };
    run(
        input,
        |input, output| expr_eval_lines(input, output, &options),
        expect![[r#"
        {"result":"Doe, John"}
        {"result":["a","b"]}
        {"result":null}
        {"ignore_flow":true}
        {"error":"unknown function 'Jion' at 1:1 (did you mean 'Join'?)"}
        {"error":"invalid JSON: expected ident at line 1 column 2"}
        {"error":"missing key \"expression\""}
        {"result":"jdoe1"}
        {"result":"7/2/2021 3:33:38 PM"}
        {"result":"910a2dec-8902-4cc1-beeb-8da1658eec67"}
        {"result":[{"identityProvider":"t1","key":"YWJj","type":6}]}
        {"error":"function 'Item' at 1:1: index 5 is out of range 1..1 (Item is 1-based)"}
        -- 12 lines, 4 errors
    "#]],
    );
}

#[test]
fn expr_eval_without_a_clock_refuses_now_only() {
    let input = r#"{"expression": "Now()"}
{"expression": "Now()", "now": "2020-01-02T03:04:05Z"}
{"expression": "Guid()"}
"#;
    run(
        input,
        |input, output| expr_eval_lines(input, output, &EvalOptions::default()),
        expect![[r#"
        {"error":"Now() needs the current time: pass it in the options or a \"now\" key"}
        {"result":"1/2/2020 3:04:05 AM"}
        {"result":"69df0543-a795-428c-b7d2-27bd00727579"}
        -- 3 lines, 1 errors
    "#]],
    );
}

#[test]
fn scope_test() {
    let input = r#"{"filter": {"groups": [{"clauses": [{"sourceOperandName": "department", "operatorName": "EQUALS", "targetOperand": {"values": ["Sales"]}}]}]}, "user": {"department": "Sales"}}
{"filter": {"groups": [{"clauses": [{"sourceOperandName": "department", "operatorName": "EQUALS", "targetOperand": {"values": ["Sales"]}}]}]}, "user": {"department": "HR"}}
{"filter": {"groups": []}, "user": {}}
{"filter": {"groups": [{"clauses": [{"sourceOperandName": "x", "operatorName": "REGEX MATCH", "targetOperand": {"values": ["(?=a)"]}}]}]}, "user": {}}
{"filter": {"groups": "nope"}, "user": {}}
{"user": {}}
[1, 2]
"#;
    run(
        input,
        |input, output| scope_test_lines(input, output),
        expect![[r#"
        {"in_scope":true}
        {"in_scope":false}
        {"in_scope":true}
        {"error":"scoping filter group 1 clause 1 (x REGEX MATCH): regular expression \"(?=a)\" uses a look-ahead (?=...), which this engine does not support (it only runs linear-time regular expressions)"}
        {"error":"invalid scoping filter: invalid type: string \"nope\", expected a sequence"}
        {"error":"missing key \"filter\""}
        {"error":"each line must be a JSON object"}
        -- 7 lines, 4 errors
    "#]],
    );
}

#[test]
fn rule_test() {
    let input = r#"{"rule": "user.department -eq \"Sales\"", "user": {"department": "sales"}}
{"rule": "user.memberOf -any (group.objectId -in ['g1'])", "user": {"memberOf": ["g0", "g1"]}}
{"rule": "user.manager -eq \"m\"", "user": {}}
{"rule": "Direct Reports for \"m1\"", "user": {"manager": "m1"}}
{"rule": "user.assignedPlans -any (assignedPlan.capabilityStatus -eq \"Enabled\")", "user": {"assignedPlans": [{"capabilityStatus": "Enabled", "service": "SCO"}]}}
{"rule": "user.employeeHireDate -ge system.now -plus p1d", "user": {"employeeHireDate": "2030-01-01T00:00:00Z"}}
{"rule": "user.employeeHireDate -ge system.now -plus p1d", "user": {"employeeHireDate": "2030-01-01T00:00:00Z"}, "now": "2029-12-30T00:00:00Z"}
{"rule": "(user.department -eq \"Sales\"", "user": {}}
"#;
    run(
        input,
        |input, output| rule_test_lines(input, output),
        expect![[r#"
        {"member":true}
        {"member":true}
        {"error":"Error: Attribute not supported. (unknown property 'user.manager' at 1:1)"}
        {"member":true}
        {"member":true}
        {"error":"the rule uses system.now: add a \"now\" key (RFC 3339)"}
        {"member":true}
        {"error":"Error: Query compilation error. (missing ')' at 1:29)"}
        -- 8 lines, 3 errors
    "#]],
    );
}
