//! Root-confined, read-only access to a root filesystem.
//!
//! `RootFs` owns every read the library makes from the sysroot. Paths handed
//! to it are *in-root* paths (`/usr/lib/libz.so.1`), interpreted as if the
//! process had `chroot`ed into the sysroot: symlinks are followed component by
//! component by this module itself (never by the host kernel), absolute link
//! targets restart at the sysroot, `..` never climbs above it, and more than
//! [`MAX_SYMLINK_HOPS`] links in one lookup is a loop error (the kernel's own
//! limit). Only the final, symlink-free path is ever handed to the OS, and
//! files are opened with `O_NOFOLLOW | O_NONBLOCK` after checking they are
//! regular files, so a FIFO or device posing as a library can never block.
//! The open is made beneath a descriptor of the sysroot with no link followed
//! on the way (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, else one
//! `openat` per component), so a directory swapped for a link after the walk
//! checked it fails the open instead of leading outside the sysroot.
//!
//! It never writes, never executes, and never reads anything of the host
//! outside the sysroot (when the sysroot is `/`, the host *is* the root).

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// How many symlinks one lookup may traverse before it is a loop (Linux: 40).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Why a lookup inside the root failed. Mirrors the `errno` values the
/// loader distinguishes (ENOENT, ENOTDIR, EACCES, ELOOP, anything else).
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// A component does not exist (ENOENT).
    #[error("no such file or directory")]
    NotFound,
    /// A non-final component is not a directory (ENOTDIR).
    #[error("not a directory")]
    NotADirectory,
    /// Too many symbolic links (ELOOP).
    #[error("too many levels of symbolic links")]
    Loop,
    /// Permission denied (EACCES).
    #[error("permission denied")]
    PermissionDenied,
    /// Any other I/O error.
    #[error("{0}")]
    Io(io::Error),
}

impl LookupError {
    fn from_io(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => LookupError::NotFound,
            io::ErrorKind::PermissionDenied => LookupError::PermissionDenied,
            io::ErrorKind::NotADirectory => LookupError::NotADirectory,
            _ => match e.raw_os_error() {
                Some(libc::ELOOP) => LookupError::Loop,
                Some(libc::ENOTDIR) => LookupError::NotADirectory,
                _ => LookupError::Io(e),
            },
        }
    }

    /// Whether the glibc loader would go on to the next directory after
    /// this error (ENOENT, ENOTDIR, EACCES) rather than give up on the list.
    pub fn is_soft(&self) -> bool {
        matches!(
            self,
            LookupError::NotFound | LookupError::NotADirectory | LookupError::PermissionDenied
        )
    }
}

/// One symbolic link traversed during a lookup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hop {
    /// In-root path of the link itself; its parent directories are canonical.
    pub link: PathBuf,
    /// The link's target, byte for byte as stored.
    pub target: PathBuf,
}

/// The outcome of a successful lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The canonical in-root path: absolute, no `.`/`..`, no symlinks
    /// (except a final one when the lookup did not follow it).
    pub canonical: PathBuf,
    /// Every link traversed, in order.
    pub hops: Vec<Hop>,
    /// Every directory entered on the way (canonical), in order; a staged
    /// copy needs them all for the same path to resolve (`a/x/../b`).
    /// Filled by [`RootFs::resolve`] and [`RootFs::resolve_nofollow`];
    /// empty from the lookups of [`RootFs::metadata`], [`RootFs::open`] and
    /// the rest (the tracer's millions of lookups never read it).
    pub dirs: Vec<PathBuf>,
}

/// Read-only view of a directory tree as a root filesystem.
#[derive(Debug, Clone)]
pub struct RootFs {
    host_root: PathBuf,
    /// The sysroot directory itself, held open (`O_PATH`): every file is
    /// opened beneath it, so the kernel enforces the confinement the walk
    /// computed ([`open_beneath`]).
    root_dir: std::sync::Arc<OwnedFd>,
    /// What each in-root path looked like the first time it was walked
    /// through (the sysroot is taken as unchanging for one run).
    /// Read on every component of every lookup, written once per path:
    /// readers do not wait for each other.
    seen: std::sync::Arc<std::sync::RwLock<SeenMap>>,
}

/// What the walk has seen, by in-root path (foldhash: SipHash showed in
/// profiles).
/// Keyed by the path's bytes (`Path`'s own hash goes component by component).
type SeenMap = std::collections::HashMap<OsString, Seen, foldhash::quality::RandomState>;

/// The kind of one path component, as the walk needs it.
#[derive(Debug, Clone)]
enum Seen {
    Dir,
    Link(PathBuf),
    /// Neither directory nor link, with its `lstat` (never cached).
    Other(std::sync::Arc<Metadata>),
    Missing,
}

impl RootFs {
    /// Opens `dir` as a root. Fails if it does not exist or is not a directory.
    pub fn new(dir: &Path) -> Result<RootFs> {
        let meta = std::fs::metadata(dir).map_err(|e| Error::Sysroot {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(Error::Sysroot {
                path: dir.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        // The sysroot itself may be given through a symlink on the host; the
        // host resolves that one path, nothing below it.
        let host_root = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let root_dir = rustix::fs::open(
            &host_root,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::io(&host_root, io::Error::from(e)))?;
        Ok(RootFs {
            host_root,
            root_dir: std::sync::Arc::new(root_dir),
            seen: std::sync::Arc::new(std::sync::RwLock::new(SeenMap::with_capacity_and_hasher(
                1024,
                Default::default(),
            ))),
        })
    }

    /// The host directory that is `/` inside this root.
    pub fn host_root(&self) -> &Path {
        &self.host_root
    }

    /// The host path of an in-root path, without resolving anything. Only
    /// meaningful for canonical in-root paths.
    ///
    /// Works on bytes (`Path::strip_prefix` and `join` go component by
    /// component, and every lookup and open comes through here).
    pub fn host_path(&self, in_root: &Path) -> PathBuf {
        let bytes = in_root.as_os_str().as_bytes();
        let start = bytes.iter().position(|&b| b != b'/').unwrap_or(bytes.len());
        let rel = &bytes[start..];
        if rel.is_empty() {
            return self.host_root.clone();
        }
        let root = self.host_root.as_os_str().as_bytes();
        let mut out = Vec::with_capacity(root.len() + 1 + rel.len());
        out.extend_from_slice(root);
        if !root.ends_with(b"/") {
            out.push(b'/');
        }
        out.extend_from_slice(rel);
        PathBuf::from(OsString::from_vec(out))
    }

    /// Resolves `path` (relative paths are taken from `/`), following every
    /// symlink, including a final one.
    pub fn resolve(&self, path: &Path) -> Result<Resolved, LookupError> {
        self.walk(path, true)
    }

    /// Resolves the directories of `path` but not a final symlink (`lstat`
    /// semantics): the result names the link itself when `path` is one.
    pub fn resolve_nofollow(&self, path: &Path) -> Result<Resolved, LookupError> {
        self.walk(path, false)
    }

    fn walk(&self, path: &Path, follow_last: bool) -> Result<Resolved, LookupError> {
        self.walk_meta(path, follow_last, true).map(|(r, _)| r)
    }

    /// [`walk`](Self::walk), also giving the final component's `lstat` when
    /// the walk took one (it is not a directory or link).
    ///
    /// Works on bytes in two reused buffers: components are slices of the
    /// path or of a link target already kept for the hop, so a walk through
    /// cached directories allocates only what it returns.
    fn walk_meta(
        &self,
        path: &Path,
        follow_last: bool,
        want_dirs: bool,
    ) -> Result<(Resolved, Option<std::sync::Arc<Metadata>>), LookupError> {
        /// Where the bytes of a pending string are: the path asked for, or
        /// the target of a hop taken.
        #[derive(Clone, Copy)]
        enum From {
            Path,
            Hop(usize),
        }
        fn bytes<'a>(path: &'a [u8], hops: &'a [Hop], from: From) -> &'a [u8] {
            match from {
                From::Path => path,
                From::Hop(i) => hops[i].target.as_os_str().as_bytes(),
            }
        }
        /// Whether `rest` holds a component other than `.`.
        fn has_component(rest: &[u8]) -> bool {
            rest.split(|&b| b == b'/')
                .any(|c| !c.is_empty() && c != b".")
        }
        let path_bytes = path.as_os_str().as_bytes();
        let mut last_meta = None;
        // Strings still to walk, the innermost (latest link) last, each
        // with how much of it is consumed.
        let mut pending: Vec<(From, usize)> = vec![(From::Path, 0)];
        let mut current: Vec<u8> = Vec::with_capacity(path_bytes.len() + 16);
        current.push(b'/');
        let mut candidate: Vec<u8> = Vec::with_capacity(path_bytes.len() + 16);
        let mut hops: Vec<Hop> = Vec::new();
        let mut dirs = Vec::new();
        // A plain path whose directory is one the walk already entered
        // starts at its last component: the walk from the root would
        // reach exactly that state (see `known_dir`).
        if let Some(parent) = self.known_dir(path_bytes) {
            current.clear();
            current.extend_from_slice(parent);
            pending[0].1 = parent.len();
            if want_dirs {
                for (i, &b) in parent.iter().enumerate().skip(1) {
                    if b == b'/' {
                        dirs.push(PathBuf::from(OsStr::from_bytes(&parent[..i])));
                    }
                }
                dirs.push(PathBuf::from(OsStr::from_bytes(parent)));
            }
        }
        while let Some(&mut (from, ref mut at)) = pending.last_mut() {
            let all = bytes(path_bytes, &hops, from);
            let rest = &all[*at..];
            let start = rest.iter().position(|&b| b != b'/').unwrap_or(rest.len());
            let len = rest[start..]
                .iter()
                .position(|&b| b == b'/')
                .unwrap_or(rest.len() - start);
            let (c0, c1) = (*at + start, *at + start + len);
            *at = c1;
            if len == 0 {
                pending.pop();
                continue;
            }
            let comp = &all[c0..c1];
            if comp == b"." {
                continue;
            }
            if comp == b".." {
                // `..` is clamped at the root.
                let slash = current.iter().rposition(|&b| b == b'/').unwrap_or(0);
                current.truncate(slash.max(1));
                continue;
            }
            candidate.clear();
            candidate.extend_from_slice(&current);
            if candidate.len() > 1 {
                candidate.push(b'/');
            }
            candidate.extend_from_slice(comp);
            let seen = self.lstat(Path::new(OsStr::from_bytes(&candidate)))?;
            let is_last = pending
                .iter()
                .all(|&(f, at)| !has_component(&bytes(path_bytes, &hops, f)[at..]));
            // A last component followed by `/` or `/.` must be a directory,
            // and a link there is followed even by an `lstat` (the kernel's
            // rule: `lib.so/` is "not a directory").
            let must_be_dir = is_last
                && pending
                    .iter()
                    .any(|&(f, at)| at < bytes(path_bytes, &hops, f).len());
            if let (Seen::Link(target), true) = (&seen, follow_last || !is_last || must_be_dir) {
                if hops.len() >= MAX_SYMLINK_HOPS {
                    return Err(LookupError::Loop);
                }
                if target.as_os_str().as_bytes().first() == Some(&b'/') {
                    current.truncate(1);
                }
                hops.push(Hop {
                    link: PathBuf::from(OsString::from_vec(candidate.clone())),
                    target: target.clone(),
                });
                pending.push((From::Hop(hops.len() - 1), 0));
                continue;
            }
            if !is_last || must_be_dir {
                if !matches!(seen, Seen::Dir) {
                    return Err(LookupError::NotADirectory);
                }
                if !is_last && want_dirs {
                    dirs.push(PathBuf::from(OsString::from_vec(candidate.clone())));
                }
                last_meta = None;
            } else {
                last_meta = match seen {
                    Seen::Other(m) => Some(m),
                    _ => None,
                };
            }
            std::mem::swap(&mut current, &mut candidate);
        }
        Ok((
            Resolved {
                canonical: PathBuf::from(OsString::from_vec(current)),
                hops,
                dirs,
            },
            last_meta,
        ))
    }

    /// The directory part of `path` when the walk can start at its last
    /// component: `path` is absolute and plain (no empty, `.` or `..`
    /// component, no trailing `/`), below a directory of at least one
    /// component, and that directory is remembered as [`Seen::Dir`]. Only
    /// canonical paths are remembered, each reached from the root through
    /// directories alone, so walking the directory part from the root
    /// (the sysroot being unchanged during a run) enters each of its
    /// prefixes and ends in it with no link taken.
    fn known_dir<'p>(&self, path: &'p [u8]) -> Option<&'p [u8]> {
        let rest = path.strip_prefix(b"/")?;
        let slash = path.iter().rposition(|&b| b == b'/')?;
        let (parent, name) = (&path[..slash], &path[slash + 1..]);
        if slash == 0 || matches!(name, b"" | b"." | b"..") {
            return None;
        }
        let plain = rest[..slash - 1]
            .split(|&b| b == b'/')
            .all(|c| !matches!(c, b"" | b"." | b".."));
        if !plain {
            return None;
        }
        let m = self.seen.read().ok()?;
        matches!(m.get(OsStr::from_bytes(parent)), Some(Seen::Dir)).then_some(parent)
    }

    /// `lstat` of one in-root path whose parents are canonical, memoised.
    fn lstat(&self, candidate: &Path) -> Result<Seen, LookupError> {
        if let Some(s) = self
            .seen
            .read()
            .ok()
            .and_then(|m| m.get(candidate.as_os_str()).cloned())
        {
            return match s {
                Seen::Missing => Err(LookupError::NotFound),
                s => Ok(s),
            };
        }
        let host = self.host_path(candidate);
        let seen = match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                Seen::Link(std::fs::read_link(&host).map_err(LookupError::from_io)?)
            }
            Ok(m) if m.is_dir() => Seen::Dir,
            Ok(m) => Seen::Other(std::sync::Arc::new(m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Seen::Missing,
            Err(e) => return Err(LookupError::from_io(e)),
        };
        // Directories, links and files that exist are remembered (the
        // sysroot is taken as unchanging during a run): every lookup walks
        // through the first two, and tracing, planning, auditing and copying
        // each look at every staged file. Absent names are not: a run may
        // look for a name, and a caller create it, between two lookups.
        if matches!(seen, Seen::Dir | Seen::Link(_) | Seen::Other(_)) {
            if let Ok(mut m) = self.seen.write() {
                m.insert(candidate.as_os_str().to_os_string(), seen.clone());
            }
        }
        match seen {
            Seen::Missing => Err(LookupError::NotFound),
            s => Ok(s),
        }
    }

    /// `stat` inside the root: resolves all links and returns the metadata of
    /// what they lead to.
    pub fn metadata(&self, path: &Path) -> Result<(Resolved, Metadata), LookupError> {
        let (r, m) = self.walk_meta(path, true, false)?;
        let m = match m {
            Some(m) => (*m).clone(),
            None => std::fs::symlink_metadata(self.host_path(&r.canonical))
                .map_err(LookupError::from_io)?,
        };
        Ok((r, m))
    }

    /// `lstat` inside the root.
    pub fn symlink_metadata(&self, path: &Path) -> Result<(Resolved, Metadata), LookupError> {
        let (r, m) = self.walk_meta(path, false, false)?;
        let m = match m {
            Some(m) => (*m).clone(),
            None => std::fs::symlink_metadata(self.host_path(&r.canonical))
                .map_err(LookupError::from_io)?,
        };
        Ok((r, m))
    }

    /// Opens a regular file for reading. Anything else (directory, FIFO,
    /// socket, device) is refused without being opened, so nothing blocks.
    pub fn open(&self, path: &Path) -> Result<OpenFile, OpenError> {
        let (resolved, meta) = self.metadata(path).map_err(OpenError::Lookup)?;
        if !meta.file_type().is_file() {
            return Err(OpenError::NotRegular(describe_type(&meta)));
        }
        let file = open_beneath(
            &self.root_dir,
            resolved.canonical.as_os_str().as_bytes(),
            Beneath::Kernel,
        )
        .map_err(|e| OpenError::Lookup(changed_or(e)))?;
        // Re-check after opening: the file may have been swapped meanwhile.
        let opened = file
            .metadata()
            .map_err(|e| OpenError::Lookup(LookupError::Io(e)))?;
        if !opened.file_type().is_file() {
            return Err(OpenError::NotRegular(describe_type(&opened)));
        }
        Ok(OpenFile {
            file,
            resolved,
            meta: opened,
        })
    }

    /// Reads a whole regular file of at most `limit` bytes.
    pub fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, OpenError> {
        use std::io::Read;
        let f = self.open(path)?;
        if f.meta.len() > limit {
            return Err(OpenError::TooLarge(f.meta.len()));
        }
        let mut buf = Vec::with_capacity(f.meta.len() as usize);
        (&f.file)
            .take(limit)
            .read_to_end(&mut buf)
            .map_err(|e| OpenError::Lookup(LookupError::Io(e)))?;
        Ok(buf)
    }

    /// Reads at most the first `n` bytes of a regular file.
    pub fn read_head(&self, path: &Path, n: u64) -> Result<Vec<u8>, OpenError> {
        use std::io::Read;
        let f = self.open(path)?;
        let mut buf = Vec::new();
        (&f.file)
            .take(n)
            .read_to_end(&mut buf)
            .map_err(|e| OpenError::Lookup(LookupError::Io(e)))?;
        Ok(buf)
    }

    /// Lists a directory (following links to it), sorted by name bytes.
    pub fn read_dir(&self, path: &Path) -> Result<(Resolved, Vec<OsString>), LookupError> {
        let (r, meta) = self.metadata(path)?;
        if !meta.is_dir() {
            return Err(LookupError::NotADirectory);
        }
        let mut names = Vec::new();
        for entry in
            std::fs::read_dir(self.host_path(&r.canonical)).map_err(LookupError::from_io)?
        {
            let entry = entry.map_err(LookupError::from_io)?;
            names.push(entry.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Ok((r, names))
    }

    /// Whether `path` names an existing directory (after following links).
    pub fn is_dir(&self, path: &Path) -> bool {
        matches!(self.metadata(path), Ok((_, m)) if m.is_dir())
    }

    /// Maps a host path below the root back to its in-root path.
    pub fn in_root_of_host(&self, host: &Path) -> Option<PathBuf> {
        let rel = host.strip_prefix(&self.host_root).ok()?;
        Some(Path::new("/").join(rel))
    }
}

/// How [`open_beneath`] keeps an open below the sysroot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beneath {
    /// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
    /// RESOLVE_NO_MAGICLINKS`, falling back to [`Beneath::Walk`] where the
    /// kernel has no `openat2` (before Linux 5.6, or a seccomp filter that
    /// refuses it).
    Kernel,
    /// One `openat` per component from the sysroot's descriptor, each
    /// directory with `O_DIRECTORY | O_NOFOLLOW`.
    Walk,
}

/// Set once `openat2` has been refused as unknown: later opens walk.
static NO_OPENAT2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Opens the canonical in-root path `path` (absolute, symlink-free, as the
/// walk resolved it) for reading, beneath the sysroot's descriptor `root`,
/// without following any symbolic link: `O_RDONLY | O_NOFOLLOW |
/// O_NONBLOCK | O_CLOEXEC`. The walk checked each component with `lstat`;
/// if one has since been replaced by a link (to a file outside the
/// sysroot, say), the open fails with `ELOOP` instead of following it.
fn open_beneath(root: &OwnedFd, path: &[u8], how: Beneath) -> io::Result<File> {
    use rustix::fs::OFlags;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    open_below(root.as_fd(), path, flags, how).map(File::from)
}

/// Opens `path` (its components taken relative to `dir`; empty, `.` and a
/// leading `/` are skipped, `..` is refused with `EXDEV`) beneath the
/// directory `dir`, following no symbolic link on the way or at the end,
/// with the open flags `flags` for the last component. A link on the way
/// fails with `ELOOP`. Used for every read of the sysroot and every write
/// below `--out` (`stage::copy`).
pub(crate) fn open_below(
    dir: BorrowedFd<'_>,
    path: &[u8],
    flags: rustix::fs::OFlags,
    how: Beneath,
) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if parts.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if parts.iter().any(|c| *c == b"..") {
        // Checked paths have none; never climb.
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    let flags = flags | OFlags::NOFOLLOW;
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    if how == Beneath::Kernel && !NO_OPENAT2.load(relaxed) {
        let rel = parts.join(&b'/');
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        return match rustix::fs::openat2(dir, rel.as_slice(), flags, Mode::empty(), resolve) {
            Ok(fd) => Ok(fd),
            // Unknown to this kernel, or refused by a seccomp filter (older
            // container runtimes answer EPERM): the walk decides.
            Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::PERM => {
                let walked = open_below(dir, path, flags, Beneath::Walk);
                if e == rustix::io::Errno::NOSYS || walked.is_ok() {
                    NO_OPENAT2.store(true, relaxed);
                }
                walked
            }
            Err(e) => Err(e.into()),
        };
    }
    let (last, dirs) = parts.split_last().expect("not empty");
    let mut at: Option<OwnedFd> = None;
    for part in dirs {
        let from = at.as_ref().map_or(dir, |d| d.as_fd());
        // `O_PATH` needs no read permission (traversal is what counts); a
        // link there is then "not a directory": it was checked to be a
        // directory, so it changed.
        let next = rustix::fs::openat(
            from,
            *part,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOTDIR => io::Error::from_raw_os_error(libc::ELOOP),
            e => e.into(),
        })?;
        at = Some(next);
    }
    let from = at.as_ref().map_or(dir, |d| d.as_fd());
    Ok(rustix::fs::openat(from, *last, flags, Mode::empty())?)
}

/// The lookup error of a failed [`open_beneath`]: `ELOOP` and `EXDEV` mean
/// a component of the checked path became a symbolic link (or left the
/// sysroot) after the walk, i.e. the sysroot changed during the run.
fn changed_or(e: io::Error) -> LookupError {
    match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::EXDEV) => LookupError::Io(io::Error::other(
            "the path changed during the run: a directory on it became a symbolic link",
        )),
        _ => LookupError::from_io(e),
    }
}

/// A regular file opened inside the root.
#[derive(Debug)]
pub struct OpenFile {
    /// The open file.
    pub file: File,
    /// How its path was resolved.
    pub resolved: Resolved,
    /// Its metadata, taken from the open descriptor.
    pub meta: Metadata,
}

/// Why a file could not be opened for reading.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The lookup failed.
    #[error("{0}")]
    Lookup(LookupError),
    /// The path names something that is not a regular file.
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    /// The file is larger than the caller allows.
    #[error("file too large ({0} bytes)")]
    TooLarge(u64),
}

/// A short word for a file's type, for messages.
pub fn describe_type(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_symlink() {
        "symbolic link"
    } else {
        "regular file"
    }
}

/// Joins an in-root directory and a name the way the loader builds a
/// candidate (`dir + "/" + name`), without any normalisation.
pub fn join_bytes(dir: &[u8], name: &[u8]) -> PathBuf {
    let mut v = dir.to_vec();
    if !v.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    PathBuf::from(OsString::from_vec(v))
}

/// Normalises an in-root path lexically: makes it absolute, removes `.`,
/// empty components and `..` (clamped at `/`). Does not touch the disk.
pub fn lexical_normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, RootFs) {
        let t = tempfile::tempdir().unwrap();
        let fs = RootFs::new(t.path()).unwrap();
        (t, fs)
    }

    /// A sysroot whose `lib` directory holds `libx.so.1`, and beside it an
    /// `outside` directory with a file of the same name.
    fn swap_fixture() -> (tempfile::TempDir, std::path::PathBuf, RootFs) {
        let t = tempfile::tempdir().unwrap();
        let sysroot = t.path().join("sysroot");
        std::fs::create_dir_all(sysroot.join("lib")).unwrap();
        std::fs::create_dir_all(t.path().join("outside")).unwrap();
        std::fs::write(sysroot.join("lib/libx.so.1"), b"inside").unwrap();
        std::fs::write(t.path().join("outside/libx.so.1"), b"outside").unwrap();
        let fs = RootFs::new(&sysroot).unwrap();
        (t, sysroot, fs)
    }

    /// Replaces the sysroot's `lib` by a link to the directory outside it.
    fn swap_lib_for_a_link(t: &tempfile::TempDir, sysroot: &Path) {
        std::fs::rename(sysroot.join("lib"), sysroot.join("lib.old")).unwrap();
        symlink(t.path().join("outside"), sysroot.join("lib")).unwrap();
    }

    #[test]
    fn a_directory_swapped_for_a_link_during_the_run_is_not_followed() {
        let (t, sysroot, fs) = swap_fixture();
        let read = |fs: &RootFs| -> Result<Vec<u8>, OpenError> {
            let f = fs.open(Path::new("/lib/libx.so.1"))?;
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut &f.file, &mut v).unwrap();
            Ok(v)
        };
        assert_eq!(read(&fs).unwrap(), b"inside");
        // The walk remembers `/lib` as a directory for the run; someone
        // swaps it for a link to a directory outside the sysroot. The
        // host's own path lookup would follow it to the outside file.
        swap_lib_for_a_link(&t, &sysroot);
        assert_eq!(
            std::fs::read(sysroot.join("lib/libx.so.1")).unwrap(),
            b"outside"
        );
        let err = read(&fs).unwrap_err();
        assert!(err.to_string().contains("changed during the run"), "{err}");
        // A fresh run walks again: the link is followed inside the root
        // (its absolute target re-rooted), where there is no such file.
        let fresh = RootFs::new(&sysroot).unwrap();
        assert!(matches!(
            read(&fresh),
            Err(OpenError::Lookup(LookupError::NotFound))
        ));
    }

    #[test]
    fn opens_beneath_the_root_refuse_links_both_ways() {
        for how in [Beneath::Kernel, Beneath::Walk] {
            let (t, sysroot, fs) = swap_fixture();
            let root = &fs.root_dir;
            let mut f = open_beneath(root, b"/lib/libx.so.1", how).unwrap();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut v).unwrap();
            assert_eq!(v, b"inside", "{how:?}");
            // A final link, a link on the way, `..`, the root itself.
            symlink("libx.so.1", sysroot.join("lib/liby.so.1")).unwrap();
            let e = open_beneath(root, b"/lib/liby.so.1", how).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{how:?}");
            swap_lib_for_a_link(&t, &sysroot);
            let e = open_beneath(root, b"/lib/libx.so.1", how).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{how:?}");
            let e = open_beneath(root, b"/../outside/libx.so.1", how).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EXDEV), "{how:?}");
            assert!(open_beneath(root, b"/", how).is_err(), "{how:?}");
            // What is still a directory is entered as before.
            let v = std::fs::read(sysroot.join("lib.old/libx.so.1")).unwrap();
            let mut f = open_beneath(root, b"/lib.old/libx.so.1", how).unwrap();
            let mut w = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut w).unwrap();
            assert_eq!(w, v, "{how:?}");
        }
    }

    #[test]
    fn absolute_links_are_rerooted_and_dotdot_clamped() {
        let (t, fs) = root();
        std::fs::create_dir_all(t.path().join("usr/lib")).unwrap();
        std::fs::write(t.path().join("usr/lib/x"), b"x").unwrap();
        symlink("usr/lib", t.path().join("lib")).unwrap();
        symlink("/lib/x", t.path().join("abs")).unwrap();
        symlink("../../../../usr/lib/x", t.path().join("usr/up")).unwrap();
        let r = fs.resolve(Path::new("/abs")).unwrap();
        assert_eq!(r.canonical, Path::new("/usr/lib/x"));
        assert_eq!(r.hops.len(), 2);
        let r = fs.resolve(Path::new("/usr/up")).unwrap();
        assert_eq!(r.canonical, Path::new("/usr/lib/x"));
        let r = fs.resolve(Path::new("/../../usr/lib/x")).unwrap();
        assert_eq!(r.canonical, Path::new("/usr/lib/x"));
    }

    #[test]
    fn loops_are_errors() {
        let (t, fs) = root();
        symlink("b", t.path().join("a")).unwrap();
        symlink("a", t.path().join("b")).unwrap();
        assert!(matches!(
            fs.resolve(Path::new("/a")),
            Err(LookupError::Loop)
        ));
        // lstat semantics still see the link itself.
        let r = fs.resolve_nofollow(Path::new("/a")).unwrap();
        assert_eq!(r.canonical, Path::new("/a"));
    }

    #[test]
    fn dotdot_after_a_directory_link_is_physical() {
        let (t, fs) = root();
        std::fs::create_dir_all(t.path().join("real/dir")).unwrap();
        std::fs::create_dir_all(t.path().join("real/lib")).unwrap();
        std::fs::write(t.path().join("real/lib/f"), b"f").unwrap();
        symlink("/real/dir", t.path().join("d")).unwrap();
        let r = fs.resolve(Path::new("/d/../lib/f")).unwrap();
        assert_eq!(r.canonical, Path::new("/real/lib/f"));
    }

    /// Every path of up to four components over a small tree of relative
    /// links resolves to what the kernel resolves it to, whenever the
    /// kernel stays inside the root (the only place the two agree by
    /// design: `..` is clamped at the root here). Fails if the walk
    /// mishandles `.`, `..`, empty components, a link in the middle or at
    /// the end, a link to `.` or `..`, chains, loops or dangling links.
    #[test]
    fn walks_agree_with_the_kernel_inside_the_root() {
        let (t, fs) = root();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::fs::write(r.join("usr/lib/f"), b"f").unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("../lib", r.join("usr/l2")).unwrap();
        symlink(".", r.join("usr/lib/self")).unwrap();
        symlink("..", r.join("usr/lib/up")).unwrap();
        symlink("f", r.join("usr/lib/ff")).unwrap();
        symlink("ff", r.join("usr/lib/fff")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        symlink("nope", r.join("usr/lib/dangling")).unwrap();
        let host_root = std::fs::canonicalize(r).unwrap();
        let comps = [
            "usr", "lib", "f", "l2", "self", "up", "ff", "fff", "loop1", "dangling", ".", "..", "",
        ];
        let mut paths: Vec<String> = vec![String::new()];
        let mut checked = (0, 0, 0);
        for _ in 0..4 {
            let mut next = Vec::new();
            for p in &paths {
                for c in comps {
                    next.push(format!("{p}/{c}"));
                }
            }
            for p in &next {
                let ours = fs.resolve(Path::new(p));
                let kernel = std::fs::canonicalize(r.join(p.trim_start_matches('/')));
                match kernel {
                    Ok(k) => {
                        let Ok(inside) = k.strip_prefix(&host_root) else {
                            continue; // `..` above the root: clamped here, not there
                        };
                        let want = Path::new("/").join(inside);
                        let got = ours.unwrap_or_else(|e| panic!("{p}: {e}, kernel: {want:?}"));
                        assert_eq!(got.canonical, want, "{p}");
                        for d in &got.dirs {
                            assert!(fs.host_path(d).is_dir(), "{p}: {d:?}");
                        }
                        checked.0 += 1;
                    }
                    Err(_) if !p.split('/').any(|c| c == "..") => {
                        assert!(ours.is_err(), "{p}: kernel fails, walk gives {ours:?}");
                        checked.1 += 1;
                    }
                    Err(_) => {}
                }
                // `lstat` semantics: the parent resolved, the last name kept.
                let (parent, last) = p.rsplit_once('/').unwrap();
                if matches!(last, "" | "." | "..") {
                    continue;
                }
                let host = r.join(p.trim_start_matches('/'));
                let kernel = std::fs::canonicalize(r.join(parent.trim_start_matches('/')))
                    .ok()
                    .filter(|_| std::fs::symlink_metadata(&host).is_ok())
                    .and_then(|k| Some(Path::new("/").join(k.strip_prefix(&host_root).ok()?)));
                if let Some(want) = kernel {
                    let got = fs.resolve_nofollow(Path::new(p)).unwrap();
                    assert_eq!(got.canonical, want.join(last), "{p}");
                    checked.2 += 1;
                }
            }
            paths = next;
        }
        // Every outcome was exercised a lot.
        assert!(
            checked.0 > 500 && checked.1 > 5000 && checked.2 > 300,
            "{checked:?}"
        );
    }

    /// A walk that starts at a remembered directory (`known_dir`) gives
    /// what a walk from the root gives: canonical path, links taken,
    /// directories entered, metadata and errors, for both `stat` and
    /// `lstat` semantics. Every path is looked up twice in a root that has
    /// seen the whole tree (the second time mostly from a remembered
    /// directory) and once in a fresh one. Fails if the fast start loses
    /// a directory, a hop or an error, or is taken where it must not be.
    #[test]
    fn walks_from_a_remembered_directory_match_walks_from_the_root() {
        let (t, warm) = root();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/lib/sub")).unwrap();
        std::fs::write(r.join("usr/lib/f"), b"f").unwrap();
        std::fs::write(r.join("usr/lib/sub/g"), b"g").unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("f", r.join("usr/lib/ff")).unwrap();
        symlink("/usr/lib/sub", r.join("usr/lib/s")).unwrap();
        symlink("..", r.join("usr/lib/sub/up")).unwrap();
        symlink("nope", r.join("usr/lib/dangling")).unwrap();
        std::fs::write(r.join("usr/file"), b"x").unwrap();
        let comps = [
            "usr", "lib", "sub", "f", "ff", "g", "s", "up", "dangling", "file", ".", "..",
        ];
        let mut paths = vec![String::new()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for p in &paths {
                for c in comps {
                    next.push(format!("{p}/{c}"));
                }
            }
            paths.extend(next);
        }
        paths.extend(["/usr//lib/f", "/usr/lib/f/", "/usr/lib/./f", "usr/lib/f"].map(String::from));
        paths.sort();
        paths.dedup();
        let show = |x: Result<Resolved, LookupError>| match x {
            Ok(r) => format!("{:?} {:?} {:?}", r.canonical, r.hops, r.dirs),
            Err(e) => format!("error {e}"),
        };
        let meta = |x: Result<(Resolved, Metadata), LookupError>| match x {
            Ok((r, m)) => format!("{:?} {:?} {}", r.canonical, r.hops, m.len()),
            Err(e) => format!("error {e}"),
        };
        for p in &paths {
            let _ = warm.resolve(Path::new(p));
        }
        let mut fast = 0;
        for p in &paths {
            let path = Path::new(p);
            fast += usize::from(warm.known_dir(p.as_bytes()).is_some());
            let cold = RootFs::new(r).unwrap();
            assert_eq!(show(warm.resolve(path)), show(cold.resolve(path)), "{p}");
            let cold = RootFs::new(r).unwrap();
            assert_eq!(
                show(warm.resolve_nofollow(path)),
                show(cold.resolve_nofollow(path)),
                "{p}"
            );
            let cold = RootFs::new(r).unwrap();
            assert_eq!(meta(warm.metadata(path)), meta(cold.metadata(path)), "{p}");
            let cold = RootFs::new(r).unwrap();
            assert_eq!(
                meta(warm.symlink_metadata(path)),
                meta(cold.symlink_metadata(path)),
                "{p}"
            );
        }
        // The fast start was taken for every plain path below `/usr` and
        // `/usr/lib` (ten names each), and never for what is not plain.
        assert!(fast >= 20, "{fast}");
        for p in [
            "/usr//lib/f",
            "/usr/./lib/f",
            "/usr/lib/../lib/f",
            "usr/lib/f",
            "/usr/lib/",
            "/usr/lib/.",
        ] {
            assert!(warm.known_dir(p.as_bytes()).is_none(), "{p}");
        }
    }

    /// `host_path` on bytes is what `Path::strip_prefix` and `join` give,
    /// for the host root and for a root below it.
    #[test]
    fn host_paths_match_path_joins() {
        let (t, nested) = root();
        let slash = RootFs::new(Path::new("/")).unwrap();
        for in_root in [
            "/",
            "/usr",
            "/usr/lib/x.so",
            "//usr/lib",
            "usr/lib",
            "/a b/ü",
        ] {
            for fs in [&slash, &nested] {
                let p = Path::new(in_root);
                let rel = p.strip_prefix("/").unwrap_or(p);
                let want = if rel.as_os_str().is_empty() {
                    fs.host_root().to_path_buf()
                } else {
                    fs.host_root().join(rel)
                };
                assert_eq!(fs.host_path(p), want, "{in_root}");
            }
        }
        assert_eq!(
            nested.host_path(Path::new("/usr/lib")),
            std::fs::canonicalize(t.path()).unwrap().join("usr/lib")
        );
    }

    #[test]
    fn fifo_is_refused_without_opening() {
        let (t, fs) = root();
        let p = t.path().join("fifo");
        // std has no mkfifo; coreutils' `mkfifo` is on every Debian system.
        let ok = std::process::Command::new("mkfifo").arg(&p).status();
        if !matches!(ok, Ok(s) if s.success()) {
            eprintln!("skipping: mkfifo not available");
            return;
        }
        assert!(matches!(
            fs.open(Path::new("/fifo")),
            Err(OpenError::NotRegular("FIFO"))
        ));
    }
}
