//! Helpers of this crate's unit tests.

use std::path::{Path, PathBuf};

/// Writes `bytes` to `dir/relative`, making its folders; returns the file's path.
pub fn written(dir: &Path, relative: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().expect("a file in a folder")).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}
