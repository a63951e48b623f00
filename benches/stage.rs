//! Staging curl's closure from sysroot `/`: `stage::plan` (every hop,
//! directory and hard link; pure data) and `stage::copy::materialize` (the
//! copy into a fresh directory that does not exist yet, as `--out` into a new
//! path), separately and together with the trace.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use closure::observe::NoopObserver;
use closure::stage::{self, copy};
use criterion::{BatchSize, Criterion, Throughput};

const PROGRAM: &str = "/usr/bin/curl";

fn bench_stage(c: &mut Criterion) {
    if !Path::new(PROGRAM).is_file() {
        eprintln!("stage: skipped: {PROGRAM} is not on this machine");
        return;
    }
    let fs = common::host_fs();
    let g = common::trace(&fs, &[PROGRAM]);
    let opts = stage::PlanOptions::default();
    let plan = stage::plan(&fs, &g, &opts).expect("plan of curl");
    let (files, bytes) = plan.totals();
    eprintln!(
        "stage: {PROGRAM}: {} plan items, {files} files, {:.1} MiB",
        plan.items.len(),
        bytes as f64 / (1024.0 * 1024.0)
    );
    let fresh = || tempfile::tempdir().expect("a temporary directory");
    let write = |plan: &stage::Plan, dir: &tempfile::TempDir| {
        copy::materialize(
            &fs,
            plan,
            &dir.path().join("out"),
            copy::CopyOptions::default(),
            &NoopObserver,
        )
        .expect("materialize")
    };

    let mut group = c.benchmark_group("stage/curl");
    group.bench_function("plan", |b| {
        b.iter(|| black_box(stage::plan(&fs, &g, &opts).expect("plan")))
    });
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("materialize", |b| {
        b.iter_batched(
            fresh,
            |dir| {
                let report = write(&plan, &dir);
                (dir, report)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("trace+plan+materialize", |b| {
        b.iter_batched(
            fresh,
            |dir| {
                let g = common::trace(&fs, &[PROGRAM]);
                let plan = stage::plan(&fs, &g, &opts).expect("plan");
                let report = write(&plan, &dir);
                (dir, report)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    bench_stage(&mut c);
    c.final_summary();
}
