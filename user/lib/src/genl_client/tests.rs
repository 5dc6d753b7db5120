//! The generic netlink client against a fake module: the controller served
//! by `testing::serve_family`, the family's requests by the shared checks
//! (`proto::genl::classify`) and the shared attribute writer, as the kernel
//! module answers them.

use super::*;
use crate::genl::{op_flags, Group as GroupInfo, Op};
use crate::proto::genl::{
    classify, AttrWriter as KernelWriter, GroupSet, Refusal, Request, Requested, FAMILY_VERSION,
    GROUP_MAX, GROUP_MIN,
};
use crate::proto::{Action, Limits};
use crate::testing::{self, FakeConn};
use proptest::prelude::*;

const ID: u16 = 0x1d;
const EVENTS_ID: u32 = 9;
const HEARTBEAT_ID: u32 = 10;
const MAX_PAYLOAD: usize = 100_000;

fn rustnl_family() -> Family {
    let mut f = Family::new(FAMILY_NAME, ID);
    f.version = FAMILY_VERSION.into();
    f.max_attr = Attr::MAX.into();
    f.ops = [Cmd::Echo, Cmd::Broadcast, Cmd::GetInfo, Cmd::SetGroups]
        .iter()
        .map(|c| Op {
            id: c.raw().into(),
            flags: op_flags::CAP_DO | op_flags::CAP_HASPOL,
        })
        .collect();
    f.mcast_groups = vec![
        GroupInfo {
            name: McastGroup::Events.name().into(),
            id: EVENTS_ID,
        },
        GroupInfo {
            name: McastGroup::Heartbeat.name().into(),
            id: HEARTBEAT_ID,
        },
    ];
    f
}

fn info() -> GenlInfo {
    let counters = |base: u64| Counters::from_array(core::array::from_fn(|i| base + i as u64));
    GenlInfo {
        version: 1,
        unit: 31,
        groups: 32,
        max_payload: MAX_PAYLOAD as u32,
        heartbeat_ms: 250,
        open_broadcast: true,
        classic_counters: counters(1),
        // Values that take 8 bytes too (`uint`).
        genl_counters: counters(u64::from(u32::MAX) - 3),
    }
}

/// A reply to `m`: the family's header for `cmd`, then what `fill` writes
/// with the module's own writer.
fn reply(
    m: &Message<'_>,
    cmd: Cmd,
    fill: impl FnOnce(&mut KernelWriter<'_>) -> Result<(), crate::proto::genl::NoRoom>,
) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_PAYLOAD + 64];
    let mut w = KernelWriter::new(&mut buf);
    fill(&mut w).expect("room");
    let body = [&genl_header(cmd)[..], w.bytes()].concat();
    testing::answer(m, ID, 0, &body)
}

/// Offset of the attribute of type `ty` in request `m`, from its netlink
/// header (what the kernel's ext-ack `NLMSGERR_ATTR_OFFS` carries).
fn offset_of(m: &Message<'_>, ty: u16) -> Option<u32> {
    let g = GenlMessage::parse(m).ok()?;
    let a = g.attrs.get(ty).ok()??;
    let at = offset_within(m.bytes, a.payload)? - crate::proto::NLA_HDRLEN;
    u32::try_from(at).ok()
}

/// The family's side of the fake kernel: the policy's range check on
/// `group` and every `listen-group` (the core's `ERANGE`), then the
/// module's own checks and answers.
fn module(req: &[Message<'_>]) -> Result<Vec<Vec<u8>>> {
    let mut chosen = GroupSet::ALL;
    module_with(req, &mut chosen)
}

/// [`module`], with the groups the client's socket chose (`set-groups`):
/// a broadcast is delivered if the socket receives its group.
fn module_with(req: &[Message<'_>], chosen: &mut GroupSet) -> Result<Vec<Vec<u8>>> {
    let limits = Limits {
        max_payload: MAX_PAYLOAD,
        groups: 32,
    };
    let mut out = Vec::new();
    for m in req {
        assert_eq!(m.header.ty, ID);
        assert!(m.header.has(NLM_F_REQUEST));
        assert_eq!(m.header.len as usize % 4, 0, "padded to 4 bytes");
        let g = GenlMessage::parse(m)?;
        assert_eq!(g.header.version, FAMILY_VERSION);
        let group = g.attrs.u32(Attr::Group.raw())?;
        let out_of_range = g.attrs.iter().find_map(|a| {
            let a = a.ok()?;
            let v = u32::from_ne_bytes(a.payload.try_into().ok()?);
            let ranged = a.ty == Attr::Group.raw() || a.ty == Attr::ListenGroup.raw();
            let at = offset_within(m.bytes, a.payload)? - crate::proto::NLA_HDRLEN;
            (ranged && !(GROUP_MIN..=GROUP_MAX).contains(&v)).then_some(at as u32)
        });
        if let Some(at) = out_of_range {
            let mut k = KernelError::new(libc::ERANGE);
            k.message = Some("integer out of range".into());
            k.offset = Some(at);
            out.push(testing::kernel_error(m, &k));
            continue;
        }
        let r = Request {
            cmd: g.header.cmd,
            payload: g.attrs.bytes(Attr::Payload.raw())?,
            group,
            attrs: g.attrs.as_bytes(),
        };
        out.push(match classify(&r, &limits) {
            Ok(Requested::Shared(Action::Echo { payload })) => {
                reply(m, Cmd::Echo, |w| w.put(Attr::Payload.raw(), payload))
            }
            Ok(Requested::SetGroups(groups)) => {
                // No reply: the ack the client must ask for.
                assert!(m.header.has(NLM_F_ACK), "set-groups without NLM_F_ACK");
                *chosen = groups.set();
                testing::ack(m)
            }
            Ok(Requested::Shared(Action::Broadcast { group, .. })) => {
                reply(m, Cmd::Broadcast, |w| {
                    w.put_u32(Attr::Group.raw(), group)?;
                    w.put_flag(Attr::Delivered.raw(), chosen.contains(group))?;
                    w.put_flag(Attr::DeliveryFailed.raw(), false)?;
                    w.put_uint(Attr::EventSeq.raw(), u64::from(u32::MAX) + 7)
                })
            }
            Ok(Requested::Shared(Action::GetInfo)) => {
                let i = info();
                reply(m, Cmd::GetInfo, |w| {
                    w.put_u32(Attr::Version.raw(), i.version)?;
                    w.put_u32(Attr::Unit.raw(), i.unit)?;
                    w.put_u32(Attr::Groups.raw(), i.groups)?;
                    w.put_u32(Attr::MaxPayload.raw(), i.max_payload)?;
                    w.put_u32(Attr::HeartbeatMs.raw(), i.heartbeat_ms)?;
                    w.put_flag(Attr::OpenBroadcast.raw(), i.open_broadcast)?;
                    w.put_counters(Attr::ClassicCounters.raw(), &i.classic_counters)?;
                    w.put_counters(Attr::GenlCounters.raw(), &i.genl_counters)
                })
            }
            Ok(Requested::Shared(Action::Noop)) => testing::ack(m),
            Err(refusal) => {
                let mut k = KernelError::new(refusal.kind().errno());
                k.message = Some(refusal.to_string());
                k.offset = refusal.bad_attr().and_then(|a| offset_of(m, a.raw()));
                if let Some(at) = refusal.attr_offset() {
                    // From the attributes' start: netlink and genl headers.
                    k.offset = u32::try_from(NLMSG_HDRLEN + GENL_HDRLEN + at).ok();
                }
                if let Refusal::Missing(a) = refusal {
                    k.missing_type = Some(a.raw());
                }
                testing::kernel_error(m, &k)
            }
        });
    }
    Ok(out)
}

type Kernel = Box<dyn FnMut(&[Message<'_>]) -> Result<Vec<Vec<u8>>>>;

fn client() -> GenlClient<FakeConn<Kernel>> {
    let kernel: Kernel = Box::new(testing::serve_family(rustnl_family(), module));
    GenlClient::with_conn(FakeConn::new(kernel)).unwrap()
}

#[test]
fn echo_broadcast_and_info_through_a_fake_module() {
    let mut c = client();
    assert_eq!(c.family().id, ID);
    assert_eq!(c.echo(b"hello").unwrap(), b"hello");
    assert_eq!(c.echo(b"").unwrap(), b"");
    // Every size around the padding, and the largest one attribute carries.
    for size in [1, 2, 3, 4, 5, MAX_ATTR_PAYLOAD] {
        let p: Vec<u8> = (0..size).map(|i| i as u8).collect();
        assert_eq!(c.echo(&p).unwrap(), &p[..], "{size}");
    }
    c.echo_batch(b"many", 10).unwrap();
    c.echo_batch(b"none", 0).unwrap();
    assert_eq!(
        c.broadcast(3, b"x").unwrap(),
        BroadcastResult {
            group: 3,
            delivered: true,
            delivery_failed: false,
            event_seq: u64::from(u32::MAX) + 7,
        }
    );
    assert_eq!(c.info().unwrap(), info());
    // The lookup, 8 echoes, the batch in one datagram (the empty one sends
    // nothing), broadcast and get-info.
    assert_eq!(c.conn().sent().len(), 1 + 8 + 1 + 2);
}

/// `set-groups`: one `listen-group` per group, asked with `NLM_F_ACK`,
/// acked; the broadcasts after it are delivered to this socket only for
/// its groups; an empty list is every group again; a group the module
/// lacks is named.
#[test]
fn set_groups_through_a_fake_module() {
    let mut chosen = GroupSet::ALL;
    let kernel: Kernel = Box::new(testing::serve_family(rustnl_family(), move |req| {
        module_with(req, &mut chosen)
    }));
    let mut c = GenlClient::with_conn(FakeConn::new(kernel)).unwrap();
    c.set_groups(&[3, 5]).unwrap();
    let sent = c.conn().sent().last().unwrap().clone();
    let m = Messages::new(&sent).next().unwrap().unwrap();
    assert_eq!(m.header.flags, NLM_F_REQUEST | NLM_F_ACK);
    let g = GenlMessage::parse(&m).unwrap();
    assert_eq!(g.header.cmd, Cmd::SetGroups.raw());
    assert_eq!(g.attrs.as_bytes(), listen_group_attrs(&[3, 5]));
    assert_eq!(
        g.attrs.as_bytes(),
        [
            [8, 0, 16, 0],
            3u32.to_ne_bytes(),
            [8, 0, 16, 0],
            5u32.to_ne_bytes()
        ]
        .concat()
    );
    assert!(!c.broadcast(2, b"x").unwrap().delivered);
    assert!(c.broadcast(3, b"x").unwrap().delivered);
    c.set_groups(&[]).unwrap();
    assert!(c.broadcast(2, b"x").unwrap().delivered);
    match c.set_groups(&[4, 33]) {
        Err(Error::Kernel(k)) => {
            assert_eq!(k.errno, libc::EINVAL);
            assert_eq!((k.offset, k.attr), (Some(20 + 8), Some("listen-group")));
            assert_eq!(k.message.as_deref(), Some("group 33 is not in 1..=32"));
        }
        other => panic!("{other:?}"),
    }
    match c.set_groups(&[0]) {
        Err(Error::Kernel(k)) => {
            assert_eq!(k.errno, libc::ERANGE);
            assert_eq!((k.offset, k.attr), (Some(20), Some("listen-group")));
        }
        other => panic!("{other:?}"),
    }
    // The refused choices changed nothing.
    assert!(c.broadcast(2, b"x").unwrap().delivered);
}

#[test]
fn mcast_groups_of_numbered_groups() {
    assert_eq!(mcast_groups_of(&[]), []);
    assert_eq!(mcast_groups_of(&[3, 7]), [McastGroup::Events]);
    assert_eq!(
        mcast_groups_of(&[7, 1]),
        [McastGroup::Events, McastGroup::Heartbeat]
    );
}

/// A reply of another command than the request's is a typed error naming
/// both commands (`get-info` answered with an `echo` reply here).
#[test]
fn a_reply_of_another_command_is_a_typed_error() {
    let kernel: Kernel = Box::new(testing::serve_family(rustnl_family(), |req| {
        Ok(req
            .iter()
            .map(|m| reply(m, Cmd::Echo, |w| w.put(Attr::Payload.raw(), b"x")))
            .collect())
    }));
    let mut c = GenlClient::with_conn(FakeConn::new(kernel)).unwrap();
    match c.info() {
        Err(Error::WrongCommand {
            request,
            cmd,
            expected,
        }) => assert_eq!(
            (request, cmd, expected),
            ("get-info", Cmd::Echo.raw(), Cmd::GetInfo.raw())
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_payload_over_one_attribute_is_refused_before_sending() {
    let mut c = client();
    let sent = c.conn().sent().len();
    let big = vec![7u8; MAX_ATTR_PAYLOAD + 1];
    for r in [
        c.echo(&big).map(|_| ()),
        c.broadcast(1, &big).map(|_| ()),
        c.echo_batch(&big, 2),
    ] {
        match r {
            Err(Error::Module(ModuleError::GenlPayloadTooLarge { size, limit })) => {
                assert_eq!((size, limit), (65532, 65531));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(c.conn().sent().len(), sent, "nothing sent");
    let e = c.echo(&big).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EMSGSIZE));
    assert!(e.to_string().contains("65532") && e.to_string().contains("65531"));
    // The client stays usable.
    assert_eq!(c.echo(b"after").unwrap(), b"after");
}

#[test]
fn no_family_is_not_registered() {
    let other = Family::new("nlctrl", 0x10);
    let r = GenlClient::with_conn(FakeConn::new(testing::serve_family(other, module)));
    match r {
        Err(Error::Module(ModuleError::GenlNotRegistered)) => {}
        other => panic!("{other:?}"),
    }
    let e = Error::from(ModuleError::GenlNotRegistered);
    let text = e.to_string();
    assert!(
        text.starts_with("rustnl generic netlink family not registered"),
        "{text}"
    );
    assert!(!text.contains("insmod"), "advice is the CLI's: {text}");
    assert_eq!(e.errno(), Some(libc::ENOENT));
}

#[test]
fn kernel_refusals_name_the_attribute() {
    let mut c = client();
    // The module's own check, pointing at the payload.
    let mut small_limit = GenlClient::with_conn(FakeConn::new(testing::serve_family(
        rustnl_family(),
        |req: &[Message<'_>]| {
            // A module with max_payload 8.
            let m = req.first().expect("a request");
            let mut k = KernelError::new(libc::EMSGSIZE);
            k.message = Some("payload of 9 bytes exceeds max_payload (8)".into());
            k.offset = offset_of(m, Attr::Payload.raw());
            Ok(vec![testing::kernel_error(m, &k)])
        },
    )))
    .unwrap();
    match small_limit.echo(b"123456789") {
        Err(Error::Kernel(k)) => {
            assert_eq!(k.errno, libc::EMSGSIZE);
            assert_eq!(k.offset, Some(20));
            assert_eq!(k.attr, Some("payload"));
            assert_eq!(
                Error::Kernel(k).to_string(),
                "kernel error EMSGSIZE (Message too long): payload of 9 bytes exceeds max_payload (8)"
            );
        }
        other => panic!("{other:?}"),
    }
    // The policy's range check on group: the core's text, the attribute by
    // name.
    match c.broadcast(0, b"x") {
        Err(Error::Kernel(k)) => {
            assert_eq!(k.errno, libc::ERANGE);
            assert_eq!((k.offset, k.attr), (Some(20), Some("group")));
            assert_eq!(
                Error::Kernel(k).to_string(),
                "kernel error ERANGE (Numerical result out of range): integer out of range (attribute group)"
            );
        }
        other => panic!("{other:?}"),
    }
    // The module's check of group against its groups.
    match c.broadcast(33, b"x") {
        Err(Error::Kernel(k)) => {
            assert_eq!(k.errno, libc::EINVAL);
            assert_eq!(k.attr, Some("group"));
            assert!(k.message.as_deref().unwrap().contains("33"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_attribute_is_named_from_its_type() {
    // A broadcast without group (as a client other than this one may send):
    // EINVAL with NLMSGERR_ATTR_MISS_TYPE.
    let mut conn = FakeConn::new(testing::serve_family(rustnl_family(), module));
    let mut b = MessageBuilder::new();
    let payload = [
        &genl_header(Cmd::Broadcast)[..],
        &[8, 0, 1, 0, b'a', b'b', 0, 0],
    ]
    .concat();
    b.push(ID, NLM_F_REQUEST, 5, &payload).unwrap();
    let r = crate::request(&mut conn, b.as_bytes(), |_| Ok(()));
    let Err(Error::Kernel(mut k)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(k.errno, libc::EINVAL);
    assert_eq!(k.missing_type, Some(Attr::Group.raw()));
    assert_eq!(k.missing_nest, None);
    assert_eq!(k.attr, None, "the generic exchange knows no names");
    assert_eq!(
        k.to_string(),
        "kernel error EINVAL (Invalid argument): missing attribute: group (missing attribute type 2)"
    );
    name_attr(&mut k, b.as_bytes());
    assert_eq!(k.attr, Some("group"));
    assert_eq!(
        k.to_string(),
        "kernel error EINVAL (Invalid argument): missing attribute: group"
    );
    // Without a text, the name alone.
    k.message = None;
    assert_eq!(
        k.to_string(),
        "kernel error EINVAL (Invalid argument): missing attribute group"
    );
    // Missing inside a nest: not a top-level attribute, no name.
    let mut nested = KernelError::new(libc::EINVAL);
    nested.missing_type = Some(1);
    nested.missing_nest = Some(20);
    name_attr(&mut nested, b.as_bytes());
    assert_eq!(nested.attr, None);
}

#[test]
fn offsets_name_only_the_attribute_that_starts_there() {
    let mut b = MessageBuilder::new();
    let attrs = [
        &genl_header(Cmd::Broadcast)[..],
        &[8, 0, 2, 0, 1, 0, 0, 0],
        &[7, 0, 1, 0, b'a', b'b', b'c', 0],
    ]
    .concat();
    b.push(ID, NLM_F_REQUEST, 1, &attrs).unwrap();
    let named = |offset: u32| {
        let mut k = KernelError::new(libc::EINVAL);
        k.offset = Some(offset);
        name_attr(&mut k, b.as_bytes());
        k.attr
    };
    assert_eq!(named(20), Some("group"));
    assert_eq!(named(28), Some("payload"));
    for off in [0, 16, 21, 24, 32, 36, u32::MAX] {
        assert_eq!(named(off), None, "{off}");
    }
}

#[test]
fn events_decode_into_the_classic_event_type() {
    let family = rustnl_family();
    let event = |cmd: Cmd, payload: Option<&[u8]>| {
        let mut buf = vec![0u8; 256];
        let mut w = KernelWriter::new(&mut buf);
        w.put_u32(Attr::Group.raw(), 1).unwrap();
        w.put_u32(Attr::OriginPortid.raw(), 4242).unwrap();
        w.put_uint(Attr::EventSeq.raw(), 9).unwrap();
        w.put_uint(Attr::TimestampNs.raw(), 1 << 40).unwrap();
        if let Some(p) = payload {
            w.put(Attr::Payload.raw(), p).unwrap();
        }
        let body = [&genl_header(cmd)[..], w.bytes()].concat();
        let mut b = MessageBuilder::new();
        b.push(ID, 0, 0, &body).unwrap();
        b.as_bytes().to_vec()
    };
    let mut queue = vec![
        event(Cmd::Event, Some(b"to all")),
        event(Cmd::Heartbeat, Some(b"Hello from kernel")),
        event(Cmd::Goodbye, None),
    ];
    // A message of another family in the same datagram is skipped.
    let mut other = MessageBuilder::new();
    other.push(0x10, 0, 0, &[1, 2, 0, 0]).unwrap();
    queue[1].extend_from_slice(other.as_bytes());
    queue.reverse();
    let conn = FakeConn::new(move |req: &[Message<'_>]| {
        assert!(req.is_empty(), "a listener sends nothing");
        Ok(queue.pop().into_iter().collect())
    });
    let mut sub = crate::Subscription::with_conn(conn, GenlEvents::new(family));
    let e = sub.next_event().unwrap();
    assert_eq!(
        (e.kind, e.payload, e.header),
        (
            EventKind::Broadcast,
            &b"to all"[..],
            EventHdr {
                group: 1,
                origin: 4242,
                seq: 9,
                timestamp_ns: 1 << 40
            }
        )
    );
    let e = sub.next_event().unwrap();
    assert_eq!(
        (e.kind, e.payload),
        (EventKind::Heartbeat, &b"Hello from kernel"[..])
    );
    let e = sub.next_event().unwrap();
    assert_eq!((e.kind, e.payload), (EventKind::Goodbye, &b""[..]));
    assert!(matches!(sub.next_event(), Err(Error::Timeout)));

    // Not an event: a request command, or a missing attribute.
    let mut b = MessageBuilder::new();
    b.push(ID, 0, 0, &genl_header(Cmd::Echo)).unwrap();
    let m = Messages::new(b.as_bytes()).next().unwrap().unwrap();
    assert!(matches!(
        decode_genl_event(ID, &m),
        Err(Error::Unexpected(_))
    ));
    let mut b = MessageBuilder::new();
    b.push(ID, 0, 0, &genl_header(Cmd::Event)).unwrap();
    let m = Messages::new(b.as_bytes()).next().unwrap().unwrap();
    match decode_genl_event(ID, &m) {
        Err(Error::MissingAttr { what, attr }) => assert_eq!((what, attr), ("broadcast", "group")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decode_genl_event(ID + 1, &m),
        Err(Error::Unexpected(_))
    ));
}

#[test]
fn info_decoding_needs_the_configuration_and_both_nests() {
    let mut buf = vec![0u8; 512];
    let mut w = KernelWriter::new(&mut buf);
    w.put_u32(Attr::Version.raw(), 1).unwrap();
    let t = AttrTable::new(w.bytes());
    match GenlInfo::parse(t) {
        Err(Error::MissingAttr { what, attr }) => {
            assert_eq!((what, attr), ("get-info reply", "unit"))
        }
        other => panic!("{other:?}"),
    }
    // Unknown counters are skipped, absent ones are 0, a counter of a bad
    // size is malformed.
    let mut nest = crate::attr::AttrBuilder::new();
    nest.put_uint(CounterAttr::Echoes.raw(), 5)
        .unwrap()
        .put_uint(200, 1)
        .unwrap();
    let c = parse_counters(AttrTable::new(nest.as_bytes())).unwrap();
    assert_eq!((c.echoes, c.requests), (5, 0));
    nest.put(CounterAttr::Requests.raw(), &[1, 2, 3]).unwrap();
    assert!(parse_counters(AttrTable::new(nest.as_bytes())).is_err());
}

#[test]
fn ext_ack_without_tlvs_is_just_the_errno() {
    let mut conn = FakeConn::new(|req: &[Message<'_>]| {
        Ok(vec![testing::kernel_error(
            &req[0],
            &KernelError::new(libc::EPERM),
        )])
    });
    let mut b = MessageBuilder::new();
    b.push(ID, NLM_F_REQUEST, 1, &[0; 4]).unwrap();
    match crate::request(&mut conn, b.as_bytes(), |_| Ok(())) {
        Err(Error::Kernel(k)) => assert_eq!(k, KernelError::new(libc::EPERM)),
        other => panic!("{other:?}"),
    }
}

proptest! {
    /// Every extended-ack attribute the kernel sends comes back as sent,
    /// whatever the request's size (the attributes follow the echoed
    /// request) and whichever of them are present.
    #[test]
    fn ext_ack_round_trip(
        errno in 1i32..4096,
        message in proptest::option::of("[^\0]{0,60}"),
        offset in proptest::option::of(any::<u32>()),
        missing_type in proptest::option::of(1u16..0x3fff),
        missing_nest in proptest::option::of(any::<u32>()),
        body in prop::collection::vec(any::<u8>(), 0..70),
    ) {
        let mut sent = KernelError::new(errno);
        sent.message = message;
        sent.offset = offset;
        sent.missing_type = missing_type;
        sent.missing_nest = missing_nest;
        let expect = sent.clone();
        let mut conn = FakeConn::new(move |req: &[Message<'_>]| {
            Ok(vec![testing::kernel_error(&req[0], &sent)])
        });
        let mut b = MessageBuilder::new();
        b.push(ID, NLM_F_REQUEST, 1, &body).unwrap();
        match crate::request(&mut conn, b.as_bytes(), |_| Ok(())) {
            Err(Error::Kernel(k)) => {
                prop_assert_eq!(&k, &expect);
                let _ = k.to_string();
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// Any reply bytes decode to a value or an error, never a panic.
    #[test]
    fn any_attributes_decode_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = GenlInfo::parse(AttrTable::new(&bytes));
        let _ = parse_broadcast(AttrTable::new(&bytes));
        for cmd in [4u8, 5, 6] {
            let body = [&[cmd, 1, 0, 0][..], &bytes].concat();
            let mut b = MessageBuilder::new();
            b.push(ID, 0, 0, &body).unwrap();
            if let Some(Ok(m)) = Messages::new(b.as_bytes()).next() {
                let _ = decode_genl_event(ID, &m);
            }
        }
        let mut k = KernelError::new(1);
        k.offset = Some(24);
        name_attr(&mut k, &bytes);
    }
}
