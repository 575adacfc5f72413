//! Request paths parsed into what they address: a discovery document, a resource (collection,
//! object, subresource, service proxy), or the sim's own admin endpoint.

use super::registry::{self, ResourceInfo};

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Version,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    ResourceList {
        group: String,
        version: String,
    },
    /// `/openapi/v3`
    OpenApiRoot,
    /// `/openapi/v3/<api/v1 or apis/group/version>`
    OpenApiGroupVersion(String),
    Resource(Target),
    /// `/sim/...`: the sim's admin endpoint; the rest of the path.
    Admin(String),
    NotFound,
}

/// One resource request: a collection (no name), an object, or an object's subresource.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub info: &'static ResourceInfo,
    /// `None` for cluster-scoped resources and for lists across namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// What follows `proxy/` in a service proxy path (without the leading slash).
    pub proxy_path: String,
}

impl Target {
    /// The resource as RBAC and fault rules name it: `deployments` or `deployments/scale`.
    pub fn resource_path(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.info.plural),
            None => self.info.plural.to_owned(),
        }
    }

    pub fn namespace_str(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    pub fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// Parses a request path (without the query).
pub fn parse(path: &str) -> Route {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", rest @ ..] => Route::OpenApiGroupVersion(rest.join("/")),
        ["sim", rest @ ..] => Route::Admin(rest.join("/")),
        ["api", "v1", rest @ ..] => resource_route("", "v1", rest),
        ["apis", group] if registry::RESOURCES.iter().any(|r| r.group == *group) => {
            Route::Group((*group).to_owned())
        }
        ["apis", group, version, rest @ ..] if registry::serves(group, version) => {
            resource_route(group, version, rest)
        }
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    if rest.is_empty() {
        return Route::ResourceList {
            group: group.to_owned(),
            version: version.to_owned(),
        };
    }
    // `namespaces/<ns>/<resource>...` addresses a namespaced resource when <resource> is one of
    // this group's plurals; otherwise `namespaces/<name>[/<sub>]` is the namespace object itself.
    let (namespace, rest) = match rest {
        ["namespaces", ns, resource, tail @ ..]
            if registry::find(group, version, resource).is_some_and(|r| r.namespaced) =>
        {
            (Some((*ns).to_owned()), {
                let mut v = vec![*resource];
                v.extend_from_slice(tail);
                v
            })
        }
        _ => (None, rest.to_vec()),
    };
    let Some(info) = registry::find(group, version, rest[0]) else {
        return Route::NotFound;
    };
    if namespace.is_none() && info.namespaced && rest.len() > 1 {
        // A namespaced object must be addressed inside its namespace.
        return Route::NotFound;
    }
    let name = rest.get(1).map(|s| (*s).to_owned());
    let subresource = rest.get(2).map(|s| (*s).to_owned());
    if let Some(sub) = &subresource
        && !info.has_subresource(sub)
    {
        return Route::NotFound;
    }
    let proxy_path = if subresource.as_deref() == Some("proxy") {
        rest[3..].join("/")
    } else if rest.len() > 3 {
        return Route::NotFound;
    } else {
        String::new()
    };
    Route::Resource(Target {
        info,
        namespace,
        name,
        subresource,
        proxy_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match parse(path) {
            Route::Resource(t) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_namespaced_objects_and_subresources() {
        let t = target("/apis/apps/v1/namespaces/shop/deployments/web/scale");
        assert_eq!(t.info.kind, "Deployment");
        assert_eq!(t.namespace.as_deref(), Some("shop"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.resource_path(), "deployments/scale");
        let all = target("/apis/apps/v1/deployments");
        assert_eq!(all.namespace, None);
        assert_eq!(all.name, None);
    }

    #[test]
    fn namespaces_are_objects_unless_followed_by_a_resource() {
        let ns = target("/api/v1/namespaces/shop");
        assert_eq!(ns.info.plural, "namespaces");
        assert_eq!(ns.name.as_deref(), Some("shop"));
        let pods = target("/api/v1/namespaces/shop/pods");
        assert_eq!(pods.info.plural, "pods");
        assert_eq!(pods.namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn proxy_keeps_the_rest_of_the_path() {
        let t = target("/api/v1/namespaces/ns/services/orchestrator:80/proxy/health/deep");
        assert_eq!(t.subresource.as_deref(), Some("proxy"));
        assert_eq!(t.name.as_deref(), Some("orchestrator:80"));
        assert_eq!(t.proxy_path, "health/deep");
    }

    #[test]
    fn unknown_paths_are_not_found() {
        assert_eq!(parse("/apis/batch/v1/jobs"), Route::NotFound);
        assert_eq!(
            parse("/apis/apps/v1/namespaces/ns/deployments/web/bogus"),
            Route::NotFound
        );
        assert_eq!(parse("/apis/apps/v1/deployments/web"), Route::NotFound);
        assert_eq!(parse("/version"), Route::Version);
        assert_eq!(
            parse("/apis/apps/v1"),
            Route::ResourceList {
                group: "apps".into(),
                version: "v1".into()
            }
        );
    }
}
