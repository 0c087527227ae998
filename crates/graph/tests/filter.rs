//! Tests of the OData `$filter` parser, printer and evaluator through its public API only: snapshot tests through
//! a `check` helper (`UPDATE_EXPECT=1 cargo test` rewrites the snapshots), and property tests for the round trip
//! through text and for never panicking. The schemas here are small test tables, not Graph's real `user` and `group`.

use expect_test::{Expect, expect};
use proptest::prelude::*;
use serde_json::Value;
use tenantsync_graph::filter::{Filter, FilterError, FilterSchema, MAX_FILTER_CHARS, MAX_NESTING, PropertyType};

struct TestSchema {
    entity: &'static str,
    properties: &'static [(&'static str, PropertyType)],
    /// (collection, element property, type)
    element_properties: &'static [(&'static str, &'static str, PropertyType)],
}

impl FilterSchema for TestSchema {
    fn property(&self, path: &str) -> Option<(PropertyType, &'static str)> {
        let &(name, property_type) = self.properties.iter().find(|(name, _)| name.eq_ignore_ascii_case(path))?;
        Some((property_type, name))
    }

    fn element_property(&self, collection: &str, name: &str) -> Option<(PropertyType, &'static str)> {
        let &(_, element, property_type) = self
            .element_properties
            .iter()
            .find(|(owner, element, _)| owner.eq_ignore_ascii_case(collection) && element.eq_ignore_ascii_case(name))?;
        Some((property_type, element))
    }

    fn entity_name(&self) -> &'static str {
        self.entity
    }
}

const USER: TestSchema = TestSchema {
    entity: "microsoft.graph.user",
    properties: &[
        ("displayName", PropertyType::String),
        ("mail", PropertyType::String),
        ("userPrincipalName", PropertyType::String),
        ("userType", PropertyType::Enum),
        ("accountEnabled", PropertyType::Boolean),
        ("createdDateTime", PropertyType::DateTime),
        ("otherMails", PropertyType::StringCollection),
        ("businessPhones", PropertyType::StringCollection),
        ("identities", PropertyType::ComplexCollection),
        ("onPremisesExtensionAttributes/extensionAttribute1", PropertyType::String),
        ("onPremisesExtensionAttributes/extensionAttribute2", PropertyType::String),
    ],
    element_properties: &[
        ("identities", "issuer", PropertyType::String),
        ("identities", "issuerAssignedId", PropertyType::String),
        ("identities", "signInType", PropertyType::String),
    ],
};

const GROUP: TestSchema = TestSchema {
    entity: "microsoft.graph.group",
    properties: &[
        ("displayName", PropertyType::String),
        ("mailEnabled", PropertyType::Boolean),
        ("securityEnabled", PropertyType::Boolean),
        ("groupTypes", PropertyType::StringCollection),
    ],
    element_properties: &[],
};

const ADA: &str = r#"{
    "displayName": "Ada Lovelace",
    "mail": "ada@contoso.com",
    "userPrincipalName": "ada@contoso.com",
    "userType": "Member",
    "accountEnabled": true,
    "createdDateTime": "2021-03-04T05:06:07Z",
    "otherMails": ["admin@contoso.com", "ada@example.org"],
    "businessPhones": ["+1 425 555 0100"],
    "identities": [
        {"signInType": "emailAddress", "issuer": "My B2C tenant", "issuerAssignedId": "j.smith@yahoo.com"},
        {"signInType": "userPrincipalName", "issuer": "contoso.com", "issuerAssignedId": "ada@contoso.com"}
    ],
    "onPremisesExtensionAttributes": {"extensionAttribute1": "BYOD-Device", "extensionAttribute2": null}
}"#;

/// A guest with few properties: no mail, no collections, no extension attributes.
const GUEST: &str = r#"{
    "displayName": "bob O'Hara",
    "userType": "Guest",
    "accountEnabled": false,
    "createdDateTime": "2024-01-01T00:30:00+01:00",
    "mail": null
}"#;

/// Parses `filter` as a `user` filter and prints the tree, the printed text and whether each object of `objects`
/// (a JSON array) matches, or the error. Every successful parse is also checked to print back to the same tree.
#[track_caller]
fn check(filter: &str, objects: &str, expect: Expect) {
    check_with(&USER, filter, objects, expect);
}

#[track_caller]
fn check_with(schema: &TestSchema, filter: &str, objects: &str, expect: Expect) {
    let objects: Vec<Value> = serde_json::from_str(objects).expect("test objects are a JSON array");
    let actual = match Filter::parse(filter, schema) {
        Ok(parsed) => {
            let printed = parsed.to_string();
            assert_eq!(Filter::parse(&printed, schema).as_ref(), Ok(&parsed), "printed filter parses back");
            let results = objects.iter().map(|object| parsed.matches(object)).collect::<Vec<_>>();
            // An object holding only the properties the filter says it reads matches as the whole object does.
            let read = parsed.properties();
            let narrowed = objects.iter().map(|object| match object {
                Value::Object(map) => Value::Object(
                    map.iter()
                        .filter(|(name, _)| read.contains(&name.as_str()))
                        .map(|(name, value)| (name.clone(), value.clone()))
                        .collect(),
                ),
                other => other.clone(),
            });
            assert_eq!(
                narrowed.map(|object| parsed.matches(&object)).collect::<Vec<_>>(),
                results,
                "{filter} on {read:?}"
            );
            format!("{parsed:?}\n{printed}\nmatches: {results:?}")
        }
        Err(err) => format!("error: {err}"),
    };
    expect.assert_eq(&actual);
}

fn users() -> String {
    format!("[{ADA}, {GUEST}]")
}

// ---------------------------------------------------------------------------------------------------------------
// Microsoft Graph's documented examples.

#[test]
fn graph_examples() {
    check(
        "startswith(displayName,'a')",
        &users(),
        expect![[r#"
            (startswith displayName 'a')
            startswith(displayName,'a')
            matches: [true, false]"#]],
    );
    check(
        "userType eq 'Guest'",
        &users(),
        expect![[r#"
            (eq userType 'Guest')
            userType eq 'Guest'
            matches: [false, true]"#]],
    );
    check(
        "identities/any(c:c/issuerAssignedId eq 'j.smith@yahoo.com' and c/issuer eq 'My B2C tenant')",
        &users(),
        expect![[r#"
            (any identities c (and (eq c/issuerAssignedId 'j.smith@yahoo.com') (eq c/issuer 'My B2C tenant')))
            identities/any(c:c/issuerAssignedId eq 'j.smith@yahoo.com' and c/issuer eq 'My B2C tenant')
            matches: [true, false]"#]],
    );
    check(
        "otherMails/any(x:startswith(x,'admin'))",
        &users(),
        expect![[r#"
            (any otherMails x (startswith x 'admin'))
            otherMails/any(x:startswith(x,'admin'))
            matches: [true, false]"#]],
    );
    check(
        "accountEnabled eq false",
        &users(),
        expect![[r#"
            (eq accountEnabled false)
            accountEnabled eq false
            matches: [false, true]"#]],
    );
    check(
        "mail in ('a@x.com','ada@contoso.com')",
        &users(),
        expect![[r#"
            (in mail 'a@x.com' 'ada@contoso.com')
            mail in ('a@x.com','ada@contoso.com')
            matches: [true, false]"#]],
    );
    check(
        "not(startswith(displayName,'a'))",
        &users(),
        expect![[r#"
            (not (startswith displayName 'a'))
            not(startswith(displayName,'a'))
            matches: [false, true]"#]],
    );
    check(
        "onPremisesExtensionAttributes/extensionAttribute1 eq 'BYOD-Device'",
        &users(),
        expect![[r#"
            (eq onPremisesExtensionAttributes/extensionAttribute1 'BYOD-Device')
            onPremisesExtensionAttributes/extensionAttribute1 eq 'BYOD-Device'
            matches: [true, false]"#]],
    );
    check(
        "createdDateTime ge 2021-01-01T00:00:00Z",
        &users(),
        expect![[r#"
            (ge createdDateTime 2021-01-01T00:00:00Z)
            createdDateTime ge 2021-01-01T00:00:00Z
            matches: [true, true]"#]],
    );
    check_with(
        &GROUP,
        "groupTypes/any(c:c eq 'Unified')",
        r#"[{"groupTypes": ["Unified"]}, {"groupTypes": ["DynamicMembership"]}, {"groupTypes": []}, {}]"#,
        expect![[r#"
            (any groupTypes c (eq c 'Unified'))
            groupTypes/any(c:c eq 'Unified')
            matches: [true, false, false, false]"#]],
    );
    check_with(
        &GROUP,
        "NOT groupTypes/any(c:c eq 'Unified') and mailEnabled eq true",
        r#"[{"groupTypes": ["Unified"], "mailEnabled": true}, {"groupTypes": [], "mailEnabled": true}]"#,
        expect![[r#"
            (and (not (any groupTypes c (eq c 'Unified'))) (eq mailEnabled true))
            not(groupTypes/any(c:c eq 'Unified')) and mailEnabled eq true
            matches: [false, true]"#]],
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Operators.

#[test]
fn comparison_operators_on_strings() {
    let names =
        r#"[{"displayName": "alpha"}, {"displayName": "Beta"}, {"displayName": "beta"}, {"displayName": "gamma"}, {}]"#;
    check(
        "displayName eq 'BETA'",
        names,
        expect![[r#"
            (eq displayName 'BETA')
            displayName eq 'BETA'
            matches: [false, true, true, false, false]"#]],
    );
    check(
        "displayName ne 'beta'",
        names,
        expect![[r#"
            (ne displayName 'beta')
            displayName ne 'beta'
            matches: [true, false, false, true, true]"#]],
    );
    check(
        "displayName gt 'beta'",
        names,
        expect![[r#"
            (gt displayName 'beta')
            displayName gt 'beta'
            matches: [false, false, false, true, false]"#]],
    );
    check(
        "displayName ge 'BETA'",
        names,
        expect![[r#"
            (ge displayName 'BETA')
            displayName ge 'BETA'
            matches: [false, true, true, true, false]"#]],
    );
    check(
        "displayName lt 'b'",
        names,
        expect![[r#"
            (lt displayName 'b')
            displayName lt 'b'
            matches: [true, false, false, false, false]"#]],
    );
    check(
        "displayName le 'Beta'",
        names,
        expect![[r#"
            (le displayName 'Beta')
            displayName le 'Beta'
            matches: [true, true, true, false, false]"#]],
    );
    // Ordinal comparison after uppercasing, like .NET's OrdinalIgnoreCase: '_' (0x5F) sorts after 'A'..'Z'.
    check(
        "displayName gt 'z'",
        r#"[{"displayName": "_x"}, {"displayName": "Zz"}, {"displayName": "z"}]"#,
        expect![[r#"
            (gt displayName 'z')
            displayName gt 'z'
            matches: [true, true, false]"#]],
    );
}

#[test]
fn startswith_and_endswith_ignore_case() {
    let mails = r#"[{"mail": "Admin@Contoso.com"}, {"mail": "ad"}, {"mail": ""}, {}, {"mail": 42}]"#;
    check(
        "startswith(mail,'ADMIN@')",
        mails,
        expect![[r#"
            (startswith mail 'ADMIN@')
            startswith(mail,'ADMIN@')
            matches: [true, false, false, false, false]"#]],
    );
    check(
        "endswith(mail, '@CONTOSO.COM')",
        mails,
        expect![[r#"
            (endswith mail '@CONTOSO.COM')
            endswith(mail,'@CONTOSO.COM')
            matches: [true, false, false, false, false]"#]],
    );
    check(
        "startswith(mail,'')",
        mails,
        expect![[r#"
            (startswith mail '')
            startswith(mail,'')
            matches: [true, true, true, false, false]"#]],
    );
    check(
        "endswith(displayName,'ÉE')",
        r#"[{"displayName": "Renée"}, {"displayName": "Renee"}]"#,
        expect![[r#"
            (endswith displayName 'ÉE')
            endswith(displayName,'ÉE')
            matches: [true, false]"#]],
    );
}

#[test]
fn in_operator() {
    check(
        "userType in ('guest', 'MEMBER')",
        &users(),
        expect![[r#"
            (in userType 'guest' 'MEMBER')
            userType in ('guest','MEMBER')
            matches: [true, true]"#]],
    );
    check(
        "accountEnabled in (true)",
        &users(),
        expect![[r#"
            (in accountEnabled true)
            accountEnabled in (true)
            matches: [true, false]"#]],
    );
    check(
        "mail in ('x@y.z')",
        r#"[{}, {"mail": null}, {"mail": "X@Y.Z"}]"#,
        expect![[r#"
            (in mail 'x@y.z')
            mail in ('x@y.z')
            matches: [false, false, true]"#]],
    );
    check("mail in ()", "[]", expect!["error: Syntax error at position 9 in 'mail in ()'."]);
    check("mail in ('a',)", "[]", expect!["error: Syntax error at position 13 in 'mail in ('a',)'."]);
    check("mail in 'a'", "[]", expect!["error: Syntax error at position 8 in 'mail in 'a''."]);
}

#[test]
fn booleans_and_enums() {
    check(
        "accountEnabled eq true",
        r#"[{"accountEnabled": true}, {"accountEnabled": false}, {}, {"accountEnabled": "true"}]"#,
        expect![[r#"
            (eq accountEnabled true)
            accountEnabled eq true
            matches: [true, false, false, false]"#]],
    );
    check(
        "accountEnabled ne true",
        r#"[{"accountEnabled": true}, {"accountEnabled": false}, {}, {"accountEnabled": "true"}]"#,
        expect![[r#"
            (ne accountEnabled true)
            accountEnabled ne true
            matches: [false, true, true, true]"#]],
    );
    check(
        "userType ne 'member'",
        &users(),
        expect![[r#"
            (ne userType 'member')
            userType ne 'member'
            matches: [false, true]"#]],
    );
}

#[test]
fn date_times_compare_by_instant() {
    // GUEST was created at 2023-12-31T23:30:00Z, written with a +01:00 offset.
    check(
        "createdDateTime lt 2024-01-01T00:00:00Z",
        &users(),
        expect![[r#"
            (lt createdDateTime 2024-01-01T00:00:00Z)
            createdDateTime lt 2024-01-01T00:00:00Z
            matches: [true, true]"#]],
    );
    check(
        "createdDateTime eq 2023-12-31T18:30:00-05:00",
        &users(),
        expect![[r#"
            (eq createdDateTime 2023-12-31T18:30:00-05:00)
            createdDateTime eq 2023-12-31T18:30:00-05:00
            matches: [false, true]"#]],
    );
    check(
        "createdDateTime gt 2021-03-04T05:06:06.999999999Z and createdDateTime le 2021-03-04T05:06:07.000Z",
        &users(),
        expect![[r#"
            (and (gt createdDateTime 2021-03-04T05:06:06.999999999Z) (le createdDateTime 2021-03-04T05:06:07.000Z))
            createdDateTime gt 2021-03-04T05:06:06.999999999Z and createdDateTime le 2021-03-04T05:06:07.000Z
            matches: [true, false]"#]],
    );
    check(
        "createdDateTime ge 2024-02-29t00:00z",
        r#"[{"createdDateTime": "2024-02-29T00:00:00Z"}, {"createdDateTime": "not a date"}, {"createdDateTime": "2024-02-28T23:59:59.9Z"}]"#,
        expect![[r#"
            (ge createdDateTime 2024-02-29t00:00z)
            createdDateTime ge 2024-02-29t00:00z
            matches: [true, false, false]"#]],
    );
    check(
        "createdDateTime ne 2024-01-01T00:00:00Z",
        r#"[{"createdDateTime": "not a date"}, {}]"#,
        expect![[r#"
            (ne createdDateTime 2024-01-01T00:00:00Z)
            createdDateTime ne 2024-01-01T00:00:00Z
            matches: [true, true]"#]],
    );
    check(
        "createdDateTime ge 2023-02-29T00:00:00Z",
        "[]",
        expect!["error: Syntax error at position 19 in 'createdDateTime ge 2023-02-29T00:00:00Z'."],
    );
    check(
        "createdDateTime ge 2024-01-01",
        "[]",
        expect!["error: Syntax error at position 19 in 'createdDateTime ge 2024-01-01'."],
    );
    check(
        "createdDateTime ge 2024-01-01T24:00:00Z",
        "[]",
        expect!["error: Syntax error at position 19 in 'createdDateTime ge 2024-01-01T24:00:00Z'."],
    );
    check("displayName eq 42", "[]", expect!["error: Syntax error at position 15 in 'displayName eq 42'."]);
}

// ---------------------------------------------------------------------------------------------------------------
// Precedence, parentheses and printing.

#[test]
fn precedence() {
    check(
        "displayName eq 'a' or mail eq 'b' and userType eq 'c'",
        "[]",
        expect![[r#"
            (or (eq displayName 'a') (and (eq mail 'b') (eq userType 'c')))
            displayName eq 'a' or mail eq 'b' and userType eq 'c'
            matches: []"#]],
    );
    check(
        "(displayName eq 'a' or mail eq 'b') and userType eq 'c'",
        "[]",
        expect![[r#"
            (and (or (eq displayName 'a') (eq mail 'b')) (eq userType 'c'))
            (displayName eq 'a' or mail eq 'b') and userType eq 'c'
            matches: []"#]],
    );
    check(
        "displayName eq 'a' and (mail eq 'b' and userType eq 'c')",
        "[]",
        expect![[r#"
            (and (eq displayName 'a') (and (eq mail 'b') (eq userType 'c')))
            displayName eq 'a' and (mail eq 'b' and userType eq 'c')
            matches: []"#]],
    );
    check(
        "displayName eq 'a' or (mail eq 'b' or userType eq 'c') or mail eq 'd'",
        "[]",
        expect![[r#"
            (or (or (eq displayName 'a') (or (eq mail 'b') (eq userType 'c'))) (eq mail 'd'))
            displayName eq 'a' or (mail eq 'b' or userType eq 'c') or mail eq 'd'
            matches: []"#]],
    );
    check(
        "not startswith(displayName,'a') and not (mail eq 'b' or mail eq 'c')",
        "[]",
        expect![[r#"
            (and (not (startswith displayName 'a')) (not (or (eq mail 'b') (eq mail 'c'))))
            not(startswith(displayName,'a')) and not(mail eq 'b' or mail eq 'c')
            matches: []"#]],
    );
    check(
        "((((displayName eq 'a'))))",
        "[]",
        expect![[r#"
            (eq displayName 'a')
            displayName eq 'a'
            matches: []"#]],
    );
    check(
        "not not not(accountEnabled eq true)",
        &users(),
        expect![[r#"
            (not (not (not (eq accountEnabled true))))
            not(not(not(accountEnabled eq true)))
            matches: [false, true]"#]],
    );
    // `not` binds tighter than a comparison, as in OData, so its operand needs parentheses.
    check(
        "not displayName eq 'a'",
        "[]",
        expect![[
            "error: The operand of 'not' at position 4 must be a parenthesized expression, a function call or a lambda, as in 'not(displayName eq ''x'')'."
        ]],
    );
}

#[test]
fn and_or_evaluate_like_boolean_logic() {
    let objects = r#"[{"displayName": "a", "mail": "b"}, {"displayName": "a"}, {"mail": "b"}, {}]"#;
    check(
        "displayName eq 'a' and mail eq 'b'",
        objects,
        expect![[r#"
            (and (eq displayName 'a') (eq mail 'b'))
            displayName eq 'a' and mail eq 'b'
            matches: [true, false, false, false]"#]],
    );
    check(
        "displayName eq 'a' or mail eq 'b'",
        objects,
        expect![[r#"
            (or (eq displayName 'a') (eq mail 'b'))
            displayName eq 'a' or mail eq 'b'
            matches: [true, true, true, false]"#]],
    );
}

#[test]
fn keywords_functions_and_properties_ignore_case() {
    check(
        "StartsWith(DISPLAYNAME,'A') AND UserType EQ 'guest' Or NOT(accountenabled Ne TRUE) or MAIL eq NULL",
        &users(),
        expect![[r#"
            (or (or (and (startswith displayName 'A') (eq userType 'guest')) (not (ne accountEnabled true))) (eq mail null))
            startswith(displayName,'A') and userType eq 'guest' or not(accountEnabled ne true) or mail eq null
            matches: [true, true]"#]],
    );
    check(
        "IDENTITIES/ANY(C:c/ISSUER eq 'contoso.com') and OTHERMAILS/All(Mail: EndsWith(MAIL,'.ORG'))",
        &users(),
        expect![[r#"
            (and (any identities C (eq C/issuer 'contoso.com')) (all otherMails Mail (endswith Mail '.ORG')))
            identities/any(C:C/issuer eq 'contoso.com') and otherMails/all(Mail:endswith(Mail,'.ORG'))
            matches: [false, false]"#]],
    );
    check(
        "onpremisesextensionattributes/EXTENSIONATTRIBUTE1 eq 'byod-device'",
        &users(),
        expect![[r#"
            (eq onPremisesExtensionAttributes/extensionAttribute1 'byod-device')
            onPremisesExtensionAttributes/extensionAttribute1 eq 'byod-device'
            matches: [true, false]"#]],
    );
}

#[test]
fn whitespace_is_free_between_tokens() {
    check(
        "  (\tdisplayName   eq'a'or(mail\neq 'b') )  ",
        "[]",
        expect![[r#"
            (or (eq displayName 'a') (eq mail 'b'))
            displayName eq 'a' or mail eq 'b'
            matches: []"#]],
    );
}

#[test]
fn quotes_are_escaped_by_doubling() {
    check(
        "displayName eq 'bob o''hara'",
        &users(),
        expect![[r#"
            (eq displayName 'bob o''hara')
            displayName eq 'bob o''hara'
            matches: [false, true]"#]],
    );
    check(
        "displayName in ('''', '''''', 'it''s', ' ')",
        r#"[{"displayName": "'"}, {"displayName": "''"}, {"displayName": "IT'S"}, {"displayName": "it"}]"#,
        expect![[r#"
            (in displayName '''' '''''' 'it''s' ' ')
            displayName in ('''','''''','it''s',' ')
            matches: [true, true, true, false]"#]],
    );
    check(
        "displayName eq 'and or not eq ( ) / any(x:x)'",
        r#"[{"displayName": "AND OR NOT EQ ( ) / ANY(X:X)"}]"#,
        expect![[r#"
            (eq displayName 'and or not eq ( ) / any(x:x)')
            displayName eq 'and or not eq ( ) / any(x:x)'
            matches: [true]"#]],
    );
    check("displayName eq 'it''s", "[]", expect!["error: Syntax error at position 15 in 'displayName eq 'it''s'."]);
    check(
        "displayName eq 'a'''",
        "[]",
        expect![[r#"
        (eq displayName 'a''')
        displayName eq 'a'''
        matches: []"#]],
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Lambdas and nested paths.

#[test]
fn properties_read_are_the_top_level_names() {
    let filter = Filter::parse(
        "startswith(DISPLAYNAME,'a') and (onPremisesExtensionAttributes/extensionAttribute1 eq 'x' or \
         identities/any(i:i/issuer eq 'y' and accountEnabled eq true)) and not(displayName in ('b'))",
        &USER,
    )
    .expect("parses");
    assert_eq!(filter.properties(), ["displayName", "onPremisesExtensionAttributes", "identities", "accountEnabled"]);
}

#[test]
fn lambdas() {
    check(
        "businessPhones/any(p:startswith(p,'+1'))",
        &users(),
        expect![[r#"
            (any businessPhones p (startswith p '+1'))
            businessPhones/any(p:startswith(p,'+1'))
            matches: [true, false]"#]],
    );
    check(
        "otherMails/any(x:x eq 'ADA@example.org')",
        &users(),
        expect![[r#"
            (any otherMails x (eq x 'ADA@example.org'))
            otherMails/any(x:x eq 'ADA@example.org')
            matches: [true, false]"#]],
    );
    // `all` holds on an empty or missing collection; `any()` asks whether the collection has elements.
    check(
        "otherMails/all(x:endswith(x,'@contoso.com'))",
        &users(),
        expect![[r#"
            (all otherMails x (endswith x '@contoso.com'))
            otherMails/all(x:endswith(x,'@contoso.com'))
            matches: [false, true]"#]],
    );
    check(
        "otherMails/any()",
        r#"[{"otherMails": ["a"]}, {"otherMails": []}, {}, {"otherMails": "a"}]"#,
        expect![[r#"
            (any otherMails)
            otherMails/any()
            matches: [true, false, false, false]"#]],
    );
    check(
        "identities/all(c:c/signInType ne 'federated' and c/issuer ne null)",
        &users(),
        expect![[r#"
            (all identities c (and (ne c/signInType 'federated') (ne c/issuer null)))
            identities/all(c:c/signInType ne 'federated' and c/issuer ne null)
            matches: [true, true]"#]],
    );
    // Comparing two properties is not supported: the right side must be a literal.
    check(
        "identities/any(i:i/issuerAssignedId eq mail)",
        "[]",
        expect!["error: Syntax error at position 39 in 'identities/any(i:i/issuerAssignedId eq mail)'."],
    );
    // The body can mix the range variable with the entity's own properties.
    check(
        "identities/any(i:i/issuerAssignedId eq 'ada@contoso.com' and userType eq 'Member')",
        &users(),
        expect![[r#"
            (any identities i (and (eq i/issuerAssignedId 'ada@contoso.com') (eq userType 'Member')))
            identities/any(i:i/issuerAssignedId eq 'ada@contoso.com' and userType eq 'Member')
            matches: [true, false]"#]],
    );
    // Elements that are null or of the wrong shape never match a comparison.
    check(
        "otherMails/any(x:x eq null) or identities/any(c:c/issuer eq 'a')",
        r#"[{"otherMails": [null]}, {"identities": ["a", {"issuer": "A"}]}, {"identities": [1, null]}]"#,
        expect![[r#"
            (or (any otherMails x (eq x null)) (any identities c (eq c/issuer 'a')))
            otherMails/any(x:x eq null) or identities/any(c:c/issuer eq 'a')
            matches: [true, true, false]"#]],
    );
    check(
        "otherMails/any(x:x in ('a','b') and not(x eq 'b'))",
        r#"[{"otherMails": ["b", "A"]}, {"otherMails": ["b"]}]"#,
        expect![[r#"
            (any otherMails x (and (in x 'a' 'b') (not (eq x 'b'))))
            otherMails/any(x:x in ('a','b') and not(x eq 'b'))
            matches: [true, false]"#]],
    );
    check(
        "otherMails/any(x:businessPhones/any(y:y eq x))",
        "[]",
        expect!["error: Syntax error at position 43 in 'otherMails/any(x:businessPhones/any(y:y eq x))'."],
    );
    check(
        "otherMails/any(x:businessPhones/any(y:startswith(y,'+1')) and x ne 'a')",
        &users(),
        expect![[r#"
            (any otherMails x (and (any businessPhones y (startswith y '+1')) (ne x 'a')))
            otherMails/any(x:businessPhones/any(y:startswith(y,'+1')) and x ne 'a')
            matches: [true, false]"#]],
    );
}

#[test]
fn lambda_errors() {
    check(
        "otherMails/any(x:x/foo eq 'a')",
        "[]",
        expect!["error: Could not find a property named 'foo' on the elements of collection 'otherMails'."],
    );
    check(
        "identities/any(c:c/tenant eq 'a')",
        "[]",
        expect!["error: Could not find a property named 'tenant' on the elements of collection 'identities'."],
    );
    check(
        "identities/any(c:c eq 'a')",
        "[]",
        expect![[
            "error: The range variable 'c' stands for an element of the complex collection 'identities' and cannot be compared; compare one of its properties, as in 'c/name'."
        ]],
    );
    check(
        "identities/any(c:startswith(c,'a'))",
        "[]",
        expect![[
            "error: The range variable 'c' stands for an element of the complex collection 'identities' and cannot be compared; compare one of its properties, as in 'c/name'."
        ]],
    );
    check(
        "otherMails/any(x:identities/any(X:X/issuer eq 'a'))",
        "[]",
        expect!["error: The range variable 'X' has already been declared."],
    );
    check(
        "otherMails/any(x:x eq 'a') and x eq 'a'",
        "[]",
        expect!["error: Could not find a property named 'x' on type 'microsoft.graph.user'."],
    );
    check(
        "displayName/any(x:x eq 'a')",
        "[]",
        expect!["error: The operator 'any' cannot be applied to property 'displayName' of type 'Edm.String'."],
    );
    check("otherMails/all()", "[]", expect!["error: Syntax error at position 15 in 'otherMails/all()'."]);
    check(
        "otherMails/any(x x eq 'a')",
        "[]",
        expect!["error: Syntax error at position 17 in 'otherMails/any(x x eq 'a')'."],
    );
    check(
        "otherMails/any(x:x eq 'a'",
        "[]",
        expect!["error: Syntax error at position 25 in 'otherMails/any(x:x eq 'a''."],
    );
    check(
        "otherMails eq 'a'",
        "[]",
        expect![
            "error: The operator 'eq' cannot be applied to property 'otherMails' of type 'Collection(Edm.String)'."
        ],
    );
    check(
        "identities eq null",
        "[]",
        expect![
            "error: The operator 'eq' cannot be applied to property 'identities' of type 'Collection(complex type)'."
        ],
    );
    check(
        "startswith(otherMails/any(x:x eq 'a'),'a')",
        "[]",
        expect![
            "error: The operator 'startswith' cannot be applied to property 'otherMails' of type 'Collection(Edm.String)'."
        ],
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Null semantics.

#[test]
fn null_semantics() {
    let objects = r#"[{"mail": "a@b.c"}, {"mail": null}, {}]"#;
    check(
        "mail eq null",
        objects,
        expect![[r#"
            (eq mail null)
            mail eq null
            matches: [false, true, true]"#]],
    );
    check(
        "mail ne null",
        objects,
        expect![[r#"
            (ne mail null)
            mail ne null
            matches: [true, false, false]"#]],
    );
    check(
        "mail eq 'x'",
        objects,
        expect![[r#"
            (eq mail 'x')
            mail eq 'x'
            matches: [false, false, false]"#]],
    );
    check(
        "mail ne 'x'",
        objects,
        expect![[r#"
            (ne mail 'x')
            mail ne 'x'
            matches: [true, true, true]"#]],
    );
    check(
        "mail lt 'z' or mail ge 'a' or startswith(mail,'') or endswith(mail,'')",
        objects,
        expect![[r#"
            (or (or (or (lt mail 'z') (ge mail 'a')) (startswith mail '')) (endswith mail ''))
            mail lt 'z' or mail ge 'a' or startswith(mail,'') or endswith(mail,'')
            matches: [true, false, false]"#]],
    );
    // A missing parent object makes the nested property null too.
    check(
        "onPremisesExtensionAttributes/extensionAttribute2 eq null",
        r#"[{"onPremisesExtensionAttributes": {"extensionAttribute2": "x"}}, {"onPremisesExtensionAttributes": {"extensionAttribute2": null}}, {"onPremisesExtensionAttributes": null}, {}]"#,
        expect![[r#"
            (eq onPremisesExtensionAttributes/extensionAttribute2 null)
            onPremisesExtensionAttributes/extensionAttribute2 eq null
            matches: [false, true, true, true]"#]],
    );
    check(
        "accountEnabled eq null or createdDateTime ne null",
        r#"[{"accountEnabled": false}, {"createdDateTime": "2020-01-01T00:00:00Z"}]"#,
        expect![[r#"
            (or (eq accountEnabled null) (ne createdDateTime null))
            accountEnabled eq null or createdDateTime ne null
            matches: [false, true]"#]],
    );
    // `not` is plain negation: a missing value that fails `startswith` passes its negation.
    check(
        "not(startswith(mail,'a'))",
        objects,
        expect![[r#"
            (not (startswith mail 'a'))
            not(startswith(mail,'a'))
            matches: [false, true, true]"#]],
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Errors.

#[test]
fn unknown_names() {
    check(
        "manager eq 'x'",
        "[]",
        expect!["error: Could not find a property named 'manager' on type 'microsoft.graph.user'."],
    );
    check(
        "onPremisesExtensionAttributes/extensionAttribute99 eq 'x'",
        "[]",
        expect![[
            "error: Could not find a property named 'onPremisesExtensionAttributes/extensionAttribute99' on type 'microsoft.graph.user'."
        ]],
    );
    check_with(
        &GROUP,
        "mail eq 'x'",
        "[]",
        expect!["error: Could not find a property named 'mail' on type 'microsoft.graph.group'."],
    );
    check("contains(displayName,'a')", "[]", expect!["error: An unknown function with name 'contains' was found."]);
}

#[test]
fn type_mismatches() {
    check(
        "accountEnabled eq 'yes'",
        "[]",
        expect![
            "error: A value of type 'Edm.String' is not compatible with property 'accountEnabled' of type 'Edm.Boolean'."
        ],
    );
    check(
        "displayName eq true",
        "[]",
        expect![
            "error: A value of type 'Edm.Boolean' is not compatible with property 'displayName' of type 'Edm.String'."
        ],
    );
    check(
        "createdDateTime ge '2024-01-01T00:00:00Z'",
        "[]",
        expect![[
            "error: A value of type 'Edm.String' is not compatible with property 'createdDateTime' of type 'Edm.DateTimeOffset'."
        ]],
    );
    check(
        "displayName eq 2024-01-01T00:00:00Z",
        "[]",
        expect![[
            "error: A value of type 'Edm.DateTimeOffset' is not compatible with property 'displayName' of type 'Edm.String'."
        ]],
    );
    check(
        "userType in ('Guest', false)",
        "[]",
        expect![
            "error: A value of type 'Edm.Boolean' is not compatible with property 'userType' of type 'enumeration'."
        ],
    );
    check(
        "startswith(accountEnabled, 'x')",
        "[]",
        expect![
            "error: The operator 'startswith' cannot be applied to property 'accountEnabled' of type 'Edm.Boolean'."
        ],
    );
    check(
        "endswith(userType,'st')",
        "[]",
        expect!["error: The operator 'endswith' cannot be applied to property 'userType' of type 'enumeration'."],
    );
    check(
        "startswith(displayName, true)",
        "[]",
        expect![
            "error: A value of type 'Edm.Boolean' is not compatible with property 'displayName' of type 'Edm.String'."
        ],
    );
    check(
        "startswith(displayName, null)",
        "[]",
        expect!["error: The operator 'startswith' cannot compare property 'displayName' with null."],
    );
    check(
        "accountEnabled gt false",
        "[]",
        expect!["error: The operator 'gt' cannot be applied to property 'accountEnabled' of type 'Edm.Boolean'."],
    );
    check(
        "userType le 'Guest'",
        "[]",
        expect!["error: The operator 'le' cannot be applied to property 'userType' of type 'enumeration'."],
    );
    check(
        "displayName gt null",
        "[]",
        expect!["error: The operator 'gt' cannot compare property 'displayName' with null."],
    );
    check("mail in ('a', null)", "[]", expect!["error: The operator 'in' cannot compare property 'mail' with null."]);
    check(
        "identities/any(c:c/issuer eq false)",
        "[]",
        expect![
            "error: A value of type 'Edm.Boolean' is not compatible with property 'c/issuer' of type 'Edm.String'."
        ],
    );
}

#[test]
fn syntax_errors() {
    check("displayName eq", "[]", expect!["error: Syntax error at position 14 in 'displayName eq'."]);
    check("displayName", "[]", expect!["error: Syntax error at position 11 in 'displayName'."]);
    check("displayName equals 'a'", "[]", expect!["error: Syntax error at position 12 in 'displayName equals 'a''."]);
    check("displayName eq 'a' mail", "[]", expect!["error: Syntax error at position 19 in 'displayName eq 'a' mail'."]);
    check("displayName eq 'a' and", "[]", expect!["error: Syntax error at position 22 in 'displayName eq 'a' and'."]);
    check("(displayName eq 'a'", "[]", expect!["error: Syntax error at position 19 in '(displayName eq 'a''."]);
    check("displayName eq 'a')", "[]", expect!["error: Syntax error at position 18 in 'displayName eq 'a')'."]);
    check("displayName eq \"a\"", "[]", expect![[r#"error: Syntax error at position 15 in 'displayName eq "a"'."#]]);
    check("displayName eq abc", "[]", expect!["error: Syntax error at position 15 in 'displayName eq abc'."]);
    check("()", "[]", expect!["error: Syntax error at position 1 in '()'."]);
    check("eq 'a'", "[]", expect!["error: Could not find a property named 'eq' on type 'microsoft.graph.user'."]);
    check("'a' eq displayName", "[]", expect!["error: Syntax error at position 0 in ''a' eq displayName'."]);
    check(
        "onPremisesExtensionAttributes/",
        "[]",
        expect!["error: Syntax error at position 30 in 'onPremisesExtensionAttributes/'."],
    );
    check(
        "startswith(displayName 'a')",
        "[]",
        expect!["error: Syntax error at position 23 in 'startswith(displayName 'a')'."],
    );
    check(
        "startswith('a', displayName)",
        "[]",
        expect!["error: Syntax error at position 11 in 'startswith('a', displayName)'."],
    );
    check(
        "displayName eq 'é' and é",
        "[]",
        expect!["error: Could not find a property named 'é' on type 'microsoft.graph.user'."],
    );
    check(
        "displayName eq 'a' & mail eq 'b'",
        "[]",
        expect!["error: Syntax error at position 19 in 'displayName eq 'a' & mail eq 'b''."],
    );
    check("not", "[]", expect!["error: Syntax error at position 3 in 'not'."]);
    check("not()", "[]", expect!["error: Syntax error at position 4 in 'not()'."]);
}

#[test]
fn syntax_errors_carry_what_was_expected() {
    let err = Filter::parse("displayName eq", &USER).expect_err("filter is incomplete");
    expect![[r#"
        Syntax {
            position: 14,
            text: "displayName eq",
            expected: "a literal: a quoted string, true, false, null or a DateTimeOffset",
        }
    "#]]
    .assert_debug_eq(&err);
}

#[test]
fn empty_and_oversized_filters() {
    check("", "[]", expect!["error: The $filter query option is empty."]);
    check(" \t\n", "[]", expect!["error: The $filter query option is empty."]);

    let longest = format!("displayName eq '{}'", "a".repeat(MAX_FILTER_CHARS - 17));
    assert_eq!(longest.chars().count(), MAX_FILTER_CHARS);
    assert!(Filter::parse(&longest, &USER).is_ok());
    check(
        &format!("{longest} "),
        "[]",
        expect!["error: The $filter query option is 4001 characters long; at most 4000 are allowed."],
    );
    // The limit counts characters, not bytes.
    let wide = format!("displayName eq '{}'", "é".repeat(MAX_FILTER_CHARS - 17));
    assert!(Filter::parse(&wide, &USER).is_ok());
}

#[test]
fn nesting_is_limited_without_overflowing_the_stack() {
    let nested = |depth: usize| format!("{}displayName eq 'a'{}", "(".repeat(depth), ")".repeat(depth));
    let deepest = Filter::parse(&nested(MAX_NESTING), &USER).expect("the deepest allowed nesting parses");
    assert_eq!(deepest.to_string(), "displayName eq 'a'");
    check(
        &nested(MAX_NESTING + 1),
        "[]",
        expect!["error: The $filter query option nests deeper than 100 levels at position 100."],
    );
    check(
        &"(".repeat(3000),
        "[]",
        expect!["error: The $filter query option nests deeper than 100 levels at position 100."],
    );
    check(
        &"not ".repeat(999),
        "[]",
        expect!["error: The $filter query option nests deeper than 100 levels at position 400."],
    );
    check(
        &"(".repeat(MAX_FILTER_CHARS + 1),
        "[]",
        expect!["error: The $filter query option is 4001 characters long; at most 4000 are allowed."],
    );
    let lambdas = |depth: usize| {
        let heads = (0..depth).map(|level| format!("otherMails/any(x{level}:")).collect::<String>();
        format!("{heads}x0 eq 'a'{}", ")".repeat(depth))
    };
    let deepest = Filter::parse(&lambdas(MAX_NESTING), &USER).expect("the deepest allowed lambdas parse");
    assert_eq!(Filter::parse(&deepest.to_string(), &USER).as_ref(), Ok(&deepest));
    assert!(deepest.matches(&serde_json::json!({"otherMails": ["a"]})));
    let deepest_not = format!("{}(mail eq 'a')", "not ".repeat(MAX_NESTING - 1));
    let deepest_not = Filter::parse(&deepest_not, &USER).expect("the deepest allowed negations parse");
    assert!(deepest_not.matches(&serde_json::json!({})));
    check(
        &lambdas(MAX_NESTING + 1),
        "[]",
        expect!["error: The $filter query option nests deeper than 100 levels at position 1904."],
    );

    // The longest chain of `and` that fits builds a deep left-leaning tree; printing and evaluating it must work too.
    let chain = vec!["mail eq 'a'"; MAX_FILTER_CHARS / 16].join(" and ");
    let parsed = Filter::parse(&chain, &USER).expect("a long chain parses");
    assert_eq!(parsed.to_string(), chain);
    assert!(parsed.matches(&serde_json::json!({"mail": "A"})));
}

// ---------------------------------------------------------------------------------------------------------------
// Index use.

#[test]
fn equality_on_finds_top_level_equalities() {
    let equality = |filter: &str, property: &str| {
        Filter::parse(filter, &USER).expect("test filter parses").equality_on(property).map(str::to_owned)
    };
    assert_eq!(equality("mail eq 'a@b.c'", "mail").as_deref(), Some("a@b.c"));
    assert_eq!(equality("MAIL eq 'a@b.c'", "Mail").as_deref(), Some("a@b.c"));
    assert_eq!(
        equality("userType eq 'Guest' and (accountEnabled eq true and mail eq 'x')", "mail").as_deref(),
        Some("x")
    );
    assert_eq!(equality("mail eq 'it''s'", "mail").as_deref(), Some("it's"));
    assert_eq!(equality("mail eq 'a' or displayName eq 'b'", "mail"), None);
    assert_eq!(equality("not(mail eq 'a')", "mail"), None);
    assert_eq!(equality("mail ne 'a'", "mail"), None);
    assert_eq!(equality("mail eq null", "mail"), None);
    assert_eq!(equality("mail in ('a')", "mail"), None);
    assert_eq!(equality("displayName eq 'a'", "mail"), None);
    assert_eq!(equality("identities/any(c:c/issuer eq 'a')", "issuer"), None);
}

#[test]
fn errors_are_values() {
    // Callers map variants to Graph error codes, so variants must be comparable.
    assert_eq!(Filter::parse("", &USER), Err(FilterError::Empty));
}

// ---------------------------------------------------------------------------------------------------------------
// Property tests.

/// A filter as the generator builds it: `canonical` prints it the way `Filter`'s `Display` must, and `noisy`
/// spells the same tree with random case, spacing and redundant parentheses.
#[derive(Clone, Debug)]
enum Tree {
    And(Box<Tree>, Box<Tree>),
    Or(Box<Tree>, Box<Tree>),
    Not(Box<Tree>),
    /// `operand operator literal`; the literal as printed canonically, and as it may be written.
    Compare {
        operand: Operand,
        operator: &'static str,
        value: Lit,
    },
    In {
        operand: Operand,
        values: Vec<Lit>,
    },
    Text {
        function: &'static str,
        operand: Operand,
        argument: Lit,
    },
    Lambda {
        collection: &'static str,
        quantifier: &'static str,
        body: Option<(&'static str, Box<Tree>)>,
    },
}

#[derive(Clone, Debug)]
struct Operand {
    variable: Option<&'static str>,
    path: &'static str,
}

#[derive(Clone, Debug)]
struct Lit {
    canonical: String,
    written: String,
}

impl Operand {
    fn canonical(&self) -> String {
        match (self.variable, self.path) {
            (None, path) => path.to_owned(),
            (Some(variable), "") => variable.to_owned(),
            (Some(variable), path) => format!("{variable}/{path}"),
        }
    }
}

fn canonical(tree: &Tree) -> String {
    let grouped = |tree: &Tree, group: bool| if group { format!("({})", canonical(tree)) } else { canonical(tree) };
    match tree {
        Tree::Or(left, right) => format!("{} or {}", canonical(left), grouped(right, matches!(**right, Tree::Or(..)))),
        Tree::And(left, right) => format!(
            "{} and {}",
            grouped(left, matches!(**left, Tree::Or(..))),
            grouped(right, matches!(**right, Tree::Or(..) | Tree::And(..)))
        ),
        Tree::Not(inner) => format!("not({})", canonical(inner)),
        Tree::Compare { operand, operator, value } => format!("{} {operator} {}", operand.canonical(), value.canonical),
        Tree::In { operand, values } => {
            let values = values.iter().map(|value| value.canonical.as_str()).collect::<Vec<_>>().join(",");
            format!("{} in ({values})", operand.canonical())
        }
        Tree::Text { function, operand, argument } => {
            format!("{function}({},{})", operand.canonical(), argument.canonical)
        }
        Tree::Lambda { collection, quantifier, body: None } => format!("{collection}/{quantifier}()"),
        Tree::Lambda { collection, quantifier, body: Some((variable, body)) } => {
            format!("{collection}/{quantifier}({variable}:{})", canonical(body))
        }
    }
}

/// A tiny deterministic generator for the noisy spelling, so that proptest shrinks the tree and the seed apart.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    fn case(&mut self, word: &str) -> String {
        match self.next() % 4 {
            0 => word.to_uppercase(),
            1 => word
                .chars()
                .map(|c| if self.one_in(2) { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect(),
            _ => word.to_owned(),
        }
    }

    fn space(&mut self) -> &'static str {
        ["", "", " ", "  ", "\t"][(self.next() % 5) as usize]
    }

    /// At least one space, where OData requires it between words.
    fn gap(&mut self) -> &'static str {
        [" ", " ", "  ", "\t "][(self.next() % 4) as usize]
    }

    fn operand(&mut self, operand: &Operand) -> String {
        let variable = operand.variable.map(|variable| self.case(variable));
        match (variable, operand.path) {
            (None, path) => self.case(path),
            (Some(variable), "") => variable,
            (Some(variable), path) => format!("{variable}/{}", self.case(path)),
        }
    }

    fn noisy(&mut self, tree: &Tree) -> String {
        let text = match tree {
            Tree::Or(left, right) => {
                let right_text = self.noisy_grouped(right, matches!(**right, Tree::Or(..)));
                format!("{}{}{}{}{right_text}", self.noisy(left), self.gap(), self.case("or"), self.gap())
            }
            Tree::And(left, right) => {
                let left_text = self.noisy_grouped(left, matches!(**left, Tree::Or(..)));
                let right_text = self.noisy_grouped(right, matches!(**right, Tree::Or(..) | Tree::And(..)));
                format!("{left_text}{}{}{}{right_text}", self.gap(), self.case("and"), self.gap())
            }
            Tree::Not(inner)
                if matches!(**inner, Tree::Text { .. } | Tree::Lambda { .. } | Tree::Not(..)) && self.one_in(2) =>
            {
                let inner_text = self.noisy(inner);
                format!("{}{}{inner_text}", self.case("not"), self.gap())
            }
            Tree::Not(inner) => {
                let inner_text = self.noisy(inner);
                format!("{}{}({}{inner_text}{})", self.case("not"), self.space(), self.space(), self.space())
            }
            Tree::Compare { operand, operator, value } => {
                format!("{}{}{}{}{}", self.operand(operand), self.gap(), self.case(operator), self.gap(), value.written)
            }
            Tree::In { operand, values } => {
                let values = values
                    .iter()
                    .map(|value| format!("{}{}{}", self.space(), value.written, self.space()))
                    .collect::<Vec<_>>()
                    .join(",");
                format!("{}{}{}{}({values})", self.operand(operand), self.gap(), self.case("in"), self.space())
            }
            Tree::Text { function, operand, argument } => format!(
                "{}({}{}{},{}{}{})",
                self.case(function),
                self.space(),
                self.operand(operand),
                self.space(),
                self.space(),
                argument.written,
                self.space()
            ),
            Tree::Lambda { collection, quantifier, body } => {
                let head = format!("{}/{}(", self.case(collection), self.case(quantifier));
                match body {
                    None => format!("{head}{})", self.space()),
                    Some((variable, body)) => {
                        format!("{head}{variable}:{}{}{})", self.space(), self.noisy(body), self.space())
                    }
                }
            }
        };
        if self.one_in(8) { format!("({}{text}{})", self.space(), self.space()) } else { text }
    }

    fn noisy_grouped(&mut self, tree: &Tree, group: bool) -> String {
        let text = self.noisy(tree);
        if group { format!("({text})") } else { text }
    }
}

fn arb_string_literal() -> impl Strategy<Value = Lit> {
    "[a-zA-Z0-9 '@.+_é-]{0,8}".prop_map(|value| {
        let canonical = format!("'{}'", value.replace('\'', "''"));
        Lit { written: canonical.clone(), canonical }
    })
}

fn arb_keyword_literal(word: &'static str) -> impl Strategy<Value = Lit> {
    prop_oneof![
        Just(word.to_owned()),
        Just(word.to_uppercase()),
        Just(format!("{}{}", &word[..1].to_uppercase(), &word[1..]))
    ]
    .prop_map(move |written| Lit { canonical: word.to_owned(), written })
}

fn arb_date_time_literal() -> impl Strategy<Value = Lit> {
    let offset = prop_oneof![
        Just("Z".to_owned()),
        Just("z".to_owned()),
        (prop::bool::ANY, 0..15u32, 0..60u32)
            .prop_map(|(east, hour, minute)| { format!("{}{hour:02}:{minute:02}", if east { '+' } else { '-' }) }),
    ];
    let fraction = prop_oneof![Just(String::new()), "\\.[0-9]{1,12}"];
    let seconds = prop_oneof![
        Just(String::new()),
        (0..60u32, fraction).prop_map(|(second, fraction)| format!(":{second:02}{fraction}"))
    ];
    (1900..2100u32, 1..=12u32, 1..=28u32, 0..24u32, 0..60u32, seconds, offset).prop_map(
        |(year, month, day, hour, minute, seconds, offset)| {
            let text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}{seconds}{offset}");
            Lit { canonical: text.clone(), written: text }
        },
    )
}

fn arb_operator(ordering: bool) -> BoxedStrategy<&'static str> {
    if ordering {
        prop::sample::select(vec!["eq", "ne", "gt", "ge", "lt", "le"]).boxed()
    } else {
        prop::sample::select(vec!["eq", "ne"]).boxed()
    }
}

/// Leaves comparing a string-typed operand.
fn arb_string_leaf(operands: Vec<Operand>, ordering: bool) -> BoxedStrategy<Tree> {
    let operand = prop::sample::select(operands);
    prop_oneof![
        4 => (operand.clone(), arb_operator(ordering), arb_string_literal())
            .prop_map(|(operand, operator, value)| Tree::Compare { operand, operator, value }),
        1 => (operand.clone(), arb_operator(false), arb_keyword_literal("null"))
            .prop_map(|(operand, operator, value)| Tree::Compare { operand, operator, value }),
        1 => (operand.clone(), prop::collection::vec(arb_string_literal(), 1..4))
            .prop_map(|(operand, values)| Tree::In { operand, values }),
        2 => (operand, prop::sample::select(vec!["startswith", "endswith"]), arb_string_literal())
            .prop_map(|(operand, function, argument)| Tree::Text { function, operand, argument }),
    ]
    .boxed()
}

fn entity(path: &'static str) -> Operand {
    Operand { variable: None, path }
}

fn arb_entity_leaf() -> BoxedStrategy<Tree> {
    let strings =
        vec![entity("displayName"), entity("mail"), entity("onPremisesExtensionAttributes/extensionAttribute1")];
    prop_oneof![
        3 => arb_string_leaf(strings, true),
        1 => arb_string_leaf(vec![entity("userType")], false).prop_filter("enums have no text functions", |tree| !matches!(tree, Tree::Text { .. })),
        1 => (arb_operator(false), prop_oneof![arb_keyword_literal("true"), arb_keyword_literal("false"), arb_keyword_literal("null")])
            .prop_map(|(operator, value)| Tree::Compare { operand: entity("accountEnabled"), operator, value }),
        1 => (arb_operator(true), arb_date_time_literal())
            .prop_map(|(operator, value)| Tree::Compare { operand: entity("createdDateTime"), operator, value }),
    ]
    .boxed()
}

fn arb_connectives(leaf: BoxedStrategy<Tree>, depth: u32) -> BoxedStrategy<Tree> {
    leaf.prop_recursive(depth, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(left, right)| Tree::And(Box::new(left), Box::new(right))),
            (inner.clone(), inner.clone()).prop_map(|(left, right)| Tree::Or(Box::new(left), Box::new(right))),
            inner.prop_map(|inner| Tree::Not(Box::new(inner))),
        ]
    })
    .boxed()
}

fn arb_lambda() -> BoxedStrategy<Tree> {
    let quantifier = prop::sample::select(vec!["any", "all"]);
    let string_collection = (
        prop::sample::select(vec!["otherMails", "businessPhones"]),
        quantifier.clone(),
        prop::sample::select(vec!["x", "p", "Item"]),
    )
        .prop_flat_map(|(collection, quantifier, variable)| {
            let body = arb_connectives(arb_string_leaf(vec![Operand { variable: Some(variable), path: "" }], true), 2);
            body.prop_map(move |body| Tree::Lambda { collection, quantifier, body: Some((variable, Box::new(body))) })
        });
    let complex_collection =
        (quantifier, prop::sample::select(vec!["c", "i"])).prop_flat_map(|(quantifier, variable)| {
            let members = ["issuer", "issuerAssignedId", "signInType"]
                .into_iter()
                .map(|path| Operand { variable: Some(variable), path })
                .collect();
            let body =
                arb_connectives(prop_oneof![3 => arb_string_leaf(members, true), 1 => arb_entity_leaf()].boxed(), 2);
            body.prop_map(move |body| Tree::Lambda {
                collection: "identities",
                quantifier,
                body: Some((variable, Box::new(body))),
            })
        });
    let empty_any = prop::sample::select(vec!["otherMails", "businessPhones", "identities"])
        .prop_map(|collection| Tree::Lambda { collection, quantifier: "any", body: None });
    prop_oneof![2 => string_collection, 2 => complex_collection, 1 => empty_any].boxed()
}

fn arb_tree() -> BoxedStrategy<Tree> {
    arb_connectives(prop_oneof![4 => arb_entity_leaf(), 1 => arb_lambda()].boxed(), 5)
}

/// Filter-shaped noise for the never-panics test: real tokens in random order.
fn arb_token_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "(",
        ")",
        "((((",
        "))))",
        ",",
        ":",
        "/",
        "'",
        "''",
        "'a'",
        " ",
        "not ",
        "not(",
        " and ",
        " or ",
        " eq ",
        " ne ",
        " gt ",
        " in ",
        "displayName",
        "mail",
        "otherMails",
        "identities",
        "c",
        "x",
        "c/issuer",
        "/any(",
        "/all(",
        "x:",
        "startswith(",
        "endswith(",
        "contains(",
        "true",
        "null",
        "2024-01-01T00:00:00Z",
        "2024-",
        "é",
        "\u{1F600}",
    ]);
    prop::collection::vec(token, 0..200).prop_map(|tokens| tokens.concat())
}

fn fixture_objects() -> Vec<Value> {
    let mut objects: Vec<Value> = serde_json::from_str(&users()).expect("fixtures are JSON");
    objects.push(serde_json::json!({}));
    objects.push(serde_json::json!({"identities": [null, 1, {"issuer": []}], "otherMails": [null, 2], "mail": {}}));
    objects
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printed_filter_parses_back(tree in arb_tree(), seed in 1..u64::MAX) {
        let expected_text = canonical(&tree);
        let noisy_text = Noise(seed).noisy(&tree);
        let filter = Filter::parse(&noisy_text, &USER);
        prop_assert!(filter.is_ok(), "{noisy_text:?} fails to parse: {filter:?}");
        let filter = filter.unwrap();
        prop_assert_eq!(filter.to_string(), expected_text.clone());
        prop_assert_eq!(Filter::parse(&expected_text, &USER), Ok(filter.clone()));
        for object in fixture_objects() {
            // Evaluation is total: no panic on any object shape.
            let _ = filter.matches(&object);
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = Filter::parse(&text, &USER);
    }

    #[test]
    fn parse_never_panics_on_filter_shaped_text(text in arb_token_soup()) {
        if let Ok(filter) = Filter::parse(&text, &USER) {
            prop_assert_eq!(Filter::parse(&filter.to_string(), &USER), Ok(filter.clone()));
            for object in fixture_objects() {
                let _ = filter.matches(&object);
            }
        }
    }
}

#[test]
fn letters_whose_uppercase_lowercases_elsewhere_fold_to_themselves() {
    // .NET's invariant casing keeps the dotless ı; the long ſ and the final ς likewise keep themselves, so every
    // pair of characters that compare equal also lowercase equal.
    check(
        "displayName eq 'yilmaz'",
        r#"[{"displayName": "YILMAZ"}, {"displayName": "Yılmaz"}, {"displayName": "yilmaz"}]"#,
        expect![[r#"
            (eq displayName 'yilmaz')
            displayName eq 'yilmaz'
            matches: [true, false, true]"#]],
    );
    check(
        "startswith(displayName,'sa')",
        r#"[{"displayName": "Sam"}, {"displayName": "ſam"}, {"displayName": "SAM"}]"#,
        expect![[r#"
            (startswith displayName 'sa')
            startswith(displayName,'sa')
            matches: [true, false, true]"#]],
    );
}

#[test]
fn key_match_on_takes_an_equality_or_a_prefix_among_top_level_and_terms() {
    use tenantsync_graph::filter::KeyMatchText::{Equals, StartsWith};
    let key_match = |text: &str, property: &str| Filter::parse(text, &USER).expect("parses").key_match_on(property);
    assert_eq!(key_match("displayName eq 'Ada Lovelace'", "displayName"), Some(Equals("ada lovelace".to_owned())));
    assert_eq!(key_match("startswith(displayName,'ADA')", "DISPLAYNAME"), Some(StartsWith("ada".to_owned())));
    assert_eq!(
        key_match("startswith(displayName,'a') and accountEnabled eq true and displayName eq 'Ab'", "displayName"),
        Some(Equals("ab".to_owned()))
    );
    assert_eq!(
        key_match("startswith(displayName,'a') and startswith(displayName,'abc')", "displayName"),
        Some(StartsWith("abc".to_owned()))
    );
    // A sigma ends what can be used: its lowercase depends on where it stands in a word.
    assert_eq!(key_match("displayName eq 'ΟΔΟΣ'", "displayName"), Some(StartsWith("οδο".to_owned())));
    for unusable in [
        "startswith(displayName,'a') or accountEnabled eq true",
        "not(displayName eq 'a')",
        "displayName ne 'a'",
        "displayName ge 'a'",
        "endswith(displayName,'a')",
        "mail eq 'a'",
        "identities/any(i:i/issuer eq 'a')",
    ] {
        assert_eq!(key_match(unusable, "displayName"), None, "{unusable}");
    }
}

/// Characters chosen for their casing: ASCII, Turkish i's, long s, sigmas, sharp s, Kelvin sign, a titlecase.
const TRICKY: &[char] =
    &['a', 'A', 's', 'S', 'ſ', 'i', 'I', 'ı', 'İ', 'σ', 'Σ', 'ς', 'ß', 'ẞ', 'k', 'K', '\u{212A}', 'ǅ', 'ǆ', 'Ǆ', ' '];

fn tricky_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TRICKY), 0..max).prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    /// Whatever `eq` or `startswith` matches, the condition from `key_match_on` holds on the lowercased value:
    /// an index on the lowercased value never hides a match.
    #[test]
    fn key_match_never_excludes_a_match(name in tricky_text(6), operand in tricky_text(4), equality in any::<bool>()) {
        let quoted = operand.replace('\'', "''");
        let text = if equality {
            format!("displayName eq '{quoted}'")
        } else {
            format!("startswith(displayName,'{quoted}')")
        };
        let filter = Filter::parse(&text, &USER).expect("parses");
        let key = name.to_lowercase();
        if filter.matches(&serde_json::json!({ "displayName": name })) {
            match filter.key_match_on("displayName").expect("a condition") {
                tenantsync_graph::filter::KeyMatchText::Equals(value) => prop_assert_eq!(key, value),
                tenantsync_graph::filter::KeyMatchText::StartsWith(prefix) => prop_assert!(key.starts_with(&prefix), "{key:?} {prefix:?}"),
            }
        }
    }
}
