//! The article's unicast program: send "Hello you!" to the kernel and print
//! its echo. Run with the rustnl module loaded: `cargo run --example unicast`.

fn main() -> Result<(), rustnl::Error> {
    let mut client = rustnl::Client::connect(rustnl::proto::DEFAULT_UNIT)?;
    let echo = client.echo(b"Hello you!")?;
    println!(
        "Received message payload: {}",
        String::from_utf8_lossy(echo)
    );
    Ok(())
}
