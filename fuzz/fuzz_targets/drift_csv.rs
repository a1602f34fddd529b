//! `factory drift`'s reading of two CSV files, a reference and a current one (users' files,
//! the request log): any bytes give a report whose JSON and HTML render, or a typed error;
//! never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// This process's scratch folder; the two files are rewritten for every input.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("factory-fuzz-drift-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    // First byte: which options; then the reference file, a NUL and the current file (the
    // reference again when there is no NUL).
    let Some((&knobs, rest)) = data.split_first() else { return };
    let (reference, current) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, rest),
    };
    let dir = scratch();
    let (r, c) = (dir.join("reference.csv"), dir.join("current.csv"));
    std::fs::write(&r, reference).expect("write the reference");
    std::fs::write(&c, current).expect("write the current file");
    let mut options = drift::DriftOptions::new(&r, &c);
    options.threads = Some(1 + usize::from(knobs >> 7));
    options.temp_dir = Some(dir.clone());
    if knobs & 1 != 0 {
        options.target = Some("y".into());
    }
    if knobs & 2 != 0 {
        options.text_columns = vec!["t".into()];
    }
    options.task = match (knobs >> 2) & 3 {
        1 => drift::Task::Regression,
        2 => drift::Task::Classification,
        _ => drift::Task::Auto,
    };
    if knobs & 16 != 0 {
        options.prediction = "p".into();
        options.probability = "p".into();
    }
    if let Ok(report) = drift::run(&options, &drift::progress::Silent) {
        serde_json::to_string(&report).expect("a report serialises");
        drift::html::render(&report);
    }
});
