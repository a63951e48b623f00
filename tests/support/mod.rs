//! Shared test helpers: synthetic ELF writer, loader oracle harness.
#![allow(dead_code)]

pub mod elfgen;
pub mod oracle;
