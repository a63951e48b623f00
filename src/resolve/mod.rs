//! Searching for one `DT_NEEDED` name, exactly as the target's loader does.
//!
//! Owns the per-name search of glibc's `_dl_map_object` (names with `/`,
//! the `DT_RPATH` chain, `LD_LIBRARY_PATH`, `DT_RUNPATH`, `/etc/ld.so.cache`,
//! the default directories, `DF_1_NODEFLIB`, glibc-hwcaps and legacy hwcap
//! subdirectories (`legacy`),
//! skip-versus-fatal candidate checks) and musl's simpler order. It records
//! every directory and candidate tried, with the reason each was passed over,
//! so a missing library can be explained. The breadth-first load order and
//! the "already loaded" table live in `graph`; this module answers one
//! request at a time and memoises file probes, parses and searches. The
//! `Resolver` is `Sync`: roots are traced on several threads at once, and
//! every memo holds a pure function of its key, so which thread fills it
//! first never changes an answer. It also reads ahead, speculatively, what
//! a set of roots will need (`prefetch_closure` on the thread pool for
//! many roots; `reading_ahead_from_disk` with helper threads when a small
//! run's files are not in the page cache).

pub mod ldcache;
pub mod ldconf;
pub mod legacy;
pub mod target;
pub mod tokens;

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;

use crate::elf::{self, compat::Verdict, ElfInfo};
use crate::rootfs::{Hop, LookupError, OpenError, RootFs};
use crate::shard::ShardedMap;
use crate::util::show;

pub use target::{Flavor, Target};

/// Which glibc-hwcaps subdirectories the modelled CPU activates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Hwcaps {
    /// Model a baseline CPU: no subdirectory is active, but every variant
    /// found beside a library is recorded (and staged).
    #[default]
    Baseline,
    /// Model a CPU on which these names are active, most capable first.
    Active(Vec<Vec<u8>>),
}

/// What is preloaded, in order: each name with where it is named
/// ([`PRELOAD_ENV`] or [`PRELOAD_FILE`]).
pub type Preloads = Vec<(Vec<u8>, &'static str)>;

/// Where [`Resolver::preloads`] found a name: the simulated environment.
pub const PRELOAD_ENV: &str = "LD_PRELOAD";
/// Where [`Resolver::preloads`] found a name: the root's file.
pub const PRELOAD_FILE: &str = "/etc/ld.so.preload";

/// User-settable inputs of the search that are not in any file.
#[derive(Debug, Clone)]
pub struct Options {
    /// The simulated `LD_LIBRARY_PATH` (never taken from the host environment).
    pub library_path: Option<Vec<u8>>,
    /// The simulated `LD_PRELOAD` (names separated by spaces or `:`; never
    /// taken from the host environment): preloaded into every program
    /// (glibc: before what `/etc/ld.so.preload` names; musl reads only this).
    pub preload: Option<Vec<u8>>,
    /// The simulated `LD_AUDIT` (names separated by `:`; never taken from
    /// the host environment): glibc's audit modules for every program,
    /// before those its `DT_AUDIT` and `DT_DEPAUDIT` name.
    pub audit: Option<Vec<u8>>,
    /// The value of `$PLATFORM` (default: the architecture's usual `AT_PLATFORM`).
    pub platform: Option<Vec<u8>>,
    /// glibc-hwcaps policy.
    pub hwcaps: Hwcaps,
    /// The working directory the program starts in (relative search-path
    /// elements are taken from it); a container's default is `/`.
    pub cwd: Vec<u8>,
    /// Whether to read the sysroot's `/etc/ld.so.cache` (`--inhibit-cache` when false).
    pub use_cache: bool,
    /// Resolve as the loader does for a program in secure mode (`AT_SECURE`:
    /// setuid, setgid or file capabilities, run by another user):
    /// `LD_LIBRARY_PATH` is not read; glibc expands `$ORIGIN` only at the
    /// start of a search-path element and, in the program's own strings,
    /// only into a default directory, and refuses a start-up `DT_NEEDED`
    /// holding any token; musl ignores a search path with `$ORIGIN` of the
    /// program or of a library opened by a relative path.
    pub secure: bool,
    /// Whether a found name's search record is kept whole, every
    /// directory and candidate tried (what `--verbose` prints); otherwise
    /// only its last step, without candidates: the step and owner the
    /// graph reads. The memo keeps each record for the whole run.
    pub found_searches: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            library_path: None,
            preload: None,
            audit: None,
            platform: None,
            hwcaps: Hwcaps::Baseline,
            cwd: b"/".to_vec(),
            use_cache: true,
            secure: false,
            found_searches: true,
        }
    }
}

/// The search step through which an object was found (`found_via` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Via {
    /// A root given by the user.
    Root,
    /// The program's `PT_INTERP`.
    Interpreter,
    /// A `DT_NEEDED` naming a path (contains `/`).
    Direct,
    /// Already loaded under this name or SONAME.
    Loaded,
    /// `DT_RPATH` of the requester or one of its loaders.
    Rpath,
    /// The simulated `LD_LIBRARY_PATH`.
    LdLibraryPath,
    /// `DT_RUNPATH` of the requester.
    Runpath,
    /// `/etc/ld.so.cache`.
    Cache,
    /// A default directory.
    Default,
    /// Added by `--include`.
    Include,
    /// Declared in a `.note.dlopen` of an object in the closure.
    DlopenNote,
    /// Spelled in the read-only data of an object in the closure that
    /// calls `dlopen` (`--dlopen-strings`).
    DlopenString,
    /// An NSS module named in the staged `/etc/nsswitch.conf`.
    Nsswitch,
    /// `libgcc_s.so.1`, which glibc dlopens to unwind (`pthread_cancel`, …).
    Libgcc,
    /// A gconv module chosen with `--gconv`.
    Gconv,
    /// Named in `/etc/ld.so.preload`: glibc loads it into every program
    /// before the program's `DT_NEEDED` libraries.
    Preload,
    /// An audit module (`LD_AUDIT`, `DT_AUDIT`, `DT_DEPAUDIT`), or an object
    /// of its namespace: glibc loads each module at start-up, before
    /// everything else, into a namespace of its own
    /// (`dlmopen(LM_ID_NEWLM)`), so neither it nor its dependencies are in
    /// the program's link map or symbol scope.
    Audit,
}

impl Via {
    /// The JSON / report spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Root => "root",
            Via::Interpreter => "interpreter",
            Via::Direct => "direct",
            Via::Loaded => "loaded",
            Via::Rpath => "rpath",
            Via::LdLibraryPath => "ld_library_path",
            Via::Runpath => "runpath",
            Via::Cache => "ld.so.cache",
            Via::Default => "default",
            Via::Include => "include",
            Via::DlopenNote => "dlopen-note",
            Via::DlopenString => "dlopen-string",
            Via::Nsswitch => "nsswitch",
            Via::Libgcc => "libgcc_s",
            Via::Gconv => "gconv",
            Via::Preload => "preload",
            Via::Audit => "rtld-audit",
        }
    }

    /// Whether the edge is a load made after start-up, by `dlopen` (from
    /// a note, a string, NSS, libc's unwinder or iconv): not part of the
    /// link map the loader builds before the program runs, nor of its
    /// global scope.
    pub fn is_runtime(self) -> bool {
        matches!(
            self,
            Via::DlopenNote | Via::DlopenString | Via::Nsswitch | Via::Libgcc | Via::Gconv
        )
    }

    /// Whether the object the edge leads to is outside the program's link
    /// map and global scope: a run-time load ([`Via::is_runtime`]) or an
    /// object of an audit module's namespace ([`Via::Audit`]).
    pub fn outside_link_map(self) -> bool {
        self.is_runtime() || self == Via::Audit
    }
}

/// One object of a loader chain, as the search sees it.
#[derive(Debug, Clone)]
pub struct ChainLink {
    /// The path the object was opened by (for messages).
    pub name: Vec<u8>,
    /// Its effective `DT_RPATH` (None when it has `DT_RUNPATH`).
    pub rpath: Option<Vec<u8>>,
    /// Its `DT_RUNPATH`.
    pub runpath: Option<Vec<u8>>,
    /// Its `$ORIGIN`.
    pub origin: Vec<u8>,
    /// Whether it has `DF_1_NODEFLIB`.
    pub nodeflib: bool,
}

/// One name to resolve on behalf of a requester.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The `DT_NEEDED` string.
    pub name: &'a [u8],
    /// The requester first, then the object that loaded it, and so on up to
    /// the main program (last).
    pub chain: &'a [Arc<ChainLink>],
    /// A `DT_NEEDED` (or filter) entry loaded at start-up, not a run-time
    /// `dlopen`: in secure mode glibc refuses such a name outright when it
    /// holds a dynamic string token.
    pub needed: bool,
    /// A preload by name (`LD_PRELOAD`, `/etc/ld.so.preload`): in secure
    /// mode glibc does not look it up in the ld.so.cache and takes only a
    /// set-user-ID file from the directories it searches, passing over any
    /// other as if absent (checked against the loader).
    pub preload: bool,
    /// A load into an audit module's namespace (`__RTLD_AUDIT`): with
    /// [`Target::audit_main_runpath`], a requester without `DT_RUNPATH`
    /// searches the program's `DT_RUNPATH` after the `DT_RPATH`s.
    pub audit: bool,
}

/// What every list of one glibc search shares.
struct Searching<'a> {
    target: &'a Target,
    req: &'a Request<'a>,
    platform: Option<&'a [u8]>,
    /// A preload by name in secure mode: set-user-ID files only.
    suid_only: bool,
}

/// What happened to one candidate path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tried {
    /// No such file (or ENOTDIR): the loader moves on.
    Absent,
    /// The file (or a directory on its path) exists but may not be read
    /// (EACCES): the loader moves on.
    Denied,
    /// The file exists but the loader skips it (wrong class, machine, ABI).
    Skipped(String),
    /// The loader would abort the program on this file.
    Fatal(String),
    /// An error that makes the loader give up this search list.
    ListEnded(String),
    /// The loader uses this file.
    Used,
}

/// One directory (or the cache) consulted, with the candidates tried there.
#[derive(Debug, Clone)]
pub struct Searched {
    /// The directory as the loader spells it (after token expansion), or
    /// `ld.so.cache`.
    pub dir: Vec<u8>,
    /// Which search step it belongs to.
    pub via: Via,
    /// Whose `DT_RPATH`/`DT_RUNPATH` it came from.
    pub owner: Option<Vec<u8>>,
    /// Candidates tried there, in order.
    pub candidates: Vec<(Vec<u8>, Tried)>,
}

/// A variant of a library that another CPU's loader would take instead:
/// a glibc-hwcaps one beside it, or (glibc 2.36 and earlier) another
/// `ld.so.cache` entry of its name tagged with legacy hwcap bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The subdirectory name, e.g. `x86-64-v3`; for a legacy one its
    /// directory below the library's (`vfp/neon`), else its whole
    /// directory.
    pub name: Vec<u8>,
    /// The in-root path of the variant.
    pub path: Vec<u8>,
    /// Reached through its own `ld.so.cache` entry (a legacy hwcap
    /// variant the cache names: a directory search may spell its
    /// subdirectory otherwise), not by the staged root's directories.
    pub via_cache: bool,
}

/// An interpreter loaded once ([`Resolver::load_interpreter`]), or why it cannot be.
type Loaded = Result<Arc<Found>, String>;

/// A file the loader would map.
#[derive(Debug, Clone)]
pub struct Found {
    /// The path string the loader opens it by (its `l_name`).
    pub path: Vec<u8>,
    /// Canonical in-root path of the file.
    pub canonical: PathBuf,
    /// Symlinks traversed to reach it.
    pub hops: Vec<Hop>,
    /// `(st_dev, st_ino)` of the file, for "already loaded" checks.
    pub file_id: (u64, u64),
    /// Size in bytes.
    pub size: u64,
    /// Search step.
    pub via: Via,
    /// Whose RPATH/RUNPATH supplied the directory.
    pub owner: Option<Vec<u8>>,
    /// What the file says.
    pub info: Arc<ElfInfo>,
    /// glibc-hwcaps variants beside it (baseline policy).
    pub variants: Vec<Variant>,
    /// Its chain link with `$ORIGIN` the directory of `path` (how a
    /// library found by search or an interpreter is a requester), made
    /// once: every trace that loads the object shares it.
    pub link: std::sync::OnceLock<Arc<ChainLink>>,
    /// The first of `pthread_cancel`, `pthread_exit`, `backtrace` that a
    /// relocation of the file uses (see [`Resolver::unwind_user`]),
    /// found when the file was read.
    pub unwind: Option<Vec<u8>>,
}

impl Found {
    /// Whether `lib` meets every version of this object's `Verneed` record
    /// `vn`: [`elf::ElfInfo::requirement_met_by`], with `lib`'s identity.
    pub fn requirement_met_by(&self, vn: usize, lib: &Found) -> bool {
        self.info.requirement_met_by(vn, lib.file_id, &lib.info)
    }

    /// Whether the object meets a version requirement:
    /// [`elf::ElfInfo::check_version_indexed`].
    pub fn check_version(&self, aux: &elf::VerNeedAux) -> elf::VersionCheck {
        self.info.check_version_indexed(aux)
    }

    /// [`Self::link`], made on first use.
    pub fn link(&self) -> Arc<ChainLink> {
        crate::shard::get_or_compute(&self.link, || self.link_with_origin(dirname(&self.path)))
            .clone()
    }

    /// Its chain link with `$ORIGIN` standing for `origin`.
    fn link_with_origin(&self, origin: Vec<u8>) -> Arc<ChainLink> {
        Arc::new(ChainLink {
            name: self.path.clone(),
            rpath: self.info.effective_rpath().map(<[u8]>::to_vec),
            runpath: self.info.effective_runpath().map(<[u8]>::to_vec),
            origin,
            nodeflib: self.info.nodeflib(),
        })
    }
}

/// The outcome of one request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Found (shared: every root that resolves the name the same way holds
    /// the same value).
    Found(Arc<Found>),
    /// Not found anywhere.
    Missing,
    /// The loader would abort while trying `path`.
    Fatal {
        /// The candidate that aborts the load.
        path: Vec<u8>,
        /// glibc's reason.
        reason: String,
    },
    /// The entry is ignored by the loader (a token expanded to nothing).
    Ignored(String),
}

/// One request's outcome plus the full search record.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// What was found.
    pub outcome: Outcome,
    /// Every place consulted, in order.
    pub searched: Vec<Searched>,
    /// Explanations that apply (RPATH ignored because of RUNPATH, …), kept
    /// when nothing usable was found (a found name's notes are dropped:
    /// nothing reads them, and without them one search serves every
    /// requester whose search path is the same).
    pub notes: Vec<String>,
}

/// What probing one candidate path gave, independent of the target.
#[derive(Debug, Clone)]
enum Probe {
    Lookup {
        soft: bool,
        denied: bool,
        msg: String,
    },
    NotRegular {
        kind: &'static str,
    },
    Opened(Arc<Opened>),
}

#[derive(Debug)]
struct Opened {
    canonical: PathBuf,
    hops: Vec<Hop>,
    file_id: (u64, u64),
    size: u64,
    head: Vec<u8>,
    info: Result<Arc<ElfInfo>, elf::ParseError>,
    /// An unwind-using symbol the file references (see `unwind_user`).
    unwind: Option<Vec<u8>>,
    /// Its mode has the set-user-ID bit (`S_ISUID`).
    setuid: bool,
}

/// A program's interpreter and identity: what its [`Target`] derives from.
type TargetKey = (Option<Vec<u8>>, elf::Ident);
/// `(st_dev, st_ino)`.
type FileId = (u64, u64);

/// Locks a memo, ignoring poisoning (a panic elsewhere cannot leave a
/// memo half-written: every insert is one call).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A parsed file and its unwind fact (the `pthread_cancel`-like symbol it
/// uses, see [`Resolver::unwind_user`]).
type Parsed = (Arc<ElfInfo>, Option<Vec<u8>>);
/// A list of names (directory entries).
type Names = Vec<Vec<u8>>;
/// A search directory and a target's `e_machine`.
type DirOfMachine = (Vec<u8>, u16);

/// The memo maps: hashed with foldhash (SipHash showed in profiles).
type Map<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

/// Most paths one prefetch queues.
const PREFETCH_LIMIT: usize = 1 << 16;

/// Threads reading ahead, the pool's included, once a file read ahead was
/// found outside the page cache: the reads then wait for the disk, and
/// more of them in flight end sooner (on the 2-core VM with the page cache
/// dropped, the union's read-ahead took ≈ 85 ms with the pool's two
/// threads, ≈ 47 ms with 16, ≈ 46 ms with 32).
const READERS_WHEN_WAITING: usize = 16;

/// How many of a pool thread's last 32 first reads must have waited for
/// the disk before helpers join the read-ahead. A few files paged out of a
/// warm set (this VM's DAMON monitor pages out some within seconds) are
/// not worth 14 threads competing with the pool for the cores: with the
/// first wait as the trigger, a union run with 5 of its 928 files paged
/// out took ≈ 15 ms instead of ≈ 11 ms.
const ON_DISK_WAITS: u32 = 4;

/// `path` without `.` components, empty components and `x/..` pairs
/// (lexically; only for speculation, which the walk checks).
fn lexical(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// What a prefetch shares between its tasks.
struct Ahead {
    /// The sysroot's `ld.so.cache`, read once (before the read-ahead
    /// starts, or by its first reader that needs it).
    bytes: std::sync::OnceLock<Option<Arc<Vec<u8>>>>,
    /// Its parse, per byte order.
    caches: [std::sync::OnceLock<Option<ldcache::CacheIndex>>; 2],
    /// Whether a thread that needs the cache's parse while another makes
    /// it waits for that one (many helpers, waiting for the disk anyway)
    /// instead of parsing it too (a pool thread: see `get_or_compute`).
    wait_for_cache: bool,
    /// Paths queued so far, and how many.
    seen: ShardedMap<Vec<u8>, ()>,
    queued: std::sync::atomic::AtomicUsize,
    /// Per thread, the hashes of the paths that thread has found in
    /// `seen` or put there: most candidates (libc, the interpreter) come up
    /// again and again, and asking this first leaves `seen`'s locks, which
    /// every lookup writes, to the paths new to the thread. A hash that
    /// collides only skips a speculative read.
    known: crate::shard::PerThread<hashbrown::HashSet<u64, foldhash::fast::FixedState>>,
}

/// What the takers of one read-ahead share.
struct Takers<'r> {
    roots: &'r [Vec<u8>],
    /// Whether each root is the first of its path (the others are skipped).
    first: Vec<bool>,
    ahead: Ahead,
    /// The position of the next root to take.
    next: std::sync::atomic::AtomicUsize,
    /// Per root, 1 + the index of the pool thread that read it; 0 until
    /// read, or read by a helper.
    read_by: Vec<std::sync::atomic::AtomicUsize>,
    /// Set when the takers are to stop after the file at hand.
    stop: std::sync::atomic::AtomicBool,
    /// The paths the helpers of [`Resolver::reading_ahead_from_disk`]
    /// share, and when more may come.
    queue: Mutex<Queue>,
    more: std::sync::Condvar,
}

/// Starts `n` helpers of [`Resolver::reading_ahead_from_disk`] in
/// `scope`, each of which may start more.
fn start_helpers<'scope, 'env>(
    r: &'env Resolver<'_>,
    t: &'env Takers<'_>,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    n: usize,
) {
    for _ in 0..n {
        let started = std::thread::Builder::new()
            .name("closure-read".into())
            .spawn_scoped(scope, move || {
                let _on_disk = crate::elf::pool::OnDisk::enter();
                r.help(t, &|k| start_helpers(r, t, scope, k));
            });
        if started.is_ok() {
            r.helpers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            // Counted as alive: no longer.
            lock(&t.queue).alive -= 1;
            t.more.notify_all();
        }
    }
}

/// Paths queued for any helper to read, the next root, how many helpers
/// are reading (and may queue more), and how many there are.
#[derive(Default)]
struct Queue {
    paths: Vec<Vec<u8>>,
    next_root: usize,
    busy: usize,
    /// Helpers started and not ended.
    alive: usize,
}

impl<'r> Takers<'r> {
    /// Takers of `roots`, each queued once, at its first place.
    fn new(
        roots: &'r [Vec<u8>],
        bytes: std::sync::OnceLock<Option<Arc<Vec<u8>>>>,
        wait_for_cache: bool,
    ) -> Self {
        let ahead = Ahead {
            bytes,
            caches: [std::sync::OnceLock::new(), std::sync::OnceLock::new()],
            wait_for_cache,
            seen: ShardedMap::with_capacity(roots.len()),
            queued: std::sync::atomic::AtomicUsize::new(0),
            known: crate::shard::PerThread::new(),
        };
        let mut order: Vec<usize> = (0..roots.len()).collect();
        order.sort_unstable_by(|&a, &b| roots[a].cmp(&roots[b]).then(a.cmp(&b)));
        let mut first = vec![false; roots.len()];
        for (n, &k) in order.iter().enumerate() {
            if n == 0 || roots[order[n - 1]] != roots[k] {
                first[k] = true;
                ahead.seen.insert(roots[k].clone(), ());
            }
        }
        let queued = first.iter().filter(|&&f| f).count();
        ahead
            .queued
            .store(queued, std::sync::atomic::Ordering::Relaxed);
        Takers {
            roots,
            first,
            ahead,
            next: std::sync::atomic::AtomicUsize::new(0),
            read_by: (0..roots.len())
                .map(|_| std::sync::atomic::AtomicUsize::new(0))
                .collect(),
            stop: std::sync::atomic::AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
            more: std::sync::Condvar::new(),
        }
    }
}

/// The resolver for one sysroot: holds the file probes and the parsed cache.
#[derive(Debug)]
pub struct Resolver<'fs> {
    fs: &'fs RootFs,
    opts: Options,
    probes: ShardedMap<Vec<u8>, Probe>,
    /// Parsed files by identity, with their unwind fact (see `unwind_user`).
    infos: ShardedMap<FileId, Parsed>,
    /// The parsed `ld.so.cache`, per byte order (read without a lock:
    /// every search of every thread asks).
    caches: [std::sync::OnceLock<Option<ldcache::CacheIndex>>; 2],
    cache_problem: Mutex<Option<String>>,
    /// One warning per loader that ignores some `--hwcaps` names
    /// ([`Self::target_warnings`]).
    hwcaps_ignored: Mutex<std::collections::BTreeSet<String>>,
    /// Helper threads the read-aheads started (files on the disk).
    helpers: std::sync::atomic::AtomicUsize,
    /// One cell per key, filled once: threads asking at the same time wait
    /// for the first (detection may read much of the interpreter).
    targets: Mutex<Map<TargetKey, Arc<std::sync::OnceLock<Arc<Target>>>>>,
    /// Read far more often than written (a lookup per name of every
    /// trace): readers do not wait for each other.
    memo: ShardedMap<Vec<u8>, Arc<Resolution>>,
    ld_conf: Mutex<Option<Arc<ldconf::LdConf>>>,
    /// `glibc-hwcaps` subdirectory names by library directory.
    hwcaps_dirs: Mutex<Map<Vec<u8>, Arc<Names>>>,
    /// Per thread, copies of the `hwcaps_dirs` answers it has used (most
    /// are empty): asked for every library found, from every thread, the
    /// shared map's lock went from core to core on each.
    hwcaps_known: crate::shard::PerThread<Map<Vec<u8>, Names>>,
    /// Each glibc interpreter's minor version, by file.
    interp_versions: Mutex<Map<(u64, u64), Option<u32>>>,
    /// The legacy hwcap subdirectories that exist, by search directory and
    /// machine ([`Self::legacy_subdirs`]; the list of them is a function
    /// of the machine and the options).
    legacy_dirs: Mutex<Map<DirOfMachine, Arc<Names>>>,
    /// The legacy hwcap subdirectories some CPU's loader tries, among
    /// those that exist, by search directory and machine
    /// ([`Self::possible_legacy_subdirs`], baseline runs).
    legacy_possible: Mutex<Map<DirOfMachine, Arc<Names>>>,
    /// Interpreters by `PT_INTERP` string ([`Self::load_interpreter`]).
    interps: Mutex<Map<Vec<u8>, Loaded>>,
    /// What is preloaded, with where it is named ([`Self::preloads`]).
    preloads: std::sync::OnceLock<Arc<Preloads>>,
    /// [`file_contains`] answers by interpreter file and needle: targets
    /// are per identity (OS ABI, file type), so programs of several kinds,
    /// or naming one interpreter by several paths, ask about one file.
    interp_scans: Mutex<Map<(FileId, Vec<u8>), bool>>,
    /// Interpreter files' read-only data, read once per `PT_INTERP`
    /// string: detection asks several needles and the version of one file
    /// (it was opened and its 40 KiB read four times per program kind).
    interp_data: Mutex<Map<Vec<u8>, Option<Arc<InterpData>>>>,
    /// [`Self::dlopen_strings`] answers by file.
    dlopen_strings: Mutex<Map<FileId, Arc<[Vec<u8>]>>>,
    /// [`Self::symbols`] answers by file.
    symbols: Mutex<Map<FileId, Arc<elf::symbols::Indexed>>>,
}

impl<'fs> Resolver<'fs> {
    /// A resolver over `fs` with the given options.
    pub fn new(fs: &'fs RootFs, opts: Options) -> Self {
        Resolver {
            fs,
            opts,
            probes: ShardedMap::default(),
            infos: ShardedMap::default(),
            caches: [std::sync::OnceLock::new(), std::sync::OnceLock::new()],
            cache_problem: Mutex::new(None),
            hwcaps_ignored: Mutex::default(),
            targets: Mutex::new(Map::default()),
            memo: ShardedMap::default(),
            ld_conf: Mutex::new(None),
            hwcaps_dirs: Mutex::new(Map::default()),
            hwcaps_known: Default::default(),
            helpers: Default::default(),
            interp_versions: Mutex::new(Map::default()),
            legacy_dirs: Mutex::new(Map::default()),
            legacy_possible: Mutex::new(Map::default()),
            interps: Mutex::new(Map::default()),
            preloads: std::sync::OnceLock::new(),
            interp_scans: Mutex::new(Map::default()),
            interp_data: Mutex::new(Map::default()),
            dlopen_strings: Mutex::new(Map::default()),
            symbols: Mutex::new(Map::default()),
        }
    }

    /// `found`'s dynamic symbols indexed by name, read once per file (for
    /// binding what a run-time `dlopen` maps); an empty table when the
    /// file is no longer the one that was parsed.
    pub fn symbols(&self, found: &Found) -> Arc<elf::symbols::Indexed> {
        if let Some(known) = lock(&self.symbols).get(&found.file_id) {
            return known.clone();
        }
        let table = match self.fs.open(&found.canonical) {
            Ok(f) if (f.meta.dev(), f.meta.ino()) == found.file_id => {
                elf::symbols::read(&f.file, &found.info)
            }
            _ => elf::symbols::Symbols::default(),
        };
        lock(&self.symbols)
            .entry(found.file_id)
            .or_insert_with(|| Arc::new(elf::symbols::Indexed::new(table)))
            .clone()
    }

    /// The library names `found`'s read-only data spells when it calls
    /// `dlopen` or `dlmopen` ([`elf::libnames`]), worked out once per file;
    /// nothing for an object that does not call them, or whose file is no
    /// longer the one that was parsed.
    pub fn dlopen_strings(&self, found: &Found) -> Arc<[Vec<u8>]> {
        if let Some(known) = lock(&self.dlopen_strings).get(&found.file_id) {
            return known.clone();
        }
        let names: Arc<[Vec<u8>]> = match self.fs.open(&found.canonical) {
            Ok(f)
                if (f.meta.dev(), f.meta.ino()) == found.file_id
                    && elf::libnames::calls_dlopen(&f.file, &found.info) =>
            {
                elf::libnames::dlopen_candidates(&f.file, &found.info, f.meta.len()).into()
            }
            _ => Arc::from(Vec::new()),
        };
        lock(&self.dlopen_strings)
            .entry(found.file_id)
            .or_insert(names)
            .clone()
    }

    /// What glibc's loader preloads into every program, in its order, each
    /// with where it is named: the simulated `LD_PRELOAD`
    /// ([`Options::preload`], split at spaces and `:` as `rtld` does), then
    /// the root's `/etc/ld.so.preload` ([`ldconf::preload_names`]; read once,
    /// nothing without the file).
    pub fn preloads(&self) -> Arc<Preloads> {
        crate::shard::get_or_compute(&self.preloads, || {
            let mut all: Vec<(Vec<u8>, &'static str)> = Vec::new();
            if let Some(env) = &self.opts.preload {
                all.extend(
                    env.split(|&b| b == b' ' || b == b':')
                        .filter(|n| !n.is_empty())
                        .map(|n| (n.to_vec(), PRELOAD_ENV)),
                );
            }
            if let Ok(f) = self.fs.read(Path::new(PRELOAD_FILE), ldconf::MAX_CONF_SIZE) {
                all.extend(
                    ldconf::preload_names(&f)
                        .into_iter()
                        .map(|n| (n, PRELOAD_FILE)),
                );
            }
            Arc::new(all)
        })
        .clone()
    }

    /// The file system searched.
    pub fn fs(&self) -> &'fs RootFs {
        self.fs
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The sysroot's `/etc/ld.so.conf` (for explanations), parsed once.
    pub fn ld_conf(&self) -> Arc<ldconf::LdConf> {
        if let Some(c) = lock(&self.ld_conf).as_ref() {
            return c.clone();
        }
        let c = Arc::new(ldconf::parse(self.fs, Path::new("/etc/ld.so.conf")));
        *lock(&self.ld_conf) = Some(c.clone());
        c
    }

    /// Why the sysroot's `ld.so.cache` could not be used, if it could not.
    pub fn cache_problem(&self) -> Option<String> {
        lock(&self.cache_problem).clone()
    }

    /// How many helper threads the read-aheads started because files were
    /// on the disk (see [`Self::prefetch_closure`] and
    /// [`Self::reading_ahead_from_disk`]); 0 when all were in memory.
    pub fn helpers_started(&self) -> usize {
        self.helpers.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many distinct files were parsed so far.
    pub fn files_read(&self) -> usize {
        self.infos.len()
    }

    /// Derives the target of a program from its identity and `PT_INTERP`
    /// (once per interpreter and identity).
    pub fn target_for(&self, info: &ElfInfo) -> Target {
        (*self.shared_target(info)).clone()
    }

    /// [`Self::target_for`], shared: derived once per interpreter and
    /// identity, handed out without a copy (every trace asks).
    pub fn shared_target(&self, info: &ElfInfo) -> Arc<Target> {
        let key = (info.interp.clone(), info.ident);
        let cell = lock(&self.targets).entry(key).or_default().clone();
        crate::shard::get_or_compute(&cell, || Arc::new(self.detect_target(info))).clone()
    }

    /// The first of `pthread_cancel`, `pthread_exit`, `backtrace` that a
    /// relocation of `found` uses (glibc then dlopens `libgcc_s.so.1`).
    /// Computed when the file was probed ([`Found::unwind`]).
    pub fn unwind_user(&self, found: &Found) -> Option<Vec<u8>> {
        found.unwind.clone()
    }

    fn detect_target(&self, info: &ElfInfo) -> Target {
        let mut target = self.detect_loader(info);
        let platform = self
            .opts
            .platform
            .clone()
            .or_else(|| target.arch.platform.map(|p| p.as_bytes().to_vec()))
            .unwrap_or_default();
        let active: &[Vec<u8>] = match &self.opts.hwcaps {
            Hwcaps::Active(v) => v,
            Hwcaps::Baseline => &[],
        };
        target.legacy = legacy::Legacy::new(&target, &platform, active);
        if target.flavor == Flavor::Glibc {
            let loader = bytes_path(&self.loader_of(info));
            if target.hwcaps_known.is_none() {
                target.hwcaps_known = self.interp_hwcaps_names(&loader, target.arch.hwcaps);
            }
            let ignored = target.model_hwcaps(active);
            target.model_x86_isa(active);
            if !ignored.is_empty() {
                lock(&self.hwcaps_ignored).insert(ignored_hwcaps_warning(&target, &ignored));
            }
            let minor = self.interp_minor_version(&loader);
            target.rtld_listed_alone = minor.is_some_and(|m| m >= RTLD_LISTED_ALONE_SINCE);
            target.dlopen_refuses_exec_stack =
                minor.is_some_and(|m| m >= EXEC_STACK_DLOPEN_REFUSED_SINCE);
            target.enotdir_ends_list = minor.is_none_or(|m| m < ENOTDIR_SKIPPED_SINCE);
            target.check_match_2_41 = minor.is_some_and(|m| m >= CHECK_MATCH_2_41_SINCE);
            target.secure_origin_normalized =
                minor.is_some_and(|m| m >= SECURE_ORIGIN_NORMALIZED_SINCE);
            target.dt_audit = minor.is_some_and(|m| m >= DT_AUDIT_SINCE);
            target.audit_main_runpath = minor.is_some_and(|m| m >= AUDIT_MAIN_RUNPATH_SINCE);
            target.refuses_pie = minor.is_none_or(|m| m >= PIE_REFUSED_SINCE);
        }
        target
    }

    /// The minor version of the glibc interpreter at `path`, from its
    /// "release version 2.N" string (glibc 2.31's has none), read once per
    /// file.
    fn interp_minor_version(&self, path: &Path) -> Option<u32> {
        let data = self.interp_data(path)?;
        if let Some(&known) = lock(&self.interp_versions).get(&data.id) {
            return known;
        }
        // The first "release version 2." decides, as the windowed scan's
        // first match does, even when no digits follow it.
        let found = match data.rodata.iter().find_map(|b| version_in(b)) {
            Some(v) => v,
            None => self
                .fs
                .open(path)
                .ok()
                .and_then(|f| glibc_minor_version(&f)),
        };
        lock(&self.interp_versions).insert(data.id, found);
        found
    }

    /// The `glibc-hwcaps` names compiled into the glibc loader at `path`
    /// ([`target::hwcaps_names_in`]; `known` the architecture's), from its
    /// read-only data, or from the whole file (at most 8 MiB) when that has
    /// none; `None` when the file cannot be read or holds no such string.
    fn interp_hwcaps_names(&self, path: &Path, known: &[&str]) -> Option<Vec<Vec<u8>>> {
        let data = self.interp_data(path)?;
        if let Some(names) = data
            .rodata
            .iter()
            .find_map(|b| target::hwcaps_names_in(b, known))
        {
            return Some(names);
        }
        let f = self.fs.open(path).ok()?;
        let len = f.meta.len();
        if len > 8 << 20 {
            return None;
        }
        let whole = crate::elf::read_vec_at(&f.file, len as usize, 0).ok()?;
        target::hwcaps_names_in(&whole, known)
    }

    /// The warnings of the targets derived so far: `--hwcaps` names a
    /// loader does not know, one line per loader, sorted.
    pub fn target_warnings(&self) -> Vec<String> {
        lock(&self.hwcaps_ignored).iter().cloned().collect()
    }

    /// The file at `path`'s identity and read-only data, read once per
    /// path ([`InterpData`]); `None` when it cannot be opened.
    fn interp_data(&self, path: &Path) -> Option<Arc<InterpData>> {
        let key = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
        if let Some(known) = lock(&self.interp_data).get(key) {
            return known.clone();
        }
        let data = self.fs.open(path).ok().map(|f| {
            let len = f.meta.len();
            let ranges = if len > 64 << 20 {
                Vec::new()
            } else {
                crate::elf::read_only_data(&f.file, len)
            };
            let total: u64 = ranges.iter().map(|&(_, size)| size).sum();
            let rodata = if total <= INTERP_DATA_MAX {
                ranges
                    .iter()
                    .filter_map(|&(at, size)| {
                        let end = at.checked_add(size)?.min(len);
                        crate::elf::read_vec_at(&f.file, end.checked_sub(at)? as usize, at).ok()
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Arc::new(InterpData {
                id: (f.meta.dev(), f.meta.ino()),
                rodata,
            })
        });
        lock(&self.interp_data)
            .entry(key.to_vec())
            .or_insert(data)
            .clone()
    }

    fn detect_loader(&self, info: &ElfInfo) -> Target {
        let loader = self.loader_of(info);
        // A library's loader is musl's when that is the sysroot's.
        let interp = info.interp.as_deref().or_else(|| {
            let base = loader.rsplit(|&b| b == b'/').next().unwrap_or_default();
            base.starts_with(b"ld-musl-").then_some(loader.as_slice())
        });
        let fs = self.fs;
        Target::detect(
            info.ident,
            interp,
            &|needle: &[u8]| self.interp_has(&bytes_path(&loader), needle),
            &|d: &str| fs.is_dir(Path::new(d)),
            &|p: &[u8]| match fs.read(&bytes_path(p), 1 << 20) {
                Ok(b) => Some(b),
                Err(OpenError::Lookup(LookupError::NotFound)) => None,
                Err(_) => Some(Vec::new()),
            },
        )
    }

    /// The loader that loads `info`'s file: its `PT_INTERP`, or for a library
    /// (no `PT_INTERP`) the architecture's usual glibc one, which `ldd` and
    /// `ld.so --list` run on it — unless the sysroot has no such file but
    /// musl's (`/lib/ld-musl-ARCH.so.1`, an Alpine root): then musl's, whose
    /// `ldd` is that file. Its strings tell the loader's generation.
    fn loader_of(&self, info: &ElfInfo) -> Vec<u8> {
        if let Some(i) = &info.interp {
            return i.clone();
        }
        let arch = target::arch_facts(&info.ident);
        let musl = format!("/lib/ld-musl-{}.so.1", arch.musl_arch);
        let exists = |p: &str| self.fs.kind(Path::new(p)).is_ok();
        if !exists(arch.glibc_interp) && exists(&musl) {
            return musl.into_bytes();
        }
        arch.glibc_interp.as_bytes().to_vec()
    }

    /// Whether the interpreter at `path` holds `needle` ([`file_contains`]),
    /// asked once per file and needle.
    fn interp_has(&self, path: &Path, needle: &[u8]) -> bool {
        let Some(data) = self.interp_data(path) else {
            return false;
        };
        let key = (data.id, needle.to_vec());
        if let Some(&known) = lock(&self.interp_scans).get(&key) {
            return known;
        }
        // The read-only data in memory first; without a match there, the
        // whole file as `file_contains` reads it (the same answer).
        let finder = memchr::memmem::Finder::new(needle);
        let has = (!needle.is_empty()
            && needle.len() <= SCAN_WINDOW
            && data.rodata.iter().any(|b| finder.find(b).is_some()))
            || self.fs.open(path).is_ok_and(|f| file_contains(&f, needle));
        lock(&self.interp_scans).insert(key, has);
        has
    }

    /// Opens and parses `path` (a root or an interpreter): the canonical
    /// location, hops and info, or why it cannot be used.
    pub fn load_path(&self, path: &[u8]) -> Result<Found, String> {
        match self.probe(path) {
            Probe::Lookup { msg, .. } => Err(msg),
            Probe::NotRegular { kind } => Err(format!("not a regular file ({kind})")),
            Probe::Opened(o) => match &o.info {
                Ok(info) => Ok(Found {
                    path: path.to_vec(),
                    canonical: o.canonical.clone(),
                    hops: o.hops.clone(),
                    file_id: o.file_id,
                    size: o.size,
                    via: Via::Root,
                    owner: None,
                    info: info.clone(),
                    variants: Vec::new(),
                    link: std::sync::OnceLock::new(),
                    unwind: o.unwind.clone(),
                }),
                Err(e) => Err(e.to_string()),
            },
        }
    }

    /// [`Self::load_path`] of an interpreter (`via` is
    /// [`Via::Interpreter`]), made once per path: every trace of a program
    /// with that `PT_INTERP` shares it.
    pub fn load_interpreter(&self, path: &[u8]) -> Result<Arc<Found>, String> {
        if let Some(r) = lock(&self.interps).get(path) {
            return r.clone();
        }
        let r = self.load_path(path).map(|mut f| {
            f.via = Via::Interpreter;
            Arc::new(f)
        });
        lock(&self.interps)
            .entry(path.to_vec())
            .or_insert(r)
            .clone()
    }

    fn probe(&self, path: &[u8]) -> Probe {
        if let Some(p) = self.probes.get_cloned(path) {
            return p;
        }
        let p = self.probe_uncached(path);
        self.probes.insert(path.to_vec(), p.clone());
        p
    }

    fn probe_uncached(&self, path: &[u8]) -> Probe {
        let cached = |id: &FileId| self.infos.get_cloned(id);
        let p = probe_file(self.fs, &self.opts.cwd, path, &cached);
        self.remember(&p);
        p
    }

    /// Records the parse of a probed file under its identity (first wins:
    /// every parse of one file is the same).
    fn remember(&self, p: &Probe) {
        if let Probe::Opened(o) = p {
            if let Ok(i) = &o.info {
                // The value is made before the shard is locked; one lock.
                self.infos
                    .insert_new(o.file_id, (i.clone(), o.unwind.clone()));
            }
        }
    }

    /// Probes `roots` and, transitively, the libraries the ld.so.cache
    /// names for what they need, on all cores, so that most of a large
    /// closure is read in parallel. Each file, once parsed, queues the
    /// libraries it leads to (no waves, no waiting for the slowest file of
    /// a wave). Speculative and harmless: the walk decides what is used; a
    /// path read here is just found ready.
    ///
    /// Every pool thread takes the roots in the order given, the next one
    /// as it is free, and reads what each leads to before its next root.
    /// When files' first reads find them outside the page cache (4 of a
    /// pool thread's last 32), the reads wait for the disk, not the CPU:
    /// helper threads (16 readers in all) then take roots the same way,
    /// so that more reads are in flight, and every file is read without
    /// the kernel's read-ahead (only the pages asked for). Returns, per root, the pool
    /// thread that read it (`None` for a repeat of an earlier root, for a
    /// root a helper read, and for all of them when the pool has one
    /// thread, which reads nothing ahead): the caller traces a root on
    /// that thread, whose caches hold its parse.
    pub fn prefetch_closure(&self, roots: &[Vec<u8>]) -> Vec<Option<usize>> {
        if rayon::current_num_threads() < 2 {
            return vec![None; roots.len()];
        }
        // Read here on its own, so a broken cache is reported (or not) by the
        // walk exactly as without speculation.
        let bytes = self.cache_bytes();
        // Room for what a run of this many roots is likely to remember (the
        // union of /usr/bin and /usr/sbin: 1.4 paths probed and files
        // parsed, 0.7 searches, per root), so the tables are not grown by
        // doubling on the way (each growth touches the new table's memory).
        self.probes.reserve(roots.len() * 3 / 2);
        self.infos.reserve(roots.len() * 3 / 2);
        self.memo.reserve(roots.len());
        let t = Takers::new(roots, std::sync::OnceLock::from(bytes), false);
        let threads = rayon::current_num_threads();
        let helped = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|helpers| {
            rayon::scope(|s| {
                let (t, helped) = (&t, &helped);
                // One taker per pool thread: the roots are dealt in order
                // as the threads come free, so each thread's share is
                // spread over the whole list (the traces then merge in
                // order without holding many back). A thread that runs two
                // takers runs them one after the other (the second finds
                // the list taken); none waits for a given thread.
                for _ in 0..threads {
                    s.spawn(move |_| {
                        let me = rayon::current_thread_index();
                        // The files are on the disk: more reads in flight
                        // (threads that mostly wait), once per run, and
                        // only the pages asked for.
                        let start = || {
                            if helped.swap(true, std::sync::atomic::Ordering::Relaxed) {
                                return;
                            }
                            for _ in threads..READERS_WHEN_WAITING {
                                let started = std::thread::Builder::new()
                                    .name("closure-read".into())
                                    .spawn_scoped(helpers, move || {
                                        let _on_disk = crate::elf::pool::OnDisk::enter();
                                        self.take(t, None, None)
                                    });
                                if started.is_ok() {
                                    self.helpers
                                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                            }
                        };
                        self.take(t, me, Some(&start));
                    });
                }
            });
        });
        self.hand_over(t.ahead);
        t.read_by
            .into_iter()
            .map(|t| t.into_inner().checked_sub(1))
            .collect()
    }

    /// Runs `work` (the trace of `roots`, on the calling thread) with the
    /// closure of `roots` read ahead by helper threads when the files are
    /// on the disk: the first root is probed here (memoised, so `work`
    /// finds it done), and when its first read waited for the disk, a
    /// helper thread reads the closure ahead while `work` runs, starting
    /// more (16 at most) while the files it reads come from the disk, and
    /// all stop once `work` is done. With the files in memory, `work` alone
    /// runs: a small run is fastest on one thread.
    pub fn reading_ahead_from_disk<R>(&self, roots: &[Vec<u8>], work: impl FnOnce() -> R) -> R {
        let Some(root) = roots.first() else {
            return work();
        };
        crate::elf::pool::waited(); // an earlier read's
        let _ = self.probe(root);
        if !crate::elf::pool::waited() {
            return work();
        }
        // The cache is read by the first helper that needs it, not here.
        let t = Takers::new(roots, std::sync::OnceLock::new(), true);
        let out = std::thread::scope(|helpers| {
            let t = &t;
            // One helper to start with; helpers start more as they find
            // files (see `help`), so the trace starts at once and a small
            // closure gets few threads (16 threads started for a program
            // of three objects made its run 1.3 ms slower).
            lock(&t.queue).alive = 1;
            start_helpers(self, t, helpers, 1);
            // The trace reads what the helpers have not reached yet.
            let on_disk = crate::elf::pool::OnDisk::enter();
            let out = work();
            drop(on_disk);
            t.stop.store(true, std::sync::atomic::Ordering::Relaxed);
            drop(lock(&t.queue)); // no helper between its check and its wait
            t.more.notify_all();
            out
        });
        self.hand_over(t.ahead);
        out
    }

    /// The bytes of the sysroot's `ld.so.cache` for a read-ahead, if it
    /// is used and can be read.
    fn cache_bytes(&self) -> Option<Arc<Vec<u8>>> {
        if self.opts.use_cache {
            self.fs
                .read(Path::new("/etc/ld.so.cache"), 256 << 20)
                .ok()
                .map(Arc::new)
        } else {
            None
        }
    }

    /// Hands a read-ahead's parse of the cache to the walk. A cache that
    /// parsed there parses the same for the walk (same bytes): it is
    /// handed over with its lookup index, not read and parsed again. One
    /// that did not is left for the walk to read and report.
    fn hand_over(&self, ahead: Ahead) {
        let [little, big] = ahead.caches;
        for (big, cell) in [(false, little), (true, big)] {
            if let Some(Some(cache)) = cell.into_inner() {
                // Unless the walk parsed it first (the same bytes).
                let _ = self.caches[usize::from(big)].set(Some(cache));
            }
        }
    }

    /// One helper of [`Self::reading_ahead_from_disk`]: a few roots lead
    /// to many files, so every path found goes to the queue all helpers
    /// share; a helper takes the last queued path, else the next root,
    /// else waits while others read (they may queue more), and ends when
    /// nothing is queued or being read, or the read-ahead is stopped. When
    /// the file it read waited for the disk and it queues more paths than
    /// there are idle helpers, it asks `more` to start that many (up to
    /// [`READERS_WHEN_WAITING`] alive): a small closure, or one in
    /// memory, gets few threads.
    fn help(&self, t: &Takers<'_>, more: &dyn Fn(usize)) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut found: Vec<Vec<u8>> = Vec::new();
        loop {
            let path = {
                let mut q = lock(&t.queue);
                loop {
                    if t.stop.load(Relaxed) {
                        q.alive -= 1;
                        return;
                    }
                    if let Some(p) = q.paths.pop() {
                        q.busy += 1;
                        break p;
                    }
                    let mut root = None;
                    while root.is_none() && q.next_root < t.roots.len() {
                        let k = q.next_root;
                        q.next_root += 1;
                        root = t.first[k].then(|| t.roots[k].clone());
                    }
                    if let Some(r) = root {
                        q.busy += 1;
                        break r;
                    }
                    if q.busy == 0 {
                        q.alive -= 1;
                        drop(q);
                        t.more.notify_all();
                        return;
                    }
                    q = t.more.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            self.prefetch_one(path, &t.ahead, &mut found);
            // More helpers only while the files come from the disk.
            let waited = crate::elf::pool::waited();
            let mut q = lock(&t.queue);
            q.paths.append(&mut found);
            q.busy -= 1;
            let idle = q.alive - q.busy;
            let start = if waited {
                q.paths
                    .len()
                    .saturating_sub(idle)
                    .min(READERS_WHEN_WAITING.saturating_sub(q.alive))
            } else {
                0
            };
            q.alive += start;
            drop(q);
            t.more.notify_all();
            if start > 0 {
                more(start);
            }
        }
    }

    /// One taker of a read-ahead: the next root in order, then what it
    /// leads to, depth first, before the next root, until the roots run
    /// out or the read-ahead is stopped; `me` is the pool thread's index
    /// (None on a helper). With `on_disk`, a pool thread's taker watches
    /// its first reads: once [`ON_DISK_WAITS`] of its last 32 waited for
    /// the disk, it calls `on_disk` (to start helpers) and reads its
    /// files from then on as [`crate::elf::pool::OnDisk`] says.
    fn take(&self, t: &Takers<'_>, me: Option<usize>, on_disk: Option<&dyn Fn()>) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut stack: Vec<Vec<u8>> = Vec::new();
        let mut watch = on_disk;
        let mut _reading_from_disk = None;
        if watch.is_some() {
            crate::elf::pool::forget_recent(); // earlier reads'
        }
        loop {
            let k = t.next.fetch_add(1, Relaxed);
            let Some(root) = t.roots.get(k) else {
                return;
            };
            if !t.first[k] {
                continue;
            }
            t.read_by[k].store(me.map_or(0, |i| i + 1), Relaxed);
            stack.push(root.clone());
            while let Some(p) = stack.pop() {
                if t.stop.load(Relaxed) {
                    return;
                }
                self.prefetch_one(p, &t.ahead, &mut stack);
                if let Some(start) = watch {
                    if crate::elf::pool::recent_waits() >= ON_DISK_WAITS {
                        _reading_from_disk = Some(crate::elf::pool::OnDisk::enter());
                        start();
                        watch = None;
                    }
                }
            }
        }
    }

    /// Probes one path of [`Self::prefetch_closure`] and pushes what it
    /// leads to, if not queued before, onto `todo`.
    fn prefetch_one(&self, path: Vec<u8>, ahead: &Ahead, todo: &mut Vec<Vec<u8>>) {
        let known = self.probes.get_cloned(path.as_slice());
        let probe = match known {
            Some(p) => p,
            None => {
                let p = probe_file(self.fs, &self.opts.cwd, &path, &|_| None);
                self.remember(&p);
                self.probes.get_or_insert(path.clone(), p)
            }
        };
        let Probe::Opened(o) = probe else { return };
        let Ok(info) = &o.info else { return };
        // Borrowed until known to be new: most candidates (libc, the
        // interpreter) were queued long before.
        let mut next: Vec<std::borrow::Cow<'_, [u8]>> = Vec::new();
        if let Some(i) = &info.interp {
            next.push(i.as_slice().into());
        }
        let big = info.ident.big_endian;
        let parse = || {
            ahead
                .bytes
                .get_or_init(|| self.cache_bytes())
                .as_ref()
                .and_then(|b| ldcache::CacheIndex::parse(b.clone(), big).ok())
        };
        let cell = &ahead.caches[usize::from(big)];
        let cache = if ahead.wait_for_cache {
            cell.get_or_init(parse)
        } else {
            crate::shard::get_or_compute(cell, parse)
        };
        if let Some(cache) = cache {
            for name in info.needed.iter().filter(|n| !n.contains(&b'/')) {
                for e in cache.lookup(name) {
                    if ldcache::flags_accepted(
                        e.flags,
                        info.ident.machine,
                        info.ident.is_64,
                        info.ident.e_flags,
                    ) {
                        next.push(e.value.into());
                    }
                }
            }
        }
        // Its own search path too (RUNPATH, else RPATH; `$ORIGIN` as this
        // path's directory; lists with other tokens are left to the walk).
        if let Some(list) = info.runpath.as_ref().or(info.rpath.as_ref()) {
            let origin = dirname(&path);
            for dir in list.split(|&b| b == b':').filter(|d| !d.is_empty()) {
                let dir = if let Some(rest) = dir.strip_prefix(b"$ORIGIN") {
                    [origin.as_slice(), rest].concat()
                } else {
                    dir.to_vec()
                };
                if dir.contains(&b'$') || !dir.starts_with(b"/") {
                    continue; // other tokens, or relative to the working directory
                }
                for name in info.needed.iter().filter(|n| !n.contains(&b'/')) {
                    let mut p = dir.clone();
                    p.push(b'/');
                    p.extend_from_slice(name);
                    // Spelled without `.` and `..`, so a list that leads
                    // back to the file itself (`$ORIGIN/.`) ends here.
                    next.push(lexical(&p).into());
                }
            }
        }
        for p in next {
            // Speculation is bounded whatever the search paths do.
            if ahead.queued.load(std::sync::atomic::Ordering::Relaxed) >= PREFETCH_LIMIT {
                break;
            }
            let h = std::hash::BuildHasher::hash_one(
                &foldhash::fast::FixedState::default(),
                p.as_ref(),
            );
            if !ahead.known.with(|k| k.insert(h)) || ahead.seen.contains_key(p.as_ref()) {
                continue;
            }
            // Owned before the shard is locked: no allocation under it.
            let p = p.into_owned();
            if ahead.seen.insert_new(p.clone(), ()) {
                let before = ahead
                    .queued
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if before >= PREFETCH_LIMIT {
                    break;
                }
                todo.push(p);
            }
        }
    }

    fn cache_for(&self, target: &Target) -> &Option<ldcache::CacheIndex> {
        let big = target.ident.big_endian;
        crate::shard::get_or_compute(&self.caches[usize::from(big)], || self.read_cache(big))
    }

    /// The sysroot's `ld.so.cache` parsed for byte order `big`; `None`
    /// (the problem noted) when it cannot be used.
    fn read_cache(&self, big: bool) -> Option<ldcache::CacheIndex> {
        if self.opts.use_cache {
            match self.fs.read(Path::new("/etc/ld.so.cache"), 256 << 20) {
                Ok(bytes) => match ldcache::CacheIndex::parse(Arc::new(bytes), big) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        *lock(&self.cache_problem) =
                            Some(format!("/etc/ld.so.cache is not usable: {e}"));
                        None
                    }
                },
                Err(OpenError::Lookup(LookupError::NotFound)) => None,
                Err(e) => {
                    *lock(&self.cache_problem) =
                        Some(format!("/etc/ld.so.cache cannot be read: {e}"));
                    None
                }
            }
        } else {
            None
        }
    }

    /// Tries one candidate path for `target`.
    fn try_candidate(&self, target: &Target, path: &[u8]) -> (Tried, Option<Arc<Opened>>) {
        match self.probe(path) {
            Probe::Lookup {
                soft: true,
                denied: true,
                ..
            } => (Tried::Denied, None),
            Probe::Lookup { soft: true, .. } => (Tried::Absent, None),
            Probe::Lookup {
                soft: false, msg, ..
            } => (Tried::ListEnded(msg), None),
            Probe::NotRegular { kind: "socket" } => {
                (Tried::ListEnded("a socket cannot be opened".into()), None)
            }
            Probe::NotRegular { kind } => (
                Tried::Fatal(match kind {
                    "directory" => "cannot read file data: Is a directory".to_string(),
                    "FIFO" => "a FIFO: the loader would block reading it".to_string(),
                    other => format!("not a regular file ({other})"),
                }),
                None,
            ),
            Probe::Opened(o) => {
                if target.flavor == Flavor::Musl {
                    // musl uses the first file that opens, whatever it is.
                    return match &o.info {
                        Ok(_) => (Tried::Used, Some(o)),
                        Err(e) => (Tried::Fatal(e.to_string()), None),
                    };
                }
                match elf::compat::check(&target.ident, &o.head) {
                    Verdict::Accept => match &o.info {
                        Ok(_) => (Tried::Used, Some(o)),
                        Err(e) => (Tried::Fatal(e.to_string()), None),
                    },
                    Verdict::Skip(why) => (Tried::Skipped(why), None),
                    Verdict::Fatal(why) => (Tried::Fatal(why), None),
                }
            }
        }
    }

    fn found(
        &self,
        target: &Target,
        path: Vec<u8>,
        o: &Opened,
        via: Via,
        owner: Option<Vec<u8>>,
    ) -> Found {
        let info = o.info.as_ref().cloned().unwrap_or_else(|_| {
            unreachable!("a used candidate always parsed") // guarded by try_candidate
        });
        // Only a loader that searches `glibc-hwcaps` (glibc 2.33 and
        // later) can take a variant.
        let variants = if matches!(self.opts.hwcaps, Hwcaps::Baseline)
            && target.flavor == Flavor::Glibc
            && target.glibc_hwcaps
        {
            self.variants_beside(&path, target.hwcaps_known.as_deref())
        } else {
            Vec::new()
        };
        let f = Found {
            path,
            canonical: o.canonical.clone(),
            hops: o.hops.clone(),
            file_id: o.file_id,
            size: o.size,
            via,
            owner,
            info,
            variants,
            link: std::sync::OnceLock::new(),
            unwind: o.unwind.clone(),
        };
        if target.flavor == Flavor::Glibc && f.path.first() != Some(&b'/') {
            // glibc's `$ORIGIN` of an object opened by a relative path is
            // `getcwd()` (symbolic links resolved), a slash, the path,
            // less its last component; nothing else is normalised.
            let mut origin = match self.fs.resolve(&bytes_path(&self.opts.cwd)) {
                Ok(r) => r.canonical.into_os_string().into_encoded_bytes(),
                Err(_) => self.opts.cwd.clone(),
            };
            if !origin.ends_with(b"/") {
                origin.push(b'/');
            }
            origin.extend_from_slice(&f.path);
            let _ = f.link.set(f.link_with_origin(dirname(&origin)));
        }
        f
    }

    /// Lists `dir/glibc-hwcaps/*/name` for a library found at `dir/name`:
    /// only subdirectories the loader knows by name when `loader_knows` says
    /// which (no CPU's loader takes a library from another).
    fn variants_beside(&self, path: &[u8], loader_knows: Option<&[Vec<u8>]>) -> Vec<Variant> {
        let Some(slash) = path.iter().rposition(|&b| b == b'/') else {
            return Vec::new();
        };
        let (dir, name) = (&path[..slash], &path[slash + 1..]);
        let mut hw = dir.to_vec();
        hw.extend_from_slice(b"/glibc-hwcaps");
        let known = self.hwcaps_known.with(|m| m.get(dir).cloned());
        let subdirs = known.unwrap_or_else(|| {
            let listed = lock(&self.hwcaps_dirs).get(dir).cloned();
            let names = listed.unwrap_or_else(|| {
                let names = match self
                    .fs
                    .read_dir(&bytes_path(&from_cwd(&self.opts.cwd, &hw)))
                {
                    Ok((_, subdirs)) => subdirs.into_iter().map(|s| s.into_vec()).collect(),
                    Err(_) => Vec::new(),
                };
                let names = Arc::new(names);
                lock(&self.hwcaps_dirs).insert(dir.to_vec(), names.clone());
                names
            });
            let names = Names::clone(&names);
            self.hwcaps_known
                .with(|m| m.insert(dir.to_vec(), names.clone()));
            names
        });
        let mut out = Vec::new();
        for sub in subdirs.iter() {
            if loader_knows.is_some_and(|k| !k.contains(sub)) {
                continue;
            }
            let mut p = hw.clone();
            p.push(b'/');
            p.extend_from_slice(sub);
            p.push(b'/');
            p.extend_from_slice(name);
            if let Probe::Opened(_) = self.probe(&p) {
                out.push(Variant {
                    name: sub.clone(),
                    path: p,
                    via_cache: false,
                });
            }
        }
        out
    }

    /// Searches for `req.name` the way the target's loader does.
    pub fn resolve(&self, target: &Target, req: &Request<'_>) -> Arc<Resolution> {
        // Only a few facts of the chain can change the answer; the same
        // name asked under the same facts (very common across roots) is
        // answered from the memo.
        // A found name is memoised under the search path alone; the
        // requester names that only notes mention key the other outcomes.
        // LD_LIBRARY_PATH is read only outside secure mode.
        let secure = self.opts.secure;
        let lp = self.opts.library_path.is_some() && !secure;
        // Keys are built in a buffer reused by the thread: a lookup that
        // hits (nearly all) allocates nothing.
        thread_local! {
            static KEY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let hit = KEY.with_borrow_mut(|k| {
            memo_key(k, target, req, lp, false, secure);
            if let Some(r) = self.memo.get_cloned(k.as_slice()) {
                return Some(r);
            }
            memo_key(k, target, req, lp, true, secure);
            self.memo.get_cloned(k.as_slice())
        });
        if let Some(r) = hit {
            return r;
        }
        let mut r = self.resolve_uncached(target, req);
        let found = matches!(r.outcome, Outcome::Found(_));
        if found {
            r.notes = Vec::new();
            if !self.opts.found_searches {
                r.searched = r
                    .searched
                    .pop()
                    .map(|s| Searched {
                        candidates: Vec::new(),
                        ..s
                    })
                    .into_iter()
                    .collect();
            }
        }
        let mut key = Vec::new();
        memo_key(&mut key, target, req, lp, !found, secure);
        let r = Arc::new(r);
        self.memo.insert(key, r.clone());
        r
    }

    fn resolve_uncached(&self, target: &Target, req: &Request<'_>) -> Resolution {
        let mut res = Resolution {
            outcome: Outcome::Missing,
            searched: Vec::new(),
            notes: Vec::new(),
        };
        let Some(loader) = req.chain.first() else {
            return res;
        };
        let exe = req.chain.last().unwrap_or(loader);
        if self.dst_refused(target, req) {
            // `expand_dst` in glibc's `_dl_map_object_deps`: the start-up
            // fails before any search (checked against the loader).
            res.outcome = Outcome::Fatal {
                path: req.name.to_vec(),
                reason: "DST not allowed in SUID/SGID programs".into(),
            };
            return res;
        }
        let platform = self
            .opts
            .platform
            .clone()
            .or_else(|| target.arch.platform.map(|p| p.as_bytes().to_vec()));

        if req.name.contains(&b'/') {
            let values = tokens::TokenValues {
                origin: Some(&loader.origin),
                lib: Some(&target.lib),
                platform: platform.as_deref(),
            };
            let expanded = if target.flavor == Flavor::Musl {
                Some(req.name.to_vec())
            } else if self.opts.secure {
                let is_program = req.chain.len() == 1;
                match tokens::expand_secure(
                    req.name,
                    &values,
                    is_program.then_some(&target.system_dirs[..]),
                    target.secure_origin_normalized,
                ) {
                    Ok(p) => Some(p),
                    Err(why) => {
                        res.notes
                            .push(format!("{} is not used: {}", show(req.name), why.reason()));
                        None
                    }
                }
            } else {
                tokens::expand(req.name, &values)
            };
            let Some(path) = expanded.filter(|p| !p.is_empty()) else {
                res.outcome = Outcome::Ignored(format!(
                    "{} expands to nothing; the loader skips it",
                    show(req.name)
                ));
                return res;
            };
            let (tried, opened) = self.try_candidate(target, &path);
            res.searched.push(Searched {
                dir: b"(path given)".to_vec(),
                via: Via::Direct,
                owner: None,
                candidates: vec![(path.clone(), tried.clone())],
            });
            res.outcome = match (tried, opened) {
                (Tried::Used, Some(o)) => {
                    Outcome::Found(Arc::new(self.found(target, path, &o, Via::Direct, None)))
                }
                (Tried::Fatal(reason), _) => Outcome::Fatal { path, reason },
                _ => Outcome::Missing,
            };
            return res;
        }

        match target.flavor {
            Flavor::Glibc => {
                self.search_glibc(target, req, loader, exe, platform.as_deref(), &mut res);
                self.add_legacy_search_variants(target, req, loader, exe, &mut res);
            }
            Flavor::Musl => self.search_musl(target, req, exe, &mut res),
        }
        res
    }

    /// Whether glibc in secure mode refuses `req` for its dynamic string
    /// tokens: a start-up `DT_NEEDED` or filter name holding any of them.
    fn dst_refused(&self, target: &Target, req: &Request<'_>) -> bool {
        self.opts.secure
            && req.needed
            && target.flavor == Flavor::Glibc
            && tokens::has_dst(req.name)
    }

    fn search_glibc(
        &self,
        target: &Target,
        req: &Request<'_>,
        loader: &ChainLink,
        exe: &ChainLink,
        platform: Option<&[u8]>,
        res: &mut Resolution,
    ) {
        // A preload by name in secure mode: set-user-ID files only, no cache.
        let suid_only = self.opts.secure && req.preload;
        let search = Searching {
            target,
            req,
            platform,
            suid_only,
        };
        // 1. DT_RPATH of the loader and its loaders, only if the loader has no RUNPATH.
        let program = req.chain.len() - 1;
        if loader.runpath.is_none() {
            for (i, link) in req.chain.iter().enumerate() {
                if let Some(rp) = &link.rpath {
                    if self.search_link_list(&search, link, (rp, Via::Rpath, i == program), res) {
                        return;
                    }
                }
            }
            // 1b. In an audit module's namespace (glibc 2.35 and later),
            // the program's DT_RUNPATH (the program is the chain's last).
            if let (true, Some(rp)) = (audit_main_runpath(target, req), &exe.runpath) {
                if self.search_link_list(&search, exe, (rp, Via::Runpath, true), res) {
                    return;
                }
            }
        } else if req.chain.iter().any(|l| l.rpath.is_some()) {
            res.notes.push(format!(
                "{} has DT_RUNPATH, so the DT_RPATH of its loaders is not used",
                show(&loader.name)
            ));
        }
        // 2. LD_LIBRARY_PATH (the loader unsets it in secure mode).
        if let (Some(lp), false) = (&self.opts.library_path, self.opts.secure) {
            let dirs = self.split_path(
                lp,
                b":;",
                &exe.origin,
                target,
                platform,
                (false, "", b""),
                &mut res.notes,
            );
            if self.search_list(
                target,
                req.name,
                &dirs,
                Via::LdLibraryPath,
                None,
                suid_only,
                res,
            ) {
                return;
            }
        }
        // 3. DT_RUNPATH of the loader only.
        if let Some(rp) = &loader.runpath {
            if self.search_link_list(&search, loader, (rp, Via::Runpath, program == 0), res) {
                return;
            }
        }
        for ancestor in req.chain.iter().skip(1) {
            if ancestor.runpath.is_some() {
                res.notes.push(format!(
                    "the DT_RUNPATH of {} does not apply to {} (RUNPATH is not inherited)",
                    show(&ancestor.name),
                    show(&loader.name)
                ));
            }
        }
        // 4. ld.so.cache (not for a preload in secure mode).
        if suid_only {
            res.notes.push(format!(
                "in secure mode the loader does not look {} up in the ld.so.cache: it is a preload",
                show(req.name)
            ));
        } else if self.search_cache(target, req.name, loader.nodeflib, res) {
            return;
        }
        // 5. Default directories.
        if loader.nodeflib {
            res.notes.push(format!(
                "{} is linked with -z nodefaultlib: default directories are not searched",
                show(&loader.name)
            ));
            return;
        }
        let dirs = target.system_dirs.clone();
        self.search_list(target, req.name, &dirs, Via::Default, None, suid_only, res);
    }

    /// Searches one object's own list (`list`, its `DT_RPATH` or
    /// `DT_RUNPATH` by `via`; `is_program` when the object is the program),
    /// its tokens expanded with its `$ORIGIN`; true when the search is over.
    fn search_link_list(
        &self,
        s: &Searching<'_>,
        link: &ChainLink,
        (list, via, is_program): (&[u8], Via, bool),
        res: &mut Resolution,
    ) -> bool {
        let tag = if via == Via::Rpath {
            "DT_RPATH"
        } else {
            "DT_RUNPATH"
        };
        let dirs = self.split_path(
            list,
            b":",
            &link.origin,
            s.target,
            s.platform,
            (is_program, tag, &link.name),
            &mut res.notes,
        );
        self.search_list(
            s.target,
            s.req.name,
            &dirs,
            via,
            Some(&link.name),
            s.suid_only,
            res,
        )
    }

    fn search_musl(
        &self,
        target: &Target,
        req: &Request<'_>,
        exe: &ChainLink,
        res: &mut Resolution,
    ) {
        if let (Some(lp), false) = (&self.opts.library_path, self.opts.secure) {
            let dirs: Vec<Vec<u8>> = lp
                .split(|&b| b == b':' || b == b'\n')
                .filter(|s| !s.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            if self.search_list(
                target,
                req.name,
                &dirs,
                Via::LdLibraryPath,
                None,
                false,
                res,
            ) {
                return;
            }
        }
        let _ = exe;
        let program = req.chain.len() - 1;
        for (i, link) in req.chain.iter().enumerate() {
            // musl: RUNPATH if present, else RPATH; both inherited.
            let list = link.runpath.as_ref().or(link.rpath.as_ref());
            let Some(list) = list else { continue };
            // In secure mode musl drops a list that holds a `$` when it
            // belongs to the program (`fixup_rpath`: its path came from the
            // caller of execve) or to a library opened by a relative path;
            // other libraries keep theirs.
            if self.opts.secure
                && list.contains(&b'$')
                && (i == program || !link.origin.starts_with(b"/"))
            {
                res.notes.push(format!(
                    "musl ignores the search path of {} in secure mode: it uses $ORIGIN{}",
                    show(&link.name),
                    if i == program {
                        ""
                    } else {
                        " and the library was opened by a relative path"
                    }
                ));
                continue;
            }
            let via = if link.runpath.is_some() {
                Via::Runpath
            } else {
                Via::Rpath
            };
            // Any `$` other than $ORIGIN / ${ORIGIN} makes musl ignore the list.
            let stripped = list
                .windows(1)
                .enumerate()
                .filter(|(_, w)| w[0] == b'$')
                .all(|(i, _)| {
                    list[i + 1..].starts_with(b"ORIGIN") || list[i + 1..].starts_with(b"{ORIGIN}")
                });
            if !stripped {
                res.notes.push(format!(
                    "musl ignores the search path of {}: it uses a token other than $ORIGIN",
                    show(&link.name)
                ));
                continue;
            }
            let values = tokens::TokenValues {
                origin: Some(&link.origin),
                lib: None,
                platform: None,
            };
            let dirs: Vec<Vec<u8>> = list
                .split(|&b| b == b':' || b == b'\n')
                .filter(|s| !s.is_empty())
                .filter_map(|s| tokens::expand(s, &values))
                .collect();
            if self.search_list(target, req.name, &dirs, via, Some(&link.name), false, res) {
                return;
            }
        }
        let dirs = target.system_dirs.clone();
        self.search_list(target, req.name, &dirs, Via::Default, None, false, res);
    }

    /// Splits and expands a search list the way glibc's `fillin_rpath` does:
    /// empty elements mean the working directory, elements whose tokens
    /// cannot be expanded are dropped, trailing slashes are trimmed and
    /// duplicates within the list removed.
    ///
    /// In secure mode each element expands by the stricter rules of
    /// [`tokens::expand_secure`]; `of` says whether the list is the
    /// program's own (its `$ORIGIN` must lead into a default directory),
    /// which tag it is and whose, for a note on each element secure mode
    /// drops.
    #[allow(clippy::too_many_arguments)]
    fn split_path(
        &self,
        list: &[u8],
        seps: &[u8],
        origin: &[u8],
        target: &Target,
        platform: Option<&[u8]>,
        of: (bool, &str, &[u8]),
        notes: &mut Vec<String>,
    ) -> Vec<Vec<u8>> {
        let (of_program, tag, owner) = of;
        let values = tokens::TokenValues {
            origin: Some(origin),
            lib: Some(&target.lib),
            platform,
        };
        let mut out: Vec<Vec<u8>> = Vec::new();
        for elem in list.split(|b| seps.contains(b)) {
            let mut dir = if elem.is_empty() {
                Vec::new()
            } else {
                let expanded = if self.opts.secure {
                    match tokens::expand_secure(
                        elem,
                        &values,
                        of_program.then_some(&target.system_dirs[..]),
                        target.secure_origin_normalized,
                    ) {
                        Ok(d) => Some(d),
                        Err(why) => {
                            if why != tokens::Dropped::Unknown {
                                notes.push(format!(
                                    "{} of the {tag} of {} is not searched: {}",
                                    show(elem),
                                    show(owner),
                                    why.reason()
                                ));
                            }
                            None
                        }
                    }
                } else {
                    tokens::expand(elem, &values)
                };
                match expanded {
                    Some(d) if !d.is_empty() => d,
                    _ => continue,
                }
            };
            while dir.len() > 1 && dir.ends_with(b"/") {
                dir.pop();
            }
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
        out
    }

    /// Probes `name` in each directory of one list. Returns true when the
    /// search is over (found or fatal).
    #[allow(clippy::too_many_arguments)]
    fn search_list(
        &self,
        target: &Target,
        name: &[u8],
        dirs: &[Vec<u8>],
        via: Via,
        owner: Option<&[u8]>,
        suid_only: bool,
        res: &mut Resolution,
    ) -> bool {
        let active = &target.hwcaps_active;
        for dir in dirs {
            let mut entry = Searched {
                dir: dir.clone(),
                via,
                owner: owner.map(<[u8]>::to_vec),
                candidates: Vec::new(),
            };
            let mut subdirs: Vec<Vec<u8>> = active
                .iter()
                .map(|h| {
                    let mut s = b"glibc-hwcaps/".to_vec();
                    s.extend_from_slice(h);
                    s.push(b'/');
                    s
                })
                .collect();
            // glibc never marks a relative directory (or any of its
            // subdirectories) as absent: the working directory may change.
            // Each is tried every time, and the directory counts as present
            // when the list's errors are weighed (below).
            let relative = !dir.starts_with(b"/");
            if relative {
                subdirs.extend(target.legacy.subdirs.iter().cloned());
            } else if !target.legacy.subdirs.is_empty() {
                subdirs.extend(self.legacy_subdirs(target, dir).iter().cloned());
            }
            subdirs.push(Vec::new());
            for sub in subdirs {
                let mut path = dir.clone();
                if !path.is_empty() && !path.ends_with(b"/") {
                    path.push(b'/');
                }
                path.extend_from_slice(&sub);
                path.extend_from_slice(name);
                let (mut tried, mut opened) = self.try_candidate(target, &path);
                if relative && sub.is_empty() && tried == Tried::Absent && self.not_a_dir(&path) {
                    // ENOTDIR is not ENOENT: for a directory glibc holds
                    // present it ends the list (up to 2.36; 2.39 goes on).
                    tried = if target.enotdir_ends_list {
                        Tried::ListEnded("Not a directory".into())
                    } else {
                        Tried::Skipped("Not a directory; the loader goes on".into())
                    };
                }
                if suid_only && tried == Tried::Used && opened.as_ref().is_some_and(|o| !o.setuid) {
                    tried = Tried::Skipped(
                        "not set-user-ID: in secure mode a preload found by a search must be"
                            .into(),
                    );
                    opened = None;
                }
                entry.candidates.push((path.clone(), tried.clone()));
                match (tried, opened) {
                    (Tried::Used, Some(o)) => {
                        res.searched.push(entry);
                        res.outcome = Outcome::Found(Arc::new(self.found(
                            target,
                            path,
                            &o,
                            via,
                            owner.map(<[u8]>::to_vec),
                        )));
                        return true;
                    }
                    (Tried::Fatal(reason), _) => {
                        res.searched.push(entry);
                        res.outcome = Outcome::Fatal { path, reason };
                        return true;
                    }
                    (Tried::ListEnded(why), _) => {
                        // glibc weighs the error of the last file it
                        // tried in a directory (the directory's own, as
                        // subdirectories come first), once all of them
                        // failed: other than ENOENT or EACCES, it abandons
                        // the list if the directory is present (stats as
                        // one after a failed open, or is relative).
                        let last = sub.is_empty();
                        if last
                            && (relative
                                || self.fs.is_dir(&bytes_path(&from_cwd(&self.opts.cwd, dir))))
                        {
                            res.searched.push(entry);
                            return false;
                        }
                        if let Some(c) = entry.candidates.last_mut() {
                            c.1 = Tried::Skipped(if last {
                                format!("directory unusable ({why})")
                            } else {
                                format!("{why}; the loader goes on")
                            });
                        }
                    }
                    _ => {}
                }
            }
            res.searched.push(entry);
        }
        false
    }

    /// Whether looking `path` up fails on a component that is not a
    /// directory (ENOTDIR rather than ENOENT).
    fn not_a_dir(&self, path: &[u8]) -> bool {
        matches!(
            self.fs.kind(&bytes_path(&from_cwd(&self.opts.cwd, path))),
            Err(LookupError::NotADirectory)
        )
    }

    /// The legacy hwcap subdirectories of `dir` the loader would find, in
    /// its order (see [`legacy`]): only those that exist, as the loader
    /// remembers a missing one after its first failed open and tries it no
    /// more, so reports list no dozen absent directories per search.
    /// Looked up once per directory: a subdirectory's first component is
    /// checked before the longer paths below it.
    fn legacy_subdirs(&self, target: &Target, dir: &[u8]) -> Arc<Names> {
        // The memo holds the run's CPU's lists; another CPU's search (a
        // baseline variant's) looks its own up.
        let memo = !target.legacy.is_other_cpu();
        let key = (dir.to_vec(), target.ident.machine);
        if let Some(known) = memo
            .then(|| lock(&self.legacy_dirs).get(&key).cloned())
            .flatten()
        {
            return known;
        }
        let is_dir = |sub: &[u8]| {
            let mut p = dir.to_vec();
            if !p.is_empty() && !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(sub);
            self.fs.is_dir(&bytes_path(&from_cwd(&self.opts.cwd, &p)))
        };
        let mut first: Map<Vec<u8>, bool> = Map::default();
        let mut found = Vec::new();
        for sub in &target.legacy.subdirs {
            let head = sub.split(|&b| b == b'/').next().unwrap_or_default();
            let head_exists = *first.entry(head.to_vec()).or_insert_with(|| is_dir(head));
            let deeper = sub.len() > head.len() + 1;
            if head_exists && (!deeper || is_dir(sub)) {
                found.push(sub.clone());
            }
        }
        let found = Arc::new(found);
        if memo {
            lock(&self.legacy_dirs).insert(key, found.clone());
        }
        found
    }

    /// Under baseline, for a loader that searches legacy hwcap
    /// subdirectories (glibc 2.36 and earlier): the copies of the name that
    /// another CPU's loader takes first in a legacy subdirectory of a
    /// directory the search went through — one before the pick's, where the
    /// baseline CPU found nothing, or the pick's own — recorded as variants
    /// of the pick, as `glibc-hwcaps` copies beside it and tagged cache
    /// entries are. Each CPU's choice is worked out over the components of
    /// the subdirectories that hold a usable copy ([`legacy::Legacy::cpu_models`]);
    /// a CPU that takes none of them searches on, as [`Self::search_as_cpu`].
    fn add_legacy_search_variants(
        &self,
        target: &Target,
        req: &Request<'_>,
        loader: &ChainLink,
        exe: &ChainLink,
        res: &mut Resolution,
    ) {
        if !matches!(self.opts.hwcaps, Hwcaps::Baseline) || !target.legacy.is_active() {
            return;
        }
        let name = req.name;
        let Outcome::Found(found) = &res.outcome else {
            return;
        };
        let chosen = found.path.clone();
        let dirs: Vec<&[u8]> = res
            .searched
            .iter()
            .filter(|s| s.via != Via::Cache)
            .map(|s| s.dir.as_slice())
            .collect();
        let join = |dir: &[u8], sub: &[u8]| {
            let mut p = dir.to_vec();
            if !p.is_empty() && !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(sub);
            p.extend_from_slice(name);
            p
        };
        // Per directory, the subdirectories (and `""`, the directory
        // itself) that hold a copy the loader would use.
        let mut usable: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut components = std::collections::BTreeSet::new();
        for dir in &dirs {
            let mut here = Vec::new();
            for sub in self.possible_legacy_subdirs(target, dir).iter() {
                if let (Tried::Used, Some(_)) = self.try_candidate(target, &join(dir, sub)) {
                    components.extend(
                        sub.split(|&b| b == b'/')
                            .filter(|c| !c.is_empty())
                            .map(<[u8]>::to_vec),
                    );
                    here.push(sub.clone());
                }
            }
            if !here.is_empty() {
                if let (Tried::Used, Some(_)) = self.try_candidate(target, &join(dir, b"")) {
                    here.push(Vec::new());
                }
            }
            usable.push(here);
        }
        if components.is_empty() {
            return;
        }
        let base = dirname(&chosen);
        let mut variants: Vec<Variant> = Vec::new();
        for cpu in target.legacy.cpu_models(&components) {
            let pick = dirs.iter().zip(&usable).find_map(|(dir, here)| {
                cpu.order
                    .iter()
                    .find(|sub| here.contains(sub))
                    .map(|sub| (join(dir, sub), false))
            });
            // A CPU that takes no copy there (it skips the subdirectory of
            // the pick, say another platform's, and the directory itself
            // holds none) goes on to the directories after it: its search
            // is run again as that CPU.
            let pick = pick.or_else(|| self.search_as_cpu(target, req, loader, exe, &cpu));
            let Some((path, via_cache)) = pick else {
                continue;
            };
            if path == chosen || variants.iter().any(|v| v.path == path) {
                continue;
            }
            // Named by its directory below the pick's, else by its whole
            // directory (a copy in an earlier search directory).
            let dir = dirname(&path);
            let name = match dir.strip_prefix(base.as_slice()) {
                Some(rest) if rest.first() == Some(&b'/') => rest[1..].to_vec(),
                _ => dir.clone(),
            };
            variants.push(Variant {
                name,
                path,
                via_cache,
            });
        }
        if variants.is_empty() {
            return;
        }
        variants.sort_by(|a, b| a.path.cmp(&b.path));
        if let Outcome::Found(found) = &mut res.outcome {
            Arc::make_mut(found).variants.extend(variants);
        }
    }

    /// Where `cpu`'s loader finds `req` (its path, and whether through the
    /// cache): the glibc search run again with that CPU's legacy model and
    /// platform. None when it finds nothing.
    fn search_as_cpu(
        &self,
        target: &Target,
        req: &Request<'_>,
        loader: &ChainLink,
        exe: &ChainLink,
        cpu: &legacy::CpuModel,
    ) -> Option<(Vec<u8>, bool)> {
        let mut as_cpu = target.clone();
        as_cpu.legacy = legacy::Legacy::for_cpu(target, cpu);
        let mut res = Resolution {
            outcome: Outcome::Missing,
            searched: Vec::new(),
            notes: Vec::new(),
        };
        let platform = (!cpu.platform.is_empty()).then_some(cpu.platform.as_slice());
        self.search_glibc(&as_cpu, req, loader, exe, platform, &mut res);
        match res.outcome {
            Outcome::Found(f) => Some((f.path.clone(), f.via == Via::Cache)),
            _ => None,
        }
    }

    /// The legacy hwcap subdirectories of `dir` that some CPU's loader
    /// tries and that exist ([`legacy::Legacy::possible_subdirs`]),
    /// looked up once per directory and machine.
    fn possible_legacy_subdirs(&self, target: &Target, dir: &[u8]) -> Arc<Names> {
        let key = (dir.to_vec(), target.ident.machine);
        if let Some(known) = lock(&self.legacy_possible).get(&key) {
            return known.clone();
        }
        let mut is_dir = |sub: &[u8]| {
            let mut p = dir.to_vec();
            if !p.is_empty() && !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(sub);
            self.fs.is_dir(&bytes_path(&from_cwd(&self.opts.cwd, &p)))
        };
        let found = Arc::new(target.legacy.possible_subdirs(&mut is_dir));
        lock(&self.legacy_possible).insert(key, found.clone());
        found
    }

    /// Of the cache entries of `chosen`'s name that another CPU may take
    /// instead (`passed`, with accepted flags: tagged ones the search
    /// passed over, and those after a pick not every CPU takes), those the
    /// target's loader takes on some CPU and whose file is there.
    fn legacy_variants(
        &self,
        target: &Target,
        passed: &[ldcache::Entry<'_>],
        chosen: &[u8],
    ) -> Vec<Variant> {
        let base = dirname(chosen);
        let mut out: Vec<Variant> = Vec::new();
        for e in passed {
            if e.value == chosen
                || !target.legacy.possible(e.hwcap)
                || out.iter().any(|v| v.path == e.value)
            {
                continue;
            }
            if let Probe::Opened(_) = self.probe(e.value) {
                let dir = dirname(e.value);
                let name = match dir.strip_prefix(base.as_slice()) {
                    Some(rest) if rest.first() == Some(&b'/') => rest[1..].to_vec(),
                    _ => dir.clone(),
                };
                out.push(Variant {
                    name,
                    path: e.value.to_vec(),
                    via_cache: true,
                });
            }
        }
        out
    }

    /// Consults `/etc/ld.so.cache`. Returns true when the search is over.
    fn search_cache(
        &self,
        target: &Target,
        name: &[u8],
        nodeflib: bool,
        res: &mut Resolution,
    ) -> bool {
        let cache = self.cache_for(target);
        let Some(cache) = cache.as_ref() else {
            return false;
        };
        let mut entry = Searched {
            dir: b"ld.so.cache".to_vec(),
            via: Via::Cache,
            owner: None,
            candidates: Vec::new(),
        };
        let id = &target.ident;
        let active = &target.hwcaps_active;
        let mut best_hw: Option<(usize, ldcache::Entry<'_>)> = None;
        let mut plain: Option<ldcache::Entry<'_>> = None;
        // Tagged entries the modelled CPU passed over: another CPU may
        // take them (a baseline run's variants). Those after the chosen
        // one only when it carries a bit some CPU lacks (below).
        let mut passed: Vec<ldcache::Entry<'_>> = Vec::new();
        let mut entries = cache.lookup(name);
        for e in entries.by_ref() {
            if !ldcache::flags_accepted(e.flags, id.machine, id.is_64, id.e_flags) {
                continue;
            }
            if let Some(idx) = e.hwcaps_index() {
                // A loader before glibc 2.33 takes the extension bit for a
                // capability no CPU has.
                if !target.glibc_hwcaps {
                    continue;
                }
                // x86's loader passes over an entry whose ISA level (the
                // library's highest needed one, which ldconfig records)
                // the CPU lacks.
                if let Some(cpu) = target.x86_isa {
                    let bit = 1u32.checked_shl(e.isa_level()).unwrap_or(0);
                    if cpu & bit == 0 {
                        continue;
                    }
                }
                let Some(hw_name) = cache.hwcaps_names.get(idx as usize) else {
                    continue;
                };
                if let Some(prio) = active.iter().position(|a| a == hw_name) {
                    if best_hw.is_none_or(|(p, _)| prio < p) {
                        best_hw = Some((prio, e));
                    }
                }
                continue;
            }
            // glibc 2.36 and earlier take the first entry whose legacy
            // bits the CPU has (ldconfig lists the most specific first);
            // later loaders skip every tagged entry.
            if e.is_legacy_hwcap() && !target.legacy.accepts(e.hwcap) {
                passed.push(e);
                continue;
            }
            plain = Some(e);
            break;
        }
        // A pick tagged with bits some CPU lacks (a platform's: POWER's
        // default model is a POWER9) leaves those CPUs to the entries
        // after it, down to the first every CPU takes: under baseline they
        // are variants too.
        if plain.is_some_and(|e| {
            matches!(self.opts.hwcaps, Hwcaps::Baseline)
                && e.is_legacy_hwcap()
                && !target.legacy.universal(e.hwcap)
        }) {
            for later in entries {
                if !ldcache::flags_accepted(later.flags, id.machine, id.is_64, id.e_flags)
                    || later.hwcaps_index().is_some()
                {
                    continue;
                }
                passed.push(later);
                if !later.is_legacy_hwcap() || target.legacy.universal(later.hwcap) {
                    break;
                }
            }
        }
        let chosen = best_hw.map(|(_, e)| e).or(plain);
        let Some(e) = chosen else {
            res.searched.push(entry);
            return false;
        };
        let value = e.value.to_vec();
        if nodeflib && target.in_system_dir(&value) {
            entry.candidates.push((
                value,
                Tried::Skipped("in a default directory, and the requester has NODEFLIB".into()),
            ));
            res.searched.push(entry);
            return false;
        }
        let (tried, opened) = self.try_candidate(target, &value);
        entry.candidates.push((value.clone(), tried.clone()));
        res.searched.push(entry);
        match (tried, opened) {
            (Tried::Used, Some(o)) => {
                let mut found = self.found(target, value, &o, Via::Cache, None);
                // Under baseline, the entries another CPU's loader would
                // take first are recorded for staging, as glibc-hwcaps
                // variants are.
                if matches!(self.opts.hwcaps, Hwcaps::Baseline) && !passed.is_empty() {
                    found
                        .variants
                        .extend(self.legacy_variants(target, &passed, &found.path));
                }
                res.outcome = Outcome::Found(Arc::new(found));
                true
            }
            (Tried::Fatal(reason), _) => {
                res.outcome = Outcome::Fatal {
                    path: value,
                    reason,
                };
                true
            }
            _ => false,
        }
    }
}

/// `path` as the loader's system calls see it: a relative path is taken
/// from the working directory `cwd`.
pub fn from_cwd<'a>(cwd: &[u8], path: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
    if path.first() == Some(&b'/') {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut v = cwd.to_vec();
    if !v.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(path);
    std::borrow::Cow::Owned(v)
}

/// Opens and parses one candidate path (relative paths are taken from
/// `cwd`). `cached` may supply an already parsed file by its identity.
fn probe_file(
    fs: &RootFs,
    cwd: &[u8],
    path: &[u8],
    cached: &dyn Fn(&FileId) -> Option<Parsed>,
) -> Probe {
    let open = match fs.open_walked(&bytes_path(&from_cwd(cwd, path))) {
        Ok(f) => f,
        Err(OpenError::Lookup(e)) => {
            return Probe::Lookup {
                soft: e.is_soft(),
                denied: matches!(e, LookupError::PermissionDenied),
                msg: e.to_string(),
            }
        }
        Err(OpenError::NotRegular(kind)) => return Probe::NotRegular { kind },
        Err(e @ OpenError::TooLarge(_)) => {
            return Probe::Lookup {
                soft: false,
                denied: false,
                msg: e.to_string(),
            }
        }
    };
    let file_id = (open.meta.dev(), open.meta.ino());
    let (head, info, unwind) = match cached(&file_id) {
        // Already parsed under another path.
        Some((i, unwind)) => {
            let mut head = vec![0u8; open.meta.len().min(64) as usize];
            if let Err(e) = std::os::unix::fs::FileExt::read_exact_at(&open.file, &mut head, 0) {
                return Probe::Lookup {
                    soft: false,
                    denied: false,
                    msg: e.to_string(),
                };
            }
            (head, Ok(i), unwind)
        }
        None => {
            let facts = elf::read_file(&open.file, open.meta.len(), UNWIND_USERS);
            if let Err(elf::ParseError::Read(msg)) = &facts.info {
                if facts.head.is_empty() && !open.meta.is_empty() {
                    return Probe::Lookup {
                        soft: false,
                        denied: false,
                        msg: msg.clone(),
                    };
                }
            }
            (facts.head, facts.info.map(Arc::new), facts.uses)
        }
    };
    Probe::Opened(Arc::new(Opened {
        setuid: open.meta.mode() & libc::S_ISUID != 0,
        canonical: open.resolved.canonical,
        hops: open.resolved.hops,
        file_id,
        size: open.meta.len(),
        head,
        info,
        unwind,
    }))
}

/// Symbols whose use makes glibc dlopen `libgcc_s.so.1` to unwind.
const UNWIND_USERS: &[&[u8]] = &[b"pthread_cancel", b"pthread_exit", b"backtrace"];

/// Everything a search result depends on besides the file system: the
/// target's identity and interpreter, the name, and the parts of the chain
/// the search reads (origins only matter where a list uses them, but
/// including them keeps the key simple and exact).
///
/// With `notes`, also the requester names that only notes mention (the key
/// of a name not found); without, only those a found result carries (the
/// owner of a search path that was used).
/// Whether `req` searches the program's `DT_RUNPATH` after the
/// `DT_RPATH`s: a load into an audit module's namespace, by a requester
/// without `DT_RUNPATH` of its own, on a glibc that does
/// ([`Target::audit_main_runpath`]).
fn audit_main_runpath(target: &Target, req: &Request<'_>) -> bool {
    req.audit
        && target.audit_main_runpath
        && target.flavor == Flavor::Glibc
        && req.chain.first().is_some_and(|l| l.runpath.is_none())
}

fn memo_key(
    k: &mut Vec<u8>,
    target: &Target,
    req: &Request<'_>,
    library_path: bool,
    notes: bool,
    secure: bool,
) {
    k.clear();
    k.push(
        u8::from(notes)
            | u8::from(secure && req.needed && tokens::has_dst(req.name)) << 1
            | u8::from(secure && req.preload) << 2,
    );
    let push = |k: &mut Vec<u8>, b: &[u8]| {
        k.extend_from_slice(&(b.len() as u64).to_le_bytes());
        k.extend_from_slice(b);
    };
    let id = &target.ident;
    k.extend_from_slice(&id.machine.to_le_bytes());
    k.extend_from_slice(&id.e_flags.to_le_bytes());
    k.push(u8::from(id.is_64) | u8::from(id.big_endian) << 1);
    push(k, target.interp.as_deref().unwrap_or_default());
    push(k, req.name);
    let loader_has_runpath = req.chain.first().is_some_and(|l| l.runpath.is_some());
    let main_runpath = audit_main_runpath(target, req);
    // The requester's name shows only in what a search path, a
    // `-z nodefaultlib` note or a name with '/' produces: without them (the
    // common case) one answer serves every requester.
    let plain = !req.name.contains(&b'/')
        && req
            .chain
            .iter()
            .enumerate()
            .all(|(i, l)| l.rpath.is_none() && l.runpath.is_none() && !(i == 0 && l.nodeflib));
    if plain {
        // The search reads nothing of the chain: one key for every
        // requester at every depth (0xff: a link's flag byte is at most 15).
        k.push(0xff);
    }
    for (i, l) in req.chain.iter().enumerate().filter(|_| !plain) {
        let first = i == 0;
        let uses_rpath =
            l.rpath.is_some() && (!loader_has_runpath || target.flavor == Flavor::Musl);
        let uses_runpath = l.runpath.is_some()
            && (first
                || target.flavor == Flavor::Musl
                || (main_runpath && i + 1 == req.chain.len()));
        let dollar = |v: &Option<Vec<u8>>| v.as_ref().is_some_and(|s| s.contains(&b'$'));
        let needs_origin = (uses_rpath && dollar(&l.rpath)) || (uses_runpath && dollar(&l.runpath));
        // In secure mode the program's strings expand by stricter rules
        // than a library's with the same text and origin.
        let program = secure && i + 1 == req.chain.len();
        k.push(
            u8::from(uses_rpath)
                | u8::from(uses_runpath) << 1
                | u8::from(first && l.nodeflib) << 2
                | u8::from(program) << 3,
        );
        if uses_rpath {
            push(k, l.rpath.as_deref().unwrap_or_default());
        }
        if uses_runpath {
            push(k, l.runpath.as_deref().unwrap_or_default());
        }
        // Names with '/' expand $ORIGIN of the requester; lists may too.
        if needs_origin || (first && req.name.contains(&b'/')) {
            push(k, &l.origin);
        }
        // Messages name the requester and owners: keep them exact.
        if uses_rpath || uses_runpath || (notes && (first || l.runpath.is_some())) {
            push(k, &l.name);
        }
    }
    // The last link is the program: its origin feeds LD_LIBRARY_PATH's $ORIGIN.
    if let (true, Some(exe)) = (library_path, req.chain.last()) {
        push(k, &exe.origin);
    }
}

/// The warning for `--hwcaps` names that `target`'s loader does not know.
fn ignored_hwcaps_warning(target: &Target, ignored: &[Vec<u8>]) -> String {
    let list = |v: &[Vec<u8>]| {
        v.iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let loader = target
        .interp
        .as_deref()
        .map_or_else(|| target.arch.glibc_interp.into(), String::from_utf8_lossy);
    let knows = match target.hwcaps_known.as_deref() {
        Some([]) | None => "no glibc-hwcaps subdirectory".to_string(),
        Some(k) => format!("only the glibc-hwcaps subdirectories {}", list(k)),
    };
    format!(
        "--hwcaps {}: ignored: the loader {loader} searches {knows}",
        list(ignored)
    )
}

/// An interpreter file's identity and the bytes of its read-only,
/// non-executable `PT_LOAD` segments ([`crate::elf::read_only_data`]),
/// where glibc keeps its built-in strings; empty when they are larger
/// than [`INTERP_DATA_MAX`] or the file is not ELF.
#[derive(Debug)]
struct InterpData {
    id: FileId,
    rodata: Vec<Vec<u8>>,
}

/// At most this much of an interpreter's read-only data is kept in
/// memory (glibc 2.36's `ld.so` has 43 KiB).
const INTERP_DATA_MAX: u64 = 4 << 20;

/// At the first "release version 2." in `bytes`, the `N` after it (`None`
/// inside when no number follows); `None` without one (see
/// [`glibc_minor_version`]).
fn version_in(bytes: &[u8]) -> Option<Option<u32>> {
    const NEEDLE: &[u8] = b"release version 2.";
    let i = memchr::memmem::find(bytes, NEEDLE)?;
    let digits: Vec<u8> = bytes[i + NEEDLE.len()..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .take(3)
        .copied()
        .collect();
    Some(
        std::str::from_utf8(&digits)
            .ok()
            .and_then(|d| d.parse().ok()),
    )
}

/// Whether the open regular file `f` (at most 64 MiB) holds `needle`.
/// The loader's built-in strings lie in its read-only data: the file's
/// read-only, non-executable `PT_LOAD` segments are searched first (40 KiB
/// of glibc 2.36's 210 KiB `ld.so`); without a match there, or without
/// such segments, the whole file, so the answer is the same either way.
fn file_contains(f: &crate::rootfs::OpenFile, needle: &[u8]) -> bool {
    let len = f.meta.len();
    if len > 64 << 20 || needle.is_empty() || needle.len() > SCAN_WINDOW {
        return false;
    }
    let finder = memchr::memmem::Finder::new(needle);
    let likely = crate::elf::read_only_data(&f.file, len);
    likely
        .iter()
        .any(|&(at, size)| range_contains(&f.file, at, size, &finder) == Some(true))
        || range_contains(&f.file, 0, len, &finder) == Some(true)
}

/// The first glibc minor version whose loader lists itself when no
/// `DT_NEEDED` names it (checked: 2.31, 2.36, 2.39 and 2.40 — mips64el, a
/// Debian cross package — do not, 2.41 to 2.43 do; a program with no
/// `DT_NEEDED` at all is "statically linked" in every release).
const RTLD_LISTED_ALONE_SINCE: u32 = 41;

/// The first glibc minor version whose `dlopen` refuses an object that
/// needs an executable stack (checked: 2.36 and 2.40 — mips64el, a Debian
/// cross package — make the stack executable, 2.41 to 2.43 refuse; 2.37 to
/// 2.39 are taken to be like them).
const EXEC_STACK_DLOPEN_REFUSED_SINCE: u32 = 41;

/// The first glibc minor version whose symbol lookup binds a versioned
/// reference in the library its version names when that library has no
/// version information, and takes only a definition whose version index
/// has no entry as unversioned (checked: 2.36 fails an assertion and takes
/// a version stored with hash 0 as unversioned, 2.41 and 2.43 bind and do
/// not; 2.40's loader — Debian 13's MIPS cross package — still holds the
/// assertion's text, so 2.37 to 2.40 are taken to be like 2.36).
const CHECK_MATCH_2_41_SINCE: u32 = 41;

/// The first glibc minor version whose loader, in secure mode, searches a
/// program's `$ORIGIN` element by its lexically normalised form
/// (`/usr/bin/../lib` as `/usr/lib`; checked: 2.36 keeps the expansion, 2.41
/// and 2.43 normalise; 2.37 to 2.40 are taken to be like 2.36).
const SECURE_ORIGIN_NORMALIZED_SINCE: u32 = 41;

/// The first glibc minor version whose loader goes on past an ENOTDIR in
/// a search list (checked: 2.31 and 2.36 end the list, 2.39, 2.40 —
/// mips64el — and 2.41 to 2.43 go on; 2.37 and 2.38 are taken to be like
/// 2.36).
const ENOTDIR_SKIPPED_SINCE: u32 = 39;

/// The first glibc minor version whose loader loads the audit modules the
/// main program names in `DT_AUDIT` and `DT_DEPAUDIT` (checked: 2.31
/// ignores both, 2.36, 2.41 and 2.43 load them; glibc's NEWS gives 2.32).
const DT_AUDIT_SINCE: u32 = 32;

/// The first glibc minor version whose loader, loading into an audit
/// module's namespace, also searches the main program's `DT_RUNPATH` for a
/// requester without one (glibc bug 28455; checked: 2.31 does not, 2.36,
/// 2.41 and 2.43 do; the fix is in 2.35).
const AUDIT_MAIN_RUNPATH_SINCE: u32 = 35;

/// The first glibc release that refuses to load a `DF_1_PIE` object as a
/// library ([`Target::refuses_pie`]; BZ #24323).
const PIE_REFUSED_SINCE: u32 = 30;

/// The `N` of the first "release version 2.N" in `f` (its read-only data
/// first, as [`file_contains`] looks).
fn glibc_minor_version(f: &crate::rootfs::OpenFile) -> Option<u32> {
    const NEEDLE: &[u8] = b"release version 2.";
    let len = f.meta.len();
    if len > 64 << 20 {
        return None;
    }
    let finder = memchr::memmem::Finder::new(NEEDLE);
    let mut ranges = crate::elf::read_only_data(&f.file, len);
    ranges.push((0, len));
    for (start, size) in ranges {
        let end = start.saturating_add(size).min(len);
        let mut at = start;
        while at < end {
            let n = (end - at).min(SCAN_WINDOW as u64) as usize;
            let buf = crate::elf::read_vec_at(&f.file, n, at).ok()?;
            // A match must leave room for its digits in this window;
            // windows overlap by the needle and three digits.
            if let Some(i) = finder.find(&buf) {
                let digits: Vec<u8> = buf[i + NEEDLE.len()..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .take(3)
                    .copied()
                    .collect();
                if i + NEEDLE.len() + digits.len() < buf.len() || at + (n as u64) >= end {
                    return std::str::from_utf8(&digits).ok()?.parse().ok();
                }
            }
            if at + n as u64 >= end {
                break;
            }
            at += (n - NEEDLE.len() - 3) as u64;
        }
    }
    None
}

/// The version of the musl whose loader (its `libc.so`) is `f`: the first
/// string of its read-only data that is three dot-separated numbers, alone
/// or before a `-`, `+` or `~` suffix (musl keeps `VERSION` there, as
/// `1.2.3`; its loader prints it for `--help`-like use). Up to 16 MiB of
/// read-only data is read.
pub(crate) fn musl_version(f: &crate::rootfs::OpenFile) -> Option<(u32, u32, u32)> {
    let len = f.meta.len();
    for (start, size) in crate::elf::read_only_data(&f.file, len) {
        let n = size.min(len.saturating_sub(start)).min(16 << 20) as usize;
        let Ok(buf) = crate::elf::read_vec_at(&f.file, n, start) else {
            continue;
        };
        // Whole NUL-delimited strings only (the first one of the range
        // may be a tail).
        for text in buf.split(|&b| b == 0).skip(1) {
            if let Some(v) = version_triple(text) {
                return Some(v);
            }
        }
    }
    None
}

/// `A.B.C`, or `A.B.C` followed by `-`, `+` or `~` and more.
fn version_triple(text: &[u8]) -> Option<(u32, u32, u32)> {
    let end = text
        .iter()
        .position(|b| matches!(b, b'-' | b'+' | b'~'))
        .unwrap_or(text.len());
    let mut parts = text[..end].split(|&b| b == b'.');
    let mut number = || -> Option<u32> {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 4 || !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(p).ok()?.parse().ok()
    };
    let v = (number()?, number()?, number()?);
    parts.next().is_none().then_some(v)
}

/// [`file_contains`]'s read size.
const SCAN_WINDOW: usize = 64 << 10;

/// Whether bytes `at..at + size` of `file` hold the needle of `finder`:
/// read in windows (overlapping by the needle), not past the first match.
/// `None` when a read fails or ends early.
fn range_contains(
    file: &std::fs::File,
    at: u64,
    size: u64,
    finder: &memchr::memmem::Finder<'_>,
) -> Option<bool> {
    let overlap = finder.needle().len() - 1;
    let end = at.checked_add(size)?;
    let mut at = at;
    while at < end {
        let n = (end - at).min(SCAN_WINDOW as u64) as usize;
        // Exactly the window, into spare capacity: a zeroed 64 KiB buffer
        // cost as many instructions as the rest of target detection.
        let buf = crate::elf::read_vec_at(file, n, at).ok()?;
        if finder.find(&buf).is_some() {
            return Some(true);
        }
        if at + n as u64 >= end {
            break;
        }
        at += (n - overlap) as u64;
    }
    Some(false)
}

/// An in-root path from bytes.
pub fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(b.to_vec()))
}

/// The directory part of a path string (`$ORIGIN` of an object opened by it).
pub fn dirname(path: &[u8]) -> Vec<u8> {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/".to_vec(),
        Some(p) => path[..p].to_vec(),
        None => b".".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Found::check_version` (a sorted index of the definitions' hashes)
    /// gives what `ElfInfo::check_version` (the loader's walk) gives, for
    /// hashes shared by several names, hash 0, a wrong hash, an absent name,
    /// weak and strong requirements, and a record of an unknown format
    /// version (none, first, in the middle, last). Fails if the index skips
    /// an entry of equal hash, accepts one by hash alone, or lets a
    /// definition after an unreadable record meet a requirement.
    #[test]
    fn version_index_agrees_with_the_scan() {
        let def = |name: &str, hash: u32, index: u16| elf::VerDef {
            version: 1,
            name: name.as_bytes().to_vec(),
            hash,
            flags: u16::from(index == 1),
            index,
        };
        let mut tally = Vec::new();
        for bad_at in [None, Some(0), Some(3), Some(5)] {
            let mut verdef = vec![
                def("libx.so.1", 90, 1),
                def("V_3", 7, 2),
                def("V_1", 40, 3),
                def("V_2", 7, 4),
                def("V_0", 0, 5),
                def("V_9", 7, 6),
            ];
            if let Some(k) = bad_at {
                verdef[k].version = 2;
            }
            let info = ElfInfo {
                ident: elf::Ident {
                    is_64: true,
                    big_endian: false,
                    osabi: 0,
                    abiversion: 0,
                    e_type: 3,
                    machine: 62,
                    e_flags: 0,
                },
                interp: None,
                dynamic: true,
                soname: None,
                needed: Vec::new(),
                rpath: None,
                runpath: None,
                filters: Vec::new(),
                flags: 0,
                flags_1: 0,
                audit: None,
                verneed: Vec::new(),
                verdef,
                warnings: Vec::new(),
                tables: elf::DynTables::default(),
                dlopen: Vec::new(),
                x86_isa_needed: 0,
                exec_stack: false,
                verdef_index: Default::default(),
                verneed_met: Default::default(),
            };
            let found = Found {
                path: b"/lib/libx.so.1".to_vec(),
                canonical: PathBuf::from("/lib/libx.so.1"),
                hops: Vec::new(),
                file_id: (1, 1),
                size: 0,
                via: Via::Default,
                owner: None,
                info: Arc::new(info.clone()),
                variants: Vec::new(),
                link: std::sync::OnceLock::new(),
                unwind: None,
            };
            let (mut met, mut missing, mut unsupported) = (0, 0, 0);
            for name in ["libx.so.1", "V_0", "V_1", "V_2", "V_3", "V_9", "V_4", ""] {
                for hash in [0, 7, 40, 90, 41] {
                    for flags in [0, elf::VER_FLG_WEAK] {
                        let aux = elf::VerNeedAux {
                            name: name.as_bytes().into(),
                            hash,
                            flags,
                            other: 2,
                        };
                        let want = info.check_version(&aux);
                        assert_eq!(
                            found.check_version(&aux),
                            want,
                            "{bad_at:?} {name} {hash} {flags}"
                        );
                        match want {
                            elf::VersionCheck::Met => met += 1,
                            elf::VersionCheck::Missing => missing += 1,
                            elf::VersionCheck::Unsupported(v) => {
                                assert_eq!(v, 2);
                                unsupported += 1;
                            }
                        }
                    }
                }
            }
            tally.push((met, missing, unsupported));
        }
        // 80 requirements each, 6 (name, hash) pairs defined. Without a bad
        // record: those 6 and every weak one met. With one: only the pairs
        // defined before it are met (weak or not), everything else meets
        // the bad record first.
        assert_eq!(
            tally,
            vec![(46, 34, 0), (0, 0, 80), (6, 0, 74), (10, 0, 70)]
        );
    }

    /// The read-ahead names, for each root, the pool thread that read it:
    /// every first occurrence one of the pool's threads, every repeat none;
    /// a pool of one thread reads nothing ahead. (Paths that do not exist
    /// are read too: probing them is the read.)
    #[test]
    fn the_read_ahead_says_which_thread_read_each_root() {
        let t = tempfile::tempdir().unwrap();
        let fs = RootFs::new(t.path()).unwrap();
        let roots: Vec<Vec<u8>> = (0..60)
            .map(|i| format!("/bin/p{}", i % 45).into_bytes())
            .collect();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let r = Resolver::new(&fs, Options::default());
            let read_by = pool.install(|| r.prefetch_closure(&roots));
            assert_eq!(read_by.len(), roots.len());
            for (k, t) in read_by.iter().enumerate() {
                if threads == 1 || k >= 45 {
                    assert_eq!(*t, None, "{threads} threads, root {k}");
                } else {
                    assert!(
                        t.is_some_and(|t| t < threads),
                        "{threads} threads, root {k}: {t:?}"
                    );
                }
            }
        }
    }

    /// Files outside the page cache start helpers, which read roots of
    /// their own (`None` in the answer); files in memory start none, nor
    /// do a few files paged out of a warm set.
    #[test]
    fn the_read_ahead_reads_with_more_threads_from_the_disk() {
        let Some(t) = crate::elf::pool::cold::disk_dir_or_skip() else {
            return;
        };
        std::fs::create_dir(t.path().join("bin")).unwrap();
        let n = 400;
        let files: Vec<std::path::PathBuf> = (0..n)
            .map(|i| {
                let p = t.path().join(format!("bin/p{i}"));
                std::fs::write(&p, vec![i as u8; 6000]).unwrap();
                p
            })
            .collect();
        let roots: Vec<Vec<u8>> = (0..n).map(|i| format!("/bin/p{i}").into_bytes()).collect();
        let fs = RootFs::new(t.path()).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let read_ahead = || {
            let r = Resolver::new(&fs, Options::default());
            let read_by = pool.install(|| r.prefetch_closure(&roots));
            let probed = roots
                .iter()
                .filter(|p| matches!(r.probes.get_cloned(p.as_slice()), Some(Probe::Opened(_))))
                .count();
            (read_by, probed)
        };
        // In memory (just written): the pool's threads read every root.
        let (read_by, probed) = read_ahead();
        assert_eq!(probed, n);
        assert!(
            read_by.iter().all(|t| t.is_some_and(|t| t < 2)),
            "{read_by:?}"
        );
        // A few files paged out of a warm set (one root in a hundred,
        // each thread's reads of them never close together): no helper.
        for f in files.iter().step_by(100) {
            crate::elf::pool::cold::evict(f);
        }
        let (read_by, probed) = read_ahead();
        assert_eq!(probed, n);
        assert!(
            read_by.iter().all(|t| t.is_some_and(|t| t < 2)),
            "a helper for a few files: {read_by:?}"
        );
        for f in &files {
            crate::elf::pool::cold::evict(f);
        }
        let (read_by, probed) = read_ahead();
        assert_eq!(probed, n, "every root read all the same");
        let helped = read_by.iter().filter(|t| t.is_none()).count();
        assert!(helped > 0, "no root read by a helper: {read_by:?}");
        assert!(read_by.iter().flatten().all(|&t| t < 2), "{read_by:?}");
        // A helper reads the pages it asks for, no more: the kernel's
        // read-ahead would have brought each file's second page in with
        // its first. (A few files keep a page the eviction missed.)
        let ahead: Vec<_> = (0..n)
            .filter(|&i| read_by[i].is_none())
            .filter(|&i| crate::elf::pool::cold::in_memory(&files[i], 4096))
            .collect();
        assert!(
            ahead.len() * 4 < helped,
            "{} of {helped} roots read ahead by helpers: {ahead:?}",
            ahead.len()
        );
    }

    /// The interpreter's glibc version, wherever its string falls against
    /// the read windows; none without the string.
    #[test]
    fn musl_version_strings_are_three_numbers() {
        assert_eq!(version_triple(b"1.2.3"), Some((1, 2, 3)));
        assert_eq!(version_triple(b"1.2.5-git"), Some((1, 2, 5)));
        assert_eq!(version_triple(b"1.10.0+r1"), Some((1, 10, 0)));
        for not in [
            &b"1.2"[..],
            b"1.2.3.4",
            b"1.2.x",
            b"a.b.c",
            b"",
            b"..",
            b"1..3",
            b"12345.1.1",
        ] {
            assert_eq!(
                version_triple(not),
                None,
                "{}",
                String::from_utf8_lossy(not)
            );
        }
    }

    #[test]
    fn glibc_version_is_read_across_windows() {
        let t = tempfile::tempdir().unwrap();
        let fs = RootFs::new(t.path()).unwrap();
        let text = b"ld.so (Debian GLIBC 2.41-12) stable release version 2.41.\n";
        let window = 64 << 10;
        let version_at = |size: usize, at: usize| {
            let mut bytes = vec![b'x'; size];
            bytes[at..at + text.len()].copy_from_slice(text);
            std::fs::write(t.path().join("ld.so"), &bytes).unwrap();
            let f = fs.open(Path::new("/ld.so")).unwrap();
            glibc_minor_version(&f)
        };
        let cut = text.len() - 3; // the digits start at the window's end
        for at in [
            0,
            window - cut,
            window - cut + 1,
            window - cut - 1,
            window - text.len(),
        ] {
            assert_eq!(version_at(2 * window + 5, at), Some(41), "{at}");
        }
        assert_eq!(version_at(100, 100 - text.len()), Some(41));
        std::fs::write(t.path().join("old"), b"GNU C Library stable release 2.31").unwrap();
        let f = fs.open(Path::new("/old")).unwrap();
        assert_eq!(glibc_minor_version(&f), None);
    }

    /// The interpreter search finds its needle wherever it lies, including
    /// across a window boundary and at the very end, and nothing else.
    /// Fails if the windows do not overlap by the needle, or stop early.
    #[test]
    fn file_contains_sees_needles_across_windows() {
        let t = tempfile::tempdir().unwrap();
        let fs = RootFs::new(t.path()).unwrap();
        let file_contains =
            |fs: &RootFs, p: &Path, n: &[u8]| fs.open(p).is_ok_and(|f| file_contains(&f, n));
        let needle = b"/lib/x86_64-linux-gnu/\0/usr/lib/x86_64-linux-gnu/\0";
        let window = 64 << 10;
        let sizes = [3 * window + 123, window, 100];
        let mut checked = 0;
        for size in sizes {
            let spots = [
                0,
                window - needle.len(),
                window - needle.len() + 1,
                window - 1,
                2 * window - 7,
                size - needle.len(),
            ];
            for at in spots.into_iter().filter(|&a| a + needle.len() <= size) {
                let mut bytes = vec![b'x'; size];
                bytes[at..at + needle.len()].copy_from_slice(needle);
                std::fs::write(t.path().join("ld.so"), &bytes).unwrap();
                assert!(
                    file_contains(&fs, Path::new("/ld.so"), needle),
                    "{size} {at}"
                );
                // One byte of the needle changed: not found.
                bytes[at + needle.len() / 2] = b'y';
                std::fs::write(t.path().join("ld.so"), &bytes).unwrap();
                assert!(
                    !file_contains(&fs, Path::new("/ld.so"), needle),
                    "{size} {at}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 10, "{checked}");
        // Absent, a directory, and over 64 MiB (sparse): no.
        assert!(!file_contains(&fs, Path::new("/none"), needle));
        assert!(!file_contains(&fs, Path::new("/"), needle));
        let big = std::fs::File::create(t.path().join("big")).unwrap();
        big.set_len((64 << 20) + 1).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&big, needle, 0).unwrap();
        assert!(!file_contains(&fs, Path::new("/big"), needle));
    }

    /// A 64-bit little-endian ELF file of `len` bytes whose program headers
    /// are the given `(p_flags, p_offset, p_filesz)` loadable segments.
    fn elf_with_segments(len: usize, segments: &[(u32, u64, u64)]) -> Vec<u8> {
        let mut b = vec![b'x'; len];
        b[..64].fill(0);
        b[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        b[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
        b[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for (i, &(flags, offset, size)) in segments.iter().enumerate() {
            let p = &mut b[64 + 56 * i..64 + 56 * (i + 1)];
            p.fill(0);
            p[0..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            p[4..8].copy_from_slice(&flags.to_le_bytes());
            p[8..16].copy_from_slice(&offset.to_le_bytes());
            p[32..40].copy_from_slice(&size.to_le_bytes());
        }
        b
    }

    /// The interpreter search looks at the read-only data first but answers
    /// for the whole file: a needle in the read-only segment, in the
    /// executable one, outside every segment, or running past the end of
    /// the read-only segment is found; one changed byte is not. Fails if
    /// the search stops at the read-only segments.
    #[test]
    fn file_contains_answers_for_the_whole_file_of_an_elf() {
        let t = tempfile::tempdir().unwrap();
        let fs = RootFs::new(t.path()).unwrap();
        let needle = b"/lib/x86_64-linux-gnu/\0/usr/lib/x86_64-linux-gnu/\0";
        let (ro, rx) = ((0x1000u64, 0x800u64), (0x3000u64, 0x21000u64));
        // PF_R; PF_R|PF_X; PF_R|PF_W.
        let segments = [(4, ro.0, ro.1), (5, rx.0, rx.1), (6, 0x30000, 0x100)];
        let len = 0x40000;
        let base = elf_with_segments(len, &segments);
        let f = std::fs::File::open({
            std::fs::write(t.path().join("ld.so"), &base).unwrap();
            t.path().join("ld.so")
        })
        .unwrap();
        assert_eq!(
            crate::elf::read_only_data(&f, len as u64),
            vec![ro],
            "only the read-only, non-executable segment"
        );
        let end_of_ro = (ro.0 + ro.1) as usize;
        let spots = [
            ro.0 as usize + 16,
            rx.0 as usize + 0x20000,
            0x2800,
            end_of_ro - needle.len() / 2,
            len - needle.len(),
        ];
        for at in spots {
            let mut bytes = base.clone();
            bytes[at..at + needle.len()].copy_from_slice(needle);
            std::fs::write(t.path().join("ld.so"), &bytes).unwrap();
            let f = fs.open(Path::new("/ld.so")).unwrap();
            assert!(file_contains(&f, needle), "needle at {at:#x}");
            bytes[at + 3] = b'#';
            std::fs::write(t.path().join("ld.so"), &bytes).unwrap();
            let f = fs.open(Path::new("/ld.so")).unwrap();
            assert!(!file_contains(&f, needle), "broken needle at {at:#x}");
        }
    }

    /// The resolver reads an interpreter's read-only data once and answers
    /// from it what the file scans answer: each needle and the version,
    /// wherever they lie (in the read-only data, in code, at the end),
    /// asked twice, for a synthetic ELF and for the host's own `ld.so`.
    /// Fails if the memo answered from the read-only data alone, or for
    /// the wrong file.
    #[test]
    fn interpreter_answers_from_memory_match_the_file_scans() {
        let t = tempfile::tempdir().unwrap();
        let needle = b"/lib/x86_64-linux-gnu/\0/usr/lib/x86_64-linux-gnu/\0";
        let other = b"glibc-hwcaps\0";
        let version = b"stable release version 2.36.\n";
        let ro = (0x1000u64, 0x800u64);
        let segments = [(4, ro.0, ro.1), (5, 0x3000, 0x21000), (6, 0x30000, 0x100)];
        let len = 0x40000;
        let base = elf_with_segments(len, &segments);
        let spots = [ro.0 as usize + 16, 0x3000 + 0x20000, len - 200];
        let mut checked = 0;
        for (i, &at) in spots.iter().enumerate() {
            for (j, &vat) in spots.iter().enumerate() {
                if i == j {
                    continue;
                }
                let mut bytes = base.clone();
                bytes[at..at + needle.len()].copy_from_slice(needle);
                bytes[vat + 100..vat + 100 + version.len()].copy_from_slice(version);
                let dir = t.path().join(format!("r{i}{j}"));
                std::fs::create_dir(&dir).unwrap();
                std::fs::write(dir.join("ld.so"), &bytes).unwrap();
                let fs = RootFs::new(&dir).unwrap();
                let r = Resolver::new(&fs, Options::default());
                let p = Path::new("/ld.so");
                let f = fs.open(p).unwrap();
                for _ in 0..2 {
                    assert_eq!(r.interp_has(p, needle), file_contains(&f, needle));
                    assert!(r.interp_has(p, needle), "{at:#x}");
                    assert!(!r.interp_has(p, other), "{at:#x}");
                    assert_eq!(r.interp_minor_version(p), glibc_minor_version(&f));
                    assert_eq!(r.interp_minor_version(p), Some(36), "{vat:#x}");
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 6);
        let host = RootFs::new(Path::new("/")).unwrap();
        let ld = Path::new("/lib64/ld-linux-x86-64.so.2");
        if let Ok(f) = host.open(ld) {
            let r = Resolver::new(&host, Options::default());
            for n in [
                needle.as_slice(),
                other,
                b"LD_HWCAP_MASK\0",
                b"no such string in ld.so\0",
            ] {
                assert_eq!(r.interp_has(ld, n), file_contains(&f, n), "{n:?}");
            }
            assert_eq!(r.interp_minor_version(ld), glibc_minor_version(&f));
        }
    }
}
