//! Routing valid records to destinations: allow-lists, fan-out, type groups.

use std::sync::Arc;

use serde::Deserialize;

pub use crate::batch::{RoutedBatch, TypeGroup};
use crate::classify::Record;
use crate::destination::Destination;

/// An allow-list of `log_type`s; empty accepts every type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct TypeFilter {
    allow: Vec<String>,
}

impl TypeFilter {
    /// Accepts every type.
    pub fn all() -> Self {
        Self::default()
    }

    /// Accepts only these types (an empty list accepts every type).
    pub fn only<I, S>(types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            allow: types.into_iter().map(Into::into).collect(),
        }
    }

    /// Parses a comma-separated list as in the original `LOG_TYPE_WHITELIST` (blanks ignored).
    ///
    /// ```
    /// use logging_core::routing::TypeFilter;
    /// let f = TypeFilter::from_comma_list(" nginx, app ,,");
    /// assert!(f.accepts("app") && !f.accepts("db"));
    /// assert!(TypeFilter::from_comma_list("").accepts("anything"));
    /// ```
    pub fn from_comma_list(list: &str) -> Self {
        Self::only(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    /// Whether `log_type` passes.
    pub fn accepts(&self, log_type: &str) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|t| t == log_type)
    }

    /// The allowed types (empty = all).
    pub fn allowed(&self) -> &[String] {
        &self.allow
    }
}

/// A route: a filter on `log_type` and where the accepted records go.
#[derive(Debug, Clone)]
pub struct Route<D> {
    /// Which types the route accepts.
    pub filter: TypeFilter,
    /// The destination (for the pipeline, an `Arc<dyn Destination>`).
    pub destination: D,
}

/// A router: an ordered list of routes. A record goes to every route that accepts it.
#[derive(Debug, Clone)]
pub struct Router<D = Arc<dyn Destination>> {
    routes: Vec<Route<D>>,
}

impl<D> Default for Router<D> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

impl<D> Router<D> {
    /// A router without routes (every record is filtered).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route.
    pub fn with_route(mut self, filter: TypeFilter, destination: D) -> Self {
        self.routes.push(Route {
            filter,
            destination,
        });
        self
    }

    /// Adds a route.
    pub fn push(&mut self, filter: TypeFilter, destination: D) {
        self.routes.push(Route {
            filter,
            destination,
        });
    }

    /// The routes, in order.
    pub fn routes(&self) -> &[Route<D>] {
        &self.routes
    }

    /// Whether any route accepts `log_type` (otherwise the record is filtered).
    pub fn accepts(&self, log_type: &str) -> bool {
        self.routes.iter().any(|r| r.filter.accepts(log_type))
    }

    /// Routes records: one [`RoutedBatch`] per route that accepts at least one record, in route
    /// order; within it, one [`TypeGroup`] per type in order of first appearance, each keeping
    /// input order and the first record's timestamp and id.
    ///
    /// ```
    /// use logging_core::classify::{classify, Classified};
    /// use logging_core::routing::{Router, TypeFilter};
    /// use logging_core::SchemaConfig;
    /// use kinesis_utils::{Decoded, Origin, Payload};
    /// # let origin = Origin::new("1");
    /// let items: Vec<Decoded> = [
    ///     r#"{"log_type":"web","log_id":"w1","time":"2020-03-14T12:00:00Z"}"#,
    ///     r#"{"log_type":"db","log_id":"d1","time":"2020-03-14T12:00:01Z"}"#,
    ///     r#"{"log_type":"web","log_id":"w2","time":"2020-03-14T12:00:02Z"}"#,
    /// ].iter().map(|s| Decoded::Payload(Payload { data: s.as_bytes().to_vec().into(), origin: origin.clone() })).collect();
    /// let schema = SchemaConfig::default();
    /// let records: Vec<_> = items.iter().enumerate().filter_map(|(i, d)| match classify(i, d, &schema) {
    ///     Classified::Valid(r) => Some(r),
    ///     _ => None,
    /// }).collect();
    ///
    /// // Route 0 archives everything, route 1 forwards only "web": "web" records fan out.
    /// let router = Router::new()
    ///     .with_route(TypeFilter::all(), "archive")
    ///     .with_route(TypeFilter::only(["web"]), "forward");
    /// let batches = router.route(&records);
    /// assert_eq!(batches.len(), 2);
    /// let types: Vec<_> = batches[0].groups.iter().map(|g| (g.log_type, g.records.len())).collect();
    /// assert_eq!(types, [("web", 2), ("db", 1)]);
    /// assert_eq!(batches[0].groups[0].first_id, Some("w1"));
    /// assert_eq!(router.routes()[batches[1].route].destination, "forward");
    /// assert_eq!(batches[1].len(), 2);
    /// ```
    pub fn route<'a>(&self, records: &'a [Record<'a>]) -> Vec<RoutedBatch<'a>> {
        let marks: Vec<Mark> = records.iter().map(|r| self.mark(&r.log_type)).collect();
        self.route_marked(records, &marks)
    }

    /// What routing needs to know of a type: taken where the caller reads the type anyway
    /// (the pipeline's classification loop), so that routing never reads it again.
    pub(crate) fn mark(&self, log_type: &str) -> Mark {
        let mut routes = 0u64;
        let mut any = false;
        for (i, route) in self.routes.iter().enumerate() {
            if route.filter.accepts(log_type) {
                any = true;
                routes |= route_bit(i).unwrap_or(0);
            }
        }
        Mark {
            print: Fingerprint::of(log_type),
            routes,
            any,
        }
    }

    /// [`Router::route`] with each record's [`Mark`] (`marks[i]` of `records[i]`).
    pub(crate) fn route_marked<'a>(
        &self,
        records: &'a [Record<'a>],
        marks: &[Mark],
    ) -> Vec<RoutedBatch<'a>> {
        let mut out = Vec::new();
        for (route_no, route) in self.routes.iter().enumerate() {
            let bit = route_bit(route_no);
            let mut groups: Vec<TypeGroup<'a>> = Vec::new();
            let mut order = Vec::with_capacity(records.len());
            // Runs of one type hit the last group; otherwise each group's fingerprint (length
            // and end words) is compared as integers, and only a match of a type longer than
            // the fingerprint is compared in full.
            let mut prints: Vec<Fingerprint> = Vec::new();
            let mut last: Option<usize> = None;
            for (record, mark) in records.iter().zip(marks) {
                let log_type: &'a str = &record.log_type;
                let accepted = match bit {
                    Some(bit) => mark.routes & bit != 0,
                    None => route.filter.accepts(log_type),
                };
                if !accepted {
                    continue;
                }
                let print = mark.print;
                let is = |g: usize| {
                    prints.get(g) == Some(&print)
                        && (print.exact()
                            || groups.get(g).is_some_and(|x| same(x.log_type, log_type)))
                };
                let g = match last.filter(|&g| is(g)) {
                    Some(g) => g,
                    None => match (0..prints.len()).find(|&g| is(g)) {
                        Some(g) => g,
                        None => {
                            prints.push(print);
                            groups.push(TypeGroup {
                                log_type,
                                first_timestamp: record.timestamp,
                                first_id: record.log_id.as_deref(),
                                records: Vec::new(),
                                start: 0,
                            });
                            groups.len() - 1
                        }
                    },
                };
                last = Some(g);
                if let Some(group) = groups.get_mut(g) {
                    group.records.push(record);
                }
                order.push(u32::try_from(g).unwrap_or(u32::MAX));
            }
            if groups.is_empty() {
                continue;
            }
            let mut start = 0;
            for g in &mut groups {
                g.start = start;
                start += g.records.len();
            }
            out.push(RoutedBatch::new(route_no, groups, start, order));
        }
        out
    }
}

/// Route `i`'s bit in [`Mark::routes`]; routes past 64 have none.
fn route_bit(i: usize) -> Option<u64> {
    u32::try_from(i).ok().and_then(|n| 1u64.checked_shl(n))
}

/// What [`Router::route_marked`] needs of one record's type.
#[derive(Clone, Copy)]
pub(crate) struct Mark {
    print: Fingerprint,
    /// Bit `i`: route `i` accepts the type (routes past 64 ask their filter again).
    routes: u64,
    /// Some route accepts the type.
    pub(crate) any: bool,
}

impl Mark {
    /// Whether `a` (marked `self`) and `b` (marked `other`) are the same type: fingerprints
    /// compared as integers, the strings only when a fingerprint does not hold them whole.
    pub(crate) fn same_type(&self, a: &str, other: &Mark, b: &str) -> bool {
        self.print == other.print && (self.print.exact() || same(a, b))
    }
}

/// A type's length and its first and last eight bytes (overlapping when shorter than 16,
/// fewer when shorter than 8): equal strings have equal fingerprints, types that differ
/// mostly differ here, and types of up to 16 bytes are held whole.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Fingerprint(usize, u64, u64);

impl Fingerprint {
    fn of(s: &str) -> Self {
        let b = s.as_bytes();
        let n = b.len();
        let u32_at = |i: usize| {
            b.get(i..i + 4)
                .and_then(|w| w.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        let u64_at = |i: usize| {
            b.get(i..i + 8)
                .and_then(|w| w.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        // Fixed-size loads only (overlapping for short strings): no per-byte loop or memcpy.
        let (head, tail) = match n {
            8.. => (u64_at(0), u64_at(n - 8)),
            4..8 => {
                let w = u64::from(u32_at(0)) | (u64::from(u32_at(n - 4)) << 32);
                (w, w)
            }
            1..4 => {
                let byte = |i: usize| u64::from(b.get(i).copied().unwrap_or_default());
                let w = byte(0) | (byte(n / 2) << 8) | (byte(n - 1) << 16);
                (w, w)
            }
            0 => (0, 0),
        };
        Fingerprint(n, head, tail)
    }

    /// Whether the fingerprint holds every byte, so that equal fingerprints are equal types.
    fn exact(self) -> bool {
        self.0 <= 16
    }
}

/// String equality inline: types are short, and a `memcmp` call per comparison was most of
/// routing's time.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tests::origin;
    use bytes::Bytes;
    use chrono::DateTime;
    use std::borrow::Cow;

    fn rec<'a>(i: usize, t: &'a str, data: &'a Bytes, o: &'a kinesis_utils::Origin) -> Record<'a> {
        Record {
            index: i,
            data,
            log_type: Cow::Borrowed(t),
            log_id: Some(Cow::Owned(format!("id{i}"))),
            timestamp: DateTime::from_timestamp(i as i64, 0).map(|t| t.fixed_offset()),
            origin: o,
            line_break: true,
        }
    }

    #[test]
    fn many_types_with_one_fingerprint_keep_their_groups() {
        let data = Bytes::from_static(b"{}");
        let o = origin("1");
        // 17 bytes, same first and last eight: every fingerprint is alike.
        let types: Vec<String> = (0..40)
            .map(|i| format!("service-{}-workers", (b'a' + (i % 20) as u8) as char))
            .collect();
        let records: Vec<_> = types
            .iter()
            .enumerate()
            .map(|(i, t)| rec(i, t, &data, &o))
            .collect();
        let batches = Router::new()
            .with_route(TypeFilter::all(), ())
            .route(&records);
        let groups = &batches[0].groups;
        assert_eq!(groups.len(), 20);
        for (n, g) in groups.iter().enumerate() {
            assert_eq!(g.log_type, types[n]);
            let indices: Vec<_> = g.records.iter().map(|r| r.index).collect();
            assert_eq!(indices, [n, n + 20]);
        }
    }

    #[test]
    fn groups_fan_out_and_slots() {
        let data = Bytes::from_static(b"{}");
        let o = origin("1");
        let types = ["a", "b", "a", "c", "b", "a"];
        let records: Vec<_> = types
            .iter()
            .enumerate()
            .map(|(i, t)| rec(i, t, &data, &o))
            .collect();
        let router = Router::new()
            .with_route(TypeFilter::only(["a", "c"]), 0)
            .with_route(TypeFilter::only(["x"]), 1)
            .with_route(TypeFilter::all(), 2);
        let batches = router.route(&records);
        assert_eq!(batches.iter().map(|b| b.route).collect::<Vec<_>>(), [0, 2]);
        let b = &batches[1];
        assert_eq!(b.len(), 6);
        let shape: Vec<_> = b
            .groups
            .iter()
            .map(|g| {
                (
                    g.log_type,
                    g.records.iter().map(|r| r.index).collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [("a", vec![0, 2, 5]), ("b", vec![1, 4]), ("c", vec![3])]
        );
        assert_eq!(b.groups[1].first_id, Some("id1"));
        assert_eq!(
            b.groups[1].first_timestamp,
            DateTime::from_timestamp(1, 0).map(|t| t.fixed_offset())
        );
        let slots: Vec<_> = b.iter().map(|(s, _, r)| (s, r.index)).collect();
        assert_eq!(slots, [(0, 0), (1, 2), (2, 5), (3, 1), (4, 4), (5, 3)]);
        let input_order: Vec<_> = b.iter_input_order().map(|(g, r)| (g, r.index)).collect();
        assert_eq!(
            input_order,
            [(0, 0), (1, 1), (0, 2), (2, 3), (1, 4), (0, 5)]
        );
        let filtered: Vec<_> = batches[0]
            .iter_input_order()
            .map(|(g, r)| (g, r.index))
            .collect();
        assert_eq!(filtered, [(0, 0), (0, 2), (1, 3), (0, 5)]);
        assert!(same("ab", "ab") && !same("ab", "abc") && !same("abcdefghi", "abcdefgh!"));
        assert_eq!(b.groups[2].slots(), 5..6);
        assert_eq!(batches[0].len(), 4);
        assert!(router.accepts("zzz"));
        assert!(!Router::<u8>::new().accepts("a"));
        assert!(Router::<u8>::new().route(&records).is_empty());
    }

    /// Per route that took any: its number and its (type, record indices) groups.
    type Shape<'a> = Vec<(usize, Vec<(&'a str, Vec<usize>)>)>;

    /// Groups by plain string equality, per route in order: what `route` must equal.
    fn reference<'a>(routes: &[TypeFilter], records: &'a [Record<'a>]) -> Shape<'a> {
        let mut out = Vec::new();
        for (n, filter) in routes.iter().enumerate() {
            let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
            for r in records.iter().filter(|r| filter.accepts(&r.log_type)) {
                match groups.iter_mut().find(|g| g.0 == r.log_type) {
                    Some(g) => g.1.push(r.index),
                    None => groups.push((&r.log_type, vec![r.index])),
                }
            }
            if !groups.is_empty() {
                out.push((n, groups));
            }
        }
        out
    }

    proptest::proptest! {
        /// Types of every length class (exact and hashed fingerprints, collisions of head and
        /// tail) and more routes than the mark's 64 bits.
        #[test]
        fn routing_agrees_with_plain_grouping(
            types in proptest::collection::vec("[ab]{0,3}|x{5,7}[ab]|x{8}[ab]{1,3}x{8}", 0..40),
            filters in proptest::collection::vec(
                proptest::option::of(proptest::collection::vec("[ab]{0,3}|x{5,7}[ab]", 1..4)),
                1..70,
            ),
        ) {
            let data = Bytes::from_static(b"{}");
            let o = origin("1");
            let records: Vec<_> = types.iter().enumerate().map(|(i, t)| rec(i, t, &data, &o)).collect();
            let routes: Vec<TypeFilter> = filters
                .into_iter()
                .map(|f| f.map_or_else(TypeFilter::all, TypeFilter::only))
                .collect();
            let mut router = Router::new();
            for f in &routes {
                router.push(f.clone(), ());
            }
            let got: Shape<'_> = router
                .route(&records)
                .iter()
                .map(|b| {
                    let groups = b.groups.iter().map(|g| (g.log_type, g.records.iter().map(|r| r.index).collect())).collect();
                    (b.route, groups)
                })
                .collect();
            proptest::prop_assert_eq!(got, reference(&routes, &records));
        }
    }
}
