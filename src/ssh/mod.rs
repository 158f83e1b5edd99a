//! The russh client: host keys, authentication, connecting one hop or a chain.

pub mod known_hosts;
