//! Fuzzes every decoder of received bytes: the datagram splitter, request
//! validation, attributes (typed getters and nests at any depth), generic
//! netlink headers and nlctrl's family answers, NLMSG_ERROR, the fixed rustnl layouts and the
//! rtnetlink / proc-connector decoders. None may panic or read out of
//! bounds; split messages must lie inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustnl_shared::*;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_payload: 4096, groups: 32 };
    let mut end = 0usize;
    for item in Messages::new(data) {
        match item {
            Ok(m) => {
                assert!(m.offset >= end && m.offset + m.bytes.len() <= data.len());
                assert_eq!(m.bytes.len(), m.header.len as usize);
                end = m.offset + m.bytes.len();
                let _ = classify(&m, &limits);
                let _ = ErrorMsg::parse(m.payload, m.header.flags);
                let _ = EventHdr::parse(m.payload);
                let _ = Info::parse(m.payload);
                let _ = BroadcastResult::parse(m.payload);
                let _ = rustnl::families::route::decode(&m);
                let _ = rustnl::families::proc_events::decode(m.payload);
                if let Ok(g) = rustnl::genl::GenlMessage::parse(&m) {
                    let _ = rustnl::genl::Family::parse(g.attrs);
                }
            }
            Err(e) => assert!(e.offset() <= data.len()),
        }
    }
    for a in Attrs::new(data).flatten() {
        assert!(a.payload.len() <= data.len());
    }
    walk(rustnl::attr::AttrTable::new(data), 0);
});

/// Every typed getter on every attribute, nests followed a few levels.
fn walk(t: rustnl::attr::AttrTable<'_>, depth: u32) {
    use rustnl::attr::AttrExt;
    for a in t.iter().flatten() {
        let _ = (a.get_u8(), a.get_u16(), a.get_u32(), a.get_u64(), a.get_i32());
        let _ = (a.get_str(), t.flag(a.ty), t.u32(a.ty), t.str(a.ty));
        if depth < 8 {
            walk(a.get_nested(), depth + 1);
        }
    }
}
