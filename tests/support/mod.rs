//! Shared test helpers: synthetic ELF writer, loader oracle harness,
//! sample-root generator.
#![allow(dead_code)]

pub mod chroot;
pub mod elfgen;
pub mod fakeroot;
pub mod glibc;
pub mod oracle;
pub mod rng;
pub mod sample;
pub mod setuid;
