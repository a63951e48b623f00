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

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
///
/// Origins are interned: a path holds the numbers of its origins (sorted,
/// no repeats), so crediting a directory that every object of a large
/// closure passes through (`/usr/lib`) costs an integer per object, not a
/// clone and a path comparison per origin (with 662 roots that was ≈ 480 M
/// instructions, four times the rest of the run).
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    /// A hash map: paths are only looked up, never listed (a `BTreeMap`
    /// compared paths component by component, a third of the audit).
    by_path: HashMap<PathBuf, Vec<u32>, foldhash::quality::RandomState>,
    /// Every origin credited, by number.
    origins: Vec<Origin>,
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
        // A root was given when one of its ancestors (or itself) was: a
        // set lookup per ancestor instead of a scan of every `--root` per
        // root (quadratic for a whole `/usr/bin`).
        let given: Given<'_> = given_roots.iter().map(PathBuf::as_path).collect();
        let mut memo: BTreeMap<usize, BTreeSet<Origin>> = BTreeMap::new();
        let mut a = Attribution::default();
        let mut ids: HashMap<Origin, u32, foldhash::quality::RandomState> = HashMap::default();
        // Origin numbers of each root index, made once.
        let mut root_ids: Vec<Option<Vec<u32>>> = vec![None; g.roots.len()];
        let mut credit: Vec<u32> = Vec::new();
        for n in g.objects() {
            credit.clear();
            for &i in &n.roots {
                if let Some(Some(known)) = root_ids.get(i) {
                    credit.extend_from_slice(known);
                    continue;
                }
                let set = root_origins(g, &given, &includes, i, &mut memo, 0);
                let mine: Vec<u32> = set.into_iter().map(|o| a.intern(&mut ids, o)).collect();
                credit.extend_from_slice(&mine);
                if let Some(slot) = root_ids.get_mut(i) {
                    *slot = Some(mine);
                }
            }
            credit.sort_unstable();
            credit.dedup();
            let mut paths = vec![n.path.clone()];
            paths.extend(n.variants.iter().map(|v| v.path.clone()));
            paths.extend(n.also_opened.iter().cloned());
            for p in paths {
                a.credit_lookup(fs, &g.in_root(&p), &credit);
            }
        }
        for inc in &includes {
            let id = a.intern(&mut ids, Origin::Include(inc.arg.clone()));
            for p in &inc.paths {
                a.credit_lookup(fs, p, &[id]);
                if let Ok((r, meta)) = fs.metadata(p) {
                    if meta.is_dir() {
                        a.trees
                            .push((r.canonical, Origin::Include(inc.arg.clone())));
                    }
                }
            }
        }
        for v in a.by_path.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        Ok(a)
    }

    /// The number of origin `o`, given one if it is new.
    fn intern(
        &mut self,
        ids: &mut HashMap<Origin, u32, foldhash::quality::RandomState>,
        o: Origin,
    ) -> u32 {
        if let Some(&id) = ids.get(&o) {
            return id;
        }
        let id = self.origins.len() as u32;
        self.origins.push(o.clone());
        ids.insert(o, id);
        id
    }

    /// Credits the path string `p`, every symlink hop and directory on the
    /// way, and the file it leads to, with the origins numbered `credit`.
    fn credit_lookup(&mut self, fs: &RootFs, p: &Path, credit: &[u32]) {
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

    /// Adds `credit` to `p` (sorted and deduplicated once all are in).
    fn add(&mut self, p: PathBuf, credit: &[u32]) {
        match self.by_path.get_mut(&p) {
            Some(v) => v.extend_from_slice(credit),
            None => {
                self.by_path.insert(p, credit.to_vec());
            }
        }
    }

    /// What pulled the in-root path `p` in (empty when nothing in
    /// particular did: the staging layout, generated files, or an audit of
    /// a plain directory).
    pub fn of(&self, p: &Path) -> Vec<Origin> {
        let mut set: BTreeSet<Origin> = self
            .by_path
            .get(p)
            .map(|v| {
                v.iter()
                    .map(|&id| self.origins[id as usize].clone())
                    .collect()
            })
            .unwrap_or_default();
        for (dir, o) in &self.trees {
            if p.starts_with(dir) {
                set.insert(o.clone());
            }
        }
        set.into_iter().collect()
    }
}

/// The `--root` arguments as a set (a `Path` hashes as it compares:
/// component by component).
type Given<'a> = std::collections::HashSet<&'a Path, foldhash::quality::RandomState>;

/// The user-given roots or includes behind root index `i` of `g`.
fn root_origins(
    g: &DepGraph,
    given: &Given<'_>,
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
    // `root_path.starts_with(p)` for some given `p`: `p` is one of its
    // ancestors (components compared, as `starts_with` does).
    // (An empty `p` is a prefix of every path.)
    if given.contains(Path::new("")) || root_path.ancestors().any(|a| given.contains(a)) {
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
        if let Some(&ix) = g.index.get(root) {
            for requester in g.needed_by(ix) {
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
