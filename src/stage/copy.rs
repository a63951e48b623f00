//! Writing a [`Plan`] into the output directory — the only code that writes.
//!
//! A fresh output (absent or empty directory) is built in a new temporary
//! directory beside it and renamed into place at the end, so a failure (a
//! full disk, an unreadable library) never leaves a half-written root; the
//! temporary directory, which this code created, is removed on failure.
//! A non-empty output is refused unless `force`, and then written in place:
//! an existing symlink inside it is never followed or replaced, an existing
//! regular file at a staged path is replaced atomically. Every destination
//! is the output directory joined with a normal, `..`-free relative path,
//! and every write is made by name in its directory opened beneath the
//! output's held descriptor with no link followed (`rootfs::open_below`): a
//! directory swapped for a link during the run fails the write. The
//! temporary directory is owner-only (0700) until complete, and is made,
//! renamed and removed through its parent's descriptor.
//!
//! Directories and symlinks are made first, in plan order; regular files
//! are then written on all cores (rayon), hard links last. File contents
//! are cloned (`FICLONE`, a reflink on btrfs/XFS) when the file system
//! allows it and otherwise copied inside the kernel (`copy_file_range`);
//! with `--link` a file is a hard link to the sysroot's own file when both
//! are on one file system, the link is permitted and the modes agree
//! ([`CopyOptions::link`]). A copy gets the sysroot file's capabilities
//! (`security.capability`) last, after its contents and mode; those that
//! cannot be set are reported in [`CopyReport::caps_lost`].

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::{Item, Plan};
use crate::error::{Error, Result};
use crate::observe::Observer;
use crate::rootfs::{open_below, Beneath, RootFs};

/// Options of copying.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Write into a non-empty output directory.
    pub force: bool,
    /// Hard-link files to the sysroot's instead of copying them, where the
    /// file system allows it (same file system, link permitted, and the
    /// staged mode is the file's own); other files are copied. The staged
    /// root then shares those inodes with the sysroot: changing one changes
    /// the other.
    pub link: bool,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Regular files written (copies, links and generated files).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Of `files`, those hard-linked to the sysroot's file (`--link`).
    pub linked: usize,
    /// Copies whose file capabilities (`security.capability`) were set
    /// like the sysroot file's (a hard link shares them anyway).
    pub caps_kept: usize,
    /// Copies whose file capabilities could not be set (setting them needs
    /// `CAP_SETFCAP`, and a file system with extended attributes), by
    /// in-root path in plan order, with the reason: the staged file runs
    /// without them.
    pub caps_lost: Vec<(PathBuf, String)>,
    /// The directory whose entries others could replace (`--out`'s
    /// parent, or `--out` itself when staging into it with `--force`), and
    /// why ([`exposure`]): someone else could swap the staged tree.
    pub exposed: Option<(PathBuf, String)>,
}

fn out_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Writes `plan` into `out`.
pub fn materialize(
    fs: &RootFs,
    plan: &Plan,
    out: &Path,
    opts: CopyOptions,
    observer: &dyn Observer,
) -> Result<CopyReport> {
    let (files, bytes) = plan.totals();
    observer.stage_start(files, bytes);
    let r = materialize_inner(fs, plan, out, opts, observer);
    observer.stage_end();
    r
}

fn materialize_inner(
    fs: &RootFs,
    plan: &Plan,
    out: &Path,
    opts: CopyOptions,
    observer: &dyn Observer,
) -> Result<CopyReport> {
    let existing = match fs::symlink_metadata(out) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(out, e)),
    };
    let in_place = match &existing {
        None => false,
        Some(m) if m.file_type().is_symlink() => {
            return Err(out_err(
                out,
                "is a symbolic link; refusing to write through it",
            ))
        }
        Some(m) if !m.is_dir() => return Err(out_err(out, "exists and is not a directory")),
        Some(_) => {
            let empty = fs::read_dir(out)
                .map_err(|e| Error::io(out, e))?
                .next()
                .is_none();
            if !empty && !opts.force {
                return Err(out_err(
                    out,
                    "directory is not empty (use --force to stage into it)",
                ));
            }
            !empty
        }
    };
    if same_dir(out, fs.host_root()) {
        return Err(out_err(out, "is the sysroot itself"));
    }
    if in_place && contains(out, fs.host_root()) {
        // Staging into it could overwrite the sysroot while it is read.
        return Err(out_err(out, "contains the sysroot"));
    }
    if in_place {
        let top = OutDir::open(out)?;
        let exposed = exposure_of(top.fd.as_fd()).map(|why| (out.to_path_buf(), why));
        let mut report = write_all(fs, plan, &top, true, opts, observer)?;
        report.exposed = exposed;
        return Ok(report);
    }
    let name = out
        .file_name()
        .ok_or_else(|| out_err(out, "has no final component"))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(out_err(&parent, "parent directory of --out does not exist"));
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // The parent is held open: the temporary directory is made, filled,
    // renamed and (on failure) removed through descriptors, by name only
    // within it.
    let parent_fd = rustix::fs::openat(
        rustix::fs::CWD,
        parent.as_path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(&parent, e.into()))?;
    let tmp_name = std::ffi::OsString::from(format!(
        ".{}.closure-tmp-{}-{stamp}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let tmp = parent.join(&tmp_name);
    // Owner-only while it is built; opened to all (0755) when complete.
    rustix::fs::mkdirat(&parent_fd, tmp_name.as_os_str(), Mode::from_raw_mode(0o700))
        .map_err(|e| Error::io(&tmp, e.into()))?;
    let top = OutDir::open_in(parent_fd.as_fd(), &tmp_name, &tmp);
    let exposed = exposure_of(parent_fd.as_fd()).map(|why| (parent.clone(), why));
    let result = top.and_then(|top| {
        let mut report = write_all(fs, plan, &top, false, opts, observer)?;
        report.exposed = exposed;
        chmod_dir_at(parent_fd.as_fd(), &tmp_name, 0o755).map_err(|e| Error::io(&tmp, e))?;
        if existing.is_some() {
            rustix::fs::unlinkat(&parent_fd, name, AtFlags::REMOVEDIR)
                .map_err(|e| Error::io(out, e.into()))?;
        }
        rustix::fs::renameat(&parent_fd, tmp_name.as_os_str(), &parent_fd, name)
            .map_err(|e| Error::io(out, e.into()))?;
        Ok(report)
    });
    if result.is_err() {
        let _ = remove_tree(parent_fd.as_fd(), &tmp_name, 0);
    }
    result
}

/// [`exposure`] of the open directory `dir` (nothing when it cannot be
/// `fstat`ed).
fn exposure_of(dir: BorrowedFd<'_>) -> Option<String> {
    let st = rustix::fs::fstat(dir).ok()?;
    exposure(
        st.st_mode,
        st.st_uid,
        st.st_gid,
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

/// Why users other than `uid` (and root) could rename or remove entries
/// of a directory with this mode, owner and group, if they could: it is
/// writable by every user, or by a group not `gid` (a user's own group is
/// taken as private), and no sticky bit protects the entries (one does
/// when the directory belongs to `uid` or root); or it belongs to another
/// user who can write it.
pub fn exposure(mode: u32, owner: u32, group: u32, uid: u32, gid: u32) -> Option<String> {
    let others = if mode & 0o002 != 0 {
        Some("writable by every user".to_string())
    } else if mode & 0o020 != 0 && group != gid {
        Some(format!("writable by group {group}"))
    } else {
        None
    };
    let foreign = owner != uid && owner != 0;
    match others {
        Some(w) if mode & 0o1000 == 0 => Some(format!("{w}, with no sticky bit")),
        Some(w) if foreign => Some(format!(
            "{w}, and its owner, user {owner}, may rename entries despite its sticky bit"
        )),
        Some(_) => None,
        None => {
            (mode & 0o200 != 0 && foreign).then(|| format!("owned and writable by user {owner}"))
        }
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Whether directory `outer` contains `inner` (both resolved by the host).
fn contains(outer: &Path, inner: &Path) -> bool {
    match (fs::canonicalize(outer), fs::canonicalize(inner)) {
        (Ok(o), Ok(i)) => i.starts_with(&o),
        _ => false,
    }
}

/// Removes `name` in `dir` and, when it is a directory, everything below
/// it — all through descriptors, following no link (a link is removed, not
/// followed). Directories are made owner-writable first (staged modes may
/// deny that). Used on the temporary tree after a failure; gives up below
/// 4,096 levels.
fn remove_tree(dir: std::os::fd::BorrowedFd<'_>, name: &OsStr, depth: usize) -> io::Result<()> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?);
    }
    if depth >= 4096 {
        return Err(io::Error::other("directory tree too deep to remove"));
    }
    chmod_dir_at(dir, name, 0o700)?;
    let sub = rustix::fs::openat(dir, name, dir_flags(), Mode::empty())?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&sub)? {
        let n = entry?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            names.push(n);
        }
    }
    for n in names {
        remove_tree(sub.as_fd(), OsStr::from_bytes(&n), depth + 1)?;
    }
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// Flags to open a directory of the output for `fchmod`.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// The destination of in-root `p` below `base`, refusing anything but
/// normal components (for messages; writes go through [`OutDir::at`]).
fn dest(base: &Path, p: &Path) -> Result<PathBuf> {
    let mut d = base.to_path_buf();
    for c in p.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => d.push(n),
            _ => return Err(out_err(p, "plan path is not normalised")),
        }
    }
    Ok(d)
}

/// The top directory of the output, held open: every write below it is
/// made in a directory opened beneath it with no link followed
/// ([`open_below`]), so a directory of the output that someone swaps for a
/// link during the run makes the write fail instead of leading it
/// elsewhere.
struct OutDir {
    /// The directory as given (for messages).
    path: PathBuf,
    /// Opened `O_PATH | O_DIRECTORY | O_NOFOLLOW`.
    fd: OwnedFd,
}

/// A destination: its directory, held open, and its name there.
struct At<'p> {
    dir: Arc<OwnedFd>,
    name: &'p OsStr,
    /// Its host path, for messages.
    shown: PathBuf,
}

impl OutDir {
    fn open(path: &Path) -> Result<OutDir> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(path, e.into()))?;
        Ok(OutDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// Directory `name` in `dir` (no link followed), shown as `path`.
    fn open_in(dir: std::os::fd::BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<OutDir> {
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(path, e.into()))?;
        Ok(OutDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The directory of in-root path `p` (opened beneath the output, no
    /// link followed) and `p`'s last name.
    fn at<'p>(&self, p: &'p Path) -> Result<At<'p>> {
        self.at_after(p, &mut None)
    }

    /// [`at`](Self::at), reusing the directory of the previous call when
    /// it is the same (`last`): plan paths come sorted, so runs of items
    /// share a directory.
    fn at_after<'p>(
        &self,
        p: &'p Path,
        last: &mut Option<(&'p [u8], Arc<OwnedFd>)>,
    ) -> Result<At<'p>> {
        let shown = dest(&self.path, p)?;
        let name = p
            .file_name()
            .ok_or_else(|| out_err(p, "plan path is not normalised"))?;
        let parent = p.parent().unwrap_or(Path::new("/")).as_os_str().as_bytes();
        if let Some((dir, fd)) = last {
            if *dir == parent {
                return Ok(At {
                    dir: fd.clone(),
                    name,
                    shown,
                });
            }
        }
        let dir = if parent.iter().all(|&b| b == b'/') {
            rustix::fs::openat(
                &self.fd,
                ".",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io::Error::from)
        } else {
            open_below(
                self.fd.as_fd(),
                parent,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Beneath::Kernel,
            )
        }
        .map_err(|e| Error::io(&shown, changed(e)))?;
        let dir = Arc::new(dir);
        *last = Some((parent, dir.clone()));
        Ok(At { dir, name, shown })
    }
}

impl At<'_> {
    /// `lstat` of the destination; `None` when absent.
    fn lstat(&self) -> Result<Option<rustix::fs::Stat>> {
        match rustix::fs::statat(&self.dir, self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io(&self.shown, e.into())),
        }
    }

    /// The destination with `suffix` added to its name.
    fn sibling(&self, suffix: &str) -> std::ffi::OsString {
        let mut n = self.name.to_os_string();
        n.push(suffix);
        n
    }
}

/// An error of a write beneath the output: `ELOOP`, `EXDEV` and (for a
/// directory made or checked earlier in the run) `ENOTDIR` mean a
/// directory of the output became a link during the run.
fn changed(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::EXDEV) | Some(libc::ENOTDIR) => io::Error::other(
            "a directory on this path in the output changed during the run \
             (it is now a symbolic link); refusing to write through it",
        ),
        _ => e,
    }
}

/// One regular file to write: its destination, what goes in it, and
/// whether something is already there (`--force`).
struct FileJob<'p> {
    /// The plan's (in-root) path.
    path: &'p Path,
    item: &'p Item,
    replace: bool,
}

/// What writing one file did.
struct Written {
    bytes: u64,
    /// A hard link to the sysroot's file.
    linked: bool,
    /// The sysroot file's capabilities: `Ok(true)` set on the copy,
    /// `Ok(false)` none to set (or shared by the link), `Err` why setting
    /// them failed.
    caps: std::result::Result<bool, String>,
}

fn write_all(
    fs: &RootFs,
    plan: &Plan,
    top: &OutDir,
    in_place: bool,
    opts: CopyOptions,
    observer: &dyn Observer,
) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let mut dir_modes: Vec<(&Path, u32)> = Vec::new();
    let mut files: Vec<FileJob<'_>> = Vec::new();
    let mut links: Vec<(&Path, &Path, bool)> = Vec::new();
    // Directories and symlinks first, in plan order (parents before
    // children); regular files are then written on all cores, hard links
    // (to files sorting earlier) last.
    let mut last = None;
    for (p, item) in &plan.items {
        let at = top.at_after(p, &mut last)?;
        let d = &at.shown;
        let existing = if in_place { at.lstat()? } else { None };
        let kind = existing
            .as_ref()
            .map(|m| FileType::from_raw_mode(m.st_mode));
        if kind == Some(FileType::Symlink) {
            // Only an identical link may already be there.
            let same = matches!(item, Item::Symlink { target }
                if rustix::fs::readlinkat(&at.dir, at.name, Vec::new())
                    .is_ok_and(|t| t.as_bytes() == target.as_os_str().as_bytes()));
            if !same {
                return Err(out_err(
                    d,
                    "already exists as a symbolic link in the output; refusing to follow or replace it",
                ));
            }
            continue;
        }
        match item {
            Item::Dir { mode } => {
                match kind {
                    Some(FileType::Directory) => {}
                    Some(_) => return Err(out_err(d, "exists and is not a directory")),
                    None => rustix::fs::mkdirat(&at.dir, at.name, Mode::from_raw_mode(0o777))
                        .map_err(|e| Error::io(d, e.into()))?,
                }
                dir_modes.push((p, *mode));
            }
            Item::File { .. } | Item::Generated { .. } => {
                if kind == Some(FileType::Directory) {
                    return Err(out_err(d, "exists as a directory"));
                }
                files.push(FileJob {
                    path: p,
                    item,
                    replace: existing.is_some(),
                });
            }
            Item::Hardlink { to } => links.push((p, to, existing.is_some())),
            Item::Symlink { target } => {
                if existing.is_some() {
                    return Err(out_err(d, "exists in the output and is not the same link"));
                }
                rustix::fs::symlinkat(target.as_path(), &at.dir, at.name)
                    .map_err(|e| Error::io(d, e.into()))?;
            }
        }
    }
    // The kernel copies (or clones) contents; spreading files over the
    // cores overlaps those copies. The first error in plan order wins.
    let written: Vec<Result<Written>> = {
        use rayon::prelude::*;
        files
            .par_iter()
            .with_max_len(1)
            .map(|job| write_one(fs, top, job, opts, observer))
            .collect()
    };
    for (w, job) in written.into_iter().zip(&files) {
        let w = w?;
        report.files += 1;
        report.bytes += w.bytes;
        report.linked += usize::from(w.linked);
        match w.caps {
            Ok(kept) => report.caps_kept += usize::from(kept),
            Err(why) => report.caps_lost.push((job.path.to_path_buf(), why)),
        }
    }
    for (p, to, replace) in links {
        let at = top.at(p)?;
        let t = top.at(to)?;
        if replace {
            rustix::fs::unlinkat(&at.dir, at.name, AtFlags::empty())
                .map_err(|e| Error::io(&at.shown, e.into()))?;
        }
        rustix::fs::linkat(&t.dir, t.name, &at.dir, at.name, AtFlags::empty())
            .map_err(|e| Error::io(&at.shown, e.into()))?;
    }
    let mut last = None;
    for (p, mode) in dir_modes.into_iter().rev() {
        let at = top.at_after(p, &mut last)?;
        set_dir_mode(&at, mode).map_err(|e| Error::io(&at.shown, changed(e)))?;
    }
    Ok(report)
}

/// Sets the mode of the directory `at` through a descriptor opened without
/// following a link (`chmod` by path would follow one). A directory the
/// writer may not read is reached through its `O_PATH` descriptor's
/// `/proc/self/fd` entry instead.
fn set_dir_mode(at: &At<'_>, mode: u32) -> io::Result<()> {
    chmod_dir_at(at.dir.as_fd(), at.name, mode)
}

/// Sets the mode of directory `name` in `dir` without following a link.
fn chmod_dir_at(dir: std::os::fd::BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let mode = Mode::from_raw_mode(mode);
    match rustix::fs::openat(dir, name, dir_flags(), Mode::empty()) {
        Ok(d) => Ok(rustix::fs::fchmod(&d, mode)?),
        Err(rustix::io::Errno::ACCESS) => {
            use std::os::fd::AsRawFd;
            let d = rustix::fs::openat(
                dir,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let proc_path = format!("/proc/self/fd/{}", d.as_raw_fd());
            Ok(rustix::fs::chmod(proc_path.as_str(), mode)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes one regular file of the plan.
fn write_one(
    fs: &RootFs,
    top: &OutDir,
    job: &FileJob<'_>,
    opts: CopyOptions,
    observer: &dyn Observer,
) -> Result<Written> {
    let at = top.at(job.path)?;
    match job.item {
        Item::File { source, mode, size } => {
            let src = fs.open(source).map_err(|e| Error::Output {
                path: source.clone(),
                reason: format!("cannot read from the sysroot: {e}"),
            })?;
            let linked = opts.link
                && !job.replace
                && src.meta.mode() & 0o7777 == *mode
                && hard_link_open(&src.file, &at);
            let mut caps = Ok(false);
            if !linked {
                let len = src.meta.len();
                let value = crate::audit::caps::read_fd(&src.file).map_err(|e| Error::Output {
                    path: source.clone(),
                    reason: format!("cannot read its file capabilities in the sysroot: {e}"),
                })?;
                caps = write_file(&at, job.replace, *mode, value.as_deref(), |f| {
                    copy_contents(&src.file, len, f)
                })?;
            }
            observer.stage_file(*size);
            Ok(Written {
                bytes: *size,
                linked,
                caps,
            })
        }
        Item::Generated { bytes, mode } => {
            // No capabilities to set: the answer is always Ok(false).
            let _ = write_file(&at, job.replace, *mode, None, |f| {
                io::Write::write_all(f, bytes)
            })?;
            observer.stage_file(bytes.len() as u64);
            Ok(Written {
                bytes: bytes.len() as u64,
                linked: false,
                caps: Ok(false),
            })
        }
        _ => Ok(Written {
            bytes: 0,
            linked: false,
            caps: Ok(false),
        }),
    }
}

/// Sets the raw `security.capability` value `value` on the new file `f`.
fn set_caps(f: &File, value: &[u8]) -> std::result::Result<(), String> {
    rustix::fs::fsetxattr(
        f,
        crate::audit::caps::XATTR_NAME,
        value,
        rustix::fs::XattrFlags::empty(),
    )
    .map_err(|e| io::Error::from(e).to_string())
}

/// Creates `at` (never following a link), fills it, sets its mode, then its
/// file capabilities `caps` (last: the kernel drops them when the file is
/// written to). An existing regular file is replaced atomically through a
/// sibling temp file. Returns whether capabilities were set, or why setting
/// them failed (the file is written either way).
fn write_file(
    at: &At<'_>,
    replace: bool,
    mode: u32,
    caps: Option<&[u8]>,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<std::result::Result<bool, String>> {
    let d = &at.shown;
    let temp = replace.then(|| at.sibling(".closure-new"));
    let name: &OsStr = temp.as_deref().unwrap_or(at.name);
    let shown = d.with_file_name(name);
    let mut f = File::from(
        rustix::fs::openat(
            &at.dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| Error::io(&shown, e.into()))?,
    );
    let filled = fill(&mut f);
    if let Err(e) = filled {
        let _ = rustix::fs::unlinkat(&at.dir, name, AtFlags::empty());
        return Err(Error::io(d, e));
    }
    // Through the descriptor: the file just created, whatever its path.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(&shown, e))?;
    let kept = match caps {
        Some(value) => set_caps(&f, value).map(|()| true),
        None => Ok(false),
    };
    drop(f);
    if replace {
        rustix::fs::renameat(&at.dir, name, &at.dir, at.name)
            .map_err(|e| Error::io(d, e.into()))?;
    }
    Ok(kept)
}

/// Whether `FICLONE` is worth trying: cleared the first time a file
/// system answers that it cannot clone (ext4, tmpfs), so a run pays that
/// failed call once, not once per file.
static TRY_CLONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Fills `to` with the `len` bytes of `from`: a clone of its extents where
/// the file system can share them (`FICLONE`), else an in-kernel copy
/// (`copy_file_range`) of its data, holes left holes, else (old kernels,
/// special file systems) a plain read/write copy of the data.
fn copy_contents(from: &File, len: u64, to: &mut File) -> io::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    if TRY_CLONE.load(Relaxed) {
        match rustix::fs::ioctl_ficlone(&*to, from) {
            Ok(()) => return Ok(()),
            Err(e)
                if [
                    rustix::io::Errno::OPNOTSUPP,
                    rustix::io::Errno::XDEV,
                    rustix::io::Errno::INVAL,
                    rustix::io::Errno::NOTTY,
                    rustix::io::Errno::PERM,
                ]
                .contains(&e) =>
            {
                TRY_CLONE.store(false, Relaxed);
            }
            Err(_) => {}
        }
    }
    // Only the data of a sparse file is copied; its holes stay holes
    // (`SEEK_DATA`/`SEEK_HOLE`, the length set at the end). A file system
    // that cannot tell reports the whole file as data.
    use rustix::fs::SeekFrom;
    let mut at = 0u64;
    let mut end_of_data = 0u64;
    while at < len {
        let data = match rustix::fs::seek(from, SeekFrom::Data(at)) {
            Ok(d) => d,
            Err(rustix::io::Errno::NXIO) => break, // a hole to the end
            Err(_) => at,
        };
        if data >= len {
            break;
        }
        let hole = rustix::fs::seek(from, SeekFrom::Hole(data))
            .ok()
            .filter(|&h| h > data)
            .map_or(len, |h| h.min(len));
        let copied = copy_range(from, to, data, hole)?;
        end_of_data = data + copied;
        if copied < hole - data {
            break; // shorter than it was: copy what is there
        }
        at = hole;
    }
    // The trailing hole, unless the file got shorter meanwhile.
    let now = from.metadata().map_or(len, |m| m.len());
    to.set_len(len.min(now).max(end_of_data))
}

/// Copies bytes `[start, end)` of `from` to the same offsets of `to`,
/// in the kernel where it can (`copy_file_range`), else through memory.
/// Returns how many were copied (fewer when `from` ends earlier).
fn copy_range(from: &File, to: &File, start: u64, end: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let (mut off_in, mut off_out) = (start, start);
    while off_in < end {
        let chunk = usize::try_from(end - off_in)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match rustix::fs::copy_file_range(from, Some(&mut off_in), to, Some(&mut off_out), chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) if off_in == start => {
                // Not supported between these files: copy through memory.
                let mut buf = vec![0u8; 64 << 10];
                while off_in < end {
                    let want = usize::try_from(end - off_in)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    let n = from.read_at(&mut buf[..want], off_in)?;
                    if n == 0 {
                        break;
                    }
                    to.write_all_at(&buf[..n], off_in)?;
                    off_in += n as u64;
                }
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(off_in - start)
}

/// Makes `d` a hard link to the already opened (and checked) `file`,
/// through its `/proc/self/fd` entry so that exactly the opened inode is
/// linked, whatever its path has become since. False when the link is not
/// possible (another file system, a refused link, no `/proc`): the caller
/// copies instead.
fn hard_link_open(file: &File, at: &At<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(
        rustix::fs::CWD,
        proc_path.as_str(),
        &at.dir,
        at.name,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    /// Who else could replace entries of a directory, by mode and owner,
    /// for user 1000 (group 1000).
    #[test]
    fn exposure_names_who_else_can_rename_entries() {
        let e = |mode: u32, owner: u32, group: u32| exposure(mode, owner, group, 1000, 1000);
        // Private, or shared only with root or the user's own group.
        for (mode, owner, group) in [
            (0o755, 1000, 1000),
            (0o700, 1000, 1000),
            (0o775, 1000, 1000),
            (0o755, 0, 0),
            (0o1777, 0, 0),
            (0o1777, 1000, 1000),
            (0o1770, 0, 50),
            (0o555, 2000, 2000),
        ] {
            assert_eq!(e(mode, owner, group), None, "{mode:o} {owner} {group}");
        }
        assert_eq!(
            e(0o777, 0, 0).as_deref(),
            Some("writable by every user, with no sticky bit")
        );
        assert_eq!(
            e(0o770, 1000, 50).as_deref(),
            Some("writable by group 50, with no sticky bit")
        );
        assert_eq!(
            e(0o1777, 2000, 2000).as_deref(),
            Some("writable by every user, and its owner, user 2000, may rename entries despite its sticky bit")
        );
        assert_eq!(
            e(0o755, 2000, 2000).as_deref(),
            Some("owned and writable by user 2000")
        );
    }

    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Swaps `out/<dir>` for a link to `victim` once the first file is
    /// written: what someone writing into `--out` during the run could do.
    struct Swapper<'a> {
        out: &'a Path,
        dir: &'a str,
        victim: &'a Path,
        done: AtomicBool,
    }

    impl Observer for Swapper<'_> {
        fn stage_file(&self, _bytes: u64) {
            if !self.done.swap(true, Ordering::SeqCst) {
                let d = self.out.join(self.dir);
                fs::rename(&d, self.out.join(format!("{}.moved", self.dir))).unwrap();
                symlink(self.victim, &d).unwrap();
            }
        }
    }

    /// Stages `plan` from `sysroot` into the existing, non-empty `out` with
    /// `--force`, on one thread (files in plan order), swapping `dir`.
    fn stage_with_swap(
        sysroot: &Path,
        plan: &Plan,
        out: &Path,
        dir: &str,
        victim: &Path,
    ) -> Result<CopyReport> {
        let fs = RootFs::new(sysroot).unwrap();
        let swapper = Swapper {
            out,
            dir,
            victim,
            done: AtomicBool::new(false),
        };
        let opts = CopyOptions {
            force: true,
            link: false,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| materialize(&fs, plan, out, opts, &swapper))
    }

    #[test]
    fn an_output_directory_swapped_for_a_link_is_not_written_through() {
        let t = tempfile::tempdir().unwrap();
        let sysroot = t.path().join("sysroot");
        let out = t.path().join("out");
        let victim = t.path().join("victim");
        fs::create_dir_all(sysroot.join("lib")).unwrap();
        fs::create_dir_all(&out).unwrap();
        fs::write(
            out.join("keep"),
            b"an earlier file: --force writes in place",
        )
        .unwrap();
        fs::create_dir(&victim).unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o700)).unwrap();
        let mut plan = Plan::default();
        plan.items.insert("/lib".into(), Item::Dir { mode: 0o755 });
        for n in ["a", "b", "c"] {
            let p = format!("/lib/lib{n}.so");
            fs::write(sysroot.join(&p[1..]), n).unwrap();
            let item = Item::File {
                source: p.clone().into(),
                mode: 0o644,
                size: 1,
            };
            plan.items.insert(p.into(), item);
        }
        let victim_state = |v: &Path| {
            let names: Vec<_> = fs::read_dir(v)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            (names, fs::metadata(v).unwrap().mode() & 0o7777)
        };
        let before = victim_state(&victim);
        // Files after the swap would go into the victim through the link.
        let err = stage_with_swap(&sysroot, &plan, &out, "lib", &victim).unwrap_err();
        assert!(err.to_string().contains("changed during the run"), "{err}");
        assert_eq!(victim_state(&victim), before);
        assert!(out.join("lib.moved/liba.so").exists());

        // The directory's mode, set last, is not set through the link either.
        let out = t.path().join("out2");
        fs::create_dir_all(out.join("etc")).unwrap();
        let mut plan = Plan::default();
        plan.items.insert("/etc".into(), Item::Dir { mode: 0o755 });
        plan.items.insert("/lib".into(), Item::Dir { mode: 0o755 });
        plan.items.insert(
            "/etc/passwd".into(),
            Item::Generated {
                bytes: b"root:x:0:0::/:/\n".to_vec(),
                mode: 0o644,
            },
        );
        let err = stage_with_swap(&sysroot, &plan, &out, "lib", &victim).unwrap_err();
        assert!(err.to_string().contains("changed during the run"), "{err}");
        assert_eq!(victim_state(&victim), before);
    }

    /// For a fresh output: notes the temporary directory's mode when the
    /// first file is written, then swaps its `lib` for a link to `victim`.
    struct TmpSwapper<'a> {
        parent: &'a Path,
        victim: &'a Path,
        mode: std::sync::Mutex<Option<u32>>,
    }

    impl Observer for TmpSwapper<'_> {
        fn stage_file(&self, _bytes: u64) {
            let mut mode = self.mode.lock().unwrap();
            if mode.is_some() {
                return;
            }
            let tmp = fs::read_dir(self.parent)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.to_string_lossy().contains(".closure-tmp-"))
                .expect("a temporary directory while staging");
            *mode = Some(fs::symlink_metadata(&tmp).unwrap().mode() & 0o7777);
            fs::rename(tmp.join("lib"), tmp.join("lib.moved")).unwrap();
            symlink(self.victim, tmp.join("lib")).unwrap();
        }
    }

    #[test]
    fn a_fresh_output_is_built_owner_only_and_removed_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let sysroot = t.path().join("sysroot");
        let parent = t.path().join("parent");
        let victim = t.path().join("victim");
        fs::create_dir_all(sysroot.join("lib")).unwrap();
        fs::create_dir_all(&parent).unwrap();
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("precious"), b"kept").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o750)).unwrap();
        let mut plan = Plan::default();
        plan.items.insert("/lib".into(), Item::Dir { mode: 0o555 });
        for n in ["a", "b"] {
            let p = format!("/lib/lib{n}.so");
            fs::write(sysroot.join(&p[1..]), n).unwrap();
            let item = Item::File {
                source: p.clone().into(),
                mode: 0o644,
                size: 1,
            };
            plan.items.insert(p.into(), item);
        }
        let fs_ = RootFs::new(&sysroot).unwrap();
        let observer = TmpSwapper {
            parent: &parent,
            victim: &victim,
            mode: Default::default(),
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let out = parent.join("out");
        let err = pool
            .install(|| materialize(&fs_, &plan, &out, CopyOptions::default(), &observer))
            .unwrap_err();
        assert!(err.to_string().contains("changed during the run"), "{err}");
        // Nobody else could look in while it was built.
        assert_eq!(*observer.mode.lock().unwrap(), Some(0o700));
        // The failed tree is gone, the link in it removed, not followed.
        let left: Vec<_> = fs::read_dir(&parent).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        let names: Vec<_> = fs::read_dir(&victim)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["precious"]);
        assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o7777, 0o750);
    }
}
