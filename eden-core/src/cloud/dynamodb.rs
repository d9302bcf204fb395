//! Amazon DynamoDB as the state store: environments, leases and remote profiles
//! ([`StateStore`]).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{CloudError, CloudResult, Page, codes};

/// A DynamoDB attribute value (eden uses strings and numbers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AttrValue {
    /// String.
    S(String),
    /// Number, as text.
    N(String),
}

impl AttrValue {
    /// The string value.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            Self::S(s) => Some(s),
            Self::N(_) => None,
        }
    }

    /// The number value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::N(n) => n.parse().ok(),
            Self::S(_) => None,
        }
    }
}

/// An item.
pub type Item = BTreeMap<String, AttrValue>;

/// A write condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCondition {
    /// Unconditional.
    None,
    /// Only if no item has this key.
    NotExists,
    /// Only if an item has this key.
    Exists,
}

/// The state table's key schema and index.
pub mod schema {
    /// Default table name.
    pub const DEFAULT_TABLE: &str = "eden";
    /// Hash key.
    pub const HASH_KEY: &str = "type";
    /// Range key.
    pub const RANGE_KEY: &str = "name";
    /// Global secondary index on `kind` / `last_updated`.
    pub const KIND_INDEX: &str = "kind_last_updated_gsi";
    /// Index hash key.
    pub const KIND: &str = "kind";
    /// Index range key (epoch seconds).
    pub const LAST_UPDATED: &str = "last_updated";
}

/// A key-value state table (Amazon DynamoDB) with the schema of [`schema`].
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Creates the table when missing and waits until it is ACTIVE; true when created.
    async fn ensure_table(&self, table: &str) -> CloudResult<bool>;
    /// Writes an item under a condition; returns the item it replaced.
    async fn put_item(
        &self,
        table: &str,
        item: Item,
        condition: WriteCondition,
    ) -> CloudResult<Option<Item>>;
    /// Reads an item by `(type, name)`.
    async fn get_item(&self, table: &str, hash: &str, range: &str) -> CloudResult<Option<Item>>;
    /// Deletes an item; returns it when it existed.
    async fn delete_item(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: WriteCondition,
    ) -> CloudResult<Option<Item>>;
    /// One page of the items with this hash key.
    async fn query(&self, table: &str, hash: &str, next: Option<String>)
    -> CloudResult<Page<Item>>;
    /// One page of the index for `kind`, optionally only `last_updated < before`.
    async fn query_kind(
        &self,
        table: &str,
        kind: &str,
        before: Option<i64>,
        next: Option<String>,
    ) -> CloudResult<Page<Item>>;
    /// One page of the whole table.
    async fn scan(&self, table: &str, next: Option<String>) -> CloudResult<Page<Item>>;

    /// Writes an item only when `condition` holds for the item now stored under its key
    /// (`ConditionalCheckFailedException` otherwise); returns the item it replaced.
    ///
    /// The default reads, checks and writes with [`WriteCondition`]s and undoes a write that
    /// replaced something other than what it read, which keeps leases safe but is not atomic;
    /// stores with condition expressions (DynamoDB) override it.
    async fn put_item_when(
        &self,
        table: &str,
        item: Item,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let (hash, range) = item_key_of(&item)?;
        let current = self.get_item(table, &hash, &range).await?;
        if !condition.holds(current.as_ref()) {
            return Err(condition_failed());
        }
        let Some(seen) = current else {
            return self.put_item(table, item, WriteCondition::NotExists).await;
        };
        let replaced = self.put_item(table, item, WriteCondition::Exists).await?;
        if replaced.as_ref() != Some(&seen) {
            // Someone wrote between our read and write: put theirs back and lose.
            if let Some(theirs) = replaced {
                self.put_item(table, theirs, WriteCondition::None).await?;
            }
            return Err(condition_failed());
        }
        Ok(replaced)
    }

    /// Changes some attributes of an item (creating it when absent) only when `condition`
    /// holds (`ConditionalCheckFailedException` otherwise); returns the item as it was.
    /// DynamoDB's `UpdateItem` with `SET`, `if_not_exists` and `REMOVE`.
    ///
    /// The default reads, applies the update and writes with [`StateStore::put_item_when`]
    /// (not atomic; stores with update expressions override it).
    async fn update_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        update: &ItemUpdate,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let current = self.get_item(table, hash, range).await?;
        if !condition.holds(current.as_ref()) {
            return Err(condition_failed());
        }
        let next = update.apply(hash, range, current.as_ref());
        // Written only if the item is still the one read (or still absent).
        let unchanged = match &current {
            None => ItemCondition::Absent,
            Some(item) => ItemCondition::Same(item.clone()),
        };
        self.put_item_when(table, next, &unchanged).await?;
        Ok(current)
    }

    /// Deletes an item only when `condition` holds for it (`ConditionalCheckFailedException`
    /// otherwise); returns it. The default reads, checks and deletes (not atomic; override it
    /// where the store has condition expressions).
    async fn delete_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let current = self.get_item(table, hash, range).await?;
        if !condition.holds(current.as_ref()) {
            return Err(condition_failed());
        }
        self.delete_item(table, hash, range, WriteCondition::None)
            .await
    }
}

/// A condition on the item stored under a key, evaluated as DynamoDB evaluates a condition
/// expression: against the stored item, where an absent item has no attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemCondition {
    /// No item has the key (`attribute_not_exists` of the hash key).
    Absent,
    /// An item has the key.
    Exists,
    /// The item has this attribute.
    Has(String),
    /// The item lacks this attribute (true when there is no item).
    Missing(String),
    /// The item's string attribute `attribute` equals `value`.
    Equals {
        /// String attribute.
        attribute: String,
        /// Expected value.
        value: String,
    },
    /// The item's number attribute `attribute` is below `value`.
    Below {
        /// Number attribute.
        attribute: String,
        /// Bound (exclusive).
        value: i64,
    },
    /// The item is exactly this one (every attribute equal). Only the default
    /// [`StateStore::update_item_when`] uses it; stores need not translate it.
    Same(Item),
    /// Every condition holds.
    All(Vec<ItemCondition>),
    /// At least one condition holds.
    Any(Vec<ItemCondition>),
}

impl ItemCondition {
    /// [`ItemCondition::Equals`].
    pub fn equals(attribute: impl Into<String>, value: impl Into<String>) -> Self {
        Self::Equals {
            attribute: attribute.into(),
            value: value.into(),
        }
    }

    /// [`ItemCondition::Below`].
    pub fn below(attribute: impl Into<String>, value: i64) -> Self {
        Self::Below {
            attribute: attribute.into(),
            value,
        }
    }

    /// True when the condition holds for `current` (the stored item, if any).
    pub fn holds(&self, current: Option<&Item>) -> bool {
        match self {
            Self::Absent => current.is_none(),
            Self::Exists => current.is_some(),
            Self::Has(a) => current.is_some_and(|i| i.contains_key(a)),
            Self::Missing(a) => !current.is_some_and(|i| i.contains_key(a)),
            Self::Equals { attribute, value } => {
                current
                    .and_then(|i| i.get(attribute))
                    .and_then(AttrValue::as_s)
                    == Some(value.as_str())
            }
            Self::Below { attribute, value } => current
                .and_then(|i| i.get(attribute))
                .and_then(AttrValue::as_i64)
                .is_some_and(|v| v < *value),
            Self::Same(item) => current == Some(item),
            Self::All(all) => all.iter().all(|c| c.holds(current)),
            Self::Any(any) => any.iter().any(|c| c.holds(current)),
        }
    }
}

/// An update of some attributes of one item (DynamoDB `UpdateItem`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemUpdate {
    /// Attributes set (`SET #a = :v`).
    pub set: Item,
    /// Attributes set only when the item lacks them (`SET #a = if_not_exists(#a, :v)`).
    pub set_if_absent: Item,
    /// Attributes removed (`REMOVE #a`).
    pub remove: Vec<String>,
}

impl ItemUpdate {
    /// Sets `attribute`.
    pub fn set(mut self, attribute: impl Into<String>, value: AttrValue) -> Self {
        self.set.insert(attribute.into(), value);
        self
    }

    /// Sets `attribute` unless the item has it.
    pub fn set_if_absent(mut self, attribute: impl Into<String>, value: AttrValue) -> Self {
        self.set_if_absent.insert(attribute.into(), value);
        self
    }

    /// Removes `attribute`.
    pub fn remove(mut self, attribute: impl Into<String>) -> Self {
        self.remove.push(attribute.into());
        self
    }

    /// The item after the update, from the item before (or none).
    pub fn apply(&self, hash: &str, range: &str, current: Option<&Item>) -> Item {
        let mut item = current.cloned().unwrap_or_else(|| {
            Item::from([
                (schema::HASH_KEY.into(), AttrValue::S(hash.to_owned())),
                (schema::RANGE_KEY.into(), AttrValue::S(range.to_owned())),
            ])
        });
        for (k, v) in &self.set_if_absent {
            item.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &self.set {
            item.insert(k.clone(), v.clone());
        }
        for k in &self.remove {
            item.remove(k);
        }
        item
    }
}

fn condition_failed() -> CloudError {
    CloudError::new(
        codes::CONDITIONAL_CHECK_FAILED,
        "The conditional request failed",
    )
}

fn item_key_of(item: &Item) -> CloudResult<(String, String)> {
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
