//! Named, counter-based random streams. A stream's key is a hash of the root seed and the
//! stream's name (`split`, `shuffle/epoch-3`, `init/dense_0.w`), so adding a layer never changes
//! the split; a value is `mix(key, counter)`, so any back end can compute element `i` of a
//! random tensor independently, and resuming needs only the counter.

/// The SplitMix64 finaliser: a bijective, well-mixing 64-bit hash.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The value of stream `key` at position `counter`.
#[inline]
pub fn at(key: u64, counter: u64) -> u64 {
    mix(key.wrapping_add(counter.wrapping_add(1).wrapping_mul(GOLDEN)))
}

/// A uniform float in [0, 1) from 64 random bits (24 bits of precision, as f32 holds).
#[inline]
pub fn unit_f32(bits: u64) -> f32 {
    (bits >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// A uniform f64 in [0, 1) with 53 bits of precision.
#[inline]
pub fn unit_f64(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The key of the stream `name` under `seed`.
pub fn key(seed: u64, name: &str) -> u64 {
    // FNV-1a over the name, then mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(mix(seed ^ GOLDEN).wrapping_add(h))
}

/// A sequential reader over one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    pub key: u64,
    pub counter: u64,
}

impl Rng {
    pub fn new(seed: u64, name: &str) -> Rng {
        Rng {
            key: key(seed, name),
            counter: 0,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let v = at(self.key, self.counter);
        self.counter += 1;
        v
    }

    pub fn next_f64(&mut self) -> f64 {
        unit_f64(self.next_u64())
    }

    /// Uniform in `0..n` without modulo bias (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// A standard normal deviate (Box-Muller; one value per call, deterministic).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_named_and_reproducible() {
        let mut a = Rng::new(7, "split");
        let mut b = Rng::new(7, "split");
        let mut c = Rng::new(7, "shuffle/epoch-0");
        let xa: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        assert_ne!(key(7, "split"), key(8, "split"));
        // Counter-based: element i does not depend on reading 0..i first.
        assert_eq!(at(a.key, 3), xa[3]);
    }

    #[test]
    fn uniform_and_normal_have_the_right_moments() {
        let mut r = Rng::new(1, "moments");
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.next_f64()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "{mean}");
        let zs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let m = zs.iter().sum::<f64>() / n as f64;
        let v = zs.iter().map(|z| (z - m) * (z - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.02, "{m} {v}");
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[r.below(3) as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (9_500..10_500).contains(c)),
            "{counts:?}"
        );
    }
}
