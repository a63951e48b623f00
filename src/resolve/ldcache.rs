//! Reading and writing `/etc/ld.so.cache`.
//!
//! This module owns the binary formats of the loader cache: it decodes the
//! new format (`glibc-ld.so.cache1.1`), the old libc5-era format
//! (`ld.so-1.7.0`) and the combined layout (old table with a new table
//! embedded behind it), including the extension directory (generator string
//! and glibc-hwcaps subdirectory names). It encodes new-format caches the way
//! glibc's `ldconfig` lays them out, so a staged root can ship a cache the
//! real loader accepts. It also knows the cache `flags` values of every
//! architecture: which ones a loader accepts and which one `ldconfig` would
//! write for a given library.
//!
//! It never touches the file system and never decides which entry the loader
//! would pick for a name: callers hand in bytes, get entries back (in file
//! order) and apply the lookup rules themselves. [`parse`] copies the
//! entries out ([`LdCache`]); [`CacheIndex`], what the resolver uses, keeps
//! the bytes and lends entries out ([`Entry`]); one decoder checks both. Every offset read from the
//! input is validated; malformed input yields a [`CacheError`], never a panic.

use std::cmp::Ordering;

/// Magic of the old (`ld.so-1.7.0`) format, without its padding byte.
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
/// Magic and version of the new format.
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// Size of the old header: magic, one padding byte, `nlibs`.
const OLD_HEADER_LEN: usize = 16;
/// Size of one old-format entry: flags, key, value.
const OLD_ENTRY_LEN: usize = 12;
/// Size of the new header.
const NEW_HEADER_LEN: usize = 48;
/// Size of one new-format entry: flags, key, value, osversion, hwcap.
const NEW_ENTRY_LEN: usize = 24;
/// Offset of `nlibs` in the new header.
const NEW_NLIBS_AT: usize = 20;
/// Offset of the flags byte in the new header.
const NEW_FLAGS_AT: usize = 28;
/// Offset of `extension_offset` in the new header.
const NEW_EXTENSION_AT: usize = 32;
/// Magic number opening the extension directory.
const EXTENSION_MAGIC: u32 = 0xEAA4_2174;
/// Size of the extension directory header: magic, count.
const EXTENSION_HEADER_LEN: usize = 8;
/// Size of one extension section descriptor.
const EXTENSION_SECTION_LEN: usize = 16;
/// Extension tag of the generator string.
const TAG_GENERATOR: u32 = 0;
/// Extension tag of the glibc-hwcaps subdirectory name array.
const TAG_GLIBC_HWCAPS: u32 = 1;
/// Endianness bits of the new header's flags byte.
const ENDIAN_MASK: u8 = 0x03;
/// Endianness value "little endian".
const ENDIAN_LITTLE: u8 = 2;
/// Endianness value "big endian".
const ENDIAN_BIG: u8 = 3;
/// Bit 62 of `hwcap`: the entry belongs to a glibc-hwcaps subdirectory.
const HWCAP_EXTENSION: u64 = 1 << 62;
/// Bits 32..41 of `hwcap` (shifted down): the x86 ISA level.
const HWCAP_ISA_LEVEL_MASK: u64 = 0x3ff;

/// Type bits of `flags`: an ELF library for glibc 2 (libc6).
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
/// Mask of the type bits (low byte) of `flags`.
pub const FLAG_TYPE_MASK: i32 = 0x00ff;
/// Mask of the ABI bits (high byte) of `flags`.
pub const FLAG_REQUIRED_MASK: i32 = 0xff00;
/// ABI bits: 64-bit SPARC.
pub const FLAG_SPARC_LIB64: i32 = 0x0100;
/// ABI bits: IA-64 (no longer supported by glibc).
pub const FLAG_IA64_LIB64: i32 = 0x0200;
/// ABI bits: x86-64.
pub const FLAG_X8664_LIB64: i32 = 0x0300;
/// ABI bits: 64-bit s390.
pub const FLAG_S390_LIB64: i32 = 0x0400;
/// ABI bits: 64-bit PowerPC.
pub const FLAG_POWERPC_LIB64: i32 = 0x0500;
/// ABI bits: MIPS n32.
pub const FLAG_MIPS64_LIBN32: i32 = 0x0600;
/// ABI bits: MIPS n64.
pub const FLAG_MIPS64_LIBN64: i32 = 0x0700;
/// ABI bits: x32.
pub const FLAG_X8664_LIBX32: i32 = 0x0800;
/// ABI bits: ARM hard-float.
pub const FLAG_ARM_LIBHF: i32 = 0x0900;
/// ABI bits: AArch64.
pub const FLAG_AARCH64_LIB64: i32 = 0x0a00;
/// ABI bits: ARM soft-float.
pub const FLAG_ARM_LIBSF: i32 = 0x0b00;
/// ABI bits: MIPS o32 with 2008 NaN encoding.
pub const FLAG_MIPS_LIB32_NAN2008: i32 = 0x0c00;
/// ABI bits: MIPS n32 with 2008 NaN encoding.
pub const FLAG_MIPS64_LIBN32_NAN2008: i32 = 0x0d00;
/// ABI bits: MIPS n64 with 2008 NaN encoding.
pub const FLAG_MIPS64_LIBN64_NAN2008: i32 = 0x0e00;
/// ABI bits: RISC-V soft-float ABI.
pub const FLAG_RISCV_FLOAT_ABI_SOFT: i32 = 0x0f00;
/// ABI bits: RISC-V double-float ABI.
pub const FLAG_RISCV_FLOAT_ABI_DOUBLE: i32 = 0x1000;
/// ABI bits: LoongArch soft-float ABI.
pub const FLAG_LARCH_FLOAT_ABI_SOFT: i32 = 0x1100;
/// ABI bits: LoongArch double-float ABI.
pub const FLAG_LARCH_FLOAT_ABI_DOUBLE: i32 = 0x1200;

// `e_machine` values. Those without an ABI-specific flags value (EM_386,
// EM_SPARC, EM_SPARC32PLUS, EM_PPC, ...) take the generic rule and are only
// named in tests.
#[cfg(test)]
const EM_SPARC: u16 = 2;
#[cfg(test)]
const EM_386: u16 = 3;
const EM_MIPS: u16 = 8;
#[cfg(test)]
const EM_PPC: u16 = 20;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_ARM: u16 = 40;
const EM_SPARCV9: u16 = 43;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;
const EM_LOONGARCH: u16 = 258;

/// `e_flags`: MIPS n32 ABI.
const EF_MIPS_ABI2: u32 = 0x20;
/// `e_flags`: MIPS 2008 NaN encoding.
const EF_MIPS_NAN2008: u32 = 0x400;
/// `e_flags`: ARM EABI version mask.
const EF_ARM_EABIMASK: u32 = 0xff00_0000;
/// `e_flags`: ARM EABI version 5.
const EF_ARM_EABI_VER5: u32 = 0x0500_0000;
/// `e_flags`: ARM hard-float ABI.
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;
/// `e_flags`: ARM soft-float ABI.
const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
/// `e_flags`: RISC-V float ABI mask.
const EF_RISCV_FLOAT_ABI: u32 = 0x6;
/// `e_flags`: RISC-V soft-float ABI.
const EF_RISCV_FLOAT_ABI_SOFT: u32 = 0x0;
/// `e_flags`: RISC-V double-float ABI.
const EF_RISCV_FLOAT_ABI_DOUBLE: u32 = 0x4;
/// `e_flags`: LoongArch ABI modifier mask.
const EF_LARCH_ABI_MODIFIER_MASK: u32 = 0x7;
/// `e_flags`: LoongArch soft-float ABI.
const EF_LARCH_ABI_SOFT_FLOAT: u32 = 0x1;
/// `e_flags`: LoongArch double-float ABI.
const EF_LARCH_ABI_DOUBLE_FLOAT: u32 = 0x3;

/// A decoded loader cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdCache {
    /// The entries, in file order (the order the loader searches them in).
    pub entries: Vec<CacheEntry>,
    /// The glibc-hwcaps subdirectory names of the extension directory
    /// (e.g. `x86-64-v3`); [`CacheEntry::hwcaps_index`] indexes this list.
    pub hwcaps_names: Vec<Vec<u8>>,
    /// The generator string of the extension directory, e.g.
    /// `ldconfig (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36`.
    pub generator: Option<Vec<u8>>,
    /// Which layout the file had.
    pub format: CacheFormat,
    /// Entry positions by key, built on the first lookup.
    index: KeyIndex,
}

/// Positions of the entries of each key, in file order, and the entry
/// count they were built for (a changed `entries` falls back to a scan).
/// Not part of a cache's value: equality ignores it.
#[derive(Debug, Clone, Default)]
struct KeyIndex(std::sync::OnceLock<(usize, Positions)>);

/// Entry positions in an open-addressing table keyed by the hash of their
/// key (linear probing, at most half full): one allocation for the whole
/// index, where a map from key to positions made two per entry, and no
/// sort (sorting the (hash, position) pairs was a tenth of a one-program
/// run). Entries are inserted in file order, so the entries of one hash
/// come in file order along the probe sequence. foldhash, randomly seeded
/// as the resolver's memo maps are.
#[derive(Debug, Clone)]
struct Positions {
    hasher: foldhash::quality::RandomState,
    /// (hash, position); position `u32::MAX` marks an empty slot.
    slots: Vec<(u64, u32)>,
}

impl Positions {
    fn new<'k>(keys: impl ExactSizeIterator<Item = &'k [u8]>) -> Positions {
        let hasher = foldhash::quality::RandomState::default();
        let size = (keys.len() * 2).next_power_of_two().max(2);
        let mask = size - 1;
        let mut slots = vec![(0u64, u32::MAX); size];
        for (i, key) in keys.enumerate() {
            let h = std::hash::BuildHasher::hash_one(&hasher, key);
            let mut at = (h as usize) & mask;
            while slots[at].1 != u32::MAX {
                at = (at + 1) & mask;
            }
            slots[at] = (h, i as u32);
        }
        Positions { hasher, slots }
    }

    /// Positions whose key has the hash of `name` (a superset of its own),
    /// in file order.
    fn candidates(&self, name: &[u8]) -> impl Iterator<Item = u32> + '_ {
        let h = std::hash::BuildHasher::hash_one(&self.hasher, name);
        let mask = self.slots.len() - 1;
        let start = (h as usize) & mask;
        (0..self.slots.len())
            .map(move |k| self.slots[(start + k) & mask])
            .take_while(|&(_, i)| i != u32::MAX)
            .filter(move |&(k, _)| k == h)
            .map(|(_, i)| i)
    }
}

impl PartialEq for KeyIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for KeyIndex {}

/// The layout a cache file was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheFormat {
    /// Old `ld.so-1.7.0` table only (libc5 era).
    Old,
    /// New `glibc-ld.so.cache1.1` table only (the default since glibc 2.32).
    New,
    /// Old table with a new table embedded behind it; the new one was read.
    Combined,
}

/// One cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheEntry {
    /// Type and ABI bits (e.g. `0x0303` for an x86-64 libc6 library); see
    /// [`flags_accepted`].
    pub flags: i32,
    /// The name looked up (normally the `DT_SONAME`), e.g. `libz.so.1`.
    pub key: Vec<u8>,
    /// The absolute path the loader opens, e.g. `/lib/x86_64-linux-gnu/libz.so.1`.
    pub value: Vec<u8>,
    /// Capability bits: 0 for an ordinary entry; see [`CacheEntry::hwcaps_index`]
    /// and [`CacheEntry::is_legacy_hwcap`]. Always 0 for the old format.
    pub hwcap: u64,
}

/// The capability-bit questions, for [`CacheEntry`] and [`Entry`] alike.
macro_rules! hwcap_methods {
    () => {
        /// `Some(index into hwcaps_names)` for a glibc-hwcaps extension entry:
        /// `((hwcap >> 32) & !0x3ff) == 1 << 30`. The index is not checked
        /// against [`LdCache::hwcaps_names`]; use `get()` on it (the loader skips
        /// entries whose index is out of range).
        pub fn hwcaps_index(&self) -> Option<u32> {
            hwcaps_index(self.hwcap)
        }

        /// The x86 ISA level (bits 32..41) of an extension entry: the index of the
        /// highest bit set in the library's `GNU_PROPERTY_X86_ISA_1_NEEDED`.
        /// 0 for entries that are not extension entries.
        pub fn isa_level(&self) -> u32 {
            isa_level(self.hwcap)
        }

        /// A non-zero `hwcap` that is not an extension entry: legacy hwcap or
        /// platform bits (bit 63 = `tls`), which glibc 2.37 and later ignore.
        pub fn is_legacy_hwcap(&self) -> bool {
            is_legacy_hwcap(self.hwcap)
        }
    };
}

impl CacheEntry {
    hwcap_methods!();
}

/// [`CacheEntry::hwcaps_index`] of an entry with these capability bits.
fn hwcaps_index(hwcap: u64) -> Option<u32> {
    if ((hwcap >> 32) & !HWCAP_ISA_LEVEL_MASK) == (HWCAP_EXTENSION >> 32) {
        Some((hwcap & u64::from(u32::MAX)) as u32)
    } else {
        None
    }
}

/// [`CacheEntry::isa_level`] of an entry with these capability bits.
fn isa_level(hwcap: u64) -> u32 {
    if hwcaps_index(hwcap).is_some() {
        ((hwcap >> 32) & HWCAP_ISA_LEVEL_MASK) as u32
    } else {
        0
    }
}

/// [`CacheEntry::is_legacy_hwcap`] of an entry with these capability bits.
fn is_legacy_hwcap(hwcap: u64) -> bool {
    hwcap != 0 && hwcaps_index(hwcap).is_none()
}

/// One entry of a [`CacheIndex`]: a [`CacheEntry`] whose strings are
/// borrowed from the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Type and ABI bits; see [`CacheEntry::flags`].
    pub flags: i32,
    /// The name looked up; see [`CacheEntry::key`].
    pub key: &'a [u8],
    /// The absolute path the loader opens; see [`CacheEntry::value`].
    pub value: &'a [u8],
    /// Capability bits; see [`CacheEntry::hwcap`].
    pub hwcap: u64,
}

impl Entry<'_> {
    hwcap_methods!();

    /// An owned copy.
    pub fn to_owned_entry(&self) -> CacheEntry {
        CacheEntry {
            flags: self.flags,
            key: self.key.to_vec(),
            value: self.value.to_vec(),
            hwcap: self.hwcap,
        }
    }
}

/// An entry as decoded: its strings are ranges of the file's bytes (start,
/// length), found and checked once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    flags: i32,
    key: (u32, u32),
    value: (u32, u32),
    hwcap: u64,
}

impl Packed {
    /// The entry, borrowing its strings from `bytes` (the file it was
    /// decoded from; empty strings if handed other bytes).
    fn entry<'a>(&self, bytes: &'a [u8]) -> Entry<'a> {
        let part = |(at, len): (u32, u32)| {
            let at = at as usize;
            bytes.get(at..at + len as usize).unwrap_or(&[])
        };
        Entry {
            flags: self.flags,
            key: part(self.key),
            value: part(self.value),
            hwcap: self.hwcap,
        }
    }
}

/// A cache decoded for lookups: it keeps the file's bytes and hands out
/// entries that borrow their strings from them ([`Entry`]). [`parse`]
/// copies every key and path out (two allocations per entry: ≈ 1,100 for
/// this machine's cache, and with the rest of the decoding ≈ 180,000
/// instructions, 15% of a one-program run); this decodes and checks the
/// same, and copies nothing.
#[derive(Debug)]
pub struct CacheIndex {
    bytes: std::sync::Arc<Vec<u8>>,
    entries: Vec<Packed>,
    /// See [`LdCache::hwcaps_names`].
    pub hwcaps_names: Vec<Vec<u8>>,
    /// See [`LdCache::generator`].
    pub generator: Option<Vec<u8>>,
    /// See [`LdCache::format`].
    pub format: CacheFormat,
    /// Entry positions by key, built on the first lookup.
    index: std::sync::OnceLock<Positions>,
}

impl CacheIndex {
    /// Decodes `bytes` as [`parse`] does, with the same errors.
    pub fn parse(
        bytes: std::sync::Arc<Vec<u8>>,
        target_big_endian: bool,
    ) -> Result<CacheIndex, CacheError> {
        let d = decode(&bytes, target_big_endian)?;
        Ok(CacheIndex {
            entries: d.entries,
            hwcaps_names: d.hwcaps_names,
            generator: d.generator,
            format: d.format,
            bytes,
            index: std::sync::OnceLock::new(),
        })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in file order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = Entry<'_>> + '_ {
        self.entries.iter().map(|p| p.entry(&self.bytes))
    }

    /// Entries whose key equals `name`, in file order.
    pub fn lookup<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = Entry<'a>> + 'a {
        let index = crate::shard::get_or_compute(&self.index, || {
            Positions::new(self.entries.iter().map(|p| p.entry(&self.bytes).key))
        });
        index
            .candidates(name)
            .filter_map(|i| self.entries.get(i as usize))
            .map(|p| p.entry(&self.bytes))
            .filter(move |e| e.key == name)
    }
}

impl LdCache {
    /// Entries whose key equals `name`, in file order.
    pub fn lookup<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a CacheEntry> + 'a {
        let (len, index) = crate::shard::get_or_compute(&self.index.0, || {
            let keys = self.entries.iter().map(|e| e.key.as_slice());
            (self.entries.len(), Positions::new(keys))
        });
        let indexed = (*len == self.entries.len()).then(|| {
            index
                .candidates(name)
                .filter_map(|i| self.entries.get(i as usize))
                .filter(move |e| e.key == name)
        });
        let scanned = indexed
            .is_none()
            .then(|| self.entries.iter().filter(move |e| e.key == name));
        indexed
            .into_iter()
            .flatten()
            .chain(scanned.into_iter().flatten())
    }
}

/// Why a cache could not be decoded. Each variant is a reason the loader
/// would not use the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The file ends before its header does.
    #[error("ld.so.cache is truncated (shorter than its header); regenerate it with ldconfig")]
    TooShort,
    /// The file starts with neither known magic string.
    #[error(
        "not an ld.so.cache file (starts with neither \"glibc-ld.so.cache1.1\" nor \"ld.so-1.7.0\")"
    )]
    BadMagic,
    /// The cache was written for the other byte order; the loader ignores it.
    #[error(
        "ld.so.cache was written for the other byte order, so the target's loader ignores it; \
         regenerate it with the target's ldconfig"
    )]
    WrongEndian,
    /// A header field or offset is inconsistent with the file.
    #[error("ld.so.cache is corrupt ({0}); regenerate it with ldconfig")]
    Corrupt(&'static str),
}

/// Fixed-width reads at validated offsets in one byte order.
#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    big: bool,
}

impl<'a> Reader<'a> {
    fn array<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        let end = at.checked_add(N)?;
        self.bytes.get(at..end)?.try_into().ok()
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let a = self.array::<4>(at)?;
        Some(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    fn i32_at(&self, at: usize) -> Option<i32> {
        let a = self.array::<4>(at)?;
        Some(if self.big {
            i32::from_be_bytes(a)
        } else {
            i32::from_le_bytes(a)
        })
    }

    fn u64_at(&self, at: usize) -> Option<u64> {
        let a = self.array::<8>(at)?;
        Some(if self.big {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        })
    }

    /// The NUL-terminated string at `base + off` (without its NUL).
    fn cstr(&self, base: usize, off: u32) -> Option<&'a [u8]> {
        let start = base.checked_add(usize::try_from(off).ok()?)?;
        let tail = self.bytes.get(start..)?;
        let len = memchr::memchr(0, tail)?;
        tail.get(..len)
    }

    /// Where the NUL-terminated string at `base + off` lies (start and
    /// length, without its NUL), or the given corruption message.
    fn required_range(
        &self,
        base: usize,
        off: u32,
        what: &'static str,
    ) -> Result<(u32, u32), CacheError> {
        let bad = CacheError::Corrupt(what);
        let start = base
            .checked_add(usize::try_from(off).map_err(|_| bad)?)
            .ok_or(bad)?;
        let tail = self.bytes.get(start..).ok_or(bad)?;
        let len = memchr::memchr(0, tail).ok_or(bad)?;
        Ok((
            u32::try_from(start).map_err(|_| bad)?,
            u32::try_from(len).map_err(|_| bad)?,
        ))
    }

    /// A string the format requires, or the given corruption message.
    fn required_cstr(
        &self,
        base: usize,
        off: u32,
        what: &'static str,
    ) -> Result<Vec<u8>, CacheError> {
        self.cstr(base, off)
            .map(<[u8]>::to_vec)
            .ok_or(CacheError::Corrupt(what))
    }
}

/// Decodes a loader cache. `target_big_endian` is the byte order of the
/// machine whose loader will read the cache: it decodes the old format and
/// new-format files without an endianness flag, and a new-format file flagged
/// for the other byte order yields [`CacheError::WrongEndian`] (the loader
/// ignores such a cache).
///
/// For the combined layout the embedded new table is returned (as the loader
/// prefers it). Extension-directory offsets are file offsets; string offsets
/// of the new table, including the glibc-hwcaps name array, are relative to
/// the new header.
pub fn parse(bytes: &[u8], target_big_endian: bool) -> Result<LdCache, CacheError> {
    let d = decode(bytes, target_big_endian)?;
    Ok(LdCache {
        index: KeyIndex::default(),
        entries: d
            .entries
            .iter()
            .map(|p| p.entry(bytes).to_owned_entry())
            .collect(),
        hwcaps_names: d.hwcaps_names,
        generator: d.generator,
        format: d.format,
    })
}

/// A decoded cache whose entries' strings are still ranges of its bytes.
struct Decoded {
    entries: Vec<Packed>,
    hwcaps_names: Vec<Vec<u8>>,
    generator: Option<Vec<u8>>,
    format: CacheFormat,
}

/// [`parse`] and [`CacheIndex::parse`]: the format by its magic.
fn decode(bytes: &[u8], target_big_endian: bool) -> Result<Decoded, CacheError> {
    if bytes.starts_with(NEW_MAGIC) {
        return parse_new(bytes, 0, target_big_endian, CacheFormat::New);
    }
    if bytes.starts_with(OLD_MAGIC) {
        return parse_old(bytes, target_big_endian);
    }
    let is_prefix_of = |magic: &[u8]| magic.starts_with(bytes);
    if is_prefix_of(NEW_MAGIC) || is_prefix_of(OLD_MAGIC) {
        return Err(CacheError::TooShort);
    }
    Err(CacheError::BadMagic)
}

/// Decodes an old-format file, or the new table embedded in it.
fn parse_old(bytes: &[u8], target_big_endian: bool) -> Result<Decoded, CacheError> {
    // The loader requires more than the bare header.
    if bytes.len() <= OLD_HEADER_LEN {
        return Err(CacheError::TooShort);
    }
    let r = Reader {
        bytes,
        big: target_big_endian,
    };
    let nlibs = r.u32_at(12).ok_or(CacheError::TooShort)?;
    let entries_end = usize::try_from(nlibs)
        .ok()
        .and_then(|n| n.checked_mul(OLD_ENTRY_LEN))
        .and_then(|n| n.checked_add(OLD_HEADER_LEN))
        .filter(|&end| end <= bytes.len())
        .ok_or(CacheError::Corrupt(
            "the old entry table extends beyond the end of the file",
        ))?;

    // A new table may follow at the next 8-byte boundary.
    if let Some(new_at) = entries_end.checked_add(7).map(|n| n & !7) {
        let has_new = new_at
            .checked_add(NEW_HEADER_LEN)
            .is_some_and(|end| end <= bytes.len())
            && bytes
                .get(new_at..)
                .is_some_and(|t| t.starts_with(NEW_MAGIC));
        if has_new {
            return parse_new(bytes, new_at, target_big_endian, CacheFormat::Combined);
        }
    }

    let mut entries = Vec::with_capacity(nlibs as usize);
    for i in 0..nlibs as usize {
        let at = OLD_HEADER_LEN + i * OLD_ENTRY_LEN; // < entries_end, checked above
        let bad = CacheError::Corrupt("an old entry lies outside the file");
        let flags = r.i32_at(at).ok_or(bad)?;
        let key = r.u32_at(at + 4).ok_or(bad)?;
        let value = r.u32_at(at + 8).ok_or(bad)?;
        entries.push(Packed {
            flags,
            key: r.required_range(
                entries_end,
                key,
                "a library name offset points outside the file or at an unterminated string",
            )?,
            value: r.required_range(
                entries_end,
                value,
                "a library path offset points outside the file or at an unterminated string",
            )?,
            hwcap: 0,
        });
    }
    Ok(Decoded {
        entries,
        hwcaps_names: Vec::new(),
        generator: None,
        format: CacheFormat::Old,
    })
}

/// Decodes the new table whose header starts at `base`.
fn parse_new(
    bytes: &[u8],
    base: usize,
    target_big_endian: bool,
    format: CacheFormat,
) -> Result<Decoded, CacheError> {
    let header_end = base
        .checked_add(NEW_HEADER_LEN)
        .ok_or(CacheError::TooShort)?;
    // For a new-only file the loader wants more than the header; the
    // embedded header of a combined file only has to fit.
    let too_short = match format {
        CacheFormat::New => bytes.len() <= header_end,
        _ => bytes.len() < header_end,
    };
    if too_short {
        return Err(CacheError::TooShort);
    }
    let flags = *bytes.get(base + NEW_FLAGS_AT).ok_or(CacheError::TooShort)?;
    let big = match flags & ENDIAN_MASK {
        // The whole byte zero: an old writer that recorded no byte order.
        0 if flags == 0 => target_big_endian,
        0 => {
            return Err(CacheError::Corrupt(
                "the header flags carry unknown bits but no byte order",
            ))
        }
        ENDIAN_LITTLE => false,
        ENDIAN_BIG => true,
        _ => {
            return Err(CacheError::Corrupt(
                "the header's byte-order flag is invalid (1)",
            ))
        }
    };
    if big != target_big_endian {
        return Err(CacheError::WrongEndian);
    }
    let r = Reader { bytes, big };
    let nlibs = r.u32_at(base + NEW_NLIBS_AT).ok_or(CacheError::TooShort)?;
    usize::try_from(nlibs)
        .ok()
        .and_then(|n| n.checked_mul(NEW_ENTRY_LEN))
        .and_then(|n| n.checked_add(header_end))
        .filter(|&end| end <= bytes.len())
        .ok_or(CacheError::Corrupt(
            "the entry table extends beyond the end of the file",
        ))?;

    let mut entries = Vec::with_capacity(nlibs as usize);
    for i in 0..nlibs as usize {
        let at = header_end + i * NEW_ENTRY_LEN; // < entries_end, checked above
        let bad = CacheError::Corrupt("an entry lies outside the file");
        let flags = r.i32_at(at).ok_or(bad)?;
        let key = r.u32_at(at + 4).ok_or(bad)?;
        let value = r.u32_at(at + 8).ok_or(bad)?;
        let hwcap = r.u64_at(at + 16).ok_or(bad)?;
        entries.push(Packed {
            flags,
            key: r.required_range(
                base,
                key,
                "a library name offset points outside the file or at an unterminated string",
            )?,
            value: r.required_range(
                base,
                value,
                "a library path offset points outside the file or at an unterminated string",
            )?,
            hwcap,
        });
    }

    let extension_offset = r
        .u32_at(base + NEW_EXTENSION_AT)
        .ok_or(CacheError::TooShort)?;
    let (hwcaps_names, generator) = parse_extensions(r, base, extension_offset)?;
    Ok(Decoded {
        entries,
        hwcaps_names,
        generator,
        format,
    })
}

/// The decoded contents of an extension directory.
type Extensions = (Vec<Vec<u8>>, Option<Vec<u8>>);

/// Decodes the extension directory at file offset `offset` (0 = none).
fn parse_extensions(r: Reader<'_>, base: usize, offset: u32) -> Result<Extensions, CacheError> {
    let mut hwcaps_names = Vec::new();
    let mut generator = None;
    if offset == 0 {
        return Ok((hwcaps_names, generator));
    }
    if offset & 3 != 0 {
        return Err(CacheError::Corrupt("the extension directory is misaligned"));
    }
    let len = r.bytes.len();
    let dir = offset as usize;
    let beyond = CacheError::Corrupt("the extension directory extends beyond the end of the file");
    let magic = r.u32_at(dir).ok_or(beyond)?;
    if magic != EXTENSION_MAGIC {
        return Err(CacheError::Corrupt(
            "the extension directory has a bad magic number",
        ));
    }
    let count = r.u32_at(dir + 4).ok_or(beyond)?;
    let sections_at = dir + EXTENSION_HEADER_LEN; // dir + 4 fitted, so no overflow
    usize::try_from(count)
        .ok()
        .and_then(|n| n.checked_mul(EXTENSION_SECTION_LEN))
        .and_then(|n| n.checked_add(sections_at))
        .filter(|&end| end <= len)
        .ok_or(beyond)?;
    for i in 0..count as usize {
        let at = sections_at + i * EXTENSION_SECTION_LEN; // within the checked range
        let tag = r.u32_at(at).ok_or(beyond)?;
        let sec_off = r.u32_at(at + 8).ok_or(beyond)? as usize;
        let sec_size = r.u32_at(at + 12).ok_or(beyond)? as usize;
        let data = sec_off
            .checked_add(sec_size)
            .and_then(|end| r.bytes.get(sec_off..end))
            .ok_or(CacheError::Corrupt(
                "an extension section extends beyond the end of the file",
            ))?;
        match tag {
            TAG_GENERATOR => generator = Some(data.to_vec()),
            TAG_GLIBC_HWCAPS => {
                if sec_off & 3 != 0 || sec_size & 3 != 0 {
                    return Err(CacheError::Corrupt(
                        "the glibc-hwcaps section is misaligned or not a whole number of offsets",
                    ));
                }
                let mut names = Vec::with_capacity(sec_size / 4);
                for chunk in data.chunks_exact(4) {
                    let a: [u8; 4] = chunk
                        .try_into()
                        .map_err(|_| CacheError::Corrupt("bad glibc-hwcaps offset"))?;
                    let off = if r.big {
                        u32::from_be_bytes(a)
                    } else {
                        u32::from_le_bytes(a)
                    };
                    names.push(r.required_cstr(
                        base,
                        off,
                        "a glibc-hwcaps name offset points outside the file or at an \
                         unterminated string",
                    )?);
                }
                hwcaps_names = names;
            }
            _ => {} // Unknown sections are skipped, as the loader does.
        }
    }
    Ok((hwcaps_names, generator))
}

/// glibc's `_dl_cache_libcmp`: runs of ASCII digits compare as integers, a
/// digit sorts after a non-digit, anything else compares byte by byte; a
/// shorter string that is a prefix sorts first. A NUL byte ends a string.
///
/// Bytes compare as unsigned. glibc subtracts plain `char`s, which are
/// signed on x86, so for names containing bytes >= 0x80 an x86 `ldconfig`
/// may order differently; names are ASCII in practice. Digit runs of any
/// length compare exactly (glibc's `int` would overflow past nine digits).
pub fn libcmp(a: &[u8], b: &[u8]) -> Ordering {
    let a = until_nul(a);
    let b = until_nul(b);
    let (mut i, mut j) = (0, 0);
    loop {
        let (x, y) = match (a.get(i), b.get(j)) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(&x), y) => (x, y.copied()),
        };
        match y {
            Some(y) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let ei = digits_end(a, i);
                let ej = digits_end(b, j);
                let ord = cmp_decimal(a.get(i..ei).unwrap_or(&[]), b.get(j..ej).unwrap_or(&[]));
                if ord != Ordering::Equal {
                    return ord;
                }
                i = ei;
                j = ej;
            }
            _ if x.is_ascii_digit() => return Ordering::Greater,
            Some(y) if y.is_ascii_digit() => return Ordering::Less,
            None => return Ordering::Greater,
            Some(y) if x != y => return x.cmp(&y),
            Some(_) => {
                i += 1;
                j += 1;
            }
        }
    }
}

/// The part of `s` before its first NUL byte.
fn until_nul(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(n) => s.get(..n).unwrap_or(s),
        None => s,
    }
}

/// The end of the run of ASCII digits starting at `from`.
fn digits_end(s: &[u8], from: usize) -> usize {
    let tail = s.get(from..).unwrap_or(&[]);
    from + tail.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Compares two runs of ASCII digits as non-negative integers.
fn cmp_decimal(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
    let a = a.get(strip(a)..).unwrap_or(&[]);
    let b = b.get(strip(b)..).unwrap_or(&[]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Whether a loader for the target described by `machine` (`e_machine`),
/// `is_64` (`ELFCLASS64`) and `e_flags` accepts a cache entry with `flags`
/// (glibc's `_dl_cache_check_flags`). Machines without an ABI-specific value
/// use the generic rule (1 or 3), as glibc does.
pub fn flags_accepted(flags: i32, machine: u16, is_64: bool, e_flags: u32) -> bool {
    let libc6 = |abi: i32| abi | FLAG_ELF_LIBC6;
    let generic = flags == 1 || flags == FLAG_ELF_LIBC6;
    match machine {
        EM_X86_64 if is_64 => flags == libc6(FLAG_X8664_LIB64),
        EM_X86_64 => flags == libc6(FLAG_X8664_LIBX32),
        EM_AARCH64 => flags == libc6(FLAG_AARCH64_LIB64),
        EM_ARM => {
            let default = if e_flags & EF_ARM_ABI_FLOAT_HARD != 0 {
                libc6(FLAG_ARM_LIBHF)
            } else {
                libc6(FLAG_ARM_LIBSF)
            };
            flags == default || flags == FLAG_ELF_LIBC6
        }
        EM_S390 if is_64 => flags == libc6(FLAG_S390_LIB64),
        EM_PPC64 if is_64 => flags == libc6(FLAG_POWERPC_LIB64),
        EM_SPARCV9 if is_64 => flags == libc6(FLAG_SPARC_LIB64),
        EM_MIPS => match mips_abi(is_64, e_flags) {
            Some(abi) => flags == libc6(abi),
            None => generic,
        },
        EM_RISCV => match e_flags & EF_RISCV_FLOAT_ABI {
            EF_RISCV_FLOAT_ABI_SOFT => flags == libc6(FLAG_RISCV_FLOAT_ABI_SOFT),
            EF_RISCV_FLOAT_ABI_DOUBLE => flags == libc6(FLAG_RISCV_FLOAT_ABI_DOUBLE),
            _ => false, // no glibc port for the single/quad-float ABIs
        },
        EM_LOONGARCH => match e_flags & EF_LARCH_ABI_MODIFIER_MASK {
            EF_LARCH_ABI_SOFT_FLOAT => flags == libc6(FLAG_LARCH_FLOAT_ABI_SOFT),
            EF_LARCH_ABI_DOUBLE_FLOAT => flags == libc6(FLAG_LARCH_FLOAT_ABI_DOUBLE),
            _ => false,
        },
        _ => generic,
    }
}

/// The ABI bits of a MIPS object, or `None` for o32 with legacy NaN (which
/// uses the generic flags).
fn mips_abi(is_64: bool, e_flags: u32) -> Option<i32> {
    let nan2008 = e_flags & EF_MIPS_NAN2008 != 0;
    if is_64 {
        Some(if nan2008 {
            FLAG_MIPS64_LIBN64_NAN2008
        } else {
            FLAG_MIPS64_LIBN64
        })
    } else if e_flags & EF_MIPS_ABI2 != 0 {
        Some(if nan2008 {
            FLAG_MIPS64_LIBN32_NAN2008
        } else {
            FLAG_MIPS64_LIBN32
        })
    } else if nan2008 {
        Some(FLAG_MIPS_LIB32_NAN2008)
    } else {
        None
    }
}

/// The `flags` value `ldconfig` writes for a library with this `e_machine`,
/// class and `e_flags`. Libraries `ldconfig` would refuse (RISC-V or
/// LoongArch float ABIs without a glibc port) and unknown machines get the
/// generic [`FLAG_ELF_LIBC6`].
pub fn flags_for(machine: u16, is_64: bool, e_flags: u32) -> i32 {
    let abi = match machine {
        EM_X86_64 if is_64 => FLAG_X8664_LIB64,
        EM_X86_64 => FLAG_X8664_LIBX32,
        EM_AARCH64 if is_64 => FLAG_AARCH64_LIB64,
        EM_ARM if e_flags & EF_ARM_EABIMASK == EF_ARM_EABI_VER5 => {
            if e_flags & EF_ARM_ABI_FLOAT_HARD != 0 {
                FLAG_ARM_LIBHF
            } else if e_flags & EF_ARM_ABI_FLOAT_SOFT != 0 {
                FLAG_ARM_LIBSF
            } else {
                0
            }
        }
        EM_S390 if is_64 => FLAG_S390_LIB64,
        EM_PPC64 if is_64 => FLAG_POWERPC_LIB64,
        EM_SPARCV9 if is_64 => FLAG_SPARC_LIB64,
        EM_MIPS => mips_abi(is_64, e_flags).unwrap_or(0),
        EM_RISCV => match e_flags & EF_RISCV_FLOAT_ABI {
            EF_RISCV_FLOAT_ABI_SOFT => FLAG_RISCV_FLOAT_ABI_SOFT,
            EF_RISCV_FLOAT_ABI_DOUBLE => FLAG_RISCV_FLOAT_ABI_DOUBLE,
            _ => 0,
        },
        EM_LOONGARCH => match e_flags & EF_LARCH_ABI_MODIFIER_MASK {
            EF_LARCH_ABI_SOFT_FLOAT => FLAG_LARCH_FLOAT_ABI_SOFT,
            EF_LARCH_ABI_DOUBLE_FLOAT => FLAG_LARCH_FLOAT_ABI_DOUBLE,
            _ => 0,
        },
        // i386, 32-bit SPARC, ppc32, 31-bit s390, o32 MIPS
        // with legacy NaN and every other machine: the generic value.
        _ => 0,
    };
    abi | FLAG_ELF_LIBC6
}

/// The flags as `ldconfig -p` prints them inside the parentheses, e.g.
/// `libc6,x86-64` for `0x0303` or `libc6,hard-float` for `0x0903`.
pub fn flags_description(flags: i32) -> String {
    let kind = match flags & FLAG_TYPE_MASK {
        0 => "libc4",
        1 => "ELF",
        2 => "libc5",
        FLAG_ELF_LIBC6 => "libc6",
        _ => "unknown",
    };
    let abi = match flags & FLAG_REQUIRED_MASK {
        0 => String::new(),
        FLAG_SPARC_LIB64 | FLAG_S390_LIB64 | FLAG_POWERPC_LIB64 | FLAG_MIPS64_LIBN64 => {
            ",64bit".into()
        }
        FLAG_IA64_LIB64 => ",IA-64".into(),
        FLAG_X8664_LIB64 => ",x86-64".into(),
        FLAG_MIPS64_LIBN32 => ",N32".into(),
        FLAG_X8664_LIBX32 => ",x32".into(),
        FLAG_ARM_LIBHF => ",hard-float".into(),
        FLAG_AARCH64_LIB64 => ",AArch64".into(),
        FLAG_ARM_LIBSF | FLAG_RISCV_FLOAT_ABI_SOFT | FLAG_LARCH_FLOAT_ABI_SOFT => {
            ",soft-float".into()
        }
        FLAG_MIPS_LIB32_NAN2008 => ",nan2008".into(),
        FLAG_MIPS64_LIBN32_NAN2008 => ",N32,nan2008".into(),
        FLAG_MIPS64_LIBN64_NAN2008 => ",64bit,nan2008".into(),
        FLAG_RISCV_FLOAT_ABI_DOUBLE | FLAG_LARCH_FLOAT_ABI_DOUBLE => ",double-float".into(),
        other => format!(",{other}"),
    };
    format!("{kind}{abi}")
}

/// Encodes a new-format-only cache the way glibc's `ldconfig` lays it out:
/// header, entries sorted as `ldconfig` sorts them (descending by
/// [`libcmp`] of the key, then descending by flags, then glibc-hwcaps
/// entries first, then descending by hwcap; equal entries keep their input
/// order, so list the directory that should win first), a tail-merged string
/// table, and an extension directory (4-aligned, after the strings) with the
/// generator string when one is given.
///
/// This writes no glibc-hwcaps name section, so entries with an extension
/// `hwcap` would be unusable; pass those through [`write_new_with_hwcaps`].
/// See there for the remaining details.
pub fn write_new(entries: &[CacheEntry], big_endian: bool, generator: Option<&[u8]>) -> Vec<u8> {
    write_new_with_hwcaps(entries, &[], big_endian, generator)
}

/// [`write_new`] with a glibc-hwcaps name table: `hwcaps_names[i]` is the
/// subdirectory (e.g. `x86-64-v3`) of entries whose
/// [`CacheEntry::hwcaps_index`] is `i`. A glibc-hwcaps section is written
/// (before the generator section, as `ldconfig` does) when `hwcaps_names` is
/// non-empty; names are kept in the order given (glibc's `ldconfig` sorts
/// them by name, and so should callers).
///
/// Strings are cut at their first NUL byte. An empty cache gets a one-byte
/// string table, because the loader refuses a file that is only a header.
/// Inputs whose encoding would exceed 4 GiB cannot be represented and yield
/// a file the loader rejects; nothing here panics.
pub fn write_new_with_hwcaps(
    entries: &[CacheEntry],
    hwcaps_names: &[Vec<u8>],
    big_endian: bool,
    generator: Option<&[u8]>,
) -> Vec<u8> {
    let name_of = |e: &CacheEntry| -> Option<&[u8]> {
        e.hwcaps_index()
            .and_then(|i| hwcaps_names.get(i as usize))
            .map(|n| until_nul(n))
    };
    let mut sorted: Vec<&CacheEntry> = entries.iter().collect();
    // `sort_by` is stable: ties keep input order, like ldconfig's insertion.
    sorted.sort_by(|a, b| {
        libcmp(&b.key, &a.key)
            .then_with(|| b.flags.cmp(&a.flags))
            .then_with(|| match (a.hwcaps_index(), b.hwcaps_index()) {
                (Some(_), Some(_)) => name_of(a).cmp(&name_of(b)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| b.hwcap.cmp(&a.hwcap))
    });

    let mut strings: Vec<&[u8]> = Vec::with_capacity(entries.len() * 2 + hwcaps_names.len());
    for e in &sorted {
        strings.push(until_nul(&e.key));
        strings.push(until_nul(&e.value));
    }
    strings.extend(hwcaps_names.iter().map(|n| until_nul(n)));
    let table = StringTable::build(strings);
    let mut string_bytes = table.bytes;
    if string_bytes.is_empty() {
        string_bytes.push(0);
    }

    let w = Writer { big: big_endian };
    let entries_end = sorted
        .len()
        .saturating_mul(NEW_ENTRY_LEN)
        .saturating_add(NEW_HEADER_LEN);
    let strings_at = entries_end;
    let str_off = |s: &[u8]| -> u32 {
        let rel = table.offsets.get(s).copied().unwrap_or(0);
        sat_u32(strings_at.saturating_add(rel))
    };
    let strings_end = strings_at.saturating_add(string_bytes.len());
    let ext_at = strings_end.saturating_add(3) & !3;

    // Extension directory: hwcaps names, then the generator.
    let mut sections: Vec<(u32, Vec<u8>)> = Vec::new();
    if !hwcaps_names.is_empty() {
        let mut array = Vec::with_capacity(hwcaps_names.len() * 4);
        for n in hwcaps_names {
            w.put_u32(&mut array, str_off(until_nul(n)));
        }
        sections.push((TAG_GLIBC_HWCAPS, array));
    }
    if let Some(g) = generator {
        sections.push((TAG_GENERATOR, g.to_vec()));
    }
    let mut ext = Vec::new();
    if !sections.is_empty() {
        w.put_u32(&mut ext, EXTENSION_MAGIC);
        w.put_u32(&mut ext, sat_u32(sections.len()));
        let mut data_at = ext_at
            .saturating_add(EXTENSION_HEADER_LEN)
            .saturating_add(sections.len().saturating_mul(EXTENSION_SECTION_LEN));
        for (tag, data) in &sections {
            w.put_u32(&mut ext, *tag);
            w.put_u32(&mut ext, 0);
            w.put_u32(&mut ext, sat_u32(data_at));
            w.put_u32(&mut ext, sat_u32(data.len()));
            data_at = data_at.saturating_add(data.len());
        }
        for (_, data) in &sections {
            ext.extend_from_slice(data);
        }
    }

    let mut out = Vec::with_capacity(ext_at.saturating_add(ext.len()));
    out.extend_from_slice(NEW_MAGIC);
    w.put_u32(&mut out, sat_u32(sorted.len()));
    w.put_u32(&mut out, sat_u32(string_bytes.len()));
    out.push(if big_endian {
        ENDIAN_BIG
    } else {
        ENDIAN_LITTLE
    });
    out.extend_from_slice(&[0; 3]);
    w.put_u32(&mut out, if ext.is_empty() { 0 } else { sat_u32(ext_at) });
    out.extend_from_slice(&[0; 12]);
    for e in &sorted {
        w.put_i32(&mut out, e.flags);
        w.put_u32(&mut out, str_off(until_nul(&e.key)));
        w.put_u32(&mut out, str_off(until_nul(&e.value)));
        w.put_u32(&mut out, 0); // osversion, unused
        w.put_u64(&mut out, e.hwcap);
    }
    out.extend_from_slice(&string_bytes);
    if !ext.is_empty() {
        out.resize(ext_at, 0);
        out.extend_from_slice(&ext);
    }
    out
}

/// `usize` to `u32`, saturating (only reachable for > 4 GiB inputs).
fn sat_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Fixed-width writes in one byte order.
#[derive(Clone, Copy)]
struct Writer {
    big: bool,
}

impl Writer {
    fn put_u32(&self, out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }

    fn put_i32(&self, out: &mut Vec<u8>, v: i32) {
        out.extend_from_slice(&if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }

    fn put_u64(&self, out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
}

/// A tail-merged table of NUL-terminated strings: a string that is a suffix
/// of another one shares its bytes (`libz.so.1` inside `/lib/libz.so.1`).
struct StringTable<'a> {
    bytes: Vec<u8>,
    offsets: std::collections::HashMap<&'a [u8], usize>,
}

impl<'a> StringTable<'a> {
    fn build(mut strings: Vec<&'a [u8]>) -> Self {
        // Sorted descending by reversed bytes, every string that is a suffix
        // of others comes right after one of them.
        strings.sort_by(|a, b| b.iter().rev().cmp(a.iter().rev()));
        strings.dedup();
        let mut bytes = Vec::new();
        let mut offsets = std::collections::HashMap::with_capacity(strings.len());
        let mut prev: Option<(&[u8], usize)> = None;
        for s in strings {
            let off = match prev {
                Some((p, at)) if p.ends_with(s) => at + (p.len() - s.len()),
                _ => {
                    let at = bytes.len();
                    bytes.extend_from_slice(s);
                    bytes.push(0);
                    at
                }
            };
            offsets.insert(s, off);
            prev = Some((s, off));
        }
        StringTable { bytes, offsets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn entry(key: &str, value: &str, flags: i32, hwcap: u64) -> CacheEntry {
        CacheEntry {
            flags,
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            hwcap,
        }
    }

    const HOST_BIG: bool = cfg!(target_endian = "big");

    /// One line of `ldconfig -p` output for an entry.
    fn ldconfig_line(e: &CacheEntry, names: &[Vec<u8>]) -> String {
        let mut hw = String::new();
        if let Some(name) = e.hwcaps_index().and_then(|i| names.get(i as usize)) {
            hw = format!(", hwcap: \"{}\"", String::from_utf8_lossy(name));
        } else if e.hwcap != 0 {
            hw = format!(", hwcap: 0x{:016x}", e.hwcap);
        }
        format!(
            "\t{} ({}{}) => {}",
            String::from_utf8_lossy(&e.key),
            flags_description(e.flags),
            hw,
            String::from_utf8_lossy(&e.value)
        )
    }

    /// Runs `ldconfig -p [-C file]`; `None` if ldconfig cannot be run.
    fn ldconfig_print(cache: Option<&std::path::Path>) -> Option<(Vec<String>, String)> {
        let mut cmd = Command::new("ldconfig");
        cmd.arg("-p");
        if let Some(c) = cache {
            cmd.arg("-C").arg(c);
        }
        let out = match cmd.output() {
            Ok(o) => o,
            Err(_) => match Command::new("/sbin/ldconfig").args(cmd.get_args()).output() {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("skipping: ldconfig not runnable: {e}");
                    return None;
                }
            },
        };
        assert!(
            out.status.success(),
            "ldconfig -p failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines = text
            .lines()
            .filter(|l| l.starts_with('\t'))
            .map(str::to_owned)
            .collect();
        Some((lines, text))
    }

    fn sample_entries() -> Vec<CacheEntry> {
        vec![
            entry("libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", 0x0303, 0),
            entry("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0x0303, 0),
            entry("libc.so.6", "/lib/i386-linux-gnu/libc.so.6", 0x0003, 0),
            entry("libfoo.so.10", "/opt/lib/libfoo.so.10", 0x0303, 0),
            entry("libfoo.so.9", "/opt/lib/libfoo.so.9", 0x0303, 0),
            entry("libfoo.so.9", "/usr/local/lib/libfoo.so.9", 0x0303, 0),
            entry("libfoo.so", "/opt/lib/libfoo.so", 0x0303, 0),
            entry("libx32.so.2", "/libx32/libx32.so.2", 0x0803, 0),
            entry(
                "ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                0x0303,
                0,
            ),
        ]
    }

    fn hwcaps_fixture() -> (Vec<CacheEntry>, Vec<Vec<u8>>) {
        let names = vec![b"x86-64-v2".to_vec(), b"x86-64-v3".to_vec()];
        let entries = vec![
            entry("libm.so.6", "/usr/lib/libm.so.6", 0x0303, 0),
            entry(
                "libm.so.6",
                "/usr/lib/glibc-hwcaps/x86-64-v3/libm.so.6",
                0x0303,
                HWCAP_EXTENSION | (3 << 32) | 1,
            ),
            entry(
                "libm.so.6",
                "/usr/lib/glibc-hwcaps/x86-64-v2/libm.so.6",
                0x0303,
                HWCAP_EXTENSION | (2 << 32),
            ),
            entry("libold.so.1", "/usr/lib/tls/libold.so.1", 0x0303, 1 << 63),
        ];
        (entries, names)
    }

    /// Whether `entries` are in the order ldconfig writes them.
    fn assert_sorted(entries: &[CacheEntry], names: &[Vec<u8>]) {
        for w in entries.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            let key = libcmp(&a.key, &b.key);
            assert_ne!(key, Ordering::Less, "{a:?} before {b:?}");
            if key == Ordering::Equal {
                assert!(a.flags >= b.flags, "{a:?} before {b:?}");
                if a.flags == b.flags {
                    let an = a.hwcaps_index().map(|i| names.get(i as usize));
                    let bn = b.hwcaps_index().map(|i| names.get(i as usize));
                    match (an, bn) {
                        (None, Some(_)) => panic!("{a:?} before hwcaps entry {b:?}"),
                        (Some(x), Some(y)) => assert!(x <= y, "{a:?} before {b:?}"),
                        _ => {}
                    }
                }
            }
        }
    }

    #[test]
    fn host_cache_matches_ldconfig_p() {
        let path = std::path::Path::new("/etc/ld.so.cache");
        let Ok(bytes) = std::fs::read(path) else {
            eprintln!("skipping: no /etc/ld.so.cache");
            return;
        };
        let cache = parse(&bytes, HOST_BIG).expect("host cache parses");
        let Some((lines, text)) = ldconfig_print(None) else {
            return;
        };
        let ours: Vec<String> = cache
            .entries
            .iter()
            .map(|e| ldconfig_line(e, &cache.hwcaps_names))
            .collect();
        assert_eq!(ours, lines);
        assert!(text.starts_with(&format!("{} libs found in cache", cache.entries.len())));
        if let Some(g) = &cache.generator {
            let g = String::from_utf8_lossy(g);
            assert!(text.contains(&format!("Cache generated by: {g}\n")), "{g}");
        }
        assert_sorted(&cache.entries, &cache.hwcaps_names);
        // Every entry on an x86-64 host is for x86-64 (or generic 32-bit).
        if cfg!(all(target_arch = "x86_64", target_pointer_width = "64")) {
            assert!(cache
                .entries
                .iter()
                .any(|e| flags_accepted(e.flags, EM_X86_64, true, 0)));
        }
        // Re-encoding the host cache gives the same entries in the same order.
        let again = write_new_with_hwcaps(
            &cache.entries,
            &cache.hwcaps_names,
            HOST_BIG,
            cache.generator.as_deref(),
        );
        let back = parse(&again, HOST_BIG).unwrap();
        assert_eq!(back.entries, cache.entries);
        assert!(again.len() <= bytes.len() + 64, "tail merging works");
    }

    #[test]
    fn round_trip_and_real_ldconfig_reads_it() {
        let entries = sample_entries();
        let gen = b"closure test generator".as_slice();
        let bytes = write_new(&entries, HOST_BIG, Some(gen));
        let cache = parse(&bytes, HOST_BIG).unwrap();
        assert_eq!(cache.format, CacheFormat::New);
        assert_eq!(cache.generator.as_deref(), Some(gen));
        assert!(cache.hwcaps_names.is_empty());
        let mut got = cache.entries.clone();
        let mut want = entries.clone();
        got.sort_by(|a, b| (&a.key, &a.value).cmp(&(&b.key, &b.value)));
        want.sort_by(|a, b| (&a.key, &a.value).cmp(&(&b.key, &b.value)));
        assert_eq!(got, want);
        assert_sorted(&cache.entries, &[]);
        let keys: Vec<&[u8]> = cache.entries.iter().map(|e| e.key.as_slice()).collect();
        assert_eq!(
            keys,
            [
                b"libz.so.1".as_slice(),
                b"libx32.so.2",
                b"libfoo.so.10",
                b"libfoo.so.9",
                b"libfoo.so.9",
                b"libfoo.so",
                b"libc.so.6",
                b"libc.so.6",
                b"ld-linux-x86-64.so.2",
            ]
        );
        // Equal keys and flags keep input order; higher flags first.
        assert_eq!(cache.entries[3].value, b"/opt/lib/libfoo.so.9");
        assert_eq!(cache.entries[4].value, b"/usr/local/lib/libfoo.so.9");
        assert_eq!(cache.entries[6].flags, 0x0303);
        assert_eq!(cache.entries[7].flags, 0x0003);
        // Lookup.
        let hits: Vec<_> = cache.lookup(b"libc.so.6").map(|e| e.flags).collect();
        assert_eq!(hits, [0x0303, 0x0003]);
        assert_eq!(cache.lookup(b"libnope.so").count(), 0);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ld.so.cache");
        std::fs::write(&file, &bytes).unwrap();
        let Some((lines, text)) = ldconfig_print(Some(&file)) else {
            return;
        };
        let ours: Vec<String> = cache
            .entries
            .iter()
            .map(|e| ldconfig_line(e, &[]))
            .collect();
        assert_eq!(lines, ours);
        assert!(text.contains("Cache generated by: closure test generator\n"));
    }

    #[test]
    fn hwcaps_round_trip_and_classification() {
        let (entries, names) = hwcaps_fixture();
        let bytes = write_new_with_hwcaps(&entries, &names, HOST_BIG, Some(b"gen"));
        let cache = parse(&bytes, HOST_BIG).unwrap();
        assert_eq!(cache.hwcaps_names, names);
        assert_eq!(cache.generator.as_deref(), Some(b"gen".as_slice()));
        let m: Vec<&CacheEntry> = cache.lookup(b"libm.so.6").collect();
        assert_eq!(m.len(), 3);
        // hwcaps entries first, by subdirectory name, then the base entry.
        assert_eq!(m[0].hwcaps_index(), Some(0));
        assert_eq!(m[0].isa_level(), 2);
        assert_eq!(m[1].hwcaps_index(), Some(1));
        assert_eq!(m[1].isa_level(), 3);
        assert_eq!(m[2].hwcaps_index(), None);
        assert!(!m[2].is_legacy_hwcap());
        let old = cache.lookup(b"libold.so.1").next().unwrap();
        assert!(old.is_legacy_hwcap());
        assert_eq!(old.hwcaps_index(), None);
        assert_eq!(old.isa_level(), 0);
        // Bit 62 plus a bit outside the ISA field is not an extension entry.
        let odd = entry("x", "/x", 3, HWCAP_EXTENSION | (1 << 43));
        assert_eq!(odd.hwcaps_index(), None);
        assert!(odd.is_legacy_hwcap());
        assert_sorted(&cache.entries, &cache.hwcaps_names);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ld.so.cache");
        std::fs::write(&file, &bytes).unwrap();
        let Some((lines, _)) = ldconfig_print(Some(&file)) else {
            return;
        };
        let ours: Vec<String> = cache
            .entries
            .iter()
            .map(|e| ldconfig_line(e, &names))
            .collect();
        assert_eq!(lines, ours);
        assert!(
            lines[1].starts_with("\tlibm.so.6 (libc6,x86-64, hwcap: \"x86-64-v2\")"),
            "{lines:?}"
        );
        assert!(lines[0].contains("hwcap: 0x8000000000000000"), "{lines:?}");
    }

    /// The real ldconfig builds a cache with glibc-hwcaps entries; we read
    /// it like `ldconfig -p` and our writer reproduces its entry order from
    /// scrambled input.
    #[test]
    fn real_ldconfig_hwcaps_cache() {
        let Ok(lib) = std::fs::canonicalize("/lib/x86_64-linux-gnu/libz.so.1") else {
            eprintln!("skipping: no x86-64 libz to build a cache from");
            return;
        };
        let file_name = lib.file_name().unwrap().to_owned();
        let dir = tempfile::tempdir().unwrap();
        let libdir = dir.path().join("lib");
        for sub in ["", "glibc-hwcaps/x86-64-v3", "glibc-hwcaps/x86-64-v2"] {
            let d = libdir.join(sub);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::copy(&lib, d.join(&file_name)).unwrap();
        }
        let conf = dir.path().join("ld.so.conf");
        std::fs::write(&conf, format!("{}\n", libdir.display())).unwrap();
        let cache_file = dir.path().join("ld.so.cache");
        let status = Command::new("ldconfig")
            .arg("-X")
            .arg("-C")
            .arg(&cache_file)
            .arg("-f")
            .arg(&conf)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("skipping: ldconfig could not build a cache: {status:?}");
            return;
        }
        let bytes = std::fs::read(&cache_file).unwrap();
        let cache = parse(&bytes, HOST_BIG).unwrap();
        assert_eq!(cache.format, CacheFormat::New);
        assert_eq!(
            cache.hwcaps_names,
            [b"x86-64-v2".to_vec(), b"x86-64-v3".to_vec()]
        );
        let z: Vec<&CacheEntry> = cache
            .lookup(b"libz.so.1")
            .filter(|e| e.value.starts_with(libdir.as_os_str().as_encoded_bytes()))
            .collect();
        assert_eq!(z.len(), 3, "{z:?}");
        assert_eq!(z[0].hwcaps_index(), Some(0));
        assert_eq!(z[1].hwcaps_index(), Some(1));
        assert_eq!(z[2].hwcap, 0);
        if let Some((lines, _)) = ldconfig_print(Some(&cache_file)) {
            let ours: Vec<String> = cache
                .entries
                .iter()
                .map(|e| ldconfig_line(e, &cache.hwcaps_names))
                .collect();
            assert_eq!(lines, ours);
        }
        assert_sorted(&cache.entries, &cache.hwcaps_names);

        // Scramble the entries, keeping entries that tie in the sort in
        // their relative order, and let the writer sort them back.
        let mut group = Vec::with_capacity(cache.entries.len());
        for (i, e) in cache.entries.iter().enumerate() {
            let tie = i > 0 && {
                let p = &cache.entries[i - 1];
                p.key == e.key && p.flags == e.flags && p.hwcap == e.hwcap
            };
            group.push(if tie { group[i - 1] } else { i });
        }
        let mut order: Vec<usize> = (0..cache.entries.len()).collect();
        order.sort_by_key(|&i| ((group[i] as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15), i));
        let scrambled: Vec<CacheEntry> = order.iter().map(|&i| cache.entries[i].clone()).collect();
        assert_ne!(scrambled, cache.entries);
        let again = write_new_with_hwcaps(
            &scrambled,
            &cache.hwcaps_names,
            HOST_BIG,
            cache.generator.as_deref(),
        );
        let back = parse(&again, HOST_BIG).unwrap();
        assert_eq!(back.entries, cache.entries);
        assert_eq!(back.hwcaps_names, cache.hwcaps_names);
        assert_eq!(back.generator, cache.generator);
        if again != bytes {
            eprintln!(
                "note: same entries, different byte layout ({} vs {} bytes)",
                again.len(),
                bytes.len()
            );
        }
    }

    #[test]
    fn big_endian_and_wrong_endian() {
        let entries = sample_entries();
        for big in [false, true] {
            let bytes = write_new(&entries, big, Some(b"g"));
            assert_eq!(bytes[28], if big { 3 } else { 2 });
            let cache = parse(&bytes, big).unwrap();
            assert_eq!(cache.entries.len(), entries.len());
            assert_eq!(cache.generator.as_deref(), Some(b"g".as_slice()));
            assert_eq!(parse(&bytes, !big), Err(CacheError::WrongEndian));
            // No byte-order flag: the target's order is used.
            let mut unflagged = bytes.clone();
            unflagged[28] = 0;
            assert_eq!(parse(&unflagged, big).unwrap().entries, cache.entries);
            assert!(parse(&unflagged, !big).is_err());
            // Flag value 1 is invalid.
            let mut invalid = bytes.clone();
            invalid[28] = 1;
            assert!(matches!(parse(&invalid, big), Err(CacheError::Corrupt(_))));
        }
    }

    /// Appends NUL-terminated strings, returning each one's offset.
    fn strtab(strings: &[&str]) -> (Vec<u8>, Vec<u32>) {
        let mut t = Vec::new();
        let mut offs = Vec::new();
        for s in strings {
            offs.push(t.len() as u32);
            t.extend_from_slice(s.as_bytes());
            t.push(0);
        }
        (t, offs)
    }

    fn le32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_le_bytes());
    }

    #[test]
    fn old_format_parses() {
        let (strings, offs) =
            strtab(&["libz.so.1", "/lib/libz.so.1", "libc.so.5", "/lib/libc.so.5"]);
        let mut f = b"ld.so-1.7.0\0".to_vec();
        le32(&mut f, 2);
        le32(&mut f, 0x0003);
        le32(&mut f, offs[0]);
        le32(&mut f, offs[1]);
        le32(&mut f, 0x0002);
        le32(&mut f, offs[2]);
        le32(&mut f, offs[3]);
        f.extend_from_slice(&strings);
        let c = parse(&f, false).unwrap();
        assert_eq!(c.format, CacheFormat::Old);
        assert_eq!(
            c.entries,
            vec![
                entry("libz.so.1", "/lib/libz.so.1", 3, 0),
                entry("libc.so.5", "/lib/libc.so.5", 2, 0),
            ]
        );
        assert_eq!(c.generator, None);
        // Key offsets point into shared (tail-merged) strings too.
        let mut g = f.clone();
        g[20..24].copy_from_slice(&(offs[1] + 5).to_le_bytes());
        assert_eq!(parse(&g, false).unwrap().entries[0].key, b"libz.so.1");
        // An offset past the end is corrupt.
        g[20..24].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(parse(&g, false), Err(CacheError::Corrupt(_))));
        // nlibs larger than the file is corrupt.
        let mut h = f.clone();
        h[12..16].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(parse(&h, false), Err(CacheError::Corrupt(_))));
    }

    /// A combined file: old table (2 entries, flags 3) followed by a new
    /// table (2 entries, flags 0x303) sharing one string table.
    fn combined_fixture(big_header_flag: u8) -> Vec<u8> {
        let nlibs = 2u32;
        let new_at = (16 + 12 * nlibs as usize + 7) & !7;
        assert_eq!(new_at, 40);
        let new_size = 48 + 24 * nlibs as usize;
        let (strings, offs) = strtab(&["/usr/lib/libb.so.2", "/usr/lib/liba.so.1", "gen!"]);
        // Offsets are relative to the new header start for both tables.
        let s = |i: usize| (new_size as u32) + offs[i];
        let mut f = b"ld.so-1.7.0\0".to_vec();
        le32(&mut f, nlibs);
        for (k, v) in [(s(0) + 9, s(0)), (s(1) + 9, s(1))] {
            le32(&mut f, 3);
            le32(&mut f, k);
            le32(&mut f, v);
        }
        assert_eq!(f.len(), new_at);
        f.extend_from_slice(NEW_MAGIC);
        le32(&mut f, nlibs);
        le32(&mut f, strings.len() as u32);
        f.push(big_header_flag);
        f.extend_from_slice(&[0; 3]);
        let ext_at = (new_at + new_size + strings.len() + 3) & !3;
        le32(&mut f, ext_at as u32);
        f.extend_from_slice(&[0; 12]);
        for (k, v) in [(s(0) + 9, s(0)), (s(1) + 9, s(1))] {
            le32(&mut f, 0x0303);
            le32(&mut f, k);
            le32(&mut f, v);
            le32(&mut f, 0);
            f.extend_from_slice(&0u64.to_le_bytes());
        }
        f.extend_from_slice(&strings);
        f.resize(ext_at, 0);
        le32(&mut f, EXTENSION_MAGIC);
        le32(&mut f, 2);
        // An unknown tag first (skipped), then the generator (file offset).
        for (tag, off, size) in [(77, 0, 4), (0, (new_at + new_size) as u32 + offs[2], 4)] {
            le32(&mut f, tag);
            le32(&mut f, 0);
            le32(&mut f, off);
            le32(&mut f, size);
        }
        f
    }

    #[test]
    fn combined_format_prefers_new_table() {
        let f = combined_fixture(2);
        let c = parse(&f, false).unwrap();
        assert_eq!(c.format, CacheFormat::Combined);
        assert_eq!(
            c.entries,
            vec![
                entry("libb.so.2", "/usr/lib/libb.so.2", 0x0303, 0),
                entry("liba.so.1", "/usr/lib/liba.so.1", 0x0303, 0),
            ]
        );
        assert_eq!(c.generator.as_deref(), Some(b"gen!".as_slice()));
        assert_eq!(
            parse(&combined_fixture(3), false),
            Err(CacheError::WrongEndian)
        );
        // Without the embedded magic the old table is read.
        let mut old = f.clone();
        old[40] = b'X';
        let c = parse(&old, false).unwrap();
        assert_eq!(c.format, CacheFormat::Old);
        assert_eq!(c.entries[0].flags, 3);
        assert_eq!(c.entries[0].key, b"libb.so.2");
        // The real ldconfig reads it the same way.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("combined.cache");
        std::fs::write(&file, &f).unwrap();
        if cfg!(target_endian = "little") {
            if let Some((lines, text)) = ldconfig_print(Some(&file)) {
                let c = parse(&f, false).unwrap();
                let ours: Vec<String> = c.entries.iter().map(|e| ldconfig_line(e, &[])).collect();
                assert_eq!(lines, ours);
                assert!(text.contains("Cache generated by: gen!\n"), "{text}");
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(parse(b"", false), Err(CacheError::TooShort));
        assert_eq!(parse(b"glibc-ld", false), Err(CacheError::TooShort));
        assert_eq!(parse(b"ld.so-1", false), Err(CacheError::TooShort));
        assert_eq!(
            parse(b"\x7fELF\x02\x01\x01", false),
            Err(CacheError::BadMagic)
        );
        assert_eq!(
            parse(
                b"glibc-ld.so.cache1.0 plus plenty of bytes behind it .....",
                false
            ),
            Err(CacheError::BadMagic)
        );
        let bytes = write_new(&sample_entries(), false, Some(b"g"));
        assert_eq!(parse(&bytes[..48], false), Err(CacheError::TooShort));
        // A header-only file is too short for the loader.
        let empty = write_new(&[], false, None);
        let c = parse(&empty, false).unwrap();
        assert!(c.entries.is_empty());
        assert_eq!(parse(&empty[..48], false), Err(CacheError::TooShort));
        // Misaligned or foreign extension directory.
        let mut m = bytes.clone();
        let ext = u32::from_le_bytes(m[32..36].try_into().unwrap());
        m[32..36].copy_from_slice(&(ext + 1).to_le_bytes());
        assert!(matches!(parse(&m, false), Err(CacheError::Corrupt(_))));
        let mut m = bytes.clone();
        m[ext as usize] ^= 1;
        assert!(matches!(parse(&m, false), Err(CacheError::Corrupt(_))));
        // Every error has an actionable message.
        for e in [
            CacheError::TooShort,
            CacheError::BadMagic,
            CacheError::WrongEndian,
            CacheError::Corrupt("x"),
        ] {
            assert!(e.to_string().len() > 20);
        }
    }

    #[test]
    fn strings_end_at_their_first_nul_and_need_one() {
        let entries = sample_entries();
        let bytes = write_new(&entries, false, None);
        let strings = |c: &LdCache| -> Vec<Vec<u8>> {
            let mut v: Vec<Vec<u8>> = c
                .entries
                .iter()
                .flat_map(|e| [e.key.clone(), e.value.clone()])
                .collect();
            v.sort();
            v
        };
        let mut want: Vec<Vec<u8>> = entries
            .iter()
            .flat_map(|e| [e.key.clone(), e.value.clone()])
            .collect();
        want.sort();
        assert_eq!(strings(&parse(&bytes, false).unwrap()), want);
        // The string table ends the file: without its last NUL the last
        // string runs off the end, and the file is corrupt.
        assert_eq!(bytes.last(), Some(&0));
        let cut = &bytes[..bytes.len() - 1];
        assert!(
            matches!(parse(cut, false), Err(CacheError::Corrupt(m)) if m.contains("unterminated"))
        );
        // A NUL put inside a string ends every string that runs through it
        // there (the writer shares tails: `libc.so.6` ends both a key and
        // paths); the others are whole.
        let at = bytes
            .windows(10)
            .rposition(|w| w == b"libc.so.6\0")
            .unwrap();
        let mut m = bytes.clone();
        m[at + 4] = 0;
        let got = strings(&parse(&m, false).unwrap());
        assert_eq!(got.len(), want.len());
        let changed: Vec<&Vec<u8>> = got.iter().filter(|s| !want.contains(s)).collect();
        assert!(changed.iter().any(|s| s.as_slice() == b"libc"));
        assert!(changed.iter().any(|s| s.ends_with(b"/libc")));
        assert!(changed
            .iter()
            .all(|s| s.ends_with(b"libc") && want.iter().any(|w| w.starts_with(s))));
    }

    #[test]
    fn truncations_and_flips_never_panic() {
        let (entries, names) = hwcaps_fixture();
        let new = write_new_with_hwcaps(&entries, &names, false, Some(b"generator"));
        let inputs = [new, combined_fixture(2)];
        for valid in &inputs {
            for n in 0..=valid.len() {
                for big in [false, true] {
                    let _ = parse(&valid[..n], big);
                }
            }
            for i in 0..valid.len() {
                for x in [0x01u8, 0x80, 0xff, 0x10] {
                    let mut m = valid.clone();
                    m[i] ^= x;
                    let _ = parse(&m, false);
                }
                let mut m = valid.clone();
                m[i] = 0xff;
                if i + 4 <= m.len() {
                    m[i..i + 4].copy_from_slice(&[0xff; 4]);
                }
                let _ = parse(&m, false);
            }
        }
        // Pseudo-random garbage behind each magic.
        let mut seed = 0x1234_5678_9abc_def0u64;
        for round in 0..2000 {
            let mut buf = if round % 2 == 0 {
                NEW_MAGIC.to_vec()
            } else {
                b"ld.so-1.7.0\0".to_vec()
            };
            for _ in 0..(round % 300) {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                // Bias towards small numbers so offsets are sometimes valid.
                let b = (seed >> 56) as u8;
                buf.push(if b & 0x80 == 0 { b & 0x07 } else { b });
            }
            if round % 3 == 0 && buf.len() > 28 {
                buf[28] = 2;
            }
            let _ = parse(&buf, false);
        }
    }

    #[test]
    fn libcmp_orders_naturally() {
        use Ordering::*;
        let cases: &[(&str, &str, Ordering)] = &[
            ("libfoo.so.10", "libfoo.so.9", Greater),
            ("libfoo.so.9", "libfoo.so.10", Less),
            ("libfoo.so.1", "libfoo.so.1", Equal),
            ("libfoo.so.01", "libfoo.so.1", Equal),
            ("libfoo.so", "libfoo.so.1", Less),
            ("libfoo.so.1", "libfoo.so", Greater),
            ("lib1", "liba", Greater), // digit after non-digit
            ("liba", "lib1", Less),
            ("libA", "liba", Less),
            ("libz.so.1", "libc.so.6", Greater),
            ("libc.so.6", "libc6.so", Less), // '.' vs digit
            ("", "", Equal),
            ("", "a", Less),
            ("1", "", Greater),
            ("lib2x", "lib10", Less),
            ("lib99999999999999999999", "lib100000000000000000000", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(libcmp(a.as_bytes(), b.as_bytes()), *want, "{a} vs {b}");
        }
        assert_eq!(libcmp(b"abc\0zzz", b"abc"), Equal);
    }

    #[test]
    fn string_table_merges_tails() {
        let t = StringTable::build(vec![
            b"libz.so.1".as_slice(),
            b"/lib/libz.so.1",
            b"z.so.1",
            b"/lib/libz.so.1",
            b"",
        ]);
        assert_eq!(t.bytes, b"/lib/libz.so.1\0");
        assert_eq!(t.offsets[b"libz.so.1".as_slice()], 5);
        assert_eq!(t.offsets[b"z.so.1".as_slice()], 8);
        assert_eq!(t.offsets[b"".as_slice()], 14);
    }

    #[test]
    fn arch_flags() {
        // x86-64 and x32 are exact.
        assert!(flags_accepted(0x0303, EM_X86_64, true, 0));
        assert!(!flags_accepted(0x0003, EM_X86_64, true, 0));
        assert!(!flags_accepted(0x0803, EM_X86_64, true, 0));
        assert!(flags_accepted(0x0803, EM_X86_64, false, 0));
        assert!(!flags_accepted(0x0303, EM_X86_64, false, 0));
        // i386 and other generic 32-bit targets: 1 or 3.
        for m in [EM_386, EM_PPC, EM_SPARC] {
            assert!(flags_accepted(1, m, false, 0));
            assert!(flags_accepted(3, m, false, 0));
            assert!(!flags_accepted(0x0303, m, false, 0));
        }
        assert!(flags_accepted(3, EM_S390, false, 0));
        assert!(flags_accepted(0x0403, EM_S390, true, 0));
        assert!(!flags_accepted(3, EM_S390, true, 0));
        assert!(flags_accepted(0x0503, EM_PPC64, true, 0));
        assert!(flags_accepted(0x0103, EM_SPARCV9, true, 0));
        assert!(flags_accepted(0x0a03, EM_AARCH64, true, 0));
        assert!(!flags_accepted(3, EM_AARCH64, true, 0));
        // ARM: hard-float or soft-float default, plus unmarked.
        let hf = EF_ARM_EABI_VER5 | EF_ARM_ABI_FLOAT_HARD;
        let sf = EF_ARM_EABI_VER5 | EF_ARM_ABI_FLOAT_SOFT;
        assert!(flags_accepted(0x0903, EM_ARM, false, hf));
        assert!(flags_accepted(0x0003, EM_ARM, false, hf));
        assert!(!flags_accepted(0x0b03, EM_ARM, false, hf));
        assert!(flags_accepted(0x0b03, EM_ARM, false, sf));
        assert!(flags_accepted(0x0003, EM_ARM, false, sf));
        assert!(!flags_accepted(0x0903, EM_ARM, false, sf));
        assert_eq!(flags_for(EM_ARM, false, hf), 0x0903);
        assert_eq!(flags_for(EM_ARM, false, sf), 0x0b03);
        assert_eq!(flags_for(EM_ARM, false, EF_ARM_EABI_VER5), 0x0003);
        assert_eq!(flags_for(EM_ARM, false, EF_ARM_ABI_FLOAT_HARD), 0x0003);
        // MIPS.
        assert!(flags_accepted(0x0703, EM_MIPS, true, 0));
        assert!(flags_accepted(0x0e03, EM_MIPS, true, EF_MIPS_NAN2008));
        assert!(flags_accepted(0x0603, EM_MIPS, false, EF_MIPS_ABI2));
        assert!(flags_accepted(
            0x0d03,
            EM_MIPS,
            false,
            EF_MIPS_ABI2 | EF_MIPS_NAN2008
        ));
        assert!(flags_accepted(1, EM_MIPS, false, 0));
        assert!(flags_accepted(3, EM_MIPS, false, 0));
        assert!(flags_accepted(0x0c03, EM_MIPS, false, EF_MIPS_NAN2008));
        assert!(!flags_accepted(3, EM_MIPS, false, EF_MIPS_NAN2008));
        // RISC-V and LoongArch by float ABI.
        assert!(flags_accepted(0x0f03, EM_RISCV, true, 0));
        assert!(flags_accepted(0x1003, EM_RISCV, true, 0x4 | 0x1));
        assert!(!flags_accepted(0x1003, EM_RISCV, true, 0x2));
        assert!(flags_accepted(0x1103, EM_LOONGARCH, true, 0x41));
        assert!(flags_accepted(0x1203, EM_LOONGARCH, true, 0x43));
        // flags_for agrees with flags_accepted for every ABI.
        let targets: &[(u16, bool, u32)] = &[
            (EM_X86_64, true, 0),
            (EM_X86_64, false, 0),
            (EM_386, false, 0),
            (EM_AARCH64, true, 0),
            (EM_ARM, false, hf),
            (EM_ARM, false, sf),
            (EM_S390, true, 0),
            (EM_S390, false, 0),
            (EM_PPC64, true, 0),
            (EM_PPC, false, 0),
            (EM_SPARCV9, true, 0),
            (EM_SPARC, false, 0),
            (EM_MIPS, true, 0),
            (EM_MIPS, true, EF_MIPS_NAN2008),
            (EM_MIPS, false, EF_MIPS_ABI2),
            (EM_MIPS, false, EF_MIPS_ABI2 | EF_MIPS_NAN2008),
            (EM_MIPS, false, 0),
            (EM_MIPS, false, EF_MIPS_NAN2008),
            (EM_RISCV, true, 0),
            (EM_RISCV, true, 4),
            (EM_LOONGARCH, true, 1),
            (EM_LOONGARCH, true, 3),
        ];
        for &(m, c, f) in targets {
            assert!(
                flags_accepted(flags_for(m, c, f), m, c, f),
                "{m} {c} {f:#x}"
            );
        }
        assert_eq!(flags_for(EM_X86_64, true, 0), 0x0303);
        assert_eq!(flags_for(EM_X86_64, false, 0), 0x0803);
        assert_eq!(flags_for(EM_386, false, 0), 0x0003);
        assert_eq!(flags_for(EM_RISCV, true, 4), 0x1003);
        assert_eq!(flags_for(EM_LOONGARCH, true, 3), 0x1203);
        assert_eq!(flags_description(0x0303), "libc6,x86-64");
        assert_eq!(flags_description(0x0003), "libc6");
        assert_eq!(flags_description(0x0a03), "libc6,AArch64");
        assert_eq!(flags_description(0x4203), "libc6,16896");
    }

    /// Every key of the host's own cache (and a few absent names) is
    /// looked up through the index exactly as a scan finds it, in file
    /// order. Fails if the index loses, reorders or invents entries.
    #[test]
    fn indexed_lookups_match_a_scan_of_the_host_cache() {
        let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
            eprintln!("skipping: this host has no /etc/ld.so.cache");
            return;
        };
        let cache = parse(&bytes, cfg!(target_endian = "big")).unwrap();
        assert!(cache.entries.len() > 10);
        let absent: [&[u8]; 3] = [b"libnope.so.1", b"", b"libc.so"];
        for key in cache.entries.iter().map(|e| e.key.as_slice()).chain(absent) {
            let scan: Vec<*const CacheEntry> = cache
                .entries
                .iter()
                .filter(|e| e.key == key)
                .map(std::ptr::from_ref)
                .collect();
            let found: Vec<*const CacheEntry> = cache.lookup(key).map(std::ptr::from_ref).collect();
            assert_eq!(found, scan, "{}", String::from_utf8_lossy(key));
        }
    }

    /// `CacheIndex::parse` says of `bytes` exactly what `parse` says: the
    /// same error, or the same entries in the same order, the same names,
    /// generator and format, and for every key (and an absent one) the
    /// same lookup answer.
    fn index_agrees(bytes: &[u8], big: bool) {
        let owned = parse(bytes, big);
        let index = CacheIndex::parse(std::sync::Arc::new(bytes.to_vec()), big);
        let (owned, index) = match (owned, index) {
            (Err(a), Err(b)) => return assert_eq!(a, b),
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => panic!("parse: {:?}, CacheIndex: {:?}", a.err(), b.err()),
        };
        let viewed: Vec<CacheEntry> = index.entries().map(|e| e.to_owned_entry()).collect();
        assert_eq!(viewed, owned.entries);
        assert_eq!(index.len(), owned.entries.len());
        assert_eq!(index.hwcaps_names, owned.hwcaps_names);
        assert_eq!(index.generator, owned.generator);
        assert_eq!(index.format, owned.format);
        let absent: &[u8] = b"libnot-in-any-cache.so.9";
        for key in owned
            .entries
            .iter()
            .map(|e| e.key.as_slice())
            .chain([absent])
        {
            let want: Vec<CacheEntry> = owned.lookup(key).cloned().collect();
            let got: Vec<CacheEntry> = index.lookup(key).map(|e| e.to_owned_entry()).collect();
            assert_eq!(got, want, "{}", String::from_utf8_lossy(key));
            for e in index.lookup(key) {
                let o = e.to_owned_entry();
                assert_eq!(
                    (e.hwcaps_index(), e.isa_level(), e.is_legacy_hwcap()),
                    (o.hwcaps_index(), o.isa_level(), o.is_legacy_hwcap())
                );
            }
        }
    }

    /// The borrowed decoding the resolver uses and the owned one agree on
    /// the host's cache, on caches written here of both byte orders (with
    /// glibc-hwcaps names, legacy bits, repeated keys and a generator), on
    /// the old and combined layouts, and on every prefix of and many
    /// single-byte changes to each: where one finds a cache corrupt or
    /// short, so does the other, with the same reason.
    #[test]
    fn the_borrowed_decoding_agrees_with_parse() {
        let mut inputs: Vec<(Vec<u8>, bool)> = Vec::new();
        if let Ok(host) = std::fs::read("/etc/ld.so.cache") {
            inputs.push((host, cfg!(target_endian = "big")));
        }
        let entries = vec![
            entry(
                "libz.so.1",
                "/lib/glibc-hwcaps/x86-64-v3/libz.so.1",
                0x0303,
                (1 << 62) | 1,
            ),
            entry("libz.so.1", "/lib/tls/libz.so.1", 0x0303, 1 << 63),
            entry("libz.so.1", "/lib/libz.so.1", 0x0303, 0),
            entry("libc.so.6", "/lib/libc.so.6", 0x0303, 0),
            entry("libz.so.1", "/lib32/libz.so.1", 0x0003, 0),
        ];
        let names = vec![b"x86-64-v2".to_vec(), b"x86-64-v3".to_vec()];
        for big in [false, true] {
            let written =
                write_new_with_hwcaps(&entries, &names, big, Some(b"a generator".as_slice()));
            inputs.push((written, big));
            inputs.push((write_new(&entries, big, None), big));
        }
        for flag in [0, 1] {
            inputs.push((combined_fixture(flag), false));
        }
        let (strings, offs) = strtab(&["libz.so.1", "/lib/libz.so.1"]);
        let mut old = b"ld.so-1.7.0\0".to_vec();
        le32(&mut old, 1);
        le32(&mut old, 0x0003);
        le32(&mut old, offs[0]);
        le32(&mut old, offs[1]);
        old.extend_from_slice(&strings);
        inputs.push((old, false));
        assert!(inputs.len() >= 7);
        for (bytes, big) in &inputs {
            index_agrees(bytes, *big);
            index_agrees(bytes, !*big);
            // Prefixes, and single bytes changed, across the whole file
            // (at most about 600 places each, evenly spread).
            let step = (bytes.len() / 600).max(1);
            for n in (0..bytes.len()).step_by(step) {
                index_agrees(&bytes[..n], *big);
                for x in [0x00, 0xff, 0x7f] {
                    let mut b = bytes.clone();
                    b[n] = x;
                    index_agrees(&b, *big);
                }
            }
        }
    }

    /// Many entries of few keys, interleaved (runs of one key meet in the
    /// index's probe sequences): every lookup gives exactly a scan's
    /// entries, in file order; and so for every table size up to 70.
    #[test]
    fn indexed_lookups_keep_file_order_of_repeated_keys() {
        for n in 0..70usize {
            let entries: Vec<CacheEntry> = (0..n)
                .map(|i| CacheEntry {
                    flags: i as i32,
                    key: format!("lib{}.so", (i * 7) % 5).into_bytes(),
                    value: format!("/lib/{i}").into_bytes(),
                    hwcap: 0,
                })
                .collect();
            let cache = LdCache {
                entries,
                hwcaps_names: Vec::new(),
                generator: None,
                format: CacheFormat::New,
                index: KeyIndex::default(),
            };
            for k in 0..6 {
                let key = format!("lib{k}.so").into_bytes();
                let scan: Vec<i32> = (cache.entries.iter())
                    .filter(|e| e.key == key)
                    .map(|e| e.flags)
                    .collect();
                let found: Vec<i32> = cache.lookup(&key).map(|e| e.flags).collect();
                assert_eq!(found, scan, "{n} entries, key {k}");
            }
        }
    }
}
