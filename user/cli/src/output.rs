//! Output: JSON Lines records, figures, the tables of `info`.

use rustnl::proto::genl::MAX_ATTR_PAYLOAD;
use rustnl::{Error, GenlInfo};
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// A record with its `type` first and then `value`'s fields.
#[derive(Serialize)]
pub(crate) struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub(crate) ty: &'static str,
    #[serde(flatten)]
    pub(crate) value: &'a T,
}

/// Prints one JSON line.
pub(crate) fn json_line<T: Serialize>(value: &T) -> Result<(), Error> {
    let line = serde_json::to_string(value)
        .map_err(|e| Error::Unexpected(format!("cannot write JSON: {e}")))?;
    println!("{line}");
    Ok(())
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

pub(crate) fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

/// min, median, p99 of sorted, non-empty samples.
pub(crate) fn percentiles(sorted: &[Duration]) -> (Duration, Duration, Duration) {
    let at = |q: f64| {
        sorted
            .get(((sorted.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    (at(0.0), at(0.5), at(0.99))
}

#[derive(Serialize)]
pub(crate) struct EchoRecord<'a> {
    #[serde(rename = "type")]
    pub(crate) ty: &'static str,
    pub(crate) bytes: usize,
    pub(crate) text: &'a str,
    pub(crate) rtt_us: f64,
}

#[derive(Serialize)]
pub(crate) struct EchoSummary {
    #[serde(rename = "type")]
    pub(crate) ty: &'static str,
    pub(crate) count: u64,
    pub(crate) batch: u64,
    pub(crate) bytes: usize,
    pub(crate) min_us: f64,
    pub(crate) median_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) messages_per_sec: f64,
}

/// The counters in the spec's order, named as in JSON (the spec's names
/// with `_`).
pub(crate) fn counter_rows(c: &rustnl::proto::Counters) -> Vec<(String, u64)> {
    rustnl::counters(c)
        .into_iter()
        .map(|(a, v)| (a.json_name().to_owned(), v))
        .collect()
}

/// `info --genl`: the configuration, then the counters of both faces side
/// by side.
pub(crate) fn genl_info_text(i: &GenlInfo) -> String {
    let mut out = format!(
        "protocol_version: {}\nunit: {}\ngroups: {}\nmax_payload: {} (generic netlink: at most {MAX_ATTR_PAYLOAD} per request)\nheartbeat_ms: {}\nopen_broadcast: {}\n",
        i.version, i.unit, i.groups, i.max_payload, i.heartbeat_ms, i.open_broadcast
    );
    out.push_str(&format!(
        "{:<22}{:>12}{:>12}\n",
        "counter", "classic", "genl"
    ));
    for ((name, classic), (_, genl)) in counter_rows(&i.classic_counters)
        .into_iter()
        .zip(counter_rows(&i.genl_counters))
    {
        out.push_str(&format!("{name:<22}{classic:>12}{genl:>12}\n"));
    }
    out
}
