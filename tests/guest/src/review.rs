//! The kernel review's findings (issue 22 §2) that a test can show: each
//! test failed on the module before its fix.
//!
//! - Listeners are counted per namespace: a listener in the initial
//!   namespace must not make another namespace's broadcast count as a
//!   failed delivery (`netlink_has_listeners` reads one mask for all
//!   namespaces; the module now counts the listeners a broadcast reaches).
//! - A dump request (`NLM_F_DUMP`) on the classic face is refused with
//!   `EOPNOTSUPP`, as the generic netlink core refuses it, instead of one
//!   answer a dump reader would wait after forever.
//! - A BROADCAST's event leaves after the answers to the datagram's earlier
//!   messages.

use crate::classic::{expect_error, raw_exchange};
use crate::{connect, reload, subscribe, Ctx, Talk, Test, TestResult};
use rustnl::proto::{
    BroadcastHdr, MsgType, NlMsgHdr, DEFAULT_UNIT, NLMSG_HDRLEN, NLM_F_DUMP, NLM_F_REQUEST,
};
use rustnl::{GenlClient, Socket, Subscription};
use std::time::Duration;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Group the tests listen on.
const GROUP: u32 = 7;

/// A listener in the initial namespace on both faces; a namespace without
/// listeners broadcasts on both: nobody there received it and nobody there
/// listened, so no failure is reported or counted.
pub fn t_listeners_per_namespace(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let _classic = subscribe(&[GROUP])?;
    let _genl = Subscription::genl(&[rustnl::proto::genl::McastGroup::Events]).map_err(err)?;
    let child = Talk::start(crate::Role::Lonely, &[])?;
    child.finish().map(drop)
}

/// Child (`--child lonely`): root in a network namespace of its own with
/// no listener, broadcasts on both faces and checks the answers and its
/// namespace's counters.
pub fn child_lonely() -> TestResult {
    crate::enter_netns(false)?;
    println!("ready");
    let mut c = connect(DEFAULT_UNIT)?;
    let r = c.broadcast(GROUP, b"nobody here").map_err(err)?;
    ensure!(
        !r.delivered && !r.delivery_failed,
        "classic broadcast without listeners here: {r:?}"
    );
    let counters = c.info().map_err(err)?.counters;
    ensure!(
        counters.no_listeners == 1 && counters.delivery_failures == 0,
        "classic counters {counters:?}"
    );
    let mut g = GenlClient::connect().map_err(err)?;
    let r = g.broadcast(GROUP, b"nobody here").map_err(err)?;
    ensure!(
        !r.delivered && !r.delivery_failed,
        "genl broadcast without listeners here: {r:?}"
    );
    let counters = g.info().map_err(err)?.genl_counters;
    ensure!(
        counters.no_listeners == 1 && counters.delivery_failures == 0,
        "genl counters {counters:?}"
    );
    Ok(())
}

/// One message's bytes.
fn message(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let hdr = NlMsgHdr {
        len: (NLMSG_HDRLEN + payload.len()) as u32,
        ty,
        flags,
        seq,
        pid: 0,
    };
    let mut b = hdr.to_bytes().to_vec();
    b.extend_from_slice(payload);
    b.resize(b.len().next_multiple_of(4), 0);
    b
}

/// `NLM_F_DUMP` on the classic face: `EOPNOTSUPP` with a text, for every
/// request type; one of its two bits alone is not a dump.
pub fn t_dump_refused(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    for (ty, payload) in [
        (MsgType::GetInfo.raw(), Vec::new()),
        (MsgType::Echo.raw(), b"x".to_vec()),
    ] {
        let answers = raw_exchange(
            DEFAULT_UNIT,
            &message(ty, NLM_F_REQUEST | NLM_F_DUMP, 1, &payload),
            1,
        )?;
        let answer = answers.first().ok_or("no answer")?;
        expect_error(answer, libc::EOPNOTSUPP, "NLM_F_DUMP")?;
    }
    let answers = raw_exchange(
        DEFAULT_UNIT,
        &message(MsgType::GetInfo.raw(), NLM_F_REQUEST | 0x100, 2, &[]),
        1,
    )?;
    let (h, _) = answers.first().ok_or("no answer")?;
    ensure!(h.ty == MsgType::Info.raw(), "NLM_F_ROOT alone answered {h:?}");
    Ok(())
}

/// A datagram [ECHO, BROADCAST] from a socket that listens on the group:
/// the echo's reply comes before the event.
pub fn t_broadcast_after_earlier_answers(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let mut sock = Socket::open(DEFAULT_UNIT).map_err(err)?;
    sock.add_membership(GROUP).map_err(err)?;
    sock.set_ext_ack(true).map_err(err)?;
    sock.set_recv_timeout(Some(Duration::from_secs(3))).map_err(err)?;
    let mut datagram = message(MsgType::Echo.raw(), NLM_F_REQUEST, 1, b"first");
    let mut bc = BroadcastHdr { group: GROUP }.to_bytes().to_vec();
    bc.extend_from_slice(b"second");
    datagram.extend(message(MsgType::Broadcast.raw(), NLM_F_REQUEST, 2, &bc));
    sock.send(&datagram).map_err(err)?;
    let mut order = Vec::new();
    while order.len() < 3 {
        let d = sock.recv().map_err(err)?;
        for m in d.messages() {
            let m = m.map_err(|e| format!("{e:?}"))?;
            order.push(m.header.ty);
        }
    }
    let want = [MsgType::Echo.raw(), MsgType::Event.raw(), MsgType::Broadcast.raw()];
    ensure!(
        order[..3] == want,
        "answers and event came as {order:?}, want echo reply, event, broadcast answer ({want:?})"
    );
    Ok(())
}

pub(crate) const TESTS: &[Test] = &[
    Test::new(
        "broadcast_listeners_counted_per_namespace",
        t_listeners_per_namespace,
    ),
    Test::new("dump_request_is_eopnotsupp", t_dump_refused),
    Test::new(
        "broadcast_event_after_earlier_answers",
        t_broadcast_after_earlier_answers,
    ),
];
