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
    /// large the cluster. A list that starts over ([`Pager`]) starts the fold over from a fresh
    /// `init()`.
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
        let mut pager = self.pager(path, field_selector, PAGE_SIZE);
        let mut state = init();
        while let Some(page) = pager.next_page().await? {
            if page.restarted {
                state = init();
            }
            for item in page.items {
                fold(&mut state, item);
            }
        }
        Ok(state)
    }

    /// A [`Pager`] over the collection at `path` matching `field_selector`, asking for
    /// `first_limit` objects in its first page and [`PAGE_SIZE`] in each later one.
    pub(crate) fn pager<T>(&self, path: &str, field_selector: &str, first_limit: u32) -> Pager<'_, T> {
        let mut params = ListParams::default().limit(first_limit);
        if !field_selector.is_empty() {
            params = params.fields(field_selector);
        }
        Pager {
            cluster: self,
            path: path.to_owned(),
            params,
            restarts: 0,
            restarted: false,
            done: false,
            item: std::marker::PhantomData,
        }
    }
}

/// A list read one page at a time (`limit`/`continue`), each item as `T` (a slim struct of just
/// the fields needed), so that a reader that has what it needs stops before the rest of the
/// cluster is sent. A continue token that expires mid-way (410: the list took longer than the
/// server keeps its snapshot) starts the list over, as client-go's pager falls back to a fresh
/// list (tools/pager/pager.go, `ListWithAlloc`); the page that starts over says so
/// ([`Paged::restarted`]), since the pages before it came from another snapshot.
pub(crate) struct Pager<'a, T> {
    cluster: &'a Cluster,
    path: String,
    params: ListParams,
    restarts: usize,
    restarted: bool,
    done: bool,
    item: std::marker::PhantomData<fn() -> T>,
}

/// One page of a [`Pager`].
pub(crate) struct Paged<T> {
    pub(crate) items: Vec<T>,
    /// The list started over with this page (an expired continue token): the items of earlier
    /// pages belong to another snapshot.
    pub(crate) restarted: bool,
}

impl<T: DeserializeOwned> Pager<'_, T> {
    /// The next page, or `None` once the last one was read.
    ///
    /// # Errors
    /// API errors (403 when the user may not list cluster-wide) and transport errors.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Paged<T>>, Error> {
        if self.done {
            return Ok(None);
        }
        let action = format!("list {}", self.path);
        let request = kube::core::Request::new(&self.path);
        loop {
            let http = request.list(&self.params).map_err(|e| {
                Error::failed(format!("bad list request {}: {e}", self.path), "this is a bug")
            })?;
            let cluster = self.cluster;
            let page: Page<T> = match bounded(&action, &cluster.server, cluster.client.request(http)).await {
                Err(e)
                    if is_expired(&e)
                        && self.params.continue_token.is_some()
                        && self.restarts < EXPIRED_RESTARTS =>
                {
                    self.restarts += 1;
                    self.restarted = true;
                    self.params.continue_token = None;
                    self.params.limit = Some(PAGE_SIZE);
                    continue;
                }
                other => other?,
            };
            match page.metadata.continue_token.filter(|c| !c.is_empty()) {
                Some(token) => {
                    self.params = self.params.clone().continue_token(&token).limit(PAGE_SIZE);
                }
                None => self.done = true,
            }
            return Ok(Some(Paged {
                items: page.items,
                restarted: std::mem::take(&mut self.restarted),
            }));
        }
    }
}
