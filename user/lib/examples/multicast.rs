//! The article's multicast program: wait on group 1 for a message from the
//! kernel and print it. Try `rustnl broadcast --group 1 hi`, or load the
//! module with `heartbeat_ms=1000`: `cargo run --example multicast`.

fn main() -> Result<(), rustnl::Error> {
    let mut sub = rustnl::Subscription::new(rustnl::proto::DEFAULT_UNIT, &[1])?;
    println!("Waiting for message from kernel");
    let event = sub.next_event()?;
    println!(
        "Received {} message payload: {}",
        event.kind.name(),
        String::from_utf8_lossy(event.payload)
    );
    Ok(())
}
