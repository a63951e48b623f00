//! The JSON documents of an OCI image: image config, manifest, index,
//! `oci-layout`.
//!
//! Owns their shapes and their exact bytes. Every document is a struct with
//! a fixed field order (maps are `BTreeMap`s, so keys are sorted) written
//! compactly by `serde_json`, so the same inputs always give the same bytes
//! and therefore the same digests. Nothing here touches the file system.

use std::collections::BTreeMap;

use serde::Serialize;

/// Media type of an image index.
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an image manifest.
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an image config.
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of a gzip-compressed layer.
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The annotation that carries a tag in an image layout's index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The `PATH` a scratch image's processes get.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Debian's CA bundle; `SSL_CERT_FILE` points at it when it is staged.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A content descriptor: what a digest points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// `sha256:` and 64 lowercase hex digits.
    pub digest: String,
    /// Size of the content in bytes.
    pub size: u64,
    /// Annotations (a tag in the index).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform of an image (index entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// The platform an index entry runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    /// GOARCH-style architecture name.
    pub architecture: String,
    /// Always `linux`.
    pub os: String,
}

/// The execution parameters of the image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExecConfig {
    /// The user the process runs as.
    #[serde(rename = "User", skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Environment, `NAME=value` strings.
    #[serde(rename = "Env", skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The program run when the container starts.
    #[serde(rename = "Entrypoint", skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
}

/// The layers of an image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootFsConfig {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `sha256:` digests of the uncompressed layers, in order.
    pub diff_ids: Vec<String>,
}

/// One entry of the config's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct History {
    /// When the layer was made (RFC 3339).
    pub created: String,
    /// What made it.
    pub created_by: String,
}

/// The image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageConfig {
    /// When the image was made (RFC 3339; from `SOURCE_DATE_EPOCH`, else the epoch).
    pub created: String,
    /// GOARCH-style architecture (`amd64`, `arm64`, …).
    pub architecture: String,
    /// Always `linux`.
    pub os: String,
    /// How to run it.
    pub config: ExecConfig,
    /// The layers.
    pub rootfs: RootFsConfig,
    /// One entry per layer.
    pub history: Vec<History>,
}

/// The image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// [`MEDIA_MANIFEST`].
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
}

/// The image index of a layout (`index.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// [`MEDIA_INDEX`].
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The manifests, each tagged through [`REF_NAME`].
    pub manifests: Vec<Descriptor>,
}

/// A descriptor without annotations or platform.
pub fn descriptor(media_type: &str, digest: &str, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: digest.to_string(),
        size,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

/// The exact bytes of a document.
pub fn to_bytes<T: Serialize>(doc: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail (string keys, no floats).
    serde_json::to_vec(doc).unwrap_or_default()
}

/// The bytes of the `oci-layout` file.
pub fn layout_file() -> Vec<u8> {
    br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()
}

/// Seconds since the epoch as an RFC 3339 UTC time (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days end each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn config_json_is_sorted_and_compact() {
        let c = ImageConfig {
            created: rfc3339(0),
            architecture: "amd64".into(),
            os: "linux".into(),
            config: ExecConfig {
                user: Some("65532".into()),
                env: vec![DEFAULT_PATH.into()],
                entrypoint: vec!["/app".into()],
            },
            rootfs: RootFsConfig {
                kind: "layers".into(),
                diff_ids: vec!["sha256:00".into()],
            },
            history: vec![],
        };
        let s = String::from_utf8(to_bytes(&c)).unwrap();
        assert!(s.starts_with(r#"{"created":"1970-01-01T00:00:00Z","architecture":"amd64""#));
        assert!(s.contains(r#""config":{"User":"65532","Env":["PATH="#));
    }
}
