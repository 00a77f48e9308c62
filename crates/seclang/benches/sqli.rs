//! `@detectSQLi` on values browsers send: libinjection (`libinjectionrs`'s `SqliState::detect`,
//! what the operator asked before) against the engine's own first pass (`sqli_fingerprint`),
//! which answers "not SQLi" on these without the library.
//!
//! Run: `cargo bench -p honeytrap-seclang --bench sqli`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use honeytrap_seclang::operators::sqli_cleared;
use libinjectionrs::{SqliFlags, SqliState};

const VALUES: [(&str, &str); 3] = [
    (
        "user_agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    ("search_phrase", "rust programming"),
    (
        "referer",
        "https://www.example.com/products/list.php?category=books&page=2",
    ),
];

fn bench(c: &mut Criterion) {
    for (name, value) in VALUES {
        let value = value.as_bytes();
        assert!(!libinjectionrs::detect_sqli(value).is_injection());
        assert!(sqli_cleared(value), "{name} not cleared");
        c.bench_function(&format!("libinjection_{name}"), |b| {
            b.iter(|| SqliState::new(black_box(value), SqliFlags::FLAG_NONE).detect())
        });
        c.bench_function(&format!("first_pass_{name}"), |b| {
            b.iter(|| sqli_cleared(black_box(value)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
