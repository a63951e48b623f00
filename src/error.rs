//! Typed errors of the library.
//!
//! Owns the one `Error` type that library functions return. Every variant
//! that comes from file access carries the path it concerns (the in-root
//! path where there is one), so a message can always be acted on. Problems in
//! the *closure* (a missing library, an absent symbol version) are never
//! errors: they are data in the graph (see `graph`). Only inputs that cannot
//! be read at all end up here.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can make an operation of this library fail outright.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sysroot given is missing or is not a directory.
    #[error("sysroot {path}: {reason}")]
    Sysroot {
        /// The host path given as the sysroot.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A path inside the sysroot could not be looked up.
    #[error("{path}: {source}")]
    Lookup {
        /// The in-root path that was looked up.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: crate::rootfs::LookupError,
    },
    /// An I/O operation failed on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned (in-root for reads, host path for writes).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A root given on the command line is not something that can be traced.
    #[error("{path}: {reason}")]
    BadRoot {
        /// The in-root path of the root.
        path: PathBuf,
        /// Why it cannot be traced.
        reason: String,
    },
    /// An invalid option value.
    #[error("{0}")]
    Usage(String),
    /// The staging output cannot be written as asked.
    #[error("{path}: {reason}")]
    Output {
        /// The host path of the output.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
