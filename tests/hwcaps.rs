//! glibc-hwcaps variants: recorded beside their baseline library, staged,
//! and traced for their own dependencies (a variant replaces the baseline
//! on a capable CPU, so what only it needs must be staged too).

use crate::support::elfgen::Arch;
use crate::support::fakeroot::{FakeRoot, Layout};

const APP: &str = "/app/bin/app";

fn root() -> FakeRoot {
    let r = FakeRoot::new();
    let arch = Arch::X86_64;
    r.debian_base(arch, Layout::DEBIAN12);
    let ml = "/usr/lib/x86_64-linux-gnu";
    r.lib(
        &format!("{ml}/libfast.so.1"),
        arch,
        "libfast.so.1",
        &["libc.so.6"],
    );
    // The v3 build needs a helper the baseline does not.
    r.lib(
        &format!("{ml}/glibc-hwcaps/x86-64-v3/libfast.so.1"),
        arch,
        "libfast.so.1",
        &["libvector.so.2", "libc.so.6"],
    );
    r.lib(
        &format!("{ml}/libvector.so.2"),
        arch,
        "libvector.so.2",
        &["libc.so.6"],
    );
    r.exe(APP, arch, &["libfast.so.1", "libc.so.6"], None);
    r
}

#[test]
fn baseline_is_reported_and_variants_recorded() {
    let r = root();
    let report = r.json(&["--root", APP]);
    let objects = report["objects"].as_array().unwrap();
    let fast = objects
        .iter()
        .find(|o| o["path"] == "/lib/x86_64-linux-gnu/libfast.so.1")
        .expect("baseline libfast is the reported path");
    assert_eq!(
        fast["hwcaps_variants"],
        serde_json::json!(["/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfast.so.1"])
    );
}

#[test]
fn a_variant_and_what_only_it_needs_are_staged() {
    let r = root();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("staged");
    let (code, _, stderr) = r.run(&["--root", APP, "--out", dest.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let ml = dest.join("usr/lib/x86_64-linux-gnu");
    assert!(ml.join("libfast.so.1").is_file());
    assert!(ml.join("glibc-hwcaps/x86-64-v3/libfast.so.1").is_file());
    assert!(
        ml.join("libvector.so.2").is_file(),
        "the v3 variant's own dependency must be staged"
    );
}

#[test]
fn an_active_level_models_that_cpu_exactly() {
    let r = root();
    let report = r.json(&["--root", APP, "--hwcaps", "x86-64-v3,x86-64-v2"]);
    let paths: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfast.so.1"));
    assert!(paths.contains(&"/lib/x86_64-linux-gnu/libvector.so.2"));
    assert!(!paths.contains(&"/lib/x86_64-linux-gnu/libfast.so.1"));
}
