//! Benchmark helper for `bench/learn/run.sh`: fits the default GBM on given train/test
//! splits of California housing and prints one JSON line per split (test RMSE, fit seconds).
//!
//! Usage: `california HOUSING_CSV SPLITS_JSON [REPEATS] [--no-refit]`, where SPLITS_JSON is
//! `[{"seed": 0, "train": [row, …], "test": [row, …]}, …]` (0-based data rows). Fit time is
//! the median of REPEATS fits (default 3); every repeat must give identical bytes.
//! `--no-refit` sets `GbmParams::refit = false` (scikit-learn's early-stopping behaviour).

use std::time::Instant;

use learn::{ColumnData, GbmParams, ModelSpec, Task};
use serde::Deserialize;

#[derive(Deserialize)]
struct Split {
    seed: u64,
    train: Vec<usize>,
    test: Vec<usize>,
}

/// CPU seconds (user + system) used by this process so far, from `/proc/self/stat` (Linux;
/// clock ticks of 1/100 s); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().collect();
    let refit = !args.iter().any(|a| a == "--no-refit");
    args.retain(|a| a != "--no-refit");
    if args.len() < 3 {
        return Err("usage: california HOUSING_CSV SPLITS_JSON [REPEATS] [--no-refit]".into());
    }
    let repeats: usize = args.get(3).map_or(Ok(3), |s| s.parse())?;
    let frame = learn::read_csv(std::fs::File::open(&args[1])?)?;
    let splits: Vec<Split> = serde_json::from_slice(&std::fs::read(&args[2])?)?;
    let target = "median_house_value";
    let Some(ColumnData::Numeric(y)) = frame.column(target).map(|c| &c.data) else {
        return Err(format!("no numeric column {target}").into());
    };
    let x = frame.without(target);
    // Fit inside a pool of RAYON_NUM_THREADS (default: all cores) workers, so the calling
    // thread adds no parallelism of its own and a thread limit holds exactly.
    let pool = rayon::ThreadPoolBuilder::new().build()?;
    for s in splits {
        let x_train = x.select_rows(&s.train);
        let x_test = x.select_rows(&s.test);
        let y_train: Vec<f64> = s.train.iter().map(|&i| y[i]).collect();
        let y_test: Vec<f64> = s.test.iter().map(|&i| y[i]).collect();
        let spec = ModelSpec::Gbm(GbmParams { seed: s.seed, refit, ..GbmParams::default() });
        let mut times = Vec::new();
        let cpu_start = cpu_seconds();
        let mut first: Option<(learn::Model, learn::TrainReport)> = None;
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            let fitted = pool.install(|| learn::fit(&x_train, &y_train, Task::Regression, &spec, &mut |_, _| {}))?;
            times.push(t.elapsed().as_secs_f64());
            match &first {
                Some((m, _)) => assert_eq!(m.to_bytes(), fitted.0.to_bytes(), "not deterministic"),
                None => first = Some(fitted),
            }
        }
        let cpu = cpu_start.zip(cpu_seconds()).map(|(a, b)| (b - a) / times.len() as f64);
        times.sort_by(f64::total_cmp);
        let (model, report) = first.expect("at least one fit");
        let p = model.predict(&x_test)?;
        println!(
            "{}",
            serde_json::json!({
                "seed": s.seed,
                "rmse": learn::rmse(&y_test, &p),
                "fit_seconds": times[times.len() / 2],
                "fit_seconds_all": times,
                "cpu_seconds_per_fit": cpu,
                "n_iter": report.n_iter,
                "threads": pool.current_num_threads(),
            })
        );
    }
    Ok(())
}
