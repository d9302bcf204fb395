//! Listing environments from the state table, and the expiry sweep.

use std::time::Duration;

use crate::error::{Error, Result, Step};
use crate::outcome::Outcome;
use crate::profile::Profile;

use super::Environment;
use super::options::DeleteOptions;
use super::run::now_epoch;
use super::state::EnvironmentRecord;

/// The result of [`Environment::sweep`].
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Environments deleted.
    pub deleted: Vec<Outcome>,
    /// Environments whose delete failed, with the error.
    pub failed: Vec<(String, Error)>,
}

impl Environment {
    /// Environments in the state table: of one profile, or of all (pages followed).
    pub async fn list(&self, profile: Option<&str>) -> Result<Vec<EnvironmentRecord>> {
        let state = &self.cloud.state;
        let mut out = Vec::new();
        let mut next = None;
        loop {
            let page = match profile {
                Some(p) => state.query(&self.table, p, next).await,
                None => {
                    state
                        .query_kind(&self.table, "environment", None, next)
                        .await
                }
            };
            let page = match page {
                Ok(page) => page,
                Err(e) if e.is_not_found() => return Ok(Vec::new()),
                Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
            };
            out.extend(page.items.iter().filter_map(EnvironmentRecord::from_item));
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        out.sort_by(|a, b| (&a.profile, &a.name).cmp(&(&b.profile, &b.name)));
        Ok(out)
    }

    /// Deletes every environment of `profile` not created or deployed for `max_age`.
    pub async fn sweep(
        &self,
        profile: &Profile,
        max_age: Duration,
        now: Option<i64>,
    ) -> Result<SweepReport> {
        let now = now.unwrap_or_else(now_epoch);
        let cutoff = now.saturating_sub(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        let state = &self.cloud.state;
        let mut expired = Vec::new();
        let mut next = None;
        loop {
            let page = match state
                .query_kind(&self.table, "environment", Some(cutoff), next)
                .await
            {
                Ok(page) => page,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
            };
            expired.extend(
                page.items
                    .iter()
                    .filter_map(EnvironmentRecord::from_item)
                    .filter(|r| r.profile == profile.name && r.last_updated < cutoff),
            );
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        let mut report = SweepReport::default();
        for record in expired {
            match self
                .delete(profile, &record.name, &DeleteOptions::default())
                .await
            {
                Ok(outcome) => report.deleted.push(outcome),
                Err(e) => report.failed.push((record.name, e)),
            }
        }
        Ok(report)
    }
}
