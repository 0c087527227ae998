//! The B2B user cross-tenant sync creates for a source user, built in one place for every target (a tenant hosted
//! here, another tenantsync server over Graph) and for the mapping function `AltSecIdFromNetId`: the anchor
//! identities that tie it to its source user, the invitation state, and the defaults a target needs. It does not
//! map attributes: callers hand in what the job's mappings produced.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::{AlternativeSecurityId, ObjectId};

/// The 15 `onPremisesExtensionAttributes` names, in order.
pub const EXTENSION_ATTRIBUTE_NAMES: [&str; 15] = [
    "extensionAttribute1",
    "extensionAttribute2",
    "extensionAttribute3",
    "extensionAttribute4",
    "extensionAttribute5",
    "extensionAttribute6",
    "extensionAttribute7",
    "extensionAttribute8",
    "extensionAttribute9",
    "extensionAttribute10",
    "extensionAttribute11",
    "extensionAttribute12",
    "extensionAttribute13",
    "extensionAttribute14",
    "extensionAttribute15",
];

/// The `key` of the `alternativeSecurityIds` entry that anchors a B2B user to its source user: base64 of the
/// source object id's text (what `AltSecIdFromNetId([netId])` produces).
pub fn alternative_security_key(net_id: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(net_id.as_bytes())
}

/// The `alternativeSecurityIds` entry CTS writes (`type` 6) for `net_id` issued by `identity_provider`.
pub fn alternative_security_id(identity_provider: &str, net_id: &str) -> AlternativeSecurityId {
    AlternativeSecurityId {
        kind: 6,
        identity_provider: Some(identity_provider.to_owned()),
        key: Some(alternative_security_key(net_id)),
    }
}

/// The Graph body of a new B2B user for `source_id` of `source_tenant` in a directory whose initial domain is
/// `initial_domain`: the mapped `attributes`, the invitation state (`creationType` Invitation, accepted), the anchor
/// (`identities` and `alternativeSecurityIds`), and defaults for what a directory requires and the mappings left
/// out (enabled Member, a UPN under the initial domain, the UPN as display name, a mail nickname).
pub fn b2b_user_body(
    source_tenant: &str,
    source_id: ObjectId,
    attributes: Map<String, Value>,
    initial_domain: &str,
) -> Map<String, Value> {
    let mut map = attributes;
    let source_id = source_id.to_string();
    map.insert("creationType".to_owned(), json!("Invitation"));
    map.insert("externalUserState".to_owned(), json!("Accepted"));
    map.entry("accountEnabled").or_insert(json!(true));
    map.entry("userType").or_insert(json!("Member"));
    if !map.get("userPrincipalName").is_some_and(Value::is_string) {
        map.insert("userPrincipalName".to_owned(), json!(format!("{source_id}#EXT#@{initial_domain}")));
    }
    if !map.get("displayName").is_some_and(Value::is_string) {
        let upn = map["userPrincipalName"].clone();
        map.insert("displayName".to_owned(), upn);
    }
    if !map.get("mailNickname").is_some_and(Value::is_string) {
        map.insert("mailNickname".to_owned(), json!(source_id.replace('-', "")));
    }
    map.insert(
        "identities".to_owned(),
        json!([{"signInType": "federated", "issuer": source_tenant, "issuerAssignedId": source_id}]),
    );
    map.insert("alternativeSecurityIds".to_owned(), json!([alternative_security_id(source_tenant, &source_id)]));
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchor_names_the_source_tenant_and_user() {
        let source_id = ObjectId::parse("6f1c2a9e-5b0d-4c8e-9a4f-0d2b7e3c1a55").unwrap();
        let body = b2b_user_body("tenant-a", source_id, Map::new(), "b.onmicrosoft.test");
        assert_eq!(body["userPrincipalName"], "6f1c2a9e-5b0d-4c8e-9a4f-0d2b7e3c1a55#EXT#@b.onmicrosoft.test");
        assert_eq!(body["identities"][0]["issuerAssignedId"], "6f1c2a9e-5b0d-4c8e-9a4f-0d2b7e3c1a55");
        assert_eq!(body["alternativeSecurityIds"][0]["type"], 6);
        assert_eq!(
            body["alternativeSecurityIds"][0]["key"], "NmYxYzJhOWUtNWIwZC00YzhlLTlhNGYtMGQyYjdlM2MxYTU1",
            "base64 of the object id's text"
        );
        assert_eq!(body["creationType"], "Invitation");
    }

    #[test]
    fn mapped_attributes_win_over_defaults() {
        let mut attributes = Map::new();
        attributes.insert("displayName".to_owned(), json!("Ada"));
        attributes.insert("accountEnabled".to_owned(), json!(false));
        let body = b2b_user_body("t", ObjectId::new_random(), attributes, "d.test");
        assert_eq!(body["displayName"], "Ada");
        assert_eq!(body["accountEnabled"], false);
        assert_eq!(body["userType"], "Member");
    }
}
