//! The properties the fuzz targets check, shared with the test that replays stored fuzz findings:
//! parsing never panics, evaluation never panics, and printing a parsed tree then parsing it again
//! gives the same tree (the re-parse ignores the length limits, because canonical printing can make
//! a text that was just under a limit slightly longer). Each function panics (which the fuzzer reports) when a property fails.
//!
//! Not part of the stable API; it is public only so `fuzz/` and the tests can call it.

use time::macros::datetime;

use crate::attrs::Attributes;
use crate::context::{EvalContext, ExistingValues, FixedClock, SplitMix64};
use crate::mapping::{parse_mapping, parse_mapping_unbounded};
use crate::rule::{Rule, parse_rule, parse_rule_with_limit};
use crate::scoping::ScopingFilter;

fn sample_objects() -> Vec<Attributes> {
    let json = [
        serde_json::json!({}),
        serde_json::json!({"givenName": "Zoë", "surname": "Doe", "department": "Sales", "accountEnabled": true,
            "proxyAddresses": ["SMTP:a@x.com", "smtp:b@x.com"], "employeeHireDate": "2020-06-10T18:13:20Z",
            "assignedPlans": [{"service": "SCO", "capabilityStatus": "Enabled", "servicePlanId": "p1"}],
            "memberOf": ["g1"], "manager": "m1", "x": "10", "mail": "", "city": "Lagos", "n": 5}),
    ];
    json.iter().filter_map(|value| Attributes::from_json(value).ok()).collect()
}

/// Mapping expressions: parse, evaluate, print, re-parse.
pub fn check_mapping(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let Ok(mapping) = parse_mapping(source) else { return };
    let printed = mapping.to_string();
    let reparsed = parse_mapping_unbounded(&printed)
        .unwrap_or_else(|err| panic!("printed form {printed:?} does not parse: {err}"));
    assert_eq!(reparsed, mapping, "printed form {printed:?} parses to a different tree");
    let clock = FixedClock(datetime!(2021-07-02 15:33:38 UTC));
    let rng = SplitMix64::new(7);
    let existing = ExistingValues::new(["taken"]);
    let ctx = EvalContext::new(&clock, &rng).with_uniqueness(&existing).with_source_tenant("tenant");
    for object in sample_objects() {
        let _ = mapping.evaluate(&object, &ctx);
    }
}

/// Scoping filters: parse JSON, print, re-parse, compile, evaluate.
pub fn check_scoping(data: &[u8]) {
    let Ok(json) = std::str::from_utf8(data) else { return };
    let Ok(filter) = ScopingFilter::from_json(json) else { return };
    let printed = filter.to_string();
    let reparsed = ScopingFilter::from_json(&printed)
        .unwrap_or_else(|err| panic!("printed form {printed:?} does not parse: {err}"));
    assert_eq!(reparsed, filter, "printed form {printed:?} parses to a different filter");
    if let Ok(compiled) = filter.compile() {
        for object in sample_objects() {
            let _ = compiled.in_scope(&object);
        }
    }
}

/// Dynamic rules: parse, print, re-parse, compile, evaluate.
pub fn check_rule(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(expr) = parse_rule(text) else { return };
    let printed = expr.to_string();
    let reparsed = parse_rule_with_limit(&printed, usize::MAX)
        .unwrap_or_else(|err| panic!("printed form {printed:?} does not parse: {err}"));
    assert_eq!(reparsed, expr, "printed form {printed:?} parses to a different tree");
    let rule = Rule::compile(text).unwrap_or_else(|err| panic!("{text:?} parses but does not compile: {err}"));
    for object in sample_objects() {
        let _ = rule.matches(&object);
        let _ = rule.matches_at(&object, datetime!(2024-06-01 12:00 UTC));
    }
}
