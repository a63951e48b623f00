//! File capabilities: reading the `security.capability` extended attribute
//! of a file and describing it the way `getcap` does (`cap_net_raw=ep`).
//!
//! The attribute is read with `lgetxattr` (through `rustix`, no `unsafe`
//! here), never following a final symlink. Its value is the kernel's
//! `vfs_cap_data`: a little-endian `magic_etc` word (revision in the top
//! byte, the effective flag in bit 0), then one (revision 1) or two
//! (revisions 2 and 3) pairs of permitted/inheritable 32-bit masks, and for
//! revision 3 the root uid of the user namespace the capabilities belong to.

use std::io;
use std::path::Path;

use crate::error::{Error, Result};

/// The name of the attribute that holds file capabilities.
pub const XATTR_NAME: &str = "security.capability";

const REVISION_MASK: u32 = 0xFF00_0000;
const REVISION_1: u32 = 0x0100_0000;
const REVISION_2: u32 = 0x0200_0000;
const REVISION_3: u32 = 0x0300_0000;
const FLAG_EFFECTIVE: u32 = 0x0000_0001;

/// Capability names by number (`include/uapi/linux/capability.h`).
const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// Reads the raw `security.capability` value of the host file `host`
/// (a final symlink is not followed). `Ok(None)` when the file has no such
/// attribute, its file system has no extended attributes, or it no longer
/// exists; `shown` is the path named in an error.
pub fn read_raw(host: &Path, shown: &Path) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 64];
    loop {
        match rustix::fs::lgetxattr(host, XATTR_NAME, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            // No attribute, no attributes on this file system, or the file
            // was removed meanwhile (a live root).
            Err(e)
                if e == rustix::io::Errno::NODATA
                    || e == rustix::io::Errno::NOTSUP
                    || e == rustix::io::Errno::NOENT =>
            {
                return Ok(None);
            }
            Err(e) if e == rustix::io::Errno::RANGE && buf.len() < 1 << 16 => {
                let len = buf.len() * 4;
                buf.resize(len, 0);
            }
            Err(e) => return Err(Error::io(shown, io::Error::from(e))),
        }
    }
}

/// [`read_raw`] of an open file (the descriptor staging copies from).
pub fn read_fd(file: &std::fs::File) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 64];
    loop {
        match rustix::fs::fgetxattr(file, XATTR_NAME, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(e) if e == rustix::io::Errno::NODATA || e == rustix::io::Errno::NOTSUP => {
                return Ok(None);
            }
            Err(e) if e == rustix::io::Errno::RANGE && buf.len() < 1 << 16 => {
                let len = buf.len() * 4;
                buf.resize(len, 0);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn word(bytes: &[u8], i: usize) -> Option<u32> {
    let b = bytes.get(i * 4..i * 4 + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| match NAMES.get(bit) {
            Some(n) => (*n).to_string(),
            None => format!("cap_{bit}"),
        })
        .collect()
}

/// Describes a raw `vfs_cap_data` value as `getcap` would
/// (`cap_net_bind_service,cap_net_raw=ep`, `cap_sys_admin=p`, with
/// `cap_x+i` for inheritable bits and `[rootid=N]` for a namespaced
/// revision-3 entry). A value that does not parse is shown in hex.
pub fn describe(raw: &[u8]) -> String {
    let hex = || {
        let h: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        format!("unparsed security.capability value 0x{h}")
    };
    let Some(magic) = word(raw, 0) else {
        return hex();
    };
    let (pairs, expected_len) = match magic & REVISION_MASK {
        REVISION_1 => (1, 12),
        REVISION_2 => (2, 20),
        REVISION_3 => (2, 24),
        _ => return hex(),
    };
    if raw.len() != expected_len {
        return hex();
    }
    let mut permitted = 0u64;
    let mut inheritable = 0u64;
    for p in 0..pairs {
        let (Some(perm), Some(inh)) = (word(raw, 1 + 2 * p), word(raw, 2 + 2 * p)) else {
            return hex();
        };
        permitted |= u64::from(perm) << (32 * p);
        inheritable |= u64::from(inh) << (32 * p);
    }
    let effective = magic & FLAG_EFFECTIVE != 0;
    let mut parts = Vec::new();
    if permitted != 0 {
        let flags = if effective { "ep" } else { "p" };
        parts.push(format!("{}={flags}", names(permitted).join(",")));
    }
    let only_inheritable = inheritable & !permitted;
    let both = inheritable & permitted;
    if both != 0 {
        parts.push(format!("{}+i", names(both).join(",")));
    }
    if only_inheritable != 0 {
        parts.push(format!("{}=i", names(only_inheritable).join(",")));
    }
    if parts.is_empty() {
        parts.push("no capabilities (empty set)".into());
    }
    let mut text = parts.join(" ");
    if magic & REVISION_MASK == REVISION_3 {
        if let Some(rootid) = word(raw, 5) {
            text.push_str(&format!(" [rootid={rootid}]"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(effective: bool, perm: [u32; 2], inh: [u32; 2]) -> Vec<u8> {
        let magic = REVISION_2 | u32::from(effective);
        [magic, perm[0], inh[0], perm[1], inh[1]]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    #[test]
    fn net_bind_service_effective() {
        assert_eq!(
            describe(&v2(true, [1 << 10, 0], [0, 0])),
            "cap_net_bind_service=ep"
        );
    }

    #[test]
    fn several_permitted_not_effective() {
        assert_eq!(
            describe(&v2(false, [(1 << 12) | (1 << 13), 0], [0, 0])),
            "cap_net_admin,cap_net_raw=p"
        );
    }

    #[test]
    fn high_word_and_inheritable() {
        // cap_bpf is 39: bit 7 of the second word.
        assert_eq!(
            describe(&v2(true, [0, 1 << 7], [1 << 21, 1 << 7])),
            "cap_bpf=ep cap_bpf+i cap_sys_admin=i"
        );
    }

    #[test]
    fn revision_3_shows_rootid() {
        let mut raw = v2(true, [1 << 13, 0], [0, 0]);
        raw[3] = 0x03;
        raw.extend(1000u32.to_le_bytes());
        assert_eq!(describe(&raw), "cap_net_raw=ep [rootid=1000]");
    }

    #[test]
    fn garbage_is_hex() {
        assert_eq!(
            describe(&[1, 2, 3]),
            "unparsed security.capability value 0x010203"
        );
        let mut bad = v2(true, [1, 0], [0, 0]);
        bad.pop();
        assert!(describe(&bad).starts_with("unparsed"));
    }
}
