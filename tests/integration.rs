//! The one integration-test crate: every test module is declared here.

mod support;

mod oracle;
mod sample;
