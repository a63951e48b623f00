//! Root-confined, read-only access to a root filesystem.
//!
//! `RootFs` owns every read the library makes from the sysroot. Paths handed
//! to it are *in-root* paths (`/usr/lib/libz.so.1`), interpreted as if the
//! process had `chroot`ed into the sysroot: symlinks are followed component by
//! component by this module itself (never by the host kernel), absolute link
//! targets restart at the sysroot, `..` never climbs above it, and more than
//! [`MAX_SYMLINK_HOPS`] links in one lookup is a loop error (the kernel's own
//! limit). Files are opened with `O_NOFOLLOW | O_NONBLOCK` after checking they
//! are regular files, so a FIFO or device posing as a library can never block.
//!
//! No path is handed to the host kernel to resolve. Every `lstat`, link
//! read, listing and open is made *by one name* in a directory descriptor:
//! the sysroot's own, or a directory of it opened beneath it with no link
//! followed on the way (`openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS`, else one `openat` per component) and then held
//! open for the run (up to [`MAX_HELD_DIRS`]). So a directory swapped for a
//! link while `closure` runs can never lead a read outside the sysroot: one
//! the walk has looked into stays the directory it was, and one it has not
//! fails to open ("the path changed during the run").
//!
//! It never writes, never executes, and never reads anything of the host
//! outside the sysroot (when the sysroot is `/`, the host *is* the root).
//! Files are read with `O_NOATIME` where the kernel allows it (the caller
//! owns them, or has `CAP_FOWNER`, as root does), so a run does not even
//! change their access times.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
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
    /// computed ([`open_below`]).
    root_dir: Arc<OwnedFd>,
    /// Directories the walk has looked into, held open: every `lstat`,
    /// link read, listing and open is made by name in one of them, so it
    /// cannot be led outside the sysroot, and a directory once entered is
    /// the same directory for the rest of the run.
    dirs: Arc<std::sync::RwLock<DirMap>>,
    /// What each in-root path looked like the first time it was walked
    /// through (the sysroot is taken as unchanging for one run).
    /// Read on every component of every lookup, written once per path:
    /// readers do not wait for each other, and writers of paths in other
    /// shards do not wait either.
    seen: Arc<SeenMap>,
    /// Where each plain directory path that the walk reached through a
    /// link led (`/lib/x86_64-linux-gnu`, below the merged-`/usr` link
    /// `/lib`), so that a walk below it starts at its last component as a
    /// walk below a canonical directory does ([`RootFs::known_parent`]).
    walked: Arc<WalkedMap>,
    /// Per thread, the directories it has been handed and the ones it
    /// found to be canonical: after its first use of a directory a thread
    /// neither takes `dirs`' lock nor touches `seen`'s, and the reference
    /// count it changes is its own. Every lookup reads these, from every
    /// thread: shared, their lines went from core to core on each use.
    local: Arc<crate::shard::PerThread<ThreadView>>,
    /// Set once `O_NOATIME` has been refused (a file of another user,
    /// without `CAP_FOWNER`): later opens go without it.
    no_noatime: Arc<std::sync::atomic::AtomicBool>,
}

/// What the walk has seen, by in-root path (foldhash: SipHash showed in
/// profiles).
/// Keyed by the path's bytes (`Path`'s own hash goes component by component).
type SeenMap = crate::shard::ShardedMap<OsString, Seen>;

/// The walks of directories reached through links, by the path walked.
type WalkedMap = crate::shard::ShardedMap<OsString, Arc<WalkedDir>>;

/// A directory path's walk, as it stood when the walk went on below it.
#[derive(Debug)]
struct WalkedDir {
    /// Its canonical path.
    canonical: Vec<u8>,
    /// The links taken to reach it (at least one), in order.
    hops: Vec<Hop>,
    /// The directories entered on the way, when that walk kept them.
    dirs: Option<Vec<PathBuf>>,
}

/// The kind of one path component, as the walk needs it.
#[derive(Debug, Clone)]
enum Seen {
    Dir,
    Link(PathBuf),
    /// Neither directory nor link: its `lstat` fields.
    Other(FileMeta),
    Missing,
}

/// A directory held open, as one thread holds it.
type HeldDir = crate::shard::Held<OwnedFd>;

/// What one thread keeps of a [`RootFs`] for itself.
#[derive(Debug, Default)]
struct ThreadView {
    /// Directories held open (those `dirs` holds), by canonical path.
    fds: hashbrown::HashMap<Box<[u8]>, HeldDir, foldhash::quality::RandomState>,
    /// Directories `seen` holds as [`Seen::Dir`].
    dirs: hashbrown::HashSet<Box<[u8]>, foldhash::quality::RandomState>,
}

/// Directories held open (`O_PATH`), by canonical in-root path.
type DirMap = std::collections::HashMap<OsString, Arc<OwnedFd>, foldhash::quality::RandomState>;

/// At most this many directories are held open by one [`RootFs`]; beyond,
/// a directory is opened for each use (the process's descriptor limit is
/// often 1,024).
pub const MAX_HELD_DIRS: usize = 256;

/// [`RootFs::visit_tree`] holds one descriptor per level it is in, and
/// goes at most this deep.
pub const MAX_TREE_DEPTH: usize = 256;

/// The directory part of `path` when `path` is absolute and plain (no
/// empty, `.` or `..` component, no trailing `/`) and that directory has at
/// least one component: the walk of such a path is the walk of its
/// directory, then one name.
fn plain_parent(path: &[u8]) -> Option<&[u8]> {
    let slash = memchr::memrchr(b'/', path)?;
    let (parent, name) = (&path[..slash], &path[slash + 1..]);
    if slash == 0 || path[0] != b'/' || matches!(name, b"" | b"." | b"..") {
        return None;
    }
    // One pass: each component's length, and whether it is all dots.
    let (mut len, mut dots) = (0usize, true);
    for &b in &parent[1..] {
        if b == b'/' {
            if len == 0 || (dots && len <= 2) {
                return None;
            }
            (len, dots) = (0, true);
        } else {
            len += 1;
            dots &= b == b'.';
        }
    }
    (len != 0 && !(dots && len <= 2)).then_some(parent)
}

impl RootFs {
    /// Opens `dir` as a root. Fails if it does not exist or is not a directory.
    pub fn new(dir: &Path) -> Result<RootFs> {
        Self::with_capacity(dir, 0)
    }

    /// [`RootFs::new`] with room for about `paths` entries in the walk's
    /// memory of what each path is (a hint; the map grows past it). A run
    /// over many roots passes a few per root, so that the map is not
    /// rehashed as it fills; a run over one root passes little, so that it
    /// does not touch memory it will not use (a map sized for the union of
    /// `/usr/bin` was ≈ 30 of the ≈ 300 page faults of a one-program run).
    pub fn with_capacity(dir: &Path, paths: usize) -> Result<RootFs> {
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
            root_dir: Arc::new(root_dir),
            dirs: Default::default(),
            seen: Arc::new(SeenMap::with_capacity(paths)),
            walked: Default::default(),
            local: Default::default(),
            no_noatime: Default::default(),
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
        self.walk_meta(path, follow_last, true).map(|(r, _, _)| r)
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
    ) -> Result<(Resolved, FileType, Option<FileMeta>), LookupError> {
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
        let mut last_kind = FileType::Directory;
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
        // reach exactly that state (see `known_parent`).
        let plain_parent = plain_parent(path_bytes);
        // A plain path below a directory reached through links before
        // starts there too, with the links that walk took: the walk from
        // the root would take the same links and enter the same
        // directories (see `walked`).
        let mut from_walked = false;
        if let Some(parent) = plain_parent.and_then(|p| self.known_parent(p)) {
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
        } else if let Some(parent) = plain_parent {
            let start = self.walked.with(OsStr::from_bytes(parent), |w| {
                let w = w.filter(|w| !want_dirs || w.dirs.is_some())?;
                current.clear();
                current.extend_from_slice(&w.canonical);
                hops.extend_from_slice(&w.hops);
                if let Some(d) = &w.dirs {
                    dirs.extend_from_slice(d);
                }
                Some(())
            });
            if start.is_some() {
                pending[0].1 = parent.len();
                from_walked = true;
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
            // About to take the last component of a plain path, having
            // reached its directory through links: remembered (once).
            if let (Some(parent), From::Path, 1, false) =
                (plain_parent, from, pending.len(), hops.is_empty())
            {
                if c0 == parent.len() + 1 && !from_walked {
                    from_walked = true;
                    let key = OsStr::from_bytes(parent).to_os_string();
                    let walked = Arc::new(WalkedDir {
                        canonical: current.clone(),
                        hops: hops.clone(),
                        dirs: want_dirs.then(|| dirs.clone()),
                    });
                    // A walk that kept its directories replaces one that
                    // did not (the rest is the same).
                    if want_dirs {
                        self.walked.insert(key, walked);
                    } else {
                        self.walked.insert_new(key, walked);
                    }
                }
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
                last_kind = FileType::Directory;
            } else {
                last_meta = None;
                last_kind = match seen {
                    Seen::Other(m) => {
                        last_meta = Some(m);
                        m.file_type
                    }
                    Seen::Link(_) => FileType::Symlink,
                    _ => FileType::Directory,
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
            last_kind,
            last_meta,
        ))
    }

    /// [`known_parent`](Self::known_parent) of `path`'s plain directory
    /// part (tests).
    #[cfg(test)]
    fn known_dir<'p>(&self, path: &'p [u8]) -> Option<&'p [u8]> {
        self.known_parent(plain_parent(path)?)
    }

    /// The directory `parent` (a path's [`plain_parent`]) when a walk
    /// below it can start at the path's last component: it is remembered
    /// as [`Seen::Dir`]. Only canonical paths are remembered, each reached
    /// from the root through directories alone, so walking `parent` from
    /// the root (the sysroot being unchanged during a run) enters each of
    /// its prefixes and ends in it with no link taken.
    fn known_parent<'p>(&self, parent: &'p [u8]) -> Option<&'p [u8]> {
        if self.local.with(|v| v.dirs.contains(parent)) {
            return Some(parent);
        }
        let parent_os = OsStr::from_bytes(parent);
        let known = self.seen.with(parent_os, |s| matches!(s, Some(Seen::Dir)));
        if known {
            self.local.with(|v| v.dirs.insert(parent.into()));
        }
        known.then_some(parent)
    }

    /// `lstat` of one in-root path whose parents are canonical, memoised.
    fn lstat(&self, candidate: &Path) -> Result<Seen, LookupError> {
        if let Some(s) = self.seen.get_cloned(candidate.as_os_str()) {
            return match s {
                Seen::Missing => Err(LookupError::NotFound),
                s => Ok(s),
            };
        }
        let (dir, name) = self.parent_of(candidate.as_os_str().as_bytes())?;
        let seen = match rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => Seen::Link(read_link_at(&dir, name)?),
                FileType::Directory => Seen::Dir,
                _ => Seen::Other(FileMeta::of_stat(&st)),
            },
            Err(rustix::io::Errno::NOENT) => Seen::Missing,
            Err(e) => return Err(LookupError::from_io(e.into())),
        };
        // Directories, links and files that exist are remembered (the
        // sysroot is taken as unchanging during a run): every lookup walks
        // through the first two, and tracing, planning, auditing and copying
        // each look at every staged file. Absent names are not: a run may
        // look for a name, and a caller create it, between two lookups.
        if matches!(seen, Seen::Dir | Seen::Link(_) | Seen::Other(_)) {
            self.seen
                .insert(candidate.as_os_str().to_os_string(), seen.clone());
        }
        match seen {
            Seen::Missing => Err(LookupError::NotFound),
            s => Ok(s),
        }
    }

    /// `stat` inside the root: resolves all links and returns the metadata of
    /// what they lead to.
    pub fn metadata(&self, path: &Path) -> Result<(Resolved, Metadata), LookupError> {
        let (r, _, _) = self.walk_meta(path, true, false)?;
        let m = self.lstat_canonical(&r.canonical)?;
        Ok((r, m))
    }

    /// `lstat` inside the root.
    pub fn symlink_metadata(&self, path: &Path) -> Result<(Resolved, Metadata), LookupError> {
        let (r, _, _) = self.walk_meta(path, false, false)?;
        let m = self.lstat_canonical(&r.canonical)?;
        Ok((r, m))
    }

    /// `lstat` of a canonical in-root path (one a [`Resolved`] gave: no
    /// link on the way, no `.` or `..`), made on a descriptor opened
    /// beneath the sysroot with no link followed, the last one included.
    /// A directory on the way that became a link since it was checked
    /// fails the call ("the path changed during the run").
    pub fn lstat_canonical(&self, canonical: &Path) -> Result<Metadata, LookupError> {
        let f = self.open_at(canonical.as_os_str().as_bytes(), OFlags::PATH)?;
        f.metadata().map_err(LookupError::from_io)
    }

    /// The `lstat` fields of canonical in-root path `canonical` that
    /// staging needs, from one `fstatat` by name in its directory held
    /// open (cheaper than [`lstat_canonical`](Self::lstat_canonical), which
    /// opens the file to give a [`Metadata`]).
    pub fn stat_canonical(&self, canonical: &Path) -> Result<FileStat, LookupError> {
        let (dir, name) = self.parent_of(canonical.as_os_str().as_bytes())?;
        let st = rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| LookupError::from_io(e.into()))?;
        Ok(FileStat::of(&st))
    }

    /// The target of the link at canonical in-root path `canonical`, read
    /// by name in its directory held open (as
    /// [`lstat_canonical`](Self::lstat_canonical)).
    pub fn read_link_canonical(&self, canonical: &Path) -> Result<PathBuf, LookupError> {
        let (dir, name) = self.parent_of(canonical.as_os_str().as_bytes())?;
        read_link_at(&dir, name)
    }

    /// The directory of canonical in-root path `canonical`, held open, and
    /// its last name (`.` for the root itself).
    fn parent_of<'p>(&self, canonical: &'p [u8]) -> Result<(HeldDir, &'p [u8]), LookupError> {
        let end = canonical.len() - canonical.iter().rev().take_while(|&&b| b == b'/').count();
        let trimmed = &canonical[..end];
        let Some(slash) = trimmed.iter().rposition(|&b| b == b'/') else {
            // The root itself, or a relative name (taken from the root).
            let name: &[u8] = if trimmed.is_empty() { b"." } else { trimmed };
            if matches!(name, b"..") {
                return Err(LookupError::Io(io::Error::other(
                    "..: not a canonical path",
                )));
            }
            return Ok((self.dir_fd(b"/")?, name));
        };
        let (parent, name) = (&trimmed[..slash], &trimmed[slash + 1..]);
        if matches!(name, b"" | b"." | b"..") {
            // Not canonical: never look up `..` (from the sysroot's own
            // descriptor it would name its parent on the host).
            return Err(LookupError::Io(io::Error::other(format!(
                "{}: not a canonical path",
                String::from_utf8_lossy(canonical)
            ))));
        }
        Ok((self.dir_fd(parent)?, name))
    }

    /// Directory `dir` (canonical, in-root) opened beneath the sysroot with
    /// no link followed, or held open from an earlier call.
    fn dir_fd(&self, dir: &[u8]) -> Result<HeldDir, LookupError> {
        if let Some(fd) = self.local.with(|v| v.fds.get(dir).cloned()) {
            return Ok(fd);
        }
        let (fd, held) = self.shared_dir_fd(dir)?;
        let fd = HeldDir::new(fd);
        if held {
            self.local.with(|v| v.fds.insert(dir.into(), fd.clone()));
        }
        Ok(fd)
    }

    /// [`dir_fd`](Self::dir_fd) from the map all threads share, and
    /// whether the map holds it.
    fn shared_dir_fd(&self, dir: &[u8]) -> Result<(Arc<OwnedFd>, bool), LookupError> {
        if dir.iter().all(|&b| b == b'/') {
            return Ok((self.root_dir.clone(), true));
        }
        let held = self.dirs.read().ok();
        if let Some(fd) = held.and_then(|m| m.get(OsStr::from_bytes(dir)).cloned()) {
            return Ok((fd, true));
        }
        let fd = open_below(
            self.root_dir.as_fd(),
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Beneath::Kernel,
        )
        .map_err(|e| match e.raw_os_error() {
            // Checked as a directory, no longer one (a link, say).
            Some(libc::ENOTDIR) => changed_or(io::Error::from_raw_os_error(libc::ELOOP)),
            _ => changed_or(e),
        })?;
        let fd = Arc::new(fd);
        if let Ok(mut m) = self.dirs.write() {
            if m.len() < MAX_HELD_DIRS {
                let key = OsStr::from_bytes(dir).to_os_string();
                return Ok((m.entry(key).or_insert(fd).clone(), true));
            }
        }
        Ok((fd, false))
    }

    /// Opens canonical in-root path `canonical` by name in its directory
    /// held open, with `flags` and no link followed (the last one
    /// included: with `O_PATH` a link is opened as itself).
    fn open_at(&self, canonical: &[u8], flags: OFlags) -> Result<File, LookupError> {
        let (dir, name) = self.parent_of(canonical)?;
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat(&*dir, name, flags, Mode::empty())
            .map(File::from)
            .map_err(|e| changed_or(e.into()))
    }

    /// Opens the file at canonical in-root path `canonical` for reading
    /// (`O_RDONLY | O_NONBLOCK`, no link followed), with `O_NOATIME` while
    /// the kernel allows it, so reading a sysroot leaves its access times
    /// as they were. The kernel allows it to the file's owner and to a
    /// caller with `CAP_FOWNER`; its first refusal (`EPERM`) turns it off
    /// for this `RootFs`.
    fn open_file_at(&self, canonical: &[u8]) -> Result<File, LookupError> {
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        if !self.no_noatime.load(relaxed) {
            let (dir, name) = self.parent_of(canonical)?;
            let flags = OFlags::RDONLY
                | OFlags::NONBLOCK
                | OFlags::NOATIME
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC;
            match rustix::fs::openat(&*dir, name, flags, Mode::empty()) {
                Ok(fd) => return Ok(File::from(fd)),
                Err(rustix::io::Errno::PERM) => self.no_noatime.store(true, relaxed),
                Err(e) => return Err(changed_or(e.into())),
            }
        }
        self.open_at(canonical, OFlags::RDONLY | OFlags::NONBLOCK)
    }

    /// Opens directory `canonical` for listing.
    fn open_dir_beneath(&self, canonical: &[u8]) -> Result<OwnedFd, LookupError> {
        let f = self
            .open_at(canonical, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| match e {
                LookupError::NotADirectory => changed_or(io::Error::from_raw_os_error(libc::ELOOP)),
                e => e,
            })?;
        Ok(OwnedFd::from(f))
    }

    /// Every entry below directory `dir` (followed if a link), depth
    /// first, each directory's names in byte order, a directory before
    /// what it holds; links are listed, not followed. Each directory is
    /// opened beneath the sysroot with no link followed (as files are), so
    /// the walk stays inside the sysroot even if the tree changes meanwhile.
    pub fn walk_tree(&self, dir: &Path) -> Result<Vec<(PathBuf, EntryKind)>, LookupError> {
        self.walk_tree_with(dir, TreeWalk::default())
    }

    /// [`walk_tree`](Self::walk_tree) with options.
    pub fn walk_tree_with(
        &self,
        dir: &Path,
        opts: TreeWalk,
    ) -> Result<Vec<(PathBuf, EntryKind)>, LookupError> {
        let mut out = Vec::new();
        self.visit_tree(dir, opts, &mut |e| {
            out.push((e.path.to_path_buf(), e.kind));
            Ok(())
        })
        .map_err(|(_, e)| e)?;
        Ok(out)
    }

    /// [`walk_tree_with`](Self::walk_tree_with), handing each entry to
    /// `visit` while its directory is held open (so the entry can be looked
    /// at by name: [`TreeEntry`]). An error from `visit` ends the walk.
    /// Directories deeper than [`MAX_TREE_DEPTH`] below `dir` are treated
    /// as unreadable. An error comes with the path it concerns.
    pub fn visit_tree(
        &self,
        dir: &Path,
        opts: TreeWalk,
        visit: &mut dyn FnMut(&TreeEntry<'_>) -> Result<(), LookupError>,
    ) -> Result<(), (PathBuf, LookupError)> {
        use std::os::unix::fs::MetadataExt;
        let at = |p: &Path| {
            let p = p.to_path_buf();
            move |e| (p, e)
        };
        let (r, meta) = self.metadata(dir).map_err(at(dir))?;
        if !meta.is_dir() {
            return Err((dir.to_path_buf(), LookupError::NotADirectory));
        }
        let device = meta.dev();
        let skip = |e: &LookupError| {
            opts.skip_unreadable || (opts.skip_vanished && matches!(e, LookupError::NotFound))
        };
        let list = |fd: &OwnedFd| -> Result<_, LookupError> {
            if opts.one_file_system {
                let st = rustix::fs::fstat(fd).map_err(|e| LookupError::from_io(e.into()))?;
                if st.st_dev != device {
                    return Ok(Vec::new());
                }
            }
            list_dir(fd)
        };
        let mut seen = 0usize;
        let top = self
            .open_dir_beneath(r.canonical.as_os_str().as_bytes())
            .map_err(at(&r.canonical))?;
        // Directories being visited, innermost last, each held open with
        // its path and the names still to visit (sorted, the next one last).
        let names = list(&top).map_err(at(&r.canonical))?;
        let mut stack = vec![(r.canonical.clone(), names, top)];
        loop {
            let depth = stack.len();
            let Some((path, names, fd)) = stack.last_mut() else {
                break;
            };
            if seen >= opts.limit {
                break;
            }
            let Some((name, kind)) = names.pop() else {
                stack.pop();
                continue;
            };
            let child = path.join(OsStr::from_bytes(&name));
            let kind = match kind {
                Some(k) => k,
                None => {
                    match rustix::fs::statat(&*fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) => EntryKind::of(FileType::from_raw_mode(st.st_mode)),
                        Err(e) => {
                            let e = LookupError::from_io(e.into());
                            if skip(&e) {
                                continue;
                            }
                            return Err((child, e));
                        }
                    }
                }
            };
            seen += 1;
            visit(&TreeEntry {
                path: &child,
                kind,
                dir: fd,
                name: &name,
            })
            .map_err(at(&child))?;
            if kind != EntryKind::Dir {
                continue;
            }
            let opened = if depth > MAX_TREE_DEPTH {
                Err(LookupError::Io(io::Error::other(format!(
                    "more than {MAX_TREE_DEPTH} directory levels"
                ))))
            } else {
                rustix::fs::openat(
                    &*fd,
                    name.as_slice(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| match e {
                    // Listed as a directory, now something else.
                    rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP => {
                        changed_or(io::Error::from_raw_os_error(libc::ELOOP))
                    }
                    e => LookupError::from_io(e.into()),
                })
                .and_then(|sub| Ok((list(&sub)?, sub)))
            };
            match opened {
                Ok((names, sub)) => stack.push((child, names, sub)),
                Err(e) if skip(&e) => {}
                Err(e) => return Err((child, e)),
            }
        }
        Ok(())
    }

    /// Opens a regular file for reading. Anything else (directory, FIFO,
    /// socket, device) is refused without being opened, so nothing blocks.
    /// The metadata is the open descriptor's (`fstat`), checked again to be
    /// a regular file's: the file as it is now, even if it was replaced
    /// since the walk looked at it.
    pub fn open(&self, path: &Path) -> Result<OpenFile, OpenError> {
        let (resolved, kind, _) = self
            .walk_meta(path, true, false)
            .map_err(OpenError::Lookup)?;
        if kind != FileType::RegularFile {
            return Err(OpenError::NotRegular(describe_kind(kind)));
        }
        let file = self
            .open_file_at(resolved.canonical.as_os_str().as_bytes())
            .map_err(OpenError::Lookup)?;
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
            meta: FileMeta::of(&opened),
        })
    }

    /// [`open`](Self::open) for a reader that takes the sysroot as
    /// unchanging for the run (the tracer's parse): the metadata is the
    /// walk's `lstat` of the file, remembered from the first walk to it,
    /// and the descriptor is not asked again — one system call fewer per
    /// file. Refuses the same files without opening them. A file replaced
    /// after the walk looked at it is read as what it now is (still by
    /// name in its held directory, no link followed, never blocking: a
    /// FIFO or directory put there fails the first read), with the size and
    /// identity the walk saw.
    pub fn open_walked(&self, path: &Path) -> Result<OpenFile, OpenError> {
        let (resolved, kind, meta) = self
            .walk_meta(path, true, false)
            .map_err(OpenError::Lookup)?;
        let (FileType::RegularFile, Some(meta)) = (kind, meta) else {
            return Err(OpenError::NotRegular(describe_kind(kind)));
        };
        let file = self
            .open_file_at(resolved.canonical.as_os_str().as_bytes())
            .map_err(OpenError::Lookup)?;
        Ok(OpenFile {
            file,
            resolved,
            meta,
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
        let fd = self.open_dir_beneath(r.canonical.as_os_str().as_bytes())?;
        let names = list_dir(&fd)?
            .into_iter()
            .rev()
            .map(|(n, _)| OsString::from_vec(n))
            .collect();
        Ok((r, names))
    }

    /// Whether `path` names an existing directory (after following links).
    pub fn is_dir(&self, path: &Path) -> bool {
        matches!(self.kind(path), Ok((_, EntryKind::Dir)))
    }

    /// What `path` leads to (following links), from the walk alone: no
    /// `stat` of its own when the walk has seen it (cheaper than
    /// [`metadata`](Self::metadata) when the type is all that is needed).
    pub fn kind(&self, path: &Path) -> Result<(Resolved, EntryKind), LookupError> {
        let (r, k, _) = self.walk_meta(path, true, false)?;
        Ok((r, EntryKind::of(k)))
    }

    /// Maps a host path below the root back to its in-root path.
    pub fn in_root_of_host(&self, host: &Path) -> Option<PathBuf> {
        let rel = host.strip_prefix(&self.host_root).ok()?;
        Some(Path::new("/").join(rel))
    }
}

/// How [`open_below`] keeps an open below the sysroot.
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
#[cfg(test)]
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

/// The kind of an entry of [`RootFs::walk_tree`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A FIFO or socket.
    Other,
}

/// What [`RootFs::stat_canonical`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    /// The file's type.
    pub kind: EntryKind,
    /// Permission bits, with set-user-ID, set-group-ID and sticky.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Number of hard links.
    pub nlink: u64,
    /// Device of the file system.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// The device a device node stands for.
    pub rdev: u64,
}

impl FileStat {
    // The field types of `stat` differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    fn of(st: &rustix::fs::Stat) -> FileStat {
        FileStat {
            kind: EntryKind::of(FileType::from_raw_mode(st.st_mode)),
            mode: st.st_mode & 0o7777,
            size: st.st_size as u64,
            nlink: st.st_nlink as u64,
            dev: st.st_dev,
            ino: st.st_ino,
            rdev: st.st_rdev,
        }
    }
}

/// One entry met by [`RootFs::visit_tree`]: its path and kind, and access
/// to it by name in the directory that lists it (held open meanwhile).
pub struct TreeEntry<'a> {
    /// Its canonical in-root path.
    pub path: &'a Path,
    /// Its type, as the listing gave it.
    pub kind: EntryKind,
    dir: &'a OwnedFd,
    name: &'a [u8],
}

impl TreeEntry<'_> {
    /// Its `lstat` fields (`fstatat` by name, no link followed).
    pub fn stat(&self) -> Result<FileStat, LookupError> {
        rustix::fs::statat(self.dir, self.name, AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| FileStat::of(&st))
            .map_err(|e| LookupError::from_io(e.into()))
    }

    /// The target of this link.
    pub fn read_link(&self) -> Result<PathBuf, LookupError> {
        read_link_at(self.dir, self.name)
    }

    /// Opens this entry for reading by name in its held directory, following
    /// no link (`O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`), and
    /// checks on the descriptor that it is a regular file (else
    /// [`OpenError::NotRegular`]): the entry the visit is looking at, even
    /// if its directory's path has been swapped since.
    pub fn open_file(&self) -> Result<File, OpenError> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(self.dir, self.name, flags, Mode::empty())
            .map_err(|e| OpenError::Lookup(LookupError::from_io(e.into())))?;
        let file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| OpenError::Lookup(LookupError::Io(e)))?;
        if !meta.file_type().is_file() {
            return Err(OpenError::NotRegular(describe_type(&meta)));
        }
        Ok(file)
    }

    /// A host path naming exactly this entry while the visit of it runs:
    /// `/proc/self/fd/<directory>/<name>`, whose directory the kernel takes
    /// from the held descriptor (for `l…` calls such as `lgetxattr`, which
    /// do not follow the name itself). `None` without `/proc`.
    pub fn pinned_path(&self) -> Option<PathBuf> {
        use std::os::fd::AsRawFd;
        let mut p = format!("/proc/self/fd/{}/", self.dir.as_raw_fd()).into_bytes();
        p.extend_from_slice(self.name);
        let p = PathBuf::from(OsString::from_vec(p));
        p.parent().is_some_and(|d| d.is_dir()).then_some(p)
    }
}

/// How [`RootFs::walk_tree_with`] walks.
#[derive(Debug, Clone, Copy)]
pub struct TreeWalk {
    /// Do not list directories on another file system than the top one
    /// (they are still listed as entries themselves).
    pub one_file_system: bool,
    /// Pass over directories that cannot be listed instead of failing.
    pub skip_unreadable: bool,
    /// Pass over entries removed while the walk runs (a live root)
    /// instead of failing.
    pub skip_vanished: bool,
    /// Stop after this many entries.
    pub limit: usize,
}

impl Default for TreeWalk {
    fn default() -> Self {
        TreeWalk {
            one_file_system: false,
            skip_unreadable: false,
            skip_vanished: false,
            limit: usize::MAX,
        }
    }
}

impl EntryKind {
    fn of(t: rustix::fs::FileType) -> EntryKind {
        use rustix::fs::FileType;
        match t {
            FileType::Directory => EntryKind::Dir,
            FileType::RegularFile => EntryKind::File,
            FileType::Symlink => EntryKind::Symlink,
            FileType::CharacterDevice => EntryKind::CharDevice,
            FileType::BlockDevice => EntryKind::BlockDevice,
            _ => EntryKind::Other,
        }
    }
}

/// Names of a directory, each with its kind when the file system gave it.
type Listing = Vec<(Vec<u8>, Option<EntryKind>)>;

/// The names in open directory `dir` (without `.` and `..`), in
/// *descending* byte order (callers pop the next one from the end), each
/// with its kind when the file system reports it (`d_type`).
fn list_dir(dir: &OwnedFd) -> Result<Listing, LookupError> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir).map_err(|e| LookupError::from_io(e.into()))? {
        let entry = entry.map_err(|e| LookupError::from_io(e.into()))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let kind = match entry.file_type() {
            rustix::fs::FileType::Unknown => None,
            t => Some(EntryKind::of(t)),
        };
        names.push((name.to_vec(), kind));
    }
    names.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(names)
}

/// The target of link `name` in directory `dir`.
fn read_link_at(dir: &OwnedFd, name: &[u8]) -> Result<PathBuf, LookupError> {
    let target = rustix::fs::readlinkat(dir, name, Vec::new())
        .map_err(|e| LookupError::from_io(e.into()))?;
    Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
}

/// The lookup error of a failed [`open_below`]: `ELOOP` and `EXDEV` mean
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
    /// Its metadata: the descriptor's ([`RootFs::open`]) or the walk's
    /// ([`RootFs::open_walked`]).
    pub meta: FileMeta,
}

/// The `stat` fields of an opened file that readers use, with
/// [`std::os::unix::fs::MetadataExt`]'s names; also what the walk keeps
/// for a path that is neither a directory nor a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    file_type: FileType,
    mode: u32,
    size: u64,
    dev: u64,
    ino: u64,
}

impl FileMeta {
    // The field types of `stat` differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    fn of_stat(st: &rustix::fs::Stat) -> FileMeta {
        FileMeta {
            file_type: FileType::from_raw_mode(st.st_mode),
            mode: st.st_mode as u32,
            size: st.st_size as u64,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        }
    }

    fn of(m: &Metadata) -> FileMeta {
        use std::os::unix::fs::MetadataExt;
        FileMeta {
            file_type: FileType::from_raw_mode(m.mode()),
            mode: m.mode(),
            size: m.len(),
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Type and permission bits (`st_mode`).
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// Device of the file system.
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }
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

/// [`describe_type`] of a type.
fn describe_kind(k: FileType) -> &'static str {
    match k {
        FileType::Directory => "directory",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::BlockDevice => "block device",
        FileType::CharacterDevice => "character device",
        FileType::Symlink => "symbolic link",
        _ => "regular file",
    }
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
        let read = |fs: &RootFs| -> Result<Vec<u8>, OpenError> {
            let f = fs.open(Path::new("/lib/libx.so.1"))?;
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut &f.file, &mut v).unwrap();
            Ok(v)
        };
        // A directory the walk has looked into is held open: after the
        // swap, lookups in it still see it (now `lib.old`), never the
        // directory the link leads to.
        let (t, sysroot, fs) = swap_fixture();
        assert_eq!(read(&fs).unwrap(), b"inside");
        swap_lib_for_a_link(&t, &sysroot);
        assert_eq!(
            std::fs::read(sysroot.join("lib/libx.so.1")).unwrap(),
            b"outside"
        );
        assert_eq!(read(&fs).unwrap(), b"inside");
        // One the walk has only seen as a directory, not looked into: the
        // open beneath the sysroot meets the link and fails.
        let (t, sysroot, fs) = swap_fixture();
        assert!(fs.is_dir(Path::new("/lib")));
        swap_lib_for_a_link(&t, &sysroot);
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
    fn metadata_links_and_listings_after_a_swap_describe_nothing_outside() {
        let t = tempfile::tempdir().unwrap();
        let sysroot = t.path().join("sysroot");
        let outside = t.path().join("outside");
        for d in [sysroot.join("usr/lib/sub"), outside.join("lib/sub")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(sysroot.join("usr/lib/libx.so.1"), b"inside").unwrap();
        for (name, link) in [
            ("libonly.so", "libx.so.1"),
            ("sub/libdeep.so", "../libx.so.1"),
        ] {
            std::fs::write(outside.join("lib").join(name), b"outside").unwrap();
            symlink(link, outside.join("lib").join(format!("{name}.link"))).unwrap();
        }
        std::fs::write(outside.join("lib/libx.so.1"), b"outside, longer").unwrap();
        let fs = RootFs::new(&sysroot).unwrap();
        // The walk looks into / and /usr and /usr/lib (held open from now
        // on) and lists /usr/lib; /usr/lib/sub it has not entered.
        assert!(fs.metadata(Path::new("/usr/lib/libx.so.1")).is_ok());
        let (_, names) = fs.read_dir(Path::new("/usr/lib")).unwrap();
        assert_eq!(names, ["libx.so.1", "sub"]);
        // Someone swaps /usr for a link to a directory outside: the host's
        // own lookups of these paths would now describe the outside.
        std::fs::rename(sysroot.join("usr"), sysroot.join("usr.old")).unwrap();
        symlink(&outside, sysroot.join("usr")).unwrap();
        assert!(std::fs::symlink_metadata(sysroot.join("usr/lib/libonly.so")).is_ok());
        let changed = |e: LookupError| {
            assert!(e.to_string().contains("changed during the run"), "{e}");
        };
        let not_found = |e: LookupError| assert!(matches!(e, LookupError::NotFound), "{e}");
        // In the held directory: the sysroot's own entries, nothing else.
        let (_, m) = fs.metadata(Path::new("/usr/lib/libx.so.1")).unwrap();
        assert_eq!(m.len(), b"inside".len() as u64);
        not_found(
            fs.symlink_metadata(Path::new("/usr/lib/libonly.so"))
                .unwrap_err(),
        );
        not_found(
            fs.resolve(Path::new("/usr/lib/libonly.so.link"))
                .unwrap_err(),
        );
        not_found(
            fs.read_link_canonical(Path::new("/usr/lib/libonly.so.link"))
                .unwrap_err(),
        );
        let (_, names) = fs.read_dir(Path::new("/usr/lib")).unwrap();
        assert_eq!(names, ["libx.so.1", "sub"]);
        let walked: Vec<_> = fs
            .walk_tree(Path::new("/usr/lib"))
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            walked,
            [Path::new("/usr/lib/libx.so.1"), Path::new("/usr/lib/sub")]
        );
        // Below it, a directory not yet entered is opened beneath the
        // sysroot, meets the link and fails.
        changed(
            fs.metadata(Path::new("/usr/lib/sub/libdeep.so"))
                .unwrap_err(),
        );
        changed(
            fs.lstat_canonical(Path::new("/usr/lib/sub/libdeep.so.link"))
                .unwrap_err(),
        );
    }

    #[test]
    fn canonical_lookups_refuse_dot_dot() {
        let (t, sysroot, fs) = swap_fixture();
        std::fs::write(t.path().join("beside"), b"outside").unwrap();
        let lib = sysroot.join("lib");
        for p in [
            "/..",
            "..",
            "/lib/..",
            "/lib/../..",
            "/lib/.",
            "/lib/../beside",
        ] {
            let p = Path::new(p);
            assert!(fs.lstat_canonical(p).is_err(), "{p:?}");
            assert!(fs.stat_canonical(p).is_err(), "{p:?}");
            assert!(fs.read_link_canonical(p).is_err(), "{p:?}");
        }
        // What the walk gives is canonical and works.
        assert!(fs.lstat_canonical(Path::new("/lib/libx.so.1")).is_ok());
        assert!(fs.lstat_canonical(Path::new("/")).unwrap().is_dir());
        assert!(lib.is_dir());
    }

    #[test]
    fn tree_visits_never_follow_a_directory_swapped_during_the_visit() {
        let t = tempfile::tempdir().unwrap();
        let sysroot = t.path().join("sysroot");
        let outside = t.path().join("outside");
        for d in [
            sysroot.join("opt/a"),
            sysroot.join("opt/b"),
            outside.clone(),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(sysroot.join("opt/a/in-a"), b"").unwrap();
        std::fs::write(sysroot.join("opt/b/in-b"), b"").unwrap();
        std::fs::write(outside.join("secret"), b"").unwrap();
        let fs = RootFs::new(&sysroot).unwrap();
        let mut met = Vec::new();
        // When the visit meets /opt/a (before entering it), /opt/a and
        // /opt/b are swapped for links to the outside directory.
        let swap = |name: &str| {
            let d = sysroot.join("opt").join(name);
            std::fs::rename(&d, sysroot.join(format!("{name}.old"))).unwrap();
            symlink(&outside, &d).unwrap();
        };
        let err = fs
            .visit_tree(Path::new("/opt"), TreeWalk::default(), &mut |e| {
                if e.path == Path::new("/opt/a") {
                    swap("a");
                    swap("b");
                    // What the entry is looked at by name now is the link.
                    assert_eq!(e.stat().unwrap().kind, EntryKind::Symlink);
                    assert_eq!(e.read_link().unwrap(), outside);
                }
                met.push(e.path.to_path_buf());
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.0, Path::new("/opt/a"));
        assert!(
            err.1.to_string().contains("changed during the run"),
            "{}",
            err.1
        );
        assert_eq!(met, [Path::new("/opt/a")]);
        // Skipping what cannot be entered, the visit goes on to /opt/b,
        // now a link: listed, not followed.
        let (t2, sysroot2) = (t, sysroot);
        let fs = RootFs::new(&sysroot2).unwrap();
        let walk = TreeWalk {
            skip_unreadable: true,
            ..TreeWalk::default()
        };
        let all = fs.walk_tree_with(Path::new("/opt"), walk).unwrap();
        assert_eq!(
            all,
            [
                (PathBuf::from("/opt/a"), EntryKind::Symlink),
                (PathBuf::from("/opt/b"), EntryKind::Symlink)
            ]
        );
        drop(t2);
    }

    #[test]
    fn tree_entries_are_looked_at_by_name_in_their_directory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("d")).unwrap();
        std::fs::write(t.path().join("d/f"), b"12345").unwrap();
        symlink("f", t.path().join("d/l")).unwrap();
        let fs = RootFs::new(t.path()).unwrap();
        let mut seen = Vec::new();
        fs.visit_tree(Path::new("/"), TreeWalk::default(), &mut |e| {
            let st = e.stat()?;
            let pinned = e.pinned_path().expect("/proc is mounted");
            let host = std::fs::symlink_metadata(&pinned).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_eq!((host.dev(), host.ino()), (st.dev, st.ino), "{pinned:?}");
            let link = (e.kind == EntryKind::Symlink).then(|| e.read_link().unwrap());
            seen.push((e.path.to_path_buf(), e.kind, st.size, link));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen[0],
            (PathBuf::from("/d"), EntryKind::Dir, seen[0].2, None)
        );
        assert_eq!(seen[1], (PathBuf::from("/d/f"), EntryKind::File, 5, None));
        assert_eq!(
            seen[2],
            (
                PathBuf::from("/d/l"),
                EntryKind::Symlink,
                1,
                Some(PathBuf::from("f"))
            )
        );
    }

    /// `TreeEntry::open_file` opens the entry in the directory the visit
    /// holds: after the directory's path is swapped for a link to another
    /// directory, the file read is still the listed one; a name replaced
    /// by a link is refused (not followed); a FIFO is refused without
    /// blocking. Fails if the open goes by host path or follows links.
    #[test]
    fn tree_entries_open_by_name_in_their_held_directory() {
        let t = tempfile::tempdir().unwrap();
        let sysroot = t.path().join("sysroot");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(sysroot.join("d")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        for name in ["f", "g"] {
            std::fs::write(sysroot.join("d").join(name), b"inside").unwrap();
            std::fs::write(outside.join(name), b"outside").unwrap();
        }
        rustix::fs::mknodat(
            rustix::fs::CWD,
            sysroot.join("d/p"),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let fs = RootFs::new(&sysroot).unwrap();
        let mut seen = Vec::new();
        fs.visit_tree(Path::new("/"), TreeWalk::default(), &mut |e| {
            let name = e.path.to_string_lossy().into_owned();
            if name == "/d/f" {
                // The directory's path now leads outside; `g` is a link.
                std::fs::rename(sysroot.join("d"), sysroot.join("d.old")).unwrap();
                symlink(&outside, sysroot.join("d")).unwrap();
                std::fs::remove_file(sysroot.join("d.old/g")).unwrap();
                symlink(outside.join("g"), sysroot.join("d.old/g")).unwrap();
            }
            let got = match e.open_file() {
                Ok(f) => {
                    let mut v = String::new();
                    std::io::Read::read_to_string(&mut &f, &mut v).unwrap();
                    v
                }
                Err(OpenError::NotRegular(k)) => format!("not regular: {k}"),
                Err(OpenError::Lookup(LookupError::Loop)) => "loop".into(),
                Err(e) => format!("{e}"),
            };
            seen.push((name, got));
            Ok(())
        })
        .unwrap();
        let seen: Vec<(&str, &str)> = seen.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            seen,
            [
                ("/d", "not regular: directory"),
                ("/d/f", "inside"),
                ("/d/g", "loop"),
                ("/d/p", "not regular: FIFO"),
            ]
        );
    }

    #[test]
    fn lookups_beyond_the_held_directories_still_work() {
        let t = tempfile::tempdir().unwrap();
        let n = MAX_HELD_DIRS + 40;
        for i in 0..n {
            let d = t.path().join(format!("d{i}"));
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("f"), i.to_string()).unwrap();
        }
        let fs = RootFs::new(t.path()).unwrap();
        for round in 0..2 {
            for i in 0..n {
                let f = fs.open(Path::new(&format!("/d{i}/f"))).unwrap();
                let mut v = String::new();
                std::io::Read::read_to_string(&mut &f.file, &mut v).unwrap();
                assert_eq!(v, i.to_string(), "round {round}");
            }
        }
        assert_eq!(fs.dirs.read().unwrap().len(), MAX_HELD_DIRS);
    }

    /// A held directory is taken from the shared map once per thread and
    /// then from the thread's own view: the shared descriptor's count
    /// grows by one per thread, not per lookup, and every thread opens by
    /// name in that same directory (the answers are the files').
    #[test]
    fn each_thread_takes_a_held_directory_once() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/lib")).unwrap();
        for f in ["a", "b", "c"] {
            std::fs::write(t.path().join("usr/lib").join(f), f).unwrap();
        }
        let fs = RootFs::new(t.path()).unwrap();
        crate::shard::on_every_thread_at_once(2, |_| {
            let (a, _) = fs.parent_of(b"/usr/lib/a").unwrap();
            let (b, _) = fs.parent_of(b"/usr/lib/b").unwrap();
            assert!(HeldDir::same_hold(&a, &b), "the thread's view was not used");
            for _ in 0..4 {
                for f in ["a", "b", "c"] {
                    let o = fs.open(Path::new(&format!("/usr/lib/{f}"))).unwrap();
                    let mut v = String::new();
                    std::io::Read::read_to_string(&mut &o.file, &mut v).unwrap();
                    assert_eq!(v, f);
                }
            }
            // Its walks below `/usr/lib` start there without asking `seen`.
            assert!(fs.local.with(|v| v.dirs.contains(b"/usr/lib".as_slice())));
        });
        let held = |fs: &RootFs| -> Arc<OwnedFd> {
            fs.dirs.read().unwrap()[OsStr::new("/usr/lib")].clone()
        };
        let shared = held(&fs);
        // The map, the two threads' views, `shared` here.
        assert_eq!(Arc::strong_count(&shared), 4);
        // A thread outside the pool has a view of its own too.
        fs.open(Path::new("/usr/lib/a")).unwrap();
        fs.open(Path::new("/usr/lib/b")).unwrap();
        assert_eq!(Arc::strong_count(&shared), 5);
        drop(shared);
        // The views go with the root.
        let weak = Arc::downgrade(&held(&fs));
        drop(fs);
        assert!(weak.upgrade().is_none(), "a view outlived its root");
    }

    #[test]
    fn tree_walks_list_in_order_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let sysroot = t.path().join("sysroot");
        std::fs::create_dir_all(sysroot.join("opt/b/deep")).unwrap();
        std::fs::create_dir_all(sysroot.join("opt/a")).unwrap();
        std::fs::create_dir_all(t.path().join("outside")).unwrap();
        std::fs::write(t.path().join("outside/secret"), b"").unwrap();
        std::fs::write(sysroot.join("opt/b/deep/f"), b"").unwrap();
        std::fs::write(sysroot.join("opt/a/z"), b"").unwrap();
        std::fs::write(sysroot.join("opt/c"), b"").unwrap();
        symlink(t.path().join("outside"), sysroot.join("opt/b/out")).unwrap();
        symlink("b", sysroot.join("opt/link")).unwrap();
        let fs = RootFs::new(&sysroot).unwrap();
        let walked: Vec<(String, EntryKind)> = fs
            .walk_tree(Path::new("/opt"))
            .unwrap()
            .into_iter()
            .map(|(p, k)| (p.to_string_lossy().into_owned(), k))
            .collect();
        let want = [
            ("/opt/a", EntryKind::Dir),
            ("/opt/a/z", EntryKind::File),
            ("/opt/b", EntryKind::Dir),
            ("/opt/b/deep", EntryKind::Dir),
            ("/opt/b/deep/f", EntryKind::File),
            ("/opt/b/out", EntryKind::Symlink),
            ("/opt/c", EntryKind::File),
            ("/opt/link", EntryKind::Symlink),
        ];
        let want: Vec<(String, EntryKind)> =
            want.iter().map(|(p, k)| (p.to_string(), *k)).collect();
        assert_eq!(walked, want);
        // Through a link to a directory, the walk lists the directory it
        // leads to, under the canonical path.
        let via: Vec<_> = fs
            .walk_tree(Path::new("/opt/link"))
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(via[0], Path::new("/opt/b/deep"));
        let limited = fs
            .walk_tree_with(
                Path::new("/opt"),
                TreeWalk {
                    limit: 3,
                    ..TreeWalk::default()
                },
            )
            .unwrap();
        assert_eq!(limited.len(), 3);
        assert!(matches!(
            fs.walk_tree(Path::new("/opt/c")),
            Err(LookupError::NotADirectory)
        ));
    }

    /// `open_walked` gives the walk's metadata: the descriptor's for a file
    /// unchanged since (followed through a link), but the size first
    /// walked for one grown in place since, where `open` sees it now
    /// (fails if `open_walked` asks the descriptor). What is not a regular
    /// file is refused, as by `open`.
    /// Reading a file through `open` and `open_walked` leaves its access
    /// time as it was, where a plain read on the same file system updates
    /// it (checked first on another file: skipped on a `noatime` mount,
    /// where no read could change it). Fails without `O_NOATIME`.
    #[test]
    fn reads_leave_access_times_alone() {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let t = tempfile::tempdir().unwrap();
        let secs = 1_000_000;
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
        for name in ["plain", "lib.so"] {
            std::fs::write(t.path().join(name), b"bytes").unwrap();
            let f = File::options()
                .write(true)
                .open(t.path().join(name))
                .unwrap();
            f.set_times(std::fs::FileTimes::new().set_accessed(old))
                .unwrap();
        }
        let atime = |name: &str| std::fs::metadata(t.path().join(name)).unwrap().atime();
        std::fs::read(t.path().join("plain")).unwrap();
        if atime("plain") == secs {
            eprintln!("skipped: reads do not update access times on this file system");
            return;
        }
        let fs = RootFs::new(t.path()).unwrap();
        for open in [RootFs::open, RootFs::open_walked] {
            let f = open(&fs, Path::new("/lib.so")).unwrap();
            let mut buf = [0u8; 5];
            f.file.read_exact_at(&mut buf, 0).unwrap();
            assert_eq!(&buf, b"bytes");
        }
        assert_eq!(atime("lib.so"), secs);
    }

    /// The walk's map is sized by the caller's hint: nothing reserved for a
    /// plain `new` (a one-program run touches none of it), room for the
    /// hint otherwise, and it grows past either.
    #[test]
    fn walk_map_is_sized_by_the_hint() {
        let t = tempfile::tempdir().unwrap();
        let small = RootFs::new(t.path()).unwrap();
        assert_eq!(small.seen.capacity(), 0);
        let big = RootFs::with_capacity(t.path(), 2000).unwrap();
        assert!(big.seen.capacity() >= 2000, "{}", big.seen.capacity());
        for i in 0..40 {
            std::fs::write(t.path().join(format!("f{i}")), b"x").unwrap();
            let p = PathBuf::from(format!("/f{i}"));
            assert_eq!(small.kind(&p).unwrap(), big.kind(&p).unwrap());
        }
        assert!(small.seen.len() >= 40 && small.seen.capacity() >= 40);
    }

    #[test]
    fn open_walked_takes_the_walks_metadata() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("lib.so"), b"12345").unwrap();
        symlink("lib.so", t.path().join("link.so")).unwrap();
        std::fs::create_dir(t.path().join("dir")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            t.path().join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let fs = RootFs::new(t.path()).unwrap();
        let walked = fs.open_walked(Path::new("/link.so")).unwrap();
        assert_eq!(walked.resolved.canonical, Path::new("/lib.so"));
        assert_eq!(walked.meta, fs.open(Path::new("/lib.so")).unwrap().meta);
        assert_eq!(walked.meta.len(), 5);
        std::fs::write(t.path().join("lib.so"), b"1234567890").unwrap();
        assert_eq!(fs.open(Path::new("/lib.so")).unwrap().meta.len(), 10);
        assert_eq!(fs.open_walked(Path::new("/lib.so")).unwrap().meta.len(), 5);
        for p in ["/dir", "/fifo"] {
            let err = fs.open_walked(Path::new(p)).err();
            assert!(matches!(err, Some(OpenError::NotRegular(_))), "{p}");
        }
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
        // Deeper plain paths below links.
        paths.extend(
            [
                "/usr/lib/s/g",
                "/usr/lib/sub/up/f",
                "/lib/sub/up/sub/g",
                "/lib/s/up/ff",
            ]
            .map(String::from),
        );
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
        // One root warmed by walks that keep their directories, one by
        // walks that do not (its remembered walks then lack them, and the
        // first `resolve` below a directory reached through links fills
        // them in).
        let meta_warm = RootFs::new(r).unwrap();
        for p in &paths {
            let _ = warm.resolve(Path::new(p));
            let _ = meta_warm.metadata(Path::new(p));
        }
        let (mut fast, mut through_links) = (0, 0);
        for p in &paths {
            let path = Path::new(p);
            fast += usize::from(warm.known_dir(p.as_bytes()).is_some());
            let walked = |fs: &RootFs| {
                plain_parent(p.as_bytes())
                    .is_some_and(|d| fs.walked.contains_key(OsStr::from_bytes(d)))
            };
            through_links += usize::from(walked(&warm) && walked(&meta_warm));
            for warm in [&warm, &meta_warm] {
                let cold = RootFs::new(r).unwrap();
                assert_eq!(meta(warm.metadata(path)), meta(cold.metadata(path)), "{p}");
                let cold = RootFs::new(r).unwrap();
                assert_eq!(show(warm.resolve(path)), show(cold.resolve(path)), "{p}");
                let cold = RootFs::new(r).unwrap();
                assert_eq!(
                    show(warm.resolve_nofollow(path)),
                    show(cold.resolve_nofollow(path)),
                    "{p}"
                );
                let cold = RootFs::new(r).unwrap();
                assert_eq!(
                    meta(warm.symlink_metadata(path)),
                    meta(cold.symlink_metadata(path)),
                    "{p}"
                );
            }
        }
        // The fast start was taken for every plain path below `/usr` and
        // `/usr/lib` (ten names each), and never for what is not plain.
        assert!(fast >= 20, "{fast}");
        // Directories reached through links were remembered by both
        // kinds of walk: `/lib`, `/lib/sub`
        // and `/lib/s` (ten names below each), and those of the deeper
        // paths.
        assert!(through_links >= 34, "{through_links}");
        for d in [
            "/lib",
            "/lib/sub",
            "/lib/s",
            "/usr/lib/s",
            "/usr/lib/sub/up",
            "/lib/sub/up/sub",
            "/lib/s/up",
        ] {
            let w = warm.walked.get_cloned(OsStr::new(d)).expect(d);
            assert!(!w.hops.is_empty() && w.dirs.is_some(), "{d}");
            let m = meta_warm.walked.get_cloned(OsStr::new(d)).expect(d);
            assert_eq!((&m.canonical, &m.hops), (&w.canonical, &w.hops), "{d}");
        }
        // Canonical directories are not kept there, nor what is not a
        // directory.
        for d in [
            "/usr",
            "/usr/lib",
            "/usr/lib/sub",
            "/lib/f",
            "/lib/dangling",
        ] {
            assert!(!warm.walked.contains_key(OsStr::new(d)), "{d}");
        }
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

    /// `plain_parent`'s one pass agrees with splitting the path into
    /// components, on every path of up to eight bytes of `/`, `.` and `a`.
    #[test]
    fn plain_parents_are_found_in_one_pass() {
        fn by_components(path: &[u8]) -> Option<&[u8]> {
            let rest = path.strip_prefix(b"/")?;
            let slash = path.iter().rposition(|&b| b == b'/')?;
            let (parent, name) = (&path[..slash], &path[slash + 1..]);
            if slash == 0 || matches!(name, b"" | b"." | b"..") {
                return None;
            }
            rest[..slash - 1]
                .split(|&b| b == b'/')
                .all(|c| !matches!(c, b"" | b"." | b".."))
                .then_some(parent)
        }
        let mut paths: Vec<Vec<u8>> = vec![Vec::new()];
        let mut all = Vec::new();
        for _ in 0..8 {
            paths = paths
                .iter()
                .flat_map(|p| b"/.a".iter().map(move |&b| [p.as_slice(), &[b]].concat()))
                .collect();
            all.extend(paths.iter().cloned());
        }
        let mut plain = 0;
        for p in &all {
            let want = by_components(p);
            assert_eq!(plain_parent(p), want, "{:?}", String::from_utf8_lossy(p));
            plain += usize::from(want.is_some());
        }
        assert!(plain > 100, "{plain}");
        assert_eq!(
            plain_parent(b"/usr/lib/x86_64-linux-gnu/libc.so.6"),
            Some(&b"/usr/lib/x86_64-linux-gnu"[..])
        );
        assert_eq!(plain_parent(b"/usr/.../x"), Some(&b"/usr/..."[..]));
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
