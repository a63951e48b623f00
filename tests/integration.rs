//! The one integration-test crate: every test module is declared here.

mod support;

mod audit;
mod cli;
mod crossarch;
mod disk;
mod dlflags;
mod dlopen_layouts;
mod elf;
mod everyday;
mod explain;
mod foreign;
mod hardening;
mod hwcaps;
mod layouts;
mod musl_symbols;
mod oci;
mod oracle;
mod plugins;
mod progress;
mod report;
mod rtld_audit;
mod runtime;
mod sample;
mod secure;
mod stage;
mod symbols;
mod union;
