//! Call (session) state machines of RFC 2661 §7.4 (incoming calls) and
//! §7.3 / §7.5 (outgoing calls), from the point of view of either peer.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use crate::wire::SessionId;

/// The four call types of RFC 2661 (§5.2, §5.3), named by our role and the call's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallType {
    /// We are the LAC and signal an incoming call: ICRQ → ICRP → ICCN (RFC 2661 §7.4.1).
    LacIncoming,
    /// We are the LNS and answer an incoming call: ICRQ ← , ICRP →, ICCN ← (RFC 2661 §7.4.2).
    LnsIncoming,
    /// We are the LNS and request an outgoing call: OCRQ → OCRP ← OCCN ← (RFC 2661 §7.5.2).
    LnsOutgoing,
    /// We are the LAC and place an outgoing call for the LNS: OCRQ ← OCRP → OCCN → (RFC 2661 §7.5.1).
    LacOutgoing,
}

impl CallType {
    /// True when we are the LNS for this call (the kernel's `L2TP_ATTR_LNS_MODE`).
    pub fn is_lns(self) -> bool {
        matches!(self, Self::LnsIncoming | Self::LnsOutgoing)
    }

    /// True when we sent the first message of the call (ICRQ or OCRQ).
    pub fn is_initiator(self) -> bool {
        matches!(self, Self::LacIncoming | Self::LnsOutgoing)
    }

    /// The message that opens this call: ICRQ for incoming calls, OCRQ for outgoing.
    pub fn request_type(self) -> crate::wire::MessageType {
        match self {
            Self::LacIncoming | Self::LnsIncoming => crate::wire::MessageType::ICRQ,
            Self::LnsOutgoing | Self::LacOutgoing => crate::wire::MessageType::OCRQ,
        }
    }

    /// Short name used in logs and the management API: `lac-incoming`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LacIncoming => "lac-incoming",
            Self::LnsIncoming => "lns-incoming",
            Self::LnsOutgoing => "lns-outgoing",
            Self::LacOutgoing => "lac-outgoing",
        }
    }
}

impl std::fmt::Display for CallType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// State of one call. Each state carries what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// The call was requested locally but the tunnel is not established yet.
    WaitTunnel,
    /// We sent ICRQ / OCRQ and wait for ICRP / OCRP.
    WaitReply,
    /// We sent ICRP (LNS incoming) and wait for ICCN, or received OCRP (LNS
    /// outgoing) and wait for OCCN.
    WaitConnect,
    /// The call is up. `kernel` tells whether the data plane session exists.
    Established {
        /// Data plane programmed and confirmed by the driver.
        kernel: KernelState,
    },
}

/// Progress of a kernel object the driver is asked to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelState {
    /// Requested (an `Action` was emitted), result not yet reported.
    Pending,
    /// Created.
    Created,
}

/// One call inside a tunnel.
#[derive(Debug, Clone)]
pub struct Session {
    /// Our Assigned Session ID (non-zero).
    pub id: SessionId,
    /// The peer's Assigned Session ID; 0 until it is known.
    pub peer_id: SessionId,
    /// Which of the four call types this is.
    pub call_type: CallType,
    /// Current state.
    pub state: SessionState,
    /// Call Serial Number (RFC 2661 §4.4.5) of this call.
    pub serial: u32,
    /// Sequencing Required AVP seen or sent in ICCN/OCCN: data messages carry Ns/Nr.
    pub sequencing: bool,
    /// When the call must be established by (session establish timeout).
    pub setup_deadline: Option<Instant>,
    /// Call parameters requested locally (for calls we initiate; the
    /// defaults for calls we answer), shared by the calls placed alike.
    pub params: Arc<CallParams>,
    /// What the peer said about the call (ICRQ/ICCN/OCRQ/OCCN AVPs), kept
    /// for reporting; `None` while it said nothing (boxed: 136 bytes that
    /// most calls we place never fill). Read it with [`Session::peer_info`].
    pub peer_info: Option<Box<PeerCallInfo>>,
}

/// Parameters of a call we initiate or answer: bearer and framing, speeds and numbers
/// (RFC 2661 §4.4.5). Speeds in bits per second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallParams {
    /// (Tx) Connect Speed we report in ICCN/OCCN, bps.
    pub tx_connect_speed: u32,
    /// Rx Connect Speed we report, bps (`None`: same as tx, AVP omitted).
    pub rx_connect_speed: Option<u32>,
    /// Framing Type of the call: bit 0 synchronous, bit 1 asynchronous.
    pub framing_type: u32,
    /// Bearer Type of the call: bit 0 digital, bit 1 analog (`None`: AVP omitted).
    pub bearer_type: Option<u32>,
    /// Minimum / Maximum BPS for OCRQ, bps.
    pub minimum_bps: u32,
    /// Maximum BPS for OCRQ, bps.
    pub maximum_bps: u32,
    /// Called Number (ICRQ optional, OCRQ mandatory).
    pub called_number: Option<Vec<u8>>,
    /// Calling Number (ICRQ optional).
    pub calling_number: Option<Vec<u8>>,
    /// Sub-Address.
    pub sub_address: Option<Vec<u8>>,
    /// Ask the peer to send data messages with sequence numbers (Sequencing Required AVP).
    pub sequencing_required: bool,
}

impl Default for CallParams {
    fn default() -> Self {
        Self {
            tx_connect_speed: 1_000_000,
            rx_connect_speed: None,
            framing_type: 3,
            bearer_type: None,
            minimum_bps: 0,
            maximum_bps: u32::MAX,
            called_number: None,
            calling_number: None,
            sub_address: None,
            sequencing_required: false,
        }
    }
}

/// The default [`CallParams`], one copy shared by every call that uses them
/// (the calls we answer).
pub(crate) fn default_call_params() -> Arc<CallParams> {
    static DEFAULT: LazyLock<Arc<CallParams>> = LazyLock::new(|| Arc::new(CallParams::default()));
    DEFAULT.clone()
}

/// What the peer told us about a call; opaque strings are kept as octets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCallInfo {
    /// Tx Connect Speed from ICCN/OCCN, bps.
    pub tx_connect_speed: Option<u32>,
    /// Rx Connect Speed from ICCN/OCCN, bps.
    pub rx_connect_speed: Option<u32>,
    /// Framing Type from ICCN/OCCN/OCRQ.
    pub framing_type: Option<u32>,
    /// Bearer Type from ICRQ/OCRQ.
    pub bearer_type: Option<u32>,
    /// Calling Number from ICRQ.
    pub calling_number: Option<Vec<u8>>,
    /// Called Number from ICRQ/OCRQ.
    pub called_number: Option<Vec<u8>>,
    /// Physical Channel ID from ICRQ/OCRP.
    pub physical_channel_id: Option<u32>,
    /// Private Group ID from ICCN.
    pub private_group_id: Option<Vec<u8>>,
    /// Proxy authentication and LCP AVPs from ICCN, kept as (attribute type, value) pairs.
    pub proxy: Vec<(u16, Vec<u8>)>,
}

impl Session {
    /// What the peer said about the call (all `None` / empty while nothing).
    pub fn peer_info(&self) -> &PeerCallInfo {
        static NOTHING: PeerCallInfo = PeerCallInfo {
            tx_connect_speed: None,
            rx_connect_speed: None,
            framing_type: None,
            bearer_type: None,
            calling_number: None,
            called_number: None,
            physical_channel_id: None,
            private_group_id: None,
            proxy: Vec::new(),
        };
        self.peer_info.as_deref().unwrap_or(&NOTHING)
    }

    /// What the peer said about the call, to record more of it.
    pub(crate) fn peer_info_mut(&mut self) -> &mut PeerCallInfo {
        self.peer_info.get_or_insert_with(Box::default)
    }

    /// True when the call is established (the data plane may or may not exist yet).
    pub fn is_established(&self) -> bool {
        matches!(self.state, SessionState::Established { .. })
    }

    /// Short state name for logs and the management API.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            SessionState::WaitTunnel => "wait-tunnel",
            SessionState::WaitReply => "wait-reply",
            SessionState::WaitConnect => "wait-connect",
            SessionState::Established {
                kernel: KernelState::Pending,
            } => "established-pending",
            SessionState::Established {
                kernel: KernelState::Created,
            } => "established",
        }
    }
}
