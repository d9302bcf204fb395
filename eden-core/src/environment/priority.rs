//! Choosing the host rule's priority on the shared listener: a pure function of the priorities
//! in use, the attempt and a random pick, so the plan and the run choose alike and tests can
//! hold it to its promises.
//!
//! The first attempt takes the lowest free priority, reusing the ones deleted environments
//! freed. After a `PriorityInUse` (another create took it meanwhile) the next attempt takes one
//! of the [`SPREAD`] lowest free priorities at random: concurrent creates that all lost to the
//! same winner then stop choosing the same one again.

use std::collections::BTreeSet;

use crate::cloud::Rule;

/// Highest listener rule priority (ELBv2).
pub(crate) const MAX_PRIORITY: i32 = 50_000;

/// How many of the lowest free priorities a retry picks from.
pub(crate) const SPREAD: usize = 8;

/// The priorities `rules` hold (the default rule has none).
pub(crate) fn in_use(rules: &[Rule]) -> BTreeSet<i32> {
    rules.iter().filter_map(|r| r.priority).collect()
}

/// The lowest free priorities, at most `take` of them, ascending.
pub(crate) fn lowest_free(used: &BTreeSet<i32>, take: usize) -> Vec<i32> {
    (1..=MAX_PRIORITY)
        .filter(|p| !used.contains(p))
        .take(take)
        .collect()
}

/// The priority to try on attempt `attempt` (from 0), given the priorities in use; `pick` is
/// any random number (only retries use it). `None` when every priority is taken.
pub(crate) fn choose(used: &BTreeSet<i32>, attempt: u32, pick: usize) -> Option<i32> {
    let free = lowest_free(used, if attempt == 0 { 1 } else { SPREAD });
    free.get(pick % free.len().max(1)).copied()
}

/// Whether a retry should read the listener's rules again first: every fourth attempt, since
/// others may also have freed priorities.
pub(crate) fn refresh_before(attempt: u32) -> bool {
    attempt % 4 == 3
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_first_attempt_takes_the_lowest_free_priority() {
        assert_eq!(choose(&BTreeSet::new(), 0, 7), Some(1));
        assert_eq!(choose(&BTreeSet::from([1, 2, 4]), 0, 7), Some(3));
        // Freed priorities are reused before higher ones.
        assert_eq!(choose(&BTreeSet::from([2, 3, 50]), 0, 0), Some(1));
    }

    #[test]
    fn retries_spread_over_the_lowest_free_ones() {
        let used = BTreeSet::from([1, 3]);
        let picks: BTreeSet<i32> = (0..SPREAD).filter_map(|n| choose(&used, 1, n)).collect();
        assert_eq!(picks, BTreeSet::from([2, 4, 5, 6, 7, 8, 9, 10]));
    }

    #[test]
    fn a_full_listener_has_no_priority() {
        let all: BTreeSet<i32> = (1..=MAX_PRIORITY).collect();
        assert_eq!(choose(&all, 0, 0), None);
        assert_eq!(choose(&all, 5, 3), None);
        let mut one_left = all;
        one_left.remove(&MAX_PRIORITY);
        assert_eq!(choose(&one_left, 3, 5), Some(MAX_PRIORITY));
    }

    #[test]
    fn refreshes_every_fourth_retry() {
        let refreshed: Vec<u32> = (0..12).filter(|a| refresh_before(*a)).collect();
        assert_eq!(refreshed, [3, 7, 11]);
    }

    proptest! {
        #[test]
        fn never_a_priority_in_use_and_always_a_low_free_one(
            used in proptest::collection::btree_set(1..=64i32, 0..64),
            high in proptest::collection::btree_set(1..=MAX_PRIORITY, 0..32),
            attempt in 0u32..60,
            pick in any::<usize>(),
        ) {
            let used: BTreeSet<i32> = used.into_iter().chain(high).collect();
            let chosen = choose(&used, attempt, pick).expect("free priorities are left");
            prop_assert!((1..=MAX_PRIORITY).contains(&chosen));
            prop_assert!(!used.contains(&chosen));
            let below = (1..chosen).filter(|p| !used.contains(p)).count();
            if attempt == 0 {
                // Nothing free below it.
                prop_assert_eq!(below, 0);
            } else {
                prop_assert!(below < SPREAD);
            }
            // Deterministic: the same inputs choose the same priority.
            prop_assert_eq!(choose(&used, attempt, pick), Some(chosen));
        }

        #[test]
        fn every_low_free_priority_can_be_picked_on_a_retry(
            used in proptest::collection::btree_set(1..=40i32, 0..40),
            attempt in 1u32..60,
        ) {
            let reachable: BTreeSet<i32> =
                (0..SPREAD).filter_map(|n| choose(&used, attempt, n)).collect();
            let lowest: BTreeSet<i32> = lowest_free(&used, SPREAD).into_iter().collect();
            prop_assert_eq!(reachable, lowest);
        }
    }
}
