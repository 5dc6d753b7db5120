//! Connector process events (`NETLINK_CONNECTOR`, `CN_IDX_PROC`).
//!
//! Subscribing needs `CAP_NET_ADMIN` (the kernel's rule).

use crate::error::{Error, Result};
use crate::message::MessageBuilder;
use crate::proto::NLMSG_DONE;
use crate::socket::Socket;
use crate::sys;
use std::mem::{offset_of, size_of};

/// One process event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    /// A process (or thread) was forked.
    Fork {
        /// Parent pid / tgid.
        parent_pid: i32,
        /// Parent thread group.
        parent_tgid: i32,
        /// Child pid.
        child_pid: i32,
        /// Child thread group.
        child_tgid: i32,
    },
    /// A process called execve.
    Exec {
        /// Its pid.
        pid: i32,
        /// Its thread group.
        tgid: i32,
        /// The command name (`/proc/PID/comm` read at the event, if it was
        /// still there).
        comm: Option<String>,
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
        /// Exit code (as from `wait`).
        exit_code: u32,
        /// Parent pid.
        parent_pid: i32,
    },
    /// The kernel acknowledged the subscription (`err` 0) or refused it.
    Ack {
        /// Error from the kernel.
        err: u32,
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

/// Decodes the payload of one connector message carrying a `proc_event`.
pub fn decode(payload: &[u8]) -> Result<ProcEvent> {
    let cn: sys::cn_msg =
        sys::read(payload).ok_or_else(|| Error::Malformed("short cn_msg".into()))?;
    if cn.id.idx != sys::CN_IDX_PROC || cn.id.val != sys::CN_VAL_PROC {
        return Err(Error::Unexpected(format!(
            "connector message for {}:{}",
            cn.id.idx, cn.id.val
        )));
    }
    let data = payload.get(size_of::<sys::cn_msg>()..).unwrap_or_default();
    let ev: sys::proc_event =
        sys::read(data).ok_or_else(|| Error::Malformed("short proc_event".into()))?;
    // SAFETY (all union reads below): `proc_event` is plain data, so every
    // union member is a valid value; `what` says which one the kernel wrote.
    let e = &ev.event_data;
    Ok(match ev.what {
        sys::PROC_EVENT_NONE => ProcEvent::Ack {
            err: unsafe { e.ack.err },
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
                comm: std::fs::read_to_string(format!("/proc/{}/comm", x.process_pid))
                    .ok()
                    .map(|s| s.trim_end().to_owned()),
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
                exit_code: x.exit_code,
                parent_pid: x.parent_pid,
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

/// A subscription to process events.
#[derive(Debug)]
pub struct ProcEvents {
    sock: Socket,
    pending: std::collections::VecDeque<ProcEvent>,
}

impl ProcEvents {
    /// Joins the proc connector group and asks the kernel to start sending
    /// (`PROC_CN_MCAST_LISTEN`). Needs `CAP_NET_ADMIN`.
    pub fn subscribe() -> Result<ProcEvents> {
        let sock = Socket::open_with_groups(sys::NETLINK_CONNECTOR, sys::CN_IDX_PROC)?;
        let op = sys::PROC_CN_MCAST_LISTEN.to_ne_bytes();
        let mut cn = [0u8; size_of::<sys::cn_msg>()];
        cn[offset_of!(sys::cn_msg, id)..][..4].copy_from_slice(&sys::CN_IDX_PROC.to_ne_bytes());
        cn[offset_of!(sys::cn_msg, id) + 4..][..4].copy_from_slice(&sys::CN_VAL_PROC.to_ne_bytes());
        cn[offset_of!(sys::cn_msg, len)..][..2].copy_from_slice(&(op.len() as u16).to_ne_bytes());
        let mut b = MessageBuilder::new();
        // The connector takes its messages as NLMSG_DONE, without NLM_F_REQUEST.
        b.push_parts(NLMSG_DONE, 0, 0, &[&cn, &op])?;
        sock.send(b.as_bytes())?;
        Ok(ProcEvents {
            sock,
            pending: Default::default(),
        })
    }

    /// The underlying socket (timeouts, polling).
    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Waits for the next event. [`Error::Overrun`] means events were lost.
    pub fn next_event(&mut self) -> Result<ProcEvent> {
        super::next_from_kernel(&mut self.sock, &mut self.pending, |m| {
            if m.header.ty == NLMSG_DONE {
                decode(m.payload).map(Some)
            } else {
                Ok(None)
            }
        })
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
}
