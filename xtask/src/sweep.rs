//! `cargo xtask sweep ROOT [--loader PATH] [--bin PATH] [--qemu PATH]
//! [--qemu-cpu CPU] [--check-symbols]`: every dynamic ELF file of a root filesystem,
//! `closure` against that root's own loader.
//!
//! The test suite compares `closure` with the real loader on fixtures it
//! builds and on the host's own files (`oracle::host_sweep_matches_loader`).
//! This task does the same for any other root a maintainer has at hand — a
//! `debootstrap` root with the packages a user reported, an unpacked image —
//! so a claim of exactness can be checked on files the suite never saw.
//!
//! Candidates: the regular files (not symlinks) below `usr/bin`, `usr/sbin`,
//! `bin`, `sbin`, `usr/libexec` and, for names holding `.so`, `lib`,
//! `usr/lib` and `usr/lib64`, recursively, in sorted order, that are ELF
//! files of the loader's class, byte order and machine with a `PT_INTERP`
//! (programs) or a `PT_DYNAMIC` in an `ET_DYN` (libraries).
//!
//! For each, the loader runs the way `ldd` runs it — `LD_TRACE_LOADED_OBJECTS=1
//! LOADER FILE` with an otherwise empty environment — inside a `chroot` into
//! ROOT (as root; for ROOT `/` directly), through the root's `/usr/bin/env`
//! so no host program runs with the variable set. A root without that `env`,
//! and musl's loader (which ignores the variable and would run the program),
//! get `LOADER --list FILE`, which stops at the first missing library
//! instead of listing it. Files the loader fails on (exit status not 0)
//! are skipped and listed.
//! `closure --sysroot ROOT --root FILE --format ldd --startup-only` must
//! print the same lines in the same order (load addresses and the vDSO line
//! left out), with the loader's glibc-hwcaps subdirectories (`--help`) and
//! platform (`--list-diagnostics`) passed as `--hwcaps` and `--platform`.
//! Exit status 1 on any difference, each shown with both outputs.
//!
//! With `--check-symbols` the loader runs as `ldd -r` runs it
//! (`LD_TRACE_LOADED_OBJECTS=1 LD_BIND_NOW=1 LD_WARN=yes`), and its
//! undefined symbols and missing symbol versions (from its stderr) must be
//! those of `closure --check-symbols --format json --startup-only`, as
//! sets; a root without `/usr/bin/env` (nowhere to set the variables) is
//! refused then.
//!
//! A root of another architecture (`debootstrap --foreign --arch=arm64`, its
//! packages unpacked) is swept with `--qemu /usr/bin/qemu-aarch64-static`:
//! the static qemu-user binary is copied into the root for the run (and
//! removed after it) and runs the loader there, the variable passed with
//! qemu's `-E` (no binfmt_misc registration is needed, as nothing is
//! exec'd through the kernel); `--qemu-cpu` picks the CPU it emulates.
//!
//! Executing the root's loader is the point of this task (it is the oracle);
//! `closure` itself never does.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Directories whose every ELF file is a candidate.
const PROGRAM_DIRS: &[&str] = &["usr/bin", "usr/sbin", "bin", "sbin", "usr/libexec"];
/// Directories whose files with `.so` in their name are candidates.
const LIBRARY_DIRS: &[&str] = &["lib", "usr/lib", "usr/lib64"];

/// What identifies a loader's files: class, byte order, machine.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Kind {
    class: u8,
    data: u8,
    machine: u16,
}

/// The facts of an ELF file's header and program headers the sweep needs.
struct Summary {
    kind: Kind,
    e_type: u16,
    interp: bool,
    dynamic: bool,
}

/// Reads the ELF header and program headers of `path`, or `None` for
/// anything that is not a well-formed ELF file.
fn summary(path: &Path) -> Option<Summary> {
    let data = read_head(path, 64 << 10)?;
    if data.len() < 52 || &data[..4] != b"\x7fELF" {
        return None;
    }
    let (class, endian) = (data[4], data[5]);
    let big = match endian {
        1 => false,
        2 => true,
        _ => return None,
    };
    let uint = |off: usize, size: usize| -> Option<u64> {
        let b = data.get(off..off + size)?;
        let mut v = 0u64;
        for i in 0..size {
            let byte = if big { b[i] } else { b[size - 1 - i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let e_type = uint(16, 2)? as u16;
    let machine = uint(18, 2)? as u16;
    let (phoff, phentsize, phnum) = match class {
        1 => (uint(28, 4)?, uint(42, 2)?, uint(44, 2)?),
        2 => (uint(32, 8)?, uint(54, 2)?, uint(56, 2)?),
        _ => return None,
    };
    let (mut interp, mut dynamic) = (false, false);
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).ok()?;
        match uint(at, 4)? {
            2 => dynamic = true,
            3 => interp = true,
            _ => {}
        }
    }
    Some(Summary {
        kind: Kind {
            class,
            data: endian,
            machine,
        },
        e_type,
        interp,
        dynamic,
    })
}

/// At most `max` bytes from the start of a regular file.
fn read_head(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = fs::File::open(path).ok()?;
    let mut data = Vec::new();
    f.take(max).read_to_end(&mut data).ok()?;
    Some(data)
}

/// The host path of the in-root path `path`, its symbolic links followed as
/// inside a `chroot` at `root` (an absolute target starts again at `root`,
/// `..` stops there).
fn in_root(root: &Path, path: &str) -> PathBuf {
    let mut todo: Vec<String> = path.split('/').rev().map(String::from).collect();
    let mut at: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                at.pop();
                continue;
            }
            _ => {}
        }
        let here: PathBuf = at
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c))
            .join(&c);
        match fs::read_link(&here) {
            Ok(target) if hops < 40 => {
                hops += 1;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    at.clear();
                }
                todo.extend(target.split('/').rev().map(String::from));
            }
            _ => at.push(c),
        }
    }
    at.iter().fold(root.to_path_buf(), |p, c| p.join(c))
}

/// The candidates below `root` (in-root paths, sorted, without duplicates).
fn candidates(root: &Path, kind: Kind) -> Vec<String> {
    let mut out = Vec::new();
    let dirs = PROGRAM_DIRS
        .iter()
        .map(|d| (*d, false))
        .chain(LIBRARY_DIRS.iter().map(|d| (*d, true)));
    for (dir, only_so) in dirs {
        let top = root.join(dir);
        // `bin` is often a link to `usr/bin`: its files are found there.
        if fs::symlink_metadata(&top).map_or(true, |m| !m.is_dir()) {
            continue;
        }
        walk(&top, &mut |path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if only_so && !name.is_some_and(|n| n.contains(".so")) {
                return;
            }
            let Some(s) = summary(path) else { return };
            let dynamic = s.interp || (s.e_type == 3 && s.dynamic);
            if dynamic && s.kind == kind {
                if let Ok(rel) = path.strip_prefix(root) {
                    out.push(format!("/{}", rel.display()));
                }
            }
        });
    }
    out.sort();
    out.dedup();
    out
}

/// Calls `f` on every regular file below `dir`, in sorted order, without
/// following symbolic links.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(&p, f);
        } else if meta.is_file() {
            f(&p);
        }
    }
}

/// How the loader is run.
struct Loader<'a> {
    root: &'a Path,
    path: &'a str,
    /// The `ldd` way is possible: the root has `/usr/bin/env` and the
    /// loader is glibc's (musl's ignores the variable and would run the
    /// program).
    env: bool,
    /// qemu-user's in-root path and CPU, for a root of another
    /// architecture.
    qemu: Option<(String, Option<String>)>,
}

impl Loader<'_> {
    /// `LOADER ARGS…` inside the root, the environment empty but `vars`.
    fn run(&self, vars: &[&str], args: &[&str]) -> Option<Output> {
        let mut c;
        if self.root == Path::new("/") {
            c = Command::new(self.path);
            c.env_clear();
            for v in vars {
                if let Some((k, val)) = v.split_once('=') {
                    c.env(k, val);
                }
            }
        } else if let Some((qemu, cpu)) = &self.qemu {
            c = Command::new("chroot");
            c.arg(self.root).arg(qemu);
            if let Some(cpu) = cpu {
                c.args(["-cpu", cpu]);
            }
            for v in vars {
                c.args(["-E", v]);
            }
            c.args(["-U", "PATH"]).arg(self.path);
            c.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        } else {
            c = Command::new("chroot");
            c.arg(self.root);
            if !vars.is_empty() {
                c.args(["/usr/bin/env", "-i"]).args(vars);
            }
            c.arg(self.path);
            // chroot itself is a host program: it must not see the variables.
            c.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        }
        c.args(args).stdin(Stdio::null()).output().ok()
    }

    /// What the loader prints for `file`, as `ldd` would show it, and its
    /// exit status.
    fn trace(&self, file: &str) -> Option<(i32, Vec<String>, String)> {
        let glibc = !self.path.contains("ld-musl");
        let out = if self.env || (glibc && (self.root == Path::new("/") || self.qemu.is_some())) {
            self.run(&["LD_TRACE_LOADED_OBJECTS=1"], &[file])?
        } else {
            self.run(&[], &["--list", file])?
        };
        Some((
            out.status.code().unwrap_or(-1),
            lines(&out.stdout),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }

    /// The undefined symbols and missing versions the loader reports for
    /// `file` traced as `ldd -r` traces it, and its exit status; `None`
    /// when it cannot be run that way.
    fn symbol_problems(&self, file: &str) -> Option<(i32, Problems)> {
        let vars = ["LD_TRACE_LOADED_OBJECTS=1", "LD_BIND_NOW=1", "LD_WARN=yes"];
        let out = self.run(&vars, &[file])?;
        Some((
            out.status.code().unwrap_or(-1),
            loader_problems(&String::from_utf8_lossy(&out.stderr)),
        ))
    }

    /// `--hwcaps` and `--platform` for `closure`, from the loader itself:
    /// the glibc-hwcaps subdirectories it searches, and (outside x86-64,
    /// where `closure` derives them) the legacy hwcap capabilities it
    /// searches, both from `--help`; the platform from
    /// `--list-diagnostics`.
    fn closure_args(&self, kind: Kind) -> Vec<String> {
        let text = |arg: &str| {
            self.run(&[], &[arg])
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        closure_args_from(&text("--help"), &text("--list-diagnostics"), kind.machine)
    }
}

/// [`Loader::closure_args`] from the loader's `--help` and
/// `--list-diagnostics` output, for a loader of ELF machine `machine`.
fn closure_args_from(help: &str, diagnostics: &str, machine: u16) -> Vec<String> {
    let mut args = Vec::new();
    let mut hwcaps = Vec::new();
    // x86-64's legacy capabilities follow from the platform and the
    // glibc-hwcaps names; i386's `sse2` is named like other
    // architectures' capabilities.
    let x86_64 = machine == 62;
    // 1: glibc-hwcaps names, 2: legacy names.
    let mut section = 0;
    for line in help.lines() {
        if line.starts_with("Subdirectories of glibc-hwcaps") {
            section = 1;
        } else if line.starts_with("Legacy HWCAP subdirectories") {
            section = 2;
        } else if section != 0 {
            let t = line.trim();
            if t.is_empty() || !line.starts_with(' ') {
                section = 0;
                continue;
            }
            if let Some((name, rest)) = t.split_once(' ') {
                let searched = rest.contains("searched") && !rest.contains("not searched");
                let capability =
                    section == 2 && !x86_64 && name != "tls" && !rest.contains("AT_PLATFORM");
                if searched && (section == 1 || capability) {
                    hwcaps.push(name.to_string());
                }
            }
        }
    }
    if !hwcaps.is_empty() {
        args.push("--hwcaps".to_string());
        args.push(hwcaps.join(","));
    }
    let platform = diagnostics.lines().find_map(|l| {
        l.strip_prefix("dl_platform=\"")?
            .strip_suffix('"')
            .map(String::from)
    });
    if let Some(p) = platform {
        args.push("--platform".to_string());
        args.push(p);
    }
    args
}

/// Undefined symbols (symbol, version or "", object) and missing versions
/// (version, object), sorted.
type Problems = (Vec<(String, String, String)>, Vec<(String, String)>);

/// [`Problems`] from the loader's stderr: `undefined symbol: NAME, version
/// V\t(OBJECT)` and `` version `V' not found (required by OBJECT) ``.
fn loader_problems(stderr: &str) -> Problems {
    let mut undefined = Vec::new();
    let mut missing = Vec::new();
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("undefined symbol: ") {
            let Some((what, object)) = rest.rsplit_once("\t(") else {
                continue;
            };
            let object = object.strip_suffix(')').unwrap_or(object);
            let (symbol, version) = what.split_once(", version ").unwrap_or((what, ""));
            undefined.push((symbol.to_string(), version.to_string(), object.to_string()));
        } else if let Some(at) = line.find("version `") {
            let rest = &line[at + "version `".len()..];
            let Some((version, rest)) = rest.split_once("' not found (required by ") else {
                continue;
            };
            let object = rest.strip_suffix(')').unwrap_or(rest);
            missing.push((version.to_string(), object.to_string()));
        }
    }
    undefined.sort();
    undefined.dedup();
    missing.sort();
    missing.dedup();
    (undefined, missing)
}

/// [`Problems`] from `closure`'s JSON report (`None`: not JSON).
fn closure_problems(json: &[u8]) -> Option<Problems> {
    let text = String::from_utf8_lossy(json);
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let field = |o: &serde_json::Value, k: &str| o[k].as_str().unwrap_or_default().to_string();
    let mut undefined: Vec<(String, String, String)> = v["undefined_symbols"]
        .as_array()?
        .iter()
        .map(|u| (field(u, "symbol"), field(u, "version"), field(u, "object")))
        .collect();
    let mut missing: Vec<(String, String)> = v["missing_versions"]
        .as_array()?
        .iter()
        .map(|m| (field(m, "version"), field(m, "object")))
        .collect();
    undefined.sort();
    undefined.dedup();
    missing.sort();
    missing.dedup();
    Some((undefined, missing))
}

/// The lines of an `ldd` listing without load addresses and the vDSO line.
fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("linux-vdso.so") && !l.starts_with("linux-gate.so")
        })
        .map(|l| match l.rfind(" (0x") {
            Some(at) if l.ends_with(')') => l[..at].to_string(),
            _ => l.to_string(),
        })
        .collect()
}

/// `closure --sysroot ROOT --root FILE ARGS… --startup-only EXTRA…`
/// (`None`: it cannot be run).
fn closure_on(
    bin: &Path,
    root: &Path,
    file: &str,
    args: &[&str],
    extra: &[String],
) -> Option<Output> {
    Command::new(bin)
        .arg("--sysroot")
        .arg(root)
        .args(["--root", file])
        .args(args)
        .arg("--startup-only")
        .args(extra)
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .output()
        .ok()
}

/// `cargo xtask sweep ROOT [--loader PATH] [--bin PATH] [--qemu PATH]
/// [--qemu-cpu CPU] [--check-symbols]`.
pub fn run(args: &[String]) -> bool {
    let mut root = None;
    let mut loader = "/lib64/ld-linux-x86-64.so.2".to_string();
    let mut bin = None;
    let (mut qemu, mut qemu_cpu) = (None, None);
    let mut symbols = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check-symbols" => symbols = true,
            "--loader" => loader = it.next().cloned().unwrap_or_default(),
            "--bin" => bin = it.next().map(PathBuf::from),
            "--qemu" => qemu = it.next().map(PathBuf::from),
            "--qemu-cpu" => qemu_cpu = it.next().cloned(),
            _ if root.is_none() && !a.starts_with('-') => root = Some(PathBuf::from(a)),
            _ => {
                eprintln!("xtask sweep: unexpected argument {a}");
                return false;
            }
        }
    }
    let Some(root) = root else {
        eprintln!(
            "usage: cargo xtask sweep ROOT [--loader PATH] [--bin PATH] [--qemu PATH] [--qemu-cpu CPU] [--check-symbols]"
        );
        return false;
    };
    let Ok(root) = fs::canonicalize(&root) else {
        eprintln!("xtask sweep: {}: no such directory", root.display());
        return false;
    };
    let Some(kind) = summary(&in_root(&root, &loader)).map(|s| s.kind) else {
        eprintln!(
            "xtask sweep: {loader} is not an ELF file in {}",
            root.display()
        );
        return false;
    };
    let bin = match bin {
        Some(b) => b,
        None => {
            let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            if !crate::cargo(&["build", "--release", "-p", "closure"], &[]) {
                return false;
            }
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| top.join("target"));
            target.join("release/closure")
        }
    };
    // qemu-user copied into the root for the run, removed on every way out.
    struct Copied(PathBuf);
    impl Drop for Copied {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }
    let mut _copied = None;
    let qemu = match qemu {
        Some(q) if root != Path::new("/") => {
            let Some(name) = q.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                eprintln!("xtask sweep: --qemu needs a file");
                return false;
            };
            let to = root.join(format!(".closure-sweep-{name}"));
            if let Err(e) = fs::copy(&q, &to) {
                eprintln!(
                    "xtask sweep: cannot copy {} into the root: {e}",
                    q.display()
                );
                return false;
            }
            _copied = Some(Copied(to));
            Some((format!("/.closure-sweep-{name}"), qemu_cpu))
        }
        Some(_) => {
            eprintln!("xtask sweep: --qemu needs a root other than /");
            return false;
        }
        None => None,
    };
    let loader = Loader {
        root: &root,
        path: &loader,
        env: qemu.is_none() && root.join("usr/bin/env").is_file() && !loader.contains("ld-musl"),
        qemu,
    };
    if symbols && !(loader.env || root == Path::new("/") || loader.qemu.is_some()) {
        eprintln!(
            "xtask sweep: --check-symbols needs {}/usr/bin/env and glibc's loader (the variables of `ldd -r`)",
            root.display()
        );
        return false;
    }
    let extra = loader.closure_args(kind);
    let files = candidates(&root, kind);
    eprintln!(
        "xtask sweep: {} files in {}, closure args {extra:?}{}",
        files.len(),
        root.display(),
        if loader.env || root == Path::new("/") || loader.qemu.is_some() {
            ""
        } else {
            " (no /usr/bin/env in the root: `--list`, files the loader fails on are skipped)"
        }
    );
    let (mut same, mut differ, mut skipped) = (0usize, 0usize, Vec::new());
    if symbols {
        for file in &files {
            let Some((status, want)) = loader.symbol_problems(file) else {
                eprintln!("xtask sweep: cannot run the loader (chroot needs root)");
                return false;
            };
            if status != 0 {
                skipped.push(format!("{file}: exit {status}"));
                continue;
            }
            let out = closure_on(
                &bin,
                &root,
                file,
                &["--check-symbols", "--format", "json"],
                &extra,
            );
            let Some(out) = out else {
                eprintln!("xtask sweep: cannot run {}", bin.display());
                return false;
            };
            let got = closure_problems(&out.stdout);
            if got.as_ref() == Some(&want) {
                same += 1;
            } else {
                differ += 1;
                println!("DIFFERS {file}");
                println!("  loader:  {want:?}");
                println!("  closure: {got:?}");
            }
        }
        for s in &skipped {
            println!("skipped {s}");
        }
        println!(
            "symbol sweep of {}: {} files, {same} the same, {differ} different, {} skipped",
            root.display(),
            files.len(),
            skipped.len()
        );
        return differ == 0;
    }
    for file in &files {
        let Some((status, want, err)) = loader.trace(file) else {
            eprintln!("xtask sweep: cannot run the loader (chroot needs root)");
            return false;
        };
        // Traced the `ldd` way, a missing library is a line and the exit
        // status 0; a failure is something else (not loadable at all).
        if status != 0 {
            skipped.push(format!(
                "{file}: exit {status}: {}",
                err.lines().next().unwrap_or("")
            ));
            continue;
        }
        let Some(out) = closure_on(&bin, &root, file, &["--format", "ldd"], &extra) else {
            eprintln!("xtask sweep: cannot run {}", bin.display());
            return false;
        };
        let got = lines(&out.stdout);
        if got == want {
            same += 1;
        } else {
            differ += 1;
            println!("DIFFERS {file}");
            println!("  loader  (exit {status}): {want:?}");
            println!(
                "  closure (exit {}): {got:?}",
                out.status.code().unwrap_or(-1)
            );
        }
    }
    for s in &skipped {
        println!("skipped {s}");
    }
    println!(
        "sweep of {}: {} files, {same} the same, {differ} different, {} skipped (the loader could not list them)",
        root.display(),
        files.len(),
        skipped.len()
    );
    differ == 0
}

#[cfg(test)]
mod tests {
    use super::closure_args_from;

    /// The legacy part of i386's `ld.so --help` (glibc 2.36 under qemu),
    /// on a CPU with SSE2 and on one without.
    const I386_WITH: &str = "Legacy HWCAP subdirectories under library search path directories:\n  i686 (AT_PLATFORM; supported, searched)\n  tls (supported, searched)\n  sse2 (supported, searched)\n";
    const I386_WITHOUT: &str = "Legacy HWCAP subdirectories under library search path directories:\n  i686 (AT_PLATFORM; supported, searched)\n  tls (supported, searched)\n  sse2\n";
    /// The host's (glibc 2.36, x86-64) on an AMD CPU.
    const X86_64: &str = "Subdirectories of glibc-hwcaps directories, in priority order:\n  x86-64-v4 (supported, searched)\n  x86-64-v3 (supported, searched)\n  x86-64-v2 (supported, searched)\n\nLegacy HWCAP subdirectories under library search path directories:\n  x86_64 (AT_PLATFORM; supported, searched)\n  tls (supported, searched)\n  avx512_1\n  x86_64 (supported, searched)\n";

    #[test]
    fn the_loaders_symbol_problems_are_read_from_its_stderr() {
        let stderr = "/app/prog: /opt/lib/libv.so.1: version `VER_2' not found (required by /app/prog)\n\
                      /app/prog: /opt/lib/libw.so.1: no version information available (required by /app/prog)\n\
                      undefined symbol: f2, version VER_2\t(/app/prog)\n\
                      undefined symbol: common\t(/opt/lib/libsy0.so.1)\n";
        let (undefined, missing) = super::loader_problems(stderr);
        assert_eq!(
            undefined,
            [
                (
                    "common".into(),
                    String::new(),
                    "/opt/lib/libsy0.so.1".into()
                ),
                ("f2".into(), "VER_2".into(), "/app/prog".into())
            ]
        );
        assert_eq!(missing, [("VER_2".to_string(), "/app/prog".to_string())]);
    }

    #[test]
    fn searched_legacy_capabilities_are_named_except_on_x86_64() {
        let i686 = "dl_hwcap=0x0\ndl_platform=\"i686\"\n";
        assert_eq!(
            closure_args_from(I386_WITH, i686, 3),
            ["--hwcaps", "sse2", "--platform", "i686"]
        );
        assert_eq!(
            closure_args_from(I386_WITHOUT, i686, 3),
            ["--platform", "i686"]
        );
        // x86-64: the glibc-hwcaps names only (`x86_64` follows from them).
        assert_eq!(
            closure_args_from(X86_64, "dl_platform=\"x86_64\"\n", 62),
            [
                "--hwcaps",
                "x86-64-v4,x86-64-v3,x86-64-v2",
                "--platform",
                "x86_64"
            ]
        );
    }
}
