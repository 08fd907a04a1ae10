//! Parameter initialisation: each state's initial values from its `Init` and its own random
//! stream `init/<state name>`, so adding a layer changes no other parameter's start.
//!
//! Fans follow PyTorch: a `[n]` vector has fan-in = fan-out = n; a matrix `[in, out]` (mlx's
//! dense layout) has fan-in `in`, fan-out `out`; a tensor `[out, in, k...]` (convolution
//! weights) has fan-in `in·∏k` and fan-out `out·∏k`. `fan_in:`/`fan_out:` override them.

use crate::check::hir::{Fan, Init};
use crate::rng::Rng;

fn fans(shape: &[usize], fan: &Fan) -> (f64, f64) {
    let (fi, fo) = match shape.len() {
        0 => (1, 1),
        1 => (shape[0], shape[0]),
        2 => (shape[0], shape[1]),
        _ => {
            let rf: usize = shape[2..].iter().product();
            (shape[1] * rf, shape[0] * rf)
        }
    };
    (
        fan.fan_in.map_or(fi as f64, |v| v as f64).max(1.0),
        fan.fan_out.map_or(fo as f64, |v| v as f64).max(1.0),
    )
}

/// The initial values of a state of `shape`.
pub fn values(init: &Init, shape: &[usize], seed: u64, name: &str) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let mut rng = Rng::new(seed, &format!("init/{name}"));
    let uniform = |rng: &mut Rng, a: f64| -> Vec<f32> {
        (0..n)
            .map(|_| ((2.0 * rng.next_f64() - 1.0) * a) as f32)
            .collect()
    };
    let normal = |rng: &mut Rng, mean: f64, std: f64| -> Vec<f32> {
        (0..n).map(|_| (mean + std * rng.normal()) as f32).collect()
    };
    match init {
        Init::Zeros => vec![0.0; n],
        Init::Ones => vec![1.0; n],
        Init::Constant(v) => vec![*v as f32; n],
        Init::Uniform { lo, hi } => (0..n)
            .map(|_| (lo + (hi - lo) * rng.next_f64()) as f32)
            .collect(),
        Init::Normal { mean, std } => normal(&mut rng, *mean, *std),
        Init::GlorotUniform { fan } => {
            let (fi, fo) = fans(shape, fan);
            uniform(&mut rng, (6.0 / (fi + fo)).sqrt())
        }
        Init::GlorotNormal { fan } => {
            let (fi, fo) = fans(shape, fan);
            normal(&mut rng, 0.0, (2.0 / (fi + fo)).sqrt())
        }
        Init::HeUniform { fan } => {
            let (fi, _) = fans(shape, fan);
            uniform(&mut rng, (6.0 / fi).sqrt())
        }
        Init::HeNormal { fan } => {
            let (fi, _) = fans(shape, fan);
            normal(&mut rng, 0.0, (2.0 / fi).sqrt())
        }
        Init::LecunUniform { fan } => {
            let (fi, _) = fans(shape, fan);
            uniform(&mut rng, 1.0 / fi.sqrt())
        }
        Init::Orthogonal { gain } => orthogonal(shape, *gain, &mut rng),
    }
}

/// A (semi-)orthogonal matrix: the shape flattened to `[rows, cols]`, orthonormal rows or
/// columns (whichever are fewer), from Gram-Schmidt on a Gaussian matrix, times `gain`.
fn orthogonal(shape: &[usize], gain: f64, rng: &mut Rng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    if shape.len() < 2 || n == 0 {
        return (0..n).map(|_| (gain * rng.normal()) as f32).collect();
    }
    let rows = shape[0];
    let cols = n / rows;
    // Orthonormalise `k` vectors of length `len`.
    let (k, len, transpose) = if rows <= cols {
        (rows, cols, false)
    } else {
        (cols, rows, true)
    };
    let mut vs: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..len).map(|_| rng.normal()).collect())
        .collect();
    for i in 0..k {
        for j in 0..i {
            let dot: f64 = vs[i].iter().zip(&vs[j]).map(|(a, b)| a * b).sum();
            let vj = vs[j].clone();
            for (a, b) in vs[i].iter_mut().zip(&vj) {
                *a -= dot * b;
            }
        }
        let norm = vs[i].iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
        for a in &mut vs[i] {
            *a /= norm;
        }
    }
    let mut out = vec![0.0f32; n];
    for r in 0..rows {
        for c in 0..cols {
            let v = if transpose { vs[c][r] } else { vs[r][c] };
            out[r * cols + c] = (gain * v) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().map(|x| *x as f64).sum::<f64>() / n;
        let var = v.iter().map(|x| (*x as f64 - m).powi(2)).sum::<f64>() / n;
        (m, var.sqrt())
    }

    #[test]
    fn initialisers_have_the_documented_spread() {
        let fan = Fan::default();
        // Glorot uniform on [300, 200]: bound sqrt(6/500), std bound/sqrt(3).
        let v = values(&Init::GlorotUniform { fan }, &[300, 200], 1, "w");
        let bound = (6.0f64 / 500.0).sqrt();
        assert!(v.iter().all(|x| (x.abs() as f64) <= bound));
        let (m, s) = stats(&v);
        assert!(
            m.abs() < 0.005 && (s - bound / 3f64.sqrt()).abs() < 0.003,
            "{m} {s}"
        );
        // He normal on a conv weight [16, 6, 5, 5]: fan-in 150, std sqrt(2/150).
        let v = values(&Init::HeNormal { fan }, &[16, 6, 5, 5], 1, "c");
        let (_, s) = stats(&v);
        assert!((s - (2.0f64 / 150.0).sqrt()).abs() < 0.01, "{s}");
        // PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        let v = values(&Init::LecunUniform { fan }, &[100, 10], 1, "l");
        assert!(v.iter().all(|x| x.abs() <= 0.1));
        let v = values(
            &Init::Normal {
                mean: 2.0,
                std: 0.5,
            },
            &[10000],
            3,
            "n",
        );
        let (m, s) = stats(&v);
        assert!((m - 2.0).abs() < 0.02 && (s - 0.5).abs() < 0.02);
        assert_eq!(values(&Init::Constant(0.25), &[3], 0, "k"), vec![0.25; 3]);
    }

    #[test]
    fn orthogonal_matrices_are_orthonormal() {
        for shape in [[8usize, 8], [4, 12], [12, 4]] {
            let v = values(&Init::Orthogonal { gain: 1.0 }, &shape, 5, "o");
            let (r, c) = (shape[0], shape[1]);
            // The smaller side is orthonormal.
            let (k, len) = if r <= c { (r, c) } else { (c, r) };
            for i in 0..k {
                for j in 0..k {
                    let dot: f64 = (0..len)
                        .map(|t| {
                            let (a, b) = if r <= c {
                                (v[i * c + t], v[j * c + t])
                            } else {
                                (v[t * c + i], v[t * c + j])
                            };
                            a as f64 * b as f64
                        })
                        .sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "{shape:?} {i} {j} {dot}");
                }
            }
        }
    }

    #[test]
    fn streams_are_per_parameter() {
        let fan = Fan::default();
        let a = values(&Init::GlorotUniform { fan }, &[4, 4], 7, "dense_0.w");
        let b = values(&Init::GlorotUniform { fan }, &[4, 4], 7, "dense_1.w");
        let a2 = values(&Init::GlorotUniform { fan }, &[4, 4], 7, "dense_0.w");
        assert_eq!(a, a2);
        assert_ne!(a, b);
    }
}
