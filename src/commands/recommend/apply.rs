//! `recommend --apply`: the proposals written through the planners and the write pipeline.

use super::gather::Objects;
use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::error::Error;
use crate::plan::Change;
use crate::plan::recommend::Report;
use crate::report::Reporter;

/// # Errors
/// Whatever the writes fail with.
pub(crate) async fn apply(
    _cluster: &Cluster,
    _cli: &Cli,
    _objects: &Objects<'_>,
    _report: &Report,
    _reporter: &mut Reporter,
) -> Result<Vec<Change>, Error> {
    Err(Error::failed(
        "recommend --apply is not built yet",
        "apply the proposals with the other commands",
    ))
}
