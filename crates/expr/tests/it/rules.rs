//! Dynamic-membership-rule vectors (spec Part 3): the documented examples, the documented error
//! messages, and the Decisions on null, collections and case.

use expect_test::{Expect, expect};
use tenantsync_expr::{Attributes, Rule, parse_rule};
use time::macros::datetime;

/// One line per user: `<user json> => member | not member`, or the compile error.
#[track_caller]
fn check(rule: &str, users: &[&str], expect: Expect) {
    let compiled = match Rule::compile(rule) {
        Ok(compiled) => compiled,
        Err(err) => return expect.assert_eq(&format!("error: {err}")),
    };
    let mut actual = String::new();
    for user in users {
        let json: serde_json::Value = serde_json::from_str(user).expect("test user is JSON");
        let attributes = Attributes::from_json(&json).expect("test user is valid");
        let verdict =
            if compiled.matches_at(&attributes, datetime!(2024-06-01 12:00 UTC)) { "member" } else { "not member" };
        actual.push_str(&format!("{user} => {verdict}\n"));
    }
    expect.assert_eq(&actual);
}

#[track_caller]
fn check_error(rule: &str, expect: Expect) {
    let actual = match parse_rule(rule) {
        Ok(expr) => format!("ok: {expr}"),
        Err(err) => err.to_string(),
    };
    expect.assert_eq(&actual);
}

#[test]
fn multiple_expressions_and_not() {
    check(
        r#"(user.department -eq "Sales") -and -not (user.jobTitle -startsWith "SDE")"#,
        &[
            r#"{"department": "sales", "jobTitle": "Manager"}"#,
            r#"{"department": "Sales", "jobTitle": "sde II"}"#,
            r#"{"department": "Sales"}"#,
        ],
        expect![[r#"
            {"department": "sales", "jobTitle": "Manager"} => member
            {"department": "Sales", "jobTitle": "sde II"} => not member
            {"department": "Sales"} => member
        "#]],
    );
}

#[test]
fn precedence_with_en_dashes() {
    // The docs print en dashes (U+2013); accepted as '-' (ambiguous).
    check(
        "user.country –eq \"US\" –and (user.department –eq \"Marketing\" –or user.department –eq \"Sales\")",
        &[
            r#"{"country": "US", "department": "Sales"}"#,
            r#"{"country": "FR", "department": "Sales"}"#,
            r#"{"country": "US", "department": "HR"}"#,
        ],
        expect![[r#"
            {"country": "US", "department": "Sales"} => member
            {"country": "FR", "department": "Sales"} => not member
            {"country": "US", "department": "HR"} => not member
        "#]],
    );
    // Without parentheses, -and binds tighter than -or.
    check(
        r#"user.country -eq "US" -and user.department -eq "Marketing" -or user.department -eq "Sales""#,
        &[r#"{"country": "FR", "department": "Sales"}"#],
        expect![[r#"
            {"country": "FR", "department": "Sales"} => member
        "#]],
    );
}

#[test]
fn any_and_all() {
    check(
        r#"device.devicePhysicalIDs -any _ -startsWith "[ZTDId]""#,
        &[
            r#"{"devicePhysicalIds": ["[USER-GID]:1", "[ZTDID]:abc"]}"#,
            r#"{"devicePhysicalIds": ["[USER-GID]:1"]}"#,
            "{}",
        ],
        expect![[r#"
            {"devicePhysicalIds": ["[USER-GID]:1", "[ZTDID]:abc"]} => member
            {"devicePhysicalIds": ["[USER-GID]:1"]} => not member
            {} => not member
        "#]],
    );
    check(
        r#"user.assignedPlans -any assignedPlan.service -startsWith "SCO""#,
        &[
            r#"{"assignedPlans": [{"service": "exchange"}, {"service": "SCO"}]}"#,
            r#"{"assignedPlans": [{"service": "exchange"}]}"#,
        ],
        expect![[r#"
            {"assignedPlans": [{"service": "exchange"}, {"service": "SCO"}]} => member
            {"assignedPlans": [{"service": "exchange"}]} => not member
        "#]],
    );
    let plan = r#"user.assignedPlans -any (assignedPlan.servicePlanId -eq "efb87545-963c-4e0d-99df-69c6916d9eb0" -and assignedPlan.capabilityStatus -eq "Enabled")"#;
    check(
        plan,
        &[
            r#"{"assignedPlans": [{"servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0", "capabilityStatus": "Enabled", "service": "exchange"}]}"#,
            r#"{"assignedPlans": [{"servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0", "capabilityStatus": "Suspended"}, {"servicePlanId": "x", "capabilityStatus": "Enabled"}]}"#,
        ],
        expect![[r#"
            {"assignedPlans": [{"servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0", "capabilityStatus": "Enabled", "service": "exchange"}]} => member
            {"assignedPlans": [{"servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0", "capabilityStatus": "Suspended"}, {"servicePlanId": "x", "capabilityStatus": "Enabled"}]} => not member
        "#]],
    );
    // DM Example 3: users with no plans at all.
    check(
        "user.assignedPlans -all (assignedPlan.servicePlanId -eq null)",
        &["{}", r#"{"assignedPlans": [{"servicePlanId": "x"}]}"#],
        expect![[r#"
            {} => member
            {"assignedPlans": [{"servicePlanId": "x"}]} => not member
        "#]],
    );
    check(
        r#"user.proxyAddresses -all (_ -startsWith "smtp:")"#,
        &[
            r#"{"proxyAddresses": ["SMTP:a@x", "smtp:b@x"]}"#,
            r#"{"proxyAddresses": ["SMTP:a@x", "x500:/o=x"]}"#,
            r#"{"proxyAddresses": []}"#,
        ],
        expect![[r#"
            {"proxyAddresses": ["SMTP:a@x", "smtp:b@x"]} => member
            {"proxyAddresses": ["SMTP:a@x", "x500:/o=x"]} => not member
            {"proxyAddresses": []} => member
        "#]],
    );
    // A parenthesised predicate ends at its ')', so the rule can go on.
    check(
        r#"user.otherMails -any (_ -contains "contoso") -and user.city -eq "Lagos""#,
        &[r#"{"otherMails": ["a@contoso.com"], "city": "lagos"}"#, r#"{"otherMails": ["a@contoso.com"]}"#],
        expect![[r#"
            {"otherMails": ["a@contoso.com"], "city": "lagos"} => member
            {"otherMails": ["a@contoso.com"]} => not member
        "#]],
    );
}

#[test]
fn direct_comparison_on_string_collections() {
    // Decision (ambiguous): any element; a negative operator needs no element to match.
    check(
        r#"user.otherMails -startsWith "alias""#,
        &[r#"{"otherMails": ["x@a.com", "alias@b.com"]}"#, r#"{"otherMails": ["x@a.com"]}"#],
        expect![[r#"
            {"otherMails": ["x@a.com", "alias@b.com"]} => member
            {"otherMails": ["x@a.com"]} => not member
        "#]],
    );
    check(
        r#"user.proxyAddresses -notEndsWith "@contoso.com""#,
        &[
            r#"{"proxyAddresses": ["smtp:a@fabrikam.com"]}"#,
            r#"{"proxyAddresses": ["smtp:a@fabrikam.com", "SMTP:a@CONTOSO.com"]}"#,
        ],
        expect![[r#"
            {"proxyAddresses": ["smtp:a@fabrikam.com"]} => member
            {"proxyAddresses": ["smtp:a@fabrikam.com", "SMTP:a@CONTOSO.com"]} => not member
        "#]],
    );
}

#[test]
fn special_rules() {
    check(
        r#"Direct Reports for "62e19b97-8b3d-4d4a-a106-4ce66896a863""#,
        &[r#"{"manager": "62E19B97-8B3D-4D4A-A106-4CE66896A863"}"#, r#"{"manager": "someone-else"}"#, "{}"],
        expect![[r#"
            {"manager": "62E19B97-8B3D-4D4A-A106-4CE66896A863"} => member
            {"manager": "someone-else"} => not member
            {} => not member
        "#]],
    );
    check(
        "user.objectId -ne null",
        &[r#"{"objectId": "1"}"#, "{}"],
        expect![[r#"
            {"objectId": "1"} => member
            {} => not member
        "#]],
    );
    check(
        r#"(user.objectId -ne null) -and (user.userType -eq "Member")"#,
        &[r#"{"objectId": "1", "userType": "Member"}"#, r#"{"objectId": "1", "userType": "Guest"}"#],
        expect![[r#"
            {"objectId": "1", "userType": "Member"} => member
            {"objectId": "1", "userType": "Guest"} => not member
        "#]],
    );
    check(
        "device.objectId -ne null",
        &[r#"{"objectId": "d1"}"#],
        expect![[r#"
            {"objectId": "d1"} => member
        "#]],
    );
    check(
        "user.memberOf -any (group.objectId -in ['a1b2', 'c3d4'])",
        &[r#"{"memberOf": ["zz", "C3D4"]}"#, r#"{"memberOf": ["zz"]}"#],
        expect![[r#"
            {"memberOf": ["zz", "C3D4"]} => member
            {"memberOf": ["zz"]} => not member
        "#]],
    );
}

#[test]
fn in_not_in_null_and_quoted_null() {
    check(
        r#"user.department -in ["50001","50002","50003"]"#,
        &[r#"{"department": "50002"}"#, r#"{"department": "50004"}"#, "{}"],
        expect![[r#"
            {"department": "50002"} => member
            {"department": "50004"} => not member
            {} => not member
        "#]],
    );
    check(
        r#"user.department -notIn ["50001","50002"]"#,
        &[r#"{"department": "50002"}"#, r#"{"department": "50004"}"#, "{}"],
        expect![[r#"
            {"department": "50002"} => not member
            {"department": "50004"} => member
            {} => member
        "#]],
    );
    check(
        "user.mail –ne null",
        &[r#"{"mail": "a@b"}"#, r#"{"mail": ""}"#, "{}"],
        expect![[r#"
            {"mail": "a@b"} => member
            {"mail": ""} => not member
            {} => not member
        "#]],
    );
    // DM (2024) writes a quoted "null": a literal string.
    check(
        r#"user.employeeId -ne "null""#,
        &[r#"{"employeeId": "null"}"#, r#"{"employeeId": "42"}"#, "{}"],
        expect![[r#"
            {"employeeId": "null"} => not member
            {"employeeId": "42"} => member
            {} => member
        "#]],
    );
    check(
        "user.department -eq $null",
        &["{}", r#"{"department": "x"}"#],
        expect![[r#"
            {} => member
            {"department": "x"} => not member
        "#]],
    );
}

#[test]
fn match_is_case_insensitive_and_unanchored() {
    let users = [
        r#"{"displayName": "Da"}"#,
        r#"{"displayName": "Dav"}"#,
        r#"{"displayName": "david"}"#,
        r#"{"displayName": "aDa"}"#,
    ];
    check(
        r#"user.displayName -match "^Da.*""#,
        &users,
        expect![[r#"
            {"displayName": "Da"} => member
            {"displayName": "Dav"} => member
            {"displayName": "david"} => member
            {"displayName": "aDa"} => not member
        "#]],
    );
    // Ambiguous: DM-22 said aDa is false for the unanchored Da.*.
    check(
        r#"user.displayName -match "Da.*""#,
        &users,
        expect![[r#"
            {"displayName": "Da"} => member
            {"displayName": "Dav"} => member
            {"displayName": "david"} => member
            {"displayName": "aDa"} => member
        "#]],
    );
    check(
        r#"user.userPrincipalName -match "@domain.ext$""#,
        &[r#"{"userPrincipalName": "a@DOMAIN.ext"}"#, r#"{"userPrincipalName": "a@domain.ext.org"}"#],
        expect![[r#"
            {"userPrincipalName": "a@DOMAIN.ext"} => member
            {"userPrincipalName": "a@domain.ext.org"} => not member
        "#]],
    );
}

#[test]
fn dates_and_booleans() {
    // Evaluated at 2024-06-01 12:00 UTC.
    check(
        "user.employeehiredate -ge system.now -plus p1d",
        &[r#"{"employeeHireDate": "2024-06-03T00:00:00Z"}"#, r#"{"employeeHireDate": "2024-06-01T13:00:00Z"}"#, "{}"],
        expect![[r#"
            {"employeeHireDate": "2024-06-03T00:00:00Z"} => member
            {"employeeHireDate": "2024-06-01T13:00:00Z"} => not member
            {} => not member
        "#]],
    );
    check(
        "user.employeeHireDate -le 2020-06-10T18:13:20Z",
        &[r#"{"employeeHireDate": "2020-06-10T18:13:20Z"}"#, r#"{"employeeHireDate": "2020-06-11T00:00:00Z"}"#],
        expect![[r#"
            {"employeeHireDate": "2020-06-10T18:13:20Z"} => member
            {"employeeHireDate": "2020-06-11T00:00:00Z"} => not member
        "#]],
    );
    check(
        "user.accountEnabled -eq true",
        &[r#"{"accountEnabled": true}"#, r#"{"accountEnabled": "True"}"#, r#"{"accountEnabled": false}"#, "{}"],
        expect![[r#"
            {"accountEnabled": true} => member
            {"accountEnabled": "True"} => member
            {"accountEnabled": false} => not member
            {} => not member
        "#]],
    );
    // DM-17's "Unknown error" example parses under current rules (Decision: valid, ambiguous).
    check(
        r#"(user.accountEnabled -eq "True" AND user.userPrincipalName -contains "alias@domain")"#,
        &[r#"{"accountEnabled": true, "userPrincipalName": "my.alias@domain.com"}"#],
        expect![[r#"
            {"accountEnabled": true, "userPrincipalName": "my.alias@domain.com"} => member
        "#]],
    );
}

#[test]
fn extensions_and_quoting() {
    check(
        r#"user.extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber -eq "123""#,
        &[r#"{"extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber": "123"}"#],
        expect![[r#"
            {"extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber": "123"} => member
        "#]],
    );
    check(
        r#"user.extensionAttribute15 -eq "Marketing" -or user.EXTENSIONATTRIBUTE1 -eq 'it''s'"#,
        &[r#"{"extensionAttribute15": "marketing"}"#, r#"{"extensionAttribute1": "It's"}"#],
        expect![[r#"
            {"extensionAttribute15": "marketing"} => member
            {"extensionAttribute1": "It's"} => member
        "#]],
    );
    check(
        "user.department -eq \"say \\\"hi\\\" and `\"bye`\"\" -or user.city -match \"\\d{3}\"",
        &[r#"{"department": "say \"hi\" and \"bye\""}"#, r#"{"city": "x123"}"#],
        expect![[r#"
            {"department": "say \"hi\" and \"bye\""} => member
            {"city": "x123"} => member
        "#]],
    );
}

#[test]
fn documented_errors() {
    check_error(
        r#"(user.invalidProperty -eq "Value")"#,
        expect![[r#"Error: Attribute not supported. (unknown property 'user.invalidProperty' at 1:2)"#]],
    );
    check_error(
        r#"(user.accountEnabled -contains true)"#,
        expect![[
            r#"Error: Operator is not supported on attribute. (-contains is not supported on 'user.accountEnabled' at 1:22)"#
        ]],
    );
    check_error(
        r#"(user.department -eq "Sales") (user.department -eq "Marketing")"#,
        expect![[
            r#"Error: Query compilation error. (missing logical operator (-and, -or) between expressions at 1:31)"#
        ]],
    );
    check_error(
        r#"(user.userPrincipalName -match "*@domain.ext")"#,
        expect![[
            r#"Error: Query compilation error. (invalid regular expression "*@domain.ext": repetition operator missing expression at 1:32)"#
        ]],
    );
    check_error(
        "(user.department –eq “Sales”)",
        expect![[
            r#"Error: Binary expression is not in right format. (typographic quote '“': use straight quotes (" or ') at 1:22)"#
        ]],
    );
    check_error(
        r#"(user.department-eq"Sales")"#,
        expect![[
            r#"Error: Binary expression is not in right format. ('user.department-eq': put white space before the operator at 1:2)"#
        ]],
    );
    check_error(
        r#"(user.department -eq "a")-and (user.city -eq "b")"#,
        expect![[
            r#"Error: Binary expression is not in right format. (operator '-and' must follow white space at 1:26)"#
        ]],
    );
    check_error(
        "mail -ne null",
        expect![[
            r#"Error: Query compilation error. ('mail' is not a property: write 'user.mail' or 'device.mail' at 1:1)"#
        ]],
    );
    check_error(
        "user.mail -not null",
        expect![[r#"Error: Query compilation error. (-not can't be used as a comparison operator (use -ne) at 1:11)"#]],
    );
    check_error(
        r#"user.department -eq "a" -and device.deviceModel -eq "b""#,
        expect![[
            r#"Error: A rule can't mix user and device properties. (a rule reads either user or device properties, not both at 1:30)"#
        ]],
    );
    check_error(
        r#"Direct Reports for "abc" -and user.city -eq "x""#,
        expect![[
            r#"Error: This rule can't be combined with other rules. (a direct reports rule can't be combined with other expressions at 1:26)"#
        ]],
    );
    check_error(
        r#"user.memberOf -any (group.objectId -in ['a']) -and user.city -eq "x""#,
        expect![[
            r#"Error: This rule can't be combined with other rules. (a memberOf rule can't be combined with other expressions or operators at 1:1)"#
        ]],
    );
    check_error(
        r#"user.department -eq Sales"#,
        expect![[r#"Error: Query compilation error. (value 'Sales' must be quoted at 1:21)"#]],
    );
    check_error(
        r#"user.department -startsWith null"#,
        expect![[
            r#"Error: Query compilation error. (null can only be compared with -eq or -ne, not -startsWith at 1:29)"#
        ]],
    );
    check_error(
        r#"user.department -in "Sales""#,
        expect![[r#"Error: Query compilation error. (-in needs a list such as ["a", "b"] at 1:21)"#]],
    );
    check_error(
        r#"user.department -le "x""#,
        expect![[
            r#"Error: Operator is not supported on attribute. (-le is not supported on 'user.department' at 1:17)"#
        ]],
    );
    check_error(
        r#"user.city -any (_ -eq "x")"#,
        expect![[
            r#"Error: Operator is not supported on attribute. (-any is not supported on 'user.city', which is single-valued at 1:11)"#
        ]],
    );
    check_error(
        r#"user.assignedPlans -eq "x""#,
        expect![[
            r#"Error: Operator is not supported on attribute. (-eq is not supported on 'user.assignedPlans' at 1:20)"#
        ]],
    );
    check_error(
        r#"_ -eq "x""#,
        expect![[
            r#"Error: Query compilation error. ('_' can only be used inside -any/-all over a string collection at 1:1)"#
        ]],
    );
    check_error(
        r#"user.departmnt -eq "x""#,
        expect![[
            r#"Error: Attribute not supported. (unknown property 'user.departmnt' (did you mean 'user.department'?) at 1:1)"#
        ]],
    );
    check_error("(user.city -eq \"x\"", expect![[r#"Error: Query compilation error. (missing ')' at 1:19)"#]]);
    check_error(
        "device.organizationalUnit -eq \"x\"",
        expect![[r#"Error: Attribute not supported. (device.organizationalUnit must not be used in rules at 1:1)"#]],
    );
    let long = format!(r#"user.city -eq "{}""#, "x".repeat(3100));
    check_error(
        &long,
        expect!["Error: The rule is too long. (the rule is 3116 characters long, the limit is 3072 at 1:1)"],
    );
}

#[test]
fn printed_rules_parse_back() {
    for source in [
        r#"(user.department -eq "Sales") -and -not (user.jobTitle -startsWith "SDE")"#,
        r#"user.a -eq "b""#.replace("user.a", "user.city").as_str(),
        r#"(user.city -eq 'it''s' -or user.city -eq "a\"b") -and user.employeeId -in [1, "2", true]"#,
        "user.employeeHireDate -ge system.now -plus p1d",
        r#"Direct Reports for "x""#,
        r#"user.assignedPlans -any assignedPlan.service -startsWith "SCO""#,
    ] {
        let expr = parse_rule(source).unwrap();
        let printed = expr.to_string();
        assert_eq!(parse_rule(&printed).unwrap(), expr, "{source} printed as {printed}");
    }
    expect![[r#"(user.city -eq "it's" -or user.city -eq 'a"b') -and user.employeeId -in [1, "2", true]"#]].assert_eq(
        &parse_rule(r#"(user.city eq 'it''s' or user.City -EQ "a\"b") and user.employeeid -in [1, "2", true]"#)
            .unwrap()
            .to_string(),
    );
}

#[test]
fn rule_over_many_users_is_fast_enough_to_matter() {
    let rule = Rule::compile(r#"user.department -eq "Sales" -and user.country -in ["US", "FR"]"#).unwrap();
    let users: Vec<Attributes> = (0..1000)
        .map(|idx| {
            Attributes::new().with("department", if idx % 2 == 0 { "Sales" } else { "HR" }).with("country", "FR")
        })
        .collect();
    assert_eq!(users.iter().filter(|user| rule.matches(*user)).count(), 500);
}

#[test]
fn more_documented_examples() {
    check(
        r#"(user.department -eq "Sales") -or (user.department -eq "Marketing")"#,
        &[r#"{"department": "marketing"}"#, r#"{"department": "HR"}"#],
        expect![[r#"
            {"department": "marketing"} => member
            {"department": "HR"} => not member
        "#]],
    );
    check(
        r#"user.displayName -match ".*vid""#,
        &[r#"{"displayName": "David"}"#, r#"{"displayName": "Da"}"#],
        expect![[r#"
            {"displayName": "David"} => member
            {"displayName": "Da"} => not member
        "#]],
    );
    // No space between the operator and the value, as DM writes it.
    check(
        r#"user.otherMails -endsWith"@contoso.com""#,
        &[r#"{"otherMails": ["a@fabrikam.com", "b@Contoso.com"]}"#, r#"{"otherMails": ["a@fabrikam.com"]}"#],
        expect![[r#"
            {"otherMails": ["a@fabrikam.com", "b@Contoso.com"]} => member
            {"otherMails": ["a@fabrikam.com"]} => not member
        "#]],
    );
    check(
        r#"user.proxyAddresses -startsWith "SMTP: alias@domain""#,
        &[r#"{"proxyAddresses": ["smtp: alias@domain.com"]}"#],
        expect![[r#"
            {"proxyAddresses": ["smtp: alias@domain.com"]} => member
        "#]],
    );
    check(
        r#"user.mail -notEndsWith "@Contoso.com" -and user.mailNickname -endsWith "-vendor" -and user.passwordPolicies -eq "DisableStrongPassword""#,
        &[
            r#"{"mail": "a@fabrikam.com", "mailNickname": "a-VENDOR", "passwordPolicies": "DisableStrongPassword"}"#,
            r#"{"mail": "a@contoso.com", "mailNickname": "a-vendor", "passwordPolicies": "DisableStrongPassword"}"#,
        ],
        expect![[r#"
            {"mail": "a@fabrikam.com", "mailNickname": "a-VENDOR", "passwordPolicies": "DisableStrongPassword"} => member
            {"mail": "a@contoso.com", "mailNickname": "a-vendor", "passwordPolicies": "DisableStrongPassword"} => not member
        "#]],
    );
    // DM: `"Sales`" is the syntax when the value itself is "Sales", quotes included.
    check(
        "user.department -eq `\"Sales`\"",
        &[r#"{"department": "\"Sales\""}"#, r#"{"department": "Sales"}"#],
        expect![[r#"
            {"department": "\"Sales\""} => member
            {"department": "Sales"} => not member
        "#]],
    );
    check(
        r#"(device.deviceOSType -eq "iPad") -or (device.deviceOSType -eq "iOS")"#,
        &[r#"{"deviceOSType": "IOS"}"#, r#"{"deviceOSType": "Android"}"#],
        expect![[r#"
            {"deviceOSType": "IOS"} => member
            {"deviceOSType": "Android"} => not member
        "#]],
    );
    check(
        r#"device.devicePhysicalIds -any _ -eq "[OrderID]:179887111881""#,
        &[r#"{"devicePhysicalIds": ["[ZTDId]:x", "[OrderID]:179887111881"]}"#],
        expect![[r#"
            {"devicePhysicalIds": ["[ZTDId]:x", "[OrderID]:179887111881"]} => member
        "#]],
    );
    check(
        r#"device.deviceOSVersion -startsWith "10.0.1" -and device.systemLabels -startsWith "M365Managed" -and device.isRooted -eq false"#,
        &[r#"{"deviceOSVersion": "10.0.19045", "systemLabels": "M365Managed", "isRooted": false}"#],
        expect![[r#"
            {"deviceOSVersion": "10.0.19045", "systemLabels": "M365Managed", "isRooted": false} => member
        "#]],
    );
    check(
        "device.memberOf -any (group.objectId -in ['value'])",
        &[r#"{"memberOf": ["VALUE"]}"#],
        expect![[r#"
            {"memberOf": ["VALUE"]} => member
        "#]],
    );
}

#[track_caller]
fn check_properties(rule: &str, expect: Expect) {
    let compiled = Rule::compile(rule).expect("test rule compiles");
    let names: Vec<String> = compiled.user_properties().into_iter().collect();
    expect.assert_eq(&format!("{names:?} device={}", compiled.expr().reads_devices()));
}

#[test]
fn user_properties_lists_what_a_rule_reads() {
    check_properties(
        r#"(user.Department -eq "Sales") -and -not (user.jobtitle -startsWith "SDE")"#,
        expect![[r#"["department", "jobTitle"] device=false"#]],
    );
    check_properties(
        r#"user.otherMails -any (_ -endsWith "@contoso.com") -or user.extensionAttribute3 -eq "x""#,
        expect![[r#"["extensionAttribute3", "otherMails"] device=false"#]],
    );
    check_properties(
        r#"user.assignedPlans -any (assignedPlan.servicePlanId -eq "efb87545-963c-4e0d-99df-69c6916d9eb0" -and assignedPlan.capabilityStatus -eq "Enabled")"#,
        expect![[r#"["assignedPlans"] device=false"#]],
    );
    check_properties(
        r#"Direct Reports for "62e19b97-8b3d-4d4a-a106-4ce66896a863""#,
        expect![[r#"["manager"] device=false"#]],
    );
    check_properties(r#"device.devicePhysicalIDs -any _ -startsWith "[ZTDId]""#, expect![[r#"[] device=true"#]]);
    check_properties(r#"user.objectId -ne null"#, expect![[r#"["objectId"] device=false"#]]);
}
