//! A seeded generator for planted data (no dependency): splitmix64, with the few distributions
//! the planted-data tests draw from.

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Poisson by inversion (for rates below a few hundred).
    pub fn poisson(&mut self, rate: f64) -> u32 {
        let (mut k, mut p, mut sum) = (0u32, (-rate).exp(), 0.0);
        let u = self.uniform(0.0, 1.0);
        loop {
            sum += p;
            if u <= sum || k > 1000 {
                return k;
            }
            k += 1;
            p *= rate / f64::from(k);
        }
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform(f64::MIN_POSITIVE, 1.0);
        let v = self.uniform(0.0, 1.0);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Gamma of shape `shape` ≥ 1 and mean 1 (Marsaglia–Tsang).
    pub fn gamma_mean_one(&mut self, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            let u = self.uniform(f64::MIN_POSITIVE, 1.0);
            if v > 0.0 && u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v / shape;
            }
        }
    }
}
