//! Writes `diff --emit` files: the patches `plan::profile::emit` builds, as YAML, into the
//! directory given, with the kustomization (kustomize) or the `kubectl patch` commands (patch);
//! or the Helm values fragment placed by `--values-map` (helm-values).

use std::path::{Path, PathBuf};

use crate::cli::{DiffArgs, EmitFormat};
use crate::error::Error;
use crate::plan::profile::ScalingProfile;
use crate::plan::profile::emit::{ValuesMap, emit, helm_values, kustomization};
use crate::plan::profile::steps::{Names, World};
use crate::report::Reporter;

/// Checks the --emit flags before connecting: helm-values needs a readable --values-map.
///
/// # Errors
/// A usage error (exit 2) naming the flag.
pub(super) fn values_map(args: &DiffArgs) -> Result<Option<ValuesMap>, Error> {
    let Some(EmitFormat::HelmValues) = args.emit else {
        return Ok(None);
    };
    let Some(path) = &args.values_map else {
        return Err(Error::usage(
            "--emit helm-values needs --values-map FILE",
            "map profile fields to your chart's values paths, e.g. `hpa.maxReplicas: autoscaling.maxReplicas`",
        ));
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(
            format!("cannot read --values-map {}: {e}", path.display()),
            "give a YAML map file",
        )
    })?;
    let map: ValuesMap = serde_saphyr::from_str(&text).map_err(|e| {
        Error::usage(
            format!("--values-map {}: {e}", path.display()),
            "a YAML map of profile field to values path, e.g. `resources.orchestrator: resources`",
        )
    })?;
    Ok(Some(map))
}

/// Writes the files --emit asks for (nothing without --emit) and says what was written;
/// returns their paths.
///
/// # Errors
/// The planners' errors (exit 2), a directory or file that cannot be written (exit 1).
pub(super) fn write_files(
    args: &DiffArgs,
    world: &World,
    names: &Names,
    profile: &ScalingProfile,
    reporter: &mut Reporter,
) -> Result<Vec<String>, Error> {
    let (Some(format), Some(dir)) = (args.emit, args.emit_dir.as_deref()) else {
        return Ok(Vec::new());
    };
    let cannot = |path: &Path, e: std::io::Error| {
        Error::failed(
            format!("cannot write {}: {e}", path.display()),
            "choose a writable --emit-dir",
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot(dir, e))?;
    if let Some(map) = values_map(args)? {
        let (values, unmapped) = helm_values(&profile.spec, &map)?;
        for field in unmapped {
            reporter.warn(&format!(
                "{field} is not in --values-map: it is left out of the values"
            ));
        }
        let path = dir.join("values.yaml");
        let yaml = serde_saphyr::to_string(&values).map_err(|e| {
            Error::failed(
                format!("cannot write the values as YAML: {e}"),
                "please report it",
            )
        })?;
        std::fs::write(&path, yaml).map_err(|e| cannot(&path, e))?;
        reporter.info(&format!(
            "Helm values fragment written to {}: pass it with `helm upgrade -f {}`, or commit it",
            path.display(),
            path.display()
        ));
        return Ok(vec![path.display().to_string()]);
    }
    let base = args.kustomize_base.as_deref();
    let files = emit(world, names, &profile.spec)?;
    let mut written: Vec<PathBuf> = Vec::new();
    for file in &files {
        let path = dir.join(&file.file);
        let yaml = serde_saphyr::to_string(&file.body).map_err(|e| {
            Error::failed(
                format!("cannot write {} as YAML: {e}", file.file),
                "please report it",
            )
        })?;
        std::fs::write(&path, yaml).map_err(|e| cannot(&path, e))?;
        written.push(path);
    }
    let mut lines = Vec::new();
    match format {
        EmitFormat::Kustomize => {
            let path = dir.join("kustomization.yaml");
            std::fs::write(&path, kustomization(&files, base)).map_err(|e| cannot(&path, e))?;
            written.push(path);
            lines.push(format!(
                "kustomize overlay written to {} ({} patch file(s)); apply it with `kubectl apply -k {}` \
                 or commit it for Argo CD / Flux",
                dir.display(),
                files.len(),
                dir.display()
            ));
        }
        EmitFormat::HelmValues => {}
        EmitFormat::Patch => {
            lines.push(format!(
                "patch files written to {}; apply them with:",
                dir.display()
            ));
            for file in &files {
                let path = dir.join(&file.file);
                lines.push(if file.patch {
                    format!(
                        "  kubectl patch {} {} -n {} --type strategic --patch-file {}",
                        file.resource,
                        file.name,
                        names.namespace,
                        path.display()
                    )
                } else {
                    format!("  kubectl create -f {}", path.display())
                });
            }
        }
    }
    if profile.spec.pool.is_some() && files.iter().any(|f| f.resource == "configmap") {
        lines.push(format!(
            "the deployment's patch carries the pool as the pod template annotation {}: the pods \
             restart to load it, as `apply` restarts them",
            crate::plan::profile::emit::POOL_ANNOTATION
        ));
    }
    reporter.info(&lines.join("\n"));
    Ok(written.iter().map(|p| p.display().to_string()).collect())
}
