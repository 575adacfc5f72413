//! Cluster profiles: which Kubernetes version (1.27 ..= 1.36) and which provider flavour the sim
//! imitates, and the behaviour switches one pure function ([`profile`]) maps them onto: the
//! controllers' ([`Behaviour`]) and the API server's ([`ApiBehaviour`]).
//!
//! `Behaviour::default()` is the idealised sim of old (HPAs with a generation that react at once,
//! pods that vanish when deleted, metrics in millicores the moment a pod is Ready, ...); each
//! switch turns one upstream behaviour on, and [`profile`] turns on what a real cluster of that
//! version and flavour does.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::api_behaviour::{ApiBehaviour, ResourceMutator};

/// A Kubernetes minor version the sim can imitate: 1.27 ..= 1.36.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubernetesVersion {
    minor: u8,
}

impl KubernetesVersion {
    /// The oldest minor version the sim imitates.
    pub const OLDEST: u8 = 27;
    /// The newest minor version the sim imitates.
    pub const NEWEST: u8 = 36;

    /// What a current real cluster runs; the version a flavor without a version imitates.
    pub const CURRENT: KubernetesVersion = KubernetesVersion { minor: 33 };

    /// `1.<minor>`, when it is in the supported range.
    pub fn new(minor: u8) -> Option<Self> {
        (Self::OLDEST..=Self::NEWEST)
            .contains(&minor)
            .then_some(KubernetesVersion { minor })
    }

    pub fn minor(self) -> u8 {
        self.minor
    }

    /// What `/version` says as `gitVersion`, e.g. `v1.33.4`.
    pub fn git_version(self) -> String {
        format!("v1.{}.4", self.minor)
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

impl FromStr for KubernetesVersion {
    type Err = String;

    /// `1.33` (or `v1.33`); anything else, or a version outside 1.27 ..= 1.36, is refused.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refused = || {
            format!(
                "unsupported Kubernetes version {text:?}: expected 1.{} .. 1.{} (e.g. 1.33)",
                Self::OLDEST,
                Self::NEWEST
            )
        };
        let minor = text
            .trim()
            .strip_prefix('v')
            .unwrap_or(text.trim())
            .strip_prefix("1.")
            .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|m| m.parse::<u8>().ok())
            .ok_or_else(refused)?;
        KubernetesVersion::new(minor).ok_or_else(refused)
    }
}

/// Which kind of managed cluster the sim imitates, beyond upstream Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Upstream Kubernetes without a node autoscaler.
    Plain,
    /// EKS with the Cluster Autoscaler: an Unschedulable pod triggers a scale-up.
    EksLike,
    /// GKE Autopilot: nodes are provisioned for pending pods.
    GkeAutopilotLike,
    /// AKS (controller-side like plain).
    AksLike,
}

impl Flavor {
    pub const ALL: [Flavor; 4] = [
        Flavor::Plain,
        Flavor::EksLike,
        Flavor::GkeAutopilotLike,
        Flavor::AksLike,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Plain => "plain",
            Flavor::EksLike => "eks-like",
            Flavor::GkeAutopilotLike => "gke-autopilot-like",
            Flavor::AksLike => "aks-like",
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Flavor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Flavor::ALL
            .into_iter()
            .find(|f| f.as_str() == text.trim())
            .ok_or_else(|| {
                format!("unknown flavor {text:?}: expected plain, eks-like, gke-autopilot-like or aks-like")
            })
    }
}

/// When the StatefulSet controller promotes `status.currentRevision` to the update revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentRevisionRule {
    /// Idealised: once every pod is at the update revision, whatever the strategy.
    AllUpdated,
    /// Upstream before 1.36 (`completeRollingUpdate`): only for RollingUpdate, once every pod is
    /// updated and Ready; never for OnDelete.
    RollingUpdateOnly,
    /// 1.36: for either strategy, once every pod is updated and Ready.
    AnyStrategyWhenReady,
}

/// Whether metrics.k8s.io is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsApi {
    /// metrics-server installed and its APIService Available.
    Available,
    /// No metrics-server: no `metrics.k8s.io` group in discovery, 404 on its paths.
    Absent,
    /// The APIService exists but its backend is down: the group is still in discovery (as
    /// aggregated APIs are), every request on it answers 503 ServiceUnavailable.
    Unavailable,
}

/// A node autoscaler (Cluster Autoscaler, Autopilot's provisioner) adding nodes for pods the
/// scheduler cannot place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAutoscaler {
    /// The node group named in the `TriggeredScaleUp` event, and the prefix of new nodes.
    pub node_group: String,
    /// From `TriggeredScaleUp` to the new node being Ready.
    pub provision_delay: Duration,
    /// Most nodes the group may reach (the "max" of the event), counting the seeded ones.
    pub max_nodes: usize,
}

/// The controller behaviour switches. `Behaviour::default()` is the idealised sim; see
/// [`profile`] for what real clusters do.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// What `/version` answers; `None`: the sim's own `v1.32.0-orchscale-sim`.
    pub version: Option<KubernetesVersion>,
    /// HPAs carry `metadata.generation` and `status.observedGeneration`, and a spec change is
    /// reconciled at once (1.36). Off: neither field, and a change waits for the next resync.
    pub hpa_generation: bool,
    /// A pure scale (template unchanged) of a completed Deployment keeps
    /// `Progressing=True/NewReplicaSetAvailable`, so it never reaches ProgressDeadlineExceeded.
    pub scale_keeps_progress_complete: bool,
    /// Deleted pods stay Terminating (deletionTimestamp, deletionGracePeriodSeconds) for their
    /// `terminationGracePeriodSeconds` (capped by `grace_period_cap`) before they go.
    pub graceful_deletion: bool,
    /// Upper bound of a pod's grace period, so tests need not wait 30 s.
    pub grace_period_cap: Option<Duration>,
    /// ReplicaSets and Deployments report `status.terminatingReplicas` (1.35+, beta on by default).
    pub terminating_replicas: bool,
    /// A node autoscaler at work (eks-like, gke-autopilot-like).
    pub node_autoscaler: Option<NodeAutoscaler>,
    /// When a StatefulSet's currentRevision moves.
    pub current_revision: CurrentRevisionRule,
    /// Whether metrics.k8s.io is served.
    pub metrics_api: MetricsApi,
    /// CPU usage in nanocores (`253011429n`) as metrics-server writes it, not millicores.
    pub metrics_nanocores: bool,
    /// metrics-server's resolution: a pod has no sample until it has run this long, and samples
    /// carry this `window`. `None`: a sample as soon as the pod is Ready.
    pub metrics_resolution: Option<Duration>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            version: None,
            hpa_generation: true,
            scale_keeps_progress_complete: false,
            graceful_deletion: false,
            grace_period_cap: None,
            terminating_replicas: false,
            node_autoscaler: None,
            current_revision: CurrentRevisionRule::AllUpdated,
            metrics_api: MetricsApi::Available,
            metrics_nanocores: false,
            metrics_resolution: None,
        }
    }
}

/// metrics-server's default `--metric-resolution`.
pub const METRICS_RESOLUTION: Duration = Duration::from_secs(15);

/// Every switch a real cluster sets: the controllers' and the API server's.
/// `Profile::default()` is the idealised sim, every real-cluster behaviour off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// What the controllers do ([`crate::SimOptions::behaviour`]).
    pub behaviour: Behaviour,
    /// What the API server does ([`crate::SimOptions::api`]).
    pub api: ApiBehaviour,
}

/// What a real cluster of `version` and `flavor` does, switch by switch.
pub fn profile(version: KubernetesVersion, flavor: Flavor) -> Profile {
    Profile {
        behaviour: controllers(version, flavor),
        api: api_server(flavor),
    }
}

/// The API server of every real 1.27 .. 1.36 cluster: `events.k8s.io/v1` served (GA since 1.19),
/// LimitRanger on (not in `DefaultOffAdmissionPlugins`, pkg/kubeapiserver/options/plugins.go),
/// immutable ConfigMaps refused changes (`ValidateConfigMapUpdate`, GA since 1.21); GKE
/// Autopilot's resource mutator on gke-autopilot-like. RBAC users stay off: they are test
/// fixtures (users and roles), not a property of the cluster.
fn api_server(flavor: Flavor) -> ApiBehaviour {
    ApiBehaviour {
        resource_mutator: (flavor == Flavor::GkeAutopilotLike).then(ResourceMutator::default),
        limit_ranger: true,
        immutable_configmaps: true,
        events_v1: true,
        rbac: false,
    }
}

/// The controllers of a real cluster of `version` and `flavor`.
fn controllers(version: KubernetesVersion, flavor: Flavor) -> Behaviour {
    let minor = version.minor();
    let node_autoscaler = match flavor {
        Flavor::EksLike => Some(NodeAutoscaler {
            node_group: "eks-ng-general".to_owned(),
            provision_delay: Duration::from_secs(60),
            max_nodes: 10,
        }),
        Flavor::GkeAutopilotLike => Some(NodeAutoscaler {
            node_group: "gk3-autopilot-pool".to_owned(),
            provision_delay: Duration::from_secs(90),
            max_nodes: 20,
        }),
        Flavor::Plain | Flavor::AksLike => None,
    };
    Behaviour {
        version: Some(version),
        // kubernetes#138228 / #138294: generation and immediate reconcile from 1.36 only.
        hpa_generation: minor >= 36,
        scale_keeps_progress_complete: true,
        graceful_deletion: true,
        grace_period_cap: None,
        // DeploymentReplicaSetTerminatingReplicas: alpha in 1.33, beta (on) from 1.35.
        terminating_replicas: minor >= 35,
        node_autoscaler,
        current_revision: if minor >= 36 {
            CurrentRevisionRule::AnyStrategyWhenReady
        } else {
            CurrentRevisionRule::RollingUpdateOnly
        },
        metrics_api: MetricsApi::Available,
        metrics_nanocores: true,
        metrics_resolution: Some(METRICS_RESOLUTION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(minor: u8) -> KubernetesVersion {
        KubernetesVersion::new(minor).expect("supported")
    }

    #[test]
    fn versions_parse_in_range_only() {
        assert_eq!("1.33".parse::<KubernetesVersion>(), Ok(v(33)));
        assert_eq!("v1.27".parse::<KubernetesVersion>(), Ok(v(27)));
        assert_eq!(
            "1.36".parse::<KubernetesVersion>().map(|v| v.to_string()),
            Ok("1.36".into())
        );
        for refused in ["1.26", "1.37", "2.0", "1.", "1.33.1", "133", "", "1.x", "1.-3"] {
            assert!(refused.parse::<KubernetesVersion>().is_err(), "{refused:?}");
        }
        assert_eq!(v(33).git_version(), "v1.33.4");
    }

    #[test]
    fn flavors_parse_by_name() {
        for flavor in Flavor::ALL {
            assert_eq!(flavor.as_str().parse::<Flavor>(), Ok(flavor));
        }
        assert!("eks".parse::<Flavor>().is_err());
    }

    #[test]
    fn default_is_the_idealised_sim() {
        let b = Behaviour::default();
        assert!(b.hpa_generation && !b.graceful_deletion && !b.scale_keeps_progress_complete);
        assert_eq!(b.current_revision, CurrentRevisionRule::AllUpdated);
        assert_eq!(b.metrics_resolution, None);
        assert!(b.version.is_none() && b.node_autoscaler.is_none() && !b.metrics_nanocores);
    }

    /// The table: (minor, flavor) -> the switches that depend on them.
    #[test]
    fn profiles_follow_the_version_and_flavor_table() {
        // (minor, flavor, hpa_generation, terminating_replicas, current_revision, autoscaler)
        use CurrentRevisionRule::{AnyStrategyWhenReady as Any, RollingUpdateOnly as Rolling};
        let table = [
            (27, Flavor::Plain, false, false, Rolling, None),
            (33, Flavor::Plain, false, false, Rolling, None),
            (34, Flavor::AksLike, false, false, Rolling, None),
            (35, Flavor::Plain, false, true, Rolling, None),
            (36, Flavor::Plain, true, true, Any, None),
            (33, Flavor::EksLike, false, false, Rolling, Some("eks-ng-general")),
            (
                33,
                Flavor::GkeAutopilotLike,
                false,
                false,
                Rolling,
                Some("gk3-autopilot-pool"),
            ),
        ];
        for (minor, flavor, generation, terminating, revision, autoscaler) in table {
            let Profile { behaviour: b, api } = profile(v(minor), flavor);
            let at = format!("1.{minor} {flavor}");
            assert_eq!(b.version, Some(v(minor)), "{at}");
            assert_eq!(b.hpa_generation, generation, "{at}");
            assert_eq!(b.terminating_replicas, terminating, "{at}");
            assert_eq!(b.current_revision, revision, "{at}");
            assert_eq!(
                b.node_autoscaler.as_ref().map(|a| a.node_group.as_str()),
                autoscaler,
                "{at}"
            );
            // The same on every real cluster.
            assert!(
                b.scale_keeps_progress_complete && b.graceful_deletion && b.metrics_nanocores,
                "{at}"
            );
            assert_eq!(b.metrics_api, MetricsApi::Available, "{at}");
            assert_eq!(b.metrics_resolution, Some(METRICS_RESOLUTION), "{at}");
            assert_eq!(b.grace_period_cap, None, "{at}");
            // The API server: what every real cluster serves and admits, the Autopilot mutator
            // on its flavor only, RBAC users never.
            assert_eq!(
                api.resource_mutator.is_some(),
                flavor == Flavor::GkeAutopilotLike,
                "{at}"
            );
            assert!(
                api.events_v1 && api.limit_ranger && api.immutable_configmaps,
                "{at}"
            );
            assert!(!api.rbac, "{at}");
        }
    }

    #[test]
    fn the_autopilot_mutator_is_autopilots() {
        let api = profile(v(33), Flavor::GkeAutopilotLike).api;
        assert_eq!(api.resource_mutator, Some(ResourceMutator::default()));
        assert_eq!(
            ResourceMutator::default(),
            ResourceMutator {
                cpu_step_millis: 250,
                limits_equal_requests: true
            }
        );
    }

    #[test]
    fn the_default_profile_is_the_idealised_sim() {
        let p = Profile::default();
        assert_eq!(p.behaviour, Behaviour::default());
        assert_eq!(p.api, ApiBehaviour::default());
        assert!(p.api.resource_mutator.is_none() && !p.api.events_v1 && !p.api.rbac);
    }
}
