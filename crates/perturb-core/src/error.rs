//! One error type for every stage. Each variant's message names the file (or option) at
//! fault, so that the command line can print it as a single line.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused a read or write.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists and was read, but its content is not what the stage expects.
    #[error("{}: {message}", path.display())]
    BadInput { path: PathBuf, message: String },
    /// A command-line option or parameter is out of range or inconsistent.
    #[error("invalid option {option}: {message}")]
    BadOption { option: String, message: String },
    /// Anything else the stage cannot go on from (the message says what).
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }

    pub fn bad_input(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::BadInput { path: path.as_ref().to_path_buf(), message: message.into() }
    }

    pub fn bad_option(option: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadOption { option: option.into(), message: message.into() }
    }
}
