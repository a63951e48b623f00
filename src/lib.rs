//! `closure`: the shared-library closure of ELF programs, resolved exactly as
//! their dynamic loader would resolve it, inside any root filesystem.
//!
//! The pipeline: [`rootfs`] gives root-confined reads of the sysroot →
//! [`elf`] reads what the loader reads from each file → [`resolve`] searches
//! for each `DT_NEEDED` name the way glibc's `ld.so` does → [`graph`] builds
//! the breadth-first load of every root into one dependency graph (missing
//! libraries included, as data) → [`report`] renders it, and [`stage`] copies
//! exactly what it names into a staging root. Nothing here prints to the
//! terminal or executes anything from the sysroot.

pub mod audit;
pub mod cli;
pub mod elf;
pub mod error;
pub mod graph;
pub mod observe;
pub mod oci;
pub mod report;
pub mod resolve;
pub mod rootfs;
pub mod runtime;
pub mod shard;
pub mod stage;
#[doc(hidden)]
pub mod testing;
pub mod util;
pub mod verify;

pub use error::{Error, Result};
