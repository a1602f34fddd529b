//! MLflow scoring bodies (`/invocations`, application/json): any bytes as JSON, read in any
//! of MLflow's four shapes against a schema, give a frame that fits it or an input error
//! (a 400), never a panic. The direct reader of `dataframe_split` bodies (`from_split_json`,
//! the serving hot path) reads the same frame as the general one, or leaves the body to it.
#![no_main]

use learn::{ColumnKind, Field, Schema};
use libfuzzer_sys::fuzz_target;
use package::PackageError;

fuzz_target!(|data: &[u8]| {
    let schema = Schema {
        fields: vec![
            Field { name: "x".into(), kind: ColumnKind::Numeric },
            Field { name: "c".into(), kind: ColumnKind::Categorical },
        ],
    };
    let fast = package::input::from_split_json(data, &schema);
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else {
        assert!(fast.is_none(), "the fast path read a body that is not JSON");
        return;
    };
    match package::input::from_json(payload, &schema) {
        Ok(frame) => {
            assert!(frame.n_rows() > 0);
            let names: Vec<&str> = frame.columns().iter().map(|c| &*c.name).collect();
            assert_eq!(names, ["x", "c"]);
            if let Some(fast) = fast {
                // Debug, not ==: a missing number is NaN on both sides.
                assert_eq!(format!("{fast:?}"), format!("{frame:?}"));
            }
        }
        Err(PackageError::Input(_)) => assert!(fast.is_none(), "the fast path read a body the general one refuses"),
        Err(e) => panic!("not an input error: {e:?}"),
    }
});
