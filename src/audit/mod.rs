//! The attack surface of a staged root: what breaks the distroless promise.
//!
//! A distroless root should hold only what the application needs: no shell,
//! no package manager, nothing setuid. This module finds what does not fit
//! — shells, package managers, setuid and setgid files, files with file
//! capabilities (`security.capability`), world-writable files and
//! directories (sticky world-writable directories such as `/tmp` excepted)
//! and device nodes — each with the `--root` or `--include` that pulled it
//! in ([`origin`]).
//!
//! It audits either a staging [`Plan`] ([`of_plan`]; before anything is
//! written, so `--forbid` can refuse to stage) or any directory taken as a
//! root ([`of_dir`], `closure audit DIR`). Shells and package managers are
//! recognised by file name, by the name a symlink resolves to (inside the
//! root), and through hard links (`ls` hard-linked to `busybox` is
//! busybox). It reads metadata and extended attributes only, all through
//! [`RootFs`] (a directory is walked with [`RootFs::visit_tree`], each entry
//! looked at by name in its held directory); it never writes, executes or
//! prints ([`render`] writes to a `&mut dyn Write`).

pub mod caps;
pub mod cli;
pub mod origin;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::rootfs::{EntryKind, LookupError, OpenError, RootFs, TreeWalk};
use crate::stage::{Item, Plan};

pub use origin::{Attribution, Origin};

/// Shells, by file name (busybox and toybox carry a shell applet).
pub const SHELLS: &[&str] = &[
    "sh", "bash", "rbash", "dash", "ash", "zsh", "ksh", "ksh93", "mksh", "pdksh", "csh", "tcsh",
    "fish", "yash", "posh", "busybox", "toybox",
];

/// Package managers and installers, by file name (`pipN` and `pipN.M` are
/// matched too).
pub const PACKAGE_MANAGERS: &[&str] = &[
    "apt",
    "apt-get",
    "aptitude",
    "dpkg",
    "apk",
    "rpm",
    "dnf",
    "microdnf",
    "yum",
    "zypper",
    "pacman",
    "opkg",
    "emerge",
    "pip",
    "easy_install",
    "gem",
    "npm",
];

/// A kind of finding. [`Category::name`] gives the word `--forbid` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// A shell, a link to one, or busybox and its links.
    Shell,
    /// A package manager or installer.
    PackageManager,
    /// A regular file with the set-user-ID bit.
    Setuid,
    /// A regular file with the set-group-ID bit.
    Setgid,
    /// A file with a `security.capability` extended attribute.
    Capabilities,
    /// A file or directory anyone may write (sticky directories excepted).
    WorldWritable,
    /// A character or block device node.
    Devices,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 7] = [
        Category::Shell,
        Category::PackageManager,
        Category::Setuid,
        Category::Setgid,
        Category::Capabilities,
        Category::WorldWritable,
        Category::Devices,
    ];

    /// The name used by `--forbid` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Category::Shell => "shell",
            Category::PackageManager => "package-manager",
            Category::Setuid => "setuid",
            Category::Setgid => "setgid",
            Category::Capabilities => "capabilities",
            Category::WorldWritable => "world-writable",
            Category::Devices => "devices",
        }
    }

    /// Parses one name (singular and plural forms are both accepted).
    pub fn from_name(s: &str) -> Option<Category> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "shell" | "shells" => Category::Shell,
            "package-manager" | "package-managers" => Category::PackageManager,
            "setuid" => Category::Setuid,
            "setgid" => Category::Setgid,
            "capabilities" | "capability" | "caps" => Category::Capabilities,
            "world-writable" => Category::WorldWritable,
            "devices" | "device" => Category::Devices,
            _ => return None,
        })
    }

    /// Parses `--forbid` values: comma-separated names, each argument may
    /// hold several; `all` stands for every category. An unknown name is a
    /// usage error naming the valid ones.
    pub fn parse_list(values: &[String]) -> Result<BTreeSet<Category>> {
        let mut out = BTreeSet::new();
        for v in values {
            for word in v.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                if word == "all" {
                    out.extend(Category::ALL);
                    continue;
                }
                let c = Category::from_name(word).ok_or_else(|| {
                    let valid: Vec<&str> = Category::ALL.iter().map(|c| c.name()).collect();
                    Error::Usage(format!(
                        "--forbid {word}: unknown finding; use one of {} or all",
                        valid.join(", ")
                    ))
                })?;
                out.insert(c);
            }
        }
        Ok(out)
    }
}

/// One thing in the root that widens its attack surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind of exposure this is.
    pub category: Category,
    /// The in-root path.
    pub path: PathBuf,
    /// What was seen (`symlink to dash`, `mode 4755`, `cap_net_raw=ep`,
    /// `character device 1:3`).
    pub detail: String,
    /// The roots and includes that pulled the path in (empty for an audit
    /// of a plain directory, or for paths of the staging layout itself).
    pub pulled_in_by: Vec<Origin>,
}

/// The findings of one audit, and which categories are forbidden.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Every finding, sorted by path, then category.
    pub findings: Vec<Finding>,
    /// Categories that `--forbid` turns into problems.
    pub forbid: BTreeSet<Category>,
}

impl Audit {
    /// The findings of category `c`.
    pub fn of(&self, c: Category) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.category == c).collect()
    }

    /// Whether `f` is of a forbidden category.
    pub fn is_forbidden(&self, f: &Finding) -> bool {
        self.forbid.contains(&f.category)
    }

    /// The findings that are problems.
    pub fn forbidden(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| self.is_forbidden(f))
            .collect()
    }

    /// The one-line statement of the surface, e.g. `no shell, no package
    /// manager, 0 setuid files` (categories beyond those three appear only
    /// when something was found; up to three paths are named per category).
    pub fn summary(&self) -> String {
        render::summary(self)
    }
}

/// How an entry of the audited tree is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    CharDevice(u64),
    BlockDevice(u64),
    Other,
}

/// One path of the audited tree, as the audit needs it.
#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    kind: Kind,
    /// Permission bits (`0o7777` part).
    mode: u32,
    /// The raw `security.capability` value of a regular file, if any.
    caps: Option<Vec<u8>>,
    /// For a symlink: the stored target, and where it leads (canonical,
    /// in-root) when it resolves.
    link: Option<(PathBuf, Option<PathBuf>)>,
    /// For a regular file: the first path of its hard-link group.
    group: Option<PathBuf>,
}

fn kind_of(meta: &Metadata) -> Kind {
    let ft = meta.file_type();
    if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_char_device() {
        Kind::CharDevice(meta.rdev())
    } else if ft.is_block_device() {
        Kind::BlockDevice(meta.rdev())
    } else {
        Kind::Other
    }
}

/// The capabilities of sysroot file `source`, read through a descriptor
/// opened beneath the sysroot (as staging reads them); `Err(())` when it
/// is not a regular file.
#[allow(clippy::result_unit_err)]
fn source_caps(fs: &RootFs, source: &Path) -> Result<std::result::Result<Option<Vec<u8>>, ()>> {
    let f = match fs.open(source) {
        Ok(f) => f,
        Err(crate::rootfs::OpenError::NotRegular(_)) => return Ok(Err(())),
        Err(crate::rootfs::OpenError::Lookup(e)) => {
            return Err(Error::Lookup {
                path: source.to_path_buf(),
                source: e,
            })
        }
        Err(other) => return Err(Error::io(source, std::io::Error::other(other.to_string()))),
    };
    caps::read_fd(&f.file)
        .map(Ok)
        .map_err(|err| Error::io(source, err))
}

/// Audits what a staging plan would write. Regular files are inspected at
/// their source in the sysroot (file type, extended attributes); modes are
/// the plan's. Nothing is written.
pub fn of_plan(fs: &RootFs, plan: &Plan, credit: &Attribution) -> Result<Audit> {
    // Each regular file is opened for its capabilities (four system calls):
    // a large plan is looked at on all cores, the entries kept in plan order
    // and the first error in that order returned, as one by one.
    let items: Vec<(&PathBuf, &Item)> = plan.items.iter().collect();
    let entry = |&(path, item): &(&PathBuf, &Item)| plan_entry(fs, plan, path, item);
    let entries: Vec<Result<Entry>> = if items.len() >= PARALLEL_ENTRIES {
        use rayon::prelude::*;
        items.par_iter().map(entry).collect()
    } else {
        items.iter().map(entry).collect()
    };
    let entries = entries.into_iter().collect::<Result<Vec<Entry>>>()?;
    inspect(&entries, |p| credit.of(p))
}

/// Plans with fewer entries are audited on the calling thread alone.
const PARALLEL_ENTRIES: usize = 256;

/// What the audit looks at of one planned path.
fn plan_entry(fs: &RootFs, plan: &Plan, path: &Path, item: &Item) -> Result<Entry> {
    let mut e = Entry {
        path: path.to_path_buf(),
        kind: Kind::File,
        mode: 0,
        caps: None,
        link: None,
        group: None,
    };
    match item {
        Item::Dir { mode } => {
            e.kind = Kind::Dir;
            e.mode = *mode;
        }
        Item::File { source, mode, .. } => {
            e.mode = *mode;
            // Opened (a regular file) for its capabilities, else looked at.
            match source_caps(fs, source)? {
                Ok(caps) => {
                    e.caps = caps;
                    e.group = Some(path.to_path_buf());
                }
                Err(()) => {
                    let meta = fs.lstat_canonical(source).map_err(|err| Error::Lookup {
                        path: source.clone(),
                        source: err,
                    })?;
                    e.kind = kind_of(&meta);
                }
            }
        }
        Item::Hardlink { to } => {
            if let Some(Item::File { source, mode, .. }) = plan.items.get(to) {
                e.mode = *mode;
                e.caps = source_caps(fs, source)?.unwrap_or_default();
            }
            e.group = Some(to.clone());
        }
        Item::Symlink { target } => {
            e.kind = Kind::Symlink;
            e.mode = 0o777;
            let resolved = fs.resolve(path).ok().map(|r| r.canonical);
            e.link = Some((target.clone(), resolved));
        }
        Item::Generated { mode, .. } => {
            e.mode = *mode;
        }
    }
    Ok(e)
}

/// Audits every path below the directory that `fs` is rooted at (the
/// directory itself included), as an unpacked image: nothing is followed
/// out of it, symlinks are resolved inside it, and file systems mounted
/// below it are not entered (so `/` is audited without `/proc` or `/sys`).
/// An entry that cannot be read is an error: an audit that skipped it
/// would claim a surface it did not see.
pub fn of_dir(fs: &RootFs) -> Result<Audit> {
    let root = Path::new("/");
    let lookup = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Lookup { path, source }
    };
    let top = fs.lstat_canonical(root).map_err(lookup(root))?;
    let mut entries = vec![Entry {
        path: root.to_path_buf(),
        kind: Kind::Dir,
        mode: top.mode() & 0o7777,
        caps: None,
        link: None,
        group: None,
    }];
    let mut inodes: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    let walk = TreeWalk {
        one_file_system: true,
        skip_vanished: true,
        ..TreeWalk::default()
    };
    let mut failed: Option<Error> = None;
    let walked = fs.visit_tree(root, walk, &mut |t| {
        // A path removed while the walk runs (a live root) is simply gone.
        let st = match t.stat() {
            Ok(st) => st,
            Err(LookupError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        let kind = match st.kind {
            EntryKind::Dir => Kind::Dir,
            EntryKind::File => Kind::File,
            EntryKind::Symlink => Kind::Symlink,
            EntryKind::CharDevice => Kind::CharDevice(st.rdev),
            EntryKind::BlockDevice => Kind::BlockDevice(st.rdev),
            EntryKind::Other => Kind::Other,
        };
        let path = t.path.to_path_buf();
        let mut e = Entry {
            path: path.clone(),
            kind,
            mode: st.mode,
            caps: None,
            link: None,
            group: None,
        };
        match kind {
            Kind::File => {
                // Through `/proc/self/fd/<directory>/<name>` when `/proc`
                // is mounted (no open); else the file opened by name in
                // its held directory.
                let read = match t.pinned_path() {
                    Some(host) => caps::read_raw(&host, &path),
                    None => match t.open_file() {
                        Ok(f) => caps::read_fd(&f).map_err(|e| Error::io(&path, e)),
                        // Removed, or replaced (by a link, say) since it
                        // was listed.
                        Err(
                            OpenError::NotRegular(_)
                            | OpenError::Lookup(LookupError::NotFound | LookupError::Loop),
                        ) => Ok(None),
                        Err(e) => Err(Error::io(&path, std::io::Error::other(e.to_string()))),
                    },
                };
                match read {
                    Ok(c) => e.caps = c,
                    Err(err) => {
                        failed = Some(err);
                        return Err(LookupError::Io(std::io::Error::other("capabilities")));
                    }
                }
                let first = inodes
                    .entry((st.dev, st.ino))
                    .or_insert_with(|| path.clone());
                e.group = Some(first.clone());
            }
            Kind::Symlink => {
                let target = match t.read_link() {
                    Ok(target) => target,
                    Err(LookupError::NotFound) => return Ok(()),
                    Err(err) => return Err(err),
                };
                let resolved = fs.resolve(&path).ok().map(|r| r.canonical);
                e.link = Some((target, resolved));
            }
            _ => {}
        }
        entries.push(e);
        Ok(())
    });
    if let Some(err) = failed {
        return Err(err);
    }
    walked.map_err(|(path, source)| Error::Lookup { path, source })?;
    inspect(&entries, |_| Vec::new())
}

fn file_name(p: &Path) -> &[u8] {
    p.file_name().map(|n| n.as_bytes()).unwrap_or_default()
}

/// Whether `name` is a shell's file name.
pub fn is_shell_name(name: &[u8]) -> bool {
    SHELLS.iter().any(|s| s.as_bytes() == name)
}

/// Whether `name` is a package manager's file name (`pip3`, `pip3.11`
/// included).
pub fn is_package_manager_name(name: &[u8]) -> bool {
    if PACKAGE_MANAGERS.iter().any(|s| s.as_bytes() == name) {
        return true;
    }
    match name.strip_prefix(b"pip") {
        Some(rest) => {
            !rest.is_empty()
                && rest[0].is_ascii_digit()
                && rest.iter().all(|&b| b.is_ascii_digit() || b == b'.')
        }
        None => false,
    }
}

/// Runs every check over `entries` (sorted by path); `credit` names what
/// pulled a path in.
/// Hard-link groups: first path → every path of that file.
type Groups<'a> =
    std::collections::HashMap<&'a Path, Vec<&'a Path>, foldhash::quality::RandomState>;

fn inspect(entries: &[Entry], credit: impl Fn(&Path) -> Vec<Origin>) -> Result<Audit> {
    // Hard-link groups: first path → every path of that file.
    // Looked up once per executable file: hashed, not compared component
    // by component.
    let mut groups: Groups<'_> = Groups::default();
    for e in entries {
        if let Some(g) = &e.group {
            groups.entry(g.as_path()).or_default().push(&e.path);
        }
    }
    let mut findings = Vec::new();
    let mut push = |category: Category, path: &Path, detail: String| {
        findings.push(Finding {
            category,
            path: path.to_path_buf(),
            detail,
            pulled_in_by: credit(path),
        });
    };
    for e in entries {
        let name = file_name(&e.path);
        for (category, matches) in [
            (Category::Shell, is_shell_name as fn(&[u8]) -> bool),
            (Category::PackageManager, is_package_manager_name),
        ] {
            if let Some(detail) = named(e, name, &groups, matches) {
                push(category, &e.path, detail);
            }
        }
        let octal = format!("{:04o}", e.mode);
        match e.kind {
            Kind::File => {
                if e.mode & 0o4000 != 0 {
                    push(Category::Setuid, &e.path, format!("mode {octal}"));
                }
                if e.mode & 0o2000 != 0 {
                    push(Category::Setgid, &e.path, format!("mode {octal}"));
                }
                if let Some(raw) = &e.caps {
                    push(Category::Capabilities, &e.path, caps::describe(raw));
                }
                if e.mode & 0o002 != 0 {
                    push(
                        Category::WorldWritable,
                        &e.path,
                        format!("file mode {octal}"),
                    );
                }
            }
            Kind::Dir => {
                if e.mode & 0o002 != 0 && e.mode & 0o1000 == 0 {
                    push(
                        Category::WorldWritable,
                        &e.path,
                        format!("directory mode {octal}, no sticky bit"),
                    );
                }
            }
            Kind::CharDevice(rdev) | Kind::BlockDevice(rdev) => {
                let what = if matches!(e.kind, Kind::CharDevice(_)) {
                    "character"
                } else {
                    "block"
                };
                push(
                    Category::Devices,
                    &e.path,
                    format!(
                        "{what} device {}:{}, mode {octal}",
                        rustix::fs::major(rdev),
                        rustix::fs::minor(rdev)
                    ),
                );
            }
            Kind::Other => {
                if e.mode & 0o002 != 0 {
                    push(
                        Category::WorldWritable,
                        &e.path,
                        format!("FIFO or socket mode {octal}"),
                    );
                }
            }
            Kind::Symlink => {}
        }
    }
    findings.sort_by(|a, b| (&a.path, a.category).cmp(&(&b.path, b.category)));
    Ok(Audit {
        findings,
        forbid: BTreeSet::new(),
    })
}

/// Why `e` counts as a program recognised by `matches`, if it does: an
/// executable regular file by its own name or through a hard link to such a
/// name, a symlink by where it leads (or, dangling, by its own name).
fn named(
    e: &Entry,
    name: &[u8],
    groups: &Groups<'_>,
    matches: fn(&[u8]) -> bool,
) -> Option<String> {
    let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match e.kind {
        Kind::Dir => None,
        Kind::Symlink => {
            let (target, resolved) = e.link.as_ref()?;
            let leads = resolved.as_deref().map(file_name).unwrap_or_default();
            // Most links name neither: nothing to describe.
            if !matches(leads) && !matches(name) {
                return None;
            }
            let to = match resolved {
                Some(r) if r.as_os_str() != target.as_os_str() => {
                    format!(
                        "symlink to {}, resolving to {}",
                        target.display(),
                        r.display()
                    )
                }
                Some(r) => format!("symlink to {}", r.display()),
                None => format!("symlink to {}, which does not resolve", target.display()),
            };
            if matches(leads) {
                Some(to)
            } else if matches(name) {
                Some(format!("named {}, {to}", shown(name)))
            } else {
                None
            }
        }
        // A regular file counts when it can be executed: a data file that
        // happens to be called `dash` (dpkg's `status.d/dash`) is not a shell.
        Kind::File if e.mode & 0o111 != 0 => {
            if matches(name) {
                return Some(format!("named {}", shown(name)));
            }
            let group = groups.get(e.group.as_deref()?)?;
            let other = group
                .iter()
                .find(|p| **p != e.path.as_path() && matches(file_name(p)))?;
            Some(format!("hard link to {}", other.display()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for n in ["sh", "bash", "busybox", "dash"] {
            assert!(is_shell_name(n.as_bytes()), "{n}");
        }
        for n in ["shx", "bash.bashrc", "", "s"] {
            assert!(!is_shell_name(n.as_bytes()), "{n}");
        }
        for n in ["apt-get", "dpkg", "pip", "pip3", "pip3.11", "yum"] {
            assert!(is_package_manager_name(n.as_bytes()), "{n}");
        }
        for n in ["pipe", "pip-", "pip3x", "apt.conf", "pipx"] {
            assert!(!is_package_manager_name(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn forbid_list() {
        let all = Category::parse_list(&["all".into()]).expect("all");
        assert_eq!(all.len(), 7);
        let two = Category::parse_list(&["shell,package-manager".into(), "devices".into()])
            .expect("list");
        assert_eq!(
            two.into_iter().collect::<Vec<_>>(),
            vec![Category::Shell, Category::PackageManager, Category::Devices]
        );
        let err = Category::parse_list(&["shell,nope".into()]).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        for c in Category::ALL {
            assert_eq!(Category::from_name(c.name()), Some(c));
        }
    }

    fn entry(path: &str, kind: Kind, mode: u32) -> Entry {
        Entry {
            path: PathBuf::from(path),
            kind,
            mode,
            caps: None,
            link: None,
            group: None,
        }
    }

    #[test]
    fn modes_and_links() {
        let mut busybox = entry("/bin/busybox", Kind::File, 0o755);
        busybox.group = Some(PathBuf::from("/bin/busybox"));
        let mut ls = entry("/bin/ls", Kind::File, 0o755);
        ls.group = Some(PathBuf::from("/bin/busybox"));
        let mut sh = entry("/bin/sh", Kind::Symlink, 0o777);
        sh.link = Some((
            PathBuf::from("busybox"),
            Some(PathBuf::from("/bin/busybox")),
        ));
        let mut cat = entry("/bin/cat", Kind::Symlink, 0o777);
        cat.link = Some((
            PathBuf::from("busybox"),
            Some(PathBuf::from("/bin/busybox")),
        ));
        let entries = vec![
            entry("/", Kind::Dir, 0o755),
            busybox,
            cat,
            ls,
            sh,
            entry("/su", Kind::File, 0o4755),
            entry("/sg", Kind::File, 0o2711),
            entry("/tmp", Kind::Dir, 0o1777),
            entry("/open", Kind::Dir, 0o777),
            entry("/f", Kind::File, 0o666),
            entry("/var/lib/dpkg/status.d/dash", Kind::File, 0o644),
            entry("/null", Kind::CharDevice(rustix::fs::makedev(1, 3)), 0o666),
        ];
        let a = inspect(&entries, |_| Vec::new()).expect("inspect");
        let got: Vec<(String, Category)> = a
            .findings
            .iter()
            .map(|f| (f.path.display().to_string(), f.category))
            .collect();
        let want: Vec<(String, Category)> = [
            ("/bin/busybox", Category::Shell),
            ("/bin/cat", Category::Shell),
            ("/bin/ls", Category::Shell),
            ("/bin/sh", Category::Shell),
            ("/f", Category::WorldWritable),
            ("/null", Category::Devices),
            ("/open", Category::WorldWritable),
            ("/sg", Category::Setgid),
            ("/su", Category::Setuid),
        ]
        .iter()
        .map(|(p, c)| (p.to_string(), *c))
        .collect();
        assert_eq!(got, want);
        let null = &a.of(Category::Devices)[0];
        assert_eq!(null.detail, "character device 1:3, mode 0666");
        let ls = a
            .findings
            .iter()
            .find(|f| f.path == Path::new("/bin/ls"))
            .expect("ls");
        assert_eq!(ls.detail, "hard link to /bin/busybox");
    }
}
