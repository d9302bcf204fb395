//! Profiles stored in the state table (`type = _profile`).

use crate::cloud::{AttrValue, Item, WriteCondition, schema};
use crate::error::{Error, Result, Step};
use crate::profile::Profile;

use super::Environment;

impl Environment {
    /// Stores a profile in the state table (creating the table when missing).
    pub async fn push_profile(&self, profile: &Profile) -> Result<()> {
        let state = &self.cloud.state;
        let id = format!("{}/_profile/{}", self.table, profile.name);
        state
            .ensure_table(&self.table)
            .await
            .map_err(|e| Error::cloud(Step::State, &self.table, e))?;
        let item = Item::from([
            (schema::HASH_KEY.into(), AttrValue::S("_profile".into())),
            (schema::RANGE_KEY.into(), AttrValue::S(profile.name.clone())),
            ("profile".into(), AttrValue::S(profile.to_json())),
            (schema::KIND.into(), AttrValue::S("profile".into())),
        ]);
        state
            .put_item(&self.table, item, WriteCondition::None)
            .await
            .map_err(|e| Error::cloud(Step::State, id, e))?;
        Ok(())
    }

    /// Reads a profile from the state table; `None` when it is not there.
    pub async fn pull_profile(&self, name: &str) -> Result<Option<Profile>> {
        let item = match self
            .cloud
            .state
            .get_item(&self.table, "_profile", name)
            .await
        {
            Ok(item) => item,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
        };
        let Some(json) = item
            .as_ref()
            .and_then(|i| i.get("profile"))
            .and_then(AttrValue::as_s)
        else {
            return Ok(None);
        };
        Ok(Some(Profile::from_json(name, json)?))
    }

    /// Names of the profiles in the state table.
    pub async fn list_profiles(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next = None;
        loop {
            let page = match self.cloud.state.query(&self.table, "_profile", next).await {
                Ok(p) => p,
                Err(e) if e.is_not_found() => return Ok(out),
                Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
            };
            out.extend(page.items.iter().filter_map(|i| {
                i.get(schema::RANGE_KEY)
                    .and_then(AttrValue::as_s)
                    .map(str::to_owned)
            }));
            match page.next {
                Some(n) => next = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Removes a profile from the state table; true when it was there.
    pub async fn remove_profile(&self, name: &str) -> Result<bool> {
        match self
            .cloud
            .state
            .delete_item(&self.table, "_profile", name, WriteCondition::None)
            .await
        {
            Ok(old) => Ok(old.is_some()),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(Error::cloud(Step::State, &self.table, e)),
        }
    }
}
