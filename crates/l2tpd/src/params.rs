//! Conversion of resolved configuration into the protocol core's parameters.

use std::time::Duration;

use l2tp_config::{AuthMode, BearerType, Config, FramingType, SessionParams, TunnelParams};
use l2tp_proto::event::{AuthMode as ProtoAuthMode, TunnelConfig};
use l2tp_proto::reliable::ChannelConfig;
use l2tp_proto::session::CallParams;

/// The machine's host name, for the Host Name AVP when none is configured.
pub(crate) fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "l2tpd".to_string())
}

/// Framing bits of RFC 2661 §4.4.3 (bit 0 synchronous, bit 1 asynchronous).
fn framing_bits(sync: bool, asynchronous: bool) -> u32 {
    u32::from(sync) | (u32::from(asynchronous) << 1)
}

/// Bearer bits of RFC 2661 §4.4.3 (bit 0 digital, bit 1 analog).
fn bearer_bits(digital: bool, analog: bool) -> u32 {
    u32::from(digital) | (u32::from(analog) << 1)
}

/// Protocol parameters of a tunnel from its resolved tunnel parameters.
pub(crate) fn tunnel_config(p: &TunnelParams, config: &Config) -> TunnelConfig {
    let hello = (!p.hello_timeout.is_zero()).then_some(p.hello_timeout);
    TunnelConfig {
        host_name: p.host_name.clone().unwrap_or_else(host_name).into_bytes(),
        vendor_name: Some(b"l2tpd".to_vec()),
        firmware_revision: Some(0x0100),
        framing_caps: framing_bits(p.framing_caps.sync, p.framing_caps.async_),
        bearer_caps: bearer_bits(p.bearer_caps.digital, p.bearer_caps.analog),
        channel: ChannelConfig {
            rx_window: p.rx_window_size,
            tx_window_max: p.tx_window_size,
            retry_timeout: p.retry_timeout,
            retry_max_timeout: p.retry_max_timeout,
            max_retries: p.max_retries,
            ack_timeout: Duration::from_millis(100).min(p.retry_timeout / 2),
        },
        hello_interval: hello,
        secret: p.secret.as_ref().map(|s| s.as_bytes().to_vec()),
        auth_mode: match p.auth_mode {
            AuthMode::None => ProtoAuthMode::None,
            AuthMode::Simple => ProtoAuthMode::Simple,
            AuthMode::Challenge => ProtoAuthMode::Challenge,
        },
        hide_avps: p.hide_avps,
        establish_timeout: config.system.tunnel_establish_timeout,
        session_establish_timeout: config.system.session_establish_timeout,
        accept_lns_calls: true,
        accept_lac_calls: true,
        max_sessions: p.max_sessions,
        use_tiebreaker: p.use_tiebreaker,
        local_port: p.our_udp_port,
    }
}

/// Call parameters of a session we place, from its resolved session parameters.
pub(crate) fn call_params(p: &SessionParams) -> CallParams {
    CallParams {
        tx_connect_speed: p.tx_connect_speed,
        rx_connect_speed: (p.rx_connect_speed != 0).then_some(p.rx_connect_speed),
        framing_type: match p.framing_type {
            FramingType::Sync => 1,
            FramingType::Async => 2,
            FramingType::Any => 3,
        },
        bearer_type: match p.bearer_type {
            BearerType::Digital => Some(1),
            BearerType::Analog => Some(2),
            BearerType::Any => None,
        },
        minimum_bps: p.minimum_bps,
        maximum_bps: if p.maximum_bps == 0 {
            u32::MAX
        } else {
            p.maximum_bps
        },
        called_number: p.called_number.clone().map(String::into_bytes),
        calling_number: p.calling_number.clone().map(String::into_bytes),
        sub_address: p.sub_address.clone().map(String::into_bytes),
        sequencing_required: p.sequencing_required,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn tunnel_parameters_reach_the_protocol_core() {
        let text = r#"
            [tunnel_profile.default]
            host_name = "lac1"
            retry_timeout = "200ms"
            retry_max_timeout = "400ms"
            max_retries = 3
            hello_timeout = "0s"
            rx_window_size = 8
            framing_caps = ["sync"]
            [tunnel.t]
            peer_addr = "192.0.2.2"
        "#;
        let c = Config::from_str(text, Path::new("test.toml")).unwrap();
        let tc = tunnel_config(&c.local_tunnels()[0].params, &c);
        assert_eq!(tc.host_name, b"lac1");
        assert_eq!(tc.channel.retry_timeout, Duration::from_millis(200));
        assert_eq!(tc.channel.retry_max_timeout, Duration::from_millis(400));
        assert_eq!(tc.channel.max_retries, 3);
        assert_eq!(tc.channel.rx_window, 8);
        assert_eq!(tc.hello_interval, None, "hello_timeout 0 disables HELLO");
        assert_eq!(tc.framing_caps, 1);
        assert_eq!(tc.bearer_caps, 3);
    }

    #[test]
    fn session_parameters_become_call_parameters() {
        let text = r#"
            [tunnel.t]
            peer_addr = "192.0.2.2"
            [tunnel.t.session.s]
            framing_type = "async"
            bearer_type = "analog"
            called_number = "12345"
            rx_connect_speed = 64000
        "#;
        let c = Config::from_str(text, Path::new("test.toml")).unwrap();
        let cp = call_params(&c.local_tunnels()[0].sessions[0].params);
        assert_eq!(cp.framing_type, 2);
        assert_eq!(cp.bearer_type, Some(2));
        assert_eq!(cp.called_number.as_deref(), Some(&b"12345"[..]));
        assert_eq!(cp.rx_connect_speed, Some(64000));
        assert_eq!(cp.maximum_bps, u32::MAX, "0 means no limit");
    }
}
