//! `--format ldd`: the lines `ldd` prints, so scripts that parse them keep working.
//!
//! Load addresses are not printed (nothing is loaded) and the vDSO line is
//! left out. The lines are the loader's, in its order and with its names
//! ([`load_order`]); for a musl program, musl's (`ld-musl --list`). With
//! several roots each block starts with `root:` as `ldd` does for several
//! files. Only the roots asked for (`--root`) have blocks: files that are
//! roots only to be staged (`--include`, a baseline run's hwcaps variants)
//! are not what `ldd` was asked about. A root whose load glibc abandons
//! while mapping an object (a fatal search error, a refused object) gets
//! no lines: the loader stops before it lists any, and `ldd` shows only
//! its error.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Write};

use petgraph::stable_graph::NodeIndex;

use super::load_order;
use crate::graph::{DepGraph, NodeKind, RefusedWhy};
use crate::resolve::Via;

/// Writes `ldd`-style lines per root.
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    let asked = |i: usize| g.root_via.get(i).is_none_or(|v| *v != Via::Include);
    let many = (0..g.root_nodes.len()).filter(|&i| asked(i)).count() > 1;
    for (i, &root) in g.root_nodes.iter().enumerate() {
        if !asked(i) {
            continue;
        }
        if many {
            out.write_all(&g.roots[i])?;
            out.write_all(b":\n")?;
        }
        let info = g.graph[root].info.as_ref();
        if info.is_none_or(|i| !i.is_dynamic() && i.interp.is_none()) {
            out.write_all(b"\tnot a dynamic executable\n")?;
            continue;
        }
        if g.root_musl.get(i).copied().unwrap_or(false) {
            musl(g, root, i, out)?;
            continue;
        }
        if aborted(g, root, i) {
            // `ldd` shows only the loader's error, on stderr (as ours is).
            continue;
        }
        let order = load_order(g, root, i);
        if order.is_empty() {
            out.write_all(b"\tstatically linked\n")?;
        }
        for (n, name) in order {
            let node = &g.graph[n];
            out.write_all(b"\t")?;
            if node.kind == NodeKind::Missing {
                out.write_all(&name)?;
                out.write_all(b" => not found\n")?;
            } else if name == node.path {
                out.write_all(&node.path)?;
                out.write_all(b"\n")?;
            } else {
                out.write_all(&name)?;
                out.write_all(b" => ")?;
                out.write_all(&node.path)?;
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

/// Whether glibc's loader gives up on root `ri` (node `root`) before it
/// lists anything, tracing or not: an object of its start-up it refuses
/// while mapping it ([`RefusedWhy::Verneed`], [`RefusedWhy::Pie`],
/// [`RefusedWhy::Executable`]; an ISA level is checked after the list is
/// made), or a name whose search ends in a fatal error. The root itself is
/// an executable that another root may load as a library (refused there);
/// its own load is not refused for that.
fn aborted(g: &DepGraph, root: NodeIndex, ri: usize) -> bool {
    let refused = |n: NodeIndex| {
        g.refused.iter().any(|r| {
            r.object == g.graph[n].path
                && match r.why {
                    RefusedWhy::IsaLevel { .. } => false,
                    RefusedWhy::Pie | RefusedWhy::Executable => n != root,
                    RefusedWhy::Verneed(_) => true,
                }
        })
    };
    let startup = g.startup_objects(root, ri, false);
    startup.iter().any(|&n| {
        refused(n)
            || g.children(n).into_iter().any(|(c, e)| {
                e.via != Via::Interpreter
                    && !e.via.outside_link_map()
                    && g.graph[c].roots.contains(&ri)
                    && g.graph[c]
                        .missing
                        .as_ref()
                        .is_some_and(|m| m.fatal.is_some())
            })
    })
}

/// musl's lines for a musl program: the loader first, by its own path, then
/// each object in the order musl loads it (breadth-first, as `load_deps`
/// walks its list), `name => path` even when the name is the path. A name
/// musl answers with itself (`libc.so`, `libm.so`, …: a reserved name)
/// shows as `name => loader` the first time a name of its family is asked
/// for (musl remembers each family it reported). Names musl cannot load
/// are on its stderr only, as ours are.
fn musl(g: &DepGraph, root: NodeIndex, ri: usize, out: &mut dyn Write) -> io::Result<()> {
    let loader = g
        .children(root)
        .into_iter()
        .find(|(n, e)| e.via == Via::Interpreter && g.graph[*n].kind != NodeKind::Missing)
        .map(|(n, _)| &g.graph[n].path)
        // A library root has no `PT_INTERP`; musl's `--list` of it names
        // the loader first all the same (the loader answers its `libc.so`).
        .or_else(|| {
            (g.graph.node_indices())
                .find(|&n| {
                    g.graph[n].kind == NodeKind::Interpreter && g.graph[n].roots.contains(&ri)
                })
                .map(|n| &g.graph[n].path)
        });
    if let Some(path) = loader {
        out.write_all(b"\t")?;
        out.write_all(path)?;
        out.write_all(b"\n")?;
    }
    let mut seen = BTreeSet::from([root]);
    let mut reported: BTreeSet<&[u8]> = BTreeSet::new();
    let mut q = VecDeque::from([root]);
    while let Some(n) = q.pop_front() {
        let mut names = BTreeSet::new();
        for (child, e) in g.children(n) {
            if e.via == Via::Interpreter
                || e.via.outside_link_map()
                || !g.graph[child].roots.contains(&ri)
                || !names.insert(&e.name)
            {
                continue;
            }
            let node = &g.graph[child];
            let line = match node.kind {
                NodeKind::Missing => continue,
                NodeKind::Interpreter => match musl_reserved(&e.name) {
                    Some(family) => reported.insert(family),
                    None => false,
                },
                _ => {
                    let new = seen.insert(child);
                    if new {
                        q.push_back(child);
                    }
                    new
                }
            };
            if line {
                out.write_all(b"\t")?;
                out.write_all(&e.name)?;
                out.write_all(b" => ")?;
                out.write_all(&node.path)?;
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

/// The family of a name musl's loader answers with itself (`load_library`:
/// `lib` followed by one of its reserved stems and a `.`), if it is one.
fn musl_reserved(name: &[u8]) -> Option<&'static [u8]> {
    const STEMS: [&[u8]; 7] = [
        b"c.",
        b"pthread.",
        b"rt.",
        b"m.",
        b"dl.",
        b"util.",
        b"xnet.",
    ];
    let rest = name.strip_prefix(b"lib")?;
    STEMS.into_iter().find(|s| rest.starts_with(s))
}
