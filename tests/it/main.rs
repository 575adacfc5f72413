//! End-to-end tests: the built `kubectl-orchscale` binary against the simulated cluster
//! (orchscale-sim) over HTTPS, through a kubeconfig, as a user would run it.

mod harness;

mod capacity;
mod cli;
mod conn_matrix;
mod conn_secrets;
mod conn_support;
mod connections;
mod context;
mod db_resources;
mod distribution;
mod docs;
mod faults;
mod follow;
mod follow_faults;
mod follow_recovery;
mod gpu;
mod hpa;
mod kubectl;
mod layers;
mod output;
mod prediction;
mod profile_config;
mod profile_hpa;
mod profile_matrix;
mod profile_rollout;
mod profile_validate;
mod profiles;
mod progress;
mod prompt;
mod recommend;
mod release_completion;
mod release_install;
mod release_rbac;
mod release_script;
mod resources;
mod rollout;
mod scale;
mod schema;
mod status;
mod terminal;
mod undo;
mod validate;
mod warning_events;
mod write_faults;
