//! Where a path lies: the folder of a file, and the nearest folder of it that exists
//! (for temporary files beside an output, and the checks that an output is not an input).

use std::path::{Path, PathBuf};

/// The folder `path` lies in (`.` for a bare name).
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The nearest existing folder that holds `path` (its own folder, or the first ancestor of
/// it that exists), and the names from there down to `path`, `path`'s own name last.
pub fn nearest_existing_folder(path: &Path) -> (PathBuf, Vec<String>) {
    let mut rest = vec![path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())];
    let mut anchor = folder_of(path).to_path_buf();
    while !anchor.is_dir() {
        let Some(name) = anchor.file_name().map(|n| n.to_string_lossy().into_owned()) else { break };
        rest.push(name);
        anchor = folder_of(&anchor).to_path_buf();
    }
    rest.reverse();
    (anchor, rest)
}
