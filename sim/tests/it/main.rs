//! Integration tests of orchscale-sim over real HTTPS requests: discovery, every verb and patch
//! type, errors as Status objects, watches, faults, access reviews, the service proxy, and
//! real kubectl against the sim.

mod admission;
mod binary;
mod common;
mod crud;
mod discovery;
mod faults;
mod knobs;
mod kubectl;
mod lost_answers;
mod paging;
mod patch;
mod profiles;
mod prometheus;
mod rbac;
mod review_proxy_metrics;
mod robustness;
mod watch;
