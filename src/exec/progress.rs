//! Progress reporting: start/finish events from the scheduler in, text on stderr out.
//!
//! `ConsoleProgress` keeps a live status on a terminal (`--curses`): the `[12 / 40]` line
//! and, under it, one line per running action with its time, redrawn in place. Elsewhere it
//! prints plain status lines, as few as Bazel does in a CI log: at most one a second, and
//! less often as the build goes on (15% of its time so far), unless
//! `--show_progress_rate_limit` says otherwise. It also prints the output of failed actions
//! (and of successful actions that printed something) as they finish, above the status,
//! each command line as it starts with `-s`, and a failed command's environment and
//! directory with `--verbose_failures`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::core::paint::{Style, line};
use crate::core::{Action, ActionKind};
use crate::exec::ActionFailure;

/// How one action ended, as far as progress reporting cares.
#[derive(Debug)]
pub enum ActionOutcome<'a> {
    /// It ran; `output` is what it printed (stdout+stderr).
    Executed {
        output: &'a [u8],
    },
    /// Its outputs came from the action cache.
    CacheHit,
    /// Its outputs on disk were already right.
    UpToDate,
    Failed(&'a ActionFailure),
}

/// Receives scheduler events; called from worker threads.
pub trait Progress: Sync {
    /// The number of actions this build needs.
    fn begin(&self, _total: usize) {}
    /// An action starts executing (cache misses only).
    fn started(&self, action: &Action);
    /// A command is about to run for `action`: its argv, its whole environment and the exec
    /// root it runs in (for `-s` and `--verbose_failures`).
    fn command(
        &self,
        _action: &Action,
        _argv: &[String],
        _env: &BTreeMap<String, String>,
        _exec_root: &Path,
    ) {
    }
    /// An action was dealt with (every needed action that was not skipped).
    fn finished(&self, action: &Action, outcome: &ActionOutcome<'_>);
    /// Called a few times a second while actions run, so times can be updated.
    fn tick(&self) {}
    /// Prints `text` (whole lines) for the user, above any live status.
    fn message(&self, text: &str) {
        eprint!("{text}");
    }
    /// The build is over; clear any live line.
    fn end(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn started(&self, _: &Action) {}
    fn finished(&self, _: &Action, _: &ActionOutcome<'_>) {}
}

/// How the console reports, from `--curses`, `--color`, `--show_progress`,
/// `--show_progress_rate_limit`, `-s` and `--verbose_failures`.
#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    /// Redraw a live status in place (a terminal) rather than print status lines.
    pub live: bool,
    /// Paint `ERROR:` and `INFO:` in Bazel's colors.
    pub color: bool,
    /// Show the status at all.
    pub show_progress: bool,
    /// The least time between two status lines or redraws; `None` is Bazel's pace (a tenth
    /// of a second live; a second, growing with the build's time, in plain lines).
    pub rate_limit: Option<Duration>,
    /// Print each command line as it starts.
    pub subcommands: bool,
    /// Show a failed command with its environment and working directory.
    pub verbose_failures: bool,
    /// The terminal's size: lines are cut to the width, running actions to the height.
    pub width: usize,
    pub height: usize,
}

impl ConsoleSettings {
    /// Plain, uncolored lines at Bazel's pace: what a log file gets.
    pub fn plain() -> ConsoleSettings {
        ConsoleSettings {
            live: false,
            color: false,
            show_progress: true,
            rate_limit: None,
            subcommands: false,
            verbose_failures: false,
            width: 80,
            height: 24,
        }
    }
}

struct Console {
    out: Box<dyn Write + Send>,
    total: usize,
    done: usize,
    /// Running actions by start order (sequence number → message, start time).
    running: BTreeMap<u64, (String, Instant)>,
    /// Action address → sequence number; actions outlive the build so addresses are stable.
    ids: HashMap<usize, u64>,
    /// Action address → its command as `-s` shows it, kept for `--verbose_failures`.
    commands: HashMap<usize, String>,
    next_id: u64,
    /// Lines of the live status now on the screen.
    lines_shown: usize,
    last_draw: Option<Instant>,
    began: Instant,
}

pub struct ConsoleProgress {
    settings: ConsoleSettings,
    console: Mutex<Console>,
}

/// Live redraws are throttled so that thousands of quick actions do not turn into
/// thousands of terminal writes.
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);
/// Bazel's least time between two plain status lines...
const PLAIN_INTERVAL: Duration = Duration::from_secs(1);
/// ... and the share of the build's time so far that the gap grows to.
const PLAIN_GROWTH: f64 = 0.15;

impl ConsoleProgress {
    /// Writes to `out` as `settings` say.
    pub fn with_settings(out: Box<dyn Write + Send>, settings: ConsoleSettings) -> ConsoleProgress {
        let settings = ConsoleSettings {
            width: settings.width.max(20),
            height: settings.height.max(3),
            ..settings
        };
        ConsoleProgress {
            settings,
            console: Mutex::new(Console {
                out,
                total: 0,
                done: 0,
                running: BTreeMap::new(),
                ids: HashMap::new(),
                commands: HashMap::new(),
                next_id: 0,
                lines_shown: 0,
                last_draw: None,
                began: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Console> {
        self.console.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `[12 / 40] Executing genrule //pkg:x; 3s`, or with several running
    /// `[12 / 40] 3 actions running` and a line per action under it (live), or the oldest
    /// one and their number (plain).
    fn status_lines(&self, c: &Console) -> Vec<String> {
        let counts = format!("[{} / {}]", c.done, c.total);
        let running = |(message, start): &(String, Instant)| {
            format!("{message}; {}s", start.elapsed().as_secs())
        };
        let mut lines = match c.running.len() {
            0 => vec![counts],
            1 => vec![format!(
                "{counts} {}",
                running(c.running.values().next().expect("one"))
            )],
            n if self.settings.live => {
                let room = (self.settings.height - 2).min(n);
                let mut lines = vec![format!("{counts} {n} actions running")];
                let shown = if room < n { room - 1 } else { room };
                lines.extend(
                    c.running
                        .values()
                        .take(shown)
                        .map(|r| format!("    {}", running(r))),
                );
                if shown < n {
                    lines.push(format!("    ... ({} more)", n - shown));
                }
                lines
            }
            n => vec![format!(
                "{counts} {} ... ({n} actions running)",
                running(c.running.values().next().expect("several"))
            )],
        };
        // Never wrap: a wrapped line cannot be erased in place.
        for line in &mut lines {
            if line.chars().count() >= self.settings.width {
                *line = line.chars().take(self.settings.width - 1).collect();
            }
        }
        lines
    }

    /// Erases the live status, leaving the cursor where it began.
    fn clear(&self, c: &mut Console) {
        if c.lines_shown > 0 {
            let up = match c.lines_shown {
                1 => String::new(),
                n => format!("\x1b[{}A", n - 1),
            };
            let _ = write!(c.out, "\r{up}\x1b[J");
            c.lines_shown = 0;
        }
    }

    fn draw(&self, c: &mut Console, force: bool) {
        if !self.settings.show_progress {
            return;
        }
        let now = Instant::now();
        let interval = self.settings.rate_limit.unwrap_or(REDRAW_INTERVAL);
        if !force
            && c.last_draw
                .is_some_and(|t| now.duration_since(t) < interval)
        {
            return;
        }
        let lines = self.status_lines(c);
        self.clear(c);
        let _ = c.out.write_all(lines.join("\n").as_bytes());
        let _ = c.out.flush();
        c.lines_shown = lines.len();
        c.last_draw = Some(now);
    }

    /// Prints a plain status line if the pace allows one now (the first always): the action
    /// `starting`, or the oldest running one with its time.
    fn plain_status(&self, c: &mut Console, starting: Option<&Action>) {
        if !self.settings.show_progress {
            return;
        }
        let now = Instant::now();
        let interval = match self.settings.rate_limit {
            Some(limit) => limit,
            None => PLAIN_INTERVAL.max(now.duration_since(c.began).mul_f64(PLAIN_GROWTH)),
        };
        if c.last_draw
            .is_some_and(|t| now.duration_since(t) < interval)
        {
            return;
        }
        let text = match starting {
            Some(action) => format!("[{} / {}] {}", c.done, c.total, action.progress_message),
            None => self.status_lines(c).join("\n"),
        };
        let _ = writeln!(c.out, "{text}");
        c.last_draw = Some(now);
    }

    /// Prints a block of text above the live status (or just prints it).
    fn print_block(&self, c: &mut Console, text: &str) {
        self.clear(c);
        let _ = c.out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = c.out.write_all(b"\n");
        }
    }

    /// `ERROR: //pkg:x: Executing genrule //pkg:x failed (exit 1): <command>` and its output.
    fn failure_text(&self, c: &mut Console, action: &Action, f: &ActionFailure) -> String {
        let mut text = line(
            "ERROR",
            Style::Error,
            &format!(
                "{}: {} failed ({})",
                f.owner, action.progress_message, f.exit
            ),
            self.settings.color,
        );
        let verbose = c.commands.remove(&address(action));
        match verbose {
            Some(command) if self.settings.verbose_failures => {
                text.push_str(": error executing command \n  ");
                text.push_str(&command);
            }
            _ if !f.command.is_empty() => {
                text.push_str(": ");
                text.push_str(&shell_words(&f.command));
            }
            _ => {}
        }
        text.push('\n');
        text.push_str(&f.output);
        if !f.output.is_empty() && !f.output.ends_with('\n') {
            text.push('\n');
        }
        text
    }
}

fn address(action: &Action) -> usize {
    action as *const Action as usize
}

/// A command as Bazel's `-s` and `--verbose_failures` show it: a shell line that runs it
/// again in its directory with exactly its environment.
pub fn command_block(argv: &[String], env: &BTreeMap<String, String>, exec_root: &Path) -> String {
    let root = exec_root.display().to_string();
    // A test's paths name the exec root by a placeholder the runner fills in.
    let real = |text: &str| text.replace(crate::exec::runner::EXEC_ROOT_VAR, &root);
    let mut text = format!(
        "(cd {} && \\\n  exec env - \\\n",
        shell_words(std::slice::from_ref(&root))
    );
    for (name, value) in env {
        let pair = real(&format!("{name}={value}"));
        text.push_str(&format!("    {} \\\n", shell_words(&[pair])));
    }
    let argv: Vec<String> = argv.iter().map(|a| real(a)).collect();
    text.push_str(&format!("  {})", shell_words(&argv)));
    text
}

impl Progress for ConsoleProgress {
    fn begin(&self, total: usize) {
        let mut c = self.lock();
        c.total = total;
    }

    fn started(&self, action: &Action) {
        let mut c = self.lock();
        let id = c.next_id;
        c.next_id += 1;
        c.ids.insert(address(action), id);
        c.running
            .insert(id, (action.progress_message.clone(), Instant::now()));
        if self.settings.live {
            self.draw(&mut c, false);
        } else {
            self.plain_status(&mut c, Some(action));
        }
    }

    fn command(
        &self,
        action: &Action,
        argv: &[String],
        env: &BTreeMap<String, String>,
        exec_root: &Path,
    ) {
        if !(self.settings.subcommands || self.settings.verbose_failures) {
            return;
        }
        let block = command_block(argv, env, exec_root);
        let mut c = self.lock();
        if self.settings.subcommands {
            let header = format!(
                "# {} [action '{}', configuration: {}]",
                action.owner,
                action.progress_message,
                action
                    .outputs
                    .first()
                    .and_then(|o| crate::core::layout::configuration_of(o.as_str()))
                    .unwrap_or("none")
            );
            let text = format!(
                "{}\n{block}\n",
                line("SUBCOMMAND", Style::Info, &header, self.settings.color)
            );
            self.print_block(&mut c, &text);
        }
        if self.settings.verbose_failures && matches!(action.kind, ActionKind::Run { .. }) {
            c.commands.insert(address(action), block);
        }
    }

    fn finished(&self, action: &Action, outcome: &ActionOutcome<'_>) {
        let mut c = self.lock();
        c.done += 1;
        if let Some(id) = c.ids.remove(&address(action)) {
            c.running.remove(&id);
        }
        match outcome {
            ActionOutcome::Failed(f) => {
                // Everything needed to reproduce the failure, once, as it happens.
                let text = self.failure_text(&mut c, action, f);
                self.print_block(&mut c, &text);
            }
            ActionOutcome::Executed { output } if !output.is_empty() => {
                let text = format!(
                    "{}\n{}",
                    line(
                        "INFO",
                        Style::Info,
                        &format!("From {}:", action.progress_message),
                        self.settings.color
                    ),
                    String::from_utf8_lossy(output)
                );
                self.print_block(&mut c, &text);
            }
            _ => {}
        }
        c.commands.remove(&address(action));
        if self.settings.live {
            let force = c.lines_shown == 0;
            self.draw(&mut c, force);
        }
    }

    fn tick(&self) {
        let mut c = self.lock();
        if c.running.is_empty() {
            return;
        }
        if self.settings.live {
            self.draw(&mut c, false);
        } else if self.settings.rate_limit != Some(Duration::ZERO) {
            // A long action is reported again now and then; with no limit at all, only
            // starting actions are (else every tick would print).
            self.plain_status(&mut c, None);
        }
    }

    fn message(&self, text: &str) {
        let mut c = self.lock();
        self.print_block(&mut c, text);
        if self.settings.live && !c.running.is_empty() {
            self.draw(&mut c, true);
        }
    }

    fn end(&self) {
        let mut c = self.lock();
        self.clear(&mut c);
        let _ = c.out.flush();
    }
}

/// The size of the terminal on stderr (columns, rows), 80 by 24 if unknown.
pub fn terminal_size() -> (usize, usize) {
    let mut size = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointed-to struct, which lives here.
    let rc = unsafe { nix::libc::ioctl(2, nix::libc::TIOCGWINSZ, &mut size) };
    match rc == 0 && size.ws_col > 0 {
        true => (usize::from(size.ws_col), usize::from(size.ws_row.max(3))),
        false => (80, 24),
    }
}

/// A command line as a shell would read it back.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ActionKind;
    use crate::core::Label;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        }
    }

    fn action(name: &str) -> Action {
        Action {
            owner: Label {
                repo: String::new(),
                package: "pkg".into(),
                name: name.into(),
            },
            mnemonic: "Genrule".into(),
            progress_message: format!("Executing genrule //pkg:{name}"),
            kind: ActionKind::Run { argv: vec![] },
            inputs: Default::default(),
            outputs: vec![],
            env: BTreeMap::new(),
            requirements: vec![],
            directory_outputs: vec![],
            scratch_dirs: vec![],
            discovery: None,
        }
    }

    fn plain(rate_limit: Option<Duration>, buf: &Buf) -> ConsoleProgress {
        let settings = ConsoleSettings {
            rate_limit,
            ..ConsoleSettings::plain()
        };
        ConsoleProgress::with_settings(Box::new(buf.clone()), settings)
    }

    fn failure_of(action: &Action) -> ActionFailure {
        ActionFailure {
            owner: action.owner.clone(),
            mnemonic: "Genrule".into(),
            command: vec!["false".into()],
            exit: "exit 1".into(),
            output: "boom\n".into(),
        }
    }

    #[test]
    fn plain_mode_without_a_limit_prints_one_line_per_started_action_and_failures() {
        let buf = Buf::default();
        let p = plain(Some(Duration::ZERO), &buf);
        let (x, y) = (action("x"), action("y"));
        p.begin(2);
        p.started(&x);
        p.finished(&x, &ActionOutcome::Executed { output: b"" });
        p.started(&y);
        p.finished(&y, &ActionOutcome::Failed(&failure_of(&y)));
        p.end();
        assert_eq!(
            buf.text(),
            "[0 / 2] Executing genrule //pkg:x\n[1 / 2] Executing genrule //pkg:y\n\
             ERROR: //pkg:y: Executing genrule //pkg:y failed (exit 1): false\nboom\n"
        );
    }

    #[test]
    fn plain_mode_at_bazels_pace_prints_the_first_line_and_then_waits() {
        let buf = Buf::default();
        let p = plain(None, &buf);
        let actions: Vec<Action> = (0..20).map(|i| action(&format!("a{i}"))).collect();
        p.begin(actions.len());
        for a in &actions {
            p.started(a);
            p.tick();
            p.finished(a, &ActionOutcome::UpToDate);
        }
        p.end();
        assert_eq!(buf.text(), "[0 / 20] Executing genrule //pkg:a0\n");
    }

    #[test]
    fn without_show_progress_only_failures_are_printed() {
        let buf = Buf::default();
        let settings = ConsoleSettings {
            show_progress: false,
            rate_limit: Some(Duration::ZERO),
            ..ConsoleSettings::plain()
        };
        let p = ConsoleProgress::with_settings(Box::new(buf.clone()), settings);
        let x = action("x");
        p.begin(1);
        p.started(&x);
        p.finished(&x, &ActionOutcome::Failed(&failure_of(&x)));
        p.end();
        assert!(buf.text().starts_with("ERROR: //pkg:x"), "{}", buf.text());
        assert!(!buf.text().contains("[0 / 1]"), "{}", buf.text());
    }

    #[test]
    fn verbose_failures_show_the_directory_and_environment() {
        let buf = Buf::default();
        let settings = ConsoleSettings {
            verbose_failures: true,
            subcommands: true,
            ..ConsoleSettings::plain()
        };
        let p = ConsoleProgress::with_settings(Box::new(buf.clone()), settings);
        let x = action("x");
        let env = BTreeMap::from([("PATH".to_owned(), "/bin".to_owned())]);
        p.begin(1);
        p.started(&x);
        p.command(&x, &["false".to_owned()], &env, Path::new("/ex root"));
        p.finished(&x, &ActionOutcome::Failed(&failure_of(&x)));
        let block = "(cd '/ex root' && \\\n  exec env - \\\n    PATH=/bin \\\n  false)";
        let text = buf.text();
        assert!(
            text.contains(
                "SUBCOMMAND: # //pkg:x [action 'Executing genrule //pkg:x', configuration: "
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "ERROR: //pkg:x: Executing genrule //pkg:x failed (exit 1): error executing \
                 command \n  {block}\nboom\n"
            )),
            "{text}"
        );
    }

    #[test]
    fn live_mode_shows_each_running_action_under_the_counts() {
        let buf = Buf::default();
        let settings = ConsoleSettings {
            live: true,
            width: 200,
            ..ConsoleSettings::plain()
        };
        let p = ConsoleProgress::with_settings(Box::new(buf.clone()), settings);
        let (x, y) = (action("x"), action("y"));
        p.begin(5);
        p.started(&x);
        let text = buf.text();
        assert_eq!(text, "[0 / 5] Executing genrule //pkg:x; 0s", "{text:?}");
        p.started(&y);
        // Force a redraw past the throttle.
        std::thread::sleep(REDRAW_INTERVAL);
        p.tick();
        let text = buf.text();
        assert!(
            text.ends_with(
                "\r\x1b[J[0 / 5] 2 actions running\n    Executing genrule //pkg:x; 0s\n    \
                 Executing genrule //pkg:y; 0s"
            ),
            "{text:?}"
        );
        p.finished(&x, &ActionOutcome::Executed { output: b"hi\n" });
        p.end();
        let text = buf.text();
        // The three lines are erased (up two, clear below) before the output is printed.
        assert!(
            text.contains("\r\x1b[2A\x1b[JINFO: From Executing genrule //pkg:x:\nhi\n"),
            "{text:?}"
        );
        assert!(text.ends_with("\r\x1b[J"), "{text:?}");
    }
}
