//! The `vantage` binary's library half: command-line parsing, layered configuration, wiring of stores
//! and services for each mode, and telemetry set-up. It composes the other crates and adds no rule.

pub mod application;
mod checkpoints;
pub mod cli;
mod config;
mod evidence;
mod gate;
mod read_side;
mod scan;
mod telemetry;
