//! `basic_auth.ini` as Python's configparser reads it (sections, continuations, DEFAULT,
//! `%(name)s` interpolation): any text gives settings or a configuration error, never a
//! panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = auth::AuthConfig::from_ini(text);
});
