//! # godwit-node
//!
//! The Godwit node (`godwitd`). At this stage it holds the command line and the demo, which runs
//! the protocol layer end to end; transport, storage and relay follow.

pub mod cli;
pub mod config;
pub mod demo;
pub mod net;
pub mod store;
pub mod tls;

pub use godwit_certs as certs;
pub use godwit_certs::files;
