//! The one integration-test crate: every test module is declared here.

mod support;

mod audit;
mod cli;
mod crossarch;
mod elf;
mod everyday;
mod foreign;
mod hardening;
mod hwcaps;
mod oci;
mod oracle;
mod report;
mod runtime;
mod sample;
mod stage;
mod symbols;
