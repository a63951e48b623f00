//! The audit on the command line: the `closure audit DIR` subcommand, and
//! the steps the main command takes around staging (`--forbid`, the
//! surface line, `--format audit`).
//!
//! Like [`crate::cli`], this is the part that prints and picks exit codes:
//! 0 when nothing forbidden was found, 1 when `--forbid` names a category
//! that was found, 2 for usage errors and unreadable input. `closure audit`
//! is recognised by [`crate::cli::main`] when it is the first argument, so
//! the contract's top-level form (`closure --root …`) is untouched.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use super::{Attribution, Audit, Category};
use crate::cli::config::Config;
use crate::error::{Error, Result};
use crate::graph::DepGraph;
use crate::report::Format;
use crate::rootfs::RootFs;
use crate::stage::{self, Plan};

/// Output formats of `closure audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// One line per finding, then the surface summary.
    Text,
    /// One JSON object: `schema_version`, `root`, `summary`, `audit`.
    Json,
}

/// Report what a root directory exposes: shells, package managers,
/// setuid/setgid files, file capabilities, world-writable paths and device
/// nodes.
#[derive(Debug, Parser)]
#[command(name = "closure audit", version, max_term_width = 100)]
pub struct AuditArgs {
    /// The directory to audit as a root filesystem (a staged root, an
    /// unpacked image). Nothing outside it is read; links are resolved
    /// inside it.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Findings that are problems (exit 1): comma-separated shell,
    /// package-manager, setuid, setgid, capabilities, world-writable,
    /// devices, or all. Repeatable.
    #[arg(long, value_name = "LIST")]
    pub forbid: Vec<String>,

    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: AuditFormat,

    /// Print no report; only forbidden findings (on stderr).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `closure audit` with the arguments that follow the word `audit`.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("closure audit")).chain(args);
    let parsed = match AuditArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(&parsed) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io::stderr(), "closure audit: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs one `closure audit`. `Err` means unusable input (exit 2).
pub fn run(args: &AuditArgs) -> Result<ExitCode> {
    let forbid = Category::parse_list(&args.forbid)?;
    let meta = std::fs::metadata(&args.dir).map_err(|e| Error::io(&args.dir, e))?;
    if !meta.is_dir() {
        return Err(Error::BadRoot {
            path: args.dir.clone(),
            reason: "not a directory".into(),
        });
    }
    let fs = RootFs::new(&args.dir)?;
    let mut audit = super::of_dir(&fs)?;
    audit.forbid = forbid;
    if !args.quiet {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        let written = match args.format {
            AuditFormat::Text => super::render::report(&audit, &mut out),
            AuditFormat::Json => {
                crate::report::json::render_audit(&audit, &args.dir.display().to_string(), &mut out)
            }
        }
        .and_then(|()| out.flush());
        match written {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                return Err(Error::io("<stdout>", e))
            }
            _ => {}
        }
    }
    Ok(finish(&audit, &mut io::stderr().lock()))
}

/// Writes the forbidden findings; exit 1 when there are any.
fn finish(audit: &Audit, err: &mut dyn Write) -> ExitCode {
    let _ = super::render::problems(audit, err);
    if audit.forbidden().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Audits a staging plan of the closure `g`, crediting each finding to the
/// `--root` or `--include` of `cfg` that pulled it in, with `cfg`'s
/// `--forbid`.
pub fn audit_plan(fs: &RootFs, g: &DepGraph, plan: &Plan, cfg: &Config) -> Result<Audit> {
    let given: Vec<PathBuf> = cfg.roots.clone();
    let credit = Attribution::new(fs, g, &given, &cfg.includes)?;
    let mut audit = super::of_plan(fs, plan, &credit)?;
    audit.forbid = cfg.forbid.clone();
    Ok(audit)
}

/// Audits what `--out` would stage for `g` (the same plan: closure,
/// includes, base files) without writing anything; for `--format audit`,
/// `--format json` and `--forbid` on a run that does not stage.
pub fn audit_unstaged(
    fs: &RootFs,
    g: &DepGraph,
    cfg: &Config,
    includes: &[Vec<u8>],
) -> Result<Audit> {
    let plan = stage::plan(
        fs,
        g,
        &stage::PlanOptions {
            base_files: cfg.base_files,
            includes: includes.to_vec(),
        },
    )?;
    audit_plan(fs, g, &plan, cfg)
}

/// Before staging: audits the plan; with forbidden findings, writes them
/// and says nothing is staged, and returns `None` (exit 1) — nothing has
/// been written yet.
pub fn before_staging(
    fs: &RootFs,
    g: &DepGraph,
    plan: &Plan,
    cfg: &Config,
    err: &mut dyn Write,
) -> Result<Option<Audit>> {
    let audit = audit_plan(fs, g, plan, cfg)?;
    if audit.forbidden().is_empty() {
        return Ok(Some(audit));
    }
    let _ = super::render::problems(&audit, err);
    let names: BTreeSet<&str> = audit
        .forbidden()
        .iter()
        .map(|f| f.category.name())
        .collect();
    let _ = writeln!(
        err,
        "closure: nothing staged: the closure holds what --forbid {} rules out",
        names.into_iter().collect::<Vec<_>>().join(",")
    );
    Ok(None)
}

/// After staging: the surface line, unless `--quiet`. A clean surface is
/// stated only on a terminal (beside the staging summary, so a clean run
/// in a build log stays silent); findings are always stated.
pub fn after_staging(audit: &Audit, cfg: &Config, err: &mut dyn Write) {
    if cfg.quiet {
        return;
    }
    if !audit.findings.is_empty() || io::stderr().is_terminal() {
        let _ = writeln!(err, "{}", audit.summary());
    }
}

/// The audit a run that does not stage needs: for `--format audit` and
/// `--forbid` (an error is an error), and for the `audit` field of
/// `--format json` (an audit that cannot be done becomes a warning, so the
/// report itself still prints). `None` for other formats.
pub fn for_report(
    fs: &RootFs,
    g: &mut DepGraph,
    cfg: &Config,
    includes: &[Vec<u8>],
) -> Result<Option<Audit>> {
    if cfg.format == Format::Audit || !cfg.forbid.is_empty() {
        return audit_unstaged(fs, g, cfg, includes).map(Some);
    }
    if cfg.format != Format::Json {
        return Ok(None);
    }
    match audit_unstaged(fs, g, cfg, includes) {
        Ok(a) => Ok(Some(a)),
        Err(e) => {
            g.warnings.push(format!("no audit of the closure: {e}"));
            Ok(None)
        }
    }
}
