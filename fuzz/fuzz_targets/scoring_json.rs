//! MLflow scoring bodies (`/invocations`, application/json): any bytes as JSON, read in any
//! of MLflow's four shapes against a schema, give a frame that fits it or an input error
//! (a 400), never a panic.
#![no_main]

use learn::{ColumnKind, Field, Schema};
use libfuzzer_sys::fuzz_target;
use package::PackageError;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let schema = Schema {
        fields: vec![
            Field { name: "x".into(), kind: ColumnKind::Numeric },
            Field { name: "c".into(), kind: ColumnKind::Categorical },
        ],
    };
    match package::input::from_json(payload, &schema) {
        Ok(frame) => {
            assert!(frame.n_rows() > 0);
            let names: Vec<&str> = frame.columns().iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, ["x", "c"]);
        }
        Err(PackageError::Input(_)) => {}
        Err(e) => panic!("not an input error: {e:?}"),
    }
});
