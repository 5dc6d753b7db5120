// SPDX-License-Identifier: GPL-2.0

//! Generic netlink: one family with `do` operations, per-operation attribute
//! policies and multicast groups, served in every network namespace.
//!
//! `rust/kernel/net/netlink.rs` (7.3) registers multicast-only families:
//! its `Family::const_new` leaves operations, policies and `maxattr` empty.
//! This file adds what a family that answers requests needs, in the same
//! shape: [`GenlFamily`] owns the registration of a `struct genl_family`
//! (split operations, as `ynl-gen` emits them, each with its own policy, so
//! the core validates input strictly and answers with extended acks);
//! [`Request`] is the borrowed view of one `do` request handed to the
//! protocol; [`GenlNet`] multicasts to one namespace's listeners
//! (`genlmsg_multicast_netns`). The policy entries ([`AttrRule`]) are
//! `const`, so a protocol's policies are static tables like C's.
//!
//! C `static inline` helpers re-expressed here: `genlmsg_reply` /
//! `genlmsg_unicast` (a unicast on the request's socket, which is the
//! namespace's `genl_sock`), `genlmsg_multicast_netns` and
//! `genlmsg_multicast_netns_filtered`, `genl_info_net`, `genlmsg_data` /
//! `genlmsg_len`, `nla_data`/`nla_len`/`nla_get_u32`,
//! `NL_SET_ERR_MSG_ATTR`, `NL_SET_ERR_ATTR_MISS`.
//!
//! # Numbered groups per socket
//!
//! A classic unit has numbered multicast groups, and a listener joins the
//! ones it wants; a genl family has a few named multicast groups. A family
//! that carries numbered groups in one of them (an attribute of each
//! event) lets each socket choose its numbered groups in the kernel, as
//! devlink lets a socket choose which objects' notifications it gets
//! (`DEVLINK_CMD_NOTIFY_FILTER_SET`), with the same upstream means: the
//! family's per-socket private memory (`genl_family.sock_priv_size`) holds
//! each socket's [`Listening`], set by a request
//! ([`Request::sender_listening`], `genl_sk_priv_get`), and a multicast of
//! numbered group `g` skips the sockets whose choice lacks it
//! ([`GenlNet::multicast_numbered`], `genlmsg_multicast_netns_filtered`
//! with a filter reading the choice as `__genl_sk_priv_get` would). A
//! socket that never chose has no private memory and receives every
//! group, and the core frees each socket's choice when the socket is
//! released or the family unregistered. `genl_sk_priv_get` and
//! `__genl_sk_priv_get` are not exported to modules (7.2, 7.3): the two
//! lookups are re-expressed over the exported xarray functions, on the
//! xarray (`genl_family.sock_privs`, keyed by the socket's address) that
//! `genl_register_family` allocates for a family with a `sock_priv_size`
//! and whose entries the core frees with `kfree`.
//!
//! # Lifetime
//!
//! Generic netlink sockets do not pin the module: operations may be in
//! flight when it unloads. The family is registered after the namespaces'
//! states exist ([`GenlFamily::register`] takes the [`States`] as proof) and
//! unregistered before they go (drop the family first);
//! `genl_unregister_family` waits for operations in flight. An operation
//! comes from a user socket of its namespace, which holds the namespace, so
//! the namespace's state outlives it. The family is registered before the
//! unit's sockets exist and unregistered after they are gone, so heartbeats
//! and goodbyes reach both faces.
//!
//! C header: [`include/net/genetlink.h`](srctree/include/net/genetlink.h).

use super::{
    ffi,
    socket::Delivery,
    state::{self, States},
    KernelSock, Protocol,
};
use core::{fmt, marker::PhantomData, ptr::NonNull};
use super::compat::bindings;
use kernel::{
    alloc::flags::GFP_KERNEL,
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Full, Relaxed, Release},
        rcu,
    },
    types::Opaque,
    ThisModule,
};

/// One entry of an attribute policy (`struct nla_policy`), indexed by
/// attribute type. Built in `const` context: policies are static tables.
#[repr(transparent)]
pub(crate) struct AttrRule(bindings::nla_policy);

// SAFETY: Immutable after construction; the union's pointers are null (only
// the range and length members are used), so sharing it is sharing plain
// data.
unsafe impl Sync for AttrRule {}

impl AttrRule {
    const fn with(ty: u32, validation: u32, len: u16, min: i16, max: i16) -> Self {
        AttrRule(bindings::nla_policy {
            type_: ty as u8,
            validation_type: validation as u8,
            len,
            __bindgen_anon_1: bindings::nla_policy__bindgen_ty_1 {
                // The pointer-sized member first, so every byte of the
                // union is initialised, then the range over it.
                nested_policy: core::ptr::null(),
            },
        })
        .range(min, max)
    }

    const fn range(mut self, min: i16, max: i16) -> Self {
        if self.0.validation_type != 0 {
            self.0.__bindgen_anon_1.__bindgen_anon_1 =
                bindings::nla_policy__bindgen_ty_1__bindgen_ty_1 { min, max };
        }
        self
    }

    /// Not an attribute of this operation (`NLA_UNSPEC`; attribute 0, and
    /// holes). Strict validation refuses it like a type past `maxattr`
    /// (`NL_VALIDATE_UNSPEC`: "Unsupported attribute").
    pub(crate) const UNUSED: Self = Self::with(bindings::NLA_UNSPEC, 0, 0, 0, 0);

    /// `NLA_REJECT`: the attribute is refused whenever present.
    pub(crate) const REJECT: Self = Self::with(bindings::NLA_REJECT, 0, 0, 0, 0);

    /// Whether this entry refuses its attribute.
    pub(crate) const fn is_reject(&self) -> bool {
        self.0.type_ == bindings::NLA_REJECT as u8
    }

    /// `NLA_POLICY_RANGE(NLA_U32, min, max)`.
    pub(crate) const fn u32_range(min: u16, max: u16) -> Self {
        // `nla_policy.min/max` are s16: the caller's bounds must fit.
        if min > i16::MAX as u16 || max > i16::MAX as u16 {
            return Self::REJECT;
        }
        Self::with(
            bindings::NLA_U32,
            bindings::nla_policy_validation_NLA_VALIDATE_RANGE,
            0,
            min as i16,
            max as i16,
        )
    }

    /// `{ .type = NLA_BINARY, .len = max_len }`: at most `max_len` bytes.
    ///
    /// Not `NLA_POLICY_MAX_LEN`, which keeps its bound in the s16
    /// `nla_policy.max`: a bound over 32,767 (the spec's 65,531) would wrap.
    pub(crate) const fn binary(max_len: u16) -> Self {
        Self::with(bindings::NLA_BINARY, 0, max_len, 0, 0)
    }
}

/// Who may run an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Permission {
    /// Anyone.
    Anyone,
    /// `CAP_NET_ADMIN` in the user namespace owning the network namespace
    /// (`GENL_UNS_ADMIN_PERM`), checked by the core before the handler.
    NetAdmin,
}

/// One `do` operation.
pub(crate) struct Op {
    /// The command (`genlmsghdr.cmd`).
    pub(crate) cmd: u8,
    /// Its request policy, indexed by attribute type (entry 0 unused); empty
    /// for an operation that takes no attributes.
    pub(crate) policy: &'static [AttrRule],
}

/// A protocol with a generic netlink face.
pub(crate) trait GenlProtocol: Protocol {
    /// The family name (at most 15 bytes and the NUL).
    const NAME: &'static CStr;
    /// The family version.
    const VERSION: u8;
    /// The `do` operations, sorted by command.
    const OPS: &'static [Op];
    /// The multicast groups' names; group `i` is index `i` here.
    const MCAST_GROUPS: &'static [&'static CStr];
    /// Who may run `cmd` (read once, when the family is registered).
    fn permission(cmd: u8) -> Permission;
    /// Handles one policy-valid request of this namespace; runs in the
    /// sender's task under `genl_mutex` (may sleep). An error is answered
    /// with an `NLMSG_ERROR` carrying it and what was set with
    /// [`Request::ext_ack`]; success with an ack if one was asked for.
    fn genl_request(&self, req: &Request<'_>) -> Result;
}

/// `NLA_HDRLEN`: an attribute header, already aligned.
const NLA_HDRLEN: usize = size_of::<bindings::nlattr>();
/// `GENL_HDRLEN`: the generic netlink header, already aligned.
const GENL_HDRLEN: usize = size_of::<bindings::genlmsghdr>();
/// `NLMSG_HDRLEN`.
const NLMSG_HDRLEN: usize = super::skb::NLMSG_HDRLEN;

/// Numbered groups a socket can choose from: 1..=`NUMBERED_GROUPS`.
pub(crate) const NUMBERED_GROUPS: u32 = 1024;
/// Words of a [`Listening`] bitmap.
pub(crate) const LISTEN_WORDS: usize = NUMBERED_GROUPS as usize / 64;

/// The numbered groups one socket of the family listens to (group `g` at
/// bit `g - 1`): the family's per-socket private memory, set by its
/// requests ([`Request::sender_listening`]) and read by multicasts of a
/// numbered group ([`GenlNet::multicast_numbered`]), concurrently: each
/// word is atomic, so a multicast sees each group either before or after
/// a change.
///
/// Allocated by [`Request::sender_listening`] with `kmalloc` (every
/// group), freed by the core with `kfree` when its socket is released or
/// the family unregistered: it needs no destructor.
pub(crate) struct Listening([Atomic<u64>; LISTEN_WORDS]);

const _: () = assert!(!core::mem::needs_drop::<Listening>() && size_of::<Listening>() > 0);

impl Listening {
    /// Every group: what a socket receives until it chooses.
    pub(super) fn all() -> Self {
        Listening(core::array::from_fn(|_| Atomic::new(u64::MAX)))
    }

    /// From now on, the groups of the bitmap `words` (group `g` at bit
    /// `g - 1`).
    pub(crate) fn set(&self, words: &[u64; LISTEN_WORDS]) {
        for (w, v) in self.0.iter().zip(words) {
            w.store(*v, Relaxed);
        }
    }

    /// Whether group `group` is among them (never for 0 or above
    /// [`NUMBERED_GROUPS`]).
    #[inline]
    pub(crate) fn contains(&self, group: u32) -> bool {
        let Some(i) = group.checked_sub(1).map(|i| i as usize) else {
            return false;
        };
        self.0
            .get(i / 64)
            .is_some_and(|w| w.load(Relaxed) & (1u64 << (i % 64)) != 0)
    }
}

/// The most operations and multicast groups a family can have here (the
/// storage is static, like the family).
const MAX_OPS: usize = 8;
const MAX_MCGRPS: usize = 4;

/// The registered `struct genl_family` and the arrays it points to. The core
/// writes `id` and `mcgrp_offset` into it while registered (families are
/// found through an IDR, not linked).
struct FamilyStorage {
    family: Opaque<bindings::genl_family>,
    ops: Opaque<[bindings::genl_split_ops; MAX_OPS]>,
    mcgrps: Opaque<[bindings::genl_multicast_group; MAX_MCGRPS]>,
}

// SAFETY: Written only by `GenlFamily::register` while unregistered (under
// `FAMILY_CLAIMED`), then owned by the genetlink core, which serialises its
// writes (`genl_lock_all`); readers here read `id`/`mcgrp_offset`, written
// before `FAMILY_LIVE` was set.
unsafe impl Sync for FamilyStorage {}

static FAMILY: FamilyStorage = FamilyStorage {
    family: Opaque::uninit(),
    ops: Opaque::uninit(),
    mcgrps: Opaque::uninit(),
};
/// Taken by the one [`GenlFamily`] of the module.
static FAMILY_CLAIMED: Atomic<bool> = Atomic::new(false);
/// Set (release) once the family is registered, cleared before it is
/// unregistered: multicasts from outside a request ([`GenlNet::of`]) check
/// it.
static FAMILY_LIVE: Atomic<bool> = Atomic::new(false);

/// The family's xarray of per-socket private memory (`sock_privs`, keyed by
/// the socket's address; each entry a [`Listening`]).
///
/// # Safety
///
/// The family must be registered (by [`GenlFamily::register`]).
#[inline]
unsafe fn family_sock_privs() -> *mut bindings::xarray {
    let f = core::ptr::from_ref(&FAMILY.family).cast::<bindings::genl_family>();
    // SAFETY: Registered (caller): `genl_register_family` allocated the
    // xarray (the family has a `sock_priv_size`) before it returned and
    // frees it only in `genl_unregister_family`. Read through the raw
    // pointer, as in `family_ids`.
    unsafe { (*f).sock_privs }
}

/// `__genl_sk_priv_get(family, sk)`: the [`Listening`] of `sk`, if it chose.
///
/// # Safety
///
/// The family must be registered for `'a`, and `sk`'s private memory must
/// not be freed during `'a`: `sk` is on a listener list the core is walking
/// (its release unlinks it, waiting for the walk, before the core frees
/// the memory), or it is a request's sender during the request.
unsafe fn sock_priv<'a>(sk: *mut bindings::sock) -> Option<&'a Listening> {
    // The lookup's own reading of the xarray is under RCU (as
    // `__genl_sk_priv_get` asks of its callers); the entry outlives it
    // (caller).
    let _rcu = rcu::read_lock();
    // SAFETY: The registered family's xarray (caller); any index may be
    // looked up.
    let p = unsafe { bindings::xa_load(family_sock_privs(), sk as usize) };
    // SAFETY: Every entry of the family's xarray is a `Listening`
    // (`sock_priv_get` stores nothing else), alive for `'a` (caller).
    NonNull::new(p).map(|p| unsafe { p.cast::<Listening>().as_ref() })
}

/// `genl_sk_priv_get(family, sk)`: the [`Listening`] of `sk`, made (every
/// group) if it has none yet; `ENOMEM`, or the xarray's error.
///
/// # Safety
///
/// As for [`sock_priv`]; `sk` is a request's sender (so that nothing else
/// stores for it concurrently but another request of it, which
/// `xa_cmpxchg` settles as the core does).
unsafe fn sock_priv_get<'a>(sk: *mut bindings::sock) -> Result<&'a Listening> {
    // SAFETY: As documented (caller).
    if let Some(l) = unsafe { sock_priv(sk) } {
        return Ok(l);
    }
    // `genl_sk_priv_alloc`: `kmalloc`, which the core's `kfree` frees, with
    // the initial value (`sock_priv_init`).
    let new = KBox::into_raw(KBox::new(Listening::all(), GFP_KERNEL)?);
    // SAFETY: The registered family's xarray (caller); `new` is a valid
    // allocation the xarray takes over if the slot is still empty.
    let old = unsafe {
        ffi::rustnl_xa_cmpxchg(
            family_sock_privs(),
            sk as usize,
            core::ptr::null_mut(),
            new.cast(),
            bindings::GFP_KERNEL,
        )
    };
    if old.is_null() {
        // SAFETY: Stored: alive until the core frees it, after `'a`
        // (caller).
        return Ok(unsafe { &*new });
    }
    // Not stored: ours to free.
    // SAFETY: From `KBox::into_raw` above, not shared.
    drop(unsafe { KBox::from_raw(new) });
    // SAFETY: `xa_err` reads the entry's bits only.
    let err = unsafe { ffi::rustnl_xa_err(old) };
    if err < 0 {
        return Err(Error::from_errno(err));
    }
    // Another request of the same socket stored first: that one.
    // SAFETY: As in `sock_priv`.
    Ok(unsafe { &*old.cast::<Listening>() })
}

/// The family's id and the netlink group of its multicast group 0.
///
/// # Safety
///
/// The family must be registered (by [`GenlFamily::register`]).
#[inline]
unsafe fn family_ids() -> (u16, u32) {
    // `Opaque<T>` is `repr(transparent)` over `UnsafeCell<MaybeUninit<T>>`:
    // its address is the family's. (Not `Opaque::get`: it is not inlined
    // across crates, a call on every reply and event.)
    let f = core::ptr::from_ref(&FAMILY.family).cast::<bindings::genl_family>();
    // SAFETY: Registered (caller): the core wrote both fields before
    // registration returned and does not change them while registered.
    // Read through the raw pointer (no reference to the whole struct, which
    // the core owns while it is registered).
    unsafe { ((*f).id as u16, (*f).mcgrp_offset) }
}

/// The registration of `P`'s generic netlink family; unregisters on drop.
///
/// # Invariants
///
/// While the value exists, the family is registered and `FAMILY` holds it.
pub(crate) struct GenlFamily<P: GenlProtocol> {
    _p: PhantomData<P>,
}

impl<P: GenlProtocol> GenlFamily<P> {
    /// Registers the family, owned by `owner`, in every network namespace
    /// (`netnsok`).
    ///
    /// The protocol's per-namespace `states` must exist first, and stay
    /// registered while the family is: an operation may run as soon as this
    /// starts.
    pub(crate) fn register(_states: &States<P>, owner: &'static ThisModule) -> Result<Self> {
        if P::OPS.len() > MAX_OPS || P::MCAST_GROUPS.len() > MAX_MCGRPS {
            return Err(EINVAL);
        }
        let mut family = bindings::genl_family {
            version: P::VERSION.into(),
            n_split_ops: P::OPS.len() as u8,
            n_mcgrps: P::MCAST_GROUPS.len() as u8,
            split_ops: FAMILY.ops.get().cast(),
            mcgrps: FAMILY.mcgrps.get().cast(),
            // `ThisModule` is the kernel crate's; on 7.2 the bindings are the
            // module's own (`compat.rs`): the same `struct module`.
            module: owner.as_ptr().cast(),
            // Each socket's `Listening`, which the core frees with the
            // socket or the family (no `sock_priv_destroy` needed; no
            // `sock_priv_init` either: the core never allocates one for
            // us, `sock_priv_get` does).
            sock_priv_size: size_of::<Listening>(),
            ..Default::default()
        };
        family.set_netnsok(1);
        copy_name(&mut family.name, P::NAME)?;
        let mut ops = [bindings::genl_split_ops::default(); MAX_OPS];
        for (dst, op) in ops.iter_mut().zip(P::OPS) {
            let mut flags = bindings::GENL_CMD_CAP_DO;
            if P::permission(op.cmd) == Permission::NetAdmin {
                flags |= bindings::GENL_UNS_ADMIN_PERM;
            }
            dst.__bindgen_anon_1.__bindgen_anon_1.doit = Some(doit::<P>);
            dst.cmd = op.cmd;
            dst.flags = flags as u8;
            if let Some(max) = op.policy.len().checked_sub(1).filter(|m| *m > 0) {
                dst.policy = op.policy.as_ptr().cast();
                dst.maxattr = max as u32;
            }
        }
        let mut mcgrps = [bindings::genl_multicast_group::default(); MAX_MCGRPS];
        for (dst, name) in mcgrps.iter_mut().zip(P::MCAST_GROUPS) {
            copy_name(&mut dst.name, name)?;
        }
        if FAMILY_CLAIMED.xchg(true, Full) {
            return Err(EBUSY);
        }
        // SAFETY: Unregistered and claimed (above): nobody else reads or
        // writes the storage until it is registered below.
        unsafe {
            FAMILY.ops.get().write(ops);
            FAMILY.mcgrps.get().write(mcgrps);
            FAMILY.family.get().write(family);
        }
        // SAFETY: The family and its arrays are initialised and static; the
        // policies are static tables; `doit::<P>` lives as long as the
        // module, which unregisters the family before it goes.
        let ret = unsafe { bindings::genl_register_family(FAMILY.family.get()) };
        if ret < 0 {
            FAMILY_CLAIMED.store(false, Release);
            return Err(Error::from_errno(ret));
        }
        FAMILY_LIVE.store(true, Release);
        // INVARIANT: Registered.
        Ok(GenlFamily { _p: PhantomData })
    }
}

impl<P: GenlProtocol> Drop for GenlFamily<P> {
    fn drop(&mut self) {
        FAMILY_LIVE.store(false, Release);
        // SAFETY: Registered (type invariant). Waits for operations in
        // flight; afterwards no handler of ours runs and the storage is
        // ours again.
        let ret = unsafe { bindings::genl_unregister_family(FAMILY.family.get()) };
        if ret < 0 {
            pr_warn!("genl_unregister_family failed (errno {})\n", ret);
        }
        FAMILY_CLAIMED.store(false, Release);
    }
}

/// Copies a name, NUL included, into a C name buffer.
fn copy_name(dst: &mut [c_char], name: &CStr) -> Result {
    let src = name.to_bytes_with_nul();
    if src.len() > dst.len() {
        return Err(EINVAL);
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s as c_char;
    }
    Ok(())
}

/// The `doit` of every operation.
///
/// # Safety
///
/// Called by the genetlink core with the request `skb` (its `sk` the
/// namespace's genl kernel socket) and its `info`, both valid for the call,
/// for a policy-valid request of a registered family of `P`.
unsafe extern "C" fn doit<P: GenlProtocol>(
    skb: *mut bindings::sk_buff,
    info: *mut bindings::genl_info,
) -> c_int {
    let (Some(skb), Some(info)) = (NonNull::new(skb), NonNull::new(info)) else {
        return EINVAL.to_errno();
    };
    // SAFETY: As documented.
    let Some(req) = (unsafe { Request::from_raw::<P>(skb, info) }) else {
        return EINVAL.to_errno();
    };
    // SAFETY: The request comes from a user socket of its namespace, which
    // holds the namespace for the request, and the states are registered
    // while the family is (`GenlFamily::register`).
    let state = unsafe { state::state_of::<P>(req.net) };
    let Some(state) = state else {
        // Not expected: every namespace has its state while the family is
        // registered.
        req.ext_ack(None, format_args!("no protocol state in this network namespace"));
        return ENODEV.to_errno();
    };
    match state.genl_request(&req) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// One `do` request, borrowed for the handler.
///
/// # Invariants
///
/// `skb` and `info` are the core's, valid for `'a`; `skb->sk` is the
/// namespace's genl kernel socket (`sk`); `info.attrs` is null or has
/// `maxattr + 1` entries, each null or a policy-valid attribute in the
/// request; `attrs` is every attribute of the request, policy-valid;
/// `net` is the request's namespace, live for `'a`; `sender` is the
/// sending user socket (`NETLINK_CB(skb).sk`), which the sending task holds
/// for `'a`.
pub(crate) struct Request<'a> {
    info: &'a bindings::genl_info,
    sk: &'a KernelSock,
    net: *mut bindings::net,
    sender: *mut bindings::sock,
    attrs: &'a [u8],
    cmd: u8,
    maxattr: usize,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> Request<'a> {
    /// # Safety
    ///
    /// As for [`doit`], for `'a`.
    unsafe fn from_raw<P: GenlProtocol>(
        skb: NonNull<bindings::sk_buff>,
        info: NonNull<bindings::genl_info>,
    ) -> Option<Self> {
        // SAFETY: Valid for `'a` (caller).
        let (s, info) = unsafe { (skb.as_ref(), &*info.as_ptr()) };
        if s.sk.is_null()
            || info.genlhdr.is_null()
            || info.nlhdr.is_null()
            || info._net.net.is_null()
        {
            return None;
        }
        // SAFETY: `skb->sk` is the genl kernel socket that received the
        // request, alive while its input runs.
        let sk = unsafe { KernelSock::from_raw(s.sk) };
        // SAFETY: The core set `genlhdr` to the request's header.
        let cmd = unsafe { (*info.genlhdr).cmd };
        // `NETLINK_CB(skb).sk`: the request came from a netlink socket, so
        // the control buffer holds a `netlink_skb_parms` (`cb` is 48 bytes,
        // 8-aligned, larger than the struct).
        // SAFETY: The skb is valid for `'a` (caller).
        let sender = unsafe { (*(&raw const s.cb).cast::<bindings::netlink_skb_parms>()).sk };
        if sender.is_null() {
            return None;
        }
        // `genlmsg_data` / `genlmsg_len` (the family has no user header):
        // the core checked `NLMSG_HDRLEN + GENL_HDRLEN <= nlmsg_len <=`
        // the skb's data before parsing, and the policy every attribute.
        // SAFETY: The core set `nlhdr` to the request's netlink header.
        let len = unsafe { (*info.nlhdr).nlmsg_len } as usize;
        let attrs_len = len.checked_sub(NLMSG_HDRLEN + GENL_HDRLEN)?;
        // SAFETY: `attrs_len` bytes follow the genl header in the request,
        // which the core holds for `'a` (the checks above).
        let attrs = unsafe {
            core::slice::from_raw_parts(info.genlhdr.cast::<u8>().add(GENL_HDRLEN), attrs_len)
        };
        // The op's policy sized `attrs` (when it has one).
        let maxattr = P::OPS
            .iter()
            .find(|op| op.cmd == cmd)
            .map_or(0, |op| op.policy.len().saturating_sub(1));
        // INVARIANT: As guaranteed by the caller; `attrs` was parsed with the
        // op's policy of `maxattr` entries (none when it has no policy: then
        // `attrs` is null).
        Some(Request {
            info,
            sk,
            net: info._net.net,
            sender,
            attrs,
            cmd,
            maxattr,
            _not_send: PhantomData,
        })
    }

    /// Every attribute of the request as sent, policy-valid: where each of
    /// several attributes of one type is found (`nla_for_each_attr_type`
    /// over `genlmsg_data`).
    #[inline]
    pub(crate) fn attrs(&self) -> &'a [u8] {
        self.attrs
    }

    /// The sending socket's [`Listening`] (`genl_sk_priv_get`): every group
    /// until a request of the socket changes it. `ENOMEM` if it could not
    /// be made.
    pub(crate) fn sender_listening(&self) -> Result<&'a Listening> {
        // SAFETY: The family is registered while its operations run
        // (`genl_unregister_family` waits for them), and the sender's
        // private memory is freed at its release, which waits for the
        // sending task, or at unregistration, after `'a` (type invariants).
        unsafe { sock_priv_get(self.sender) }
    }

    /// The command.
    #[inline]
    pub(crate) fn cmd(&self) -> u8 {
        self.cmd
    }

    /// The attribute `ty` (as `nla_data`, `nla_len` give it), if present.
    #[inline]
    pub(crate) fn attr(&self, ty: u16) -> Option<&'a [u8]> {
        let ty = usize::from(ty);
        if self.info.attrs.is_null() || ty == 0 || ty > self.maxattr {
            return None;
        }
        // SAFETY: `attrs` has `maxattr + 1` entries (type invariant).
        let nla = unsafe { *self.info.attrs.add(ty) };
        if nla.is_null() {
            return None;
        }
        // SAFETY: A validated attribute inside the request (type
        // invariant): `nla_len >= NLA_HDRLEN` bytes readable from `nla`,
        // for `'a`.
        unsafe {
            let len = usize::from((*nla).nla_len).saturating_sub(NLA_HDRLEN);
            Some(core::slice::from_raw_parts(nla.cast::<u8>().add(NLA_HDRLEN), len))
        }
    }

    /// `nla_get_u32` of attribute `ty`, if present (4 bytes, as the
    /// policy checked).
    #[inline]
    pub(crate) fn attr_u32(&self, ty: u16) -> Option<u32> {
        let b = self.attr(ty)?;
        Some(u32::from_ne_bytes(*b.first_chunk::<4>()?))
    }

    /// The sender's port id (`info->snd_portid`): replies go there.
    #[inline]
    pub(crate) fn sender_portid(&self) -> u32 {
        self.info.snd_portid
    }

    /// The request's namespace, for multicasts to its listeners.
    #[inline]
    pub(crate) fn net(&self) -> GenlNet<'a> {
        // INVARIANT: The request's socket is the namespace's genl socket and
        // the family is registered while its operations run.
        GenlNet { sk: self.sk }
    }

    /// `genlmsg_reply`: answers with one message of this family carrying
    /// `head` (the genl header, and the first attribute's header if its
    /// payload follows in `parts`: written with plain stores) then `parts`,
    /// concatenated. The core adds the ack if one was asked for. Fails with
    /// `ENOMEM` if no buffer could be had, or with the unicast's error (the
    /// sender's queue is full: netlink flagged `ENOBUFS` on it).
    #[inline]
    pub(crate) fn reply<const H: usize, const N: usize>(
        &self,
        head: &[u8; H],
        parts: &[&[u8]; N],
    ) -> Result {
        // SAFETY: Registered while its operations run.
        let (id, _) = unsafe { family_ids() };
        let skb = super::skb::SkBuff::message(
            self.info.snd_portid,
            self.info.snd_seq,
            id,
            0,
            head,
            parts,
            GFP_KERNEL,
        )?;
        // SAFETY: The request's socket is alive during the request; the skb
        // is ours and `netlink_unicast` always consumes it.
        let ret = unsafe {
            bindings::netlink_unicast(
                self.sk.as_ptr(),
                skb.into_raw(),
                self.info.snd_portid,
                bindings::MSG_DONTWAIT as c_int,
            )
        };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(())
    }

    /// Sets the extended ack of an error answer: `text`
    /// (`NLMSGERR_ATTR_MSG`) and, with `bad_attr`, the offset of that
    /// attribute of the request (`NLMSGERR_ATTR_OFFS`), as
    /// `NL_SET_ERR_MSG_FMT` + `NL_SET_BAD_ATTR` do (the text also goes to
    /// the `netlink:netlink_extack` trace event).
    pub(crate) fn ext_ack(&self, bad_attr: Option<u16>, text: fmt::Arguments<'_>) {
        let Some(extack) = NonNull::new(self.info.extack) else {
            return;
        };
        let bad = bad_attr.and_then(|ty| self.raw_attr(ty));
        // SAFETY: The core's extack for this request, valid and only ours
        // during the handler.
        let extack = unsafe { &mut *extack.as_ptr() };
        super::datagram::set_ext_ack_text(extack, text);
        if let Some(nla) = bad {
            extack.bad_attr = nla;
        }
    }

    /// As [`Self::ext_ack`], pointing at the attribute that starts `offset`
    /// bytes into [`Self::attrs`] (one of several of its type); none if no
    /// attribute header fits there.
    pub(crate) fn ext_ack_at(&self, offset: usize, text: fmt::Arguments<'_>) {
        self.ext_ack(None, text);
        let Some(extack) = NonNull::new(self.info.extack) else {
            return;
        };
        if offset.checked_add(NLA_HDRLEN).is_some_and(|end| end <= self.attrs.len()) {
            // SAFETY: As in `ext_ack`; the attribute header lies within the
            // request (checked above).
            unsafe {
                (*extack.as_ptr()).bad_attr = self.attrs.as_ptr().add(offset).cast();
            }
        }
    }

    /// Reports attribute `ty` missing (`NL_SET_ERR_ATTR_MISS`:
    /// `NLMSGERR_ATTR_MISS_TYPE`), with `text`.
    pub(crate) fn missing_attr(&self, ty: u16, text: fmt::Arguments<'_>) {
        self.ext_ack(None, text);
        if let Some(extack) = NonNull::new(self.info.extack) {
            // SAFETY: As in `ext_ack`.
            let extack = unsafe { &mut *extack.as_ptr() };
            extack.miss_nest = core::ptr::null();
            extack.miss_type = ty;
        }
    }

    /// The `struct nlattr` of attribute `ty`, if present.
    fn raw_attr(&self, ty: u16) -> Option<*const bindings::nlattr> {
        let ty = usize::from(ty);
        if self.info.attrs.is_null() || ty == 0 || ty > self.maxattr {
            return None;
        }
        // SAFETY: `attrs` has `maxattr + 1` entries (type invariant).
        let nla = unsafe { *self.info.attrs.add(ty) };
        (!nla.is_null()).then_some(nla.cast_const())
    }
}

/// One namespace's listeners of the family, for multicasts
/// (`genlmsg_multicast_netns`).
///
/// # Invariants
///
/// `sk` is the namespace's genl kernel socket (`net->genl_sock`), alive for
/// `'a`, and the family is registered for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct GenlNet<'a> {
    sk: &'a KernelSock,
}

impl<'a> GenlNet<'a> {
    /// The family's listeners in `net`, if the family is registered.
    ///
    /// # Safety
    ///
    /// `net` must be live for `'a`, in a state where its genl socket exists
    /// (from its set-up until its `exit`), and the family must stay
    /// registered for `'a` once it is seen registered here (the unit's
    /// tick and teardown, which call this, end before the family is
    /// unregistered: see the registration order in `mod.rs`).
    pub(super) unsafe fn of(net: *mut bindings::net) -> Option<Self> {
        if !FAMILY_LIVE.load(Acquire) {
            return None;
        }
        // SAFETY: `net` is live (caller).
        let sk = unsafe { (*net).genl_sock };
        if sk.is_null() {
            return None;
        }
        // SAFETY: The namespace's genl kernel socket, alive while the
        // namespace is (caller).
        let sk = unsafe { KernelSock::from_raw(sk) };
        // INVARIANT: See the caller's guarantees.
        Some(GenlNet { sk })
    }

    /// The netlink group of multicast group `group`.
    #[inline]
    fn netlink_group(&self, group: usize) -> u32 {
        // SAFETY: Registered (type invariant).
        let (_, offset) = unsafe { family_ids() };
        offset + group as u32
    }

    /// Whether anyone in the namespace listens on multicast group `group`.
    pub(crate) fn has_listeners(&self, group: usize) -> bool {
        self.sk.has_listeners(self.netlink_group(group))
    }

    /// Multicasts one message of the family (`parts`: genl header, then
    /// attributes) to multicast group `group` in this namespace only.
    pub(crate) fn multicast<const N: usize>(
        &self,
        group: usize,
        parts: &[&[u8]; N],
    ) -> Result<Delivery> {
        // SAFETY: Registered (type invariant).
        let (id, _) = unsafe { family_ids() };
        self.sk
            .broadcast(self.netlink_group(group), id, 0, parts, GFP_KERNEL)
    }

    /// As [`Self::multicast`], as an event of numbered group `numbered`:
    /// to the listeners of multicast group `group` that listen to it (their
    /// [`Listening`] has it, or they never chose), skipping the others,
    /// which do not count as listeners either
    /// (`genlmsg_multicast_netns_filtered`).
    pub(crate) fn multicast_numbered<const N: usize>(
        &self,
        group: usize,
        numbered: u32,
        parts: &[&[u8]; N],
    ) -> Result<Delivery> {
        // SAFETY: Registered (type invariant).
        let (id, _) = unsafe { family_ids() };
        self.sk.broadcast_to(
            self.netlink_group(group),
            id,
            0,
            parts,
            GFP_KERNEL,
            |sk| {
                // SAFETY: The family is registered for `'a` (type
                // invariant), and `sk` is on the listener list the core is
                // walking (`broadcast_to`).
                unsafe { sock_priv(sk) }.is_none_or(|l| l.contains(numbered))
            },
        )
    }
}
