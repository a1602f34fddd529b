//! One `order_by` clause, parsed and compiled for every search: a sort or an invalid
//! parameter (a 400), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracking::{compile_search, Dialect, SearchKind, StoreError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(o) = tracking::search::parse_order_by(text) {
        assert!(!o.key.is_empty(), "{text:?} sorts on an empty key");
    }
    let order_by = [text.to_string()];
    for kind in SearchKind::ALL {
        match compile_search(kind, Dialect::Postgres, "", &order_by) {
            Ok(_) | Err(StoreError::InvalidParameter(_)) => {}
            Err(e) => panic!("{kind:?}: not a 400: {e:?}"),
        }
    }
});
