//! `--format list`: every object of the closure, one sysroot path per
//! line, sorted (a path the loader opens relative to the working directory
//! is listed from `--cwd`).

use std::io::{self, Write};

use crate::graph::DepGraph;

/// Writes the sorted, unique paths of every object (roots, libraries, interpreters).
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    let objects = g.objects();
    if objects.iter().all(|n| n.path.first() == Some(&b'/')) {
        // The usual case: already sorted and unique.
        for n in objects {
            out.write_all(&n.path)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    let paths: std::collections::BTreeSet<Vec<u8>> =
        objects.iter().map(|n| g.in_root_bytes(&n.path)).collect();
    for p in paths {
        out.write_all(&p)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
