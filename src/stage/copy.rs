//! Writing a [`Plan`] into the output directory — the only code that writes.
//!
//! A fresh output (absent or empty directory) is built in a new temporary
//! directory beside it and renamed into place at the end, so a failure (a
//! full disk, an unreadable library) never leaves a half-written root; the
//! temporary directory, which this code created, is removed on failure.
//! A non-empty output is refused unless `force`, and then written in place:
//! an existing symlink inside it is never followed or replaced, an existing
//! regular file at a staged path is replaced atomically. Every destination
//! is the output directory joined with a normal, `..`-free relative path.
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

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::{Item, Plan};
use crate::error::{Error, Result};
use crate::observe::Observer;
use crate::rootfs::RootFs;

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
        return write_all(fs, plan, out, true, opts, observer);
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
    let tmp = parent.join(format!(
        ".{}.closure-tmp-{}-{stamp}",
        name.to_string_lossy(),
        std::process::id()
    ));
    fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let result = write_all(fs, plan, &tmp, false, opts, observer).and_then(|report| {
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(&tmp, e))?;
        if existing.is_some() {
            fs::remove_dir(out).map_err(|e| Error::io(out, e))?;
        }
        fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
        Ok(report)
    });
    if result.is_err() {
        let _ = make_writable(&tmp);
        let _ = fs::remove_dir_all(&tmp);
    }
    result
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

/// Restores owner write permission on directories below `dir` so a failed
/// temporary tree can be removed.
fn make_writable(dir: &Path) -> io::Result<()> {
    for e in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if e.file_type().is_dir() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o755));
        }
    }
    Ok(())
}

/// The destination of in-root `p` below `base`, refusing anything but
/// normal components.
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

/// One regular file to write: its destination, what goes in it, and
/// whether something is already there (`--force`).
struct FileJob<'p> {
    d: PathBuf,
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
    base: &Path,
    in_place: bool,
    opts: CopyOptions,
    observer: &dyn Observer,
) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    let mut files: Vec<FileJob<'_>> = Vec::new();
    let mut links: Vec<(PathBuf, &Path, bool)> = Vec::new();
    // Directories and symlinks first, in plan order (parents before
    // children); regular files are then written on all cores, hard links
    // (to files sorting earlier) last.
    for (p, item) in &plan.items {
        let d = dest(base, p)?;
        let existing = if in_place {
            match fs::symlink_metadata(&d) {
                Ok(m) => Some(m),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io(&d, e)),
            }
        } else {
            None
        };
        if let Some(m) = &existing {
            if m.file_type().is_symlink() {
                // Only an identical link may already be there.
                let same = matches!(item, Item::Symlink { target } if fs::read_link(&d).ok().as_ref() == Some(target));
                if !same {
                    return Err(out_err(
                        &d,
                        "already exists as a symbolic link in the output; refusing to follow or replace it",
                    ));
                }
                continue;
            }
        }
        match item {
            Item::Dir { mode } => {
                match &existing {
                    Some(m) if m.is_dir() => {}
                    Some(_) => return Err(out_err(&d, "exists and is not a directory")),
                    None => fs::create_dir(&d).map_err(|e| Error::io(&d, e))?,
                }
                dir_modes.push((d, *mode));
            }
            Item::File { .. } | Item::Generated { .. } => {
                if existing.as_ref().is_some_and(|m| m.is_dir()) {
                    return Err(out_err(&d, "exists as a directory"));
                }
                files.push(FileJob {
                    d,
                    path: p,
                    item,
                    replace: existing.is_some(),
                });
            }
            Item::Hardlink { to } => links.push((d, to, existing.is_some())),
            Item::Symlink { target } => {
                if existing.is_some() {
                    return Err(out_err(&d, "exists in the output and is not the same link"));
                }
                std::os::unix::fs::symlink(target, &d).map_err(|e| Error::io(&d, e))?;
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
            .map(|job| write_one(fs, job, opts, observer))
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
    for (d, to, replace) in links {
        let t = dest(base, to)?;
        if replace {
            fs::remove_file(&d).map_err(|e| Error::io(&d, e))?;
        }
        fs::hard_link(&t, &d).map_err(|e| Error::io(&d, e))?;
    }
    for (d, mode) in dir_modes.into_iter().rev() {
        fs::set_permissions(&d, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(&d, e))?;
    }
    Ok(report)
}

/// Writes one regular file of the plan.
fn write_one(
    fs: &RootFs,
    job: &FileJob<'_>,
    opts: CopyOptions,
    observer: &dyn Observer,
) -> Result<Written> {
    let d = &job.d;
    match job.item {
        Item::File { source, mode, size } => {
            let src = fs.open(source).map_err(|e| Error::Output {
                path: source.clone(),
                reason: format!("cannot read from the sysroot: {e}"),
            })?;
            let linked = opts.link
                && !job.replace
                && src.meta.mode() & 0o7777 == *mode
                && hard_link_open(&src.file, d);
            let mut caps = Ok(false);
            if !linked {
                let len = src.meta.len();
                let value = crate::audit::caps::read_fd(&src.file).map_err(|e| Error::Output {
                    path: source.clone(),
                    reason: format!("cannot read its file capabilities in the sysroot: {e}"),
                })?;
                caps = write_file(d, job.replace, *mode, value.as_deref(), |f| {
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
            let _ = write_file(d, job.replace, *mode, None, |f| {
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

/// Creates `d` (never following a link), fills it, sets its mode, then its
/// file capabilities `caps` (last: the kernel drops them when the file is
/// written to). An existing regular file is replaced atomically through a
/// sibling temp file. Returns whether capabilities were set, or why setting
/// them failed (the file is written either way).
fn write_file(
    d: &Path,
    replace: bool,
    mode: u32,
    caps: Option<&[u8]>,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<std::result::Result<bool, String>> {
    let target = if replace {
        let mut name = d.file_name().unwrap_or_default().to_os_string();
        name.push(".closure-new");
        d.with_file_name(name)
    } else {
        d.to_path_buf()
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o600)
        .open(&target)
        .map_err(|e| Error::io(&target, e))?;
    let filled = fill(&mut f);
    if let Err(e) = filled {
        let _ = fs::remove_file(&target);
        return Err(Error::io(d, e));
    }
    // Through the descriptor: the file just created, whatever its path.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(&target, e))?;
    let kept = match caps {
        Some(value) => set_caps(&f, value).map(|()| true),
        None => Ok(false),
    };
    drop(f);
    if replace {
        fs::rename(&target, d).map_err(|e| Error::io(d, e))?;
    }
    Ok(kept)
}

/// Whether `FICLONE` is worth trying: cleared the first time a file
/// system answers that it cannot clone (ext4, tmpfs), so a run pays that
/// failed call once, not once per file.
static TRY_CLONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Fills `to` with the `len` bytes of `from`: a clone of its extents where
/// the file system can share them (`FICLONE`), else an in-kernel copy
/// (`copy_file_range`), else (old kernels, special file systems) a plain
/// read/write copy.
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
    let mut done = 0u64;
    while done < len {
        let chunk = usize::try_from(len - done)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match rustix::fs::copy_file_range(from, None, &*to, None, chunk) {
            Ok(0) => break, // shorter than it was: copy what is there
            Ok(n) => done += n as u64,
            Err(_) if done == 0 => {
                // Not supported between these files: copy through memory.
                return io::copy(&mut &*from, to).map(|_| ());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Makes `d` a hard link to the already opened (and checked) `file`,
/// through its `/proc/self/fd` entry so that exactly the opened inode is
/// linked, whatever its path has become since. False when the link is not
/// possible (another file system, a refused link, no `/proc`): the caller
/// copies instead.
fn hard_link_open(file: &File, d: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(
        rustix::fs::CWD,
        proc_path.as_str(),
        rustix::fs::CWD,
        d,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    )
    .is_ok()
}
