//! The generator of `sample-rootfs/`: a tiny synthetic Debian-like root.
//!
//! Committed so that the README's first command works on a fresh clone, and
//! regenerated from this code only (`cargo xtask sample-rootfs`, which runs
//! the freshness test with `CLOSURE_UPDATE_SAMPLE=1`). The freshness test
//! fails when the committed tree differs from what this code writes.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use closure::resolve::ldcache::{self, CacheEntry};

use super::elfgen::{build, Arch, ElfSpec, Kind};

/// One entry of the sample tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file: bytes and whether it is executable.
    File(Vec<u8>, bool),
    /// A symbolic link and its target.
    Link(String),
}

fn lib(arch: Arch, soname: &str, needed: &[&str], verdefs: &[&str]) -> Vec<u8> {
    build(&ElfSpec {
        arch: Some(arch),
        kind: Kind::Shared,
        soname: Some(soname.into()),
        needed: needed.iter().map(|s| s.to_string()).collect(),
        verdefs: verdefs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

/// The whole sample root, keyed by in-root path (no leading `/`).
pub fn tree() -> BTreeMap<String, Entry> {
    let mut t = BTreeMap::new();
    let mut file = |p: &str, b: Vec<u8>, x: bool| {
        t.insert(p.to_string(), Entry::File(b, x));
    };
    let x86 = Arch::X86_64;
    let ml = "usr/lib/x86_64-linux-gnu";
    let glibc_versions = ["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.34", "GLIBC_2.36"];

    // The C library and its loader (synthetic stand-ins, never run).
    file(
        &format!("{ml}/ld-linux-x86-64.so.2"),
        lib(
            x86,
            "ld-linux-x86-64.so.2",
            &[],
            &["GLIBC_2.2.5", "GLIBC_PRIVATE"],
        ),
        true,
    );
    file(
        &format!("{ml}/libc.so.6"),
        lib(x86, "libc.so.6", &["ld-linux-x86-64.so.2"], &glibc_versions),
        false,
    );
    // zlib with the usual soname symlink chain.
    file(
        &format!("{ml}/libz.so.1.2.13"),
        lib(x86, "libz.so.1", &["libc.so.6"], &["ZLIB_1.2.0"]),
        false,
    );
    file(
        &format!("{ml}/libssl.so.3"),
        lib(
            x86,
            "libssl.so.3",
            &["libcrypto.so.3", "libc.so.6"],
            &["OPENSSL_3.0.0"],
        ),
        false,
    );
    file(
        &format!("{ml}/libcrypto.so.3"),
        lib(
            x86,
            "libcrypto.so.3",
            &["libz.so.1", "libc.so.6"],
            &["OPENSSL_3.0.0"],
        ),
        false,
    );
    // A library only the ld.so.cache can find (/usr/local/lib is not a default dir).
    file(
        "usr/local/lib/libmetrics.so.2",
        lib(x86, "libmetrics.so.2", &["libc.so.6"], &[]),
        false,
    );
    // The application: RUNPATH $ORIGIN/../lib, a soname chain of its own.
    file(
        "app/lib/libapp.so.1.0.0",
        build(&ElfSpec {
            arch: Some(x86),
            soname: Some("libapp.so.1".into()),
            needed: vec![
                "libapphelper.so.1".into(),
                "libz.so.1".into(),
                "libmetrics.so.2".into(),
                "libc.so.6".into(),
            ],
            runpath: Some("$ORIGIN".into()),
            ..Default::default()
        }),
        false,
    );
    file(
        "app/lib/libapphelper.so.1",
        lib(x86, "libapphelper.so.1", &["libc.so.6"], &[]),
        false,
    );
    let server = |needed: Vec<String>, verneeds| {
        build(&ElfSpec {
            arch: Some(x86),
            kind: Kind::Exec,
            needed,
            runpath: Some("$ORIGIN/../lib".into()),
            verneeds,
            ..Default::default()
        })
    };
    file(
        "app/bin/server",
        server(
            vec![
                "libapp.so.1".into(),
                "libssl.so.3".into(),
                "libc.so.6".into(),
            ],
            vec![(
                "libc.so.6".to_string(),
                vec![("GLIBC_2.34".to_string(), false)],
            )],
        ),
        true,
    );
    // A broken program for the debugging examples: needs a library that
    // is nowhere, and a glibc newer than the root has.
    file(
        "app/bin/legacy",
        server(
            vec!["libgone.so.3".into(), "libc.so.6".into()],
            vec![(
                "libc.so.6".to_string(),
                vec![("GLIBC_2.38".to_string(), false)],
            )],
        ),
        true,
    );
    // A second architecture in the same root (Debian multiarch).
    let arm = Arch::Aarch64;
    let aml = "usr/lib/aarch64-linux-gnu";
    file(
        &format!("{aml}/ld-linux-aarch64.so.1"),
        lib(arm, "ld-linux-aarch64.so.1", &[], &["GLIBC_2.17"]),
        true,
    );
    file(
        &format!("{aml}/libc.so.6"),
        lib(
            arm,
            "libc.so.6",
            &["ld-linux-aarch64.so.1"],
            &["GLIBC_2.17"],
        ),
        false,
    );
    file(
        "app/bin/server-arm64",
        build(&ElfSpec {
            arch: Some(arm),
            kind: Kind::Exec,
            needed: vec!["libc.so.6".into()],
            ..Default::default()
        }),
        true,
    );
    // A script entry point.
    file(
        "app/bin/start.sh",
        b"#!/bin/sh\nexec /app/bin/server \"$@\"\n".to_vec(),
        true,
    );
    file(
        "usr/bin/dash",
        build(&ElfSpec {
            arch: Some(x86),
            kind: Kind::Exec,
            needed: vec!["libc.so.6".into()],
            ..Default::default()
        }),
        true,
    );
    // Configuration a scratch image may want.
    file(
        "etc/ld.so.conf",
        b"include /etc/ld.so.conf.d/*.conf\n".to_vec(),
        false,
    );
    file(
        "etc/ld.so.conf.d/libc.conf",
        b"# libc default configuration\n/usr/local/lib\n".to_vec(),
        false,
    );
    file(
        "etc/ld.so.conf.d/x86_64-linux-gnu.conf",
        b"# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n".to_vec(),
        false,
    );
    file(
        "etc/nsswitch.conf",
        b"passwd: files\ngroup: files\nhosts: files dns\n".to_vec(),
        false,
    );
    file(
        "etc/ssl/certs/ca-certificates.crt",
        b"# sample CA bundle (placeholder, not a real certificate)\n".to_vec(),
        false,
    );

    // The cache, as ldconfig would write it for the directories above.
    let flags = ldcache::flags_for(62, true, 0);
    let entries: Vec<CacheEntry> = [
        (
            "ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        ),
        ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
        ("libcrypto.so.3", "/lib/x86_64-linux-gnu/libcrypto.so.3"),
        ("libmetrics.so.2", "/usr/local/lib/libmetrics.so.2"),
        ("libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so.3"),
        ("libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"),
    ]
    .iter()
    .map(|(k, v)| CacheEntry {
        flags,
        key: k.as_bytes().to_vec(),
        value: v.as_bytes().to_vec(),
        hwcap: 0,
    })
    .collect();
    file(
        "etc/ld.so.cache",
        ldcache::write_new(&entries, false, Some(b"closure sample-rootfs")),
        false,
    );

    let mut link = |p: &str, target: &str| {
        t.insert(p.to_string(), Entry::Link(target.to_string()));
    };
    link("lib", "usr/lib");
    link("lib64", "usr/lib64");
    link("bin", "usr/bin");
    link(
        "usr/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    );
    link(
        "usr/lib/ld-linux-aarch64.so.1",
        "aarch64-linux-gnu/ld-linux-aarch64.so.1",
    );
    link(&format!("{ml}/libz.so.1"), "libz.so.1.2.13");
    link("app/lib/libapp.so.1", "libapp.so.1.0.0");
    link("usr/bin/sh", "dash");
    t
}

/// Writes the tree under `dir` (which must be empty or absent).
pub fn write(dir: &Path) {
    for (p, e) in tree() {
        let full = dir.join(&p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        match e {
            Entry::File(bytes, exec) => {
                std::fs::write(&full, bytes).unwrap();
                let mode = if exec { 0o755 } else { 0o644 };
                std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            Entry::Link(target) => std::os::unix::fs::symlink(target, &full).unwrap(),
        }
    }
}

/// Reads a tree from disk in the same shape (directories implied).
pub fn read(dir: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let e = e.unwrap();
        let rel: PathBuf = e.path().strip_prefix(dir).unwrap().to_path_buf();
        let ft = e.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(e.path()).unwrap();
            out.insert(
                rel.display().to_string(),
                Entry::Link(target.display().to_string()),
            );
        } else if ft.is_file() {
            let mode = e.metadata().unwrap().permissions().mode();
            out.insert(
                rel.display().to_string(),
                Entry::File(std::fs::read(e.path()).unwrap(), mode & 0o111 != 0),
            );
        }
    }
    out
}
