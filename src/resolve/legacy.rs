//! glibc's legacy hwcap subdirectories (glibc 2.36 and earlier, x86).
//!
//! Owns which subdirectories of a search directory an older glibc loader
//! tries before the directory itself, and which `ld.so.cache` entries
//! tagged with legacy hwcap bits it accepts. glibc 2.37 removed both; 2.33
//! to 2.36 try them after the glibc-hwcaps subdirectories.
//!
//! The loader builds a list of *components*: the names of the "important"
//! hardware capabilities the CPU has (in bit order), then the platform
//! string, then `tls`, which is always there. Every subset of them is a
//! subdirectory, components joined by `/` from the last to the first
//! (`tls/haswell/x86_64`), and the subsets are tried from the largest bit
//! pattern down to the empty one, the directory itself. On x86-64 the
//! important capabilities are `x86_64` (every 64-bit CPU) and `avx512_1`
//! (an Intel CPU with AVX512F, CD, BW, DQ and VL); on i386 `sse2`.
//!
//! The modelled CPU is the one `--platform` and `--hwcaps` describe:
//! `avx512_1` is active when `x86-64-v4` is and the platform is `haswell`
//! (glibc sets the bit only on Intel CPUs, whose platform is then
//! `haswell`; `xeon_phi` CPUs do not get it). i386 is modelled with SSE2.
//! On AArch64 and s390x the important capabilities come from the CPU's
//! `AT_HWCAP` bits, which no file in the root tells: a capability counts
//! when `--hwcaps` names it (`atomics`; `zarch`, `ldisp`, `eimm`, `dfp`,
//! `vx`, `vxe`, `vxe2`), and such a name is no `glibc-hwcaps`
//! subdirectory. `tls` and the platform are there on every CPU. Other
//! architectures are not modelled (see the README's known limits).

use super::target::Target;
use crate::elf::machine;

/// Bit of a cache entry's `hwcap` that marks a `tls` subdirectory.
const TLS_BIT: u64 = 1 << 63;
/// First bit of the platform field of a cache entry's `hwcap` (x86).
const FIRST_PLATFORM: u32 = 48;
/// The x86 platform names, by their index in the platform field.
const X86_PLATFORMS: [&str; 4] = ["i586", "i686", "haswell", "xeon_phi"];

/// The legacy hwcap model of one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Legacy {
    /// Subdirectories (each ending in `/`) tried before a search
    /// directory itself, in the loader's order, without repeats.
    pub subdirs: Vec<Vec<u8>>,
    /// Capability bits a cache entry may carry (besides `tls` and the
    /// platform field).
    hwcap_bits: u64,
    /// The platform field's mask.
    platform_mask: u64,
    /// The modelled platform's bit in that field (0: a platform the
    /// loader has no bit for, so no tagged entry matches).
    platform_bit: u64,
    /// Whether the model applies (a glibc 2.36 or older loader on x86).
    active: bool,
}

impl Legacy {
    /// The model for `target` on the CPU that `platform` and `hwcaps`
    /// (the active glibc-hwcaps names) describe. Inactive unless the
    /// target's loader searches legacy subdirectories and is x86.
    pub fn new(target: &Target, platform: &[u8], hwcaps: &[Vec<u8>]) -> Legacy {
        if !target.legacy_hwcaps {
            return Legacy::default();
        }
        let id = &target.ident;
        // (capability names with their bits, the platform names the loader
        // knows with their index range)
        let (caps, platforms): (Vec<(&[u8], u64)>, std::ops::Range<usize>) = match id.machine {
            machine::X86_64 => {
                let mut caps: Vec<(&[u8], u64)> = vec![(b"x86_64", 1 << 1)];
                let v4 = hwcaps.iter().any(|h| h == b"x86-64-v4");
                if v4 && platform == b"haswell" {
                    caps.push((b"avx512_1", 1 << 2));
                }
                (caps, 2..4)
            }
            machine::I386 => (vec![(b"sse2", 1 << 0)], 0..2),
            machine::AARCH64 | machine::S390 => {
                let caps = capability_names(id.machine)
                    .iter()
                    .filter(|(name, _)| hwcaps.iter().any(|h| h == name))
                    .map(|&(name, bit)| (name, 1u64 << bit))
                    .collect();
                // No platform field in their cache entries.
                (caps, 0..0)
            }
            _ => return Legacy::default(),
        };
        let mut components: Vec<&[u8]> = caps.iter().map(|(n, _)| *n).collect();
        if !platform.is_empty() {
            components.push(platform);
        }
        components.push(b"tls");
        let platform_bit = X86_PLATFORMS[platforms.clone()]
            .iter()
            .position(|p| p.as_bytes() == platform)
            .map_or(0, |i| 1 << (FIRST_PLATFORM + (platforms.start + i) as u32));
        Legacy {
            subdirs: subsets(&components),
            hwcap_bits: caps.iter().fold(0, |acc, (_, bit)| acc | bit),
            platform_mask: ((1u64 << platforms.end) - 1) << FIRST_PLATFORM,
            platform_bit,
            active: true,
        }
    }

    /// Whether the loader accepts an `ld.so.cache` entry whose `hwcap`
    /// holds legacy bits: only capabilities the CPU has, `tls`, and no
    /// platform or the modelled one. Never when the model is inactive
    /// (glibc 2.37 and later ignore such entries).
    pub fn accepts(&self, hwcap: u64) -> bool {
        if !self.active {
            return false;
        }
        if hwcap & !(self.hwcap_bits | self.platform_mask | TLS_BIT) != 0 {
            return false;
        }
        let platform = hwcap & self.platform_mask;
        platform == 0 || platform == self.platform_bit
    }
}

/// The important capabilities of glibc 2.36's legacy model that `--hwcaps`
/// may name for an architecture, with their `AT_HWCAP` bits, in bit order
/// (`HWCAP_IMPORTANT`, as the loader's `--list-diagnostics` shows it:
/// `dl_hwcap_important`). Empty where the model derives them (x86) or has
/// none.
pub fn capability_names(machine: u16) -> &'static [(&'static [u8], u32)] {
    match machine {
        machine::AARCH64 => &[(b"atomics", 8)],
        machine::S390 => &[
            (b"zarch", 1),
            (b"ldisp", 4),
            (b"eimm", 5),
            (b"dfp", 6),
            (b"vx", 11),
            (b"vxe", 13),
            (b"vxe2", 15),
        ],
        _ => &[],
    }
}

/// Whether `name`, given to `--hwcaps`, is a legacy capability of
/// `machine` rather than a `glibc-hwcaps` subdirectory.
pub fn is_capability(machine: u16, name: &[u8]) -> bool {
    capability_names(machine).iter().any(|(n, _)| *n == name)
}

/// Every non-empty subset of `components` as a subdirectory, most
/// specific first: subset bit patterns from the largest down, each
/// spelled from its last component to its first. A name twice (the
/// platform `x86_64` and the capability `x86_64`) gives repeated paths,
/// which the loader tries twice to the same end: kept once.
fn subsets(components: &[&[u8]]) -> Vec<Vec<u8>> {
    let n = components.len();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for mask in (1..(1usize << n)).rev() {
        let mut path = Vec::new();
        for i in (0..n).rev().filter(|i| mask & (1 << i) != 0) {
            path.extend_from_slice(components[i]);
            path.push(b'/');
        }
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::Ident;

    fn ident(machine: u16, is_64: bool) -> Ident {
        Ident {
            is_64,
            big_endian: false,
            osabi: 0,
            abiversion: 0,
            e_type: 3,
            machine,
            e_flags: 0,
        }
    }

    fn target(machine: u16, is_64: bool, legacy: bool) -> Target {
        let mut t = Target::detect(ident(machine, is_64), None, &|_| false, &|_| false, &|_| {
            None
        });
        t.legacy_hwcaps = legacy;
        t
    }

    fn shown(l: &Legacy) -> Vec<String> {
        l.subdirs
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    /// The order glibc 2.36 showed on a baseline x86-64 CPU
    /// (loader-semantics.md §3.2): `tls/x86_64/x86_64, tls/x86_64,
    /// tls/x86_64, tls, x86_64/x86_64, x86_64, x86_64`, repeats kept once.
    #[test]
    fn baseline_x86_64_order_is_the_loaders() {
        let l = Legacy::new(&target(machine::X86_64, true, true), b"x86_64", &[]);
        assert_eq!(
            shown(&l),
            [
                "tls/x86_64/x86_64/",
                "tls/x86_64/",
                "tls/",
                "x86_64/x86_64/",
                "x86_64/"
            ]
        );
    }

    /// An Intel CPU with AVX-512 (this test machine's `ld.so --help`
    /// lists haswell, tls, avx512_1, x86_64): sixteen subsets, the platform
    /// after the capabilities.
    #[test]
    fn haswell_with_avx512_gives_every_subset() {
        let v4 = vec![b"x86-64-v4".to_vec(), b"x86-64-v3".to_vec()];
        let l = Legacy::new(&target(machine::X86_64, true, true), b"haswell", &v4);
        let got = shown(&l);
        assert_eq!(got.len(), 15);
        assert_eq!(got[0], "tls/haswell/avx512_1/x86_64/");
        assert_eq!(got[7], "tls/");
        assert_eq!(got[8], "haswell/avx512_1/x86_64/");
        assert_eq!(got[11], "haswell/");
        assert_eq!(got[14], "x86_64/");
        // Without v4, or on a non-Intel platform, no avx512_1.
        let amd = Legacy::new(&target(machine::X86_64, true, true), b"x86_64", &v4);
        assert!(!shown(&amd).iter().any(|s| s.contains("avx512_1")));
        let v3 = Legacy::new(&target(machine::X86_64, true, true), b"haswell", &v4[1..]);
        assert!(!shown(&v3).iter().any(|s| s.contains("avx512_1")));
    }

    /// Cache entries: capability bits the CPU has, `tls`, and the
    /// platform's own bit pass; anything else does not.
    #[test]
    fn cache_entries_need_the_modelled_cpu() {
        let t = target(machine::X86_64, true, true);
        let haswell = Legacy::new(&t, b"haswell", &[]);
        assert!(haswell.accepts(TLS_BIT));
        assert!(haswell.accepts(1 << 1));
        assert!(haswell.accepts(TLS_BIT | 1 << 1 | 1 << 50));
        assert!(!haswell.accepts(1 << 2), "avx512_1 is not active");
        assert!(!haswell.accepts(1 << 51), "xeon_phi is another platform");
        assert!(!haswell.accepts(1 << 0), "sse2 is not important on x86-64");
        let plain = Legacy::new(&t, b"x86_64", &[]);
        assert!(plain.accepts(1 << 1));
        assert!(!plain.accepts(1 << 50), "x86_64 has no platform bit");
        let i386 = Legacy::new(&target(machine::I386, false, true), b"i686", &[]);
        assert!(i386.accepts(1 << 0 | 1 << 49));
        assert!(!i386.accepts(1 << 48));
        assert_eq!(shown(&i386)[0], "tls/i686/sse2/");
    }

    /// Which subdirectories a glibc loader knows, from its strings:
    /// `LD_HWCAP_MASK` alone (2.32 and earlier), both (2.33 to 2.36),
    /// `glibc-hwcaps` alone (2.37 and later); an unreadable one is taken for
    /// a current one.
    #[test]
    fn generation_from_the_interpreters_strings() {
        let detect = |has: &[&[u8]]| {
            let t = Target::detect(
                ident(machine::X86_64, true),
                Some(b"/lib64/ld-linux-x86-64.so.2"),
                &|n: &[u8]| has.contains(&n),
                &|_| false,
                &|_| None,
            );
            (t.legacy_hwcaps, t.glibc_hwcaps)
        };
        assert_eq!(detect(&[b"LD_HWCAP_MASK"]), (true, false));
        assert_eq!(detect(&[b"LD_HWCAP_MASK", b"glibc-hwcaps"]), (true, true));
        assert_eq!(detect(&[b"glibc-hwcaps"]), (false, true));
        assert_eq!(detect(&[]), (false, true));
    }

    /// A loader without legacy support (glibc 2.37 and later), or an
    /// architecture not modelled, tries no subdirectory and accepts no
    /// tagged entry.
    #[test]
    fn inactive_models_do_nothing() {
        let new = Legacy::new(&target(machine::X86_64, true, false), b"haswell", &[]);
        assert!(new.subdirs.is_empty());
        assert!(!new.accepts(TLS_BIT));
        let arm = Legacy::new(&target(machine::AARCH64, true, false), b"aarch64", &[]);
        assert!(arm.subdirs.is_empty());
        let riscv = Legacy::new(&target(machine::RISCV, true, true), b"", &[]);
        assert!(riscv.subdirs.is_empty());
        assert!(!riscv.accepts(TLS_BIT));
    }

    /// glibc 2.36 on AArch64 (its `ld.so --help` under qemu): `aarch64`
    /// (the platform) and `tls` on every CPU, `atomics` when the CPU has
    /// LSE; the same subset order as on x86.
    #[test]
    fn aarch64_has_platform_tls_and_atomics_when_named() {
        let t = target(machine::AARCH64, true, true);
        let plain = Legacy::new(&t, b"aarch64", &[]);
        assert_eq!(shown(&plain), ["tls/aarch64/", "tls/", "aarch64/"]);
        assert!(plain.accepts(TLS_BIT));
        assert!(!plain.accepts(1 << 8), "atomics is not active");
        let lse = Legacy::new(&t, b"aarch64", &[b"atomics".to_vec()]);
        assert_eq!(
            shown(&lse),
            [
                "tls/aarch64/atomics/",
                "tls/aarch64/",
                "tls/atomics/",
                "tls/",
                "aarch64/atomics/",
                "aarch64/",
                "atomics/"
            ]
        );
        assert!(lse.accepts(TLS_BIT | 1 << 8));
        assert!(!lse.accepts(1 << 49), "no platform field");
        assert!(is_capability(machine::AARCH64, b"atomics"));
        assert!(!is_capability(machine::X86_64, b"atomics"));
    }

    /// s390x: the named capabilities in bit order, then `tls` (qemu's
    /// loader has no platform).
    #[test]
    fn s390x_capabilities_come_in_bit_order() {
        let t = target(machine::S390, true, true);
        let names: Vec<Vec<u8>> = ["z13", "vx", "zarch", "eimm"]
            .iter()
            .map(|n| n.as_bytes().to_vec())
            .collect();
        let l = Legacy::new(&t, b"", &names);
        let got = shown(&l);
        assert_eq!(got.len(), 15);
        assert_eq!(got[0], "tls/vx/eimm/zarch/");
        assert_eq!(got[7], "tls/");
        assert_eq!(got[14], "zarch/");
        assert!(l.accepts(1 << 1 | 1 << 5 | 1 << 11 | TLS_BIT));
        assert!(!l.accepts(1 << 4), "ldisp is not named");
    }
}
