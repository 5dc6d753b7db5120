//! Async netlink on tokio (feature `tokio`): an [`AsyncSocket`] for
//! request/answer exchanges and dumps, and [`EventStream`], the
//! subscriptions as [`futures_core::Stream`]s. Both wrap a [`Socket`] in
//! tokio's `AsyncFd` (non-blocking, woken by readiness), so every socket
//! option and opening function of [`Socket`] applies.
//!
//! ```no_run
//! # async fn run() -> rustnl::Result<()> {
//! use rustnl::families::route;
//! use rustnl::proto::{NLM_F_DUMP, NLM_F_REQUEST};
//! use rustnl::tokio::{AsyncSocket, EventStream};
//!
//! // A dump of the links.
//! let mut sock = AsyncSocket::new(rustnl::Socket::open(libc::NETLINK_ROUTE as u32)?)?;
//! let mut req = rustnl::MessageBuilder::new();
//! req.push(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0u8; 16])?;
//! let links = sock.request(req.as_bytes(), |_| Ok(())).await?;
//!
//! // Route changes as a stream (poll it with StreamExt::next from futures
//! // or tokio-stream, or EventStream::next).
//! let mut events = EventStream::route(route::groups::ROUTES)?;
//! while let Some(event) = events.next().await {
//!     println!("{}", event?);
//! }
//! # Ok(()) }
//! ```

use crate::errors::{Error, Result};
use crate::event::{ClassicEvents, Decode, OwnedEvent, Subscription};
use crate::families::{proc_events, route};
use crate::proto::genl::McastGroup;
use crate::proto::Message;
use crate::request::Exchange;
use crate::socket::{Datagram, Socket};
use ::tokio::io::unix::AsyncFd;
use futures_core::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// Registers `sock` with tokio's reactor.
fn register(sock: Socket) -> Result<AsyncFd<Socket>> {
    // SAFETY: `Socket` owns its descriptor (an `OwnedFd`) and has no way to
    // replace or close it; this module never hands out `&mut Socket`, so the
    // descriptor stays valid and the same until the `AsyncFd` is dropped.
    unsafe { AsyncFd::register(sock) }.map_err(|e| Error::Io {
        op: "registering the socket with tokio",
        source: e.into(),
    })
}

fn wait(source: std::io::Error) -> Error {
    Error::Io {
        op: "waiting for socket readiness",
        source,
    }
}

/// A [`Socket`] driven by tokio.
#[derive(Debug)]
pub struct AsyncSocket {
    fd: AsyncFd<Socket>,
}

impl AsyncSocket {
    /// Wraps `sock` (made non-blocking). Must be called inside a tokio
    /// runtime with I/O enabled.
    pub fn new(mut sock: Socket) -> Result<AsyncSocket> {
        sock.set_nonblocking(true)?;
        Ok(AsyncSocket {
            fd: register(sock)?,
        })
    }

    /// The socket (options, port id). Not mutably: the registered
    /// descriptor must stay the socket's while tokio watches it.
    pub fn get_ref(&self) -> &Socket {
        self.fd.get_ref()
    }

    /// Sends `bytes` (one or more messages) to the kernel.
    pub async fn send(&self, bytes: &[u8]) -> Result<()> {
        loop {
            let mut guard = self.fd.writable().await.map_err(wait)?;
            match guard.get_inner().send(bytes) {
                Err(Error::WouldBlock) => guard.clear_ready(),
                r => return r,
            }
        }
    }

    /// Receives the next datagram.
    pub async fn recv(&mut self) -> Result<Datagram<'_>> {
        let meta = loop {
            let mut guard = self.fd.readable_mut().await.map_err(wait)?;
            match guard.get_inner_mut().recv_meta() {
                Err(Error::WouldBlock) => guard.clear_ready(),
                r => break r?,
            }
        };
        Ok(self.fd.get_ref().datagram(meta))
    }

    /// [`Socket::request`], async: sends `request` and passes each answer to
    /// `each` until the exchange is over (ack, `NLMSG_DONE` of a dump, or the
    /// single answer), with the same checks and errors.
    pub async fn request<F>(&mut self, request: &[u8], mut each: F) -> Result<usize>
    where
        F: FnMut(&Message<'_>) -> Result<()>,
    {
        let mut exchange = Exchange::start(request, self.get_ref().port_id())?;
        self.send(request).await?;
        loop {
            if let Some(end) = exchange.on_datagram(&self.recv().await?, &mut each) {
                return end;
            }
        }
    }
}

/// An [`EventStream`]'s decoder: a message to an event (`Ok(None)`: not an
/// event of interest, skipped). A closure, so that it may capture state.
type BoxedDecoder<T> = Box<dyn FnMut(&Message<'_>) -> Result<Option<T>> + Send>;

/// A subscription as a [`Stream`] of decoded events: the async twin of
/// [`Subscription`], with a closure as decoder (it may capture state, e.g.
/// a generic netlink family's id). [`Error::Overrun`] items report lost
/// events; the stream goes on after them.
pub struct EventStream<T> {
    fd: AsyncFd<Socket>,
    pending: VecDeque<Result<T>>,
    decode: BoxedDecoder<T>,
}

impl<T> std::fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("socket", self.fd.get_ref())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<T> EventStream<T> {
    /// A stream of the datagrams `sock` receives from the kernel, each
    /// message decoded with `decode` (`Ok(None)`: not an event of
    /// interest, skipped).
    pub fn new<F>(mut sock: Socket, decode: F) -> Result<Self>
    where
        F: FnMut(&Message<'_>) -> Result<Option<T>> + Send + 'static,
    {
        sock.set_nonblocking(true)?;
        Ok(EventStream {
            fd: register(sock)?,
            pending: VecDeque::new(),
            decode: Box::new(decode),
        })
    }

    /// The stream of a synchronous `sub`'s socket: the messages it
    /// received but did not hand out yet come first, decoded with `decode`
    /// like the rest.
    pub fn from_subscription<D, F>(sub: Subscription<D>, decode: F) -> Result<Self>
    where
        D: Decode,
        F: FnMut(&Message<'_>) -> Result<Option<T>> + Send + 'static,
    {
        let (sock, queued) = sub.into_parts();
        let mut stream = Self::new(sock, decode)?;
        for bytes in queued {
            for m in crate::proto::Messages::new(&bytes) {
                let item = match m {
                    Ok(m) => (stream.decode)(&m).transpose(),
                    Err(e) => Some(Err(Error::BadMessage(e))),
                };
                stream.pending.extend(item);
            }
        }
        Ok(stream)
    }

    /// The socket (options).
    pub fn get_ref(&self) -> &Socket {
        self.fd.get_ref()
    }

    /// The next event (`None` never comes: subscriptions do not end).
    pub async fn next(&mut self) -> Option<Result<T>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Poll::Ready(Some(e));
            }
            let mut guard = match ready!(self.fd.poll_read_ready_mut(cx)) {
                Ok(g) => g,
                Err(e) => return Poll::Ready(Some(Err(wait(e)))),
            };
            let meta = match guard.get_inner_mut().recv_meta() {
                Ok(m) => m,
                Err(Error::WouldBlock) => {
                    guard.clear_ready();
                    continue;
                }
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            let dgram = guard.get_inner().datagram(meta);
            if dgram.sender != 0 {
                continue;
            }
            for m in dgram.messages() {
                match m {
                    Ok(m) => match (self.decode)(&m) {
                        Ok(Some(e)) => self.pending.push_back(Ok(e)),
                        Ok(None) => {}
                        Err(e) => self.pending.push_back(Err(e)),
                    },
                    Err(e) => {
                        self.pending.push_back(Err(Error::BadMessage(e)));
                        break;
                    }
                }
            }
        }
    }
}

/// An owned item of `decoder`'s, if it keeps `m`.
fn owned<D, T>(
    mut decoder: D,
    to_owned: fn(D::Item<'_>) -> T,
) -> impl FnMut(&Message<'_>) -> Result<Option<T>>
where
    D: Decode,
{
    move |m| {
        if !decoder.keep(m) {
            return Ok(None);
        }
        decoder.decode(m).map(|e| Some(to_owned(e)))
    }
}

impl EventStream<proc_events::ProcEvent> {
    /// Process events ([`Subscription::proc_events`]: the subscription
    /// waits synchronously, up to 2 s, for the kernel's answer).
    pub fn proc_events() -> Result<Self> {
        let decode = owned(proc_events::ProcEvents, |e| e);
        Self::from_subscription(Subscription::proc_events()?, decode)
    }
}

impl EventStream<route::RouteEvent> {
    /// rtnetlink events of `groups` ([`route::groups`]).
    pub fn route(groups: u32) -> Result<Self> {
        let decode = owned(route::RouteEvents, |e| e);
        Self::from_subscription(Subscription::route(groups)?, decode)
    }
}

impl EventStream<OwnedEvent> {
    /// Events of the rustnl module's `groups` on `unit` (the classic face).
    pub fn rustnl(unit: u32, groups: &[u32]) -> Result<Self> {
        let decode = owned(ClassicEvents, |e| e.to_owned_event());
        Self::from_subscription(Subscription::new(unit, groups)?, decode)
    }

    /// Events of the rustnl module's generic netlink family, joining
    /// `groups` by name (see [`Subscription::genl`]); the decoder knows the
    /// family's id.
    pub fn genl(groups: &[McastGroup]) -> Result<Self> {
        let sub = Subscription::genl(groups)?;
        let decode = owned(sub.decoder().clone(), |e| e.to_owned_event());
        Self::from_subscription(sub, decode)
    }

    /// Events of the rustnl module's numbered `groups` on its generic
    /// netlink family (see [`Subscription::genl_numbered`]: the kernel
    /// sends this socket those groups only).
    pub fn genl_numbered(groups: &[u32]) -> Result<Self> {
        let sub = Subscription::genl_numbered(groups)?;
        let decode = owned(sub.decoder().clone(), |e| e.to_owned_event());
        Self::from_subscription(sub, decode)
    }
}

impl<T: Unpin> Stream for EventStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
    use crate::MessageBuilder;
    use std::os::fd::AsFd;
    use std::time::Duration;

    fn runtime() -> ::tokio::runtime::Runtime {
        ::tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn async_dump_and_request() {
        runtime().block_on(async {
            let mut s =
                AsyncSocket::new(Socket::open(libc::NETLINK_ROUTE as u32).unwrap()).unwrap();
            let mut b = MessageBuilder::new();
            b.push(
                libc::RTM_GETLINK,
                NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK,
                1,
                &[0u8; 16],
            )
            .unwrap();
            let n = ::tokio::time::timeout(
                Duration::from_secs(2),
                s.request(b.as_bytes(), |m| {
                    assert_eq!(m.header.ty, libc::RTM_NEWLINK);
                    Ok(())
                }),
            )
            .await
            .expect("a dump with NLM_F_ACK ends at NLMSG_DONE")
            .unwrap();
            assert!(n >= 1);
            // A refused request: ENODEV, as with the blocking socket.
            let mut ifi = [0u8; 16];
            ifi[4..8].copy_from_slice(&0x7fff_fff0i32.to_ne_bytes());
            b.clear();
            b.push(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 2, &ifi)
                .unwrap();
            match s.request(b.as_bytes(), |_| Ok(())).await {
                Err(Error::Kernel(k)) => assert_eq!(k.errno, libc::ENODEV),
                other => panic!("{other:?}"),
            }
        });
    }

    /// A route-event stream over a socket in a fresh network namespace sees
    /// `lo` come up there.
    #[test]
    fn route_events_as_a_stream() {
        let ns = std::thread::spawn(|| {
            // SAFETY: plain system call; it changes this thread only.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return None;
            }
            std::fs::File::open("/proc/thread-self/ns/net").ok()
        })
        .join()
        .unwrap();
        let Some(ns) = ns else {
            eprintln!("skipped: cannot create a network namespace here");
            return;
        };
        runtime().block_on(async {
            let sock =
                Socket::open_in_netns(libc::NETLINK_ROUTE as u32, route::groups::LINKS, ns.as_fd())
                    .unwrap();
            // A closure that captures state: only lo's (index 1) events.
            let lo = 1;
            let mut events = EventStream::new(sock, move |m| {
                Ok(route::decode(m)?
                    .filter(|e| matches!(e, route::RouteEvent::Link { index, .. } if *index == lo)))
            })
            .unwrap();
            let mut ctl = Socket::open_in_netns(libc::NETLINK_ROUTE as u32, 0, ns.as_fd()).unwrap();
            ctl.set_recv_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut ifi = [0u8; 16];
            ifi[4..8].copy_from_slice(&1i32.to_ne_bytes());
            ifi[8..12].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
            ifi[12..16].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
            let mut b = MessageBuilder::new();
            b.push(libc::RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1, &ifi)
                .unwrap();
            ctl.request(b.as_bytes(), |_| Ok(())).unwrap();
            let e = ::tokio::time::timeout(Duration::from_secs(2), events.next())
                .await
                .expect("an event")
                .expect("the stream goes on")
                .unwrap();
            match e {
                route::RouteEvent::Link { name, up, .. } => {
                    assert_eq!(name.as_deref(), Some("lo"));
                    assert!(up);
                }
                other => panic!("{other:?}"),
            }
        });
    }

    /// Process events as a stream: a child's exit with code 3. Skipped where
    /// the proc connector does not answer (outside the initial namespaces).
    #[test]
    fn proc_events_as_a_stream() {
        runtime().block_on(async {
            let mut events = match EventStream::proc_events() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("skipped: {e}");
                    return;
                }
            };
            let child = std::process::Command::new("sh")
                .args(["-c", "exit 3"])
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            let _ = child.wait_with_output();
            let found = ::tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(e) = events.next().await {
                    if let Ok(proc_events::ProcEvent::Exit { pid: p, status, .. }) = e {
                        if p == pid {
                            return status.exit_code;
                        }
                    }
                }
                None
            })
            .await
            .expect("the child's exit event");
            assert_eq!(found, Some(3));
        });
    }
}
