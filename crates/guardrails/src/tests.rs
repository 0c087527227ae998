//! Table-driven tests of validation, merging and evaluation (expect-test snapshots; `UPDATE_EXPECT=1` rewrites).

use expect_test::{Expect, expect};
use serde_json::{Map, Value, json};
use tenantsync_expr::Rule;

use crate::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test JSON must be an object, got {other}"),
    }
}

fn policy(value: Value) -> GuardrailPolicy {
    serde_json::from_value(value).expect("test policy parses")
}

fn ceo() -> ProtectedIdentity {
    ProtectedIdentity::from_user(
        "ceo-1",
        &object(json!({
            "displayName": "Alice Lindqvist", "givenName": "Alice", "surname": "Lindqvist",
            "mail": "alice.lindqvist@contoso.example", "mailNickname": "alicel",
            "userPrincipalName": "alice.lindqvist@contoso.example"
        })),
    )
}

fn context() -> PartnerContext {
    PartnerContext {
        usage: Usage { partner_users: 10, tenant_users: 1_000, creates_last_hour: 10 },
        protected_groups: vec![ProtectedGroup {
            id: "grp-admins".to_owned(),
            display_name: "Finance approvers".to_owned(),
            rule: Some(
                Rule::compile(r#"user.department -eq "Finance" -and user.extensionAttribute3 -eq "approver""#)
                    .expect("test rule compiles"),
            ),
        }],
        protected_identities: vec![ceo()],
    }
}

fn render(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Write(changes) => format!("write {}", Value::Object(changes.clone())),
        Outcome::WriteWithChanges { changes, notes, would_hold } => {
            let mut text = format!("write-with-changes {}", Value::Object(changes.clone()));
            for note in notes {
                text.push_str(&format!("\n  note: {note}"));
            }
            for reason in would_hold {
                text.push_str(&format!("\n  would hold [{}]: {}", reason.guardrail.as_str(), reason.detail));
            }
            text
        }
        Outcome::Hold(reasons) => {
            let mut text = "hold".to_owned();
            for reason in reasons {
                text.push_str(&format!("\n  [{}]: {}", reason.guardrail.as_str(), reason.detail));
            }
            text
        }
    }
}

#[track_caller]
fn check_create(policy_json: Value, user: Value, expect: Expect) {
    let effective = EffectivePolicy::resolve(Some(&policy(policy_json)), None).expect("valid").expect("guarded");
    let changes = object(user);
    let change = ProposedChange {
        action: ChangeAction::Create,
        target_id: None,
        current: None,
        changes: &changes,
        exempt_groups: &[],
    };
    expect.assert_eq(&render(&evaluate(&effective, &context(), &change)));
}

#[track_caller]
fn check_update(policy_json: Value, current: Value, changes: Value, expect: Expect) {
    let effective = EffectivePolicy::resolve(Some(&policy(policy_json)), None).expect("valid").expect("guarded");
    let current = object(current);
    let changes = object(changes);
    let change = ProposedChange {
        action: ChangeAction::Update,
        target_id: Some("user-9"),
        current: Some(&current),
        changes: &changes,
        exempt_groups: &[],
    };
    expect.assert_eq(&render(&evaluate(&effective, &context(), &change)));
}

#[test]
fn comparison_keys() {
    let cases = [
        "Alice Lindqvist",
        "ALICE LINDQVIST",
        "Alice Lindqvist",                 // Cyrillic А and і
        "AIice Lindqvist",                 // capital I for the l
        "Ali\u{200B}ce Lind\u{200D}qvist", // zero-width space and joiner
        "Ａｌｉｃｅ Ｌｉｎｄｑｖｉｓｔ",   // full-width
        "alice.lindqvist",
        "Alicia Lindqvist",
        "aiice lindqvist", // small i is not an l
    ];
    let actual: Vec<String> =
        cases.iter().map(|case| format!("{case:?} -> {} / {}", comparison_key(case), folded_key(case))).collect();
    expect![[r#"
        "Alice Lindqvist" -> alicelindqvist / alicelindqvist
        "ALICE LINDQVIST" -> allcellndqvlst / alicelindqvist
        "Alice Lindqvist" -> alicelindqvist / alicelindqvist
        "AIice Lindqvist" -> alicelindqvist / aiicelindqvist
        "Ali\u{200b}ce Lind\u{200d}qvist" -> alicelindqvist / alicelindqvist
        "Ａｌｉｃｅ Ｌｉｎｄｑｖｉｓｔ" -> alicelindqvist / alicelindqvist
        "alice.lindqvist" -> alicelindqvist / alicelindqvist
        "Alicia Lindqvist" -> alicialindqvist / alicialindqvist
        "aiice lindqvist" -> aiicelindqvist / aiicelindqvist"#]]
    .assert_eq(&actual.join("\n"));
}

#[test]
fn local_parts() {
    let cases = [
        "alice@contoso.example",
        "alice_fabrikam.example#EXT#@contoso.example",
        "alice_x_fabrikam.example#EXT#@contoso.example",
        "plain",
    ];
    let actual: Vec<String> = cases.iter().map(|case| format!("{case} -> {}", local_part(case))).collect();
    expect![[r#"
        alice@contoso.example -> alice
        alice_fabrikam.example#EXT#@contoso.example -> alice
        alice_x_fabrikam.example#EXT#@contoso.example -> alice_x
        plain -> plain"#]]
    .assert_eq(&actual.join("\n"));
}

#[test]
fn look_alikes_of_the_ceo_are_held_and_a_different_name_is_not() {
    let cases = [
        json!({"displayName": "Alice Lindqvist"}),
        json!({"displayName": "ALICE LINDQVIST"}),
        json!({"displayName": "Аlісе Lindqvist"}), // Cyrillic А, і, с, е
        json!({"displayName": "AIice Lindqvist"}),
        json!({"displayName": "Al\u{200B}ice Lind\u{FEFF}qvist"}),
        json!({"displayName": "Ａｌｉｃｅ　Ｌｉｎｄｑｖｉｓｔ"}),
        json!({"displayName": "A. Lindqvist", "mail": "alice.lindqvist@fabrikam.example"}),
        json!({"displayName": "Partner Admin", "userPrincipalName": "aIicel_fabrikam.example#EXT#@contoso.example"}),
        json!({"displayName": "Someone", "givenName": "Alice", "surname": "Lindqvíst"}),
        json!({"displayName": "Alicia Lindqvist", "mail": "alicia.lindqvist@fabrikam.example"}),
        json!({"displayName": "Bob Lindqvist", "mailNickname": "bob"}),
        json!({"displayName": "Al"}),
    ];
    let mut actual = String::new();
    for case in cases {
        let effective = EffectivePolicy::resolve(Some(&GuardrailPolicy::default()), None).expect("valid").expect("on");
        let changes = object(case.clone());
        let change = ProposedChange {
            action: ChangeAction::Create,
            target_id: None,
            current: None,
            changes: &changes,
            exempt_groups: &[],
        };
        let outcome = evaluate(&effective, &context(), &change);
        let verdict = match outcome {
            Outcome::Hold(reasons) => {
                reasons.iter().map(|reason| reason.guardrail.as_str()).collect::<Vec<_>>().join(",")
            }
            _ => "written".to_owned(),
        };
        actual.push_str(&format!("{:?} -> {verdict}\n", case.to_string()));
    }
    expect![[r#"
        "{\"displayName\":\"Alice Lindqvist\"}" -> impersonation
        "{\"displayName\":\"ALICE LINDQVIST\"}" -> impersonation
        "{\"displayName\":\"Аlісе Lindqvist\"}" -> impersonation
        "{\"displayName\":\"AIice Lindqvist\"}" -> impersonation
        "{\"displayName\":\"Al\u{200b}ice Lind\u{feff}qvist\"}" -> impersonation
        "{\"displayName\":\"Ａｌｉｃｅ\u{3000}Ｌｉｎｄｑｖｉｓｔ\"}" -> impersonation
        "{\"displayName\":\"A. Lindqvist\",\"mail\":\"alice.lindqvist@fabrikam.example\"}" -> impersonation
        "{\"displayName\":\"Partner Admin\",\"userPrincipalName\":\"aIicel_fabrikam.example#EXT#@contoso.example\"}" -> impersonation
        "{\"displayName\":\"Someone\",\"givenName\":\"Alice\",\"surname\":\"Lindqvíst\"}" -> written
        "{\"displayName\":\"Alicia Lindqvist\",\"mail\":\"alicia.lindqvist@fabrikam.example\"}" -> written
        "{\"displayName\":\"Bob Lindqvist\",\"mailNickname\":\"bob\"}" -> written
        "{\"displayName\":\"Al\"}" -> written
    "#]]
    .assert_eq(&actual);
}

#[test]
fn blocked_allowed_overrides_and_constraints() {
    check_create(
        json!({"blockedAttributes": ["jobTitle"], "attributeOverrides": [{"attribute": "companyName", "value": "Fabrikam (partner)"}]}),
        json!({"displayName": "Ben Ortiz", "jobTitle": "Global Admin", "companyName": "Contoso"}),
        expect![[r#"
            write-with-changes {"companyName":"Fabrikam (partner)","displayName":"Ben Ortiz"}
              note: blocked attribute 'jobTitle' not written
              note: attribute 'companyName' overridden by the target"#]],
    );
    check_create(
        json!({"allowedAttributes": ["displayName", "mail"]}),
        json!({"displayName": "Ben Ortiz", "department": "Sales", "mail": "ben@fabrikam.example"}),
        expect![[r#"
            write-with-changes {"displayName":"Ben Ortiz","mail":"ben@fabrikam.example"}
              note: attribute 'department' is not in allowedAttributes and was not written"#]],
    );
    check_create(
        json!({"attributeConstraints": [
            {"attribute": "department", "allowedValues": ["Sales", "Support"]},
            {"attribute": "jobTitle", "pattern": "[A-Za-z ]+", "maxLength": 12}
        ]}),
        json!({"displayName": "Ben Ortiz", "department": "Finance", "jobTitle": "Domain Admin #1"}),
        expect![[r#"
            hold
              [attributeConstraint]: department 'Finance' is not one of the allowed values
              [attributeConstraint]: jobTitle 'Domain Admin #1' does not match the pattern '[A-Za-z ]+'
              [attributeConstraint]: jobTitle is longer than 12 characters"#]],
    );
    check_create(
        json!({"attributeConstraints": [{"attribute": "department", "allowedValues": ["Sales"]}],
               "attributeOverrides": [{"attribute": "Department", "value": "Partners"}]}),
        json!({"displayName": "Ben Ortiz", "department": "Finance"}),
        expect![[r#"
            write-with-changes {"department":"Partners","displayName":"Ben Ortiz"}
              note: attribute 'department' overridden by the target"#]],
    );
    check_create(json!({}), json!({"displayName": "Ben Ortiz"}), expect![[r#"write {"displayName":"Ben Ortiz"}"#]]);
}

#[test]
fn protected_dynamic_group_rule_is_evaluated_after_the_write() {
    check_create(
        json!({}),
        json!({"displayName": "Eve Mallory", "department": "Finance", "extensionAttribute3": "approver"}),
        expect![[r#"
            hold
              [protectedGroup]: the user would qualify for protected group 'Finance approvers' (grp-admins)"#]],
    );
    // The current user already has the department; the change adds the extension attribute (nested as stored).
    check_update(
        json!({}),
        json!({"displayName": "Eve Mallory", "department": "Finance", "onPremisesExtensionAttributes": {"extensionAttribute3": null}}),
        json!({"extensionAttribute3": "approver"}),
        expect![[r#"
            hold
              [protectedGroup]: the user would qualify for protected group 'Finance approvers' (grp-admins)"#]],
    );
    check_update(
        json!({}),
        json!({"displayName": "Eve Mallory", "department": "Finance", "onPremisesExtensionAttributes": {"extensionAttribute3": "approver"}}),
        json!({"extensionAttribute3": "viewer"}),
        expect![[r#"write {"extensionAttribute3":"viewer"}"#]],
    );
    // Blocking the attribute the rule reads is enough to keep the user out.
    check_create(
        json!({"blockedAttributes": ["extensionAttribute3"]}),
        json!({"displayName": "Eve Mallory", "department": "Finance", "extensionAttribute3": "approver"}),
        expect![[r#"
            write-with-changes {"department":"Finance","displayName":"Eve Mallory"}
              note: blocked attribute 'extensionAttribute3' not written"#]],
    );
}

#[test]
fn impersonation_is_checked_on_update_only_when_a_name_changes() {
    check_update(
        json!({}),
        json!({"displayName": "Alice Lindqvist", "department": "Sales"}),
        json!({"department": "Support"}),
        expect![[r#"write {"department":"Support"}"#]],
    );
    check_update(
        json!({}),
        json!({"displayName": "Ben Ortiz"}),
        json!({"displayName": "Alice Lindqvіst"}),
        expect![[r#"
            hold
              [impersonation]: the user resembles protected identity 'Alice Lindqvist' (ceo-1)"#]],
    );
    check_update(
        json!({"impersonationCheck": false}),
        json!({"displayName": "Ben Ortiz"}),
        json!({"displayName": "Alice Lindqvist"}),
        expect![[r#"write {"displayName":"Alice Lindqvist"}"#]],
    );
}

#[test]
fn modes() {
    check_create(
        json!({"mode": "audit", "blockedAttributes": ["jobTitle"]}),
        json!({"displayName": "Alice Lindqvist", "jobTitle": "CEO"}),
        expect![[r#"
            write-with-changes {"displayName":"Alice Lindqvist","jobTitle":"CEO"}
              note: audit: blocked attribute 'jobTitle' not written
              would hold [impersonation]: the user resembles protected identity 'Alice Lindqvist' (ceo-1)"#]],
    );
    check_create(
        json!({"mode": "off", "blockedAttributes": ["jobTitle"]}),
        json!({"displayName": "Alice Lindqvist", "jobTitle": "CEO"}),
        expect![[r#"write {"displayName":"Alice Lindqvist","jobTitle":"CEO"}"#]],
    );
}

#[test]
fn quotas_hold_creates_not_updates() {
    check_create(
        json!({"quotas": {"maxUsers": 10, "maxCreatesPerHour": 10, "maxShareOfTenant": 0.001}}),
        json!({"displayName": "Ben Ortiz"}),
        expect![[r#"
            hold
              [quota]: the partner already has 10 users here (maxUsers 10)
              [quota]: the partner created 10 users in the last hour (maxCreatesPerHour 10)
              [quota]: the partner's users would be 1.1 % of the tenant's users (maxShareOfTenant 0.001)"#]],
    );
    check_update(
        json!({"quotas": {"maxUsers": 10, "maxCreatesPerHour": 10, "maxShareOfTenant": 0.001}}),
        json!({"displayName": "Ben Ortiz"}),
        json!({"jobTitle": "Engineer"}),
        expect![[r#"write {"jobTitle":"Engineer"}"#]],
    );
}

/// Runs `n_creates` creates one after the other (as a sync's batches do) and counts those written.
fn simulate_flood(policy: Option<&GuardrailPolicy>, own_users: u64, n_creates: u64) -> (u64, u64) {
    let effective = EffectivePolicy::resolve(policy, None).expect("valid").expect("guarded");
    let mut ctx = PartnerContext {
        usage: Usage { partner_users: 0, tenant_users: own_users, creates_last_hour: 0 },
        ..PartnerContext::default()
    };
    let (mut n_written, mut n_held) = (0, 0);
    for idx in 0..n_creates {
        let changes = object(json!({"displayName": format!("Flood {idx}")}));
        let change = ProposedChange {
            action: ChangeAction::Create,
            target_id: None,
            current: None,
            changes: &changes,
            exempt_groups: &[],
        };
        match evaluate(&effective, &ctx, &change) {
            Outcome::Hold(_) => n_held += 1,
            _ => {
                n_written += 1;
                ctx.usage.count_create();
            }
        }
    }
    (n_written, n_held)
}

#[test]
fn default_quotas_cap_a_flood_and_let_a_benign_organisation_in() {
    let defaults = GuardrailPolicy::default();
    let flood = simulate_flood(Some(&defaults), 500, 80_000);
    let benign = simulate_flood(Some(&defaults), 10_000, 10_000);
    expect![["flood (written, held): (2000, 78000); benign: (10000, 0)"]]
        .assert_eq(&format!("flood (written, held): {flood:?}; benign: {benign:?}"));
}

#[test]
fn partner_policy_falls_back_to_the_default_policy_then_to_the_defaults() {
    let default = policy(json!({"mode": "audit", "blockedAttributes": ["jobTitle"], "quotas": {"maxUsers": 50}}));
    let partner =
        policy(json!({"blockedAttributes": null, "protectedUserIds": ["u1"], "quotas": {"maxCreatesPerHour": 5}}));
    let effective = EffectivePolicy::resolve(Some(&default), Some(&partner)).expect("valid").expect("guarded");
    expect![[r#"mode Audit, blocked ["jobTitle"], protected users ["u1"], impersonation true, quotas EffectiveQuotas { max_users: Some(50), max_creates_per_hour: Some(5), max_share_of_tenant: Some(0.8) }"#]]
        .assert_eq(&format!(
            "mode {:?}, blocked {:?}, protected users {:?}, impersonation {}, quotas {:?}",
            effective.mode,
            effective.blocked_attributes,
            effective.protected_user_ids,
            effective.impersonation_check,
            effective.quotas
        ));
    assert!(EffectivePolicy::resolve(None, None).expect("valid").is_none(), "no policy: unguarded");
}

#[test]
fn validation_messages() {
    let cases = [
        json!({"blockedAttributes": ["jobTitle", "salary"]}),
        json!({"attributeConstraints": [{"attribute": "department", "pattern": "(unclosed"}]}),
        json!({"protectedGroupIds": ["known-group", "missing-group"]}),
        json!({"protectedUserIds": ["nobody"]}),
        json!({"quotas": {"maxShareOfTenant": 1.5}}),
        json!({"attributeOverrides": [{"attribute": "extension_0123456789abcdef0123456789abcdef_level", "value": "1"}],
               "allowedAttributes": ["Department", "extensionAttribute15"]}),
        json!({"allowedAttributes": ["extensionAttribute16"]}),
    ];
    let mut actual = String::new();
    for case in cases {
        let verdict = match policy(case.clone()).validate(&|id| id == "known-group", &|_| false) {
            Ok(()) => "ok".to_owned(),
            Err(err) => err.to_string(),
        };
        actual.push_str(&format!("{verdict}\n"));
    }
    expect![[r#"
        Invalid value for property 'blockedAttributes': 'salary' is not a user attribute
        Invalid value for property 'attributeConstraints': the pattern for 'department' is not a valid regular expression: error: unclosed group
        Invalid value for property 'protectedGroupIds': group 'missing-group' does not exist in this tenant
        Invalid value for property 'protectedUserIds': user 'nobody' does not exist in this tenant
        Invalid value for property 'quotas': maxShareOfTenant must be greater than 0 and at most 1
        ok
        Invalid value for property 'allowedAttributes': 'extensionAttribute16' is not a user attribute
    "#]]
    .assert_eq(&actual);
    let unknown: Result<GuardrailPolicy, _> = serde_json::from_value(json!({"mode": "enforce", "colour": "red"}));
    assert!(unknown.is_err(), "unknown properties are refused");
}

#[test]
fn patch_replaces_only_the_given_properties() {
    let stored = policy(json!({"mode": "audit", "blockedAttributes": ["jobTitle"]}));
    let patched = stored.patched(&object(json!({"mode": "enforce", "impersonationCheck": null}))).expect("patch");
    expect![[r#"{"mode":"enforce","blockedAttributes":["jobTitle"],"allowedAttributes":null,"attributeConstraints":null,"attributeOverrides":null,"protectedGroupIds":null,"protectedUserIds":null,"impersonationCheck":null,"quotas":null}"#]]
        .assert_eq(&serde_json::to_string(&patched).expect("serializes"));
}

#[test]
fn ledger_slides_over_the_hour() {
    let mut ledger = QuotaLedger::default();
    ledger.record_creates(0, 5);
    ledger.record_creates(30 * 60, 7);
    assert_eq!(ledger.creates_last_hour(30 * 60 + 5), 12);
    assert_eq!(ledger.creates_last_hour(60 * 60 + 5), 7, "the first minute left the window");
    ledger.record_creates(2 * 60 * 60, 0);
    assert_eq!(ledger.creates_by_minute.len(), 0, "old minutes are forgotten");
    assert_eq!(ledger.partner_users, 12);
}

#[test]
fn a_benign_organisation_holds_nothing_under_the_defaults_with_executives_protected() {
    let first_names = [
        "Ada", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kira", "Liam", "Mei", "Nils",
        "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara",
    ];
    let surnames = [
        "Abbott", "Brandt", "Castro", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova", "Jensen",
        "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Rossi", "Sato", "Tanaka",
    ];
    let executives: Vec<ProtectedIdentity> = [
        ("Alice Lindqvist", "alice.lindqvist"),
        ("Marcus Whitfield", "marcus.whitfield"),
        ("Priya Raman", "priya.raman"),
    ]
    .iter()
    .enumerate()
    .map(|(idx, (name, local))| {
        ProtectedIdentity::from_user(
            format!("exec-{idx}"),
            &object(json!({"displayName": name, "mail": format!("{local}@contoso.example"), "mailNickname": local})),
        )
    })
    .collect();
    let effective = EffectivePolicy::resolve(Some(&GuardrailPolicy::default()), None).expect("valid").expect("on");
    let mut ctx = PartnerContext {
        usage: Usage { partner_users: 0, tenant_users: 10_000, creates_last_hour: 0 },
        protected_identities: executives,
        ..context()
    };
    let mut n_held = 0;
    for idx in 0..10_000 {
        let (given, surname) = (first_names[idx % 20], surnames[(idx / 20) % 20]);
        let local = format!("{}.{}{}", given.to_lowercase(), surname.to_lowercase(), idx / 400);
        let changes = object(json!({
            "displayName": format!("{given} {surname}"), "givenName": given, "surname": surname,
            "mail": format!("{local}@fabrikam.example"), "mailNickname": local, "department": "Sales",
            "userPrincipalName": format!("{local}_fabrikam.example#EXT#@contoso.example"),
        }));
        let change = ProposedChange {
            action: ChangeAction::Create,
            target_id: None,
            current: None,
            changes: &changes,
            exempt_groups: &[],
        };
        match evaluate(&effective, &ctx, &change) {
            Outcome::Hold(reasons) => {
                n_held += 1;
                assert!(n_held < 3, "held: {reasons:?}");
            }
            _ => ctx.usage.count_create(),
        }
    }
    assert_eq!(n_held, 0);
}

#[test]
fn approval_shapes_the_write_but_holds_nothing() {
    let stored = policy(
        json!({"blockedAttributes": ["jobTitle"], "attributeOverrides": [{"attribute": "companyName", "value": "Partner"}],
                               "quotas": {"maxUsers": 0}}),
    );
    let effective = EffectivePolicy::resolve(Some(&stored), None).expect("valid").expect("on").without_holds();
    let changes = object(json!({"displayName": "Alice Lindqvist", "jobTitle": "CEO"}));
    let change = ProposedChange {
        action: ChangeAction::Create,
        target_id: None,
        current: None,
        changes: &changes,
        exempt_groups: &[],
    };
    expect![[r#"
        write-with-changes {"companyName":"Partner","displayName":"Alice Lindqvist"}
          note: blocked attribute 'jobTitle' not written"#]]
    .assert_eq(&render(&evaluate(&effective, &context(), &change)));
}
