//! The `vantage` binary's library half: command-line parsing, layered configuration, wiring of stores
//! and services for each mode, and telemetry set-up. It composes the other crates and adds no rule.

/// The process's allocator, for `vantage` and every binary that links this library (the
/// benchmarks measure what ships): mimalloc. glibc's malloc and free took about a quarter of a
/// rebuild's projector threads, allocating and freeing its many short-lived documents and JSON
/// values (BENCHMARKS.md, "Rebuild: lanes, pipelined batches and the allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod application;
mod checkpoints;
pub mod cli;
mod config;
mod evidence;
mod gate;
mod read_side;
mod scan;
mod telemetry;
