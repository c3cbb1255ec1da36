//! Saved device groups: a filter over the registry (RA, status, tags that must all be present, metadata
//! values that must all be equal), nestable: a child's filter is ANDed with its ancestors'. A group's counts
//! per status are live at every read: the store's maintained counts when the combined filter names at most
//! an RA and a status, else one `GROUP BY` over the devices it matches.

use serde_json::{Map, Value, json};
use shedu_store::{DeviceFilter, GROUP_HAS_CHILDREN, GroupRow};

use super::{DeviceStatus, check_tags};
use crate::error::store_err;
use crate::events::{EventKind, event};
use crate::registry::new_id;
use crate::{AuditAction, AuditContext, Devices, Error};

/// A group's filter; empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceGroupFilter {
    /// Registered by this RA.
    pub ra_id: Option<String>,
    /// In this status.
    pub status: Option<DeviceStatus>,
    /// Carrying every one of these tags.
    pub tags: Vec<String>,
    /// Metadata keys whose values must equal these scalars (JSON equality: `"5"` is not `5`).
    pub metadata: Map<String, Value>,
}

/// A group to create.
#[derive(Clone, Debug, Default)]
pub struct NewDeviceGroup {
    /// Unique name.
    pub name: String,
    /// The group this one narrows.
    pub parent_id: Option<String>,
    /// Its own filter, ANDed with its ancestors'.
    pub filter: DeviceGroupFilter,
}

/// A device group.
#[derive(Clone, Debug)]
pub struct DeviceGroup {
    /// Stable id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The group this one narrows.
    pub parent_id: Option<String>,
    /// Its own filter.
    pub filter: DeviceGroupFilter,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A group with its combined filter and the number of its devices in each status.
#[derive(Clone, Debug)]
pub struct DeviceGroupDetail {
    /// The group.
    pub group: DeviceGroup,
    /// Its filter ANDed with every ancestor's: what its devices match.
    pub combined: DeviceGroupFilter,
    /// Every status, with zero for those no device is in.
    pub counts: Vec<(DeviceStatus, i64)>,
}

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 16;
const MAX_KEY: usize = 64;

impl DeviceGroupFilter {
    /// ANDs `other` into this filter. Two different RAs, statuses or values for one key can match nothing;
    /// such a group is refused when created, so combining stored groups never meets one.
    fn and(&mut self, other: &DeviceGroupFilter) -> Result<(), Error> {
        let contradiction = |what: String| {
            Error::invalid(
                "group-filter-contradiction",
                format!("{what} contradicts the parent group's filter: no device could match"),
            )
        };
        match (&self.ra_id, &other.ra_id) {
            (Some(a), Some(b)) if a != b => return Err(contradiction(format!("ra_id {b:?}"))),
            (None, Some(b)) => self.ra_id = Some(b.clone()),
            _ => {}
        }
        match (self.status, other.status) {
            (Some(a), Some(b)) if a != b => return Err(contradiction(format!("status {b}"))),
            (None, Some(b)) => self.status = Some(b),
            _ => {}
        }
        for tag in &other.tags {
            if !self.tags.contains(tag) {
                self.tags.push(tag.clone());
            }
        }
        for (k, v) in &other.metadata {
            match self.metadata.get(k) {
                Some(mine) if mine != v => {
                    return Err(contradiction(format!("metadata {k} = {v}")));
                }
                Some(_) => {}
                None => {
                    self.metadata.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(())
    }

    fn to_store(&self) -> DeviceFilter {
        DeviceFilter {
            ra_id: self.ra_id.clone(),
            status: self.status.map(|s| s.as_str().to_string()),
            tags: self.tags.clone(),
            metadata: self
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
            before_seq: None,
            limit: 0,
        }
    }
}

impl Devices {
    /// Creates a group; under a parent, its filter must not contradict the ancestors'.
    pub async fn create_device_group(
        &self,
        actor: &AuditContext,
        g: NewDeviceGroup,
    ) -> Result<DeviceGroup, Error> {
        crate::model::check_name(&g.name)?;
        let filter = DeviceGroupFilter {
            tags: check_tags(g.filter.tags)?,
            metadata: check_metadata_filter(g.filter.metadata)?,
            ..g.filter
        };
        if let Some(parent) = &g.parent_id {
            let chain = self.group_chain(parent).await?;
            if chain.len() >= MAX_DEPTH {
                return Err(Error::invalid(
                    "group-too-deep",
                    format!("groups nest at most {MAX_DEPTH} deep"),
                ));
            }
            combine(&chain)?.and(&filter)?;
        }
        let now = self.reg.clock.now();
        let group = DeviceGroup {
            id: new_id(),
            name: g.name,
            parent_id: g.parent_id,
            filter,
            created_at: now,
        };
        let ev = group_event(
            EventKind::DeviceGroupCreated,
            &group.id,
            now,
            json!({"id": group.id, "name": group.name, "parent_id": group.parent_id}),
        );
        self.reg
            .store
            .insert_device_group(&group_row(&group), &ev, &AuditAction::GroupCreate.by(actor))
            .await
            .map_err(|e| match e {
                shedu_store::Error::Conflict { .. } => Error::conflict(
                    "group-exists",
                    format!("a group named {:?} exists", group.name),
                ),
                other => store_err("parent device group")(other),
            })?;
        Ok(group)
    }

    /// Every group, by name (own filters; counts are per group).
    pub async fn device_groups(&self) -> Result<Vec<DeviceGroup>, Error> {
        self.reg
            .store
            .list_device_groups()
            .await
            .map_err(store_err("device groups"))?
            .into_iter()
            .map(group_from_row)
            .collect()
    }

    /// A group with its combined filter and live counts per status.
    pub async fn device_group(&self, id: &str) -> Result<DeviceGroupDetail, Error> {
        let chain = self.group_chain(id).await?;
        let combined = combine(&chain)?;
        let counted = self
            .reg
            .store
            .count_devices_by_status(&combined.to_store())
            .await
            .map_err(store_err(format!("device group {id}")))?;
        let counts = DeviceStatus::ALL
            .into_iter()
            .map(|s| {
                let n = counted
                    .iter()
                    .find(|(name, _)| name == s.as_str())
                    .map_or(0, |(_, n)| *n);
                (s, n)
            })
            .collect();
        let group = chain
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotFound(format!("device group {id}")))?;
        Ok(DeviceGroupDetail {
            group,
            combined,
            counts,
        })
    }

    /// Deletes a group (not its devices); a group with child groups is a conflict.
    pub async fn delete_device_group(&self, actor: &AuditContext, id: &str) -> Result<(), Error> {
        let now = self.reg.clock.now();
        let ev = group_event(EventKind::DeviceGroupDeleted, id, now, json!({"id": id}));
        self.reg
            .store
            .delete_device_group(id, &ev, &AuditAction::GroupDelete.by(actor))
            .await
            .map_err(|e| match e {
                shedu_store::Error::Conflict {
                    constraint: Some(c),
                } if c == GROUP_HAS_CHILDREN => Error::conflict(
                    "group-has-children",
                    format!("device group {id} has child groups; delete them first"),
                ),
                other => store_err(format!("device group {id}"))(other),
            })
    }

    /// A group and its ancestors, nearest first.
    async fn group_chain(&self, id: &str) -> Result<Vec<DeviceGroup>, Error> {
        self.reg
            .store
            .device_group_chain(id)
            .await
            .map_err(store_err(format!("device group {id}")))?
            .into_iter()
            .map(group_from_row)
            .collect()
    }
}

/// The filters of a chain ANDed together.
fn combine(chain: &[DeviceGroup]) -> Result<DeviceGroupFilter, Error> {
    let mut combined = DeviceGroupFilter::default();
    for g in chain.iter().rev() {
        combined.and(&g.filter)?;
    }
    Ok(combined)
}

/// Metadata filter keys are plain names (they become JSON paths); values are scalars.
fn check_metadata_filter(m: Map<String, Value>) -> Result<Map<String, Value>, Error> {
    for (k, v) in &m {
        let key_ok = !k.is_empty()
            && k.len() <= MAX_KEY
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !key_ok {
            return Err(Error::invalid(
                "invalid-metadata-filter",
                format!("metadata key {k:?}: 1 to {MAX_KEY} of letters, digits and _-."),
            ));
        }
        if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            return Err(Error::invalid(
                "invalid-metadata-filter",
                format!("metadata {k}: the value must be a string, number or boolean"),
            ));
        }
    }
    Ok(m)
}

fn group_event(ty: EventKind, id: &str, time: i64, data: Value) -> shedu_store::NewEvent {
    event(ty, format!("device-groups/{id}"), time, data)
}

fn group_row(g: &DeviceGroup) -> GroupRow {
    GroupRow {
        id: g.id.clone(),
        name: g.name.clone(),
        parent_id: g.parent_id.clone(),
        ra_id: g.filter.ra_id.clone(),
        status: g.filter.status.map(|s| s.as_str().to_string()),
        tags: g.filter.tags.clone(),
        metadata: Value::Object(g.filter.metadata.clone()).to_string(),
        created_at: g.created_at,
    }
}

fn group_from_row(r: GroupRow) -> Result<DeviceGroup, Error> {
    let metadata = match serde_json::from_str(&r.metadata) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(Error::Internal(format!(
                "stored filter of device group {} is not a JSON object",
                r.id
            )));
        }
    };
    Ok(DeviceGroup {
        filter: DeviceGroupFilter {
            ra_id: r.ra_id,
            status: r.status.as_deref().map(DeviceStatus::stored).transpose()?,
            tags: r.tags,
            metadata,
        },
        id: r.id,
        name: r.name,
        parent_id: r.parent_id,
        created_at: r.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(v: Value) -> DeviceGroupFilter {
        DeviceGroupFilter {
            ra_id: v["ra_id"].as_str().map(str::to_string),
            status: v["status"].as_str().map(|s| s.parse().unwrap()),
            tags: v["tags"]
                .as_array()
                .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
                .unwrap_or_default(),
            metadata: v["metadata"].as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn filters_and_together_and_contradictions_are_refused() {
        let mut f = filter(json!({"ra_id": "ra1", "tags": ["a"], "metadata": {"site": "lyon"}}));
        f.and(&filter(
            json!({"status": "with_warnings", "tags": ["b", "a"], "metadata": {"floor": 3}}),
        ))
        .unwrap();
        assert_eq!(
            f,
            filter(
                json!({"ra_id": "ra1", "status": "with_warnings", "tags": ["a", "b"],
                          "metadata": {"site": "lyon", "floor": 3}})
            )
        );
        for bad in [
            json!({"ra_id": "ra2"}),
            json!({"status": "requires_action"}),
            json!({"metadata": {"site": "berlin"}}),
            json!({"metadata": {"floor": "3"}}),
        ] {
            let err = f.clone().and(&filter(bad.clone())).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        code: "group-filter-contradiction",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn metadata_filters_take_plain_keys_and_scalars() {
        let ok = json!({"site": "lyon", "floor.no": 3, "on": true});
        assert!(check_metadata_filter(ok.as_object().unwrap().clone()).is_ok());
        for bad in [
            json!({"a\"b": 1}),
            json!({"": 1}),
            json!({"k": null}),
            json!({"k": [1]}),
            json!({"k": {"x": 1}}),
        ] {
            assert!(
                check_metadata_filter(bad.as_object().unwrap().clone()).is_err(),
                "{bad}"
            );
        }
    }
}
