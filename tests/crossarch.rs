//! Foreign-architecture sysroots: Debian multiarch layouts for every non-x86_64
//! architecture elfgen writes, resolved by the binary exactly as that
//! architecture's glibc loader would resolve them: wrong-machine candidates
//! skipped, ARM float-ABI mismatches fatal, a big-endian `ld.so.cache` for
//! s390x, and two architectures side by side in one sysroot.

use closure::resolve::ldcache::{self, CacheEntry};
use serde_json::Value;

use crate::support::elfgen::{Arch, ElfSpec, Kind};
use crate::support::fakeroot::{found_via, missing_names, object, pairs, FakeRoot, Layout};

/// The non-x86_64 architectures, each with the layout its sysroot uses
/// (varied so that both merged and split /usr, and both real-file and
/// symlinked interpreters, are covered).
fn foreign() -> Vec<(Arch, Layout)> {
    let l = |merged_usr, interp_symlink| Layout {
        merged_usr,
        interp_symlink,
    };
    vec![
        (Arch::Aarch64, l(true, true)),
        (Arch::S390x, l(true, false)),
        (Arch::I386, l(false, true)),
        (Arch::Armhf, l(true, true)),
        (Arch::Riscv64, l(false, false)),
        (Arch::Ppc64le, l(true, true)),
        (Arch::Mips64el, l(false, true)),
        (Arch::Armel, l(true, false)),
    ]
}

const APP: &str = "/app/bin/app";

/// The standard scenario: app (RUNPATH `$ORIGIN/../lib`) needs libapp.so.1
/// (in /app/lib) and libc.so.6; libapp.so.1 needs libc.so.6 and
/// libextra.so.1, which lives only in /usr/lib/<triplet>.
fn scenario(arch: Arch, layout: Layout) -> FakeRoot {
    let r = FakeRoot::new();
    r.debian_base(arch, layout);
    let t = arch.triplet();
    r.lib(
        &format!("/usr/lib/{t}/libextra.so.1"),
        arch,
        "libextra.so.1",
        &["libc.so.6"],
    );
    r.lib(
        "/app/lib/libapp.so.1",
        arch,
        "libapp.so.1",
        &["libc.so.6", "libextra.so.1"],
    );
    r.exe(
        APP,
        arch,
        &["libapp.so.1", "libc.so.6"],
        Some("$ORIGIN/../lib"),
    );
    r
}

/// What the scenario must resolve to: (path, found_via).
fn expected(arch: Arch, layout: Layout) -> Vec<(String, String)> {
    let t = arch.triplet();
    // libextra lives in /usr/lib/<t>; with merged /usr the first default
    // directory /lib/<t> already reaches it, and that is the path opened.
    let extra = if layout.merged_usr {
        format!("/lib/{t}/libextra.so.1")
    } else {
        format!("/usr/lib/{t}/libextra.so.1")
    };
    pairs(&[
        (APP, "root"),
        (arch.interp(), "interpreter"),
        ("/app/bin/../lib/libapp.so.1", "runpath"),
        (&format!("/lib/{t}/libc.so.6"), "default"),
        (&extra, "default"),
    ])
}

fn realpath_of(report: &Value, path: &str) -> String {
    object(report, path)
        .and_then(|o| o["realpath"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_foreign_arch_resolves_a_debian_multiarch_root() {
    let mut failures = Vec::new();
    for (arch, layout) in foreign() {
        let r = scenario(arch, layout);
        let (code, report, err) = r.json_run(&["--root", APP]);
        let got = found_via(&report);
        let want = expected(arch, layout);
        if code != 0 || got != want || !err.is_empty() {
            failures.push(format!(
                "{} ({layout:?}): exit {code}\n  got  {got:?}\n  want {want:?}\n  stderr: {err}",
                arch.name()
            ));
            continue;
        }
        // The interpreter is reported at its PT_INTERP path; its real file
        // is where the layout put it.
        let t = arch.triplet();
        let base = arch.interp().rsplit('/').next().unwrap();
        let interp_real = match (layout.interp_symlink, layout.merged_usr) {
            (true, true) => format!("/usr/lib/{t}/{base}"),
            (true, false) => format!("/lib/{t}/{base}"),
            (false, true) => format!("/usr{}", arch.interp()),
            (false, false) => arch.interp().to_string(),
        };
        assert_eq!(
            realpath_of(&report, arch.interp()),
            interp_real,
            "{}",
            arch.name()
        );
        let libc_real = if layout.merged_usr {
            format!("/usr/lib/{t}/libc.so.6")
        } else {
            format!("/lib/{t}/libc.so.6")
        };
        assert_eq!(
            realpath_of(&report, &format!("/lib/{t}/libc.so.6")),
            libc_real
        );
        assert_eq!(
            realpath_of(&report, "/app/bin/../lib/libapp.so.1"),
            "/app/lib/libapp.so.1"
        );
        // needed_by: libc is needed by the app and by libapp.
        let libc = object(&report, &format!("/lib/{t}/libc.so.6")).unwrap();
        let by: Vec<&str> = libc["needed_by"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(by.contains(&APP), "{}: libc needed_by {by:?}", arch.name());
        assert!(
            by.contains(&"/app/bin/../lib/libapp.so.1"),
            "{}: libc needed_by {by:?}",
            arch.name()
        );
        assert!(report["missing"].as_array().unwrap().is_empty());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn list_and_ldd_agree_for_foreign_arches() {
    for (arch, layout) in foreign() {
        let r = scenario(arch, layout);
        let (code, out, err) = r.run(&["--root", APP, "--format", "list"]);
        assert_eq!(code, 0, "{}: {err}", arch.name());
        let want: Vec<String> = expected(arch, layout).into_iter().map(|(p, _)| p).collect();
        let mut sorted = want.clone();
        sorted.sort();
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got, sorted, "{}", arch.name());
        let (code, out, _) = r.run(&["--root", APP, "--format", "ldd"]);
        assert_eq!(code, 0);
        let t = arch.triplet();
        assert!(
            out.contains(&format!("libc.so.6 => /lib/{t}/libc.so.6")),
            "{}: ldd output:\n{out}",
            arch.name()
        );
        assert!(
            out.contains("libapp.so.1 => /app/bin/../lib/libapp.so.1"),
            "{out}"
        );
    }
}

/// A decoy that the target's loader *skips* (never fatal): wrong class or
/// wrong machine with the same byte order.
fn skipped_decoy(arch: Arch) -> ElfSpec {
    let base = ElfSpec {
        kind: Kind::Shared,
        soname: Some("libapp.so.1".into()),
        needed: vec!["libdecoy-never.so.9".into()],
        ..Default::default()
    };
    match arch {
        // The only big-endian arch: another 64-bit BE machine number.
        Arch::S390x => ElfSpec {
            arch: Some(Arch::S390x),
            machine_override: Some(21), // EM_PPC64
            ..base
        },
        _ => ElfSpec {
            arch: Some(Arch::X86_64),
            ..base
        },
    }
}

#[test]
fn wrong_machine_candidate_earlier_in_runpath_is_skipped() {
    for (arch, layout) in foreign() {
        let r = scenario(arch, layout);
        r.elf("/app/wrong/libapp.so.1", &skipped_decoy(arch));
        // Same app, but RUNPATH lists the decoy directory first.
        r.exe(
            APP,
            arch,
            &["libapp.so.1", "libc.so.6"],
            Some("$ORIGIN/../wrong:$ORIGIN/../lib"),
        );
        let (code, report, err) = r.json_run(&["--root", APP]);
        assert_eq!(code, 0, "{}: {err}", arch.name());
        assert_eq!(
            found_via(&report),
            expected(arch, layout),
            "{}",
            arch.name()
        );
        assert!(err.is_empty(), "{}: stderr {err}", arch.name());
    }
}

#[test]
fn wrong_machine_only_candidate_is_missing_and_explained() {
    let arch = Arch::Aarch64;
    let r = FakeRoot::new();
    r.debian_base(arch, Layout::DEBIAN12);
    r.elf("/app/lib/libapp.so.1", &skipped_decoy(arch));
    r.exe(APP, arch, &["libapp.so.1"], Some("$ORIGIN/../lib"));
    let (code, report, err) = r.json_run(&["--root", APP]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(missing_names(&report), vec!["libapp.so.1"]);
    let tried = report["missing"][0]["tried"].to_string();
    assert!(tried.contains("/app/bin/../lib/libapp.so.1"), "{tried}");
    assert!(tried.contains("skipped"), "{tried}");
    assert!(
        err.contains("libapp.so.1") && err.contains("/app/bin/app"),
        "{err}"
    );
    assert!(
        err.contains("wrong machine") || err.contains("x86-64"),
        "stderr should say why: {err}"
    );
}

#[test]
fn little_endian_candidate_is_fatal_for_s390x() {
    // glibc's open_verify: EI_DATA other than the loader's is fatal, not a skip.
    let arch = Arch::S390x;
    let r = scenario(arch, Layout::DEBIAN12);
    r.elf(
        "/app/wrong/libapp.so.1",
        &ElfSpec {
            arch: Some(Arch::X86_64),
            soname: Some("libapp.so.1".into()),
            ..Default::default()
        },
    );
    r.exe(
        APP,
        arch,
        &["libapp.so.1", "libc.so.6"],
        Some("$ORIGIN/../wrong:$ORIGIN/../lib"),
    );
    let (code, report, err) = r.json_run(&["--root", APP]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(missing_names(&report), vec!["libapp.so.1"]);
    let m = &report["missing"][0];
    assert_eq!(m["fatal"]["path"], "/app/bin/../wrong/libapp.so.1", "{m}");
    assert!(object(&report, "/app/bin/../lib/libapp.so.1").is_none());
    assert!(err.contains("libapp.so.1"), "{err}");
}

#[test]
fn armhf_program_rejects_soft_float_library_fatally() {
    let arch = Arch::Armhf;
    let r = FakeRoot::new();
    r.debian_base(arch, Layout::DEBIAN12);
    // A soft-float (armel) build first in RUNPATH, a good hard-float one later:
    // the loader aborts on the first, it never reaches the second.
    r.lib(
        "/app/lib/libapp.so.1",
        Arch::Armel,
        "libapp.so.1",
        &["libc.so.6"],
    );
    r.lib(
        "/app/lib2/libapp.so.1",
        Arch::Armhf,
        "libapp.so.1",
        &["libc.so.6"],
    );
    r.exe(
        APP,
        arch,
        &["libapp.so.1", "libc.so.6"],
        Some("$ORIGIN/../lib:$ORIGIN/../lib2"),
    );
    let (code, report, err) = r.json_run(&["--root", APP]);
    assert_eq!(code, 1, "stderr: {err}");
    assert_eq!(missing_names(&report), vec!["libapp.so.1"]);
    let m = &report["missing"][0];
    assert_eq!(m["fatal"]["path"], "/app/bin/../lib/libapp.so.1", "{m}");
    assert!(
        object(&report, "/app/bin/../lib2/libapp.so.1").is_none(),
        "the loader never gets past the soft-float file"
    );
    assert!(err.contains("libapp.so.1"), "{err}");
    assert!(err.contains("/app/bin/../lib/libapp.so.1"), "{err}");
    assert!(
        err.contains("float"),
        "the reason should mention the float ABI: {err}"
    );
}

#[test]
fn armel_program_rejects_hard_float_library_fatally() {
    let arch = Arch::Armel;
    let r = FakeRoot::new();
    r.debian_base(arch, Layout::DEBIAN12);
    r.lib(
        "/app/lib/libapp.so.1",
        Arch::Armhf,
        "libapp.so.1",
        &["libc.so.6"],
    );
    r.exe(
        APP,
        arch,
        &["libapp.so.1", "libc.so.6"],
        Some("$ORIGIN/../lib"),
    );
    let (code, report, err) = r.json_run(&["--root", APP]);
    assert_eq!(code, 1, "stderr: {err}");
    assert_eq!(missing_names(&report), vec!["libapp.so.1"]);
    assert_eq!(
        report["missing"][0]["fatal"]["path"],
        "/app/bin/../lib/libapp.so.1"
    );
}

#[test]
fn arm_library_without_float_flags_is_accepted_by_armhf() {
    // Objects with neither EF_ARM_ABI_FLOAT_* flag are accepted.
    let arch = Arch::Armhf;
    let r = FakeRoot::new();
    r.debian_base(arch, Layout::DEBIAN12);
    r.elf(
        "/app/lib/libapp.so.1",
        &ElfSpec {
            arch: Some(Arch::Armhf),
            soname: Some("libapp.so.1".into()),
            e_flags_override: Some(0x0500_0000),
            ..Default::default()
        },
    );
    r.exe(APP, arch, &["libapp.so.1"], Some("$ORIGIN/../lib"));
    let (code, report, err) = r.json_run(&["--root", APP]);
    assert_eq!(code, 0, "{err}");
    assert!(object(&report, "/app/bin/../lib/libapp.so.1").is_some());
}

#[test]
fn s390x_uses_a_big_endian_ld_so_cache() {
    let arch = Arch::S390x;
    let t = arch.triplet();
    let r = FakeRoot::new();
    r.debian_base(arch, Layout::DEBIAN12);
    r.lib("/opt/lib/libopt.so.1", arch, "libopt.so.1", &["libc.so.6"]);
    r.exe(APP, arch, &["libopt.so.1"], None);
    let libc = format!("/lib/{t}/libc.so.6");
    r.ld_cache(&[
        ("libopt.so.1", "/opt/lib/libopt.so.1"),
        ("libc.so.6", &libc),
    ]);
    // The cache really is big-endian (flags byte 3) with s390x flags 0x0403.
    let bytes = r.read("/etc/ld.so.cache");
    assert_eq!(&bytes[..20], b"glibc-ld.so.cache1.1");
    assert_eq!(bytes[28] & 3, 3, "endianness flag of a big-endian cache");
    let parsed = ldcache::parse(&bytes, true).expect("decodes as big-endian");
    assert!(
        parsed.entries.iter().all(|e| e.flags == 0x0403),
        "{:?}",
        parsed.entries
    );

    let (code, report, err) = r.json_run(&["--root", APP]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        found_via(&report),
        pairs(&[
            (APP, "root"),
            (arch.interp(), "interpreter"),
            ("/opt/lib/libopt.so.1", "ld.so.cache"),
            (&libc, "ld.so.cache"),
        ])
    );
    assert!(err.is_empty(), "{err}");
}

#[test]
fn s390x_ignores_a_little_endian_cache() {
    // A cache whose endianness flag says little-endian is not used by a
    // big-endian loader: /opt/lib is then unreachable.
    let arch = Arch::S390x;
    let r = FakeRoot::new();
    r.debian_base(arch, Layout::DEBIAN12);
    r.lib("/opt/lib/libopt.so.1", arch, "libopt.so.1", &["libc.so.6"]);
    r.exe(APP, arch, &["libopt.so.1"], None);
    r.ld_cache_endian(&[("libopt.so.1", "/opt/lib/libopt.so.1")], false);
    let (code, report, err) = r.json_run(&["--root", APP]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(missing_names(&report), vec!["libopt.so.1"]);
}

#[test]
fn cache_entries_of_another_arch_are_ignored() {
    // An aarch64 program; the cache names libopt.so.1 only with x86-64 flags.
    let arch = Arch::Aarch64;
    let r = FakeRoot::new();
    r.debian_base(arch, Layout::DEBIAN12);
    r.lib("/opt/lib/libopt.so.1", arch, "libopt.so.1", &[]);
    r.exe(APP, arch, &["libopt.so.1"], None);
    r.ld_cache_raw(
        &[CacheEntry {
            flags: 0x0303,
            key: b"libopt.so.1".to_vec(),
            value: b"/opt/lib/libopt.so.1".to_vec(),
            hwcap: 0,
        }],
        false,
    );
    let (code, report, _) = r.json_run(&["--root", APP]);
    assert_eq!(code, 1);
    assert_eq!(missing_names(&report), vec!["libopt.so.1"]);
}

#[test]
fn two_arches_in_one_sysroot_each_resolve_their_own_libc() {
    for with_cache in [false, true] {
        let r = FakeRoot::new();
        r.debian_base(Arch::X86_64, Layout::DEBIAN12);
        r.debian_base(Arch::Aarch64, Layout::DEBIAN12);
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let t = arch.triplet();
            r.lib(
                &format!("/usr/lib/{t}/libfoo.so.1"),
                arch,
                "libfoo.so.1",
                &["libc.so.6"],
            );
        }
        r.exe(
            "/app/bin/amd64",
            Arch::X86_64,
            &["libfoo.so.1", "libc.so.6"],
            None,
        );
        r.exe(
            "/app/bin/arm64",
            Arch::Aarch64,
            &["libfoo.so.1", "libc.so.6"],
            None,
        );
        if with_cache {
            // Both arches in one cache, as a multiarch ldconfig writes it.
            r.ld_cache(&[
                ("libfoo.so.1", "/lib/aarch64-linux-gnu/libfoo.so.1"),
                ("libfoo.so.1", "/lib/x86_64-linux-gnu/libfoo.so.1"),
                ("libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6"),
                ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
            ]);
        }
        let via = if with_cache { "ld.so.cache" } else { "default" };
        let (code, report, err) =
            r.json_run(&["--root", "/app/bin/amd64", "--root", "/app/bin/arm64"]);
        assert_eq!(code, 0, "cache={with_cache}: {err}");
        assert_eq!(
            found_via(&report),
            pairs(&[
                ("/app/bin/amd64", "root"),
                ("/app/bin/arm64", "root"),
                ("/lib64/ld-linux-x86-64.so.2", "interpreter"),
                ("/lib/ld-linux-aarch64.so.1", "interpreter"),
                ("/lib/x86_64-linux-gnu/libfoo.so.1", via),
                ("/lib/x86_64-linux-gnu/libc.so.6", via),
                ("/lib/aarch64-linux-gnu/libfoo.so.1", via),
                ("/lib/aarch64-linux-gnu/libc.so.6", via),
            ]),
            "cache={with_cache}"
        );
        // Each object belongs to exactly its own root.
        let roots_of = |p: &str| -> Vec<String> {
            object(&report, p).unwrap()["roots"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            roots_of("/lib/x86_64-linux-gnu/libc.so.6"),
            vec!["/app/bin/amd64"]
        );
        assert_eq!(
            roots_of("/lib/aarch64-linux-gnu/libc.so.6"),
            vec!["/app/bin/arm64"]
        );
        assert_eq!(
            roots_of("/lib/aarch64-linux-gnu/libfoo.so.1"),
            vec!["/app/bin/arm64"]
        );
        assert!(err.is_empty(), "{err}");
    }
}

#[test]
fn foreign_library_given_as_root_uses_its_arch_defaults() {
    // `--root` a library: resolved with the library's own arch, like
    // `ld.so --list lib.so`.
    let arch = Arch::Riscv64;
    let t = arch.triplet();
    let r = FakeRoot::new();
    r.debian_base(arch, Layout::DEBIAN12);
    r.lib(
        &format!("/usr/lib/{t}/libextra.so.1"),
        arch,
        "libextra.so.1",
        &["libc.so.6"],
    );
    let (code, report, err) = r.json_run(&["--root", &format!("/usr/lib/{t}/libextra.so.1")]);
    assert_eq!(code, 0, "{err}");
    let vias = found_via(&report);
    assert!(
        vias.contains(&(format!("/lib/{t}/libc.so.6"), "default".to_string())),
        "{vias:?}"
    );
}

#[test]
fn every_foreign_arch_uses_its_own_ld_so_cache_entries() {
    // A library in /opt/lib, reachable only through the cache, written in
    // the target's byte order with the flags ldconfig derives from the file.
    for (arch, layout) in foreign() {
        let r = FakeRoot::new();
        r.debian_base(arch, layout);
        r.lib("/opt/lib/libopt.so.1", arch, "libopt.so.1", &["libc.so.6"]);
        r.exe(APP, arch, &["libopt.so.1"], None);
        r.ld_cache(&[("libopt.so.1", "/opt/lib/libopt.so.1")]);
        let (code, report, err) = r.json_run(&["--root", APP]);
        assert_eq!(code, 0, "{}: {err}", arch.name());
        let vias = found_via(&report);
        assert!(
            vias.contains(&("/opt/lib/libopt.so.1".into(), "ld.so.cache".into())),
            "{}: {vias:?}",
            arch.name()
        );
    }
}

#[test]
fn armhf_accepts_generic_cache_flags_but_not_soft_float_ones() {
    let arch = Arch::Armhf;
    for (flags, usable) in [(0x0903, true), (0x0003, true), (0x0b03, false)] {
        let r = FakeRoot::new();
        r.debian_base(arch, Layout::DEBIAN12);
        r.lib("/opt/lib/libopt.so.1", arch, "libopt.so.1", &[]);
        r.exe(APP, arch, &["libopt.so.1"], None);
        r.ld_cache_raw(
            &[CacheEntry {
                flags,
                key: b"libopt.so.1".to_vec(),
                value: b"/opt/lib/libopt.so.1".to_vec(),
                hwcap: 0,
            }],
            false,
        );
        let (code, report, err) = r.json_run(&["--root", APP]);
        if usable {
            assert_eq!(code, 0, "flags {flags:#x}: {err}");
            assert!(object(&report, "/opt/lib/libopt.so.1").is_some());
        } else {
            assert_eq!(
                code, 1,
                "flags {flags:#x}: a soft-float entry must be ignored"
            );
            assert_eq!(missing_names(&report), vec!["libopt.so.1"]);
        }
    }
}

#[test]
fn abi_flag_mismatches_are_skipped_per_arch() {
    // (program arch, decoy e_flags): each decoy has the right machine and
    // class but an ABI the target loader skips (elf_machine_matches_host).
    let cases: &[(Arch, u32, &str)] = &[
        (Arch::Ppc64le, 1, "ELFv1 library for an ELFv2 loader"),
        (Arch::Riscv64, 0x1, "soft-float RISC-V library for lp64d"),
        (
            Arch::Mips64el,
            Arch::Mips64el.e_flags() | 0x400,
            "2008-NaN library for legacy NaN",
        ),
    ];
    for &(arch, flags, what) in cases {
        let r = scenario(arch, Layout::DEBIAN12);
        r.elf(
            "/app/wrong/libapp.so.1",
            &ElfSpec {
                arch: Some(arch),
                soname: Some("libapp.so.1".into()),
                needed: vec!["libdecoy-never.so.9".into()],
                e_flags_override: Some(flags),
                ..Default::default()
            },
        );
        r.exe(
            APP,
            arch,
            &["libapp.so.1", "libc.so.6"],
            Some("$ORIGIN/../wrong:$ORIGIN/../lib"),
        );
        let (code, report, err) = r.json_run(&["--root", APP]);
        assert_eq!(code, 0, "{what}: {err}");
        assert_eq!(
            found_via(&report),
            expected(arch, Layout::DEBIAN12),
            "{what}"
        );
    }
}

#[test]
fn lib_token_expands_to_the_multiarch_dir_of_each_arch() {
    for (arch, layout) in foreign() {
        let t = arch.triplet();
        let r = FakeRoot::new();
        r.debian_base(arch, layout);
        r.lib(
            &format!("/opt/zz/lib/{t}/libtok.so.1"),
            arch,
            "libtok.so.1",
            &[],
        );
        r.exe(APP, arch, &["libtok.so.1"], Some("/opt/zz/$LIB"));
        let (code, report, err) = r.json_run(&["--root", APP]);
        assert_eq!(code, 0, "{}: {err}", arch.name());
        let want = format!("/opt/zz/lib/{t}/libtok.so.1");
        assert_eq!(
            object(&report, &want).map(|o| o["found_via"].clone()),
            Some(Value::from("runpath")),
            "{}: {:?}",
            arch.name(),
            found_via(&report)
        );
    }
}

#[test]
fn wrong_class_candidate_for_i386_is_skipped_and_named() {
    // An i386 program finds an x86_64 libapp first (wrong ELF class: skip)
    // and nothing else: the message names the class, as glibc's does.
    let arch = Arch::I386;
    let r = FakeRoot::new();
    r.debian_base(arch, Layout::DEBIAN12);
    r.elf(
        "/app/lib/libapp.so.1",
        &ElfSpec {
            arch: Some(Arch::X86_64),
            soname: Some("libapp.so.1".into()),
            ..Default::default()
        },
    );
    r.exe(APP, arch, &["libapp.so.1"], Some("$ORIGIN/../lib"));
    let (code, _, err) = r.json_run(&["--root", APP]);
    assert_eq!(code, 1);
    assert!(err.contains("ELFCLASS64"), "{err}");
}
