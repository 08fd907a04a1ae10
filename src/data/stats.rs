//! The statistics preprocessing fits: mean, population standard deviation, median,
//! quantiles (linear interpolation, as NumPy's default), mode; each over the non-missing
//! (non-NaN) values it is given, `None` when there are none.

/// The non-NaN values, sorted ascending.
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

pub fn mean(values: &[f64]) -> Option<f64> {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for x in values.iter().filter(|x| !x.is_nan()) {
        sum += x;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

/// Mean and population standard deviation (two passes).
pub fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    let m = mean(values)?;
    let (mut ss, mut n) = (0.0f64, 0usize);
    for x in values.iter().filter(|x| !x.is_nan()) {
        ss += (x - m) * (x - m);
        n += 1;
    }
    Some((m, (ss / n as f64).sqrt()))
}

/// The median of sorted values: the middle one, or the mean of the two middle ones.
pub fn median_sorted(s: &[f64]) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let (lo, hi) = median_ranks(s.len());
    Some(median_of(s[lo], s[hi], s.len() % 2 == 1))
}

/// The `q` quantile of sorted values, linearly interpolated between the two nearest ranks
/// (NumPy's `linear` method).
pub fn quantile_sorted(s: &[f64], q: f64) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let (lo, hi, frac) = quantile_ranks(s.len(), q);
    Some(interpolate(s[lo], s[hi], frac))
}

/// Where the `q` quantile of `n > 0` sorted values lies: the ranks (0-based) of the two values
/// it interpolates between, and the weight of the second.
pub fn quantile_ranks(n: usize, q: f64) -> (usize, usize, f64) {
    let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    (lo, hi, pos - lo as f64)
}

pub fn interpolate(lo: f64, hi: f64, frac: f64) -> f64 {
    lo + (hi - lo) * frac
}

/// The ranks (0-based) of the one or two middle values of `n > 0` sorted values.
pub fn median_ranks(n: usize) -> (usize, usize) {
    if n % 2 == 1 {
        (n / 2, n / 2)
    } else {
        (n / 2 - 1, n / 2)
    }
}

/// The median of the values at `median_ranks`.
pub fn median_of(lo: f64, hi: f64, odd: bool) -> f64 {
    if odd { lo } else { (lo + hi) / 2.0 }
}

/// The most frequent value of sorted values; ties go to the smallest.
pub fn mode_sorted(s: &[f64]) -> Option<f64> {
    let mut best: Option<(f64, usize)> = None;
    let mut i = 0;
    while i < s.len() {
        let mut j = i + 1;
        while j < s.len() && s[j] == s[i] {
            j += 1;
        }
        if best.is_none_or(|(_, c)| j - i > c) {
            best = Some((s[i], j - i));
        }
        i = j;
    }
    best.map(|(x, _)| x)
}

/// The nearest value that survives a JSON round trip unchanged (`serde_json`'s default float
/// parser may be one unit in the last place off), so that a preprocessor read back from
/// `preprocess.json` computes bit-identical features. Almost always `x` itself.
pub fn snap(x: f64) -> f64 {
    let mut y = x;
    for _ in 0..8 {
        let Ok(text) = serde_json::to_string(&y) else {
            return y;
        };
        match serde_json::from_str::<f64>(&text) {
            Ok(z) if z.to_bits() == y.to_bits() => return y,
            Ok(z) => y = z,
            Err(_) => return y,
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_linear() {
        let s = sorted(&[4.0, 1.0, f64::NAN, 3.0, 2.0]);
        assert_eq!(s, [1.0, 2.0, 3.0, 4.0]);
        // numpy.quantile([1, 2, 3, 4], [0.25, 0.5, 0.75, 0.01]) = 1.75, 2.5, 3.25, 1.03
        assert_eq!(quantile_sorted(&s, 0.25), Some(1.75));
        assert_eq!(quantile_sorted(&s, 0.5), Some(2.5));
        assert_eq!(quantile_sorted(&s, 0.75), Some(3.25));
        assert!((quantile_sorted(&s, 0.01).unwrap() - 1.03).abs() < 1e-12);
        assert_eq!(median_sorted(&s), Some(2.5));
        assert_eq!(median_sorted(&[1.0, 5.0, 9.0]), Some(5.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }

    #[test]
    fn mean_std_mode() {
        let (m, s) = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!((m, s), (5.0, 2.0));
        assert_eq!(mean(&[f64::NAN]), None);
        assert_eq!(mode_sorted(&sorted(&[3.0, 1.0, 3.0, 1.0, 2.0])), Some(1.0));
        assert_eq!(mode_sorted(&sorted(&[3.0, 3.0, 1.0])), Some(3.0));
    }

    #[test]
    fn snapped_values_round_trip_through_json() {
        for x in [
            0.1,
            1.0 / 3.0,
            43.92192982456141,
            5.459583713926532,
            1e-300,
            12345.678,
        ] {
            let y = snap(x);
            let back: f64 = serde_json::from_str(&serde_json::to_string(&y).unwrap()).unwrap();
            assert_eq!(back.to_bits(), y.to_bits());
            assert!((y - x).abs() <= x.abs() * 1e-15);
        }
    }
}
