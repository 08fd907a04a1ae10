//! The statistics of drift, as plain functions of counts and sorted values: histograms over
//! edges fixed at train time, the population stability index, the two-sample
//! Kolmogorov–Smirnov statistic and its p-value, and Pearson's chi-square test with its
//! p-value (the regularized incomplete gamma function).

use crate::rundir::NumberStats;

/// Bins of a number column's histogram (decile edges).
pub const BINS: usize = 10;
/// Equal bins of an image channel's pixel histogram over 0..=255.
pub const IMAGE_BINS: usize = 16;
/// Order statistics kept as the KS reference.
pub const QUANTILES: usize = 1000;

/// The order statistic at fraction `p` of sorted `v` (nearest rank, no interpolation).
fn at(v: &[f64], p: f64) -> f64 {
    let i = (p * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Sorted copy of the finite values.
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The statistics of present values: decile edges, counts, moments, quantiles.
pub fn number_stats(values: &[f64]) -> NumberStats {
    let v = sorted(values);
    if v.is_empty() {
        return NumberStats {
            min: 0.0,
            max: 0.0,
            mean: 0.0,
            std: 0.0,
            edges: Vec::new(),
            counts: vec![0],
            quantiles: Vec::new(),
        };
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let mut edges: Vec<f64> = (1..BINS).map(|i| at(&v, i as f64 / BINS as f64)).collect();
    edges.dedup();
    // The top edge equal to the maximum would leave the last bin empty by construction.
    if edges.last() == v.last() {
        edges.pop();
    }
    let counts = histogram(&edges, &v);
    let quantiles = if v.len() <= QUANTILES {
        v.clone()
    } else {
        (0..QUANTILES)
            .map(|i| at(&v, i as f64 / (QUANTILES - 1) as f64))
            .collect()
    };
    NumberStats {
        min: v[0],
        max: v[v.len() - 1],
        mean,
        std,
        edges,
        counts,
        quantiles,
    }
}

/// The bin of `x`: bin `i` holds `edges[i-1] < x <= edges[i]`.
pub fn bin(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|e| *e < x)
}

/// Counts of the finite values over the bins of `edges`.
pub fn histogram(edges: &[f64], values: &[f64]) -> Vec<u64> {
    let mut c = vec![0u64; edges.len() + 1];
    for x in values.iter().filter(|x| x.is_finite()) {
        c[bin(edges, *x)] += 1;
    }
    c
}

/// Shares of counts with half a count added to every bin (so an empty bin has a finite
/// logarithm and a few rows do not make a bin infinitely surprising).
fn shares(c: &[u64]) -> Vec<f64> {
    let total = c.iter().sum::<u64>() as f64 + 0.5 * c.len() as f64;
    c.iter().map(|x| (*x as f64 + 0.5) / total).collect()
}

/// Population stability index of `new` against `reference` (same bins):
/// `sum (new - ref) * ln(new / ref)` over bin shares. 0 when the shares agree; above 0.2 is
/// the usual mark of a shifted distribution.
pub fn psi(reference: &[u64], new: &[u64]) -> f64 {
    if new.iter().sum::<u64>() == 0 || reference.iter().sum::<u64>() == 0 {
        return 0.0;
    }
    let (r, n) = (shares(reference), shares(new));
    r.iter()
        .zip(&n)
        .map(|(r, n)| (n - r) * (n / r).ln())
        .sum::<f64>()
        .max(0.0)
}

/// The two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical
/// distribution functions of `reference` and `new` (both sorted).
pub fn ks(reference: &[f64], new: &[f64]) -> f64 {
    if reference.is_empty() || new.is_empty() {
        return 0.0;
    }
    let cdf = |v: &[f64], x: f64| v.partition_point(|y| *y <= x) as f64 / v.len() as f64;
    reference
        .iter()
        .chain(new)
        .map(|x| (cdf(reference, *x) - cdf(new, *x)).abs())
        .fold(0.0, f64::max)
}

/// The asymptotic p-value of a KS statistic `d` between samples of `n1` and `n2` values.
pub fn ks_p(d: f64, n1: usize, n2: usize) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let en = ((n1 * n2) as f64 / (n1 + n2) as f64).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = sign * (-2.0 * (k * k) as f64 * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Pearson's chi-square of `new` counts against the shares of `reference` (half a count
/// added to each reference bin): the statistic, its degrees of freedom and p-value.
pub fn chi_square(reference: &[u64], new: &[u64]) -> (f64, usize, f64) {
    let n = new.iter().sum::<u64>() as f64;
    if n == 0.0 || reference.len() < 2 {
        return (0.0, reference.len().saturating_sub(1), 1.0);
    }
    let stat: f64 = shares(reference)
        .iter()
        .zip(new)
        .map(|(r, o)| {
            let e = r * n;
            (*o as f64 - e).powi(2) / e
        })
        .sum();
    let df = reference.len() - 1;
    (stat, df, gamma_q(df as f64 / 2.0, stat / 2.0))
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a): the chi-square
/// survival function at `2x` with `2a` degrees of freedom.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        // Series of P(a, x).
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * front).clamp(0.0, 1.0)
    } else {
        // Continued fraction of Q(a, x) (modified Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (front * h).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi_square_and_gamma_match_published_tables() {
        // Critical values of the chi-square distribution at 5% and 1% (any statistics table).
        for (stat, df, p) in [
            (3.841, 1.0, 0.05),
            (5.991, 2.0, 0.05),
            (11.070, 5.0, 0.05),
            (6.635, 1.0, 0.01),
            (23.209, 10.0, 0.01),
        ] {
            let q = gamma_q(df / 2.0, stat / 2.0);
            assert!((q - p).abs() < 2e-4, "chi2({stat}, {df}) = {q}, want {p}");
        }
        // Γ(5) = 24, Γ(0.5) = sqrt(pi).
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn psi_and_ks_by_hand() {
        assert_eq!(psi(&[10, 20, 30], &[10, 20, 30]), 0.0);
        // Shares (with half counts) 10.5/61.5 ... against 30.5/61.5 ...: by hand.
        let r = [10u64, 20, 30];
        let n = [30u64, 20, 10];
        let (a, b): ([f64; 3], [f64; 3]) = ([10.5, 20.5, 30.5], [30.5, 20.5, 10.5]);
        let want: f64 = (0..3)
            .map(|i| (b[i] / 61.5 - a[i] / 61.5) * (b[i] / a[i]).ln())
            .sum();
        assert!((psi(&r, &n) - want).abs() < 1e-12);
        // Shifted by half the range: the CDFs differ by at most 0.5.
        let x: Vec<f64> = (0..100).map(f64::from).collect();
        let y: Vec<f64> = (50..150).map(f64::from).collect();
        assert!((ks(&x, &y) - 0.5).abs() < 1e-12);
        assert_eq!(ks(&x, &x), 0.0);
        // Two samples of 100 at D = 0.5: p far below 1e-9; at D = 0.1, p about 0.7.
        assert!(ks_p(0.5, 100, 100) < 1e-9);
        assert!((ks_p(0.1, 100, 100) - 0.7).abs() < 0.03);
    }

    #[test]
    fn decile_bins_hold_a_tenth_each() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        let s = number_stats(&v);
        assert_eq!(s.edges.len(), 9);
        assert_eq!(s.counts.iter().sum::<u64>(), 1000);
        assert!(
            s.counts.iter().all(|c| (99..=101).contains(c)),
            "{:?}",
            s.counts
        );
        assert_eq!(s.quantiles.len(), 1000);
        assert_eq!(bin(&s.edges, 0.0), 0);
        assert_eq!(bin(&s.edges, 2000.0), 9);
        // Few distinct values: edges collapse, nothing is lost.
        let s = number_stats(&[1.0, 1.0, 1.0, 2.0]);
        assert_eq!(s.counts.iter().sum::<u64>(), 4);
    }
}
