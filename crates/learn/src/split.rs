//! Seeded row splits. The generator is a SplitMix64 written out here rather than taken from
//! a crate, so a seed keeps meaning the same split across dependency upgrades (models and
//! benchmarks record seeds and must reproduce bit for bit).

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for shuffling.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-32 for any n used here).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Number of test rows for a fraction: `ceil(fraction · n)` as scikit-learn does, with the
/// fraction clamped to `[0, 1]` (NaN counts as 0).
fn n_test(n_rows: usize, test_fraction: f64) -> usize {
    let f = if test_fraction.is_nan() { 0.0 } else { test_fraction.clamp(0.0, 1.0) };
    ((f * n_rows as f64).ceil() as usize).min(n_rows)
}

/// Splits `0..n_rows` into `(train, test)` row indices by a seeded shuffle; each part is
/// returned in ascending order. The test part has `ceil(test_fraction · n_rows)` rows
/// (`test_fraction` clamped to `[0, 1]`). Same arguments, same split, on every platform.
pub fn train_test_split(n_rows: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n_rows).collect();
    Rng::new(seed).shuffle(&mut idx);
    let k = n_test(n_rows, test_fraction);
    let mut test = idx[..k].to_vec();
    let mut train = idx[k..].to_vec();
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}

/// Like [`train_test_split`] but keeping the class proportions of a 0/1 target in both
/// parts (each class is split on its own).
pub(crate) fn stratified_split(labels: &[f64], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Rng::new(seed);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in [0.0, 1.0] {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut idx);
        let k = n_test(idx.len(), test_fraction);
        test.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut r = Rng::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn stratified_keeps_both_classes() {
        let y: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i % 10 == 0))).collect();
        let (train, test) = stratified_split(&y, 0.2, 3);
        assert_eq!(test.iter().filter(|&&i| y[i] == 1.0).count(), 2);
        assert_eq!(train.len() + test.len(), 100);
    }
}
