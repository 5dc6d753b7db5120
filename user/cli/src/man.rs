//! The man page: one page, rustnl(1), that documents every command in its
//! COMMANDS section (no references to per-command pages nobody generates),
//! with JSON OUTPUT, EXIT STATUS and EXAMPLES sections.

use clap::Command;
use std::io::{self, Write};

/// Escapes text for roff: backslashes, hyphens (as `\-`), leading dots and
/// apostrophes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split('\n') {
        if !out.is_empty() {
            out.push('\n');
        }
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        for c in line.chars() {
            match c {
                '\\' => out.push_str("\\e"),
                '-' => out.push_str("\\-"),
                c => out.push(c),
            }
        }
    }
    out
}

/// `--long, -s <VALUE>` of an option, or `<NAME>` of a positional.
fn arg_synopsis(a: &clap::Arg) -> String {
    let value = a
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("<{}>", a.get_id().as_str().to_uppercase()));
    if a.is_positional() {
        return value;
    }
    let mut names = Vec::new();
    if let Some(l) = a.get_long() {
        names.push(format!("--{l}"));
    }
    if let Some(s) = a.get_short() {
        names.push(format!("-{s}"));
    }
    let takes_value = a.get_num_args().is_some_and(|n| n.takes_values());
    if takes_value {
        format!("{} {value}", names.join(", "))
    } else {
        names.join(", ")
    }
}

fn help_text(a: &clap::Arg) -> String {
    let mut text = a
        .get_long_help()
        .or(a.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let takes_value = a.get_num_args().is_some_and(|n| n.takes_values());
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if takes_value && !defaults.is_empty() && !a.is_hide_default_value_set() {
        text.push_str(&format!(" [default: {}]", defaults.join(",")));
    }
    let values: Vec<String> = if takes_value {
        a.get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_string())
            .collect()
    } else {
        Vec::new()
    };
    if !values.is_empty() {
        text.push_str(&format!(" [possible values: {}]", values.join(", ")));
    }
    text
}

fn render_args(cmd: &Command, w: &mut dyn Write) -> io::Result<()> {
    for a in cmd.get_arguments() {
        if a.is_hide_set() || a.get_id() == "help" || a.get_id() == "version" {
            continue;
        }
        writeln!(w, ".TP")?;
        writeln!(w, "\\fB{}\\fR", esc(&arg_synopsis(a)))?;
        writeln!(w, "{}", esc(&help_text(a)))?;
    }
    Ok(())
}

/// Renders each (sub)command under `path` in the COMMANDS section.
fn render_command(path: &str, cmd: &Command, w: &mut dyn Write) -> io::Result<()> {
    let name = format!("{path} {}", cmd.get_name());
    let subs: Vec<&Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    let mut usage: Vec<String> = vec![name.clone()];
    if cmd
        .get_arguments()
        .any(|a| !a.is_positional() && !a.is_hide_set() && a.get_id() != "help")
    {
        usage.push("[OPTIONS]".into());
    }
    for a in cmd.get_arguments().filter(|a| a.is_positional()) {
        let s = arg_synopsis(a);
        usage.push(if a.is_required_set() {
            s
        } else {
            format!("[{s}]")
        });
    }
    if !subs.is_empty() {
        usage.push("<COMMAND>".into());
    }
    writeln!(w, ".SS \"{}\"", esc(&usage.join(" ")))?;
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        writeln!(w, "{}", esc(&about.to_string()))?;
    }
    render_args(cmd, w)?;
    for s in subs {
        render_command(&name, s, w)?;
    }
    Ok(())
}

const JSON_OUTPUT: &str = "With --json every command prints JSON Lines: one JSON object per line, whose first field, type, names the record: echo, echo_summary, broadcast, event, info, genl_info (info --genl: the configuration, classic_counters and genl_counters), family, genl_family (name, id, version, hdr_size, max_attr, ops with id and flags, mcast_groups with name and id); for watch exec: fork, exec, comm, exit (exit_code or signal, core_dumped, wait_status); for watch route: link, addr, route (table, protocol and scope by name, as in the text output). Field names are stable. The watchers print one line per event as it arrives.";

const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success; also when listen or watch end at --count or --timeout."),
    ("1", "Failure: the kernel refused a request, the module is not loaded, the unit is not rustnl, no answer in time, ... One line on standard error says what and, where it can, what to do."),
    ("2", "Usage error: an unknown option, a value out of range (sizes, counts, groups, units), an option the command does not take."),
];

const EXAMPLES: &[(&str, &str)] = &[
    (
        "rustnl echo \"Hello you!\"",
        "Echo a text through the module and print the round-trip time.",
    ),
    (
        "rustnl echo --count 10000 --size 1024 --batch 8 --json",
        "10000 round trips of 8 echoes of 1 KiB each; one JSON summary line.",
    ),
    (
        "rustnl listen --group 1,2 --timeout 10s",
        "Print the events of groups 1 and 2 for ten seconds.",
    ),
    (
        "sudo rustnl broadcast --group 1 hello",
        "Multicast a text to group 1.",
    ),
    (
        "rustnl echo --genl \"Hello you!\"",
        "The same echo over the module's generic netlink family rustnl instead of its netlink unit.",
    ),
    (
        "rustnl listen --genl --group 3",
        "The events of group 3 over the generic netlink family: the module sends this listener group 3 only, so a broadcast --genl to another group says no listeners.",
    ),
    (
        "rustnl info --genl",
        "Configuration and the counters of both faces, classic and generic netlink, side by side.",
    ),
    (
        "rustnl info --unit 30 --timeout none",
        "Configuration and counters of a module loaded with unit=30; wait as long as it takes.",
    ),
    (
        "rustnl watch exec --count 5",
        "The next five process events.",
    ),
    (
        "rustnl watch route --routes --timestamp",
        "Route changes, with the time of each, like ip -t monitor route.",
    ),
    (
        "rustnl families --json",
        "The netlink units in use, one JSON object per unit.",
    ),
    (
        "rustnl genl show nlctrl",
        "The generic netlink controller: its id, operations and multicast groups, like genl ctrl get name nlctrl.",
    ),
    ("rustnl man | man -l -", "Read this page."),
];

/// Writes rustnl(1).
pub fn render(cmd: &Command, w: &mut dyn Write) -> io::Result<()> {
    // Built, so that every argument knows how many values it takes.
    let mut cmd = cmd.clone();
    cmd.build();
    let cmd = &cmd;
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    writeln!(w, ".SH COMMANDS")?;
    writeln!(
        w,
        "Options go after the command. \\-\\-unit, \\-\\-timeout, \\-\\-genl and \\-\\-json are also accepted before it, for the commands that take them. With \\-\\-genl, echo, broadcast, listen and info talk to the module's generic netlink family rustnl (found by name; payloads of at most 65531 bytes) instead of its netlink unit."
    )?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        render_command(cmd.get_name(), sub, w)?;
    }
    writeln!(w, ".SH \"JSON OUTPUT\"")?;
    writeln!(w, "{}", esc(JSON_OUTPUT))?;
    writeln!(w, ".SH \"EXIT STATUS\"")?;
    for (code, text) in EXIT_STATUS {
        writeln!(w, ".TP\n\\fB{code}\\fR\n{}", esc(text))?;
    }
    writeln!(w, ".SH EXAMPLES")?;
    for (line, text) in EXAMPLES {
        writeln!(w, ".TP\n\\fB{}\\fR\n{}", esc(line), esc(text))?;
    }
    man.render_version_section(w)?;
    Ok(())
}
