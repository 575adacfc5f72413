//! Requests beyond get/list/patch in the namespace: creating an object, and listing across the
//! whole cluster (nodes, every namespace's pods) for the capacity room.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use kube::api::{Api, ListParams, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Cluster;
use super::api::{FIELD_MANAGER, bounded, kind_of};
use crate::error::Error;

impl Cluster {
    /// Creates an object in the namespace with our field manager; `dry_run` sends `dryRun=All`.
    ///
    /// # Errors
    /// API errors (409 AlreadyExists included) and transport errors.
    pub async fn create<K>(&self, object: &K, dry_run: bool) -> Result<K, Error>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        let action = format!("create {} {}/{name}", kind_of::<K>(), self.namespace);
        let params = PostParams {
            dry_run,
            field_manager: Some(FIELD_MANAGER.to_string()),
        };
        bounded(&action, &self.server, self.api::<K>().create(&params, object)).await
    }

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
