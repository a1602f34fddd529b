//! MLflow scoring bodies as CSV (`/invocations`, text/csv): any bytes give a frame that fits
//! the schema or an input error (a 400), never a panic.
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
    match package::input::from_csv(data, &schema) {
        Ok(frame) => {
            let names: Vec<&str> = frame.columns().iter().map(|c| &*c.name).collect();
            assert!(names.contains(&"x") && names.contains(&"c"), "{names:?}");
        }
        Err(PackageError::Input(_)) => {}
        Err(e) => panic!("not an input error: {e:?}"),
    }
});
