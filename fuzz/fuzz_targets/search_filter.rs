//! MLflow's search filter language, from text to SQL: the first line is the filter, the
//! others are `order_by` clauses. It parses and compiles for every search on both dialects
//! (a statement) or is refused as an invalid parameter (a 400), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracking::{compile_search, Dialect, SearchKind, StoreError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (filter, rest) = text.split_once('\n').unwrap_or((text, ""));
    let _ = tracking::search::parse_filter(filter);
    let order_by: Vec<String> = rest.lines().map(str::to_string).collect();
    for kind in SearchKind::ALL {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            match compile_search(kind, dialect, filter, &order_by) {
                Ok(_) | Err(StoreError::InvalidParameter(_)) => {}
                Err(e) => panic!("{kind:?}: not a 400: {e:?}"),
            }
        }
    }
});
