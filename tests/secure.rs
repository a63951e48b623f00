//! Secure mode (`--secure`) against the real glibc loader. The loader ignores
//! `LD_TRACE_LOADED_OBJECTS` for a program in secure mode, so each scenario's
//! program is made setuid root and run, inside a Debian-12-like root, by an
//! ordinary user (a static helper drops to uid 1000 and execs it: `AT_SECURE`).
//! The program prints the path of every object its link map holds
//! (`dl_iterate_phdr`); when a library cannot be found it never starts and
//! the loader names the library. `closure --secure` must report exactly those
//! paths, or exactly that missing name. Each scenario also checks that
//! `closure` without `--secure` answers differently, so the rule is what
//! the scenario tests, and that `closure --secure --verbose` tries the
//! files the loader's `LD_DEBUG=libs` log says it tries (which the loader
//! writes in secure mode when `/etc/suid-debug` exists).

use crate::support::oracle::{
    closure_bin, compile, on_host_and_releases, run_closure, ClosureRun, Oracle, TestRoot,
};
use crate::support::setuid::{
    add_runas, assert_same_secure_search_log, by_closure, run_secure, setuid, Seen, LISTER,
};

macro_rules! oracle {
    ($name:expr) => {
        match Oracle::start($name) {
            Some(o) => o,
            None => return,
        }
    };
}

/// A root with the helper in it.
fn root(o: &Oracle) -> TestRoot {
    let r = TestRoot::new(o);
    add_runas(&r);
    r
}

/// Builds `prog` from [`LISTER`] with `args` (libraries, search paths), owned
/// by root and setuid.
fn program(r: &TestRoot, prog: &str, args: &[String]) {
    compile(r, prog, LISTER, args);
    setuid(r, prog);
}

/// `-L`/`-l:` arguments linking against an in-root library file.
fn link(r: &TestRoot, lib: &str) -> Vec<String> {
    let host = r.host(lib);
    vec![
        format!("-L{}", host.parent().unwrap().display()),
        format!("-l:{}", host.file_name().unwrap().to_string_lossy()),
    ]
}

/// The loader's answer against `closure --secure`'s (and not `closure`'s).
fn check(name: &str, r: &TestRoot, prog: &str, env: &[(&str, &str)], args: &[&str]) -> Seen {
    let real = run_secure(r, prog, env);
    let mut secure_args = vec!["--secure"];
    secure_args.extend_from_slice(args);
    let secure = by_closure(&run_closure(r.path(), &[prog], &secure_args));
    let plain = by_closure(&run_closure(r.path(), &[prog], args));
    println!("{name}: the loader: {real:?}; closure --secure: {secure:?}; closure: {plain:?}");
    assert_eq!(
        secure, real,
        "{name}: closure --secure differs from the loader"
    );
    assert_ne!(
        plain, real,
        "{name}: the scenario does not depend on secure mode"
    );
    assert_same_secure_search_log(name, r, prog, env, &secure_args, &real);
    real
}

#[test]
fn secure_program_origin_outside_the_default_directories_is_not_searched() {
    let name = "secure_program_origin_outside_the_default_directories_is_not_searched";
    let o = oracle!(name);
    let r = root(&o);
    r.lib("/app/lib/liba.so.1", "liba.so.1").build();
    let mut args = link(&r, "/app/lib/liba.so.1");
    args.extend([
        "-Wl,--enable-new-dtags".into(),
        "-Wl,-rpath,$ORIGIN/../lib".into(),
    ]);
    program(&r, "/app/bin/prog", &args);
    r.ldconfig();
    let seen = check(name, &r, "/app/bin/prog", &[], &[]);
    assert_eq!(seen, Seen::Missing("liba.so.1".into()));
    // The report says why the element was not searched.
    let run = run_closure(r.path(), &["/app/bin/prog"], &["--secure"]);
    let notes = run.missing[0].raw["notes"].to_string();
    assert!(
        notes.contains(
            "$ORIGIN/../lib of the DT_RUNPATH of /app/bin/prog is not searched: in secure mode \
             the program's $ORIGIN must lead into a default directory"
        ),
        "{notes}"
    );
    // And the hint where the library is says what to do about it.
    assert!(
        notes.contains(
            "liba.so.1 exists at /app/lib/liba.so.1, which is not searched for /app/bin/prog: \
             secure mode drops the $ORIGIN search path that would lead there"
        ),
        "{notes}"
    );
}

#[test]
fn secure_program_origin_into_a_default_directory_is_searched() {
    let name = "secure_program_origin_into_a_default_directory_is_searched";
    let o = oracle!(name);
    let r = root(&o);
    // Found through the RUNPATH: the cache and default directories do not
    // hold the extra directory.
    r.lib("/usr/lib/x86_64-linux-gnu/extra/liba.so.1", "liba.so.1")
        .build();
    let mut args = link(&r, "/usr/lib/x86_64-linux-gnu/extra/liba.so.1");
    args.extend([
        "-Wl,--enable-new-dtags".into(),
        "-Wl,-rpath,$ORIGIN/../lib/x86_64-linux-gnu/extra".into(),
    ]);
    program(&r, "/usr/bin/prog", &args);
    r.ldconfig();
    let real = run_secure(&r, "/usr/bin/prog", &[]);
    let secure = by_closure(&run_closure(r.path(), &["/usr/bin/prog"], &["--secure"]));
    println!("{name}: the loader: {real:?}; closure --secure: {secure:?}");
    assert_eq!(secure, real);
    // (glibc 2.41 and later load it by the normal form: the test above.)
    let spelled = if r.glibc_minor() >= 41 {
        "/usr/lib/x86_64-linux-gnu/extra/liba.so.1"
    } else {
        "/usr/bin/../lib/x86_64-linux-gnu/extra/liba.so.1"
    };
    match real {
        Seen::Loaded(l) => assert!(l.contains(spelled), "{l:?}"),
        other => panic!("{name}: the program did not run: {other:?}"),
    }
}

#[test]
fn secure_library_origin_must_start_its_element() {
    let name = "secure_library_origin_must_start_its_element";
    let o = oracle!(name);
    let r = root(&o);
    // liba's RUNPATH: two elements secure mode drops (a decoy each, which
    // needs a library that exists nowhere), then one it keeps.
    r.lib("/x/app/lib/libc2.so.1", "libc2.so.1")
        .needs_names(&["libdecoy.so.9"])
        .build();
    r.lib("/app/lib-q/libc2.so.1", "libc2.so.1")
        .needs_names(&["libdecoy.so.9"])
        .build();
    r.lib("/app/deps/libc2.so.1", "libc2.so.1").build();
    r.lib("/app/lib/liba.so.1", "liba.so.1")
        .needs(&["/app/deps/libc2.so.1"])
        .runpath("/x$ORIGIN:$ORIGIN-q:$ORIGIN/../deps")
        .build();
    let mut args = link(&r, "/app/lib/liba.so.1");
    args.extend([
        "-Wl,--enable-new-dtags".into(),
        "-Wl,-rpath,/app/lib".into(),
    ]);
    program(&r, "/app/bin/prog", &args);
    r.ldconfig();
    let seen = check(name, &r, "/app/bin/prog", &[], &[]);
    match seen {
        Seen::Loaded(l) => assert!(l.contains("/app/lib/../deps/libc2.so.1"), "{l:?}"),
        other => panic!("{name}: the program did not run: {other:?}"),
    }
}

#[test]
fn secure_mode_ignores_ld_library_path() {
    let name = "secure_mode_ignores_ld_library_path";
    let o = oracle!(name);
    let r = root(&o);
    r.lib("/app/lp/libd.so.1", "libd.so.1").build();
    let args = link(&r, "/app/lp/libd.so.1");
    program(&r, "/app/bin/prog", &args);
    r.ldconfig();
    let seen = check(
        name,
        &r,
        "/app/bin/prog",
        &[("LD_LIBRARY_PATH", "/app/lp")],
        &["--library-path", "/app/lp"],
    );
    assert_eq!(seen, Seen::Missing("libd.so.1".into()));
    let run = run_closure(
        r.path(),
        &["/app/bin/prog"],
        &["--secure", "--library-path", "/app/lp"],
    );
    assert!(
        run.stderr
            .contains("warning: --library-path is ignored with --secure"),
        "{}",
        run.stderr
    );
    // `closure verify` takes the flag too: the root resolves completely
    // with the library path, not in secure mode.
    let verify = |secure: bool| {
        let mut cmd = std::process::Command::new(closure_bin());
        cmd.arg("verify").arg(r.path()).args([
            "--library-path",
            "/app/lp",
            "--quiet",
            "--format",
            "list",
        ]);
        if secure {
            cmd.arg("--secure");
        }
        cmd.output().expect("run closure verify").status.code()
    };
    assert_eq!(verify(false), Some(0));
    assert_eq!(verify(true), Some(1));
}

#[test]
fn secure_needed_names_with_tokens_are_refused() {
    let name = "secure_needed_names_with_tokens_are_refused";
    let o = oracle!(name);
    let r = root(&o);
    // DT_NEEDED names with a token: linking against a library whose
    // SONAME holds one records it. In secure mode glibc refuses any such
    // name, wherever it would lead (`expand_dst`: "DST not allowed in
    // SUID/SGID programs"), before it searches; outside it, they load.
    r.lib("/app/lib/libe.so.1", "$ORIGIN/../lib/libe.so.1")
        .build();
    program(&r, "/app/bin/prog", &link(&r, "/app/lib/libe.so.1"));
    r.lib(
        "/usr/lib/x86_64-linux-gnu/extra/libf.so.1",
        "$ORIGIN/../lib/x86_64-linux-gnu/extra/libf.so.1",
    )
    .build();
    program(
        &r,
        "/usr/bin/prog",
        &link(&r, "/usr/lib/x86_64-linux-gnu/extra/libf.so.1"),
    );
    // A library's own DT_NEEDED: refused the same way.
    r.lib("/app/lib/libg.so.1", "$ORIGIN/libg.so.1").build();
    r.lib("/app/lib/libh.so.1", "libh.so.1")
        .needs(&["/app/lib/libg.so.1"])
        .build();
    let mut args = link(&r, "/app/lib/libh.so.1");
    args.extend([
        "-Wl,--enable-new-dtags".into(),
        "-Wl,-rpath,/app/lib".into(),
    ]);
    program(&r, "/app/bin/prog2", &args);
    r.ldconfig();
    for (prog, needed) in [
        ("/app/bin/prog", "$ORIGIN/../lib/libe.so.1"),
        (
            "/usr/bin/prog",
            "$ORIGIN/../lib/x86_64-linux-gnu/extra/libf.so.1",
        ),
        ("/app/bin/prog2", "$ORIGIN/libg.so.1"),
    ] {
        let seen = check(name, &r, prog, &[], &[]);
        assert_eq!(
            seen,
            Seen::Fatal(
                needed.into(),
                "DST not allowed in SUID/SGID programs".into()
            ),
            "{prog}"
        );
    }
}

/// The warnings of a `closure` run (JSON `warnings`).
fn warnings(run: &ClosureRun) -> Vec<String> {
    run.json
        .as_ref()
        .and_then(|j| j.get("warnings"))
        .and_then(|w| w.as_array())
        .map(|w| {
            w.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn secure_mode_preloads_only_set_user_id_files_by_name() {
    let name = "secure_mode_preloads_only_set_user_id_files_by_name";
    let o = oracle!(name);
    let r = root(&o);
    // libr: an ordinary copy in the program's RPATH, a set-user-ID one in
    // a default directory. The search passes over the first as if it were
    // absent and takes the second.
    r.lib("/app/lib/libr.so.1", "libr.so.1").build();
    r.lib("/usr/lib/x86_64-linux-gnu/libr.so.1", "libr.so.1")
        .build();
    setuid(&r, "/usr/lib/x86_64-linux-gnu/libr.so.1");
    // libo: set-user-ID, but only the ld.so.cache knows its directory.
    r.lib("/opt/lib/libo.so.1", "libo.so.1").build();
    setuid(&r, "/opt/lib/libo.so.1");
    r.set_ld_so_conf("/opt/lib\n");
    // libq: in a default directory, not set-user-ID.
    r.lib("/usr/lib/x86_64-linux-gnu/libq.so.1", "libq.so.1")
        .build();
    // A path: LD_PRELOAD names with '/' are ignored, set-user-ID or not.
    r.lib("/app/lib2/libp.so.1", "libp.so.1").build();
    setuid(&r, "/app/lib2/libp.so.1");
    // libt: set-user-ID in the program's RPATH directory: taken from there
    // (the search is the usual one, less the cache).
    r.lib("/app/lib/libt.so.1", "libt.so.1").build();
    setuid(&r, "/app/lib/libt.so.1");
    // Names of 254 and 255 bytes: from 255 on, LD_PRELOAD ignores them.
    let long = |c: char, n: usize| format!("lib{}.so", c.to_string().repeat(n - 6));
    let (ok, too_long) = (long('x', 254), long('y', 255));
    for n in [&ok, &too_long] {
        let path = format!("/usr/lib/x86_64-linux-gnu/{n}");
        r.lib(&path, n).build();
        setuid(&r, &path);
    }
    program(
        &r,
        "/app/bin/prog",
        &[
            "-Wl,-rpath,/app/lib".into(),
            "-Wl,--disable-new-dtags".into(),
        ],
    );
    r.ldconfig();
    let prog = "/app/bin/prog";
    let libc = "/lib/x86_64-linux-gnu/libc.so.6";
    let interp = "/lib64/ld-linux-x86-64.so.2";
    let loaded = |extra: &[&str]| {
        Seen::Loaded(
            [libc, interp]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect(),
        )
    };
    let cases: [(&str, Seen); 5] = [
        ("libr.so.1", loaded(&["/lib/x86_64-linux-gnu/libr.so.1"])),
        ("libo.so.1", loaded(&[])),
        ("libq.so.1", loaded(&[])),
        ("/app/lib2/libp.so.1", loaded(&[])),
        (&too_long, loaded(&[])),
    ];
    for (preload, expected) in &cases {
        let seen = check(
            name,
            &r,
            prog,
            &[("LD_PRELOAD", preload)],
            &["--preload", preload],
        );
        assert_eq!(&seen, expected, "{name}: LD_PRELOAD={preload}");
    }
    // Set-user-ID files the search reaches load as outside secure mode: no
    // difference to check there, only the loader's answer.
    let expected_ok = format!("/lib/x86_64-linux-gnu/{ok}");
    for (preload, path) in [
        (ok.as_str(), expected_ok.as_str()),
        ("libt.so.1", "/app/lib/libt.so.1"),
    ] {
        let real = run_secure(&r, prog, &[("LD_PRELOAD", preload)]);
        let ours = by_closure(&run_closure(
            r.path(),
            &[prog],
            &["--secure", "--preload", preload],
        ));
        assert_eq!(ours, real, "{name}: LD_PRELOAD={preload}");
        assert_eq!(real, loaded(&[path]), "{name}: LD_PRELOAD={preload}");
    }
    // What closure says about those it leaves out: the loader's own
    // message for a name it searched and did not take, a warning of its
    // own for one the loader skips silently.
    let run = run_closure(
        r.path(),
        &[prog],
        &["--secure", "--preload", "libq.so.1 /app/lib2/libp.so.1"],
    );
    let w = warnings(&run);
    assert!(
        w.iter().any(|w| w
            == "object 'libq.so.1' from LD_PRELOAD cannot be preloaded (cannot open shared object file): ignored"),
        "{name}: {w:?}"
    );
    assert!(
        w.iter().any(|w| w.starts_with("object '/app/lib2/libp.so.1' from LD_PRELOAD is ignored: in secure mode glibc takes only names without '/'")),
        "{name}: {w:?}"
    );
}

#[test]
fn secure_mode_takes_paths_and_set_user_id_names_from_ld_so_preload() {
    let name = "secure_mode_takes_paths_and_set_user_id_names_from_ld_so_preload";
    let o = oracle!(name);
    let r = root(&o);
    // A path is opened as it is: no set-user-ID bit needed. A name is
    // searched as an LD_PRELOAD name is in secure mode: libq (ordinary) is
    // ignored, libs (set-user-ID, default directory) loads, libo
    // (set-user-ID, known to the ld.so.cache only) is not found.
    r.lib("/app/lib2/libp.so.1", "libp.so.1").build();
    r.lib("/usr/lib/x86_64-linux-gnu/libq.so.1", "libq.so.1")
        .build();
    r.lib("/usr/lib/x86_64-linux-gnu/libs.so.1", "libs.so.1")
        .build();
    setuid(&r, "/usr/lib/x86_64-linux-gnu/libs.so.1");
    r.lib("/opt/lib/libo.so.1", "libo.so.1").build();
    setuid(&r, "/opt/lib/libo.so.1");
    r.set_ld_so_conf("/opt/lib\n");
    program(&r, "/app/bin/prog", &[]);
    r.ldconfig();
    r.write(
        "/etc/ld.so.preload",
        "/app/lib2/libp.so.1 libq.so.1\nlibs.so.1:libo.so.1\n",
    );
    let seen = check(name, &r, "/app/bin/prog", &[], &[]);
    assert_eq!(
        seen,
        Seen::Loaded(
            [
                "/app/lib2/libp.so.1",
                "/lib/x86_64-linux-gnu/libs.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        ),
        "{name}"
    );
}

#[test]
fn secure_program_origin_is_searched_by_its_normal_form_from_glibc_2_41() {
    // In secure mode glibc checks a program's `$ORIGIN` element in its lexically normalised
    // form (`.`, `..` and repeated slashes removed: `is_trusted_path_normalize`); 2.36 then
    // searches the expansion as written, 2.41 and later the normalised form. Plain paths,
    // `$LIB` and libraries' `$ORIGIN` elements stay as written everywhere.
    let name = "secure_program_origin_is_searched_by_its_normal_form_from_glibc_2_41";
    let o = oracle!(name);
    on_host_and_releases(name, &o, &["trixie", "forky"], origin_spellings);
}

fn origin_spellings(name: &str, r: &TestRoot) {
    add_runas(r);
    let normalizes = r.glibc_minor() >= 41;
    let lib = "/usr/lib/x86_64-linux-gnu/extra/liba.so.1";
    r.lib(lib, "liba.so.1").build();
    r.lib("/usr/lib/x86_64-linux-gnu/libmid.so.1", "libmid.so.1")
        .needs(&[lib])
        .runpath("$ORIGIN/./extra/../extra")
        .build();
    // (RUNPATH of /usr/bin/progK, or None: linked against libmid; the path liba is
    // loaded from by a loader that normalises)
    let forms: [(Option<&str>, &str); 9] = [
        (Some("$ORIGIN/../lib/x86_64-linux-gnu/extra"), lib),
        (Some("$ORIGIN/./../lib//x86_64-linux-gnu/extra/"), lib),
        (
            Some("${ORIGIN}/../lib/x86_64-linux-gnu/extra/../extra"),
            lib,
        ),
        (
            Some("$ORIGIN/../../../../usr/lib/x86_64-linux-gnu/extra"),
            lib,
        ),
        (
            Some("$ORIGIN/../../lib/x86_64-linux-gnu/extra"),
            "/lib/x86_64-linux-gnu/extra/liba.so.1",
        ),
        (
            Some("$ORIGIN/../lib/x86_64-linux-gnu/nothere:$ORIGIN/../lib/x86_64-linux-gnu/extra"),
            lib,
        ),
        (
            Some("/usr/lib/x86_64-linux-gnu/./extra"),
            "/usr/lib/x86_64-linux-gnu/./extra/liba.so.1",
        ),
        (
            Some("/usr/$LIB/../x86_64-linux-gnu/extra"),
            "/usr/lib/x86_64-linux-gnu/../x86_64-linux-gnu/extra/liba.so.1",
        ),
        (None, "/lib/x86_64-linux-gnu/./extra/../extra/liba.so.1"),
    ];
    for (k, (form, _)) in forms.iter().enumerate() {
        let args = match form {
            Some(form) => {
                let mut args = link(r, lib);
                args.extend([
                    "-Wl,--enable-new-dtags".into(),
                    format!("-Wl,-rpath,{form}"),
                ]);
                args
            }
            None => link(r, "/usr/lib/x86_64-linux-gnu/libmid.so.1"),
        };
        program(r, &format!("/usr/bin/prog{k}"), &args);
    }
    r.ldconfig();
    for (k, (form, normal)) in forms.iter().enumerate() {
        let prog = format!("/usr/bin/prog{k}");
        let real = run_secure(r, &prog, &[]);
        let secure = by_closure(&run_closure(r.path(), &[&prog], &["--secure"]));
        assert_eq!(secure, real, "{name}: {form:?}");
        let Seen::Loaded(loaded) = &real else {
            panic!("{name}: {form:?}: scenario broken: {real:?}");
        };
        let from_origin = form.is_some_and(|f| f.contains("ORIGIN"));
        assert_eq!(
            loaded.contains(*normal),
            normalizes || !from_origin,
            "{name}: {form:?}: scenario broken: {loaded:?}"
        );
        println!("{name}: {form:?}: {loaded:?}");
    }
}
