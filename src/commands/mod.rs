//! One module per command; this one dispatches.
//!
//! A writing command follows `scale.rs`: read with `Cluster::get`, plan with a pure fn in
//! `plan/` (bad input is a `PlanError`, exit 2), `reporter.banner` + `reporter.preview`
//! (with `shared::managed_warning`), `access::check_all` for every write, `reporter.confirm`
//! when pods restart, then [`write::write`]: the one write step (resourceVersion precondition,
//! audit record in the same request, re-plan on 409, lost answers settled by reading back,
//! the outcome as stored); `follow::follow` for the rollout, then verify and
//! `reporter.set_document` for `-o json`.

pub mod connections;
pub(crate) mod driver;
pub mod hpa;
pub mod meta;
pub(crate) mod preflight;
pub(crate) mod profile;
pub(crate) use profile::fleet::is_fleet;
pub(crate) mod recommend;
pub mod resources;
mod restart;
pub mod scale;
pub mod shared;
pub mod status;
pub mod undo;
pub mod validate;
pub(crate) mod write;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};

use crate::cli::{Cli, Command, DbCommand};
use crate::cluster::{self, Cluster};
use crate::error::Error;
use crate::report::{Reporter, Target};

/// Runs the command. `completion` and `version` are handled by `meta` without a cluster.
///
/// # Errors
/// Whatever the command fails with; see [`Error::exit_code`].
pub async fn dispatch(cli: &Cli, reporter: &mut Reporter) -> Result<(), Error> {
    // Several contexts: each cluster runs this same command alone (`profile::fleet`).
    if let Some(contexts) = profile::fleet::contexts(cli)? {
        // The clusters' runs are child processes waited on: off the async workers.
        return tokio::task::block_in_place(|| profile::fleet::run(cli, &contexts, reporter));
    }
    match &cli.command {
        Command::Scale(args) => {
            // Bad input is refused before any request, even before connecting.
            crate::plan::scale::plan(&cli.targets.deployment, 0, args.replicas, None, false)?;
            let cluster = connect(cli, reporter).await?;
            scale::run(&cluster, cli, args, reporter).await
        }
        Command::Hpa(args) => {
            // Bad input is refused before any request, even before connecting.
            let input = hpa::input(args)?;
            let cluster = connect(cli, reporter).await?;
            hpa::run(&cluster, cli, &input, reporter).await
        }
        Command::Resources(args) => {
            // Bad input is refused before any request, even before connecting.
            let input = resources::input("resources", args)?;
            let cluster = connect(cli, reporter).await?;
            resources::run::<Deployment>(&cluster, cli, &input, reporter).await
        }
        Command::Db(DbCommand::Resources(args)) => {
            let input = resources::input("db resources", args)?;
            let cluster = connect(cli, reporter).await?;
            resources::run::<StatefulSet>(&cluster, cli, &input, reporter).await
        }
        Command::Db(DbCommand::Connections(args)) => {
            // Bad input is refused before any request, even before connecting.
            let n = crate::plan::connections::pool_size(args.max_connections)?;
            let cluster = connect(cli, reporter).await?;
            connections::run(&cluster, cli, args, n, reporter).await
        }
        Command::Validate(args) => {
            // Bad input is refused before any request, even before connecting.
            if let Some(url) = &args.health_url {
                validate::check_url(url)?;
            }
            let cluster = connect(cli, reporter).await?;
            validate::run(&cluster, cli, args, reporter).await
        }
        Command::Status(args) => {
            let cluster = connect(cli, reporter).await?;
            status::run(&cluster, cli, args, reporter).await
        }
        Command::Recommend(args) => {
            // Bad input is refused before any request, even before connecting.
            recommend::check(args)?;
            let cluster = connect(cli, reporter).await?;
            recommend::run(&cluster, cli, args, reporter).await
        }
        Command::Undo => {
            let cluster = connect(cli, reporter).await?;
            undo::run(&cluster, cli, reporter).await
        }
        Command::Export(args) => {
            let cluster = connect(cli, reporter).await?;
            profile::export(&cluster, cli, args, reporter).await
        }
        Command::Diff(args) => {
            // An invalid profile is refused before any request, even before connecting.
            let profile = profile::read_profile(&args.file)?;
            profile::check_emit(args)?;
            let cluster = connect(cli, reporter).await?;
            profile::diff(&cluster, cli, args, &profile, reporter).await
        }
        Command::Apply(args) => {
            let profile = profile::read_profile(&args.file)?;
            let cluster = connect(cli, reporter).await?;
            profile::apply(&cluster, cli, args, &profile, reporter).await
        }
        Command::Completion(args) => meta::completion(args.shell),
        Command::Version => {
            meta::version(reporter);
            Ok(())
        }
    }
}

/// Connects with the command line's connection flags (the cluster layer knows no CLI) and
/// tells the reporter where the command works.
async fn connect(cli: &Cli, reporter: &mut Reporter) -> Result<Cluster, Error> {
    let g = &cli.global;
    let options = cluster::ConnectOptions {
        kubeconfig: g.kubeconfig.clone(),
        context: g.context.clone(),
        cluster: g.cluster.clone(),
        user: g.user.clone(),
        server: g.server.clone(),
        token: g.token.clone(),
        impersonate: g.impersonate.clone(),
        impersonate_groups: g.impersonate_group.clone(),
        impersonate_uid: g.impersonate_uid.clone(),
        request_timeout: g.request_timeout.filter(|t| !t.is_zero()),
        insecure_skip_tls_verify: g.insecure_skip_tls_verify,
        certificate_authority: g.certificate_authority.clone(),
        tls_server_name: g.tls_server_name.clone(),
        namespace: g.namespace.clone(),
        verbosity: g.verbosity(),
    };
    let cluster = cluster::connect(&options).await?;
    reporter.set_target(Target {
        context: cluster.context.clone(),
        server: cluster.server.clone(),
        namespace: cluster.namespace.clone(),
    });
    Ok(cluster)
}
