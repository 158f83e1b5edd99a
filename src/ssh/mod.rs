//! The russh client: host keys, authentication, connecting one hop or a chain (over TCP, a
//! channel of the previous hop, or a ProxyCommand's pipes), and the commands a config asks
//! for while connecting (ProxyCommand, KnownHostsCommand, and warren's certificate_command).

pub mod algorithms;
pub mod auth;
pub mod certificate;
pub mod client;
pub mod handler;
pub mod host_key;
pub mod hosts_command;
pub mod identity;
pub mod known_hosts;
pub mod proxy;
pub mod replay;
pub mod revoked;
