//! `GET /drift/sketch` answers as the loop reads them from serve replicas (online drift): any
//! body either fails to parse or check, or merges and is compared with its profile by
//! `drift::online::report` without a panic (a report, or an error naming what is wrong).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = serde_json::from_slice::<sketch::SketchAnswer>(data) else { return };
    for mut entry in answer.sketches {
        // The id is a sha256 of the content, which a fuzzer cannot forge: recompute it so the
        // checks and the statistics behind it are reached.
        entry.profile.id = entry.profile.content_id();
        if entry.profile.check().is_err() || entry.sketch.check(&entry.profile).is_err() {
            continue;
        }
        let mut merged = entry.profile.empty_sketch();
        if merged.merge(&entry.sketch).is_err() || merged.merge(&entry.sketch).is_err() {
            continue;
        }
        let _ = drift::online::report(&entry.profile, &merged, &drift::DriftOptions::new("p", "s"));
    }
});
