//! Isolation Forest fit and score timings at 1k, 100k and 1M hosts.
//!
//! `cargo bench --bench forest` prints a table (median of 5 runs each). The
//! data are 19 random features per host (the full feature set's width),
//! drawn from a seeded generator, so the trees have their real depth.

mod common;
use common::time;

use latmove::model::forest::IsolationForestParams;
use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

fn data(n: usize, d: usize) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    Array2::from_shape_fn((n, d), |_| {
        let u: f64 = rng.gen_range(0.0..1.0);
        (1.0 - u).ln().abs()
    })
}

fn main() {
    let threads = latmove::util::threads::default_threads();
    println!("| hosts | grow 100 trees (psi = 256) | score every host | threads |");
    println!("|---|---|---|---|");
    for n in [1_000usize, 100_000, 1_000_000] {
        let x = data(n, 19);
        // Trees only: `auto` skips scoring the training rows for the
        // contamination threshold (that costs one "score every host").
        let params = IsolationForestParams {
            contamination: latmove::model::forest::Contamination::Auto,
            ..Default::default()
        };
        let fit = time(5, || params.fit_threads(x.view(), threads).unwrap());
        let forest = params.fit_threads(x.view(), threads).unwrap();
        let score = time(5, || forest.score_threads(x.view(), threads).unwrap());
        println!(
            "| {n} | {:.1} ms | {:.1} ms | {threads} |",
            fit.as_secs_f64() * 1e3,
            score.as_secs_f64() * 1e3
        );
    }
}
