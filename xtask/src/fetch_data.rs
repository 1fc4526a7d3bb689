//! `cargo xtask fetch-data NAME`: downloads a real Perturb-seq screen from its public
//! archive, checks it against a pinned checksum, and unpacks the h5ad for `perturb ingest`.
//!
//! The archives are GEARS' processed releases on Harvard Dataverse (doi:10.7910/DVN/Q2ZV3E,
//! CC0) — the files the Ahlmann-Eltze et al. 2025 benchmark loaded through GEARS for its
//! single-perturbation tasks, and the GEARS copy of Norman 2019 for doubles. The
//! maintainers publish no checksums; the ones pinned here were recorded by independent
//! projects from the same URLs (see `docs/real-data.md`), so a mismatch means the archive
//! changed or the download is not the archive (Dataverse answers scripted requests with
//! an HTML challenge page at times) and nothing is unpacked.

use std::path::{Path, PathBuf};
use std::process::Command;

use md5::{Digest, Md5};

use crate::priors::run_tool;
use crate::workspace_root;

#[derive(clap::Args)]
pub struct FetchData {
    /// norman2019 | adamson2016 | replogle2022_k562 | replogle2022_rpe1 (or `list`).
    name: String,
    /// Where to put it [default: data/real/NAME under the repository].
    #[arg(long)]
    out: Option<PathBuf>,
}

enum Checksum {
    Sha256(&'static str),
    Md5(&'static str),
}

struct Screen {
    name: &'static str,
    what: &'static str,
    url: &'static str,
    archive: &'static str,
    /// The h5ad inside the archive.
    h5ad: &'static str,
    bytes: Option<u64>,
    checksum: Checksum,
}

const SCREENS: [Screen; 4] = [
    Screen {
        name: "norman2019",
        what: "Norman et al. 2019, K562 CRISPRa singles and doubles (GEARS release)",
        url: "https://dataverse.harvard.edu/api/access/datafile/6154020",
        archive: "norman.zip",
        h5ad: "norman/perturb_processed.h5ad",
        bytes: Some(168_758_985),
        checksum: Checksum::Sha256("c1938353f6f41829c9137f073ecb843ce4d4114528b001b48312b019f739d877"),
    },
    Screen {
        name: "adamson2016",
        what: "Adamson et al. 2016, K562 CRISPRi UPR screen (GEARS release)",
        url: "https://dataverse.harvard.edu/api/access/datafile/6154417",
        archive: "adamson.zip",
        h5ad: "adamson/perturb_processed.h5ad",
        bytes: Some(140_744_228),
        checksum: Checksum::Md5("0bde631bae60ee8c105991ff0e0d4a20"),
    },
    Screen {
        name: "replogle2022_k562",
        what: "Replogle et al. 2022, K562 essential-gene CRISPRi (GEARS release, filtered)",
        url: "https://dataverse.harvard.edu/api/access/datafile/7458695",
        archive: "replogle_k562_essential.zip",
        h5ad: "replogle_k562_essential/perturb_processed.h5ad",
        bytes: None,
        checksum: Checksum::Sha256("e769c89aa876061fdb3ac02a8de274f19a741a4f95decf14a52fd621d1eea319"),
    },
    Screen {
        name: "replogle2022_rpe1",
        what: "Replogle et al. 2022, RPE1 essential-gene CRISPRi (GEARS release, filtered)",
        url: "https://dataverse.harvard.edu/api/access/datafile/7458694",
        archive: "replogle_rpe1_essential.zip",
        h5ad: "replogle_rpe1_essential/perturb_processed.h5ad",
        bytes: Some(665_914_266),
        checksum: Checksum::Sha256("0b97d50a9be1ecbd8837e8425456605e4ed6121b0c7738938f1318948cb78790"),
    },
];

/// Whether `path` has the pinned checksum; the digest actually found otherwise.
fn verify(path: &Path, checksum: &Checksum) -> Result<Result<(), String>, String> {
    let (expected, found) = match checksum {
        // The same sha256 the stages record in their manifests.
        Checksum::Sha256(x) => (*x, format!("sha256 {}", perturb_core::manifest::sha256_file(path).map_err(|e| e.to_string())?.0)),
        Checksum::Md5(x) => {
            let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut h = Md5::new();
            std::io::copy(&mut file, &mut h).map_err(|e| format!("{}: {e}", path.display()))?;
            (*x, format!("md5 {}", h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()))
        }
    };
    Ok(if found.ends_with(expected) { Ok(()) } else { Err(found) })
}

pub fn run(args: FetchData) -> Result<(), String> {
    if args.name == "list" {
        for s in &SCREENS {
            println!("{:<18} {}\n{:<18} {}", s.name, s.what, "", s.url);
        }
        return Ok(());
    }
    let names: Vec<&str> = SCREENS.iter().map(|s| s.name).collect();
    let screen = SCREENS.iter().find(|s| s.name == args.name).ok_or_else(|| format!("unknown data set '{}'; one of {}", args.name, names.join(", ")))?;
    let dir = args.out.unwrap_or_else(|| workspace_root().join("data/real").join(screen.name));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let archive = dir.join(screen.archive);
    let h5ad = dir.join(screen.h5ad);
    if h5ad.is_file() && archive.is_file() && verify(&archive, &screen.checksum)?.is_ok() {
        println!("{} is already here and verified: {}", screen.name, h5ad.display());
        print_next(&h5ad);
        return Ok(());
    }
    // Download next to the target and rename only once verified: an interrupted or
    // corrupt download never looks like the archive.
    let partial = dir.join(format!("{}.part", screen.archive));
    println!(
        "downloading {} ({}) from {}",
        screen.name,
        screen.bytes.map_or("size not published".to_string(), |b| format!("{:.0} MB", b as f64 / 1e6)),
        screen.url
    );
    let part = partial.to_string_lossy().into_owned();
    run_tool(
        Command::new("curl").args(["--fail", "--silent", "--show-error", "--location", "--retry", "3", "--continue-at", "-", "--output", &part, screen.url]),
        &format!("downloading {}", screen.url),
    )
    .map_err(|e| format!("{e}; are you online? ({})", screen.what))?;
    if let Some(bytes) = screen.bytes {
        let got = std::fs::metadata(&partial).map_err(|e| format!("{}: {e}", partial.display()))?.len();
        if got != bytes {
            // Removed, so that a retry starts afresh instead of resuming a wrong file.
            let _ = std::fs::remove_file(&partial);
            return Err(format!(
                "{}: {got} bytes, the archive has {bytes} (an HTML challenge page instead of the file, or a truncated download); removed it: retry, or download {} in a browser to {}",
                partial.display(),
                screen.url,
                archive.display()
            ));
        }
    }
    if let Err(found) = verify(&partial, &screen.checksum)? {
        let _ = std::fs::remove_file(&partial);
        return Err(format!("{}: checksum mismatch ({found}); removed it, nothing was unpacked", partial.display()));
    }
    std::fs::rename(&partial, &archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    run_tool(Command::new("unzip").arg("-o").arg("-q").arg(&archive).arg("-d").arg(&dir), "unpacking the archive with unzip")?;
    if !h5ad.is_file() {
        return Err(format!("{}: the archive did not contain {}", archive.display(), screen.h5ad));
    }
    println!("{}: verified and unpacked -> {}", screen.name, h5ad.display());
    print_next(&h5ad);
    Ok(())
}

fn print_next(h5ad: &Path) {
    println!("next: cargo xtask reproduce --input {} --out results/real", h5ad.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_checked_for_both_kinds() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"abc").unwrap();
        let f = file.path();
        // The standard test vectors of "abc".
        assert!(verify(f, &Checksum::Md5("900150983cd24fb0d6963f7d28e17f72")).unwrap().is_ok());
        assert!(verify(f, &Checksum::Sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")).unwrap().is_ok());
        assert_eq!(verify(f, &Checksum::Md5("00")).unwrap().unwrap_err(), "md5 900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let e = run(FetchData { name: "norman".into(), out: None }).unwrap_err();
        assert!(e.contains("norman2019, adamson2016"), "{e}");
    }
}
