//! KPL record aggregation and deaggregation.
//!
//! The format (from the Kinesis Producer Library's `aggregation-format.md`) is the 4-byte magic
//! `F3 89 9A C2`, a protobuf `AggregatedRecord`, and the 16-byte MD5 digest of the protobuf
//! bytes. Deaggregation follows the reference deaggregators: a record that does not carry the
//! magic, whose digest does not match, or whose protobuf does not decode is passed through
//! unchanged as one user record. Aggregation writes the same bytes as the reference Python
//! aggregator (`aws_kinesis_agg`) for the same input.

use bytes::Bytes;
use md5::{Digest, Md5};
use prost::Message;

/// The magic bytes that start every aggregated record.
pub const MAGIC: [u8; 4] = [0xf3, 0x89, 0x9a, 0xc2];

/// Length of the MD5 trailer.
pub const DIGEST_LEN: usize = 16;

/// Default bound on one aggregated record, counting its partition key as Kinesis does: the
/// KPL's `AggregationMaxSize` default of 51,200 bytes. Small aggregates spread a batch over
/// the shards, and a failed one resends little; a bound up to the stream's record size (1 MiB
/// by default) is allowed.
pub const DEFAULT_MAX_AGGREGATED_BYTES: usize = 51_200;

mod pb {
    //! The protobuf messages of the aggregation format (proto2).
    #![allow(missing_docs)]

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AggregatedRecord {
        #[prost(string, repeated, tag = "1")]
        pub partition_key_table: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub explicit_hash_key_table: Vec<String>,
        #[prost(message, repeated, tag = "3")]
        pub records: Vec<Record>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Record {
        #[prost(uint64, required, tag = "1")]
        pub partition_key_index: u64,
        #[prost(uint64, optional, tag = "2")]
        pub explicit_hash_key_index: Option<u64>,
        #[prost(bytes = "bytes", required, tag = "3")]
        pub data: bytes::Bytes,
        #[prost(message, repeated, tag = "4")]
        pub tags: Vec<Tag>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tag {
        #[prost(string, required, tag = "1")]
        pub key: String,
        #[prost(string, optional, tag = "2")]
        pub value: Option<String>,
    }
}

/// One user record: the unit a producer writes and a consumer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The record's bytes.
    pub data: Bytes,
    /// The partition key.
    pub partition_key: String,
    /// The explicit hash key (a decimal 128-bit integer), when one was given.
    pub explicit_hash_key: Option<String>,
}

impl UserRecord {
    /// A user record with no explicit hash key.
    pub fn new(data: impl Into<Bytes>, partition_key: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            partition_key: partition_key.into(),
            explicit_hash_key: None,
        }
    }
}

/// Whether `data` has the KPL magic prefix. A record with the prefix may still fail the
/// digest check; [`deaggregate`] decides.
pub fn has_magic(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Expands an aggregated record into its user records, without copying their data.
///
/// Returns `None` when `data` is not a valid aggregated record (no magic, too short, digest
/// mismatch, protobuf that does not decode, or a key index out of range): such a record is
/// one plain user record, as the reference deaggregators treat it.
///
/// ```
/// use kinesis_utils::kpl::{deaggregate, Aggregator, UserRecord};
/// let mut agg = Aggregator::default();
/// agg.add(UserRecord::new(&b"one"[..], "pk-1")).unwrap();
/// agg.add(UserRecord::new(&b"two"[..], "pk-2")).unwrap();
/// let record = agg.flush().unwrap();
/// let users = deaggregate(&record.data).unwrap();
/// assert_eq!(users[1].data, &b"two"[..]);
/// assert_eq!(users[1].partition_key, "pk-2");
/// assert!(deaggregate(&bytes::Bytes::from_static(b"{\"plain\":1}")).is_none());
/// ```
pub fn deaggregate(data: &Bytes) -> Option<Vec<UserRecord>> {
    let agg = decode_checked(data)?;
    let pks = agg.partition_key_table;
    let ehks = agg.explicit_hash_key_table;
    agg.records
        .into_iter()
        .map(|r| {
            let partition_key = pks
                .get(usize::try_from(r.partition_key_index).ok()?)?
                .clone();
            let explicit_hash_key = match r.explicit_hash_key_index {
                Some(i) => Some(ehks.get(usize::try_from(i).ok()?)?.clone()),
                None => None,
            };
            Some(UserRecord {
                data: r.data,
                partition_key,
                explicit_hash_key,
            })
        })
        .collect()
}

/// Expands an aggregated record into its user records' data only, without copying it; the
/// same checks as [`deaggregate`] apply, but no partition key is allocated.
///
/// ```
/// use kinesis_utils::kpl::{aggregate_all, deaggregate_data, UserRecord};
/// let agg = aggregate_all([UserRecord::new(&b"a"[..], "k"), UserRecord::new(&b"b"[..], "k")], 1024).unwrap();
/// assert_eq!(deaggregate_data(&agg[0].data).unwrap(), [&b"a"[..], &b"b"[..]]);
/// ```
pub fn deaggregate_data(data: &Bytes) -> Option<Vec<Bytes>> {
    data_of(decode_checked(data)?)
}

/// [`deaggregate_data`] for a record whose digest the caller has already compared
/// (`digest_ok`), for example with many records hashed at once.
pub(crate) fn deaggregate_data_prechecked(data: &Bytes, digest_ok: bool) -> Option<Vec<Bytes>> {
    if !digest_ok {
        return None;
    }
    let (body, _) = body_and_digest(data)?;
    data_of(pb::AggregatedRecord::decode(data.slice_ref(body)).ok()?)
}

fn data_of(agg: pb::AggregatedRecord) -> Option<Vec<Bytes>> {
    let (pks, ehks) = (
        agg.partition_key_table.len(),
        agg.explicit_hash_key_table.len(),
    );
    agg.records
        .into_iter()
        .map(|r| {
            let pk_ok = usize::try_from(r.partition_key_index).is_ok_and(|i| i < pks);
            let ehk_ok = r
                .explicit_hash_key_index
                .is_none_or(|i| usize::try_from(i).is_ok_and(|i| i < ehks));
            (pk_ok && ehk_ok).then_some(r.data)
        })
        .collect()
}

/// The protobuf body and the digest the record claims for it, when `data` has the magic and
/// room for both.
pub(crate) fn body_and_digest(data: &[u8]) -> Option<(&[u8], &[u8])> {
    if !has_magic(data) || data.len() <= MAGIC.len() + DIGEST_LEN {
        return None;
    }
    let body_end = data.len() - DIGEST_LEN;
    Some((data.get(MAGIC.len()..body_end)?, data.get(body_end..)?))
}

/// Checks magic and digest and decodes the protobuf; `None` when any of it fails.
fn decode_checked(data: &Bytes) -> Option<pb::AggregatedRecord> {
    let (body, digest) = body_and_digest(data)?;
    if Md5::digest(body).as_slice() != digest {
        return None;
    }
    // Decoding from `Bytes` makes every `data` field a zero-copy slice of the input.
    pb::AggregatedRecord::decode(data.slice_ref(body)).ok()
}

/// A finished aggregated record, ready for `PutRecords`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatedRecord {
    /// Partition key of the first user record, used for the whole aggregate.
    pub partition_key: String,
    /// Explicit hash key of the first user record, if it had one.
    pub explicit_hash_key: Option<String>,
    /// Magic, protobuf and MD5 digest.
    pub data: Bytes,
    /// How many user records it holds.
    pub user_records: usize,
}

/// A user record that cannot fit in any aggregated record of the configured size.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error(
    "user record with partition key {partition_key:?} needs {size} bytes aggregated, over the limit of {limit}"
)]
pub struct RecordTooLarge {
    /// The record's partition key.
    pub partition_key: String,
    /// Bytes it would take in an otherwise empty aggregated record.
    pub size: usize,
    /// The configured bound.
    pub limit: usize,
}

/// Packs user records into aggregated records of at most a configured size.
///
/// Feed records with [`Aggregator::add`]; it returns a finished record whenever the next one
/// would not fit. Call [`Aggregator::flush`] at the end for the last one.
#[derive(Debug)]
pub struct Aggregator {
    max_bytes: usize,
    current: pb::AggregatedRecord,
    // Protobuf body size of `current` as encoded, kept incrementally.
    body_len: usize,
    first_pk: Option<(String, Option<String>)>,
    pk_index: std::collections::HashMap<String, u64>,
    ehk_index: std::collections::HashMap<String, u64>,
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_AGGREGATED_BYTES)
    }
}

impl Aggregator {
    /// An aggregator whose records, partition key included, stay within `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            current: pb::AggregatedRecord::default(),
            body_len: 0,
            first_pk: None,
            pk_index: Default::default(),
            ehk_index: Default::default(),
        }
    }

    /// Number of user records in the aggregate being built.
    pub fn len(&self) -> usize {
        self.current.records.len()
    }

    /// Whether no user record is waiting.
    pub fn is_empty(&self) -> bool {
        self.current.records.is_empty()
    }

    /// Whether `record` fits in the aggregate being built: with [`Aggregator::add`] it would
    /// join it rather than start the next one (or be refused, for an empty aggregate).
    /// Lets a caller choose the key of the next aggregate before adding to it.
    pub fn fits(&self, record: &UserRecord) -> bool {
        let pk_len = self
            .first_pk
            .as_ref()
            .map_or(record.partition_key.len(), |(pk, _)| pk.len());
        MAGIC.len() + self.body_len + self.size_with(record) + DIGEST_LEN + pk_len <= self.max_bytes
    }

    /// Adds a user record. Returns the previous aggregate when this record did not fit in it.
    pub fn add(&mut self, record: UserRecord) -> Result<Option<AggregatedRecord>, RecordTooLarge> {
        if self.fits(&record) {
            let grown = self.size_with(&record);
            self.push(record, grown);
            return Ok(None);
        }
        let alone = Aggregator::new(self.max_bytes).size_with(&record);
        let alone_total = MAGIC.len() + alone + DIGEST_LEN + record.partition_key.len();
        if alone_total > self.max_bytes || self.is_empty() {
            return Err(RecordTooLarge {
                partition_key: record.partition_key,
                size: alone_total,
                limit: self.max_bytes,
            });
        }
        let done = self.flush();
        let grown = self.size_with(&record);
        self.push(record, grown);
        Ok(done)
    }

    /// Finishes the aggregate being built, if any.
    pub fn flush(&mut self) -> Option<AggregatedRecord> {
        if self.current.records.is_empty() {
            return None;
        }
        let agg = std::mem::take(&mut self.current);
        let (partition_key, explicit_hash_key) = self.first_pk.take().unwrap_or_default();
        self.body_len = 0;
        self.pk_index.clear();
        self.ehk_index.clear();
        let mut out = Vec::with_capacity(MAGIC.len() + agg.encoded_len() + DIGEST_LEN);
        out.extend_from_slice(&MAGIC);
        // Encoding into a Vec with enough capacity cannot fail.
        agg.encode_raw(&mut out);
        let digest = Md5::digest(out.get(MAGIC.len()..).unwrap_or_default());
        out.extend_from_slice(&digest);
        Some(AggregatedRecord {
            partition_key,
            explicit_hash_key,
            data: Bytes::from(out),
            user_records: agg.records.len(),
        })
    }

    /// Protobuf bytes `record` adds to the current aggregate (new key table entries included).
    fn size_with(&self, record: &UserRecord) -> usize {
        let mut size = 0;
        let pk_idx = match self.pk_index.get(&record.partition_key) {
            Some(&i) => i,
            None => {
                size += field_len(record.partition_key.len());
                self.pk_index.len() as u64
            }
        };
        let mut inner = 1 + prost::encoding::encoded_len_varint(pk_idx);
        if let Some(ehk) = &record.explicit_hash_key {
            let ehk_idx = match self.ehk_index.get(ehk) {
                Some(&i) => i,
                None => {
                    size += field_len(ehk.len());
                    self.ehk_index.len() as u64
                }
            };
            inner += 1 + prost::encoding::encoded_len_varint(ehk_idx);
        }
        inner += field_len(record.data.len());
        size + field_len(inner)
    }

    fn push(&mut self, record: UserRecord, grown: usize) {
        let next_pk = self.pk_index.len() as u64;
        let pk_idx = *self
            .pk_index
            .entry(record.partition_key.clone())
            .or_insert_with(|| {
                self.current
                    .partition_key_table
                    .push(record.partition_key.clone());
                next_pk
            });
        let ehk_idx = record.explicit_hash_key.as_ref().map(|ehk| {
            let next = self.ehk_index.len() as u64;
            *self.ehk_index.entry(ehk.clone()).or_insert_with(|| {
                self.current.explicit_hash_key_table.push(ehk.clone());
                next
            })
        });
        if self.first_pk.is_none() {
            self.first_pk = Some((
                record.partition_key.clone(),
                record.explicit_hash_key.clone(),
            ));
        }
        self.current.records.push(pb::Record {
            partition_key_index: pk_idx,
            explicit_hash_key_index: ehk_idx,
            data: record.data,
            tags: Vec::new(),
        });
        self.body_len += grown;
    }
}

/// Bytes of a length-delimited field with a one-byte tag.
fn field_len(len: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(len as u64) + len
}

/// Aggregates every record, returning the aggregated records in order.
///
/// ```
/// use kinesis_utils::kpl::{aggregate_all, UserRecord};
/// let records = (0..1000).map(|i| UserRecord::new(vec![b'x'; 500], format!("pk-{i}")));
/// let aggs = aggregate_all(records, 64 * 1024).unwrap();
/// assert!(aggs.iter().all(|a| a.data.len() + a.partition_key.len() <= 64 * 1024));
/// assert_eq!(aggs.iter().map(|a| a.user_records).sum::<usize>(), 1000);
/// ```
pub fn aggregate_all(
    records: impl IntoIterator<Item = UserRecord>,
    max_bytes: usize,
) -> Result<Vec<AggregatedRecord>, RecordTooLarge> {
    let mut agg = Aggregator::new(max_bytes);
    let mut out = Vec::new();
    for r in records {
        out.extend(agg.add(r)?);
    }
    out.extend(agg.flush());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn size_accounting_matches_encoding() {
        let mut agg = Aggregator::new(usize::MAX);
        for i in 0..50u32 {
            let mut r = UserRecord::new(
                vec![i as u8; (i * 37 % 300) as usize],
                format!("k{}", i % 7),
            );
            if i % 3 == 0 {
                r.explicit_hash_key = Some(format!("{}", u128::from(i) << 100));
            }
            assert!(agg.add(r).unwrap().is_none());
            assert_eq!(agg.body_len, agg.current.encoded_len());
        }
    }

    #[test]
    fn digest_mismatch_and_bad_protobuf_pass_through() {
        let rec = aggregate_all([UserRecord::new(&b"abc"[..], "p")], 1 << 20).unwrap();
        let mut bad = rec[0].data.to_vec();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(deaggregate(&Bytes::from(bad)).is_none());

        let garbage = [0xffu8, 0xff, 0xff];
        let mut forged = MAGIC.to_vec();
        forged.extend_from_slice(&garbage);
        forged.extend_from_slice(&Md5::digest(garbage));
        assert!(deaggregate(&Bytes::from(forged)).is_none());
    }

    #[test]
    fn out_of_range_index_passes_through() {
        let agg = pb::AggregatedRecord {
            partition_key_table: vec!["a".into()],
            explicit_hash_key_table: vec![],
            records: vec![pb::Record {
                partition_key_index: 3,
                explicit_hash_key_index: None,
                data: Bytes::from_static(b"x"),
                tags: vec![],
            }],
        };
        let body = agg.encode_to_vec();
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&body);
        data.extend_from_slice(&Md5::digest(&body));
        let data = Bytes::from(data);
        assert!(deaggregate(&data).is_none());
        assert!(deaggregate_data(&data).is_none());
    }

    #[test]
    fn fits_says_what_add_does() {
        let mut agg = Aggregator::default();
        assert_eq!(agg.max_bytes, 51_200, "the KPL's AggregationMaxSize");
        let big = UserRecord::new(vec![1u8; 30_000], "k");
        assert!(agg.fits(&big));
        assert_eq!(agg.add(big.clone()), Ok(None));
        assert!(
            !agg.fits(&big),
            "a second one would start the next aggregate"
        );
        assert!(agg.add(big.clone()).unwrap().is_some());
        let huge = UserRecord::new(vec![1u8; 60_000], "k");
        assert!(!Aggregator::default().fits(&huge));
        assert!(Aggregator::default().add(huge).is_err());
    }

    #[test]
    fn splits_at_the_bound_and_refuses_oversize() {
        let recs: Vec<_> = (0..100)
            .map(|i| UserRecord::new(vec![7u8; 1000], format!("key-{i}")))
            .collect();
        let aggs = aggregate_all(recs.clone(), 10_000).unwrap();
        assert!(aggs.len() > 10);
        for a in &aggs {
            assert!(a.data.len() + a.partition_key.len() <= 10_000);
        }
        let back: Vec<_> = aggs
            .iter()
            .flat_map(|a| deaggregate(&a.data).unwrap())
            .collect();
        assert_eq!(back, recs);
        let err = aggregate_all([UserRecord::new(vec![0u8; 20_000], "k")], 10_000).unwrap_err();
        assert_eq!(err.limit, 10_000);
    }

    fn user_record() -> impl Strategy<Value = UserRecord> {
        (
            proptest::collection::vec(any::<u8>(), 0..600),
            "\\PC{1,20}",
            proptest::option::of("[0-9]{1,39}"),
        )
            .prop_map(|(data, partition_key, explicit_hash_key)| UserRecord {
                data: data.into(),
                partition_key,
                explicit_hash_key,
            })
    }

    proptest! {
        #[test]
        fn aggregate_deaggregate_round_trip(
            records in proptest::collection::vec(user_record(), 1..60),
            max in 1_000usize..20_000,
        ) {
            let aggs = aggregate_all(records.clone(), max).unwrap();
            let mut back = Vec::new();
            for a in &aggs {
                prop_assert!(a.data.len() + a.partition_key.len() <= max);
                let users = deaggregate(&a.data).unwrap();
                prop_assert_eq!(users.len(), a.user_records);
                let datas: Vec<Bytes> = users.iter().map(|u| u.data.clone()).collect();
                prop_assert_eq!(deaggregate_data(&a.data).unwrap(), datas);
                prop_assert_eq!(&users[0].partition_key, &a.partition_key);
                prop_assert_eq!(&users[0].explicit_hash_key, &a.explicit_hash_key);
                back.extend(users);
            }
            prop_assert_eq!(back, records);
        }

        #[test]
        fn fits_agrees_with_add(
            records in proptest::collection::vec(user_record(), 1..60),
            max in 100usize..5_000,
        ) {
            let mut agg = Aggregator::new(max);
            for r in records {
                let (fits, was_empty) = (agg.fits(&r), agg.is_empty());
                match agg.add(r) {
                    Ok(None) => prop_assert!(fits),
                    Ok(Some(_)) => prop_assert!(!fits && !was_empty),
                    Err(_) => prop_assert!(!fits),
                }
            }
        }

        #[test]
        fn deaggregate_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512), magic: bool) {
            let mut bytes = if magic { MAGIC.to_vec() } else { Vec::new() };
            bytes.extend(data);
            let bytes = Bytes::from(bytes);
            prop_assert_eq!(deaggregate(&bytes).is_some(), deaggregate_data(&bytes).is_some());
        }
    }
}
