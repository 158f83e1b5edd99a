//! ProxyJump chains: which hops a connection to a host goes through, each resolved the way
//! `ssh -J` resolves it.
//!
//! `ProxyJump a,b` for host H makes ssh run `ssh -J a -W H:port b`: the last jump `b` is
//! resolved from the config under its own name, with the user and port written in the jump
//! spec winning, and with `-J a` replacing b's own ProxyJump. The first jump `a` is resolved
//! with its own ProxyJump, if it has one. So a chain is built from the end backwards.

use std::sync::Arc;

use super::resolve::Overrides;
use super::{HostConfig, SshConfig};
use crate::config::destination::Destination;
use crate::config::origin::{Origin, Problem, Sourced};

/// The longest chain followed before warren calls it a loop.
const MAX_HOPS: usize = 16;

/// A resolved host of a chain, and for a jump host the key it was resolved under.
pub type Link = (Arc<HostConfig>, Option<String>);

/// The hops to reach `target`, outermost first; the last element is `target` itself. Each
/// jump host comes with its key: the name and the jump spec's values it was resolved with,
/// which decide it entirely (a 10,000-host config through 10 bastions resolves each once;
/// see [`SshConfig::resolve_jump`]). A ProxyJump loop or an over-long chain is a problem, and
/// the chain stops there.
pub fn hops(config: &SshConfig, target: HostConfig) -> (Vec<Link>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut chain = vec![(Arc::new(target), None)];
    while let Some(jump) = chain.first().and_then(|(c, _)| c.proxy_jump.clone()) {
        let Some((last, rest)) = jump.value.split_last() else {
            break;
        };
        if chain.len() > MAX_HOPS || chain.iter().any(|(h, _)| h.alias == last.host) {
            let path = chain
                .iter()
                .rev()
                .map(|(h, _)| h.alias.as_str())
                .collect::<Vec<_>>()
                .join(" -> ");
            problems.push(
                Problem::error(jump.origin.clone(), format!("ProxyJump loop or chain longer than {MAX_HOPS} hops: {path} -> {}", last.host))
                    .with_fix("make the jump hosts' ProxyJump lines end at a host without one (ProxyJump none)"),
            );
            break;
        }
        let over = overrides(last, rest, &jump.origin);
        let key = format!("{}\0{over:?}", last.host);
        let hop = config.resolve_jump(&last.host, &over, &key);
        chain.insert(0, (hop, Some(key)));
    }
    (chain, problems)
}

fn overrides(spec: &Destination, rest: &[Destination], origin: &Origin) -> Overrides {
    Overrides {
        user: spec.user.clone().map(|u| Sourced::new(u, origin.clone())),
        port: spec.port.map(|p| Sourced::new(p, origin.clone())),
        jump: (!rest.is_empty()).then(|| Sourced::new(rest.to_vec(), origin.clone())),
    }
}
