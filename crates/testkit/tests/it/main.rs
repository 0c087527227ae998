//! The integration tests: the real server on a real port, driven over HTTP. One test binary, one module per area
//! (STYLE §9), so link time is paid once.

mod auth;
mod sync;
