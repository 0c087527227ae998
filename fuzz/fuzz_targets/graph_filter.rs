//! Fuzz target: the Graph `$filter` parser never panics, evaluation never panics, and a parsed filter prints
//! to text that parses back to the same filter (see `tenantsync_graph::fuzzing::check_filter`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tenantsync_graph::fuzzing::check_filter(data);
});
