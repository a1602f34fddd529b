//! `bench-sketch`: what online drift adds to one scored request in `factory serve` — the time of
//! `sketch::Recorder::observe` for a one-row frame of the California housing features (8
//! numeric, 1 categorical), the same call `Serving::score` makes, on 1 and on 2 threads.
//!
//! The profile is built from the housing CSV (as `factory train` does); the rows observed cycle
//! through the same file, shifted by half of the rows so that they are not the reference itself.
//! The figure to compare with: one-row requests take ~25–45 µs of serve time each
//! (bench/README.md), so 5 % of that is ~1.3–2.2 µs.

use anyhow::Context;
use clap::Parser;
use package::sketch::{Recorder, RecorderConfig, Values};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// The California housing CSV.
    #[arg(long, default_value = "../shared/datasets/california_housing/housing.csv")]
    data: PathBuf,
    /// Calls per thread.
    #[arg(long, default_value_t = 2_000_000)]
    calls: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let file = std::fs::File::open(&args.data).with_context(|| format!("opening {}", args.data.display()))?;
    let frame = learn::read_csv(file)?;
    let features = frame.without("median_house_value");
    let profile = Arc::new(package::profile_of(&features));
    let n = features.n_rows();
    // One-row frames, as a single-row request decodes to.
    let rows: Vec<learn::Frame> = (0..1000).map(|i| features.select_rows(&[(i * 7919 + n / 2) % n])).collect();
    println!(
        "profile: {} columns, {} reference rows; {} calls per thread",
        profile.columns.len(),
        profile.rows,
        args.calls
    );
    for threads in [1usize, 2] {
        let recorder = Arc::new(Recorder::new(profile.clone(), "1", RecorderConfig::default()));
        let rows = Arc::new(rows.clone());
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (recorder, rows) = (recorder.clone(), rows.clone());
                std::thread::spawn(move || {
                    for i in 0..args.calls {
                        let frame = &rows[(i + t * 500) % rows.len()];
                        let columns = frame.columns();
                        recorder.observe(1, |name| match columns.iter().find(|c| *c.name == *name).map(|c| &c.data) {
                            Some(learn::ColumnData::Numeric(v)) => Values::Numeric(v),
                            Some(learn::ColumnData::Categorical(v)) => Values::Categorical(v),
                            _ => Values::Absent,
                        });
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a thread panicked"))?;
        }
        let elapsed = start.elapsed();
        let per_call = elapsed.as_secs_f64() * 1e6 / args.calls as f64;
        let rows_seen = recorder.lifetime().rows;
        anyhow::ensure!(rows_seen == (threads * args.calls) as u64, "counted {rows_seen} rows");
        println!(
            "{threads} thread(s): {per_call:.3} µs per one-row observe (wall time per call on each thread), \
             {:.1} M calls/s in all",
            (threads * args.calls) as f64 / elapsed.as_secs_f64() / 1e6
        );
    }
    Ok(())
}
