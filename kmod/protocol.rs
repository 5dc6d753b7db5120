// SPDX-License-Identifier: GPL-2.0

//! The rustnl protocol handlers: safe code over the netlink layer.
//!
//! Each datagram is split into messages by the shared decoder; each message is
//! classified by the shared validator and then answered. Every message gets
//! exactly one of: its reply (plus an ack if `NLM_F_ACK` asked for one), an
//! ack, or an `NLMSG_ERROR` with the errno and an extended-ack text.
#![forbid(unsafe_code)]

use crate::netlink::{Datagram, Receiver};
use crate::proto::{
    classify, Action, ErrorKind, Message, Messages, MsgType, DEFAULT_MAX_PAYLOAD, NLM_F_ACK,
};
use kernel::prelude::*;

/// The errno the kernel answers with for each shared error class.
pub(crate) fn errno(kind: ErrorKind) -> Error {
    match kind {
        ErrorKind::Invalid => EINVAL,
        ErrorKind::NotSupported => EOPNOTSUPP,
        ErrorKind::TooLarge => EMSGSIZE,
        ErrorKind::NotPermitted => EPERM,
    }
}

/// The rustnl protocol, as a netlink [`Receiver`].
pub(crate) struct Rustnl;

impl Receiver for Rustnl {
    fn receive(datagram: &Datagram<'_>) {
        for item in Messages::new(datagram.bytes()) {
            match item {
                Ok(msg) => handle(datagram, &msg),
                Err(bad) => datagram.ack_malformed(bad.header(), EINVAL, format_args!("{bad}")),
            }
        }
    }
}

/// Answers one well-formed message.
fn handle(datagram: &Datagram<'_>, msg: &Message<'_>) {
    let action = match classify(msg, DEFAULT_MAX_PAYLOAD) {
        Ok(action) => action,
        Err(refused) => {
            datagram.ack(
                msg,
                Some(errno(refused.kind())),
                Some(format_args!("{refused}")),
            );
            return;
        }
    };
    let result = match action {
        Action::Noop => Ok(()),
        Action::Echo { payload } => {
            datagram.reply(MsgType::Echo.raw(), 0, msg.header.seq, &[payload])
        }
    };
    match result {
        Ok(()) if msg.header.has(NLM_F_ACK) => datagram.ack(msg, None, None),
        Ok(()) => {}
        // Building the reply failed: tell the sender why.
        Err(e) if e == ENOMEM || e == EMSGSIZE => {
            datagram.ack(msg, Some(e), Some(format_args!("cannot build the reply")))
        }
        // Delivery failed (receiver full or gone): netlink has already flagged
        // the overrun (ENOBUFS) on the receiving socket.
        Err(_) => {}
    }
}
