//! The Vantage domain core: identifiers, validated value types, the commands and events of every
//! aggregate, and the pure decision functions that turn one into the other.
//!
//! This crate does no I/O. It depends on no runtime, database or HTTP crate, reads no clock and draws no
//! random numbers: ids, times and secrets arrive inside commands, chosen by the application layer. Every
//! rule of SPEC §4 ("cancel a terminal scan is rejected", "revoking the last admin key is rejected", …)
//! lives here and is tested without a store.

pub mod aggregate;
pub mod apikey;
pub mod badge;
pub mod content;
pub mod event;
pub mod ids;
pub mod notification;
pub mod project;
pub mod scan;
pub mod schedule;
pub mod scope;
pub mod target;
pub mod tenant;
mod text;
pub mod triage;
pub mod webhook;

pub use aggregate::{Aggregate, DomainError};
pub use event::{DomainEvent, EventTypeInfo, UpcastError};

#[cfg(test)]
mod given_when_then;
