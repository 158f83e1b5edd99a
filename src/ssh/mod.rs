//! The russh client: host keys, authentication, connecting one hop or a chain.

pub mod algorithms;
pub mod auth;
pub mod client;
pub mod handler;
pub mod host_key;
pub mod identity;
pub mod known_hosts;
pub mod replay;
pub mod revoked;
