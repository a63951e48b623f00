//! Reading [`ElfInfo`] from bytes.
//!
//! Works on anything implementing `object::ReadRef`, so callers choose between
//! a byte slice and a lazily read file ([`read_file`], whose `ChunkReader`
//! reads small chunks into pooled buffers): only the ELF header, program
//! headers, `PT_INTERP`, notes, the dynamic section and the string and
//! version tables it points at are read, each with an explicit size cap.
//! `read_file` also answers, from the same reads, whether the file uses one
//! of a few undefined symbols (the libgcc_s rule).
//! The dynamic section is found through `PT_DYNAMIC` (and its addresses are
//! mapped to file offsets through `PT_LOAD`), so stripped section headers do
//! not matter; section headers are only a fallback. Total: every input gives
//! an `ElfInfo` or a typed error, never a panic.

use std::fs::File;

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, ReadRef};

use super::{ElfInfo, Ident, ShortName, VerDef, VerNeed, VerNeedAux};

/// Largest dynamic section read (entries beyond it are ignored with a warning).
const MAX_DYNAMIC: u64 = 1 << 20;
/// Largest string table read whole before its names are looked up.
const WHOLE_STRTAB: u64 = 64 << 10;
/// How far after the string table the version tables may start and still
/// share its read (about what copying costs as much as one more `pread64`).
const VERSION_GAP: u64 = 8 << 10;
/// How much of the version tables that read takes: a `Verneed` or `Verdef`
/// record and its auxiliaries are 16 to 28 bytes each, so 1 KiB holds the
/// tables of nearly every file.
const VERSION_SPAN: u64 = 1 << 10;
/// Largest `PT_INTERP` read.
const MAX_INTERP: u64 = 4096;
/// Largest note segment read.
const MAX_NOTES: u64 = 1 << 20;
/// Most version records followed.
const MAX_VERSIONS: usize = 1 << 14;

/// Why bytes are not an ELF file the loader could use at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotElf {
    /// Shorter than an ELF header ("file too short").
    TooShort,
    /// A `#!` script; the interpreter line without `#!`.
    Script(Vec<u8>),
    /// A GNU ld linker script (`libc.so` on most distributions).
    LinkerScript,
    /// Anything else without the ELF magic ("invalid ELF header").
    BadMagic,
}

/// Why an ELF file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not ELF at all.
    #[error("{}", match .0 {
        NotElf::TooShort => "file too short to be ELF".to_string(),
        NotElf::Script(i) => format!("a script for {}", String::from_utf8_lossy(i)),
        NotElf::LinkerScript => "a linker script, not ELF".to_string(),
        NotElf::BadMagic => "not an ELF file (invalid ELF header)".to_string(),
    })]
    NotElf(NotElf),
    /// ELF, but the headers are inconsistent.
    #[error("malformed ELF: {0}")]
    Malformed(String),
    /// The file could not be read.
    #[error("read error: {0}")]
    Read(String),
}

/// Parses an open file, reading only what is needed.
pub fn parse_file(file: &File) -> Result<ElfInfo, ParseError> {
    let len = file
        .metadata()
        .map_err(|e| ParseError::Read(e.to_string()))?
        .len();
    read_file(file, len, &[]).info
}

/// What one read of a file gives the resolver.
#[derive(Debug)]
pub struct FileFacts {
    /// The first (at most 64) bytes, for telling scripts and ELF apart.
    pub head: Vec<u8>,
    /// The parse.
    pub info: Result<ElfInfo, ParseError>,
    /// The first of the asked-for names the file uses as an undefined
    /// dynamic symbol that a relocation refers to
    /// ([`super::symbols::first_undefined_of`]).
    pub uses: Option<Vec<u8>>,
}

/// Reads one open file of `len` bytes: its head, its parse, and which of
/// `names` it uses as an undefined symbol. One pass shares every read: a
/// first chunk holding the headers (and, for most files, the string and
/// version tables), one for the dynamic section, and the string table once
/// more only when it lies elsewhere. The symbol question is answered from
/// the string table when it was read whole and holds no name (a symbol's
/// name must), else through the GNU hash table (see `undefined_use`); only a
/// hit reads the relocations.
pub fn read_file(file: &File, len: u64, names: &[&[u8]]) -> FileFacts {
    let arena = typed_arena::Arena::new();
    let facts = read_with(file, len, names, &arena);
    give_back(arena);
    facts
}

fn read_with(
    file: &File,
    len: u64,
    names: &[&[u8]],
    arena: &typed_arena::Arena<Vec<u8>>,
) -> FileFacts {
    let reader = ChunkReader {
        file,
        len,
        arena,
        chunks: std::cell::RefCell::new(Vec::new()),
        last: std::cell::Cell::new((0, &[])),
    };
    let head = match (&reader).read_bytes_at(0, len.min(64)) {
        Ok(h) => h.to_vec(),
        Err(()) if len == 0 => Vec::new(),
        Err(()) => {
            return FileFacts {
                head: Vec::new(),
                info: Err(ParseError::Read("cannot read the file".into())),
                uses: None,
            };
        }
    };
    let info = parse(&reader);
    let uses = match &info {
        Ok(i) if !names.is_empty() => undefined_use(&reader, file, i, names),
        _ => None,
    };
    FileFacts { head, info, uses }
}

/// The first of `names` that the file uses as an undefined symbol. A
/// string table already read whole (most files) is searched first, one
/// SIMD pass for all names: a symbol's name must occur in it, so nearly
/// every file is done there. A larger table is not read at all when the
/// file has a GNU hash table: its unhashed symbols and their names are
/// read, and each name is looked up
/// ([`super::symbols::first_undefined_hashed`]; `symoffset` alone is no
/// bound, linkers hash some undefined symbols of executables too). The
/// same lookups replace the `.dynsym` scan when a name does occur. Without
/// a GNU hash table, the string table is searched window by window and a
/// hit scans `.dynsym` in pieces.
fn undefined_use<'a>(
    reader: &'a ChunkReader<'a>,
    file: &File,
    info: &ElfInfo,
    names: &[&[u8]],
) -> Option<Vec<u8>> {
    let (start, end) = info.tables.strtab()?;
    let size = end.saturating_sub(start).min(64 << 20);
    if size > WHOLE_STRTAB {
        // Not read yet, and large: the GNU hash table avoids reading it.
        if let Some(uses) =
            super::symbols::first_undefined_hashed(file, reader.len, info, names, None)
        {
            return uses;
        }
    }
    let mut table = None;
    let offsets = if size <= STRTAB_WINDOW {
        let t = reader.read_bytes_at(start, size).ok()?;
        table = Some(t);
        super::symbols::name_offsets(t, names)
    } else {
        // A large table is searched window by window (overlapping by the
        // longest name), so memory stays at one window.
        let overlap = names.iter().map(|n| n.len() as u64 + 1).max().unwrap_or(1);
        let mut window: Vec<u8> = Vec::new();
        let mut offsets = Vec::new();
        let mut at = start;
        let stop = start + size;
        loop {
            let n = STRTAB_WINDOW.min(stop - at);
            if window.len() < n as usize {
                window = read_pooled(file, n as usize, at).ok()?;
            } else {
                std::os::unix::fs::FileExt::read_exact_at(file, &mut window[..n as usize], at)
                    .ok()?;
            }
            let window = &window[..n as usize];
            offsets.extend(
                super::symbols::name_offsets(window, names)
                    .into_iter()
                    .map(|(o, name)| (o + (at - start), name)),
            );
            if at + n >= stop {
                break;
            }
            at += n - overlap.min(n);
        }
        // The pool gets the window back with the other buffers.
        reader.arena.alloc(window);
        // A name in the overlap is found twice.
        offsets.sort_unstable();
        offsets.dedup();
        offsets
    };
    if offsets.is_empty() {
        return None;
    }
    // A table holding a name: the hash table finds its symbols without
    // reading them all (the names are compared in the table read above);
    // without one, the symbols are read in pieces.
    if let Some(uses) = super::symbols::first_undefined_hashed(file, reader.len, info, names, table)
    {
        return uses;
    }
    super::symbols::first_undefined_at(file, reader.len, info, &offsets)
}

/// The largest string table searched in one piece.
const STRTAB_WINDOW: u64 = 1 << 20;

/// Granularity of reads: headers, dynamic symbols, string and version
/// tables usually fall in the first chunks, the dynamic section in one more.
const CHUNK: u64 = 1 << 10;
/// The first read of a file: headers, notes, and for most programs the
/// string and version tables too.
const FIRST_CHUNK: u64 = 2 << 10;

/// `n` bytes of `file` at `at` in a buffer from this thread's pool
/// ([`super::pool::take`]).
fn read_pooled(file: &File, n: usize, at: u64) -> Result<Vec<u8>, ()> {
    super::pool::take(file, n, at).map_err(|_| ())
}

/// Returns an arena's buffers to this thread's pool.
fn give_back(arena: typed_arena::Arena<Vec<u8>>) {
    for b in arena.into_vec() {
        super::pool::give(b);
    }
}

/// A lazily read file: reads go to the file in aligned chunks (one
/// positional read each, whatever the file position), kept in an arena so
/// slices handed out stay valid; a request larger than a chunk is read
/// exactly. Every read is bounded by the file size. Buffers come from and
/// go back to a per-thread pool.
struct ChunkReader<'a> {
    file: &'a File,
    len: u64,
    arena: &'a typed_arena::Arena<Vec<u8>>,
    /// (file offset, bytes) of every chunk read so far.
    chunks: std::cell::RefCell<Vec<(u64, &'a [u8])>>,
    /// The chunk that served the last request: a parse reads records one
    /// after another (≈ 35 requests per file on the union run), nearly
    /// all from the chunk before.
    last: std::cell::Cell<(u64, &'a [u8])>,
}

impl<'a> ChunkReader<'a> {
    /// A buffer holding `offset..offset + size`, and its file offset.
    fn cover(&self, offset: u64, size: u64) -> Result<(u64, &'a [u8]), ()> {
        let end = offset.checked_add(size).ok_or(())?;
        if end > self.len {
            return Err(());
        }
        let (at, buf) = self.last.get();
        if at <= offset && end <= at + buf.len() as u64 {
            return Ok((at, buf));
        }
        if let Some(&(at, buf)) = self
            .chunks
            .borrow()
            .iter()
            .find(|(at, buf)| *at <= offset && end <= at + buf.len() as u64)
        {
            self.last.set((at, buf));
            return Ok((at, buf));
        }
        let first = self.chunks.borrow().is_empty();
        let (at, n) = if first && end <= FIRST_CHUNK {
            (0, FIRST_CHUNK.min(self.len))
        } else if size <= CHUNK {
            let at = offset / CHUNK * CHUNK;
            // Two chunks when the range straddles a boundary.
            let n = (end - at).div_ceil(CHUNK) * CHUNK;
            (at, n.min(self.len - at))
        } else {
            // Exact, but from an 8-aligned file offset: a slice of this
            // buffer is then aligned exactly as the same bytes in a whole
            // file read into memory, so `object` accepts or refuses a table
            // at the same offsets either way, whichever buffer serves it.
            let at = offset & !7;
            (at, end - at)
        };
        let n = usize::try_from(n).map_err(|_| ())?;
        let chunk = if first {
            // Notes whether the file was in the page cache.
            super::pool::take_first(self.file, n, at).map_err(|_| ())?
        } else {
            read_pooled(self.file, n, at)?
        };
        // The arena owns the buffer from now on; it never moves.
        let buf: &'a [u8] = &self.arena.alloc(chunk)[..n];
        self.chunks.borrow_mut().push((at, buf));
        self.last.set((at, buf));
        Ok((at, buf))
    }
}

impl<'a> ReadRef<'a> for &'a ChunkReader<'a> {
    fn len(self) -> Result<u64, ()> {
        Ok(self.len)
    }

    fn read_bytes_at(self, offset: u64, size: u64) -> Result<&'a [u8], ()> {
        if size == 0 {
            return Ok(&[]);
        }
        let (at, buf) = self.cover(offset, size)?;
        let start = (offset - at) as usize;
        Ok(&buf[start..start + size as usize])
    }

    fn read_bytes_at_until(
        self,
        range: std::ops::Range<u64>,
        delimiter: u8,
    ) -> Result<&'a [u8], ()> {
        // Strings are short: look in the chunk holding the start first,
        // then in ever larger exact reads (bounded by the range).
        let end = range.end.min(self.len);
        if range.start >= end {
            return Err(());
        }
        let mut want = (end - range.start).min(CHUNK - range.start % CHUNK);
        loop {
            let bytes = self.read_bytes_at(range.start, want)?;
            if let Some(n) = memchr::memchr(delimiter, bytes) {
                return Ok(&bytes[..n]);
            }
            if range.start + want >= end || want >= 1 << 20 {
                return Err(());
            }
            want = (want * 4).min(end - range.start);
        }
    }
}

/// Parses an ELF object from any `ReadRef` (a byte slice or a file's `ChunkReader`).
pub fn parse<'data, R: ReadRef<'data>>(data: R) -> Result<ElfInfo, ParseError> {
    let len = data
        .len()
        .map_err(|_| ParseError::Read("cannot size input".into()))?;
    let head = data
        .read_bytes_at(0, len.min(64))
        .map_err(|_| ParseError::Read("cannot read header".into()))?;
    if head.len() < 4 || &head[..4] != b"\x7fELF" {
        return Err(ParseError::NotElf(classify_non_elf(data, len, head)));
    }
    if head.len() < 16 {
        return Err(ParseError::NotElf(NotElf::TooShort));
    }
    let big = match head[5] {
        elf::ELFDATA2LSB => false,
        elf::ELFDATA2MSB => true,
        d => return Err(ParseError::Malformed(format!("unknown EI_DATA {d}"))),
    };
    let endian = if big {
        Endianness::Big
    } else {
        Endianness::Little
    };
    match head[4] {
        elf::ELFCLASS32 => parse_class::<elf::FileHeader32<Endianness>, R>(data, len, endian),
        elf::ELFCLASS64 => parse_class::<elf::FileHeader64<Endianness>, R>(data, len, endian),
        c => Err(ParseError::Malformed(format!("unknown EI_CLASS {c}"))),
    }
}

fn classify_non_elf<'data, R: ReadRef<'data>>(data: R, len: u64, head: &[u8]) -> NotElf {
    if head.starts_with(b"#!") {
        let line = data
            .read_bytes_at(0, len.min(512))
            .unwrap_or(head)
            .split(|&b| b == b'\n')
            .next()
            .unwrap_or_default();
        let line = &line[2..];
        let trimmed: Vec<u8> = trim_ascii(line).to_vec();
        return NotElf::Script(trimmed);
    }
    let text = data.read_bytes_at(0, len.min(256)).unwrap_or(head);
    let lossy = String::from_utf8_lossy(text);
    if lossy.contains("GNU ld script")
        || lossy.trim_start().starts_with("GROUP")
        || lossy.trim_start().starts_with("INPUT")
    {
        return NotElf::LinkerScript;
    }
    if len < 64 {
        return NotElf::TooShort;
    }
    NotElf::BadMagic
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn malformed(what: &str) -> ParseError {
    ParseError::Malformed(what.to_string())
}

/// Maps a virtual address to a file offset through the `PT_LOAD` segments.
fn vaddr_to_offset<Elf: FileHeader<Endian = Endianness>>(
    phdrs: &[Elf::ProgramHeader],
    endian: Endianness,
    vaddr: u64,
) -> Option<u64> {
    for ph in phdrs {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let start: u64 = ph.p_vaddr(endian).into();
        let filesz: u64 = ph.p_filesz(endian).into();
        if vaddr >= start && vaddr - start < filesz {
            let off: u64 = ph.p_offset(endian).into();
            return off.checked_add(vaddr - start);
        }
    }
    None
}

fn parse_class<'data, Elf, R>(data: R, len: u64, endian: Endianness) -> Result<ElfInfo, ParseError>
where
    Elf: FileHeader<Endian = Endianness>,
    R: ReadRef<'data>,
{
    let header = Elf::parse(data).map_err(|_| ParseError::NotElf(NotElf::TooShort))?;
    let e_ident = header.e_ident();
    let ident = Ident {
        is_64: header.is_class_64(),
        big_endian: endian == Endianness::Big,
        osabi: e_ident.os_abi,
        abiversion: e_ident.abi_version,
        e_type: header.e_type(endian),
        machine: header.e_machine(endian),
        e_flags: header.e_flags(endian),
    };
    let mut info = ElfInfo {
        ident,
        interp: None,
        dynamic: false,
        soname: None,
        needed: Vec::new(),
        rpath: None,
        runpath: None,
        filters: Vec::new(),
        flags: 0,
        flags_1: 0,
        audit: None,
        verneed: Vec::new(),
        verdef: Vec::new(),
        warnings: Vec::new(),
        tables: super::DynTables::default(),
        dlopen: Vec::new(),
        x86_isa_needed: 0,
        exec_stack: false,
        verdef_index: Default::default(),
        verneed_met: Default::default(),
    };

    // Program headers: bound their size by the file before reading.
    let phnum = header.e_phnum(endian) as u64;
    let phentsize = header.e_phentsize(endian) as u64;
    let phoff: u64 = header.e_phoff(endian).into();
    let phdrs: &[Elf::ProgramHeader] = if phoff == 0 || phnum == 0 {
        &[]
    } else {
        if phentsize != std::mem::size_of::<Elf::ProgramHeader>() as u64 {
            return Err(malformed("unexpected e_phentsize"));
        }
        if phoff.saturating_add(phnum.saturating_mul(phentsize)) > len {
            return Err(malformed("program headers extend past the end of the file"));
        }
        data.read_slice_at(phoff, phnum as usize)
            .map_err(|_| malformed("cannot read program headers"))?
    };

    let mut dyn_range: Option<(u64, u64)> = None;
    let mut notes: Vec<(u64, u64, u64)> = Vec::new();
    let mut gnu_stack: Option<bool> = None;
    for ph in phdrs {
        let off: u64 = ph.p_offset(endian).into();
        let filesz: u64 = ph.p_filesz(endian).into();
        if matches!(ph.p_type(endian), elf::PT_LOAD | elf::PT_DYNAMIC)
            && off.saturating_add(filesz) > len
        {
            // The loader would fail to map it ("failed to map segment").
            return Err(malformed(
                "a segment extends past the end of the file (truncated?)",
            ));
        }
        match ph.p_type(endian) {
            elf::PT_INTERP => {
                let off: u64 = ph.p_offset(endian).into();
                let size: u64 = ph.p_filesz(endian).into();
                let size = size.min(MAX_INTERP);
                let bytes = data
                    .read_bytes_at(off, size)
                    .map_err(|_| malformed("PT_INTERP outside the file"))?;
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                info.interp = Some(bytes[..end].to_vec());
            }
            elf::PT_GNU_STACK => gnu_stack = Some(ph.p_flags(endian) & elf::PF_X != 0),
            elf::PT_DYNAMIC if dyn_range.is_none() => {
                dyn_range = Some((ph.p_offset(endian).into(), ph.p_filesz(endian).into()));
            }
            elf::PT_NOTE => notes.push((off, filesz, ph.p_align(endian).into())),
            _ => {}
        }
    }
    if phdrs.is_empty() {
        if let Ok(sections) = header.sections(endian, data) {
            for s in sections.iter() {
                if s.sh_type(endian) == elf::SHT_NOTE {
                    notes.push((
                        s.sh_offset(endian).into(),
                        s.sh_size(endian).into(),
                        s.sh_addralign(endian).into(),
                    ));
                }
            }
        }
    }
    info.exec_stack = gnu_stack.unwrap_or_else(|| ident.stack_executable_by_default());
    let x86 = matches!(ident.machine, super::machine::X86_64 | super::machine::I386);
    let mut properties_seen = false;
    for (off, size, align) in notes {
        let size = size.min(MAX_NOTES).min(len.saturating_sub(off));
        if let Ok(bytes) = data.read_bytes_at(off, size) {
            let (mut entries, warnings, isa) =
                super::notes::parse_notes(bytes, ident.big_endian, align, x86 && !properties_seen);
            info.dlopen.append(&mut entries);
            info.warnings.extend(warnings);
            if let Some(isa) = isa {
                properties_seen = true;
                info.x86_isa_needed = isa.unwrap_or(0);
            }
        }
    }

    // Section headers are only a fallback for the dynamic section.
    if dyn_range.is_none() {
        if let Ok(sections) = header.sections(endian, data) {
            for s in sections.iter() {
                if s.sh_type(endian) == elf::SHT_DYNAMIC {
                    dyn_range = Some((s.sh_offset(endian).into(), s.sh_size(endian).into()));
                    break;
                }
            }
        }
    }

    let Some((dyn_off, dyn_size)) = dyn_range else {
        return Ok(info);
    };
    info.dynamic = true;
    let entsize = std::mem::size_of::<Elf::Dyn>() as u64;
    let mut dyn_size = dyn_size.min(len.saturating_sub(dyn_off));
    if dyn_size > MAX_DYNAMIC {
        info.warnings
            .push("dynamic section larger than 1 MiB; the rest is ignored".into());
        dyn_size = MAX_DYNAMIC;
    }
    let count = (dyn_size / entsize) as usize;
    let dyns: &[Elf::Dyn] = data
        .read_slice_at(dyn_off, count)
        .map_err(|_| malformed("dynamic section outside the file"))?;

    let mut strtab: Option<u64> = None;
    let mut strsz: Option<u64> = None;
    let mut needed_off = Vec::new();
    let mut soname_off = None;
    let mut rpath_off = None;
    let mut runpath_off = None;
    let mut filter_off = Vec::new();
    let (mut audit_off, mut depaudit_off) = (None, None);
    let (mut verneed, mut verneednum, mut verdef, mut verdefnum) = (None, 0u64, None, 0u64);
    let mut t = RawTables::default();
    for d in dyns {
        let tag: u64 = d.d_tag(endian).into();
        let val: u64 = d.d_val(endian).into();
        let Ok(tag) = u32::try_from(tag) else {
            continue;
        };
        match tag {
            elf::DT_NULL => break,
            elf::DT_NEEDED => needed_off.push(val),
            elf::DT_STRTAB => strtab = Some(val),
            elf::DT_STRSZ => strsz = Some(val),
            elf::DT_SONAME => soname_off = Some(val),
            elf::DT_RPATH => rpath_off = Some(val),
            elf::DT_RUNPATH => runpath_off = Some(val),
            // Every defined flag is in the low 32 bits.
            elf::DT_FLAGS => info.flags = val as u32,
            elf::DT_FLAGS_1 => info.flags_1 = val as u32,
            elf::DT_AUDIT => audit_off = Some(val),
            elf::DT_DEPAUDIT => depaudit_off = Some(val),
            elf::DT_FILTER | elf::DT_AUXILIARY => filter_off.push(val),
            elf::DT_VERNEED => verneed = Some(val),
            elf::DT_VERNEEDNUM => verneednum = val,
            elf::DT_VERDEF => verdef = Some(val),
            elf::DT_VERDEFNUM => verdefnum = val,
            elf::DT_SYMTAB => t.symtab = Some(val),
            elf::DT_HASH => t.hash = Some(val),
            elf::DT_GNU_HASH => t.gnu_hash = Some(val),
            elf::DT_VERSYM => t.versym = Some(val),
            elf::DT_RELA => t.rela = Some(val),
            elf::DT_RELASZ => t.relasz = val,
            elf::DT_REL => t.rel = Some(val),
            elf::DT_RELSZ => t.relsz = val,
            elf::DT_JMPREL => t.jmprel = Some(val),
            elf::DT_PLTRELSZ => t.pltrelsz = val,
            elf::DT_PLTREL => t.pltrel = val,
            // A processor-specific tag: its meaning is MIPS's only there.
            elf::DT_MIPS_GOTSYM if info.ident.machine == super::machine::MIPS => {
                t.mips_gotsym = Some(val)
            }
            elf::DT_MIPS_SYMTABNO if info.ident.machine == super::machine::MIPS => {
                t.mips_symtabno = Some(val)
            }
            _ => {}
        }
    }

    // Locate the string table: through PT_LOAD, or (no program headers at
    // all, e.g. some relocatable oddities) through the section headers.
    let Some(strtab_vaddr) = strtab else {
        if !needed_off.is_empty() || soname_off.is_some() {
            return Err(malformed(
                "dynamic section names strings but has no DT_STRTAB",
            ));
        }
        return Ok(info);
    };
    let str_off = if phdrs.is_empty() {
        section_offset_for_addr::<Elf, R>(header, endian, data, strtab_vaddr)
    } else {
        vaddr_to_offset::<Elf>(phdrs, endian, strtab_vaddr)
    };
    let Some(str_off) = str_off else {
        info.warnings
            .push("DT_STRTAB is not inside any loaded segment".into());
        return Ok(info);
    };
    let str_end = match strsz {
        Some(sz) => str_off.saturating_add(sz).min(len),
        None => len,
    };
    let strings = Strings {
        start: str_off,
        end: str_end,
    };
    let map = |vaddr: u64| {
        if phdrs.is_empty() {
            section_offset_for_addr::<Elf, R>(header, endian, data, vaddr)
        } else {
            vaddr_to_offset::<Elf>(phdrs, endian, vaddr)
        }
    };
    // A small string table is read whole, once: every name below comes
    // from it, and the libgcc_s check reads the whole table anyway (from a
    // file, one read instead of a chunk per name and the table again).
    // Linkers put the version tables right after it (`.gnu.version`,
    // `.gnu.version_d`, `.gnu.version_r`): when they start within
    // `VERSION_GAP` of its end, the same read takes their first
    // `VERSION_SPAN` bytes too, which hold every record of most files (one
    // `pread64` less for most files; ending the read at the chunk boundary
    // after the table's start, as before, cut a third of the tables short).
    if str_end.saturating_sub(str_off) <= WHOLE_STRTAB {
        let mut end = str_end;
        for off in [verneed, verdef].into_iter().flatten().filter_map(map) {
            if off >= str_end && off - str_end <= VERSION_GAP {
                end = end.max(off.saturating_add(VERSION_SPAN).min(len));
            }
        }
        let _ = data.read_bytes_at(str_off, end.saturating_sub(str_off));
    }
    let get = |off: u64, what: &str, warnings: &mut Vec<String>| -> Option<Vec<u8>> {
        match strings.get(data, off) {
            Some(s) => Some(s),
            None => {
                warnings.push(format!("{what} string offset {off:#x} is out of bounds"));
                None
            }
        }
    };
    for off in needed_off {
        if let Some(s) = get(off, "DT_NEEDED", &mut info.warnings) {
            info.needed.push(s);
        }
    }
    if let Some(off) = soname_off {
        info.soname = get(off, "DT_SONAME", &mut info.warnings);
    }
    if let Some(off) = rpath_off {
        info.rpath = get(off, "DT_RPATH", &mut info.warnings);
    }
    if let Some(off) = runpath_off {
        info.runpath = get(off, "DT_RUNPATH", &mut info.warnings);
    }
    for off in filter_off {
        if let Some(s) = get(off, "DT_FILTER", &mut info.warnings) {
            info.filters.push(s);
        }
    }
    if audit_off.is_some() || depaudit_off.is_some() {
        let audit = audit_off.and_then(|o| get(o, "DT_AUDIT", &mut info.warnings));
        let depaudit = depaudit_off.and_then(|o| get(o, "DT_DEPAUDIT", &mut info.warnings));
        info.audit = Some(Box::new(super::AuditNames { audit, depaudit }));
    }

    info.tables = super::DynTables::from(super::TableOffsets {
        strtab: Some((str_off, str_end)),
        symtab: t.symtab.and_then(map),
        hash: t.hash.and_then(map),
        gnu_hash: t.gnu_hash.and_then(map),
        versym: t.versym.and_then(map),
        rela: t.rela.and_then(map).map(|o| (o, t.relasz)),
        rel: t.rel.and_then(map).map(|o| (o, t.relsz)),
        jmprel: t
            .jmprel
            .and_then(map)
            .map(|o| (o, t.pltrelsz, t.pltrel == elf::DT_RELA as u64)),
        mips_gotsym: t.mips_gotsym,
        mips_symtabno: t.mips_symtabno,
    });
    if let Some(v) = verneed {
        match map(v) {
            Some(off) => read_verneed(data, endian, off, verneednum, &strings, &mut info),
            None => info
                .warnings
                .push("DT_VERNEED outside loaded segments".into()),
        }
    }
    if let Some(v) = verdef {
        match map(v) {
            Some(off) => read_verdef(data, endian, off, verdefnum, &strings, &mut info),
            None => info
                .warnings
                .push("DT_VERDEF outside loaded segments".into()),
        }
    }
    Ok(info)
}

/// File offset of an address through the section headers (for files
/// without program headers).
fn section_offset_for_addr<'data, Elf, R>(
    header: &Elf,
    endian: Endianness,
    data: R,
    addr: u64,
) -> Option<u64>
where
    Elf: FileHeader<Endian = Endianness>,
    R: ReadRef<'data>,
{
    let sections = header.sections(endian, data).ok()?;
    for s in sections.iter() {
        let a: u64 = s.sh_addr(endian).into();
        let size: u64 = s.sh_size(endian).into();
        if s.sh_type(endian) != elf::SHT_NOBITS && addr >= a && addr - a < size {
            let off: u64 = s.sh_offset(endian).into();
            return off.checked_add(addr - a);
        }
    }
    None
}

/// Dynamic-section addresses of the symbol and relocation tables.
#[derive(Default)]
struct RawTables {
    symtab: Option<u64>,
    hash: Option<u64>,
    gnu_hash: Option<u64>,
    versym: Option<u64>,
    rela: Option<u64>,
    relasz: u64,
    rel: Option<u64>,
    relsz: u64,
    jmprel: Option<u64>,
    pltrelsz: u64,
    pltrel: u64,
    mips_gotsym: Option<u64>,
    mips_symtabno: Option<u64>,
}

/// The dynamic string table, as a bounded file range.
struct Strings {
    start: u64,
    end: u64,
}

impl Strings {
    /// The version name at `off` (empty when it cannot be read), without
    /// an allocation of its own ([`ShortName`]).
    fn version_name<'data, R: ReadRef<'data>>(&self, data: R, off: u64) -> ShortName {
        let Some(at) = self.start.checked_add(off).filter(|&at| at < self.end) else {
            return ShortName::default();
        };
        data.read_bytes_at_until(at..self.end, 0)
            .map(ShortName::from)
            .unwrap_or_default()
    }

    fn get<'data, R: ReadRef<'data>>(&self, data: R, off: u64) -> Option<Vec<u8>> {
        let at = self.start.checked_add(off)?;
        if at >= self.end {
            return None;
        }
        data.read_bytes_at_until(at..self.end, 0)
            .ok()
            .map(|s| s.to_vec())
    }
}

/// The `u16` at `at` of a record already read (`at + 2 <= r.len()`).
fn u16_in(r: &[u8], at: usize, e: Endianness) -> u16 {
    let a = [r[at], r[at + 1]];
    if e == Endianness::Big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

/// The `u32` at `at` of a record already read (`at + 4 <= r.len()`).
fn u32_in(r: &[u8], at: usize, e: Endianness) -> u32 {
    let a = [r[at], r[at + 1], r[at + 2], r[at + 3]];
    if e == Endianness::Big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn read_u32<'data, R: ReadRef<'data>>(data: R, e: Endianness, off: u64) -> Option<u32> {
    let b = data.read_bytes_at(off, 4).ok()?;
    let a = [b[0], b[1], b[2], b[3]];
    Some(if e == Endianness::Big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
}

fn read_verneed<'data, R: ReadRef<'data>>(
    data: R,
    e: Endianness,
    mut off: u64,
    num: u64,
    strings: &Strings,
    info: &mut ElfInfo,
) {
    let limit = if num == 0 {
        MAX_VERSIONS
    } else {
        (num as usize).min(MAX_VERSIONS)
    };
    let mut total = 0usize;
    for _ in 0..limit {
        // Verneed: version u16, cnt u16, file u32, aux u32, next u32 (one
        // read per record).
        let rec = data.read_bytes_at(off, 16).ok();
        let (Some(version), Some(cnt), Some(file), Some(aux), Some(next)) = (
            rec.map(|r| u16_in(r, 0, e)),
            rec.map(|r| u16_in(r, 2, e)),
            rec.map(|r| u32_in(r, 4, e)),
            rec.map(|r| u32_in(r, 8, e)),
            rec.map(|r| u32_in(r, 12, e)),
        ) else {
            info.warnings.push("truncated version requirements".into());
            return;
        };
        let file = strings.get(data, file as u64).unwrap_or_default();
        // Kept for the whole run: sized exactly (growth by doubling left a
        // third of these vectors unused).
        let mut versions = Vec::with_capacity(usize::from(cnt).min(64));
        let mut aoff = off + aux as u64;
        for _ in 0..cnt {
            total += 1;
            if total > MAX_VERSIONS {
                break;
            }
            // Vernaux: hash u32, flags u16, other u16, name u32, next u32.
            let rec = data.read_bytes_at(aoff, 16).ok();
            let (Some(hash), Some(flags), Some(other), Some(name), Some(anext)) = (
                rec.map(|r| u32_in(r, 0, e)),
                rec.map(|r| u16_in(r, 4, e)),
                rec.map(|r| u16_in(r, 6, e)),
                rec.map(|r| u32_in(r, 8, e)),
                rec.map(|r| u32_in(r, 12, e)),
            ) else {
                info.warnings
                    .push("truncated version requirement entry".into());
                break;
            };
            versions.push(VerNeedAux {
                name: strings.version_name(data, name as u64),
                hash,
                flags,
                other,
            });
            if anext == 0 {
                break;
            }
            aoff += anext as u64;
        }
        if info.verneed.capacity() == 0 {
            info.verneed.reserve_exact(limit.min(64));
        }
        info.verneed.push(VerNeed {
            version,
            file,
            versions,
        });
        if next == 0 {
            break;
        }
        off += next as u64;
    }
}

fn read_verdef<'data, R: ReadRef<'data>>(
    data: R,
    e: Endianness,
    mut off: u64,
    num: u64,
    strings: &Strings,
    info: &mut ElfInfo,
) {
    let limit = if num == 0 {
        MAX_VERSIONS
    } else {
        (num as usize).min(MAX_VERSIONS)
    };
    for _ in 0..limit {
        // Verdef: version u16, flags u16, ndx u16, cnt u16, hash u32, aux u32, next u32.
        let rec = data.read_bytes_at(off, 20).ok();
        let (Some(version), Some(flags), Some(index), Some(hash), Some(aux), Some(next)) = (
            rec.map(|r| u16_in(r, 0, e)),
            rec.map(|r| u16_in(r, 2, e)),
            rec.map(|r| u16_in(r, 4, e)),
            rec.map(|r| u32_in(r, 8, e)),
            rec.map(|r| u32_in(r, 12, e)),
            rec.map(|r| u32_in(r, 16, e)),
        ) else {
            info.warnings.push("truncated version definitions".into());
            return;
        };
        let name = read_u32(data, e, off + aux as u64)
            .and_then(|n| strings.get(data, n as u64))
            .unwrap_or_default();
        if info.verdef.capacity() == 0 {
            info.verdef.reserve_exact(limit.min(256));
        }
        info.verdef.push(VerDef {
            version,
            name,
            hash,
            flags,
            index,
        });
        if next == 0 {
            break;
        }
        off += next as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_elf_inputs_are_classified() {
        assert_eq!(
            parse(&b"#!/bin/sh -e\necho hi\n"[..]),
            Err(ParseError::NotElf(NotElf::Script(b"/bin/sh -e".to_vec())))
        );
        assert_eq!(
            parse(&b"/* GNU ld script\n */\nGROUP ( /lib/libc.so.6 )\n"[..]),
            Err(ParseError::NotElf(NotElf::LinkerScript))
        );
        assert_eq!(
            parse(&b"\x7fELF"[..]),
            Err(ParseError::NotElf(NotElf::TooShort))
        );
        assert_eq!(
            parse(&[0u8; 100][..]),
            Err(ParseError::NotElf(NotElf::BadMagic))
        );
    }

    /// The answer to "which of these names does the file use" matches an
    /// independent reading with goblin (undefined, non-local dynamic
    /// symbols some relocation refers to) on this machine's programs and
    /// libraries, with names many files use and names few do.
    #[test]
    fn undefined_use_matches_goblin() {
        use goblin::elf::Elf;
        let sets: [&[&[u8]]; 2] = [
            &[b"pthread_cancel", b"pthread_exit", b"backtrace"],
            &[b"free", b"malloc"],
        ];
        let mut files = Vec::new();
        for dir in ["/usr/bin", "/usr/lib/x86_64-linux-gnu"] {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut v: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            v.sort();
            files.extend(v);
        }
        let (mut checked, mut hits) = (0, [0, 0]);
        for p in files {
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if !m.is_file() || m.len() > 256 << 20 {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let Ok(elf) = Elf::parse(&bytes) else {
                continue;
            };
            if elf.dynamic.is_none() {
                continue;
            }
            let f = File::open(&p).unwrap();
            for (k, names) in sets.iter().enumerate() {
                let referenced: std::collections::BTreeSet<usize> = elf
                    .dynrelas
                    .iter()
                    .chain(elf.dynrels.iter())
                    .chain(elf.pltrelocs.iter())
                    .map(|r| r.r_sym)
                    .collect();
                let expected: Vec<&[u8]> = names
                    .iter()
                    .copied()
                    .filter(|n| {
                        elf.dynsyms.iter().enumerate().any(|(i, s)| {
                            s.st_shndx == 0
                                && s.st_bind() != goblin::elf::sym::STB_LOCAL
                                && referenced.contains(&i)
                                && elf.dynstrtab.get_at(s.st_name).map(str::as_bytes) == Some(*n)
                        })
                    })
                    .collect();
                let got = read_file(&f, m.len(), names).uses;
                match &got {
                    Some(name) => assert!(
                        expected.contains(&name.as_slice()),
                        "{}: {} is not among {:?}",
                        p.display(),
                        String::from_utf8_lossy(name),
                        expected
                    ),
                    None => assert!(
                        expected.is_empty(),
                        "{}: missed {:?}",
                        p.display(),
                        expected
                    ),
                }
                hits[k] += usize::from(got.is_some());
            }
            checked += 1;
        }
        if checked == 0 {
            eprintln!("skipping: no dynamic ELF files in /usr/bin or /usr/lib/x86_64-linux-gnu");
            return;
        }
        assert!(hits[1] > 0, "no file among {checked} uses malloc or free?");
    }

    #[test]
    fn parses_this_machines_libc_if_present() {
        let Ok(bytes) = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6") else {
            eprintln!("skipping: no /lib/x86_64-linux-gnu/libc.so.6");
            return;
        };
        let info = parse(&bytes[..]).unwrap();
        assert_eq!(info.soname.as_deref(), Some(&b"libc.so.6"[..]));
        assert!(info.needed.iter().any(|n| n.starts_with(b"ld-linux")));
        assert!(info.highest_version(b"GLIBC_2.").is_some());
        // The lazy file reader gives the same answer as the byte slice.
        let f = File::open("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        assert_eq!(parse_file(&f).unwrap(), info);
    }
}
