//! Generator of small, valid and loadable synthetic ELF files for every
//! architecture the closure tracer supports.
//!
//! The files are produced with the low-level `object::write::elf::Writer`.
//! Layout (virtual address == file offset, plus `0x400000` for `ET_EXEC`):
//!
//! ```text
//! page 0  R    ELF header, program headers, .interp, .note.dlopen, .hash,
//!              .gnu.hash, .dynsym, .dynstr, .gnu.version, .gnu.version_d,
//!              .gnu.version_r
//! page 1  R+X  .text (a tiny exit(0) / return sequence)
//! page 2  RW   .dynamic (+ a 2-entry local .got on mips64el)
//! (not loaded) .shstrtab, section header table
//! ```
//!
//! Every `PT_LOAD` starts on a page boundary and has `p_align` 0x1000.
//! The output is deterministic: the same spec always yields the same bytes.
#![allow(dead_code)]

use object::elf;
use object::endian::Endianness;
use object::write::elf::{
    FileHeader, ProgramHeader, SectionHeader, SectionIndex, Sym, Verdef, Vernaux, Verneed, Writer,
};
use object::write::StringId;

/// Page size used for `PT_LOAD` alignment and file layout.
const PAGE: u64 = 0x1000;
/// Load base of non-PIE (`ET_EXEC`) files.
const EXEC_BASE: u64 = 0x40_0000;
/// Note type of `.note.dlopen` (UAPI.12 / systemd ELF dlopen metadata).
pub const NT_FDO_DLOPEN_METADATA: u32 = 0x407c_0c0a;
/// Note owner of `.note.dlopen`.
pub const NOTE_OWNER_FDO: &str = "FDO";

/// A target architecture (glibc ABI flavour, Debian multiarch naming).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// x86-64, 64-bit little endian.
    X86_64,
    /// IA-32, 32-bit little endian.
    I386,
    /// AArch64, 64-bit little endian.
    Aarch64,
    /// ARM EABI5 hard-float, 32-bit little endian.
    Armhf,
    /// ARM EABI5 soft-float, 32-bit little endian.
    Armel,
    /// RISC-V 64 (lp64d), 64-bit little endian.
    Riscv64,
    /// POWER ELFv2, 64-bit little endian.
    Ppc64le,
    /// IBM Z, 64-bit big endian.
    S390x,
    /// MIPS64 n64, 64-bit little endian.
    Mips64el,
    /// 32-bit PowerPC, big endian (not in [`Arch::all`]: Debian ports).
    Ppc,
    /// POWER ELFv1, 64-bit big endian (not in [`Arch::all`]).
    Ppc64,
    /// SPARC V9, 64-bit big endian (not in [`Arch::all`]).
    Sparc64,
    /// PA-RISC 1.1, 32-bit big endian (not in [`Arch::all`]).
    Hppa,
    /// m68k, 32-bit big endian (not in [`Arch::all`]).
    M68k,
}

impl Arch {
    /// Every supported architecture.
    pub fn all() -> &'static [Arch] {
        &[
            Arch::X86_64,
            Arch::I386,
            Arch::Aarch64,
            Arch::Armhf,
            Arch::Armel,
            Arch::Riscv64,
            Arch::Ppc64le,
            Arch::S390x,
            Arch::Mips64el,
        ]
    }

    /// `e_machine` value.
    pub fn machine(self) -> u16 {
        match self {
            Arch::X86_64 => elf::EM_X86_64,
            Arch::I386 => elf::EM_386,
            Arch::Aarch64 => elf::EM_AARCH64,
            Arch::Armhf | Arch::Armel => elf::EM_ARM,
            Arch::Riscv64 => elf::EM_RISCV,
            Arch::Ppc64le => elf::EM_PPC64,
            Arch::S390x => elf::EM_S390,
            Arch::Mips64el => elf::EM_MIPS,
            Arch::Ppc => elf::EM_PPC,
            Arch::Ppc64 => elf::EM_PPC64,
            Arch::Sparc64 => elf::EM_SPARCV9,
            Arch::Hppa => elf::EM_PARISC,
            Arch::M68k => elf::EM_68K,
        }
    }

    /// True for ELFCLASS64.
    pub fn is_64(self) -> bool {
        !matches!(
            self,
            Arch::I386 | Arch::Armhf | Arch::Armel | Arch::Ppc | Arch::Hppa | Arch::M68k
        )
    }

    /// True for ELFDATA2MSB.
    pub fn big_endian(self) -> bool {
        matches!(
            self,
            Arch::S390x | Arch::Ppc | Arch::Ppc64 | Arch::Sparc64 | Arch::Hppa | Arch::M68k
        )
    }

    /// `e_flags` a native toolchain would produce.
    pub fn e_flags(self) -> u32 {
        match self {
            Arch::Armhf => elf::EF_ARM_EABI_VER5 | elf::EF_ARM_ABI_FLOAT_HARD,
            Arch::Armel => elf::EF_ARM_EABI_VER5 | elf::EF_ARM_ABI_FLOAT_SOFT,
            Arch::Riscv64 => elf::EF_RISCV_FLOAT_ABI_DOUBLE | elf::EF_RISCV_RVC,
            // ELFv2.
            Arch::Ppc64le => 2,
            // noreorder | pic | cpic | mips64r2 (what Debian's mips64el gcc emits).
            Arch::Mips64el => {
                elf::EF_MIPS_NOREORDER
                    | elf::EF_MIPS_PIC
                    | elf::EF_MIPS_CPIC
                    | elf::EF_MIPS_ARCH_64R2
            }
            // ELFv1.
            Arch::Ppc64 => 1,
            // ultrasparcI | rmo; PA-RISC 1.1 (Debian's).
            Arch::Sparc64 => 0x202,
            Arch::Hppa => 0x210,
            Arch::X86_64 | Arch::I386 | Arch::Aarch64 | Arch::S390x | Arch::Ppc | Arch::M68k => 0,
        }
    }

    /// glibc `PT_INTERP` path.
    pub fn interp(self) -> &'static str {
        match self {
            Arch::X86_64 => "/lib64/ld-linux-x86-64.so.2",
            Arch::I386 => "/lib/ld-linux.so.2",
            Arch::Aarch64 => "/lib/ld-linux-aarch64.so.1",
            Arch::Armhf => "/lib/ld-linux-armhf.so.3",
            Arch::Armel => "/lib/ld-linux.so.3",
            Arch::Riscv64 => "/lib/ld-linux-riscv64-lp64d.so.1",
            Arch::Ppc64le => "/lib64/ld64.so.2",
            Arch::S390x => "/lib/ld64.so.1",
            Arch::Mips64el => "/lib64/ld.so.1",
            Arch::Ppc | Arch::Hppa | Arch::M68k => "/lib/ld.so.1",
            Arch::Ppc64 => "/lib64/ld64.so.1",
            Arch::Sparc64 => "/lib64/ld-linux.so.2",
        }
    }

    /// Debian multiarch triplet.
    pub fn triplet(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::I386 => "i386-linux-gnu",
            Arch::Aarch64 => "aarch64-linux-gnu",
            Arch::Armhf => "arm-linux-gnueabihf",
            Arch::Armel => "arm-linux-gnueabi",
            Arch::Riscv64 => "riscv64-linux-gnu",
            Arch::Ppc64le => "powerpc64le-linux-gnu",
            Arch::S390x => "s390x-linux-gnu",
            Arch::Mips64el => "mips64el-linux-gnuabi64",
            Arch::Ppc => "powerpc-linux-gnu",
            Arch::Ppc64 => "powerpc64-linux-gnu",
            Arch::Sparc64 => "sparc64-linux-gnu",
            Arch::Hppa => "hppa-linux-gnu",
            Arch::M68k => "m68k-linux-gnu",
        }
    }

    /// Short name ("x86_64", "i386", "aarch64", "armhf", "armel", "riscv64",
    /// "ppc64le", "s390x", "mips64el", and the ports' "powerpc", "ppc64",
    /// "sparc64", "hppa", "m68k").
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
            Arch::Aarch64 => "aarch64",
            Arch::Armhf => "armhf",
            Arch::Armel => "armel",
            Arch::Riscv64 => "riscv64",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Mips64el => "mips64el",
            Arch::Ppc => "powerpc",
            Arch::Ppc64 => "ppc64",
            Arch::Sparc64 => "sparc64",
            Arch::Hppa => "hppa",
            Arch::M68k => "m68k",
        }
    }

    /// Contents of `.text`: an `exit(0)` system call sequence (so x86_64 and
    /// i386 executables can really be run), padded with zeros to 16 bytes.
    fn text(self) -> Vec<u8> {
        fn words(ws: &[u32], big: bool) -> Vec<u8> {
            ws.iter()
                .flat_map(|w| {
                    if big {
                        w.to_be_bytes()
                    } else {
                        w.to_le_bytes()
                    }
                })
                .collect()
        }
        let mut code = match self {
            // xor edi,edi; mov eax,60; syscall
            Arch::X86_64 => vec![0x31, 0xff, 0xb8, 0x3c, 0, 0, 0, 0x0f, 0x05],
            // xor ebx,ebx; mov eax,1; int 0x80
            Arch::I386 => vec![0x31, 0xdb, 0xb8, 0x01, 0, 0, 0, 0xcd, 0x80],
            // mov x0,#0; mov x8,#93; svc #0
            Arch::Aarch64 => words(&[0xd280_0000, 0xd280_0ba8, 0xd400_0001], false),
            // mov r0,#0; mov r7,#1; svc #0
            Arch::Armhf | Arch::Armel => words(&[0xe3a0_0000, 0xe3a0_7001, 0xef00_0000], false),
            // li a0,0; li a7,93; ecall
            Arch::Riscv64 => words(&[0x0000_0513, 0x05d0_0893, 0x0000_0073], false),
            // li r0,1; li r3,0; sc
            Arch::Ppc64le => words(&[0x3800_0001, 0x3860_0000, 0x4400_0002], false),
            // lghi %r2,0; svc 1
            Arch::S390x => vec![0xa7, 0x29, 0, 0, 0x0a, 0x01],
            // li a0,0; li v0,5058; syscall
            Arch::Mips64el => words(&[0x2404_0000, 0x2402_13c2, 0x0000_000c], false),
            // Never run: a trap (`trap`, `illtrap`, `break`, `illegal`).
            Arch::Ppc | Arch::Ppc64 => words(&[0x7fe0_0008], true),
            Arch::Sparc64 => words(&[0x0000_0000], true),
            Arch::Hppa => words(&[0x0000_0000], true),
            Arch::M68k => vec![0x4a, 0xfc],
        };
        code.resize(16, 0);
        code
    }
}

/// What kind of object to produce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// `ET_DYN` shared library, no `PT_INTERP` (unless `ElfSpec::interp` is set).
    #[default]
    Shared,
    /// `ET_DYN` PIE executable with `PT_PHDR`, `PT_INTERP` and `DF_1_PIE`.
    Exec,
    /// `ET_EXEC` executable at 0x400000 with `PT_PHDR` and `PT_INTERP`.
    ExecNoPie,
    /// `ET_EXEC` static executable: no `PT_INTERP`, no `PT_DYNAMIC`, no dynamic
    /// symbols (dynamic-linking fields of the spec are ignored).
    Static,
}

/// Which symbol hash tables to emit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashStyle {
    /// Both `DT_HASH` and `DT_GNU_HASH` (like `ld --hash-style=both`).
    #[default]
    Both,
    /// Only `DT_HASH` (SysV). On s390x its entries are 8 bytes wide, as the
    /// s390x psABI and glibc require.
    Sysv,
    /// Only `DT_GNU_HASH` (the Debian default).
    Gnu,
}

/// Description of one synthetic ELF file. Start from `ElfSpec::default()`.
#[derive(Clone, Debug, Default)]
pub struct ElfSpec {
    /// Target architecture; `None` means x86_64.
    pub arch: Option<Arch>,
    /// Object kind.
    pub kind: Kind,
    /// `PT_INTERP` override for `Exec`/`ExecNoPie` (default `arch.interp()`).
    /// For `Shared`, `Some` adds a `PT_INTERP` (like glibc's `libc.so.6`).
    /// Ignored for `Static`.
    pub interp: Option<String>,
    /// `DT_SONAME`.
    pub soname: Option<String>,
    /// `DT_NEEDED` entries, in this order.
    pub needed: Vec<String>,
    /// `DT_RPATH`.
    pub rpath: Option<String>,
    /// `DT_RUNPATH`.
    pub runpath: Option<String>,
    /// `DT_FLAGS_1` if non-zero (e.g. 0x800 `DF_1_NODEFLIB`). `Exec` always
    /// ORs in `DF_1_PIE`.
    pub flags_1: u32,
    /// Version names this object defines (indices 2, 3, ... in this order).
    /// When non-empty a base `VER_FLG_BASE` entry (index 1) named after the
    /// soname (or "a.out" without one) is emitted first.
    pub verdefs: Vec<String>,
    /// Version requirements: `(file, [(version, weak)])`. `vna_other` indices
    /// are assigned sequentially after the last verdef index.
    pub verneeds: Vec<(String, Vec<(String, bool)>)>,
    /// Exported `STT_FUNC` symbols with an optional version (must be listed
    /// in `verdefs`; unversioned ones get versym 1).
    pub defined: Vec<(String, Option<String>)>,
    /// Undefined `STT_FUNC` symbols with an optional `(file, version)` that
    /// must be listed in `verneeds`.
    pub undefined: Vec<(String, Option<(String, String)>)>,
    /// Patch `e_ident[EI_CLASS]` after writing (the layout stays that of the arch).
    pub ei_class_override: Option<u8>,
    /// Patch `e_ident[EI_DATA]` after writing (the layout stays that of the arch).
    pub ei_data_override: Option<u8>,
    /// `e_machine` override.
    pub machine_override: Option<u16>,
    /// `e_flags` override.
    pub e_flags_override: Option<u32>,
    /// `e_ident[EI_OSABI]`.
    pub osabi: u8,
    /// Omit the section header table (`e_shoff = 0`, `e_shnum = 0`) so readers
    /// must use `PT_DYNAMIC`.
    pub no_section_headers: bool,
    /// If set, a `PT_NOTE` / `.note.dlopen` with one note (owner "FDO", type
    /// 0x407c0c0a) whose descriptor is this JSON, NUL-terminated, padded to 4.
    pub note_dlopen: Option<String>,
    /// Symbol hash tables to emit (default: both SysV and GNU).
    pub hash_style: HashStyle,
    /// Strings placed, each NUL-terminated, at the end of the read-only
    /// `PT_LOAD` segment (after the version tables; no section names
    /// them), as string literals of a program's `.rodata`.
    pub rodata: Vec<String>,
}

/// A planned dynamic symbol (dynsym order: null, undefined..., defined...).
struct PlannedSym<'a> {
    name: &'a str,
    defined: bool,
    versym: u16,
}

/// A planned Verneed: (file, [(version, weak, vna_other index)]).
type NeedPlan<'a> = (&'a str, Vec<(&'a str, bool, u16)>);

/// Value of a planned dynamic entry.
enum DynVal {
    Str(StringId),
    Val(u64),
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

fn put_u32(out: &mut Vec<u8>, v: u32, big: bool) {
    out.extend_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

fn put_u64(out: &mut Vec<u8>, v: u64, big: bool) {
    out.extend_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

/// Encode the `.note.dlopen` section contents.
fn dlopen_note(json: &str, big: bool) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, 4, big);
    put_u32(&mut out, json.len() as u32 + 1, big);
    put_u32(&mut out, NT_FDO_DLOPEN_METADATA, big);
    out.extend_from_slice(b"FDO\0");
    out.extend_from_slice(json.as_bytes());
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// Number of SysV hash buckets for `n` symbols (the GNU ld progression).
fn sysv_bucket_count(n: usize) -> u32 {
    match n {
        0..=2 => 1,
        3..=16 => 3,
        17..=36 => 17,
        _ => 37,
    }
}

/// Build the ELF file described by `spec`.
///
/// Panics if the spec is inconsistent: a defined symbol's version missing
/// from `verdefs`, or an undefined symbol's `(file, version)` missing from
/// `verneeds`.
pub fn build(spec: &ElfSpec) -> Vec<u8> {
    let arch = spec.arch.unwrap_or(Arch::X86_64);
    let is_64 = arch.is_64();
    let big = arch.big_endian();
    let endian = if big {
        Endianness::Big
    } else {
        Endianness::Little
    };
    let kind = spec.kind;
    let is_dynamic = kind != Kind::Static;
    let sections = !spec.no_section_headers;
    let is_mips = arch == Arch::Mips64el;
    let base = match kind {
        Kind::Shared | Kind::Exec => 0,
        Kind::ExecNoPie | Kind::Static => EXEC_BASE,
    };
    let interp: Option<&str> = match kind {
        Kind::Exec | Kind::ExecNoPie => Some(spec.interp.as_deref().unwrap_or(arch.interp())),
        Kind::Shared => spec.interp.as_deref(),
        Kind::Static => None,
    };
    let has_phdr = matches!(kind, Kind::Exec | Kind::ExecNoPie);
    let (want_sysv, want_gnu) = match spec.hash_style {
        HashStyle::Both => (true, true),
        HashStyle::Sysv => (true, false),
        HashStyle::Gnu => (false, true),
    };
    let (want_sysv, want_gnu) = (want_sysv && is_dynamic, want_gnu && is_dynamic);
    let word = if is_64 { 8u64 } else { 4 };
    let dyn_size = 2 * word;
    // s390x and alpha use 8-byte SysV hash entries.
    let hash_entry = if arch == Arch::S390x { 8u64 } else { 4 };

    // ---- Version indices -------------------------------------------------
    let base_name: &str = spec.soname.as_deref().unwrap_or("a.out");
    let has_verdef = is_dynamic && !spec.verdefs.is_empty();
    let has_verneed = is_dynamic && spec.verneeds.iter().any(|(_, v)| !v.is_empty());
    let has_versym = has_verdef || has_verneed;
    let verdef_index = |name: &str| -> u16 {
        let pos = spec
            .verdefs
            .iter()
            .position(|v| v == name)
            .unwrap_or_else(|| panic!("elfgen: version {name:?} is not in verdefs"));
        pos as u16 + 2
    };
    let first_need_index: u16 = if has_verdef {
        spec.verdefs.len() as u16 + 2
    } else {
        2
    };
    let mut need_plan: Vec<NeedPlan> = Vec::new();
    if is_dynamic {
        let mut next = first_need_index;
        for (file, vers) in &spec.verneeds {
            if vers.is_empty() {
                continue;
            }
            let mut aux = Vec::new();
            for (v, weak) in vers {
                aux.push((v.as_str(), *weak, next));
                next += 1;
            }
            need_plan.push((file.as_str(), aux));
        }
    }
    let need_index = |file: &str, version: &str| -> u16 {
        need_plan
            .iter()
            .filter(|(f, _)| *f == file)
            .flat_map(|(_, aux)| aux.iter())
            .find(|(v, _, _)| *v == version)
            .map(|(_, _, idx)| *idx)
            .unwrap_or_else(|| panic!("elfgen: ({file:?}, {version:?}) is not in verneeds"))
    };

    // ---- Dynamic symbols ---------------------------------------------------
    let mut syms: Vec<PlannedSym> = Vec::new();
    if is_dynamic {
        for (name, ver) in &spec.undefined {
            let versym = match ver {
                Some((f, v)) => need_index(f, v),
                None => 1,
            };
            syms.push(PlannedSym {
                name: name.as_str(),
                defined: false,
                versym,
            });
        }
        for (name, ver) in &spec.defined {
            let versym = match ver {
                Some(v) => verdef_index(v),
                None => 1,
            };
            syms.push(PlannedSym {
                name: name.as_str(),
                defined: true,
                versym,
            });
        }
    }
    let nsyms = syms.len() as u32 + 1; // including the null symbol
    let gnu_symoffset = 1 + syms.iter().filter(|s| !s.defined).count() as u32;
    let gnu_symcount = nsyms - gnu_symoffset;
    let gnu_bloom_shift = if is_64 { 6 } else { 5 };

    let mut out = Vec::new();
    let mut w = Writer::new(endian, is_64, &mut out);

    // ---- Strings -----------------------------------------------------------
    let mut needed_ids = Vec::new();
    let mut soname_id = None;
    let mut rpath_id = None;
    let mut runpath_id = None;
    let mut sym_ids = Vec::new();
    let mut verdef_ids = Vec::new();
    let mut verneed_ids: Vec<(StringId, Vec<StringId>)> = Vec::new();
    if is_dynamic {
        w.require_dynstr();
        for n in &spec.needed {
            needed_ids.push(w.add_dynamic_string(n.as_bytes()));
        }
        soname_id = spec
            .soname
            .as_ref()
            .map(|s| w.add_dynamic_string(s.as_bytes()));
        rpath_id = spec
            .rpath
            .as_ref()
            .map(|s| w.add_dynamic_string(s.as_bytes()));
        runpath_id = spec
            .runpath
            .as_ref()
            .map(|s| w.add_dynamic_string(s.as_bytes()));
        for s in &syms {
            sym_ids.push(w.add_dynamic_string(s.name.as_bytes()));
        }
        if has_verdef {
            verdef_ids.push(w.add_dynamic_string(base_name.as_bytes()));
            for v in &spec.verdefs {
                verdef_ids.push(w.add_dynamic_string(v.as_bytes()));
            }
        }
        for (file, aux) in &need_plan {
            let f = w.add_dynamic_string(file.as_bytes());
            let names = aux
                .iter()
                .map(|(v, _, _)| w.add_dynamic_string(v.as_bytes()))
                .collect();
            verneed_ids.push((f, names));
        }
        w.reserve_null_dynamic_symbol_index();
        for _ in &syms {
            w.reserve_dynamic_symbol_index();
        }
    }

    // ---- Section indices (text index is needed even without headers) ------
    let mut interp_name = None;
    let mut note_name = None;
    let mut hash_name = None;
    let mut text_name = None;
    let mut got_name = None;
    let mut dynsym_index = SectionIndex(0);
    let text_index: SectionIndex;
    if sections {
        if interp.is_some() {
            interp_name = Some(w.add_section_name(b".interp"));
            w.reserve_section_index();
        }
        if spec.note_dlopen.is_some() {
            note_name = Some(w.add_section_name(b".note.dlopen"));
            w.reserve_section_index();
        }
        if want_sysv {
            hash_name = Some(w.add_section_name(b".hash"));
            w.reserve_section_index();
        }
        if want_gnu {
            w.reserve_gnu_hash_section_index();
        }
        if is_dynamic {
            dynsym_index = w.reserve_dynsym_section_index();
            w.reserve_dynstr_section_index();
        }
        if has_versym {
            w.reserve_gnu_versym_section_index();
        }
        if has_verdef {
            w.reserve_gnu_verdef_section_index();
        }
        if has_verneed {
            w.reserve_gnu_verneed_section_index();
        }
        text_name = Some(w.add_section_name(b".text"));
        text_index = w.reserve_section_index();
        if is_dynamic {
            w.reserve_dynamic_section_index();
        }
        if is_mips && is_dynamic {
            got_name = Some(w.add_section_name(b".got"));
            w.reserve_section_index();
        }
        w.reserve_shstrtab_section_index();
    } else {
        let before_text = [
            interp.is_some(),
            spec.note_dlopen.is_some(),
            want_sysv,
            want_gnu,
            is_dynamic, // .dynsym
            is_dynamic, // .dynstr
            has_versym,
            has_verdef,
            has_verneed,
        ];
        text_index = SectionIndex(1 + before_text.iter().filter(|b| **b).count() as u32);
    }

    // ---- Program header count ---------------------------------------------
    let phnum = has_phdr as u32
        + interp.is_some() as u32
        + 2 // PT_LOAD R, PT_LOAD R+X
        + 2 * is_dynamic as u32 // PT_LOAD RW, PT_DYNAMIC
        + spec.note_dlopen.is_some() as u32
        + 1; // PT_GNU_STACK

    // ---- Reserve file ranges (read-only page) --------------------------------
    w.reserve_file_header();
    w.reserve_program_headers(phnum);
    let phoff = if is_64 { 64u64 } else { 52 };
    let interp_off = interp.map(|i| w.reserve(i.len() + 1, 1) as u64);
    let note_bytes = spec.note_dlopen.as_deref().map(|j| dlopen_note(j, big));
    let note_off = note_bytes.as_ref().map(|n| w.reserve(n.len(), 4) as u64);
    let sysv_buckets = sysv_bucket_count(nsyms as usize);
    let sysv_size = (2 + sysv_buckets as u64 + nsyms as u64) * hash_entry;
    let sysv_off = want_sysv.then(|| w.reserve(sysv_size as usize, hash_entry as usize) as u64);
    let gnu_off = want_gnu.then(|| w.reserve_gnu_hash(1, 1, gnu_symcount) as u64);
    let mut dynsym_off = 0u64;
    let mut dynstr_off = 0u64;
    let mut dynstr_len = 0u64;
    if is_dynamic {
        dynsym_off = w.reserve_dynsym() as u64;
        dynstr_off = w.reserve_dynstr() as u64;
        dynstr_len = w.dynstr_len() as u64;
    }
    let versym_off = has_versym.then(|| w.reserve_gnu_versym() as u64);
    let verdef_count = spec.verdefs.len() + 1;
    let verdef_off = has_verdef.then(|| w.reserve_gnu_verdef(verdef_count, verdef_count) as u64);
    let vernaux_count: usize = need_plan.iter().map(|(_, a)| a.len()).sum();
    let verneed_off =
        has_verneed.then(|| w.reserve_gnu_verneed(need_plan.len(), vernaux_count) as u64);
    let rodata_bytes: Vec<u8> = spec
        .rodata
        .iter()
        .flat_map(|t| std::iter::once(0).chain(t.bytes()))
        .chain((!spec.rodata.is_empty()).then_some(0))
        .collect();
    let rodata_off = (!rodata_bytes.is_empty()).then(|| w.reserve(rodata_bytes.len(), 1) as u64);
    let ro_end = w.reserved_len() as u64;

    // ---- Text page -----------------------------------------------------------
    let text = arch.text();
    let text_off = align_up(ro_end, PAGE);
    w.reserve_until(text_off as usize);
    w.reserve(text.len(), 1);
    let text_end = w.reserved_len() as u64;
    let text_addr = base + text_off;

    // ---- Dynamic entries -----------------------------------------------------
    let dyn_off = align_up(text_end, PAGE);
    let mut dyns: Vec<(u32, DynVal)> = Vec::new();
    if is_dynamic {
        for id in &needed_ids {
            dyns.push((elf::DT_NEEDED, DynVal::Str(*id)));
        }
        if let Some(id) = soname_id {
            dyns.push((elf::DT_SONAME, DynVal::Str(id)));
        }
        if let Some(id) = rpath_id {
            dyns.push((elf::DT_RPATH, DynVal::Str(id)));
        }
        if let Some(id) = runpath_id {
            dyns.push((elf::DT_RUNPATH, DynVal::Str(id)));
        }
        if let Some(off) = sysv_off {
            dyns.push((elf::DT_HASH, DynVal::Val(base + off)));
        }
        if let Some(off) = gnu_off {
            dyns.push((elf::DT_GNU_HASH, DynVal::Val(base + off)));
        }
        dyns.push((elf::DT_STRTAB, DynVal::Val(base + dynstr_off)));
        dyns.push((elf::DT_SYMTAB, DynVal::Val(base + dynsym_off)));
        dyns.push((elf::DT_STRSZ, DynVal::Val(dynstr_len)));
        dyns.push((elf::DT_SYMENT, DynVal::Val(if is_64 { 24 } else { 16 })));
        if has_phdr && !is_mips {
            dyns.push((elf::DT_DEBUG, DynVal::Val(0)));
        }
        let flags_1 = spec.flags_1 | if kind == Kind::Exec { elf::DF_1_PIE } else { 0 };
        if flags_1 != 0 {
            dyns.push((elf::DT_FLAGS_1, DynVal::Val(flags_1.into())));
        }
        if let Some(off) = versym_off {
            dyns.push((elf::DT_VERSYM, DynVal::Val(base + off)));
        }
        if let Some(off) = verdef_off {
            dyns.push((elf::DT_VERDEF, DynVal::Val(base + off)));
            dyns.push((elf::DT_VERDEFNUM, DynVal::Val(verdef_count as u64)));
        }
        if let Some(off) = verneed_off {
            dyns.push((elf::DT_VERNEED, DynVal::Val(base + off)));
            dyns.push((elf::DT_VERNEEDNUM, DynVal::Val(need_plan.len() as u64)));
        }
        if is_mips {
            // Minimal MIPS ABI dynamic information: a 2-entry local GOT right
            // after .dynamic, no global GOT entries (GOTSYM == SYMTABNO).
            let n_mips = 7u64;
            let got_addr = base + dyn_off + (dyns.len() as u64 + n_mips + 1) * dyn_size;
            dyns.push((elf::DT_PLTGOT, DynVal::Val(got_addr)));
            dyns.push((elf::DT_MIPS_RLD_VERSION, DynVal::Val(1)));
            dyns.push((elf::DT_MIPS_FLAGS, DynVal::Val(elf::RHF_NOTPOT.into())));
            dyns.push((elf::DT_MIPS_BASE_ADDRESS, DynVal::Val(base)));
            dyns.push((elf::DT_MIPS_LOCAL_GOTNO, DynVal::Val(2)));
            dyns.push((elf::DT_MIPS_SYMTABNO, DynVal::Val(nsyms.into())));
            dyns.push((elf::DT_MIPS_GOTSYM, DynVal::Val(nsyms.into())));
        }
        dyns.push((elf::DT_NULL, DynVal::Val(0)));
    }
    let mut got_off = 0u64;
    let mut rw_end = dyn_off;
    if is_dynamic {
        w.reserve_until(dyn_off as usize);
        let off = w.reserve_dynamic(dyns.len()) as u64;
        debug_assert_eq!(off, dyn_off);
        if is_mips {
            got_off = w.reserve(2 * word as usize, word as usize) as u64;
            debug_assert_eq!(got_off, dyn_off + dyns.len() as u64 * dyn_size);
        }
        rw_end = w.reserved_len() as u64;
    }

    // ---- Non-loaded tail -----------------------------------------------------
    if sections {
        w.reserve_shstrtab();
        w.reserve_section_headers();
    }

    // =========================================================================
    // Write
    // =========================================================================
    let e_type = match kind {
        Kind::Shared | Kind::Exec => elf::ET_DYN,
        Kind::ExecNoPie | Kind::Static => elf::ET_EXEC,
    };
    let e_entry = if kind == Kind::Shared && interp.is_none() {
        0
    } else {
        text_addr
    };
    w.write_file_header(&FileHeader {
        os_abi: spec.osabi,
        abi_version: 0,
        e_type,
        e_machine: spec.machine_override.unwrap_or(arch.machine()),
        e_entry,
        e_flags: spec.e_flags_override.unwrap_or(arch.e_flags()),
    })
    .expect("elfgen: write file header");

    w.write_align_program_headers();
    let seg = |p_type: u32, p_flags: u32, off: u64, size: u64, align: u64| ProgramHeader {
        p_type,
        p_flags,
        p_offset: off,
        p_vaddr: base + off,
        p_paddr: base + off,
        p_filesz: size,
        p_memsz: size,
        p_align: align,
    };
    let phdr_size = phnum as u64 * if is_64 { 56 } else { 32 };
    if has_phdr {
        w.write_program_header(&seg(elf::PT_PHDR, elf::PF_R, phoff, phdr_size, word));
    }
    if let (Some(i), Some(off)) = (interp, interp_off) {
        w.write_program_header(&seg(elf::PT_INTERP, elf::PF_R, off, i.len() as u64 + 1, 1));
    }
    w.write_program_header(&seg(elf::PT_LOAD, elf::PF_R, 0, ro_end, PAGE));
    w.write_program_header(&seg(
        elf::PT_LOAD,
        elf::PF_R | elf::PF_X,
        text_off,
        text_end - text_off,
        PAGE,
    ));
    if is_dynamic {
        w.write_program_header(&seg(
            elf::PT_LOAD,
            elf::PF_R | elf::PF_W,
            dyn_off,
            rw_end - dyn_off,
            PAGE,
        ));
        let dsize = dyns.len() as u64 * dyn_size;
        w.write_program_header(&seg(
            elf::PT_DYNAMIC,
            elf::PF_R | elf::PF_W,
            dyn_off,
            dsize,
            word,
        ));
    }
    if let (Some(n), Some(off)) = (&note_bytes, note_off) {
        w.write_program_header(&seg(elf::PT_NOTE, elf::PF_R, off, n.len() as u64, 4));
    }
    w.write_program_header(&ProgramHeader {
        p_type: elf::PT_GNU_STACK,
        p_flags: elf::PF_R | elf::PF_W,
        p_offset: 0,
        p_vaddr: 0,
        p_paddr: 0,
        p_filesz: 0,
        p_memsz: 0,
        p_align: 16,
    });

    if let (Some(i), Some(off)) = (interp, interp_off) {
        w.pad_until(off as usize);
        w.write(i.as_bytes());
        w.write(&[0]);
    }
    if let (Some(n), Some(off)) = (&note_bytes, note_off) {
        w.pad_until(off as usize);
        w.write(n);
    }
    if let Some(off) = sysv_off {
        w.pad_until(off as usize);
        let nb = sysv_buckets as usize;
        let mut buckets = vec![0u32; nb];
        let mut chains = vec![0u32; nsyms as usize];
        for (i, s) in syms.iter().enumerate() {
            let idx = i + 1;
            let b = (elf::hash(s.name.as_bytes()) % sysv_buckets) as usize;
            chains[idx] = buckets[b];
            buckets[b] = idx as u32;
        }
        let mut data = Vec::new();
        let header = [sysv_buckets, nsyms];
        for v in header.iter().chain(&buckets).chain(&chains) {
            if hash_entry == 8 {
                put_u64(&mut data, u64::from(*v), big);
            } else {
                put_u32(&mut data, *v, big);
            }
        }
        w.write(&data);
    }
    if let Some(off) = gnu_off {
        w.pad_until(off as usize);
        let names: Vec<&str> = syms[(gnu_symoffset - 1) as usize..]
            .iter()
            .map(|s| s.name)
            .collect();
        w.write_gnu_hash(gnu_symoffset, gnu_bloom_shift, 1, 1, gnu_symcount, |i| {
            elf::gnu_hash(names[i as usize].as_bytes())
        });
    }
    if is_dynamic {
        w.write_null_dynamic_symbol();
        for (s, id) in syms.iter().zip(&sym_ids) {
            w.write_dynamic_symbol(&Sym {
                name: Some(*id),
                section: None,
                st_info: (elf::STB_GLOBAL << 4) | elf::STT_FUNC,
                st_other: elf::STV_DEFAULT,
                st_shndx: if s.defined {
                    text_index.0 as u16
                } else {
                    elf::SHN_UNDEF
                },
                st_value: if s.defined { text_addr } else { 0 },
                st_size: if s.defined { text.len() as u64 } else { 0 },
            });
        }
        w.write_dynstr();
    }
    if has_versym {
        w.write_null_gnu_versym();
        for s in &syms {
            w.write_gnu_versym(s.versym);
        }
    }
    if has_verdef {
        w.write_align_gnu_verdef();
        for (i, id) in verdef_ids.iter().enumerate() {
            w.write_gnu_verdef(&Verdef {
                version: elf::VER_DEF_CURRENT,
                flags: if i == 0 { elf::VER_FLG_BASE } else { 0 },
                index: i as u16 + 1,
                aux_count: 1,
                name: *id,
            });
        }
    }
    if has_verneed {
        w.write_align_gnu_verneed();
        for ((file_id, name_ids), (_, aux)) in verneed_ids.iter().zip(&need_plan) {
            w.write_gnu_verneed(&Verneed {
                version: elf::VER_NEED_CURRENT,
                aux_count: aux.len() as u16,
                file: *file_id,
            });
            for (name_id, (_, weak, index)) in name_ids.iter().zip(aux) {
                w.write_gnu_vernaux(&Vernaux {
                    flags: if *weak { elf::VER_FLG_WEAK } else { 0 },
                    index: *index,
                    name: *name_id,
                });
            }
        }
    }
    if let Some(off) = rodata_off {
        w.pad_until(off as usize);
        w.write(&rodata_bytes);
    }
    w.pad_until(text_off as usize);
    w.write(&text);
    if is_dynamic {
        w.pad_until(dyn_off as usize);
        w.write_align_dynamic();
        for (tag, val) in &dyns {
            match val {
                DynVal::Str(id) => w.write_dynamic_string(*tag, *id),
                DynVal::Val(v) => w.write_dynamic(*tag, *v),
            }
        }
        if is_mips {
            w.pad_until(got_off as usize);
            w.write(&vec![0u8; 2 * word as usize]);
        }
    }

    if sections {
        w.write_shstrtab();
        w.write_null_section_header();
        let plain =
            |name: Option<StringId>, sh_type: u32, flags: u32, off: u64, size: u64, align: u64| {
                SectionHeader {
                    name,
                    sh_type,
                    sh_flags: flags.into(),
                    sh_addr: base + off,
                    sh_offset: off,
                    sh_size: size,
                    sh_link: 0,
                    sh_info: 0,
                    sh_addralign: align,
                    sh_entsize: 0,
                }
            };
        if let (Some(i), Some(off)) = (interp, interp_off) {
            w.write_section_header(&plain(
                interp_name,
                elf::SHT_PROGBITS,
                elf::SHF_ALLOC,
                off,
                i.len() as u64 + 1,
                1,
            ));
        }
        if let (Some(n), Some(off)) = (&note_bytes, note_off) {
            w.write_section_header(&plain(
                note_name,
                elf::SHT_NOTE,
                elf::SHF_ALLOC,
                off,
                n.len() as u64,
                4,
            ));
        }
        if let Some(off) = sysv_off {
            let mut sh = plain(
                hash_name,
                elf::SHT_HASH,
                elf::SHF_ALLOC,
                off,
                sysv_size,
                hash_entry,
            );
            sh.sh_link = dynsym_index.0;
            sh.sh_entsize = hash_entry;
            w.write_section_header(&sh);
        }
        if let Some(off) = gnu_off {
            w.write_gnu_hash_section_header(base + off);
        }
        if is_dynamic {
            w.write_dynsym_section_header(base + dynsym_off, 1);
            w.write_dynstr_section_header(base + dynstr_off);
        }
        if let Some(off) = versym_off {
            w.write_gnu_versym_section_header(base + off);
        }
        if let Some(off) = verdef_off {
            w.write_gnu_verdef_section_header(base + off);
        }
        if let Some(off) = verneed_off {
            w.write_gnu_verneed_section_header(base + off);
        }
        w.write_section_header(&plain(
            text_name,
            elf::SHT_PROGBITS,
            elf::SHF_ALLOC | elf::SHF_EXECINSTR,
            text_off,
            text.len() as u64,
            16,
        ));
        if is_dynamic {
            w.write_dynamic_section_header(base + dyn_off);
        }
        if is_mips && is_dynamic {
            let mut sh = plain(
                got_name,
                elf::SHT_PROGBITS,
                elf::SHF_ALLOC | elf::SHF_WRITE | elf::SHF_MIPS_GPREL,
                got_off,
                2 * word,
                word,
            );
            sh.sh_entsize = word;
            w.write_section_header(&sh);
        }
        w.write_shstrtab_section_header();
    }
    debug_assert_eq!(w.reserved_len(), w.len());
    drop(w);

    if let Some(c) = spec.ei_class_override {
        out[4] = c; // EI_CLASS
    }
    if let Some(d) = spec.ei_data_override {
        out[5] = d; // EI_DATA
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{build, Arch, ElfSpec, HashStyle, Kind, NT_FDO_DLOPEN_METADATA};
    use object::elf;
    use object::endian::{Endian, Endianness};
    use object::read::elf::{
        Dyn as _, ElfFile, FileHeader as RFileHeader, ProgramHeader as RProgramHeader,
        SectionHeader as RSectionHeader, Sym as _,
    };
    use std::path::Path;
    use std::process::Command;

    fn s(x: &str) -> String {
        x.to_string()
    }

    /// A spec exercising every dynamic feature.
    fn rich_spec(arch: Arch, kind: Kind) -> ElfSpec {
        ElfSpec {
            arch: Some(arch),
            kind,
            soname: Some(s("libme.so.1")),
            needed: vec![s("libfoo.so.1"), s("libc.so.6"), s("libbar.so.2")],
            rpath: Some(s("$ORIGIN/../lib:/opt/rp")),
            runpath: Some(s("/opt/run")),
            flags_1: elf::DF_1_NODEFLIB,
            verdefs: vec![s("ME_1.0"), s("ME_2.0")],
            verneeds: vec![
                (
                    s("libc.so.6"),
                    vec![(s("GLIBC_2.2.5"), false), (s("GLIBC_2.34"), true)],
                ),
                (s("libfoo.so.1"), vec![(s("FOO_1"), false)]),
            ],
            defined: vec![
                (s("me_fn"), Some(s("ME_1.0"))),
                (s("me_fn2"), Some(s("ME_2.0"))),
                (s("me_plain"), None),
            ],
            undefined: vec![
                (s("printf"), Some((s("libc.so.6"), s("GLIBC_2.2.5")))),
                (s("foo"), Some((s("libfoo.so.1"), s("FOO_1")))),
                (s("bar"), None),
            ],
            ..Default::default()
        }
    }

    /// (file, [(name, vna_flags, vna_other)])
    type NeedView = (String, Vec<(String, u16, u16)>);

    /// Everything the tests compare, as seen by one reader.
    #[derive(Debug, PartialEq, Eq, Clone)]
    struct View {
        machine: u16,
        is_64: bool,
        big: bool,
        e_type: u16,
        e_flags: u32,
        interp: Option<String>,
        needed: Vec<String>,
        soname: Option<String>,
        rpath: Option<String>,
        runpath: Option<String>,
        flags_1: Option<u64>,
        /// (flags, index, name)
        verdefs: Vec<(u16, u16, String)>,
        verneeds: Vec<NeedView>,
        /// (name, defined, versym)
        dynsyms: Vec<(String, bool, Option<u16>)>,
    }

    impl View {
        fn without_versions(mut self) -> View {
            self.verdefs.clear();
            self.verneeds.clear();
            for d in &mut self.dynsyms {
                d.2 = None;
            }
            self
        }
    }

    /// The view a correct reader must produce, derived from the spec alone.
    fn expected(spec: &ElfSpec) -> View {
        let arch = spec.arch.unwrap_or(Arch::X86_64);
        let interp = match spec.kind {
            Kind::Exec | Kind::ExecNoPie => Some(spec.interp.clone().unwrap_or(s(arch.interp()))),
            Kind::Shared => spec.interp.clone(),
            Kind::Static => None,
        };
        let mut verdefs = Vec::new();
        if !spec.verdefs.is_empty() {
            let base = spec.soname.clone().unwrap_or(s("a.out"));
            verdefs.push((elf::VER_FLG_BASE, 1, base));
            for (i, v) in spec.verdefs.iter().enumerate() {
                verdefs.push((0, i as u16 + 2, v.clone()));
            }
        }
        let mut next = verdefs.len().max(1) as u16 + 1;
        let mut verneeds = Vec::new();
        for (file, vers) in &spec.verneeds {
            let mut aux = Vec::new();
            for (v, weak) in vers {
                aux.push((v.clone(), if *weak { elf::VER_FLG_WEAK } else { 0 }, next));
                next += 1;
            }
            verneeds.push((file.clone(), aux));
        }
        let versioned = !verdefs.is_empty() || !verneeds.is_empty();
        let mut dynsyms = Vec::new();
        for (name, ver) in &spec.undefined {
            let idx = match ver {
                None => 1,
                Some((f, v)) => {
                    verneeds
                        .iter()
                        .filter(|n| &n.0 == f)
                        .flat_map(|n| &n.1)
                        .find(|a| &a.0 == v)
                        .unwrap()
                        .2
                }
            };
            dynsyms.push((name.clone(), false, versioned.then_some(idx)));
        }
        for (name, ver) in &spec.defined {
            let idx = match ver {
                None => 1,
                Some(v) => verdefs.iter().find(|d| &d.2 == v).unwrap().1,
            };
            dynsyms.push((name.clone(), true, versioned.then_some(idx)));
        }
        let flags_1 = u64::from(spec.flags_1)
            | if spec.kind == Kind::Exec {
                u64::from(elf::DF_1_PIE)
            } else {
                0
            };
        View {
            machine: spec.machine_override.unwrap_or(arch.machine()),
            is_64: arch.is_64(),
            big: arch.big_endian(),
            e_type: match spec.kind {
                Kind::Shared | Kind::Exec => elf::ET_DYN,
                Kind::ExecNoPie | Kind::Static => elf::ET_EXEC,
            },
            e_flags: spec.e_flags_override.unwrap_or(arch.e_flags()),
            interp,
            needed: spec.needed.clone(),
            soname: spec.soname.clone(),
            rpath: spec.rpath.clone(),
            runpath: spec.runpath.clone(),
            flags_1: (flags_1 != 0).then_some(flags_1),
            verdefs,
            verneeds,
            dynsyms,
        }
    }

    fn view_goblin(data: &[u8]) -> View {
        let e = goblin::elf::Elf::parse(data).expect("goblin parse");
        assert!(e.rpaths.len() <= 1 && e.runpaths.len() <= 1);
        let strs = &e.dynstrtab;
        let name = |off: usize| s(strs.get_at(off).expect("dynstr offset"));
        let mut verdefs = Vec::new();
        if let Some(vd) = &e.verdef {
            for d in vd.iter() {
                let aux = d.iter().next().expect("verdaux");
                verdefs.push((d.vd_flags, d.vd_ndx, name(aux.vda_name)));
            }
        }
        let mut verneeds = Vec::new();
        if let Some(vn) = &e.verneed {
            for n in vn.iter() {
                let aux = n
                    .iter()
                    .map(|a| (name(a.vna_name), a.vna_flags, a.vna_other))
                    .collect();
                verneeds.push((name(n.vn_file), aux));
            }
        }
        let dynsyms = e
            .dynsyms
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, sym)| {
                let vs = e
                    .versym
                    .as_ref()
                    .map(|v| v.get_at(i).expect("versym").vs_val);
                (name(sym.st_name), sym.st_shndx != 0, vs)
            })
            .collect();
        let flags_1 = e
            .dynamic
            .as_ref()
            .and_then(|d| {
                d.dyns
                    .iter()
                    .find(|d| d.d_tag == goblin::elf::dynamic::DT_FLAGS_1)
            })
            .map(|d| d.d_val);
        View {
            machine: e.header.e_machine,
            is_64: e.is_64,
            big: !e.little_endian,
            e_type: e.header.e_type,
            e_flags: e.header.e_flags,
            interp: e.interpreter.map(s),
            needed: e.libraries.iter().map(|l| s(l)).collect(),
            soname: e.soname.map(s),
            rpath: e.rpaths.first().map(|r| s(r)),
            runpath: e.runpaths.first().map(|r| s(r)),
            flags_1,
            verdefs,
            verneeds,
            dynsyms,
        }
    }

    fn utf8(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).expect("utf8")
    }

    /// object, through the section header table.
    fn view_object_sections<Elf: RFileHeader<Endian = Endianness>>(data: &[u8]) -> View {
        let file = ElfFile::<Elf>::parse(data).expect("object parse");
        let en = file.endian();
        let h = file.elf_header();
        let secs = file.elf_section_table();
        let mut v = View {
            machine: h.e_machine(en),
            is_64: h.is_class_64(),
            big: h.is_big_endian(),
            e_type: h.e_type(en),
            e_flags: h.e_flags(en),
            interp: secs.section_by_name(en, b".interp").map(|(_, sh)| {
                let d = sh.data(en, data).unwrap();
                utf8(&d[..d.len() - 1])
            }),
            needed: vec![],
            soname: None,
            rpath: None,
            runpath: None,
            flags_1: None,
            verdefs: vec![],
            verneeds: vec![],
            dynsyms: vec![],
        };
        let Some((dyns, link)) = secs.dynamic(en, data).unwrap() else {
            return v;
        };
        let strings = secs.strings(en, data, link).unwrap();
        for d in dyns {
            let text = || utf8(d.string(en, strings).unwrap());
            match d.tag32(en).unwrap() {
                elf::DT_NEEDED => v.needed.push(text()),
                elf::DT_SONAME => v.soname = Some(text()),
                elf::DT_RPATH => v.rpath = Some(text()),
                elf::DT_RUNPATH => v.runpath = Some(text()),
                elf::DT_FLAGS_1 => v.flags_1 = Some(d.d_val(en).into()),
                _ => {}
            }
        }
        if let Some((mut it, link)) = secs.gnu_verdef(en, data).unwrap() {
            let strings = secs.strings(en, data, link).unwrap();
            while let Some((vd, mut aux)) = it.next().unwrap() {
                let name = aux.next().unwrap().unwrap().name(en, strings).unwrap();
                assert_eq!(vd.vd_hash.get(en), elf::hash(name));
                v.verdefs
                    .push((vd.vd_flags.get(en), vd.vd_ndx.get(en), utf8(name)));
            }
        }
        if let Some((mut it, link)) = secs.gnu_verneed(en, data).unwrap() {
            let strings = secs.strings(en, data, link).unwrap();
            while let Some((vn, mut aux)) = it.next().unwrap() {
                let mut list = Vec::new();
                while let Some(a) = aux.next().unwrap() {
                    let name = a.name(en, strings).unwrap();
                    assert_eq!(a.vna_hash.get(en), elf::hash(name));
                    list.push((utf8(name), a.vna_flags.get(en), a.vna_other.get(en)));
                }
                v.verneeds.push((utf8(vn.file(en, strings).unwrap()), list));
            }
        }
        let versyms = secs.gnu_versym(en, data).unwrap().map(|x| x.0);
        let symtab = secs.symbols(en, data, elf::SHT_DYNSYM).unwrap();
        for (i, sym) in symtab.symbols().iter().enumerate().skip(1) {
            let name = utf8(sym.name(en, symtab.strings()).unwrap());
            let vs = versyms.map(|t| t[i].0.get(en));
            v.dynsyms
                .push((name, sym.st_shndx(en) != elf::SHN_UNDEF, vs));
        }
        v
    }

    /// A reader that uses nothing but the program headers (object for the
    /// header structs, everything else decoded by hand). Also checks that
    /// both hash tables agree on the symbol count and find every defined
    /// symbol.
    fn view_object_segments<Elf: RFileHeader<Endian = Endianness>>(data: &[u8]) -> View {
        let file = ElfFile::<Elf>::parse(data).expect("object parse");
        let en = file.endian();
        let h = file.elf_header();
        let phdrs = file.elf_program_headers();
        let is_64 = h.is_class_64();
        let off = |addr: u64| -> usize {
            let p = phdrs
                .iter()
                .filter(|p| p.p_type(en) == elf::PT_LOAD)
                .find(|p| {
                    let va: u64 = p.p_vaddr(en).into();
                    let sz: u64 = p.p_filesz(en).into();
                    addr >= va && addr < va + sz
                })
                .unwrap_or_else(|| panic!("address {addr:#x} not in any PT_LOAD"));
            (addr - p.p_vaddr(en).into() + p.p_offset(en).into()) as usize
        };
        let u16_at = |o: usize| en.read_u16_bytes(data[o..o + 2].try_into().unwrap());
        let u32_at = |o: usize| en.read_u32_bytes(data[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| en.read_u64_bytes(data[o..o + 8].try_into().unwrap());
        let cstr = |o: usize| {
            let end = data[o..].iter().position(|b| *b == 0).unwrap();
            utf8(&data[o..o + end])
        };
        let mut v = View {
            machine: h.e_machine(en),
            is_64,
            big: h.is_big_endian(),
            e_type: h.e_type(en),
            e_flags: h.e_flags(en),
            interp: phdrs
                .iter()
                .find_map(|p| p.interpreter(en, data).unwrap())
                .map(utf8),
            needed: vec![],
            soname: None,
            rpath: None,
            runpath: None,
            flags_1: None,
            verdefs: vec![],
            verneeds: vec![],
            dynsyms: vec![],
        };
        let Some(dyns) = phdrs.iter().find_map(|p| p.dynamic(en, data).unwrap()) else {
            return v;
        };
        let mut tags: Vec<(u32, u64)> = Vec::new();
        for d in dyns {
            let tag = d.tag32(en).unwrap();
            if tag == elf::DT_NULL {
                break;
            }
            tags.push((tag, d.d_val(en).into()));
        }
        let get = |t: u32| tags.iter().find(|(tag, _)| *tag == t).map(|(_, v)| *v);
        let strtab = get(elf::DT_STRTAB).expect("DT_STRTAB");
        let strsz = get(elf::DT_STRSZ).expect("DT_STRSZ");
        assert_eq!(data[off(strtab)], 0);
        assert_eq!(data[off(strtab + strsz - 1)], 0);
        let string = |o: u64| {
            assert!(o < strsz);
            cstr(off(strtab + o))
        };
        for (tag, val) in &tags {
            match *tag {
                elf::DT_NEEDED => v.needed.push(string(*val)),
                elf::DT_SONAME => v.soname = Some(string(*val)),
                elf::DT_RPATH => v.rpath = Some(string(*val)),
                elf::DT_RUNPATH => v.runpath = Some(string(*val)),
                elf::DT_FLAGS_1 => v.flags_1 = Some(*val),
                _ => {}
            }
        }

        // Symbols: count from DT_GNU_HASH and/or DT_HASH.
        let symtab = get(elf::DT_SYMTAB).expect("DT_SYMTAB");
        let syment = get(elf::DT_SYMENT).expect("DT_SYMENT");
        assert_eq!(syment, if is_64 { 24 } else { 16 });
        let sysv_entry = if is_64 && h.e_machine(en) == elf::EM_S390 {
            8
        } else {
            4
        };
        let sysv_word = |o: usize| {
            if sysv_entry == 8 {
                u64_at(o) as usize
            } else {
                u32_at(o) as usize
            }
        };
        let sysv_count = get(elf::DT_HASH).map(|a| sysv_word(off(a) + sysv_entry));
        let gnu = get(elf::DT_GNU_HASH).map(|a| {
            let o = off(a);
            let (nb, symoff, bloom_n) = (
                u32_at(o) as usize,
                u32_at(o + 4) as usize,
                u32_at(o + 8) as usize,
            );
            let bloom_shift = u32_at(o + 12);
            let wsz = if is_64 { 8 } else { 4 };
            let buckets = o + 16 + bloom_n * wsz;
            let chains = buckets + nb * 4;
            let max = (0..nb)
                .map(|b| u32_at(buckets + 4 * b) as usize)
                .max()
                .unwrap_or(0);
            let count = if max < symoff {
                symoff
            } else {
                let mut i = max;
                while u32_at(chains + 4 * (i - symoff)) & 1 == 0 {
                    i += 1;
                }
                i + 1
            };
            (
                count,
                nb,
                symoff,
                bloom_n,
                bloom_shift,
                o + 16,
                buckets,
                chains,
            )
        });
        let nsyms = match (sysv_count, gnu) {
            (Some(a), Some(g)) => {
                assert_eq!(a, g.0, "DT_HASH and DT_GNU_HASH disagree");
                a
            }
            (Some(a), None) => a,
            (None, Some(g)) => g.0,
            (None, None) => panic!("no hash table"),
        };
        let syms: &[Elf::Sym] = object::pod::slice_from_bytes(&data[off(symtab)..], nsyms)
            .expect("dynsym")
            .0;
        let versym = get(elf::DT_VERSYM);
        for (i, sym) in syms.iter().enumerate().skip(1) {
            let name = string(u64::from(sym.st_name(en)));
            let vs = versym.map(|a| u16_at(off(a) + 2 * i));
            let defined = sym.st_shndx(en) != elf::SHN_UNDEF;
            if defined {
                if let Some(a) = get(elf::DT_HASH) {
                    let o = off(a);
                    let nb = sysv_word(o);
                    let hv = elf::hash(name.as_bytes()) as usize;
                    let mut idx = sysv_word(o + sysv_entry * (2 + hv % nb));
                    while idx != 0 && idx != i {
                        idx = sysv_word(o + sysv_entry * (2 + nb + idx));
                    }
                    assert_eq!(idx, i, "SysV hash lookup of {name}");
                }
                if let Some((_, nb, symoff, bloom_n, shift, bloom, buckets, chains)) = gnu {
                    let hv = elf::gnu_hash(name.as_bytes());
                    let bits = if is_64 { 64 } else { 32 };
                    let wi = (hv / bits) as usize % bloom_n;
                    let word = if is_64 {
                        u64_at(bloom + 8 * wi)
                    } else {
                        u64::from(u32_at(bloom + 4 * wi))
                    };
                    let mask = (1u64 << (hv % bits)) | (1u64 << ((hv >> shift) % bits));
                    assert_eq!(word & mask, mask, "bloom filter rejects {name}");
                    let mut idx = u32_at(buckets + 4 * (hv as usize % nb)) as usize;
                    assert!(idx >= symoff, "empty GNU bucket for {name}");
                    loop {
                        let ch = u32_at(chains + 4 * (idx - symoff));
                        if ch | 1 == hv | 1 && idx == i {
                            break;
                        }
                        assert_eq!(ch & 1, 0, "GNU hash lookup of {name} fell off its chain");
                        idx += 1;
                    }
                }
            }
            v.dynsyms.push((name, defined, vs));
        }

        if let Some(a) = get(elf::DT_VERDEF) {
            let mut o = off(a);
            for _ in 0..get(elf::DT_VERDEFNUM).expect("DT_VERDEFNUM") {
                assert_eq!(u16_at(o), 1);
                let name = string(u64::from(u32_at(o + u32_at(o + 12) as usize)));
                assert_eq!(u32_at(o + 8), elf::hash(name.as_bytes()));
                v.verdefs.push((u16_at(o + 2), u16_at(o + 4), name));
                o += u32_at(o + 16) as usize;
            }
        }
        if let Some(a) = get(elf::DT_VERNEED) {
            let mut o = off(a);
            for _ in 0..get(elf::DT_VERNEEDNUM).expect("DT_VERNEEDNUM") {
                assert_eq!(u16_at(o), 1);
                let file = string(u64::from(u32_at(o + 4)));
                let mut aux = Vec::new();
                let mut x = o + u32_at(o + 8) as usize;
                for _ in 0..u16_at(o + 2) {
                    let name = string(u64::from(u32_at(x + 8)));
                    assert_eq!(u32_at(x), elf::hash(name.as_bytes()));
                    aux.push((name, u16_at(x + 4), u16_at(x + 6)));
                    x += u32_at(x + 12) as usize;
                }
                v.verneeds.push((file, aux));
                o += u32_at(o + 12) as usize;
            }
        }
        v
    }

    /// Structural checks on segments (and sections when present).
    fn check_layout<Elf: RFileHeader<Endian = Endianness>>(data: &[u8], ctx: &str) {
        let file = ElfFile::<Elf>::parse(data).expect("object parse");
        let en = file.endian();
        let h = file.elf_header();
        let phdrs = file.elf_program_headers();
        let u = |w: Elf::Word| -> u64 { w.into() };
        let loads: Vec<_> = phdrs
            .iter()
            .filter(|p| p.p_type(en) == elf::PT_LOAD)
            .collect();
        assert!(!loads.is_empty(), "{ctx}: no PT_LOAD");
        let mut prev_end = 0;
        for p in &loads {
            assert_eq!(u(p.p_align(en)), 0x1000, "{ctx}");
            assert_eq!(u(p.p_offset(en)) % 0x1000, 0, "{ctx}");
            assert_eq!(u(p.p_vaddr(en)) % 0x1000, 0, "{ctx}");
            assert!(
                u(p.p_vaddr(en)) >= prev_end,
                "{ctx}: PT_LOADs overlap or unsorted"
            );
            assert!(
                u(p.p_offset(en)) + u(p.p_filesz(en)) <= data.len() as u64,
                "{ctx}"
            );
            prev_end = u(p.p_vaddr(en)) + u(p.p_memsz(en));
        }
        let covering = |off: u64, size: u64| {
            loads.iter().copied().find(|p| {
                let o = u(p.p_offset(en));
                off >= o && off + size <= o + u(p.p_filesz(en))
            })
        };
        for p in phdrs {
            let t = p.p_type(en);
            if matches!(
                t,
                elf::PT_PHDR | elf::PT_INTERP | elf::PT_DYNAMIC | elf::PT_NOTE
            ) {
                let l = covering(u(p.p_offset(en)), u(p.p_filesz(en)))
                    .unwrap_or_else(|| panic!("{ctx}: segment {t} outside PT_LOAD"));
                assert_eq!(
                    u(p.p_vaddr(en)) - u(l.p_vaddr(en)),
                    u(p.p_offset(en)) - u(l.p_offset(en)),
                    "{ctx}"
                );
                if t == elf::PT_DYNAMIC {
                    assert_ne!(
                        l.p_flags(en) & elf::PF_W,
                        0,
                        "{ctx}: PT_DYNAMIC not writable"
                    );
                } else {
                    assert_eq!(l.p_flags(en) & (elf::PF_W | elf::PF_X), 0, "{ctx}");
                }
            }
            if t == elf::PT_PHDR {
                assert_eq!(u(p.p_offset(en)), u(h.e_phoff(en)), "{ctx}");
                assert!(
                    phdrs.iter().position(|q| q.p_type(en) == elf::PT_LOAD)
                        > phdrs.iter().position(|q| q.p_type(en) == elf::PT_PHDR)
                );
            }
        }
        let entry: u64 = u(h.e_entry(en));
        if entry != 0 {
            let l = loads
                .iter()
                .find(|p| entry >= u(p.p_vaddr(en)) && entry < u(p.p_vaddr(en)) + u(p.p_memsz(en)))
                .unwrap_or_else(|| panic!("{ctx}: entry not mapped"));
            assert_ne!(l.p_flags(en) & elf::PF_X, 0, "{ctx}: entry not executable");
        }
        for sh in file.elf_section_table().iter() {
            let flags: u64 = sh.sh_flags(en).into();
            if flags & u64::from(elf::SHF_ALLOC) == 0 {
                continue;
            }
            let (o, sz) = (u(sh.sh_offset(en)), u(sh.sh_size(en)));
            let l =
                covering(o, sz).unwrap_or_else(|| panic!("{ctx}: alloc section outside PT_LOAD"));
            assert_eq!(
                u(sh.sh_addr(en)) - u(l.p_vaddr(en)),
                o - u(l.p_offset(en)),
                "{ctx}"
            );
            let w = flags & u64::from(elf::SHF_WRITE) != 0;
            let x = flags & u64::from(elf::SHF_EXECINSTR) != 0;
            assert_eq!(w, l.p_flags(en) & elf::PF_W != 0, "{ctx}");
            assert_eq!(x, l.p_flags(en) & elf::PF_X != 0, "{ctx}");
        }
    }

    fn check_all_readers(spec: &ElfSpec, data: &[u8], ctx: &str) {
        let exp = expected(spec);
        let sh = !spec.no_section_headers;
        let goblin_ok = !(spec.hash_style == HashStyle::Sysv && spec.arch == Some(Arch::S390x));
        if goblin_ok {
            // goblin reads version sections only through section headers.
            let g = view_goblin(data);
            if sh {
                assert_eq!(g, exp, "{ctx}: goblin");
            } else {
                assert_eq!(
                    g,
                    exp.clone().without_versions(),
                    "{ctx}: goblin (no shdrs)"
                );
            }
        }
        if exp.is_64 {
            if sh {
                assert_eq!(
                    view_object_sections::<elf::FileHeader64<Endianness>>(data),
                    exp,
                    "{ctx}: object sections"
                );
            }
            assert_eq!(
                view_object_segments::<elf::FileHeader64<Endianness>>(data),
                exp,
                "{ctx}: object segments"
            );
            check_layout::<elf::FileHeader64<Endianness>>(data, ctx);
        } else {
            if sh {
                assert_eq!(
                    view_object_sections::<elf::FileHeader32<Endianness>>(data),
                    exp,
                    "{ctx}: object sections"
                );
            }
            assert_eq!(
                view_object_segments::<elf::FileHeader32<Endianness>>(data),
                exp,
                "{ctx}: object segments"
            );
            check_layout::<elf::FileHeader32<Endianness>>(data, ctx);
        }
    }

    #[test]
    fn arch_table_matches_reference() {
        assert_eq!(Arch::all().len(), 9);
        let rows: Vec<_> = Arch::all()
            .iter()
            .map(|a| {
                (
                    a.name(),
                    a.machine(),
                    a.is_64(),
                    a.big_endian(),
                    a.interp(),
                    a.triplet(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (
                    "x86_64",
                    62,
                    true,
                    false,
                    "/lib64/ld-linux-x86-64.so.2",
                    "x86_64-linux-gnu"
                ),
                (
                    "i386",
                    3,
                    false,
                    false,
                    "/lib/ld-linux.so.2",
                    "i386-linux-gnu"
                ),
                (
                    "aarch64",
                    183,
                    true,
                    false,
                    "/lib/ld-linux-aarch64.so.1",
                    "aarch64-linux-gnu"
                ),
                (
                    "armhf",
                    40,
                    false,
                    false,
                    "/lib/ld-linux-armhf.so.3",
                    "arm-linux-gnueabihf"
                ),
                (
                    "armel",
                    40,
                    false,
                    false,
                    "/lib/ld-linux.so.3",
                    "arm-linux-gnueabi"
                ),
                (
                    "riscv64",
                    243,
                    true,
                    false,
                    "/lib/ld-linux-riscv64-lp64d.so.1",
                    "riscv64-linux-gnu"
                ),
                (
                    "ppc64le",
                    21,
                    true,
                    false,
                    "/lib64/ld64.so.2",
                    "powerpc64le-linux-gnu"
                ),
                ("s390x", 22, true, true, "/lib/ld64.so.1", "s390x-linux-gnu"),
                (
                    "mips64el",
                    8,
                    true,
                    false,
                    "/lib64/ld.so.1",
                    "mips64el-linux-gnuabi64"
                ),
            ]
        );
        assert_eq!(Arch::Armhf.e_flags(), 0x0500_0400);
        assert_eq!(Arch::Armel.e_flags(), 0x0500_0200);
        assert_eq!(Arch::Riscv64.e_flags() & 6, 4);
        assert_eq!(Arch::Ppc64le.e_flags() & 3, 2);
        assert_eq!(Arch::Mips64el.e_flags() & 0x20, 0, "n64 is not n32");
    }

    /// Test 1: every arch × dynamic kind, full feature set, three readers.
    #[test]
    fn matrix_parses_with_goblin_and_object() {
        for &arch in Arch::all() {
            for kind in [Kind::Shared, Kind::Exec, Kind::ExecNoPie] {
                let spec = rich_spec(arch, kind);
                let data = build(&spec);
                let ctx = format!("{} {:?}", arch.name(), kind);
                check_all_readers(&spec, &data, &ctx);
                // Identification bytes straight from the header.
                assert_eq!(data[4], if arch.is_64() { 2 } else { 1 }, "{ctx}");
                assert_eq!(data[5], if arch.big_endian() { 2 } else { 1 }, "{ctx}");
                assert_eq!(data, build(&spec), "{ctx}: not deterministic");
            }
        }
    }

    /// Variations: hash styles, no versions, interp override, empty objects.
    #[test]
    fn variations_parse() {
        for &arch in Arch::all() {
            for style in [HashStyle::Both, HashStyle::Sysv, HashStyle::Gnu] {
                for nosh in [false, true] {
                    let mut spec = rich_spec(arch, Kind::Exec);
                    spec.hash_style = style;
                    spec.no_section_headers = nosh;
                    spec.interp = Some(s("/custom/ld.so"));
                    check_all_readers(
                        &spec,
                        &build(&spec),
                        &format!("{} {style:?} nosh={nosh}", arch.name()),
                    );
                }
            }
            let plain = ElfSpec {
                arch: Some(arch),
                needed: vec![s("libc.so.6")],
                undefined: vec![(s("puts"), None)],
                defined: vec![(s("f"), None)],
                ..Default::default()
            };
            check_all_readers(&plain, &build(&plain), &format!("{} plain", arch.name()));
            // SysV only: goblin counts no dynsyms from a GNU hash without
            // hashed (defined) symbols.
            let empty = ElfSpec {
                arch: Some(arch),
                hash_style: HashStyle::Sysv,
                ..Default::default()
            };
            check_all_readers(&empty, &build(&empty), &format!("{} empty", arch.name()));
            let interp_lib = ElfSpec {
                arch: Some(arch),
                interp: Some(s(arch.interp())),
                soname: Some(s("libc.so.6")),
                ..Default::default()
            };
            check_all_readers(
                &interp_lib,
                &build(&interp_lib),
                &format!("{} lib+interp", arch.name()),
            );
        }
    }

    /// Test 3: without section headers everything is reachable via PT_DYNAMIC.
    #[test]
    fn no_section_headers_parse_via_program_headers() {
        for &arch in Arch::all() {
            for kind in [Kind::Shared, Kind::Exec, Kind::ExecNoPie] {
                let mut spec = rich_spec(arch, kind);
                spec.no_section_headers = true;
                let data = build(&spec);
                let ctx = format!("{} {:?} nosh", arch.name(), kind);
                let g = goblin::elf::Elf::parse(&data).unwrap();
                assert_eq!(g.header.e_shoff, 0, "{ctx}");
                assert_eq!(g.header.e_shnum, 0, "{ctx}");
                assert!(g.section_headers.is_empty(), "{ctx}");
                assert_eq!(
                    g.dynsyms.len(),
                    1 + spec.defined.len() + spec.undefined.len(),
                    "{ctx}"
                );
                check_all_readers(&spec, &data, &ctx);
            }
        }
    }

    fn find_dlopen_notes<Elf: RFileHeader<Endian = Endianness>>(data: &[u8]) -> Vec<(u32, String)> {
        let file = ElfFile::<Elf>::parse(data).unwrap();
        let en = file.endian();
        let mut found = Vec::new();
        for p in file.elf_program_headers() {
            if let Some(mut notes) = p.notes(en, data).unwrap() {
                while let Some(n) = notes.next().unwrap() {
                    if n.name() == b"FDO" && n.n_type(en) == NT_FDO_DLOPEN_METADATA {
                        let desc = n.desc();
                        assert_eq!(desc.last(), Some(&0), "desc not NUL-terminated");
                        found.push((n.n_descsz(en), utf8(&desc[..desc.len() - 1])));
                    }
                }
            }
        }
        found
    }

    /// Test 4: `.note.dlopen` is found through PT_NOTE and the JSON round-trips.
    #[test]
    fn dlopen_note_roundtrips() {
        let payloads = [
            r#"[{"soname":["libz.so.1"]}]"#,
            r#"[{"feature":"tpm","description":"TPM2","priority":"suggested","soname":["libtss2-esys.so.0","libtss2-esys.so.1"]}]"#,
            r#"{"soname":"libx.so.1"}"#,
            "[]",
            "[{}]",
        ];
        for &arch in Arch::all() {
            for kind in [Kind::Shared, Kind::Exec, Kind::ExecNoPie, Kind::Static] {
                for (i, json) in payloads.iter().enumerate() {
                    let spec = ElfSpec {
                        arch: Some(arch),
                        kind,
                        needed: vec![s("libc.so.6")],
                        note_dlopen: Some(s(json)),
                        no_section_headers: i % 2 == 1,
                        ..Default::default()
                    };
                    let data = build(&spec);
                    let ctx = format!("{} {kind:?} {json}", arch.name());
                    let notes = if arch.is_64() {
                        check_layout::<elf::FileHeader64<Endianness>>(&data, &ctx);
                        find_dlopen_notes::<elf::FileHeader64<Endianness>>(&data)
                    } else {
                        check_layout::<elf::FileHeader32<Endianness>>(&data, &ctx);
                        find_dlopen_notes::<elf::FileHeader32<Endianness>>(&data)
                    };
                    assert_eq!(notes, vec![(json.len() as u32 + 1, s(json))], "{ctx}");
                    if i % 2 == 0 {
                        let g = goblin::elf::Elf::parse(&data).unwrap();
                        let sh = g
                            .section_headers
                            .iter()
                            .find(|sh| g.shdr_strtab.get_at(sh.sh_name) == Some(".note.dlopen"))
                            .expect(".note.dlopen section");
                        assert_eq!(sh.sh_type, goblin::elf::section_header::SHT_NOTE);
                        assert_eq!(sh.sh_size % 4, 0);
                    }
                }
            }
        }
    }

    #[test]
    fn static_and_header_overrides() {
        for &arch in Arch::all() {
            let spec = ElfSpec {
                arch: Some(arch),
                kind: Kind::Static,
                needed: vec![s("ignored.so")],
                ..Default::default()
            };
            let data = build(&spec);
            let g = goblin::elf::Elf::parse(&data).unwrap();
            assert_eq!(g.header.e_type, elf::ET_EXEC);
            assert!(g.interpreter.is_none() && g.dynamic.is_none() && g.libraries.is_empty());
            assert!(g
                .program_headers
                .iter()
                .all(|p| p.p_type != elf::PT_DYNAMIC && p.p_type != elf::PT_INTERP));
            assert_eq!(g.entry, 0x40_1000);
            if arch.is_64() {
                check_layout::<elf::FileHeader64<Endianness>>(&data, arch.name());
            } else {
                check_layout::<elf::FileHeader32<Endianness>>(&data, arch.name());
            }
        }
        let spec = ElfSpec {
            kind: Kind::Exec,
            machine_override: Some(elf::EM_AARCH64),
            e_flags_override: Some(0x1234),
            osabi: elf::ELFOSABI_GNU,
            ..Default::default()
        };
        let data = build(&spec);
        check_all_readers(&spec, &data, "machine/flags override");
        assert_eq!(data[7], elf::ELFOSABI_GNU);
        let spec = ElfSpec {
            ei_class_override: Some(1),
            ei_data_override: Some(2),
            ..Default::default()
        };
        let data = build(&spec);
        assert_eq!((data[4], data[5]), (1, 2));
        // The rest of the file is still the x86_64 layout.
        let mut fixed = data.clone();
        fixed[4] = 2;
        fixed[5] = 1;
        assert_eq!(fixed, build(&ElfSpec::default()));
    }

    #[test]
    #[should_panic(expected = "not in verdefs")]
    fn undefined_version_for_definition_panics() {
        build(&ElfSpec {
            defined: vec![(s("f"), Some(s("NOPE")))],
            ..Default::default()
        });
    }

    fn host_ldso() -> Option<&'static Path> {
        let p = Path::new("/lib64/ld-linux-x86-64.so.2");
        (cfg!(all(target_os = "linux", target_arch = "x86_64")) && p.exists()).then_some(p)
    }

    fn write_fixture(dir: &Path, name: &str, spec: &ElfSpec) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, build(spec)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn exe_needing_fixture(version: &str, weak: bool) -> ElfSpec {
        ElfSpec {
            kind: Kind::Exec,
            needed: vec![s("libfixture.so.1"), s("libc.so.6")],
            verneeds: vec![
                (s("libfixture.so.1"), vec![(s(version), weak)]),
                (s("libc.so.6"), vec![(s("GLIBC_2.2.5"), false)]),
            ],
            undefined: vec![
                (s("fixture_fn"), Some((s("libfixture.so.1"), s(version)))),
                (s("puts"), Some((s("libc.so.6"), s("GLIBC_2.2.5")))),
            ],
            ..Default::default()
        }
    }

    /// Test 2: the host's glibc loader accepts the x86_64 fixtures.
    #[test]
    fn host_loader_lists_x86_64_fixtures() {
        let Some(ldso) = host_ldso() else {
            println!("skipped: no x86_64 host loader at /lib64/ld-linux-x86-64.so.2");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let lib = ElfSpec {
            soname: Some(s("libfixture.so.1")),
            verdefs: vec![s("FIX_1.0"), s("FIX_2.0")],
            defined: vec![(s("fixture_fn"), Some(s("FIX_1.0")))],
            ..Default::default()
        };
        write_fixture(dir.path(), "libfixture.so.1", &lib);
        let list = |exe: &Path| {
            let out = Command::new(ldso)
                .arg("--list")
                .arg(exe)
                .env("LD_LIBRARY_PATH", dir.path())
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status, text)
        };
        let fixture_line = format!(
            "libfixture.so.1 => {}",
            dir.path().join("libfixture.so.1").display()
        );
        for (name, spec) in [
            (
                "plain",
                ElfSpec {
                    kind: Kind::Exec,
                    needed: vec![s("libfixture.so.1"), s("libc.so.6")],
                    ..Default::default()
                },
            ),
            (
                "nopie",
                ElfSpec {
                    kind: Kind::ExecNoPie,
                    needed: vec![s("libfixture.so.1"), s("libc.so.6")],
                    ..Default::default()
                },
            ),
            ("ver_ok", exe_needing_fixture("FIX_1.0", false)),
            ("ver_weak_missing", exe_needing_fixture("FIX_9.9", true)),
            ("ver_base", exe_needing_fixture("libfixture.so.1", false)),
            (
                "nosh",
                ElfSpec {
                    no_section_headers: true,
                    ..exe_needing_fixture("FIX_2.0", false)
                },
            ),
            (
                "gnu_only",
                ElfSpec {
                    hash_style: HashStyle::Gnu,
                    ..exe_needing_fixture("FIX_2.0", false)
                },
            ),
        ] {
            let exe = write_fixture(dir.path(), name, &spec);
            let (status, text) = list(&exe);
            assert!(status.success(), "{name}: {status}\n{text}");
            assert!(text.contains(&fixture_line), "{name}: {text}");
            assert!(text.contains("libc.so.6 => "), "{name}: {text}");
            // A weak requirement for a missing version is only reported
            // (as "weak version ... not found"), never an error.
            let errors = text
                .lines()
                .filter(|l| l.contains("not found") && !l.contains("weak version"));
            assert_eq!(errors.count(), 0, "{name}: {text}");
            if name == "ver_weak_missing" {
                assert!(text.contains("weak version `FIX_9.9' not found"), "{text}");
            }
        }
        let bad = write_fixture(
            dir.path(),
            "ver_bad",
            &exe_needing_fixture("FIX_9.9", false),
        );
        let (_, text) = list(&bad);
        assert!(text.contains("version `FIX_9.9' not found"), "{text}");
        let unversioned = ElfSpec {
            soname: Some(s("libplain.so.1")),
            ..Default::default()
        };
        write_fixture(dir.path(), "libplain.so.1", &unversioned);
        let mut spec = exe_needing_fixture("FIX_1.0", false);
        spec.needed.push(s("libplain.so.1"));
        let exe = write_fixture(dir.path(), "with_plain", &spec);
        let (status, text) = list(&exe);
        assert!(
            status.success() && text.contains("libplain.so.1 => "),
            "{text}"
        );
    }

    /// Bonus: the x86_64 executables really run (exit status 0).
    #[test]
    fn host_runs_x86_64_executables() {
        if host_ldso().is_none() {
            println!("skipped: no x86_64 host loader");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let lib = ElfSpec {
            soname: Some(s("libfixture.so.1")),
            verdefs: vec![s("FIX_1.0")],
            defined: vec![(s("fixture_fn"), Some(s("FIX_1.0")))],
            ..Default::default()
        };
        write_fixture(dir.path(), "libfixture.so.1", &lib);
        for (name, spec) in [
            ("pie", exe_needing_fixture("FIX_1.0", false)),
            (
                "nopie",
                ElfSpec {
                    kind: Kind::ExecNoPie,
                    ..exe_needing_fixture("FIX_1.0", false)
                },
            ),
            ("weak_missing", exe_needing_fixture("FIX_9.9", true)),
            (
                "static",
                ElfSpec {
                    kind: Kind::Static,
                    ..Default::default()
                },
            ),
            ("strong_missing", exe_needing_fixture("FIX_9.9", false)),
        ] {
            let exe = write_fixture(dir.path(), name, &spec);
            match Command::new(&exe)
                .env("LD_LIBRARY_PATH", dir.path())
                .output()
            {
                Ok(out) => {
                    let want_ok = name != "strong_missing";
                    assert_eq!(out.status.success(), want_ok, "{name}: {:?}", out);
                }
                Err(e) => println!("skipped {name}: cannot execute ({e})"),
            }
        }
    }
}
