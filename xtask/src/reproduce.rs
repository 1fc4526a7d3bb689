//! `cargo xtask reproduce [--quick|--norman|--full] [--input H5AD] [--grn SPEC] [--device D]
//! [--out DIR] ...`: builds the release binaries exactly as the README does, then runs
//! `perturb reproduce` with the same arguments from the repository root (where the
//! committed priors are). The study itself — stages, keys, resuming — is the
//! `perturb-pipeline` crate; `perturb reproduce --help` lists every option.

use std::process::Command;

use clap::Args;

#[derive(Args)]
pub struct Reproduce {
    /// Arguments for `perturb reproduce` (e.g. --quick, --grn regulon, --out DIR).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: Reproduce) -> Result<(), String> {
    let root = crate::workspace_root();
    let perturb = crate::build_release()?;
    let status =
        Command::new(&perturb).arg("reproduce").args(&args.args).current_dir(&root).status().map_err(|e| format!("cannot run {}: {e}", perturb.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("perturb reproduce failed ({status}); finished stages are kept, rerun the same command to resume"))
    }
}
