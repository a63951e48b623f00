//! Running a program in secure mode (`AT_SECURE`) inside a test root, for
//! `secure.rs` and the random layouts: the loader ignores
//! `LD_TRACE_LOADED_OBJECTS` there, so the program itself is a lister made
//! setuid root and run by uid 1000 through a static helper.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use super::oracle::{compared_logs_in, compile, run_closure, ClosureRun, TestRoot};

/// C: `each`, a `dl_iterate_phdr` callback that prints the name of every
/// object in the link map but the program itself (no name) and the vDSO:
/// the loader's own string for each, an absolute path or the relative one
/// it opened (with the headers it needs, `_GNU_SOURCE` first).
macro_rules! print_objects_c {
    () => {
        r#"
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <string.h>
static int each(struct dl_phdr_info *i, size_t n, void *d) {
    (void)n; (void)d;
    const char *s = i->dlpi_name;
    if (s && s[0] && strncmp(s, "linux-vdso", 10) && strncmp(s, "linux-gate", 10))
        printf("%s\n", s);
    return 0;
}
"#
    };
}

/// [`print_objects_c`]'s text, for programs of other tests.
pub const PRINT_OBJECTS: &str = print_objects_c!();

/// Prints its link map ([`PRINT_OBJECTS`]).
pub const LISTER: &str = concat!(
    print_objects_c!(),
    "int main(void) { dl_iterate_phdr(each, 0); return 0; }\n"
);

/// Drops every privilege to uid/gid 1000 and execs its arguments.
const RUNAS: &str = r#"
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <unistd.h>
int main(int c, char **v) {
    if (c < 2) return 97;
    if (setgroups(0, 0) || setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) {
        perror("runas");
        return 99;
    }
    execv(v[1], v + 1);
    perror("execv");
    return 98;
}
"#;

/// Where the helper is built in a root.
pub const RUNAS_PATH: &str = "/runas";

/// What the loader did for a setuid program run by uid 1000.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// It ran: these objects were loaded.
    Loaded(BTreeSet<String>),
    /// It did not start: this library could not be found.
    Missing(String),
    /// It did not start: the loader refused this name (or file) for this
    /// reason.
    Fatal(String, String),
}

/// Builds the helper into `r` (static: it runs before any library is
/// there to load).
pub fn add_runas(r: &TestRoot) {
    compile(r, RUNAS_PATH, RUNAS, &["-static".into()]);
}

/// Makes an in-root file set-user-ID root (mode 4755).
pub fn setuid(r: &TestRoot, path: &str) {
    std::fs::set_permissions(r.host(path), std::fs::Permissions::from_mode(0o4755)).unwrap();
}

/// Takes the set-user-ID bit away again (mode 755).
pub fn clear_setuid(r: &TestRoot, path: &str) {
    std::fs::set_permissions(r.host(path), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs `prog` (a setuid lister) by uid 1000 with `env`, from the root's
/// working directory.
pub fn run_secure(r: &TestRoot, prog: &str, env: &[(&str, &str)]) -> Seen {
    let out = r.run_in_root(env, &[RUNAS_PATH, prog]);
    if out.status == 0 {
        return Seen::Loaded(out.stdout.lines().map(String::from).collect());
    }
    let message = out
        .stderr
        .split("error while loading shared libraries: ")
        .nth(1)
        .map(str::trim_end)
        .unwrap_or_else(|| {
            panic!(
                "{prog} failed without the loader's message (exit {}): {}{}",
                out.status, out.stdout, out.stderr
            )
        });
    if let Some((name, _)) = message.split_once(": cannot open shared object file") {
        return Seen::Missing(name.to_string());
    }
    let (name, why) = message.rsplit_once(": ").expect("NAME: REASON");
    Seen::Fatal(name.to_string(), why.to_string())
}

/// What `closure` says in the same terms, for a run where at most one
/// name is missing.
pub fn by_closure(run: &ClosureRun) -> Seen {
    match &run.missing[..] {
        [] => Seen::Loaded(run.loaded()),
        [m] => match m.raw.get("fatal").and_then(|f| f.get("reason")) {
            Some(why) => Seen::Fatal(m.soname.clone(), why.as_str().unwrap_or_default().into()),
            None => Seen::Missing(m.soname.clone()),
        },
        more => panic!("several missing: {more:?}\n{}", run.stderr),
    }
}

/// `closure --secure --verbose` (with `secure_args`, `--secure` among them)
/// tries the files the loader's `LD_DEBUG=libs` log says it tries when
/// `prog` (set-user-ID) runs by uid 1000 with `env`: the loader writes that
/// log in secure mode only when `/etc/suid-debug` exists (glibc 2.31 and
/// 2.36; 2.41 and 2.43 never do, and are not compared), and stops at the
/// first name it cannot load (`real` says whether it did), where `closure`
/// goes on, as the tracing loader does.
pub fn assert_same_secure_search_log(
    name: &str,
    r: &TestRoot,
    prog: &str,
    env: &[(&str, &str)],
    secure_args: &[&str],
    real: &Seen,
) {
    r.write("/etc/suid-debug", "");
    let mut debug_env = vec![("LD_DEBUG", "libs")];
    debug_env.extend_from_slice(env);
    let log = r.run_in_root(&debug_env, &[RUNAS_PATH, prog]);
    std::fs::remove_file(r.host("/etc/suid-debug")).expect("remove /etc/suid-debug");
    // glibc 2.41 and 2.43 remove `LD_DEBUG` from a secure program's
    // environment whatever the file says: no log to compare with there.
    // (The log's lines are "PID:\tmessage"; an older loader that stops
    // before any search writes none either, and is compared.)
    if r.glibc_minor() >= 41 && !log.stderr.lines().any(|l| l.contains(":\t")) {
        return;
    }
    let mut args = secure_args.to_vec();
    args.push("--verbose");
    let verbose = run_closure(r.path(), &[prog], &args);
    let (mut ours, theirs) = compared_logs_in(&verbose.stderr, &log.stderr, r.path(), &r.cwd());
    if !matches!(real, Seen::Loaded(_)) {
        ours.truncate(theirs.len());
    }
    assert_eq!(
        ours, theirs,
        "{name}: `closure --secure --verbose` (left) searches otherwise than the loader's \
         LD_DEBUG=libs in secure mode (right)\n{}\n{}",
        log.stderr, verbose.stderr
    );
}
