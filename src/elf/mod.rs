//! What the loader needs to know about one ELF file.
//!
//! This module owns [`ElfInfo`], a plain value describing an ELF object as the
//! dynamic loader sees it: identity (class, byte order, machine, flags),
//! `PT_INTERP`, and the dynamic section's `DT_NEEDED`, `DT_SONAME`,
//! `DT_RPATH`, `DT_RUNPATH`, `DT_FLAGS_1` and symbol-version tables (and, made
//! on first use, an index of the version definitions by hash, which takes no
//! part in comparisons). Strings stay bytes, exactly as stored. Reading is in
//! [`parse`](mod@parse); whether one object may load another is in
//! [`compat`]; the read-only data ranges of the program headers, where the
//! interpreter search looks first, in [`read_only_data`]; the library
//! names that read-only data spells (`--dlopen-strings`) in [`libnames`]. Nothing here
//! touches the file system beyond the file or `object::ReadRef` the caller
//! hands in.

pub mod compat;
pub mod libnames;
pub mod notes;
pub mod parse;
pub(crate) mod pool;
pub mod symbols;

pub use parse::{parse, parse_file, read_file, FileFacts, NotElf, ParseError};

/// Exactly the `n` bytes of `file` at `offset` (an error if the file ends
/// first), read into a fresh vector's spare capacity: no byte is zeroed
/// first, which for large tables costs as much as the read itself.
pub(crate) fn read_vec_at(file: &std::fs::File, n: usize, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    // Exactly `n` of spare room, so no read goes past the range.
    buf.try_reserve_exact(n)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::OutOfMemory))?;
    while buf.len() < n {
        let at = offset + buf.len() as u64;
        if rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(buf)
}

/// The file ranges `(offset, size)` of `file`'s loadable segments that are
/// neither writable nor executable, where linkers put read-only data (with
/// `-z separate-code`, the default of current binutils), in program-header
/// order. Empty when `file` (`len` bytes) is no ELF file or its program
/// headers cannot be read; ranges past the end of the file are cut. At
/// most 256 headers are looked at.
pub fn read_only_data(file: &std::fs::File, len: u64) -> Vec<(u64, u64)> {
    loadable_ranges(file, len, PF_X | PF_W)
}

/// `PF_X`.
const PF_X: u64 = 1;
/// `PF_W`.
const PF_W: u64 = 2;

/// The file ranges of `file`'s loadable segments that have none of the
/// flags `without` ([`read_only_data`]: neither `PF_X` nor `PF_W`; without
/// `-z separate-code`, read-only data shares the `PF_R | PF_X` segment
/// with the code, and `PF_W` alone finds it there).
pub(crate) fn loadable_ranges(file: &std::fs::File, len: u64, without: u64) -> Vec<(u64, u64)> {
    const PT_LOAD: u64 = 1;
    let Ok(head) = read_vec_at(file, 64.min(len as usize), 0) else {
        return Vec::new();
    };
    if head.len() < 6 || head[..4] != *b"\x7fELF" {
        return Vec::new();
    }
    let (is64, big) = match (head[4], head[5]) {
        (c @ 1..=2, d @ 1..=2) => (c == 2, d == 2),
        _ => return Vec::new(),
    };
    // The whole file header: 64 bytes for ELFCLASS64, 52 for ELFCLASS32.
    if head.len() < if is64 { 64 } else { 52 } {
        return Vec::new();
    }
    let uint = |b: &[u8]| {
        let fold = |v: u64, &x: &u8| (v << 8) | u64::from(x);
        if big {
            b.iter().fold(0, fold)
        } else {
            b.iter().rev().fold(0, fold)
        }
    };
    let (phoff, phentsize, phnum) = if is64 {
        (
            uint(&head[32..40]),
            uint(&head[54..56]),
            uint(&head[56..58]),
        )
    } else {
        (
            uint(&head[28..32]),
            uint(&head[42..44]),
            uint(&head[44..46]),
        )
    };
    let entry = if is64 { 56 } else { 32 };
    if phentsize < entry || phnum == 0 || phnum > 256 {
        return Vec::new();
    }
    let Some(table) = phentsize
        .checked_mul(phnum)
        .filter(|&n| phoff.checked_add(n).is_some_and(|end| end <= len))
        .and_then(|n| read_vec_at(file, n as usize, phoff).ok())
    else {
        return Vec::new();
    };
    table
        .chunks_exact(phentsize as usize)
        .filter_map(|p| {
            let (kind, flags, offset, size) = if is64 {
                (
                    uint(&p[0..4]),
                    uint(&p[4..8]),
                    uint(&p[8..16]),
                    uint(&p[32..40]),
                )
            } else {
                (
                    uint(&p[0..4]),
                    uint(&p[24..28]),
                    uint(&p[4..8]),
                    uint(&p[16..20]),
                )
            };
            let size = size.min(len.saturating_sub(offset));
            (kind == PT_LOAD && flags & without == 0 && size > 0).then_some((offset, size))
        })
        .collect()
}

/// `DF_1_NODEFLIB`: do not search the default directories for this object's dependencies.
pub const DF_1_NODEFLIB: u32 = 0x800;
/// `e_type` of an executable at a fixed address.
pub const ET_EXEC: u16 = 2;
/// `e_type` of a shared object (libraries and PIE programs).
pub const ET_DYN: u16 = 3;
/// `DF_1_NOOPEN` (`-z nodlopen`): glibc's `dlopen` refuses to load it.
pub const DF_1_NOOPEN: u32 = 0x40;
/// `DF_1_PIE`: a position-independent executable, which glibc (2.30 and
/// later) refuses to load as a library.
pub const DF_1_PIE: u32 = 0x0800_0000;
/// `VER_FLG_WEAK` on a version requirement.
pub const VER_FLG_WEAK: u16 = 0x2;
/// `VER_FLG_BASE` on a version definition (the file's own name).
pub const VER_FLG_BASE: u16 = 0x1;

/// ELF machine numbers (`e_machine`) this crate knows by name.
pub mod machine {
    /// Intel 80386.
    pub const I386: u16 = 3;
    /// Motorola 68000.
    pub const M68K: u16 = 4;
    /// MIPS.
    pub const MIPS: u16 = 8;
    /// HP PA-RISC.
    pub const PARISC: u16 = 15;
    /// PowerPC (32-bit).
    pub const PPC: u16 = 20;
    /// PowerPC 64.
    pub const PPC64: u16 = 21;
    /// IBM S/390.
    pub const S390: u16 = 22;
    /// ARM 32-bit.
    pub const ARM: u16 = 40;
    /// Renesas SuperH.
    pub const SH: u16 = 42;
    /// SPARC V9 (64-bit).
    pub const SPARCV9: u16 = 43;
    /// AMD x86-64.
    pub const X86_64: u16 = 62;
    /// ARM 64-bit.
    pub const AARCH64: u16 = 183;
    /// RISC-V.
    pub const RISCV: u16 = 243;
    /// LoongArch.
    pub const LOONGARCH: u16 = 258;
    /// DEC Alpha (the number Linux uses; no official one was assigned).
    pub const ALPHA: u16 = 0x9026;
}

/// Identity of an ELF object: what decides whether a loader can map it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ident {
    /// `ELFCLASS64` when true, `ELFCLASS32` otherwise.
    pub is_64: bool,
    /// `ELFDATA2MSB` when true.
    pub big_endian: bool,
    /// `EI_OSABI`.
    pub osabi: u8,
    /// `EI_ABIVERSION`.
    pub abiversion: u8,
    /// `e_type` (`ET_EXEC` 2, `ET_DYN` 3, …).
    pub e_type: u16,
    /// `e_machine`.
    pub machine: u16,
    /// `e_flags`.
    pub e_flags: u32,
}

impl Ident {
    /// Whether glibc takes an object of this machine without a
    /// `PT_GNU_STACK` to need an executable stack: its
    /// `DEFAULT_STACK_PERMS` (`sysdeps/ARCH/stackinfo.h`) has `PF_X` on
    /// x86, 32-bit Arm, s390, MIPS, 32-bit PowerPC, SPARC, m68k, PA-RISC,
    /// SuperH, Alpha, MicroBlaze and OpenRISC; AArch64, 64-bit PowerPC,
    /// RISC-V, LoongArch and the rest default to a stack without it.
    /// (Checked under qemu with Debian's glibc 2.41 and 2.43 on x86-64,
    /// i386, armhf, s390x, arm64, ppc64el, riscv64, powerpc, ppc64, sparc64,
    /// hppa and m68k, and 2.42 on mips64el.)
    pub fn stack_executable_by_default(&self) -> bool {
        use machine::*;
        const SPARC: u16 = 2;
        const SPARC32PLUS: u16 = 18;
        const OPENRISC: u16 = 92;
        const MICROBLAZE: u16 = 189;
        matches!(
            self.machine,
            I386 | X86_64
                | M68K
                | MIPS
                | PARISC
                | PPC
                | S390
                | ARM
                | SH
                | SPARC
                | SPARC32PLUS
                | SPARCV9
                | ALPHA
                | OPENRISC
                | MICROBLAZE
        )
    }

    /// A short human name of the class/byte order/machine, e.g. `ELF64 LE x86-64`.
    pub fn describe(&self) -> String {
        format!(
            "ELF{} {} {}",
            if self.is_64 { 64 } else { 32 },
            if self.big_endian { "BE" } else { "LE" },
            machine_name(self.machine)
        )
    }
}

/// A human name for an `e_machine` value.
pub fn machine_name(m: u16) -> String {
    match m {
        machine::I386 => "i386".into(),
        machine::MIPS => "MIPS".into(),
        machine::PPC => "PowerPC".into(),
        machine::PPC64 => "PowerPC64".into(),
        machine::S390 => "S/390".into(),
        machine::ARM => "ARM".into(),
        machine::X86_64 => "x86-64".into(),
        machine::AARCH64 => "AArch64".into(),
        machine::RISCV => "RISC-V".into(),
        machine::LOONGARCH => "LoongArch".into(),
        other => format!("machine {other}"),
    }
}

/// One `Verneed` record: versions required from one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerNeed {
    /// `vn_version`, the record format: glibc knows only 1 and refuses an
    /// object whose first record says otherwise ([`ElfInfo::unsupported_verneed`]).
    pub version: u16,
    /// `vn_file`: the DT_NEEDED name the versions are required from.
    pub file: Vec<u8>,
    /// The `Vernaux` records.
    pub versions: Vec<VerNeedAux>,
}

/// The loader's answer to one version requirement ([`ElfInfo::check_version`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionCheck {
    /// A definition has its hash and name (or the requirement is weak).
    Met,
    /// No definition has it: "version `V' not found".
    Missing,
    /// The walk met a `Verdef` record of this format version (not 1) first:
    /// "unsupported version N of Verdef record".
    Unsupported(u16),
}

/// One required version (`Vernaux`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerNeedAux {
    /// Version name, e.g. `GLIBC_2.34`.
    pub name: ShortName,
    /// `vna_hash` as the file stores it: the loader compares it with the
    /// definition's `vd_hash` before the names (a requirement whose
    /// hash is wrong is not met even when a definition has its name).
    pub hash: u32,
    /// `vna_flags` (`VER_FLG_WEAK`).
    pub flags: u16,
    /// `vna_other`: the versym index that refers to this requirement.
    pub other: u16,
}

/// A version name, held in place when it has at most
/// [`ShortName::INLINE`] bytes (`GLIBC_2.2.5`, `GLIBCXX_3.4.21`: nearly
/// all), else on the heap: a file's requirements name a handful of
/// versions each, and a separate allocation per name was ≈ 125 KB of
/// fresh memory on a whole-`/usr/bin` run. 24 bytes either way. Compares,
/// orders and hashes as its bytes.
#[derive(Clone)]
pub struct ShortName(ShortRepr);

#[derive(Clone)]
enum ShortRepr {
    Inline {
        len: u8,
        bytes: [u8; ShortName::INLINE],
    },
    Heap(Box<[u8]>),
}

impl ShortName {
    /// The longest name held in place.
    pub const INLINE: usize = 22;

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            ShortRepr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            ShortRepr::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for ShortName {
    fn from(name: &[u8]) -> Self {
        if name.len() <= Self::INLINE {
            let mut bytes = [0; Self::INLINE];
            bytes[..name.len()].copy_from_slice(name);
            ShortName(ShortRepr::Inline {
                len: name.len() as u8,
                bytes,
            })
        } else {
            ShortName(ShortRepr::Heap(name.into()))
        }
    }
}

impl From<Vec<u8>> for ShortName {
    fn from(name: Vec<u8>) -> Self {
        if name.len() <= Self::INLINE {
            ShortName::from(name.as_slice())
        } else {
            ShortName(ShortRepr::Heap(name.into_boxed_slice()))
        }
    }
}

impl Default for ShortName {
    fn default() -> Self {
        ShortName::from(&b""[..])
    }
}

impl std::ops::Deref for ShortName {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for ShortName {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for ShortName {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ShortName {}

impl PartialEq<[u8]> for ShortName {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialOrd for ShortName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ShortName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for ShortName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl std::fmt::Debug for ShortName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// One version definition (`Verdef`, first `Verdaux` name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerDef {
    /// `vd_version`, the record format: glibc knows only 1 and fails a
    /// requirement whose search meets another ([`ElfInfo::check_version`]).
    pub version: u16,
    /// The version name (for the base definition, the file's SONAME).
    pub name: Vec<u8>,
    /// `vd_hash` as the file stores it (see [`VerNeedAux::hash`]).
    pub hash: u32,
    /// `vd_flags` (`VER_FLG_BASE`).
    pub flags: u16,
    /// `vd_ndx`.
    pub index: u16,
}

/// Everything about one ELF object that the resolver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// Class, byte order, machine and flags.
    pub ident: Ident,
    /// `PT_INTERP`, without the trailing NUL.
    pub interp: Option<Vec<u8>>,
    /// Whether the object has a dynamic section at all.
    pub dynamic: bool,
    /// `DT_SONAME`.
    pub soname: Option<Vec<u8>>,
    /// `DT_NEEDED`, in dynamic-section order.
    pub needed: Vec<Vec<u8>>,
    /// `DT_RPATH` as stored (the resolver drops it when `runpath` is set).
    pub rpath: Option<Vec<u8>>,
    /// `DT_RUNPATH`.
    pub runpath: Option<Vec<u8>>,
    /// `DT_FILTER` and `DT_AUXILIARY` names (loaded like dependencies).
    pub filters: Vec<Vec<u8>>,
    /// `DT_FLAGS` (every flag defined lies in the low 32 bits; held as
    /// 32 bits, as [`Self::audit`] needed the room).
    pub flags: u32,
    /// `DT_FLAGS_1` (likewise).
    pub flags_1: u32,
    /// `DT_AUDIT` and `DT_DEPAUDIT`, when either is present (rare: boxed).
    pub audit: Option<Box<AuditNames>>,
    /// `DT_VERNEED` records.
    pub verneed: Vec<VerNeed>,
    /// `DT_VERDEF` records.
    pub verdef: Vec<VerDef>,
    /// Things that looked wrong but did not stop parsing.
    pub warnings: Vec<String>,
    /// File offsets of the dynamic symbol, hash, version and relocation
    /// tables (read only by [`symbols`], for `--check-symbols`).
    pub tables: DynTables,
    /// `.note.dlopen` entries.
    pub dlopen: Vec<notes::DlopenEntry>,
    /// An x86 object's `GNU_PROPERTY_X86_ISA_1_NEEDED` bits (0 without
    /// them): the ISA levels a CPU must have for glibc 2.33 and later to
    /// run it ([`notes::x86_isa_needed`]).
    pub x86_isa_needed: u32,
    /// Whether the object needs an executable stack: its `PT_GNU_STACK`
    /// has `PF_X`, or it has none and glibc's default stack for the
    /// machine is executable ([`Ident::stack_executable_by_default`]).
    pub exec_stack: bool,
    /// [`Self::verdef`] indexed for [`Self::check_version_indexed`], made
    /// on first use (a cache: not part of the value, equal in any two).
    pub verdef_index: VerdefCache,
    /// Answers of [`Self::requirement_met_by`] (a cache, like
    /// `verdef_index`).
    pub verneed_met: VerneedCache,
}

/// The audit module lists of an object's dynamic section: glibc 2.32 and
/// later load, for the main program only, each `:`-separated name of
/// `DT_AUDIT` and then of `DT_DEPAUDIT` as an audit module, after those of
/// `LD_AUDIT` (`rtld.c`, `audit_list_add_dynamic_tag`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditNames {
    /// `DT_AUDIT`.
    pub audit: Option<Vec<u8>>,
    /// `DT_DEPAUDIT`.
    pub depaudit: Option<Vec<u8>>,
}

/// The lazily made index of an object's version definitions (see
/// [`ElfInfo::check_version_indexed`]). Every trace asks each library it
/// loads for the versions its objects require, under every root, and the
/// object is shared by every path it is found by: the index is made once
/// per file. Boxed: most files never need it, and every file's `ElfInfo`
/// lives for the whole run (without the box it took 520 bytes, which the
/// allocator serves from its 640-byte class; with it, 488, from the
/// 512-byte one).
#[derive(Debug, Clone, Default)]
pub struct VerdefCache(std::sync::OnceLock<Box<VerdefIndex>>);

impl PartialEq for VerdefCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for VerdefCache {}

/// For each of an object's `Verneed` records, whether the library first
/// asked about it (by its file identity) meets it, made on first use.
/// Every trace pairs the requirements of each object it loads with the
/// library each names, so a common pair (a program's or a library's needs
/// of libc) is asked about under every root; the object is shared by every
/// path it is found by.
#[derive(Debug, Clone, Default)]
pub struct VerneedCache(std::sync::OnceLock<Box<[std::sync::OnceLock<MetBy>]>>);

/// A library's file identity and whether it meets a requirement.
type MetBy = ((u64, u64), bool);

impl PartialEq for VerneedCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for VerneedCache {}

/// An object's version definitions by hash.
#[derive(Debug, Clone, Default)]
struct VerdefIndex {
    /// (hash, position) of every definition, sorted: the definitions of
    /// one hash in file order.
    by_hash: Vec<(u32, u32)>,
    /// Position and `vd_version` of the first record whose `vd_version` is
    /// not 1 (none in files any linker writes).
    unsupported: Option<(u32, u16)>,
}

/// File offsets of the tables the dynamic section points at, as the parse
/// finds them ([`DynTables::from`] packs them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableOffsets {
    /// `DT_STRTAB` as a (start, end) file range.
    pub strtab: Option<(u64, u64)>,
    /// `DT_SYMTAB`.
    pub symtab: Option<u64>,
    /// `DT_HASH`.
    pub hash: Option<u64>,
    /// `DT_GNU_HASH`.
    pub gnu_hash: Option<u64>,
    /// `DT_VERSYM`.
    pub versym: Option<u64>,
    /// `DT_RELA` and `DT_RELASZ`.
    pub rela: Option<(u64, u64)>,
    /// `DT_REL` and `DT_RELSZ`.
    pub rel: Option<(u64, u64)>,
    /// `DT_JMPREL`, `DT_PLTRELSZ`, and whether `DT_PLTREL` is `DT_RELA`.
    pub jmprel: Option<(u64, u64, bool)>,
    /// MIPS `DT_MIPS_GOTSYM`: the index of the first dynamic symbol with a
    /// global GOT entry. The loader binds every such symbol itself (at
    /// start-up, or lazily through its stub), with no relocation naming it.
    pub mips_gotsym: Option<u64>,
    /// MIPS `DT_MIPS_SYMTABNO`: the number of dynamic symbols. A MIPS object
    /// linked with `--hash-style=gnu` has only `DT_MIPS_XHASH` (glibc 2.31
    /// and later read it; Debian's MIPS glibc 2.40 and 2.42 are built so),
    /// which `closure` does not read: this is the symbol count then.
    pub mips_symtabno: Option<u64>,
}

/// [`TableOffsets`] packed: every file's are kept for the whole run, and
/// an `Option` of each made them 176 bytes (which put each `ElfInfo` in
/// mimalloc's 512-byte class instead of the 448-byte one); the tables
/// present are bits of one word. Read through the methods of the same
/// names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynTables {
    /// Bit `1 << k` for each table present ([`Table`]).
    present: u16,
    /// `DT_PLTREL` is `DT_RELA`.
    jmprel_rela: bool,
    strtab: (u64, u64),
    symtab: u64,
    hash: u64,
    gnu_hash: u64,
    versym: u64,
    rela: (u64, u64),
    rel: (u64, u64),
    jmprel: (u64, u64),
    /// `DT_MIPS_GOTSYM` and `DT_MIPS_SYMTABNO`, each saturated to 32 bits
    /// (one word for both keeps `ElfInfo` in its size class).
    mips: (u32, u32),
}

/// The bits of [`DynTables::present`].
#[derive(Clone, Copy)]
enum Table {
    Strtab,
    Symtab,
    Hash,
    GnuHash,
    Versym,
    Rela,
    Rel,
    Jmprel,
    MipsGotsym,
    MipsSymtabno,
}

impl From<TableOffsets> for DynTables {
    fn from(o: TableOffsets) -> Self {
        let mut t = DynTables::default();
        let mut mark = |table: Table, here: bool| {
            if here {
                t.present |= 1 << table as u16;
            }
        };
        mark(Table::Strtab, o.strtab.is_some());
        mark(Table::Symtab, o.symtab.is_some());
        mark(Table::Hash, o.hash.is_some());
        mark(Table::GnuHash, o.gnu_hash.is_some());
        mark(Table::Versym, o.versym.is_some());
        mark(Table::Rela, o.rela.is_some());
        mark(Table::Rel, o.rel.is_some());
        mark(Table::Jmprel, o.jmprel.is_some());
        mark(Table::MipsGotsym, o.mips_gotsym.is_some());
        mark(Table::MipsSymtabno, o.mips_symtabno.is_some());
        t.strtab = o.strtab.unwrap_or_default();
        t.symtab = o.symtab.unwrap_or_default();
        t.hash = o.hash.unwrap_or_default();
        t.gnu_hash = o.gnu_hash.unwrap_or_default();
        t.versym = o.versym.unwrap_or_default();
        t.rela = o.rela.unwrap_or_default();
        t.rel = o.rel.unwrap_or_default();
        if let Some((off, size, rela)) = o.jmprel {
            t.jmprel = (off, size);
            t.jmprel_rela = rela;
        }
        let narrow = |v: Option<u64>| u32::try_from(v.unwrap_or_default()).unwrap_or(u32::MAX);
        t.mips = (narrow(o.mips_gotsym), narrow(o.mips_symtabno));
        t
    }
}

impl DynTables {
    fn has(&self, table: Table) -> bool {
        self.present & (1 << table as u16) != 0
    }

    /// All of them, as the parse found them.
    pub fn offsets(&self) -> TableOffsets {
        TableOffsets {
            strtab: self.strtab(),
            symtab: self.symtab(),
            hash: self.hash(),
            gnu_hash: self.gnu_hash(),
            versym: self.versym(),
            rela: self.rela(),
            rel: self.rel(),
            jmprel: self.jmprel(),
            mips_gotsym: self.mips_gotsym(),
            mips_symtabno: self.mips_symtabno(),
        }
    }

    /// `DT_STRTAB` as a (start, end) file range.
    pub fn strtab(&self) -> Option<(u64, u64)> {
        self.has(Table::Strtab).then_some(self.strtab)
    }

    /// `DT_SYMTAB`.
    pub fn symtab(&self) -> Option<u64> {
        self.has(Table::Symtab).then_some(self.symtab)
    }

    /// `DT_HASH`.
    pub fn hash(&self) -> Option<u64> {
        self.has(Table::Hash).then_some(self.hash)
    }

    /// `DT_GNU_HASH`.
    pub fn gnu_hash(&self) -> Option<u64> {
        self.has(Table::GnuHash).then_some(self.gnu_hash)
    }

    /// `DT_VERSYM`.
    pub fn versym(&self) -> Option<u64> {
        self.has(Table::Versym).then_some(self.versym)
    }

    /// `DT_RELA` and `DT_RELASZ`.
    pub fn rela(&self) -> Option<(u64, u64)> {
        self.has(Table::Rela).then_some(self.rela)
    }

    /// `DT_REL` and `DT_RELSZ`.
    pub fn rel(&self) -> Option<(u64, u64)> {
        self.has(Table::Rel).then_some(self.rel)
    }

    /// `DT_JMPREL`, `DT_PLTRELSZ`, and whether `DT_PLTREL` is `DT_RELA`.
    pub fn jmprel(&self) -> Option<(u64, u64, bool)> {
        self.has(Table::Jmprel)
            .then_some((self.jmprel.0, self.jmprel.1, self.jmprel_rela))
    }

    /// MIPS `DT_MIPS_GOTSYM` ([`TableOffsets::mips_gotsym`]; saturated to 32 bits).
    pub fn mips_gotsym(&self) -> Option<u64> {
        self.has(Table::MipsGotsym)
            .then_some(u64::from(self.mips.0))
    }

    /// MIPS `DT_MIPS_SYMTABNO` ([`TableOffsets::mips_symtabno`]; saturated to 32 bits).
    pub fn mips_symtabno(&self) -> Option<u64> {
        self.has(Table::MipsSymtabno)
            .then_some(u64::from(self.mips.1))
    }
}

impl ElfInfo {
    /// `DT_RPATH` as the loader uses it: ignored when `DT_RUNPATH` is present.
    pub fn effective_rpath(&self) -> Option<&[u8]> {
        if self.runpath.is_some() {
            None
        } else {
            self.rpath.as_deref().filter(|r| !r.is_empty())
        }
    }

    /// `DT_RUNPATH`, treating an empty string as absent.
    pub fn effective_runpath(&self) -> Option<&[u8]> {
        self.runpath.as_deref().filter(|r| !r.is_empty())
    }

    /// Whether `DF_1_NODEFLIB` is set.
    pub fn nodeflib(&self) -> bool {
        self.flags_1 & DF_1_NODEFLIB != 0
    }

    /// Whether `DF_1_NOOPEN` is set.
    pub fn noopen(&self) -> bool {
        self.flags_1 & DF_1_NOOPEN != 0
    }

    /// Whether `DF_1_PIE` is set.
    pub fn pie(&self) -> bool {
        self.flags_1 & DF_1_PIE != 0
    }

    /// A dynamically linked object: one with a dynamic section.
    pub fn is_dynamic(&self) -> bool {
        self.dynamic
    }

    /// What glibc makes of requirement `aux` against this object's version
    /// definitions (dl-version.c `match_symbol`): the definitions are
    /// walked in file order, and a record whose `vd_version` is not 1 ends
    /// the walk with an error before its hash is compared — even for a weak
    /// requirement; a definition with the requirement's hash and name meets
    /// it; past the last one a weak requirement is met anyway. (An object
    /// without definitions at all meets everything, with a warning: callers
    /// check that first.)
    pub fn check_version(&self, aux: &VerNeedAux) -> VersionCheck {
        for d in &self.verdef {
            if d.version != 1 {
                return VersionCheck::Unsupported(d.version);
            }
            if d.hash == aux.hash && *d.name == *aux.name {
                return VersionCheck::Met;
            }
        }
        if aux.flags & VER_FLG_WEAK != 0 {
            VersionCheck::Met
        } else {
            VersionCheck::Missing
        }
    }

    /// [`Self::check_version`] through a sorted index of the definitions'
    /// hashes, made on first use: the first definition in file order with
    /// the hash and name, unless a record the loader cannot read comes
    /// before it. The same answer, in a logarithmic number of steps.
    pub fn check_version_indexed(&self, aux: &VerNeedAux) -> VersionCheck {
        let index = crate::shard::get_or_compute(&self.verdef_index.0, || {
            let defs = &self.verdef;
            let mut by_hash: Vec<(u32, u32)> = (defs.iter().enumerate())
                .map(|(i, d)| (d.hash, i as u32))
                .collect();
            by_hash.sort_unstable();
            let unsupported = (defs.iter().enumerate())
                .find(|(_, d)| d.version != 1)
                .map(|(i, d)| (i as u32, d.version));
            Box::new(VerdefIndex {
                by_hash,
                unsupported,
            })
        });
        let from = index.by_hash.partition_point(|&(h, _)| h < aux.hash);
        let first = index.by_hash[from..]
            .iter()
            .take_while(|&&(h, _)| h == aux.hash)
            .find(|&&(_, i)| *self.verdef[i as usize].name == *aux.name)
            .map(|&(_, i)| i);
        match (first, index.unsupported) {
            (_, Some((bad, v))) if first.is_none_or(|i| bad <= i) => VersionCheck::Unsupported(v),
            (Some(_), _) => VersionCheck::Met,
            (None, _) if aux.flags & VER_FLG_WEAK != 0 => VersionCheck::Met,
            (None, _) => VersionCheck::Missing,
        }
    }

    /// Whether `lib` (whose file identity is `lib_id`) meets every version
    /// of `Verneed` record `vn` ([`Self::check_version_indexed`] for each;
    /// a weak one is met anyway; no such record: not met). The answer is
    /// kept per record with the identity of the library asked first: the
    /// caller makes sure an identity stands for one file while this object
    /// lives (one build reads each file once). Another library is asked
    /// afresh. (A per-thread map by both identities did the same with ≈ 100
    /// more page faults on the union run; asking afresh every time cost
    /// ≈ 1.5 M more instructions.)
    pub fn requirement_met_by(&self, vn: usize, lib_id: (u64, u64), lib: &ElfInfo) -> bool {
        let check = || {
            self.verneed.get(vn).is_some_and(|n| {
                n.versions
                    .iter()
                    .all(|a| lib.check_version_indexed(a) == VersionCheck::Met)
            })
        };
        let slots = crate::shard::get_or_compute(&self.verneed_met.0, || {
            (0..self.verneed.len())
                .map(|_| std::sync::OnceLock::new())
                .collect()
        });
        let Some(slot) = slots.get(vn) else {
            return check();
        };
        let &(id, met) = crate::shard::get_or_compute(slot, || (lib_id, check()));
        if id == lib_id {
            met
        } else {
            check()
        }
    }

    /// The `vn_version` of the first `Verneed` record when it is not 1: glibc
    /// then refuses to load the object at all ("unsupported version N of
    /// Verneed record", dl-version.c `_dl_check_map_versions`, which looks
    /// at the first record only).
    pub fn unsupported_verneed(&self) -> Option<u16> {
        self.verneed
            .first()
            .map(|vn| vn.version)
            .filter(|&v| v != 1)
    }

    /// The highest-sorting version name this object defines with the given
    /// prefix (e.g. `GLIBC_2.`), compared like version numbers.
    pub fn highest_version(&self, prefix: &[u8]) -> Option<&[u8]> {
        self.verdef
            .iter()
            .filter(|d| d.flags & VER_FLG_BASE == 0 && d.name.starts_with(prefix))
            .map(|d| d.name.as_slice())
            .max_by(|a, b| crate::util::natural_cmp(a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::{DynTables, ElfInfo, ShortName, ShortRepr, TableOffsets, VerNeedAux};

    /// A version name is its bytes whether held in place or on the heap:
    /// equal, ordered and hashed as bytes across the boundary, 24 bytes
    /// in all (so a `Vernaux` record stays 32). Fails if a name of
    /// [`ShortName::INLINE`] bytes goes to the heap, or one byte more stays
    /// in place (it cannot), or the two kinds compare by their layout.
    #[test]
    fn short_names_are_their_bytes() {
        use std::hash::BuildHasher;
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<ShortName>(), 24);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<VerNeedAux>(), 32);
        let at_limit = vec![b'v'; ShortName::INLINE];
        let over = [b'v'; ShortName::INLINE + 1];
        let (a, b) = (
            ShortName::from(at_limit.clone()),
            ShortName::from(&over[..]),
        );
        assert!(matches!(a.0, ShortRepr::Inline { .. }));
        assert!(matches!(b.0, ShortRepr::Heap(_)));
        assert_eq!(&*a, &at_limit[..]);
        assert_eq!(&*b, &over[..]);
        assert!(a < b, "a prefix orders first, whatever the kinds");
        let h = std::hash::RandomState::new();
        let long = ShortName::from(&b"GLIBCXX_3.4.21_and_much_more"[..]);
        assert_eq!(
            h.hash_one(&long),
            h.hash_one(&b"GLIBCXX_3.4.21_and_much_more"[..])
        );
        assert_eq!(h.hash_one(&a), h.hash_one(&at_limit[..]));
        for n in [&b""[..], b"GLIBC_2.2.5", b"GLIBC_2.34"] {
            let x = ShortName::from(n);
            assert_eq!(x, ShortName::from(n.to_vec()));
            assert_eq!(&*x, n);
            assert_eq!(x, *n);
        }
        let (x, y) = (
            ShortName::from(&b"GLIBC_2.3"[..]),
            ShortName::from(&b"GLIBC_2.34"[..]),
        );
        assert!(x < y);
        assert_eq!(ShortName::default(), ShortName::from(&b""[..]));
        assert_eq!(format!("{:?}", ShortName::from(&b"V_1"[..])), "\"V_1\"");
    }

    /// Every file's `ElfInfo` is kept, behind an `Arc` (two counts before
    /// it), for the whole run: at 448 bytes or less it comes from
    /// mimalloc's 448-byte class; a few bytes more move it to the 512-byte
    /// one, 64 bytes and about 15 fresh pages more on a whole-`/usr/bin`
    /// run (the 640-byte one, 45 pages). A field added here should be
    /// weighed against that.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_elf_info_in_its_arc_fits_the_448_byte_class() {
        let in_arc = std::mem::size_of::<ElfInfo>() + 2 * std::mem::size_of::<usize>();
        assert!(in_arc <= 448, "Arc<ElfInfo> takes {in_arc} bytes");
    }

    /// The packed tables give back exactly what they were made from: each
    /// table present or absent on its own, offset 0 a present table, and
    /// whether `DT_PLTREL` is `DT_RELA` kept with `DT_JMPREL`.
    #[test]
    fn dyn_tables_keep_each_offset_and_its_absence() {
        let all = TableOffsets {
            strtab: Some((0, 9)),
            symtab: Some(1),
            hash: Some(2),
            gnu_hash: Some(0),
            versym: Some(4),
            rela: Some((5, 6)),
            rel: Some((7, 8)),
            jmprel: Some((9, 10, true)),
            mips_gotsym: Some(0),
            mips_symtabno: Some(11),
        };
        assert_eq!(DynTables::from(all).offsets(), all);
        assert_eq!(
            DynTables::from(TableOffsets::default()).offsets(),
            TableOffsets::default()
        );
        let some = TableOffsets {
            symtab: Some(0),
            jmprel: Some((3, 4, false)),
            ..TableOffsets::default()
        };
        let t = DynTables::from(some);
        assert_eq!(t.offsets(), some);
        assert_eq!(
            (t.symtab(), t.strtab(), t.gnu_hash()),
            (Some(0), None, None)
        );
        assert_eq!(t.jmprel(), Some((3, 4, false)));
        // One table at a time: no bit stands for another.
        let one: [fn(&mut TableOffsets); 10] = [
            |o| o.strtab = Some((1, 2)),
            |o| o.symtab = Some(1),
            |o| o.hash = Some(1),
            |o| o.gnu_hash = Some(1),
            |o| o.versym = Some(1),
            |o| o.rela = Some((1, 2)),
            |o| o.rel = Some((1, 2)),
            |o| o.jmprel = Some((1, 2, true)),
            |o| o.mips_gotsym = Some(1),
            |o| o.mips_symtabno = Some(1),
        ];
        for set in one {
            let mut o = TableOffsets::default();
            set(&mut o);
            assert_eq!(DynTables::from(o).offsets(), o);
        }
    }
}
