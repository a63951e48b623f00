//! Writes the seed corpus into `fuzz/corpus/<target>/`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.
//!
//! Synthetic ELF files for every architecture of `tests/support/elfgen.rs`,
//! the headers of two real files of this machine, caches in the three layouts,
//! configuration files, and encoded trees for the resolver target. The
//! output is deterministic apart from the copied host files.

#![forbid(unsafe_code)]

use std::fs;
use std::path::Path;

use closure::resolve::ldcache::{self, CacheEntry};

#[allow(dead_code, clippy::all)]
#[path = "../../tests/support/elfgen.rs"]
mod elfgen;

use elfgen::{Arch, ElfSpec, HashStyle, Kind};

fn put(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("mkdir corpus");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn elf_seeds(dir: &Path) {
    for &arch in Arch::all() {
        let base = ElfSpec {
            arch: Some(arch),
            kind: Kind::Exec,
            needed: vec!["libfoo.so.1".into(), "libc.so.6".into()],
            runpath: Some("$ORIGIN/../lib".into()),
            verneeds: vec![("libc.so.6".into(), vec![("GLIBC_2.34".into(), false)])],
            undefined: vec![(
                "malloc".into(),
                Some(("libc.so.6".into(), "GLIBC_2.34".into())),
            )],
            ..Default::default()
        };
        put(dir, &format!("exe-{}", arch.name()), &elfgen::build(&base));
        let lib = ElfSpec {
            arch: Some(arch),
            kind: Kind::Shared,
            soname: Some("libfoo.so.1".into()),
            rpath: Some("/opt/lib:$LIB".into()),
            verdefs: vec!["FOO_1".into(), "FOO_2".into()],
            defined: vec![("foo".into(), Some("FOO_2".into()))],
            hash_style: if arch.is_64() {
                HashStyle::Gnu
            } else {
                HashStyle::Sysv
            },
            no_section_headers: arch == Arch::S390x,
            note_dlopen: Some(
                r#"[{"feature":"x","soname":["libx.so.1"],"priority":"recommended"}]"#.into(),
            ),
            ..Default::default()
        };
        put(dir, &format!("lib-{}", arch.name()), &elfgen::build(&lib));
    }
    let stat = ElfSpec {
        kind: Kind::Static,
        ..Default::default()
    };
    put(dir, "static-x86_64", &elfgen::build(&stat));
    put(dir, "script", b"#!/bin/sh -e\necho hi\n");
    put(
        dir,
        "ldscript",
        b"/* GNU ld script */\nGROUP ( libc.so.6 )\n",
    );
    // The first 2 KiB of real files of this machine: real headers only
    // (program headers, often the dynamic section's start), not the code.
    for host in ["/usr/bin/true", "/lib/x86_64-linux-gnu/libc.so.6"] {
        if let Ok(b) = fs::read(host) {
            let name = host.rsplit('/').next().unwrap_or("x");
            put(dir, &format!("head-{name}"), &b[..b.len().min(2048)]);
        }
    }
    // Two small programs built by gcc (when there is one) for the libgcc_s
    // rule's GNU hash lookups: an undefined `pthread_exit` that is hashed
    // (its address taken in code of a non-PIE program: a canonical PLT
    // entry), and `pthread_cancel` and `backtrace` among the unhashed ones.
    let programs = [
        (
            "gcc-pthread-exit-hashed",
            "#include <pthread.h>\nvoid (*volatile keep)(void *);\n\
             int main(int c, char **v) { keep = pthread_exit; if (c > 5) keep(v); return 0; }\n",
            &["-no-pie", "-fno-pic"][..],
        ),
        (
            "gcc-pthread-cancel-backtrace",
            "#include <pthread.h>\n#include <execinfo.h>\n\
             int main(int c, char **v) { void *b[4]; if (c > 5) backtrace(b, 4);\n\
             return pthread_cancel(pthread_self()); }\n",
            &[][..],
        ),
    ];
    let tmp = std::env::temp_dir().join(format!("closure-seeds-{}", std::process::id()));
    fs::create_dir_all(&tmp).expect("mkdir");
    for (name, src, args) in programs {
        let c = tmp.join(format!("{name}.c"));
        let out = tmp.join(name);
        fs::write(&c, src).expect("write source");
        let built = std::process::Command::new("gcc")
            .args(["-O1", "-pthread", "-Wl,--hash-style=gnu", "-s", "-o"])
            .arg(&out)
            .arg(&c)
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        match fs::read(&out) {
            Ok(b) if built => put(dir, name, &b),
            _ => eprintln!("seeds: no gcc: {name} not written"),
        }
    }
    let _ = fs::remove_dir_all(&tmp);
}

fn entry(key: &str, value: &str, flags: i32, hwcap: u64) -> CacheEntry {
    CacheEntry {
        flags,
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        hwcap,
    }
}

fn le32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn ldcache_seeds(dir: &Path) {
    let entries = vec![
        entry("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0x0303, 0),
        entry("libz.so.1", "/usr/lib/libz.so.1", 0x0303, 0),
        entry(
            "libm.so.6",
            "/usr/lib/glibc-hwcaps/x86-64-v3/libm.so.6",
            0x0303,
            (1 << 62) | (3 << 32),
        ),
        entry("libold.so.1", "/usr/lib/tls/libold.so.1", 0x0003, 1 << 63),
    ];
    let names = vec![b"x86-64-v3".to_vec()];
    put(
        dir,
        "new-le",
        &ldcache::write_new_with_hwcaps(&entries, &names, false, Some(b"ldconfig seed")),
    );
    put(
        dir,
        "new-be",
        &ldcache::write_new(&entries[..2], true, Some(b"gen")),
    );
    put(dir, "empty", &ldcache::write_new(&[], false, None));
    // Old format: header, two entries, strings after the table.
    let strings = b"libc.so.6\0/lib/libc.so.6\0";
    let mut old = b"ld.so-1.7.0\0".to_vec();
    le32(&mut old, 1);
    le32(&mut old, 3);
    le32(&mut old, 0);
    le32(&mut old, 10);
    old.extend_from_slice(strings);
    put(dir, "old", &old);
    // Combined: the old table, then a new table at the next 8-byte boundary.
    let mut combined = old.clone();
    while !combined.len().is_multiple_of(8) {
        combined.push(0);
    }
    combined.extend_from_slice(&ldcache::write_new(&entries[..1], false, None));
    put(dir, "combined", &combined);
}

fn ldconf_seeds(dir: &Path) {
    let seeds: &[(&str, &[u8])] = &[
        ("plain", b"/usr/local/lib\n# comment\n/lib\n/opt/other\n"),
        (
            "includes",
            b"include ld.so.conf.d/*.conf\n/usr/lib\xff/usr/local/lib\ninclude /opt/other/c.conf\xff/d\xffinclude /etc/ld.so.conf\n",
        ),
        (
            "globs",
            b"include /d/*/*/[a-z]*\ninclude /etc/ld.so.conf.d/[!x]?*.conf\ninclude /opt/*/\n",
        ),
        (
            "escape",
            b"/opt/abs\n/opt/rel\n/../../outside/lib\ninclude ../../../outside/*.conf\ninclude /etc/ld.so.conf.d/escape.conf\n",
        ),
        (
            "loops",
            b"include /d/self/self/self/*/*/*.conf\n/d/e/loop\nhwcap 1 x\n/d/up/up/up\n",
        ),
        ("classes", b"include /etc/[[:alpha:]]*.d/[[:lower:][:digit:]].conf\n"),
    ];
    for (name, text) in seeds {
        put(dir, name, text);
    }
}

fn resolver_seeds(dir: &Path) {
    // Byte 0: flags. Then ops: op, path (count, abs, words...), operands.
    // Word indices: see WORDS in src/lib.rs (6 = "..", 13 = "outside",
    // 14 = "libmarker.so.1", 0 = "lib", 4 = "app", 1 = "usr").
    let seeds: &[(&str, &[u8])] = &[
        ("default", &[0]),
        ("empty-root", &[1]),
        // /app/lib/libbar.so.2 -> ../../../libmarker.so.1 and
        // /app/lib/libmarker.so.1 -> /../../outside/libmarker.so.1
        (
            "escape-links",
            &[
                0, 1, 2, 0, 4, 0, 10, 3, 1, 6, 6, 6, 14, 1, 2, 0, 4, 0, 14, 3, 0, 6, 6, 13, 14,
            ],
        ),
        // a FIFO as libbar, a socket as libc, an 8 GiB sparse file as libmarker
        (
            "specials",
            &[0, 5, 2, 0, 4, 0, 10, 6, 2, 0, 4, 0, 8, 7, 2, 0, 4, 0, 14],
        ),
        // an ld.so.cache whose entries point outside the root
        (
            "cache-escape",
            &[
                4, 8, 0, 0, 0, 2, 0, 10, 3, 0, 6, 6, 13, 14, 0, 14, 2, 0, 6, 13, 14,
            ],
        ),
        // /app/lib/libbar.so.2 -> libbar.so.2
        ("loop", &[0, 1, 2, 0, 4, 0, 10, 0, 1, 10]),
    ];
    for (name, bytes) in seeds {
        put(dir, name, bytes);
    }
}

/// One ELF note: namesz, descsz, type, name and descriptor, 4-padded.
fn note(big: bool, name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let w = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let mut v = Vec::new();
    w(&mut v, name.len() as u32);
    w(&mut v, desc.len() as u32);
    w(&mut v, kind);
    v.extend_from_slice(name);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v.extend_from_slice(desc);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

fn notes_seeds(dir: &Path) {
    let json = br#"[{"feature":"png","description":"PNG","priority":"recommended","soname":["libpng16.so.16","libpng.so"]},{"soname":["libz.so.1"],"priority":"required"}]"#;
    let mut desc = json.to_vec();
    desc.push(0);
    for (name, sel, big) in [("le-align4", 4u8, false), ("be-align8", 7, true)] {
        let mut v = vec![sel];
        v.extend(note(big, b"FDO\0", 0x407c_0c0a, &desc));
        v.extend(note(big, b"GNU\0", 3, &[1, 2, 3, 4]));
        put(dir, name, &v);
    }
    let mut v = vec![0u8];
    v.extend_from_slice(json);
    put(dir, "json-only", &v);
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    elf_seeds(&corpus.join("elf"));
    ldcache_seeds(&corpus.join("ldcache"));
    notes_seeds(&corpus.join("notes"));
    ldconf_seeds(&corpus.join("ldconf"));
    resolver_seeds(&corpus.join("resolver"));
    println!("seeds written to {}", corpus.display());
}
