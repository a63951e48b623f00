//! Project tasks, run as `cargo xtask <task>`. Dependency-free on purpose:
//! it only sequences cargo and the tools the tests already use.
//!
//! Tasks:
//! - `ci`: `cargo fmt --check`, `cargo clippy --all-targets -D warnings`, `cargo test --workspace`.
//! - `sample-rootfs`: regenerate `sample-rootfs/` from `tests/support/sample.rs`.

use std::process::{Command, ExitCode};

fn cargo(args: &[&str], env: &[(&str, &str)]) -> bool {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    eprintln!("xtask: cargo {}", args.join(" "));
    matches!(c.status(), Ok(s) if s.success())
}

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let ok = match task.as_str() {
        "ci" => {
            cargo(&["fmt", "--all", "--", "--check"], &[])
                && cargo(
                    &[
                        "clippy",
                        "--workspace",
                        "--all-targets",
                        "--",
                        "-D",
                        "warnings",
                    ],
                    &[],
                )
                && cargo(&["test", "--workspace"], &[])
        }
        "sample-rootfs" => cargo(
            &["test", "--test", "integration", "sample_rootfs_is_fresh"],
            &[("CLOSURE_UPDATE_SAMPLE", "1")],
        ),
        _ => {
            eprintln!("usage: cargo xtask <ci|sample-rootfs>");
            false
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
