//! Writes `diff --emit` files: the patches `plan::profile::emit` builds, as YAML, into the
//! directory given, with the kustomization (kustomize) or the `kubectl patch` commands (patch).

use std::path::{Path, PathBuf};

use crate::cli::EmitFormat;
use crate::error::Error;
use crate::plan::profile::ScalingProfile;
use crate::plan::profile::emit::{emit, kustomization};
use crate::plan::profile::steps::{Names, World};
use crate::report::Reporter;

/// Writes the files and says what was written; returns their paths.
///
/// # Errors
/// The planners' errors (exit 2), a directory or file that cannot be written (exit 1).
pub(super) fn write_files(
    format: EmitFormat,
    dir: &Path,
    base: Option<&str>,
    world: &World,
    names: &Names,
    profile: &ScalingProfile,
    reporter: &mut Reporter,
) -> Result<Vec<String>, Error> {
    let files = emit(world, names, &profile.spec)?;
    let cannot = |path: &Path, e: std::io::Error| {
        Error::failed(
            format!("cannot write {}: {e}", path.display()),
            "choose a writable --emit-dir",
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot(dir, e))?;
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
