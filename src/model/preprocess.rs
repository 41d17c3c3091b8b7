//! The preprocessing stage: the training entities' medians and robust
//! spreads (for explanations and the shrinkage), the standard scaler, and
//! the shrinkage of means per flow toward the benign median.
//!
//! [`Preprocessing`] holds the parameters; [`Preprocessing::fit_transform`]
//! fits it on the training rows and returns the fitted [`Preprocessor`]
//! with the whole table transformed; [`Preprocessor::transform`] applies a
//! fitted one (a saved model's) to a new table.

use anyhow::{Context, Result};
use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_preprocessing::linear_scaling::LinearScaler;
use ndarray::Array2;

use crate::profile::features::FeatureTable;
use crate::util::stats::median_in_place;
use crate::util::threads::spawn_or_run;

/// The default `--prior-flows`: a mean per flow counts half when it rests
/// on this many flows.
pub const DEFAULT_MEAN_PRIOR: f64 = 100.0;

/// Preprocessing parameters, before fitting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// Flows of prior weight for the means per flow (`--prior-flows`, see
    /// [`FeatureTable::shrunk_means`]); 0 scores them raw.
    pub mean_prior: f64,
}

impl Default for Preprocessing {
    fn default() -> Self {
        Preprocessing {
            mean_prior: DEFAULT_MEAN_PRIOR,
        }
    }
}

/// A fitted preprocessing: everything needed to turn a feature table into
/// the values the detector sees, and to explain a value in robust units.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessor {
    /// The scaler's means, per feature.
    pub offsets: Vec<f64>,
    /// The scaler's 1 / standard deviation (1 for a constant column).
    pub scales: Vec<f64>,
    /// The training entities' medians, per feature.
    pub medians: Vec<f64>,
    /// Their robust spreads (the MAD scaled to sigma, or a fallback for constant-heavy columns).
    pub spreads: Vec<f64>,
    /// The prior weight (flows) the means per flow are shrunk with.
    pub mean_prior: f64,
}

impl Preprocessing {
    /// Fits on the rows `rows` of `table` and returns the fitted stage with
    /// every row of the table transformed. The scaler is fitted on the raw
    /// values (the forest does not depend on the scaling) on its own
    /// thread, the medians split by column over two more; the means are
    /// shrunk as soon as the medians are in, while the scaler may still be
    /// fitting.
    pub fn fit_transform(
        &self,
        table: &FeatureTable,
        rows: &[usize],
    ) -> Result<(Preprocessor, Array2<f64>)> {
        let (fitted, mut x) = std::thread::scope(|s| -> Result<_> {
            let scaler = spawn_or_run(s, || {
                LinearScaler::standard()
                    .fit(&DatasetBase::from(gather_rows(&table.values, rows)))
                    .context("fitting the standard scaler on the training hosts")
            });
            let d = table.values.ncols();
            let robust: Vec<_> = [0..d / 2, d / 2..d]
                .into_iter()
                .map(|cols| spawn_or_run(s, move || robust_center(&table.values, rows, cols)))
                .collect();
            let (mut medians, mut spreads) = (Vec::new(), Vec::new());
            for part in robust {
                let (m, sp) = part.join();
                medians.extend(m);
                spreads.extend(sp);
            }
            let x = table.shrunk_means(&medians, self.mean_prior);
            let scaler = scaler.join()?;
            let fitted = Preprocessor {
                offsets: scaler.offsets().to_vec(),
                scales: scaler.scales().to_vec(),
                medians,
                spreads,
                mean_prior: self.mean_prior,
            };
            Ok((fitted, x))
        })?;
        fitted.standardize(&mut x);
        Ok((fitted, x))
    }
}

impl Preprocessor {
    /// Every row of `table` as the detector sees it: means per flow shrunk,
    /// then scaled.
    pub fn transform(&self, table: &FeatureTable) -> Array2<f64> {
        let mut x = table.shrunk_means(&self.medians, self.mean_prior);
        self.standardize(&mut x);
        x
    }

    /// Standard scaling with the fitted offsets and scales: `(x - offset) *
    /// scale`, the formula of linfa-preprocessing's `LinearScaler::standard`,
    /// applied here so a saved model scales exactly as the run that fitted
    /// it; in place.
    fn standardize(&self, x: &mut Array2<f64>) {
        for mut row in x.rows_mut() {
            for (v, (o, s)) in row.iter_mut().zip(self.offsets.iter().zip(&self.scales)) {
                *v = (*v - o) * s;
            }
        }
    }

    /// Each raw value's signed distance from the training median in robust
    /// units.
    pub fn robust_z(&self, values: &[f64]) -> Vec<f64> {
        values
            .iter()
            .zip(self.medians.iter().zip(&self.spreads))
            .map(|(v, (median, spread))| (v - median) / spread)
            .collect()
    }
}

/// Per column, over the rows `rows`: median and a robust spread: the MAD
/// scaled by 1.4826 to estimate sigma, or, when over half the values are
/// equal (MAD = 0), the mean absolute deviation from the median scaled by
/// 1.2533, or 1 when the column is constant.
fn robust_center(
    x: &Array2<f64>,
    rows: &[usize],
    columns: std::ops::Range<usize>,
) -> (Vec<f64>, Vec<f64>) {
    // The chosen columns of the rows, column by column in row order, read
    // row by row (one pass over the matrix instead of a strided one per
    // column).
    let n = rows.len();
    let width = columns.len();
    let mut by_column = vec![0.0; width * n];
    for (k, &r) in rows.iter().enumerate() {
        let row = x.row(r);
        for (c, j) in columns.clone().enumerate() {
            by_column[c * n + k] = row[j];
        }
    }
    let mut med = Vec::with_capacity(width);
    let mut spread = Vec::with_capacity(width);
    let mut scratch = Vec::with_capacity(n);
    for c in 0..width {
        let column = &by_column[c * n..(c + 1) * n];
        scratch.clear();
        scratch.extend_from_slice(column);
        let m = median_in_place(&mut scratch);
        scratch.clear();
        scratch.extend(column.iter().map(|v| (v - m).abs()));
        let mean_dev = 1.2533 * scratch.iter().sum::<f64>() / n.max(1) as f64;
        let mad = 1.4826 * median_in_place(&mut scratch);
        med.push(m);
        spread.push(if mad > 0.0 {
            mad
        } else if mean_dev > 0.0 {
            mean_dev
        } else {
            1.0
        });
    }
    (med, spread)
}

/// The rows `rows` of `x`, in that order (`x.select(Axis(0), rows)`, one
/// row copy each).
fn gather_rows(x: &Array2<f64>, rows: &[usize]) -> Array2<f64> {
    let mut values = Vec::with_capacity(rows.len() * x.ncols());
    for &r in rows {
        let row = x.row(r);
        // A contiguous row is one copy; ndarray's iterator goes value by
        // value.
        match row.as_slice() {
            Some(row) => values.extend_from_slice(row),
            None => values.extend(row.iter()),
        }
    }
    Array2::from_shape_vec((rows.len(), x.ncols()), values).expect("rows x columns values")
}
