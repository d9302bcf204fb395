//! What a destination receives: the records one route accepted, grouped by `log_type`
//! ([`RoutedBatch`], [`TypeGroup`]). The [`Router`](crate::Router) builds them; the
//! [`Destination`](crate::Destination) trait takes them. Both depend on this module, and it on
//! neither.

use chrono::{DateTime, FixedOffset};

use crate::classify::Record;

/// The records of one route, grouped by `log_type`.
#[derive(Debug, Clone)]
pub struct RoutedBatch<'a> {
    /// Index of the route in the router.
    pub route: usize,
    /// The groups, in order of each type's first appearance in the batch.
    pub groups: Vec<TypeGroup<'a>>,
    len: usize,
    /// The group of each record, in input order.
    order: Vec<u32>,
}

/// The records of one `log_type` within a route, in input order.
#[derive(Debug, Clone)]
pub struct TypeGroup<'a> {
    /// The `log_type` shared by the group.
    pub log_type: &'a str,
    /// The first record's timestamp, with its offset (`None` if it had none; timestamps not
    /// required).
    pub first_timestamp: Option<DateTime<FixedOffset>>,
    /// The first record's id, if it had one.
    pub first_id: Option<&'a str>,
    /// The records.
    pub records: Vec<&'a Record<'a>>,
    /// Slot of the first record in the batch: record `i` of the group is slot `start + i`.
    pub start: usize,
}

impl<'a> RoutedBatch<'a> {
    /// A batch of `len` records of route `route` in `groups`; `order` holds the group of
    /// each record in input order.
    pub(crate) fn new(
        route: usize,
        groups: Vec<TypeGroup<'a>>,
        len: usize,
        order: Vec<u32>,
    ) -> Self {
        Self {
            route,
            groups,
            len,
            order,
        }
    }

    /// Number of records (slots) in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every record with its slot, group by group.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &TypeGroup<'a>, &'a Record<'a>)> + '_ {
        self.groups.iter().flat_map(|g| {
            g.records
                .iter()
                .enumerate()
                .map(move |(i, r)| (g.start + i, g, *r))
        })
    }

    /// Every record with its group's index, in input order (not group by group). Records
    /// of a batch lie in input order in memory: reading them so is far kinder to caches
    /// than group by group when types are interleaved.
    pub fn iter_input_order(&self) -> impl Iterator<Item = (usize, &'a Record<'a>)> + '_ {
        let mut next = vec![0usize; self.groups.len()];
        self.order.iter().filter_map(move |&g| {
            let g = g as usize;
            let i = next.get_mut(g)?;
            let record = *self.groups.get(g)?.records.get(*i)?;
            *i += 1;
            Some((g, record))
        })
    }

    /// Total payload bytes in the batch.
    pub fn payload_bytes(&self) -> usize {
        self.iter().map(|(_, _, r)| r.data.len()).sum()
    }
}

impl<'a> TypeGroup<'a> {
    /// The slots of the group's records.
    pub fn slots(&self) -> std::ops::Range<usize> {
        self.start..self.start + self.records.len()
    }
}
