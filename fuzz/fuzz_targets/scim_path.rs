//! Fuzz target: the SCIM PATCH-path parser never panics, and a parsed path prints to text that parses back
//! to the same path (see `tenantsync_scim::fuzzing::check_path`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tenantsync_scim::fuzzing::check_path(data);
});
