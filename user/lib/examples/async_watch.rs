//! The `tokio` feature: an async dump of the network interfaces, then link,
//! address and route changes as a stream, for a few seconds.
//!
//! `cargo run -p rustnl --features tokio --example async_watch [SECONDS]`

use rustnl::families::route::{self, RouteEvent};
use rustnl::proto::{NLM_F_DUMP, NLM_F_REQUEST};
use rustnl::tokio::{AsyncSocket, EventStream};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> rustnl::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);

    let mut sock = AsyncSocket::new(rustnl::Socket::open(libc::NETLINK_ROUTE as u32)?)?;
    let mut req = rustnl::MessageBuilder::new();
    req.push(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0u8; 16])?;
    sock.request(req.as_bytes(), |msg| {
        if let Some(RouteEvent::Link {
            index, name, up, ..
        }) = route::decode(msg)?
        {
            println!(
                "link {index}: {} {}",
                name.as_deref().unwrap_or("?"),
                if up { "up" } else { "down" }
            );
        }
        Ok(())
    })
    .await?;

    println!("watching for {seconds} s");
    let mut events = EventStream::route(route::groups::ALL)?;
    let watch = async {
        while let Some(event) = events.next().await {
            let mut line = String::new();
            let _ = route::format_with(&event?, &mut line, route::link_name);
            println!("{line}");
        }
        Ok::<(), rustnl::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(seconds), watch).await {
        Ok(r) => r,
        Err(_) => Ok(()), // time is up
    }
}
