//! Connector process events (`NETLINK_CONNECTOR`, `CN_IDX_PROC`).
//!
//! Any process may join the proc connector's group on current kernels; the
//! kernel only acts on subscriptions from processes of the initial user and
//! PID namespaces (from elsewhere it ignores them without an answer).

use crate::errors::{Error, Result};
use crate::event::{Decode, Subscription};
use crate::message::MessageBuilder;
use crate::proto::Message;
use crate::proto::NLMSG_DONE;
use crate::socket::{Socket, DEFAULT_TIMEOUT};
use crate::sys;
use std::mem::{offset_of, size_of};
use std::time::{Duration, Instant};

/// How a process ended, decoded from the kernel's wait status (the
/// `exit_code` of the connector's exit event, which is `wait(2)`'s status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExitStatus {
    /// The exit code, if the process exited (`WEXITSTATUS`).
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did (`WTERMSIG`).
    pub signal: Option<i32>,
    /// Whether it dumped core (`WCOREDUMP`).
    pub core_dumped: bool,
    /// The raw wait status.
    pub wait_status: u32,
}

impl ExitStatus {
    /// Decodes a wait status.
    ///
    /// ```
    /// use rustnl::families::proc_events::ExitStatus;
    /// let s = ExitStatus::from_wait_status(3 << 8); // `exit 3`
    /// assert_eq!((s.exit_code, s.signal), (Some(3), None));
    /// let s = ExitStatus::from_wait_status(9); // SIGKILL
    /// assert_eq!((s.exit_code, s.signal), (None, Some(9)));
    /// ```
    pub fn from_wait_status(status: u32) -> ExitStatus {
        let sig = (status & 0x7f) as i32;
        let (exit_code, signal) = if sig == 0 {
            (Some(((status >> 8) & 0xff) as i32), None)
        } else {
            (None, Some(sig))
        };
        ExitStatus {
            exit_code,
            signal,
            core_dumped: sig != 0 && status & 0x80 != 0,
            wait_status: status,
        }
    }
}

/// One process event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "type", rename_all = "snake_case")
)]
pub enum ProcEvent {
    /// A process (or thread) was forked.
    Fork {
        /// Parent pid.
        parent_pid: i32,
        /// Parent thread group.
        parent_tgid: i32,
        /// Child pid.
        #[cfg_attr(feature = "serde", serde(rename = "pid"))]
        child_pid: i32,
        /// Child thread group.
        #[cfg_attr(feature = "serde", serde(rename = "tgid"))]
        child_tgid: i32,
    },
    /// A process called execve. The event carries no name: [`comm`] reads
    /// the new command name while the process still exists.
    Exec {
        /// Its pid.
        pid: i32,
        /// Its thread group.
        tgid: i32,
    },
    /// A process changed its command name (also sent after exec).
    Comm {
        /// Its pid.
        pid: i32,
        /// Its thread group.
        tgid: i32,
        /// The new name.
        comm: String,
    },
    /// A process exited.
    Exit {
        /// Its pid.
        pid: i32,
        /// Its thread group.
        tgid: i32,
        /// Exit code or signal.
        #[cfg_attr(feature = "serde", serde(flatten))]
        status: ExitStatus,
        /// Parent pid.
        parent_pid: i32,
        /// Parent thread group.
        parent_tgid: i32,
    },
    /// The kernel's answer to a subscription request: `err` 0 accepted,
    /// else a positive errno.
    Ack {
        /// Error from the kernel (positive errno, 0: accepted).
        err: u32,
        /// The connector sequence number (the kernel's event counter).
        seq: u32,
        /// The `ack` field of the request answered, plus one.
        ack: u32,
    },
    /// Another kind (uid/gid/sid/ptrace/coredump changes).
    Other {
        /// The `what` field.
        what: u32,
        /// Its pid, where the event has one at the usual place.
        pid: i32,
    },
}

impl ProcEvent {
    /// Lower-case kind name.
    pub fn name(&self) -> &'static str {
        match self {
            ProcEvent::Fork { .. } => "fork",
            ProcEvent::Exec { .. } => "exec",
            ProcEvent::Comm { .. } => "comm",
            ProcEvent::Exit { .. } => "exit",
            ProcEvent::Ack { .. } => "ack",
            ProcEvent::Other { .. } => "other",
        }
    }
}

/// The command name of process `pid` (`/proc/PID/comm`), if it still
/// exists. Call it on an [`ProcEvent::Exec`] as soon as it arrives.
pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// Decodes the payload of one connector message carrying a `proc_event`.
/// Pure: reads nothing but `payload`.
pub fn decode(payload: &[u8]) -> Result<ProcEvent> {
    let cn: sys::cn_msg = sys::read_layout(payload, "cn_msg")?;
    if cn.id.idx != sys::CN_IDX_PROC || cn.id.val != sys::CN_VAL_PROC {
        return Err(Error::Unexpected(format!(
            "connector message for {}:{}",
            cn.id.idx, cn.id.val
        )));
    }
    let data = payload.get(size_of::<sys::cn_msg>()..).unwrap_or_default();
    let ev: sys::proc_event = sys::read_layout(data, "proc_event")?;
    // SAFETY (all union reads below): `proc_event` is plain data, so every
    // union member is a valid value; `what` says which one the kernel wrote.
    let e = &ev.event_data;
    Ok(match ev.what {
        sys::PROC_EVENT_NONE => ProcEvent::Ack {
            err: unsafe { e.ack.err },
            seq: cn.seq,
            ack: cn.ack,
        },
        sys::PROC_EVENT_FORK => {
            let f = unsafe { e.fork };
            ProcEvent::Fork {
                parent_pid: f.parent_pid,
                parent_tgid: f.parent_tgid,
                child_pid: f.child_pid,
                child_tgid: f.child_tgid,
            }
        }
        sys::PROC_EVENT_EXEC => {
            let x = unsafe { e.exec };
            ProcEvent::Exec {
                pid: x.process_pid,
                tgid: x.process_tgid,
            }
        }
        sys::PROC_EVENT_COMM => {
            let c = unsafe { e.comm };
            let raw: Vec<u8> = c
                .comm
                .iter()
                .map(|&b| b as u8)
                .take_while(|&b| b != 0)
                .collect();
            ProcEvent::Comm {
                pid: c.process_pid,
                tgid: c.process_tgid,
                comm: String::from_utf8_lossy(&raw).into_owned(),
            }
        }
        sys::PROC_EVENT_EXIT | sys::PROC_EVENT_NONZERO_EXIT => {
            let x = unsafe { e.exit };
            ProcEvent::Exit {
                pid: x.process_pid,
                tgid: x.process_tgid,
                status: ExitStatus::from_wait_status(x.exit_code),
                parent_pid: x.parent_pid,
                parent_tgid: x.parent_tgid,
            }
        }
        what => ProcEvent::Other {
            what,
            pid: data
                .get(offset_of!(sys::proc_event, event_data)..)
                .and_then(|d| d.first_chunk::<4>())
                .map_or(0, |b| i32::from_ne_bytes(*b)),
        },
    })
}

/// Encodes the connector message that starts (`listen`) or stops the
/// process events for the sending socket. The kernel's answer
/// ([`ProcEvent::Ack`]) carries `ack + 1` (its sequence number is the
/// kernel's own counter, so `ack` is what identifies the request).
pub fn subscription_request(listen: bool, ack: u32) -> Result<Vec<u8>> {
    let op = if listen {
        sys::PROC_CN_MCAST_LISTEN
    } else {
        sys::PROC_CN_MCAST_IGNORE
    }
    .to_ne_bytes();
    let mut cn = [0u8; size_of::<sys::cn_msg>()];
    cn[offset_of!(sys::cn_msg, id)..][..4].copy_from_slice(&sys::CN_IDX_PROC.to_ne_bytes());
    cn[offset_of!(sys::cn_msg, id) + 4..][..4].copy_from_slice(&sys::CN_VAL_PROC.to_ne_bytes());
    cn[offset_of!(sys::cn_msg, ack)..][..4].copy_from_slice(&ack.to_ne_bytes());
    cn[offset_of!(sys::cn_msg, len)..][..2].copy_from_slice(&(op.len() as u16).to_ne_bytes());
    let mut b = MessageBuilder::new();
    // The connector takes its messages as NLMSG_DONE, without NLM_F_REQUEST.
    b.push_parts(NLMSG_DONE, 0, 0, &[&cn, &op])?;
    Ok(b.as_bytes().to_vec())
}

/// The decoder of the proc connector's messages: every `NLMSG_DONE` is a
/// [`ProcEvent`] (answers to other listeners' subscriptions,
/// [`ProcEvent::Ack`], included).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcEvents;

impl Decode for ProcEvents {
    type Item<'a> = ProcEvent;
    fn keep(&mut self, msg: &Message<'_>) -> bool {
        msg.header.ty == NLMSG_DONE
    }
    fn decode<'a>(&mut self, msg: &Message<'a>) -> Result<ProcEvent> {
        decode(msg.payload)
    }
}

impl Subscription<ProcEvents> {
    /// Joins the proc connector group, asks the kernel to start sending
    /// (`PROC_CN_MCAST_LISTEN`) and waits up to
    /// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT) for its answer: a
    /// refusal is [`Error::Kernel`] with the kernel's errno, no answer at
    /// all [`Error::NoAnswer`] (the kernel ignores requests from outside the
    /// initial user and PID namespaces). The events start after the answer
    /// (those in its datagram are kept); no receive timeout then.
    ///
    /// ```no_run
    /// use rustnl::families::proc_events::{self, ProcEvent};
    /// let mut events = rustnl::Subscription::proc_events()?;
    /// if let ProcEvent::Exec { pid, .. } = events.next_event()? {
    ///     println!("exec {pid} {:?}", proc_events::comm(pid));
    /// }
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    pub fn proc_events() -> Result<Subscription<ProcEvents>> {
        Self::proc_events_with_timeout(DEFAULT_TIMEOUT)
    }

    /// [`Subscription::proc_events`], waiting up to `timeout` for the
    /// answer.
    pub fn proc_events_with_timeout(timeout: Duration) -> Result<Subscription<ProcEvents>> {
        let mut sock = Socket::open_with_groups(sys::NETLINK_CONNECTOR, sys::CN_IDX_PROC)?;
        // The answer is multicast to every listener: our port id, sent as
        // the request's `ack`, tells ours apart (it comes back plus one).
        let tag = sock.port_id();
        sock.send(&subscription_request(true, tag)?)?;
        let deadline = Instant::now() + timeout;
        let answer = 'wait: loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break None;
            }
            sock.set_recv_timeout(Some(left))?;
            let dgram = match sock.recv() {
                Ok(d) => d,
                Err(Error::Timeout) => break None,
                Err(e) => return Err(e),
            };
            if dgram.sender != 0 {
                continue;
            }
            for m in dgram.messages() {
                let m = m?;
                if m.header.ty != NLMSG_DONE {
                    continue;
                }
                if let ProcEvent::Ack { err, ack, .. } = decode(m.payload)? {
                    if ack == tag.wrapping_add(1) {
                        break 'wait Some((err, m.offset + m.bytes.len()));
                    }
                }
            }
        };
        sock.set_recv_timeout(None)?;
        match answer {
            Some((0, rest)) => {
                let mut sub = Subscription::with_conn(sock, ProcEvents);
                sub.keep_rest_of_last(rest)?;
                Ok(sub)
            }
            Some((err, _)) => Err(Error::Kernel(crate::KernelError {
                message: Some("the proc connector refused the subscription".into()),
                ..crate::KernelError::new(err as i32)
            })),
            None => Err(Error::NoAnswer {
                request: "the proc connector subscription",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut buf = vec![0u8; size_of::<sys::cn_msg>() + size_of::<sys::proc_event>()];
        buf[0..4].copy_from_slice(&sys::CN_IDX_PROC.to_ne_bytes());
        buf[4..8].copy_from_slice(&sys::CN_VAL_PROC.to_ne_bytes());
        let ev = size_of::<sys::cn_msg>();
        buf[ev..ev + 4].copy_from_slice(&what.to_ne_bytes());
        fill(&mut buf[ev + offset_of!(sys::proc_event, event_data)..]);
        buf
    }

    #[test]
    fn decodes_fork_exit_and_comm() {
        let m = message(sys::PROC_EVENT_FORK, |d| {
            for (i, v) in [10i32, 10, 11, 11].iter().enumerate() {
                d[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
            }
        });
        assert_eq!(
            decode(&m).unwrap(),
            ProcEvent::Fork {
                parent_pid: 10,
                parent_tgid: 10,
                child_pid: 11,
                child_tgid: 11
            }
        );
        let m = message(sys::PROC_EVENT_COMM, |d| {
            d[0..4].copy_from_slice(&5i32.to_ne_bytes());
            d[4..8].copy_from_slice(&5i32.to_ne_bytes());
            d[8..12].copy_from_slice(b"ls\0\0");
        });
        assert_eq!(
            decode(&m).unwrap(),
            ProcEvent::Comm {
                pid: 5,
                tgid: 5,
                comm: "ls".into()
            }
        );
        let m = message(sys::PROC_EVENT_EXIT, |d| {
            d[0..4].copy_from_slice(&9i32.to_ne_bytes())
        });
        assert!(matches!(
            decode(&m).unwrap(),
            ProcEvent::Exit { pid: 9, .. }
        ));
        assert!(decode(&m[..10]).is_err());
    }

    #[test]
    fn exit_code_and_signal_are_separate() {
        // `exit 3`: wait status 0x300; SIGKILL: 9; SIGSEGV with core: 0x8b.
        let m = message(sys::PROC_EVENT_EXIT, |d| {
            d[0..4].copy_from_slice(&9i32.to_ne_bytes());
            d[8..12].copy_from_slice(&0x300u32.to_ne_bytes());
        });
        let ProcEvent::Exit { status, .. } = decode(&m).unwrap() else {
            panic!("not an exit")
        };
        assert_eq!((status.exit_code, status.signal), (Some(3), None));
        assert_eq!(status.wait_status, 768);
        let s = ExitStatus::from_wait_status(9);
        assert_eq!(
            (s.exit_code, s.signal, s.core_dumped),
            (None, Some(9), false)
        );
        let s = ExitStatus::from_wait_status(0x8b);
        assert_eq!(
            (s.exit_code, s.signal, s.core_dumped),
            (None, Some(11), true)
        );
    }

    #[test]
    fn exec_decoding_is_pure_and_acks_carry_the_request_seq() {
        // An exec of a pid that does not exist still decodes: nothing is
        // looked up.
        let m = message(sys::PROC_EVENT_EXEC, |d| {
            d[0..4].copy_from_slice(&i32::MAX.to_ne_bytes());
            d[4..8].copy_from_slice(&i32::MAX.to_ne_bytes());
        });
        assert_eq!(
            decode(&m).unwrap(),
            ProcEvent::Exec {
                pid: i32::MAX,
                tgid: i32::MAX
            }
        );
        assert_eq!(comm(i32::MAX), None);
        assert_eq!(
            comm(std::process::id() as i32).map(|c| c.is_empty()),
            Some(false)
        );
        let mut m = message(sys::PROC_EVENT_NONE, |d| {
            d[0..4].copy_from_slice(&(libc::EPERM as u32).to_ne_bytes())
        });
        m[8..12].copy_from_slice(&77u32.to_ne_bytes()); // cn_msg.seq
        m[12..16].copy_from_slice(&1u32.to_ne_bytes()); // cn_msg.ack
        assert_eq!(
            decode(&m).unwrap(),
            ProcEvent::Ack {
                err: libc::EPERM as u32,
                seq: 77,
                ack: 1
            }
        );
    }

    #[test]
    fn subscription_request_carries_seq_and_op() {
        let b = subscription_request(true, 0x1234).unwrap();
        let m = crate::proto::Messages::new(&b).next().unwrap().unwrap();
        assert_eq!(m.header.ty, NLMSG_DONE);
        let p = m.payload;
        assert_eq!(&p[12..16], &0x1234u32.to_ne_bytes());
        assert_eq!(&p[16..18], &4u16.to_ne_bytes());
        assert_eq!(&p[20..24], &sys::PROC_CN_MCAST_LISTEN.to_ne_bytes());
    }
}
