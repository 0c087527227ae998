//! Scoping-filter vectors (spec Part 2): the documented filters of SC and CSY, every operator, the
//! null/empty rule and configuration errors.

use expect_test::{Expect, expect};
use tenantsync_expr::{Attributes, ScopingFilter};

fn clause(attribute: &str, operator: &str, values: &[&str]) -> serde_json::Value {
    serde_json::json!({"sourceOperandName": attribute, "operatorName": operator, "targetOperand": {"values": values}})
}

fn filter(groups: &[Vec<serde_json::Value>]) -> String {
    let groups: Vec<_> = groups.iter().map(|clauses| serde_json::json!({ "clauses": clauses })).collect();
    serde_json::json!({ "groups": groups }).to_string()
}

/// One line per user: `<user json> => in scope | out of scope`, or the compile error.
#[track_caller]
fn check(filter_json: &str, users: &[&str], expect: Expect) {
    let compiled = match ScopingFilter::from_json(filter_json).and_then(|filter| filter.compile()) {
        Ok(compiled) => compiled,
        Err(err) => return expect.assert_eq(&format!("error: {err}")),
    };
    let mut actual = String::new();
    for user in users {
        let json: serde_json::Value = serde_json::from_str(user).expect("test user is JSON");
        let attributes = Attributes::from_json(&json).expect("test user is valid");
        let verdict = if compiled.in_scope(&attributes) { "in scope" } else { "out of scope" };
        actual.push_str(&format!("{user} => {verdict}\n"));
    }
    expect.assert_eq(&actual);
}

#[test]
fn sc_example_new_york_engineering() {
    let filter = filter(&[vec![
        clause("state", "EQUALS", &["New York"]),
        clause("department", "EQUALS", &["Engineering"]),
        clause("employeeId", "REGEX MATCH", &["(1[0-9][0-9][0-9][0-9][0-9][0-9])"]),
        clause("jobTitle", "IS NOT NULL", &[]),
    ]]);
    check(
        &filter,
        &[
            r#"{"state": "New York", "department": "Engineering", "employeeId": "1500000", "jobTitle": "Dev"}"#,
            r#"{"state": "New York", "department": "Engineering", "employeeId": "1500000", "jobTitle": ""}"#,
            r#"{"state": "New York", "department": "engineering", "employeeId": "1500000", "jobTitle": "Dev"}"#,
            r#"{"state": "New York", "department": "Engineering", "employeeId": "999999", "jobTitle": "Dev"}"#,
            r#"{"state": "Ohio", "department": "Engineering", "employeeId": "1500000", "jobTitle": "Dev"}"#,
        ],
        expect![[r#"
            {"state": "New York", "department": "Engineering", "employeeId": "1500000", "jobTitle": "Dev"} => in scope
            {"state": "New York", "department": "Engineering", "employeeId": "1500000", "jobTitle": ""} => out of scope
            {"state": "New York", "department": "engineering", "employeeId": "1500000", "jobTitle": "Dev"} => out of scope
            {"state": "New York", "department": "Engineering", "employeeId": "999999", "jobTitle": "Dev"} => out of scope
            {"state": "Ohio", "department": "Engineering", "employeeId": "1500000", "jobTitle": "Dev"} => out of scope
        "#]],
    );
}

#[test]
fn sc_common_scoping_filters() {
    let users = [r#"{"userPrincipalName": "ada@domain.com"}"#, r#"{"userPrincipalName": "ada@other.com"}"#, r#"{}"#];
    check(
        &filter(&[vec![clause("userPrincipalName", "REGEX MATCH", &[r".*\@domain.com"])]]),
        &users,
        expect![[r#"
            {"userPrincipalName": "ada@domain.com"} => in scope
            {"userPrincipalName": "ada@other.com"} => out of scope
            {} => out of scope
        "#]],
    );
    check(
        &filter(&[vec![clause("userPrincipalName", "NOT REGEX MATCH", &[r".*\@domain.com"])]]),
        &users,
        expect![[r#"
            {"userPrincipalName": "ada@domain.com"} => out of scope
            {"userPrincipalName": "ada@other.com"} => in scope
            {} => out of scope
        "#]],
    );
    check(
        &filter(&[vec![clause("department", "EQUALS", &["sales"])]]),
        &[r#"{"department": "sales"}"#, r#"{"department": "Sales"}"#],
        expect![[r#"
            {"department": "sales"} => in scope
            {"department": "Sales"} => out of scope
        "#]],
    );
    // Ambiguous: unanchored search also accepts 8-digit ids that contain a 7-digit run.
    check(
        &filter(&[vec![clause("workerID", "REGEX MATCH", &["(1[0-9][0-9][0-9][0-9][0-9][0-9])"])]]),
        &[
            r#"{"workerID": "1000000"}"#,
            r#"{"workerID": "1999999"}"#,
            r#"{"workerID": "2000000"}"#,
            r#"{"workerID": "21000000"}"#,
        ],
        expect![[r#"
            {"workerID": "1000000"} => in scope
            {"workerID": "1999999"} => in scope
            {"workerID": "2000000"} => out of scope
            {"workerID": "21000000"} => in scope
        "#]],
    );
    check(
        &filter(&[vec![clause("age", "REGEX MATCH", &["([1-9][0-9])"])]]),
        &[r#"{"age": "10"}"#, r#"{"age": "99"}"#, r#"{"age": "5"}"#],
        expect![[r#"
            {"age": "10"} => in scope
            {"age": "99"} => in scope
            {"age": "5"} => out of scope
        "#]],
    );
}

#[test]
fn csy_default_security_group_filter() {
    let filter = filter(&[vec![
        clause("securityEnabled", "IS TRUE", &[]),
        clause("dirSyncEnabled", "IS_FALSE", &[]),
        clause("mailEnabled", "IS FALSE", &[]),
    ]]);
    check(
        &filter,
        &[
            r#"{"securityEnabled": true, "dirSyncEnabled": false, "mailEnabled": false}"#,
            r#"{"securityEnabled": "True", "dirSyncEnabled": "false", "mailEnabled": "FALSE"}"#,
            r#"{"securityEnabled": true, "dirSyncEnabled": true, "mailEnabled": false}"#,
            r#"{"securityEnabled": true, "mailEnabled": false}"#,
        ],
        expect![[r#"
            {"securityEnabled": true, "dirSyncEnabled": false, "mailEnabled": false} => in scope
            {"securityEnabled": "True", "dirSyncEnabled": "false", "mailEnabled": "FALSE"} => in scope
            {"securityEnabled": true, "dirSyncEnabled": true, "mailEnabled": false} => out of scope
            {"securityEnabled": true, "mailEnabled": false} => out of scope
        "#]],
    );
}

#[test]
fn every_operator_on_values_null_and_multi() {
    let cases: &[(&str, &[&str])] = &[
        ("EQUALS", &["abc"]),
        ("NOT EQUALS", &["abc"]),
        ("IS NULL", &[]),
        ("IS_NOT_NULL", &[]),
        ("REGEX MATCH", &["^a"]),
        ("NOT REGEX MATCH", &["^a"]),
        ("Greater_Than", &["10"]),
        ("Greater_Than_OR_EQUALS", &["10"]),
        ("LESS_THAN", &["10"]),
        ("less than or equals", &["10"]),
        ("Includes", &["b"]),
        ("ENDS_WITH", &["bc"]),
        ("&", &["xabcx"]),
        ("!&", &["xabcx"]),
        ("IS IN", &["abc", "10"]),
        ("IS NOT IN", &["abc", "10"]),
    ];
    let users = ["abc", "10", "11", "", "null", "multi"];
    let mut actual = String::new();
    for (operator, values) in cases {
        let compiled =
            ScopingFilter::from_json(&filter(&[vec![clause("x", operator, values)]])).unwrap().compile().unwrap();
        let row: Vec<String> = users
            .iter()
            .map(|user| {
                let mut attributes = Attributes::new();
                match *user {
                    "null" => {}
                    "multi" => attributes.insert("x", tenantsync_expr::AttrValue::Multi(vec!["abc".to_owned()].into())),
                    text => attributes = attributes.with("x", text),
                }
                format!("{user}={}", u8::from(compiled.in_scope(&attributes)))
            })
            .collect();
        actual.push_str(&format!("{operator:<24} {}\n", row.join(" ")));
    }
    expect![[r#"
        EQUALS                   abc=1 10=0 11=0 =0 null=0 multi=0
        NOT EQUALS               abc=0 10=1 11=1 =0 null=0 multi=0
        IS NULL                  abc=0 10=0 11=0 =1 null=1 multi=0
        IS_NOT_NULL              abc=1 10=1 11=1 =0 null=0 multi=0
        REGEX MATCH              abc=1 10=0 11=0 =0 null=0 multi=0
        NOT REGEX MATCH          abc=0 10=1 11=1 =0 null=0 multi=0
        Greater_Than             abc=0 10=0 11=1 =0 null=0 multi=0
        Greater_Than_OR_EQUALS   abc=0 10=1 11=1 =0 null=0 multi=0
        LESS_THAN                abc=0 10=0 11=0 =0 null=0 multi=0
        less than or equals      abc=0 10=1 11=0 =0 null=0 multi=0
        Includes                 abc=1 10=0 11=0 =0 null=0 multi=0
        ENDS_WITH                abc=1 10=0 11=0 =0 null=0 multi=0
        &                        abc=1 10=0 11=0 =0 null=0 multi=0
        !&                       abc=0 10=1 11=1 =0 null=0 multi=0
        IS IN                    abc=1 10=1 11=0 =0 null=0 multi=0
        IS NOT IN                abc=0 10=0 11=1 =0 null=0 multi=0
    "#]]
    .assert_eq(&actual);
}

#[test]
fn or_across_groups_and_empty_filters() {
    let two_groups =
        filter(&[vec![clause("department", "EQUALS", &["Sales"])], vec![clause("country", "EQUALS", &["FR"])]]);
    check(
        &two_groups,
        &[r#"{"department": "Sales"}"#, r#"{"country": "FR"}"#, r#"{"department": "HR", "country": "US"}"#],
        expect![[r#"
            {"department": "Sales"} => in scope
            {"country": "FR"} => in scope
            {"department": "HR", "country": "US"} => out of scope
        "#]],
    );
    check(
        r#"{"groups": []}"#,
        &["{}"],
        expect![[r#"
        {} => in scope
    "#]],
    );
    check(
        r#"{"groups": [{"clauses": []}]}"#,
        &["{}"],
        expect![[r#"
        {} => in scope
    "#]],
    );
    check(
        &filter(&[vec![clause("accountEnabled", "EQUALS", &["True"]), clause("employeeNumber", "EQUALS", &["42"])]]),
        &[r#"{"accountEnabled": true, "employeeNumber": 42}"#],
        expect![[r#"
            {"accountEnabled": true, "employeeNumber": 42} => in scope
        "#]],
    );
}

#[test]
fn configuration_errors() {
    check(
        &filter(&[vec![clause("x", "REGEX MATCH", &["a(?=b)"])]]),
        &[],
        expect![[
            r#"error: scoping filter group 1 clause 1 (x REGEX MATCH): regular expression "a(?=b)" uses a look-ahead (?=...), which this engine does not support (it only runs linear-time regular expressions)"#
        ]],
    );
    check(
        &filter(&[vec![clause("x", "REGEX MATCH", &["(?<!a)b"])]]),
        &[],
        expect![[
            r#"error: scoping filter group 1 clause 1 (x REGEX MATCH): regular expression "(?<!a)b" uses a negative look-behind (?<!...), which this engine does not support (it only runs linear-time regular expressions)"#
        ]],
    );
    check(
        &filter(&[vec![clause("x", "REGEX MATCH", &["(?<n>a)\\k<n>"])]]),
        &[],
        expect![[
            r#"error: scoping filter group 1 clause 1 (x REGEX MATCH): regular expression "(?<n>a)\\k<n>" uses a named back-reference (\k<name>), which this engine does not support (it only runs linear-time regular expressions)"#
        ]],
    );
    check(
        &filter(&[vec![clause("x", "REGEX MATCH", &["(?>a+)b"])]]),
        &[],
        expect![[
            r#"error: scoping filter group 1 clause 1 (x REGEX MATCH): regular expression "(?>a+)b" uses an atomic group (?>...), which this engine does not support (it only runs linear-time regular expressions)"#
        ]],
    );
    check(
        &filter(&[vec![clause("x", "REGEX MATCH", &["[a-"])]]),
        &[],
        expect![[
            r#"error: scoping filter group 1 clause 1 (x REGEX MATCH): invalid regular expression "[a-": unterminated character class"#
        ]],
    );
    check(
        &filter(&[vec![clause("x", "Greater_Than", &["ten"])]]),
        &[],
        expect!["error: scoping filter group 1 clause 1 (x Greater_Than): value 'ten' is not an integer"],
    );
    check(
        &filter(&[vec![clause("x", "EQUAL", &["a"])]]),
        &[],
        expect!["error: scoping filter group 1 clause 1 (x EQUAL): unknown operator 'EQUAL' (did you mean 'EQUALS'?)"],
    );
    check(
        &filter(&[vec![clause("x", "IS_MEMBER_OF", &["a"])]]),
        &[],
        expect![
            "error: scoping filter group 1 clause 1 (x IS_MEMBER_OF): operator 'IS_MEMBER_OF' is not supported for provisioning scoping filters"
        ],
    );
    check(
        &filter(&[vec![clause("x", "EQUALS", &[])]]),
        &[],
        expect!["error: scoping filter group 1 clause 1 (x EQUALS): operator EQUALS needs a value"],
    );
    check(
        r#"{"groups": [{"clauses": [{"operatorName": "EQUALS"}]}]}"#,
        &[],
        expect!["error: invalid scoping filter: missing field `sourceOperandName` at line 1 column 51"],
    );
}

#[test]
fn catastrophic_pattern_runs_in_linear_time() {
    let compiled = ScopingFilter::from_json(&filter(&[vec![clause("x", "REGEX MATCH", &["^(a+)+$"])]]))
        .unwrap()
        .compile()
        .unwrap();
    let attributes = Attributes::new().with("x", &format!("{}!", "a".repeat(50_000)));
    assert!(!compiled.in_scope(&attributes));
}

#[test]
fn filter_prints_as_graph_json() {
    let json = r#"{"groups":[{"name":"Sales","clauses":[{"sourceOperandName":"department","operatorName":"EQUALS","targetOperand":{"values":["Sales"]}}]}]}"#;
    let filter = ScopingFilter::from_json(json).unwrap();
    assert_eq!(filter.to_string(), json);
    assert_eq!(ScopingFilter::from_json(&filter.to_string()).unwrap(), filter);
}
