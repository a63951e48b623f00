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
    /// The `glibc-hwcaps` subdirectory names of the newest glibc this
    /// table knows, most capable first (a loader's own list is read from
    /// its bytes: [`hwcaps_names_in`]).
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
        // x32's loader is built from x86-64's sources: the same names.
        (machine::X86_64, false) => f(
            "x86_64-linux-gnux32",
            "libx32",
            Some("x86_64"),
            &["x86-64-v4", "x86-64-v3", "x86-64-v2"][..],
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
    /// The `glibc-hwcaps` subdirectory names the loader knows, most capable
    /// first: read from its bytes by the resolver ([`hwcaps_names_in`]);
    /// empty when it searches no `glibc-hwcaps` (musl, glibc before 2.33,
    /// architectures without names); `None` when they cannot be read (an
    /// unreadable interpreter, or one without the string), and then
    /// `--hwcaps` names are taken as given.
    pub hwcaps_known: Option<Vec<Vec<u8>>>,
    /// The `glibc-hwcaps` subdirectories the modelled CPU's loader
    /// searches, most capable first: the `--hwcaps` names the loader knows,
    /// in its order ([`Target::model_hwcaps`]; empty under baseline).
    pub hwcaps_active: Vec<Vec<u8>>,
    /// The modelled CPU's x86 ISA levels (`GNU_PROPERTY_X86_ISA_1_*` bits)
    /// when the loader checks each object's needed levels against them
    /// (glibc 2.33 and later on x86): [`Target::model_x86_isa`].
    pub x86_isa: Option<u32>,
    /// The legacy subdirectories and cache rule for the modelled CPU
    /// (filled by the resolver, which knows `--platform` and `--hwcaps`).
    pub legacy: super::legacy::Legacy,
    /// A glibc loader that lists itself first (right after the program)
    /// when no `DT_NEEDED` names it, as glibc 2.41 does; 2.39 and earlier
    /// leave it out then (filled by the resolver, which reads the
    /// interpreter's version).
    pub rtld_listed_alone: bool,
    /// A glibc loader whose `dlopen` fails for an object that needs an
    /// executable stack ("cannot enable executable stack as shared object
    /// requires"), as 2.41 and later do; start-up loads still get one
    /// (filled by the resolver, from the interpreter's version).
    pub dlopen_refuses_exec_stack: bool,
    /// A glibc loader that refuses to load a position-independent
    /// executable (`DF_1_PIE`) as a library, at start-up or by `dlopen`
    /// ("cannot dynamically load position-independent executable"), as
    /// 2.30 and later do (filled by the resolver, from the interpreter's
    /// version; 2.31's has none and is taken to).
    pub refuses_pie: bool,
    /// A glibc loader that ends a search list when the candidate in a
    /// directory it holds present fails with ENOTDIR (a file where the
    /// directory should be), as 2.36 and earlier do; 2.39 and later go on
    /// to the next directory.
    pub enotdir_ends_list: bool,
    /// A glibc loader whose symbol lookup (`check_match`) is 2.41's: a
    /// versioned reference that reaches the library its version names,
    /// built without version information, binds there (2.40 and earlier
    /// fail an assertion), and only a definition whose version index has
    /// no entry (0, 1, an index no version uses) counts as unversioned
    /// (before, any whose version hash is 0). Filled by the resolver, from
    /// the interpreter's version.
    pub check_match_2_41: bool,
    /// A glibc loader that, in secure mode, searches a program's `$ORIGIN`
    /// search-path element (or loads its `$ORIGIN` `DT_NEEDED` path) by the
    /// lexically normalised string its trust check makes, as 2.41 and
    /// later do; 2.36 keeps the expansion (filled by the resolver, from the
    /// interpreter's version).
    pub secure_origin_normalized: bool,
    /// A glibc loader that loads the main program's `DT_AUDIT` and
    /// `DT_DEPAUDIT` audit modules, as 2.32 and later do (2.31 ignores
    /// both; filled by the resolver, from the interpreter's version).
    pub dt_audit: bool,
    /// A glibc loader that, loading into an audit module's namespace,
    /// searches the main program's `DT_RUNPATH` for a requester without
    /// one, after the `DT_RPATH`s and before `LD_LIBRARY_PATH`, as 2.35 and
    /// later do (filled by the resolver, from the interpreter's version).
    pub audit_main_runpath: bool,
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
                hwcaps_known: Some(Vec::new()),
                hwcaps_active: Vec::new(),
                x86_isa: None,
                legacy: Default::default(),
                rtld_listed_alone: false,
                check_match_2_41: false,
                secure_origin_normalized: false,
                dlopen_refuses_exec_stack: false,
                enotdir_ends_list: false,
                dt_audit: false,
                audit_main_runpath: false,
                refuses_pie: false,
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
            hwcaps_known: (!glibc_hwcaps || arch.hwcaps.is_empty()).then(Vec::new),
            hwcaps_active: Vec::new(),
            x86_isa: None,
            legacy: Default::default(),
            rtld_listed_alone: false,
            check_match_2_41: false,
            secure_origin_normalized: false,
            dlopen_refuses_exec_stack: false,
            enotdir_ends_list: true,
            dt_audit: false,
            audit_main_runpath: false,
            refuses_pie: false,
        }
    }

    /// Sets [`Self::hwcaps_active`] from the `--hwcaps` names `named` (in
    /// any order): those the loader knows, in its order; all of them as
    /// given when its names are unknown. Legacy capability names (`sse2`,
    /// `atomics`, …) are never `glibc-hwcaps` subdirectories. Returns the
    /// other names the loader ignores (for a warning).
    pub fn model_hwcaps(&mut self, named: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let machine = self.ident.machine;
        let wanted: Vec<&Vec<u8>> = named
            .iter()
            .filter(|n| !super::legacy::is_capability(machine, n))
            .collect();
        if !self.glibc_hwcaps || self.flavor != Flavor::Glibc {
            self.hwcaps_active.clear();
            return Vec::new();
        }
        let Some(known) = &self.hwcaps_known else {
            self.hwcaps_active = wanted.into_iter().cloned().collect();
            return Vec::new();
        };
        self.hwcaps_active = known
            .iter()
            .filter(|k| wanted.contains(k))
            .cloned()
            .collect();
        let mut ignored: Vec<Vec<u8>> = Vec::new();
        for n in wanted {
            // On i386 an x86-64 level names the CPU's ISA level
            // ([`Self::model_x86_isa`]), not a subdirectory.
            let isa_name = machine == crate::elf::machine::I386 && x86_isa_level(n).is_some();
            if !known.contains(n) && !ignored.contains(n) && !isa_name {
                ignored.push(n.clone());
            }
        }
        ignored
    }

    /// Sets [`Self::x86_isa`]: on x86 with a glibc loader that searches
    /// `glibc-hwcaps` (2.33 and later, which also check each object's
    /// `GNU_PROPERTY_X86_ISA_1_NEEDED`), the ISA levels of the CPU the
    /// `--hwcaps` names `named` describe: every level up to the highest
    /// `x86-64-vN` named, and the baseline (SSE2 and the rest), which every
    /// x86-64 CPU has and an i386 CPU when `sse2` or a level is named —
    /// the baseline i386 CPU, an i686 without SSE2, has none.
    pub fn model_x86_isa(&mut self, named: &[Vec<u8>]) {
        use crate::elf::machine;
        let m = self.ident.machine;
        if self.flavor != Flavor::Glibc
            || !self.glibc_hwcaps
            || !(m == machine::X86_64 || m == machine::I386)
        {
            self.x86_isa = None;
            return;
        }
        let level = named.iter().filter_map(|n| x86_isa_level(n)).max();
        let baseline = m == machine::X86_64
            || level.is_some()
            || named.iter().any(|n| n.as_slice() == b"sse2");
        let mut bits = u32::from(baseline);
        for l in 2..=level.unwrap_or(1) {
            bits |= 1 << (l - 1);
        }
        self.x86_isa = Some(bits);
    }

    /// Whether `path` lies in one of the default directories (prefix compare
    /// including the trailing `/`, as glibc's NODEFLIB cache filter does).
    pub fn in_system_dir(&self, path: &[u8]) -> bool {
        self.system_dirs
            .iter()
            .any(|d| path.len() > d.len() && path.starts_with(d) && path[d.len()] == b'/')
    }
}

/// The x86-64 ISA level a `glibc-hwcaps` name stands for: 2 for
/// `x86-64-v2` up to 4 for `x86-64-v4`.
pub fn x86_isa_level(name: &[u8]) -> Option<u32> {
    match name {
        b"x86-64-v2" => Some(2),
        b"x86-64-v3" => Some(3),
        b"x86-64-v4" => Some(4),
        _ => None,
    }
}

/// The names of x86 ISA level bits (`GNU_PROPERTY_X86_ISA_1_*`), lowest
/// first, for messages: `x86-64-baseline`, `x86-64-v2`, …
pub fn x86_isa_names(bits: u32) -> Vec<String> {
    (0..32)
        .filter(|b| bits & (1 << b) != 0)
        .map(|b| match b {
            0 => "x86-64-baseline".to_string(),
            1..=3 => format!("x86-64-v{}", b + 1),
            _ => format!("ISA bit {b}"),
        })
        .collect()
}

/// The `glibc-hwcaps` subdirectory names compiled into a glibc loader, most
/// capable first, found in `bytes` (its read-only data). glibc keeps them as
/// one string of names joined by `:` (`"z16:z15:z14:z13"`). `known` are the
/// architecture's names as the newest glibc this table knows has them
/// ([`ArchFacts::hwcaps`]); the string is found by a least capable one of
/// them after a `:` and before the string's NUL, and read back to its
/// start, which follows a NUL — so names a newer glibc added in front are
/// read too. `None` when no such string is there.
pub fn hwcaps_names_in(bytes: &[u8], known: &[&str]) -> Option<Vec<Vec<u8>>> {
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.';
    for last in known.iter().rev() {
        let mut needle = Vec::with_capacity(last.len() + 2);
        needle.push(b':');
        needle.extend_from_slice(last.as_bytes());
        needle.push(0);
        for at in memchr::memmem::find_iter(bytes, &needle) {
            let end = at + needle.len() - 1;
            let mut start = at;
            while start > 0 && (name_byte(bytes[start - 1]) || bytes[start - 1] == b':') {
                start -= 1;
            }
            if start == 0 || bytes[start - 1] != 0 {
                continue;
            }
            let names: Vec<Vec<u8>> = bytes[start..end]
                .split(|&b| b == b':')
                .map(<[u8]>::to_vec)
                .collect();
            if names.iter().all(|n| !n.is_empty()) {
                return Some(names);
            }
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    const S390X: &[&str] = &["z17", "z16", "z15", "z14", "z13"];

    fn names(v: Option<Vec<Vec<u8>>>) -> Option<Vec<String>> {
        v.map(|v| {
            v.into_iter()
                .map(|n| String::from_utf8(n).unwrap())
                .collect()
        })
    }

    /// glibc 2.36's s390x loader knows z16 but not yet z17; the string
    /// sits between other strings of the read-only data.
    #[test]
    fn a_loaders_names_are_read_to_the_start_of_its_string() {
        let data = b"\0tls\0z16:z15:z14:z13\0zarch\0";
        assert_eq!(
            names(hwcaps_names_in(data, S390X)).unwrap(),
            ["z16", "z15", "z14", "z13"]
        );
        // A newer glibc's name in front, unknown to the table, is read too.
        let data = b"\x00\x00\x00\x00z18:z17:z16:z15:z14:z13\0";
        assert_eq!(
            names(hwcaps_names_in(data, S390X)).unwrap(),
            ["z18", "z17", "z16", "z15", "z14", "z13"]
        );
        let x86 = &["x86-64-v4", "x86-64-v3", "x86-64-v2"];
        let data = b"\0x86-64-v4:x86-64-v3:x86-64-v2\0";
        assert_eq!(
            names(hwcaps_names_in(data, x86)).unwrap(),
            ["x86-64-v4", "x86-64-v3", "x86-64-v2"]
        );
    }

    /// A least capable name alone, or a list that does not start after a
    /// NUL (bytes of something else before it), or one with an empty
    /// name, is not the loader's list; a later occurrence may be.
    #[test]
    fn only_a_whole_string_of_names_counts() {
        let power = &["power10", "power9"];
        // POWER's platform table holds "power9" on its own.
        assert_eq!(hwcaps_names_in(b"\0power9\0power8\0", power), None);
        assert_eq!(hwcaps_names_in(b"\x01power10:power9\0", power), None);
        assert_eq!(hwcaps_names_in(b"power10:power9\0", power), None);
        assert_eq!(hwcaps_names_in(b"\0power10::power9\0", power), None);
        assert_eq!(hwcaps_names_in(b"\0power10:power9", power), None);
        assert_eq!(
            names(hwcaps_names_in(b"\x07p:power9\0\0power10:power9\0", power)).unwrap(),
            ["power10", "power9"]
        );
        // Without the least capable name (a glibc that dropped it), the
        // next one finds the string.
        assert_eq!(
            names(hwcaps_names_in(b"\0z17:z16:z15:z14\0", S390X)).unwrap(),
            ["z17", "z16", "z15", "z14"]
        );
        assert_eq!(hwcaps_names_in(b"\0a:b\0", &[]), None);
    }

    fn glibc_target(machine: u16, known: Option<&[&str]>) -> Target {
        let id = Ident {
            is_64: true,
            big_endian: machine == machine::S390,
            osabi: 0,
            abiversion: 0,
            e_type: 3,
            machine,
            e_flags: 0,
        };
        let mut t = Target::detect(id, None, &|_| false, &|_| false, &|_| None);
        t.hwcaps_known = known.map(|k| k.iter().map(|n| n.as_bytes().to_vec()).collect());
        t
    }

    fn given(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|n| n.as_bytes().to_vec()).collect()
    }

    fn shown(v: &[Vec<u8>]) -> Vec<String> {
        v.iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    /// The loader searches the names it knows that the CPU has, in its own
    /// order, whatever order `--hwcaps` gave them in; the others are
    /// returned for the warning, capability names of the legacy model
    /// aside.
    #[test]
    fn the_modelled_cpu_searches_the_names_the_loader_knows_in_its_order() {
        let mut t = glibc_target(machine::S390, Some(&["z16", "z15", "z14", "z13"]));
        let ignored = t.model_hwcaps(&given(&["z13", "z17", "vx", "z15", "z17"]));
        assert_eq!(shown(&t.hwcaps_active), ["z15", "z13"]);
        assert_eq!(shown(&ignored), ["z17"]);
        // Unknown names (the interpreter could not be read): as given.
        let mut t = glibc_target(machine::S390, None);
        let ignored = t.model_hwcaps(&given(&["z13", "z17", "vx"]));
        assert_eq!(shown(&t.hwcaps_active), ["z13", "z17"]);
        assert!(ignored.is_empty());
        // A loader without glibc-hwcaps (glibc 2.32 and earlier) searches
        // none and warns of none: the names still describe the CPU to the
        // legacy model.
        let mut t = glibc_target(machine::X86_64, Some(&[]));
        t.glibc_hwcaps = false;
        assert!(t.model_hwcaps(&given(&["x86-64-v4"])).is_empty());
        assert!(t.hwcaps_active.is_empty());
        // AArch64's glibc knows no names: each is ignored, `atomics` is a
        // legacy capability.
        let mut t = glibc_target(machine::AARCH64, Some(&[]));
        let ignored = t.model_hwcaps(&given(&["atomics", "foo"]));
        assert!(t.hwcaps_active.is_empty());
        assert_eq!(shown(&ignored), ["foo"]);
    }

    /// Where the table has no names, detection knows the loader has none;
    /// elsewhere the resolver reads them from the loader.
    #[test]
    fn detection_leaves_the_names_to_the_loaders_bytes() {
        let t = glibc_target(machine::AARCH64, None);
        let d = Target::detect(t.ident, None, &|_| false, &|_| false, &|_| None);
        assert_eq!(d.hwcaps_known, Some(Vec::new()));
        let t = glibc_target(machine::X86_64, None);
        let d = Target::detect(t.ident, None, &|_| false, &|_| false, &|_| None);
        assert_eq!(d.hwcaps_known, None);
        assert_eq!(arch_facts(&d.ident).hwcaps.len(), 3);
    }

    /// x86-64 has the baseline on every CPU and each level up to the
    /// highest named; i386's baseline CPU (no SSE2) has none until `sse2`
    /// or a level is named; other machines, musl and loaders before glibc
    /// 2.33 check no level.
    #[test]
    fn the_modelled_cpus_x86_isa_levels() {
        let isa = |machine: u16, named: &[&str], glibc_hwcaps: bool| {
            let mut t = glibc_target(machine, Some(&[]));
            if machine == machine::I386 {
                t.ident.is_64 = false;
            }
            t.glibc_hwcaps = glibc_hwcaps;
            t.model_x86_isa(&given(named));
            t.x86_isa
        };
        assert_eq!(isa(machine::X86_64, &[], true), Some(0b1));
        assert_eq!(isa(machine::X86_64, &["x86-64-v3"], true), Some(0b111));
        assert_eq!(
            isa(machine::X86_64, &["x86-64-v2", "x86-64-v4"], true),
            Some(0b1111)
        );
        assert_eq!(isa(machine::I386, &[], true), Some(0));
        assert_eq!(isa(machine::I386, &["sse2"], true), Some(0b1));
        assert_eq!(isa(machine::I386, &["x86-64-v2"], true), Some(0b11));
        assert_eq!(isa(machine::X86_64, &["x86-64-v3"], false), None);
        assert_eq!(isa(machine::AARCH64, &["x86-64-v3"], true), None);
        assert_eq!(
            x86_isa_names(0b1101),
            ["x86-64-baseline", "x86-64-v3", "x86-64-v4"]
        );
        // On i386 a level names the CPU, not a subdirectory: no warning.
        let mut t = glibc_target(machine::I386, Some(&[]));
        assert!(t.model_hwcaps(&given(&["x86-64-v3", "sse2"])).is_empty());
        assert_eq!(shown(&t.model_hwcaps(&given(&["z13"]))), ["z13"]);
    }
}
