//! The command line: `closure [--sysroot DIR] --root PATH… [OPTIONS]`.
//!
//! Owns argument parsing (clap derive), turning raw arguments into library
//! options in one place ([`config`]), running the trace, printing the
//! report on stdout and problems on stderr, and choosing the exit code
//! (0 clean, 1 problems in the closure, 2 usage or unreadable input). The
//! contract this must keep is `docs/cli-contract.md`.

pub mod config;
pub mod progress;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use crate::error::Error;
use crate::graph::{self, DepGraph};
use crate::report::{self, Format};
use crate::resolve::Resolver;
use crate::rootfs::RootFs;
use crate::stage;

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
    #[arg(long = "root", value_name = "PATH", required = true)]
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

    /// Report format when not staging.
    #[arg(long, value_enum, default_value = "tree")]
    pub format: FormatArg,

    /// Simulated LD_LIBRARY_PATH (':' or ';' separated). The host's
    /// environment is never read.
    #[arg(long, value_name = "LIST")]
    pub library_path: Option<String>,

    /// Value of $PLATFORM (default: the architecture's usual AT_PLATFORM,
    /// e.g. x86_64).
    #[arg(long, value_name = "NAME")]
    pub platform: Option<String>,

    /// glibc-hwcaps subdirectories active on the CPU that will run the
    /// program, most capable first (e.g. x86-64-v3,x86-64-v2), or
    /// `baseline` (the default): model a baseline CPU and record every
    /// variant found.
    #[arg(long, value_name = "LIST", default_value = "baseline")]
    pub hwcaps: String,

    /// Ignore the sysroot's /etc/ld.so.cache (as `ld.so --inhibit-cache`).
    #[arg(long)]
    pub inhibit_cache: bool,

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

    /// Print nothing on stderr but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Parses the process arguments, runs, and returns the exit code.
pub fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io::stderr(), "closure: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs one invocation. `Err` means unusable input (exit 2).
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    let cfg = config::Config::from_args(args)?;
    let fs = RootFs::new(&cfg.sysroot)?;
    let resolver = Resolver::new(&fs, cfg.resolve.clone());
    let roots = config::expand_roots(&fs, &cfg.roots, false)?;
    let includes = stage::include::expand(&fs, &cfg.includes)?;
    let mut build = cfg.build.clone();
    build.include_roots = config::expand_roots(
        &fs,
        &includes
            .iter()
            .map(|i| crate::resolve::bytes_path(i))
            .collect::<Vec<_>>(),
        true,
    )?;
    let mut g = graph::build(&resolver, &roots, &build)?;
    if args.check_symbols {
        graph::symbols::check(&fs, &mut g);
    }
    if let Some(out) = &cfg.out {
        return stage_to(&fs, &g, &cfg, includes, out);
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
    let written = print_report(&g, &cfg, &mut out);
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(Error::io("<stdout>", e)),
        Ok(()) => {}
    }
    let mut err = io::stderr().lock();
    let _ = report::problems::render(&g, &mut err);
    if !cfg.quiet {
        for w in &g.warnings {
            let _ = writeln!(err, "warning: {w}");
        }
    }
    Ok(if g.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Stages the closure into `out`; problems block staging unless
/// `--allow-missing`.
fn stage_to(
    fs: &RootFs,
    g: &DepGraph,
    cfg: &config::Config,
    includes: Vec<Vec<u8>>,
    out: &std::path::Path,
) -> Result<ExitCode, Error> {
    let mut err = io::stderr().lock();
    let _ = report::problems::render(g, &mut err);
    if !g.is_clean() && !cfg.allow_missing {
        let _ = writeln!(
            err,
            "closure: nothing staged: the closure has problems (use --allow-missing to stage anyway)"
        );
        return Ok(ExitCode::from(1));
    }
    let plan = stage::plan(
        fs,
        g,
        &stage::PlanOptions {
            base_files: cfg.base_files,
            includes,
        },
    )?;
    let progress = progress::Progress::new(cfg.quiet);
    let written = stage::copy::materialize(
        fs,
        &plan,
        out,
        stage::copy::CopyOptions { force: cfg.force },
        &progress,
    )?;
    if !cfg.quiet {
        for w in &g.warnings {
            let _ = writeln!(err, "warning: {w}");
        }
    }
    // The summary is for people: on a terminal only, so a clean run in a
    // build log prints nothing on stderr (docs/cli-contract.md).
    if !cfg.quiet && std::io::IsTerminal::is_terminal(&io::stderr()) {
        let total = sysroot_bytes(fs);
        let share = if total > 0 {
            format!(
                ", {:.2}% of the sysroot's {} bytes",
                written.bytes as f64 * 100.0 / total as f64,
                total
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            err,
            "staged {} files, {} bytes{share} into {}",
            written.files,
            written.bytes,
            out.display()
        );
    }
    Ok(if g.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Bytes of the sysroot: for `/` the used bytes of its file system (a
/// walk of a whole host would take seconds), else all regular files
/// below it on one file system.
fn sysroot_bytes(fs: &RootFs) -> u64 {
    if fs.host_root() == std::path::Path::new("/") {
        return rustix::fs::statvfs("/")
            .map(|s| (s.f_blocks.saturating_sub(s.f_bfree)).saturating_mul(s.f_frsize))
            .unwrap_or(0);
    }
    walkdir::WalkDir::new(fs.host_root())
        .same_file_system(true)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn print_report(g: &DepGraph, cfg: &config::Config, out: &mut dyn Write) -> io::Result<()> {
    match cfg.format {
        Format::Json => {
            report::json::render_with_sysroot(g, &cfg.sysroot.display().to_string(), out)
        }
        f => report::render(g, f, out),
    }?;
    out.flush()
}
