//! Making a stage's output appear all at once or not at all.
//!
//! A stage writes its artifacts into a hidden staging folder beside the output folder and
//! moves them into place only when every one of them is complete. A stage that fails —
//! bad input found halfway through, a full disk, a kill — therefore leaves the output
//! folder as it was: no half-written `pseudobulk.parquet` can be mistaken for a result.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::paths::{folder_of, nearest_existing_folder};

const MANIFEST: &str = crate::schema::MANIFEST;

/// The plain file names the manifest in `out` lists as outputs (none without a readable
/// manifest of this schema version: then nothing is removed).
fn previous_outputs(out: &Path) -> Vec<String> {
    let Ok(manifest) = crate::manifest::Manifest::read(&out.join(MANIFEST)) else { return Vec::new() };
    // Only names of files directly in the folder: a manifest can never point elsewhere.
    manifest.outputs.into_iter().filter(|o| Path::new(o).file_name().and_then(|n| n.to_str()) == Some(o.as_str())).collect()
}

/// A hidden folder collecting a stage's artifacts until [`StagedDir::commit`], and the
/// list of them its manifest records: each output is named once, when the stage asks
/// where to write it ([`StagedDir::output`]), so no output can be missing from the list.
/// Dropping it without committing deletes it and everything in it.
pub struct StagedDir {
    out: PathBuf,
    staging: Option<tempfile::TempDir>,
    /// The outputs asked for so far, in that order.
    outputs: std::sync::Mutex<Vec<String>>,
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
        let (anchor, _) = nearest_existing_folder(out);
        let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let staging = tempfile::Builder::new().prefix(&format!(".{name}.staging-")).tempdir_in(&anchor).map_err(|e| Error::io(&anchor, e))?;
        Ok(StagedDir { out: out.to_path_buf(), staging: Some(staging), outputs: std::sync::Mutex::new(Vec::new()) })
    }

    /// Where to write the output `file_name` while staging; it joins (once, in the order
    /// first asked for) the outputs [`StagedDir::write_manifest`] lists.
    pub fn output(&self, file_name: &str) -> PathBuf {
        let mut outputs = self.outputs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !outputs.iter().any(|o| o == file_name) {
            outputs.push(file_name.to_string());
        }
        self.path(file_name)
    }

    /// Writes `manifest` beside the staged outputs, listing every output asked for so far
    /// (not itself): what a rerun's commit may replace.
    pub fn write_manifest(&self, mut manifest: crate::manifest::Manifest) -> Result<()> {
        manifest.outputs = self.outputs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        manifest.write(&self.path(MANIFEST))
    }

    fn path(&self, file_name: &str) -> PathBuf {
        self.staging.as_ref().expect("not yet committed").path().join(file_name)
    }

    /// The final output folder.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Moves every staged artifact into the output folder (replacing files of the same
    /// name) and removes the staging folder. Files that the folder's previous manifest
    /// listed as outputs and this run did not write are removed, so a rerun with fewer
    /// seeds or tasks leaves no stale artifact beside the fresh manifest; files the
    /// manifest does not list (the user's own) are never touched.
    pub fn commit(mut self) -> Result<PathBuf> {
        let staging = self.staging.take().expect("commit called once");
        fs::create_dir_all(&self.out).map_err(|e| Error::io(&self.out, e))?;
        let entries = fs::read_dir(staging.path()).map_err(|e| Error::io(staging.path(), e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(staging.path(), e))?;
            names.push(entry.file_name());
        }
        if names.iter().any(|n| n == MANIFEST) {
            for stale in previous_outputs(&self.out).iter().filter(|o| !names.iter().any(|n| n.to_str() == Some(o.as_str()))) {
                let path = self.out.join(stale);
                if path.is_file() {
                    fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                }
            }
        }
        // The manifest goes last: its presence says the folder is complete.
        names.sort_by_key(|n| (n == MANIFEST, n.clone()));
        for name in names {
            let from = staging.path().join(&name);
            let to = self.out.join(&name);
            fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        }
        Ok(self.out.clone())
    }
}

/// Files in one folder that must appear together (a table and its companion): each is
/// written into a hidden staging folder beside them and renamed into place by
/// [`StagedFiles::commit`], the first-named (primary) file last, so its presence says
/// the set is complete. Dropping it uncommitted leaves every final path as it was.
pub struct StagedFiles {
    staging: tempfile::TempDir,
    finals: Vec<PathBuf>,
}

impl StagedFiles {
    /// Stages the files `finals` (the first is the primary); all must lie in one folder.
    pub fn new(finals: &[PathBuf]) -> Result<StagedFiles> {
        let primary = finals.first().ok_or_else(|| Error::Other("no file to stage".into()))?;
        let dir = folder_of(primary);
        if finals.iter().any(|f| folder_of(f) != dir) {
            return Err(Error::Other("staged files must share a folder".into()));
        }
        if let Some(dir_file) = finals.iter().find(|f| f.is_dir()) {
            return Err(Error::bad_input(dir_file, "output path exists and is a folder, not a file"));
        }
        let name = primary.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let staging = tempfile::Builder::new().prefix(&format!(".{name}.staging-")).tempdir_in(dir).map_err(|e| Error::io(primary, e))?;
        Ok(StagedFiles { staging, finals: finals.to_vec() })
    }

    /// Where to write the final file `final_path` while staging.
    pub fn path(&self, final_path: &Path) -> PathBuf {
        self.staging.path().join(final_path.file_name().expect("a staged file has a name"))
    }

    /// Renames every staged file into place, the primary last.
    pub fn commit(self) -> Result<()> {
        for file in self.finals.iter().skip(1).chain(self.finals.first()) {
            let from = self.path(file);
            fs::rename(&from, file).map_err(|e| Error::io(file, e))?;
        }
        Ok(())
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
            fs::write(staged.output("x.parquet"), b"x").unwrap();
            assert!(!out.exists());
        }
        assert!(!root.path().join("a").exists());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);

        let staged = StagedDir::new(&out).unwrap();
        fs::write(staged.output("x.parquet"), b"x").unwrap();
        fs::write(staged.path("manifest.json"), b"{}").unwrap();
        staged.commit().unwrap();
        assert_eq!(fs::read(out.join("x.parquet")).unwrap(), b"x");
        assert!(out.join("manifest.json").exists());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }

    /// The manifest lists each output once, in the order the stage first asked for it,
    /// and never itself; a rerun that writes fewer files lists fewer and removes the rest.
    #[test]
    fn the_manifest_lists_the_outputs_asked_for_in_order() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("graph");
        let staged = StagedDir::new(&out).unwrap();
        for f in ["nodes.parquet", "edges.parquet", "nodes.parquet"] {
            fs::write(staged.output(f), b"x").unwrap();
        }
        staged.write_manifest(crate::manifest::Manifest::new("graph", vec![], serde_json::Value::Null)).unwrap();
        staged.commit().unwrap();
        let written = crate::manifest::Manifest::read(&out.join(MANIFEST)).unwrap();
        assert_eq!(written.outputs, ["nodes.parquet", "edges.parquet"]);
        let staged = StagedDir::new(&out).unwrap();
        fs::write(staged.output("edges.parquet"), b"y").unwrap();
        staged.write_manifest(crate::manifest::Manifest::new("graph", vec![], serde_json::Value::Null)).unwrap();
        staged.commit().unwrap();
        assert!(!out.join("nodes.parquet").exists(), "no longer written, so removed");
        assert_eq!(crate::manifest::Manifest::read(&out.join(MANIFEST)).unwrap().outputs, ["edges.parquet"]);
    }

    fn manifest(outputs: &[&str]) -> crate::manifest::Manifest {
        let mut m = crate::manifest::Manifest::new("eval", vec![], serde_json::Value::Null);
        m.outputs = outputs.iter().map(|o| o.to_string()).collect();
        m
    }

    #[test]
    fn a_rerun_removes_what_the_previous_manifest_listed_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("eval");
        let staged = StagedDir::new(&out).unwrap();
        for f in ["a.parquet", "b.parquet"] {
            fs::write(staged.output(f), b"x").unwrap();
        }
        manifest(&["a.parquet", "b.parquet", "../outside", "/etc/passwd"]).write(&staged.path(MANIFEST)).unwrap();
        staged.commit().unwrap();
        fs::write(out.join("notes.txt"), b"mine").unwrap();
        fs::write(root.path().join("outside"), b"mine").unwrap();
        let staged = StagedDir::new(&out).unwrap();
        fs::write(staged.output("a.parquet"), b"y").unwrap();
        manifest(&["a.parquet"]).write(&staged.path(MANIFEST)).unwrap();
        staged.commit().unwrap();
        let mut left: Vec<String> = fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["a.parquet", "manifest.json", "notes.txt"]);
        assert!(root.path().join("outside").exists());
    }

    #[test]
    fn staged_files_appear_together_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let (main, side) = (root.path().join("p.parquet"), root.path().join("p.attention.parquet"));
        fs::write(&main, b"old").unwrap();
        {
            let staged = StagedFiles::new(&[main.clone(), side.clone()]).unwrap();
            fs::write(staged.path(&side), b"new side").unwrap();
        }
        assert_eq!(fs::read(&main).unwrap(), b"old");
        assert!(!side.exists());
        let staged = StagedFiles::new(&[main.clone(), side.clone()]).unwrap();
        fs::write(staged.path(&main), b"new").unwrap();
        fs::write(staged.path(&side), b"new side").unwrap();
        staged.commit().unwrap();
        assert_eq!((fs::read(&main).unwrap(), fs::read(&side).unwrap()), (b"new".to_vec(), b"new side".to_vec()));
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 2);
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
