//! Benchmark helper for `bench/learn`: fits the default GBM (or one with some parameters
//! changed) on given train/test splits of a CSV and prints one JSON line per split (test
//! RMSE, fit seconds, CPU seconds, iterations).
//!
//! Usage: `gbm DATA_CSV TARGET SPLITS_JSON [REPEATS] [--params JSON]`, where SPLITS_JSON is
//! `[{"seed": 0, "train": [row, …], "test": [row, …]}, …]` (0-based data rows) and `--params`
//! is a JSON object of [`learn::GbmParams`] fields laid over the defaults (e.g.
//! `{"refit": false}`; the split's seed is always the `seed`). Fit time is the median of
//! REPEATS fits (default 3); every repeat must give identical bytes.

use std::time::Instant;

use learn::{ColumnData, GbmParams, ModelSpec, Task};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Split {
    seed: u64,
    train: Vec<usize>,
    test: Vec<usize>,
}

/// One output line, read by `bench/learn/bench.py`.
#[derive(Serialize)]
struct Outcome {
    seed: u64,
    rmse: f64,
    fit_seconds: f64,
    fit_seconds_all: Vec<f64>,
    cpu_seconds_per_fit: Option<f64>,
    n_iter: usize,
    threads: usize,
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

/// The defaults with the fields of `overrides` (a JSON object) laid over them.
fn params(overrides: Option<&str>) -> Result<GbmParams, Box<dyn std::error::Error>> {
    let mut base = serde_json::to_value(GbmParams::default())?;
    if let Some(text) = overrides {
        let serde_json::Value::Object(fields) = serde_json::from_str(text)? else {
            return Err("--params must be a JSON object".into());
        };
        for (k, v) in fields {
            base[k] = v;
        }
    }
    Ok(serde_json::from_value(base)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().collect();
    let overrides = match args.iter().position(|a| a == "--params") {
        Some(i) if i + 1 < args.len() => Some(args.drain(i..i + 2).nth(1).unwrap_or_default()),
        Some(_) => return Err("--params needs a JSON object".into()),
        None => None,
    };
    if args.len() < 4 {
        return Err("usage: gbm DATA_CSV TARGET SPLITS_JSON [REPEATS] [--params JSON]".into());
    }
    let base = params(overrides.as_deref())?;
    let repeats: usize = args.get(4).map_or(Ok(3), |s| s.parse())?;
    let frame = learn::read_csv(std::fs::File::open(&args[1])?)?;
    let target = args[2].as_str();
    let splits: Vec<Split> = serde_json::from_slice(&std::fs::read(&args[3])?)?;
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
        let spec = ModelSpec::Gbm(GbmParams { seed: s.seed, ..base.clone() });
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
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let (model, report) = first.expect("at least one fit");
        let p = model.predict(&x_test)?;
        let out = Outcome {
            seed: s.seed,
            rmse: learn::rmse(&y_test, &p),
            fit_seconds: sorted[sorted.len() / 2],
            fit_seconds_all: times,
            cpu_seconds_per_fit: cpu,
            n_iter: report.n_iter,
            threads: pool.current_num_threads(),
        };
        println!("{}", serde_json::to_string(&out)?);
    }
    Ok(())
}
