//! Container output: the staged root as a reproducible OCI image, composed
//! onto a base image, with provenance that vulnerability scanners read.
//!
//! Owns what happens to a staging [`Plan`] between planning and writing:
//!
//! - [`base`]: `--base DIR` (an unpacked base image root): libraries the base
//!   provides are used instead of the sysroot's and their symbol versions are
//!   checked, files the base holds with identical content are dropped, and
//!   paths follow the base's directory links (its usrmerge);
//! - [`dpkg`]: the owning Debian package of every staged file, from the
//!   sysroot's dpkg database, written as `/var/lib/dpkg/status.d/<package>`
//!   entries and `<package>.md5sums`, with the release files scanners
//!   identify the distribution by (`/etc/os-release`, …);
//! - [`sbom`]: an SPDX 2.3 JSON document of the staged files and packages;
//! - [`layout`] and [`config`]: the OCI image layout (`oci-layout`,
//!   `index.json`, `blobs/sha256/…`), its config and manifest.
//!
//! The layer bytes themselves come from [`crate::stage::layer`]. Every output
//! is a pure function of the plan, the file contents and the options: no
//! clock, no host names, no file timestamps, no process ids. Nothing here
//! prints; the caller prints the manifest digest.

pub mod base;
pub mod config;
pub mod dpkg;
pub mod layout;
pub mod sbom;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::graph::DepGraph;
use crate::resolve::Via;
use crate::rootfs::RootFs;
use crate::stage::layer::{self, LayerOptions};
use crate::stage::Plan;

/// Options of the container outputs, validated by the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciOptions {
    /// `--oci DIR`: write an OCI image layout here.
    pub layout: Option<PathBuf>,
    /// `--layer FILE`: write the layer tar here (gzip when named `.tar.gz`
    /// or `.tgz`).
    pub layer: Option<PathBuf>,
    /// `--sbom FILE`: write an SPDX 2.3 JSON document here.
    pub sbom: Option<PathBuf>,
    /// `--base DIR`: an unpacked base image root the layer goes onto.
    pub base: Option<PathBuf>,
    /// `--user`: the image config's `User`.
    pub user: Option<String>,
    /// `--provenance` (`Some(true)`) / `--no-provenance` (`Some(false)`);
    /// `None`: on for image outputs (`--oci`, `--layer`), off for `--out`
    /// alone.
    pub provenance: Option<bool>,
    /// Modification time of every layer entry and the image's `created`
    /// (`SOURCE_DATE_EPOCH`, else 0).
    pub mtime: u64,
    /// The tag written into the layout's index (`latest`).
    pub tag: String,
}

impl OciOptions {
    /// Whether any output here needs the staging plan.
    pub fn wants_plan(&self) -> bool {
        self.layout.is_some() || self.layer.is_some() || self.sbom.is_some()
    }

    /// Whether `/var/lib/dpkg/status.d` entries are added to the plan.
    pub fn provenance_on(&self) -> bool {
        self.provenance
            .unwrap_or(self.layout.is_some() || self.layer.is_some())
    }

    fn tag(&self) -> &str {
        if self.tag.is_empty() {
            "latest"
        } else {
            &self.tag
        }
    }
}

/// What [`prepare`] did to the plan.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// Things worth telling the user that are not problems.
    pub warnings: Vec<String>,
    /// The Debian packages that own staged files.
    pub packages: Vec<dpkg::Owned>,
    /// The sysroot's `/etc/os-release` facts (for package URLs).
    pub os: dpkg::OsRelease,
    /// Whether the Debian CA bundle is in the image.
    pub ca_bundle: bool,
    /// Plan items left out because the base provides them.
    pub dropped: usize,
}

/// What [`emit`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Emitted {
    /// `sha256:…` of the manifest, when a layout was written.
    pub manifest_digest: Option<String>,
    /// `sha256:…` of the uncompressed layer, when a layer was written.
    pub diff_id: Option<String>,
}

/// Applies `--base` and provenance to `plan` (in that order, so provenance
/// describes only what is staged).
pub fn prepare(fs: &RootFs, g: &DepGraph, plan: &mut Plan, opts: &OciOptions) -> Result<Prepared> {
    let mut p = Prepared {
        ca_bundle: plan.items.contains_key(Path::new(config::CA_BUNDLE)),
        os: dpkg::OsRelease::read(fs),
        ..Prepared::default()
    };
    let base = match &opts.base {
        Some(dir) => Some(open_base(dir)?),
        None => None,
    };
    if let Some(base) = &base {
        p.ca_bundle |= base.metadata(Path::new(config::CA_BUNDLE)).is_ok();
        let r = base::apply(fs, base, g, plan)?;
        p.warnings.extend(r.warnings);
        p.dropped = r.dropped;
    }
    if opts.provenance_on() || opts.sbom.is_some() {
        if let Some(db) = dpkg::Database::read(fs)? {
            // Before the owners are worked out, so the package owning them
            // (Debian's `base-files`) has its entry too.
            if opts.provenance_on() {
                dpkg::add_os_identity(fs, base.as_ref(), plan)?;
            }
            p.packages = db.owners(fs, plan);
            if opts.provenance_on() {
                dpkg::add_to_plan(fs, plan, &p.packages)?;
                if let Some(base) = &base {
                    base::adopt_dirs(base, plan);
                }
            }
        }
    }
    Ok(p)
}

/// Opens `--base DIR` as a root.
pub fn open_base(dir: &Path) -> Result<RootFs> {
    RootFs::new(dir).map_err(|e| Error::Usage(format!("--base: {e}")))
}

/// Writes the outputs asked for: the layer (`--layer`), the image layout
/// (`--oci`), the SBOM (`--sbom`).
pub fn emit(
    fs: &RootFs,
    g: &DepGraph,
    plan: &Plan,
    prepared: &Prepared,
    opts: &OciOptions,
) -> Result<Emitted> {
    let mut out = Emitted::default();
    let lopts = LayerOptions { mtime: opts.mtime };
    let layout = match &opts.layout {
        Some(dir) => Some(layout::Layout::open(dir)?),
        None => None,
    };
    if layout.is_some() || opts.layer.is_some() {
        let written = write_layer(fs, plan, &lopts, layout.as_ref(), opts.layer.as_deref())?;
        out.diff_id = Some(written.diff_id.clone());
        if let (Some(layout), Some(blob)) = (&layout, &written.blob) {
            let arch = architecture(g)?;
            let cfg = image_config(g, prepared, opts, &arch, &written.diff_id);
            let cfg_bytes = config::to_bytes(&cfg);
            let (cfg_digest, cfg_size) = layout.put_blob(&cfg_bytes)?;
            let manifest = config::Manifest {
                schema_version: 2,
                media_type: config::MEDIA_MANIFEST.into(),
                config: config::descriptor(config::MEDIA_CONFIG, &cfg_digest, cfg_size),
                layers: vec![config::descriptor(
                    config::MEDIA_LAYER_GZIP,
                    &blob.0,
                    blob.1,
                )],
            };
            let m_bytes = config::to_bytes(&manifest);
            let (m_digest, m_size) = layout.put_blob(&m_bytes)?;
            let mut desc = config::descriptor(config::MEDIA_MANIFEST, &m_digest, m_size);
            desc.annotations
                .insert(config::REF_NAME.into(), opts.tag().into());
            desc.platform = Some(config::Platform {
                architecture: arch,
                os: "linux".into(),
            });
            layout.write_index(desc)?;
            out.manifest_digest = Some(m_digest);
        }
    }
    if let Some(path) = &opts.sbom {
        let doc = sbom::document(fs, g, plan, prepared, opts)?;
        let mut t = TempOut::create(path)?;
        t.write_all(&doc).map_err(|e| Error::io(path, e))?;
        t.commit()?;
    }
    Ok(out)
}

/// The image config for `g`.
fn image_config(
    g: &DepGraph,
    prepared: &Prepared,
    opts: &OciOptions,
    arch: &str,
    diff_id: &str,
) -> config::ImageConfig {
    let mut env = vec![config::DEFAULT_PATH.to_string()];
    if prepared.ca_bundle {
        env.push(format!("SSL_CERT_FILE={}", config::CA_BUNDLE));
    }
    let entry = g
        .roots
        .iter()
        .zip(g.root_via.iter().chain(std::iter::repeat(&Via::Root)))
        .find(|(_, v)| **v == Via::Root)
        .map(|(r, _)| String::from_utf8_lossy(r).into_owned());
    let created = config::rfc3339(opts.mtime);
    config::ImageConfig {
        created: created.clone(),
        architecture: arch.to_string(),
        os: "linux".into(),
        config: config::ExecConfig {
            user: opts.user.clone(),
            env,
            entrypoint: entry.into_iter().collect(),
        },
        rootfs: config::RootFsConfig {
            kind: "layers".into(),
            diff_ids: vec![diff_id.to_string()],
        },
        history: vec![config::History {
            created,
            created_by: format!("closure {}", env!("CARGO_PKG_VERSION")),
        }],
    }
}

/// The OCI architecture of the image: that of the first dynamic root, else
/// of the first ELF object in the closure.
pub fn architecture(g: &DepGraph) -> Result<String> {
    if let Some(a) = g.goarch {
        return Ok(a.to_string());
    }
    g.objects()
        .iter()
        .find_map(|n| n.info.as_ref())
        .map(|i| {
            crate::resolve::target::arch_facts(&i.ident)
                .goarch
                .to_string()
        })
        .ok_or_else(|| {
            Error::Usage("cannot tell the image's architecture: no root is an ELF file".into())
        })
}

/// The digests of a written layer.
struct WrittenLayer {
    /// `sha256:` of the uncompressed tar.
    diff_id: String,
    /// (`sha256:` digest, size) of the gzip blob in the layout.
    blob: Option<(String, u64)>,
}

/// Writes the layer once, streaming the tar to every sink at the same time:
/// the diff-id hash, a plain `--layer x.tar`, and the gzip stream that feeds
/// the layout's blob and a `--layer x.tar.gz`.
fn write_layer(
    fs: &RootFs,
    plan: &Plan,
    lopts: &LayerOptions,
    layout: Option<&layout::Layout>,
    layer_file: Option<&Path>,
) -> Result<WrittenLayer> {
    let gz_file = match layer_file {
        Some(p) => layer_is_gzip(p)?,
        None => false,
    };
    let mut plain = match layer_file {
        Some(p) if !gz_file => Some(TempOut::create(p)?),
        _ => None,
    };
    let mut gz_out = match layer_file {
        Some(p) if gz_file => Some(TempOut::create(p)?),
        _ => None,
    };
    let mut blob = match layout {
        Some(l) => Some(l.temp_blob()?),
        None => None,
    };
    let err_path = layer_file
        .map(Path::to_path_buf)
        .or_else(|| layout.map(|l| l.dir().to_path_buf()))
        .unwrap_or_default();
    let ioerr = |e: io::Error| Error::io(err_path.clone(), e);

    let mut diff = Hashing::new(io::sink());
    let gz_result = {
        let mut gz_sinks: Vec<&mut dyn Write> = Vec::new();
        if let Some(b) = blob.as_mut() {
            gz_sinks.push(b);
        }
        if let Some(g) = gz_out.as_mut() {
            gz_sinks.push(g);
        }
        let mut gz = if gz_sinks.is_empty() {
            None
        } else {
            Some(layer::gzip(Hashing::new(Tee(gz_sinks))))
        };
        {
            let mut top: Vec<&mut dyn Write> = vec![&mut diff];
            if let Some(p) = plain.as_mut() {
                top.push(p);
            }
            if let Some(g) = gz.as_mut() {
                top.push(g);
            }
            layer::write_tar(fs, plan, lopts, &mut Tee(top))?;
        }
        match gz {
            Some(g) => {
                let h = g.finish().map_err(ioerr)?;
                Some((h.digest(), h.count))
            }
            None => None,
        }
    };
    if let Some(p) = plain {
        p.commit()?;
    }
    if let Some(g) = gz_out {
        g.commit()?;
    }
    let blob = match (blob, layout, gz_result) {
        (Some(b), Some(l), Some((digest, size))) => {
            l.commit_blob(b, &digest)?;
            Some((digest, size))
        }
        _ => None,
    };
    Ok(WrittenLayer {
        diff_id: diff.digest(),
        blob,
    })
}

/// Whether `--layer FILE` is gzip (`.tar.gz`, `.tgz`) or plain (`.tar`).
pub fn layer_is_gzip(p: &Path) -> Result<bool> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Ok(true)
    } else if name.ends_with(".tar") {
        Ok(false)
    } else {
        Err(Error::Usage(format!(
            "--layer {}: the name must end in .tar or .tar.gz",
            p.display()
        )))
    }
}

/// `sha256:` and the lowercase hex digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A writer that hashes (SHA-256) and counts what it passes on.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            count: 0,
        }
    }

    fn digest(&self) -> String {
        format!("sha256:{}", hex(&self.hash.clone().finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.hash.update(&buf[..k]);
        self.count += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A writer that writes everything to each of several writers.
struct Tee<'a>(Vec<&'a mut dyn Write>);

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for w in self.0.iter_mut() {
            w.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        for w in self.0.iter_mut() {
            w.flush()?;
        }
        Ok(())
    }
}

/// A file written under a temporary name beside its destination and renamed
/// into place by [`TempOut::commit`]; removed when dropped uncommitted.
pub struct TempOut {
    file: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl TempOut {
    /// Starts writing `dest` (its parent directory must exist).
    pub fn create(dest: &Path) -> Result<TempOut> {
        let name = dest
            .file_name()
            .ok_or_else(|| Error::Output {
                path: dest.to_path_buf(),
                reason: "has no file name".into(),
            })?
            .to_string_lossy()
            .into_owned();
        if dest.is_dir() {
            return Err(Error::Output {
                path: dest.to_path_buf(),
                reason: "is a directory".into(),
            });
        }
        let tmp = dest.with_file_name(format!(".{name}.closure-tmp-{}", std::process::id()));
        // A leftover of a crashed run with the same process id goes first;
        // the new file is created afresh, never through a link.
        let _ = std::fs::remove_file(&tmp);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(dest, e))?;
        Ok(TempOut {
            file: Some(BufWriter::new(file)),
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// Flushes and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        if let Some(f) = self.file.take() {
            let f = f
                .into_inner()
                .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
            f.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        }
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Write for TempOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for TempOut {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
