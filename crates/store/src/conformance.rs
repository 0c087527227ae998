//! The behaviour every [`Store`] backend must show. Each backend's tests call [`run_all`] (or the single checks)
//! with a fresh, empty database: a temporary SQLite file, a new PostgreSQL database.
//!
//! The checks panic with a message naming what failed; they are test code, so `expect` is fine here.

use tenantsync_model::{ClientId, ObjectId, ObjectKind, TenantId};
use time::OffsetDateTime;

use crate::{
    ChangeOp, ChangeRow, CredentialRow, LinkKind, ObjectRow, ScanOrder, ScanSpec, Store, StoreError, TenantRow, TxMode,
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
}

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
    let spec = ScanSpec { deleted: false, order: ScanOrder::Id, descending: false, after: None, limit: 10 };
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
    drop(tx);
    let mut tx = store.begin(tenant, TxMode::Read).await.expect("begin");
    assert_eq!(tx.get_object(user.id).await.expect("get"), None);
    assert_eq!(tx.last_change_seq().await.expect("seq"), 0);
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
        let mut spec = ScanSpec { deleted: false, order, descending, after: None, limit: 4 };
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
    let spec = ScanSpec { deleted: true, order: ScanOrder::Id, descending: false, after: None, limit: 10 };
    let deleted_rows = tx.scan_objects(ObjectKind::User, &spec).await.expect("scan deleted");
    assert_eq!(deleted_rows, vec![deleted.clone()]);
    assert_eq!(tx.deleted_before(at(6)).await.expect("deleted before"), vec![deleted.id]);
    assert!(tx.deleted_before(at(5)).await.expect("deleted before").is_empty());
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
