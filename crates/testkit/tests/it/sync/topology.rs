//! Loop-freedom and topologies: a source user that is itself a B2B user (created by sync, or by an invitation) is
//! never synced outbound; hub → spokes, spokes → hub and a full mesh of four tenants each end with every internal
//! user exactly once in every other tenant, and nothing else.

use std::collections::HashMap;

use serde_json::{Value, json};
use tenantsync_testkit::sync::{SyncSetup, configure_job, initial_domain, wait_until};
use tenantsync_testkit::{ApiClient, TestApp, TestTenant};

/// One partner entry per peer, both directions allowed (a tenant that is both source and target of `other`).
async fn trust_both_ways(client: &ApiClient, other: &TestTenant) {
    let other_id = other.id.to_string();
    client
        .post("/v1.0/policies/crossTenantAccessPolicy/partners", json!({"tenantId": other_id}))
        .await
        .assert_status(201);
    client
        .put(
            &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{other_id}/identitySynchronization"),
            json!({"displayName": other.name, "userSyncInbound": {"isSyncAllowed": true}}),
        )
        .await
        .assert_status(204);
    client
        .patch(
            &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{other_id}"),
            json!({"automaticUserConsentSettings": {"inboundAllowed": true, "outboundAllowed": true}}),
        )
        .await
        .assert_status(204);
}

/// A tenant with its client and its internal users.
struct Node {
    tenant: TestTenant,
    client: ApiClient,
    internal: Vec<String>,
    /// B2B users made by hand (`creationType: Invitation`), not by sync.
    invited: Vec<String>,
}

async fn node(app: &TestApp, name: &str, n_users: usize) -> Node {
    let tenant = app.create_tenant(name, &[]).await;
    let client = app.as_tenant(&tenant).await;
    let mut internal = Vec::new();
    for i in 0..n_users {
        let upn = format!("user{i}@{}", initial_domain(&tenant));
        internal.push(client.create_user(tenantsync_testkit::fixtures::user(&upn, &format!("{name} user {i}"))).await);
    }
    Node { tenant, client, internal, invited: Vec::new() }
}

/// Partner entries between every pair of `nodes` that has a job, then the jobs (SyncAll, started).
async fn connect(nodes: &[Node], edges: &[(usize, usize)]) -> Vec<SyncSetup> {
    let mut trusted = std::collections::HashSet::new();
    for &(from, to) in edges {
        for (a, b) in [(from, to), (to, from)] {
            if trusted.insert((a, b)) {
                trust_both_ways(&nodes[a].client, &nodes[b].tenant).await;
            }
        }
    }
    let mut jobs = Vec::new();
    for &(from, to) in edges {
        let sync =
            configure_job(&nodes[from].tenant, &nodes[to].tenant, nodes[from].client.clone(), nodes[to].client.clone())
                .await;
        sync.put_secrets(&[("SyncAll", "true")]).await;
        sync.start().await;
        jobs.push(sync);
    }
    jobs
}

/// Every user of a tenant.
async fn users_of(client: &ApiClient) -> Vec<Value> {
    client.get_all("/v1.0/users?$top=999", &[]).await.0
}

/// (issuer, issuerAssignedId) of a B2B user; None for an internal user.
fn home_of(user: &Value) -> Option<(String, String)> {
    user["identities"].as_array()?.iter().find(|identity| identity["signInType"] == "federated").map(|identity| {
        (
            identity["issuer"].as_str().unwrap_or_default().to_lowercase(),
            identity["issuerAssignedId"].as_str().unwrap_or_default().to_lowercase(),
        )
    })
}

/// Waits until each node holds exactly the users `expected` names for it, then lets every job catch up and checks
/// again (so a late extra user is caught): its internal users plus one B2B user for each internal user of each
/// node it receives from, and no B2B user of a B2B user.
async fn assert_converges(nodes: &[Node], jobs: &[SyncSetup], inbound: &HashMap<usize, Vec<usize>>) {
    let expected = |index: usize| -> Vec<(String, String)> {
        let mut homes: Vec<(String, String)> = inbound
            .get(&index)
            .into_iter()
            .flatten()
            .flat_map(|&from| {
                let tenant = nodes[from].tenant.id.to_string().to_lowercase();
                nodes[from].internal.iter().map(move |id| (tenant.clone(), id.to_lowercase()))
            })
            .collect();
        homes.sort();
        homes
    };
    // (internal users, invited users, homes of synced B2B users)
    let actual = |users: Vec<Value>| -> (Vec<String>, Vec<String>, Vec<(String, String)>) {
        let mut internal = Vec::new();
        let mut invited = Vec::new();
        let mut homes = Vec::new();
        for user in users {
            let id = user["id"].as_str().unwrap_or_default().to_owned();
            match home_of(&user) {
                Some(home) => homes.push(home),
                None if user["creationType"] == "Invitation" => invited.push(id),
                None => internal.push(id),
            }
        }
        internal.sort();
        invited.sort();
        homes.sort();
        (internal, invited, homes)
    };
    for (index, node) in nodes.iter().enumerate() {
        let want = expected(index);
        wait_until(&format!("{} to hold its B2B users", node.tenant.name), || async {
            actual(users_of(&node.client).await).2 == want
        })
        .await;
    }
    for job in jobs {
        let marker = nodes.iter().find(|node| node.tenant.id == job.source.id).expect("a node").internal[0].clone();
        job.settle(&marker).await;
    }
    for (index, node) in nodes.iter().enumerate() {
        let users = users_of(&node.client).await;
        let total = users.len();
        let (internal, invited, homes) = actual(users);
        let mut own = node.internal.clone();
        own.sort();
        assert_eq!(internal, own, "{}: internal users untouched", node.tenant.name);
        assert_eq!(invited, node.invited, "{}: invited users untouched", node.tenant.name);
        assert_eq!(
            homes,
            expected(index),
            "{}: exactly one B2B user per internal user of each source",
            node.tenant.name
        );
        assert_eq!(
            total,
            node.internal.len() + node.invited.len() + expected(index).len(),
            "{}: user count",
            node.tenant.name
        );
    }
}

#[tokio::test]
async fn b2b_users_in_the_source_are_never_synced_outbound() {
    let app = TestApp::spawn().await;
    let mut nodes = [node(&app, "upstream", 1).await, node(&app, "middle", 1).await, node(&app, "downstream", 0).await];
    // A user invited into the middle tenant by hand: a B2B user too.
    let invited = nodes[1]
        .client
        .create_user(json!({
            "accountEnabled": true, "displayName": "Invited Guest", "mailNickname": "guest",
            "userPrincipalName": format!("guest_elsewhere.example#EXT#@{}", initial_domain(&nodes[1].tenant)),
            "userType": "Guest", "creationType": "Invitation",
            "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "Correct-Horse-42"},
        }))
        .await;
    nodes[1].invited.push(invited.clone());
    // upstream → middle, then middle → downstream.
    let jobs = connect(&nodes, &[(0, 1), (1, 2)]).await;
    let inbound = HashMap::from([(1, vec![0]), (2, vec![1])]);
    assert_converges(&nodes, &jobs, &inbound).await;
    let middle_users = users_of(&nodes[1].client).await;
    assert_eq!(middle_users.len(), 3, "own user, the invited guest and the upstream user's B2B user");
    let downstream = users_of(&nodes[2].client).await;
    assert_eq!(downstream.len(), 1, "only the middle tenant's internal user: {downstream:?}");

    // On demand says why, step by step.
    let synced_b2b = middle_users.iter().find(|user| home_of(user).is_some()).expect("a synced B2B user");
    for user in [invited.as_str(), synced_b2b["id"].as_str().expect("id")] {
        let reply = jobs[1].provision_on_demand(user).await;
        reply.assert_status(200);
        let key: Value = serde_json::from_str(reply.body["key"].as_str().expect("key")).expect("key JSON");
        assert_eq!(key["result"], "Skipped", "{}", reply.text);
        let value: Value = serde_json::from_str(reply.body["value"].as_str().expect("value")).expect("value JSON");
        let scoping = value["provisioningSteps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|step| step["provisioningStepType"] == "scoping")
            .expect("scoping step")
            .clone();
        assert_eq!(scoping["details"]["Internal user (not a B2B user of another tenant)"], false, "{scoping}");
    }
    assert_eq!(users_of(&nodes[2].client).await.len(), 1);
}

#[tokio::test]
async fn hub_syncs_outbound_to_two_spokes() {
    let app = TestApp::spawn().await;
    let nodes = [node(&app, "hub", 2).await, node(&app, "spokea", 1).await, node(&app, "spokeb", 1).await];
    let jobs = connect(&nodes, &[(0, 1), (0, 2)]).await;
    assert_converges(&nodes, &jobs, &HashMap::from([(1, vec![0]), (2, vec![0])])).await;
}

#[tokio::test]
async fn two_spokes_sync_inbound_to_the_hub() {
    let app = TestApp::spawn().await;
    let nodes = [node(&app, "hub", 2).await, node(&app, "spokea", 1).await, node(&app, "spokeb", 2).await];
    let jobs = connect(&nodes, &[(1, 0), (2, 0)]).await;
    assert_converges(&nodes, &jobs, &HashMap::from([(0, vec![1, 2])])).await;
}

#[tokio::test]
async fn full_mesh_of_four_tenants_has_every_internal_user_once_everywhere() {
    let app = TestApp::spawn().await;
    let nodes = [
        node(&app, "north", 2).await,
        node(&app, "east", 2).await,
        node(&app, "south", 2).await,
        node(&app, "west", 2).await,
    ];
    let edges: Vec<(usize, usize)> =
        (0..4).flat_map(|from| (0..4).filter(move |&to| to != from).map(move |to| (from, to))).collect();
    let jobs = connect(&nodes, &edges).await;
    let inbound: HashMap<usize, Vec<usize>> =
        (0..4).map(|to| (to, (0..4).filter(|&from| from != to).collect())).collect();
    assert_converges(&nodes, &jobs, &inbound).await;
    for node in &nodes {
        assert_eq!(users_of(&node.client).await.len(), 2 + 3 * 2);
    }
}
