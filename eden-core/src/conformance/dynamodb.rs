//! The [`StateStore`] suite.

use crate::cloud::{
    AttrValue, Item, ItemCondition, ItemUpdate, Page, StateStore, WriteCondition, codes, schema,
};

use super::{Fixture, code, err, not_found, ok, refused};

/// Items the suite writes under one hash key (more than one page of the in-memory cloud's
/// smallest pages).
const ITEMS: usize = 7;

/// Holds a [`StateStore`] to what eden relies on:
///
/// * `ensure_table` creates the table once (true), then finds it (false), and refuses a name
///   that is not 3 to 255 letters, digits, `_`, `-` and `.`; a table that does not exist is
///   `ResourceNotFoundException`, "not found";
/// * writes and deletes under `NotExists` / `Exists` fail with
///   `ConditionalCheckFailedException` when the condition does not hold, and answer the item
///   they replaced or removed;
/// * a query answers every item of a hash key exactly once across its pages; the `kind` index
///   answers the items of a kind, only those updated before a bound when one is given; a scan
///   answers every item once;
/// * conditions on the stored item (absent, present, an attribute present or missing, a string
///   equal, a number below, all, any, nested) hold as DynamoDB evaluates condition
///   expressions, for writes, updates and deletes;
/// * an update sets attributes, sets others only when absent, removes others, creates the item
///   when it is absent, and answers the item as it was.
pub async fn dynamodb(api: &dyn StateStore, f: &Fixture) {
    let u = &f.unique;
    let table = format!("eden-conformance-{u}");

    let what = "GetItem in a table that does not exist";
    not_found(
        &err(api.get_item(&format!("none-{u}"), "p", "a").await, what),
        &["ResourceNotFoundException"],
        what,
    );
    for (bad, why) in [
        ("ab".to_owned(), "2 characters"),
        (format!("eden conformance {u}"), "spaces"),
        (format!("e{u}-{}", "t".repeat(255)), "over 255 characters"),
    ] {
        let what = format!("ensure_table of a name with {why}");
        match api.ensure_table(&bad).await {
            Ok(_) if f.quirks.table_names_unchecked => {}
            other => refused(&err(other, &what), &what),
        }
    }
    let what = "ensure_table of a new table";
    assert!(ok(api.ensure_table(&table).await, what), "{what}: created");
    let what = "ensure_table of an existing table";
    assert!(!ok(api.ensure_table(&table).await, what), "{what}: found");

    let item = |hash: &str, range: &str, updated: i64| {
        Item::from([
            (schema::HASH_KEY.into(), AttrValue::S(hash.into())),
            (schema::RANGE_KEY.into(), AttrValue::S(range.into())),
            (schema::KIND.into(), AttrValue::S("environment".into())),
            (
                schema::LAST_UPDATED.into(),
                AttrValue::N(updated.to_string()),
            ),
        ])
    };
    let failed = |e: &_, what: &str| code(e, &[codes::CONDITIONAL_CHECK_FAILED], what);

    // Write conditions.
    let a = item("p", "a", 5);
    let what = "PutItem if absent";
    assert_eq!(
        ok(
            api.put_item(&table, a.clone(), WriteCondition::NotExists)
                .await,
            what
        ),
        None,
        "{what}"
    );
    let what = "PutItem if absent, of an item that exists";
    failed(
        &err(
            api.put_item(&table, a.clone(), WriteCondition::NotExists)
                .await,
            what,
        ),
        what,
    );
    let what = "PutItem if present";
    assert_eq!(
        ok(
            api.put_item(&table, a.clone(), WriteCondition::Exists)
                .await,
            what
        ),
        Some(a.clone()),
        "{what}: the item replaced"
    );
    let what = "PutItem if present, of an item that does not exist";
    failed(
        &err(
            api.put_item(&table, item("p", "none", 1), WriteCondition::Exists)
                .await,
            what,
        ),
        what,
    );
    let what = "GetItem";
    assert_eq!(
        ok(api.get_item(&table, "p", "a").await, what),
        Some(a.clone()),
        "{what}"
    );
    assert_eq!(
        ok(api.get_item(&table, "p", "none").await, what),
        None,
        "{what}: of an item that does not exist"
    );

    // Queries, the index, scans, pages.
    for i in 1..ITEMS {
        ok(
            api.put_item(
                &table,
                item("p", &format!("b{i}"), 5 + i as i64),
                WriteCondition::None,
            )
            .await,
            "PutItem",
        );
    }
    ok(
        api.put_item(&table, item("q", "z", 100), WriteCondition::None)
            .await,
        "PutItem",
    );
    let what = "Query of one hash key, every page";
    let items = pages(|next| api.query(&table, "p", next), what).await;
    assert_eq!(items.len(), ITEMS, "{what}: every item once");
    assert_eq!(ranges(&items).len(), ITEMS, "{what}: no item twice");
    let what = "Query of the kind index";
    let kind = pages(
        |next| api.query_kind(&table, "environment", None, next),
        what,
    )
    .await;
    assert_eq!(kind.len(), ITEMS + 1, "{what}: every item of the kind");
    let what = "Query of the kind index, updated before a bound";
    let before = pages(
        |next| api.query_kind(&table, "environment", Some(8), next),
        what,
    )
    .await;
    assert_eq!(before.len(), 3, "{what}");
    assert_eq!(
        ranges(&before),
        ["a", "b1", "b2"],
        "{what}: last_updated 5, 6, 7 are below 8"
    );
    let what = "Query of a kind without items";
    assert!(
        pages(|next| api.query_kind(&table, "none", None, next), what)
            .await
            .is_empty(),
        "{what}"
    );
    let what = "Scan, every page";
    let all = pages(|next| api.scan(&table, next), what).await;
    assert_eq!(all.len(), ITEMS + 1, "{what}: every item once");

    // Deletes.
    let what = "DeleteItem if present";
    assert_eq!(
        ok(
            api.delete_item(&table, "q", "z", WriteCondition::Exists)
                .await,
            what
        ),
        Some(item("q", "z", 100)),
        "{what}: the item removed"
    );
    assert_eq!(
        ok(api.get_item(&table, "q", "z").await, what),
        None,
        "{what}: gone"
    );
    let what = "DeleteItem if present, of an item that does not exist";
    failed(
        &err(
            api.delete_item(&table, "q", "z", WriteCondition::Exists)
                .await,
            what,
        ),
        what,
    );

    // Conditions on the stored item.
    let lease = |holder: &str, until: i64| {
        let mut it = item("l", "x", 1);
        it.insert("holder".into(), AttrValue::S(holder.into()));
        it.insert("until".into(), AttrValue::N(until.to_string()));
        it
    };
    let free = |now: i64| {
        ItemCondition::Any(vec![
            ItemCondition::Absent,
            ItemCondition::Missing("until".into()),
            ItemCondition::below("until", now),
        ])
    };
    let what = "a conditional put on an absent item";
    assert_eq!(
        ok(
            api.put_item_when(&table, lease("a", 100), &free(50)).await,
            what
        ),
        None,
        "{what}"
    );
    let what = "a conditional put whose condition does not hold";
    failed(
        &err(
            api.put_item_when(&table, lease("b", 200), &free(60)).await,
            what,
        ),
        what,
    );
    let what = "a conditional put whose condition holds";
    assert_eq!(
        ok(
            api.put_item_when(&table, lease("b", 200), &free(150)).await,
            what
        ),
        Some(lease("a", 100)),
        "{what}: the item replaced"
    );
    for (condition, holds) in [
        (ItemCondition::Exists, true),
        (ItemCondition::Absent, false),
        (ItemCondition::Has("holder".into()), true),
        (ItemCondition::Missing("holder".into()), false),
        (ItemCondition::equals("holder", "b"), true),
        (ItemCondition::equals("holder", "a"), false),
        (ItemCondition::below("until", 201), true),
        (ItemCondition::below("until", 200), false),
        (
            ItemCondition::All(vec![
                ItemCondition::equals("holder", "b"),
                ItemCondition::below("until", 100),
            ]),
            false,
        ),
        (
            ItemCondition::Any(vec![
                ItemCondition::equals("holder", "a"),
                ItemCondition::below("until", 300),
            ]),
            true,
        ),
        // Nested, as a lease check is: free, or held and expired.
        (
            ItemCondition::Any(vec![
                ItemCondition::Absent,
                ItemCondition::All(vec![
                    ItemCondition::Has("holder".into()),
                    ItemCondition::below("until", 250),
                ]),
            ]),
            true,
        ),
        (
            ItemCondition::Any(vec![
                ItemCondition::Absent,
                ItemCondition::All(vec![
                    ItemCondition::Has("holder".into()),
                    ItemCondition::below("until", 150),
                ]),
            ]),
            false,
        ),
    ] {
        let what = format!("a conditional update on {condition:?}");
        let update = ItemUpdate::default().set("checked", AttrValue::S("yes".into()));
        let result = api
            .update_item_when(&table, "l", "x", &update, &condition)
            .await;
        if holds {
            ok(result, &what);
        } else {
            failed(&err(result, &what), &what);
        }
    }
    let what = "a conditional delete whose condition does not hold";
    failed(
        &err(
            api.delete_item_when(&table, "l", "x", &ItemCondition::equals("holder", "a"))
                .await,
            what,
        ),
        what,
    );
    let what = "a conditional delete whose condition holds";
    let removed = ok(
        api.delete_item_when(&table, "l", "x", &ItemCondition::equals("holder", "b"))
            .await,
        what,
    )
    .unwrap_or_else(|| panic!("{what}: no item answered"));
    assert_eq!(
        removed.get("checked"),
        Some(&AttrValue::S("yes".into())),
        "{what}: the item as it was"
    );

    // Updates.
    let what = "an update creating the item";
    let update = ItemUpdate::default()
        .set("status", AttrValue::S("creating".into()))
        .set("until", AttrValue::N("100".into()))
        .set_if_absent(schema::LAST_UPDATED, AttrValue::N("7".into()));
    assert_eq!(
        ok(
            api.update_item_when(&table, "u", "1", &update, &ItemCondition::Absent)
                .await,
            what
        ),
        None,
        "{what}: nothing was there"
    );
    let what = "an update of an item that exists, under a condition that does not hold";
    failed(
        &err(
            api.update_item_when(&table, "u", "1", &update, &ItemCondition::Absent)
                .await,
            what,
        ),
        what,
    );
    let what = "an update setting, keeping and removing attributes";
    let again = ItemUpdate::default()
        .set_if_absent(schema::LAST_UPDATED, AttrValue::N("9".into()))
        .set("status", AttrValue::S("ready".into()))
        .remove("until");
    let old = ok(
        api.update_item_when(
            &table,
            "u",
            "1",
            &again,
            &ItemCondition::Has("status".into()),
        )
        .await,
        what,
    )
    .unwrap_or_else(|| panic!("{what}: the item as it was is missing"));
    assert_eq!(
        old.get("status"),
        Some(&AttrValue::S("creating".into())),
        "{what}: the item as it was"
    );
    let now = ok(api.get_item(&table, "u", "1").await, what)
        .unwrap_or_else(|| panic!("{what}: the item is gone"));
    assert_eq!(
        (
            now.get(schema::HASH_KEY),
            now.get(schema::LAST_UPDATED),
            now.get("status"),
            now.get("until")
        ),
        (
            Some(&AttrValue::S("u".into())),
            Some(&AttrValue::N("7".into())),
            Some(&AttrValue::S("ready".into())),
            None
        ),
        "{what}: key kept, set if absent kept, set replaced, removed gone"
    );
}

/// Every item of a paginated read, following the pages.
async fn pages<F, Fut>(mut read: F, what: &str) -> Vec<Item>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = crate::cloud::CloudResult<Page<Item>>>,
{
    let mut all = Vec::new();
    let mut next = None;
    loop {
        let page = ok(read(next).await, what);
        all.extend(page.items);
        match page.next {
            Some(n) => next = Some(n),
            None => return all,
        }
    }
}

/// The distinct range keys of `items`, sorted.
fn ranges(items: &[Item]) -> Vec<String> {
    let unique: std::collections::BTreeSet<&str> = items
        .iter()
        .filter_map(|i| i.get(schema::RANGE_KEY).and_then(AttrValue::as_s))
        .collect();
    unique.into_iter().map(str::to_owned).collect()
}
