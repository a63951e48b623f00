//! Profile-guided optimization for `cargo xtask dist`.
//!
//! Three steps, each a plain tool call:
//! 1. build `closure` instrumented (`-C profile-generate`) into a target
//!    directory of its own (`target/pgo/`), for an explicit `--target`, so
//!    that the flag reaches only the crates linked into the binary and not
//!    the host's build scripts and proc-macros;
//! 2. run it on a fixed workload ([`training_runs`]): the bundled
//!    `sample-rootfs` (staging, audit, JSON, the symbol check, an OCI
//!    layout) and a few programs of the host, one at a time and together.
//!    It only reads ELF files, as always; nothing of the host is run. The
//!    union run of `cargo xtask bench` is left out on purpose, so that the
//!    benchmark does not measure its own training input (a profile trained
//!    on it gave the same gain on the union, ARCHITECTURE.md);
//! 3. merge the raw profiles with the toolchain's own `llvm-profdata`
//!    ([`find_profdata`]: the profile format follows rustc's LLVM version),
//!    for the final build's `-C profile-use`.
//!
//! Without a matching `llvm-profdata` (`rustup component add llvm-tools`),
//! `dist` says so and builds without a profile.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Host programs traced during training (one at a time, then together),
/// those present.
const HOST_PROGRAMS: &[&str] = &[
    "/usr/bin/ls",
    "/usr/bin/tar",
    "/usr/bin/find",
    "/usr/bin/ssh",
    "/usr/bin/curl",
    "/usr/bin/git",
    "/usr/bin/perl",
    "/usr/bin/python3",
    "/usr/bin/gcc",
    "/usr/sbin/ldconfig",
];

/// The major version of rustc's LLVM, from `rustc -vV`'s
/// `LLVM version: 22.1.2` line.
pub fn llvm_major(verbose_version: &str) -> Option<u32> {
    verbose_version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.trim().split('.').next())
        .and_then(|m| m.parse().ok())
}

/// Where an `llvm-profdata` that reads rustc's profiles is: the toolchain's
/// own (`SYSROOT/lib/rustlib/HOST/bin/`, from the `llvm-tools` component),
/// else `llvm-profdata-MAJOR` in a directory of `path` (a distribution's
/// LLVM of the same major version). `None` when neither exists.
pub fn profdata_in(
    sysroot: &Path,
    host: &str,
    major: Option<u32>,
    path: &std::ffi::OsStr,
) -> Option<PathBuf> {
    let own = sysroot
        .join("lib/rustlib")
        .join(host)
        .join("bin/llvm-profdata");
    if own.is_file() {
        return Some(own);
    }
    let name = format!("llvm-profdata-{}", major?);
    std::env::split_paths(path)
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}

/// [`profdata_in`] for this toolchain and `PATH`.
pub fn find_profdata(host: &str) -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = |args: &[&str]| -> Option<String> {
        let o = Command::new(&rustc).args(args).output().ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let sysroot = PathBuf::from(out(&["--print", "sysroot"])?);
    let major = out(&["-vV"]).as_deref().and_then(llvm_major);
    profdata_in(
        &sysroot,
        host,
        major,
        &std::env::var_os("PATH").unwrap_or_default(),
    )
}

/// One training run: its arguments and whether exit status 1 (a closure
/// with problems, still a complete report) is accepted besides 0.
pub struct Run {
    pub args: Vec<OsString>,
    pub may_fail: bool,
}

/// The training workload. `repo` holds `sample-rootfs/`; outputs go below
/// `scratch`, which must not exist yet; `host_programs` are traced one at a
/// time (list and JSON) when they exist.
pub fn training_runs(repo: &Path, scratch: &Path, host_programs: &[&str]) -> Vec<Run> {
    let sample = repo.join("sample-rootfs");
    let on_sample = |rest: &[&std::ffi::OsStr]| Run {
        args: [
            "--sysroot".as_ref(),
            sample.as_os_str(),
            "--root".as_ref(),
            "/app/bin/server".as_ref(),
        ]
        .iter()
        .chain(rest)
        .map(|a| a.to_os_string())
        .collect(),
        may_fail: false,
    };
    let stage = scratch.join("stage");
    let oci = scratch.join("oci");
    let mut runs = vec![
        on_sample(&["--out".as_ref(), stage.as_os_str()]),
        Run {
            args: vec!["audit".into(), stage.clone().into_os_string()],
            may_fail: false,
        },
        on_sample(&["--format".as_ref(), "json".as_ref()]),
        on_sample(&["--check-symbols".as_ref()]),
        on_sample(&["--oci".as_ref(), oci.as_os_str()]),
    ];
    let present: Vec<&str> = host_programs
        .iter()
        .copied()
        .filter(|p| Path::new(p).is_file())
        .collect();
    for p in &present {
        for format in ["list", "json"] {
            runs.push(Run {
                args: vec!["--root".into(), p.into(), "--format".into(), format.into()],
                may_fail: true,
            });
        }
    }
    // Several roots in one call (the merge of their traces).
    if present.len() > 1 {
        runs.push(Run {
            args: present
                .iter()
                .flat_map(|p| ["--root".into(), OsString::from(p)])
                .collect(),
            may_fail: true,
        });
    }
    runs
}

/// Runs `bin` on the training workload with raw profiles written to
/// `profiles` (merged as they are written: one file per binary). Fails on
/// the first run that exits otherwise than allowed.
pub fn train(bin: &Path, repo: &Path, scratch: &Path, profiles: &Path) -> Result<usize, String> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let runs = training_runs(repo, scratch, HOST_PROGRAMS);
    for run in &runs {
        let shown = run
            .args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let out = Command::new(bin)
            .args(&run.args)
            .env("LLVM_PROFILE_FILE", profiles.join("closure-%m.profraw"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let ok = match out.status.code() {
            Some(0) => true,
            Some(1) => run.may_fail,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "training run `closure {shown}` exited with {}:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let _ = std::fs::remove_dir_all(scratch);
    Ok(runs.len())
}

/// `llvm-profdata merge` of every raw profile in `profiles` into `out`.
pub fn merge(profdata: &Path, profiles: &Path, out: &Path) -> Result<(), String> {
    let mut raw: Vec<PathBuf> = std::fs::read_dir(profiles)
        .map_err(|e| format!("{}: {e}", profiles.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "profraw"))
        .collect();
    raw.sort();
    if raw.is_empty() {
        return Err(format!("no raw profile in {}", profiles.display()));
    }
    let status = Command::new(profdata)
        .arg("merge")
        .arg("-o")
        .arg(out)
        .args(&raw)
        .status()
        .map_err(|e| format!("{}: {e}", profdata.display()))?;
    if !status.success() {
        return Err(format!("{} merge exited with {status}", profdata.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llvm_major_reads_rustc_verbose_version() {
        let v = "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\nLLVM version: 22.1.2\n";
        assert_eq!(llvm_major(v), Some(22));
        assert_eq!(llvm_major("rustc 1.95.0\n"), None);
        assert_eq!(llvm_major("LLVM version: x.1\n"), None);
    }

    /// The toolchain's own `llvm-profdata` first; else a distribution's of
    /// the same LLVM major version on `PATH`, never one of another version.
    #[test]
    fn profdata_is_the_toolchains_or_one_of_the_same_llvm() {
        let t = std::env::temp_dir().join(format!("xtask-pgo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        let sysroot = t.join("sysroot");
        let bin = t.join("usr-bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("llvm-profdata-14"), "").unwrap();
        let path = std::env::join_paths([t.join("nowhere"), bin.clone()]).unwrap();
        let host = "x86_64-unknown-linux-gnu";
        assert_eq!(profdata_in(&sysroot, host, Some(22), &path), None);
        assert_eq!(profdata_in(&sysroot, host, None, &path), None);
        assert_eq!(
            profdata_in(&sysroot, host, Some(14), &path),
            Some(bin.join("llvm-profdata-14"))
        );
        let own = sysroot.join("lib/rustlib").join(host).join("bin");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("llvm-profdata"), "").unwrap();
        assert_eq!(
            profdata_in(&sysroot, host, Some(14), &path),
            Some(own.join("llvm-profdata"))
        );
        assert_eq!(
            profdata_in(&sysroot, "aarch64-unknown-linux-gnu", Some(22), &path),
            None
        );
        std::fs::remove_dir_all(&t).unwrap();
    }

    /// The workload covers staging, audit, JSON, the symbol check and an
    /// OCI layout on the sample root, every output below the scratch
    /// directory, and only host programs that exist.
    #[test]
    fn training_writes_only_below_scratch_and_skips_absent_programs() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let scratch = Path::new("/nonexistent-scratch");
        let runs = training_runs(&repo, scratch, &["/usr/bin/no-such-program-here"]);
        let joined: Vec<String> = runs
            .iter()
            .map(|r| {
                r.args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(runs.len(), 5, "{joined:#?}");
        for flag in ["--out", "--format json", "--check-symbols", "--oci"] {
            assert!(joined.iter().any(|j| j.contains(flag)), "{flag}");
        }
        assert!(joined.iter().any(|j| j.starts_with("audit ")));
        for r in &runs {
            for (i, a) in r.args.iter().enumerate() {
                if matches!(a.to_str(), Some("--out" | "--oci")) {
                    assert!(Path::new(&r.args[i + 1]).starts_with(scratch));
                }
            }
            assert!(!r.may_fail);
        }
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_str().unwrap();
        let one = training_runs(&repo, scratch, &[exe, "/usr/bin/no-such-program-here"]);
        assert_eq!(one.len(), 7, "one present program: list and JSON, no union");
        assert!(one[5..].iter().all(|r| r.may_fail));
        let two = training_runs(&repo, scratch, &[exe, "/usr/bin/no-such-program-here", exe]);
        assert_eq!(
            two.len(),
            10,
            "two present: list and JSON each, then both at once"
        );
        assert_eq!(two[9].args, ["--root", exe, "--root", exe]);
    }
}
