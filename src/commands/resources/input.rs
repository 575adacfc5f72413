//! The flags of `resources` / `db resources`, parsed and checked before connecting: a bad
//! quantity, a negative amount or no field at all is refused (exit 2) before any request.

use crate::cli::ResourcesArgs;
use crate::error::Error;
use crate::plan::PlanError;
use crate::plan::resources::{ResourceList, mirror_extended, parse_resource_list};

/// The checked input of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcesInput {
    /// `resources` or `db resources`.
    pub command: &'static str,
    pub requests: ResourceList,
    pub limits: ResourceList,
    pub rollback_on_failure: bool,
    requests_text: Option<String>,
    limits_text: Option<String>,
}

impl ResourcesInput {
    /// The command as typed, for the audit record: `resources --requests cpu=1 --limits cpu=2`.
    pub fn command_line(&self) -> String {
        let mut line = self.command.to_string();
        for (flag, text) in [
            ("--requests", &self.requests_text),
            ("--limits", &self.limits_text),
        ] {
            if let Some(text) = text {
                line.push_str(&format!(" {flag} {text}"));
            }
        }
        line
    }
}

/// Parses the flags of `command`.
///
/// # Errors
/// Usage errors (exit 2): no field given, a bad list or quantity, a negative amount.
pub fn input(command: &'static str, args: &ResourcesArgs) -> Result<ResourcesInput, Error> {
    if args.requests.is_none() && args.limits.is_none() {
        return Err(PlanError::new(
            "nothing to change: give --requests and/or --limits",
            format!("e.g. kubectl orchscale {command} --requests cpu=1,memory=2Gi --limits cpu=2,memory=4Gi"),
        )
        .into());
    }
    let parse = |flag: &str, text: &Option<String>| -> Result<ResourceList, PlanError> {
        text.as_deref()
            .map_or_else(|| Ok(ResourceList::new()), |t| parse_resource_list(flag, t))
    };
    let mut requests = parse("--requests", &args.requests)?;
    let mut limits = parse("--limits", &args.limits)?;
    mirror_extended(&mut requests, &mut limits);
    Ok(ResourcesInput {
        command,
        requests,
        limits,
        rollback_on_failure: args.rollback_on_failure,
        requests_text: args.requests.clone(),
        limits_text: args.limits.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(requests: Option<&str>, limits: Option<&str>) -> ResourcesArgs {
        ResourcesArgs {
            requests: requests.map(str::to_string),
            limits: limits.map(str::to_string),
            rollback_on_failure: false,
        }
    }

    #[test]
    fn no_field_is_a_usage_error() {
        let err = input("resources", &args(None, None)).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().starts_with("nothing to change"));
    }

    #[test]
    fn bad_and_negative_quantities_are_usage_errors() {
        for bad in ["cpu=lots", "cpu=-1", "cpu"] {
            let err = input("resources", &args(Some(bad), None)).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        let err = input("db resources", &args(None, Some("memory=1Qi"))).unwrap_err();
        assert!(err.to_string().contains("--limits"), "{err}");
    }

    #[test]
    fn command_line_repeats_the_flags() {
        let parsed = input("resources", &args(Some("cpu=750m,memory=1536Mi"), Some("cpu=2"))).unwrap();
        assert_eq!(parsed.requests.len(), 2);
        assert_eq!(parsed.limits["cpu"].text(), "2");
        assert_eq!(
            parsed.command_line(),
            "resources --requests cpu=750m,memory=1536Mi --limits cpu=2"
        );
        let only_limits = input("db resources", &args(None, Some("memory=4Gi"))).unwrap();
        assert_eq!(only_limits.command_line(), "db resources --limits memory=4Gi");
        assert!(only_limits.requests.is_empty());
    }
}
