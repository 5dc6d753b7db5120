// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// Generated from spec/rustnl.yaml by tests/spec/generate.rs; do not edit.
// After changing the spec: RUSTNL_BLESS=1 cargo test -p rustnl-shared --test spec

/// Name of the generic netlink family (`CTRL_ATTR_FAMILY_NAME`).
pub const FAMILY_NAME: &str = "rustnl";
/// [`FAMILY_NAME`] NUL terminated, as `genl_family.name` and
/// `CTRL_ATTR_FAMILY_NAME` carry it.
pub const FAMILY_NAME_NUL: &[u8] = b"rustnl\0";

wire_enum! {
    /// Commands (`genlmsghdr.cmd`), in the spec's unified numbering: requests,
    /// their replies and the events share one space, starting at 1; named as
    /// in the spec (what `ynl --do` / `--subscribe` take). The family leaves
    /// `genl_family.resv_start_op` at 0, as a new family should: the core
    /// checks every command's `genlmsghdr.reserved` and `nlmsg_flags` strictly.
    pub enum Cmd: u8 {
        /// Send the payload back to the requester, unchanged.
        Echo = 1 => "echo",
        /// Multicast the payload as an event of the given numbered group to the
        /// events listeners of the requester's network namespace that receive
        /// that group (see set-groups). Needs CAP_NET_ADMIN in the user
        /// namespace owning the network namespace, unless the module was loaded
        /// with open_broadcast=1. Nobody listening is not an error (neither
        /// flag set).
        Broadcast = 2 => "broadcast",
        /// Report the module's configuration and this namespace's counters, per face.
        GetInfo = 3 => "get-info",
        /// The event a broadcast sent, with its payload.
        Event = 4 => "event",
        /// Sent every heartbeat-ms with the payload "Greeting from kernel!" (group 1, origin 0).
        Heartbeat = 5 => "heartbeat",
        /// Sent when the module unloads (group 1, origin 0, no payload). Generic
        /// netlink sockets do not pin the module, so unlike on the classic face
        /// listeners can be left to get it.
        Goodbye = 6 => "goodbye",
        /// Choose the numbered groups whose events this socket receives on the
        /// events multicast group: the listen-group attributes replace the
        /// socket's previous choice; without any, every group again. A socket
        /// that never chose receives (and counts as a listener of) every
        /// group. The choice lasts until the socket closes or the module
        /// unloads; anyone may make it for their own socket. Broadcasts count
        /// a socket as a listener of a group only if it receives that group.
        SetGroups = 7 => "set-groups",
    }
}

wire_enum! {
    /// Attributes of the set `rustnl` (C prefix `RUSTNL_A_`): every request,
    /// reply and event, named as in the spec. Id 0 is unused, as in every
    /// netlink attribute space; [`Attr::MAX`] is `genl_family.maxattr`.
    pub enum Attr: u16 {
        /// Bytes to echo or to broadcast; an absent attribute is an empty
        /// payload. At most the max_payload module parameter, and never more
        /// than max-attr-payload.
        Payload = 1 => "payload",
        /// Numbered group of a broadcast and of its event (1..groups, as on the
        /// classic face). Events of every numbered group travel in the events
        /// multicast group, to the sockets that chose that group with
        /// set-groups (or never chose). Heartbeat and goodbye carry group 1.
        Group = 2 => "group",
        /// At least one listener of the group received the event and no
        /// failure was reported.
        Delivered = 3 => "delivered",
        /// A listener could not receive the event (its queue was full), or the
        /// group had listeners and none received it.
        DeliveryFailed = 4 => "delivery-failed",
        /// Sequence number of an event in this namespace; in a broadcast reply,
        /// the sequence number of the event the broadcast sent.
        EventSeq = 5 => "event-seq",
        /// Netlink port id of the socket whose broadcast caused the event (0 for the kernel's own events).
        OriginPortid = 6 => "origin-portid",
        /// CLOCK_REALTIME of the event, in nanoseconds.
        TimestampNs = 7 => "timestamp-ns",
        /// Version of the rustnl protocol the module speaks.
        Version = 8 => "version",
        /// Classic netlink protocol unit of the module (module parameter unit).
        Unit = 9 => "unit",
        /// Number of numbered groups (module parameter groups).
        Groups = 10 => "groups",
        /// Largest payload of the classic face (module parameter max_payload).
        MaxPayload = 11 => "max-payload",
        /// Heartbeat period in milliseconds, 0 when off (module parameter heartbeat_ms).
        HeartbeatMs = 12 => "heartbeat-ms",
        /// Present when anyone may broadcast (module parameter open_broadcast).
        OpenBroadcast = 13 => "open-broadcast",
        /// Counters of this namespace for the requests and events of the classic face.
        ClassicCounters = 14 => "classic-counters",
        /// Counters of this namespace for the requests and events of the generic netlink face.
        GenlCounters = 15 => "genl-counters",
        /// A numbered group (1..groups) whose events the requesting socket
        /// receives, one attribute per group (set-groups).
        ListenGroup = 16 => "listen-group",
    }
}


impl Cmd {
    /// Whether the operation carries `GENL_UNS_ADMIN_PERM` (spec flag
    /// `uns-admin-perm`).
    pub const fn uns_admin_perm(self) -> bool {
        match self {
            Cmd::Echo => false,
            Cmd::Broadcast => true,
            Cmd::GetInfo => false,
            Cmd::Event => false,
            Cmd::Heartbeat => false,
            Cmd::Goodbye => false,
            Cmd::SetGroups => false,
        }
    }

    /// The attributes a request may carry (the operation's policy).
    pub const fn request(self) -> &'static [Attr] {
        match self {
            Cmd::Echo => &[Attr::Payload],
            Cmd::Broadcast => &[Attr::Group, Attr::Payload],
            Cmd::GetInfo => &[],
            Cmd::Event => &[],
            Cmd::Heartbeat => &[],
            Cmd::Goodbye => &[],
            Cmd::SetGroups => &[Attr::ListenGroup],
        }
    }

    /// The attributes of the reply, or of the event.
    pub const fn reply(self) -> &'static [Attr] {
        match self {
            Cmd::Echo => &[Attr::Payload],
            Cmd::Broadcast => &[Attr::Group, Attr::Delivered, Attr::DeliveryFailed, Attr::EventSeq],
            Cmd::GetInfo => &[Attr::Version, Attr::Unit, Attr::Groups, Attr::MaxPayload, Attr::HeartbeatMs, Attr::OpenBroadcast, Attr::ClassicCounters, Attr::GenlCounters],
            Cmd::Event => &[Attr::Group, Attr::OriginPortid, Attr::EventSeq, Attr::TimestampNs, Attr::Payload],
            Cmd::Heartbeat => &[Attr::Group, Attr::OriginPortid, Attr::EventSeq, Attr::TimestampNs, Attr::Payload],
            Cmd::Goodbye => &[Attr::Group, Attr::OriginPortid, Attr::EventSeq, Attr::TimestampNs],
            Cmd::SetGroups => &[],
        }
    }

    /// The multicast group an event goes to; `None` for requests.
    pub const fn mcast_group(self) -> Option<McastGroup> {
        match self {
            Cmd::Echo => None,
            Cmd::Broadcast => None,
            Cmd::GetInfo => None,
            Cmd::Event => Some(McastGroup::Events),
            Cmd::Heartbeat => Some(McastGroup::Heartbeat),
            Cmd::Goodbye => Some(McastGroup::Heartbeat),
            Cmd::SetGroups => None,
        }
    }
}

impl Attr {
    /// The attribute's type.
    pub const fn ty(self) -> AttrType {
        match self {
            Attr::Payload => AttrType::Binary,
            Attr::Group => AttrType::U32,
            Attr::Delivered => AttrType::Flag,
            Attr::DeliveryFailed => AttrType::Flag,
            Attr::EventSeq => AttrType::Uint,
            Attr::OriginPortid => AttrType::U32,
            Attr::TimestampNs => AttrType::Uint,
            Attr::Version => AttrType::U32,
            Attr::Unit => AttrType::U32,
            Attr::Groups => AttrType::U32,
            Attr::MaxPayload => AttrType::U32,
            Attr::HeartbeatMs => AttrType::U32,
            Attr::OpenBroadcast => AttrType::Flag,
            Attr::ClassicCounters => AttrType::NestCounters,
            Attr::GenlCounters => AttrType::NestCounters,
            Attr::ListenGroup => AttrType::U32,
        }
    }

    /// Whether a message may carry the attribute several times (spec
    /// `multi-attr`): the kernel's parse keeps the last, readers walk them all.
    pub const fn multi(self) -> bool {
        match self {
            Attr::Payload => false,
            Attr::Group => false,
            Attr::Delivered => false,
            Attr::DeliveryFailed => false,
            Attr::EventSeq => false,
            Attr::OriginPortid => false,
            Attr::TimestampNs => false,
            Attr::Version => false,
            Attr::Unit => false,
            Attr::Groups => false,
            Attr::MaxPayload => false,
            Attr::HeartbeatMs => false,
            Attr::OpenBroadcast => false,
            Attr::ClassicCounters => false,
            Attr::GenlCounters => false,
            Attr::ListenGroup => true,
        }
    }

    /// The policy's bounds on the value (`min`/`max` checks) of an integer
    /// attribute.
    pub const fn range(self) -> Option<(u32, u32)> {
        match self {
            Attr::Payload => None,
            Attr::Group => Some((1, 1024)),
            Attr::Delivered => None,
            Attr::DeliveryFailed => None,
            Attr::EventSeq => None,
            Attr::OriginPortid => None,
            Attr::TimestampNs => None,
            Attr::Version => None,
            Attr::Unit => None,
            Attr::Groups => None,
            Attr::MaxPayload => None,
            Attr::HeartbeatMs => None,
            Attr::OpenBroadcast => None,
            Attr::ClassicCounters => None,
            Attr::GenlCounters => None,
            Attr::ListenGroup => Some((1, 1024)),
        }
    }

    /// The policy's `max-len` of a binary attribute.
    pub const fn max_len(self) -> Option<usize> {
        match self {
            Attr::Payload => Some(65531),
            Attr::Group => None,
            Attr::Delivered => None,
            Attr::DeliveryFailed => None,
            Attr::EventSeq => None,
            Attr::OriginPortid => None,
            Attr::TimestampNs => None,
            Attr::Version => None,
            Attr::Unit => None,
            Attr::Groups => None,
            Attr::MaxPayload => None,
            Attr::HeartbeatMs => None,
            Attr::OpenBroadcast => None,
            Attr::ClassicCounters => None,
            Attr::GenlCounters => None,
            Attr::ListenGroup => None,
        }
    }
}

wire_enum! {
    /// Multicast groups of the family, in spec order and named as in the
    /// spec (`ynl --subscribe` takes the name): the kernel numbers them
    /// `mcgrp_offset + index`, userspace looks their ids up by name
    /// (`CTRL_ATTR_MCAST_GROUPS`).
    pub enum McastGroup: u8 {
        /// The spec's multicast group `events`.
        Events = 0 => "events",
        /// The spec's multicast group `heartbeat`.
        Heartbeat = 1 => "heartbeat",
    }
}
