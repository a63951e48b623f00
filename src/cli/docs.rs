//! Shell completions and man pages, generated from the clap definition.
//!
//! Reached through the hidden first argument `--generate-docs DIR` (what
//! `cargo xtask dist` runs on the release binary), so the files always match
//! the binary they ship with: `closure.bash`, `_closure` (zsh),
//! `closure.fish`, `closure.1`, `closure-verify.1` and `closure-audit.1`.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use super::verify::{full_command, VerifyArgs};
use crate::error::Error;

/// The hidden first argument that selects this generator.
pub const FLAG: &str = "--generate-docs";

/// Writes the completions and man pages into `dir` (created if absent);
/// returns the files written, sorted.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = full_command();
        let path = clap_complete::generate_to(shell, &mut cmd, "closure", dir)
            .map_err(|e| Error::io(dir, e))?;
        written.push(path);
    }
    let pages = [
        ("closure.1", full_command()),
        (
            "closure-verify.1",
            VerifyArgs::command().name("closure-verify"),
        ),
        (
            "closure-audit.1",
            crate::audit::cli::AuditArgs::command().name("closure-audit"),
        ),
    ];
    for (name, cmd) in pages {
        let path = dir.join(name);
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .map_err(|e| Error::io(&path, e))?;
        fs::write(&path, page).map_err(|e| Error::io(&path, e))?;
        written.push(path);
    }
    written.sort();
    Ok(written)
}

/// `closure --generate-docs DIR` (`argv` starts after the program name).
pub fn main(argv: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args: Vec<OsString> = argv.into_iter().collect();
    let [_, dir] = args.as_slice() else {
        let _ = writeln!(io::stderr(), "closure: usage: closure {FLAG} DIR");
        return ExitCode::from(2);
    };
    match write(Path::new(dir)) {
        Ok(files) => {
            let mut out = io::stdout().lock();
            for f in files {
                let _ = writeln!(out, "{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "closure: {e}");
            ExitCode::from(2)
        }
    }
}
