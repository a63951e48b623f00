//! `closure verify DIR` (also `closure --verify DIR`): the command line of
//! [`crate::verify::verify_dir`].
//!
//! A subcommand parsed by its own small clap struct, dispatched on the first
//! argument, so the contract's top-level form `closure --root … [--out …]`
//! (with `--root` required) is untouched. Reports like the tracer: the
//! report in `--format` on stdout, problems on stderr, exit 0 when every
//! ELF file resolves inside DIR, 1 when something does not, 2 when DIR
//! cannot be used.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, ValueEnum};

use super::{style, Args, DlopenPriorityArg, FormatArg};
use crate::error::Error;
use crate::graph::DepGraph;
use crate::report::{self, Format};
use crate::resolve;
use crate::util::show;
use crate::verify;

/// Check statically that every ELF program and library in DIR resolves
/// completely inside DIR (its own interpreter, every DT_NEEDED, every
/// required symbol version, and the run-time loads: .note.dlopen, libgcc_s,
/// the NSS modules of DIR's nsswitch.conf), as a staged image root must.
/// Nothing is run.
#[derive(Debug, Parser)]
#[command(
    name = "closure-verify",
    bin_name = "closure verify",
    version,
    max_term_width = 100
)]
pub struct VerifyArgs {
    /// The directory to check, used as a root filesystem.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Also check that every undefined symbol a relocation needs binds to a
    /// definition (what `ldd -r` reports, done statically).
    #[arg(long)]
    pub check_symbols: bool,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "tree")]
    pub format: FormatArg,

    /// Simulated LD_LIBRARY_PATH the programs will run with.
    #[arg(long, value_name = "LIST")]
    pub library_path: Option<String>,

    /// Simulated LD_PRELOAD the programs will run with (names or paths,
    /// ' ' or ':' separated); DIR's own /etc/ld.so.preload is read too.
    #[arg(long, value_name = "LIST")]
    pub preload: Option<String>,

    /// Simulated LD_AUDIT the programs will run with (':' separated).
    #[arg(long, value_name = "LIST")]
    pub ld_audit: Option<String>,

    /// Value of $PLATFORM.
    #[arg(long, value_name = "NAME")]
    pub platform: Option<String>,

    /// Check `.note.dlopen` entries of at least this priority (a missing
    /// `required` one is a problem, others warnings).
    #[arg(long, value_enum, default_value = "recommended")]
    pub dlopen_priority: DlopenPriorityArg,

    /// Only check `.note.dlopen` entries of this feature. Repeatable.
    #[arg(long = "dlopen-feature", value_name = "FEATURE")]
    pub dlopen_features: Vec<String>,

    /// Also check the library names spelled in the read-only data of each
    /// object that calls dlopen (a heuristic; a name not found is a
    /// warning).
    #[arg(long)]
    pub dlopen_strings: bool,

    /// Check that these gconv modules (for iconv) load: `all`, or
    /// character sets such as `EUC-JP,ISO-8859-15`.
    #[arg(long, value_name = "all|CHARSET,...")]
    pub gconv: Option<String>,

    /// Only what the loader maps at program start: no `.note.dlopen`, NSS
    /// (DIR's /etc/nsswitch.conf), libgcc_s or gconv loads.
    #[arg(long)]
    pub startup_only: bool,

    /// glibc-hwcaps subdirectories active on the CPU, or `baseline`.
    #[arg(long, value_name = "LIST", default_value = "baseline")]
    pub hwcaps: String,

    /// Ignore DIR's /etc/ld.so.cache.
    #[arg(long)]
    pub inhibit_cache: bool,

    /// Resolve as the loader does for programs in secure mode (setuid,
    /// setgid or file capabilities, run by another user); see
    /// `closure --help`.
    #[arg(long)]
    pub secure: bool,

    /// Working directory of the programs.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub cwd: String,

    /// Print nothing on stderr but errors.
    #[arg(long, short)]
    pub quiet: bool,

    /// Print each search step on stderr, like LD_DEBUG=libs.
    #[arg(long, short, conflicts_with = "quiet")]
    pub verbose: bool,
}

/// The whole command line for documentation: the top-level form with
/// `verify` and `audit` as subcommands (completions and man pages are
/// generated from it).
pub fn full_command() -> clap::Command {
    Args::command()
        .subcommand(
            VerifyArgs::command()
                .name("verify")
                .bin_name("closure verify"),
        )
        .subcommand(
            crate::audit::cli::AuditArgs::command()
                .name("audit")
                .bin_name("closure audit"),
        )
}

/// Parses `closure verify …` (`argv` without the program name, starting at
/// `verify`) and runs it.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = VerifyArgs::parse_from(argv);
    finish(run(&args))
}

/// `closure --verify DIR` with the top-level options that apply.
pub fn run_flag(a: &Args, dir: &Path) -> Result<ExitCode, Error> {
    run(&VerifyArgs {
        dir: dir.to_path_buf(),
        check_symbols: a.check_symbols,
        format: a.format,
        library_path: a.library_path.clone(),
        preload: a.preload.clone(),
        ld_audit: a.ld_audit.clone(),
        platform: a.platform.clone(),
        dlopen_priority: a.dlopen_priority,
        dlopen_features: a.dlopen_features.clone(),
        dlopen_strings: a.dlopen_strings,
        gconv: a.gconv.clone(),
        startup_only: a.startup_only,
        hwcaps: a.hwcaps.clone(),
        inhibit_cache: a.inhibit_cache,
        secure: a.secure,
        cwd: a.cwd.clone(),
        quiet: a.quiet,
        verbose: a.verbose,
    })
}

fn finish(r: Result<ExitCode, Error>) -> ExitCode {
    match r {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io::stderr(), "closure: {e}");
            ExitCode::from(2)
        }
    }
}

/// The search options of `closure verify`'s arguments.
fn resolve_options(a: &VerifyArgs) -> Result<resolve::Options, Error> {
    let hwcaps = super::config::parse_hwcaps(&a.hwcaps)?;
    if !a.cwd.starts_with('/') {
        return Err(Error::Usage(
            "--cwd must be an absolute path inside the directory".into(),
        ));
    }
    Ok(resolve::Options {
        library_path: a.library_path.as_ref().map(|s| s.as_bytes().to_vec()),
        preload: a.preload.as_ref().map(|s| s.as_bytes().to_vec()),
        audit: a.ld_audit.as_ref().map(|s| s.as_bytes().to_vec()),
        platform: a.platform.as_ref().map(|s| s.as_bytes().to_vec()),
        hwcaps,
        cwd: a.cwd.as_bytes().to_vec(),
        use_cache: !a.inhibit_cache,
        secure: a.secure,
        found_searches: a.verbose,
    })
}

/// The run-time loads `closure verify` checks, as the tracer follows them:
/// `.note.dlopen` entries, with `--dlopen-strings` the library names in
/// read-only data, libgcc_s for `pthread_cancel` users, the NSS
/// modules of DIR's own `/etc/nsswitch.conf` (read through the root), and
/// `--gconv` modules; none with `--startup-only`.
fn build_options(a: &VerifyArgs) -> crate::graph::BuildOptions {
    let mut b = crate::graph::BuildOptions::default();
    if a.startup_only {
        return b;
    }
    b.dlopen_priority = super::config::dlopen_priority(a.dlopen_priority);
    b.dlopen_features = a.dlopen_features.clone();
    b.dlopen_strings = a.dlopen_strings;
    b.libgcc = true;
    b.gconv = a.gconv.as_deref().map(crate::runtime::GconvSpec::parse);
    // A DIR that cannot be opened is reported by the verification itself.
    if let Ok(fs) = crate::rootfs::RootFs::new(&a.dir) {
        if let Ok(conf) = fs.read(Path::new("/etc/nsswitch.conf"), 1 << 20) {
            b.nss_services = Some(crate::runtime::nss_services(&conf));
        }
    }
    b
}

/// Runs `closure verify`. `Err` means DIR cannot be used (exit 2).
pub fn run(a: &VerifyArgs) -> Result<ExitCode, Error> {
    let opts = verify::Options {
        resolve: resolve_options(a)?,
        build: build_options(a),
        check_symbols: a.check_symbols,
        keep_search: a.verbose,
    };
    let v = verify::verify_dir(&a.dir, &opts)?;
    let mut err = style::stderr();
    if a.verbose {
        let _ = report::steps::render(&v.graph, &mut err);
        for s in &v.ignored {
            let _ = writeln!(err, "note: {} not checked: {}", show(&s.path), s.reason);
        }
    }
    let stdout = io::stdout();
    print(&v.graph, a.format, &a.dir, &mut stdout.lock())?;
    for s in &v.unloadable {
        let _ = writeln!(
            err,
            "error: {}: the loader cannot map it: {}",
            show(&s.path),
            s.reason
        );
    }
    let _ = report::problems::render(&v.graph, &mut err);
    if !a.quiet {
        for w in &v.graph.warnings {
            let _ = writeln!(err, "warning: {w}");
        }
    }
    if v.is_clean() {
        return Ok(ExitCode::SUCCESS);
    }
    let _ = writeln!(
        err,
        "closure: {} does not resolve completely inside itself",
        a.dir.display()
    );
    Ok(ExitCode::from(1))
}

fn print(g: &DepGraph, format: FormatArg, dir: &Path, out: &mut dyn Write) -> Result<(), Error> {
    // By name, so formats added to the tracer later need no change here
    // unless verify should support them.
    let name = format
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    let written = match name.as_str() {
        "json" => report::json::render_with_sysroot(g, &dir.display().to_string(), out),
        "size" => {
            let total = crate::rootfs::RootFs::new(dir)
                .map(|fs| report::size::sysroot_bytes(&fs))
                .ok();
            report::size::render(g, total, out)
        }
        "tree" => report::render(g, Format::Tree, out),
        "list" => report::render(g, Format::List, out),
        "ldd" => report::render(g, Format::Ldd, out),
        "dot" => report::render(g, Format::Dot, out),
        other => {
            return Err(Error::Usage(format!(
                "--format {other} is not supported by verify"
            )))
        }
    }
    .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("<stdout>", e)),
        Ok(()) => Ok(()),
    }
}
