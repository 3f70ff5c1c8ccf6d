//! `forge help --man`: the command line's clap definitions in (the same ones `--help` and the
//! completions come from), a roff manual page `forge(1)` out — the startup options, every
//! command with its synopsis and flags, and the target pattern syntax — for
//! `forge help --man > forge.1; man -l forge.1`.

use clap::Command;
use clap_mangen::Man;

/// The whole page, for `command` as `flag_forms::uniform` made it.
pub fn page(command: &Command) -> std::io::Result<String> {
    let mut command = command.clone().disable_help_subcommand(true);
    command.build();
    let man = Man::new(command.clone())
        .title("FORGE")
        .section("1")
        .source(format!("forge {}", env!("CARGO_PKG_VERSION")))
        .manual("Forge Manual");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    out.extend_from_slice(b".SH \"STARTUP OPTIONS\"\n");
    out.extend_from_slice(&without_heading(&render(
        &man,
        Man::render_options_section,
    )?));
    // The commands, each described further down this page (clap_mangen's own list would
    // point to a page per command).
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        let entry = format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            escape(sub.get_name()),
            escape(&about)
        );
        out.extend_from_slice(entry.as_bytes());
    }
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        out.extend_from_slice(&command_section(&command, sub)?);
    }
    out.extend_from_slice(b".SH \"TARGET PATTERNS\"\n");
    out.extend_from_slice(text_block(super::help::TARGET_SYNTAX).as_bytes());
    man.render_version_section(&mut out)?;
    let page = String::from_utf8(out).map_err(std::io::Error::other)?;
    Ok(once_preamble(&page))
}

/// The page with the string definition each clap_mangen renderer starts with (`.ie \n(.g
/// .ds Aq ...` and its `.el`) kept only once, at the top.
fn once_preamble(page: &str) -> String {
    let mut seen = false;
    let mut out = String::with_capacity(page.len());
    let mut lines = page.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with(".ie \\n(.g .ds Aq")
            && lines.peek().is_some_and(|l| l.starts_with(".el .ds Aq"))
        {
            let el = lines.next().unwrap_or_default();
            if !seen {
                out.push_str(line);
                out.push('\n');
                out.push_str(el);
                out.push('\n');
                seen = true;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// One command's part of the page: `.SH "FORGE BUILD"`, what it does, its synopsis and each
/// of its flags (clap_mangen renders a command's synopsis and options as sections of their
/// own page; here they go under the command's heading).
fn command_section(top: &Command, sub: &Command) -> std::io::Result<Vec<u8>> {
    let name = sub.get_name();
    let sub = sub
        .clone()
        .bin_name(format!("{} {name}", top.get_name()))
        .display_name(format!("{}-{name}", top.get_name()));
    let man = Man::new(sub.clone());
    let mut out = format!(
        ".SH \"{} {}\"\n",
        top.get_name().to_uppercase(),
        name.to_uppercase()
    )
    .into_bytes();
    if let Some(about) = sub.get_long_about().or(sub.get_about()) {
        out.extend_from_slice(text_block(&about.to_string()).as_bytes());
    }
    out.extend_from_slice(b".PP\n");
    out.extend_from_slice(&without_heading(&render(
        &man,
        Man::render_synopsis_section,
    )?));
    if sub.get_arguments().any(|a| !a.is_hide_set()) {
        out.extend_from_slice(b".PP\nOptions:\n");
        out.extend_from_slice(&without_heading(&render(
            &man,
            Man::render_options_section,
        )?));
    }
    Ok(out)
}

/// What one of clap_mangen's section renderers writes.
fn render(
    man: &Man,
    section: fn(&Man, &mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    section(man, &mut out)?;
    Ok(out)
}

/// A rendered section without its `.SH` line, to place under another heading.
fn without_heading(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    text.lines()
        .filter(|l| !l.starts_with(".SH "))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Plain text as roff, lines kept as they are (`.nf`).
fn text_block(text: &str) -> String {
    let mut out = String::from(".nf\n");
    for line in text.lines() {
        out.push_str(&escape(line));
        out.push('\n');
    }
    out.push_str(".fi\n");
    out
}

/// One line of plain text as roff: it cannot start a request, and backslashes and hyphens
/// print as themselves.
fn escape(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    match escaped.starts_with('.') || escaped.starts_with('\'') {
        true => format!("\\&{escaped}"),
        false => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_cannot_become_requests() {
        assert_eq!(
            text_block(".hidden\n'quote\na\\b --x"),
            ".nf\n\\&.hidden\n\\&'quote\na\\eb \\-\\-x\n.fi\n"
        );
    }
}
