//! Double-double arithmetic (a value carried as an unevaluated sum `hi + lo`), ported from
//! xsf's `dd_real.h` so that [`super::kolmogorov::smirnov_sf`] rounds the way scipy does.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// `hi + lo` with `|lo| <= ulp(hi) / 2`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Dd {
    pub(crate) hi: f64,
    pub(crate) lo: f64,
}

/// `fl(a + b)` and its error, assuming `|a| >= |b|`.
fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    (s, b - c)
}

/// `fl(a + b)` and its error.
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    let d = b - c;
    let e = s - c;
    (s, (a - e) + d)
}

/// `fl(a * b)` and its error (exact through a fused multiply-add).
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl Dd {
    pub(crate) const fn new(hi: f64) -> Self {
        Dd { hi, lo: 0.0 }
    }

    pub(crate) fn is_finite(self) -> bool {
        self.hi.is_finite()
    }

    pub(crate) fn floor(self) -> Dd {
        let hi = self.hi.floor();
        if hi == self.hi {
            let (hi, lo) = quick_two_sum(hi, self.lo.floor());
            Dd { hi, lo }
        } else {
            Dd { hi, lo: 0.0 }
        }
    }

    pub(crate) fn ldexp(self, e: i32) -> Dd {
        Dd { hi: ldexp(self.hi, e), lo: ldexp(self.lo, e) }
    }

    /// Splits into a mantissa in `[0.5, 1)` and a power of two, like `std::frexp`.
    pub(crate) fn frexp(self) -> (Dd, i32) {
        let (mut man, mut exponent) = frexp(self.hi);
        let mut b1 = ldexp(self.lo, -exponent);
        if man.abs() == 0.5 && man * b1 < 0.0 {
            man *= 2.0;
            b1 *= 2.0;
            exponent -= 1;
        }
        (Dd { hi: man, lo: b1 }, exponent)
    }
}

impl Neg for Dd {
    type Output = Dd;
    fn neg(self) -> Dd {
        Dd { hi: -self.hi, lo: -self.lo }
    }
}

impl Add for Dd {
    type Output = Dd;
    fn add(self, rhs: Dd) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs.hi);
        let (t1, t2) = two_sum(self.lo, rhs.lo);
        let (s1, s2) = quick_two_sum(s1, s2 + t1);
        let (hi, lo) = quick_two_sum(s1, s2 + t2);
        Dd { hi, lo }
    }
}

impl Add<f64> for Dd {
    type Output = Dd;
    fn add(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs);
        let (hi, lo) = quick_two_sum(s1, s2 + self.lo);
        Dd { hi, lo }
    }
}

impl Sub for Dd {
    type Output = Dd;
    fn sub(self, rhs: Dd) -> Dd {
        self + (-rhs)
    }
}

impl Sub<f64> for Dd {
    type Output = Dd;
    fn sub(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, -rhs);
        let (hi, lo) = quick_two_sum(s1, s2 + self.lo);
        Dd { hi, lo }
    }
}

impl Mul for Dd {
    type Output = Dd;
    fn mul(self, rhs: Dd) -> Dd {
        let (p1, p2) = two_prod(self.hi, rhs.hi);
        let p2 = p2 + (self.hi * rhs.lo + self.lo * rhs.hi);
        let (hi, lo) = quick_two_sum(p1, p2);
        Dd { hi, lo }
    }
}

impl Mul<f64> for Dd {
    type Output = Dd;
    fn mul(self, rhs: f64) -> Dd {
        let (p1, e1) = two_prod(self.hi, rhs);
        let (p2, e2) = two_prod(self.lo, rhs);
        let (hi, lo) = quick_two_sum(p1, e2 + p2 + e1);
        Dd { hi, lo }
    }
}

impl Div for Dd {
    type Output = Dd;
    fn div(self, rhs: Dd) -> Dd {
        let q1 = self.hi / rhs.hi;
        let r = self - rhs * q1;
        let q2 = r.hi / rhs.hi;
        let r = r - rhs * q2;
        let q3 = r.hi / rhs.hi;
        let (q1, q2) = quick_two_sum(q1, q2);
        Dd { hi: q1, lo: q2 } + q3
    }
}

impl Div<f64> for Dd {
    type Output = Dd;
    fn div(self, rhs: f64) -> Dd {
        self / Dd::new(rhs)
    }
}

/// `std::frexp`: `x = m * 2^e` with `0.5 <= |m| < 1` (and `(x, 0)` for zero, infinities, NaN).
pub(crate) fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale into the normal range first.
        let (m, e) = frexp(x * f64::from_bits(0x4350_0000_0000_0000)); // 2^54
        return (m, e - 54);
    }
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (m, exp - 1022)
}

/// `std::ldexp`: `x * 2^e`, exact unless the result over- or underflows.
pub(crate) fn ldexp(x: f64, e: i32) -> f64 {
    let mut x = x;
    let mut e = e;
    // Multiply in steps that stay inside the exponent range, as scalbn does.
    while e > 1023 {
        x *= f64::from_bits(0x7fe0_0000_0000_0000); // 2^1023
        e -= 1023;
        if !x.is_finite() {
            return x;
        }
    }
    while e < -1022 {
        // 2^-969 keeps the final rounding single, like musl's scalbn.
        x *= f64::from_bits(0x0360_0000_0000_0000); // 2^-969
        e += 969;
        if x == 0.0 {
            return x;
        }
    }
    x * f64::from_bits(((e + 1023) as u64) << 52)
}
