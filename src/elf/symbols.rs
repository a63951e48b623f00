//! Dynamic symbols, their versions, and which of them relocations use.
//!
//! Owns reading `.dynsym` through the dynamic section alone (the symbol
//! count comes from `DT_HASH`'s `nchain`, else from walking `DT_GNU_HASH`),
//! `DT_VERSYM`, and the `DT_RELA`/`DT_REL`/`DT_JMPREL` tables, to list the
//! undefined symbols the loader will look up (with `LD_BIND_NOW`, every
//! relocation, and on MIPS every symbol of the global GOT, which the loader
//! binds without a relocation: from `DT_MIPS_GOTSYM` on) and the
//! definitions an object offers. Also answers the
//! libgcc_s question (does an object use `pthread_cancel`, `pthread_exit` or
//! `backtrace`?) without reading whole tables: by string-table offsets, or
//! by `DT_GNU_HASH` lookups ([`first_undefined_hashed`]). Reads are
//! positional and size-capped; malformed tables yield fewer symbols, never a
//! panic.

use std::collections::BTreeMap;
use std::fs::File;

use super::pool::Pooled;
use super::{machine, ElfInfo};

/// Most symbols read from one object.
const MAX_SYMBOLS: u64 = 1 << 21;
/// Most relocations read from one table.
const MAX_RELOCS: u64 = 1 << 23;
/// Relocations read at once.
const RELOC_PIECE: u64 = 1 << 12;
/// Symbols read at once when looking for a few names.
const SYMBOL_PIECE: u64 = 1 << 12;
/// Hash-table words read at once.
const HASH_PIECE: u64 = 1 << 12;

/// `SHN_UNDEF`.
pub const SHN_UNDEF: u16 = 0;
/// `SHN_ABS`.
pub const SHN_ABS: u16 = 0xfff1;
/// `STB_LOCAL`.
pub const STB_LOCAL: u8 = 0;
/// `STB_GLOBAL`.
pub const STB_GLOBAL: u8 = 1;
/// `STB_WEAK`.
pub const STB_WEAK: u8 = 2;
/// `STB_GNU_UNIQUE`.
pub const STB_GNU_UNIQUE: u8 = 10;
/// `STT_FUNC`.
pub const STT_FUNC: u8 = 2;
/// `STT_TLS`.
pub const STT_TLS: u8 = 6;

/// One dynamic symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Name.
    pub name: Vec<u8>,
    /// `st_value`.
    pub value: u64,
    /// `st_shndx`.
    pub shndx: u16,
    /// Binding (`st_info >> 4`).
    pub bind: u8,
    /// Type (`st_info & 0xf`).
    pub kind: u8,
    /// `DT_VERSYM` entry, if the object has one.
    pub versym: Option<u16>,
}

/// A symbol the loader looks up for this object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    /// Index into [`Symbols::syms`].
    pub index: usize,
    /// Only PLT relocations (`DT_JMPREL`) use it: an undefined symbol with
    /// a value (a PLT stub address) cannot satisfy it.
    pub plt_only: bool,
    /// A copy relocation: the symbol is defined in this object, and the
    /// loader looks it up in every *other* object of the scope.
    pub copy: bool,
    /// Where its first relocation comes in musl's order (`DT_JMPREL`
    /// first, then the others, each in table order).
    pub order: u32,
    /// Where its first relocation comes in glibc's order (`DT_RELA` or
    /// `DT_REL` first, then `DT_JMPREL`, each in table order): which
    /// unbound reference a failing `dlopen` names.
    pub glibc_order: u32,
    /// Where its first relocation comes, in the same order, that musl's
    /// `RTLD_LAZY` `dlopen` does not leave for later: one of another type
    /// than the architecture's PLT and GOT ones (`REL_PLT`, `REL_GOT`), a
    /// data word holding its address, say. None when every one is of
    /// those types, or the architecture's are not known here.
    pub musl_eager: Option<u32>,
}

/// The relocation types musl's `RTLD_LAZY` `dlopen` defers when their
/// symbol is not found (its `REL_PLT`, `REL_GOT`): (PLT, GOT), where known.
/// (RISC-V has no GOT type: its GOT entries are plain 64-bit words.)
fn musl_lazy_types(machine: u16) -> Option<(u64, Option<u64>)> {
    Some(match machine {
        machine::X86_64 | machine::I386 => (7, Some(6)),
        machine::AARCH64 => (1026, Some(1025)),
        machine::ARM => (22, Some(21)),
        machine::PPC | machine::PPC64 => (21, Some(20)),
        machine::S390 => (11, Some(10)),
        machine::M68K => (21, Some(20)),
        machine::SH => (164, Some(163)),
        machine::RISCV => (5, None),
        _ => return None,
    })
}

/// How one symbol's relocations use it, gathered while reading them.
#[derive(Clone, Copy)]
struct Use {
    plt_only: bool,
    copy: bool,
    order: u32,
    glibc_order: u32,
    musl_eager: Option<u32>,
}

impl Use {
    fn reference(self, index: usize) -> Reference {
        Reference {
            index,
            plt_only: self.plt_only,
            copy: self.copy,
            order: self.order,
            glibc_order: self.glibc_order,
            musl_eager: self.musl_eager,
        }
    }
}

/// A version an object knows by index (`l_versions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionName {
    /// Version string.
    pub name: Vec<u8>,
    /// Its hash as the file stores it (`vd_hash` or `vna_hash`): the
    /// loader matches a reference's version to a definition's by hash and
    /// name, and (before glibc 2.41) takes a definition whose version hash
    /// is 0 as unversioned.
    pub hash: u32,
    /// The file a required version comes from (None for definitions).
    pub file: Option<Vec<u8>>,
    /// Hidden requirement (`vna_other & 0x8000`).
    pub hidden: bool,
}

/// The symbol view of one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Symbols {
    /// Every dynamic symbol, by index.
    pub syms: Vec<Symbol>,
    /// Undefined symbols that relocations make the loader look up.
    pub refs: Vec<Reference>,
    /// Symbols the object defines that its relocations use (not copy
    /// relocations): glibc's lookup always binds these, if only to the
    /// object itself; musl's may not (its own definition an IFUNC, an
    /// absolute 0 or hidden), so they are looked up for musl.
    pub own_refs: Vec<Reference>,
    /// Version names by versym index.
    pub versions: BTreeMap<u16, VersionName>,
    /// Whether the object has `DT_VERSYM`.
    pub has_versym: bool,
    /// The object's `DT_SONAME`.
    pub soname: Option<Vec<u8>>,
}

/// An object's [`Symbols`] with the definitions indexed by name: global,
/// weak and unique symbols with a name, in table order, under a hash of
/// the name (the names stay in the table only).
#[derive(Debug, Default)]
pub struct Indexed {
    /// The table.
    pub table: Symbols,
    /// Name hash → the indices of the symbols of names with that hash.
    by_hash: std::collections::HashMap<u64, Vec<u32>>,
}

impl Indexed {
    /// Indexes `table`.
    pub fn new(table: Symbols) -> Indexed {
        let mut by_hash: std::collections::HashMap<u64, Vec<u32>> =
            std::collections::HashMap::new();
        for (i, s) in table.syms.iter().enumerate().skip(1) {
            if !s.name.is_empty() && matches!(s.bind, STB_GLOBAL | STB_WEAK | STB_GNU_UNIQUE) {
                by_hash
                    .entry(name_hash(&s.name))
                    .or_default()
                    .push(i as u32);
            }
        }
        Indexed { table, by_hash }
    }

    /// The indices of the definitions named `name`, in table order.
    pub fn named<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        (self.by_hash.get(&name_hash(name)).into_iter().flatten())
            .map(|&i| i as usize)
            .filter(move |&i| self.table.syms[i].name == name)
    }
}

/// A fixed hash of a symbol name (FNV-1a, 64 bits).
fn name_hash(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Reader<'a> {
    file: &'a File,
    big: bool,
    len: u64,
}

impl Reader<'_> {
    /// The `n` bytes at `off`, in a buffer of this thread's read pool
    /// (it goes back there when dropped).
    fn bytes(&self, off: u64, n: u64) -> Option<Pooled> {
        if off.checked_add(n)? > self.len {
            return None;
        }
        Pooled::read(self.file, usize::try_from(n).ok()?, off).ok()
    }

    /// `f` of the `n` bytes at `off`, read into a buffer of this thread's
    /// read pool. `f` must not read.
    fn with_bytes<T>(&self, off: u64, n: u64, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        self.bytes(off, n).map(|b| f(&b))
    }
    fn uint(&self, b: &[u8]) -> u64 {
        let mut v = 0u64;
        if self.big {
            for &x in b {
                v = (v << 8) | x as u64;
            }
        } else {
            for &x in b.iter().rev() {
                v = (v << 8) | x as u64;
            }
        }
        v
    }
    fn word(&self, off: u64, size: u64) -> Option<u64> {
        self.bytes(off, size).map(|b| self.uint(&b))
    }
}

/// Reads the dynamic symbols of `file` described by `info`.
pub fn read(file: &File, info: &ElfInfo) -> Symbols {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let r = Reader {
        file,
        big: info.ident.big_endian,
        len,
    };
    let t = &info.tables;
    let mut out = Symbols::default();
    let (Some(symtab), Some((str_start, str_end))) = (t.symtab(), t.strtab()) else {
        return out;
    };
    let is64 = info.ident.is_64;
    let syment: u64 = if is64 { 24 } else { 16 };
    let count = symbol_count(&r, info).min(MAX_SYMBOLS).min(len / syment);
    let Some(raw) = r.bytes(symtab, count * syment) else {
        return out;
    };
    let strtab_len = str_end.saturating_sub(str_start).min(64 << 20);
    let strtab = r.bytes(str_start, strtab_len).unwrap_or_default();
    let versym = t.versym().and_then(|v| r.bytes(v, count * 2)).map(|b| {
        b.chunks_exact(2)
            .map(|c| r.uint(c) as u16)
            .collect::<Vec<u16>>()
    });
    out.has_versym = versym.is_some();
    out.soname = info.soname.clone();
    // Sized once: growing by doubling would hold both the old and the new
    // table at the cap (2^21 symbols), and peak memory with them.
    out.syms.reserve_exact(count as usize);
    for (i, e) in raw.chunks_exact(syment as usize).enumerate() {
        let (name_off, info_b, shndx, value) = if is64 {
            (
                r.uint(&e[0..4]),
                e[4],
                r.uint(&e[6..8]) as u16,
                r.uint(&e[8..16]),
            )
        } else {
            (
                r.uint(&e[0..4]),
                e[12],
                r.uint(&e[14..16]) as u16,
                r.uint(&e[4..8]),
            )
        };
        let name = usize::try_from(name_off)
            .ok()
            .and_then(|o| strtab.get(o..))
            .map(|s| s.split(|&b| b == 0).next().unwrap_or_default().to_vec())
            .unwrap_or_default();
        out.syms.push(Symbol {
            name,
            value,
            shndx,
            bind: info_b >> 4,
            kind: info_b & 0xf,
            versym: versym.as_ref().and_then(|v| v.get(i).copied()),
        });
    }
    // The base definition (the file's own name) is not a version symbols
    // can carry: glibc leaves it out of `l_versions`.
    for d in info
        .verdef
        .iter()
        .filter(|d| d.flags & super::VER_FLG_BASE == 0)
    {
        out.versions.insert(
            d.index,
            VersionName {
                name: d.name.clone(),
                hash: d.hash,
                file: None,
                hidden: false,
            },
        );
    }
    for n in &info.verneed {
        for a in &n.versions {
            out.versions.insert(
                a.other & 0x7fff,
                VersionName {
                    name: a.name.to_vec(),
                    hash: a.hash,
                    file: Some(n.file.clone()),
                    hidden: a.other & 0x8000 != 0,
                },
            );
        }
    }
    // Which undefined symbols relocations use, and how; and which
    // symbols the object defines (musl looks those up as well).
    let mut used: BTreeMap<usize, Use> = BTreeMap::new();
    let mut own: BTreeMap<usize, Use> = BTreeMap::new();
    let copy_type = copy_reloc_type(info.ident.machine);
    let lazy_types = musl_lazy_types(info.ident.machine);
    // Positions in musl's order (PLT relocations first) and glibc's (PLT
    // relocations last): each table counted on its own, one half of the
    // range each.
    let (mut plt_n, mut other_n) = (0u32, 0u32);
    const HALF: u32 = 1 << 31;
    let mut note = |idx: u64, rtype: u64, plt: bool, syms: &[Symbol]| {
        let n = if plt { &mut plt_n } else { &mut other_n };
        let k = (*n).min(HALF - 1);
        *n = n.saturating_add(1);
        let (order, glibc_order) = if plt { (k, HALF + k) } else { (HALF + k, k) };
        let Ok(idx) = usize::try_from(idx) else {
            return;
        };
        if idx == 0 || idx >= syms.len() {
            return;
        }
        let s = &syms[idx];
        if s.bind == STB_LOCAL || s.name.is_empty() {
            return;
        }
        let lazy = lazy_types.is_none_or(|(p, g)| rtype == p || Some(rtype) == g);
        let eager = (!lazy).then_some(order);
        let copy = copy_type == Some(rtype) && s.shndx != SHN_UNDEF;
        let map = if s.shndx != SHN_UNDEF && !copy {
            &mut own
        } else {
            &mut used
        };
        let e = map.entry(idx).or_insert(Use {
            plt_only: true,
            copy,
            order,
            glibc_order,
            musl_eager: None,
        });
        e.plt_only = e.plt_only && plt;
        e.order = e.order.min(order);
        e.glibc_order = e.glibc_order.min(glibc_order);
        e.musl_eager = match (e.musl_eager, eager) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    };
    let any_table =
        for_each_relocation(&r, info, |sym, rtype, plt| note(sym, rtype, plt, &out.syms));
    let plain = |plt_only: bool| Use {
        plt_only,
        copy: false,
        order: u32::MAX,
        glibc_order: u32::MAX,
        musl_eager: None,
    };
    if let Some(first) = t.mips_gotsym() {
        // MIPS binds the symbols of the global GOT without relocations: an
        // undefined function with a stub (`st_value` set) lazily, like a
        // PLT entry, the others at start-up.
        let first = usize::try_from(first).unwrap_or(usize::MAX).max(1);
        for (i, s) in out.syms.iter().enumerate().skip(first) {
            if s.shndx == SHN_UNDEF && s.bind != STB_LOCAL && !s.name.is_empty() {
                let lazy = s.kind == STT_FUNC && s.value != 0;
                let e = used.entry(i).or_insert(plain(true));
                e.plt_only = e.plt_only && lazy;
            }
        }
    }
    if !any_table {
        // No relocation tables: every undefined global symbol is a reference.
        for (i, s) in out.syms.iter().enumerate().skip(1) {
            if s.shndx == SHN_UNDEF && s.bind != STB_LOCAL && !s.name.is_empty() {
                used.insert(i, plain(false));
            }
        }
    }
    out.own_refs = own.into_iter().map(|(i, u)| u.reference(i)).collect();
    out.refs = used.into_iter().map(|(i, u)| u.reference(i)).collect();
    out
}

/// The first of `names` that `file` has as an undefined, non-local dynamic
/// symbol which a relocation uses. One pass over `.dynsym` comparing names
/// in place; only a hit (rare) reads the relocation tables to confirm it.
pub fn first_undefined_of(file: &File, info: &ElfInfo, names: &[&[u8]]) -> Option<Vec<u8>> {
    let (str_start, str_end) = info.tables.strtab()?;
    let len = file.metadata().ok()?.len();
    let r = Reader {
        file,
        big: info.ident.big_endian,
        len,
    };
    let strtab = r.bytes(str_start, str_end.saturating_sub(str_start).min(64 << 20))?;
    first_undefined_at(file, len, info, &name_offsets(&strtab, names))
}

/// [`first_undefined_of`] for a caller that has already searched the string
/// table: `at` holds every string-table offset where a name starts,
/// NUL-terminated ([`name_offsets`]). `.dynsym` is read in pieces, so a huge
/// symbol table costs one piece of memory.
pub fn first_undefined_at(
    file: &File,
    len: u64,
    info: &ElfInfo,
    at: &[(u64, &[u8])],
) -> Option<Vec<u8>> {
    if at.is_empty() {
        return None;
    }
    let r = Reader {
        file,
        big: info.ident.big_endian,
        len,
    };
    let syment: u64 = if info.ident.is_64 { 24 } else { 16 };
    let count = symbol_count(&r, info).min(MAX_SYMBOLS).min(len / syment);
    let read = |off: u64, n: u64| r.bytes(off, n).map(Bytes::Read);
    first_undefined_in(&read, info, at, 1..count)
}

/// [`first_undefined_of`] through `DT_GNU_HASH`, for an object whose
/// string table is too large to search cheaply: neither table is read
/// whole. Linkers put the unhashed symbols (`[1, symoffset)`) first, and
/// every undefined symbol an executable does not hash is among them: those
/// are read, and their names compared in place (nearby names in one read).
/// An undefined symbol that *is* hashed (a canonical PLT entry of an
/// executable) is on its name's chain, as every hashed symbol is: each name
/// is looked up as the loader looks up a definition (bloom word, bucket,
/// chain). A caller that has the string table in memory passes it
/// (`strtab`, the whole table) and no name is read again. `None` when the
/// object has no usable GNU hash table (the caller searches the string
/// table instead). On a table that hides a hashed
/// symbol from its own chain, which no linker writes, the answer can
/// differ from the exhaustive scan (the fuzzer checks exactly that).
pub fn first_undefined_hashed(
    file: &File,
    len: u64,
    info: &ElfInfo,
    names: &[&[u8]],
    strtab: Option<&[u8]>,
) -> Option<Option<Vec<u8>>> {
    let t = &info.tables;
    let (g, symtab, (str_start, str_end)) = (t.gnu_hash()?, t.symtab()?, t.strtab()?);
    let big = info.ident.big_endian;
    let is64 = info.ident.is_64;
    let r = Reader { file, big, len };
    let read = |off: u64, n: u64| r.bytes(off, n).map(Bytes::Read);
    let uint = |b: &[u8]| fixed_uint(b, big);
    let str_size = str_end.saturating_sub(str_start).min(64 << 20);
    let syment: u64 = if is64 { 24 } else { 16 };
    let bloom_bits: u32 = if is64 { 64 } else { 32 };
    // An unreadable string table answers "no" (as the exhaustive scan).
    if str_start.checked_add(str_size).is_none_or(|end| end > len) {
        return Some(None);
    }
    // The header, the bloom filter, the buckets and often the start of
    // the chains and of `.dynsym` (linkers put it next) lie in the few KiB
    // after `g`: one read serves the lookups' words there, which were a
    // `pread64` each (libc: 15 reads for the three names).
    let block = r.bytes(g, HASH_BLOCK.min(len.saturating_sub(g)))?;
    let near = |off: u64, n: u64| -> Option<&[u8]> {
        let from = usize::try_from(off.checked_sub(g)?).ok()?;
        block.get(from..from.checked_add(usize::try_from(n).ok()?)?)
    };
    let word_at = |off: u64, n: u64| match near(off, n) {
        Some(b) => Some(uint(b)),
        None => r.word(off, n),
    };
    let bytes_at = |off: u64, n: u64| match near(off, n) {
        Some(b) => Some(Bytes::Borrowed(b)),
        None => r.bytes(off, n).map(Bytes::Read),
    };
    let head = near(g, 16)?;
    let (nbuckets, symoffset, bloom_size, shift) = (
        uint(&head[0..4]),
        uint(&head[4..8]),
        uint(&head[8..12]),
        uint(&head[12..16]),
    );
    // What linkers write (and the loader assumes): a power-of-two bloom
    // filter, a shift below the word size, at least one bucket. And some
    // symbols before `symoffset`: a table that hashes nothing may say 1
    // with undefined symbols after it (GNU ld), which only the scan of
    // `.dynsym` finds.
    if nbuckets == 0
        || symoffset <= 1
        || !bloom_size.is_power_of_two()
        || shift >= u64::from(bloom_bits)
        || symoffset > MAX_SYMBOLS
        || symtab.checked_add(symoffset.checked_mul(syment)?)? > len
    {
        return None;
    }
    let blooms = g.checked_add(16)?;
    let buckets = blooms.checked_add(bloom_size.checked_mul(u64::from(bloom_bits / 8))?)?;
    let chains = buckets.checked_add(nbuckets.checked_mul(4)?)?;
    // An undefined, non-local symbol: its name offset.
    let undefined = |e: &[u8]| -> Option<u64> {
        let (shndx, info_b) = if is64 {
            (uint(&e[6..8]) as u16, e[4])
        } else {
            (uint(&e[14..16]) as u16, e[12])
        };
        (shndx == SHN_UNDEF && info_b >> 4 != STB_LOCAL).then(|| uint(&e[0..4]))
    };
    let longest = names.iter().map(|n| n.len() as u64 + 1).max().unwrap_or(1);
    // The name at `at` (a string-table offset) in `bytes` read from `from`.
    // The first byte is compared before the rest: nearly every undefined
    // name differs from all wanted ones there, and a call to `memcmp` per
    // name and symbol was ≈ 1.5% of a whole-`/usr/bin` run's instructions.
    let named = |bytes: &[u8], from: u64, at: u64| -> Option<&[u8]> {
        let rest = bytes.get(usize::try_from(at - from).ok()?..)?;
        let first = *rest.first()?;
        names
            .iter()
            .find(|n| {
                n.first().map_or(first == 0, |&c| c == first)
                    && rest.len() > n.len()
                    && rest.starts_with(n)
                    && rest[n.len()] == 0
            })
            .copied()
    };
    let mut hits: Vec<(u64, &[u8])> = Vec::new();

    // The unhashed symbols, read in pieces. Each is kept as one word,
    // its name's offset above its index (both fit in 32 bits: the string
    // table is capped at 64 MiB, the symbol count at `MAX_SYMBOLS`), so a
    // table of thousands of undefined symbols takes half the memory and
    // sorts as plain integers.
    let pack = |at: u64, index: u64| at << 32 | index;
    let at_of = |w: u64| w >> 32;
    let index_of = |w: u64| w & 0xffff_ffff;
    let mut wanted: Vec<u64> = Vec::new();
    let mut first = 1;
    while first < symoffset {
        let k = (symoffset - first).min(SYMBOL_PIECE);
        r.with_bytes(symtab + first * syment, k * syment, |raw| {
            wanted.extend(
                raw.chunks_exact(syment as usize)
                    .enumerate()
                    .filter_map(|(i, e)| Some((undefined(e)?, first + i as u64)))
                    .filter(|&(at, _)| at < str_size)
                    .map(|(at, index)| pack(at, index)),
            );
        })?;
        first += k;
    }
    // Their names: in the table when the caller has it in memory, else
    // read, nearby ones sharing a read.
    if let Some(table) = strtab.filter(|t| t.len() as u64 == str_size) {
        hits.extend(
            wanted
                .iter()
                .filter_map(|&w| Some((index_of(w), named(table, 0, at_of(w))?))),
        );
        wanted.clear();
    }
    wanted.sort_unstable();
    let mut i = 0;
    while i < wanted.len() {
        let from = at_of(wanted[i]);
        let mut j = i + 1;
        while j < wanted.len()
            && at_of(wanted[j]) <= at_of(wanted[j - 1]) + NAME_GAP
            && at_of(wanted[j]) + longest - from <= NAME_SPAN
        {
            j += 1;
        }
        let to = (at_of(wanted[j - 1]) + longest).min(str_size);
        r.with_bytes(str_start + from, to - from, |bytes| {
            for &w in &wanted[i..j] {
                if let Some(n) = named(bytes, from, at_of(w)) {
                    hits.push((index_of(w), n));
                }
            }
        })?;
        i = j;
    }

    // Hashed symbols: each name looked up as the loader does.
    for &name in names {
        let h = gnu_hash(name);
        let word = word_at(
            blooms + u64::from(h / bloom_bits) % bloom_size * u64::from(bloom_bits / 8),
            u64::from(bloom_bits / 8),
        )?;
        let bits = u64::from(bloom_bits);
        let mask = (1u64 << (u64::from(h) % bits)) | (1u64 << ((u64::from(h) >> shift) % bits));
        if word & mask != mask {
            continue;
        }
        let mut index = word_at(buckets + u64::from(h) % nbuckets * 4, 4)?;
        if index < symoffset {
            continue;
        }
        // The chain, to its end bit: a few words first (real chains are
        // short), more per read after. One longer than any linker writes,
        // or with more entries of this hash than collisions explain, is
        // left to the exhaustive scan (its reads are capped).
        let (start, mut piece, mut matches) = (index, CHAIN_PIECE, 0);
        'chain: loop {
            if index - start >= MAX_CHAIN {
                return None;
            }
            let raw = bytes_at(chains + (index - symoffset) * 4, piece * 4)
                .or_else(|| bytes_at(chains + (index - symoffset) * 4, 4))?;
            piece = (piece * 4).min(MAX_CHAIN);
            for c in raw.chunks_exact(4) {
                let c = uint(c) as u32;
                if (c | 1) == (h | 1) {
                    matches += 1;
                    if matches > MAX_CHAIN_MATCHES {
                        return None;
                    }
                    let e = bytes_at(symtab + index * syment, syment)?;
                    if let Some(at) = undefined(&e).filter(|&at| at < str_size) {
                        let to = (at + name.len() as u64 + 1).min(str_size);
                        let bytes = match strtab.filter(|t| t.len() as u64 == str_size) {
                            Some(t) => Bytes::Borrowed(&t[at as usize..to as usize]),
                            None => Bytes::Read(r.bytes(str_start + at, to - at)?),
                        };
                        if named(&bytes, at, at).is_some_and(|n| n == name) {
                            hits.push((index, name));
                        }
                    }
                }
                if c & 1 == 1 || index >= MAX_SYMBOLS {
                    break 'chain;
                }
                index += 1;
            }
        }
    }
    hits.sort_unstable();
    hits.dedup();
    Some(confirm_by_relocation(&read, info, &hits))
}

/// Whether [`first_undefined_hashed`] must agree with the exhaustive scan
/// ([`first_undefined_of`]) on `file`: its tables lie in the file and are
/// what linkers write, and every undefined symbol named one of `names`
/// past `symoffset` is found by its name's lookup, which stays within the
/// symbol count. Reads every table whole, independently of the fast path:
/// for tests and the fuzzer, not for the resolver. `true` also when there
/// is no GNU hash table (the fast path is not taken).
pub fn gnu_hash_consistent(file: &File, info: &ElfInfo, names: &[&[u8]]) -> bool {
    let t = &info.tables;
    let Some(g) = t.gnu_hash() else { return true };
    let (Some(symtab), Some((str_start, str_end))) = (t.symtab(), t.strtab()) else {
        return true;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let big = info.ident.big_endian;
    let r = Reader { file, big, len };
    let is64 = info.ident.is_64;
    let syment: u64 = if is64 { 24 } else { 16 };
    let wordbytes: u64 = if is64 { 8 } else { 4 };
    let check = || -> Option<bool> {
        let str_size = str_end.checked_sub(str_start)?;
        let strtab = r
            .bytes(str_start, str_size)
            .filter(|_| str_size <= 64 << 20)?;
        let head = r.bytes(g, 16)?;
        let word = |i: usize| r.uint(&head[4 * i..4 * i + 4]);
        let (nbuckets, symoffset, bloom_size, shift) = (word(0), word(1), word(2), word(3));
        if nbuckets == 0 || !bloom_size.is_power_of_two() || shift >= wordbytes * 8 {
            return None;
        }
        let count = symbol_count(&r, info);
        if symoffset > count || count > MAX_SYMBOLS {
            return None;
        }
        let syms = r.bytes(symtab, count.checked_mul(syment)?)?;
        let bloom = r.bytes(g + 16, bloom_size.checked_mul(wordbytes)?)?;
        let buckets = r.bytes(g + 16 + bloom.len() as u64, nbuckets.checked_mul(4)?)?;
        let chains = r.bytes(
            g + 16 + (bloom.len() + buckets.len()) as u64,
            (count - symoffset) * 4,
        )?;
        let at4 = |b: &[u8], i: u64| -> Option<u64> {
            let i = usize::try_from(i).ok()?;
            Some(r.uint(b.get(4 * i..4 * i + 4)?))
        };
        let name_at = |off: u64| -> Option<&[u8]> {
            let rest = strtab.get(usize::try_from(off).ok()?..)?;
            Some(&rest[..rest.iter().position(|&c| c == 0)?])
        };
        // Undefined, non-local, and named one of `names`.
        let wanted = |i: u64| -> bool {
            let e = &syms[(i * syment) as usize..((i + 1) * syment) as usize];
            let (shndx, bind) = if is64 {
                (r.uint(&e[6..8]), e[4] >> 4)
            } else {
                (r.uint(&e[14..16]), e[12] >> 4)
            };
            shndx == u64::from(SHN_UNDEF)
                && bind != STB_LOCAL
                && name_at(r.uint(&e[0..4])).is_some_and(|n| names.contains(&n))
        };
        // Each name's lookup: the indices it visits with a matching hash.
        for name in names {
            let h = name.iter().fold(5381u32, |h, &c| {
                h.wrapping_mul(33).wrapping_add(u32::from(c))
            });
            let bits = wordbytes * 8;
            let wi = (u64::from(h) / bits) % bloom_size;
            let w = r.uint(&bloom[(wi * wordbytes) as usize..((wi + 1) * wordbytes) as usize]);
            let passes = w >> (u64::from(h) % bits) & 1 == 1
                && w >> ((u64::from(h) >> shift) % bits) & 1 == 1;
            let mut found = Vec::new();
            let start = at4(&buckets, u64::from(h) % nbuckets)?;
            if passes && start >= symoffset {
                let mut i = start;
                loop {
                    if i >= count {
                        return Some(false);
                    }
                    let c = at4(&chains, i - symoffset)?;
                    if (c | 1) == (u64::from(h) | 1) {
                        found.push(i);
                    }
                    if c & 1 == 1 {
                        break;
                    }
                    i += 1;
                }
            }
            for i in symoffset.max(1)..count {
                if wanted(i)
                    && name_at(r.uint(&syms[(i * syment) as usize..][..4])) == Some(name)
                    && !found.contains(&i)
                {
                    return Some(false);
                }
            }
        }
        Some(true)
    };
    check().unwrap_or(false)
}

/// Unhashed names closer than this share one read.
const NAME_GAP: u64 = 4 << 10;
/// Longest read of names.
const NAME_SPAN: u64 = 64 << 10;
/// Chain words read first.
const CHAIN_PIECE: u64 = 16;
/// How much [`first_undefined_hashed`] reads at the GNU hash table's start
/// (a few KiB hold the header, bloom filter and buckets of most files).
const HASH_BLOCK: u64 = 8 << 10;
/// Longest chain followed (real ones hold a handful of symbols).
const MAX_CHAIN: u64 = 1 << 12;
/// Most entries of one hash on one chain (real ones: one, or a collision).
const MAX_CHAIN_MATCHES: u32 = 64;

/// The GNU symbol hash (`dl_new_hash`).
fn gnu_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &c| {
        h.wrapping_mul(33).wrapping_add(u32::from(c))
    })
}

/// Every offset of `strtab` where one of `names` starts as a whole,
/// NUL-terminated string (a longer string's tail included). One pass over
/// the table whatever the number of names.
pub fn name_offsets<'n>(strtab: &[u8], names: &[&'n [u8]]) -> Vec<(u64, &'n [u8])> {
    let Ok(searcher) = cached_searcher(names) else {
        return Vec::new();
    };
    let (patterns, ac) = &*searcher;
    let mut out = Vec::new();
    for m in ac.find_iter(strtab) {
        let found = &patterns[m.pattern().as_usize()];
        // A match hides the names that are its own tail (`x_exit` hides
        // `exit`): they start inside it.
        for (i, p) in patterns.iter().enumerate() {
            if found.ends_with(p) {
                out.push(((m.end() - p.len()) as u64, names[i]));
            }
        }
    }
    out
}

/// A searcher for `names`, each followed by its NUL, and those patterns.
type Searcher = (Vec<Vec<u8>>, aho_corasick::packed::Searcher);

/// The searcher for `names`, built once per distinct set per thread (and
/// found again without building the patterns: a call per file).
fn cached_searcher(names: &[&[u8]]) -> Result<std::rc::Rc<Searcher>, ()> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<std::rc::Rc<Searcher>>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        if let Some(s) = &*last.borrow() {
            let same = s.0.len() == names.len()
                && s.0
                    .iter()
                    .zip(names)
                    .all(|(p, n)| p.strip_suffix(b"\0") == Some(*n));
            if same {
                return Ok(s.clone());
            }
        }
        let patterns: Vec<Vec<u8>> = names.iter().map(|n| [*n, b"\0"].concat()).collect();
        // Teddy (SIMD) when the CPU has it; leftmost-longest so a name
        // wins over its own tail.
        let ac = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(&patterns)
            .build()
            .ok_or(())?;
        let s = std::rc::Rc::new((patterns, ac));
        *last.borrow_mut() = Some(s.clone());
        Ok(s)
    })
}

/// Bytes of a file: a slice of a table already in memory, or read
/// through the pool.
pub(crate) enum Bytes<'a> {
    Borrowed(&'a [u8]),
    Read(Pooled),
}

impl std::ops::Deref for Bytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Borrowed(b) => b,
            Bytes::Read(p) => p,
        }
    }
}

/// Byte ranges of a file, read on demand (`None` past its end).
pub(crate) type ReadAt<'r, 'a> = dyn Fn(u64, u64) -> Option<Bytes<'a>> + 'r;

/// [`first_undefined_of`] looking only at symbols in `range`, with names
/// matched by string-table offset: `at` holds every offset where one of the
/// names starts, NUL-terminated ([`name_offsets`]), so no name is read.
pub(crate) fn first_undefined_in(
    read: &ReadAt<'_, '_>,
    info: &ElfInfo,
    at: &[(u64, &[u8])],
    range: std::ops::Range<u64>,
) -> Option<Vec<u8>> {
    let t = &info.tables;
    let symtab = t.symtab()?;
    let big = info.ident.big_endian;
    let uint = |b: &[u8]| fixed_uint(b, big);
    if at.is_empty() || range.start >= range.end {
        return None;
    }
    let is64 = info.ident.is_64;
    let syment: u64 = if is64 { 24 } else { 16 };
    // Read in pieces; a table reaching past the end of the file gives no
    // answer, as when it was read whole.
    symtab.checked_add(range.end.checked_mul(syment)?)?;
    let mut hits: Vec<(u64, &[u8])> = Vec::new();
    let mut first = range.start;
    while first < range.end {
        let k = (range.end - first).min(SYMBOL_PIECE);
        let raw = read(symtab + first * syment, k * syment)?;
        hits.extend(
            raw.chunks_exact(syment as usize)
                .enumerate()
                .filter_map(|(i, e)| {
                    // Defined symbols (most of a large table) first out.
                    let (shndx, info_b) = if is64 {
                        (uint(&e[6..8]) as u16, e[4])
                    } else {
                        (uint(&e[14..16]) as u16, e[12])
                    };
                    if shndx != SHN_UNDEF || info_b >> 4 == STB_LOCAL {
                        return None;
                    }
                    let name_off = uint(&e[0..4]);
                    at.iter()
                        .find(|(o, _)| *o == name_off)
                        .map(|&(_, n)| (first + i as u64, n))
                }),
        );
        first += k;
    }
    confirm_by_relocation(read, info, &hits)
}

/// The first of `hits` (undefined symbols by index, with their names, in
/// index order) that a relocation uses, or on MIPS the global GOT: what
/// the loader would look up.
fn confirm_by_relocation(
    read: &ReadAt<'_, '_>,
    info: &ElfInfo,
    hits: &[(u64, &[u8])],
) -> Option<Vec<u8>> {
    if hits.is_empty() {
        return None;
    }
    let t = &info.tables;
    if let Some(&(_, name)) = t
        .mips_gotsym()
        .and_then(|first| hits.iter().find(|(i, _)| *i >= first))
    {
        return Some(name.to_vec());
    }
    let big = info.ident.big_endian;
    let is64 = info.ident.is_64;
    let uint = |b: &[u8]| fixed_uint(b, big);
    let word: u64 = if is64 { 8 } else { 4 };
    let mips64 = info.ident.machine == machine::MIPS && is64;
    let sym_of = |w: u64| -> u64 {
        if !is64 {
            w >> 8
        } else if mips64 && !big {
            w & 0xffff_ffff
        } else {
            w >> 32
        }
    };
    // PLT relocations first: a called function is almost always there, and
    // that table is small next to `DT_RELA`.
    let tables = [
        t.jmprel(),
        t.rela().map(|(o, s)| (o, s, true)),
        t.rel().map(|(o, s)| (o, s, false)),
    ];
    if tables.iter().all(Option::is_none) {
        return Some(hits[0].1.to_vec());
    }
    for (off, size, rela) in tables.into_iter().flatten() {
        let ent = if rela { 3 * word } else { 2 * word };
        let n = (size / ent).min(MAX_RELOCS);
        let mut done = 0;
        while done < n {
            let k = (n - done).min(RELOC_PIECE);
            let Some(raw) = read(off.saturating_add(done * ent), k * ent) else {
                break;
            };
            for e in raw.chunks_exact(ent as usize) {
                let sym = sym_of(uint(&e[word as usize..2 * word as usize]));
                if let Some(&(_, name)) = hits.iter().find(|(i, _)| *i == sym) {
                    return Some(name.to_vec());
                }
            }
            done += k;
        }
    }
    None
}

/// An unsigned field of 2, 4 or 8 bytes (others folded byte by byte).
/// Fixed widths are decoded directly: this runs once per symbol and
/// relocation of a file whose string table holds a name.
fn fixed_uint(b: &[u8], big: bool) -> u64 {
    match (b.len(), big) {
        (2, false) => u16::from_le_bytes([b[0], b[1]]).into(),
        (2, true) => u16::from_be_bytes([b[0], b[1]]).into(),
        (4, false) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]).into(),
        (4, true) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]).into(),
        (8, false) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        (8, true) => u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        _ if big => b.iter().fold(0u64, |v, &x| (v << 8) | x as u64),
        _ => b.iter().rev().fold(0u64, |v, &x| (v << 8) | x as u64),
    }
}

/// The `R_*_COPY` relocation type of a machine.
fn copy_reloc_type(m: u16) -> Option<u64> {
    Some(match m {
        machine::X86_64 | machine::I386 => 5,
        machine::AARCH64 => 1024,
        machine::ARM => 20,
        machine::PPC64 | machine::PPC => 19,
        machine::S390 => 9,
        machine::RISCV => 4,
        machine::LOONGARCH => 4,
        _ => return None,
    })
}

/// Number of dynamic symbols: `DT_HASH`'s `nchain`, else the end of the
/// highest `DT_GNU_HASH` chain, else on MIPS `DT_MIPS_SYMTABNO`.
/// Calls `f(symbol index, relocation type, from the PLT table)` for every
/// entry of the object's `DT_RELA`, `DT_REL` and `DT_JMPREL` tables (each
/// capped, read in pieces; a table not wholly in the file is skipped);
/// whether the object has any of them.
fn for_each_relocation(r: &Reader<'_>, info: &ElfInfo, mut f: impl FnMut(u64, u64, bool)) -> bool {
    let t = &info.tables;
    let is64 = info.ident.is_64;
    let mips64 = info.ident.machine == machine::MIPS && is64;
    let type_of = |info_word: u64| -> u64 {
        if !is64 {
            info_word & 0xff
        } else if mips64 {
            u64::MAX // MIPS64 packs three types; copy relocations are not tracked there
        } else {
            info_word & 0xffff_ffff
        }
    };
    let sym_of = |info_word: u64| -> u64 {
        if !is64 {
            info_word >> 8
        } else if mips64 && !r.big {
            info_word & 0xffff_ffff
        } else {
            info_word >> 32
        }
    };
    let word = if is64 { 8 } else { 4 };
    let mut any_table = false;
    let mut walk = |off: u64, size: u64, rela: bool, plt: bool| {
        any_table = true;
        let ent = if rela { 3 * word } else { 2 * word };
        let n = (size / ent).min(MAX_RELOCS);
        // The whole table must lie in the file; it is read in pieces, so a
        // hostile size costs one piece of memory, not the whole cap.
        if off.checked_add(n * ent).is_none_or(|end| end > r.len) {
            return;
        }
        let mut done = 0;
        while done < n {
            let k = (n - done).min(RELOC_PIECE);
            let Some(raw) = r.bytes(off + done * ent, k * ent) else {
                return;
            };
            for e in raw.chunks_exact(ent as usize) {
                let info_word = r.uint(&e[word as usize..2 * word as usize]);
                f(sym_of(info_word), type_of(info_word), plt);
            }
            done += k;
        }
    };
    if let Some((o, s)) = t.rela() {
        walk(o, s, true, false);
    }
    if let Some((o, s)) = t.rel() {
        walk(o, s, false, false);
    }
    if let Some((o, s, rela)) = t.jmprel() {
        walk(o, s, rela, true);
    }
    any_table
}

/// One past the highest symbol index a relocation names (0: none).
fn relocated_symbols_end(r: &Reader<'_>, info: &ElfInfo) -> u64 {
    let mut end = 0;
    for_each_relocation(r, info, |sym, _, _| end = end.max(sym.saturating_add(1)));
    end.min(MAX_SYMBOLS)
}

fn symbol_count(r: &Reader<'_>, info: &ElfInfo) -> u64 {
    let t = &info.tables;
    if let Some(h) = t.hash() {
        // 64-bit s390 (and Alpha) use 8-byte hash words.
        let w = if info.ident.machine == machine::S390 && info.ident.is_64 {
            8
        } else {
            4
        };
        if let Some(n) = r.word(h.saturating_add(w), w) {
            return n;
        }
    }
    let Some(g) = t.gnu_hash() else {
        // MIPS has no `DT_GNU_HASH`; with only `DT_MIPS_XHASH` the count is
        // `DT_MIPS_SYMTABNO` (its chains end at the last hashed symbol, and
        // MIPS orders `.dynsym` by GOT entry, not by hash).
        return match t.mips_symtabno() {
            Some(n) if info.ident.machine == machine::MIPS => n.min(MAX_SYMBOLS),
            _ => 0,
        };
    };
    let (Some(nbuckets), Some(symoffset), Some(bloom_size)) = (
        r.word(g, 4),
        r.word(g.saturating_add(4), 4),
        r.word(g.saturating_add(8), 4),
    ) else {
        return 0;
    };
    let word = if info.ident.is_64 { 8 } else { 4 };
    // Offsets from hostile counts saturate: a read past the end fails.
    let buckets = g
        .saturating_add(16)
        .saturating_add(bloom_size.saturating_mul(word));
    // Buckets and chains are read in pieces, so a hostile bucket count or a
    // chain without an end costs one piece of memory and few reads; buckets
    // past MAX_SYMBOLS are not looked at (no more symbols are read anyway).
    let nread = nbuckets.min(MAX_SYMBOLS);
    let mut max = 0;
    let mut i = 0;
    while i < nread {
        let k = (nread - i).min(HASH_PIECE);
        let Some(braw) = r.bytes(buckets.saturating_add(i * 4), k * 4) else {
            return 0;
        };
        max = braw.chunks_exact(4).map(|c| r.uint(c)).fold(max, u64::max);
        i += k;
    }
    if max < symoffset {
        // No symbol hashed: linkers may then write `symoffset` 1 (GNU ld
        // does) while undefined symbols follow it, and the table says no
        // more; the relocations name every symbol that matters here.
        return symoffset.max(relocated_symbols_end(r, info));
    }
    let chains = buckets.saturating_add(nbuckets.saturating_mul(4));
    let mut idx = max;
    loop {
        if idx >= MAX_SYMBOLS {
            return idx + 1;
        }
        let at = chains.saturating_add((idx - symoffset) * 4);
        let k = (MAX_SYMBOLS - idx + 1)
            .min(HASH_PIECE)
            .min(r.len.saturating_sub(at) / 4);
        let Some(raw) = r.bytes(at, k * 4).filter(|_| k > 0) else {
            return idx;
        };
        for c in raw.chunks_exact(4) {
            if r.uint(c) & 1 == 1 || idx >= MAX_SYMBOLS {
                return idx + 1;
            }
            idx += 1;
        }
    }
}
