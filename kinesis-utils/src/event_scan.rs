//! A fast path for reading Lambda Kinesis event JSON in its usual shape.
//!
//! serde_json spends most of a batch's decoding time scanning and UTF-8-checking the long
//! base64 `data` strings. This scanner offers a `data` string to its sink to decode in place
//! (finding its end as it goes, see `arch::decode_base64_string`), or else finds the end with `memchr` and lets the
//! base64 decoder be its validator (only base64's alphabet can then be inside). Records of
//! one batch are mostly byte for byte alike but for their sequence number, partition key,
//! arrival time, event id and data: after a record is read in full, the next one is first
//! tried against it as a template (compare the literal bytes, read only those values, with
//! the same cursor calls), and read in full when it differs anywhere. It accepts a
//! strict subset of JSON (a [`Cursor`] with [`Plain`], fields at most once). On
//! anything else it gives up (`None`) without reporting why, and the caller starts again with
//! serde_json, which accepts all of JSON and reports errors. Whatever this scanner accepts,
//! serde_json accepts with the same result; the differential tests and the `event_json` fuzz
//! target check exactly that.

use crate::json_cursor::{Cursor, Plain, starts_with};

/// What one record carries, borrowed from the event.
pub(crate) struct ScannedRecord<'a> {
    pub event_id: Option<&'a [u8]>,
    pub sequence_number: &'a [u8],
    pub partition_key: &'a [u8],
    /// `approximateArrivalTimestamp`'s number text, when given and not null.
    pub arrival: Option<&'a [u8]>,
    /// The `data` string.
    pub data: Data<'a>,
}

/// A record's `data` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data<'a> {
    /// The sink decoded it (see [`Sink::decode_data`]) into what it keeps at this range.
    Decoded(std::ops::Range<usize>),
    /// Its contents, not yet known to be base64.
    Raw(&'a [u8]),
}

/// Where the scanner's records go.
pub(crate) trait Sink<'a> {
    /// Takes a record, in order; `None` gives up (for example on data that is not base64,
    /// so that serde_json's path reports it).
    fn record(&mut self, record: ScannedRecord<'a>) -> Option<()>;

    /// Decodes the `data` string whose contents start at `src` (the event after the opening
    /// quote), if it can: `Some((length of the contents, where the decoded bytes are))`.
    /// `None` leaves it to [`Sink::record`] as [`Data::Raw`].
    fn decode_data(&mut self, src: &'a [u8]) -> Option<(usize, std::ops::Range<usize>)>;

    /// How much decoded data the sink holds, for [`Sink::rewind`].
    fn mark(&self) -> usize;

    /// Drops the decoded data after `mark` (of a record read in part and then again).
    fn rewind(&mut self, mark: usize);
}

/// A closure sink that decodes nothing (every `data` is [`Data::Raw`]).
impl<'a, F: FnMut(ScannedRecord<'a>) -> Option<()>> Sink<'a> for F {
    fn record(&mut self, record: ScannedRecord<'a>) -> Option<()> {
        self(record)
    }
    fn decode_data(&mut self, _: &'a [u8]) -> Option<(usize, std::ops::Range<usize>)> {
        None
    }
    fn mark(&self) -> usize {
        0
    }
    fn rewind(&mut self, _: usize) {}
}

/// Scans `event`, handing each record to `sink` in order.
pub(crate) fn scan<'a>(event: &'a [u8], sink: &mut impl Sink<'a>) -> Option<()> {
    scan_counting(event, sink).map(drop)
}

/// [`scan`], also saying how many records the template read.
fn scan_counting<'a>(event: &'a [u8], sink: &mut impl Sink<'a>) -> Option<usize> {
    match scan_until(event, sink, None)? {
        Scanned::Whole(reads) => Some(reads),
        Scanned::Stopped(_) => None,
    }
}

/// How far [`scan_until`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// The whole event (its records all went to the sink); how many the template read.
    Whole(usize),
    /// Up to the stop, where the next record of `Records` starts (the records before it went
    /// to the sink); how many the template read.
    Stopped(usize),
}

/// Where a scan may be cut in two: just after the first `},{` past the middle of `event`,
/// where the next record of `Records` starts if those bytes sit between two records (and
/// not inside a string). Only a candidate: [`scan_until`] confirms it or reads past it.
pub(crate) fn split_candidate(event: &[u8]) -> Option<usize> {
    let middle = event.len() / 2;
    let at = memchr::memmem::find(event.get(middle..)?, b"},{")?;
    Some(middle + at + 2)
}

/// [`scan`] that ends at `stop` when a record of `Records` starts exactly there (right after
/// the comma that ends the one before). A `stop` anywhere else is read past, as if there
/// were none. What the sink gets is [`scan`]'s, cut at the stop.
pub(crate) fn scan_until<'a>(
    event: &'a [u8],
    sink: &mut impl Sink<'a>,
    stop: Option<usize>,
) -> Option<Scanned> {
    let mut s = Scanner::new(event);
    s.c.expect(b'{')?;
    let mut seen = false;
    if !s.c.eat(b'}') {
        loop {
            let key = s.c.plain_string()?;
            s.c.expect(b':')?;
            if key == b"Records" && !seen {
                seen = true;
                if s.records(sink, stop)? == Listed::Stopped {
                    return Some(Scanned::Stopped(s.template_reads));
                }
            } else {
                s.c.skip_value(Plain, 1)?;
            }
            if !s.c.eat(b',') {
                s.c.expect(b'}')?;
                break;
            }
        }
    }
    (seen && s.c.at_end()).then_some(Scanned::Whole(s.template_reads))
}

/// The scan after [`scan_until`] stopped at `start`: the records from there to the end of
/// `Records`, then the rest of the event. Given the same event and `start`, the sink gets
/// what [`scan`] gives it after the stop, and the answer is [`scan`]'s (`None` when it gives
/// up); with the number of records the template read.
pub(crate) fn scan_from<'a>(
    event: &'a [u8],
    start: usize,
    sink: &mut impl Sink<'a>,
) -> Option<usize> {
    let mut s = Scanner::new(event);
    s.c.seek(start);
    s.record_list(sink, None)?;
    // The rest of the top-level object, where `Records` is already seen.
    while s.c.eat(b',') {
        s.c.plain_string()?;
        s.c.expect(b':')?;
        s.c.skip_value(Plain, 1)?;
    }
    s.c.expect(b'}')?;
    s.c.at_end().then_some(s.template_reads)
}

/// How a list of records ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    /// At its `]`.
    Ended,
    /// At the stop, where the next record starts.
    Stopped,
}

/// Sequence number, partition key, arrival time and data of a record's `kinesis` object.
type KinesisFields<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>, Data<'a>);

/// Which of a record's values a gap in a [`Template`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    EventId,
    Sequence,
    PartitionKey,
    Arrival,
    Data,
}

/// The previous record cut into its literal bytes and the values between them:
/// `pieces[0].0`, value `pieces[0].1`, `pieces[1].0`, ..., then `tail`. The records of a
/// batch mostly differ only in those values, so the next record is read by comparing the
/// literals and reading just the values, with the same cursor calls as a full read.
#[derive(Default)]
struct Template<'a> {
    pieces: Vec<(&'a [u8], Var)>,
    tail: &'a [u8],
}

/// `text.starts_with(literal)`: inline for short literals, `bcmp` (vectorised) for long ones.
#[inline]
fn same_start(text: &[u8], literal: &[u8]) -> bool {
    if literal.len() <= 32 {
        starts_with(text, literal)
    } else {
        text.get(..literal.len()) == Some(literal)
    }
}

/// A string value other than `data`, as the full read takes it: [`Plain`].
fn read_string<'a>(c: &mut Cursor<'a>) -> Option<&'a [u8]> {
    c.plain_string()
}

/// The `data` string as the full read takes it: decoded by the sink when it can, else raw
/// (the base64 decoder validates it); with the length of its contents.
fn read_data<'a>(c: &mut Cursor<'a>, sink: &mut impl Sink<'a>) -> Option<(Data<'a>, usize)> {
    if let Some(src) = c.rest().strip_prefix(b"\"")
        && let Some((len, range)) = sink.decode_data(src)
    {
        c.advance(len + 2);
        return Some((Data::Decoded(range), len));
    }
    let raw = c.raw_string()?;
    Some((Data::Raw(raw), raw.len()))
}

struct Scanner<'a> {
    c: Cursor<'a>,
    /// The last fully read record as a template (empty before the first).
    template: Template<'a>,
    /// Where the record being read fully keeps its values: (value, start, end).
    spans: Vec<(Var, usize, usize)>,
    /// How many records the template read.
    template_reads: usize,
    /// The last string skipped at each field position of a record (0..8) and of its `kinesis`
    /// object (8..16), quotes included. Records of one batch mostly repeat these values
    /// (`eventSource`, `awsRegion`, ARNs): the same bytes again are the same valid string.
    seen: [&'a [u8]; 16],
    /// The same for keys, quotes included.
    seen_keys: [&'a [u8]; 16],
}

impl<'a> Scanner<'a> {
    /// The key of the field at `slot` (see `seen_keys`).
    fn field_key(&mut self, slot: usize) -> Option<&'a [u8]> {
        self.c.skip_whitespace();
        let cached = self.seen_keys.get(slot).copied().unwrap_or_default();
        if let Some(key) = cached.get(1..cached.len().saturating_sub(1))
            && starts_with(self.c.rest(), cached)
        {
            self.c.advance(cached.len());
            return Some(key);
        }
        let start = self.c.position();
        let key = self.c.plain_string()?;
        if let Some(seen) = self.seen_keys.get_mut(slot) {
            *seen = self.c.since(start);
        }
        Some(key)
    }

    /// Skips the value of the field at `slot` (see `seen`).
    fn skip_field_value(&mut self, slot: usize, depth: u32) -> Option<()> {
        self.c.skip_whitespace();
        let cached = self.seen.get(slot).copied().unwrap_or_default();
        if !cached.is_empty() && starts_with(self.c.rest(), cached) {
            self.c.advance(cached.len());
            return Some(());
        }
        let start = self.c.position();
        let is_string = self.c.rest().first() == Some(&b'"');
        self.c.skip_value(Plain, depth)?;
        if is_string && let Some(seen) = self.seen.get_mut(slot) {
            *seen = self.c.since(start);
        }
        Some(())
    }

    fn new(event: &'a [u8]) -> Self {
        Self {
            c: Cursor::new(event),
            seen: [&[]; 16],
            seen_keys: [&[]; 16],
            template: Template::default(),
            spans: Vec::new(),
            template_reads: 0,
        }
    }

    /// The `Records` array, up to `stop` when a record starts there.
    fn records(&mut self, sink: &mut impl Sink<'a>, stop: Option<usize>) -> Option<Listed> {
        self.c.expect(b'[')?;
        if self.c.eat(b']') {
            return Some(Listed::Ended);
        }
        self.record_list(sink, stop)
    }

    /// Records and the commas between them, from the first record to the closing `]`, or
    /// to `stop` when a record starts right there after a comma.
    fn record_list(&mut self, sink: &mut impl Sink<'a>, stop: Option<usize>) -> Option<Listed> {
        loop {
            let start = self.c.position();
            let mark = sink.mark();
            let record = match self.record_like_last(sink) {
                Some(r) => {
                    self.template_reads += 1;
                    r
                }
                None => {
                    self.c.seek(start);
                    sink.rewind(mark);
                    self.record_and_template(start, sink)?
                }
            };
            sink.record(record)?;
            if !self.c.eat(b',') {
                self.c.expect(b']')?;
                return Some(Listed::Ended);
            }
            if stop == Some(self.c.position()) {
                return Some(Listed::Stopped);
            }
        }
    }

    /// Reads a record shaped like the last one through the template; `None` (cursor
    /// anywhere) when it is not, and a full read decides.
    fn record_like_last(&mut self, sink: &mut impl Sink<'a>) -> Option<ScannedRecord<'a>> {
        if self.template.pieces.is_empty() {
            return None;
        }
        let mut r = ScannedRecord {
            event_id: None,
            sequence_number: b"",
            partition_key: b"",
            arrival: None,
            data: Data::Raw(b""),
        };
        for &(literal, var) in &self.template.pieces {
            if !same_start(self.c.rest(), literal) {
                return None;
            }
            self.c.advance(literal.len());
            // The calls the full read makes for each value.
            match var {
                Var::EventId => r.event_id = Some(read_string(&mut self.c)?),
                Var::Sequence => r.sequence_number = read_string(&mut self.c)?,
                Var::PartitionKey => r.partition_key = read_string(&mut self.c)?,
                Var::Arrival => r.arrival = Some(self.c.null_or_number()??),
                Var::Data => r.data = read_data(&mut self.c, sink)?.0,
            }
        }
        if !same_start(self.c.rest(), self.template.tail) {
            return None;
        }
        self.c.advance(self.template.tail.len());
        Some(r)
    }

    /// Reads a record fully, from `start`, and keeps it as the template for the next.
    fn record_and_template(
        &mut self,
        start: usize,
        sink: &mut impl Sink<'a>,
    ) -> Option<ScannedRecord<'a>> {
        self.spans.clear();
        let record = self.record(sink)?;
        let end = self.c.position();
        self.template.pieces.clear();
        let mut at = start;
        for &(var, from, to) in &self.spans {
            self.template.pieces.push((self.c.between(at, from)?, var));
            at = to;
        }
        self.template.tail = self.c.between(at, end)?;
        Some(record)
    }

    /// [`read_string`], noting the span (quotes included, so that the template's
    /// literals end where the same cursor call starts).
    fn string_value(&mut self, var: Var) -> Option<&'a [u8]> {
        let value = read_string(&mut self.c)?;
        self.span(var, value.len() + 2);
        Some(value)
    }

    /// [`read_data`], noting the span as [`Scanner::string_value`] does.
    fn data_value(&mut self, sink: &mut impl Sink<'a>) -> Option<Data<'a>> {
        let (data, len) = read_data(&mut self.c, sink)?;
        self.span(Var::Data, len + 2);
        Some(data)
    }

    /// Notes where the value just read (ending at the cursor, `len` bytes) lies.
    fn span(&mut self, var: Var, len: usize) {
        let end = self.c.position();
        self.spans.push((var, end.saturating_sub(len), end));
    }

    fn record(&mut self, sink: &mut impl Sink<'a>) -> Option<ScannedRecord<'a>> {
        self.c.expect(b'{')?;
        let mut event_id: Option<Option<&'a [u8]>> = None;
        let mut kinesis = None;
        if !self.c.eat(b'}') {
            for field in 0usize.. {
                let key = self.field_key(field)?;
                self.c.expect(b':')?;
                match key {
                    b"eventID" if event_id.is_none() => {
                        event_id = Some(if self.c.peek()? == b'n' {
                            self.c.literal(b"null")?;
                            None
                        } else {
                            Some(self.string_value(Var::EventId)?)
                        });
                    }
                    b"kinesis" if kinesis.is_none() => kinesis = Some(self.kinesis(sink)?),
                    // serde refuses a field given twice; let it say so.
                    b"eventID" | b"kinesis" => return None,
                    _ => self.skip_field_value(field, 2)?,
                }
                if !self.c.eat(b',') {
                    self.c.expect(b'}')?;
                    break;
                }
            }
        }
        let (sequence_number, partition_key, arrival, data) = kinesis?;
        Some(ScannedRecord {
            event_id: event_id.flatten(),
            sequence_number,
            partition_key,
            arrival,
            data,
        })
    }

    fn kinesis(&mut self, sink: &mut impl Sink<'a>) -> Option<KinesisFields<'a>> {
        self.c.expect(b'{')?;
        let (mut data, mut seq, mut pk, mut arrival) = (None, None, None, None);
        if !self.c.eat(b'}') {
            for field in 8usize.. {
                let key = self.field_key(field)?;
                self.c.expect(b':')?;
                match key {
                    b"data" if data.is_none() => data = Some(self.data_value(sink)?),
                    b"sequenceNumber" if seq.is_none() => {
                        seq = Some(self.string_value(Var::Sequence)?);
                    }
                    b"partitionKey" if pk.is_none() => {
                        pk = Some(self.string_value(Var::PartitionKey)?);
                    }
                    b"approximateArrivalTimestamp" if arrival.is_none() => {
                        let a = self.c.null_or_number()?;
                        if let Some(n) = a {
                            self.span(Var::Arrival, n.len());
                        }
                        arrival = Some(a);
                    }
                    b"data"
                    | b"sequenceNumber"
                    | b"partitionKey"
                    | b"approximateArrivalTimestamp" => {
                        return None;
                    }
                    _ => self.skip_field_value(field, 3)?,
                }
                if !self.c.eat(b',') {
                    self.c.expect(b'}')?;
                    break;
                }
            }
        }
        Some((seq?, pk.unwrap_or(b""), arrival.flatten(), data?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = (Option<String>, String, String, String);

    /// A closure as a [`Sink`] (so that its record's lifetime is the event's).
    fn sink<'a, F: FnMut(ScannedRecord<'a>) -> Option<()>>(f: F) -> F {
        f
    }

    fn records(event: &str) -> Option<Vec<Fields>> {
        let mut out = Vec::new();
        scan(
            event.as_bytes(),
            &mut sink(|r| {
                out.push((
                    match r.event_id {
                        Some(e) => Some(String::from_utf8(e.to_vec()).ok()?),
                        None => None,
                    },
                    String::from_utf8(r.sequence_number.to_vec()).ok()?,
                    String::from_utf8(r.partition_key.to_vec()).ok()?,
                    match r.data {
                        Data::Raw(d) => String::from_utf8(d.to_vec()).ok()?,
                        Data::Decoded(_) => return None,
                    },
                ));
                Some(())
            }),
        )?;
        Some(out)
    }

    /// A record's fields as the tests compare them (arrival included).
    type Read = (Option<Vec<u8>>, Vec<u8>, Vec<u8>, Option<Vec<u8>>, Vec<u8>);

    fn read(r: &ScannedRecord<'_>) -> Read {
        (
            r.event_id.map(<[u8]>::to_vec),
            r.sequence_number.to_vec(),
            r.partition_key.to_vec(),
            r.arrival.map(<[u8]>::to_vec),
            match &r.data {
                Data::Raw(d) => d.to_vec(),
                Data::Decoded(range) => format!("{range:?}").into_bytes(),
            },
        )
    }

    /// The whole scan's records, or `None` when it gives up.
    fn whole(event: &[u8]) -> Option<Vec<Read>> {
        let mut out = Vec::new();
        scan(
            event,
            &mut sink(|r| {
                out.push(read(&r));
                Some(())
            }),
        )?;
        Some(out)
    }

    /// The scan cut at `stop`: the first part's records, then, when it stopped there, the
    /// second part's; `None` when either gives up.
    fn cut(event: &[u8], stop: usize) -> Option<Vec<Read>> {
        let mut out = Vec::new();
        let first = scan_until(
            event,
            &mut sink(|r| {
                out.push(read(&r));
                Some(())
            }),
            Some(stop),
        )?;
        if matches!(first, Scanned::Stopped(_)) {
            let mut rest = Vec::new();
            scan_from(
                event,
                stop,
                &mut sink(|r| {
                    rest.push(read(&r));
                    Some(())
                }),
            )?;
            out.append(&mut rest);
        }
        Some(out)
    }

    /// Events whose records hold `},{` in strings and nested values, with whitespace or none
    /// between records, more top-level fields after `Records` (a second `Records` among
    /// them), and events the scan gives up on before, at or after the middle.
    fn shapes() -> Vec<String> {
        let record = |i: usize, pk: &str| {
            format!(
                r#"{{"kinesis":{{"sequenceNumber":"{i}","partitionKey":"{pk}","data":"QUJD{}","approximateArrivalTimestamp":{i}.5}},"eventID":"s:{i}","x":[{{}},{{"y":[{{}},{{}}]}}]}}"#,
                "QUJD".repeat(i % 3)
            )
        };
        let list = |n: usize, sep: &str, pk: &str| {
            (0..n).map(|i| record(i, pk)).collect::<Vec<_>>().join(sep)
        };
        let mut events = Vec::new();
        for sep in [",", " , ", ",\n", "\t,"] {
            for pk in ["p", "},{", "a},{\"b", "}},{{"] {
                events.push(format!(r#"{{"Records":[{}]}}"#, list(5, sep, pk)));
            }
        }
        let five = list(5, ",", "},{");
        events.push(format!(
            r#"{{"a":{{"b":[{{}},{{}}]}},"Records":[{five}],"c":[{{}},{{}}]}}"#
        ));
        events.push(format!(
            r#"{{"Records":[{five}],"Records":[{five}],"d":1}}"#
        ));
        events.push(format!(r#"{{"Records":[{five}]}} x"#));
        events.push(format!(r#"{{"Records":[{five},]}}"#));
        events.push(format!(r#"{{"Records":[{five}],"e":"\u00e9"}}"#));
        events.push(format!(
            r#"{{"Records":[{five},{{"kinesis":{{"sequenceNumber":"9","data":"A\nB"}}}}]}}"#
        ));
        events.push(r#"{"Records":[]}"#.to_string());
        events.push(r#"{"Records":[{}],"x":[{},{}]}"#.to_string());
        events
    }

    #[test]
    fn a_scan_cut_anywhere_reads_what_the_whole_scan_reads() {
        let (mut stopped, mut read_past) = (0, 0);
        for event in shapes() {
            let event = event.as_bytes();
            let want = whole(event);
            for stop in 0..=event.len() + 1 {
                assert_eq!(
                    cut(event, stop),
                    want,
                    "stop {stop} in {}",
                    String::from_utf8_lossy(event)
                );
                match scan_until(event, &mut sink(|_| Some(())), Some(stop)) {
                    Some(Scanned::Stopped(_)) => stopped += 1,
                    Some(Scanned::Whole(_)) => read_past += 1,
                    None => {}
                }
            }
        }
        // Both outcomes were tried, and a stop is only ever a record's start after a comma.
        assert!(stopped > 50 && read_past > 1000, "{stopped} {read_past}");
        let event = shapes().swap_remove(0);
        let starts: Vec<usize> = (0..=event.len())
            .filter(|&stop| {
                scan_until(event.as_bytes(), &mut sink(|_| Some(())), Some(stop))
                    .is_some_and(|s| matches!(s, Scanned::Stopped(_)))
            })
            .collect();
        let commas: Vec<usize> = event
            .match_indices("},{\"kinesis")
            .map(|(i, _)| i + 2)
            .collect();
        assert_eq!(starts, commas);
    }

    #[test]
    fn the_split_candidate_is_past_the_middle_after_a_closing_brace_and_comma() {
        let event = br#"{"Records":[{"a":1},{"a":2},{"a":3},{"a":4}]}"#;
        let at = split_candidate(event).unwrap_or_default();
        assert!(at >= event.len() / 2);
        assert_eq!(&event[at - 2..at + 1], b"},{");
        assert_eq!(split_candidate(br#"{"Records":[{"a":1}]}"#), None);
        assert_eq!(split_candidate(b""), None);
    }

    #[test]
    fn reads_the_usual_shape_with_extra_fields_in_any_order() {
        let got = records(
            r#" { "Records" : [ {"kinesis":{"approximateArrivalTimestamp":1.5e9,"data":"QQ==",
              "kinesisSchemaVersion":"1.0","partitionKey":"p","sequenceNumber":"7"},
              "eventID":"shardId-1:7","x":[true,false,null,{"y":[-0.5E+2]}]},
              {"eventID":null,"kinesis":{"sequenceNumber":"8","data":""}} ], "z": {} } "#,
        );
        assert_eq!(
            got,
            Some(vec![
                (
                    Some("shardId-1:7".into()),
                    "7".into(),
                    "p".into(),
                    "QQ==".into()
                ),
                (None, "8".into(), "".into(), "".into()),
            ])
        );
    }

    #[test]
    fn records_of_one_shape_are_read_through_the_template() {
        let record = |pk: &str, seq: u32, arrival: &str, id: &str| {
            format!(
                r#"{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"{pk}","sequenceNumber":"{seq}","data":"QQ==","approximateArrivalTimestamp":{arrival}}},"eventSource":"aws:kinesis","eventID":{id}}}"#
            )
        };
        let event = format!(
            r#"{{"Records":[{},{},{},{},{}]}}"#,
            record("a", 1, "1.5", r#""s:1""#),
            record("bb", 22, "2", r#""s:22""#),
            // A different shape (eventID null) is read fully and becomes the template.
            record("c", 3, "3", "null"),
            record("d", 4, "4", "null"),
            record("e", 5, "5e0", "null"),
        );
        let mut got = Vec::new();
        let reads = scan_counting(
            event.as_bytes(),
            &mut sink(|r| {
                got.push((r.partition_key, r.sequence_number, r.arrival, r.event_id));
                Some(())
            }),
        );
        assert_eq!(reads, Some(3));
        type Read<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>, Option<&'a [u8]>);
        let want: Vec<Read<'_>> = vec![
            (b"a", b"1", Some(b"1.5"), Some(b"s:1")),
            (b"bb", b"22", Some(b"2"), Some(b"s:22")),
            (b"c", b"3", Some(b"3"), None),
            (b"d", b"4", Some(b"4"), None),
            (b"e", b"5", Some(b"5e0"), None),
        ];
        assert_eq!(got, want);
        // A record that only starts like the last is read fully, not half through the template.
        let event = format!(
            r#"{{"Records":[{},{}]}}"#,
            record("a", 1, "1", r#""s""#),
            record("a", 1, "1", r#""s","x":1"#),
        );
        assert_eq!(scan_counting(event.as_bytes(), &mut |_| Some(())), Some(0));
    }

    #[test]
    fn gives_up_on_what_serde_must_judge() {
        for event in [
            r#"{"Records":[{"kinesis":{"sequenceNumber":"1","data":"","data":""}}]}"#,
            r#"{"Records":[{"kinesis":{"sequenceNumber":"\u0031","data":""}}]}"#,
            r#"{"Records":[{"kinesis":{"sequenceNumber":"日本","data":""}}]}"#,
            r#"{"Records":[{"kinesis":{"data":""}}]}"#,
            r#"{"Records":[{}]}"#,
            r#"{"Records":[]} x"#,
            r#"{"Records":[],}"#,
            r#"{"Records":[1]}"#,
            r#"{"Records":null}"#,
            r#"{"Other":[]}"#,
            r#"{"Records":[], "n": 01}"#,
            r#"{"Records":[], "n": 1.}"#,
            r#"{"Records":[], "n": tru}"#,
            r#"{"Records":[], "n": "a	b"}"#,
            r#"{"Records":["#,
        ] {
            assert_eq!(records(event), None, "{event}");
        }
        let deep = format!(
            "{{\"Records\":[],\"d\":{}{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(records(&deep), None);
        assert_eq!(records(r#"{"Records":[],"Records":1}"#), Some(vec![]));
    }
}
