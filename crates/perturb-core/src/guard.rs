//! Keeping a stage's output away from everything the user gave it.
//!
//! Two rules protect a user's files: a stage never writes where one of its inputs lies
//! ([`refuse_overlap`]: the output is, contains or lies inside an input, paths resolved
//! with symlinks followed), and two runs never write one output at once ([`OutputLock`]:
//! an exclusive lock held for the run, whose file names the process holding it).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// `path` made absolute with every symlink of its existing part resolved; `..` after a
/// part that does not exist yet steps back lexically.
pub fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => {
                out.push(other.as_os_str());
                // Each existing prefix is made canonical, so a later `..` leaves the
                // folder a symlink points to, as the operating system would.
                if let Ok(real) = out.canonicalize() {
                    out = real;
                }
            }
        }
    }
    out
}

/// Whether `inner` is `outer` or lies inside it (both resolved).
pub fn is_within(inner: &Path, outer: &Path) -> bool {
    resolve(inner).starts_with(resolve(outer))
}

/// An input of a stage, by the option that named it.
#[derive(Debug, Clone, Copy)]
pub struct NamedPath<'a> {
    pub option: &'a str,
    pub path: &'a Path,
}

impl<'a> NamedPath<'a> {
    pub fn new(option: &'a str, path: &'a Path) -> NamedPath<'a> {
        NamedPath { option, path }
    }
}

/// Refuses an output that is, contains or lies inside one of `inputs`: writing it could
/// replace or delete what the user gave the stage.
pub fn refuse_overlap(out: NamedPath<'_>, inputs: &[NamedPath<'_>]) -> Result<()> {
    let target = resolve(out.path);
    for input in inputs {
        let source = resolve(input.path);
        let relation = if target == source {
            "is"
        } else if source.starts_with(&target) {
            "contains"
        } else if target.starts_with(&source) {
            "lies inside"
        } else {
            continue;
        };
        return Err(Error::bad_option(
            out.option,
            format!(
                "{} {relation} the input {} {}: writing it would replace the input; choose another output",
                out.path.display(),
                input.option,
                input.path.display()
            ),
        ));
    }
    Ok(())
}

/// Makes `out` safe to write for this process: it overlaps none of `inputs`, no other run
/// writes it (the lock is held until the returned value is dropped), and what a killed
/// earlier run left beside it is removed.
pub fn claim(out: NamedPath<'_>, inputs: &[NamedPath<'_>]) -> Result<OutputLock> {
    refuse_overlap(out, inputs)?;
    let lock = OutputLock::beside(out.path)?;
    clear_leftovers(out.path);
    Ok(lock)
}

/// Removes the staging folders and temporary files that a killed writer of `out` left
/// beside it (`.NAME.staging-*`, `.NAME.*.tmp`). Only call it holding `out`'s lock.
pub fn clear_leftovers(out: &Path) {
    let Some(name) = out.file_name().and_then(|n| n.to_str()) else { return };
    let dir = crate::paths::folder_of(out);
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let (staging, temporary) = (format!(".{name}.staging-"), format!(".{name}."));
    for entry in entries.flatten() {
        let n = entry.file_name().to_string_lossy().into_owned();
        if n.starts_with(&staging) || (n.starts_with(&temporary) && n.ends_with(".tmp")) {
            let path = entry.path();
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }
}

/// Refuses a list option that names one value twice (`--seeds 1,1` would count every
/// row twice and shrink the spread of the mean).
pub fn refuse_duplicates<T: PartialEq + std::fmt::Display>(option: &str, values: &[T]) -> Result<()> {
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(Error::bad_option(option, format!("{v} is given twice")));
        }
    }
    Ok(())
}

/// The machine's memory in bytes (`MemTotal` of /proc/meminfo), where it can be read.
pub fn total_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses a run whose estimated memory exceeds the machine's, before it starts, rather
/// than letting the kernel kill it halfway.
pub fn refuse_beyond_memory(option: &str, what: &str, estimated_bytes: f64) -> Result<()> {
    let Some(total) = total_memory_bytes() else { return Ok(()) };
    if estimated_bytes > total as f64 {
        let gib = |b: f64| b / (1u64 << 30) as f64;
        return Err(Error::bad_option(
            option,
            format!("{what} needs about {:.0} GiB of memory but this machine has {:.0} GiB", gib(estimated_bytes), gib(total as f64)),
        ));
    }
    Ok(())
}

/// An exclusive lock on an output, held until dropped. Its file holds the process id of
/// the holder, so a second run can say who has it.
#[derive(Debug)]
pub struct OutputLock {
    file: File,
    path: PathBuf,
}

impl OutputLock {
    /// Locks the output `out` (a file or folder, existing or not) through `.NAME.lock`
    /// beside it. Nothing is created for it: when the folder `out` goes in does not exist
    /// yet, the lock lies in the nearest folder that does, named after the rest of the path
    /// (`.a%b%out.lock` for `a/b/out`), so every run on `out` finds the same lock.
    pub fn beside(out: &Path) -> Result<OutputLock> {
        if out.file_name().is_none() {
            return Err(Error::bad_input(out, "an output needs a file or folder name"));
        }
        let folder = crate::paths::folder_of(out);
        if folder.exists() && !folder.is_dir() {
            return Err(Error::bad_input(folder, "is a file, so the output cannot be written inside it"));
        }
        let (anchor, rest) = crate::paths::nearest_existing_folder(out);
        OutputLock::at(&anchor.join(format!(".{}.lock", rest.join("%"))), out)
    }

    /// Takes the lock file `lock` for the output `out` (named in the message), failing at
    /// once if another process holds it.
    pub fn at(lock: &Path, out: &Path) -> Result<OutputLock> {
        // The holder removes the file when done; one that opened it just before then holds
        // a lock on a file no longer there, so the lock only counts once the path still
        // names the file locked.
        for _ in 0..8 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(lock)
                .map_err(|e| Error::bad_input(out, format!("cannot write there: {e} (creating the lock file {})", lock.display())))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    let who = if holder.is_empty() { "another run".to_string() } else { format!("another run ({holder})") };
                    return Err(Error::bad_input(out, format!("{who} is writing it now (lock {}); wait for it to finish", lock.display())));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(lock, e)),
            }
            if same_file(&file, lock) {
                file.set_len(0).map_err(|e| Error::io(lock, e))?;
                writeln!(file, "process {}", std::process::id()).map_err(|e| Error::io(lock, e))?;
                return Ok(OutputLock { file, path: lock.to_path_buf() });
            }
        }
        Err(Error::bad_input(lock, "the lock file keeps being replaced; is another run starting and stopping?"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still held, so no one can take a lock on a file that then vanishes.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_on_inside_or_around_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let screen = crate::testing::written(dir.path(), "R/ingest/screen.h5ad", b"x");
        let r = dir.path().join("R");
        let input = [NamedPath::new("--input", &screen)];
        for (out, relation) in [(screen.clone(), " is "), (r.clone(), " contains "), (r.join("ingest"), " contains ")] {
            let e = refuse_overlap(NamedPath::new("--out", &out), &input).unwrap_err().to_string();
            assert!(e.contains(relation) && e.contains("--input"), "{e}");
        }
        let model = r.join("model");
        std::fs::create_dir_all(&model).unwrap();
        let e = refuse_overlap(NamedPath::new("--out", &model.join("edges.parquet")), &[NamedPath::new("--model", &model)]).unwrap_err().to_string();
        assert!(e.contains("lies inside the input --model"), "{e}");
        // Through a symlink and a not-yet-existing `..` path the same file is found.
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&r, &link).unwrap();
            assert!(refuse_overlap(NamedPath::new("--out", &link.join("new/../ingest/screen.h5ad")), &input).is_err());
        }
        assert!(refuse_overlap(NamedPath::new("--out", &dir.path().join("elsewhere")), &input).is_ok());
        assert!(refuse_overlap(NamedPath::new("--out", &r.join("ingest2")), &input).is_ok(), "a name prefix is not a folder");
    }

    #[test]
    fn a_second_lock_on_one_output_is_refused_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub/out");
        let first = OutputLock::beside(&out).unwrap();
        assert!(!dir.path().join("sub").exists(), "nothing is created for the lock");
        let e = OutputLock::beside(&out).unwrap_err().to_string();
        assert!(e.contains(&format!("process {}", std::process::id())) && e.contains("is writing it now"), "{e}");
        drop(first);
        assert!(!dir.path().join(".sub%out.lock").exists());
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let _again = OutputLock::beside(&out).unwrap();
        assert!(dir.path().join("sub/.out.lock").exists());
    }

    #[test]
    fn leftovers_of_a_killed_writer_are_cleared_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        std::fs::create_dir_all(out.join("sub")).unwrap();
        std::fs::create_dir_all(dir.path().join(".model.staging-abc")).unwrap();
        std::fs::write(dir.path().join(".model.x1.tmp"), b"x").unwrap();
        std::fs::write(dir.path().join(".model2.staging-x"), b"x").unwrap();
        std::fs::write(dir.path().join("keep"), b"x").unwrap();
        clear_leftovers(&out);
        let mut left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [".model2.staging-x", "keep", "model"]);
    }
}
