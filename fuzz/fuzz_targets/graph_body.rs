//! Fuzz target: checking a user or group `POST`/`PATCH` body never panics, whatever JSON arrives (see `tenantsync_graph::fuzzing::check_body`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tenantsync_graph::fuzzing::check_body(data);
});
