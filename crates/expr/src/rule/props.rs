//! The properties a dynamic membership rule may read (spec §3.5), with their types.
//!
//! Names are matched ignoring case (a Decision: the docs' own examples mix cases) and reported in
//! Microsoft's spelling.

use crate::rule::{ObjectKind, PropertyType};

use PropertyType::{AssignedPlans, Boolean, DateTime, MemberOf, String, StringCollection};

const USER: &[(&str, PropertyType)] = &[
    ("accountEnabled", Boolean),
    ("dirSyncEnabled", Boolean),
    ("employeeHireDate", DateTime),
    ("city", String),
    ("country", String),
    ("companyName", String),
    ("department", String),
    ("displayName", String),
    ("employeeId", String),
    ("facsimileTelephoneNumber", String),
    ("givenName", String),
    ("jobTitle", String),
    ("mail", String),
    ("mailNickName", String),
    ("mobile", String),
    ("objectId", String),
    ("onPremisesDistinguishedName", String),
    ("onPremisesSecurityIdentifier", String),
    ("passwordPolicies", String),
    ("physicalDeliveryOfficeName", String),
    ("postalCode", String),
    ("preferredLanguage", String),
    ("sipProxyAddress", String),
    ("state", String),
    ("streetAddress", String),
    ("surname", String),
    ("telephoneNumber", String),
    ("usageLocation", String),
    ("userPrincipalName", String),
    ("userType", String),
    ("otherMails", StringCollection),
    ("proxyAddresses", StringCollection),
    ("assignedPlans", AssignedPlans),
    ("memberOf", MemberOf),
];

const DEVICE: &[(&str, PropertyType)] = &[
    ("accountEnabled", Boolean),
    ("isRooted", Boolean),
    ("deviceCategory", String),
    ("deviceId", String),
    ("deviceManagementAppId", String),
    ("deviceManufacturer", String),
    ("deviceModel", String),
    ("displayName", String),
    ("deviceOSType", String),
    ("deviceOSVersion", String),
    ("deviceOwnership", String),
    ("deviceTrustType", String),
    ("enrollmentProfileName", String),
    ("managementType", String),
    ("objectId", String),
    ("profileType", String),
    ("systemLabels", String),
    ("devicePhysicalIds", StringCollection),
    ("memberOf", MemberOf),
];

/// The fields of an `assignedPlans` item.
pub(crate) const PLAN_FIELDS: &[&str] = &["capabilityStatus", "service", "servicePlanId"];

/// The documented spelling and type of `name` on `object`, or `None` when it is not supported.
pub(crate) fn lookup(object: ObjectKind, name: &str) -> Option<(std::string::String, PropertyType)> {
    let table = match object {
        ObjectKind::User => USER,
        ObjectKind::Device => DEVICE,
    };
    if let Some((canonical, kind)) = table.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)) {
        return Some(((*canonical).to_owned(), *kind));
    }
    let lower = name.to_ascii_lowercase();
    if let Some(number) = lower.strip_prefix("extensionattribute") {
        if let Ok(number @ 1..=15) = number.parse::<u8>() {
            if !number.to_string().eq(lower.trim_start_matches("extensionattribute")) {
                return None;
            }
            return Some((format!("extensionAttribute{number}"), String));
        }
        return None;
    }
    if let Some(rest) = lower.strip_prefix("extension_") {
        let (app_id, attribute) = rest.split_once('_')?;
        if app_id.len() == 32 && app_id.bytes().all(|b| b.is_ascii_hexdigit()) && !attribute.is_empty() {
            // Extension names are case-sensitive in Graph: keep them as written.
            return Some((name.to_owned(), String));
        }
    }
    None
}

/// Every known name, for "did you mean" suggestions.
pub(crate) fn names(object: ObjectKind) -> Vec<&'static str> {
    match object {
        ObjectKind::User => USER.iter().map(|(name, _)| *name).collect(),
        ObjectKind::Device => DEVICE.iter().map(|(name, _)| *name).collect(),
    }
}
