//! Where payloads came from.
//!
//! A batch's origin strings (sequence numbers, partition keys, event ids) live in one table
//! per batch, and a CloudWatch Logs envelope's (group, stream, event ids) in one per envelope.
//! An [`Origin`] is a handle on its record's row: cloning one costs one reference count, and a
//! decoded item stays small, where per-field shared strings cost six counts per payload.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// Appends `s` to `text` and returns where it is.
fn push_span(text: &mut String, s: &str) -> Range<usize> {
    let start = text.len();
    text.push_str(s);
    start..text.len()
}

/// One record's row of a [`RecordTable`]: spans of the table's text and the numbers.
#[derive(Clone, Default)]
pub(crate) struct RecordRow {
    pub(crate) record_index: usize,
    pub(crate) sequence_number: Range<usize>,
    pub(crate) partition_key: Range<usize>,
    pub(crate) event_id: Option<Range<usize>>,
    pub(crate) arrival_ms: Option<i64>,
    pub(crate) data_len: usize,
}

/// The records of a batch: their strings in one buffer and one row each.
#[derive(Clone, Default)]
pub(crate) struct RecordTable {
    pub(crate) text: String,
    pub(crate) rows: Vec<RecordRow>,
}

impl RecordTable {
    fn str(&self, span: &Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or_default()
    }

    pub(crate) fn push_text(&mut self, s: &str) -> Range<usize> {
        push_span(&mut self.text, s)
    }

    fn info(&self, row: &RecordRow) -> RecordInfo<'_> {
        RecordInfo {
            record_index: row.record_index,
            sequence_number: self.str(&row.sequence_number),
            partition_key: self.str(&row.partition_key),
            event_id: row.event_id.as_ref().map(|s| self.str(s)),
            arrival_ms: row.arrival_ms,
            data_len: row.data_len,
        }
    }
}

/// Where a payload came from.
///
/// The decoder builds these; build one yourself for records from elsewhere (for
/// [`Decoder::decode_data`](crate::Decoder::decode_data)) with [`Origin::new`] and the
/// `with_*` methods:
///
/// ```
/// use kinesis_utils::Origin;
/// let origin = Origin::new("49590338271490256608559692538361571095921575989136588898")
///     .with_partition_key("p")
///     .with_arrival_ms(1_584_154_800_123);
/// assert_eq!(origin.partition_key(), "p");
/// assert_eq!(origin.record_index(), 0);
/// assert_eq!(origin.event_id(), None);
/// ```
#[derive(Clone)]
pub struct Origin {
    table: Arc<RecordTable>,
    row: usize,
    sub_sequence: Option<u32>,
    cwl: Option<CwlOrigin>,
}

impl Origin {
    /// The origin of record 0 with this sequence number, an empty partition key and nothing
    /// else known.
    pub fn new(sequence_number: &str) -> Self {
        let mut table = RecordTable::default();
        let sequence_number = table.push_text(sequence_number);
        table.rows.push(RecordRow {
            sequence_number,
            ..RecordRow::default()
        });
        Self {
            table: Arc::new(table),
            row: 0,
            sub_sequence: None,
            cwl: None,
        }
    }

    /// The origin of row `row` of a batch's table.
    pub(crate) fn of_row(table: &Arc<RecordTable>, row: usize) -> Self {
        Self {
            table: Arc::clone(table),
            row,
            sub_sequence: None,
            cwl: None,
        }
    }

    /// This record's row, first copied alone into a table of its own when the table is
    /// shared (a decoded batch's): editing one origin neither changes nor copies the others.
    fn row_mut(&mut self) -> (&mut RecordTable, usize) {
        if Arc::get_mut(&mut self.table).is_none() {
            let mut own = RecordTable::default();
            let old = &self.table;
            if let Some(row) = old.rows.get(self.row) {
                let sequence_number = own.push_text(old.str(&row.sequence_number));
                let partition_key = own.push_text(old.str(&row.partition_key));
                let event_id = row.event_id.as_ref().map(|s| own.push_text(old.str(s)));
                own.rows.push(RecordRow {
                    sequence_number,
                    partition_key,
                    event_id,
                    ..row.clone()
                });
            }
            self.table = Arc::new(own);
            self.row = 0;
        }
        let table = Arc::make_mut(&mut self.table);
        if table.rows.get(self.row).is_none() {
            table.rows.push(RecordRow::default());
            self.row = table.rows.len() - 1;
        }
        (table, self.row)
    }

    /// Applies `edit` to this record's row, with the text its spans index.
    fn edit(mut self, edit: impl FnOnce(&mut RecordRow, &mut String)) -> Self {
        let (table, row) = self.row_mut();
        let RecordTable { text, rows } = table;
        if let Some(r) = rows.get_mut(row) {
            edit(r, text);
        }
        self
    }

    /// Sets the position of the Kinesis record in its batch.
    pub fn with_record_index(self, record_index: usize) -> Self {
        self.edit(|r, _| r.record_index = record_index)
    }

    /// Sets the sequence number.
    pub fn with_sequence_number(self, sequence_number: &str) -> Self {
        self.edit(|r, text| r.sequence_number = push_span(text, sequence_number))
    }

    /// Sets the partition key.
    pub fn with_partition_key(self, partition_key: &str) -> Self {
        self.edit(|r, text| r.partition_key = push_span(text, partition_key))
    }

    /// Sets Lambda's `eventID`.
    pub fn with_event_id(self, event_id: &str) -> Self {
        self.edit(|r, text| r.event_id = Some(push_span(text, event_id)))
    }

    /// Sets the `approximateArrivalTimestamp` in milliseconds since the Unix epoch.
    pub fn with_arrival_ms(self, arrival_ms: i64) -> Self {
        self.edit(|r, _| r.arrival_ms = Some(arrival_ms))
    }

    /// Sets the index of the user record inside a KPL aggregate.
    pub fn with_sub_sequence(mut self, sub_sequence: u32) -> Self {
        self.sub_sequence = Some(sub_sequence);
        self
    }

    /// Sets the CloudWatch Logs details.
    pub fn with_cwl(mut self, cwl: CwlOrigin) -> Self {
        self.cwl = Some(cwl);
        self
    }

    fn row(&self) -> Option<&RecordRow> {
        self.table.rows.get(self.row)
    }

    /// The Kinesis record this payload came from.
    pub fn record(&self) -> RecordInfo<'_> {
        match self.row() {
            Some(row) => self.table.info(row),
            None => RecordInfo::default(),
        }
    }

    /// Position of the Kinesis record in the batch.
    pub fn record_index(&self) -> usize {
        self.row().map_or(0, |r| r.record_index)
    }

    /// The Kinesis record's sequence number (what Lambda's `itemIdentifier` names).
    pub fn sequence_number(&self) -> &str {
        self.row()
            .map_or("", |r| self.table.str(&r.sequence_number))
    }

    /// The Kinesis record's partition key.
    pub fn partition_key(&self) -> &str {
        self.row().map_or("", |r| self.table.str(&r.partition_key))
    }

    /// Lambda's `eventID` (`shardId-…:sequence`), when the event carried one.
    pub fn event_id(&self) -> Option<&str> {
        self.row()
            .and_then(|r| r.event_id.as_ref())
            .map(|s| self.table.str(s))
    }

    /// Kinesis' `approximateArrivalTimestamp` of the record in milliseconds since the Unix
    /// epoch, when the event carried one: a time that is the same when Lambda replays the
    /// record, for keys of records that carry no timestamp of their own.
    pub fn arrival_ms(&self) -> Option<i64> {
        self.row().and_then(|r| r.arrival_ms)
    }

    /// Index of the user record inside a KPL aggregate.
    pub fn sub_sequence(&self) -> Option<u32> {
        self.sub_sequence
    }

    /// CloudWatch Logs details, for payloads unpacked from a subscription message.
    pub fn cwl(&self) -> Option<&CwlOrigin> {
        self.cwl.as_ref()
    }
}

impl Default for Origin {
    /// Record 0 with empty strings and nothing else known.
    fn default() -> Self {
        Self::new("")
    }
}

impl PartialEq for Origin {
    /// Equal origins name the same place; the record's data length is not part of that.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.record(), other.record());
        RecordInfo { data_len: 0, ..a } == RecordInfo { data_len: 0, ..b }
            && self.sub_sequence == other.sub_sequence
            && self.cwl == other.cwl
    }
}

impl Eq for Origin {}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.record();
        f.debug_struct("Origin")
            .field("record_index", &r.record_index)
            .field("sequence_number", &r.sequence_number)
            .field("partition_key", &r.partition_key)
            .field("event_id", &r.event_id)
            .field("arrival_ms", &r.arrival_ms)
            .field("sub_sequence", &self.sub_sequence)
            .field("cwl", &self.cwl)
            .finish()
    }
}

/// One Kinesis record of a batch, as [`Records`] and [`Origin::record`] show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordInfo<'a> {
    /// Position of the record in the batch.
    pub record_index: usize,
    /// The sequence number.
    pub sequence_number: &'a str,
    /// The partition key.
    pub partition_key: &'a str,
    /// Lambda's `eventID`, when present.
    pub event_id: Option<&'a str>,
    /// `approximateArrivalTimestamp` in milliseconds since the Unix epoch, when present.
    pub arrival_ms: Option<i64>,
    /// Size of the record's data after base64 decoding (0 for origins built by hand).
    pub data_len: usize,
}

/// The Kinesis records of a decoded batch, indexed by [`Origin::record_index`].
#[derive(Clone, Default)]
pub struct Records {
    table: Arc<RecordTable>,
}

impl Records {
    pub(crate) fn new(table: Arc<RecordTable>) -> Self {
        Self { table }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.table.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.table.rows.is_empty()
    }

    /// Record `index`.
    pub fn get(&self, index: usize) -> Option<RecordInfo<'_>> {
        self.table.rows.get(index).map(|r| self.table.info(r))
    }

    /// The records, in order.
    pub fn iter(&self) -> impl Iterator<Item = RecordInfo<'_>> {
        self.table.rows.iter().map(|r| self.table.info(r))
    }
}

impl PartialEq for Records {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Records {}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One CloudWatch Logs envelope's strings: group, stream, then each event's id.
#[derive(Default)]
pub(crate) struct CwlTable {
    text: String,
    log_group: Range<usize>,
    log_stream: Range<usize>,
    event_ids: Vec<Range<usize>>,
}

impl CwlTable {
    /// A table for `log_group`, `log_stream` and the events' ids, in order.
    pub(crate) fn new<'s>(
        log_group: &str,
        log_stream: &str,
        event_ids: impl ExactSizeIterator<Item = &'s str> + Clone,
    ) -> Self {
        let len =
            log_group.len() + log_stream.len() + event_ids.clone().map(str::len).sum::<usize>();
        let mut text = String::with_capacity(len);
        let mut push = |s: &str| push_span(&mut text, s);
        let log_group = push(log_group);
        let log_stream = push(log_stream);
        let mut ids = Vec::with_capacity(event_ids.len());
        for id in event_ids {
            ids.push(push(id));
        }
        Self {
            text,
            log_group,
            log_stream,
            event_ids: ids,
        }
    }

    fn str(&self, span: &Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or_default()
    }
}

/// Where a CloudWatch Logs payload came from.
#[derive(Clone)]
pub struct CwlOrigin {
    envelope: Arc<CwlTable>,
    event: usize,
    timestamp_ms: i64,
}

impl CwlOrigin {
    /// The details of one log event.
    ///
    /// ```
    /// let cwl = kinesis_utils::CwlOrigin::new("3654", "/ecs/app", "web/1", 1_584_154_800_000);
    /// assert_eq!((cwl.event_id(), cwl.log_group()), ("3654", "/ecs/app"));
    /// ```
    pub fn new(event_id: &str, log_group: &str, log_stream: &str, timestamp_ms: i64) -> Self {
        let table = CwlTable::new(log_group, log_stream, [event_id].into_iter());
        Self::of_event(&Arc::new(table), 0, timestamp_ms)
    }

    /// Event `event` of an envelope's table.
    pub(crate) fn of_event(envelope: &Arc<CwlTable>, event: usize, timestamp_ms: i64) -> Self {
        Self {
            envelope: Arc::clone(envelope),
            event,
            timestamp_ms,
        }
    }

    /// The log event id.
    pub fn event_id(&self) -> &str {
        self.envelope
            .event_ids
            .get(self.event)
            .map_or("", |s| self.envelope.str(s))
    }

    /// The source log group.
    pub fn log_group(&self) -> &str {
        self.envelope.str(&self.envelope.log_group)
    }

    /// The source log stream.
    pub fn log_stream(&self) -> &str {
        self.envelope.str(&self.envelope.log_stream)
    }

    /// The event's timestamp in milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }
}

impl PartialEq for CwlOrigin {
    fn eq(&self, other: &Self) -> bool {
        self.event_id() == other.event_id()
            && self.log_group() == other.log_group()
            && self.log_stream() == other.log_stream()
            && self.timestamp_ms == other.timestamp_ms
    }
}

impl Eq for CwlOrigin {}

impl fmt::Debug for CwlOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CwlOrigin")
            .field("event_id", &self.event_id())
            .field("log_group", &self.log_group())
            .field("log_stream", &self.log_stream())
            .field("timestamp_ms", &self.timestamp_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_origins_read_back_and_compare_by_value() {
        let full = |o: Origin| {
            o.with_record_index(3)
                .with_partition_key("pk")
                .with_event_id("shardId-0:7")
                .with_arrival_ms(1500)
                .with_sub_sequence(2)
                .with_cwl(CwlOrigin::new("e", "g", "s", 9))
        };
        let o = full(Origin::new("7"));
        let r = o.record();
        assert_eq!(
            (
                r.record_index,
                r.sequence_number,
                r.partition_key,
                r.event_id
            ),
            (3, "7", "pk", Some("shardId-0:7"))
        );
        assert_eq!((o.arrival_ms(), o.sub_sequence()), (Some(1500), Some(2)));
        let cwl = o.cwl().map(|c| {
            (
                c.event_id(),
                c.log_group(),
                c.log_stream(),
                c.timestamp_ms(),
            )
        });
        assert_eq!(cwl, Some(("e", "g", "s", 9)));
        // Same values through another table: equal; any field apart: not.
        let again = full(Origin::new("x").with_sequence_number("7"));
        assert_eq!(o, again);
        assert_ne!(o, again.clone().with_partition_key("pk2"));
        assert_ne!(o, again.clone().with_cwl(CwlOrigin::new("e", "g", "s", 8)));
        assert_ne!(o, again.with_sub_sequence(1));
        assert_eq!(
            format!("{:?}", Origin::default()),
            "Origin { record_index: 0, sequence_number: \"\", partition_key: \"\", \
             event_id: None, arrival_ms: None, sub_sequence: None, cwl: None }"
        );
    }

    #[test]
    fn editing_a_shared_row_leaves_the_batch_alone() {
        let mut table = RecordTable::default();
        for (i, s) in ["1", "2"].into_iter().enumerate() {
            let sequence_number = table.push_text(s);
            table.rows.push(RecordRow {
                record_index: i,
                sequence_number,
                data_len: 5,
                ..RecordRow::default()
            });
        }
        let table = Arc::new(table);
        let second = Origin::of_row(&table, 1);
        let edited = second.clone().with_partition_key("changed");
        assert_eq!(edited.table.rows.len(), 1, "only the edited row is copied");
        assert_eq!(Arc::strong_count(&table), 2, "the batch and `second`");
        assert_eq!(
            (second.sequence_number(), second.partition_key()),
            ("2", "")
        );
        assert_eq!(
            (edited.sequence_number(), edited.partition_key()),
            ("2", "changed")
        );
        assert_eq!(edited.record_index(), 1);
        // The data length is the record's, not part of where a payload came from.
        assert_eq!(second.record().data_len, 5);
        assert_eq!(second, Origin::new("2").with_record_index(1));
        let records = Records::new(table);
        assert_eq!(records.len(), 2);
        assert_eq!(records.get(1).map(|r| r.sequence_number), Some("2"));
        assert_eq!(records.get(2), None);
    }

    #[test]
    fn a_decoded_item_is_small() {
        // The point of the tables (and of boxing the rare failure): a decoded item is ten
        // words, where per-field shared strings made it thirty-one.
        assert!(std::mem::size_of::<Origin>() <= 48);
        assert!(std::mem::size_of::<crate::Decoded>() <= 80);
    }
}
