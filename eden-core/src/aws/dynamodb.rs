//! [`StateStore`] on `aws-sdk-dynamodb`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_types::SdkConfig;

use super::error::{build_error, map_sdk_error};
use crate::cloud::{
    AttrValue, CloudError, CloudResult, Item, ItemCondition, ItemUpdate, Page, StateStore,
    WriteCondition, codes, schema,
};

/// [`StateStore`] on `aws-sdk-dynamodb`.
#[derive(Debug, Clone)]
pub struct AwsDynamoDb {
    client: aws_sdk_dynamodb::Client,
    poll: std::time::Duration,
}

impl AwsDynamoDb {
    /// A client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_client(aws_sdk_dynamodb::Client::new(config))
    }

    /// Wraps an existing client.
    pub fn from_client(client: aws_sdk_dynamodb::Client) -> Self {
        Self {
            client,
            poll: std::time::Duration::from_secs(2),
        }
    }

    /// The table's status and hash key, `None` when it does not exist.
    async fn describe(&self, table: &str) -> CloudResult<Option<(String, String)>> {
        match self.client.describe_table().table_name(table).send().await {
            Ok(out) => {
                let t = out.table();
                let status = t
                    .and_then(|t| t.table_status())
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default();
                let hash = t
                    .map(|t| t.key_schema())
                    .unwrap_or_default()
                    .iter()
                    .find(|k| k.key_type() == &aws_sdk_dynamodb::types::KeyType::Hash)
                    .map(|k| k.attribute_name().to_owned())
                    .unwrap_or_default();
                Ok(Some((status, hash)))
            }
            Err(e) => {
                let e = map_sdk_error(e);
                if e.code == "ResourceNotFoundException" {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn table_status(&self, table: &str) -> CloudResult<Option<String>> {
        let described = self.describe(table).await?;
        if let Some((_, hash)) = &described {
            check_layout(table, hash)?;
        }
        Ok(described.map(|(status, _)| status))
    }

    /// A call refused for its key (`ValidationException`), or for eden's index (DynamoDB's
    /// `ValidationException`, moto's `ResourceNotFoundException`) on a table of another layout
    /// is reported as that layout ([`codes::LEGACY_STATE_TABLE`] for aws-eden-cli 0.1.5's).
    async fn explained<T>(&self, table: &str, result: CloudResult<T>) -> CloudResult<T> {
        match result {
            Err(e) if e.code == "ValidationException" || e.code == "ResourceNotFoundException" => {
                match self.describe(table).await {
                    Ok(Some((_, hash))) => check_layout(table, &hash).and(Err(e)),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    async fn create_table(&self, table: &str) -> CloudResult<()> {
        use aws_sdk_dynamodb::types as t;
        let attr = |name: &str, kind: t::ScalarAttributeType| {
            t::AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, kind: t::KeyType| {
            t::KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build_error)
        };
        let index = t::GlobalSecondaryIndex::builder()
            .index_name(schema::KIND_INDEX)
            .key_schema(key(schema::KIND, t::KeyType::Hash)?)
            .key_schema(key(schema::LAST_UPDATED, t::KeyType::Range)?)
            .projection(
                t::Projection::builder()
                    .projection_type(t::ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build_error)?;
        let created = self
            .client
            .create_table()
            .table_name(table)
            .attribute_definitions(attr(schema::HASH_KEY, t::ScalarAttributeType::S)?)
            .attribute_definitions(attr(schema::RANGE_KEY, t::ScalarAttributeType::S)?)
            .attribute_definitions(attr(schema::KIND, t::ScalarAttributeType::S)?)
            .attribute_definitions(attr(schema::LAST_UPDATED, t::ScalarAttributeType::N)?)
            .key_schema(key(schema::HASH_KEY, t::KeyType::Hash)?)
            .key_schema(key(schema::RANGE_KEY, t::KeyType::Range)?)
            .global_secondary_indexes(index)
            .billing_mode(t::BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = map_sdk_error(e);
                // Someone else is creating it: wait for it like for ours.
                if e.code == "ResourceInUseException" {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Refuses a table whose hash key is not eden's.
fn check_layout(table: &str, hash: &str) -> CloudResult<()> {
    match hash {
        h if h == schema::HASH_KEY || h.is_empty() => Ok(()),
        "env_name" => Err(CloudError::new(
            codes::LEGACY_STATE_TABLE,
            format!("{table}: the table's key is env_name (aws-eden-cli 0.1.5), not type/name"),
        )),
        other => Err(CloudError::new(
            "ValidationException",
            format!(
                "table {table} has hash key {other:?}; eden's state table has hash key {:?} and \
                 range key {:?}",
                schema::HASH_KEY,
                schema::RANGE_KEY
            ),
        )),
    }
}

fn to_attr(v: &AttrValue) -> aws_sdk_dynamodb::types::AttributeValue {
    match v {
        AttrValue::S(s) => aws_sdk_dynamodb::types::AttributeValue::S(s.clone()),
        AttrValue::N(n) => aws_sdk_dynamodb::types::AttributeValue::N(n.clone()),
    }
}

fn to_item(item: &Item) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    item.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()
}

/// Attributes other than strings and numbers are not eden's; they are skipped.
fn from_item(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> Item {
    item.iter()
        .filter_map(|(k, v)| match v {
            aws_sdk_dynamodb::types::AttributeValue::S(s) => {
                Some((k.clone(), AttrValue::S(s.clone())))
            }
            aws_sdk_dynamodb::types::AttributeValue::N(n) => {
                Some((k.clone(), AttrValue::N(n.clone())))
            }
            _ => None,
        })
        .collect()
}

fn encode_token(
    key: Option<&HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) -> Option<String> {
    let key = key.filter(|k| !k.is_empty())?;
    serde_json::to_string(&from_item(key)).ok()
}

fn decode_token(
    token: Option<String>,
) -> CloudResult<Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>> {
    token
        .map(|t| {
            serde_json::from_str::<Item>(&t)
                .map(|i| to_item(&i))
                .map_err(|e| CloudError::new("ValidationException", format!("bad page token: {e}")))
        })
        .transpose()
}

fn condition(c: WriteCondition) -> Option<&'static str> {
    match c {
        WriteCondition::None => None,
        WriteCondition::NotExists => Some("attribute_not_exists(#h)"),
        WriteCondition::Exists => Some("attribute_exists(#h)"),
    }
}

/// A condition or update expression with its placeholders.
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
}

impl Expression {
    fn name(&mut self, attribute: &str) -> String {
        if let Some((k, _)) = self.names.iter().find(|(_, v)| *v == attribute) {
            return k.clone();
        }
        let key = format!("#n{}", self.names.len());
        self.names.insert(key.clone(), attribute.to_owned());
        key
    }

    fn value(&mut self, value: aws_sdk_dynamodb::types::AttributeValue) -> String {
        let key = format!(":v{}", self.values.len());
        self.values.insert(key.clone(), value);
        key
    }

    /// An [`ItemCondition`] as a DynamoDB condition expression, checked atomically.
    fn condition(&mut self, condition: &ItemCondition) -> CloudResult<String> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        Ok(match condition {
            ItemCondition::Absent => {
                format!("attribute_not_exists({})", self.name(schema::HASH_KEY))
            }
            ItemCondition::Exists => format!("attribute_exists({})", self.name(schema::HASH_KEY)),
            ItemCondition::Has(a) => format!("attribute_exists({})", self.name(a)),
            ItemCondition::Missing(a) => format!("attribute_not_exists({})", self.name(a)),
            ItemCondition::Equals { attribute, value } => {
                format!(
                    "{} = {}",
                    self.name(attribute),
                    self.value(A::S(value.clone()))
                )
            }
            ItemCondition::Below { attribute, value } => {
                format!(
                    "{} < {}",
                    self.name(attribute),
                    self.value(A::N(value.to_string()))
                )
            }
            ItemCondition::All(all) if all.is_empty() => {
                format!(
                    "attribute_exists({0}) OR attribute_not_exists({0})",
                    self.name(schema::HASH_KEY)
                )
            }
            ItemCondition::Any(any) if any.is_empty() => {
                format!(
                    "attribute_exists({0}) AND attribute_not_exists({0})",
                    self.name(schema::HASH_KEY)
                )
            }
            ItemCondition::All(all) => all
                .iter()
                .map(|c| self.condition(c).map(|e| format!("({e})")))
                .collect::<CloudResult<Vec<_>>>()?
                .join(" AND "),
            ItemCondition::Any(any) => any
                .iter()
                .map(|c| self.condition(c).map(|e| format!("({e})")))
                .collect::<CloudResult<Vec<_>>>()?
                .join(" OR "),
            other => {
                return Err(CloudError::new(
                    "ValidationException",
                    format!("condition {other:?} has no DynamoDB expression"),
                ));
            }
        })
    }

    /// An [`ItemUpdate`] as an update expression.
    fn update(&mut self, update: &ItemUpdate) -> String {
        let mut sets = Vec::new();
        for (k, v) in &update.set {
            let (n, v) = (self.name(k), self.value(to_attr(v)));
            sets.push(format!("{n} = {v}"));
        }
        for (k, v) in &update.set_if_absent {
            let (n, v) = (self.name(k), self.value(to_attr(v)));
            sets.push(format!("{n} = if_not_exists({n}, {v})"));
        }
        let removes: Vec<String> = update.remove.iter().map(|k| self.name(k)).collect();
        let mut out = String::new();
        if !sets.is_empty() {
            out.push_str("SET ");
            out.push_str(&sets.join(", "));
        }
        if !removes.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str("REMOVE ");
            out.push_str(&removes.join(", "));
        }
        out
    }
}

#[async_trait]
impl StateStore for AwsDynamoDb {
    async fn ensure_table(&self, table: &str) -> CloudResult<bool> {
        let mut created = false;
        for _ in 0..150 {
            match self.table_status(table).await?.as_deref() {
                Some("ACTIVE") => return Ok(created),
                None if !created => {
                    self.create_table(table).await?;
                    created = true;
                    continue;
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        }
        Err(CloudError::new(
            "Timeout",
            format!("table {table} did not become ACTIVE"),
        ))
    }

    async fn put_item(
        &self,
        table: &str,
        item: Item,
        c: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        let cond = condition(c);
        let out = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(to_item(&item)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .set_condition_expression(cond.map(str::to_owned))
            .set_expression_attribute_names(
                cond.map(|_| HashMap::from([("#h".to_owned(), schema::HASH_KEY.to_owned())])),
            )
            .send()
            .await
            .map_err(map_sdk_error);
        let out = self.explained(table, out).await?;
        Ok(out.attributes().filter(|a| !a.is_empty()).map(from_item))
    }

    async fn get_item(&self, table: &str, hash: &str, range: &str) -> CloudResult<Option<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key(schema::HASH_KEY, A::S(hash.to_owned()))
            .key(schema::RANGE_KEY, A::S(range.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_sdk_error);
        let out = self.explained(table, out).await?;
        Ok(out.item().map(from_item))
    }

    async fn delete_item(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        c: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let cond = condition(c);
        let out = self
            .client
            .delete_item()
            .table_name(table)
            .key(schema::HASH_KEY, A::S(hash.to_owned()))
            .key(schema::RANGE_KEY, A::S(range.to_owned()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .set_condition_expression(cond.map(str::to_owned))
            .set_expression_attribute_names(
                cond.map(|_| HashMap::from([("#h".to_owned(), schema::HASH_KEY.to_owned())])),
            )
            .send()
            .await
            .map_err(map_sdk_error);
        let out = self.explained(table, out).await?;
        Ok(out.attributes().filter(|a| !a.is_empty()).map(from_item))
    }

    async fn query(
        &self,
        table: &str,
        hash: &str,
        next: Option<String>,
    ) -> CloudResult<Page<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let out = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("#h = :h")
            .expression_attribute_names("#h", schema::HASH_KEY)
            .expression_attribute_values(":h", A::S(hash.to_owned()))
            .consistent_read(true)
            .set_exclusive_start_key(decode_token(next)?)
            .send()
            .await
            .map_err(map_sdk_error);
        let out = self.explained(table, out).await?;
        Ok(Page {
            items: out.items().iter().map(from_item).collect(),
            next: encode_token(out.last_evaluated_key()),
        })
    }

    async fn query_kind(
        &self,
        table: &str,
        kind: &str,
        before: Option<i64>,
        next: Option<String>,
    ) -> CloudResult<Page<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let mut q = self
            .client
            .query()
            .table_name(table)
            .index_name(schema::KIND_INDEX)
            .expression_attribute_names("#k", schema::KIND)
            .expression_attribute_values(":k", A::S(kind.to_owned()))
            .set_exclusive_start_key(decode_token(next)?);
        q = match before {
            Some(b) => q
                .key_condition_expression("#k = :k AND #u < :u")
                .expression_attribute_names("#u", schema::LAST_UPDATED)
                .expression_attribute_values(":u", A::N(b.to_string())),
            None => q.key_condition_expression("#k = :k"),
        };
        let out = q.send().await.map_err(map_sdk_error);
        let out = self.explained(table, out).await?;
        Ok(Page {
            items: out.items().iter().map(from_item).collect(),
            next: encode_token(out.last_evaluated_key()),
        })
    }

    async fn put_item_when(
        &self,
        table: &str,
        item: Item,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let mut e = Expression::default();
        let expression = e.condition(condition)?;
        let out = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(to_item(&item)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .condition_expression(expression)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values((!e.values.is_empty()).then_some(e.values))
            .send()
            .await
            .map_err(map_sdk_error);
        let out = self.explained(table, out).await?;
        Ok(out.attributes().filter(|a| !a.is_empty()).map(from_item))
    }

    async fn update_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        update: &ItemUpdate,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let mut e = Expression::default();
        let expression = e.condition(condition)?;
        let update_expression = e.update(update);
        let out = self
            .client
            .update_item()
            .table_name(table)
            .key(schema::HASH_KEY, A::S(hash.to_owned()))
            .key(schema::RANGE_KEY, A::S(range.to_owned()))
            .update_expression(update_expression)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .condition_expression(expression)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values((!e.values.is_empty()).then_some(e.values))
            .send()
            .await
            .map_err(map_sdk_error);
        let out = self.explained(table, out).await?;
        Ok(out.attributes().filter(|a| !a.is_empty()).map(from_item))
    }

    async fn delete_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let mut e = Expression::default();
        let expression = e.condition(condition)?;
        let out = self
            .client
            .delete_item()
            .table_name(table)
            .key(schema::HASH_KEY, A::S(hash.to_owned()))
            .key(schema::RANGE_KEY, A::S(range.to_owned()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .condition_expression(expression)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values((!e.values.is_empty()).then_some(e.values))
            .send()
            .await
            .map_err(map_sdk_error);
        let out = self.explained(table, out).await?;
        Ok(out.attributes().filter(|a| !a.is_empty()).map(from_item))
    }

    async fn scan(&self, table: &str, next: Option<String>) -> CloudResult<Page<Item>> {
        let out = self
            .client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(decode_token(next)?)
            .send()
            .await
            .map_err(map_sdk_error);
        let out = self.explained(table, out).await?;
        Ok(Page {
            items: out.items().iter().map(from_item).collect(),
            next: encode_token(out.last_evaluated_key()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip() {
        let key = to_item(&Item::from([
            ("type".into(), AttrValue::S("p".into())),
            ("last_updated".into(), AttrValue::N("5".into())),
        ]));
        let token = encode_token(Some(&key));
        assert_eq!(decode_token(token).unwrap(), Some(key));
        assert_eq!(encode_token(Some(&HashMap::new())), None);
    }
}
