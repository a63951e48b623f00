//! `graph::build` (every search, parse and version check of a trace) with a
//! fresh resolver per iteration, as one command-line run: over curl, git,
//! python3 and their union in sysroot `/`, and over synthetic roots of 100
//! and 1000 libraries, whose times should grow linearly.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};

fn bench_host(c: &mut Criterion) {
    let fs = common::host_fs();
    let programs = common::host_programs("resolve");
    if programs.is_empty() {
        eprintln!("resolve: skipped: none of {:?} here", common::PROGRAMS);
        return;
    }
    let mut group = c.benchmark_group("resolve/host");
    for p in &programs {
        let objects = common::trace(&fs, &[p]).objects().len();
        let name = p.rsplit('/').next().unwrap_or(p);
        group.throughput(Throughput::Elements(objects as u64));
        group.bench_function(name, |b| b.iter(|| black_box(common::trace(&fs, &[p]))));
    }
    if programs.len() > 1 {
        let objects = common::trace(&fs, &programs).objects().len();
        group.throughput(Throughput::Elements(objects as u64));
        group.bench_function("union", |b| {
            b.iter(|| black_box(common::trace(&fs, &programs)))
        });
    }
    group.finish();
}

fn bench_synthetic(c: &mut Criterion) {
    let mut group = c.benchmark_group("resolve/synthetic");
    for n in [100usize, 1000] {
        let dir = common::synthetic_root(n);
        let fs = closure::rootfs::RootFs::new(dir.path()).expect("temporary root");
        let g = common::trace(&fs, &["/usr/bin/app"]);
        if !g.is_clean() || g.objects().len() != n + 3 {
            eprintln!(
                "resolve: synthetic root of {n}: expected {} clean objects, got {} (clean: {})",
                n + 3,
                g.objects().len(),
                g.is_clean()
            );
        }
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("libraries", n), &n, |b, _| {
            b.iter(|| black_box(common::trace(&fs, &["/usr/bin/app"])))
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    bench_host(&mut c);
    bench_synthetic(&mut c);
    c.final_summary();
}
