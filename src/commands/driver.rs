//! The recipe every write command follows up to its write, in one place: the target banner,
//! the preview (with what it warns about), the permission preflight derived from the command's
//! steps, and the confirmation when pods restart. The write itself is `commands::write`.
//!
//! A command supplies what it read and planned as a [`Proposal`]; [`propose`] returns once
//! the change may be written, or with the error that stops it (nothing written).

use super::preflight::{Step, preflight};
use crate::cluster::Cluster;
use crate::error::Error;
use crate::report::Reporter;
use crate::report::preview::Preview;

/// What a command is about to do, for the operator to see (and confirm) before it happens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Proposal<'a> {
    /// Before → after, consequences, GitOps and capacity warnings.
    pub preview: Preview,
    /// Said after the preview, as warnings even with -q (e.g. DOWNTIME, a paused deployment).
    pub alerts: Vec<String>,
    /// What the command will do once it writes; the preflight is derived from it.
    pub steps: Vec<Step<'a>>,
    /// The question to confirm (pods restart, an HPA is deleted, values changed since).
    pub confirm: Option<String>,
}

/// Shows the proposal, checks the permissions its steps need and asks when it must.
///
/// # Errors
/// [`Error::Forbidden`] (a required permission missing), [`Error::NotConfirmed`] (exit 3),
/// API errors of the access reviews. Nothing is written in any case.
pub(crate) async fn propose(
    cluster: &Cluster,
    reporter: &mut Reporter,
    proposal: &Proposal<'_>,
    yes: bool,
    dry_run: bool,
) -> Result<(), Error> {
    reporter.banner();
    reporter.preview(&proposal.preview);
    for alert in &proposal.alerts {
        reporter.warn(alert);
    }
    // Permissions before the prompt: no question about a change that would be refused.
    preflight(cluster, reporter, &proposal.steps).await?;
    if let Some(question) = &proposal.confirm {
        reporter.confirm(question, yes, dry_run)?;
    }
    Ok(())
}
