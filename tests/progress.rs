//! Staging progress and summary are for people: on a terminal (simulated
//! with `script`) a large staging shows an `indicatif` bar and the summary
//! line; `--quiet` shows neither; a pipe gets nothing (tested in stage.rs).

use std::process::Command;

use crate::support::fakeroot::closure_bin;

/// Runs closure under a pseudo-terminal; returns what it wrote there.
fn on_a_terminal(args: &[&str]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("typescript");
    let mut cmd = vec![closure_bin().to_string()];
    cmd.extend(args.iter().map(|a| a.to_string()));
    let status = Command::new("script")
        .args(["-qec", &cmd.join(" ")])
        .arg(&ts)
        .env_remove("NO_COLOR")
        .output()
        .ok()?;
    assert!(status.status.success(), "{status:?}");
    Some(String::from_utf8_lossy(&std::fs::read(&ts).ok()?).into_owned())
}

#[test]
fn a_large_staging_on_a_terminal_shows_a_bar_and_a_summary() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping a_large_staging_on_a_terminal_shows_a_bar_and_a_summary: no `script`");
        return;
    }
    let sys = tempfile::tempdir().unwrap();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-rootfs");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", sample.display()))
        .arg(sys.path())
        .status()
        .unwrap();
    assert!(cp.success());
    // 80 MB of data: above the size from which staging shows a bar.
    std::fs::create_dir_all(sys.path().join("data")).unwrap();
    let blob: Vec<u8> = (0..80_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(sys.path().join("data/blob"), blob).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (s, o1, o2) = (
        sys.path().to_str().unwrap().to_string(),
        out.path().join("a").to_str().unwrap().to_string(),
        out.path().join("b").to_str().unwrap().to_string(),
    );
    let base = [
        "--sysroot",
        &s,
        "--root",
        "/app/bin/server",
        "--include",
        "/data/blob",
    ];
    let Some(seen) = on_a_terminal(&[&base[..], &["--out", &o1]].concat()) else {
        eprintln!("skipping: `script` could not run");
        return;
    };
    assert!(seen.contains("staging "), "no progress bar in {seen:?}");
    assert!(seen.contains("staged "), "no summary line in {seen:?}");
    let quiet = on_a_terminal(&[&base[..], &["--out", &o2, "--quiet"]].concat()).unwrap();
    assert!(!quiet.contains("staging "), "{quiet:?}");
    assert!(!quiet.contains("staged "), "{quiet:?}");
}
