//! The explanations a missing library gets beyond the searched directories:
//! a stale `ld.so.cache` for a directory `ld.so.conf` lists, and where in the
//! sysroot a file of that name does exist.

use crate::support::elfgen::Arch;
use crate::support::fakeroot::{FakeRoot, Layout};

const APP: &str = "/app/bin/app";

fn root_with_lib_at(dir: &str) -> FakeRoot {
    let r = FakeRoot::new();
    let arch = Arch::X86_64;
    r.debian_base(arch, Layout::DEBIAN12);
    r.lib(
        &format!("{dir}/libgreet.so.1"),
        arch,
        "libgreet.so.1",
        &["libc.so.6"],
    );
    r.exe(APP, arch, &["libgreet.so.1", "libc.so.6"], None);
    r
}

#[test]
fn a_directory_ld_so_conf_lists_but_the_cache_lacks_says_run_ldconfig() {
    let r = root_with_lib_at("/opt/greet/lib");
    r.file("/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n");
    r.file("/etc/ld.so.conf.d/greet.conf", "/opt/greet/lib\n");
    // A cache that knows libc but not libgreet: stale.
    r.ld_cache(&[("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6")]);
    let (code, _, stderr) = r.run(&["--root", APP, "--format", "list"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("exists in /opt/greet/lib, which /etc/ld.so.conf lists")
            && stderr.contains("run ldconfig"),
        "{stderr}"
    );
    // The same layout with libgreet in the cache is clean.
    r.ld_cache(&[
        ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
        ("libgreet.so.1", "/opt/greet/lib/libgreet.so.1"),
    ]);
    let (code, _, stderr) = r.run(&["--root", APP, "--format", "list"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn a_missing_library_present_elsewhere_says_where() {
    let r = root_with_lib_at("/srv/vendor/lib");
    let (code, _, stderr) = r.run(&["--root", APP, "--format", "list"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("libgreet.so.1 exists at /srv/vendor/lib/libgreet.so.1"),
        "{stderr}"
    );
    let report = r.json(&["--root", APP]);
    let notes = report["missing"][0]["notes"].to_string();
    assert!(notes.contains("/srv/vendor/lib/libgreet.so.1"), "{notes}");
}

/// A search that finds nothing keeps notes naming its requester; two
/// libraries asking for the same missing name under the same program each
/// get their own ("the DT_RUNPATH of the program does not apply to X"),
/// although a found name's search is shared between them.
#[test]
fn each_requester_of_a_missing_name_gets_its_own_notes() {
    let r = FakeRoot::new();
    r.debian_base(Arch::X86_64, Layout::DEBIAN12);
    r.lib(
        "/app/lib/liba.so.1",
        Arch::X86_64,
        "liba.so.1",
        &["libgone.so.1", "libc.so.6"],
    );
    r.lib(
        "/app/lib/libb.so.1",
        Arch::X86_64,
        "libb.so.1",
        &["libgone.so.1", "libc.so.6"],
    );
    r.exe(
        "/app/bin/prog",
        Arch::X86_64,
        &["liba.so.1", "libb.so.1", "libc.so.6"],
        Some("/app/lib"),
    );
    let (code, v, _) = r.json_run(&["--root", "/app/bin/prog"]);
    assert_eq!(code, 1, "{v:#}");
    let missing = v["missing"].as_array().expect("missing");
    for lib in ["/app/lib/liba.so.1", "/app/lib/libb.so.1"] {
        let m = missing
            .iter()
            .find(|m| m["needed_by"] == lib)
            .unwrap_or_else(|| panic!("no missing entry needed by {lib}: {v:#}"));
        assert_eq!(m["soname"], "libgone.so.1");
        let notes = m["notes"].to_string();
        assert!(
            notes.contains(&format!("does not apply to {lib}")),
            "{lib}: {notes}"
        );
    }
}
