//! Engine cost per transaction with the full CRS v4.28.0 at PL1 (no nginx), on the workload
//! of `workload.rs`: a benign and an attack GET, phases 1-2; the benign GET with its
//! response, phases 1-4.
//!
//! Run: `cargo bench -p honeytrap-seclang --bench crs` (needs ../shared/crs).

use criterion::{criterion_group, criterion_main, Criterion};

mod workload;
use workload::{load, one, with_response, ATTACK, BENIGN};

fn bench(c: &mut Criterion) {
    let Some(rs) = load() else { return };
    let (benign, attack) = (BENIGN, ATTACK);
    assert!(!one(&rs, benign), "benign request blocked");
    assert!(one(&rs, attack), "attack request not blocked");
    assert!(!with_response(&rs, benign), "benign response blocked");
    c.bench_function("crs4_pl1_benign_get", |b| b.iter(|| one(&rs, benign)));
    c.bench_function("crs4_pl1_attack_get", |b| b.iter(|| one(&rs, attack)));
    c.bench_function("crs4_pl1_benign_get_and_html_response", |b| {
        b.iter(|| with_response(&rs, benign))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
