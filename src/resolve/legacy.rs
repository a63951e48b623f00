//! glibc's legacy hwcap subdirectories (glibc 2.36 and earlier).
//!
//! Owns which subdirectories of a search directory an older glibc loader
//! tries before the directory itself, and which `ld.so.cache` entries
//! tagged with legacy hwcap bits it accepts — on the modelled CPU, and, for
//! a baseline run's variants, on any CPU of the architecture (which tagged
//! entries, which existing subdirectories, and which copy each CPU takes
//! first). glibc 2.37 removed both; 2.33
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
//! `haswell`; `xeon_phi` CPUs do not get it). On the other architectures
//! the important capabilities come from the CPU's `AT_HWCAP` bits (on
//! i386 from its `cpuid`), which no file in the root tells: a capability
//! counts when `--hwcaps` names it (`sse2` on i386, whose Debian baseline
//! is an i686 without it; `atomics` on AArch64; `vfp`, `neon` on
//! 32-bit Arm; `dfp`, `altivec` on POWER; `zarch`, `ldisp`, `eimm`,
//! `dfp`, `vx`, `vxe`, `vxe2` on s390x; `ultra3`, `v9v`, `v9v2` on 64-bit
//! SPARC), or when every CPU of the ABI has
//! it (`vfp` for hard-float Arm, `dfp` and `altivec` for little-endian
//! POWER, whose baseline is POWER8), and such a name is no `glibc-hwcaps`
//! subdirectory. `tls` and the platform are there on every CPU; on MIPS
//! they are all there is. Cache entries carry a platform field on x86,
//! POWER and MIPS (their `ldconfig` knows platform names), and MIPS's
//! loader takes no entry tagged `tls`. Every other architecture (RISC-V,
//! LoongArch, m68k, …) gets `tls` and a platform `--platform` names, no
//! capability: glibc 2.36 defines none for RISC-V, and its loader under
//! qemu searches `tls/` and takes a cache entry tagged `tls`. 64-bit
//! SPARC's capabilities (`ultra3`, `v9v`, `v9v2`) count when `--hwcaps`
//! names them; qemu's SPARC CPUs have none of them, so only their absence
//! was checked against a loader (see the README's known limits).

use super::target::Target;
use crate::elf::machine;

/// Bit of a cache entry's `hwcap` that marks a `tls` subdirectory.
const TLS_BIT: u64 = 1 << 63;
/// The x86 platform names, by their index in the platform field, which
/// starts at bit 48 (`_DL_FIRST_PLATFORM`).
const X86_PLATFORMS: [&str; 4] = ["i586", "i686", "haswell", "xeon_phi"];
/// The POWER platform names (`AT_PLATFORM` values), by their index in the
/// platform field, which starts at bit 32: the bits POWER's own `ldconfig`
/// gives a platform subdirectory (`power9/` bit 46).
const POWER_PLATFORMS: [&str; 16] = [
    "power4",
    "ppc970",
    "power5",
    "power5+",
    "power6",
    "ppc-cell-be",
    "power6x",
    "power7",
    "ppca2",
    "ppc405",
    "ppc440",
    "ppc464",
    "ppc476",
    "power8",
    "power9",
    "power10",
];
/// The MIPS platform names, by their bit in a cache entry's `hwcap` (from
/// bit 0; the names MIPS's loader compares `AT_PLATFORM` with, and the bits
/// its `ldconfig` gives `octeon/` and the others).
const MIPS_PLATFORMS: [&str; 4] = ["loongson2e", "loongson2f", "octeon", "octeon2"];
/// EF_ARM_ABI_FLOAT_HARD: a hard-float program needs VFP.
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;

/// The platform field of an architecture's cache entries: the names the
/// loader knows, the first bit, and the part of the table the ABI uses.
struct PlatformField {
    names: &'static [&'static str],
    first_bit: u32,
    usable: std::ops::Range<usize>,
}

impl PlatformField {
    const NONE: PlatformField = PlatformField {
        names: &[],
        first_bit: 0,
        usable: 0..0,
    };
}

/// One CPU of [`Legacy::cpu_models`]: the order in which it tries
/// subdirectories (most specific first, then `""`), its platform (empty:
/// none) and the `--hwcaps` names of its capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuModel {
    /// Subdirectories in the CPU's order, then `""`.
    pub order: Vec<Vec<u8>>,
    /// Its platform (empty for none).
    pub platform: Vec<u8>,
    /// Its capabilities as `--hwcaps` names them.
    pub hwcaps: Vec<Vec<u8>>,
}

/// The legacy hwcap model of one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Legacy {
    /// Subdirectories (each ending in `/`) tried before a search
    /// directory itself, in the loader's order (a repeated name gives
    /// repeated paths, as the loader tries them).
    pub subdirs: Vec<Vec<u8>>,
    /// Capability bits a cache entry may carry (besides `tls` and the
    /// platform field).
    hwcap_bits: u64,
    /// The `tls` bit when the loader takes entries that carry it, else 0.
    tls_bit: u64,
    /// The platform field's mask.
    platform_mask: u64,
    /// The modelled platform's bit in that field (0: a platform the
    /// loader has no bit for, so no tagged entry matches).
    platform_bit: u64,
    /// Whether the model applies (a glibc 2.36 or older loader).
    active: bool,
    /// Every capability bit the architecture's loader may count, on any
    /// CPU.
    any_cpu_bits: u64,
    /// The names of those capabilities, with their bits, in bit order.
    any_caps: Vec<(&'static [u8], u64)>,
    /// The capabilities every CPU of the ABI has.
    always_caps: Vec<&'static [u8]>,
    /// Platform names a CPU may have: the modelled one, the
    /// architecture's usual one and those of the loader's platform table
    /// (and `x86_64`, a non-Intel x86-64 CPU's).
    any_platforms: Vec<Vec<u8>>,
    /// x86-64, where `avx512_1` comes only with the `haswell` platform.
    x86_64: bool,
    /// A model of another CPU than the run's ([`Legacy::for_cpu`]): its
    /// subdirectory lookups are not memoised under the run's.
    other_cpu: bool,
}

impl Legacy {
    /// The model for `target` on the CPU that `platform` and `hwcaps`
    /// (the active glibc-hwcaps names) describe. Inactive unless the
    /// target's loader searches legacy subdirectories.
    pub fn new(target: &Target, platform: &[u8], hwcaps: &[Vec<u8>]) -> Legacy {
        if !target.legacy_hwcaps {
            return Legacy::default();
        }
        let id = &target.ident;
        let named = |name: &[u8]| hwcaps.iter().any(|h| h == name);
        // Capabilities every CPU of the ABI has, whatever `--hwcaps` says.
        let always: &[&[u8]] = match id.machine {
            machine::ARM if id.e_flags & EF_ARM_ABI_FLOAT_HARD != 0 => &[b"vfp"],
            machine::PPC64 if !id.big_endian => &[b"dfp", b"altivec"],
            _ => &[],
        };
        // (capability names with their bits, the platform field)
        let (caps, field): (Vec<(&[u8], u64)>, PlatformField) = match id.machine {
            machine::X86_64 => {
                let mut caps: Vec<(&[u8], u64)> = vec![(b"x86_64", 1 << 1)];
                if named(b"x86-64-v4") && platform == b"haswell" {
                    caps.push((b"avx512_1", 1 << 2));
                }
                let field = PlatformField {
                    names: &X86_PLATFORMS,
                    first_bit: 48,
                    usable: 2..4,
                };
                (caps, field)
            }
            machine::I386
            | machine::AARCH64
            | machine::S390
            | machine::ARM
            | machine::PPC64
            | machine::PPC
            | machine::SPARCV9 => {
                let caps = capability_names(id.machine)
                    .iter()
                    .filter(|(name, _)| named(name) || always.contains(name))
                    .map(|&(name, bit)| (name, 1u64 << bit))
                    .collect();
                let field = match id.machine {
                    // 32- and 64-bit POWER share the loader's platform table.
                    machine::PPC64 | machine::PPC => PlatformField {
                        names: &POWER_PLATFORMS,
                        first_bit: 32,
                        usable: 0..POWER_PLATFORMS.len(),
                    },
                    // i386's loader has bits for `i586` and `i686`.
                    machine::I386 => PlatformField {
                        names: &X86_PLATFORMS,
                        first_bit: 48,
                        usable: 0..2,
                    },
                    _ => PlatformField::NONE,
                };
                (caps, field)
            }
            // No important capabilities: `tls` and the platform, if the
            // kernel gives one (Octeon and Loongson CPUs do).
            machine::MIPS => {
                let field = PlatformField {
                    names: &MIPS_PLATFORMS,
                    first_bit: 0,
                    usable: 0..MIPS_PLATFORMS.len(),
                };
                (Vec::new(), field)
            }
            // Every other architecture (RISC-V, LoongArch, …): glibc 2.36
            // defines no important capabilities for them and their kernels
            // give no AT_PLATFORM, so `tls` (and a platform `--platform`
            // names) is what the loader searches.
            _ => (Vec::new(), PlatformField::NONE),
        };
        let any_caps: Vec<(&'static [u8], u64)> = match id.machine {
            machine::X86_64 => vec![(b"x86_64", 1 << 1), (b"avx512_1", 1 << 2)],
            m => capability_names(m)
                .iter()
                .map(|&(name, bit)| (name, 1u64 << bit))
                .collect(),
        };
        let mut always_caps: Vec<&'static [u8]> = always.to_vec();
        if id.machine == machine::X86_64 {
            always_caps.push(b"x86_64");
        }
        let mut any_platforms: Vec<Vec<u8>> = Vec::new();
        let usual = target.arch.platform.map(str::as_bytes);
        let x86_64_name: Option<&[u8]> = (id.machine == machine::X86_64).then_some(b"x86_64");
        for p in [Some(platform), usual, x86_64_name]
            .into_iter()
            .flatten()
            .chain(
                field.names[field.usable.clone()]
                    .iter()
                    .map(|n| n.as_bytes()),
            )
        {
            if !p.is_empty() && !any_platforms.iter().any(|q| q == p) {
                any_platforms.push(p.to_vec());
            }
        }
        let mut components: Vec<&[u8]> = caps.iter().map(|(n, _)| *n).collect();
        if !platform.is_empty() {
            components.push(platform);
        }
        components.push(b"tls");
        let platform_bit = field.names[field.usable.clone()]
            .iter()
            .position(|p| p.as_bytes() == platform)
            .map_or(0, |i| {
                1 << (field.first_bit + (field.usable.start + i) as u32)
            });
        let platform_mask = match field.names.len() {
            0 => 0,
            n => ((1u64 << n) - 1) << field.first_bit,
        };
        Legacy {
            subdirs: subsets(&components),
            hwcap_bits: caps.iter().fold(0, |acc, (_, bit)| acc | bit),
            // MIPS's loader takes an entry only when its bits are none or
            // exactly the platform's: never a `tls/` one.
            tls_bit: if id.machine == machine::MIPS {
                0
            } else {
                TLS_BIT
            },
            any_cpu_bits: match id.machine {
                machine::X86_64 => 1 << 1 | 1 << 2,
                m => capability_names(m)
                    .iter()
                    .fold(0, |acc, (_, bit)| acc | 1u64 << bit),
            },
            platform_mask,
            platform_bit,
            active: true,
            any_caps,
            always_caps,
            any_platforms,
            x86_64: id.machine == machine::X86_64,
            other_cpu: false,
        }
    }

    /// The model of one of [`Self::cpu_models`]'s CPUs, for a search run
    /// again as that CPU.
    pub fn for_cpu(target: &Target, cpu: &CpuModel) -> Legacy {
        Legacy {
            other_cpu: true,
            ..Legacy::new(target, &cpu.platform, &cpu.hwcaps)
        }
    }

    /// Whether this models another CPU than the run's.
    pub fn is_other_cpu(&self) -> bool {
        self.other_cpu
    }

    /// Whether the model applies (a glibc 2.36 or older loader).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The subdirectories below a search directory that the loader tries
    /// on some CPU of the architecture, among those `is_dir` says exist:
    /// each spelled as the loader spells it (`tls`, then the platform, then
    /// capabilities from the highest bit down) and ending in `/`, sorted.
    /// Only directories that exist are descended into, so a directory
    /// without any costs one question per name.
    pub fn possible_subdirs(&self, is_dir: &mut dyn FnMut(&[u8]) -> bool) -> Vec<Vec<u8>> {
        if !self.active {
            return Vec::new();
        }
        // (name, rank): a subdirectory's components in falling rank.
        let mut names: Vec<(&[u8], (u8, u64))> = vec![(b"tls", (3, 0))];
        names.extend(self.any_platforms.iter().map(|p| (p.as_slice(), (2, 0))));
        names.extend(self.any_caps.iter().map(|&(c, bit)| (c, (1, bit))));
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut stack: Vec<(Vec<u8>, (u8, u64))> = vec![(Vec::new(), (4, 0))];
        while let Some((prefix, above)) = stack.pop() {
            for &(name, rank) in &names {
                if rank >= above {
                    continue;
                }
                let mut path = prefix.clone();
                path.extend_from_slice(name);
                path.push(b'/');
                // `x86_64` is a platform and a capability: the platform's
                // subtree holds the capability's.
                if out.contains(&path) {
                    continue;
                }
                if is_dir(&path) {
                    out.push(path.clone());
                    stack.push((path, rank));
                }
            }
        }
        out.sort();
        out
    }

    /// The orders in which CPUs of the architecture try subdirectories,
    /// for every CPU that differs from the others in the components
    /// `present` names (the components of the subdirectories that matter;
    /// the others change no CPU's choice among them): each order most
    /// specific first, as the loader orders subsets, then `""`, the directory
    /// itself. Capabilities every CPU of the ABI has are always there, and
    /// on x86-64 `avx512_1` only with the `haswell` platform.
    pub fn cpu_orders(&self, present: &std::collections::BTreeSet<Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
        self.cpus(present).into_iter().map(|c| c.order).collect()
    }

    /// The CPUs [`Self::cpu_orders`] enumerates, in its order, each with
    /// its platform and the `--hwcaps` names that make [`Legacy::new`]
    /// model it: for a CPU that takes no copy in the directories the
    /// baseline search went through, the search is run again as that CPU.
    pub fn cpu_models(&self, present: &std::collections::BTreeSet<Vec<u8>>) -> Vec<CpuModel> {
        self.cpus(present)
    }

    fn cpus(&self, present: &std::collections::BTreeSet<Vec<u8>>) -> Vec<CpuModel> {
        let has = |n: &[u8]| present.contains(n);
        let caps: Vec<&[u8]> = self
            .any_caps
            .iter()
            .map(|&(c, _)| c)
            .filter(|c| has(c))
            .collect();
        let platforms: Vec<Option<&[u8]>> = self
            .any_platforms
            .iter()
            .map(Vec::as_slice)
            .filter(|p| has(p))
            .map(Some)
            .chain([None])
            .collect();
        let mut orders = Vec::new();
        for platform in platforms {
            for mask in 0..(1u64 << caps.len()) {
                let mut components: Vec<&[u8]> = caps
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, c)| *c)
                    .collect();
                if caps
                    .iter()
                    .any(|c| self.always_caps.contains(c) && !components.contains(c))
                {
                    continue;
                }
                if self.x86_64
                    && components.contains(&&b"avx512_1"[..])
                    && platform != Some(&b"haswell"[..])
                {
                    continue;
                }
                // The names `Legacy::new` takes for these capabilities:
                // on x86-64 `avx512_1` comes with `x86-64-v4` (and the
                // `haswell` platform), `x86_64` always.
                let named: Vec<Vec<u8>> = components
                    .iter()
                    .filter(|c| !self.always_caps.contains(c))
                    .map(|c| {
                        if self.x86_64 && *c == b"avx512_1" {
                            b"x86-64-v4".to_vec()
                        } else {
                            c.to_vec()
                        }
                    })
                    .collect();
                components.extend(platform);
                components.push(b"tls");
                let mut order = subsets(&components);
                order.push(Vec::new());
                orders.push(CpuModel {
                    order,
                    platform: platform.unwrap_or_default().to_vec(),
                    hwcaps: named,
                });
            }
        }
        orders
    }

    /// Whether the loader accepts an `ld.so.cache` entry whose `hwcap`
    /// holds legacy bits: only capabilities the CPU has, `tls`, and no
    /// platform or the modelled one. Never when the model is inactive
    /// (glibc 2.37 and later ignore such entries).
    pub fn accepts(&self, hwcap: u64) -> bool {
        if !self.active {
            return false;
        }
        if hwcap & !(self.hwcap_bits | self.platform_mask | self.tls_bit) != 0 {
            return false;
        }
        let platform = hwcap & self.platform_mask;
        platform == 0 || platform == self.platform_bit
    }

    /// Whether every CPU of the architecture's loader accepts an entry
    /// with these legacy bits: `tls` where it is taken, capabilities every
    /// CPU of the ABI has, and no platform.
    pub fn universal(&self, hwcap: u64) -> bool {
        let always = self
            .any_caps
            .iter()
            .filter(|(name, _)| self.always_caps.contains(name))
            .fold(0, |acc, (_, bit)| acc | bit);
        self.active && hwcap & !(self.tls_bit | always) == 0
    }

    /// Whether the loader accepts an entry with these legacy bits on some
    /// CPU of the architecture: known capability bits, `tls` where it is
    /// taken, and at most one platform of the table.
    pub fn possible(&self, hwcap: u64) -> bool {
        if !self.active || hwcap & !(self.any_cpu_bits | self.platform_mask | self.tls_bit) != 0 {
            return false;
        }
        (hwcap & self.platform_mask).count_ones() <= 1
    }
}

/// The important capabilities of glibc 2.36's legacy model that `--hwcaps`
/// may name for an architecture, with their `AT_HWCAP` bits, in bit order
/// (`HWCAP_IMPORTANT`, as the loader's `--list-diagnostics` shows it:
/// `dl_hwcap_important`). Empty where the model derives them (x86-64) or
/// has none.
pub fn capability_names(machine: u16) -> &'static [(&'static [u8], u32)] {
    match machine {
        // `HWCAP_X86_SSE2`: not every CPU that runs i386 code has it
        // (Debian's i386 baseline is an i686 without it).
        machine::I386 => &[(b"sse2", 0)],
        machine::AARCH64 => &[(b"atomics", 8)],
        machine::ARM => &[(b"vfp", 6), (b"neon", 12)],
        machine::PPC64 | machine::PPC => &[(b"dfp", 10), (b"altivec", 28)],
        // `HWCAP_SPARC_ULTRA3`, `_BLKINIT` and `_N2` (64-bit SPARC's loader
        // shows `dl_hwcap_important=0xe0` and these names under qemu).
        machine::SPARCV9 => &[(b"ultra3", 5), (b"v9v", 6), (b"v9v2", 7)],
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
/// platform `x86_64`, which is what a non-Intel CPU has, and the
/// capability `x86_64`) gives repeated paths: the loader tries each of
/// them in its turn (each has its own slot in the list, and its own
/// record of whether the directory exists), so they are kept.
fn subsets(components: &[&[u8]]) -> Vec<Vec<u8>> {
    let n = components.len();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for mask in (1..(1usize << n)).rev() {
        let mut path = Vec::new();
        for i in (0..n).rev().filter(|i| mask & (1 << i) != 0) {
            path.extend_from_slice(components[i]);
            path.push(b'/');
        }
        out.push(path);
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
    /// tls/x86_64, tls, x86_64/x86_64, x86_64, x86_64`, repeats and all
    /// (`LD_DEBUG=libs` shows each repeated file tried twice).
    #[test]
    fn baseline_x86_64_order_is_the_loaders() {
        let l = Legacy::new(&target(machine::X86_64, true, true), b"x86_64", &[]);
        assert_eq!(
            shown(&l),
            [
                "tls/x86_64/x86_64/",
                "tls/x86_64/",
                "tls/x86_64/",
                "tls/",
                "x86_64/x86_64/",
                "x86_64/",
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
        // i386: `sse2` counts when `--hwcaps` names it (an i686 without
        // SSE2 is Debian's baseline); the platform field has i586 and i686.
        let i386 = target(machine::I386, false, true);
        let sse2 = Legacy::new(&i386, b"i686", &[b"sse2".to_vec()]);
        assert!(sse2.accepts(1 << 0 | 1 << 49));
        assert!(!sse2.accepts(1 << 48));
        assert_eq!(shown(&sse2)[0], "tls/i686/sse2/");
        let plain = Legacy::new(&i386, b"i686", &[]);
        assert!(!plain.accepts(1 << 0), "sse2 not named");
        assert!(plain.accepts(1 << 49));
        assert_eq!(shown(&plain)[0], "tls/i686/");
        assert!(
            plain.possible(1 << 0 | 1 << 48),
            "a CPU with SSE2 may take it"
        );
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

    /// The subdirectories some x86-64 CPU tries are found among those
    /// that exist, spelled in the loader's order only: `haswell/tls/` and
    /// `foo/` are no CPU's, and nothing below an absent directory is asked.
    #[test]
    fn possible_subdirectories_are_the_existing_ones_any_cpu_tries() {
        let l = Legacy::new(&target(machine::X86_64, true, true), b"x86_64", &[]);
        let existing = [
            "tls/",
            "tls/haswell/",
            "tls/haswell/avx512_1/",
            "haswell/",
            "haswell/tls/",
            "xeon_phi/",
            "x86_64/",
            "x86_64/x86_64/",
            "foo/",
        ];
        let mut asked: Vec<String> = Vec::new();
        let mut is_dir = |p: &[u8]| {
            let p = String::from_utf8_lossy(p).into_owned();
            let parent = p
                .trim_end_matches('/')
                .rsplit_once('/')
                .map(|(d, _)| format!("{d}/"));
            if let Some(parent) = parent {
                assert!(
                    existing.contains(&parent.as_str()),
                    "asked below absent {parent}"
                );
            }
            asked.push(p.clone());
            existing.contains(&p.as_str())
        };
        let got: Vec<String> = l
            .possible_subdirs(&mut is_dir)
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "haswell/",
                "tls/",
                "tls/haswell/",
                "tls/haswell/avx512_1/",
                "x86_64/",
                "x86_64/x86_64/",
                "xeon_phi/"
            ]
        );
        assert!(!asked.iter().any(|p| p.starts_with("foo")));
        let inactive = Legacy::new(&target(machine::X86_64, true, false), b"x86_64", &[]);
        assert!(inactive.possible_subdirs(&mut |_| true).is_empty());
    }

    /// Each CPU takes the first present subdirectory in its own order: an
    /// Intel CPU with AVX2 `tls/haswell/` (it tries that before
    /// `haswell/`, which then no CPU takes), a Xeon Phi `xeon_phi/`, and
    /// only a haswell CPU with AVX-512 `tls/haswell/avx512_1/`.
    #[test]
    fn each_cpu_takes_its_first_present_subdirectory() {
        let l = Legacy::new(&target(machine::X86_64, true, true), b"x86_64", &[]);
        let present = [
            "tls/haswell/avx512_1/",
            "tls/haswell/",
            "haswell/",
            "xeon_phi/",
            "",
        ];
        let components: std::collections::BTreeSet<Vec<u8>> = present
            .iter()
            .flat_map(|p| p.split('/'))
            .filter(|c| !c.is_empty())
            .map(|c| c.as_bytes().to_vec())
            .collect();
        let picks: std::collections::BTreeSet<String> = l
            .cpu_orders(&components)
            .iter()
            .map(|order| {
                let first = order
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .find(|s| present.contains(&s.as_str()));
                first.expect("every order ends with the directory itself")
            })
            .collect();
        let want: std::collections::BTreeSet<String> =
            ["tls/haswell/avx512_1/", "tls/haswell/", "xeon_phi/", ""]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(picks, want);
        // avx512_1 without haswell is no CPU's.
        assert!(l.cpu_orders(&components).iter().all(|o| {
            let avx = o.iter().any(|s| s.windows(8).any(|w| w == b"avx512_1"));
            !avx || o.iter().any(|s| s.starts_with(b"tls/haswell/"))
        }));
    }

    /// A loader without legacy support (glibc 2.37 and later) tries no
    /// subdirectory and accepts no tagged entry.
    #[test]
    fn inactive_models_do_nothing() {
        let new = Legacy::new(&target(machine::X86_64, true, false), b"haswell", &[]);
        assert!(new.subdirs.is_empty());
        assert!(!new.accepts(TLS_BIT));
        let arm = Legacy::new(&target(machine::AARCH64, true, false), b"aarch64", &[]);
        assert!(arm.subdirs.is_empty());
        let riscv = Legacy::new(&target(machine::RISCV, true, false), b"", &[]);
        assert!(riscv.subdirs.is_empty());
        assert!(!riscv.accepts(TLS_BIT));
    }

    /// glibc 2.36 on mips64el (under qemu: no important capabilities, no
    /// `AT_PLATFORM`): `tls/`, and the platform when the kernel gives one.
    /// Its `ldconfig` tags `tls/` with bit 63 and `octeon/` with bit 2, and
    /// its loader takes an entry only when the bits are none or exactly the
    /// platform's.
    #[test]
    fn mips_has_tls_and_the_platform_and_takes_no_tls_entry() {
        let mips = target(machine::MIPS, true, true);
        let l = Legacy::new(&mips, b"", &[b"neon".to_vec()]);
        assert_eq!(shown(&l), ["tls/"]);
        assert!(!l.accepts(TLS_BIT));
        assert!(!l.accepts(1 << 2), "no platform: a platform entry fails");
        assert_eq!(mips.arch.platform, None, "MIPS kernels give no AT_PLATFORM");
        let octeon = Legacy::new(&mips, b"octeon", &[]);
        assert_eq!(shown(&octeon), ["tls/octeon/", "tls/", "octeon/"]);
        assert!(octeon.accepts(1 << 2));
        assert!(!octeon.accepts(1 << 3), "octeon2 is another platform");
        assert!(!octeon.accepts(TLS_BIT | 1 << 2));
    }

    /// 64-bit SPARC: `ultra3`, `v9v`, `v9v2` count when named, in bit order.
    #[test]
    fn sparc64_capabilities_count_when_named() {
        let sparc = target(machine::SPARCV9, true, true);
        let plain = Legacy::new(&sparc, b"", &[]);
        assert_eq!(shown(&plain), ["tls/"]);
        assert!(!plain.accepts(1 << 6));
        assert!(plain.possible(1 << 6 | TLS_BIT));
        let t2 = Legacy::new(&sparc, b"", &[b"v9v".to_vec(), b"v9v2".to_vec()]);
        assert_eq!(shown(&t2)[0], "tls/v9v2/v9v/");
        assert!(t2.accepts(1 << 6 | 1 << 7));
        assert!(!t2.accepts(1 << 5), "ultra3 not named");
        assert!(is_capability(machine::SPARCV9, b"ultra3"));
    }

    /// Architectures without a model of their own (RISC-V, LoongArch, …):
    /// `tls` and a platform `--platform` names, no capability, and a cache
    /// entry tagged `tls` taken (glibc 2.36 for RISC-V under qemu, as
    /// `foreign::riscv64_glibc_2_36_searches_tls_subdirectories` checks).
    #[test]
    fn other_architectures_have_tls_and_the_named_platform() {
        let riscv = target(machine::RISCV, true, true);
        let l = Legacy::new(&riscv, b"", &[b"atomics".to_vec()]);
        assert_eq!(shown(&l), ["tls/"]);
        assert!(l.accepts(TLS_BIT));
        assert!(!l.accepts(1 << 8), "no capability counts");
        assert_eq!(
            riscv.arch.platform, None,
            "RISC-V kernels give no AT_PLATFORM"
        );
        let named = Legacy::new(&riscv, b"sifive", &[]);
        assert_eq!(shown(&named), ["tls/sifive/", "tls/", "sifive/"]);
        assert!(!l.possible(1 << 8));
        assert!(l.possible(TLS_BIT));
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

    /// glibc 2.36 on armhf (its loader under qemu, `cortex-a15` and
    /// `max`): `vfp` (bit 6) on every hard-float CPU, `neon` (bit 12) when
    /// named, then the platform and `tls`. Its `ldconfig` tags `tls/` with
    /// `HWCAP_ARM_TLS` (bit 15), which is not important: such an entry is
    /// never taken.
    #[test]
    fn arm_hard_float_has_vfp_and_neon_when_named() {
        let mut t = target(machine::ARM, false, true);
        t.ident.e_flags = EF_ARM_ABI_FLOAT_HARD;
        let plain = Legacy::new(&t, b"v7l", &[]);
        assert_eq!(
            shown(&plain),
            [
                "tls/v7l/vfp/",
                "tls/v7l/",
                "tls/vfp/",
                "tls/",
                "v7l/vfp/",
                "v7l/",
                "vfp/"
            ]
        );
        let neon = Legacy::new(&t, b"v7l", &[b"neon".to_vec()]);
        let got = shown(&neon);
        assert_eq!(got.len(), 15);
        assert_eq!(got[0], "tls/v7l/neon/vfp/");
        assert_eq!(got[3], "tls/v7l/");
        assert_eq!(got[4], "tls/neon/vfp/");
        assert_eq!(got[12], "neon/vfp/");
        assert!(neon.accepts(1 << 6 | 1 << 12 | TLS_BIT));
        assert!(
            !neon.accepts(1 << 15),
            "ldconfig's tls bit is not important"
        );
        assert!(!plain.accepts(1 << 12), "neon is not named");
        // Soft-float: VFP only when named.
        let soft = Legacy::new(&target(machine::ARM, false, true), b"v5l", &[]);
        assert_eq!(shown(&soft), ["tls/v5l/", "tls/", "v5l/"]);
        assert!(is_capability(machine::ARM, b"neon"));
    }

    /// glibc 2.36 on ppc64el (its loader under qemu, which gives no
    /// `AT_PLATFORM`): `dfp` (bit 10) and `altivec` (bit 28), which every
    /// little-endian CPU (POWER8 and later) has, then the platform and
    /// `tls`; cache entries carry a platform field from bit 32, `power9`
    /// at bit 46 (what POWER's own `ldconfig` writes).
    #[test]
    fn power_little_endian_has_dfp_and_altivec_and_a_platform_field() {
        let t = target(machine::PPC64, true, true);
        let qemu = Legacy::new(&t, b"", &[]);
        assert_eq!(
            shown(&qemu),
            [
                "tls/altivec/dfp/",
                "tls/altivec/",
                "tls/dfp/",
                "tls/",
                "altivec/dfp/",
                "altivec/",
                "dfp/"
            ]
        );
        assert!(qemu.accepts(TLS_BIT | 1 << 10 | 1 << 28));
        assert!(
            !qemu.accepts(TLS_BIT | 1 << 46),
            "no platform: tagged ones fail"
        );
        let p9 = Legacy::new(&t, b"power9", &[]);
        assert_eq!(shown(&p9)[0], "tls/power9/altivec/dfp/");
        assert!(p9.accepts(TLS_BIT | 1 << 46));
        assert!(!p9.accepts(1 << 47), "power10 is another platform");
        assert!(
            !p9.accepts(1 << 18),
            "power5's capability bit is not important"
        );
        // Every CPU takes `tls`, `dfp` and `altivec`; a platform's bit only
        // that platform's CPUs (a baseline pick tagged with it leaves the
        // others to later entries).
        assert!(p9.universal(TLS_BIT | 1 << 10 | 1 << 28));
        assert!(!p9.universal(TLS_BIT | 1 << 46));
        let x86 = Legacy::new(&target(machine::X86_64, true, true), b"haswell", &[]);
        assert!(x86.universal(TLS_BIT | 1 << 1));
        assert!(!x86.universal(1 << 50), "haswell");
        assert!(!x86.universal(1 << 2), "avx512_1");
        // Big-endian: only what is named.
        let mut be = target(machine::PPC64, true, true);
        be.ident.big_endian = true;
        let named = Legacy::new(&be, b"power8", &[b"altivec".to_vec()]);
        assert_eq!(shown(&named)[0], "tls/power8/altivec/");
        assert!(named.accepts(1 << 45));
    }

    /// Which tagged cache entries some CPU's loader would take: the
    /// variants a baseline run stages.
    #[test]
    fn possible_entries_are_those_some_cpu_takes() {
        let x86 = Legacy::new(&target(machine::X86_64, true, true), b"x86_64", &[]);
        assert!(x86.possible(1 << 50), "haswell");
        assert!(
            x86.possible(TLS_BIT | 1 << 2 | 1 << 51),
            "tls/xeon_phi/avx512_1"
        );
        assert!(!x86.possible(1 << 50 | 1 << 51), "two platforms");
        assert!(!x86.possible(1 << 5), "no such capability");
        let mut t = target(machine::ARM, false, true);
        t.ident.e_flags = EF_ARM_ABI_FLOAT_HARD;
        let arm = Legacy::new(&t, b"v7l", &[]);
        assert!(
            arm.possible(1 << 6 | 1 << 12),
            "vfp/neon, though neon is not modelled"
        );
        assert!(!arm.possible(1 << 15), "ldconfig's tls bit on Arm");
        let mips = Legacy::new(&target(machine::MIPS, true, true), b"", &[]);
        assert!(mips.possible(1 << 2), "octeon");
        assert!(!mips.possible(TLS_BIT));
        let new = Legacy::new(&target(machine::X86_64, true, false), b"x86_64", &[]);
        assert!(!new.possible(1 << 50), "glibc 2.37 and later take none");
    }
}
