//! What evaluation needs from the outside world: a clock, a source of randomness, and a probe that
//! says whether a candidate value already exists in the target directory.
//!
//! The crate never reads the wall clock or the OS random source; callers pass them in, and the
//! deterministic helpers here ([`FixedClock`], [`SplitMix64`]) make results reproducible in tests.

use std::cell::Cell;
use std::collections::HashSet;

use time::OffsetDateTime;

/// The current time, as the caller sees it.
pub trait Clock {
    fn now(&self) -> OffsetDateTime;
}

/// A clock stopped at one instant.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

/// A stream of random 64-bit numbers (used by `Guid` and `RandomString`).
pub trait RandomSource {
    fn next_u64(&self) -> u64;
}

/// The SplitMix64 generator: tiny, fast and deterministic for a given seed. Not cryptographic.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: Cell<u64>,
}

impl SplitMix64 {
    /// The seed used when the caller gives none.
    pub const DEFAULT_SEED: u64 = 0x7465_6e61_6e74_7379; // "tenantsy"

    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: Cell::new(seed) }
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&self) -> u64 {
        let state = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.state.set(state);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Answers `SelectUniqueValue`'s question: does the target directory already hold this value?
pub trait UniquenessProbe {
    fn is_taken(&self, candidate: &str) -> bool;
}

/// A probe for which nothing is taken.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoExistingValues;

impl UniquenessProbe for NoExistingValues {
    fn is_taken(&self, _candidate: &str) -> bool {
        false
    }
}

/// A probe over a fixed set of taken values, compared ignoring case (directory look-ups of UPN and
/// mail are case-insensitive).
#[derive(Clone, Debug, Default)]
pub struct ExistingValues {
    taken: HashSet<String>,
}

impl ExistingValues {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(values: I) -> ExistingValues {
        ExistingValues { taken: values.into_iter().map(|value| value.as_ref().to_lowercase()).collect() }
    }
}

impl UniquenessProbe for ExistingValues {
    fn is_taken(&self, candidate: &str) -> bool {
        self.taken.contains(&candidate.to_lowercase())
    }
}

/// Everything a mapping evaluation may ask of its caller.
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn RandomSource,
    pub uniqueness: &'a dyn UniquenessProbe,
    /// The source tenant's id, needed by the cross-tenant `AltSecIdFromNetId` function.
    pub source_tenant_id: Option<&'a str>,
}

impl<'a> EvalContext<'a> {
    pub fn new(clock: &'a dyn Clock, rng: &'a dyn RandomSource) -> EvalContext<'a> {
        EvalContext { clock, rng, uniqueness: &NoExistingValues, source_tenant_id: None }
    }

    pub fn with_uniqueness(self, uniqueness: &'a dyn UniquenessProbe) -> EvalContext<'a> {
        EvalContext { uniqueness, ..self }
    }

    pub fn with_source_tenant(self, source_tenant_id: &'a str) -> EvalContext<'a> {
        EvalContext { source_tenant_id: Some(source_tenant_id), ..self }
    }
}

impl std::fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalContext").field("source_tenant_id", &self.source_tenant_id).finish_non_exhaustive()
    }
}
