//! Helpers for cross-tenant synchronization tests: [`configure_sync`] walks the Graph configuration sequence
//! (reference §8, steps 1–9 and the rule id of step 12) over HTTP and returns a [`SyncSetup`] whose methods do the
//! rest (step 10 assignments, secrets, schema, job control, provision on demand, logs) and find the B2B user a
//! source user became in the target. [`wait_until`] and [`wait_for`] poll a condition with a bounded deadline, so
//! tests wait on what they expect instead of sleeping.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{ApiClient, Reply, TestApp, TestTenant, fixtures};

/// How long a test waits for a condition before failing.
pub const WAIT_DEADLINE: Duration = Duration::from_secs(20);
/// Pause between two polls of a condition.
const POLL: Duration = Duration::from_millis(10);

/// Polls `check` until it gives `Some`, or panics naming `what` after [`WAIT_DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < WAIT_DEADLINE, "timed out after {WAIT_DEADLINE:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it is true, or panics naming `what` after [`WAIT_DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await;
}

/// The initial domain of a test tenant (`<name>.onmicrosoft.test`).
pub fn initial_domain(tenant: &TestTenant) -> String {
    format!("{}.onmicrosoft.test", tenant.name)
}

/// The target half of the consent (steps 1–3): the target trusts `source` for inbound user sync.
pub async fn allow_inbound(target: &ApiClient, source: &TestTenant) {
    let source_id = source.id.to_string();
    target
        .post("/v1.0/policies/crossTenantAccessPolicy/partners", json!({"tenantId": source_id}))
        .await
        .assert_status(201);
    target
        .put(
            &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{source_id}/identitySynchronization"),
            json!({"displayName": source.name, "userSyncInbound": {"isSyncAllowed": true}}),
        )
        .await
        .assert_status(204);
    target
        .patch(
            &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{source_id}"),
            json!({"inboundTrust": null, "automaticUserConsentSettings": {"inboundAllowed": true}}),
        )
        .await
        .assert_status(204);
}

/// The source half of the consent (steps 4–5): the source lets its users be redeemed automatically in `target`.
pub async fn allow_outbound(source: &ApiClient, target: &TestTenant) {
    let target_id = target.id.to_string();
    source
        .post("/v1.0/policies/crossTenantAccessPolicy/partners", json!({"tenantId": target_id}))
        .await
        .assert_status(201);
    source
        .patch(
            &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{target_id}"),
            json!({"automaticUserConsentSettings": {"outboundAllowed": true}}),
        )
        .await
        .assert_status(204);
}

/// A configured job from `source` to `target`, with a client for each tenant.
#[derive(Clone)]
pub struct SyncSetup {
    pub sp_id: String,
    pub job_id: String,
    /// The id of the `USER_INBOUND_USER` rule.
    pub rule_id: String,
    /// `msiam_access`.
    pub app_role_id: String,
    pub source: TestTenant,
    pub target: TestTenant,
    pub src: ApiClient,
    pub tgt: ApiClient,
}

/// Steps 1–9 of the configuration sequence over HTTP (consent in both tenants, the CTS application, credentials
/// check, job, secrets with `SyncAll` false), then the rule id from the schema. The job is not started and nobody
/// is assigned: [`SyncSetup::assign`] is step 10, [`SyncSetup::start`] step 13.
pub async fn configure_sync(app: &TestApp, source: &TestTenant, target: &TestTenant) -> SyncSetup {
    let src = app.as_tenant(source).await;
    let tgt = app.as_tenant(target).await;
    allow_inbound(&tgt, source).await;
    allow_outbound(&src, target).await;
    configure_job(source, target, src, tgt).await
}

/// Steps 6–9 only, for tenants whose partner entries already exist (topologies where a tenant has several peers).
pub async fn configure_job(source: &TestTenant, target: &TestTenant, src: ApiClient, tgt: ApiClient) -> SyncSetup {
    configure_job_checked(source, target, src, tgt, true).await
}

/// Steps 6–9 for a target on another server (whose tenant the source's server cannot look up, so
/// `validateCredentials` is skipped); the caller then puts the remote target's secrets.
pub async fn configure_remote_job(
    source: &TestTenant,
    target: &TestTenant,
    src: ApiClient,
    tgt: ApiClient,
) -> SyncSetup {
    configure_job_checked(source, target, src, tgt, false).await
}

async fn configure_job_checked(
    source: &TestTenant,
    target: &TestTenant,
    src: ApiClient,
    tgt: ApiClient,
    validate: bool,
) -> SyncSetup {
    let target_id = target.id.to_string();
    let instantiated = src
        .post(
            "/v1.0/applicationTemplates/518e5f48-1fc8-4c48-9387-9fdf28b0dfe7/instantiate",
            json!({"displayName": target.name}),
        )
        .await;
    instantiated.assert_status(201);
    let sp_id = instantiated.body["servicePrincipal"]["id"].as_str().expect("servicePrincipal.id").to_owned();
    let app_role_id =
        instantiated.body["servicePrincipal"]["appRoles"][0]["id"].as_str().expect("appRoles[0].id").to_owned();
    if validate {
        src.post(
            &format!("/v1.0/servicePrincipals/{sp_id}/synchronization/jobs/validateCredentials"),
            json!({
                "useSavedCredentials": false,
                "templateId": "Azure2Azure",
                "credentials": [{"key": "CompanyId", "value": target_id}, {"key": "AuthenticationType", "value": "SyncPolicy"}],
            }),
        )
        .await
        .assert_status(204);
    }
    let job = src
        .post(&format!("/v1.0/servicePrincipals/{sp_id}/synchronization/jobs"), json!({"templateId": "Azure2Azure"}))
        .await;
    job.assert_status(201);
    let job_id = job.id();
    src.put(
        &format!("/v1.0/servicePrincipals/{sp_id}/synchronization/secrets"),
        json!({"value": [
            {"key": "AuthenticationType", "value": "SyncPolicy"},
            {"key": "CompanyId", "value": target_id},
            {"key": "SyncNotificationSettings", "value": "{\"Enabled\":false,\"DeleteThresholdEnabled\":false,\"HumanResourcesLookaheadQueryEnabled\":false}"},
            {"key": "SyncAll", "value": "false"},
        ]}),
    )
    .await
    .assert_status(204);
    let schema = src.get(&format!("/v1.0/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema")).await;
    schema.assert_status(200);
    let rule_id = schema.body["synchronizationRules"]
        .as_array()
        .expect("synchronizationRules")
        .iter()
        .find(|rule| rule["name"] == "USER_INBOUND_USER")
        .and_then(|rule| rule["id"].as_str())
        .expect("the USER_INBOUND_USER rule has an id")
        .to_owned();
    SyncSetup { sp_id, job_id, rule_id, app_role_id, source: source.clone(), target: target.clone(), src, tgt }
}

/// Whether `user` is the B2B user of `source_id` from `source_tenant` (its federated identity names them).
fn is_b2b_of(user: &Value, source_tenant: &str, source_id: &str) -> bool {
    user["identities"].as_array().is_some_and(|identities| {
        identities.iter().any(|identity| {
            identity["signInType"] == "federated"
                && identity["issuer"].as_str().is_some_and(|issuer| issuer.eq_ignore_ascii_case(source_tenant))
                && identity["issuerAssignedId"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(source_id))
        })
    })
}

impl SyncSetup {
    /// Fresh tokens for both clients (after the manual clock moved past their lifetime).
    pub async fn reauth(&mut self, app: &TestApp) {
        self.src = app.as_tenant(&self.source).await;
        self.tgt = app.as_tenant(&self.target).await;
    }

    /// `/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}` followed by `suffix`.
    pub fn job_path(&self, suffix: &str) -> String {
        format!("/v1.0/servicePrincipals/{}/synchronization/jobs/{}{suffix}", self.sp_id, self.job_id)
    }

    /// `/v1.0/servicePrincipals/{sp}` followed by `suffix`.
    pub fn sp_path(&self, suffix: &str) -> String {
        format!("/v1.0/servicePrincipals/{}{suffix}", self.sp_id)
    }

    /// A user in the source tenant (`<local>@<source initial domain>`) with `extra` properties; returns its id.
    pub async fn source_user(&self, local: &str, display_name: &str, extra: Value) -> String {
        let mut body = fixtures::user(&format!("{local}@{}", initial_domain(&self.source)), display_name);
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        self.src.create_user(body).await
    }

    /// Step 10: assigns a user or group; returns the assignment id.
    pub async fn assign(&self, principal_id: &str) -> String {
        let reply = self
            .src
            .post(
                &self.sp_path("/appRoleAssignedTo"),
                json!({"appRoleId": self.app_role_id, "resourceId": self.sp_id, "principalId": principal_id}),
            )
            .await;
        reply.assert_status(201);
        reply.id()
    }

    pub async fn unassign(&self, assignment_id: &str) {
        self.src.delete(&self.sp_path(&format!("/appRoleAssignedTo/{assignment_id}"))).await.assert_status(204);
    }

    /// Merges secrets (`SyncAll`, `ExpandNestedGroups`, …).
    pub async fn put_secrets(&self, pairs: &[(&str, &str)]) {
        let value: Vec<Value> = pairs.iter().map(|(key, value)| json!({"key": key, "value": value})).collect();
        self.src.put(&self.sp_path("/synchronization/secrets"), json!({ "value": value })).await.assert_status(204);
    }

    pub async fn start(&self) {
        self.src.post_empty(&self.job_path("/start")).await.assert_status(204);
    }

    pub async fn pause(&self) {
        self.src.post_empty(&self.job_path("/pause")).await.assert_status(204);
    }

    pub async fn job(&self) -> Value {
        let reply = self.src.get(&self.job_path("")).await;
        reply.assert_status(200);
        reply.body
    }

    pub async fn schema(&self) -> Value {
        let reply = self.src.get(&self.job_path("/schema")).await;
        reply.assert_status(200);
        reply.body
    }

    pub async fn put_schema(&self, schema: Value) -> Reply {
        self.src.put(&self.job_path("/schema"), schema).await
    }

    /// The default schema with the user object mapping changed by `edit`, PUT; panics unless 204.
    pub async fn edit_user_mapping(&self, edit: impl FnOnce(&mut Value)) {
        let mut schema = self.schema().await;
        let mapping = schema
            .pointer_mut("/synchronizationRules/0/objectMappings/0")
            .expect("the schema has a user object mapping");
        edit(mapping);
        self.put_schema(schema).await.assert_status(204);
    }

    /// `provisionOnDemand` for one user, as the portal sends it.
    pub async fn provision_on_demand(&self, user_id: &str) -> Reply {
        self.src
            .post(
                &self.job_path("/provisionOnDemand"),
                json!({"parameters": [{"ruleId": self.rule_id, "subjects": [{"objectId": user_id, "objectTypeName": "User"}]}]}),
            )
            .await
    }

    /// The job's provisioning log entries, newest first.
    pub async fn logs(&self) -> Vec<Value> {
        let (values, _) = self
            .src
            .get_all(&format!("/v1.0/auditLogs/provisioning?$filter=jobId eq '{}'&$top=999", self.job_id), &[])
            .await;
        values
    }

    /// The log entries about one source user, newest first.
    pub async fn logs_for(&self, source_id: &str) -> Vec<Value> {
        self.logs().await.into_iter().filter(|entry| entry["sourceIdentity"]["id"] == source_id).collect()
    }

    /// Waits for a log entry about `source_id` with `action` and `status`, and returns it.
    pub async fn wait_log(&self, source_id: &str, action: &str, status: &str) -> Value {
        wait_for(&format!("a '{action}' log entry with status '{status}' for {source_id}"), || async {
            self.logs_for(source_id).await.into_iter().find(|entry| {
                entry["provisioningAction"] == action && entry["provisioningStatusInfo"]["status"] == status
            })
        })
        .await
    }

    /// Every live user of the target tenant.
    pub async fn target_users(&self) -> Vec<Value> {
        self.tgt.get_all("/v1.0/users?$top=999", &[]).await.0
    }

    /// The live target users that are B2B users of `source_id`.
    pub async fn b2b_users_of(&self, source_id: &str) -> Vec<Value> {
        let source_tenant = self.source.id.to_string();
        self.target_users().await.into_iter().filter(|user| is_b2b_of(user, &source_tenant, source_id)).collect()
    }

    /// The live B2B user of `source_id`, if exactly one exists (panics on duplicates).
    pub async fn b2b_user_of(&self, source_id: &str) -> Option<Value> {
        let mut users = self.b2b_users_of(source_id).await;
        assert!(users.len() <= 1, "duplicate B2B users of {source_id}: {users:?}");
        users.pop()
    }

    /// The soft-deleted target users that are B2B users of `source_id`.
    pub async fn deleted_b2b_users_of(&self, source_id: &str) -> Vec<Value> {
        let source_tenant = self.source.id.to_string();
        self.tgt
            .get_all("/v1.0/directory/deletedItems/microsoft.graph.user?$top=999", &[])
            .await
            .0
            .into_iter()
            .filter(|user| is_b2b_of(user, &source_tenant, source_id))
            .collect()
    }

    /// Waits until the live B2B user of `source_id` satisfies `check`, and returns it.
    pub async fn wait_b2b_user(&self, source_id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        wait_for(&format!("the B2B user of {source_id}: {what}"), || async {
            self.b2b_user_of(source_id).await.filter(|user| check(user))
        })
        .await
    }

    /// Waits until `source_id`'s B2B user is soft-deleted in the target (and no live one is left).
    pub async fn wait_b2b_deleted(&self, source_id: &str) -> Value {
        wait_for(&format!("the B2B user of {source_id} in deletedItems"), || async {
            let deleted = self.deleted_b2b_users_of(source_id).await;
            (deleted.len() == 1 && self.b2b_users_of(source_id).await.is_empty()).then(|| deleted[0].clone())
        })
        .await
    }

    /// Replaces `SyncNotificationSettings` (the deletion guard's settings) with `settings`.
    pub async fn set_delete_guard(&self, settings: Value) {
        self.put_secrets(&[("SyncNotificationSettings", &settings.to_string())]).await;
    }

    /// `GET …/jobs/{id}/stagedDeletions`: the held deprovisionings.
    pub async fn staged(&self) -> Vec<Value> {
        let reply = self.src.get(&self.job_path("/stagedDeletions")).await;
        reply.assert_status(200);
        reply.values().clone()
    }

    /// The source ids of the held deprovisionings, sorted.
    pub async fn staged_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            self.staged().await.iter().map(|item| item["objectId"].as_str().unwrap_or_default().to_owned()).collect();
        ids.sort();
        ids
    }

    /// `status.pendingStagedDeletions` of the job.
    pub async fn pending_staged(&self) -> u64 {
        self.job().await["status"]["pendingStagedDeletions"].as_u64().expect("status.pendingStagedDeletions")
    }

    /// `restart` with `criteria.resetScope`; panics unless 204.
    pub async fn restart(&self, reset_scope: &str) {
        self.src
            .post(&self.job_path("/restart"), json!({"criteria": {"resetScope": reset_scope}}))
            .await
            .assert_status(204);
    }

    /// The dry run (`POST …/jobs/{id}/plan`), every page followed.
    pub async fn plan(&self) -> Vec<Value> {
        let mut values = Vec::new();
        let mut reply = self.src.post_empty(&self.job_path("/plan")).await;
        loop {
            reply.assert_status(200);
            values.extend(reply.values().iter().cloned());
            let Some(next) = reply.body["@odata.nextLink"].as_str().map(str::to_owned) else { break };
            reply = self.src.post_empty(&next).await;
        }
        values
    }

    /// A barrier for negative assertions while the job is active: changes `marker` (an in-scope source user that
    /// is already synced), waits until the change reached the target, then provisions `marker` on demand, which
    /// waits for the running cycle to finish. Afterwards every source change made before this call has been
    /// evaluated.
    pub async fn settle(&self, marker: &str) {
        let value = format!("settle-{}", uuid_like());
        self.src.patch(&format!("/v1.0/users/{marker}"), json!({"employeeId": value})).await.assert_status(204);
        self.wait_b2b_user(marker, "carries the settle marker", |user| user["employeeId"] == value.as_str()).await;
        self.provision_on_demand(marker).await.assert_status(200);
    }
}

/// A value unique within the process, for markers.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
