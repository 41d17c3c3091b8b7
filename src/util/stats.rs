//! Order statistics on plain slices of floats.

/// The median as [`quantile`]`(values, 0.5)` gives it, bit for bit, by
/// selection instead of a full sort (reorders `values`).
pub fn median_in_place(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let pos = 0.5 * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let (_, a, rest) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let a = *a;
    let b = if pos.ceil() as usize == lo {
        a
    } else {
        rest.iter()
            .copied()
            .min_by(f64::total_cmp)
            .expect("an even count has a value above the lower middle")
    };
    // The same arithmetic as `quantile`, even when b == a (-0 + 0 is 0).
    a + (b - a) * (pos - lo as f64)
}

/// `q`-quantile with linear interpolation (numpy's default).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}
