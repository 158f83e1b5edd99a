//! The russh client: host keys, authentication, connecting one hop or a chain.

pub mod auth;
pub mod client;
pub mod known_hosts;
pub mod replay;
