//! Which `--root` or `--include` pulled a staged path in.
//!
//! Built from the dependency graph: each object node carries the indices of
//! the roots that load it ([`crate::graph::Node::roots`]). A root that is
//! the interpreter of a `#!` script (or the program of `#!/usr/bin/env
//! NAME`) was not given by the user; it is credited to the script that
//! names it, recursively. An ELF file or script traced because of an
//! `--include` is credited to that include argument, and so is every path
//! an include argument stages as is (a data file, a whole directory). Each
//! object's path is re-resolved inside the sysroot so that every symlink hop
//! and directory on the way (`/bin -> usr/bin`, `/usr/bin/sh -> dash`)
//! carries the same credit as the file it leads to.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::graph::DepGraph;
use crate::resolve::bytes_path;
use crate::rootfs::RootFs;

/// What pulled a path into the closure.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A `--root` argument (an in-root path, after directory expansion).
    Root(PathBuf),
    /// An `--include` argument, exactly as given.
    Include(String),
}

impl Origin {
    /// `"root"` or `"include"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Origin::Root(_) => "root",
            Origin::Include(_) => "include",
        }
    }

    /// The root path or the include argument.
    pub fn value(&self) -> String {
        match self {
            Origin::Root(p) => p.display().to_string(),
            Origin::Include(a) => a.clone(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.value())
    }
}

/// Credits for staged paths: in-root path → what pulled it in.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    by_path: BTreeMap<PathBuf, BTreeSet<Origin>>,
    /// Canonical directories staged whole by an include, with their credit.
    trees: Vec<(PathBuf, Origin)>,
}

/// One include argument and the in-root paths it expanded to.
struct IncludeArg {
    arg: String,
    paths: Vec<PathBuf>,
}

impl IncludeArg {
    /// Whether `p` is one of the expanded paths or lies below one.
    fn covers(&self, p: &Path) -> bool {
        self.paths.iter().any(|e| p.starts_with(e))
    }
}

impl Attribution {
    /// Credits every path the closure in `g` stages. `given_roots` are the
    /// `--root` arguments (absolute in-root paths; a root of `g` at or below
    /// one was given by the user, as a directory root expands to the files
    /// below it); `include_args` the `--include` arguments as typed.
    pub fn new(
        fs: &RootFs,
        g: &DepGraph,
        given_roots: &[PathBuf],
        include_args: &[String],
    ) -> Result<Attribution> {
        let mut includes = Vec::new();
        for arg in include_args {
            let paths = crate::stage::include::expand(fs, std::slice::from_ref(arg))?
                .iter()
                .map(|p| bytes_path(p))
                .collect();
            includes.push(IncludeArg {
                arg: arg.clone(),
                paths,
            });
        }
        let mut memo: BTreeMap<usize, BTreeSet<Origin>> = BTreeMap::new();
        let mut a = Attribution::default();
        for n in g.objects() {
            let mut credit = BTreeSet::new();
            for &i in &n.roots {
                credit.extend(root_origins(g, given_roots, &includes, i, &mut memo, 0));
            }
            let mut paths = vec![n.path.clone()];
            paths.extend(n.variants.iter().map(|v| v.path.clone()));
            paths.extend(n.also_opened.iter().cloned());
            for p in paths {
                a.credit_lookup(fs, &g.in_root(&p), &credit);
            }
        }
        for inc in &includes {
            let credit = BTreeSet::from([Origin::Include(inc.arg.clone())]);
            for p in &inc.paths {
                a.credit_lookup(fs, p, &credit);
                if let Ok((r, meta)) = fs.metadata(p) {
                    if meta.is_dir() {
                        a.trees
                            .push((r.canonical, Origin::Include(inc.arg.clone())));
                    }
                }
            }
        }
        Ok(a)
    }

    /// Credits the path string `p`, every symlink hop and directory on the
    /// way, and the file it leads to.
    fn credit_lookup(&mut self, fs: &RootFs, p: &Path, credit: &BTreeSet<Origin>) {
        if credit.is_empty() {
            return;
        }
        let Ok(r) = fs.resolve(p) else {
            self.add(p.to_path_buf(), credit);
            return;
        };
        for d in &r.dirs {
            self.add(d.clone(), credit);
        }
        for hop in &r.hops {
            self.add(hop.link.clone(), credit);
        }
        self.add(r.canonical, credit);
    }

    fn add(&mut self, p: PathBuf, credit: &BTreeSet<Origin>) {
        self.by_path
            .entry(p)
            .or_default()
            .extend(credit.iter().cloned());
    }

    /// What pulled the in-root path `p` in (empty when nothing in
    /// particular did: the staging layout, generated files, or an audit of
    /// a plain directory).
    pub fn of(&self, p: &Path) -> Vec<Origin> {
        let mut set: BTreeSet<Origin> = self.by_path.get(p).cloned().unwrap_or_default();
        for (dir, o) in &self.trees {
            if p.starts_with(dir) {
                set.insert(o.clone());
            }
        }
        set.into_iter().collect()
    }
}

/// The user-given roots or includes behind root index `i` of `g`.
fn root_origins(
    g: &DepGraph,
    given: &[PathBuf],
    includes: &[IncludeArg],
    i: usize,
    memo: &mut BTreeMap<usize, BTreeSet<Origin>>,
    depth: usize,
) -> BTreeSet<Origin> {
    if let Some(done) = memo.get(&i) {
        return done.clone();
    }
    let Some(root) = g.roots.get(i) else {
        return BTreeSet::new();
    };
    let root_path = bytes_path(root);
    let mut out = BTreeSet::new();
    if given.iter().any(|p| root_path.starts_with(p)) {
        out.insert(Origin::Root(root_path.clone()));
    }
    for inc in includes {
        if inc.covers(&root_path) {
            out.insert(Origin::Include(inc.arg.clone()));
        }
    }
    // A script's interpreter: credit the scripts that name it. Scripts are
    // roots themselves, so follow their root indices (bounded, in case of
    // a cycle of scripts naming each other).
    if out.is_empty() && depth < 16 {
        if let Some(node) = g.index.get(root).and_then(|&ix| g.graph.node_weight(ix)) {
            for requester in &node.needed_by {
                let Some(j) = g.roots.iter().position(|r| r == requester) else {
                    continue;
                };
                let is_script = g
                    .index
                    .get(requester)
                    .and_then(|&ix| g.graph.node_weight(ix))
                    .is_some_and(|n| n.script.is_some());
                if is_script && j != i {
                    out.extend(root_origins(g, given, includes, j, memo, depth + 1));
                }
            }
        }
    }
    if out.is_empty() {
        // Neither given nor named by a script (cannot happen for graphs
        // built by `graph::build`): the root stands for itself.
        out.insert(Origin::Root(root_path));
    }
    memo.insert(i, out.clone());
    out
}
