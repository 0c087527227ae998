//! SCIM resources ↔ directory objects: how a `model::User` or `model::Group` looks in SCIM, and how a SCIM
//! resource (a POST or PUT body, or the result of a PATCH) writes a directory object.
//!
//! The mapping (see `schema` for what is published):
//! `userName` is stored verbatim (`User::scim_user_name`); when it is `local@<a tenant domain>` it is also the
//! userPrincipalName, otherwise the userPrincipalName is `<sanitized userName>@<initial domain>`. `externalId` is
//! `User::scim_external_id`; `active` ↔ `accountEnabled`; `name.givenName`/`familyName` ↔ `givenName`/`surname`;
//! `emails[type eq "work"]` ↔ `mail`; `phoneNumbers` work ↔ `businessPhones`, mobile ↔ `mobilePhone`; `title` ↔
//! `jobTitle`; `addresses[type eq "work"]` ↔ street, city, state, postal code, country; the enterprise extension's
//! `employeeNumber` ↔ `employeeId`, `department`, `organization` ↔ `companyName`, `manager` ↔ the manager link;
//! `emails[type eq "other"]` ↔ `otherMails`; tenantsync's directory extension carries `officeLocation`,
//! `employeeType` and `onPremisesExtensionAttributes`. `mailNickname` is derived when absent.
//!
//! Writing is a full replacement of the mapped properties (PUT semantics); Graph properties SCIM does not map are
//! left as they were. Links (manager, members) are returned to the caller, which applies them through the directory.

use serde_json::{Map, Value, json};
use tenantsync_model::{DirectoryObject, Group, ObjectId, ObjectKind, OnPremisesExtensionAttributes, Tenant, User};
use time::format_description::well_known::Rfc3339;

use crate::json::get_ci;
use crate::{DIRECTORY_URN, ENTERPRISE_URN, GROUP_URN, ScimError, USER_URN};

fn timestamp(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// A weak ETag of a rendered resource: a hash of its JSON without `meta`, so it changes with every visible change.
pub fn version_of(resource: &Value) -> String {
    let mut without_meta = resource.clone();
    if let Value::Object(map) = &mut without_meta {
        map.remove("meta");
    }
    format!("W/\"{:016x}\"", fnv1a(without_meta.to_string().as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

fn finish(
    mut resource: Map<String, Value>,
    resource_type: &str,
    location: String,
    created: time::OffsetDateTime,
) -> Value {
    let mut value = Value::Object(std::mem::take(&mut resource));
    let version = version_of(&value);
    value["meta"] = json!({
        "resourceType": resource_type,
        "created": timestamp(created),
        // The directory keeps no modification time yet: creation time is the best lower bound it has.
        "lastModified": timestamp(created),
        "location": location,
        "version": version,
    });
    value
}

fn put(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(value) = value.as_deref().filter(|value| !value.is_empty()) {
        map.insert(key.to_owned(), json!(value));
    }
}

/// The URL of a resource: `{base}/Users/{id}`, `base` being the SCIM base URL.
pub fn location(base: &str, kind: ObjectKind, id: ObjectId) -> String {
    match kind {
        ObjectKind::User => format!("{base}/Users/{id}"),
        ObjectKind::Group => format!("{base}/Groups/{id}"),
    }
}

/// The SCIM userName of a user: what SCIM wrote, or the userPrincipalName.
pub fn user_name(user: &User) -> &str {
    user.scim_user_name.as_deref().unwrap_or(&user.user_principal_name)
}

use tenantsync_model::b2b::EXTENSION_ATTRIBUTE_NAMES;

fn extension_attributes(attributes: &OnPremisesExtensionAttributes) -> [&Option<String>; 15] {
    [
        &attributes.extension_attribute1,
        &attributes.extension_attribute2,
        &attributes.extension_attribute3,
        &attributes.extension_attribute4,
        &attributes.extension_attribute5,
        &attributes.extension_attribute6,
        &attributes.extension_attribute7,
        &attributes.extension_attribute8,
        &attributes.extension_attribute9,
        &attributes.extension_attribute10,
        &attributes.extension_attribute11,
        &attributes.extension_attribute12,
        &attributes.extension_attribute13,
        &attributes.extension_attribute14,
        &attributes.extension_attribute15,
    ]
}

fn extension_attributes_mut(attributes: &mut OnPremisesExtensionAttributes) -> [&mut Option<String>; 15] {
    [
        &mut attributes.extension_attribute1,
        &mut attributes.extension_attribute2,
        &mut attributes.extension_attribute3,
        &mut attributes.extension_attribute4,
        &mut attributes.extension_attribute5,
        &mut attributes.extension_attribute6,
        &mut attributes.extension_attribute7,
        &mut attributes.extension_attribute8,
        &mut attributes.extension_attribute9,
        &mut attributes.extension_attribute10,
        &mut attributes.extension_attribute11,
        &mut attributes.extension_attribute12,
        &mut attributes.extension_attribute13,
        &mut attributes.extension_attribute14,
        &mut attributes.extension_attribute15,
    ]
}

/// A user as SCIM shows it. `manager` is the manager's id, `base` the SCIM base URL.
pub fn user_to_scim(user: &User, manager: Option<ObjectId>, base: &str) -> Value {
    let mut map = Map::new();
    let mut schemas = vec![json!(USER_URN)];
    map.insert("id".into(), json!(user.id.to_string()));
    put(&mut map, "externalId", &user.scim_external_id);
    map.insert("userName".into(), json!(user_name(user)));
    let mut name = Map::new();
    put(&mut name, "givenName", &user.given_name);
    put(&mut name, "familyName", &user.surname);
    if !name.is_empty() {
        map.insert("name".into(), Value::Object(name));
    }
    put(&mut map, "displayName", &user.display_name);
    put(&mut map, "title", &user.job_title);
    put(&mut map, "preferredLanguage", &user.preferred_language);
    map.insert("active".into(), json!(user.account_enabled));
    let mut emails: Vec<Value> =
        user.mail.iter().filter(|mail| !mail.is_empty()).map(|mail| json!({ "value": mail, "type": "work" })).collect();
    emails.extend(
        user.other_mails.iter().filter(|mail| !mail.is_empty()).map(|mail| json!({ "value": mail, "type": "other" })),
    );
    if !emails.is_empty() {
        map.insert("emails".into(), Value::Array(emails));
    }
    let mut phones: Vec<Value> = user
        .business_phones
        .iter()
        .filter(|phone| !phone.is_empty())
        .map(|phone| json!({ "value": phone, "type": "work" }))
        .collect();
    if let Some(mobile) = user.mobile_phone.as_deref().filter(|mobile| !mobile.is_empty()) {
        phones.push(json!({ "value": mobile, "type": "mobile" }));
    }
    if !phones.is_empty() {
        map.insert("phoneNumbers".into(), Value::Array(phones));
    }
    let mut address = Map::new();
    put(&mut address, "streetAddress", &user.street_address);
    put(&mut address, "locality", &user.city);
    put(&mut address, "region", &user.state);
    put(&mut address, "postalCode", &user.postal_code);
    put(&mut address, "country", &user.country);
    if !address.is_empty() {
        address.insert("type".into(), json!("work"));
        map.insert("addresses".into(), json!([address]));
    }
    let mut enterprise = Map::new();
    put(&mut enterprise, "employeeNumber", &user.employee_id);
    put(&mut enterprise, "department", &user.department);
    put(&mut enterprise, "organization", &user.company_name);
    if let Some(manager) = manager {
        enterprise.insert(
            "manager".into(),
            json!({ "value": manager.to_string(), "$ref": location(base, ObjectKind::User, manager) }),
        );
    }
    if !enterprise.is_empty() {
        schemas.push(json!(ENTERPRISE_URN));
        map.insert(ENTERPRISE_URN.into(), Value::Object(enterprise));
    }
    let mut directory = Map::new();
    put(&mut directory, "officeLocation", &user.office_location);
    put(&mut directory, "employeeType", &user.employee_type);
    let mut attributes = Map::new();
    for (name, value) in
        EXTENSION_ATTRIBUTE_NAMES.iter().zip(extension_attributes(&user.on_premises_extension_attributes))
    {
        put(&mut attributes, name, value);
    }
    if !attributes.is_empty() {
        directory.insert("onPremisesExtensionAttributes".into(), Value::Object(attributes));
    }
    if !directory.is_empty() {
        schemas.push(json!(DIRECTORY_URN));
        map.insert(DIRECTORY_URN.into(), Value::Object(directory));
    }
    map.insert("schemas".into(), Value::Array(schemas));
    finish(map, "User", location(base, ObjectKind::User, user.id), user.created_date_time)
}

/// A group as SCIM shows it, with its direct members.
pub fn group_to_scim(group: &Group, members: &[DirectoryObject], base: &str) -> Value {
    let mut map = Map::new();
    map.insert("schemas".into(), json!([GROUP_URN]));
    map.insert("id".into(), json!(group.id.to_string()));
    map.insert("displayName".into(), json!(group.display_name));
    if !members.is_empty() {
        let members: Vec<Value> = members
            .iter()
            .map(|member| {
                json!({
                    "value": member.id().to_string(),
                    "$ref": location(base, member.kind(), member.id()),
                    "type": match member.kind() { ObjectKind::User => "User", ObjectKind::Group => "Group" },
                })
            })
            .collect();
        map.insert("members".into(), Value::Array(members));
    }
    finish(map, "Group", location(base, ObjectKind::Group, group.id), group.created_date_time)
}

fn as_object(body: &Value) -> Result<&Map<String, Value>, ScimError> {
    body.as_object().ok_or_else(|| ScimError::invalid_syntax("the resource must be a JSON object"))
}

/// A string attribute: absent, null and "" are None; anything but a string is refused.
fn string_of(map: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimError> {
    match get_ci(map, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ScimError::invalid_value(format!("'{name}' must be a string"))),
    }
}

fn object_of<'a>(map: &'a Map<String, Value>, name: &str) -> Result<Option<&'a Map<String, Value>>, ScimError> {
    match get_ci(map, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(_) => Err(ScimError::invalid_value(format!("'{name}' must be an object"))),
    }
}

fn array_of<'a>(map: &'a Map<String, Value>, name: &str) -> Result<Vec<&'a Map<String, Value>>, ScimError> {
    match get_ci(map, name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .filter(|item| !item.is_null())
            .map(|item| item.as_object().ok_or_else(|| ScimError::invalid_value(format!("'{name}' holds objects"))))
            .collect(),
        Some(Value::Object(item)) => Ok(vec![item]),
        Some(_) => Err(ScimError::invalid_value(format!("'{name}' must be an array of objects"))),
    }
}

fn type_of(item: &Map<String, Value>) -> Option<String> {
    get_ci(item, "type").and_then(Value::as_str).map(str::to_ascii_lowercase)
}

/// `true`, `false`, or Entra's `"True"`/`"False"` strings.
fn boolean_of(map: &Map<String, Value>, name: &str) -> Result<Option<bool>, ScimError> {
    match get_ci(map, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ScimError::invalid_value(format!("'{name}' must be a boolean"))),
    }
}

/// A user with no properties yet, for [`apply_user`] to fill; the directory sets its id and creation time.
pub fn new_user() -> User {
    serde_json::from_value(json!({
        "id": ObjectId::new_random(), "userPrincipalName": "", "accountEnabled": true,
        "createdDateTime": "1970-01-01T00:00:00Z", "displayName": null, "givenName": null, "surname": null,
        "mail": null, "mailNickname": null, "jobTitle": null, "department": null, "companyName": null,
        "employeeId": null, "employeeType": null, "officeLocation": null, "streetAddress": null, "city": null,
        "state": null, "postalCode": null, "country": null, "usageLocation": null, "preferredLanguage": null,
        "mobilePhone": null, "creationType": null, "externalUserState": null, "showInAddressList": null
    }))
    .expect("an empty user deserializes")
}

/// What a SCIM user body asks for besides the user's own properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserLinks {
    /// The manager's id (or None to have no manager).
    pub manager: Option<String>,
    /// A password to check against the directory's rules; never stored.
    pub password: Option<String>,
}

/// The id a reference names: its `value`, or the last segment of its `$ref`.
fn reference_id(item: &Map<String, Value>) -> Option<String> {
    let value = get_ci(item, "value").and_then(Value::as_str).filter(|value| !value.is_empty());
    let reference = get_ci(item, "$ref").and_then(Value::as_str).and_then(|url| url.rsplit('/').next());
    value.or(reference).filter(|id| !id.is_empty()).map(str::to_owned)
}

/// Writes the SCIM user `body` onto `user` (replacing every mapped property) for a tenant with `tenant`'s domains.
pub fn apply_user(body: &Value, user: &mut User, tenant: &Tenant) -> Result<UserLinks, ScimError> {
    let map = as_object(body)?;
    let user_name = string_of(map, "userName")?
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("'userName' is required"))?;
    if user_name.chars().any(char::is_control) {
        return Err(ScimError::invalid_value("'userName' must not contain control characters"));
    }
    let name = object_of(map, "name")?;
    user.given_name = name.map(|name| string_of(name, "givenName")).transpose()?.flatten();
    user.surname = name.map(|name| string_of(name, "familyName")).transpose()?.flatten();
    // The directory requires a display name; one that is missing is made from the name or the userName.
    user.display_name = Some(match string_of(map, "displayName")? {
        Some(display_name) => display_name,
        None => match (&user.given_name, &user.surname) {
            (Some(given), Some(family)) => format!("{given} {family}"),
            (Some(one), None) | (None, Some(one)) => one.clone(),
            (None, None) => user_name.clone(),
        },
    });
    user.job_title = string_of(map, "title")?;
    user.preferred_language = string_of(map, "preferredLanguage")?;
    user.account_enabled = boolean_of(map, "active")?.unwrap_or(true);
    user.scim_external_id = string_of(map, "externalId")?;

    let emails = array_of(map, "emails")?;
    let work_email = emails.iter().find(|item| type_of(item).as_deref() == Some("work")).or_else(|| {
        emails.iter().find(|item| type_of(item).is_none() || get_ci(item, "primary") == Some(&Value::Bool(true)))
    });
    user.mail = work_email.map(|item| string_of(item, "value")).transpose()?.flatten();
    let mut other_mails = Vec::new();
    for item in emails.iter().filter(|item| type_of(item).as_deref() == Some("other")) {
        other_mails.extend(string_of(item, "value")?);
    }
    user.other_mails = other_mails;

    let phones = array_of(map, "phoneNumbers")?;
    let mut business_phones = Vec::new();
    let mut mobile = None;
    for phone in &phones {
        let Some(number) = string_of(phone, "value")? else { continue };
        match type_of(phone).as_deref() {
            Some("mobile") if mobile.is_none() => mobile = Some(number),
            Some("work") | None => business_phones.push(number),
            _ => {}
        }
    }
    user.business_phones = business_phones;
    user.mobile_phone = mobile;

    let addresses = array_of(map, "addresses")?;
    let address = addresses
        .iter()
        .find(|item| type_of(item).as_deref() == Some("work"))
        .or_else(|| addresses.iter().find(|item| type_of(item).is_none()));
    let field = |name: &str| address.map(|address| string_of(address, name)).transpose().map(Option::flatten);
    user.street_address = field("streetAddress")?;
    user.city = field("locality")?;
    user.state = field("region")?;
    user.postal_code = field("postalCode")?;
    user.country = field("country")?;

    let mut links = UserLinks { password: string_of(map, "password")?, manager: None };
    let enterprise = object_of(map, ENTERPRISE_URN)?;
    let enterprise_field =
        |name: &str| enterprise.map(|enterprise| string_of(enterprise, name)).transpose().map(Option::flatten);
    user.employee_id = enterprise_field("employeeNumber")?;
    user.department = enterprise_field("department")?;
    user.company_name = enterprise_field("organization")?;
    if let Some(enterprise) = enterprise {
        links.manager = match get_ci(enterprise, "manager") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.clone()).filter(|id| !id.is_empty()),
            Some(Value::Object(manager)) => reference_id(manager),
            Some(_) => return Err(ScimError::invalid_value("'manager' must be an object")),
        };
    }

    let directory = object_of(map, DIRECTORY_URN)?;
    let directory_field =
        |name: &str| directory.map(|directory| string_of(directory, name)).transpose().map(Option::flatten);
    user.office_location = directory_field("officeLocation")?;
    user.employee_type = directory_field("employeeType")?;
    let attributes =
        directory.map(|directory| object_of(directory, "onPremisesExtensionAttributes")).transpose()?.flatten();
    for (name, slot) in
        EXTENSION_ATTRIBUTE_NAMES.iter().zip(extension_attributes_mut(&mut user.on_premises_extension_attributes))
    {
        *slot = attributes.map(|attributes| string_of(attributes, name)).transpose()?.flatten();
    }

    if user.scim_user_name.as_deref() != Some(user_name.as_str()) || user.user_principal_name.is_empty() {
        user.user_principal_name = user_principal_name(&user_name, tenant, false);
        user.scim_user_name = Some(user_name);
    }
    if user.mail_nickname.as_deref().is_none_or(str::is_empty) {
        user.mail_nickname = Some(mail_nickname(&user.user_principal_name));
    }
    Ok(links)
}

const UPN_LOCAL_CHARS: &str = "'.-_!#^~+&";

/// The userPrincipalName for a SCIM userName: the userName itself when it is `local@<a tenant domain>` with a valid
/// local part, otherwise `<sanitized userName>@<initial domain>`. `disambiguate` adds a hash of the userName, for
/// when two userNames sanitize alike.
pub fn user_principal_name(user_name: &str, tenant: &Tenant, disambiguate: bool) -> String {
    if let Some((local, domain)) = user_name.rsplit_once('@')
        && tenant.has_domain(domain)
        && !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local.chars().all(|c| c.is_ascii_alphanumeric() || UPN_LOCAL_CHARS.contains(c))
        && !disambiguate
    {
        return user_name.to_owned();
    }
    let sanitized: String = user_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || UPN_LOCAL_CHARS.contains(c) { c } else { '_' })
        .take(if disambiguate { 55 } else { 64 })
        .collect();
    let mut local = sanitized.trim_matches('.').to_owned();
    if local.is_empty() {
        local = "user".to_owned();
    }
    if disambiguate {
        local = format!("{local}-{:08x}", fnv1a(user_name.as_bytes()) as u32);
    }
    format!("{local}@{}", tenant.initial_domain)
}

/// A mailNickname from a userPrincipalName's local part, without the characters Entra refuses.
pub fn mail_nickname(user_principal_name: &str) -> String {
    let local = user_principal_name.split('@').next().unwrap_or_default();
    let nickname: String =
        local.chars().filter(|c| !c.is_whitespace() && !"@()\\[]\";:<>,".contains(*c)).take(64).collect();
    if nickname.is_empty() { "user".to_owned() } else { nickname }
}

/// What a SCIM group body asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInput {
    pub display_name: String,
    /// Member ids, in order, without repeats.
    pub members: Vec<String>,
}

/// Reads a SCIM group body.
pub fn read_group(body: &Value) -> Result<GroupInput, ScimError> {
    let map = as_object(body)?;
    let display_name = string_of(map, "displayName")?
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("'displayName' is required"))?;
    let mut members = Vec::new();
    for member in array_of(map, "members")? {
        let id = reference_id(member).ok_or_else(|| ScimError::invalid_value("a member needs a 'value'"))?;
        if !members.contains(&id) {
            members.push(id);
        }
    }
    Ok(GroupInput { display_name, members })
}

/// A mailNickname for a new group from its display name.
pub fn group_mail_nickname(display_name: &str) -> String {
    let nickname: String =
        display_name.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(64).collect();
    if nickname.is_empty() { "group".to_owned() } else { nickname }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use serde_json::json;
    use tenantsync_model::{TenantId, TenantName};

    use super::*;

    fn tenant() -> Tenant {
        Tenant {
            id: TenantId::new_random(),
            name: TenantName::parse("contoso").expect("valid name"),
            display_name: "Contoso".to_owned(),
            initial_domain: "contoso.example".to_owned(),
            domains: vec!["contoso.example".to_owned(), "contoso.com".to_owned()],
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn blank_user() -> User {
        new_user()
    }

    #[test]
    fn user_principal_names() {
        let tenant = tenant();
        let cases = ["ada@contoso.com", "Ada@CONTOSO.example", "ada@other.example", "a b\"c", "..", "ada@contoso.com"];
        let actual: Vec<String> =
            cases.iter().enumerate().map(|(idx, name)| user_principal_name(name, &tenant, idx == 5)).collect();
        expect![[r#"
            ada@contoso.com
            Ada@CONTOSO.example
            ada_other.example@contoso.example
            a_b_c@contoso.example
            user@contoso.example
            ada_contoso.com-7d678dc7@contoso.example"#]]
        .assert_eq(&actual.join("\n"));
    }

    #[test]
    fn a_user_round_trips() {
        let body = json!({
            "schemas": [USER_URN, ENTERPRISE_URN], "userName": "ada@other.example", "externalId": "E1",
            "name": {"givenName": "Ada", "familyName": "Lovelace"}, "active": "False",
            "emails": [{"value": "ada@work.example", "type": "Work", "primary": true}, {"value": "h@x", "type": "home"},
                       {"value": "o@x", "type": "other"}],
            "phoneNumbers": [{"value": "1", "type": "work"}, {"value": "2", "type": "mobile"}],
            "addresses": [{"type": "work", "locality": "London", "country": "GB"}],
            ENTERPRISE_URN: {"employeeNumber": "42", "manager": {"value": "M1"}},
            DIRECTORY_URN: {"onPremisesExtensionAttributes": {"extensionAttribute2": "x2"}}
        });
        let mut user = blank_user();
        let links = apply_user(&body, &mut user, &tenant()).expect("the body is valid");
        assert_eq!(links.manager.as_deref(), Some("M1"));
        let mut scim = user_to_scim(&user, None, "http://h/scim/v2");
        scim["id"] = json!("ID");
        scim["meta"]["location"] = json!("LOC");
        scim["meta"]["version"] = json!("V");
        expect![[r#"{"active":false,"addresses":[{"country":"GB","locality":"London","type":"work"}],"displayName":"Ada Lovelace","emails":[{"type":"work","value":"ada@work.example"},{"type":"other","value":"o@x"}],"externalId":"E1","id":"ID","meta":{"created":"1970-01-01T00:00:00Z","lastModified":"1970-01-01T00:00:00Z","location":"LOC","resourceType":"User","version":"V"},"name":{"familyName":"Lovelace","givenName":"Ada"},"phoneNumbers":[{"type":"work","value":"1"},{"type":"mobile","value":"2"}],"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","urn:tenantsync:scim:schemas:extension:directory:2.0:User"],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"42"},"urn:tenantsync:scim:schemas:extension:directory:2.0:User":{"onPremisesExtensionAttributes":{"extensionAttribute2":"x2"}},"userName":"ada@other.example"}"#]]
        .assert_eq(&scim.to_string());
        assert_eq!(user.user_principal_name, "ada_other.example@contoso.example");
        assert_eq!(user.mail_nickname.as_deref(), Some("ada_other.example"));
    }

    #[test]
    fn bad_user_bodies() {
        let cases = [
            json!([]),
            json!({"displayName": "x"}),
            json!({"userName": 3}),
            json!({"userName": "a", "active": "maybe"}),
            json!({"userName": "a", "emails": "a@b"}),
            json!({"userName": "a", "name": "Ada"}),
        ];
        let actual: Vec<String> = cases
            .iter()
            .map(|body| match apply_user(body, &mut blank_user(), &tenant()) {
                Ok(_) => "ok".to_owned(),
                Err(err) => err.to_string(),
            })
            .collect();
        expect![[r#"
            400 invalidSyntax: the resource must be a JSON object
            400 invalidValue: 'userName' is required
            400 invalidValue: 'userName' must be a string
            400 invalidValue: 'active' must be a boolean
            400 invalidValue: 'emails' must be an array of objects
            400 invalidValue: 'name' must be an object"#]]
        .assert_eq(&actual.join("\n"));
    }
}
