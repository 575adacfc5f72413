//! Listing across the whole cluster (nodes; the pods of every namespace bound to one node), for
//! the capacity room: page by page (`limit`/`continue`), so that what a read holds at once is
//! one page, not the cluster.

use std::fmt::Debug;

use kube::Resource;
use kube::api::{Api, ListParams};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Cluster;
use super::api::{bounded, kind_of};
use crate::error::Error;

/// Objects a page of a cluster-wide list carries (kubectl's and client-go's pager use 500).
pub(crate) const PAGE_SIZE: u32 = 500;

/// How often a paged list starts over after its continue token expired (410) mid-way.
const EXPIRED_RESTARTS: usize = 2;

/// One page of a list, with only the items' fields that `T` names.
#[derive(Debug, Deserialize)]
struct Page<T> {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

fn is_expired(error: &Error) -> bool {
    matches!(
        error,
        Error::Api {
            status: Some(410),
            ..
        }
    )
}

impl Cluster {
    /// Lists every object of a kind in the cluster, page by page: cluster-scoped kinds (nodes),
    /// or a namespaced kind across all namespaces.
    ///
    /// # Errors
    /// API errors (403 when the user may not list cluster-wide) and transport errors.
    pub async fn list_cluster<K>(&self) -> Result<Vec<K>, Error>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let action = format!("list {} in all namespaces", kind_of::<K>());
        let api: Api<K> = Api::all(self.client.clone());
        let mut restarts = 0;
        'listing: loop {
            let mut items = Vec::new();
            let mut params = ListParams::default().limit(PAGE_SIZE);
            loop {
                let page = match bounded(&action, &self.server, api.list(&params)).await {
                    Err(e)
                        if is_expired(&e)
                            && params.continue_token.is_some()
                            && restarts < EXPIRED_RESTARTS =>
                    {
                        restarts += 1;
                        continue 'listing;
                    }
                    other => other?,
                };
                items.extend(page.items);
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(token) => params = params.continue_token(&token),
                    None => return Ok(items),
                }
            }
        }
    }

    /// Folds every object of the collection at `path` (e.g. `/api/v1/pods`, all namespaces)
    /// matching `field_selector` (e.g. one node's running pods) into `init()`, page by page, reading each item as `T` (a slim
    /// struct of just the fields needed): memory is one page plus the fold's state, however
    /// large the cluster. A continue token that expires mid-way (410, the list took longer
    /// than the server keeps its snapshot) starts the fold over from a fresh `init()`, as
    /// client-go's pager falls back to a fresh list (tools/pager/pager.go, `ListWithAlloc`).
    ///
    /// # Errors
    /// API errors (403 when the user may not list cluster-wide) and transport errors.
    pub(crate) async fn fold_pages<T, A>(
        &self,
        path: &str,
        field_selector: &str,
        init: impl Fn() -> A,
        mut fold: impl FnMut(&mut A, T),
    ) -> Result<A, Error>
    where
        T: DeserializeOwned,
    {
        let action = format!("list {path}");
        let request = kube::core::Request::new(path);
        let mut restarts = 0;
        'listing: loop {
            let mut state = init();
            let mut params = ListParams::default().limit(PAGE_SIZE);
            if !field_selector.is_empty() {
                params = params.fields(field_selector);
            }
            loop {
                let http = request
                    .list(&params)
                    .map_err(|e| Error::failed(format!("bad list request {path}: {e}"), "this is a bug"))?;
                let page: Page<T> = match bounded(&action, &self.server, self.client.request(http)).await {
                    Err(e)
                        if is_expired(&e)
                            && params.continue_token.is_some()
                            && restarts < EXPIRED_RESTARTS =>
                    {
                        restarts += 1;
                        continue 'listing;
                    }
                    other => other?,
                };
                for item in page.items {
                    fold(&mut state, item);
                }
                match page.metadata.continue_token.filter(|c| !c.is_empty()) {
                    Some(token) => params = params.continue_token(&token),
                    None => return Ok(state),
                }
            }
        }
    }
}
