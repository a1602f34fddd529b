//! Ports of the Cephes routines (as vendored by scipy through xsf) behind the p-values that
//! Evidently reports: `ndtr` (Z-test), `chdtrc` (chi-square test) and their helpers.
//!
//! They are transcribed operation by operation, so results agree with scipy to the last bit
//! or two; the unit tests compare against values printed by scipy 1.17.

use super::igam_coeff::IGAM_ASYMP_COEFF;
use std::f64::consts::{PI, SQRT_2};

/// 2^-53.
pub(crate) const MACHEP: f64 = 1.110_223_024_625_156_5e-16;
/// log(DBL_MAX).
pub(crate) const MAXLOG: f64 = 7.097_827_128_933_84e2;
/// log(2^-1075).
pub(crate) const MINLOG: f64 = -7.451_332_191_019_412e2;
const EULER: f64 = 0.577_215_664_901_532_9;
const MAXITER: u64 = 500;

/// Evaluates `coef[0] x^n + ... + coef[n]`.
fn polevl(x: f64, coef: &[f64]) -> f64 {
    let mut ans = coef[0];
    for c in &coef[1..] {
        ans = ans * x + c;
    }
    ans
}

/// Like [`polevl`] with an implicit leading coefficient of 1.
fn p1evl(x: f64, coef: &[f64]) -> f64 {
    let mut ans = x + coef[0];
    for c in &coef[1..] {
        ans = ans * x + c;
    }
    ans
}

/// Rational function `num(x) / denom(x)` (coefficients in ascending order), evaluated in
/// `1/x` when `|x| > 1` to keep it stable.
fn ratevl(x: f64, num: &[f64], denom: &[f64]) -> f64 {
    let absx = x.abs();
    let eval = |coef: &[f64], y: f64, reverse: bool| {
        let mut it: Box<dyn Iterator<Item = &f64>> =
            if reverse { Box::new(coef.iter().rev()) } else { Box::new(coef.iter()) };
        let mut ans = *it.next().unwrap_or(&0.0);
        for c in it {
            ans = ans * y + c;
        }
        ans
    };
    if absx > 1.0 {
        let y = 1.0 / x;
        let n = eval(num, y, true);
        let d = eval(denom, y, true);
        let i = num.len() as i32 - denom.len() as i32;
        x.powi(i) * n / d
    } else {
        eval(num, x, false) / eval(denom, x, false)
    }
}

#[allow(clippy::excessive_precision)]
mod coef {
    pub(super) const NDTR_P: [f64; 9] = [
        2.46196981473530512524E-10,
        5.64189564831068821977E-1,
        7.46321056442269912687E0,
        4.86371970985681366614E1,
        1.96520832956077098242E2,
        5.26445194995477358631E2,
        9.34528527171957607540E2,
        1.02755188689515710272E3,
        5.57535335369399327526E2,
    ];
    pub(super) const NDTR_Q: [f64; 8] = [
        1.32281951154744992508E1,
        8.67072140885989742329E1,
        3.54937778887819891062E2,
        9.75708501743205489753E2,
        1.82390916687909736289E3,
        2.24633760818710981792E3,
        1.65666309194161350182E3,
        5.57535340817727675546E2,
    ];
    pub(super) const NDTR_R: [f64; 6] = [
        5.64189583547755073984E-1,
        1.27536670759978104416E0,
        5.01905042251180477414E0,
        6.16021097993053585195E0,
        7.40974269950448939160E0,
        2.97886665372100240670E0,
    ];
    pub(super) const NDTR_S: [f64; 6] = [
        2.26052863220117276590E0,
        9.39603524938001434673E0,
        1.20489539808096656605E1,
        1.70814450747565897222E1,
        9.60896809063285878198E0,
        3.36907645100081516050E0,
    ];
    pub(super) const NDTR_T: [f64; 5] = [
        9.60497373987051638749E0,
        9.00260197203842689217E1,
        2.23200534594684319226E3,
        7.00332514112805075473E3,
        5.55923013010394962768E4,
    ];
    pub(super) const NDTR_U: [f64; 5] = [
        3.35617141647503099647E1,
        5.21357949780152679795E2,
        4.59432382970980127987E3,
        2.26290000613890934246E4,
        4.92673942608635921086E4,
    ];
    pub(super) const GAMMA_A: [f64; 5] = [
        8.11614167470508450300E-4,
        -5.95061904284301438324E-4,
        7.93650340457716943945E-4,
        -2.77777777730099687205E-3,
        8.33333333333331927722E-2,
    ];
    pub(super) const GAMMA_B: [f64; 6] = [
        -1.37825152569120859100E3,
        -3.88016315134637840924E4,
        -3.31612992738871184744E5,
        -1.16237097492762307383E6,
        -1.72173700820839662146E6,
        -8.53555664245765465627E5,
    ];
    pub(super) const GAMMA_C: [f64; 6] = [
        -3.51815701436523470549E2,
        -1.70642106651881159223E4,
        -2.20528590553854454839E5,
        -1.13933444367982507207E6,
        -2.53252307177582951285E6,
        -2.01889141433532773231E6,
    ];
    pub(super) const LS2PI: f64 = 0.91893853320467274178;
    pub(super) const MAXLGM: f64 = 2.556348e305;
    pub(super) const LANCZOS_G: f64 = 6.024680040776729583740234375;
    pub(super) const LANCZOS_EXPG_NUM: [f64; 13] = [
        0.006061842346248906525783753964555936883222,
        0.5098416655656676188125178644804694509993,
        19.51992788247617482847860966235652136208,
        449.9445569063168119446858607650988409623,
        6955.999602515376140356310115515198987526,
        75999.29304014542649875303443598909137092,
        601859.6171681098786670226533699352302507,
        3481712.15498064590882071018964774556468,
        14605578.08768506808414169982791359218571,
        43338889.32467613834773723740590533316085,
        86363131.28813859145546927288977868422342,
        103794043.1163445451906271053616070238554,
        56906521.91347156388090791033559122686859,
    ];
    pub(super) const LANCZOS_EXPG_DENOM: [f64; 13] = [
        1.0,
        66.0,
        1925.0,
        32670.0,
        357423.0,
        2637558.0,
        13339535.0,
        45995730.0,
        105258076.0,
        150917976.0,
        120543840.0,
        39916800.0,
        0.0,
    ];
    pub(super) const UNITY_LP: [f64; 7] = [
        4.5270000862445199635215E-5,
        4.9854102823193375972212E-1,
        6.5787325942061044846969E0,
        2.9911919328553073277375E1,
        6.0949667980987787057556E1,
        5.7112963590585538103336E1,
        2.0039553499201281259648E1,
    ];
    pub(super) const UNITY_LQ: [f64; 6] = [
        1.5062909083469192043167E1,
        8.3047565967967209469434E1,
        2.2176239823732856465394E2,
        3.0909872225312059774938E2,
        2.1642788614495947685003E2,
        6.0118660497603843919306E1,
    ];
    pub(super) const UNITY_EP: [f64; 3] =
        [1.2617719307481059087798E-4, 3.0299440770744196129956E-2, 9.9999999999999999991025E-1];
    pub(super) const UNITY_EQ: [f64; 4] = [
        3.0019850513866445504159E-6,
        2.5244834034968410419224E-3,
        2.2726554820815502876593E-1,
        2.0000000000000000000897E0,
    ];
    /// `zeta(n, 1)` for n = 2..=41 as scipy evaluates it.
    pub(super) const ZETA: [f64; 40] = [
        1.6449340668482266,
        1.202056903159594,
        1.0823232337111381,
        1.0369277551433704,
        1.0173430619844488,
        1.008349277381923,
        1.0040773561979446,
        1.0020083928260826,
        1.0009945751278182,
        1.0004941886041194,
        1.0002460865533078,
        1.0001227133475785,
        1.0000612481350586,
        1.0000305882363072,
        1.0000152822594084,
        1.0000076371976376,
        1.000003817293265,
        1.0000019082127163,
        1.0000009539620338,
        1.0000004769329867,
        1.0000002384505027,
        1.000000119219926,
        1.000000059608189,
        1.0000000298035034,
        1.0000000149015549,
        1.0000000074507118,
        1.000000003725334,
        1.0000000018626598,
        1.0000000009313275,
        1.0000000004656628,
        1.000000000232831,
        1.0000000001164155,
        1.0000000000582077,
        1.0000000000291038,
        1.000000000014552,
        1.000000000007276,
        1.000000000003638,
        1.000000000001819,
        1.0000000000009095,
        1.0000000000004547,
    ];
}

/// Complementary error function.
pub fn erfc(a: f64) -> f64 {
    if a.is_nan() {
        return f64::NAN;
    }
    let x = a.abs();
    if x < 1.0 {
        return 1.0 - erf(a);
    }
    let z = -a * a;
    let under = if a < 0.0 { 2.0 } else { 0.0 };
    if z < -MAXLOG {
        return under;
    }
    let z = z.exp();
    let (p, q) = if x < 8.0 {
        (polevl(x, &coef::NDTR_P), p1evl(x, &coef::NDTR_Q))
    } else {
        (polevl(x, &coef::NDTR_R), p1evl(x, &coef::NDTR_S))
    };
    let mut y = (z * p) / q;
    if a < 0.0 {
        y = 2.0 - y;
    }
    if y != 0.0 {
        y
    } else {
        under
    }
}

/// Error function.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return -erf(-x);
    }
    if x.abs() > 1.0 {
        return 1.0 - erfc(x);
    }
    let z = x * x;
    x * polevl(z, &coef::NDTR_T) / p1evl(z, &coef::NDTR_U)
}

/// Standard normal CDF (scipy's `special.ndtr`, used by `scipy.stats.norm.cdf`).
pub fn ndtr(a: f64) -> f64 {
    if a.is_nan() {
        return f64::NAN;
    }
    let x = a * std::f64::consts::FRAC_1_SQRT_2;
    let z = x.abs();
    if z < 1.0 {
        0.5 + 0.5 * erf(x)
    } else {
        let y = 0.5 * erfc(z);
        if x > 0.0 {
            1.0 - y
        } else {
            y
        }
    }
}

/// log|Γ(x)| for `x > 0` (Cephes `lgam`; negative arguments are not needed here).
pub fn lgam(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if x < 13.0 {
        let mut z = 1.0;
        let mut p = 0.0;
        let mut u = x;
        while u >= 3.0 {
            p -= 1.0;
            u = x + p;
            z *= u;
        }
        while u < 2.0 {
            if u == 0.0 {
                return f64::INFINITY;
            }
            z /= u;
            p += 1.0;
            u = x + p;
        }
        if z < 0.0 {
            z = -z;
        }
        if u == 2.0 {
            return z.ln();
        }
        p -= 2.0;
        let x = x + p;
        let p = x * polevl(x, &coef::GAMMA_B) / p1evl(x, &coef::GAMMA_C);
        return z.ln() + p;
    }
    if x > coef::MAXLGM {
        return f64::INFINITY;
    }
    let q = (x - 0.5) * x.ln() - x + coef::LS2PI;
    if x >= 1000.0 {
        if x > 1.0e8 {
            return q;
        }
        let p = 1.0 / (x * x);
        let p = ((7.936_507_936_507_937e-4 * p - 2.777_777_777_777_778e-3) * p + 0.083_333_333_333_333_33) / x;
        return q + p;
    }
    let p = 1.0 / (x * x);
    q + polevl(p, &coef::GAMMA_A) / x
}

/// Cephes `log1p`.
fn log1p(x: f64) -> f64 {
    let z = 1.0 + x;
    if !(std::f64::consts::FRAC_1_SQRT_2..=SQRT_2).contains(&z) {
        return z.ln();
    }
    let z = x * x;
    let z = -0.5 * z + x * (z * polevl(x, &coef::UNITY_LP) / p1evl(x, &coef::UNITY_LQ));
    x + z
}

/// `log(1 + x) - x`.
fn log1pmx(x: f64) -> f64 {
    if x.abs() < 0.5 {
        let mut xfac = x;
        let mut res = 0.0;
        for n in 2..MAXITER {
            xfac *= -x;
            let term = xfac / n as f64;
            res += term;
            if term.abs() < MACHEP * res.abs() {
                break;
            }
        }
        res
    } else {
        log1p(x) - x
    }
}

/// Cephes `expm1`.
pub(crate) fn expm1(x: f64) -> f64 {
    if !x.is_finite() {
        if x.is_nan() || x > 0.0 {
            return x;
        }
        return -1.0;
    }
    if !(-0.5..=0.5).contains(&x) {
        return x.exp() - 1.0;
    }
    let xx = x * x;
    let r = x * polevl(xx, &coef::UNITY_EP);
    let r = r / (polevl(xx, &coef::UNITY_EQ) - r);
    r + r
}

fn lgam1p_taylor(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let mut res = -EULER * x;
    let mut xfac = -x;
    for n in 2..42 {
        xfac *= -x;
        let c = coef::ZETA[n - 2] * xfac / n as f64;
        res += c;
        if c.abs() < MACHEP * res.abs() {
            break;
        }
    }
    res
}

/// log Γ(1 + x).
fn lgam1p(x: f64) -> f64 {
    if x.abs() <= 0.5 {
        lgam1p_taylor(x)
    } else if (x - 1.0).abs() < 0.5 {
        x.ln() + lgam1p_taylor(x - 1.0)
    } else {
        lgam(x + 1.0)
    }
}

/// `x^a e^-x / Γ(a)`, computed through the Lanczos approximation near `a ≈ x`.
fn igam_fac(a: f64, x: f64) -> f64 {
    if (a - x).abs() > 0.4 * a.abs() {
        let ax = a * x.ln() - x - lgam(a);
        if ax < -MAXLOG {
            return 0.0;
        }
        return ax.exp();
    }
    let fac = a + coef::LANCZOS_G - 0.5;
    let mut res = (fac / 1f64.exp()).sqrt() / ratevl(a, &coef::LANCZOS_EXPG_NUM, &coef::LANCZOS_EXPG_DENOM);
    if a < 200.0 && x < 200.0 {
        res *= (a - x).exp() * (x / fac).powf(a);
    } else {
        let num = x - a - coef::LANCZOS_G + 0.5;
        res *= (a * log1pmx(num / fac) + x * (0.5 - coef::LANCZOS_G) / fac).exp();
    }
    res
}

const IGAM_MAXITER: usize = 2000;
const IGAM_BIG: f64 = 4.503_599_627_370_496e15;
const IGAM_BIGINV: f64 = 2.220_446_049_250_313e-16;

fn igamc_continued_fraction(a: f64, x: f64) -> f64 {
    let ax = igam_fac(a, x);
    if ax == 0.0 {
        return 0.0;
    }
    let mut y = 1.0 - a;
    let mut z = x + y + 1.0;
    let mut c = 0.0;
    let mut pkm2 = 1.0;
    let mut qkm2 = x;
    let mut pkm1 = x + 1.0;
    let mut qkm1 = z * x;
    let mut ans = pkm1 / qkm1;
    for _ in 0..IGAM_MAXITER {
        c += 1.0;
        y += 1.0;
        z += 2.0;
        let yc = y * c;
        let pk = pkm1 * z - pkm2 * yc;
        let qk = qkm1 * z - qkm2 * yc;
        let t = if qk != 0.0 {
            let r = pk / qk;
            let t = ((ans - r) / r).abs();
            ans = r;
            t
        } else {
            1.0
        };
        pkm2 = pkm1;
        pkm1 = pk;
        qkm2 = qkm1;
        qkm1 = qk;
        if pk.abs() > IGAM_BIG {
            pkm2 *= IGAM_BIGINV;
            pkm1 *= IGAM_BIGINV;
            qkm2 *= IGAM_BIGINV;
            qkm1 *= IGAM_BIGINV;
        }
        if t <= MACHEP {
            break;
        }
    }
    ans * ax
}

fn igam_series(a: f64, x: f64) -> f64 {
    let ax = igam_fac(a, x);
    if ax == 0.0 {
        return 0.0;
    }
    let mut r = a;
    let mut c = 1.0;
    let mut ans = 1.0;
    for _ in 0..IGAM_MAXITER {
        r += 1.0;
        c *= x / r;
        ans += c;
        if c <= MACHEP * ans {
            break;
        }
    }
    ans * ax / a
}

fn igamc_series(a: f64, x: f64) -> f64 {
    let mut fac = 1.0;
    let mut sum = 0.0;
    for n in 1..IGAM_MAXITER {
        fac *= -x / n as f64;
        let term = fac / (a + n as f64);
        sum += term;
        if term.abs() <= MACHEP * sum.abs() {
            break;
        }
    }
    let logx = x.ln();
    let term = -expm1(a * logx - lgam1p(a));
    term - (a * logx - lgam(a)).exp() * sum
}

fn asymptotic_series(a: f64, x: f64, complement: bool) -> f64 {
    let sgn = if complement { 1.0 } else { -1.0 };
    let lambda = x / a;
    let sigma = (x - a) / a;
    let eta = if lambda > 1.0 {
        (-2.0 * log1pmx(sigma)).sqrt()
    } else if lambda < 1.0 {
        -(-2.0 * log1pmx(sigma)).sqrt()
    } else {
        0.0
    };
    let mut res = 0.5 * erfc(sgn * eta * (a / 2.0).sqrt());
    let mut etapow = [0.0; 25];
    etapow[0] = 1.0;
    let mut maxpow = 0;
    let mut sum = 0.0;
    let mut afac = 1.0;
    let mut absoldterm = f64::INFINITY;
    for row in IGAM_ASYMP_COEFF.iter() {
        let mut ck = row[0];
        for n in 1..25 {
            if n > maxpow {
                etapow[n] = eta * etapow[n - 1];
                maxpow += 1;
            }
            let ckterm = row[n] * etapow[n];
            ck += ckterm;
            if ckterm.abs() < MACHEP * ck.abs() {
                break;
            }
        }
        let term = ck * afac;
        let absterm = term.abs();
        if absterm > absoldterm {
            break;
        }
        sum += term;
        if absterm < MACHEP * sum.abs() {
            break;
        }
        absoldterm = absterm;
        afac /= a;
    }
    res += sgn * (-0.5 * a * eta * eta).exp() * sum / (2.0 * PI * a).sqrt();
    res
}

/// Regularized upper incomplete gamma function Q(a, x) (scipy `gammaincc`).
pub fn igamc(a: f64, x: f64) -> f64 {
    if a.is_nan() || x.is_nan() || x < 0.0 || a < 0.0 {
        return f64::NAN;
    }
    if a == 0.0 {
        return if x > 0.0 { 0.0 } else { f64::NAN };
    }
    if x == 0.0 {
        return 1.0;
    }
    if a.is_infinite() {
        return if x.is_infinite() { f64::NAN } else { 1.0 };
    }
    if x.is_infinite() {
        return 0.0;
    }
    let absxma_a = (x - a).abs() / a;
    if (a > 20.0 && a < 200.0 && absxma_a < 0.3) || (a > 200.0 && absxma_a < 4.5 / a.sqrt()) {
        return asymptotic_series(a, x, true);
    }
    if x > 1.1 {
        if x < a {
            1.0 - igam_series(a, x)
        } else {
            igamc_continued_fraction(a, x)
        }
    } else if x <= 0.5 {
        if -0.4 / x.ln() < a {
            1.0 - igam_series(a, x)
        } else {
            igamc_series(a, x)
        }
    } else if x * 1.1 < a {
        1.0 - igam_series(a, x)
    } else {
        igamc_series(a, x)
    }
}

/// Chi-square survival function with `df` degrees of freedom (scipy `chdtrc`).
pub fn chdtrc(df: f64, x: f64) -> f64 {
    if x < 0.0 {
        return f64::NAN;
    }
    igamc(df / 2.0, x / 2.0)
}
