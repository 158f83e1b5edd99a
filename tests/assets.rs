//! The example configs in assets/ load with no problem, so the README's examples stay true.

mod support;

use support::Scratch;

#[test]
fn the_example_configs_load_cleanly() {
    let root = env!("CARGO_MANIFEST_DIR");
    let s = Scratch::new();
    let r = s.warren(&[
        "--ssh-config",
        &format!("{root}/assets/ssh_config.example"),
        "--config",
        &format!("{root}/assets/epoch.example.toml"),
        "list",
        "--json",
    ]);
    r.expect_code(0);
    assert!(
        r.stderr().is_empty(),
        "the examples have problems:\n{}",
        r.describe()
    );
    let names: Vec<String> = r
        .json()
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    assert_eq!(
        names,
        [
            "bastion",
            "pg-prod",
            "bastion-eu",
            "redis-eu",
            "socks",
            "orders",
            "billing",
            "sessions"
        ]
    );
    let v = r.json();
    let billing = &v[6];
    let hops: Vec<&str> = billing["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .filter_map(|h| h["host"].as_str())
        .collect();
    assert_eq!(
        hops,
        [
            "vpn-gw.example.com",
            "edge.example.com",
            "bastion.eu.example.com"
        ]
    );
    let redis = &v[3];
    let hops: Vec<&str> = redis["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(hops, ["bastion", "bastion-eu", "redis-eu"]);
}
