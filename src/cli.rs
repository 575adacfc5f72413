//! The command line: global flags, target names and one Args struct per command.
//!
//! Global and target flags are `global = true` because kubectl refuses its own flags before
//! a plugin's name, so users put them anywhere after `orchscale`.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const GLOBAL: &str = "Global options";
const TARGETS: &str = "Target objects";
const CONNECTION: &str = "Connection options (as kubectl)";

#[derive(Debug, Parser)]
#[command(
    name = "kubectl-orchscale",
    bin_name = "kubectl orchscale",
    version,
    about = "Scale the LLM Orchestrator safely: preview, confirm, apply, follow the rollout, verify.",
    after_help = "Examples:\n  kubectl orchscale status\n  kubectl orchscale scale --replicas 5\n  \
                  kubectl orchscale scale --replicas 5 --dry-run -o json"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(flatten)]
    pub targets: TargetOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Yaml,
}

impl OutputFormat {
    /// JSON or YAML: stdout holds one document (the same one in either syntax) instead of text.
    pub fn is_document(self) -> bool {
        self != OutputFormat::Text
    }
}

#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Kubeconfig to read [default: $KUBECONFIG (all files of the list), else ~/.kube/config]
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// Context to use [default: the kubeconfig's current-context]; a list (a,b,c) runs diff,
    /// apply, status or validate on each, the first as the canary
    #[arg(long, global = true, value_name = "NAME", help_heading = GLOBAL)]
    pub context: Option<String>,

    /// Run diff, apply, status or validate on every context listed in FILE (one per line,
    /// `#` comments), the first as the canary
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "context", help_heading = GLOBAL)]
    pub contexts_from: Option<std::path::PathBuf>,

    /// With several contexts: run read-only commands (diff, status, validate) on N at a time
    /// (apply always runs one cluster after the other)
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), help_heading = GLOBAL)]
    pub parallel: Option<u16>,

    /// Namespace of the orchestrator
    #[arg(
        short = 'n',
        long,
        global = true,
        env = "ORCHSCALE_NAMESPACE", hide_env_values = true,
        value_parser = crate::cluster::names::dns1123_label,
        default_value = "llm-orchestrator",
        value_name = "NS",
        help_heading = GLOBAL
    )]
    pub namespace: String,

    /// Output format; with json or yaml, stdout holds exactly one document (docs/schema/)
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Text, value_name = "FORMAT", help_heading = GLOBAL)]
    pub output: OutputFormat,

    /// Answer yes to every confirmation prompt
    #[arg(short = 'y', long, global = true, help_heading = GLOBAL)]
    pub yes: bool,

    /// Server-side dry run (dryRun=All): validate and show the change, persist nothing
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub dry_run: bool,

    /// Longest wait for a rollout or condition (90s, 5m, 1h)
    #[arg(long, global = true, default_value = "10m", value_parser = parse_duration, value_name = "DURATION", help_heading = GLOBAL)]
    pub timeout: Duration,

    /// More output on stderr (-v, -vv); -v=N as kubectl's levels: 6 request lines, 7+ request
    /// headers (credentials redacted)
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count, conflicts_with = "quiet", help_heading = GLOBAL)]
    pub verbose_count: u8,

    /// kubectl's log level (-v=N, -v N, --v=N are read as this)
    #[arg(
        long = "v",
        global = true,
        value_name = "N",
        hide = true,
        conflicts_with = "quiet"
    )]
    pub log_level: Option<u8>,

    /// Whether -v in any form was given (filled in by [`parse_from`]).
    #[arg(skip)]
    pub verbose: bool,

    /// Less output on stderr: no progress, no follow-up lines (the target and the change before
    /// a write are still shown)
    #[arg(short = 'q', long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,

    /// No colour (also off with NO_COLOR set, or when the output is no terminal)
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub no_color: bool,

    /// Username to impersonate for the operation (Impersonate-User)
    #[arg(long = "as", global = true, value_name = "USER", help_heading = CONNECTION)]
    pub impersonate: Option<String>,

    /// Group to impersonate (repeatable)
    #[arg(long = "as-group", global = true, value_name = "GROUP", help_heading = CONNECTION)]
    pub impersonate_group: Vec<String>,

    /// UID to impersonate
    #[arg(long = "as-uid", global = true, value_name = "UID", help_heading = CONNECTION)]
    pub impersonate_uid: Option<String>,

    /// Longest wait for one API request's answer, watches excepted (1s, 2m; 0: no limit)
    #[arg(long, global = true, value_parser = parse_request_timeout, value_name = "DURATION", help_heading = CONNECTION)]
    pub request_timeout: Option<Duration>,

    /// Address of the Kubernetes API server, instead of the kubeconfig cluster's
    #[arg(short = 's', long, global = true, value_name = "URL", help_heading = CONNECTION)]
    pub server: Option<String>,

    /// Bearer token for authentication to the API server
    #[arg(long, global = true, value_name = "TOKEN", hide_env_values = true, help_heading = CONNECTION)]
    pub token: Option<String>,

    /// The kubeconfig user to use
    #[arg(long, global = true, value_name = "NAME", help_heading = CONNECTION)]
    pub user: Option<String>,

    /// The kubeconfig cluster to use
    #[arg(long, global = true, value_name = "NAME", help_heading = CONNECTION)]
    pub cluster: Option<String>,

    /// Path to a CA certificate file for the API server
    #[arg(long, global = true, value_name = "PATH", help_heading = CONNECTION)]
    pub certificate_authority: Option<std::path::PathBuf>,

    /// Do not verify the API server's certificate (insecure)
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub insecure_skip_tls_verify: bool,

    /// Server name to verify the API server's certificate against (and send as SNI)
    #[arg(long, global = true, value_name = "NAME", help_heading = CONNECTION)]
    pub tls_server_name: Option<String>,
}

impl GlobalOpts {
    /// kubectl's `-v` level: `-v=N`, else the count of `-v` (`-vv` is 2).
    pub fn verbosity(&self) -> u8 {
        self.log_level.unwrap_or(0).max(self.verbose_count)
    }
}

/// Parses the command line, first rewriting kubectl's `-v=N` and `-v N` (N digits) to `--v=N`,
/// which clap's short flags cannot take, and fills in [`GlobalOpts::verbose`].
///
/// # Errors
/// clap's usage errors.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    let raw: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut rewritten = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let arg = raw[i].to_string_lossy().into_owned();
        let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if let Some(level) = arg.strip_prefix("-v=").filter(|l| digits(l)) {
            rewritten.push(format!("--v={level}").into());
        } else if arg == "-v" && raw.get(i + 1).is_some_and(|n| digits(&n.to_string_lossy())) {
            rewritten.push(format!("--v={}", raw[i + 1].to_string_lossy()).into());
            i += 1;
        } else {
            rewritten.push(raw[i].clone());
        }
        i += 1;
    }
    // clap's own help and errors follow --no-color too (it reads NO_COLOR and the terminal
    // itself).
    let mut command = <Cli as clap::CommandFactory>::command();
    if rewritten.iter().any(|a| a == "--no-color") {
        command = command.color(clap::ColorChoice::Never);
    }
    let matches = command.try_get_matches_from(rewritten)?;
    let mut cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches)?;
    cli.global.verbose = cli.global.verbosity() > 0;
    Ok(cli)
}

/// `--request-timeout` as kubectl reads it: a duration (`30s`, `1m`) or whole seconds; `0` is
/// no limit.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_request_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("invalid request timeout \"{text}\""));
    }
    if text == "0s" {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}

#[derive(Debug, Clone, Args)]
pub struct TargetOpts {
    /// Deployment of the orchestrator
    #[arg(long, global = true, env = "ORCHSCALE_DEPLOYMENT", hide_env_values = true, value_parser = crate::cluster::names::dns1123_subdomain, default_value = "orchestrator", value_name = "NAME", help_heading = TARGETS)]
    pub deployment: String,

    /// Container of the orchestrator in the deployment
    #[arg(long, global = true, env = "ORCHSCALE_CONTAINER", hide_env_values = true, value_parser = crate::cluster::names::dns1123_label, default_value = "orchestrator", value_name = "NAME", help_heading = TARGETS)]
    pub container: String,

    /// HorizontalPodAutoscaler of the deployment
    #[arg(long, global = true, env = "ORCHSCALE_HPA", hide_env_values = true, value_parser = crate::cluster::names::dns1123_subdomain, default_value = "orchestrator", value_name = "NAME", help_heading = TARGETS)]
    pub hpa: String,

    /// StatefulSet of the database
    #[arg(long, global = true, env = "ORCHSCALE_STATEFULSET", hide_env_values = true, value_parser = crate::cluster::names::dns1123_subdomain, default_value = "postgres", value_name = "NAME", help_heading = TARGETS)]
    pub statefulset: String,

    /// Container of the database in the statefulset
    #[arg(long, global = true, env = "ORCHSCALE_DB_CONTAINER", hide_env_values = true, value_parser = crate::cluster::names::dns1123_label, default_value = "postgres", value_name = "NAME", help_heading = TARGETS)]
    pub db_container: String,

    /// ConfigMap holding the orchestrator's configuration
    #[arg(long, global = true, env = "ORCHSCALE_CONFIGMAP", hide_env_values = true, value_parser = crate::cluster::names::dns1123_subdomain, default_value = "orchestrator-config", value_name = "NAME", help_heading = TARGETS)]
    pub configmap: String,

    /// Key of the configuration file in the configmap
    #[arg(long, global = true, env = "ORCHSCALE_CONFIG_KEY", hide_env_values = true, value_parser = crate::cluster::names::config_map_key, default_value = "config.yaml", value_name = "KEY", help_heading = TARGETS)]
    pub config_key: String,

    /// Service of the orchestrator (health endpoint)
    #[arg(long, global = true, env = "ORCHSCALE_SERVICE", hide_env_values = true, value_parser = crate::cluster::names::dns1123_subdomain, default_value = "orchestrator", value_name = "NAME", help_heading = TARGETS)]
    pub service: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set the deployment's replica count, follow the rollout and verify the pods
    #[command(after_help = "Examples:\n  kubectl orchscale scale --replicas 5\n  \
                            kubectl orchscale scale --replicas 12 --force\n  \
                            kubectl orchscale scale --replicas 4 --dry-run -o json")]
    Scale(ScaleArgs),

    /// Change the HorizontalPodAutoscaler (only the given fields) and watch it act
    #[command(
        after_help = "Only the given fields change: --cpu/--memory set that metric's target and keep \
                            every other metric and the behavior. No prompt: an HPA change restarts no pod.\n\
                            --watch ends at --timeout (exit 0) or Ctrl-C (exit 0 when only watching, \
                            130 after a change).\n\n\
                            Examples:\n  kubectl orchscale hpa --min 5 --max 20\n  \
                            kubectl orchscale hpa --cpu 60 --watch --timeout 5m\n  \
                            kubectl orchscale hpa --memory 75 --dry-run -o json\n  \
                            kubectl orchscale hpa --watch\n  \
                            kubectl orchscale hpa --create --min 2 --max 10 --cpu 70"
    )]
    Hpa(HpaArgs),

    /// Change the orchestrator container's requests/limits and follow the rolling restart
    #[command(
        after_help = "Only the named keys of the named container change (--container, default orchestrator): \
                      other keys (ephemeral-storage, GPUs) and other containers keep their values. Values are \
                      merged with the current ones and requests must stay <= limits. The preview warns when the \
                      new pods would not fit the nodes or the ResourceQuota, and when the HPA would scale because \
                      utilization (usage / request) moves. Prompts before the rolling restart (--yes skips it), \
                      then follows it; pods that cannot start (Unschedulable, OOMKilled, quota FailedCreate) \
                      fail it fast (exit 1).\n\n\
                      Examples:\n  kubectl orchscale resources --requests cpu=750m,memory=1536Mi\n  \
                      kubectl orchscale resources --requests cpu=1,memory=2Gi --limits cpu=2,memory=4Gi --yes\n  \
                      kubectl orchscale resources --limits memory=3Gi --rollback-on-failure\n  \
                      kubectl orchscale resources --requests cpu=250m --dry-run -o json"
    )]
    Resources(ResourcesArgs),

    /// Database operations: resources of the postgres statefulset, connection pool size
    #[command(
        subcommand,
        after_help = "Examples:\n  kubectl orchscale db resources --requests cpu=1,memory=2Gi\n  \
                      kubectl orchscale db connections 50"
    )]
    Db(DbCommand),

    /// Check that the orchestrator is healthy (the runbook's Validation section)
    #[command(
        after_help = "Checks, read-only: deployment available (ready = desired, spec observed), every pod \
                      Ready (the ones that are not are named, with why), HPA present with ScalingActive, \
                      metrics.k8s.io answering for the pods, postgres statefulset ready (no update \
                      pending), and the health endpoint: --health-url (a GET, 5 s timeout, 2xx passes) or \
                      else the service's /health through the API server's service proxy.\n\
                      Exit 0 only when every check passes, else 1. With -o json: `checks` [{name, ok, detail}].\n\n\
                      Examples:\n  kubectl orchscale validate\n  \
                      kubectl orchscale validate --health-url https://orchestrator.example.com/health\n  \
                      kubectl orchscale validate -o json"
    )]
    Validate(ValidateArgs),

    /// One-screen overview: deployment, pods, HPA, resources, postgres, pool size (read-only)
    #[command(
        after_help = "Pods are listed by revision, newest first (a header line per ReplicaSet or \
StatefulSet revision: desired and ready counts, image, what changed), each with READY, STATUS, \
RESTARTS and AGE as `kubectl get pods` prints them; where kubectl's word hides the reason, it \
follows in parentheses: `Pending (Unschedulable)`, `CrashLoopBackOff (OOMKilled)`. An EXTENDED \
column shows requested extended resources such as nvidia.com/gpu.\n\n\
--watch re-attaches to a rollout in progress (the deployment's, then the statefulset's, judged \
as `kubectl rollout status` does), follows it like the command that started it and ends with \
its verdict and exit code (0 rolled out, 1 failed or timed out, 130 Ctrl-C); with no rollout \
in progress it says so and exits 0.\n\n\
Examples:\n  kubectl orchscale status\n  kubectl orchscale status --watch\n  kubectl orchscale status -o json"
    )]
    Status(StatusArgs),

    /// Propose resources, the HPA range and target and the pool size from usage history
    #[command(
        after_help = "Reads Prometheus (--prometheus-url, or a prometheus-operated / prometheus-server \
service through the API server's service proxy) over --window, else samples metrics-server for \
--sample-for (weak evidence, said so). CPU request = the --cpu-percentile of per-pod usage; memory \
request = limit = peak working set + --memory-buffer, never below the last OOMKill; the CPU limit \
keeps its ratio to the request; the HPA target is re-expressed so the scaling point stays; min/max \
from the off-peak and peak load; the pool is the largest that fits the database at maxReplicas. \
--apply writes it all (database, pool, deployment, HPA) after one preview and one prompt; thin \
data needs --force. With -o json: recommendations [{object, field, current, recommended, reason, \
evidence}], dataWarnings, cost.\n\n\
Examples:\n  kubectl orchscale recommend\n  \
kubectl orchscale recommend --window 14d --cpu-percentile 99 -o json\n  \
kubectl orchscale recommend --prometheus-url http://127.0.0.1:9090 --apply"
    )]
    Recommend(crate::commands::recommend::RecommendArgs),

    /// Revert the most recent change this tool made
    #[command(
        after_help = "Looks at the deployment, HPA, statefulset and configmap for the newest \
orchscale.io/last-change record, shows what it restores (before -> after) and restores it. \
It asks first when the restore restarts pods, deletes an HPA that `hpa --create` made, or \
overwrites values someone changed since (--yes answers for scripts). The undo is recorded too, \
so a second `undo` redoes the change. When that record is a step of a profile application \
(`apply -f`), the whole application is undone as one, in reverse step order.\n\n\
Examples:\n  kubectl orchscale undo --dry-run\n  kubectl orchscale undo --yes -o json"
    )]
    Undo,

    /// Print the current state as a scaling profile (YAML on stdout)
    #[command(
        after_help = "Writes the replicas or HPA, every container's requests/limits, the database's \
                            resources and max_connections and the connection pool as an orchscale.io/v1 \
                            ScalingProfile (docs/profile.md). Applying it to the same cluster changes nothing.\n\n\
                            Examples:\n  kubectl orchscale export > normal.yaml\n  \
                            kubectl orchscale export --name peak -o json"
    )]
    Export(ExportArgs),

    /// Preview every change a scaling profile makes, with the single commands' warnings
    #[command(
        after_help = "One combined preview of every step of `apply -f` (database resources, pool and \
                            restart, deployment resources, HPA or replicas) with the warnings the single \
                            commands give. Writes nothing. Exit codes as `kubectl diff`: 0 no differences, \
                            1 differences, 2 or more an error (an invalid profile is 2).\n\
                            --emit kustomize|patch|helm-values --emit-dir DIR also writes the changes as \
                            files for GitOps (when Argo CD or Flux own the objects): a kustomize overlay \
                            (--kustomize-base names its base), patch files for `kubectl patch --patch-file`, \
                            or a Helm values fragment placed by --values-map.\n\n\
                            Examples:\n  kubectl orchscale diff -f peak.yaml\n  \
                            kubectl orchscale diff -f peak.yaml -o json\n  \
                            kubectl orchscale diff -f peak.yaml --emit kustomize --emit-dir overlays/peak --kustomize-base ../../base"
    )]
    Diff(DiffArgs),

    /// Apply a scaling profile: one preview, one prompt, then each step in the safe order
    #[command(
        after_help = "Steps, each written, followed and verified before the next: 1 database \
                            resources, 2 connection pool and the deployment's restart, 3 deployment resources, \
                            4 HPA or replicas. A step already in place is `unchanged`, so running it again after \
                            a failure resumes at the first step not in place. --rollback-on-failure puts the \
                            applied steps back, in reverse order; `undo` afterwards reverts the whole application \
                            as one. With --context a,b,c (or --contexts-from FILE) it runs on each cluster in \
                            turn, the first as the canary, and stops at a cluster that fails.\n\n\
                            Examples:\n  kubectl orchscale apply -f peak.yaml\n  \
                            kubectl orchscale apply -f peak.yaml --yes --rollback-on-failure\n  \
                            kubectl orchscale apply -f peak.yaml --dry-run -o json"
    )]
    Apply(ApplyArgs),

    /// Print shell completions
    #[command(
        after_help = "Example:\n  kubectl orchscale completion bash > /etc/bash_completion.d/kubectl-orchscale"
    )]
    Completion(CompletionArgs),

    /// Print version and build information
    #[command(after_help = "Example:\n  kubectl orchscale version")]
    Version,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Desired number of replicas
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub replicas: i64,

    /// Scale even when an HPA's min..max range excludes N (the HPA will move it back)
    #[arg(long)]
    pub force: bool,

    /// When the rollout fails, restore the previous replica count and wait for it
    #[arg(long)]
    pub rollback_on_failure: bool,
}

#[derive(Debug, Args)]
pub struct HpaArgs {
    /// Minimum replicas
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub min: Option<i64>,
    /// Maximum replicas
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max: Option<i64>,
    /// Target average CPU utilization (percent of the request)
    #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
    pub cpu: Option<i64>,
    /// Target average memory utilization (percent of the request)
    #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
    pub memory: Option<i64>,
    /// Create the HPA (autoscaling/v2, targeting the deployment) when it is missing
    #[arg(long)]
    pub create: bool,
    /// Follow the autoscaler (replicas, utilization, conditions, scaling events) until
    /// --timeout or Ctrl-C; alone, it only watches
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct ResourcesArgs {
    /// Requests to set, e.g. cpu=1,memory=2Gi
    #[arg(long, value_name = "cpu=Q,memory=Q")]
    pub requests: Option<String>,
    /// Limits to set, e.g. cpu=2,memory=4Gi
    #[arg(long, value_name = "cpu=Q,memory=Q")]
    pub limits: Option<String>,
    /// When the rollout fails, restore the previous values and wait for that rollout
    #[arg(long)]
    pub rollback_on_failure: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Change the postgres container's requests/limits and follow the ordered rollout
    #[command(
        after_help = "Like `resources`, for the statefulset's container (--statefulset, --db-container). With \
                      1 replica the database restarts: downtime. Follows the ordered rollout (highest ordinal \
                      first) until currentRevision = updateRevision and all replicas are Ready; with a partition, \
                      until the ordinals at or above it are updated. With updateStrategy OnDelete the patch alone \
                      restarts nothing: it says which pods to delete and exits 0 without waiting.\n\n\
                      Examples:\n  kubectl orchscale db resources --requests memory=1536Mi\n  \
                      kubectl orchscale db resources --requests cpu=1,memory=2Gi --limits cpu=2,memory=4Gi --yes"
    )]
    Resources(ResourcesArgs),
    /// Set database.max_connections in the orchestrator's config (and offer a restart)
    #[command(
        after_help = "Only the max_connections line of config.yaml changes; comments and every other key \
                      stay byte for byte. Warns when N x the HPA's maxReplicas exceeds the database's \
                      max_connections (read from the postgres statefulset's -c max_connections=N).\n\
                      The pods read the config at start: by default (or with --restart) the deployment is \
                      restarted afterwards (as `kubectl rollout restart`) and the rollout followed. Since \
                      pods restart, the whole operation is confirmed BEFORE anything is written: \
                      `Continue? [y/N]`, --yes skips it, and without a terminal and without --yes it \
                      exits 3 with nothing written. --restart chooses the restart; it is not a yes. \
                      --no-restart writes only the config, without a prompt: the pods keep the old value \
                      until they restart. --dry-run sends both writes as server-side dry runs and never \
                      prompts.\n\n\
                      Examples:\n  kubectl orchscale db connections 50\n  \
                      kubectl orchscale db connections 50 --restart --yes\n  \
                      kubectl orchscale db connections 50 --no-restart\n  \
                      kubectl orchscale db connections 50 --dry-run -o json"
    )]
    Connections(ConnectionsArgs),
}

#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    /// Connections per orchestrator pod
    #[arg(value_name = "N", allow_negative_numbers = true)]
    pub max_connections: i64,
    /// Restart the deployment afterwards so the pods load the new value (the default; still
    /// confirmed: --yes skips the prompt); with an unchanged value, restart anyway
    #[arg(long, conflicts_with = "no_restart")]
    pub restart: bool,
    /// Only change the config: no restart, no prompt; the pods load it at their next restart
    #[arg(long)]
    pub no_restart: bool,
    /// Write N even when N × the most pods (the HPA's maxReplicas) exceeds what the database
    /// accepts (refused otherwise, exit 2)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Follow the rollout in progress (deployment, then statefulset) to its verdict; without
    /// one, print the status and exit 0
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Health endpoint to check [default: the service's /health through the API server proxy]
    #[arg(long, value_name = "URL")]
    pub health_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// metadata.name of the profile written
    #[arg(long, default_value = "current", value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The scaling profile (YAML; docs/profile.md)
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// Preview replicas outside the HPA's range and a pool above what the database accepts
    /// as `apply --force` would write them
    #[arg(long)]
    pub force: bool,
    /// Also write the changes as files for GitOps: a kustomize overlay (kustomization.yaml +
    /// strategic merge patches) or patch files for `kubectl patch --patch-file`
    #[arg(long, value_enum, value_name = "FORMAT", requires = "emit_dir")]
    pub emit: Option<EmitFormat>,
    /// Directory the --emit files are written to (created when missing)
    #[arg(long, value_name = "DIR", requires = "emit")]
    pub emit_dir: Option<std::path::PathBuf>,
    /// With --emit kustomize: the base the overlay patches, listed in its resources (e.g. ../base)
    #[arg(long, value_name = "PATH", requires = "emit")]
    pub kustomize_base: Option<String>,
    /// With --emit helm-values: a YAML map of profile field to values path, e.g.
    /// `hpa.maxReplicas: autoscaling.maxReplicas`, `resources.orchestrator: resources`
    #[arg(long, value_name = "FILE", requires = "emit")]
    pub values_map: Option<std::path::PathBuf>,
}

/// The GitOps output of `diff --emit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmitFormat {
    /// kustomization.yaml and one strategic merge patch per object
    Kustomize,
    /// One strategic merge patch file per object, with the `kubectl patch` commands
    Patch,
    /// A Helm values fragment (values.yaml), placed by --values-map
    HelmValues,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The scaling profile (YAML; docs/profile.md)
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// Write replicas outside the HPA's range, and a pool above what the database accepts at
    /// full scale (refused otherwise, exit 2)
    #[arg(long)]
    pub force: bool,
    /// When a step fails, put the steps already applied back, in reverse order
    #[arg(long)]
    pub rollback_on_failure: bool,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell to generate completions for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl Command {
    /// The command's name as the user typed it (for messages and JSON `command`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Scale(_) => "scale",
            Command::Hpa(_) => "hpa",
            Command::Resources(_) => "resources",
            Command::Db(DbCommand::Resources(_)) => "db resources",
            Command::Db(DbCommand::Connections(_)) => "db connections",
            Command::Validate(_) => "validate",
            Command::Status(_) => "status",
            Command::Recommend(_) => "recommend",
            Command::Undo => "undo",
            Command::Export(_) => "export",
            Command::Diff(_) => "diff",
            Command::Apply(_) => "apply",
            Command::Completion(_) => "completion",
            Command::Version => "version",
        }
    }
}

/// The document format raw arguments ask for (`-o json`, `-ojson`, `--output yaml`,
/// `--output=json`, ...), for reporting errors clap finds before parsing completes.
pub fn document_format<S: AsRef<str>>(args: &[S]) -> Option<OutputFormat> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    args.iter().enumerate().find_map(|(i, arg)| {
        let value = match *arg {
            "-o" | "--output" => args.get(i + 1).copied(),
            other => other
                .strip_prefix("--output=")
                .or_else(|| other.strip_prefix("-o="))
                .or_else(|| other.strip_prefix("-o")),
        };
        match value {
            Some("json") => Some(OutputFormat::Json),
            Some("yaml") => Some(OutputFormat::Yaml),
            _ => None,
        }
    })
}

/// Parses `90s`, `5m`, `1h`, `1h30m`, `500ms` into a duration.
///
/// # Errors
/// A message naming the accepted forms when the text is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration \"{text}\": use a number with a unit, e.g. 90s, 5m, 1h");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
    }
    if total.is_zero() {
        return Err(format!(
            "invalid duration \"{text}\": the wait must be longer than 0"
        ));
    }
    Ok(total)
}

/// Shows a duration the way the user writes one (`90s`, `5m`, `1h30m`).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn durations_without_unit_or_garbage_are_refused() {
        for bad in ["", "10", "m", "5x", "-5s", "5 m", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn durations_format_back() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_are_accepted_after_the_command() {
        let cli = Cli::try_parse_from([
            "kubectl-orchscale",
            "scale",
            "--replicas",
            "5",
            "-n",
            "staging",
            "--context",
            "sim",
            "-o",
            "json",
            "--timeout",
            "90s",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace, "staging");
        assert_eq!(cli.global.context.as_deref(), Some("sim"));
        assert_eq!(cli.global.output, OutputFormat::Json);
        assert_eq!(cli.global.timeout, Duration::from_secs(90));
        assert!(matches!(
            cli.command,
            Command::Scale(ScaleArgs { replicas: 5, .. })
        ));
    }

    #[test]
    fn negative_replicas_reach_the_command_to_be_refused_there() {
        let cli = Cli::try_parse_from(["kubectl-orchscale", "scale", "--replicas", "-1"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Scale(ScaleArgs { replicas: -1, .. })
        ));
    }

    #[test]
    fn json_is_detected_in_raw_arguments() {
        let json = Some(OutputFormat::Json);
        assert_eq!(document_format(&["scale", "-o", "json"]), json);
        assert_eq!(document_format(&["--output=json", "scale"]), json);
        assert_eq!(document_format(&["-ojson"]), json);
        assert_eq!(document_format(&["-o", "yaml"]), Some(OutputFormat::Yaml));
        assert_eq!(document_format(&["-o=yaml"]), Some(OutputFormat::Yaml));
        assert_eq!(document_format(&["-o", "text"]), None);
        assert_eq!(document_format(&["--context", "json"]), None);
    }

    #[test]
    fn db_subcommands_have_their_names() {
        let cli = Cli::try_parse_from(["kubectl-orchscale", "db", "connections", "50"]).unwrap();
        assert_eq!(cli.command.name(), "db connections");
    }

    #[test]
    fn kubectl_verbosity_forms_are_accepted() {
        let level = |args: &[&str]| {
            let mut all = vec!["kubectl-orchscale"];
            all.extend_from_slice(args);
            parse_from(all).map(|c| (c.global.verbosity(), c.global.verbose))
        };
        assert_eq!(level(&["status"]).unwrap(), (0, false));
        assert_eq!(level(&["-v", "status"]).unwrap(), (1, true));
        assert_eq!(level(&["status", "-vv"]).unwrap(), (2, true));
        assert_eq!(level(&["status", "--verbose"]).unwrap(), (1, true));
        assert_eq!(level(&["-v=6", "status"]).unwrap(), (6, true));
        assert_eq!(level(&["status", "-v", "6"]).unwrap(), (6, true));
        assert_eq!(level(&["status", "--v=8"]).unwrap(), (8, true));
        assert_eq!(level(&["status", "--v", "7"]).unwrap(), (7, true));
        assert!(level(&["status", "-v=6", "-q"]).is_err());
    }

    #[test]
    fn connection_flags_parse_as_kubectl() {
        let cli = parse_from([
            "kubectl-orchscale",
            "status",
            "--as",
            "jane",
            "--as-group",
            "a",
            "--as-group",
            "b",
            "--as-uid",
            "42",
            "--request-timeout",
            "5",
            "--server",
            "https://x:6443",
            "--token",
            "t",
            "--user",
            "u",
            "--cluster",
            "c",
            "--certificate-authority",
            "/ca.pem",
            "--insecure-skip-tls-verify",
            "--tls-server-name",
            "api",
        ])
        .unwrap();
        let g = &cli.global;
        assert_eq!(g.impersonate.as_deref(), Some("jane"));
        assert_eq!(g.impersonate_group, ["a", "b"]);
        assert_eq!(g.request_timeout, Some(Duration::from_secs(5)));
        assert!(g.insecure_skip_tls_verify);
        assert_eq!(parse_request_timeout("0"), Ok(Duration::ZERO));
        assert_eq!(parse_request_timeout("2m"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn object_names_are_validated_before_anything_else() {
        for args in [
            ["status", "--deployment", "orchestrator?dryRun=All"],
            ["status", "-n", "Bad_NS"],
            ["status", "--container", "a.b"],
            ["status", "--configmap", "../secrets"],
        ] {
            let mut all = vec!["kubectl-orchscale"];
            all.extend_from_slice(&args);
            let err = parse_from(all).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
