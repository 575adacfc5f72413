//! SelfSubjectAccessReview preflight: every write a command will make is checked first.
//!
//! A missing permission is reported as verb + resource + namespace before anything is
//! written, instead of half a change followed by a 403.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::Cluster;
use super::api::map_error;
use crate::error::Error;

/// One write a command intends to make, e.g. patch `deployments/scale` in group `apps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub verb: String,
    pub group: String,
    /// Plural resource, optionally with `/subresource`.
    pub resource: String,
    pub name: Option<String>,
}

impl Permission {
    pub fn new(verb: &str, group: &str, resource: &str, name: Option<&str>) -> Self {
        Permission {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            name: name.map(str::to_string),
        }
    }

    /// The review request for this permission in a namespace.
    pub fn review(&self, namespace: &str) -> SelfSubjectAccessReview {
        let (resource, subresource) = match self.resource.split_once('/') {
            Some((r, s)) => (r.to_string(), Some(s.to_string())),
            None => (self.resource.clone(), None),
        };
        SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_string()),
                    verb: Some(self.verb.clone()),
                    group: Some(self.group.clone()),
                    resource: Some(resource),
                    subresource,
                    name: self.name.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        }
    }
}

/// Whether the user may do what `permission` says (a SelfSubjectAccessReview).
///
/// # Errors
/// API/transport errors of the review itself.
pub async fn is_allowed(cluster: &Cluster, permission: &Permission) -> Result<bool, Error> {
    let api: Api<SelfSubjectAccessReview> = Api::all(cluster.client.clone());
    let review = permission.review(&cluster.namespace);
    let action = format!("check permission {} {}", permission.verb, permission.resource);
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| map_error(e, &action, &cluster.server))?;
    let allowed = answer.status.as_ref().is_some_and(|s| s.allowed);
    tracing::debug!(verb = %permission.verb, resource = %permission.resource, allowed, "access review");
    Ok(allowed)
}

/// Checks every permission; the first one missing is [`Error::Forbidden`].
///
/// # Errors
/// Forbidden for a denied permission; API/transport errors of the review itself.
pub async fn check_all(cluster: &Cluster, permissions: &[Permission]) -> Result<(), Error> {
    for permission in permissions {
        if !is_allowed(cluster, permission).await? {
            return Err(Error::Forbidden {
                verb: permission.verb.clone(),
                resource: permission.resource.clone(),
                namespace: cluster.namespace.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subresources_are_split_for_the_review() {
        let p = Permission::new("patch", "apps", "deployments/scale", Some("orchestrator"));
        let review = p.review("llm-orchestrator");
        let attrs = review.spec.resource_attributes.unwrap();
        assert_eq!(attrs.resource.as_deref(), Some("deployments"));
        assert_eq!(attrs.subresource.as_deref(), Some("scale"));
        assert_eq!(attrs.group.as_deref(), Some("apps"));
        assert_eq!(attrs.namespace.as_deref(), Some("llm-orchestrator"));
        assert_eq!(attrs.name.as_deref(), Some("orchestrator"));
    }

    #[test]
    fn plain_resources_have_no_subresource() {
        let p = Permission::new("patch", "", "configmaps", None);
        let attrs = p.review("ns").spec.resource_attributes.unwrap();
        assert_eq!(attrs.resource.as_deref(), Some("configmaps"));
        assert_eq!(attrs.subresource, None);
    }
}
