//! Which loader, which default directories: facts about the *target*.
//!
//! Owns the derivation, from a program's identity and its `PT_INTERP` inside
//! the sysroot (never from the host), of everything the search rules need
//! that is compiled into the loader: the C library flavour (glibc or musl),
//! the default ("trusted") directories, the value of `$LIB`, the default
//! `$PLATFORM`, the Debian multiarch triplet and the glibc-hwcaps names.
//! For glibc the default directories are read from the interpreter's own
//! bytes (the `SYSTEM_DIRS` string is stored there as NUL-separated paths)
//! and fall back to the distribution layout found in the sysroot.

use crate::elf::{machine, Ident};

/// The C library whose loader the program uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// GNU libc `ld-linux*.so`.
    Glibc,
    /// musl `ld-musl-*.so.1`.
    Musl,
}

/// How the default directories were determined (for `--verbose` and docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirsSource {
    /// Read from the `SYSTEM_DIRS` string inside the interpreter.
    Interpreter,
    /// Debian/Ubuntu multiarch layout present in the sysroot.
    Multiarch,
    /// Upstream glibc defaults for the architecture.
    Upstream,
    /// musl's search path file or its built-in default.
    Musl,
}

/// Static facts of one architecture.
#[derive(Debug, Clone, Copy)]
pub struct ArchFacts {
    /// Debian multiarch triplet.
    pub triplet: &'static str,
    /// Upstream glibc's `$LIB` / library directory name.
    pub upstream_lib: &'static str,
    /// A typical `AT_PLATFORM` (None: the kernel provides none).
    pub platform: Option<&'static str>,
    /// glibc-hwcaps subdirectory names, most capable first.
    pub hwcaps: &'static [&'static str],
    /// musl's `LDSO_ARCH` (as in `ld-musl-<arch>.so.1`).
    pub musl_arch: &'static str,
    /// OCI/Go architecture name.
    pub goarch: &'static str,
    /// glibc's usual `PT_INTERP` for the architecture.
    pub glibc_interp: &'static str,
}

/// Looks up the facts for an ELF identity.
pub fn arch_facts(id: &Ident) -> ArchFacts {
    let f = |triplet: &'static str, upstream_lib, platform, hwcaps, musl_arch, goarch| ArchFacts {
        triplet,
        upstream_lib,
        platform,
        hwcaps,
        musl_arch,
        goarch,
        glibc_interp: glibc_interp(triplet),
    };
    match (id.machine, id.is_64) {
        (machine::X86_64, true) => f(
            "x86_64-linux-gnu",
            "lib64",
            Some("x86_64"),
            &["x86-64-v4", "x86-64-v3", "x86-64-v2"][..],
            "x86_64",
            "amd64",
        ),
        (machine::X86_64, false) => f(
            "x86_64-linux-gnux32",
            "libx32",
            Some("x86_64"),
            &[],
            "x32",
            "amd64",
        ),
        (machine::I386, _) => f("i386-linux-gnu", "lib", Some("i686"), &[], "i386", "386"),
        (machine::AARCH64, _) if id.big_endian => f(
            "aarch64_be-linux-gnu",
            "lib64",
            Some("aarch64_be"),
            &[],
            "aarch64_be",
            "arm64",
        ),
        (machine::AARCH64, _) => f(
            "aarch64-linux-gnu",
            "lib64",
            Some("aarch64"),
            &[],
            "aarch64",
            "arm64",
        ),
        (machine::ARM, _) if id.e_flags & 0x400 != 0 => f(
            "arm-linux-gnueabihf",
            "lib",
            Some("v7l"),
            &[],
            "armhf",
            "arm",
        ),
        (machine::ARM, _) => f("arm-linux-gnueabi", "lib", Some("v5l"), &[], "arm", "arm"),
        (machine::RISCV, true) => f(
            "riscv64-linux-gnu",
            "lib64/lp64d",
            None,
            &[],
            "riscv64",
            "riscv64",
        ),
        (machine::PPC64, true) if !id.big_endian => f(
            "powerpc64le-linux-gnu",
            "lib64",
            Some("power9"),
            &["power10", "power9"][..],
            "powerpc64le",
            "ppc64le",
        ),
        (machine::PPC64, true) => f(
            "powerpc64-linux-gnu",
            "lib64",
            Some("power9"),
            &[],
            "powerpc64",
            "ppc64",
        ),
        (machine::S390, true) => f(
            "s390x-linux-gnu",
            "lib64",
            Some("z13"),
            &["z17", "z16", "z15", "z14", "z13"][..],
            "s390x",
            "s390x",
        ),
        (machine::MIPS, true) if !id.big_endian => f(
            "mips64el-linux-gnuabi64",
            "lib64",
            None,
            &[],
            "mips64el",
            "mips64le",
        ),
        (machine::MIPS, true) => f(
            "mips64-linux-gnuabi64",
            "lib64",
            None,
            &[],
            "mips64",
            "mips64",
        ),
        (machine::MIPS, false) if !id.big_endian => {
            f("mipsel-linux-gnu", "lib", None, &[], "mipsel", "mipsle")
        }
        (machine::MIPS, false) => f("mips-linux-gnu", "lib", None, &[], "mips", "mips"),
        (machine::LOONGARCH, _) => f(
            "loongarch64-linux-gnu",
            "lib64",
            Some("loongarch"),
            &[],
            "loongarch64",
            "loong64",
        ),
        // 32-bit PowerPC kernels name the CPU (`ppc7400`, `ppce500mc`, …);
        // none is common to all, and qemu gives none.
        (machine::PPC, _) => f("powerpc-linux-gnu", "lib", None, &[], "powerpc", "ppc"),
        // Debian ports (their glibc 2.36 builds are Debian's
        // `libc6-ARCH-cross` packages): the kernel gives PA-RISC programs
        // the platform `PARISC`; m68k and 64-bit SPARC none (qemu neither).
        // musl has no port for these but SuperH (`sh`); OCI and Go have no
        // names for most, so Debian's architecture names stand in.
        (machine::M68K, false) => f("m68k-linux-gnu", "lib", None, &[], "m68k", "m68k"),
        (machine::PARISC, false) => f("hppa-linux-gnu", "lib", Some("PARISC"), &[], "hppa", "hppa"),
        (machine::SH, false) if !id.big_endian => f("sh4-linux-gnu", "lib", None, &[], "sh", "sh4"),
        (machine::SPARCV9, true) => f(
            "sparc64-linux-gnu",
            "lib64",
            None,
            &[],
            "sparc64",
            "sparc64",
        ),
        (machine::ALPHA, true) => f("alpha-linux-gnu", "lib", None, &[], "alpha", "alpha"),
        _ => f("unknown-linux-gnu", "lib", None, &[], "unknown", "unknown"),
    }
}

/// glibc's `PT_INTERP` for a Debian triplet.
fn glibc_interp(triplet: &str) -> &'static str {
    match triplet {
        "x86_64-linux-gnu" => "/lib64/ld-linux-x86-64.so.2",
        "x86_64-linux-gnux32" => "/libx32/ld-linux-x32.so.2",
        "i386-linux-gnu" => "/lib/ld-linux.so.2",
        "aarch64-linux-gnu" => "/lib/ld-linux-aarch64.so.1",
        "aarch64_be-linux-gnu" => "/lib/ld-linux-aarch64_be.so.1",
        "arm-linux-gnueabihf" => "/lib/ld-linux-armhf.so.3",
        "arm-linux-gnueabi" => "/lib/ld-linux.so.3",
        "riscv64-linux-gnu" => "/lib/ld-linux-riscv64-lp64d.so.1",
        "powerpc64le-linux-gnu" => "/lib64/ld64.so.2",
        "powerpc64-linux-gnu" => "/lib64/ld64.so.1",
        "s390x-linux-gnu" => "/lib/ld64.so.1",
        "mips64el-linux-gnuabi64" | "mips64-linux-gnuabi64" => "/lib64/ld.so.1",
        "mipsel-linux-gnu" | "mips-linux-gnu" => "/lib/ld.so.1",
        "loongarch64-linux-gnu" => "/lib64/ld-linux-loongarch-lp64d.so.1",
        "powerpc-linux-gnu" => "/lib/ld.so.1",
        "m68k-linux-gnu" | "hppa-linux-gnu" => "/lib/ld.so.1",
        "sh4-linux-gnu" | "alpha-linux-gnu" => "/lib/ld-linux.so.2",
        "sparc64-linux-gnu" => "/lib64/ld-linux.so.2",
        _ => "/lib/ld-linux.so.2",
    }
}

/// Everything compiled into the target's loader that the search needs.
#[derive(Debug, Clone)]
pub struct Target {
    /// Identity of the program (and so of its loader).
    pub ident: Ident,
    /// glibc or musl.
    pub flavor: Flavor,
    /// The program's `PT_INTERP`.
    pub interp: Option<Vec<u8>>,
    /// Default directories, in order, without trailing `/`.
    pub system_dirs: Vec<Vec<u8>>,
    /// Where `system_dirs` came from.
    pub dirs_source: DirsSource,
    /// `$LIB`.
    pub lib: Vec<u8>,
    /// Architecture facts.
    pub arch: ArchFacts,
    /// Files of the sysroot the loader reads at start-up and a staged root
    /// needs (musl's `ld-musl-<arch>.path`).
    pub config_files: Vec<Vec<u8>>,
    /// The loader searches `glibc-hwcaps` subdirectories and takes the
    /// cache's entries for them (glibc 2.33 and later; also assumed when
    /// the interpreter cannot be read).
    pub glibc_hwcaps: bool,
    /// The loader searches the legacy hwcap subdirectories (`tls`, the
    /// platform, capability names) and takes cache entries tagged with them
    /// (glibc 2.36 and earlier): see [`super::legacy`].
    pub legacy_hwcaps: bool,
    /// The legacy subdirectories and cache rule for the modelled CPU
    /// (filled by the resolver, which knows `--platform` and `--hwcaps`).
    pub legacy: super::legacy::Legacy,
    /// A glibc loader that lists itself first (right after the program)
    /// when no `DT_NEEDED` names it, as glibc 2.41 does; 2.39 and earlier
    /// leave it out then (filled by the resolver, which reads the
    /// interpreter's version).
    pub rtld_listed_alone: bool,
    /// A glibc loader that ends a search list when the candidate in a
    /// directory it holds present fails with ENOTDIR (a file where the
    /// directory should be), as 2.36 and earlier do; 2.39 and later go on
    /// to the next directory.
    pub enotdir_ends_list: bool,
}

impl Target {
    /// Derives the target of a program. `interp_has` tells whether the
    /// interpreter file inside the sysroot holds some bytes (false when it
    /// cannot be read), `has_dir` tells
    /// whether an in-root directory exists, and `musl_path` is the content of
    /// musl's `ld-musl-<arch>.path` (None when the file is absent).
    pub fn detect(
        ident: Ident,
        interp: Option<&[u8]>,
        interp_has: &dyn Fn(&[u8]) -> bool,
        has_dir: &dyn Fn(&str) -> bool,
        musl_path: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Target {
        let arch = arch_facts(&ident);
        let is_musl = interp
            .and_then(|i| i.rsplit(|&b| b == b'/').next())
            .is_some_and(|base| base.starts_with(b"ld-musl-"));
        if is_musl {
            let interp = interp.unwrap_or_default();
            let (dirs, path_file) = musl_dirs(interp, musl_path);
            return Target {
                ident,
                flavor: Flavor::Musl,
                interp: Some(interp.to_vec()),
                system_dirs: dirs,
                dirs_source: DirsSource::Musl,
                config_files: path_file.into_iter().collect(),
                lib: arch.upstream_lib.as_bytes().to_vec(),
                arch,
                glibc_hwcaps: false,
                legacy_hwcaps: false,
                legacy: Default::default(),
                rtld_listed_alone: false,
                enotdir_ends_list: false,
            };
        }
        let triplet = arch.triplet;
        let debian: Vec<Vec<u8>> = [
            format!("/lib/{triplet}"),
            format!("/usr/lib/{triplet}"),
            "/lib".into(),
            "/usr/lib".into(),
        ]
        .into_iter()
        .map(String::into_bytes)
        .collect();
        let upstream: Vec<Vec<u8>> = [
            format!("/{}", arch.upstream_lib),
            format!("/usr/{}", arch.upstream_lib),
        ]
        .into_iter()
        .map(String::into_bytes)
        .collect();
        let run = |dirs: &[Vec<u8>]| {
            let mut v = Vec::new();
            for d in dirs {
                v.extend_from_slice(d);
                v.extend_from_slice(b"/\0");
            }
            v
        };
        let found_in = |dirs: &[Vec<u8>]| interp_has(&run(dirs));
        let debian_lib = format!("lib/{triplet}").into_bytes();
        let upstream_lib = arch.upstream_lib.as_bytes().to_vec();
        let (system_dirs, dirs_source, lib) = if found_in(&debian) {
            (debian, DirsSource::Interpreter, debian_lib)
        } else if found_in(&upstream) {
            (upstream, DirsSource::Interpreter, upstream_lib)
        } else if has_dir(&format!("/lib/{triplet}")) || has_dir(&format!("/usr/lib/{triplet}")) {
            (debian, DirsSource::Multiarch, debian_lib)
        } else {
            (upstream, DirsSource::Upstream, upstream_lib)
        };
        // Which hwcap subdirectories the loader knows, from strings only
        // some generations hold: `LD_HWCAP_MASK` (the variable whose mask
        // applied to the legacy subdirectories; gone in glibc 2.37 with them)
        // and `glibc-hwcaps` (since 2.33). An interpreter that cannot be
        // read holds neither and is taken for a current one.
        let legacy_hwcaps = interp_has(b"LD_HWCAP_MASK");
        let glibc_hwcaps = !legacy_hwcaps || interp_has(b"glibc-hwcaps");
        Target {
            ident,
            flavor: Flavor::Glibc,
            interp: interp.map(<[u8]>::to_vec),
            system_dirs,
            dirs_source,
            lib,
            arch,
            config_files: Vec::new(),
            glibc_hwcaps,
            legacy_hwcaps,
            legacy: Default::default(),
            rtld_listed_alone: false,
            enotdir_ends_list: true,
        }
    }

    /// Whether `path` lies in one of the default directories (prefix compare
    /// including the trailing `/`, as glibc's NODEFLIB cache filter does).
    pub fn in_system_dir(&self, path: &[u8]) -> bool {
        self.system_dirs
            .iter()
            .any(|d| path.len() > d.len() && path.starts_with(d) && path[d.len()] == b'/')
    }
}

/// musl's system path: `<prefix>/etc/ld-musl-<arch>.path` where the prefix is
/// the interpreter path minus its last two components; default
/// `/lib:/usr/local/lib:/usr/lib` when the file is absent; empty when it
/// exists but is empty.
fn musl_dirs(
    interp: &[u8],
    read: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let base = interp.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let arch = base
        .strip_prefix(b"ld-musl-")
        .and_then(|r| r.strip_suffix(b".so.1"))
        .unwrap_or(b"unknown");
    let mut prefix = interp.to_vec();
    for _ in 0..2 {
        match prefix.iter().rposition(|&b| b == b'/') {
            Some(p) => prefix.truncate(p),
            None => prefix.clear(),
        }
    }
    let mut file = prefix;
    file.extend_from_slice(b"/etc/ld-musl-");
    file.extend_from_slice(arch);
    file.extend_from_slice(b".path");
    match read(&file) {
        None => (
            vec![
                b"/lib".to_vec(),
                b"/usr/local/lib".to_vec(),
                b"/usr/lib".to_vec(),
            ],
            None,
        ),
        Some(content) => (
            content
                .split(|&b| b == b':' || b == b'\n')
                .filter(|s| !s.is_empty())
                .map(<[u8]>::to_vec)
                .collect(),
            Some(file),
        ),
    }
}
