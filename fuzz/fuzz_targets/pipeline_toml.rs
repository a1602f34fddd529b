//! Pipeline files (`factory loop`, from git): any text is a pipeline or an error, never a
//! panic, and an accepted schedule answers its next time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::time::{Duration, SystemTime};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A file the pipeline names is read (retrain.pipeline_file): keep the fuzzer off devices.
    if text.contains("/dev") || text.contains("/proc") || text.contains("/sys") {
        return;
    }
    let base = Path::new("/nonexistent/factory-fuzz");
    if let Ok(p) = pipeline::config::parse("p", text, base, &pipeline::Overrides::default()) {
        let _ = p.schedule.next_after(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    }
});
