//! Fuzz target: the scoping parser never panics, evaluation never panics, and a parsed tree prints
//! to text that parses back to the same tree (see `tenantsync_expr::fuzzing::check_scoping`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tenantsync_expr::fuzzing::check_scoping(data);
});
