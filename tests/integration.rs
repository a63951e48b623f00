//! The one integration-test crate: every test module is declared here.

mod support;

mod audit;
mod cli;
mod crossarch;
mod elf;
mod oracle;
mod sample;
mod stage;
