//! The behaviour every [`Store`] backend must show. Each backend's tests call [`run_all`] (or the single checks)
//! with a fresh, empty database: a temporary SQLite file, a new PostgreSQL database.
//!
//! The checks panic with a message naming what failed; they are test code, so `expect` is fine here.

use tenantsync_model::{ClientId, ObjectId, ObjectKind, TenantId};
use time::OffsetDateTime;

use crate::{
    ChangeOp, ChangeRow, CredentialRow, DocRow, KeyMatch, LeaseCensus, LeaseClaim, LeaseRow, LinkKind, LogQuery,
    LogRow, ObjectRow, ScanOrder, ScanSpec, ScimKey, ScimSelect, Store, StoreError, TenantRow, TxMode,
};

/// Runs every check, in order, on one store.
pub async fn run_all(store: &dyn Store) {
    tenants_and_credentials(store).await;
    objects_are_scoped_by_tenant(store).await;
    upn_is_unique_per_tenant_ignoring_case(store).await;
    rollback_leaves_nothing(store).await;
    scans_page_in_every_order(store).await;
    links_and_purge(store).await;
    change_log_sequences_and_pruning(store).await;
    settings_keep_the_first_value(store).await;
    anchors_are_unique_per_tenant_ignoring_case(store).await;
    documents_crud_order_and_isolation(store).await;
    provisioning_logs_filter_page_and_prune(store).await;
    links_to_any_and_tenant_lock(store).await;
    live_links_and_an_object_with_them(store).await;
    leases_claim_renew_fence_and_release(store).await;
    users_are_found_by_scim_user_name(store).await;
    batch_writes_match_single_writes(store).await;
    scim_selects_filter_order_and_page(store).await;
    read_statements_see_each_commit(store).await;
}

/// How many tenants [`run_all`] creates, for backends' tests that count them afterwards.
pub const TENANTS_CREATED_BY_RUN_ALL: usize = 27;

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).expect("valid test timestamp")
}

/// A tenant row for tests, with `name` as its name and `<name>.example` as a verified domain.
pub fn sample_tenant(name: &str) -> (TenantRow, CredentialRow) {
    let tenant = TenantRow {
        id: TenantId::new_random(),
        name: name.to_owned(),
        display_name: format!("{name} Ltd"),
        initial_domain: format!("{name}.onmicrosoft.test"),
        domains: vec![format!("{name}.onmicrosoft.test"), format!("{name}.example")],
        created_at: at(0),
    };
    let credential = CredentialRow {
        client_id: ClientId::new_random(),
        tenant: tenant.id,
        display_name: "default".to_owned(),
        secret_hash: "$hash$".to_owned(),
        roles: "Directory.ReadWrite.All".to_owned(),
        created_at: at(0),
        secret_updated_at: at(0),
        revoked_at: None,
    };
    (tenant, credential)
}

fn user_row(upn: &str, display_name: &str) -> ObjectRow {
    ObjectRow {
        id: ObjectId::new_time_ordered(),
        kind: ObjectKind::User,
        upn: Some(upn.to_owned()),
        display_name: Some(display_name.to_owned()),
        data: format!(r#"{{"userPrincipalName":"{upn}"}}"#),
        deleted_at: None,
        anchor: None,
    }
}

async fn new_tenant(store: &dyn Store, name: &str) -> TenantId {
    let (tenant, credential) = sample_tenant(name);
    store.create_tenant(&tenant, &credential).await.expect("create tenant");
    tenant.id
}

pub async fn tenants_and_credentials(store: &dyn Store) {
    let (tenant, credential) = sample_tenant("alpha");
    store.create_tenant(&tenant, &credential).await.expect("create tenant");
    assert_eq!(store.get_tenant(tenant.id).await.expect("get tenant"), Some(tenant.clone()));
    for key in ["alpha", "ALPHA.example", "alpha.onmicrosoft.test"] {
        let found = store.find_tenant(key).await.expect("find tenant");
        assert_eq!(found.map(|row| row.id), Some(tenant.id), "find_tenant({key})");
    }
    assert_eq!(store.find_tenant("nobody.example").await.expect("find"), None);

    // A second tenant may not take the same name or a domain that is already verified elsewhere.
    let (mut clash, clash_credential) = sample_tenant("alpha");
    let err = store.create_tenant(&clash, &clash_credential).await.expect_err("duplicate name");
    assert!(matches!(err, StoreError::Conflict { .. }), "duplicate name gives Conflict, got {err:?}");
    clash.name = "alpha2".to_owned();
    clash.domains = vec!["alpha2.onmicrosoft.test".to_owned(), "alpha.example".to_owned()];
    let clash_credential = CredentialRow { client_id: ClientId::new_random(), tenant: clash.id, ..clash_credential };
    let err = store.create_tenant(&clash, &clash_credential).await.expect_err("duplicate domain");
    assert!(matches!(err, StoreError::Conflict { .. }), "duplicate domain gives Conflict, got {err:?}");
    assert_eq!(store.get_tenant(clash.id).await.expect("get"), None, "failed create leaves nothing behind");
    assert_eq!(store.get_credential(clash_credential.client_id).await.expect("get"), None);

    let listed = store.list_tenants().await.expect("list tenants");
    assert!(listed.iter().any(|row| row.id == tenant.id));

    assert_eq!(store.get_credential(credential.client_id).await.expect("get credential"), Some(credential.clone()));
    let second = CredentialRow {
        client_id: ClientId::new_random(),
        display_name: "reader".to_owned(),
        roles: "User.Read.All".to_owned(),
        ..credential.clone()
    };
    store.insert_credential(&second).await.expect("insert credential");
    let credentials = store.list_credentials(tenant.id).await.expect("list credentials");
    assert_eq!(credentials.len(), 2);
    let revoked = CredentialRow { revoked_at: Some(at(10)), secret_hash: "$new$".to_owned(), ..second.clone() };
    store.update_credential(&revoked).await.expect("update credential");
    assert_eq!(store.get_credential(second.client_id).await.expect("get"), Some(revoked));
    let unknown = CredentialRow { client_id: ClientId::new_random(), ..second };
    assert!(matches!(store.update_credential(&unknown).await, Err(StoreError::NotFound { .. })));
}

pub async fn objects_are_scoped_by_tenant(store: &dyn Store) {
    let tenant_a = new_tenant(store, "scopea").await;
    let tenant_b = new_tenant(store, "scopeb").await;
    let user = user_row("ada@scopea.example", "Ada");
    let mut tx = store.begin(tenant_a, TxMode::Write).await.expect("begin");
    tx.insert_object(&user).await.expect("insert");
    tx.commit().await.expect("commit");

    let mut tx = store.begin(tenant_b, TxMode::Read).await.expect("begin");
    assert_eq!(tx.get_object(user.id).await.expect("get"), None, "tenant B cannot see A's object by id");
    assert_eq!(tx.find_by_upn("ada@scopea.example").await.expect("find"), None);
    assert_eq!(tx.count_objects(ObjectKind::User, false).await.expect("count"), 0);
    let spec =
        ScanSpec { deleted: false, order: ScanOrder::Id, descending: false, after: None, limit: 10, within: None };
    assert!(tx.scan_objects(ObjectKind::User, &spec).await.expect("scan").is_empty());
    drop(tx);

    let mut tx = store.begin(tenant_b, TxMode::Write).await.expect("begin");
    let err = tx.update_object(&user).await.expect_err("B cannot update A's object");
    assert!(matches!(err, StoreError::NotFound { .. }));
    tx.purge_object(user.id).await.expect("purge of an unknown id is a no-op");
    tx.commit().await.expect("commit");

    let mut tx = store.begin(tenant_a, TxMode::Read).await.expect("begin");
    assert_eq!(tx.get_object(user.id).await.expect("get"), Some(user));
}

pub async fn upn_is_unique_per_tenant_ignoring_case(store: &dyn Store) {
    let tenant_a = new_tenant(store, "upna").await;
    let tenant_b = new_tenant(store, "upnb").await;
    let mut tx = store.begin(tenant_a, TxMode::Write).await.expect("begin");
    tx.insert_object(&user_row("Grace@upna.example", "Grace")).await.expect("insert");
    let err = tx.insert_object(&user_row("grace@UPNA.example", "Grace 2")).await.expect_err("duplicate upn");
    assert!(matches!(err, StoreError::Conflict { .. }), "got {err:?}");
    let found = tx.find_by_upn("GRACE@upna.example").await.expect("find").expect("found ignoring case");
    assert_eq!(found.upn.as_deref(), Some("Grace@upna.example"), "stored as written");
    tx.commit().await.expect("the first insert survives the failed second one");

    // Another tenant may use the same UPN text.
    let mut tx = store.begin(tenant_b, TxMode::Write).await.expect("begin");
    tx.insert_object(&user_row("grace@upna.example", "Grace")).await.expect("same upn in another tenant");
    tx.commit().await.expect("commit");
}

pub async fn rollback_leaves_nothing(store: &dyn Store) {
    let tenant = new_tenant(store, "rollback").await;
    let user = user_row("temp@rollback.example", "Temp");
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    tx.insert_object(&user).await.expect("insert");
    tx.append_change(&change(user.id, ChangeOp::Upsert)).await.expect("append");
    tx.put_doc(&doc("rollbackJobs", "job1", "{}", 0)).await.expect("put doc");
    tx.append_log(&log_row("job1", "create", "success", Some("s1"), None, 0)).await.expect("append log");
    drop(tx);
    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin");
    assert_eq!(tx.get_object(user.id).await.expect("get"), None);
    assert_eq!(tx.last_change_seq().await.expect("seq"), 0);
    assert_eq!(tx.get_doc("rollbackJobs", "job1").await.expect("get doc"), None);
    assert!(tx.read_logs(&all_logs()).await.expect("read logs").is_empty());
    assert!(store.list_docs_all_tenants("rollbackJobs").await.expect("list all").is_empty());
}

pub async fn scans_page_in_every_order(store: &dyn Store) {
    let tenant = new_tenant(store, "paging").await;
    let names = ["delta", "Alpha", "charlie", "Bravo", "echo", "alpha"];
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    for (idx, name) in names.iter().enumerate() {
        tx.insert_object(&user_row(&format!("u{idx}@paging.example"), name)).await.expect("insert");
    }
    let mut deleted = user_row("gone@paging.example", "Gone");
    deleted.deleted_at = Some(at(5));
    tx.insert_object(&deleted).await.expect("insert deleted");
    tx.commit().await.expect("commit");

    for (order, descending) in [
        (ScanOrder::Id, false),
        (ScanOrder::DisplayName, false),
        (ScanOrder::DisplayName, true),
        (ScanOrder::Upn, false),
        (ScanOrder::Upn, true),
    ] {
        let mut spec = ScanSpec { deleted: false, order, descending, after: None, limit: 4, within: None };
        let mut seen = Vec::new();
        let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin");
        loop {
            let page = tx.scan_objects(ObjectKind::User, &spec).await.expect("scan");
            if page.is_empty() {
                break;
            }
            spec.after = Some(spec.key_of(page.last().expect("non-empty page")));
            seen.extend(page);
        }
        assert_eq!(seen.len(), names.len(), "{order:?}: every live user once");
        let keys: Vec<_> = seen.iter().map(|row| spec.key_of(row)).collect();
        let mut sorted = keys.clone();
        sorted.sort_by(|left, right| (&left.value, left.id).cmp(&(&right.value, right.id)));
        if descending {
            sorted.reverse();
        }
        assert_eq!(keys, sorted, "{order:?} descending={descending}: pages follow the order");
    }
    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin");
    assert_eq!(tx.count_objects(ObjectKind::User, false).await.expect("count"), names.len() as u64);
    assert_eq!(tx.count_objects(ObjectKind::User, true).await.expect("count"), 1);
    let spec =
        ScanSpec { deleted: true, order: ScanOrder::Id, descending: false, after: None, limit: 10, within: None };
    let deleted_rows = tx.scan_objects(ObjectKind::User, &spec).await.expect("scan deleted");
    assert_eq!(deleted_rows, vec![deleted.clone()]);
    assert_eq!(tx.deleted_before(at(6)).await.expect("deleted before"), vec![deleted.id]);
    assert!(tx.deleted_before(at(5)).await.expect("deleted before").is_empty());
    drop(tx);
    scans_narrow_to_an_indexed_key(store, tenant, &deleted).await;
}

/// `ScanSpec::within`: every order and direction, paged two at a time, gives exactly the rows whose key passes
/// the condition, in the order's sequence; deleted rows only when asked for.
async fn scans_narrow_to_an_indexed_key(store: &dyn Store, tenant: TenantId, deleted: &ObjectRow) {
    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin");
    let all_spec =
        ScanSpec { deleted: false, order: ScanOrder::Id, descending: false, after: None, limit: 100, within: None };
    let all = tx.scan_objects(ObjectKind::User, &all_spec).await.expect("scan all");
    let some_id = all[2].id;
    let key = |row: &ObjectRow, on: ScanOrder| ScanSpec { order: on, ..all_spec.clone() }.key_of(row).value;
    let conditions = [
        (ScanOrder::DisplayName, KeyMatch::StartsWith("al".to_owned()), 2),
        (ScanOrder::DisplayName, KeyMatch::Equals("bravo".to_owned()), 1),
        (ScanOrder::DisplayName, KeyMatch::StartsWith("Al".to_owned()), 0),
        (ScanOrder::DisplayName, KeyMatch::StartsWith(String::new()), 6),
        (ScanOrder::Upn, KeyMatch::StartsWith("u".to_owned()), 6),
        (ScanOrder::Upn, KeyMatch::Equals("u4@paging.example".to_owned()), 1),
        (ScanOrder::Upn, KeyMatch::StartsWith("u4@paging.examplf".to_owned()), 0),
        (ScanOrder::Id, KeyMatch::Equals(some_id.to_string()), 1),
        (ScanOrder::DisplayName, KeyMatch::StartsWith("g".to_owned()), 0),
    ];
    for (on, condition, n_expected) in conditions {
        let passes = |row: &ObjectRow| {
            let value = if on == ScanOrder::Id { row.id.to_string() } else { key(row, on) };
            match &condition {
                KeyMatch::Equals(text) => value == *text,
                KeyMatch::StartsWith(prefix) => value.starts_with(prefix.as_str()),
                KeyMatch::Empty => value.is_empty(),
                KeyMatch::NotEmpty => !value.is_empty(),
            }
        };
        for (order, descending) in [
            (ScanOrder::Id, false),
            (ScanOrder::Id, true),
            (ScanOrder::DisplayName, false),
            (ScanOrder::DisplayName, true),
            (ScanOrder::Upn, false),
            (ScanOrder::Upn, true),
        ] {
            let mut spec = ScanSpec {
                deleted: false,
                order,
                descending,
                after: None,
                limit: 2,
                within: Some((on, condition.clone())),
            };
            let mut seen = Vec::new();
            loop {
                let page = tx.scan_objects(ObjectKind::User, &spec).await.expect("scan within");
                if page.is_empty() {
                    break;
                }
                spec.after = Some(spec.key_of(page.last().expect("non-empty page")));
                seen.extend(page);
            }
            let mut expected: Vec<ObjectRow> = all.iter().filter(|row| passes(row)).cloned().collect();
            expected.sort_by_key(|row| (spec.key_of(row).value, row.id));
            if descending {
                expected.reverse();
            }
            assert_eq!(expected.len(), n_expected, "{on:?} {condition:?}: the test's own expectation");
            assert_eq!(seen, expected, "{on:?} {condition:?} by {order:?} descending={descending}");
        }
    }
    let spec = ScanSpec {
        deleted: true,
        order: ScanOrder::Id,
        descending: false,
        after: None,
        limit: 10,
        within: Some((ScanOrder::DisplayName, KeyMatch::StartsWith("go".to_owned()))),
    };
    assert_eq!(tx.scan_objects(ObjectKind::User, &spec).await.expect("scan deleted within"), vec![deleted.clone()]);
}

pub async fn links_and_purge(store: &dyn Store) {
    let tenant = new_tenant(store, "links").await;
    let group = ObjectRow {
        id: ObjectId::new_time_ordered(),
        kind: ObjectKind::Group,
        upn: None,
        display_name: Some("Engineering".to_owned()),
        data: "{}".to_owned(),
        deleted_at: None,
        anchor: None,
    };
    let ada = user_row("ada@links.example", "Ada");
    let bob = user_row("bob@links.example", "Bob");
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    for row in [&group, &ada, &bob] {
        tx.insert_object(row).await.expect("insert");
    }
    assert!(tx.add_link(LinkKind::Member, group.id, ada.id).await.expect("add"));
    assert!(!tx.add_link(LinkKind::Member, group.id, ada.id).await.expect("add twice"), "second add is a no-op");
    assert!(tx.add_link(LinkKind::Member, group.id, bob.id).await.expect("add"));
    assert!(tx.add_link(LinkKind::Manager, bob.id, ada.id).await.expect("manager"));
    tx.commit().await.expect("commit");

    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    let mut members = tx.links_from(LinkKind::Member, group.id).await.expect("members");
    members.sort();
    let mut expected = vec![ada.id, bob.id];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(tx.links_to(LinkKind::Member, ada.id).await.expect("memberOf"), vec![group.id]);
    assert_eq!(tx.links_to(LinkKind::Manager, ada.id).await.expect("reports"), vec![bob.id]);
    assert!(tx.links_from(LinkKind::Manager, ada.id).await.expect("manager").is_empty());
    assert!(tx.remove_link(LinkKind::Member, group.id, bob.id).await.expect("remove"));
    assert!(!tx.remove_link(LinkKind::Member, group.id, bob.id).await.expect("remove twice"));
    tx.purge_object(ada.id).await.expect("purge");
    assert_eq!(tx.get_object(ada.id).await.expect("get"), None);
    assert!(tx.links_from(LinkKind::Member, group.id).await.expect("members").is_empty(), "purge drops links to");
    assert!(tx.links_from(LinkKind::Manager, bob.id).await.expect("manager").is_empty(), "and links from");
    tx.commit().await.expect("commit");
}

/// `links_to_any` reads the groups of many members at once; `lock_tenant` takes the writers' lock without appending.
pub async fn links_to_any_and_tenant_lock(store: &dyn Store) {
    let tenant = new_tenant(store, "linksmany").await;
    let group_row = |name: &str| ObjectRow {
        id: ObjectId::new_time_ordered(),
        kind: ObjectKind::Group,
        upn: None,
        display_name: Some(name.to_owned()),
        data: "{}".to_owned(),
        deleted_at: None,
        anchor: None,
    };
    let (sales, admins) = (group_row("Sales"), group_row("Admins"));
    let ada = user_row("ada@linksmany.example", "Ada");
    let bob = user_row("bob@linksmany.example", "Bob");
    let eve = user_row("eve@linksmany.example", "Eve");
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    tx.lock_tenant().await.expect("lock an existing tenant");
    for row in [&sales, &admins, &ada, &bob, &eve] {
        tx.insert_object(row).await.expect("insert");
    }
    for (group, member) in [(&sales, &ada), (&admins, &ada), (&sales, &bob)] {
        assert!(tx.add_link(LinkKind::Member, group.id, member.id).await.expect("add"));
    }
    tx.add_link(LinkKind::Manager, eve.id, ada.id).await.expect("manager");
    assert_eq!(tx.append_change(&change(ada.id, ChangeOp::Upsert)).await.expect("append after the lock"), 1);
    tx.commit().await.expect("commit");

    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    let mut expected = vec![(sales.id, ada.id), (admins.id, ada.id), (sales.id, bob.id)];
    expected.sort_by_key(|pair| (pair.1, pair.0));
    let found = tx.links_to_any(LinkKind::Member, &[ada.id, bob.id, eve.id]).await.expect("links to any");
    assert_eq!(found, expected, "member links only, ordered by member then group");
    assert!(tx.links_to_any(LinkKind::Member, &[]).await.expect("none asked").is_empty());
    assert_eq!(tx.links_to_any(LinkKind::Manager, &[ada.id]).await.expect("reports"), vec![(eve.id, ada.id)]);
    let many: Vec<ObjectId> = (0..1200).map(|_| ObjectId::new_time_ordered()).chain([bob.id]).collect();
    assert_eq!(
        tx.links_to_any(LinkKind::Member, &many).await.expect("more ids than one statement binds"),
        vec![(sales.id, bob.id)]
    );
    tx.commit().await.expect("commit");

    // Bulk adds and removes skip what is already there (or not), and bulk appends number changes in order.
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    let many_users: Vec<ObjectRow> =
        (0..450).map(|idx| user_row(&format!("bulk{idx}@linksmany.example"), &format!("Bulk {idx}"))).collect();
    for row in &many_users {
        tx.insert_object(row).await.expect("insert");
    }
    let mut pairs: Vec<(ObjectId, ObjectId)> = many_users.iter().map(|row| (admins.id, row.id)).collect();
    pairs.push((admins.id, ada.id));
    assert_eq!(tx.add_links(LinkKind::Member, &pairs).await.expect("add links"), 450, "the existing link is skipped");
    assert_eq!(tx.add_links(LinkKind::Member, &[]).await.expect("add none"), 0);
    assert_eq!(tx.links_from(LinkKind::Member, admins.id).await.expect("members").len(), 451);
    let gone: Vec<(ObjectId, ObjectId)> =
        many_users.iter().step_by(2).map(|row| (admins.id, row.id)).chain([(sales.id, eve.id)]).collect();
    assert_eq!(tx.remove_links(LinkKind::Member, &gone).await.expect("remove links"), 225, "a missing link is skipped");
    assert_eq!(tx.remove_links(LinkKind::Member, &[]).await.expect("remove none"), 0);
    assert_eq!(tx.links_from(LinkKind::Member, admins.id).await.expect("members").len(), 226);
    assert!(tx.links_from(LinkKind::Member, sales.id).await.expect("members").len() == 2, "other links stay");
    let before = tx.last_change_seq().await.expect("seq");
    assert_eq!(tx.append_changes(&[]).await.expect("append none"), before);
    let changes: Vec<ChangeRow> = many_users
        .iter()
        .take(150)
        .map(|row| ChangeRow {
            kind: ObjectKind::Group,
            related: Some(row.id),
            link_kind: Some(LinkKind::Member),
            ..change(admins.id, ChangeOp::LinkAdded)
        })
        .collect();
    assert_eq!(tx.append_changes(&changes).await.expect("append many"), before + 150);
    assert_eq!(tx.append_change(&change(ada.id, ChangeOp::Upsert)).await.expect("append one"), before + 151);
    // A few entries at once (a group commit's), some without a related object.
    let few = vec![
        ChangeRow { kind: ObjectKind::Group, ..change(sales.id, ChangeOp::Upsert) },
        ChangeRow {
            kind: ObjectKind::Group,
            related: Some(eve.id),
            link_kind: Some(LinkKind::Member),
            ..change(sales.id, ChangeOp::LinkRemoved)
        },
        ChangeRow { kind: ObjectKind::Group, ..change(admins.id, ChangeOp::SoftDelete) },
    ];
    assert_eq!(tx.append_changes(&few).await.expect("append a few"), before + 154);
    tx.commit().await.expect("commit");
    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin");
    let read = tx.read_changes(ObjectKind::Group, before, 1000).await.expect("read");
    let expected: Vec<ChangeRow> = changes
        .iter()
        .enumerate()
        .map(|(idx, row)| ChangeRow { seq: before + 1 + idx as i64, ..row.clone() })
        .chain(few.iter().enumerate().map(|(idx, row)| ChangeRow { seq: before + 152 + idx as i64, ..row.clone() }))
        .collect();
    assert_eq!(read, expected, "in order, with consecutive sequence numbers");
    drop(tx);

    let mut tx = store.begin(TenantId::new_random(), TxMode::Write).await.expect("begin");
    assert!(matches!(tx.lock_tenant().await, Err(StoreError::NotFound { .. })), "an unknown tenant is not found");
    drop(tx);
    let mut tx = store.begin(TenantId::new_random(), TxMode::Write).await.expect("begin");
    assert!(
        matches!(tx.append_change(&change(ada.id, ChangeOp::Upsert)).await, Err(StoreError::NotFound { .. })),
        "an unknown tenant's change log is not found"
    );
    assert!(
        matches!(tx.append_changes(&few).await, Err(StoreError::NotFound { .. })),
        "nor is it for a few entries at once"
    );
}

/// `live_links_from_many` keeps only links to live objects; `get_object_with_live_links` reads an object (deleted
/// or not) with them, scoped by tenant and link kind.
pub async fn live_links_and_an_object_with_them(store: &dyn Store) {
    let tenant = new_tenant(store, "livelinks").await;
    let other = new_tenant(store, "livelinksother").await;
    let ada = user_row("ada@livelinks.example", "Ada");
    let bob = user_row("bob@livelinks.example", "Bob");
    let cat = user_row("cat@livelinks.example", "Cat");
    let dan = ObjectRow { deleted_at: Some(at(5)), ..user_row("dan@livelinks.example", "Dan") };
    let eve = user_row("eve@livelinks.example", "Eve");
    let team = ObjectRow {
        kind: ObjectKind::Group,
        upn: None,
        data: "{}".to_owned(),
        ..user_row("team@livelinks.example", "Team")
    };
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    for row in [&ada, &bob, &cat, &dan, &eve, &team] {
        tx.insert_object(row).await.expect("insert");
    }
    // Ada has three managers, one of them deleted; Dan (deleted) manages Eve; Team has Ada as a member.
    for (from, to) in [(&ada, &cat), (&ada, &bob), (&ada, &dan), (&eve, &dan)] {
        tx.add_link(LinkKind::Manager, from.id, to.id).await.expect("manager");
    }
    tx.add_link(LinkKind::Member, team.id, ada.id).await.expect("member");
    tx.commit().await.expect("commit");

    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin");
    let mut live = vec![bob.id, cat.id];
    live.sort();
    let unknown = ObjectId::new_time_ordered();
    let found = tx.live_links_from_many(LinkKind::Manager, &[eve.id, ada.id, unknown]).await.expect("live links");
    assert_eq!(found, live.iter().map(|to| (ada.id, *to)).collect::<Vec<_>>(), "live targets only, in order");
    assert!(tx.live_links_from_many(LinkKind::Manager, &[]).await.expect("none asked").is_empty());
    assert_eq!(tx.live_links_from_many(LinkKind::Member, &[team.id]).await.expect("members"), vec![(team.id, ada.id)]);
    let many: Vec<ObjectId> = (0..1200).map(|_| ObjectId::new_time_ordered()).chain([ada.id]).collect();
    assert_eq!(
        tx.live_links_from_many(LinkKind::Manager, &many).await.expect("more ids than one statement binds").len(),
        2
    );

    let read = tx.get_object_with_live_links(ada.id, LinkKind::Manager).await.expect("ada");
    assert_eq!(read, Some((ada.clone(), live.clone())), "the row with its live managers in id order");
    let read = tx.get_object_with_live_links(eve.id, LinkKind::Manager).await.expect("eve");
    assert_eq!(read, Some((eve.clone(), vec![])), "a deleted manager is left out");
    let read = tx.get_object_with_live_links(dan.id, LinkKind::Manager).await.expect("dan");
    assert_eq!(read, Some((dan.clone(), vec![])), "a deleted object is read too");
    let read = tx.get_object_with_live_links(team.id, LinkKind::Member).await.expect("team");
    assert_eq!(read, Some((team.clone(), vec![ada.id])), "links of the kind asked for");
    let read = tx.get_object_with_live_links(team.id, LinkKind::Manager).await.expect("team's managers");
    assert_eq!(read, Some((team.clone(), vec![])));
    assert_eq!(tx.get_object_with_live_links(unknown, LinkKind::Manager).await.expect("unknown"), None);
    drop(tx);

    let mut tx = store.begin(other, TxMode::Read).await.expect("begin");
    assert_eq!(tx.get_object_with_live_links(ada.id, LinkKind::Manager).await.expect("other tenant"), None);
    assert!(tx.live_links_from_many(LinkKind::Manager, &[ada.id]).await.expect("other tenant").is_empty());
}

fn change(object_id: ObjectId, op: ChangeOp) -> ChangeRow {
    ChangeRow { seq: 0, object_id, kind: ObjectKind::User, op, related: None, link_kind: None, at: at(0) }
}

pub async fn change_log_sequences_and_pruning(store: &dyn Store) {
    let tenant = new_tenant(store, "changes").await;
    let other = new_tenant(store, "changesother").await;
    let ids: Vec<ObjectId> = (0..5).map(|_| ObjectId::new_time_ordered()).collect();
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    assert_eq!(tx.last_change_seq().await.expect("seq"), 0);
    let mut seqs = Vec::new();
    for (idx, id) in ids.iter().enumerate() {
        let mut row = change(*id, ChangeOp::Upsert);
        row.at = at(idx as i64 * 100);
        seqs.push(tx.append_change(&row).await.expect("append"));
    }
    let group_change = ChangeRow {
        kind: ObjectKind::Group,
        op: ChangeOp::LinkAdded,
        related: Some(ids[0]),
        link_kind: Some(LinkKind::Member),
        at: at(500),
        ..change(ObjectId::new_time_ordered(), ChangeOp::LinkAdded)
    };
    let group_seq = tx.append_change(&group_change).await.expect("append group change");
    tx.commit().await.expect("commit");
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "sequence numbers increase: {seqs:?}");

    let mut tx = store.begin(other, TxMode::Write).await.expect("begin");
    assert_eq!(tx.last_change_seq().await.expect("seq"), 0, "each tenant has its own log");
    assert!(tx.read_changes(ObjectKind::User, 0, 100).await.expect("read").is_empty());
    tx.append_change(&change(ObjectId::new_time_ordered(), ChangeOp::Upsert)).await.expect("append");
    tx.commit().await.expect("commit");

    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    assert_eq!(tx.last_change_seq().await.expect("seq"), group_seq);
    let users = tx.read_changes(ObjectKind::User, seqs[1], 2).await.expect("read");
    assert_eq!(users.iter().map(|row| row.object_id).collect::<Vec<_>>(), vec![ids[2], ids[3]]);
    assert_eq!(users[0].seq, seqs[2]);
    let groups = tx.read_changes(ObjectKind::Group, 0, 10).await.expect("read groups");
    assert_eq!(groups, vec![ChangeRow { seq: group_seq, ..group_change }]);

    assert_eq!(tx.change_horizon().await.expect("horizon"), 0);
    assert_eq!(tx.prune_changes(at(150)).await.expect("prune"), 2, "changes at 0 and 100 are older than 150");
    assert_eq!(tx.change_horizon().await.expect("horizon"), seqs[1]);
    let rest = tx.read_changes(ObjectKind::User, 0, 100).await.expect("read");
    assert_eq!(rest.first().map(|row| row.seq), Some(seqs[2]));
    tx.commit().await.expect("commit");
}

pub async fn settings_keep_the_first_value(store: &dyn Store) {
    assert_eq!(store.get_or_insert_setting("k", "first").await.expect("insert"), "first");
    assert_eq!(store.get_or_insert_setting("k", "second").await.expect("get"), "first");
}

/// A user whose SCIM client wrote `user_name` (stored in the object's JSON, as the directory does).
fn scim_user(upn: &str, user_name: &str) -> ObjectRow {
    ObjectRow { data: format!(r#"{{"userPrincipalName":"{upn}","scimUserName":"{user_name}"}}"#), ..user_row(upn, upn) }
}

pub async fn users_are_found_by_scim_user_name(store: &dyn Store) {
    let tenant_a = new_tenant(store, "scimnamea").await;
    let tenant_b = new_tenant(store, "scimnameb").await;
    let written = scim_user("x1@scimnamea.example", "Ada.Lovelace@Partner.example");
    let plain = user_row("Bob@scimnamea.example", "Bob");
    let deleted = ObjectRow { deleted_at: Some(at(30)), ..scim_user("x2@scimnamea.example", "gone@partner.example") };
    let mut tx = store.begin(tenant_a, TxMode::Write).await.expect("begin");
    for row in [&written, &plain, &deleted] {
        tx.insert_object(row).await.expect("insert");
    }
    let ids = |rows: Vec<ObjectRow>| rows.into_iter().map(|row| row.id).collect::<Vec<_>>();
    // What the SCIM client wrote, ignoring ASCII case; not the userPrincipalName it was given.
    let found = tx.find_users_by_scim_user_name("ada.lovelace@partner.EXAMPLE").await.expect("find");
    assert_eq!(found, vec![written.clone()], "the row comes back as stored");
    assert_eq!(ids(tx.find_users_by_scim_user_name("x1@scimnamea.example").await.expect("find")), []);
    // Without a SCIM userName, the userPrincipalName is the userName.
    assert_eq!(ids(tx.find_users_by_scim_user_name("bob@SCIMNAMEA.example").await.expect("find")), [plain.id]);
    // Deleted users are not found.
    assert_eq!(ids(tx.find_users_by_scim_user_name("gone@partner.example").await.expect("find")), []);
    // An update is seen at once.
    let renamed = scim_user("x1@scimnamea.example", "countess@partner.example");
    let renamed = ObjectRow { id: written.id, ..renamed };
    tx.update_object(&renamed).await.expect("update");
    assert_eq!(ids(tx.find_users_by_scim_user_name("countess@partner.example").await.expect("find")), [written.id]);
    assert_eq!(ids(tx.find_users_by_scim_user_name("ada.lovelace@partner.example").await.expect("find")), []);
    tx.commit().await.expect("commit");

    // Per tenant.
    let mut tx = store.begin(tenant_b, TxMode::Read).await.expect("begin");
    assert_eq!(ids(tx.find_users_by_scim_user_name("countess@partner.example").await.expect("find")), []);
    tx.commit().await.expect("commit");
}

fn anchored_user(upn: &str, anchor: &str) -> ObjectRow {
    ObjectRow { anchor: Some(anchor.to_owned()), ..user_row(upn, upn) }
}

pub async fn anchors_are_unique_per_tenant_ignoring_case(store: &dyn Store) {
    let tenant_a = new_tenant(store, "anchora").await;
    let tenant_b = new_tenant(store, "anchorb").await;
    let ada = anchored_user("ada@anchora.example", "https://sts.example/Issuer/Ada-1");
    let mut bob = user_row("bob@anchora.example", "Bob");
    let mut tx = store.begin(tenant_a, TxMode::Write).await.expect("begin");
    tx.insert_object(&ada).await.expect("insert anchored user");
    tx.insert_object(&bob).await.expect("insert user without anchor");
    tx.insert_object(&user_row("carol@anchora.example", "Carol")).await.expect("many users may have no anchor");

    let found =
        tx.find_by_anchor("HTTPS://STS.EXAMPLE/issuer/ada-1").await.expect("find").expect("found ignoring case");
    assert_eq!(found, ada, "the anchor is stored as written");
    assert_eq!(tx.find_by_anchor("https://sts.example/Issuer/Ada-2").await.expect("find"), None);

    let clash = anchored_user("ada2@anchora.example", "https://STS.example/issuer/ADA-1");
    let err = tx.insert_object(&clash).await.expect_err("duplicate anchor");
    assert!(matches!(err, StoreError::Conflict { what: "anchor" }), "anchor clash names the anchor, got {err:?}");
    let upn_clash = anchored_user("ADA@anchora.example", "https://sts.example/Issuer/Other");
    let err = tx.insert_object(&upn_clash).await.expect_err("duplicate upn");
    assert!(
        matches!(err, StoreError::Conflict { what: "userPrincipalName" }),
        "a UPN clash is not an anchor clash, got {err:?}"
    );

    // Updates: taking another object's anchor clashes; setting, changing and clearing one are seen by lookups.
    bob.anchor = Some("https://sts.example/issuer/ada-1".to_owned());
    let err = tx.update_object(&bob).await.expect_err("anchor taken");
    assert!(matches!(err, StoreError::Conflict { what: "anchor" }), "got {err:?}");
    bob.anchor = Some("https://sts.example/Issuer/Bob-1".to_owned());
    tx.update_object(&bob).await.expect("set an anchor");
    assert_eq!(
        tx.find_by_anchor("https://sts.example/issuer/bob-1").await.expect("find").map(|row| row.id),
        Some(bob.id)
    );
    let ada_cleared = ObjectRow { anchor: None, ..ada.clone() };
    tx.update_object(&ada_cleared).await.expect("clear an anchor");
    assert_eq!(tx.find_by_anchor("https://sts.example/Issuer/Ada-1").await.expect("find"), None);
    tx.update_object(&ada).await.expect("set it again");
    tx.commit().await.expect("the transaction survives the failed writes");

    // Soft-deleted objects keep their anchor and are found by it; reads return the column.
    let mut tx = store.begin(tenant_a, TxMode::Write).await.expect("begin");
    let deleted_bob = ObjectRow { deleted_at: Some(at(30)), ..bob.clone() };
    tx.update_object(&deleted_bob).await.expect("soft delete");
    assert_eq!(tx.find_by_anchor("HTTPS://sts.example/Issuer/Bob-1").await.expect("find"), Some(deleted_bob.clone()));
    assert_eq!(tx.get_object(ada.id).await.expect("get"), Some(ada.clone()));
    let spec =
        ScanSpec { deleted: true, order: ScanOrder::Id, descending: false, after: None, limit: 10, within: None };
    assert_eq!(tx.scan_objects(ObjectKind::User, &spec).await.expect("scan"), vec![deleted_bob.clone()]);
    tx.commit().await.expect("commit");

    // Anchors are per tenant: another tenant neither sees nor blocks them.
    let mut tx = store.begin(tenant_b, TxMode::Write).await.expect("begin");
    assert_eq!(tx.find_by_anchor("https://sts.example/Issuer/Ada-1").await.expect("find"), None);
    let twin = anchored_user("ada@anchorb.example", "https://sts.example/Issuer/Ada-1");
    tx.insert_object(&twin).await.expect("same anchor in another tenant");
    tx.commit().await.expect("commit");
    let mut tx = store.begin(tenant_a, TxMode::Read).await.expect("begin");
    assert_eq!(
        tx.find_by_anchor("https://sts.example/Issuer/Ada-1").await.expect("find").map(|row| row.id),
        Some(ada.id)
    );
}

fn doc(collection: &str, key: &str, data: &str, seconds: i64) -> DocRow {
    DocRow { collection: collection.to_owned(), key: key.to_owned(), data: data.to_owned(), updated_at: at(seconds) }
}

pub async fn documents_crud_order_and_isolation(store: &dyn Store) {
    let tenant_a = new_tenant(store, "docsa").await;
    let tenant_b = new_tenant(store, "docsb").await;
    let partner = doc("partners", "contoso", r#"{"tenantId":"c"}"#, 1);
    let mut tx = store.begin(tenant_a, TxMode::Write).await.expect("begin");
    assert_eq!(tx.get_doc("partners", "contoso").await.expect("get"), None);
    tx.insert_doc(&partner).await.expect("insert doc");
    assert_eq!(tx.get_doc("partners", "contoso").await.expect("get"), Some(partner.clone()));
    assert_eq!(tx.get_doc("partners", "Contoso").await.expect("get"), None, "keys are case-sensitive");
    assert_eq!(tx.get_doc("connections", "contoso").await.expect("get"), None, "collections are separate");
    let err = tx.insert_doc(&doc("partners", "contoso", "{}", 2)).await.expect_err("duplicate key");
    assert!(matches!(err, StoreError::Conflict { what: "document" }), "got {err:?}");
    let replaced = doc("partners", "contoso", r#"{"tenantId":"d"}"#, 3);
    tx.put_doc(&replaced).await.expect("put replaces");
    assert_eq!(tx.get_doc("partners", "contoso").await.expect("get"), Some(replaced.clone()));
    let fabrikam = doc("partners", "fabrikam", "{}", 4);
    tx.put_doc(&fabrikam).await.expect("put inserts");
    assert_eq!(tx.get_doc("partners", "fabrikam").await.expect("get"), Some(fabrikam.clone()));
    tx.insert_doc(&doc("connections", "contoso", "{}", 5)).await.expect("same key in another collection");
    tx.commit().await.expect("the transaction survives the failed insert");

    // Keys list in bytewise order (uppercase before lowercase, ASCII before non-ASCII), a page at a time.
    let keys = ["b", "B", "a", "a-1", "\u{e4}", "Z", "aa", "a_1", "10", "9"];
    let mut tx = store.begin(tenant_a, TxMode::Write).await.expect("begin");
    for (idx, key) in keys.iter().enumerate() {
        tx.insert_doc(&doc("jobs", key, &format!(r#"{{"n":{idx}}}"#), idx as i64)).await.expect("insert");
    }
    let mut expected: Vec<&str> = keys.to_vec();
    expected.sort_by(|left, right| left.as_bytes().cmp(right.as_bytes()));
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = tx.list_docs("jobs", after.as_deref(), 3).await.expect("list");
        assert!(page.len() <= 3, "a page holds at most limit documents");
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        seen.extend(page.iter().map(|row| row.key.clone()));
    }
    assert_eq!(seen, expected, "every document once, in bytewise key order");
    // Key "10" sorts first and was inserted ninth: the listed row carries its data and time.
    assert_eq!(tx.list_docs("jobs", None, 1).await.expect("list"), vec![doc("jobs", "10", r#"{"n":8}"#, 8)]);
    assert!(tx.list_docs("jobs", None, 0).await.expect("list").is_empty());

    assert!(tx.delete_doc("jobs", "B").await.expect("delete"));
    assert!(!tx.delete_doc("jobs", "B").await.expect("delete twice"), "second delete finds nothing");
    assert_eq!(tx.get_doc("jobs", "B").await.expect("get"), None);
    assert_eq!(tx.delete_collection("jobs").await.expect("delete collection"), keys.len() as u64 - 1);
    assert!(tx.list_docs("jobs", None, 100).await.expect("list").is_empty());
    assert_eq!(tx.list_docs("partners", None, 100).await.expect("list"), vec![replaced.clone(), fabrikam.clone()]);
    assert_eq!(tx.delete_collection("jobs").await.expect("delete empty collection"), 0);
    tx.commit().await.expect("commit");

    // Another tenant sees none of it and may use the same keys; its deletes leave the first tenant's alone.
    let mut tx = store.begin(tenant_b, TxMode::Write).await.expect("begin");
    assert_eq!(tx.get_doc("partners", "contoso").await.expect("get"), None);
    assert!(tx.list_docs("partners", None, 100).await.expect("list").is_empty());
    assert!(!tx.delete_doc("partners", "contoso").await.expect("delete"), "cannot delete another tenant's doc");
    let other = doc("partners", "contoso", r#"{"tenantId":"b"}"#, 6);
    tx.insert_doc(&other).await.expect("same key in another tenant");
    tx.commit().await.expect("commit");
    let mut tx = store.begin(tenant_b, TxMode::Write).await.expect("begin");
    assert_eq!(tx.delete_collection("connections").await.expect("delete collection"), 0);
    tx.commit().await.expect("commit");
    let mut tx = store.begin(tenant_a, TxMode::Read).await.expect("begin");
    assert_eq!(tx.get_doc("partners", "contoso").await.expect("get"), Some(replaced.clone()));
    assert_eq!(tx.list_docs("connections", None, 100).await.expect("list").len(), 1);
    drop(tx);

    // The store-level listing spans tenants, ordered by tenant id then key.
    let all = store.list_docs_all_tenants("partners").await.expect("list all tenants");
    let mut expected_all = vec![(tenant_a, replaced), (tenant_a, fabrikam), (tenant_b, other)];
    expected_all.sort_by(|left, right| (left.0.to_string(), &left.1.key).cmp(&(right.0.to_string(), &right.1.key)));
    let ours: Vec<_> = all.into_iter().filter(|(tenant, _)| *tenant == tenant_a || *tenant == tenant_b).collect();
    assert_eq!(ours, expected_all);
    assert!(store.list_docs_all_tenants("nothingHere").await.expect("list all").is_empty());
}

fn log_row(
    job_id: &str,
    action: &str,
    status: &str,
    source_id: Option<&str>,
    target_id: Option<&str>,
    seconds: i64,
) -> LogRow {
    LogRow {
        seq: 0,
        id: format!("event-{job_id}-{seconds}"),
        job_id: job_id.to_owned(),
        cycle_id: format!("cycle-{}", seconds / 100),
        at: at(seconds),
        action: action.to_owned(),
        status: status.to_owned(),
        source_id: source_id.map(str::to_owned),
        target_id: target_id.map(str::to_owned),
        data: format!(r#"{{"activityDateTime":{seconds}}}"#),
        stored: None,
    }
}

fn all_logs() -> LogQuery {
    LogQuery { limit: 1000, ..LogQuery::default() }
}

pub async fn provisioning_logs_filter_page_and_prune(store: &dyn Store) {
    let tenant = new_tenant(store, "logsa").await;
    let other = new_tenant(store, "logsb").await;
    let entries = [
        log_row("job1", "create", "success", Some("s1"), Some("t1"), 0),
        log_row("job1", "update", "failure", Some("s2"), None, 10),
        log_row("job2", "create", "skipped", Some("s1"), Some("t3"), 20),
        log_row("job1", "delete", "success", None, Some("t1"), 30),
        log_row("job2", "disable", "warning", Some("s3"), Some("t1"), 40),
        log_row("job1", "update", "success", Some("s1"), Some("t1"), 50),
    ];
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    let mut stored = Vec::new();
    for entry in &entries {
        let seq = tx.append_log(entry).await.expect("append log");
        stored.push(LogRow { seq, ..entry.clone() });
    }
    tx.commit().await.expect("commit");
    assert!(stored.windows(2).all(|pair| pair[0].seq < pair[1].seq), "sequence numbers increase");
    let newest_first: Vec<LogRow> = stored.iter().rev().cloned().collect();

    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin");
    assert_eq!(tx.read_logs(&all_logs()).await.expect("read"), newest_first, "newest first, every column kept");
    let pick = |indexes: &[usize]| -> Vec<i64> { indexes.iter().map(|idx| stored[*idx].seq).collect() };
    let filtered = [
        ("job_id", LogQuery { job_id: Some("job1".to_owned()), ..all_logs() }, pick(&[5, 3, 1, 0])),
        ("job_id exact", LogQuery { job_id: Some("JOB1".to_owned()), ..all_logs() }, vec![]),
        ("action", LogQuery { action: Some("create".to_owned()), ..all_logs() }, pick(&[2, 0])),
        ("status", LogQuery { status: Some("success".to_owned()), ..all_logs() }, pick(&[5, 3, 0])),
        ("source_id", LogQuery { source_id: Some("s1".to_owned()), ..all_logs() }, pick(&[5, 2, 0])),
        ("target_id", LogQuery { target_id: Some("t1".to_owned()), ..all_logs() }, pick(&[5, 4, 3, 0])),
        ("since", LogQuery { since: Some(at(30)), ..all_logs() }, pick(&[5, 4, 3])),
        ("until", LogQuery { until: Some(at(20)), ..all_logs() }, pick(&[1, 0])),
        ("since and until", LogQuery { since: Some(at(10)), until: Some(at(40)), ..all_logs() }, pick(&[3, 2, 1])),
        ("before_seq", LogQuery { before_seq: Some(stored[2].seq), ..all_logs() }, pick(&[1, 0])),
        (
            "all together",
            LogQuery {
                job_id: Some("job1".to_owned()),
                action: Some("update".to_owned()),
                status: Some("success".to_owned()),
                source_id: Some("s1".to_owned()),
                target_id: Some("t1".to_owned()),
                since: Some(at(0)),
                until: Some(at(51)),
                before_seq: Some(stored[5].seq + 1),
                limit: 10,
            },
            pick(&[5]),
        ),
        (
            "filters AND",
            LogQuery { job_id: Some("job2".to_owned()), target_id: Some("t1".to_owned()), ..all_logs() },
            pick(&[4]),
        ),
        ("limit", LogQuery { limit: 2, ..all_logs() }, pick(&[5, 4])),
        ("limit 0", LogQuery { limit: 0, ..all_logs() }, vec![]),
    ];
    for (name, query, expected) in filtered {
        let seqs: Vec<i64> = tx.read_logs(&query).await.expect("read").iter().map(|row| row.seq).collect();
        assert_eq!(seqs, expected, "filter {name}");
    }

    // Paging: each page continues below the last seq of the previous one.
    let mut query = LogQuery { job_id: Some("job1".to_owned()), limit: 3, ..LogQuery::default() };
    let mut pages = Vec::new();
    loop {
        let page = tx.read_logs(&query).await.expect("read page");
        let Some(last) = page.last() else { break };
        query.before_seq = Some(last.seq);
        pages.push(page.iter().map(|row| row.seq).collect::<Vec<_>>());
    }
    assert_eq!(pages, vec![pick(&[5, 3, 1]), pick(&[0])]);
    drop(tx);

    // Another tenant has its own log and numbering.
    let mut tx = store.begin(other, TxMode::Write).await.expect("begin");
    assert!(tx.read_logs(&all_logs()).await.expect("read").is_empty(), "tenant B sees none of A's entries");
    let other_seq = tx.append_log(&log_row("job1", "create", "success", Some("s1"), None, 0)).await.expect("append");
    assert_eq!(tx.prune_logs(at(1_000)).await.expect("prune"), 1, "prunes its own entry only");
    tx.commit().await.expect("commit");
    assert_eq!(other_seq, 1, "each tenant numbers its own entries");

    // Retention deletes what is older than the cut-off; numbers of pruned entries are not reused.
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    assert_eq!(tx.prune_logs(at(30)).await.expect("prune"), 3, "entries at 0, 10 and 20 are older than 30");
    assert_eq!(tx.read_logs(&all_logs()).await.expect("read"), newest_first[..3].to_vec());
    assert_eq!(tx.prune_logs(at(1_000)).await.expect("prune all"), 3);
    assert!(tx.read_logs(&all_logs()).await.expect("read").is_empty());
    let next = tx.append_log(&log_row("job1", "create", "success", None, None, 60)).await.expect("append");
    assert!(next > stored[5].seq, "sequence numbers are never reused: {next} after {}", stored[5].seq);
    tx.commit().await.expect("commit");
}

/// The collection [`leases_claim_renew_fence_and_release`] keeps its jobs in.
pub const LEASE_TEST_JOBS: &str = "leasetestjobs";

fn claim_at<'a>(holder: &'a str, seconds: i64, ttl: i64, max: u32) -> LeaseClaim<'a> {
    LeaseClaim { holder, jobs_collection: LEASE_TEST_JOBS, now: at(seconds), expires_at: at(seconds + ttl), max }
}

fn lease_keys(leases: &[LeaseRow]) -> Vec<(String, Option<String>, i64)> {
    let mut keys: Vec<_> =
        leases.iter().map(|lease| (lease.job_id.clone(), lease.holder.clone(), lease.token)).collect();
    keys.sort();
    keys
}

/// Leases: claims take only free or expired leases of existing jobs and bump the fencing token; renewals keep it;
/// an expired lease is lost to its holder; releases free leases at once; heartbeats count live holders.
pub async fn leases_claim_renew_fence_and_release(store: &dyn Store) {
    let tenant = new_tenant(store, "leases").await;
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    for job in ["job1", "job2", "job3"] {
        tx.put_doc(&doc(LEASE_TEST_JOBS, job, "{}", 0)).await.expect("put job");
    }
    tx.commit().await.expect("commit");

    let census = |holders, jobs, fewest_held| LeaseCensus { holders, jobs, fewest_held };
    assert_eq!(store.heartbeat("a", LEASE_TEST_JOBS, at(0), at(30)).await.expect("heartbeat a"), census(1, 3, 0));
    let two = store.heartbeat("b", LEASE_TEST_JOBS, at(0), at(30)).await.expect("heartbeat b");
    assert_eq!(two, census(2, 3, 0), "two live holders, three jobs, none held yet");

    let first = store.claim_leases(&claim_at("a", 0, 30, 2)).await.expect("claim a");
    assert_eq!(first.len(), 2, "a claims as many as it asks for");
    assert!(
        first
            .iter()
            .all(|lease| lease.holder.as_deref() == Some("a") && lease.token == 1 && lease.expires_at == at(30))
    );
    assert!(first.iter().all(|lease| lease.tenant == tenant));
    let half = store.heartbeat("a", LEASE_TEST_JOBS, at(0), at(30)).await.expect("heartbeat a");
    assert_eq!(half, census(2, 3, 0), "b holds nothing yet");
    let second = store.claim_leases(&claim_at("b", 0, 30, 5)).await.expect("claim b");
    assert_eq!(lease_keys(&second), vec![("job3".to_owned(), Some("b".to_owned()), 1)], "b gets only the free one");
    let spread = store.heartbeat("b", LEASE_TEST_JOBS, at(1), at(31)).await.expect("heartbeat b");
    assert_eq!(spread, census(2, 3, 1), "a holds two, b one");
    assert!(store.claim_leases(&claim_at("c", 10, 30, 5)).await.expect("claim c").is_empty(), "nothing is free");

    let renewed = store.renew_leases("a", LEASE_TEST_JOBS, at(20), at(50)).await.expect("renew a");
    assert_eq!(lease_keys(&renewed), lease_keys(&first), "a renewal keeps the tokens");
    assert!(renewed.iter().all(|lease| lease.expires_at == at(50)));

    // b's lease expired at 30: c takes it with a new token, and b's renewal finds it lost.
    let taken = store.claim_leases(&claim_at("c", 40, 30, 5)).await.expect("claim c later");
    assert_eq!(lease_keys(&taken), vec![("job3".to_owned(), Some("c".to_owned()), 2)]);
    assert!(
        store.renew_leases("b", LEASE_TEST_JOBS, at(41), at(71)).await.expect("renew b").is_empty(),
        "b's lease is lost"
    );

    // The fencing check inside a write of the job's own tenant sees the new token; a read sees the new holder too.
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    assert_eq!(tx.share_lease(tenant, "job3").await.expect("share lease"), Some(2));
    assert_eq!(tx.share_lease(tenant, "no-such-job").await.expect("share lease"), None);
    tx.commit().await.expect("commit");
    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin read");
    let lease = tx.get_lease("job3").await.expect("get lease").expect("job3 has a lease");
    assert_eq!((lease.holder.as_deref(), lease.token, lease.expires_at), (Some("c"), 2, at(30 + 40)));
    drop(tx);
    let other = new_tenant(store, "leases2").await;
    let mut tx = store.begin(other, TxMode::Read).await.expect("begin read");
    assert_eq!(tx.get_lease("job3").await.expect("get lease"), None, "leases are scoped by tenant");
    drop(tx);
    // A sync job's target write checks the job's lease from the target tenant's transaction.
    let mut tx = store.begin(other, TxMode::Write).await.expect("begin target write");
    assert_eq!(tx.share_lease(tenant, "job3").await.expect("share lease"), Some(2), "the job's tenant is named");
    assert_eq!(tx.share_lease(other, "job3").await.expect("share lease"), None, "not a job of the target");
    assert_eq!(tx.share_lease(tenant, "no-such-job").await.expect("share lease"), None);
    tx.commit().await.expect("commit");

    // Releasing frees at once: the next claim takes it with a new token even though it had not expired.
    let released = store.release_leases("c", Some(&[(tenant, "job3".to_owned())])).await.expect("release c");
    assert_eq!(released, 1);
    let again = store.claim_leases(&claim_at("a", 42, 30, 5)).await.expect("claim a again");
    assert_eq!(lease_keys(&again), vec![("job3".to_owned(), Some("a".to_owned()), 3)]);

    // A deleted job's lease is never claimed.
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    assert!(tx.delete_doc(LEASE_TEST_JOBS, "job1").await.expect("delete job"));
    tx.commit().await.expect("commit");
    let renewed = store.renew_leases("a", LEASE_TEST_JOBS, at(42), at(72)).await.expect("renew a");
    let renewed_jobs: Vec<String> = lease_keys(&renewed).into_iter().map(|(job, _, _)| job).collect();
    assert_eq!(renewed_jobs, ["job2", "job3"], "the deleted job's lease is not renewed");
    assert_eq!(store.release_leases("a", None).await.expect("release all of a"), 3, "a held job1, job2 and job3");
    let after_release = store.claim_leases(&claim_at("d", 43, 30, 5)).await.expect("claim d");
    assert_eq!(
        lease_keys(&after_release),
        vec![("job2".to_owned(), Some("d".to_owned()), 2), ("job3".to_owned(), Some("d".to_owned()), 4)]
    );
    // a released its heartbeat and b's expired: d is alone.
    assert_eq!(store.heartbeat("d", LEASE_TEST_JOBS, at(43), at(73)).await.expect("heartbeat d"), census(1, 2, 2));
}

/// The batch operations a page commit uses write what the single ones would: `append_logs` takes consecutive
/// numbers after a single append and keeps every column, across statement chunks (entries given their stored form
/// ahead by `prepare_logs` or not read back the same); `put_docs` keeps the last of a key given twice and updates
/// existing documents; `existing_doc_keys` finds exactly the existing keys, across chunks.
pub async fn batch_writes_match_single_writes(store: &dyn Store) {
    let tenant = new_tenant(store, "batches").await;
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    let first = tx.append_log(&log_row("job1", "create", "success", Some("s0"), Some("t0"), 0)).await.expect("append");
    let batch: Vec<LogRow> = (1..=1200)
        .map(|idx| {
            let status = if idx % 7 == 0 { "failure" } else { "success" };
            log_row("job1", "create", status, Some(&format!("s{idx}")), (idx % 3 != 0).then_some("t"), idx)
        })
        .collect();
    // The second half made ready before the transaction, as a page commit does.
    let mut appended = batch.clone();
    store.prepare_logs(&mut appended[600..]);
    tx.append_logs(&appended).await.expect("append logs");
    tx.append_logs(&[]).await.expect("an empty batch is fine");
    let after = tx.append_log(&log_row("job1", "update", "success", None, None, 5000)).await.expect("append");
    assert_eq!(after, first + 1201, "the batch took the 1,200 numbers in between");

    let docs: Vec<DocRow> = (0..1200).map(|idx| doc("batchdocs", &format!("k{idx:04}"), "{\"v\":1}", idx)).collect();
    tx.put_docs(&docs).await.expect("put docs");
    let again = [doc("batchdocs", "k0001", "{\"v\":2}", 1), doc("batchdocs", "k0001", "{\"v\":3}", 2)];
    tx.put_docs(&again).await.expect("put docs again");

    let taken = anchored_user("taken@batches.example", "issuer/one");
    tx.insert_object(&taken).await.expect("insert");
    let rows = vec![
        user_row("fresh@batches.example", "Fresh"),
        user_row("TAKEN@batches.example", "Same UPN, other case"),
        anchored_user("other@batches.example", "ISSUER/ONE"),
        user_row("twice@batches.example", "First of two"),
        user_row("twice@batches.example", "Second of two"),
        ObjectRow { upn: Some("sameid@batches.example".to_owned()), ..taken.clone() },
    ];
    let inserted = tx.insert_objects_skipping_conflicts(&rows).await.expect("insert objects");
    assert_eq!(inserted, [true, false, false, true, false, false]);
    assert!(tx.insert_objects_skipping_conflicts(&[]).await.expect("no rows").is_empty());
    // The transaction stays usable after the skipped rows, and the skipped ones clash as single inserts do.
    assert!(matches!(tx.insert_object(&rows[1]).await, Err(StoreError::Conflict { .. })));
    let many: Vec<ObjectRow> = (0..1100).map(|idx| user_row(&format!("many{idx}@batches.example"), "Many")).collect();
    assert!(tx.insert_objects_skipping_conflicts(&many).await.expect("insert many").iter().all(|ok| *ok));
    tx.commit().await.expect("commit");
    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin read");
    assert_eq!(tx.get_object(rows[0].id).await.expect("get"), Some(rows[0].clone()));
    assert_eq!(tx.get_object(rows[1].id).await.expect("get"), None);
    assert_eq!(tx.get_object(rows[4].id).await.expect("get"), None);
    assert_eq!(tx.get_object(many[1099].id).await.expect("get"), Some(many[1099].clone()));
    assert_eq!(tx.get_object(taken.id).await.expect("get").and_then(|row| row.upn), taken.upn, "not overwritten");

    // Batched reads answer what the single ones do.
    let mut asked: Vec<ObjectId> = many.iter().map(|row| row.id).collect();
    asked.extend([rows[1].id, ObjectId::new_time_ordered()]);
    let mut got: Vec<ObjectId> = tx.get_objects(&asked).await.expect("get objects").iter().map(|row| row.id).collect();
    got.sort();
    let mut expected: Vec<ObjectId> = many.iter().map(|row| row.id).collect();
    expected.sort();
    assert_eq!(got, expected, "existing ids only, across statement chunks");
    assert_eq!(tx.get_objects(&[many[7].id]).await.expect("get one"), vec![many[7].clone()], "every column kept");
    let anchors = ["ISSUER/one".to_owned(), "issuer/none".to_owned()];
    assert_eq!(tx.find_by_anchors(&anchors).await.expect("find by anchors"), vec![taken.clone()], "ignoring case");
    assert!(tx.get_objects(&[]).await.expect("no ids").is_empty());
    assert!(tx.find_by_anchors(&[]).await.expect("no anchors").is_empty());
    drop(tx);
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    let (boss, other_boss) = (many[0].id, many[1].id);
    let reports: Vec<ObjectId> = many[2..602].iter().map(|row| row.id).collect();
    let pairs: Vec<(ObjectId, ObjectId)> = reports.iter().map(|report| (*report, boss)).collect();
    tx.add_links(LinkKind::Manager, &pairs).await.expect("add manager links");
    tx.add_link(LinkKind::Manager, reports[0], other_boss).await.expect("a second link");
    tx.add_link(LinkKind::Member, reports[1], boss).await.expect("a link of another kind");
    let mut froms = reports.clone();
    froms.push(boss);
    let found = tx.links_from_many(LinkKind::Manager, &froms).await.expect("links from many");
    let mut single = Vec::new();
    for from in &froms {
        single.extend(
            tx.links_from(LinkKind::Manager, *from).await.expect("links from").into_iter().map(|to| (*from, to)),
        );
    }
    single.sort();
    assert_eq!(found, single, "the same pairs as one query per object, sorted");
    assert_eq!(found.len(), 601);
    let to_many = tx.links_to_many(LinkKind::Manager, &[boss, other_boss, reports[5]]).await.expect("links to many");
    let mut single = Vec::new();
    for to in [boss, other_boss, reports[5]] {
        single.extend(tx.links_to(LinkKind::Manager, to).await.expect("links to").into_iter().map(|from| (from, to)));
    }
    single.sort();
    assert_eq!(to_many, single, "the same pairs as one query per object, sorted");
    assert_eq!(to_many.len(), 601);
    assert!(tx.links_from_many(LinkKind::Manager, &[]).await.expect("none").is_empty());
    tx.commit().await.expect("commit");

    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin read");
    let mut logs = tx.read_logs(&LogQuery { limit: 2000, ..LogQuery::default() }).await.expect("read logs");
    logs.reverse();
    assert_eq!(logs.len(), 1202);
    for (idx, entry) in batch.iter().enumerate() {
        assert_eq!(logs[idx + 1], LogRow { seq: first + 1 + idx as i64, ..entry.clone() }, "entry {idx}");
    }
    assert_eq!(tx.get_doc("batchdocs", "k0001").await.expect("get").expect("k0001").data, "{\"v\":3}", "the last wins");
    assert_eq!(tx.get_doc("batchdocs", "k1199").await.expect("get").expect("k1199").data, "{\"v\":1}");
    assert_eq!(tx.list_docs("batchdocs", None, 5000).await.expect("list").len(), 1200);
    let asked: Vec<String> = (1100..1700).map(|idx| format!("k{idx:04}")).chain(["K1100".to_owned()]).collect();
    let found = tx.existing_doc_keys("batchdocs", &asked).await.expect("existing keys");
    let expected: std::collections::HashSet<String> = (1100..1200).map(|idx| format!("k{idx:04}")).collect();
    assert_eq!(found, expected, "keys are exact (case too), across statement chunks");
    assert!(tx.existing_doc_keys("batchdocs", &[]).await.expect("no keys").is_empty());
    assert!(tx.existing_doc_keys("otherdocs", &asked).await.expect("other collection").is_empty());
    let mut got = tx.get_docs("batchdocs", &asked).await.expect("get docs");
    got.sort_by(|left, right| left.key.cmp(&right.key));
    let mut single = Vec::new();
    for key in &asked {
        single.extend(tx.get_doc("batchdocs", key).await.expect("get doc"));
    }
    assert_eq!(got, single, "the same documents as one read per key, every column kept");
    assert_eq!(got.len(), 100);
    assert!(tx.get_docs("batchdocs", &[]).await.expect("no keys").is_empty());
    assert!(tx.get_docs("otherdocs", &asked).await.expect("other collection").is_empty());
}

/// A user as SCIM writes it: userName, optional externalId and display name.
fn scim_user_with(
    upn: &str,
    user_name: Option<&str>,
    external_id: Option<&str>,
    display_name: Option<&str>,
) -> ObjectRow {
    let mut data = format!(r#"{{"userPrincipalName":"{upn}""#);
    if let Some(user_name) = user_name {
        data.push_str(&format!(r#","scimUserName":"{user_name}""#));
    }
    if let Some(external_id) = external_id {
        data.push_str(&format!(r#","scimExternalId":"{external_id}""#));
    }
    data.push('}');
    ObjectRow { data, display_name: display_name.map(str::to_owned), ..user_row(upn, "unused") }
}

pub async fn scim_selects_filter_order_and_page(store: &dyn Store) {
    let tenant = new_tenant(store, "scimselect").await;
    let other = new_tenant(store, "scimselectother").await;
    // Ids are time-ordered, so the rows are in id order as listed.
    let rows = [
        scim_user_with("u0@scimselect.example", Some("Carol@x.example"), Some("EXT-1"), Some("Zed")),
        scim_user_with("alice@scimselect.example", None, Some("ext-1"), Some("alice")),
        scim_user_with("u2@scimselect.example", Some("ALAN@x.example"), None, None),
        scim_user_with("u3@scimselect.example", Some("bob@x.example"), Some("EXT-2"), Some("Alice")),
        scim_user_with("u4@scimselect.example", Some("al@y.example"), None, Some("")),
        ObjectRow {
            deleted_at: Some(at(5)),
            ..scim_user_with("u5@scimselect.example", Some("albert@x.example"), Some("EXT-3"), Some("Al"))
        },
    ];
    let id = |idx: usize| rows[idx].id;
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    for row in &rows {
        tx.insert_object(row).await.expect("insert");
    }
    tx.insert_object(&ObjectRow {
        id: ObjectId::new_time_ordered(),
        kind: ObjectKind::Group,
        upn: None,
        display_name: Some("Alpha".to_owned()),
        data: "{}".to_owned(),
        deleted_at: None,
        anchor: None,
    })
    .await
    .expect("insert group");
    tx.commit().await.expect("commit");
    let mut tx = store.begin(other, TxMode::Write).await.expect("begin");
    tx.insert_object(&scim_user_with("al@other.example", Some("al@x.example"), Some("EXT-1"), Some("Al")))
        .await
        .expect("insert in another tenant");
    tx.commit().await.expect("commit");

    let select = |conditions: Vec<(ScimKey, KeyMatch)>, order: ScimKey, descending: bool| ScimSelect {
        kind: ObjectKind::User,
        conditions,
        order,
        descending,
        after: None,
        offset: 0,
        limit: 100,
    };
    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin");
    let mut ids = async |select: ScimSelect| {
        let found = tx.select_scim(&select).await.expect("select");
        let count = tx.count_scim(select.kind, &select.conditions).await.expect("count");
        (found.into_iter().map(|row| row.id).collect::<Vec<_>>(), count)
    };
    let user_name = |text: &str| vec![(ScimKey::UserName, KeyMatch::StartsWith(text.to_owned()))];

    // Live users of this tenant, by id; the group and the deleted user are not among them.
    let all = ids(select(vec![], ScimKey::Id, false)).await;
    assert_eq!(all, (vec![id(0), id(1), id(2), id(3), id(4)], 5), "every live user by id");
    // userName: what SCIM wrote, else the userPrincipalName, lowercased in ASCII.
    let found = ids(select(vec![(ScimKey::UserName, KeyMatch::Equals("alan@x.example".into()))], ScimKey::Id, false));
    assert_eq!(found.await, (vec![id(2)], 1), "userName eq ignores case");
    let found =
        ids(select(vec![(ScimKey::UserName, KeyMatch::Equals("alice@scimselect.example".into()))], ScimKey::Id, false));
    assert_eq!(found.await, (vec![id(1)], 1), "the userPrincipalName is the userName when SCIM wrote none");
    assert_eq!(ids(select(user_name("al"), ScimKey::Id, false)).await, (vec![id(1), id(2), id(4)], 3), "userName sw");
    assert_eq!(ids(select(user_name("ala"), ScimKey::Id, false)).await, (vec![id(2)], 1), "userName sw, longer");
    assert_eq!(ids(select(user_name(""), ScimKey::Id, false)).await.1, 5, "an empty prefix matches all");
    // externalId is case-exact.
    let external = |op: KeyMatch| vec![(ScimKey::ExternalId, op)];
    assert_eq!(ids(select(external(KeyMatch::Equals("EXT-1".into())), ScimKey::Id, false)).await, (vec![id(0)], 1));
    assert_eq!(
        ids(select(external(KeyMatch::StartsWith("EXT-".into())), ScimKey::Id, false)).await,
        (vec![id(0), id(3)], 2)
    );
    assert_eq!(ids(select(external(KeyMatch::StartsWith("ext".into())), ScimKey::Id, false)).await, (vec![id(1)], 1));
    assert_eq!(ids(select(external(KeyMatch::Empty), ScimKey::Id, false)).await, (vec![id(2), id(4)], 2));
    // Orders: ties by ascending id in both directions.
    let by_name = ids(select(vec![], ScimKey::UserName, false)).await.0;
    assert_eq!(by_name, vec![id(4), id(2), id(1), id(3), id(0)], "by userName");
    let by_name = ids(select(vec![], ScimKey::UserName, true)).await.0;
    assert_eq!(by_name, vec![id(0), id(3), id(1), id(2), id(4)], "by userName, descending");
    let present = vec![(ScimKey::DisplayName, KeyMatch::NotEmpty)];
    let by_display =
        ids(ScimSelect { kind: ObjectKind::User, ..select(present.clone(), ScimKey::DisplayName, false) }).await;
    assert_eq!(by_display, (vec![id(1), id(3), id(0)], 3), "by display name; 'alice' and 'Alice' tie");
    let by_display = ids(select(present.clone(), ScimKey::DisplayName, true)).await;
    assert_eq!(by_display, (vec![id(0), id(1), id(3)], 3), "descending, ties still by ascending id");
    let missing = ids(select(vec![(ScimKey::DisplayName, KeyMatch::Empty)], ScimKey::Id, false)).await;
    assert_eq!(missing, (vec![id(2), id(4)], 2), "absent and empty display names");
    let display = ids(select(vec![(ScimKey::DisplayName, KeyMatch::StartsWith("al".into()))], ScimKey::Id, false));
    assert_eq!(display.await, (vec![id(1), id(3)], 2), "display name sw (lowercase operand)");
    // Windows and streaming.
    let window = ScimSelect { offset: 1, limit: 2, ..select(vec![], ScimKey::UserName, false) };
    assert_eq!(ids(window).await.0, vec![id(2), id(1)], "offset and limit");
    let after = ScimSelect { after: Some(id(2)), limit: 2, ..select(vec![], ScimKey::Id, false) };
    assert_eq!(ids(after).await.0, vec![id(3), id(4)], "after an id");
    // Groups by display name.
    let groups = ScimSelect {
        kind: ObjectKind::Group,
        ..select(vec![(ScimKey::DisplayName, KeyMatch::Equals("alpha".into()))], ScimKey::Id, false)
    };
    assert_eq!(ids(groups).await.0.len(), 1, "a group by display name");
    let by_user_name = vec![(ScimKey::UserName, KeyMatch::Equals("alpha".into()))];
    let groups = ScimSelect { kind: ObjectKind::Group, ..select(by_user_name, ScimKey::Id, false) };
    assert_eq!(ids(groups).await, (vec![], 0), "groups have no userName");
    tx.commit().await.expect("commit");
}

/// A `Read` transaction reads one snapshot; `ReadStatements` reads each commit as it lands, and its commit is a
/// no-op.
pub async fn read_statements_see_each_commit(store: &dyn Store) {
    let tenant = new_tenant(store, "statements").await;
    let first = user_row("first@statements.example", "First");
    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    tx.insert_object(&first).await.expect("insert");
    tx.commit().await.expect("commit");

    let mut snapshot = store.begin(tenant, TxMode::Read).await.expect("begin read");
    let mut statements = store.begin(tenant, TxMode::ReadStatements).await.expect("begin statements");
    assert_eq!(snapshot.get_object(first.id).await.expect("get"), Some(first.clone()));
    assert_eq!(statements.get_object(first.id).await.expect("get"), Some(first.clone()));
    let second = user_row("second@statements.example", "Second");
    assert_eq!(statements.get_object(second.id).await.expect("get"), None);

    let mut tx = store.begin(tenant, TxMode::Write).await.expect("begin");
    tx.insert_object(&second).await.expect("insert");
    tx.commit().await.expect("commit");

    assert_eq!(snapshot.get_object(second.id).await.expect("get"), None, "a Read transaction keeps its snapshot");
    assert_eq!(statements.get_object(second.id).await.expect("get"), Some(second.clone()), "each statement reads anew");
    statements.commit().await.expect("a no-op commit");
    snapshot.commit().await.expect("commit read");
    let mut statements = store.begin(tenant, TxMode::ReadStatements).await.expect("begin statements");
    assert_eq!(statements.count_objects(ObjectKind::User, false).await.expect("count"), 2);
}
