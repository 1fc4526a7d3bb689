//! Making a stage's output appear all at once or not at all.
//!
//! A stage writes its artifacts into a hidden staging folder beside the output folder and
//! moves them into place only when every one of them is complete. A stage that fails —
//! bad input found halfway through, a full disk, a kill — therefore leaves the output
//! folder as it was: no half-written `pseudobulk.parquet` can be mistaken for a result.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A hidden folder collecting a stage's artifacts until [`StagedDir::commit`].
/// Dropping it without committing deletes it and everything in it.
pub struct StagedDir {
    out: PathBuf,
    staging: Option<tempfile::TempDir>,
}

impl StagedDir {
    /// Prepares to write into `out`, which may or may not exist yet. Nothing is created
    /// at `out` until [`StagedDir::commit`].
    pub fn new(out: &Path) -> Result<StagedDir> {
        if out.exists() && !out.is_dir() {
            return Err(Error::bad_input(out, "output path exists and is not a folder"));
        }
        // Stage inside the nearest folder that exists, so that the final move is a
        // rename within one file system and no empty parents are left behind on failure.
        let mut anchor = out.parent().map(Path::to_path_buf).unwrap_or_default();
        while !anchor.as_os_str().is_empty() && !anchor.is_dir() {
            anchor = anchor.parent().map(Path::to_path_buf).unwrap_or_default();
        }
        if anchor.as_os_str().is_empty() {
            anchor = PathBuf::from(".");
        }
        let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let staging = tempfile::Builder::new().prefix(&format!(".{name}.staging-")).tempdir_in(&anchor).map_err(|e| Error::io(&anchor, e))?;
        Ok(StagedDir { out: out.to_path_buf(), staging: Some(staging) })
    }

    /// Where to write an artifact named `file_name` while staging.
    pub fn path(&self, file_name: &str) -> PathBuf {
        self.staging.as_ref().expect("not yet committed").path().join(file_name)
    }

    /// The final output folder.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Moves every staged artifact into the output folder (replacing files of the same
    /// name) and removes the staging folder.
    pub fn commit(mut self) -> Result<PathBuf> {
        let staging = self.staging.take().expect("commit called once");
        fs::create_dir_all(&self.out).map_err(|e| Error::io(&self.out, e))?;
        let entries = fs::read_dir(staging.path()).map_err(|e| Error::io(staging.path(), e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(staging.path(), e))?;
            names.push(entry.file_name());
        }
        // The manifest goes last: its presence says the folder is complete.
        names.sort_by_key(|n| (n == "manifest.json", n.clone()));
        for name in names {
            let from = staging.path().join(&name);
            let to = self.out.join(&name);
            fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        }
        Ok(self.out.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_nothing_remains_on_drop() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("a/b/out");
        {
            let staged = StagedDir::new(&out).unwrap();
            fs::write(staged.path("x.parquet"), b"x").unwrap();
            assert!(!out.exists());
        }
        assert!(!root.path().join("a").exists());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);

        let staged = StagedDir::new(&out).unwrap();
        fs::write(staged.path("x.parquet"), b"x").unwrap();
        fs::write(staged.path("manifest.json"), b"{}").unwrap();
        staged.commit().unwrap();
        assert_eq!(fs::read(out.join("x.parquet")).unwrap(), b"x");
        assert!(out.join("manifest.json").exists());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn output_that_is_a_file_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("file");
        fs::write(&out, b"precious").unwrap();
        assert!(StagedDir::new(&out).is_err());
        assert_eq!(fs::read(&out).unwrap(), b"precious");
    }
}
