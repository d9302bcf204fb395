//! The [`DnsApi`] suite.

use crate::cloud::{ChangeAction, CloudError, DnsApi, DnsRecord, RecordChange, codes};

use super::{Fixture, code, err, not_found, ok};

/// Holds a [`DnsApi`] to what eden relies on:
///
/// * the zone's name reads back without the trailing dot; a zone that does not exist is
///   `NoSuchHostedZone`;
/// * a lookup finds exactly the name and type asked for (`None` otherwise, even when the zone
///   holds the next name), whatever the case of the name;
/// * a batch applies all of its changes or none: `CREATE` of a record that exists, and `DELETE`
///   of a record that does not exist or differs from the one stored, fail the whole batch with
///   `InvalidChangeBatch`; so do a name outside the zone and a TXT string over 255
///   characters;
/// * alias records read back their target; TXT records their quoted values and TTL; `UPSERT`
///   replaces.
pub async fn route53(api: &dyn DnsApi, f: &Fixture) {
    let u = &f.unique;
    let zone = &f.zone_id;

    let what = "GetHostedZone";
    assert_eq!(
        ok(api.hosted_zone_name(zone).await, what).trim_end_matches('.'),
        f.zone_name.trim_end_matches('.'),
        "{what}"
    );
    let what = "GetHostedZone of a zone that does not exist";
    not_found(
        &err(api.hosted_zone_name("Z0000000000000NONE").await, what),
        &["NoSuchHostedZone"],
        what,
    );

    let name = |label: &str| format!("{label}-{u}.{}", f.zone_name);
    let alias = DnsRecord {
        name: name("a"),
        record_type: "A".into(),
        alias: Some(f.alias.clone()),
        ttl: None,
        values: vec![],
    };
    let txt = |value: &str| DnsRecord {
        name: name("a"),
        record_type: "TXT".into(),
        alias: None,
        ttl: Some(300),
        values: vec![format!("\"{value}\"")],
    };
    let change = |action, record: &DnsRecord| RecordChange::new(action, record.clone());

    let what = "a lookup of a record that does not exist";
    assert_eq!(
        ok(api.find_record(zone, &alias.name, "A").await, what),
        None,
        "{what}"
    );
    // A record sorting after the one looked up: a listing that starts at the name finds it.
    let next = DnsRecord {
        name: name("b"),
        ..txt("next")
    };
    ok(
        api.change_records(zone, &[change(ChangeAction::Create, &next)])
            .await,
        "CREATE of a TXT record",
    );
    let what = "a lookup of a record that does not exist, before one that does";
    assert_eq!(
        ok(api.find_record(zone, &alias.name, "TXT").await, what),
        None,
        "{what}"
    );

    let what = "a batch creating an alias and a TXT record";
    ok(
        api.change_records(
            zone,
            &[
                change(ChangeAction::Create, &alias),
                change(ChangeAction::Create, &txt("owner=1")),
            ],
        )
        .await,
        what,
    );
    let what = "a lookup of the alias record";
    let found = ok(api.find_record(zone, &alias.name, "A").await, what)
        .unwrap_or_else(|| panic!("{what}: not found"));
    let target = found
        .alias
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no alias target"));
    assert_eq!(
        (
            target
                .dns_name
                .trim_end_matches('.')
                .to_ascii_lowercase()
                .trim_start_matches("dualstack."),
            target.hosted_zone_id.as_str()
        ),
        (
            f.alias
                .dns_name
                .trim_end_matches('.')
                .to_ascii_lowercase()
                .trim_start_matches("dualstack."),
            f.alias.hosted_zone_id.as_str()
        ),
        "{what}: the target"
    );
    assert_eq!(
        found.name, alias.name,
        "{what}: the name, without a trailing dot"
    );
    let what = "a lookup in capitals";
    assert!(
        ok(
            api.find_record(zone, &alias.name.to_ascii_uppercase(), "A")
                .await,
            what
        )
        .is_some(),
        "{what}"
    );
    let what = "a lookup of the TXT record";
    let found = ok(api.find_record(zone, &alias.name, "TXT").await, what)
        .unwrap_or_else(|| panic!("{what}: not found"));
    assert_eq!(
        (found.values, found.ttl),
        (vec!["\"owner=1\"".to_owned()], Some(300)),
        "{what}"
    );

    let what = "CREATE of a record that exists";
    code(
        &err(
            api.change_records(zone, &[change(ChangeAction::Create, &alias)])
                .await,
            what,
        ),
        &[codes::INVALID_CHANGE_BATCH],
        what,
    );
    let what = "a batch creating a new record and one that exists";
    let other = DnsRecord {
        name: name("c"),
        ..txt("c")
    };
    code(
        &err(
            api.change_records(
                zone,
                &[
                    change(ChangeAction::Create, &other),
                    change(ChangeAction::Create, &alias),
                ],
            )
            .await,
            what,
        ),
        &[codes::INVALID_CHANGE_BATCH],
        what,
    );
    assert_eq!(
        ok(api.find_record(zone, &other.name, "TXT").await, what),
        None,
        "{what}: nothing of the batch applied"
    );
    let what = "DELETE of a record with other values than stored";
    let e = err(
        api.change_records(zone, &[change(ChangeAction::Delete, &txt("owner=2"))])
            .await,
        what,
    );
    unmatched_delete(f, &e, what);
    assert!(
        ok(api.find_record(zone, &alias.name, "TXT").await, what).is_some(),
        "{what}: the record stays"
    );
    let what = "DELETE of a record that does not exist";
    match api
        .change_records(zone, &[change(ChangeAction::Delete, &other)])
        .await
    {
        Ok(()) if f.quirks.loose_record_deletes => {}
        other => unmatched_delete(f, &err(other, what), what),
    }
    let what = "a record outside the zone";
    let outside = DnsRecord {
        name: format!("a-{u}.outside-{u}.example"),
        ..txt("x")
    };
    code(
        &err(
            api.change_records(zone, &[change(ChangeAction::Create, &outside)])
                .await,
            what,
        ),
        &[codes::INVALID_CHANGE_BATCH],
        what,
    );
    let what = "a TXT string over 255 characters";
    let long = DnsRecord {
        name: name("d"),
        ..txt(&"x".repeat(256))
    };
    match api
        .change_records(zone, &[change(ChangeAction::Create, &long)])
        .await
    {
        Ok(()) if f.quirks.txt_length_unchecked => {
            let _ = api.delete_record(zone, &long).await;
        }
        other => code(&err(other, what), &[codes::INVALID_CHANGE_BATCH], what),
    }

    let what = "UPSERT of the TXT record";
    ok(api.upsert_record(zone, &txt("owner=2")).await, what);
    assert_eq!(
        ok(api.find_record(zone, &alias.name, "TXT").await, what).map(|r| r.values),
        Some(vec!["\"owner=2\"".to_owned()]),
        "{what}: replaced"
    );

    let what = "a batch deleting the alias and the TXT record";
    ok(
        api.change_records(
            zone,
            &[
                change(ChangeAction::Delete, &alias),
                change(ChangeAction::Delete, &txt("owner=2")),
            ],
        )
        .await,
        what,
    );
    for kind in ["A", "TXT"] {
        assert_eq!(
            ok(api.find_record(zone, &alias.name, kind).await, what),
            None,
            "{what}: {kind} gone"
        );
    }
    ok(
        api.delete_record(zone, &next).await,
        "DELETE of a TXT record",
    );
}

/// A `DELETE` that matched no stored record: `InvalidChangeBatch`, or what the quirks allow.
#[track_caller]
fn unmatched_delete(f: &Fixture, e: &CloudError, what: &str) {
    if f.quirks.loose_record_deletes {
        code(e, &[codes::INVALID_CHANGE_BATCH, "InvalidInput"], what);
    } else {
        code(e, &[codes::INVALID_CHANGE_BATCH], what);
    }
}
