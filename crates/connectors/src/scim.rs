//! A SCIM 2.0 service as a sync target (RFC 7643/7644), configured with Entra's secret keys `BaseAddress` and
//! `SecretToken`, plus `DeprovisionMode` (`Delete` or `Disable`). Users are matched by `externalId`, which holds
//! the source anchor; Graph attribute names are mapped to SCIM's core and enterprise attributes, and attributes
//! SCIM cannot hold are left out of the mapping. 429 and 503 answers become `Throttled` with their `Retry-After`.
//!
//! Groups are SCIM `/Groups` with `displayName`, `externalId` = the source group's anchor (`<tenant>/<group id>`, as
//! users') and `members` (`{"value": <SCIM user id>}`); they are found by `externalId` only, so groups this job did
//! not create are never touched. Membership changes are PATCH `add` on `members` and `remove` on
//! `members[value eq "…"]`. SCIM has no soft delete: deleting a group removes it, `restore_group` refuses, and a
//! group that returns is created again (the engine finds no target group and plans a create). The SCIM token is the
//! consent, for groups as for users.

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tenantsync_engine::connector::{Anchor, PeerError, TargetDirectory, TargetGroup, TargetUser};
use tenantsync_engine::settings::ScimSettings;
use tenantsync_model::ObjectId;

use tenantsync_scim::{
    ENTERPRISE_URN as ENTERPRISE, GROUP_URN as GROUP_SCHEMA, PATCH_OP_URN as PATCH_SCHEMA, USER_URN as USER_SCHEMA,
};

/// The Graph attributes a SCIM user can hold.
const SUPPORTED: &[&str] = &[
    "userPrincipalName",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "accountEnabled",
    "jobTitle",
    "department",
    "employeeId",
    "companyName",
    "mobilePhone",
    "businessPhones",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "country",
    "preferredLanguage",
    "userType",
];

/// A SCIM service provider written as a sync target.
#[derive(Clone)]
pub struct ScimTarget {
    http: reqwest::Client,
    settings: ScimSettings,
    /// The service's own id text of each user seen, by the object id the engine knows it under.
    ids: IdCache,
    /// The same for groups.
    group_ids: IdCache,
}

/// SCIM id texts by the object id the engine knows a resource under.
type IdCache = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<ObjectId, String>>>;

/// The id caches of a service (users, groups), shared by every target built for its base address for the life of
/// the process: a target lives for one wake-up, and a group's membership change names users a later cycle did not
/// read (a service whose ids are not GUIDs cannot be asked by the engine's id alone).
fn shared_id_caches(base_address: &str) -> (IdCache, IdCache) {
    type Registry = std::collections::HashMap<String, (IdCache, IdCache)>;
    static CACHES: std::sync::OnceLock<std::sync::Mutex<Registry>> = std::sync::OnceLock::new();
    let mut caches = CACHES.get_or_init(Default::default).lock().expect("id cache registry lock is never poisoned");
    caches.entry(base_address.to_owned()).or_default().clone()
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> PeerError {
    PeerError::Unavailable(Box::new(err))
}

/// The object id the engine knows a SCIM resource under: its id when it is a GUID (any spelling), else a hash of it
/// (such a resource is found again by its `externalId` after a restart).
fn object_id(scim_id: &str) -> ObjectId {
    match uuid::Uuid::parse_str(scim_id) {
        Ok(uuid) => ObjectId::from_uuid(uuid),
        Err(_) => {
            let mut bytes = [0u8; 16];
            for (idx, byte) in scim_id.bytes().enumerate() {
                bytes[idx % 16] = bytes[idx % 16].wrapping_mul(31).wrapping_add(byte);
            }
            ObjectId::from_uuid(uuid::Uuid::from_bytes(bytes))
        }
    }
}

impl ScimTarget {
    pub fn new(settings: ScimSettings) -> Result<ScimTarget, PeerError> {
        let http =
            reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().map_err(unavailable)?;
        let (ids, group_ids) = shared_id_caches(&settings.base_address);
        Ok(ScimTarget { http, settings, ids, group_ids })
    }

    fn remember(&self, resource: &Value) -> TargetUser {
        let user = Self::to_target(resource);
        if let Some(scim_id) = resource["id"].as_str() {
            self.ids.lock().expect("id cache lock is never poisoned").insert(user.id, scim_id.to_owned());
        }
        user
    }

    /// The paths a user (`/Users`) or a group (`/Groups`) may be at: its remembered id, else the two GUID spellings.
    fn paths(&self, collection: &str, id: ObjectId) -> Vec<String> {
        let ids = if collection == "/Groups" { &self.group_ids } else { &self.ids };
        match ids.lock().expect("id cache lock is never poisoned").get(&id) {
            Some(scim_id) => vec![format!("{collection}/{scim_id}")],
            None => vec![format!("{collection}/{}", id.as_uuid().simple()), format!("{collection}/{id}")],
        }
    }

    /// Sends to the first path of a user that exists.
    async fn send_to_user(
        &self,
        method: reqwest::Method,
        id: ObjectId,
        body: Option<&Value>,
    ) -> Result<(u16, Value), PeerError> {
        self.send_to("/Users", method, id, body).await
    }

    /// Sends to the first path that exists.
    async fn send_to(
        &self,
        collection: &str,
        method: reqwest::Method,
        id: ObjectId,
        body: Option<&Value>,
    ) -> Result<(u16, Value), PeerError> {
        let mut last = (404, Value::Null);
        for path in self.paths(collection, id) {
            last = self.send(method.clone(), &path, body).await?;
            if last.0 != 404 {
                break;
            }
        }
        Ok(last)
    }

    /// A SCIM group as the engine sees it (`displayName`, user members); its id and its members' ids are
    /// remembered, so members can be removed by the value the service holds.
    fn remember_group(&self, resource: &Value) -> Option<TargetGroup> {
        let scim_id = resource["id"].as_str()?;
        let id = object_id(scim_id);
        self.group_ids.lock().expect("id cache lock is never poisoned").insert(id, scim_id.to_owned());
        let mut members = Vec::new();
        let mut ids = self.ids.lock().expect("id cache lock is never poisoned");
        for member in resource["members"].as_array().map(Vec::as_slice).unwrap_or_default() {
            // Nested groups are not sync's: only users are members it provisions.
            if member["type"].as_str().is_some_and(|kind| kind.eq_ignore_ascii_case("Group")) {
                continue;
            }
            if let Some(value) = member["value"].as_str() {
                let member_id = object_id(value);
                ids.entry(member_id).or_insert_with(|| value.to_owned());
                members.push(member_id);
            }
        }
        let mut attributes = Map::new();
        if let Some(display_name) = resource["displayName"].as_str() {
            attributes.insert("displayName".to_owned(), json!(display_name));
        }
        Some(TargetGroup { id, attributes, deleted: false, members })
    }

    /// The service's id of a user the engine knows as `id`: remembered, else read (which remembers it).
    async fn scim_user_id(&self, id: ObjectId) -> Result<String, PeerError> {
        let known = self.ids.lock().expect("id cache lock is never poisoned").get(&id).cloned();
        if let Some(scim_id) = known {
            return Ok(scim_id);
        }
        self.get_user(id).await?;
        self.ids
            .lock()
            .expect("id cache lock is never poisoned")
            .get(&id)
            .cloned()
            .ok_or_else(|| PeerError::NotFound(id.to_string()))
    }

    async fn patch_group(&self, id: ObjectId, operations: Vec<Value>) -> Result<(), PeerError> {
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": operations});
        let (status, reply) = self.send_to("/Groups", reqwest::Method::PATCH, id, Some(&body)).await?;
        match status {
            200 | 204 => Ok(()),
            404 => Err(PeerError::NotFound(id.to_string())),
            _ => Err(Self::rejected(status, &reply)),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<(u16, Value), PeerError> {
        let url =
            if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.settings.base_address) };
        let mut request = self.http.request(method, &url).header("Accept", "application/scim+json");
        if !self.settings.secret_token.is_empty() {
            request = request.bearer_auth(&self.settings.secret_token);
        }
        if let Some(body) = body {
            request = request.header("Content-Type", "application/scim+json").body(body.to_string());
        }
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status().as_u16();
        if status == 429 || status == 503 {
            let retry_after_seconds = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(30);
            return Err(PeerError::Throttled { retry_after_seconds });
        }
        let bytes = response.bytes().await.map_err(unavailable)?;
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if status >= 500 {
            return Err(PeerError::Unavailable(format!("the SCIM service answered {status}: {body}").into()));
        }
        Ok((status, body))
    }

    fn rejected(status: u16, body: &Value) -> PeerError {
        let detail = body["detail"].as_str().unwrap_or("no detail");
        PeerError::Rejected(format!("the SCIM service answered {status}: {detail}"))
    }

    /// A SCIM user as Graph-named attributes.
    fn to_target(resource: &Value) -> TargetUser {
        let mut attributes = Map::new();
        let mut put = |name: &str, value: &Value| {
            if !value.is_null() {
                attributes.insert(name.to_owned(), value.clone());
            }
        };
        put("userPrincipalName", &resource["userName"]);
        put("displayName", &resource["displayName"]);
        put("givenName", &resource["name"]["givenName"]);
        put("surname", &resource["name"]["familyName"]);
        put("accountEnabled", &resource["active"]);
        put("jobTitle", &resource["title"]);
        put("preferredLanguage", &resource["preferredLanguage"]);
        put("userType", &resource["userType"]);
        let typed = |list: &Value, kind: &str| -> Value {
            list.as_array()
                .and_then(|items| items.iter().find(|item| item["type"].as_str() == Some(kind)))
                .map_or(Value::Null, |item| item["value"].clone())
        };
        put("mail", &typed(&resource["emails"], "work"));
        put("mobilePhone", &typed(&resource["phoneNumbers"], "mobile"));
        let work_phone = typed(&resource["phoneNumbers"], "work");
        if !work_phone.is_null() {
            put("businessPhones", &json!([work_phone]));
        }
        if let Some(address) =
            resource["addresses"].as_array().and_then(|items| items.iter().find(|item| item["type"] == "work"))
        {
            put("streetAddress", &address["streetAddress"]);
            put("city", &address["locality"]);
            put("state", &address["region"]);
            put("postalCode", &address["postalCode"]);
            put("country", &address["country"]);
        }
        let enterprise = &resource[ENTERPRISE];
        put("department", &enterprise["department"]);
        put("employeeId", &enterprise["employeeNumber"]);
        put("companyName", &enterprise["organization"]);
        let manager = enterprise["manager"]["value"].as_str().map(object_id);
        let id = resource["id"].as_str().map(object_id).unwrap_or_else(ObjectId::new_random);
        TargetUser { id, attributes, deleted: false, manager }
    }

    /// The SCIM attributes for Graph-named `changes` (whole values: emails, phones and addresses are replaced as a
    /// list, which every server accepts).
    fn scim_values(changes: &Map<String, Value>) -> (Map<String, Value>, Map<String, Value>) {
        let mut core = Map::new();
        let mut enterprise = Map::new();
        let mut name = Map::new();
        let mut address = Map::new();
        for (key, value) in changes {
            match key.as_str() {
                "userPrincipalName" => drop(core.insert("userName".to_owned(), value.clone())),
                "displayName" => drop(core.insert("displayName".to_owned(), value.clone())),
                "givenName" => drop(name.insert("givenName".to_owned(), value.clone())),
                "surname" => drop(name.insert("familyName".to_owned(), value.clone())),
                "accountEnabled" => drop(core.insert("active".to_owned(), value.clone())),
                "jobTitle" => drop(core.insert("title".to_owned(), value.clone())),
                "preferredLanguage" => drop(core.insert("preferredLanguage".to_owned(), value.clone())),
                "userType" => drop(core.insert("userType".to_owned(), value.clone())),
                "mail" => {
                    drop(core.insert("emails".to_owned(), json!([{"type": "work", "value": value, "primary": true}])))
                }
                "mobilePhone" | "businessPhones" => {
                    let work = if key == "businessPhones" {
                        value.get(0).cloned()
                    } else {
                        changes.get("businessPhones").and_then(|phones| phones.get(0)).cloned()
                    };
                    let mobile =
                        if key == "mobilePhone" { Some(value.clone()) } else { changes.get("mobilePhone").cloned() };
                    let mut phones = Vec::new();
                    if let Some(work) = work.filter(|work| !work.is_null()) {
                        phones.push(json!({"type": "work", "value": work}));
                    }
                    if let Some(mobile) = mobile.filter(|mobile| !mobile.is_null()) {
                        phones.push(json!({"type": "mobile", "value": mobile}));
                    }
                    core.insert("phoneNumbers".to_owned(), Value::Array(phones));
                }
                "streetAddress" => drop(address.insert("streetAddress".to_owned(), value.clone())),
                "city" => drop(address.insert("locality".to_owned(), value.clone())),
                "state" => drop(address.insert("region".to_owned(), value.clone())),
                "postalCode" => drop(address.insert("postalCode".to_owned(), value.clone())),
                "country" => drop(address.insert("country".to_owned(), value.clone())),
                "department" => drop(enterprise.insert("department".to_owned(), value.clone())),
                "employeeId" => drop(enterprise.insert("employeeNumber".to_owned(), value.clone())),
                "companyName" => drop(enterprise.insert("organization".to_owned(), value.clone())),
                _ => {}
            }
        }
        if !name.is_empty() {
            core.insert("name".to_owned(), Value::Object(name));
        }
        if !address.is_empty() {
            address.insert("type".to_owned(), json!("work"));
            address.insert("primary".to_owned(), json!(true));
            core.insert("addresses".to_owned(), json!([address]));
        }
        (core, enterprise)
    }

    async fn patch(&self, id: ObjectId, operations: Vec<Value>) -> Result<(), PeerError> {
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": operations});
        let (status, reply) = self.send_to_user(reqwest::Method::PATCH, id, Some(&body)).await?;
        match status {
            200 | 204 => Ok(()),
            404 => Err(PeerError::NotFound(id.to_string())),
            _ => Err(Self::rejected(status, &reply)),
        }
    }
}

#[async_trait]
impl TargetDirectory for ScimTarget {
    fn external_upn(&self, source_upn: &str) -> String {
        source_upn.to_owned()
    }

    fn system_name(&self) -> String {
        format!("SCIM 2.0 service at {}", self.settings.base_address)
    }

    fn supports(&self, attribute: &str) -> bool {
        SUPPORTED.iter().any(|supported| supported.eq_ignore_ascii_case(attribute))
    }

    async fn get_user(&self, id: ObjectId) -> Result<Option<TargetUser>, PeerError> {
        let (status, body) = self.send_to_user(reqwest::Method::GET, id, None).await?;
        match status {
            200 => Ok(Some(self.remember(&body))),
            404 => Ok(None),
            _ => Err(Self::rejected(status, &body)),
        }
    }

    async fn find_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetUser>, PeerError> {
        let filter = format!("externalId eq \"{}\"", anchor.key());
        let url = reqwest::Url::parse_with_params(
            &format!("{}/Users", self.settings.base_address),
            &[("filter", filter.as_str())],
        )
        .map_err(unavailable)?;
        let (status, body) = self.send(reqwest::Method::GET, url.as_str(), None).await?;
        if status != 200 {
            return Err(Self::rejected(status, &body));
        }
        Ok(body["Resources"].as_array().and_then(|resources| resources.first()).map(|resource| self.remember(resource)))
    }

    async fn create_user(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetUser, PeerError> {
        let (mut core, enterprise) = Self::scim_values(attributes);
        core.insert("externalId".to_owned(), json!(anchor.key()));
        core.entry("active").or_insert(json!(true));
        if !core.contains_key("userName") {
            core.insert("userName".to_owned(), json!(anchor.key()));
        }
        let mut schemas = vec![json!(USER_SCHEMA)];
        if !enterprise.is_empty() {
            schemas.push(json!(ENTERPRISE));
            core.insert(ENTERPRISE.to_owned(), Value::Object(enterprise));
        }
        core.insert("schemas".to_owned(), Value::Array(schemas));
        let (status, body) = self.send(reqwest::Method::POST, "/Users", Some(&Value::Object(core))).await?;
        match status {
            200 | 201 => Ok(self.remember(&body)),
            // Created by an earlier attempt: match it by its externalId.
            409 => self.find_by_anchor(anchor).await?.ok_or_else(|| Self::rejected(status, &body)),
            _ => Err(Self::rejected(status, &body)),
        }
    }

    async fn update_user(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError> {
        let (core, enterprise) = Self::scim_values(changes);
        let mut operations: Vec<Value> =
            core.into_iter().map(|(path, value)| json!({"op": "replace", "path": path, "value": value})).collect();
        operations.extend(
            enterprise
                .into_iter()
                .map(|(name, value)| json!({"op": "replace", "path": format!("{ENTERPRISE}:{name}"), "value": value})),
        );
        if operations.is_empty() {
            return Ok(());
        }
        self.patch(id, operations).await
    }

    async fn delete_user(&self, id: ObjectId) -> Result<(), PeerError> {
        if !self.settings.deprovision_delete {
            return self.patch(id, vec![json!({"op": "replace", "path": "active", "value": false})]).await;
        }
        let (status, body) = self.send_to_user(reqwest::Method::DELETE, id, None).await?;
        match status {
            200 | 204 | 404 => Ok(()),
            _ => Err(Self::rejected(status, &body)),
        }
    }

    async fn restore_user(&self, id: ObjectId) -> Result<(), PeerError> {
        self.patch(id, vec![json!({"op": "replace", "path": "active", "value": true})]).await
    }

    async fn set_manager(&self, id: ObjectId, manager: ObjectId) -> Result<(), PeerError> {
        self.patch(id, vec![json!({"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": manager.to_string()}})]).await
    }

    fn supports_groups(&self) -> bool {
        true
    }

    fn supports_group_attribute(&self, attribute: &str) -> bool {
        // A SCIM core Group has no mailNickname or description.
        attribute.eq_ignore_ascii_case("displayName")
    }

    async fn group_ready(&self) -> Result<(), PeerError> {
        // The SCIM token is the consent, for groups as for users.
        Ok(())
    }

    async fn get_group(&self, id: ObjectId) -> Result<Option<TargetGroup>, PeerError> {
        let (status, body) = self.send_to("/Groups", reqwest::Method::GET, id, None).await?;
        match status {
            200 => Ok(self.remember_group(&body)),
            404 => Ok(None),
            _ => Err(Self::rejected(status, &body)),
        }
    }

    async fn find_group_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetGroup>, PeerError> {
        let key = anchor.key();
        let filter = format!("externalId eq \"{key}\"");
        let url = reqwest::Url::parse_with_params(
            &format!("{}/Groups", self.settings.base_address),
            &[("filter", filter.as_str())],
        )
        .map_err(unavailable)?;
        let (status, body) = self.send(reqwest::Method::GET, url.as_str(), None).await?;
        if status != 200 {
            return Err(Self::rejected(status, &body));
        }
        // Only a group carrying exactly this anchor is this job's, whatever else a lax filter returns.
        Ok(body["Resources"]
            .as_array()
            .and_then(|resources| resources.iter().find(|resource| resource["externalId"].as_str() == Some(&key)))
            .and_then(|resource| self.remember_group(resource)))
    }

    async fn create_group(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetGroup, PeerError> {
        let display_name = attributes
            .get("displayName")
            .and_then(Value::as_str)
            .ok_or_else(|| PeerError::Rejected("a group needs a displayName".to_owned()))?;
        let body = json!({
            "schemas": [GROUP_SCHEMA],
            "displayName": display_name,
            "externalId": anchor.key(),
            "members": [],
        });
        let (status, reply) = self.send(reqwest::Method::POST, "/Groups", Some(&body)).await?;
        match status {
            200 | 201 => self
                .remember_group(&reply)
                .ok_or_else(|| PeerError::Rejected("the SCIM service's created group has no id".to_owned())),
            // Created by an earlier attempt: match it by its externalId.
            409 => self.find_group_by_anchor(anchor).await?.ok_or_else(|| Self::rejected(status, &reply)),
            _ => Err(Self::rejected(status, &reply)),
        }
    }

    async fn update_group(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError> {
        // displayName is the one group attribute SCIM holds (`supports_group_attribute`).
        let Some(display_name) = changes.get("displayName") else { return Ok(()) };
        self.patch_group(id, vec![json!({"op": "replace", "path": "displayName", "value": display_name})]).await
    }

    async fn change_group_members(&self, id: ObjectId, add: &[ObjectId], remove: &[ObjectId]) -> Result<(), PeerError> {
        let mut operations = Vec::new();
        if !add.is_empty() {
            let mut values = Vec::with_capacity(add.len());
            for member in add {
                values.push(json!({"value": self.scim_user_id(*member).await?}));
            }
            operations.push(json!({"op": "add", "path": "members", "value": values}));
        }
        for member in remove {
            let scim_id = match self.scim_user_id(*member).await {
                Ok(scim_id) => scim_id,
                // Neither in the group as read nor in the service: nothing to remove.
                Err(PeerError::NotFound(_)) => continue,
                Err(err) => return Err(err),
            };
            let quoted = scim_id.replace('\\', "\\\\").replace('"', "\\\"");
            operations.push(json!({"op": "remove", "path": format!("members[value eq \"{quoted}\"]")}));
        }
        if operations.is_empty() {
            return Ok(());
        }
        self.patch_group(id, operations).await
    }

    async fn delete_group(&self, id: ObjectId) -> Result<(), PeerError> {
        let (status, body) = self.send_to("/Groups", reqwest::Method::DELETE, id, None).await?;
        match status {
            200 | 204 | 404 => Ok(()),
            _ => Err(Self::rejected(status, &body)),
        }
    }

    async fn restore_group(&self, id: ObjectId) -> Result<(), PeerError> {
        // Never asked in practice: a SCIM group is never seen deleted, so a returning group is created again.
        Err(PeerError::Rejected(format!(
            "a SCIM service cannot restore group {id}: SCIM has no soft delete (the group is created again instead)"
        )))
    }
}
