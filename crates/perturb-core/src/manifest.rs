//! The `manifest.json` written beside every stage's artifacts: what went in (with
//! sha256), with which parameters, by which tool and schema version, and what came out.
//! Later stages and `cargo xtask reproduce` read it to decide whether a stage is up to
//! date. It holds no timestamps so that the same inputs give byte-identical manifests.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::schema::SCHEMA_VERSION;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

impl InputFile {
    pub fn hash(path: &Path) -> Result<InputFile> {
        let (sha256, bytes) = sha256_file(path)?;
        Ok(InputFile { path: path.to_path_buf(), sha256, bytes })
    }

    /// Starts hashing on its own thread: a multi-gigabyte input is hashed while the
    /// stage reads it, instead of after.
    pub fn hash_in_background(path: &Path) -> PendingHash {
        let path = path.to_path_buf();
        PendingHash(std::thread::spawn(move || {
            lower_this_threads_priority();
            InputFile::hash(&path)
        }))
    }
}

/// The hash is needed only when the manifest is written, at the end: at the lowest
/// priority it takes the cores the stage leaves idle (waits, the single-threaded tail)
/// instead of a third of the stage's own. Best effort: without it the hash runs as before.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority reads no memory of ours; on Linux PRIO_PROCESS with a thread id
    // sets that thread's nice value only.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
    }
}

/// A hash being computed; [`PendingHash::wait`] joins it.
pub struct PendingHash(std::thread::JoinHandle<Result<InputFile>>);

impl PendingHash {
    pub fn wait(self) -> Result<InputFile> {
        self.0.join().unwrap_or_else(|_| Err(crate::Error::Other("hashing thread panicked".into())))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub stage: String,
    pub schema_version: u32,
    pub tool: String,
    pub tool_version: String,
    pub inputs: Vec<InputFile>,
    /// Every parameter that influences the artifacts, resolved (defaults filled in).
    pub parameters: serde_json::Value,
    /// Stage-specific facts about the result (counts, what was assumed, warnings).
    pub summary: serde_json::Value,
    pub outputs: Vec<String>,
}

impl Manifest {
    pub fn new(stage: &str, inputs: Vec<InputFile>, parameters: serde_json::Value) -> Manifest {
        Manifest {
            stage: stage.to_string(),
            schema_version: SCHEMA_VERSION,
            tool: "perturb".to_string(),
            tool_version: crate::TOOL_VERSION.to_string(),
            inputs,
            parameters,
            summary: serde_json::Value::Null,
            outputs: Vec::new(),
        }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("manifest serialises");
        text.push('\n');
        crate::table::write_bytes_atomically(path, text.as_bytes())
    }

    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| Error::bad_input(path, format!("not a perturb manifest ({e})")))?;
        if manifest.schema_version != SCHEMA_VERSION {
            return Err(Error::bad_input(
                path,
                format!("artifact schema version {} but this perturb reads version {SCHEMA_VERSION}; rerun the stage", manifest.schema_version),
            ));
        }
        Ok(manifest)
    }
}

/// Hex sha256 and size of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    let digest = hasher.finalize();
    Ok((digest.iter().map(|b| format!("{b:02x}")).collect(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_content() {
        let dir = tempfile::tempdir().unwrap();
        let (hex, n) = sha256_file(&crate::testing::written(dir.path(), "abc", b"abc")).unwrap();
        assert_eq!(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(n, 3);
    }

    #[test]
    fn manifest_round_trips_and_rejects_other_schema_versions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("manifest.json");
        let m = Manifest::new("ingest", vec![], serde_json::json!({"target_sum": 1e4}));
        m.write(&p).unwrap();
        assert_eq!(Manifest::read(&p).unwrap(), m);
        let mut old = m.clone();
        old.schema_version = 0;
        old.write(&p).unwrap();
        assert!(Manifest::read(&p).unwrap_err().to_string().contains("schema version 0"));
    }
}
