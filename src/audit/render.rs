//! Words for an [`Audit`]: the one-line surface summary, the report of
//! `--format audit` and `closure audit DIR`, and the problem lines for
//! forbidden findings (stderr). Everything writes to `&mut dyn Write`; the
//! JSON form lives in [`crate::report::json`].

use std::io::{self, Write};

use super::{Audit, Category, Finding};

/// How many paths the summary names per category.
const NAMED_PER_CATEGORY: usize = 3;

fn origins(f: &Finding) -> String {
    f.pulled_in_by
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

fn count_phrase(c: Category, n: usize) -> String {
    let (one, many) = match c {
        Category::Shell => ("a shell", "shell paths"),
        Category::PackageManager => ("a package manager", "package manager paths"),
        Category::Setuid => ("setuid file", "setuid files"),
        Category::Setgid => ("setgid file", "setgid files"),
        Category::Capabilities => ("file with capabilities", "files with capabilities"),
        Category::WorldWritable => ("world-writable path", "world-writable paths"),
        Category::Devices => ("device node", "device nodes"),
    };
    match (c, n) {
        (Category::Shell, 0) => "no shell".into(),
        (Category::PackageManager, 0) => "no package manager".into(),
        (Category::Shell | Category::PackageManager, 1) => one.into(),
        (_, 1) => format!("1 {one}"),
        _ => format!("{n} {many}"),
    }
}

/// Up to [`NAMED_PER_CATEGORY`] paths, grouped by what pulled them in:
/// `/usr/bin/dash, /usr/bin/sh from root /app/run.sh; /sbin/x`, then how
/// many more there are.
fn name_paths(found: &[&Finding]) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for f in found.iter().take(NAMED_PER_CATEGORY) {
        let from = origins(f);
        let path = f.path.display().to_string();
        match groups.iter_mut().find(|(o, _)| *o == from) {
            Some((_, paths)) => paths.push(path),
            None => groups.push((from, vec![path])),
        }
    }
    let mut parts: Vec<String> = groups
        .into_iter()
        .map(|(from, paths)| {
            if from.is_empty() {
                paths.join(", ")
            } else {
                format!("{} from {from}", paths.join(", "))
            }
        })
        .collect();
    if found.len() > NAMED_PER_CATEGORY {
        parts.push(format!("{} more", found.len() - NAMED_PER_CATEGORY));
    }
    parts.join("; ")
}

/// The one-line surface summary (see [`Audit::summary`]).
pub fn summary(a: &Audit) -> String {
    let mut parts = Vec::new();
    for c in Category::ALL {
        let found = a.of(c);
        let always = matches!(
            c,
            Category::Shell | Category::PackageManager | Category::Setuid
        );
        if found.is_empty() && !always {
            continue;
        }
        let mut part = count_phrase(c, found.len());
        if !found.is_empty() {
            part.push_str(&format!(" ({})", name_paths(&found)));
        }
        parts.push(part);
    }
    format!("surface: {}", parts.join(", "))
}

/// One line per finding — `shell: /usr/bin/sh (symlink to dash, which is
/// dash); pulled in by root /app/start.sh` — then the summary line.
/// Forbidden findings are marked `[forbidden]`.
pub fn report(a: &Audit, out: &mut dyn Write) -> io::Result<()> {
    for f in &a.findings {
        write!(
            out,
            "{}: {} ({})",
            f.category.name(),
            f.path.display(),
            f.detail
        )?;
        if !f.pulled_in_by.is_empty() {
            write!(out, "; pulled in by {}", origins(f))?;
        }
        if a.is_forbidden(f) {
            write!(out, " [forbidden]")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{}", summary(a))
}

/// One `error:` line per forbidden finding (nothing when none is).
pub fn problems(a: &Audit, out: &mut dyn Write) -> io::Result<()> {
    for f in a.forbidden() {
        write!(
            out,
            "error: forbidden {}: {} ({})",
            f.category.name(),
            f.path.display(),
            f.detail
        )?;
        if !f.pulled_in_by.is_empty() {
            write!(out, ", pulled in by {}", origins(f))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::audit::Origin;

    #[test]
    fn clean_summary() {
        assert_eq!(
            summary(&Audit::default()),
            "surface: no shell, no package manager, 0 setuid files"
        );
    }

    #[test]
    fn findings_summary_and_report() {
        let shell = |p: &str| Finding {
            category: Category::Shell,
            path: PathBuf::from(p),
            detail: "named sh".into(),
            pulled_in_by: vec![Origin::Root(PathBuf::from("/app/start.sh"))],
        };
        let mut a = Audit {
            findings: vec![
                shell("/a/sh"),
                shell("/b/sh"),
                shell("/c/sh"),
                shell("/d/sh"),
                Finding {
                    category: Category::Devices,
                    path: PathBuf::from("/dev/null"),
                    detail: "character device 1:3, mode 0666".into(),
                    pulled_in_by: vec![],
                },
            ],
            ..Audit::default()
        };
        assert_eq!(
            summary(&a),
            "surface: 4 shell paths (/a/sh, /b/sh, /c/sh from root /app/start.sh; 1 more), \
             no package manager, 0 setuid files, 1 device node (/dev/null)"
        );
        a.forbid.insert(Category::Devices);
        let mut text = Vec::new();
        report(&a, &mut text).expect("report");
        let text = String::from_utf8(text).expect("utf8");
        assert!(text.starts_with("shell: /a/sh (named sh); pulled in by root /app/start.sh\n"));
        assert!(text.contains("devices: /dev/null (character device 1:3, mode 0666) [forbidden]\n"));
        let mut errs = Vec::new();
        problems(&a, &mut errs).expect("problems");
        assert_eq!(
            String::from_utf8(errs).expect("utf8"),
            "error: forbidden devices: /dev/null (character device 1:3, mode 0666)\n"
        );
    }
}
