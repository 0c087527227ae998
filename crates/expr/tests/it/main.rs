//! The crate's one integration-test binary: data-driven checks of the three languages against the
//! documented examples (spec vectors), the JSON-lines entry points, property tests and fuzz
//! regressions.

mod fuzz_regressions;
mod jsonl;
mod mapping;
mod props;
mod rules;
mod scoping;
