//! Pipeline stages (`[stages.*]` TOML, `dvc.yaml`) and the lock file: any text gives stages
//! whose order respects every dependency, or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::stages::{dag::Dag, lock::Lock, Definition};
use std::collections::BTreeMap;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.contains("/dev") || text.contains("/proc") || text.contains("/sys") {
        return;
    }
    let _ = Lock::parse(text);
    let _ = Definition::parse_dvc_yaml(text, Path::new("/nonexistent/factory-fuzz/dvc.yaml"));
    let Ok(def) = Definition::parse_toml(text, Path::new("/nonexistent/factory-fuzz/p.toml")) else { return };
    let Ok(resolved) = def.resolve(&BTreeMap::new(), true) else { return };
    if let Ok(dag) = Dag::build(&resolved.stages) {
        let pos = |x: usize| dag.order.iter().position(|&y| y == x).expect("every stage is ordered");
        for (j, ups) in dag.upstream.iter().enumerate() {
            for (i, _) in ups {
                assert!(pos(*i) < pos(j), "stage {i} runs after {j}, which depends on it");
            }
        }
    }
});
