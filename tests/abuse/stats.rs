//! The Mann-Whitney U test, normal approximation with the tie correction:
//! whether two samples of durations come from one distribution, without
//! assuming that distribution's shape (response times are skewed).

/// What comparing two samples found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Comparison {
    /// The standardised U statistic of the first sample.
    pub(crate) z: f64,
    /// The two-sided p-value of `z`.
    pub(crate) p: f64,
    /// The larger median over the smaller one.
    pub(crate) median_ratio: f64,
}

impl Comparison {
    /// Significant at `alpha` and larger than `ratio` in effect: either
    /// alone would fail on noise, a tiny but real shift, or a few outliers.
    pub(crate) fn differs(&self, alpha: f64, ratio: f64) -> bool {
        self.p < alpha && self.median_ratio > ratio
    }
}

/// Compares two samples; both must hold at least two values.
pub(crate) fn compare(a: &[f64], b: &[f64]) -> Comparison {
    assert!(a.len() > 1 && b.len() > 1, "samples too small");
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let n = n1 + n2;

    let (rank_sum_a, ties) = rank_sum_of_first(a, b);
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    let z = if variance > 0.0 {
        (u - mean) / variance.sqrt()
    } else {
        0.0
    };

    let (ma, mb) = (median(a), median(b));
    let median_ratio = ma.max(mb) / ma.min(mb).max(f64::MIN_POSITIVE);
    Comparison {
        z,
        p: 2.0 * normal_tail(z.abs()),
        median_ratio,
    }
}

/// The sum of the ranks of `a` in `a` and `b` pooled (ties get the mean of
/// their ranks), and the tie term: the sum of t³ - t over groups of t ties.
fn rank_sum_of_first(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut pooled: Vec<(f64, bool)> = a.iter().map(|&x| (x, true)).collect();
    pooled.extend(b.iter().map(|&x| (x, false)));
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));

    let (mut rank_sum, mut ties) = (0.0, 0.0);
    let mut start = 0;
    while start < pooled.len() {
        let end = pooled[start..]
            .iter()
            .position(|p| p.0 != pooled[start].0)
            .map_or(pooled.len(), |offset| start + offset);
        // Ranks start + 1 ..= end share their mean.
        let shared = (start + 1 + end) as f64 / 2.0;
        let from_a = pooled[start..end].iter().filter(|p| p.1).count();
        rank_sum += shared * from_a as f64;
        let t = (end - start) as f64;
        ties += t * t * t - t;
        start = end;
    }
    (rank_sum, ties)
}

pub(crate) fn median(sample: &[f64]) -> f64 {
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

/// P(Z > z) for a standard normal Z and z ≥ 0, through erfc.
fn normal_tail(z: f64) -> f64 {
    erfc(z / std::f64::consts::SQRT_2) / 2.0
}

/// The complementary error function for x ≥ 0, by the rational
/// approximation of Abramowitz and Stegun 7.1.26 (absolute error under
/// 1.5e-7, plenty next to a threshold of 1e-3).
fn erfc(x: f64) -> f64 {
    const P: f64 = 0.327_591_1;
    const A: [f64; 5] = [
        0.254_829_592,
        -0.284_496_736,
        1.421_413_741,
        -1.453_152_027,
        1.061_405_429,
    ];
    let t = 1.0 / (1.0 + P * x);
    let polynomial = A.iter().rev().fold(0.0, |acc, a| acc * t + a) * t;
    polynomial * (-x * x).exp()
}

#[test]
fn the_rank_test_knows_textbook_values() {
    // Fully separated samples of 3: U = 0, z = -1.964 (no ties).
    let c = compare(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
    assert!((c.z + 1.964).abs() < 1e-3, "{c:?}");
    assert!((c.p - 0.0495).abs() < 1e-3, "{c:?}");
    // Identical samples: every value tied, nothing to see.
    let same = compare(&[2.0, 2.0, 2.0], &[2.0, 2.0, 2.0]);
    assert!(
        same.z.abs() < 1e-12 && (same.p - 1.0).abs() < 1e-6,
        "{same:?}"
    );
    assert!((normal_tail(3.290_5) * 2.0 - 0.001).abs() < 1e-5);
}
