//! The `hpa` flags as a checked [`HpaInput`]: everything that can be refused without a
//! cluster is refused here, before connecting (exit 2, no request at all).

use crate::cli::HpaArgs;
use crate::plan::PlanError;
use crate::plan::hpa::{HpaRequest, plan_hpa_create, precheck};

/// The user's flags, checked before any request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpaInput {
    pub request: HpaRequest,
    pub create: bool,
    pub watch: bool,
}

impl HpaInput {
    /// Whether anything is to be written (otherwise it is `--watch` alone).
    pub fn writes(&self) -> bool {
        self.create || self.request != HpaRequest::default()
    }

    /// The command as recorded in the audit annotation, e.g. `hpa --min 5 --max 20`.
    pub fn command_line(&self) -> String {
        let r = &self.request;
        let mut line = String::from("hpa");
        if self.create {
            line.push_str(" --create");
        }
        for (flag, value) in [
            ("min", r.min),
            ("max", r.max),
            ("cpu", r.cpu),
            ("memory", r.memory),
        ] {
            if let Some(value) = value {
                line.push_str(&format!(" --{flag} {value}"));
            }
        }
        line
    }
}

/// Turns the flags into an [`HpaInput`]: values in range, at least one field (or `--watch`),
/// both bounds with `--create`, and the checks that need no cluster.
///
/// # Errors
/// A [`PlanError`] (exit 2) naming the flag.
pub fn input(args: &HpaArgs) -> Result<HpaInput, PlanError> {
    let narrow = |flag: &str, value: Option<i64>| -> Result<Option<i32>, PlanError> {
        value
            .map(|v| {
                i32::try_from(v).map_err(|_| {
                    PlanError::new(
                        format!("--{flag} {v} is out of range"),
                        "use a value below 2147483648",
                    )
                })
            })
            .transpose()
    };
    let request = HpaRequest {
        min: narrow("min", args.min)?,
        max: narrow("max", args.max)?,
        cpu: narrow("cpu", args.cpu)?,
        memory: narrow("memory", args.memory)?,
    };
    let input = HpaInput {
        request,
        create: args.create,
        watch: args.watch,
    };
    if !input.writes() && !input.watch {
        return Err(PlanError::new(
            "nothing to change: give at least one of --min, --max, --cpu, --memory (or --watch)",
            "e.g. `kubectl orchscale hpa --min 5 --max 20` or `kubectl orchscale hpa --watch`",
        ));
    }
    if input.create {
        // Checks everything --create needs, min and max included, without a cluster.
        plan_hpa_create("-", "-", "-", &input.request)?;
    } else {
        precheck(&input.request)?;
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(min: Option<i64>, max: Option<i64>, cpu: Option<i64>, create: bool, watch: bool) -> HpaArgs {
        HpaArgs {
            min,
            max,
            cpu,
            memory: None,
            create,
            watch,
        }
    }

    fn message(result: Result<HpaInput, PlanError>) -> String {
        result.unwrap_err().message
    }

    #[test]
    fn input_needs_a_field_or_watch() {
        assert!(message(input(&args(None, None, None, false, false))).starts_with("nothing to change"));
        let watch_only = input(&args(None, None, None, false, true)).unwrap();
        assert!(!watch_only.writes());
        let change = input(&args(Some(5), None, None, false, true)).unwrap();
        assert!(change.writes() && change.watch);
    }

    #[test]
    fn input_refuses_what_needs_no_cluster_to_refuse() {
        assert_eq!(
            message(input(&args(Some(8), Some(4), None, false, false))),
            "--min 8 is above --max 4"
        );
        assert!(
            message(input(&args(None, None, Some(0), false, false))).contains("utilization must be above 0%")
        );
        assert!(message(input(&args(Some(0), None, None, false, false))).contains("below 1"));
        assert!(message(input(&args(Some(1 << 40), None, None, false, false))).contains("out of range"));
        assert_eq!(
            message(input(&args(Some(2), None, None, true, false))),
            "--create needs both --min and --max"
        );
        // A lone --min can only be checked against the current max once the HPA is read.
        assert!(input(&args(Some(12), None, None, false, false)).is_ok());
    }

    #[test]
    fn command_line_names_the_given_flags() {
        let i = input(&args(Some(2), Some(6), Some(50), true, true)).unwrap();
        assert_eq!(i.command_line(), "hpa --create --min 2 --max 6 --cpu 50");
        let i = input(&args(None, None, Some(60), false, false)).unwrap();
        assert_eq!(i.command_line(), "hpa --cpu 60");
    }
}
