//! orchscale-sim: a simulated Kubernetes API server on loopback, for the tests,
//! benchmarks and try-it command of kubectl-orchscale.

pub mod controllers;
pub mod scenario;
pub mod store;
