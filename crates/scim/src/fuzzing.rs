//! The properties the fuzz targets `scim_filter` and `scim_path` check, shared with the test that replays stored
//! fuzz findings (`tests/fuzz_regressions.rs`). Each function panics (which the fuzzer reports) when a property
//! fails: parsing never panics, evaluation never panics, and a parsed filter or PATCH path prints to text that
//! parses back to the same tree (without the filter length limit, which applies to what a client writes).
//!
//! Not part of the stable API; it is public only so `fuzz/` and the tests can call it.

use serde_json::{Value, json};

use crate::filter::Filter;
use crate::path::PatchPath;

fn sample_resources() -> [Value; 3] {
    [
        json!({}),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1", "userName": "zoe@contoso.com",
            "name": {"givenName": "Zoë", "familyName": "Doe"}, "active": true, "displayName": "Zoë Doe",
            "emails": [{"value": "zoe@contoso.com", "type": "work", "primary": true}, {"value": "z@x.com"}],
            "meta": {"created": "2020-06-10T18:13:20Z", "lastModified": "2021-01-01T00:00:00Z", "resourceType": "User"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42",
                "manager": {"value": "m1"}}, "x": 5, "y": null}),
        json!({"id": "g1", "displayName": "Team", "members": [{"value": "u1", "type": "User"}]}),
    ]
}

/// Filters: parse, print, re-parse, evaluate.
pub fn check_filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(filter) = Filter::parse(text) else { return };
    let printed = filter.to_string();
    // The length limit applies to what a client writes; canonical printing can lengthen a text just under it.
    let reparsed = Filter::parse_unbounded(&printed)
        .unwrap_or_else(|err| panic!("printed form {printed:?} of {text:?} does not parse: {err}"));
    assert_eq!(reparsed, filter, "printed form {printed:?} of {text:?} parses to a different filter");
    for resource in sample_resources() {
        let _ = filter.matches(&resource);
    }
}

/// PATCH paths: parse, print, re-parse.
pub fn check_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(path) = PatchPath::parse(text) else { return };
    let printed = path.to_string();
    let reparsed = PatchPath::parse_unbounded(&printed)
        .unwrap_or_else(|err| panic!("printed form {printed:?} of {text:?} does not parse: {}", err.detail));
    assert_eq!(reparsed, path, "printed form {printed:?} of {text:?} parses to a different path");
}
