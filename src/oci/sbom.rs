//! `--sbom FILE`: an SPDX 2.3 JSON document of what is staged.
//!
//! Owns the document's content. It describes one package for the staged
//! root itself (`SPDXRef-Image`, purpose `CONTAINER`), which contains every
//! regular file of the plan (path `./usr/lib/…`, SHA-1 and SHA-256) and one
//! package per Debian package that owns staged files (version, architecture,
//! source, package URL `pkg:deb/debian/NAME@VERSION?arch=ARCH`), which in turn
//! contains its files, and, when the sysroot's os-release names its `ID`
//! and `VERSION_ID`, one package for that release (`SPDXRef-OperatingSystem-ID`,
//! purpose `OPERATING-SYSTEM`, name `ID`, version `VERSION_ID`), which contains
//! the Debian packages. Relationships: the document `DESCRIBES` the image;
//! the image `CONTAINS` packages and files; each Debian package `CONTAINS` its
//! files. Every package that contains files has `filesAnalyzed` and its
//! verification code, as SPDX requires.
//!
//! Deterministic: the creation time is `SOURCE_DATE_EPOCH` (else the epoch),
//! identifiers derive from paths and names, the namespace from the digest of
//! the content, and keys are sorted.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{hex, OciOptions, Prepared};
use crate::error::{Error, Result};
use crate::graph::DepGraph;
use crate::rootfs::RootFs;
use crate::stage::{Item, Plan};

/// SHA-1 and SHA-256 (hex) of one staged file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sums {
    sha1: String,
    sha256: String,
}

fn sums_of_bytes(b: &[u8]) -> Sums {
    Sums {
        sha1: hex(&Sha1::digest(b)),
        sha256: hex(&Sha256::digest(b)),
    }
}

fn sums_of_file(fs: &RootFs, source: &Path) -> Result<Sums> {
    let f = fs.open(source).map_err(|e| Error::Output {
        path: source.to_path_buf(),
        reason: format!("cannot read from the sysroot: {e}"),
    })?;
    let mut s1 = Sha1::new();
    let mut s256 = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut r = &f.file;
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::io(source, e))?;
        if n == 0 {
            break;
        }
        s1.update(&buf[..n]);
        s256.update(&buf[..n]);
    }
    Ok(Sums {
        sha1: hex(&s1.finalize()),
        sha256: hex(&s256.finalize()),
    })
}

/// Letters, digits, `.` and `-` only, as SPDX identifiers allow.
fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn pct(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The package URL of a Debian package.
pub fn purl(name: &str, version: &str, arch: &str, os: &super::dpkg::OsRelease) -> String {
    let ns = os
        .id
        .as_deref()
        .filter(|i| i.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or("debian")
        .to_ascii_lowercase();
    let mut q = vec![format!("arch={}", pct(arch))];
    if let (Some(id), Some(v)) = (&os.id, &os.version_id) {
        q.push(format!("distro={}", pct(&format!("{id}-{v}"))));
    }
    format!(
        "pkg:deb/{ns}/{}@{}?{}",
        pct(name),
        pct(version),
        q.join("&")
    )
}

/// `Name <mail>` as an SPDX actor (`Organization: Name (mail)`).
fn supplier(maintainer: &str) -> Option<String> {
    let (name, rest) = maintainer.split_once('<')?;
    let mail = rest.split_once('>')?.0.trim();
    let name = name.trim();
    if name.is_empty() || mail.is_empty() || name.contains(['(', ')']) {
        return None;
    }
    Some(format!("Organization: {name} ({mail})"))
}

/// The SPDX package verification code over files' SHA-1s.
fn verification_code(mut sha1s: Vec<&str>) -> String {
    sha1s.sort_unstable();
    hex(&Sha1::digest(sha1s.concat().as_bytes()))
}

/// The SPDX document for `plan`, as bytes (JSON, keys sorted).
pub fn document(
    fs: &RootFs,
    g: &DepGraph,
    plan: &Plan,
    prepared: &Prepared,
    opts: &OciOptions,
) -> Result<Vec<u8>> {
    // Every regular file of the plan, by plan path.
    let mut sums: BTreeMap<PathBuf, Sums> = BTreeMap::new();
    for (p, item) in &plan.items {
        let content = match item {
            Item::Hardlink { to } => plan.items.get(to),
            other => Some(other),
        };
        let s = match content {
            Some(Item::File { source, .. }) => sums_of_file(fs, source)?,
            Some(Item::Generated { bytes, .. }) => sums_of_bytes(bytes),
            _ => continue,
        };
        sums.insert(p.clone(), s);
    }
    let file_id = |p: &Path| {
        let h = hex(&Sha256::digest(p.as_os_str().as_encoded_bytes()));
        format!("SPDXRef-File-{}", &h[..16])
    };
    let files: Vec<Value> = sums
        .iter()
        .map(|(p, s)| {
            let rel = p.to_string_lossy();
            json!({
                "SPDXID": file_id(p),
                "fileName": format!(".{rel}"),
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": s.sha1},
                    {"algorithm": "SHA256", "checksumValue": s.sha256},
                ],
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            })
        })
        .collect();

    let root_name = g
        .roots
        .first()
        .map(|r| {
            let s = String::from_utf8_lossy(r);
            s.rsplit('/').next().unwrap_or("").to_string()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "staged-root".into());

    let mut relationships: Vec<(String, String, String)> = Vec::new();
    let mut packages: Vec<Value> = Vec::new();
    let all_sha1: Vec<&str> = sums.values().map(|s| s.sha1.as_str()).collect();
    let mut image = json!({
        "SPDXID": "SPDXRef-Image",
        "name": root_name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": !sums.is_empty(),
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    });
    if !sums.is_empty() {
        image["packageVerificationCode"] =
            json!({"packageVerificationCodeValue": verification_code(all_sha1)});
    }
    packages.push(image);
    relationships.push((
        "SPDXRef-DOCUMENT".into(),
        "DESCRIBES".into(),
        "SPDXRef-Image".into(),
    ));
    for p in sums.keys() {
        relationships.push(("SPDXRef-Image".into(), "CONTAINS".into(), file_id(p)));
    }
    // The release the packages come from, as a package of purpose
    // `OPERATING-SYSTEM` that contains them: what Trivy takes an SBOM's
    // OS from (by the `SPDXRef-OperatingSystem` prefix of its identifier),
    // without which it matches no Debian package against advisories.
    let os = match (&prepared.os.id, &prepared.os.version_id) {
        (Some(id), Some(version)) if !prepared.packages.is_empty() => {
            let os_id = format!("SPDXRef-OperatingSystem-{}", id_part(id));
            packages.push(json!({
                "SPDXID": os_id,
                "name": id,
                "versionInfo": version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "primaryPackagePurpose": "OPERATING-SYSTEM",
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            }));
            relationships.push(("SPDXRef-Image".into(), "CONTAINS".into(), os_id.clone()));
            Some(os_id)
        }
        _ => None,
    };
    for o in &prepared.packages {
        let pk = &o.package;
        let id = format!(
            "SPDXRef-Package-deb-{}-{}",
            id_part(&pk.name),
            id_part(&pk.arch)
        );
        let mine: Vec<&PathBuf> = o
            .files
            .iter()
            .map(|(_, staged, _)| staged)
            .filter(|p| sums.contains_key(*p))
            .collect();
        let sha1s: Vec<&str> = mine
            .iter()
            .filter_map(|p| sums.get(*p))
            .map(|s| s.sha1.as_str())
            .collect();
        let mut v = json!({
            "SPDXID": id,
            "name": pk.name,
            "versionInfo": pk.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": !mine.is_empty(),
            "primaryPackagePurpose": "LIBRARY",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(&pk.name, &pk.version, &pk.arch, &prepared.os),
            }],
        });
        if !mine.is_empty() {
            v["packageVerificationCode"] =
                json!({"packageVerificationCodeValue": verification_code(sha1s)});
        }
        if let Some(src) = &pk.source {
            v["sourceInfo"] = json!(format!("built from the Debian source package {src}"));
        }
        if let Some(s) = pk.maintainer.as_deref().and_then(supplier) {
            v["supplier"] = json!(s);
        }
        packages.push(v);
        relationships.push(("SPDXRef-Image".into(), "CONTAINS".into(), id.clone()));
        if let Some(os_id) = &os {
            relationships.push((os_id.clone(), "CONTAINS".into(), id.clone()));
        }
        for p in mine {
            relationships.push((id.clone(), "CONTAINS".into(), file_id(p)));
        }
    }
    relationships.sort();
    relationships.dedup();
    let relationships: Vec<Value> = relationships
        .into_iter()
        .map(
            |(a, t, b)| json!({"spdxElementId": a, "relationshipType": t, "relatedSpdxElement": b}),
        )
        .collect();

    let body = json!({"packages": packages, "files": files, "relationships": relationships});
    let content_digest = hex(&Sha256::digest(
        serde_json::to_vec(&body).unwrap_or_default(),
    ));
    let name = format!("closure-{}", id_part(&root_name));
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/{name}-{}",
            &content_digest[..32]
        ),
        "creationInfo": {
            "created": super::config::rfc3339(opts.mtime),
            "creators": [format!("Tool: closure-{}", env!("CARGO_PKG_VERSION"))],
        },
    });
    if let (Some(d), Value::Object(b)) = (doc.as_object_mut(), body) {
        d.extend(b);
    }
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_encode_versions() {
        let os = super::super::dpkg::OsRelease {
            id: Some("debian".into()),
            version_id: Some("12".into()),
        };
        assert_eq!(
            purl("libc6", "2.36-9+deb12u4", "amd64", &os),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        let none = super::super::dpkg::OsRelease::default();
        assert_eq!(
            purl("zlib1g", "1:1.2.13", "amd64", &none),
            "pkg:deb/debian/zlib1g@1%3A1.2.13?arch=amd64"
        );
    }

    #[test]
    fn suppliers() {
        assert_eq!(
            supplier("GNU Libc Maintainers <debian-glibc@lists.debian.org>").as_deref(),
            Some("Organization: GNU Libc Maintainers (debian-glibc@lists.debian.org)")
        );
        assert_eq!(supplier("nobody"), None);
    }
}
