//! The properties the fuzz targets `graph_filter` and `graph_body` check, shared with the test that replays stored
//! fuzz findings (`tests/fuzz_regressions.rs`). Each function panics (which the fuzzer reports) when a property
//! fails: parsing never panics, evaluation never panics, a parsed `$filter` prints to text that parses back to the
//! same tree, and body checking never panics whatever JSON arrives.
//!
//! Not part of the stable API; it is public only so `fuzz/` and the tests can call it.

use serde_json::{Value, json};

use crate::body::merge_body;
use crate::entity::{Entity, GROUP, USER};
use crate::filter::Filter;

fn sample_objects() -> [Value; 3] {
    [
        json!({}),
        json!({"id": "u1", "displayName": "Zoë Doe", "givenName": "Zoë", "accountEnabled": true,
            "userPrincipalName": "zoe@contoso.com", "mail": "zoe@contoso.com",
            "proxyAddresses": ["SMTP:zoe@contoso.com", "smtp:z@contoso.com"], "businessPhones": ["+1 555"],
            "createdDateTime": "2020-06-10T18:13:20Z", "userType": "Member",
            "identities": [{"signInType": "userPrincipalName", "issuer": "contoso.com", "issuerAssignedId": "zoe"}],
            "onPremisesExtensionAttributes": {"extensionAttribute1": "x"}, "employeeId": "42"}),
        json!({"id": "g1", "displayName": "Team", "mailNickname": "team", "securityEnabled": true,
            "groupTypes": ["DynamicMembership"], "mailEnabled": false, "membershipRule": "user.department -eq \"x\""}),
    ]
}

/// `$filter` on users and groups: parse, print, re-parse, evaluate.
pub fn check_filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for entity in [&USER, &GROUP] {
        check_filter_on(text, entity);
    }
}

fn check_filter_on(text: &str, entity: &Entity) {
    let Ok(filter) = Filter::parse(text, entity) else { return };
    let printed = filter.to_string();
    let reparsed = Filter::parse(&printed, entity)
        .unwrap_or_else(|err| panic!("printed form {printed:?} of {text:?} does not parse: {err}"));
    assert_eq!(reparsed, filter, "printed form {printed:?} of {text:?} parses to a different filter");
    for object in sample_objects() {
        let _ = filter.matches(&object);
    }
}

/// `POST`/`PATCH` bodies of users and groups: any JSON value, merged into an empty object and into an existing one.
/// What is accepted stays a JSON object.
pub fn check_body(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    for entity in [&USER, &GROUP] {
        for object in sample_objects() {
            let Value::Object(mut target) = object else { unreachable!("the samples are objects") };
            match merge_body(entity, &mut target, &body) {
                Ok(_) => assert!(body.is_object(), "a non-object body {body} was accepted"),
                // A refused body may have been partly merged into the caller's copy; callers drop it.
                Err(err) => assert!(!err.to_string().is_empty(), "an empty error message for {body}"),
            }
        }
    }
}
