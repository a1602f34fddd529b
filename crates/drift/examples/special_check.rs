use std::io::BufRead;
fn main() {
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let p: Vec<&str> = line.split_whitespace().collect();
        let f = |i: usize| p[i].parse::<f64>().unwrap();
        let out = match p[0] {
            "ndtr" => drift::special::ndtr(f(1)),
            "erfc" => drift::special::erfc(f(1)),
            "chdtrc" => drift::special::chdtrc(f(1), f(2)),
            "lgam" => drift::special::lgam(f(1)),
            "smirnov" => drift::special::smirnov_sf(f(1) as i64, f(2)),
            "kstwo" => drift::special::kstwo_sf(f(2), f(1) as i64),
            "ks" => drift::stats::numeric::ks_p_value(f(1), f(2) as u64, f(3) as u64),
            _ => panic!(),
        };
        println!("{:e}", out);
    }
}
