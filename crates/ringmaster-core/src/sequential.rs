//! Anytime-valid confidence sequences: intervals that may be looked at after
//! every report and still cover the truth with probability 1 − α at every
//! look at once. A fixed-level interval checked every round does not: its
//! error adds up over the looks.
//!
//! Both sequences are Robbins' method of mixtures. For a prior π on the
//! parameter θ, M(θ) = ∫ L(θ') dπ(θ') / L(θ) is a nonnegative martingale
//! under θ, so by Ville's inequality P(∃n: M(θ) ≥ 1/α) ≤ α. The sequence
//! is {θ : M(θ) < 1/α}; M is log-convex in θ, so the set is an interval and
//! its ends are found by bisection either side of the estimate.
//!
//! - Rates (k events in n devices): Beta(a, b) prior, so
//!   M(p) = B(a+k, b+n−k) / B(a, b) / (p^k (1−p)^(n−k)).
//! - Counts over an exposure (k tickets in t units of 1,000 device-days):
//!   Gamma(shape s, rate r) prior, so
//!   M(λ) = r^s Γ(s+k) / (Γ(s) (r+t)^(s+k)) / (λ^k e^(−λt)).

/// The prior of the rate sequence: Beta(1, 1), uniform, so no rate is
/// favoured; any a, b > 0 keeps the coverage.
pub const RATE_PRIOR: (f64, f64) = (1.0, 1.0);

/// The prior of the count sequence in tickets per 1,000 device-days:
/// Gamma(shape 1, rate 0.2), an exponential with mean 5, about a quiet
/// fleet's ticket rate.
pub const COUNT_PRIOR: (f64, f64) = (1.0, 0.2);

/// Bisection steps: 60 halvings of [0, 1] reach below 1e-17.
const STEPS: u32 = 60;

fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// The smallest x in [lo, hi] with `inside(x)`, where `inside` holds on a
/// suffix of the range (true at `hi`).
fn first_inside(mut lo: f64, mut hi: f64, inside: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..STEPS {
        let mid = 0.5 * (lo + hi);
        if inside(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// The largest x in [lo, hi] with `inside(x)`, where `inside` holds on a
/// prefix of the range (true at `lo`).
fn last_inside(mut lo: f64, mut hi: f64, inside: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..STEPS {
        let mid = 0.5 * (lo + hi);
        if inside(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The confidence sequence of a rate after `k` events in `n` trials, at
/// level 1 − `alpha`, with prior Beta(`prior.0`, `prior.1`).
pub fn rate_cs(k: u64, n: u64, alpha: f64, prior: (f64, f64)) -> (f64, f64) {
    let k = k.min(n);
    if n == 0 {
        return (0.0, 1.0);
    }
    let (a, b) = prior;
    let (kf, mf) = (k as f64, (n - k) as f64);
    let mixture = ln_beta(a + kf, b + mf) - ln_beta(a, b);
    let bar = (1.0 / alpha).ln();
    // ln M(p) < ln(1/α); written with 0·ln 0 = 0 so the ends 0 and 1 are judged too.
    let inside = |p: f64| {
        let lk = if k == 0 { 0.0 } else { kf * p.ln() };
        let lm = if k == n { 0.0 } else { mf * (1.0 - p).ln() };
        mixture - lk - lm < bar
    };
    let estimate = kf / n as f64;
    let lo = if inside(0.0) {
        0.0
    } else {
        first_inside(0.0, estimate, inside)
    };
    let hi = if inside(1.0) {
        1.0
    } else {
        last_inside(estimate, 1.0, inside)
    };
    (lo, hi)
}

/// The confidence sequence of a Poisson rate after `k` events over
/// `exposure` units, at level 1 − `alpha`, with prior Gamma(shape
/// `prior.0`, rate `prior.1`) in events per unit.
pub fn count_cs(k: u64, exposure: f64, alpha: f64, prior: (f64, f64)) -> (f64, f64) {
    if exposure <= 0.0 {
        return (0.0, f64::INFINITY);
    }
    let (s, r) = prior;
    let kf = k as f64;
    let mixture = s * r.ln() + ln_gamma(s + kf) - ln_gamma(s) - (s + kf) * (r + exposure).ln();
    let bar = (1.0 / alpha).ln();
    let inside = |l: f64| {
        let lk = if k == 0 { 0.0 } else { kf * l.ln() };
        mixture - lk + l * exposure < bar
    };
    let estimate = kf / exposure;
    let lo = if inside(0.0) {
        0.0
    } else {
        first_inside(0.0, estimate, inside)
    };
    // Double past the estimate until outside, then bisect.
    let mut top = estimate.max(1.0 / exposure) * 2.0;
    while inside(top) {
        top *= 2.0;
    }
    (lo, last_inside(estimate, top, inside))
}

/// A confidence sequence on treated − control rates, each side at α/2 so
/// the pair (a union bound) covers the difference at level 1 − α.
pub fn difference_cs(
    treated: (u64, f64),
    control: (u64, f64),
    alpha: f64,
    prior: (f64, f64),
) -> (f64, f64) {
    let t = count_cs(treated.0, treated.1, alpha / 2.0, prior);
    let c = count_cs(control.0, control.1, alpha / 2.0, prior);
    (t.0 - c.1, t.1 - c.0)
}

/// A small seeded generator (SplitMix64) for simulations and tests that
/// must come out the same on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A Poisson draw: Knuth's product of uniforms for small means, a
    /// rounded normal beyond (the simulations only need the shape).
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 30.0 {
            let u1 = self.unit().max(f64::MIN_POSITIVE);
            let u2 = self.unit();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            return (mean + z * mean.sqrt()).round().max(0.0) as u64;
        }
        let limit = (-mean).exp();
        let mut k = 0;
        let mut prod = self.unit();
        while prod > limit {
            k += 1;
            prod *= self.unit();
        }
        k
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_sequences_have_known_ends() {
        // All n of n: 1/((n+1) p^n) < 1/α gives p > (α/(n+1))^(1/n).
        let (lo, hi) = rate_cs(30, 30, 0.05, RATE_PRIOR);
        let exact = (0.05f64 / 31.0).powf(1.0 / 30.0);
        assert!((lo - exact).abs() < 1e-9, "{lo} {exact}");
        assert_eq!(hi, 1.0);
        // None of n mirrors it.
        let (lo, hi) = rate_cs(0, 30, 0.05, RATE_PRIOR);
        assert_eq!(lo, 0.0);
        assert!((hi - (1.0 - exact)).abs() < 1e-9, "{hi}");
        // Nothing seen: everything is possible.
        assert_eq!(rate_cs(0, 0, 0.05, RATE_PRIOR), (0.0, 1.0));
        // 50 of 100: symmetric about one half and wider than Wilson's 40.4–59.6 %.
        let (lo, hi) = rate_cs(50, 100, 0.05, RATE_PRIOR);
        assert!((lo + hi - 1.0).abs() < 1e-9, "{lo} {hi}");
        assert!((lo - 0.344_590_269).abs() < 1e-8 && lo < 0.404, "{lo}");
        // At each end the mixture sits exactly on 1/α.
        let m = |p: f64| {
            (ln_beta(51.0, 51.0) - ln_beta(1.0, 1.0) - 50.0 * p.ln() - 50.0 * (1.0 - p).ln()).exp()
        };
        assert!((m(lo) - 20.0).abs() < 1e-6, "{}", m(lo));
        // More data, narrower.
        let (lo2, hi2) = rate_cs(500, 1000, 0.05, RATE_PRIOR);
        assert!(lo2 > lo && hi2 < hi);
    }

    #[test]
    fn rate_sequences_cover_at_every_look() {
        let alpha = 0.05;
        let mut rng = Rng::new(21);
        let mut missed = 0;
        let runs = 2000;
        for run in 0..runs {
            let p = [0.02, 0.3, 0.5, 0.9][run % 4];
            let mut k = 0;
            for n in 1..=500u64 {
                k += u64::from(rng.bernoulli(p));
                let (lo, hi) = rate_cs(k, n, alpha, RATE_PRIOR);
                if p < lo || p > hi {
                    missed += 1;
                    break;
                }
            }
        }
        let share = missed as f64 / runs as f64;
        // Ville's bound is α; the simulation error at 2,000 runs is about 0.5 %.
        assert!(share <= alpha + 0.01, "missed {share}");
    }

    #[test]
    fn a_fixed_interval_looked_at_every_step_misses_far_more() {
        // The reason for all this: Wilson at 1.96, checked 500 times.
        let mut rng = Rng::new(7);
        let runs = 500;
        let mut missed = 0;
        for _ in 0..runs {
            let mut k = 0;
            for n in 1..=500u64 {
                k += u64::from(rng.bernoulli(0.3));
                let (lo, hi) = crate::gates::wilson(k, n, 1.96);
                if !(lo..=hi).contains(&0.3) {
                    missed += 1;
                    break;
                }
            }
        }
        assert!(missed as f64 / runs as f64 > 0.15, "{missed}");
    }

    #[test]
    fn count_sequences_have_known_ends_and_cover() {
        // No events over t: ln(1/(1+t/r)^s) + λt < ln 20 gives λ < (ln 20 + s ln(1+t/r)) / t.
        let (s, r) = COUNT_PRIOR;
        let t = 10.0;
        let (lo, hi) = count_cs(0, t, 0.05, COUNT_PRIOR);
        let exact = (20f64.ln() + s * (1.0 + t / r).ln()) / t;
        assert_eq!(lo, 0.0);
        assert!((hi - exact).abs() < 1e-9, "{hi} {exact}");
        let (lo, hi) = count_cs(50, 10.0, 0.05, COUNT_PRIOR);
        assert!(lo < 5.0 && hi > 5.0 && lo > 2.5 && hi < 8.5, "{lo} {hi}");
        assert_eq!(count_cs(3, 0.0, 0.05, COUNT_PRIOR), (0.0, f64::INFINITY));
        let mut rng = Rng::new(3);
        let runs = 1000;
        let mut missed = 0;
        for _ in 0..runs {
            let (mut k, mut t) = (0, 0.0);
            for _ in 0..300 {
                // 0.5 units of exposure per step at 6 per unit.
                k += rng.poisson(3.0);
                t += 0.5;
                let (lo, hi) = count_cs(k, t, 0.05, COUNT_PRIOR);
                if !(lo..=hi).contains(&6.0) {
                    missed += 1;
                    break;
                }
            }
        }
        assert!((missed as f64 / runs as f64) <= 0.06, "{missed}");
    }

    #[test]
    fn a_difference_holds_both_sides() {
        // 8 against 5 per unit: clear on 100 units, not on 10.
        let (lo, hi) = difference_cs((800, 100.0), (5000, 1000.0), 0.05, COUNT_PRIOR);
        assert!(lo > 0.0 && lo < 3.0 && hi > 3.0, "{lo} {hi}");
        let (lo, hi) = difference_cs((80, 10.0), (500, 100.0), 0.05, COUNT_PRIOR);
        assert!(
            (lo + 0.606_014).abs() < 1e-5 && (hi - 7.325_485).abs() < 1e-5,
            "{lo} {hi}"
        );
        let (lo, hi) = difference_cs((50, 10.0), (500, 100.0), 0.05, COUNT_PRIOR);
        assert!(lo < 0.0 && hi > 0.0, "{lo} {hi}");
    }
}
