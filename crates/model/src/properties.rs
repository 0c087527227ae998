//! The input contract of users and groups: one table of every property tenantsync stores, with its type, length
//! limit, format and multiplicity as Microsoft Graph documents them, and the one check every entry path (the Graph
//! API, SCIM, the CSV import, a sync target, the Graph connector toward a remote Entra tenant) runs through, so they
//! all refuse the same values with the same message.
//!
//! Sources, cited per row in [`PropertySpec::source`]:
//! - [`USER_DOC`]: <https://learn.microsoft.com/graph/api/resources/user> (Properties table: "Maximum length is N
//!   characters", businessPhones "only one number can be set", usageLocation "a two-letter country code (ISO
//!   standard 3166)", preferredLanguage "should follow ISO 639-1 Code; for example en-US", mail and otherMails
//!   "cannot contain accent characters").
//! - [`GROUP_DOC`]: <https://learn.microsoft.com/graph/api/resources/group> (displayName 256, description 1024,
//!   mailNickname 64 "ASCII character set 0 - 127 except `@ () \ [] " ; : <> , SPACE`").
//! - [`IDENTITY_DOC`]: <https://learn.microsoft.com/graph/api/resources/objectidentity> (issuer 512,
//!   issuerAssignedId 64).
//! - [`DYNAMIC_RULE_DOC`]: <https://learn.microsoft.com/entra/identity/users/groups-dynamic-membership> (a rule is
//!   at most 3,072 characters).
//!
//! Lengths count Unicode scalar values (`char`s). A property whose documentation states no limit has `max_len: None`
//! and the row's `source` says so: tenantsync does not invent limits Entra does not have.
//!
//! What this module does not check: rules that need the tenant or the store (the userPrincipalName's domain, unique
//! values, manager cycles, dynamic rule syntax) stay in `tenantsync-directory`; JSON shape errors of a request body
//! (a number where a string belongs) are the Graph and SCIM crates' job, before a value reaches this table.

use serde_json::Value;

/// Graph's `user` resource page, the source of most user rows.
pub const USER_DOC: &str = "https://learn.microsoft.com/graph/api/resources/user";
/// Graph's `group` resource page.
pub const GROUP_DOC: &str = "https://learn.microsoft.com/graph/api/resources/group";
/// Graph's `objectIdentity` resource page (the items of a user's `identities`).
pub const IDENTITY_DOC: &str = "https://learn.microsoft.com/graph/api/resources/objectidentity";
/// Graph's `onPremisesExtensionAttributes` resource page.
pub const EXTENSION_ATTRIBUTES_DOC: &str =
    "https://learn.microsoft.com/graph/api/resources/onpremisesextensionattributes";
/// Entra's dynamic membership rules page.
pub const DYNAMIC_RULE_DOC: &str = "https://learn.microsoft.com/entra/identity/users/groups-dynamic-membership";

/// The JSON type of a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyKind {
    String,
    Boolean,
    /// An RFC 3339 timestamp (`DateTimeOffset` in Graph).
    DateTime,
    /// A GUID in its 36-character text form.
    Guid,
    /// A string from a fixed list (compared ignoring ASCII case).
    Enum(&'static [&'static str]),
    StringCollection,
    /// An object whose fields are listed in [`PropertySpec::fields`].
    Object,
    /// An array of objects whose fields are listed in [`PropertySpec::fields`].
    ObjectCollection,
    /// `alternativeSecurityIds`: objects of `type` (an integer), `identityProvider` and `key`.
    AlternativeSecurityIds,
}

/// A format a string value (or each item of a string collection) must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An SMTP address `local@domain`, ASCII only ("cannot contain accent characters"), no spaces.
    Email,
    /// A language tag like `en` or `en-US` (ISO 639-1 language, optional BCP 47 subtags).
    LanguageTag,
    /// Two uppercase letters, an ISO 3166-1 alpha-2 country code (`US`, `JP`).
    CountryCode,
    /// A mail alias: printable ASCII without `@ ( ) \ [ ] " ; : < > ,` or white space.
    MailNickname,
    /// `local@domain`; the domain is checked against the tenant's domains by the directory.
    UserPrincipalName,
}

/// One property of a user or a group.
#[derive(Clone, Copy, Debug)]
pub struct PropertySpec {
    /// Graph's camelCase name, e.g. `displayName`.
    pub name: &'static str,
    pub kind: PropertyKind,
    /// The most characters a string value (or each item of a string collection) may have.
    pub max_len: Option<usize>,
    /// The most items a collection may have.
    pub max_items: Option<usize>,
    pub format: Option<Format>,
    /// Set by the server only (`id`, `createdDateTime`), or only by one protocol (the SCIM-only names).
    pub read_only: bool,
    /// Required and non-empty on create (`passwordProfile` is deliberately not: tenantsync signs nobody in).
    pub required_on_create: bool,
    /// The fields of an [`PropertyKind::Object`] or [`PropertyKind::ObjectCollection`]; empty otherwise.
    pub fields: &'static [PropertySpec],
    /// Where the limit and format come from (a documentation page), or why there is none.
    pub source: &'static str,
}

impl PropertySpec {
    /// Whether this property is limited in any way a value can break (length, items, format).
    pub fn is_limited(&self) -> bool {
        self.max_len.is_some() || self.max_items.is_some() || self.format.is_some()
    }
}

const fn spec(name: &'static str, kind: PropertyKind, source: &'static str) -> PropertySpec {
    PropertySpec {
        name,
        kind,
        max_len: None,
        max_items: None,
        format: None,
        read_only: false,
        required_on_create: false,
        fields: &[],
        source,
    }
}

const fn string(name: &'static str, max_len: usize, source: &'static str) -> PropertySpec {
    PropertySpec { max_len: Some(max_len), ..spec(name, PropertyKind::String, source) }
}

const fn read_only(name: &'static str, kind: PropertyKind, source: &'static str) -> PropertySpec {
    PropertySpec { read_only: true, ..spec(name, kind, source) }
}

const NO_LIMIT: &str = "Graph's user page documents no length limit";
const SERVER_SET: &str = "set by the server";

use PropertyKind as K;

const EXTENSION_ATTRIBUTE_MAX_LEN: usize = 1024;

macro_rules! extension_attribute {
    ($name:literal) => {
        PropertySpec {
            max_len: Some(EXTENSION_ATTRIBUTE_MAX_LEN),
            ..spec(
                $name,
                K::String,
                "onPremisesExtensionAttributes page (Exchange custom attributes 1-15; 1024 characters as in \
                 on-premises Active Directory)",
            )
        }
    };
}

/// The fields of `onPremisesExtensionAttributes`.
pub const EXTENSION_ATTRIBUTE_FIELDS: &[PropertySpec] = &[
    extension_attribute!("extensionAttribute1"),
    extension_attribute!("extensionAttribute2"),
    extension_attribute!("extensionAttribute3"),
    extension_attribute!("extensionAttribute4"),
    extension_attribute!("extensionAttribute5"),
    extension_attribute!("extensionAttribute6"),
    extension_attribute!("extensionAttribute7"),
    extension_attribute!("extensionAttribute8"),
    extension_attribute!("extensionAttribute9"),
    extension_attribute!("extensionAttribute10"),
    extension_attribute!("extensionAttribute11"),
    extension_attribute!("extensionAttribute12"),
    extension_attribute!("extensionAttribute13"),
    extension_attribute!("extensionAttribute14"),
    extension_attribute!("extensionAttribute15"),
];

/// The fields of an `identities` item (`objectIdentity`).
pub const IDENTITY_FIELDS: &[PropertySpec] = &[
    spec("signInType", K::String, "objectIdentity page: no limit documented"),
    string("issuer", 512, "objectIdentity page: \"512 character limit\""),
    string("issuerAssignedId", 64, "objectIdentity page: \"64 character limit\""),
];

/// The fields of `crossTenantSynchronizationResource` (server-set).
pub const SYNC_ORIGIN_FIELDS: &[PropertySpec] =
    &[spec("originTenantId", K::Guid, SERVER_SET), spec("originId", K::Guid, SERVER_SET)];

/// Every property of a user tenantsync stores or serves, in Graph's names.
pub const USER_PROPERTIES: &[PropertySpec] = &[
    read_only("id", K::Guid, SERVER_SET),
    PropertySpec {
        format: Some(Format::UserPrincipalName),
        max_len: Some(113 + 1 + 256),
        required_on_create: true,
        ..spec(
            "userPrincipalName",
            K::String,
            "user page (alias@domain, a verified domain); local part at most 113 characters, domain at most 256",
        )
    },
    PropertySpec { required_on_create: true, ..string("displayName", 256, "user page: \"Maximum length is 256\"") },
    string("givenName", 64, "user page: \"Maximum length is 64 characters\""),
    string("surname", 64, "user page: \"Maximum length is 64 characters\""),
    PropertySpec {
        format: Some(Format::Email),
        max_len: Some(254),
        ..spec("mail", K::String, "user page: an SMTP address without accent characters; RFC 5321 caps it at 254")
    },
    PropertySpec {
        format: Some(Format::MailNickname),
        required_on_create: true,
        ..string("mailNickname", 64, "user page: \"Maximum length is 64 characters\"; characters as on the group page")
    },
    PropertySpec {
        format: Some(Format::Email),
        max_len: Some(254),
        ..spec("otherMails", K::StringCollection, "user page: email addresses without accent characters")
    },
    string("jobTitle", 128, "user page: \"Maximum length is 128 characters\""),
    string("department", 64, "user page: \"Maximum length is 64 characters\""),
    string("companyName", 64, "user page: \"The maximum length is 64 characters\""),
    string("employeeId", 16, "user page: \"The maximum length is 16 characters\""),
    spec("employeeType", K::String, NO_LIMIT),
    string("officeLocation", 128, "user page: \"Maximum length is 128 characters\""),
    string("streetAddress", 1024, "user page: \"Maximum length is 1024 characters\""),
    string("city", 128, "user page: \"Maximum length is 128 characters\""),
    string("state", 128, "user page: \"Maximum length is 128 characters\""),
    string("postalCode", 40, "user page: \"Maximum length is 40 characters\""),
    string("country", 128, "user page: \"Maximum length is 128 characters\""),
    PropertySpec {
        format: Some(Format::CountryCode),
        ..spec("usageLocation", K::String, "user page: \"A two-letter country code (ISO standard 3166)\"")
    },
    PropertySpec {
        format: Some(Format::LanguageTag),
        ..spec("preferredLanguage", K::String, "user page: \"Should follow ISO 639-1 Code; for example en-US\"")
    },
    string("mobilePhone", 64, "user page: \"Maximum length is 64 characters\""),
    PropertySpec {
        max_items: Some(1),
        max_len: Some(64),
        ..spec(
            "businessPhones",
            K::StringCollection,
            "user page: \"only one number can be set for this property\"; 64 characters as mobilePhone",
        )
    },
    spec("accountEnabled", K::Boolean, "user page"),
    spec("userType", K::Enum(&["Member", "Guest"]), "user page"),
    spec("creationType", K::String, "user page: set by invitation or sync, no limit documented"),
    spec("externalUserState", K::String, "user page: PendingAcceptance or Accepted, no limit documented"),
    spec("showInAddressList", K::Boolean, "user page"),
    PropertySpec {
        fields: EXTENSION_ATTRIBUTE_FIELDS,
        ..spec("onPremisesExtensionAttributes", K::Object, EXTENSION_ATTRIBUTES_DOC)
    },
    PropertySpec { fields: IDENTITY_FIELDS, ..spec("identities", K::ObjectCollection, IDENTITY_DOC) },
    spec("alternativeSecurityIds", K::AlternativeSecurityIds, "written by cross-tenant sync (type 6)"),
    read_only("createdDateTime", K::DateTime, SERVER_SET),
    read_only("deletedDateTime", K::DateTime, SERVER_SET),
    spec("passwordProfile", K::Object, "user page; optional here: checked for complexity, then dropped"),
    read_only("scimUserName", K::String, "SCIM userName as written; set through SCIM only"),
    read_only("scimExternalId", K::String, "SCIM externalId; set through SCIM only"),
    PropertySpec {
        fields: SYNC_ORIGIN_FIELDS,
        ..read_only("crossTenantSynchronizationResource", K::Object, "derived from the anchor by the server")
    },
];

/// The fields of a group's `membershipRuleProcessingStatus` (server-set).
pub const PROCESSING_STATUS_FIELDS: &[PropertySpec] = &[
    spec("status", K::String, SERVER_SET),
    spec("lastMembershipUpdated", K::DateTime, SERVER_SET),
    spec("errorMessage", K::String, SERVER_SET),
];

/// Every property of a group tenantsync stores or serves, in Graph's names.
pub const GROUP_PROPERTIES: &[PropertySpec] = &[
    read_only("id", K::Guid, SERVER_SET),
    PropertySpec { required_on_create: true, ..string("displayName", 256, "group page: \"Maximum length is 256\"") },
    PropertySpec {
        format: Some(Format::MailNickname),
        required_on_create: true,
        ..string("mailNickname", 64, "group page: \"Maximum length is 64 characters\", ASCII except @()\\[]\";:<>,")
    },
    PropertySpec { required_on_create: true, ..spec("mailEnabled", K::Boolean, GROUP_DOC) },
    PropertySpec { required_on_create: true, ..spec("securityEnabled", K::Boolean, GROUP_DOC) },
    string("description", 1024, "group page: \"Maximum length is 1024 characters\""),
    spec("groupTypes", K::StringCollection, "group page: empty, Unified or DynamicMembership"),
    string("membershipRule", 3072, "dynamic membership page: a rule is at most 3,072 characters"),
    spec("membershipRuleProcessingState", K::Enum(&["On", "Paused"]), GROUP_DOC),
    PropertySpec {
        fields: PROCESSING_STATUS_FIELDS,
        ..read_only("membershipRuleProcessingStatus", K::Object, "Graph beta; computed by the directory")
    },
    PropertySpec {
        fields: SYNC_ORIGIN_FIELDS,
        ..read_only("crossTenantSynchronizationResource", K::Object, "Graph beta; set by cross-tenant sync")
    },
    read_only("createdDateTime", K::DateTime, SERVER_SET),
    read_only("deletedDateTime", K::DateTime, SERVER_SET),
];

/// A value that breaks a property's limit or format. Its message is the one every entry path shows:
/// `Invalid value specified for property 'displayName' of resource 'User': at most 256 characters are allowed.`
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Invalid value specified for property '{property}' of resource '{resource}': {reason}.")]
pub struct PropertyError {
    /// `User` or `Group`.
    pub resource: &'static str,
    /// The property's path, `displayName` or `identities/issuerAssignedId`.
    pub property: String,
    /// What is wrong, without the value (values may be long or sensitive).
    pub reason: String,
}

/// A property of `table` by name, ignoring ASCII case.
pub fn find_property(table: &'static [PropertySpec], name: &str) -> Option<&'static PropertySpec> {
    table.iter().find(|property| property.name.eq_ignore_ascii_case(name))
}

/// Checks one user property's value against [`USER_PROPERTIES`]. Unknown names and JSON `null` pass: the body
/// checker refuses unknown names, and null clears a value.
pub fn check_user_property(name: &str, value: &Value) -> Result<(), PropertyError> {
    check_in("User", USER_PROPERTIES, name, value)
}

/// Checks one group property's value against [`GROUP_PROPERTIES`], as [`check_user_property`] does for users.
pub fn check_group_property(name: &str, value: &Value) -> Result<(), PropertyError> {
    check_in("Group", GROUP_PROPERTIES, name, value)
}

/// Checks every property of a user's JSON form (what `User` serializes to, or a Graph body), in table order.
pub fn check_user_json(user: &Value) -> Result<(), PropertyError> {
    check_all("User", USER_PROPERTIES, user)
}

/// Checks every property of a group's JSON form, in table order.
pub fn check_group_json(group: &Value) -> Result<(), PropertyError> {
    check_all("Group", GROUP_PROPERTIES, group)
}

/// Checks a [`crate::User`] against [`USER_PROPERTIES`].
pub fn check_user(user: &crate::User) -> Result<(), PropertyError> {
    check_user_json(&user_json_without_unset(user))
}

/// A user's JSON form without its unset fields, for readers to which a missing property and `null` are the same:
/// the checks here (a `null` passes every one) and a sync source's planning. A bulk create or a full pass does not
/// build and walk some 40 `null`s per user.
pub fn user_json_without_unset(user: &crate::User) -> Value {
    crate::compact::to_value_keeping(user, &|_| true).expect("a user always serializes")
}

/// Checks a [`crate::Group`] against [`GROUP_PROPERTIES`].
pub fn check_group(group: &crate::Group) -> Result<(), PropertyError> {
    check_group_json(&serde_json::to_value(group).expect("a group always serializes"))
}

fn check_all(resource: &'static str, table: &'static [PropertySpec], object: &Value) -> Result<(), PropertyError> {
    let Value::Object(map) = object else { return Ok(()) };
    // Each key placed at its property's position in the table by its exact name (every typed object's JSON, most
    // request bodies: a scan of short names, cheaper than a map lookup per property); other casings are looked for
    // only when some key is not a property's exact name (walking the map for each of the forty properties a typed
    // user leaves unset was half of this check in a bulk write).
    let mut exact: Vec<Option<&Value>> = vec![None; table.len()];
    let mut n_exact = 0;
    for (key, value) in map {
        if let Some(idx) = table.iter().position(|property| property.name == key) {
            exact[idx] = Some(value);
            n_exact += 1;
        }
    }
    let all_exact = n_exact == map.len();
    for (property, found) in table.iter().zip(exact) {
        let found = found.or_else(|| match all_exact {
            true => None,
            false => map.iter().find(|(key, _)| key.eq_ignore_ascii_case(property.name)).map(|(_, value)| value),
        });
        if let Some(value) = found {
            check_spec(resource, property, property.name, value)?;
        }
    }
    Ok(())
}

fn check_in(
    resource: &'static str,
    table: &'static [PropertySpec],
    name: &str,
    value: &Value,
) -> Result<(), PropertyError> {
    match find_property(table, name) {
        Some(property) => check_spec(resource, property, property.name, value),
        None => Ok(()),
    }
}

fn check_spec(resource: &'static str, spec: &PropertySpec, path: &str, value: &Value) -> Result<(), PropertyError> {
    let refuse = |reason: String| PropertyError { resource, property: path.to_owned(), reason };
    match value {
        Value::Null => Ok(()),
        Value::String(text) => check_text(spec, text).map_err(refuse),
        Value::Array(items) => {
            if let Some(max_items) = spec.max_items
                && items.len() > max_items
            {
                return Err(refuse(if max_items == 1 {
                    "at most 1 value is allowed".to_owned()
                } else {
                    format!("at most {max_items} values are allowed")
                }));
            }
            for item in items {
                match item {
                    Value::String(text) => check_text(spec, text).map_err(refuse)?,
                    Value::Object(_) if !spec.fields.is_empty() => check_fields(resource, spec, path, item)?,
                    _ => {}
                }
            }
            Ok(())
        }
        Value::Object(_) if !spec.fields.is_empty() => check_fields(resource, spec, path, value),
        _ => Ok(()),
    }
}

fn check_fields(resource: &'static str, spec: &PropertySpec, path: &str, value: &Value) -> Result<(), PropertyError> {
    let Value::Object(map) = value else { return Ok(()) };
    for field in spec.fields {
        if let Some((_, field_value)) = map.iter().find(|(key, _)| key.eq_ignore_ascii_case(field.name)) {
            check_spec(resource, field, &format!("{path}/{}", field.name), field_value)?;
        }
    }
    Ok(())
}

/// Checks one string (a value, or an item of a collection) against the spec's length and format.
fn check_text(spec: &PropertySpec, text: &str) -> Result<(), String> {
    if let Some(max_len) = spec.max_len
        && text.chars().count() > max_len
    {
        return Err(format!("at most {max_len} characters are allowed"));
    }
    match spec.format {
        None => Ok(()),
        Some(Format::Email) if !is_email(text) => Err("an email address such as 'ada@contoso.com' is expected".into()),
        Some(Format::LanguageTag) if !is_language_tag(text) => {
            Err("a language tag such as 'en' or 'en-US' (ISO 639-1) is expected".into())
        }
        Some(Format::CountryCode) if !is_country_code(text) => {
            Err("a two-letter ISO 3166 country code such as 'US' is expected".into())
        }
        Some(Format::MailNickname) if !is_mail_nickname(text) => {
            Err("use ASCII letters, digits and punctuation other than @ ( ) \\ [ ] \" ; : < > , and no spaces".into())
        }
        Some(Format::UserPrincipalName) if !is_upn_shape(text) => {
            Err("a name of the form alias@domain is expected".into())
        }
        Some(_) => Ok(()),
    }
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && text.chars().all(|c| c.is_ascii_graphic())
        && !local.contains('@')
        && !"()<>[]\\,;:\"".chars().any(|c| text.contains(c))
        && domain
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

fn is_language_tag(text: &str) -> bool {
    let mut subtags = text.split('-');
    let language = subtags.next().unwrap_or_default();
    (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && subtags.all(|subtag| (1..=8).contains(&subtag.len()) && subtag.chars().all(|c| c.is_ascii_alphanumeric()))
        && text.len() <= 35
}

fn is_country_code(text: &str) -> bool {
    text.len() == 2 && text.chars().all(|c| c.is_ascii_uppercase())
}

fn is_mail_nickname(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_graphic() && !"@()\\[]\";:<>,".contains(c))
}

fn is_upn_shape(text: &str) -> bool {
    match text.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && local.len() <= 113 && domain.len() <= 256,
        None => false,
    }
}

/// A value of `spec` exactly at its limit (`over` false) or one past it (`over` true), for tests and for
/// documentation examples: the longest accepted string, or a collection with one item too many. None when the
/// property has no length or item limit.
pub fn limit_example(spec: &PropertySpec, over: bool) -> Option<Value> {
    let extra = usize::from(over);
    if let Some(max_items) = spec.max_items {
        let items = (0..max_items + extra).map(|index| Value::String(format!("+1 425 555 01{index:02}"))).collect();
        return Some(Value::Array(items));
    }
    let max_len = spec.max_len?;
    let text = match spec.format {
        Some(Format::Email) => {
            let domain = "@contoso.com";
            format!("{}{domain}", "a".repeat(max_len + extra - domain.len()))
        }
        Some(Format::UserPrincipalName) => return None,
        _ => "a".repeat(max_len + extra),
    };
    Some(match spec.kind {
        PropertyKind::StringCollection => Value::Array(vec![Value::String(text)]),
        _ => Value::String(text),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(name: &str, value: Value) -> String {
        match check_user_property(name, &value) {
            Ok(()) => "ok".to_owned(),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn every_limit_accepts_the_limit_and_refuses_one_past_it() {
        for (resource, table) in [("User", USER_PROPERTIES), ("Group", GROUP_PROPERTIES)] {
            for spec in table.iter().filter(|spec| !spec.read_only) {
                let Some(at_limit) = limit_example(spec, false) else { continue };
                let over = limit_example(spec, true).expect("a limited property has an over-limit example");
                let checker = if resource == "User" { check_user_property } else { check_group_property };
                assert_eq!(checker(spec.name, &at_limit), Ok(()), "{resource}.{} at its limit", spec.name);
                let err = checker(spec.name, &over).expect_err("one past the limit is refused");
                assert_eq!(err.property, spec.name);
                assert!(err.to_string().starts_with("Invalid value specified for property '"), "{err}");
            }
        }
    }

    /// A whole object is checked property by property in the table's order, whatever casing its keys use.
    #[test]
    fn whole_objects_are_checked_in_any_casing() {
        let long = "a".repeat(257);
        let exact = json!({"displayName": long, "jobTitle": "Analyst", "usageLocation": "USA"});
        assert_eq!(check_user_json(&exact).expect_err("too long").property, "displayName", "the table's order");
        let mixed = json!({"DISPLAYNAME": "Ada", "jobTitle": "Analyst", "usagelocation": "USA"});
        assert_eq!(check_user_json(&mixed).expect_err("not a country").property, "usageLocation");
        let unknown_key = json!({"favouriteColour": "blue", "jobtitle": "a".repeat(129)});
        assert_eq!(check_user_json(&unknown_key).expect_err("too long").property, "jobTitle");
        assert_eq!(check_user_json(&json!({"displayName": "Ada", "UsageLocation": "US"})), Ok(()));
    }

    #[test]
    fn formats_and_limits_have_one_message() {
        let cases = [
            ("displayName", json!("a".repeat(256)), "ok"),
            (
                "displayName",
                json!("a".repeat(257)),
                "Invalid value specified for property 'displayName' of resource 'User': at most 256 characters \
                 are allowed.",
            ),
            ("givenName", json!("é".repeat(64)), "ok"),
            (
                "businessPhones",
                json!(["1", "2"]),
                "Invalid value specified for property 'businessPhones' of resource 'User': at most 1 value is \
                 allowed.",
            ),
            ("businessPhones", json!([]), "ok"),
            (
                "mail",
                json!("not-an-email"),
                "Invalid value specified for property 'mail' of resource 'User': an email address such as \
                 'ada@contoso.com' is expected.",
            ),
            ("mail", json!("ada.lovelace+x@contoso.example"), "ok"),
            (
                "mail",
                json!("adé@contoso.example"),
                "Invalid value specified for property 'mail' of resource 'User': an email address such as 'ada@contoso.com' is expected.",
            ),
            (
                "otherMails",
                json!(["a@b.example", "nope"]),
                "Invalid value specified for property 'otherMails' of resource 'User': an email address such as 'ada@contoso.com' is expected.",
            ),
            ("preferredLanguage", json!("en-US"), "ok"),
            ("preferredLanguage", json!("en"), "ok"),
            (
                "preferredLanguage",
                json!("english please"),
                "Invalid value specified for property 'preferredLanguage' of resource 'User': a language tag \
                 such as 'en' or 'en-US' (ISO 639-1) is expected.",
            ),
            ("usageLocation", json!("US"), "ok"),
            (
                "usageLocation",
                json!("usa"),
                "Invalid value specified for property 'usageLocation' of resource 'User': a two-letter ISO 3166 \
                 country code such as 'US' is expected.",
            ),
            ("mailNickname", json!("ada.lovelace"), "ok"),
            (
                "mailNickname",
                json!("ada lovelace"),
                "Invalid value specified for property 'mailNickname' of resource 'User': use ASCII letters, digits \
                 and punctuation other than @ ( ) \\ [ ] \" ; : < > , and no spaces.",
            ),
            (
                "identities",
                json!([{"signInType": "federated", "issuer": "x", "issuerAssignedId": "a".repeat(65)}]),
                "Invalid value specified for property 'identities/issuerAssignedId' of resource 'User': at most 64 \
                 characters are allowed.",
            ),
            (
                "onPremisesExtensionAttributes",
                json!({"extensionAttribute3": "a".repeat(1025)}),
                "Invalid value specified for property 'onPremisesExtensionAttributes/extensionAttribute3' of \
                 resource 'User': at most 1024 characters are allowed.",
            ),
            ("displayName", Value::Null, "ok"),
            ("unknownProperty", json!("a".repeat(5000)), "ok"),
        ];
        for (name, value, expected) in cases {
            assert_eq!(check(name, value.clone()), expected, "{name} = {value}");
        }
    }

    /// `check_user` reads the user's set fields only: it refuses and accepts exactly what the checks of the full
    /// JSON form (every unset field a `null`) do.
    #[test]
    fn a_user_is_checked_on_its_set_fields_as_on_its_full_form() {
        let user = |extra: Value| -> crate::User {
            let mut body = json!({
                "id": "01a24ccc-cee7-71dc-86db-cb37ddfa40a6",
                "userPrincipalName": "ada@contoso.com",
                "displayName": "Ada",
                "accountEnabled": true,
                "createdDateTime": "2026-12-06T19:20:20.463977Z",
            });
            body.as_object_mut().expect("an object").extend(extra.as_object().expect("an object").clone());
            serde_json::from_value(body).expect("a user")
        };
        let cases = [
            json!({}),
            json!({"jobTitle": "a".repeat(128)}),
            json!({"jobTitle": "a".repeat(129)}),
            json!({"mail": "not-an-email", "department": "Sales"}),
            json!({"businessPhones": ["1", "2"]}),
            json!({"otherMails": ["a@b.example", "nope"]}),
            json!({"onPremisesExtensionAttributes": {"extensionAttribute3": "a".repeat(1025)}}),
            json!({"onPremisesExtensionAttributes": {"extensionAttribute3": "a".repeat(1024)}}),
        ];
        let mut refused = 0;
        for extra in cases {
            let user = user(extra.clone());
            let full = check_user_json(&serde_json::to_value(&user).expect("serializes"));
            assert_eq!(check_user(&user), full, "{extra}");
            refused += usize::from(full.is_err());
        }
        assert_eq!(refused, 5, "the cases hold five refusals");
        // A body's property in another casing is still found.
        let err = check_user_json(&json!({"JOBTITLE": "a".repeat(129)})).expect_err("too long");
        assert_eq!(err.property, "jobTitle");
    }

    #[test]
    fn every_row_cites_its_source_and_names_are_unique() {
        for table in [USER_PROPERTIES, GROUP_PROPERTIES] {
            for (index, spec) in table.iter().enumerate() {
                assert!(!spec.source.is_empty(), "{} has no source", spec.name);
                assert!(
                    table[index + 1..].iter().all(|other| !other.name.eq_ignore_ascii_case(spec.name)),
                    "{} twice",
                    spec.name
                );
                let has_fields = matches!(spec.kind, PropertyKind::Object | PropertyKind::ObjectCollection);
                assert!(spec.fields.is_empty() || has_fields, "{} has fields but is not an object", spec.name);
            }
        }
    }
}
