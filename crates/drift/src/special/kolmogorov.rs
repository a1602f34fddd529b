//! Distributions of Kolmogorov–Smirnov statistics, as scipy evaluates them:
//! the one-sided Smirnov survival function (xsf `kolmogorov.h`), the two-sided
//! `kstwo.sf` (scipy `_ksstats.py`: Durbin matrix, Pomeranz, Pelz–Good) and the exact
//! two-sample probabilities behind `ks_2samp(mode="exact")`.

use super::cephes::{expm1, MINLOG};
use super::dd::Dd;
use std::f64::consts::{LN_2, PI};

// ---------------------------------------------------------------------------------------
// Smirnov one-sided distribution (xsf), needed by kstwo for large statistics.

const SMIRNOV_MAX_COMPUTE_N: i64 = 1_000_000;
const SM_UPPER_MAX_TERMS: i64 = 3;
const SM_UPPERSUM_MIN_N: i64 = 10;
const SM_MAX_EXPONENT: i32 = 960;

/// `floor(n*x)` and the remainder `n*x - floor(n*x)`, computed exactly.
fn mod_nx(n: i64, x: f64) -> (f64, i64, f64) {
    let nx_d = Dd::new(x) * n as f64;
    let floor_d = nx_d.floor();
    let alpha_d = nx_d - floor_d;
    let mut alpha = alpha_d.hi;
    let mut nxfloor = floor_d.hi as i64;
    if alpha == 1.0 {
        nxfloor += 1;
        alpha = 0.0;
    }
    (alpha, nxfloor, nx_d.hi)
}

/// Multiplies the binomial coefficient held as (mantissa, exponent) by `(n-j)/(j+1)`.
fn update_binomial(cman: &mut Dd, cexpt: &mut i32, n: i64, j: i64) {
    let rat = Dd::new((n - j) as f64) / (j as f64 + 1.0);
    let (man2, expt) = (*cman * rat).frexp();
    *cexpt += expt;
    *cman = man2;
}

fn pow_d(a: Dd, m: i32) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::new(1.0);
        }
        return Dd::new(1.0) / pow_d(a, -m);
    }
    if a.hi == 0.0 && a.lo == 0.0 {
        return Dd::new(0.0);
    }
    let ans = a.hi.powf(m as f64);
    let r = a.lo / a.hi;
    let mut adj = m as f64 * r;
    if adj.abs() > 1e-8 {
        if adj.abs() < 1e-4 {
            adj += (m as f64 * r) * ((m - 1) as f64 / 2.0 * r);
        } else {
            adj = expm1(m as f64 * r.ln_1p());
        }
    }
    Dd::new(ans) + ans * adj
}

fn pow2(a: f64, b: f64, m: i32) -> f64 {
    pow_d(Dd::new(a) + b, m).hi
}

fn next_power_of_2(x: f64) -> f64 {
    let q = super::dd::ldexp(x, 1 - 53);
    let mut l = (q + x).abs();
    if l == 0.0 {
        l = x.abs();
    } else {
        let lint = l as i32;
        if lint as f64 == l {
            l = lint as f64;
        }
    }
    l
}

/// `a^m` as a mantissa in `[0.5, 1)` and a binary exponent.
fn pow2_scaled_d(a: Dd, m: i32) -> (Dd, i32) {
    if m <= 0 {
        if m == 0 {
            return (Dd::new(1.0), 0);
        }
        let (ans, ae1) = pow2_scaled_d(a, -m);
        let (ans, ae2) = (Dd::new(1.0) / ans).frexp();
        return (ans, -ae1 + ae2);
    }
    let (y, ye) = a.frexp();
    if m == 1 {
        return (y, ye);
    }
    let mut max_expt = SM_MAX_EXPONENT;
    if m as f64 * (y.hi - 1.0) / y.hi < -(SM_MAX_EXPONENT as f64) * LN_2 {
        let lg2y = y.hi.ln() / LN_2;
        let lg_ans = m as f64 * lg2y;
        if lg_ans <= -(SM_MAX_EXPONENT as f64) {
            max_expt = (next_power_of_2(-(SM_MAX_EXPONENT as f64) / lg2y + 1.0) / 2.0) as i32;
        }
    }
    if m <= max_expt {
        let ans1 = pow_d(y, m);
        let (ans, ans_e) = ans1.frexp();
        return (ans, ans_e + m * ye);
    }
    let q = m / max_expt;
    let r = m % max_expt;
    let (y2r, y2r_e) = pow2_scaled_d(y, r);
    let (y2m, y2m_e) = pow2_scaled_d(y, max_expt);
    let (y2mq, mut y2mq_e) = pow2_scaled_d(y2m, q);
    let (ans, mut ans_e) = (y2r * y2mq).frexp();
    y2mq_e += y2m_e * q;
    ans_e += y2mq_e + y2r_e;
    ans_e += m * ye;
    (ans, ans_e)
}

/// `((a+b)/(c+d))^m` in double-double.
fn pow4_d(a: f64, b: f64, c: f64, d: f64, m: i32) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::new(1.0);
        }
        return pow4_d(c, d, a, b, -m);
    }
    let big_a = Dd::new(a) + b;
    let big_c = Dd::new(c) + d;
    if big_a.hi == 0.0 && big_a.lo == 0.0 {
        return if big_c.hi == 0.0 && big_c.lo == 0.0 { Dd::new(f64::NAN) } else { Dd::new(0.0) };
    }
    if big_c.hi == 0.0 && big_c.lo == 0.0 {
        return Dd::new(if big_a.hi < 0.0 { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    pow_d(big_a / big_c, m)
}

/// One term `A_v(n, x) = C(n, v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1)` of the Birnbaum–Tingey sum.
fn compute_av(n: i64, x: f64, v: i64, cman: Dd, cexpt: i32) -> Dd {
    let t2x = Dd::new((n - v) as f64) / n as f64 - x;
    let (t2, t2e) = pow2_scaled_d(t2x, (n - v) as i32);
    let t1x = Dd::new(v as f64) / n as f64 + x;
    let (t1, t1e) = pow2_scaled_d(t1x, (v - 1) as i32);
    let ans = t1 * t2 * cman;
    ans.ldexp(cexpt + t1e + t2e)
}

/// Survival function of the one-sided statistic D+_n (scipy `special.smirnov`).
pub fn smirnov_sf(n: i64, x: f64) -> f64 {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let (alpha, nxfl, _nx) = mod_nx(n, x);
    let mut n1mxfl = n - nxfl - if alpha == 0.0 { 0 } else { 1 };
    let mut n1mxceil = n - nxfl;
    if alpha == 0.0 {
        n1mxfl -= 1;
        n1mxceil += 1;
    }
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        let t = pow2(1.0, x, (n - 1) as i32);
        let cdf = x * t;
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if -2.0 * n as f64 * x * x < MINLOG {
        return 0.0;
    }
    if nxfl >= n - 1 {
        return pow2(1.0, -x, n as i32);
    }
    if n > SMIRNOV_MAX_COMPUTE_N {
        let logp = -(6.0 * n as f64 * x + 1.0).powi(2) / 18.0 / n as f64;
        let sf = if logp < -LN_2 { logp.exp() } else { 1.0 - (-expm1(logp)) };
        return sf.clamp(0.0, 1.0);
    }
    let n_upper_terms = n - n1mxceil + 1;
    let use_upper = (n_upper_terms <= 1 && x < 0.5)
        || (n >= SM_UPPERSUM_MIN_N && n_upper_terms <= SM_UPPER_MAX_TERMS && x <= 0.5 / (n as f64).sqrt());
    let (start, step, n_terms) = if use_upper { (n, -1, n - n1mxceil + 1) } else { (0, 1, n1mxfl + 1) };
    let vmid = n / 2;
    let mut cman = Dd::new(1.0);
    let mut cexpt = 0;
    let mut aj =
        if use_upper { pow4_d(1.0, x, 1.0, 0.0, (n - 1) as i32) } else { pow4_d(1.0, -x, 1.0, 0.0, n as i32) / x };
    let mut aj_sum = Dd::new(0.0) + aj;
    update_binomial(&mut cman, &mut cexpt, n, 0);
    let mut j = 1;
    while j < n_terms {
        let v = start + j * step;
        aj = compute_av(n, x, v, cman, cexpt);
        if aj.is_finite() && !(aj.hi == 0.0 && aj.lo == 0.0) {
            aj_sum = aj_sum + aj;
        }
        if !(aj.hi == 0.0 && aj.lo == 0.0) {
            if (4.0 * (n_terms - j) as f64 * aj.hi.abs()) < (f64::EPSILON * aj_sum.hi) && j != n_terms - 1 {
                break;
            }
        } else if j > vmid {
            break;
        }
        update_binomial(&mut cman, &mut cexpt, n, j);
        j += 1;
    }
    let prob = (aj_sum * x).hi;
    let sf = if step < 0 { 1.0 - prob } else { prob };
    sf.clamp(0.0, 1.0)
}

// ---------------------------------------------------------------------------------------
// Two-sided one-sample distribution kstwo (scipy/stats/_ksstats.py).

const E128: i32 = 128;
const MIN_LOG: f64 = -708.0;
#[allow(clippy::excessive_precision)]
const STIRLING_COEFFS: [f64; 8] = [
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
];

fn ep128() -> f64 {
    super::dd::ldexp(1.0, E128)
}

fn em128() -> f64 {
    super::dd::ldexp(1.0, -E128)
}

fn polyval(coef: &[f64], x: f64) -> f64 {
    coef.iter().fold(0.0, |acc, c| acc * x + c)
}

fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    n.ln() / 2.0 - n + (2.0 * PI).ln() / 2.0 + rn * polyval(&STIRLING_COEFFS, rn / n)
}

/// CDF Pr(D_n <= d) by the Durbin matrix algorithm (Marsaglia–Tsang–Wang).
fn kolmogn_dmtw(n: i64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut hm = vec![0.0; m * m];
    let mut v: Vec<f64> = (1..=m).map(|i| 1.0 - h.powf(i as f64)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;
    for i in 1..m {
        // H[i-1:, i] = w[:m-i+1]
        for (r, wv) in (i - 1..m).zip(w.iter()) {
            hm[r * m + i] = *wv;
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let matmul = |a: &[f64], b: &[f64]| {
        let mut out = vec![0.0; m * m];
        for i in 0..m {
            for kk in 0..m {
                let aik = a[i * m + kk];
                if aik == 0.0 {
                    continue;
                }
                for j in 0..m {
                    out[i * m + j] += aik * b[kk * m + j];
                }
            }
        }
        out
    };
    let mut hpwr = vec![0.0; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let mut nn = n;
    let mut expnt: i32 = 0;
    let mut hexpnt: i32 = 0;
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm);
            expnt += hexpnt;
        }
        hm = matmul(&hm, &hm);
        hexpnt *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > ep128() {
            for x in hm.iter_mut() {
                *x /= ep128();
            }
            hexpnt += E128;
        }
        nn /= 2;
    }
    let mut p = hpwr[(k - 1) * m + (k - 1)];
    for i in 1..=n {
        p = i as f64 * p / n as f64;
        if p.abs() < em128() {
            p *= ep128();
            expnt -= E128;
        }
    }
    if expnt != 0 {
        p = super::dd::ldexp(p, expnt);
    }
    p.clamp(0.0, 1.0)
}

fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let ip1div2 = (i + 1) / 2;
        let ip1mod2 = (i + 1) % 2;
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// CDF Pr(D_n <= x) by the Pomeranz recursion.
fn kolmogn_pomeranz(n: i64, x: f64) -> f64 {
    let t = n as f64 * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    let mut gpower = vec![0.0; npwrs];
    let mut twogpower = vec![0.0; npwrs];
    let mut onem2gpower = vec![0.0; npwrs];
    gpower[0] = 1.0;
    twogpower[0] = 1.0;
    onem2gpower[0] = 1.0;
    let mut expnt: i32 = 0;
    let nf = n as f64;
    let (g_over_n, two_g_over_n, one_minus_two_g_over_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        gpower[m] = gpower[m - 1] * g_over_n / m as f64;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / m as f64;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / m as f64;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0i64, 0i64);
    let (mut j1, _) = pomeranz_j1j2(0, n, ll, ceilf, roundf);
    for i in 1..(2 * n + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.iter_mut().for_each(|x| *x = 0.0);
        let (nj1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        j1 = nj1;
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let ln2 = ln2 as usize;
            // numpy slices clamp at the array end, so the operands may be shorter than ln2.
            let start = ((k1 - v0s).max(0) as usize).min(v0.len());
            let a = &v0[start..(start + ln2).min(v0.len())];
            let b = &pwrs[..ln2.min(pwrs.len())];
            let conv = convolve(a, b);
            let conv_start = (j1 - k1).max(0) as usize;
            let conv_len = (j2 - j1 + 1).max(0) as usize;
            let end = (conv_start + conv_len).min(conv.len());
            if conv_start < end {
                v1[..end - conv_start].copy_from_slice(&conv[conv_start..end]);
            }
            let maxv = v1.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < maxv && maxv < em128() {
                for x in v1.iter_mut() {
                    *x *= ep128();
                }
                expnt -= E128;
            }
            v1s = v0s + j1 - k1;
        }
    }
    let mut ans = v1[(n - v1s) as usize];
    for m in 1..=n {
        if ans.abs() > ep128() {
            ans *= em128();
            expnt += E128;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = super::dd::ldexp(ans, expnt);
    }
    ans.clamp(0.0, 1.0)
}

/// `np.convolve(a, b)` in "full" mode.
fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// Pelz–Good approximation of Pr(D_n <= x).
fn kolmogn_pelz_good(n: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let sqrt2pi = (2.0 * PI).sqrt();
    let z = n.sqrt() * x;
    let (zsquared, zthree, zfour, zsix) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let qlog = -pi2 / 8.0 / zsquared;
    if qlog < MIN_LOG {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -zsquared;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * zsquared) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = pi4 * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = pi2 * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powi(8);
    let mut k = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for kk in (1..=maxk).rev() {
        let m = (2 * kk - 1) as f64;
        let (msquared, mfour, msix) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf(8.0 * kk as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msquared,
            k2a + k2b * msquared + k2c * mfour,
            k3a + k3b * msquared + k3c * mfour + k3d * msix,
        ];
        for i in 0..4 {
            k[i] = k[i] * qpower + coeffs[i];
        }
    }
    let denoms = [z, 6.0 * zfour, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for i in 0..4 {
        k[i] = k[i] * q * sqrt2pi / denoms[i];
    }
    let q = (-pi2 / 2.0 / zsquared).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    for kk in (1..=maxk).rev() {
        let ksq = (kk * kk) as f64;
        let qp = q.powf(ksq);
        let kspi = PI * kk as f64;
        k2extra += ksq * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    k[2] += k2extra * pi2 * sqrt2pi / (-36.0 * zthree);
    k[3] += k3extra * pi2 * sqrt2pi / (216.0 * zsix);
    for (i, ki) in k.iter_mut().enumerate() {
        *ki /= n.powf(i as f64 / 2.0);
    }
    k.iter().sum()
}

/// Survival function of the two-sided one-sample statistic D_n (scipy `stats.kstwo.sf`).
pub fn kstwo_sf(x: f64, n: i64) -> f64 {
    let nf = n as f64;
    // rv_continuous.sf: 1 at or below the support's lower end 0.5/n, 0 at or above 1.
    if x.is_nan() || n < 1 {
        return f64::NAN;
    }
    if x <= 0.5 / nf {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let t = nf * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            (1..=n).fold(1.0, |acc, i| acc * (i as f64 * (1.0 / nf) * (2.0 * t - 1.0)))
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - prob).clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        let prob = 2.0 * (1.0 - x).powf(nf);
        return prob.clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return (1.0 - kolmogn_dmtw(n, x)).clamp(0.0, 1.0);
        }
        if nxsquared <= 4.0 {
            return (1.0 - kolmogn_pomeranz(n, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 { kolmogn_dmtw(n, x) } else { kolmogn_pelz_good(nf, x) };
    (1.0 - cdf).clamp(0.0, 1.0)
}

// ---------------------------------------------------------------------------------------
// Exact two-sample probabilities (scipy `_compute_prob_outside_square` and the pythran
// `_compute_outer_prob_inside_method`).

/// Pr(D_{n,n} >= h/n) for two samples of equal size `n`.
fn prob_outside_square(n: i64, h: i64) -> f64 {
    let mut p = 0.0;
    let mut k = (n as f64 / h as f64).floor() as i64;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// The proportion of lattice paths from (0,0) to (m,n) that leave `|x/m - y/n| < h/lcm`.
fn outer_prob_inside(m: i64, n: i64, g: i64, h: i64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for v in a.iter_mut().take(maxj as usize).skip(minj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let lastminj = minj;
        let lastlen = curlen;
        minj = ((((ng * i - h) as f64) / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = ((((ng * i + h) as f64) / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            val = (a[(jj + minj - lastminj) as usize] * i as f64 + val * j as f64) / (i + j) as f64;
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let from = (maxj - minj) as usize;
            let to = (maxj - minj + (lastlen - curlen)) as usize;
            for v in a.iter_mut().take(to).skip(from) {
                *v = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

/// Outcome of scipy's `_attempt_exact_2kssamp` for the two-sided alternative.
pub(crate) fn exact_two_sample(n1: i64, n2: i64, g: i64, d: f64) -> Option<f64> {
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as i64;
    if h == 0 {
        return Some(1.0);
    }
    let prob = if n1 == n2 { prob_outside_square(n1, h) } else { outer_prob_inside(n1, n2, g, h) };
    if !prob.is_finite() || !(0.0..=1.0).contains(&prob) {
        return None;
    }
    Some(prob)
}
