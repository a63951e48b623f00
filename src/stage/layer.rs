//! A staging [`Plan`] written as one deterministic tar stream — the OCI
//! image layer.
//!
//! Owns the byte layout of the layer: which entries there are, in which
//! order, and every header byte. The same plan always gives the same bytes,
//! whatever the sysroot's timestamps, owners or inode numbers are:
//!
//! - entry names are relative, without `./` or a leading `/` (`usr/bin/curl`,
//!   directories with a trailing `/`), sorted by their path bytes; a path
//!   sorts before its extensions, so every directory comes before its
//!   contents, and the plan holds an explicit directory for every ancestor;
//! - symbolic links are typeflag `2` with the target byte for byte; files that
//!   are one inode in the sysroot are stored once and then written as hard
//!   links (typeflag `1`) to the first of them in this order;
//! - `mtime` is the one given (`SOURCE_DATE_EPOCH`, else 0), uid and gid 0,
//!   no user or group names, zero device numbers, modes as planned (permission
//!   bits and setuid/setgid/sticky only);
//! - a name or link target longer than the 100-byte ustar fields, and a size
//!   or time too large for the octal fields, go into a PAX extended header
//!   (`path`, `linkpath`, `size`, `mtime` records) whose own name is derived
//!   from the entry name (`PaxHeaders/<file name>`), never from a process id;
//! - a regular file with capabilities in the sysroot carries their raw
//!   `security.capability` value in a PAX `SCHILY.xattr.security.capability`
//!   record (the only extended attribute a layer holds);
//! - the archive ends with two 512-byte zero blocks and no further padding.
//!
//! Gzip compression (`gzip`) uses a fixed level, `MTIME` 0, no file name and
//! a fixed OS byte, so the compressed bytes are deterministic too.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Item, Plan};
use crate::error::{Error, Result};
use crate::rootfs::RootFs;

/// Size of a tar block.
const BLOCK: usize = 512;

/// Largest value an 11-digit octal field (size, mtime) holds.
const MAX_OCTAL_11: u64 = 0o777_7777_7777;

/// The gzip compression level used for layers (zlib's default).
pub const GZIP_LEVEL: u32 = 6;

/// The gzip OS byte written (255: unknown), the same on every host.
pub const GZIP_OS: u8 = 255;

/// Options of writing a layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// The modification time of every entry, in seconds since the epoch.
    pub mtime: u64,
}

/// What one layer entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file copied from the sysroot (canonical in-root source).
    File(PathBuf),
    /// A regular file whose bytes the tool generated.
    Generated(Vec<u8>),
    /// A symbolic link with this target, byte for byte.
    Symlink(Vec<u8>),
    /// A hard link to the earlier entry of this name.
    Hardlink(Vec<u8>),
}

/// One entry of the layer, in archive order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The archive name: relative, no leading `/`, no trailing `/`.
    pub name: Vec<u8>,
    /// Mode bits (`0o7777` part).
    pub mode: u32,
    /// What it is.
    pub kind: EntryKind,
}

/// The archive name of an in-root path: its bytes without leading slashes.
pub fn archive_name(path: &Path) -> Vec<u8> {
    let b = path.as_os_str().as_bytes();
    let start = b.iter().position(|&c| c != b'/').unwrap_or(b.len());
    b[start..].to_vec()
}

/// The entries of `plan`, in archive order, with hard links pointing at the
/// first member of their group in that order. Pure: reads nothing.
pub fn entries(plan: &Plan) -> Result<Vec<Entry>> {
    let mut list: Vec<(Vec<u8>, &Path, &Item)> = plan
        .items
        .iter()
        .map(|(p, item)| (archive_name(p), p.as_path(), item))
        .filter(|(name, _, _)| !name.is_empty())
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));

    // Hard-link groups: the planned file and every link to it. The member
    // that comes first in archive order carries the content.
    let mut groups: BTreeMap<&Path, Vec<Vec<u8>>> = BTreeMap::new();
    for (name, _, item) in &list {
        if let Item::Hardlink { to } = item {
            groups.entry(to.as_path()).or_default().push(name.clone());
        }
    }
    let mut carrier: BTreeMap<&Path, Vec<u8>> = BTreeMap::new();
    for (to, links) in &groups {
        let content = plan.items.get(*to).ok_or_else(|| Error::Output {
            path: to.to_path_buf(),
            reason: "a hard link in the plan points at a path that is not staged".into(),
        })?;
        if !matches!(content, Item::File { .. } | Item::Generated { .. }) {
            return Err(Error::Output {
                path: to.to_path_buf(),
                reason: "a hard link in the plan points at something that is not a file".into(),
            });
        }
        let own = archive_name(to);
        let first = links.iter().chain(std::iter::once(&own)).min().cloned();
        if let Some(first) = first {
            carrier.insert(*to, first);
        }
    }

    let mut out = Vec::with_capacity(list.len());
    for (name, path, item) in &list {
        let (group, content) = match item {
            Item::Hardlink { to } => (Some(to.as_path()), plan.items.get(to)),
            _ if carrier.contains_key(path) => (Some(*path), Some(*item)),
            _ => (None, Some(*item)),
        };
        if let Some(g) = group {
            let first = carrier.get(g).cloned().unwrap_or_default();
            if &first != name {
                let mode = match content {
                    Some(Item::File { mode, .. } | Item::Generated { mode, .. }) => *mode,
                    _ => 0o644,
                };
                out.push(Entry {
                    name: name.clone(),
                    mode,
                    kind: EntryKind::Hardlink(first),
                });
                continue;
            }
        }
        let entry = match content {
            Some(Item::Dir { mode }) => Entry {
                name: name.clone(),
                mode: *mode,
                kind: EntryKind::Dir,
            },
            Some(Item::File { source, mode, .. }) => Entry {
                name: name.clone(),
                mode: *mode,
                kind: EntryKind::File(source.clone()),
            },
            Some(Item::Generated { bytes, mode }) => Entry {
                name: name.clone(),
                mode: *mode,
                kind: EntryKind::Generated(bytes.clone()),
            },
            Some(Item::Symlink { target }) => Entry {
                name: name.clone(),
                mode: 0o777,
                kind: EntryKind::Symlink(target.as_os_str().as_bytes().to_vec()),
            },
            Some(Item::Hardlink { .. }) | None => {
                return Err(Error::Output {
                    path: path.to_path_buf(),
                    reason: "a hard link in the plan leads to another hard link".into(),
                })
            }
        };
        out.push(entry);
    }
    Ok(out)
}

/// Writes `plan` as an uncompressed tar stream to `out`; returns the number
/// of bytes written. Regular files are read from `fs` while writing.
pub fn write_tar(
    fs: &RootFs,
    plan: &Plan,
    opts: &LayerOptions,
    out: &mut dyn Write,
) -> Result<u64> {
    let list = entries(plan)?;
    let mut w = Counting { inner: out, n: 0 };
    for e in &list {
        write_entry(fs, e, opts, &mut w)?;
    }
    w.write_all(&[0u8; 2 * BLOCK])
        .map_err(|e| Error::io("<layer>", e))?;
    Ok(w.n)
}

/// Wraps `out` in the layer's gzip encoder (fixed level, `MTIME` 0, no name,
/// fixed OS byte).
pub fn gzip<W: Write>(out: W) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS)
        .write(out, flate2::Compression::new(GZIP_LEVEL))
}

/// A writer that counts what passes through.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    n: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_entry(fs: &RootFs, e: &Entry, opts: &LayerOptions, w: &mut dyn Write) -> Result<()> {
    let werr = |err: io::Error| Error::io(bytes_path(&e.name), err);
    match &e.kind {
        EntryKind::Dir => {
            let mut name = e.name.clone();
            name.push(b'/');
            write_header(w, &Head::new(&name, e.mode, opts.mtime, b'5')).map_err(werr)
        }
        EntryKind::Symlink(target) => {
            let h = Head {
                linkname: target,
                ..Head::new(&e.name, e.mode, opts.mtime, b'2')
            };
            write_header(w, &h).map_err(werr)
        }
        EntryKind::Hardlink(to) => {
            let h = Head {
                linkname: to,
                ..Head::new(&e.name, e.mode, opts.mtime, b'1')
            };
            write_header(w, &h).map_err(werr)
        }
        EntryKind::Generated(bytes) => {
            let h = Head {
                size: bytes.len() as u64,
                ..Head::new(&e.name, e.mode, opts.mtime, b'0')
            };
            write_header(w, &h).map_err(werr)?;
            w.write_all(bytes).map_err(werr)?;
            pad(w, bytes.len() as u64).map_err(werr)
        }
        EntryKind::File(source) => {
            let f = fs.open(source).map_err(|err| Error::Output {
                path: source.clone(),
                reason: format!("cannot read from the sysroot: {err}"),
            })?;
            let size = f.meta.len();
            // File capabilities travel with the file, as staging keeps them.
            let caps = crate::audit::caps::read_fd(&f.file).map_err(|err| Error::Output {
                path: source.clone(),
                reason: format!("cannot read its file capabilities in the sysroot: {err}"),
            })?;
            let h = Head {
                size,
                caps: caps.as_deref(),
                ..Head::new(&e.name, e.mode, opts.mtime, b'0')
            };
            write_header(w, &h).map_err(werr)?;
            let copied = io::copy(&mut (&f.file).take(size), w).map_err(|err| Error::Io {
                path: source.clone(),
                source: err,
            })?;
            if copied != size {
                return Err(Error::Output {
                    path: source.clone(),
                    reason: format!("file shrank while being read ({copied} of {size} bytes)"),
                });
            }
            pad(w, size).map_err(werr)
        }
    }
}

fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

/// Zero bytes up to the next block boundary after `len` bytes of data.
fn pad(w: &mut dyn Write, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// Writes `value` as zero-padded octal filling `field` but its last byte,
/// which is NUL. The caller made sure it fits.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let mut v = value;
    for i in (0..digits).rev() {
        field[i] = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    field[digits] = 0;
}

/// One PAX record: `"<len> <key>=<value>\n"`, where `<len>` counts the
/// whole record including its own digits.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    loop {
        let total = body + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    let mut r = Vec::with_capacity(len);
    r.extend_from_slice(len.to_string().as_bytes());
    r.push(b' ');
    r.extend_from_slice(key.as_bytes());
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// The name of the PAX header of entry `name`: `PaxHeaders/` and as much of
/// the entry's final component as fits in the 100-byte field.
fn pax_name(name: &[u8]) -> Vec<u8> {
    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    let last = trimmed.rsplit(|&c| c == b'/').next().unwrap_or(trimmed);
    let mut n = b"PaxHeaders/".to_vec();
    let room = 100 - n.len();
    n.extend_from_slice(&last[..last.len().min(room)]);
    n
}

/// The fields of one entry's header.
struct Head<'a> {
    name: &'a [u8],
    mode: u32,
    size: u64,
    mtime: u64,
    typeflag: u8,
    linkname: &'a [u8],
    /// The raw `security.capability` value of a regular file, if any.
    caps: Option<&'a [u8]>,
}

impl<'a> Head<'a> {
    /// A header of `typeflag` with no size, link or capabilities.
    fn new(name: &'a [u8], mode: u32, mtime: u64, typeflag: u8) -> Self {
        Head {
            name,
            mode,
            size: 0,
            mtime,
            typeflag,
            linkname: b"",
            caps: None,
        }
    }
}

/// Writes the header block(s) of one entry: a PAX extended header first
/// when a field does not fit the ustar header, or for file capabilities.
fn write_header(w: &mut dyn Write, h: &Head<'_>) -> io::Result<()> {
    let Head {
        name,
        mode,
        size,
        mtime,
        typeflag,
        linkname,
        caps,
    } = *h;
    let mut records = Vec::new();
    if let Some(value) = caps {
        // How GNU tar, umoci and the OCI tools carry extended attributes.
        records.extend(pax_record("SCHILY.xattr.security.capability", value));
    }
    if name.len() > 100 {
        records.extend(pax_record("path", name));
    }
    if linkname.len() > 100 {
        records.extend(pax_record("linkpath", linkname));
    }
    if size > MAX_OCTAL_11 {
        records.extend(pax_record("size", size.to_string().as_bytes()));
    }
    if mtime > MAX_OCTAL_11 {
        records.extend(pax_record("mtime", mtime.to_string().as_bytes()));
    }
    let mtime_field = mtime.min(MAX_OCTAL_11);
    if !records.is_empty() {
        let block = ustar_block(
            &pax_name(name),
            0o644,
            records.len() as u64,
            mtime_field,
            b'x',
            b"",
        );
        w.write_all(&block)?;
        w.write_all(&records)?;
        pad(w, records.len() as u64)?;
    }
    let size_field = if size > MAX_OCTAL_11 { 0 } else { size };
    let block = ustar_block(name, mode, size_field, mtime_field, typeflag, linkname);
    w.write_all(&block)
}

/// One ustar header block. Fields that are too long are cut (a PAX record
/// holds the full value); numbers must fit.
fn ustar_block(
    name: &[u8],
    mode: u32,
    size: u64,
    mtime: u64,
    typeflag: u8,
    linkname: &[u8],
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(mode & 0o7777));
    octal(&mut h[108..116], 0); // uid
    octal(&mut h[116..124], 0); // gid
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    let l = linkname.len().min(100);
    h[157..157 + l].copy_from_slice(&linkname[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // uname, gname (265..329) stay empty.
    octal(&mut h[329..337], 0); // devmajor
    octal(&mut h[337..345], 0); // devminor
                                // prefix (345..500) stays empty: long names use PAX.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    octal(&mut h[148..155], u64::from(sum));
    h[155] = b' ';
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_record("path", b"abc");
        assert_eq!(r, b"12 path=abc\n");
        let long = vec![b'x'; 95];
        let r = pax_record("path", &long);
        let len: usize = std::str::from_utf8(&r[..r.iter().position(|&c| c == b' ').unwrap()])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, r.len());
    }

    #[test]
    fn header_checksum_and_fields() {
        let h = ustar_block(b"usr/bin/x", 0o4755, 10, 0, b'0', b"");
        assert_eq!(&h[100..108], b"0004755\0");
        assert_eq!(&h[124..136], b"00000000012\0");
        let stored = std::str::from_utf8(&h[148..154]).unwrap();
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        let sum: u32 = copy.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
    }

    #[test]
    fn order_puts_parents_first_and_links_after_their_file() {
        let mut plan = Plan::default();
        plan.items.insert("/a".into(), Item::Dir { mode: 0o755 });
        plan.items.insert("/a/b".into(), Item::Dir { mode: 0o755 });
        plan.items.insert("/a-c".into(), Item::Dir { mode: 0o700 });
        plan.items.insert(
            "/a/b/z".into(),
            Item::Generated {
                bytes: b"z".to_vec(),
                mode: 0o644,
            },
        );
        plan.items.insert(
            "/a-c/y".into(),
            Item::Hardlink {
                to: "/a/b/z".into(),
            },
        );
        let e = entries(&plan).unwrap();
        let names: Vec<&[u8]> = e.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, vec![&b"a"[..], b"a-c", b"a-c/y", b"a/b", b"a/b/z"]);
        assert_eq!(e[2].kind, EntryKind::Generated(b"z".to_vec()));
        assert_eq!(e[4].kind, EntryKind::Hardlink(b"a-c/y".to_vec()));
    }

    #[test]
    fn long_names_get_a_pax_header() {
        let name = vec![b'n'; 150];
        let mut out = Vec::new();
        write_header(&mut out, &Head::new(&name, 0o644, 0, b'0')).unwrap();
        assert_eq!(out.len(), 3 * BLOCK);
        assert_eq!(out[156], b'x');
        assert!(out[..100].starts_with(b"PaxHeaders/nnn"));
        assert!(out[BLOCK..2 * BLOCK].starts_with(b"160 path=nnn"));
    }
}
