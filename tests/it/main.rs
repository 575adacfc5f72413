//! End-to-end tests: the built binary against the simulated cluster.
