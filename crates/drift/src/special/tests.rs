//! Special functions against values printed by scipy 1.17.1 (`scipy.special`, `scipy.stats`).

use super::*;

/// Asserts `got` is within 1e-14 relative of scipy's `want`.
fn check(what: &str, got: f64, want: f64) {
    check_within(what, got, want, 1e-14);
}

fn check_within(what: &str, got: f64, want: f64, tolerance: f64) {
    let rel = if want == got { 0.0 } else { ((got - want) / want).abs() };
    assert!(rel <= tolerance, "{what}: got {got:e}, scipy {want:e} (rel {rel:e})");
}

#[test]
fn normal_cdf_and_erfc() {
    check("ndtr(1.5)", ndtr(1.5), 0.9331927987311419);
    check("ndtr(-7.25)", ndtr(-7.25), 2.0838581586720548e-13);
    check("erfc(0.3)", erfc(0.3), 0.6713732405408726);
    check("erfc(9)", erfc(9.0), 4.137031746513811e-37);
}

#[test]
fn chi_square_survival() {
    check("chdtrc(3, 7.5)", chdtrc(3.0, 7.5), 0.0575584519726364);
    check("chdtrc(1, 0.4)", chdtrc(1.0, 0.4), 0.5270892568655381);
    // a > 20 and x ≈ a: the asymptotic series.
    check("chdtrc(60, 61)", chdtrc(60.0, 61.0), 0.43974839222478407);
    check("chdtrc(500, 700)", chdtrc(500.0, 700.0), 7.728992111216604e-09);
    assert_eq!(chdtrc(4.0, f64::INFINITY), 0.0);
}

#[test]
fn log_gamma() {
    check("lgam(0.75)", lgam(0.75), 0.20328095143129538);
    check("lgam(1234.5)", lgam(1234.5), 7550.550901077894);
}

#[test]
fn smirnov_one_sided() {
    check("smirnov(5, 0.3)", smirnov_sf(5, 0.3), 0.34282);
    check("smirnov(100, 0.05)", smirnov_sf(100, 0.05), 0.5871453380805337);
    check("smirnov(1000, 0.08)", smirnov_sf(1000, 0.08), 2.577094692394912e-06);
    check("smirnov(20000, 0.01)", smirnov_sf(20000, 0.01), 0.01819312895757209);
}

#[test]
fn kstwo_survival_every_branch() {
    // 1 − CDF near 1 cancels digits (and numpy's matrix products sum in another order), so
    // these agree to ~1e-12 rather than to the last bit.
    let check = |what: &str, got, want| check_within(what, got, want, 1e-11);
    // Ruben–Gambino, Pomeranz, Durbin matrix, 2·smirnov, Pelz–Good.
    check("kstwo(10, 0.2)", kstwo_sf(0.2, 10), 0.7487190399999999);
    check("kstwo(10, 0.6)", kstwo_sf(0.6, 10), 0.0005681672000000003);
    check("kstwo(100, 0.05)", kstwo_sf(0.05, 100), 0.9532159710635725);
    check("kstwo(100, 0.2)", kstwo_sf(0.2, 100), 0.0005551927327988775);
    check("kstwo(1000, 0.02)", kstwo_sf(0.02, 1000), 0.8108971656895577);
    check("kstwo(1000, 0.06)", kstwo_sf(0.06, 1000), 0.001428597887952891);
    check("kstwo(5000, 0.04)", kstwo_sf(0.04, 5000), 2.1805586378557164e-07);
    check("kstwo(200000, 0.002)", kstwo_sf(0.002, 200_000), 0.39995085369038097);
    assert_eq!(kstwo_sf(0.001, 100), 1.0);
    assert_eq!(kstwo_sf(1.0, 100), 0.0);
}
