//! The command line: `closure [--sysroot DIR] --root PATH… [OPTIONS]`.
//!
//! Owns argument parsing (clap derive), turning raw arguments into library
//! options in one place ([`config`]), running the trace, printing the
//! report on stdout and problems on stderr, and choosing the exit code
//! (0 clean, 1 problems in the closure, 2 usage or unreadable input). The
//! contract this must keep is `docs/cli-contract.md`.

pub mod awake;
pub mod config;
pub mod docs;
pub mod progress;
pub mod spread;
pub mod style;
pub mod verify;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use crate::error::Error;
use crate::graph::{self, DepGraph};
use crate::observe::timings;
use crate::report::{self, Format};
use crate::resolve::Resolver;
use crate::rootfs::RootFs;
use crate::stage;

/// `--dlopen-priority` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DlopenPriorityArg {
    /// Only `required` entries.
    Required,
    /// `required` and `recommended` (the default).
    Recommended,
    /// Every entry.
    Suggested,
    /// Ignore `.note.dlopen`.
    None,
}

/// Report formats accepted by `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Indented tree, each edge with the search step that found it.
    Tree,
    /// One path per line, sorted.
    List,
    /// The lines `ldd` prints.
    Ldd,
    /// One JSON object (schema_version 1).
    Json,
    /// Graphviz DOT.
    Dot,
    /// The attack surface of what would be staged: shells, package
    /// managers, setuid/setgid, capabilities, world-writable, devices.
    Audit,
    /// Bytes of each file of the closure, the total and its share of the
    /// sysroot, and what each root pulls in.
    Size,
}

/// Trace the shared-library closure of ELF programs inside a root
/// filesystem, exactly as their dynamic loader would, without running
/// anything; optionally stage exactly that closure into a directory.
#[derive(Debug, Parser)]
#[command(name = "closure", version, about, max_term_width = 100)]
pub struct Args {
    /// Root filesystem everything is resolved in, as if chrooted there.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub sysroot: PathBuf,

    /// Entry point inside the sysroot: an ELF program or library, a symlink
    /// to one, a script with a #! line, or a directory (every file under
    /// it). Repeatable.
    #[arg(long = "root", value_name = "PATH", required_unless_present = "verify")]
    pub roots: Vec<PathBuf>,

    /// Stage the closure into DIR, mirroring sysroot paths.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Extra files, directories or globs from the sysroot to stage too; ELF
    /// files and scripts among them are traced as well. Repeatable.
    #[arg(long = "include", value_name = "PATH|GLOB")]
    pub includes: Vec<String>,

    /// Also write the files a scratch root needs: /etc/passwd and /etc/group
    /// (root, nobody, nonroot), /tmp (1777), and the sysroot's CA bundle and
    /// /etc/nsswitch.conf when present.
    #[arg(long)]
    pub base_files: bool,

    /// Stage into a non-empty --out directory (existing symlinks in it are
    /// never followed or replaced).
    #[arg(long)]
    pub force: bool,

    /// When staging, hard-link each file to the sysroot's copy instead of
    /// copying it where possible (same file system, link permitted, same
    /// mode); the rest is copied. The staged root then shares those files
    /// with the sysroot. Without it, files are reflinked where the file
    /// system supports it, else copied in the kernel.
    #[arg(long)]
    pub link: bool,

    /// Report format when not staging.
    #[arg(long, value_enum, default_value = "tree")]
    pub format: FormatArg,

    /// Simulated LD_LIBRARY_PATH (':' or ';' separated). The host's
    /// environment is never read.
    #[arg(long, value_name = "LIST")]
    pub library_path: Option<String>,

    /// Simulated LD_PRELOAD (names or paths, ' ' or ':' separated),
    /// preloaded into every program (glibc: before /etc/ld.so.preload). The
    /// host's environment is never read.
    #[arg(long, value_name = "LIST")]
    pub preload: Option<String>,

    /// Simulated LD_AUDIT (names or paths, ':' separated): glibc's audit
    /// modules for every program, each loaded into a namespace of its own
    /// before those the program's DT_AUDIT and DT_DEPAUDIT name. The
    /// host's environment is never read.
    #[arg(long, value_name = "LIST")]
    pub ld_audit: Option<String>,

    /// Value of $PLATFORM (default: the architecture's usual AT_PLATFORM,
    /// e.g. x86_64), also the platform of the legacy hwcap subdirectories
    /// that glibc 2.36 and earlier search (e.g. haswell).
    #[arg(long, value_name = "NAME")]
    pub platform: Option<String>,

    /// glibc-hwcaps subdirectories active on the CPU that will run the
    /// program (e.g. x86-64-v3,x86-64-v2), or `baseline` (the default):
    /// model a baseline CPU and record every variant its loader could take.
    /// Only the names the root's loader knows count, searched in its order
    /// (a warning names the others). On x86 the highest x86-64-vN named is
    /// also the CPU's ISA level, which glibc 2.33 and later check every
    /// object against (i386: also with x86-64-vN). On i386, AArch64, 32-bit Arm, POWER, s390x and
    /// 64-bit SPARC the list may also name the CPU's legacy hwcap
    /// capabilities that glibc 2.36 and earlier search (sse2; atomics; vfp,
    /// neon; dfp, altivec; zarch, ldisp, eimm, dfp, vx, vxe, vxe2; ultra3,
    /// v9v, v9v2).
    #[arg(long, value_name = "LIST", default_value = "baseline")]
    pub hwcaps: String,

    /// Ignore the sysroot's /etc/ld.so.cache (as `ld.so --inhibit-cache`).
    #[arg(long)]
    pub inhibit_cache: bool,

    /// Resolve as the loader does for programs in secure mode (setuid,
    /// setgid or file capabilities, run by another user): --library-path
    /// is ignored; glibc expands $ORIGIN only at the start of a
    /// search-path element, in the program's own search paths only into
    /// the default directories, and refuses a DT_NEEDED holding a token;
    /// musl ignores a search path with $ORIGIN of the program or of a
    /// library opened by a relative path.
    #[arg(long)]
    pub secure: bool,

    /// Working directory of the program (relative search-path entries are
    /// taken from it).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub cwd: String,

    /// Also check that every undefined symbol a relocation needs binds to a
    /// definition in the closure (what `ldd -r` reports, done statically).
    #[arg(long)]
    pub check_symbols: bool,

    /// Print every chain of dependencies from a root to this library
    /// (a SONAME, a path, or a name that is missing) instead of the report.
    #[arg(long, value_name = "SONAME|PATH")]
    pub why: Option<String>,

    /// Stage even when something is missing (problems are still reported).
    #[arg(long)]
    pub allow_missing: bool,

    /// Write an OCI image layout into DIR (tag `latest`; one layer holding
    /// the staged root) and print the manifest digest. With or without --out.
    #[arg(long, value_name = "DIR")]
    pub oci: Option<PathBuf>,

    /// Write just the layer: FILE.tar (plain) or FILE.tar.gz (gzip).
    #[arg(long, value_name = "FILE")]
    pub layer: Option<PathBuf>,

    /// An unpacked base image root the staged root goes onto: libraries it
    /// provides are used (and their symbol versions checked), files it holds
    /// identically are not staged, and its directory links are followed.
    #[arg(long, value_name = "DIR")]
    pub base: Option<PathBuf>,

    /// The user the image runs as (config User, e.g. 65532).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Write an SPDX 2.3 JSON SBOM of the staged files and their packages.
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,

    /// Also stage /var/lib/dpkg/status.d entries with --out alone (the
    /// default with --oci and --layer).
    #[arg(long)]
    pub provenance: bool,

    /// Do not stage /var/lib/dpkg/status.d entries for the owning packages.
    #[arg(long, conflicts_with = "provenance")]
    pub no_provenance: bool,

    /// Follow `.note.dlopen` entries of at least this priority.
    #[arg(long, value_enum, default_value = "recommended")]
    pub dlopen_priority: DlopenPriorityArg,

    /// Only what the loader maps at program start (what `ldd` shows): no
    /// `.note.dlopen`, NSS, libgcc_s or gconv additions.
    #[arg(long)]
    pub startup_only: bool,

    /// Only follow `.note.dlopen` entries of this feature. Repeatable.
    #[arg(long = "dlopen-feature", value_name = "FEATURE")]
    pub dlopen_features: Vec<String>,

    /// Also load, as dlopen would, the library names (`libfoo.so.1`,
    /// `/opt/app/plugin.so`) spelled in the read-only data of each object
    /// that calls dlopen: a heuristic for plugins loaded by name without a
    /// `.note.dlopen` (a name not found is a warning).
    #[arg(long)]
    pub dlopen_strings: bool,

    /// Stage gconv modules (for iconv): `all`, or character sets such as
    /// `EUC-JP,ISO-8859-15`, with the gconv configuration files.
    #[arg(long, value_name = "all|CHARSET,...")]
    pub gconv: Option<String>,

    /// Audit findings that are problems (exit 1; with --out, nothing is
    /// written): comma-separated shell, package-manager, setuid, setgid,
    /// capabilities, world-writable, devices, or all. Repeatable.
    #[arg(long, value_name = "LIST")]
    pub forbid: Vec<String>,

    /// Print nothing on stderr but errors.
    #[arg(long, short)]
    pub quiet: bool,

    /// At the end, print on stderr where the run's time went: each
    /// phase's wall time, CPU time (all threads) and page faults.
    #[arg(long)]
    pub timings: bool,

    /// Print each search step on stderr, like LD_DEBUG=libs: every
    /// directory tried for every DT_NEEDED and the verdict on each file.
    #[arg(long, short, conflicts_with = "quiet")]
    pub verbose: bool,

    /// After staging, skip the check that the staged root loads exactly
    /// what the sysroot loads.
    #[arg(long)]
    pub no_verify: bool,

    /// Instead of tracing, check that every ELF file in DIR resolves
    /// completely inside DIR (same as `closure verify DIR`).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["roots", "out", "why"])]
    pub verify: Option<PathBuf>,
}

/// Parses the process arguments, runs, and returns the exit code.
pub fn main() -> ExitCode {
    timings::begin();
    // Collected once: each `args_os()` copies every argument (1,300 of
    // them for a whole `/usr/bin`).
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let first = argv.get(1).map(|a| a.as_os_str());
    if first == Some(std::ffi::OsStr::new("audit")) {
        return crate::audit::cli::main(argv.into_iter().skip(2));
    }
    if first == Some(std::ffi::OsStr::new("verify")) {
        return verify::main(argv.into_iter().skip(1));
    }
    if first == Some(std::ffi::OsStr::new(docs::FLAG)) {
        return docs::main(argv.into_iter().skip(1));
    }
    let args = parse_args(argv);
    // The roots will be looked up on the pool: its threads are started
    // now, so that their first scheduling (on a VM, the other vCPU coming
    // back from idle, at times milliseconds late) overlaps the set-up below
    // instead of holding up the first parallel step; and one of them is
    // kept from sleeping between the phases that follow. Each starts on a
    // CPU of its own (`spread`).
    let many = args.roots.len() >= config::PARALLEL_LOOKUPS;
    if many {
        spread::start_global();
    }
    let _awake = many.then(|| awake::KeepAwake::start(awake::IDLE_LIMIT));
    if args.timings {
        // Page faults come from /proc, a host file: read only when the
        // host is the sysroot (canonicalising the sysroot path is the one
        // host lookup made anyway).
        let host = args
            .sysroot
            .canonicalize()
            .is_ok_and(|p| p == std::path::Path::new("/"));
        timings::start(host);
    }
    let code = match run(&args) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io::stderr(), "closure: {e}");
            ExitCode::from(2)
        }
    };
    if args.timings {
        let _ = timings::render(&mut io::stderr().lock());
    }
    code
}

/// Parses the command line as clap would, faster for many roots.
///
/// clap spends ≈ 2 µs and several allocations on each value, so a whole
/// `/usr/bin` given as `--root` pairs (1,300 arguments) cost ≈ 2 ms before
/// anything else could start. A run of consecutive `--root PATH` pairs is
/// folded into its first pair here; clap parses what is left, and the
/// folded paths go back in right after the value they followed. Only pairs
/// whose path clap would take as is are folded (not empty, not starting
/// with `-`), and nothing after `--`. When clap's roots are not exactly the
/// pairs left to it (or it rejects the command line), the original
/// arguments are parsed by clap alone, so its answers and error messages
/// stay its own.
pub fn parse_args(argv: Vec<std::ffi::OsString>) -> Args {
    try_parse_args(argv).unwrap_or_else(|e| e.exit())
}

/// [`parse_args`] without exiting: clap's error when it rejects the
/// arguments.
pub fn try_parse_args(argv: Vec<std::ffi::OsString>) -> Result<Args, clap::Error> {
    if let Some((short, kept)) = fold_roots(&argv) {
        if let Ok(mut args) = Args::try_parse_from(&short) {
            let same = args.roots.len() == kept.len()
                && args
                    .roots
                    .iter()
                    .zip(&kept)
                    .all(|(value, (first, _))| value.as_os_str() == first.as_os_str());
            if same {
                let mut roots = Vec::with_capacity(argv.len() / 2);
                for (value, (_, folded)) in args.roots.iter().zip(&kept) {
                    roots.push(value.clone());
                    roots.extend(folded.iter().map(PathBuf::from));
                }
                args.roots = roots;
                return Ok(args);
            }
        }
    }
    Args::try_parse_from(argv)
}

/// The arguments with each run of `--root PATH` pairs folded into its first
/// pair, and, for every `--root` clap will still see (in order), its value
/// and the paths folded after it. `None` when nothing is folded.
#[allow(clippy::type_complexity)]
fn fold_roots(
    argv: &[std::ffi::OsString],
) -> Option<(
    Vec<std::ffi::OsString>,
    Vec<(std::ffi::OsString, Vec<std::ffi::OsString>)>,
)> {
    use std::os::unix::ffi::OsStrExt;
    let plain = |v: &std::ffi::OsString| {
        let b = v.as_bytes();
        !b.is_empty() && b[0] != b'-'
    };
    let mut short = Vec::with_capacity(argv.len());
    let mut kept: Vec<(std::ffi::OsString, Vec<std::ffi::OsString>)> = Vec::new();
    let mut folded_any = false;
    // Whether the last thing kept is a `--root PATH` pair that later pairs
    // may fold into.
    let mut open_run = false;
    let mut i = 0;
    if let Some(program) = argv.first() {
        short.push(program.clone());
        i = 1;
    }
    while i < argv.len() {
        let a = &argv[i];
        if a == "--" {
            short.extend(argv[i..].iter().cloned());
            break;
        }
        if a == "--root" {
            if let Some(v) = argv.get(i + 1) {
                if open_run && plain(v) {
                    if let Some((_, folded)) = kept.last_mut() {
                        folded.push(v.clone());
                    }
                    folded_any = true;
                    i += 2;
                    continue;
                }
                short.push(a.clone());
                short.push(v.clone());
                kept.push((v.clone(), Vec::new()));
                open_run = plain(v);
                i += 2;
                continue;
            }
        } else if let Some(v) = a.as_bytes().strip_prefix(b"--root=") {
            kept.push((std::ffi::OsStr::from_bytes(v).to_os_string(), Vec::new()));
        }
        short.push(a.clone());
        open_run = false;
        i += 1;
    }
    folded_any.then_some((short, kept))
}

/// Room made in the walk's map for each root past the first
/// ([`RootFs::with_capacity`]). The union of this machine's `/usr/bin`
/// and `/usr/sbin` leaves 1,170 entries for 662 roots (1.8 a root). A
/// hash table spreads its entries over all of its memory, so room it
/// never fills still costs a fresh page each 4 KiB: three a root made
/// the tables twice as large and cost ≈ 50 more page faults a run (2.4%);
/// a shard that does fill up grows, as any table does.
const WALK_PATHS_PER_ROOT: usize = 2;

/// Runs one invocation. `Err` means unusable input (exit 2).
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    if let Some(dir) = &args.verify {
        return verify::run_flag(args, dir);
    }
    let cfg = config::Config::from_args(args)?;
    if cfg.resolve.secure && cfg.resolve.library_path.is_some() && !args.quiet {
        let _ = writeln!(
            io::stderr(),
            "warning: --library-path is ignored with --secure: the loader does not read \
             LD_LIBRARY_PATH for a program in secure mode"
        );
    }
    // Never freed: what the walk remembered (one entry per path it
    // looked at) is handed back with the process, not entry by entry.
    // About two entries per root when roots are many (a program, the
    // libraries it adds to the union, their links and directories).
    let fs = std::mem::ManuallyDrop::new(RootFs::with_capacity(
        &cfg.sysroot,
        WALK_PATHS_PER_ROOT * cfg.roots.len().saturating_sub(1),
    )?);
    let resolver = Resolver::new(&fs, cfg.resolve.clone());
    let roots = config::expand_roots(&fs, &cfg.roots, false)?;
    let includes = stage::include::expand(&fs, &cfg.includes)?;
    let mut build = cfg.build.clone();
    build.keep_search = cfg.verbose;
    build.include_roots = config::expand_roots(
        &fs,
        &includes
            .iter()
            .map(|i| crate::resolve::bytes_path(i))
            .collect::<Vec<_>>(),
        true,
    )?;
    // NSS modules follow the nsswitch.conf that will be staged.
    if cfg.out.is_some() || cfg.oci.wants_plan() || cfg.format == Format::Audit {
        let nss = std::path::Path::new("/etc/nsswitch.conf");
        let staged = includes
            .iter()
            .any(|i| i.as_slice() == b"/etc/nsswitch.conf")
            || (cfg.base_files && fs.kind(nss).is_ok());
        if staged {
            if let Ok(conf) = fs.read(nss, 1 << 20) {
                build.nss_services = Some(crate::runtime::nss_services(&conf));
            }
        }
    }
    if args.startup_only {
        build.dlopen_priority = None;
        build.dlopen_strings = false;
        build.libgcc = false;
        build.nss_services = None;
        build.gconv = None;
    }
    timings::mark("setup");
    let mut g = graph::build(&resolver, &roots, &build)?;
    if args.check_symbols {
        graph::symbols::check(&fs, &mut g);
        timings::mark("symbol check");
    } else {
        graph::symbols::plugin_failures(&fs, &mut g);
    }
    if let Some(base) = &cfg.oci.base {
        crate::oci::base::check_versions(&fs, &crate::oci::open_base(base)?, &mut g);
        timings::mark("base image check");
    }
    if cfg.verbose {
        let _ = report::steps::render(&g, &mut style::stderr());
        timings::mark("search log");
    }
    if cfg.out.is_some() || cfg.oci.wants_plan() {
        return stage_to(&fs, &g, &cfg, &build, includes, cfg.out.as_deref());
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if let Some(target) = &args.why {
        let any = report::why::render(&g, target.as_bytes(), &mut out)
            .map_err(|e| Error::io("<stdout>", e))?;
        if !any {
            return Err(Error::Usage(format!(
                "--why {target}: no object or missing library of that name or path in the closure"
            )));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let audit = crate::audit::cli::for_report(&fs, &mut g, &cfg, &includes)?;
    if audit.is_some() {
        timings::mark("audit");
    }
    let written = {
        let mut buffered = io::BufWriter::with_capacity(64 << 10, &mut out);
        print_report(&g, &cfg, audit.as_ref(), &mut buffered).and_then(|()| buffered.flush())
    };
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(Error::io("<stdout>", e)),
        Ok(()) => {}
    }
    let mut err = style::stderr();
    let _ = report::problems::render(&g, &mut err);
    timings::mark("report");
    if let Some(a) = &audit {
        let _ = crate::audit::render::problems(a, &mut err);
    }
    if !cfg.quiet {
        for w in &g.warnings {
            let _ = writeln!(err, "warning: {w}");
        }
    }
    let forbidden = audit.is_some_and(|a| !a.forbidden().is_empty());
    let code = if g.is_clean() && !forbidden {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    // Freeing the graph and the resolver's memos allocation by allocation
    // costs a large run more than its reporting; the process ends next.
    std::mem::forget(g);
    std::mem::forget(resolver);
    Ok(code)
}

/// Stages the closure into `out`; problems block staging unless
/// `--allow-missing`.
fn stage_to(
    fs: &RootFs,
    g: &DepGraph,
    cfg: &config::Config,
    build: &graph::BuildOptions,
    includes: Vec<Vec<u8>>,
    out: Option<&std::path::Path>,
) -> Result<ExitCode, Error> {
    let mut err = style::stderr();
    let _ = report::problems::render(g, &mut err);
    if !g.is_clean() && !cfg.allow_missing {
        let _ = writeln!(
            err,
            "closure: nothing staged: the closure has problems (use --allow-missing to stage anyway)"
        );
        return Ok(ExitCode::from(1));
    }
    let mut plan = stage::plan(
        fs,
        g,
        &stage::PlanOptions {
            base_files: cfg.base_files,
            includes,
        },
    )?;
    let prepared = crate::oci::prepare(fs, g, &mut plan, &cfg.oci)?;
    let Some(surface) = crate::audit::cli::before_staging(fs, g, &plan, cfg, &mut err)? else {
        return Ok(ExitCode::from(1));
    };
    timings::mark("staging plan");
    let progress = progress::Progress::new(cfg.quiet);
    let written = match out {
        Some(out) => stage::copy::materialize(
            fs,
            &plan,
            out,
            stage::copy::CopyOptions {
                force: cfg.force,
                link: cfg.link,
            },
            &progress,
        )?,
        None => stage::copy::CopyReport::default(),
    };
    if out.is_some() {
        timings::mark("copy");
    }
    let emitted = crate::oci::emit(fs, g, &plan, &prepared, &cfg.oci)?;
    if cfg.oci.wants_plan() {
        timings::mark("image");
    }
    if let Some(digest) = &emitted.manifest_digest {
        let _ = writeln!(io::stdout(), "{digest}");
    }
    if !cfg.quiet {
        for w in g.warnings.iter().chain(&prepared.warnings) {
            let _ = writeln!(err, "warning: {w}");
        }
        if let Some((dir, why)) = &written.exposed {
            let _ = writeln!(
                err,
                "warning: {}: {why}: someone else could replace the staged tree before it is used \
                 (stage below a directory only you can write)",
                dir.display()
            );
        }
        for (path, why) in &written.caps_lost {
            let _ = writeln!(
                err,
                "warning: {}: the file capabilities of the sysroot's file were not kept ({why}); \
                 the staged file runs without them (setting them needs CAP_SETFCAP)",
                path.display()
            );
        }
    }
    // A root staged for --base holds only what the base lacks.
    if let (true, Some(out), None) = (cfg.verify, out, &cfg.oci.base) {
        let check = timings::quietly(|| {
            crate::verify::check_staged(
                g,
                out,
                &crate::verify::Options {
                    resolve: cfg.resolve.clone(),
                    build: build.clone(),
                    check_symbols: cfg.check_symbols,
                    keep_search: false,
                },
            )
        })?;
        timings::mark("verify");
        if !check.divergences.is_empty() {
            for d in &check.divergences {
                let _ = writeln!(err, "error: {d}");
            }
            let _ = writeln!(
                err,
                "closure: the staged root {} does not load what the sysroot loads (left in place for inspection; --no-verify skips this check)",
                out.display()
            );
            return Ok(ExitCode::from(1));
        }
    }
    // The summary is for people: on a terminal only, so a clean run in a
    // build log prints nothing on stderr (docs/cli-contract.md).
    if let (false, true, Some(out)) = (
        cfg.quiet,
        std::io::IsTerminal::is_terminal(&io::stderr()),
        out,
    ) {
        let total = report::size::sysroot_bytes(fs);
        let share = if total > 0 {
            format!(
                ", {:.2}% of the sysroot's {} bytes",
                written.bytes as f64 * 100.0 / total as f64,
                total
            )
        } else {
            String::new()
        };
        let linked = if cfg.link {
            format!(" ({} hard-linked)", written.linked)
        } else {
            String::new()
        };
        let _ = writeln!(
            err,
            "staged {} files{linked}, {} bytes{share} into {}",
            written.files,
            written.bytes,
            out.display()
        );
    }
    crate::audit::cli::after_staging(&surface, cfg, &mut err);
    Ok(if g.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(
    g: &DepGraph,
    cfg: &config::Config,
    audit: Option<&crate::audit::Audit>,
    out: &mut dyn Write,
) -> io::Result<()> {
    match cfg.format {
        Format::Json => {
            report::json::render_with_audit(g, &cfg.sysroot.display().to_string(), audit, out)
        }
        Format::Audit => match audit {
            Some(a) => crate::audit::render::report(a, out),
            None => report::render(g, Format::Audit, out),
        },
        Format::Size => {
            let total = crate::rootfs::RootFs::new(&cfg.sysroot)
                .map(|fs| report::size::sysroot_bytes(&fs))
                .ok();
            report::size::render(g, total, out)
        }
        f => report::render(g, f, out),
    }?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    /// What clap alone makes of `argv`: the arguments, or its message.
    fn by_clap(argv: &[&str]) -> std::result::Result<String, String> {
        Args::try_parse_from(argv)
            .map(|a| format!("{a:?}"))
            .map_err(|e| e.render().to_string())
    }

    fn by_fold(argv: &[&str]) -> std::result::Result<String, String> {
        try_parse_args(argv.iter().map(OsString::from).collect())
            .map(|a| format!("{a:?}"))
            .map_err(|e| e.render().to_string())
    }

    #[test]
    fn folded_roots_parse_exactly_as_clap_alone() {
        let cases: &[&[&str]] = &[
            &["closure", "--root", "/a", "--root", "/b", "--root", "/c"],
            &[
                "closure", "--root", "/a", "--format", "list", "--root", "/b", "--root", "/c",
            ],
            &[
                "closure",
                "--root",
                "/a",
                "--root=/b",
                "--root",
                "/c",
                "--root",
                "/d",
            ],
            &[
                "closure",
                "--sysroot",
                "/s",
                "--root",
                "a",
                "--root",
                "b",
                "--out",
                "/o",
            ],
            &["closure", "--root", "/a", "--root", "", "--root", "/c"],
            &["closure", "--root", "/a", "--root", "-x", "--root", "/c"],
            &["closure", "--root", "-x", "--root", "/b", "--root", "/c"],
            &[
                "closure", "--root", "/a", "--root", "/b", "--", "--root", "/c",
            ],
            &["closure", "--why", "--root", "/a", "--root", "/b"],
            &["closure", "--root", "/a", "--root", "/b", "--bogus"],
            &["closure", "--root", "/a", "--root", "/b", "--root"],
            &["closure", "--root", "/a", "--root", "/a", "--root", "/a"],
            &["closure", "--root", "/a", "--root", "/b", "--help"],
            &["closure", "--verify", "/v", "--root", "/a", "--root", "/b"],
            &[
                "closure", "--root", "/a", "--root", "/b", "--format", "json", "--root", "/c",
            ],
        ];
        for argv in cases {
            assert_eq!(by_fold(argv), by_clap(argv), "{argv:?}");
        }
    }

    #[test]
    fn folding_happens_and_keeps_the_order() {
        let argv: Vec<OsString> = [
            "closure", "--root", "/a", "--root", "/b", "--format", "list",
        ]
        .iter()
        .chain(&["--root", "/c", "--root", "/d", "--root", "/e"])
        .map(OsString::from)
        .collect();
        let (short, kept) = fold_roots(&argv).expect("pairs to fold");
        let short: Vec<_> = short.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(
            short,
            ["closure", "--root", "/a", "--format", "list", "--root", "/c"]
        );
        assert_eq!(kept.len(), 2);
        let args = try_parse_args(argv).unwrap();
        let roots: Vec<_> = args.roots.iter().map(|r| r.to_str().unwrap()).collect();
        assert_eq!(roots, ["/a", "/b", "/c", "/d", "/e"]);
        // Nothing to fold: clap parses the arguments as given.
        let one: Vec<OsString> = ["closure", "--root", "/a"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(fold_roots(&one).is_none());
    }
}
