//! Listing across the whole cluster (nodes, every namespace's pods), for the capacity room.

use std::fmt::Debug;

use kube::Resource;
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

use super::Cluster;
use super::api::{bounded, kind_of};
use crate::error::Error;

impl Cluster {
    /// Lists every object of a kind in the cluster: cluster-scoped kinds (nodes), or a
    /// namespaced kind across all namespaces.
    ///
    /// # Errors
    /// API errors (403 when the user may not list cluster-wide) and transport errors.
    pub async fn list_cluster<K>(&self) -> Result<Vec<K>, Error>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let action = format!("list {} in all namespaces", kind_of::<K>());
        let api: Api<K> = Api::all(self.client.clone());
        let list = bounded(&action, &self.server, api.list(&ListParams::default())).await?;
        Ok(list.items)
    }
}
