//! kubectl-orchscale: the LLM Orchestrator scaling runbook as safe, guided kubectl commands.

pub mod plan;
pub mod quantity;
