//! [`StateStore`] in memory: tables, condition and update expressions applied atomically, pages.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{MemoryCloud, World, err, paginate};
use crate::cloud::{
    AttrValue, CloudError, CloudResult, Item, ItemCondition, ItemUpdate, Page, StateStore,
    WriteCondition, codes, schema,
};

impl MemoryCloud {
    /// Sets a state item's `last_updated` (to test the expiry sweep).
    pub fn set_last_updated(&self, table: &str, hash: &str, range: &str, epoch: i64) -> bool {
        let mut w = self.lock();
        let Some(item) = w
            .tables
            .get_mut(table)
            .and_then(|t| t.get_mut(&(hash.to_owned(), range.to_owned())))
        else {
            return false;
        };
        item.insert(schema::LAST_UPDATED.into(), AttrValue::N(epoch.to_string()));
        true
    }
}

impl MemoryCloud {
    /// Creates a state table with aws-eden-cli 0.1.5's layout (hash key `env_name`): scans
    /// return its items, keyed calls fail with [`codes::LEGACY_STATE_TABLE`], as the AWS
    /// implementation reports DynamoDB's key-schema refusal on such a table.
    pub fn create_legacy_table(&self, table: &str) {
        let mut w = self.lock();
        w.tables.insert(table.to_owned(), BTreeMap::new());
        w.legacy_tables.insert(table.to_owned());
    }

    /// Writes an item into a table made by [`MemoryCloud::create_legacy_table`] (keyed by its
    /// `env_name`); false when there is no such table or the item has no `env_name`.
    pub fn put_legacy_item(&self, table: &str, item: Item) -> bool {
        let mut w = self.lock();
        if !w.legacy_tables.contains(table) {
            return false;
        }
        let Some(key) = item.get(LEGACY_HASH_KEY).and_then(AttrValue::as_s) else {
            return false;
        };
        let key = (key.to_owned(), String::new());
        match w.tables.get_mut(table) {
            Some(t) => {
                t.insert(key, item);
                true
            }
            None => false,
        }
    }
}

/// aws-eden-cli 0.1.5's hash key.
const LEGACY_HASH_KEY: &str = "env_name";

fn legacy_refusal(table: &str) -> CloudError {
    CloudError::new(
        codes::LEGACY_STATE_TABLE,
        format!("{table}: the table's key is env_name (aws-eden-cli 0.1.5), not type/name"),
    )
}

fn item_key(item: &Item) -> CloudResult<(String, String)> {
    let get = |k: &str| {
        item.get(k)
            .and_then(AttrValue::as_s)
            .map(str::to_owned)
            .ok_or_else(|| {
                CloudError::new("ValidationException", format!("missing key attribute {k}"))
            })
    };
    Ok((get(schema::HASH_KEY)?, get(schema::RANGE_KEY)?))
}

fn check_condition(exists: bool, condition: WriteCondition) -> CloudResult<()> {
    match (condition, exists) {
        (WriteCondition::NotExists, true) | (WriteCondition::Exists, false) => err(
            codes::CONDITIONAL_CHECK_FAILED,
            "The conditional request failed",
        ),
        _ => Ok(()),
    }
}

impl MemoryCloud {
    /// A table for keyed calls (a legacy-layout table refuses them).
    fn table<'a>(
        w: &'a mut World,
        table: &str,
    ) -> CloudResult<&'a mut BTreeMap<(String, String), Item>> {
        if w.legacy_tables.contains(table) {
            return Err(legacy_refusal(table));
        }
        Self::any_table(w, table)
    }

    fn any_table<'a>(
        w: &'a mut World,
        table: &str,
    ) -> CloudResult<&'a mut BTreeMap<(String, String), Item>> {
        w.tables.get_mut(table).ok_or_else(|| {
            CloudError::new("ResourceNotFoundException", "Requested resource not found")
        })
    }
}

#[async_trait]
impl StateStore for MemoryCloud {
    async fn ensure_table(&self, table: &str) -> CloudResult<bool> {
        // DynamoDB's table names: 3 to 255 letters, digits, `_`, `-` and `.`.
        let valid = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return err(
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{table}' at 'tableName' failed to \
                     satisfy constraint: 3 to 255 characters of [a-zA-Z0-9_.-]"
                ),
            );
        }
        let mut w = self.lock();
        if w.legacy_tables.contains(table) {
            return Err(legacy_refusal(table));
        }
        if w.tables.contains_key(table) {
            return Ok(false);
        }
        w.tables.insert(table.to_owned(), BTreeMap::new());
        Ok(true)
    }

    async fn put_item(
        &self,
        table: &str,
        item: Item,
        condition: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let key = item_key(&item)?;
        let t = Self::table(&mut w, table)?;
        check_condition(t.contains_key(&key), condition)?;
        Ok(t.insert(key, item))
    }

    async fn get_item(&self, table: &str, hash: &str, range: &str) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        Ok(t.get(&(hash.to_owned(), range.to_owned())).cloned())
    }

    async fn delete_item(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let key = (hash.to_owned(), range.to_owned());
        check_condition(t.contains_key(&key), condition)?;
        Ok(t.remove(&key))
    }

    async fn query(
        &self,
        table: &str,
        hash: &str,
        next: Option<String>,
    ) -> CloudResult<Page<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let items: Vec<Item> = t
            .iter()
            .filter(|((h, _), _)| h == hash)
            .map(|(_, i)| i.clone())
            .collect();
        paginate(&items, next, self.options.state_page_size)
    }

    async fn query_kind(
        &self,
        table: &str,
        kind: &str,
        before: Option<i64>,
        next: Option<String>,
    ) -> CloudResult<Page<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let mut items: Vec<Item> = t
            .values()
            .filter(|i| i.get(schema::KIND).and_then(AttrValue::as_s) == Some(kind))
            .filter(|i| {
                let updated = i.get(schema::LAST_UPDATED).and_then(AttrValue::as_i64);
                match (before, updated) {
                    (None, Some(_)) => true,
                    (Some(b), Some(u)) => u < b,
                    (_, None) => false,
                }
            })
            .cloned()
            .collect();
        items.sort_by_key(|i| i.get(schema::LAST_UPDATED).and_then(AttrValue::as_i64));
        paginate(&items, next, self.options.state_page_size)
    }

    async fn scan(&self, table: &str, next: Option<String>) -> CloudResult<Page<Item>> {
        let mut w = self.lock();
        let t = Self::any_table(&mut w, table)?;
        let items: Vec<Item> = t.values().cloned().collect();
        paginate(&items, next, self.options.state_page_size)
    }

    // Atomic under the world lock, like a DynamoDB condition expression.
    async fn put_item_when(
        &self,
        table: &str,
        item: Item,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let key = item_key(&item)?;
        let t = Self::table(&mut w, table)?;
        if !condition.holds(t.get(&key)) {
            return err(
                codes::CONDITIONAL_CHECK_FAILED,
                "The conditional request failed",
            );
        }
        Ok(t.insert(key, item))
    }

    async fn update_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        update: &ItemUpdate,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let key = (hash.to_owned(), range.to_owned());
        let current = t.get(&key);
        if !condition.holds(current) {
            return err(
                codes::CONDITIONAL_CHECK_FAILED,
                "The conditional request failed",
            );
        }
        let next = update.apply(hash, range, current);
        Ok(t.insert(key, next))
    }

    async fn delete_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let key = (hash.to_owned(), range.to_owned());
        if !condition.holds(t.get(&key)) {
            return err(
                codes::CONDITIONAL_CHECK_FAILED,
                "The conditional request failed",
            );
        }
        Ok(t.remove(&key))
    }
}
