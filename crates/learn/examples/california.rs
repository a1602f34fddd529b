//! Benchmark helper for `bench/learn/run.sh`: fits the default GBM on given train/test
//! splits of California housing and prints one JSON line per split (test RMSE, fit seconds).
//!
//! Usage: `california HOUSING_CSV SPLITS_JSON [REPEATS]`, where SPLITS_JSON is
//! `[{"seed": 0, "train": [row, …], "test": [row, …]}, …]` (0-based data rows). Fit time is
//! the median of REPEATS fits (default 3); every repeat must give identical bytes.

use std::time::Instant;

use learn::{ColumnData, GbmParams, ModelSpec, Task};
use serde::Deserialize;

#[derive(Deserialize)]
struct Split {
    seed: u64,
    train: Vec<usize>,
    test: Vec<usize>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: california HOUSING_CSV SPLITS_JSON [REPEATS]".into());
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
        let spec = ModelSpec::Gbm(GbmParams { seed: s.seed, ..GbmParams::default() });
        let mut times = Vec::new();
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
                "n_iter": report.n_iter,
                "threads": pool.current_num_threads(),
            })
        );
    }
    Ok(())
}
