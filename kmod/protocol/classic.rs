// SPDX-License-Identifier: GPL-2.0

//! The classic face: the unit's datagrams, answered message by message.

use super::{broadcast_result, errno, Rustnl};
use crate::genl::CounterAttr;
use crate::netlink::{datagram::InMessage, Datagram, Delivery, KernelSock};
use crate::proto::{
    classify, Action, ErrorKind, EventHdr, Info, Malformed, Message, MsgType, RequestError, NLM_F_ACK,
    PROTOCOL_VERSION,
};
use kernel::{alloc::flags::GFP_KERNEL, prelude::*};

/// Why a request got no answer.
enum Unanswered {
    /// No buffer for the reply (or its delivery failed).
    Reply(Error),
    /// The broadcast's event could not be sent; `send_event` counted it.
    Event(Error),
}
impl Rustnl {
    /// Answers one well-formed message.
    pub(super) fn handle(&self, sock: &KernelSock, datagram: &Datagram<'_>, msg: &Message<'_>) {
        let config = &self.config;
        let result = classify(msg, &config.limits).and_then(|action| match action {
            Action::Broadcast { .. }
                if !config.open_broadcast && !datagram.sender_has_net_admin() =>
            {
                Err(RequestError::BroadcastNotPermitted)
            }
            action => Ok(action),
        });
        let action = match result {
            Ok(action) => action,
            Err(refused) => return self.refuse(datagram, msg, refused),
        };
        let answered = match action {
            Action::Noop => Ok(()),
            Action::Echo { payload } => {
                self.stats.bump(CounterAttr::Echoes);
                datagram
                    .reply(msg, MsgType::Echo.raw(), 0, &[payload])
                    .map_err(Unanswered::Reply)
            }
            Action::Broadcast { group, payload } => {
                self.broadcast(sock, datagram, msg, group, payload)
            }
            Action::GetInfo => self.info(datagram, msg).map_err(Unanswered::Reply),
        };
        match answered {
            Ok(()) if msg.header.has(NLM_F_ACK) => datagram.ack(msg, None, None),
            Ok(()) => {}
            Err(why) => self.not_answered(datagram, msg, why),
        }
    }

    // The paths below are kept out of line (the refusals cold) so that the
    // common one, an ECHO, stays short: `make bench` counts each of its
    // instructions against the C module's.

    /// BROADCAST: multicast the event, answer with the result.
    #[inline(never)]
    fn broadcast(
        &self,
        sock: &KernelSock,
        datagram: &Datagram<'_>,
        msg: &Message<'_>,
        group: u32,
        payload: &[u8],
    ) -> core::result::Result<(), Unanswered> {
        self.stats.bump(CounterAttr::Broadcasts);
        // Answers to the datagram's earlier messages go out before the
        // event: a sender listening on the group sees them in order.
        datagram.send_replies();
        let origin = datagram.sender_portid();
        let event_seq = self.next_seq();
        let delivery = self
            .send_event(sock, MsgType::Event, group, origin, event_seq, payload)
            .map_err(Unanswered::Event)?;
        let result = broadcast_result(group, event_seq, delivery);
        datagram
            .reply_now(msg, MsgType::Broadcast.raw(), 0, &[&result.to_bytes()])
            .map_err(Unanswered::Reply)
    }

    /// GET_INFO: configuration and this namespace's counters.
    #[inline(never)]
    fn info(&self, datagram: &Datagram<'_>, msg: &Message<'_>) -> Result {
        let config = &self.config;
        let info = Info {
            version: PROTOCOL_VERSION as u16,
            unit: config.unit,
            groups: config.limits.groups,
            max_payload: config.limits.max_payload as u32,
            heartbeat_ms: config.heartbeat_ms,
            open_broadcast: config.open_broadcast,
            counters: self.stats.snapshot(),
        };
        datagram.reply(msg, MsgType::Info.raw(), 0, &[&info.to_bytes()])
    }

    /// A part of the datagram that is not a message.
    #[cold]
    pub(super) fn malformed(&self, datagram: &Datagram<'_>, bad: Malformed) {
        self.stats.refused(ErrorKind::Invalid);
        datagram.ack_malformed(bad.header().map(|h| h.to_bytes()), EINVAL, format_args!("{bad}"));
    }

    /// A message the validator (or the privilege check) refused.
    #[cold]
    fn refuse(&self, datagram: &Datagram<'_>, msg: &Message<'_>, refused: RequestError) {
        self.stats.refused(refused.kind());
        datagram.ack(
            msg,
            Some(errno(refused.kind())),
            Some(format_args!("{refused}")),
        );
    }

    /// A request whose answer could not be had.
    #[cold]
    fn not_answered(&self, datagram: &Datagram<'_>, msg: &Message<'_>, why: Unanswered) {
        let e = match why {
            Unanswered::Reply(e) => {
                self.stats.bump(CounterAttr::DeliveryFailures);
                e
            }
            // Counted where it failed (`send_event`).
            Unanswered::Event(e) => e,
        };
        // No buffer for the answer (or the event): tell the sender why.
        // Other failures mean the sender's queue is full or the sender is
        // gone: netlink has flagged the overrun (ENOBUFS) on its socket.
        if e == ENOMEM || e == EMSGSIZE {
            datagram.ack(
                msg,
                Some(e),
                Some(format_args!("cannot allocate the answer")),
            );
        }
    }

    /// Multicasts a classic event of type `ty` to `group`; returns how
    /// delivery went.
    pub(super) fn send_event(
        &self,
        sock: &KernelSock,
        ty: MsgType,
        group: u32,
        origin: u32,
        seq: u64,
        payload: &[u8],
    ) -> Result<Delivery> {
        let hdr = EventHdr {
            group,
            origin,
            seq,
            timestamp_ns: crate::netlink::realtime_ns(),
        };
        let delivery = sock.broadcast(
            group,
            ty.raw(),
            seq as u32,
            &[&hdr.to_bytes(), payload],
            GFP_KERNEL,
        );
        Self::count_delivery(&self.stats, delivery)
    }
}

impl InMessage for Message<'_> {
    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        self.bytes
    }

    #[inline(always)]
    fn offset(&self) -> usize {
        self.offset
    }

    #[inline(always)]
    fn seq(&self) -> u32 {
        self.header.seq
    }
}
