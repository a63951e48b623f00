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

/// Builds `out` (its directory made first) from C file `src` with gcc and
/// `args`; panics with gcc's message when it fails.
pub fn gcc(out: &std::path::Path, src: &std::path::Path, args: &[&str]) {
    std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
    let res = std::process::Command::new("gcc")
        .arg("-o")
        .arg(out)
        .arg(src)
        .args(args)
        .output()
        .expect("spawn gcc");
    assert!(
        res.status.success(),
        "gcc {}: {}",
        out.display(),
        String::from_utf8_lossy(&res.stderr)
    );
}
