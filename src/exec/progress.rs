//! Progress reporting: start/finish events from the scheduler in, text on stderr out.
//!
//! `ConsoleProgress` keeps one live status line on a terminal (`[12 / 40] Executing genrule
//! //pkg:x; 3s ... (2 actions running)`, redrawn with `\r` + clear-line) and prints plain
//! lines otherwise. It also prints the output of failed actions (and of successful actions
//! that printed something) as they finish, above the status line, like Bazel.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::core::Action;
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
    /// An action was dealt with (every needed action that was not skipped).
    fn finished(&self, action: &Action, outcome: &ActionOutcome<'_>);
    /// Called a few times a second while actions run, so times can be updated.
    fn tick(&self) {}
    /// The build is over; clear any live line.
    fn end(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn started(&self, _: &Action) {}
    fn finished(&self, _: &Action, _: &ActionOutcome<'_>) {}
}

struct Console {
    out: Box<dyn Write + Send>,
    total: usize,
    done: usize,
    /// Running actions by start order (sequence number → message, start time).
    running: BTreeMap<u64, (String, Instant)>,
    /// Action address → sequence number; actions outlive the build so addresses are stable.
    ids: std::collections::HashMap<usize, u64>,
    next_id: u64,
    line_shown: bool,
    last_draw: Option<Instant>,
}

pub struct ConsoleProgress {
    live: bool,
    width: usize,
    console: Mutex<Console>,
}

/// Redraws caused by events are throttled so that thousands of quick actions do not turn into
/// thousands of terminal writes.
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);

impl ConsoleProgress {
    /// Writes to stderr, live if stderr is a terminal.
    pub fn stderr() -> ConsoleProgress {
        let live = std::io::stderr().is_terminal();
        ConsoleProgress::new(Box::new(std::io::stderr()), live, terminal_width())
    }

    /// Writes to `out`; `live` selects the redrawn status line, `width` bounds it.
    pub fn new(out: Box<dyn Write + Send>, live: bool, width: usize) -> ConsoleProgress {
        ConsoleProgress {
            live,
            width: width.max(20),
            console: Mutex::new(Console {
                out,
                total: 0,
                done: 0,
                running: BTreeMap::new(),
                ids: std::collections::HashMap::new(),
                next_id: 0,
                line_shown: false,
                last_draw: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Console> {
        self.console.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status_line(&self, c: &Console) -> String {
        let mut line = format!("[{} / {}]", c.done, c.total);
        if let Some((message, start)) = c.running.values().next() {
            line.push_str(&format!(" {message}; {}s", start.elapsed().as_secs()));
            if c.running.len() > 1 {
                line.push_str(&format!(" ... ({} actions running)", c.running.len()));
            }
        }
        // Never wrap: a wrapped line cannot be erased with `\r`.
        if line.chars().count() >= self.width {
            line = line.chars().take(self.width - 1).collect();
        }
        line
    }

    fn clear(&self, c: &mut Console) {
        if c.line_shown {
            let _ = c.out.write_all(b"\r\x1b[K");
            c.line_shown = false;
        }
    }

    fn draw(&self, c: &mut Console, force: bool) {
        let now = Instant::now();
        if !force
            && c.last_draw
                .is_some_and(|t| now.duration_since(t) < REDRAW_INTERVAL)
        {
            return;
        }
        let line = self.status_line(c);
        let _ = write!(c.out, "\r\x1b[K{line}");
        let _ = c.out.flush();
        c.line_shown = true;
        c.last_draw = Some(now);
    }

    /// Prints a block of text above the live line (or just prints it).
    fn print_block(&self, c: &mut Console, text: &str) {
        self.clear(c);
        let _ = c.out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = c.out.write_all(b"\n");
        }
    }
}

impl Progress for ConsoleProgress {
    fn begin(&self, total: usize) {
        self.lock().total = total;
    }

    fn started(&self, action: &Action) {
        let mut c = self.lock();
        let id = c.next_id;
        c.next_id += 1;
        c.ids.insert(action as *const Action as usize, id);
        c.running
            .insert(id, (action.progress_message.clone(), Instant::now()));
        if self.live {
            self.draw(&mut c, false);
        } else {
            let line = format!("[{} / {}] {}\n", c.done, c.total, action.progress_message);
            let _ = c.out.write_all(line.as_bytes());
        }
    }

    fn finished(&self, action: &Action, outcome: &ActionOutcome<'_>) {
        let mut c = self.lock();
        c.done += 1;
        if let Some(id) = c.ids.remove(&(action as *const Action as usize)) {
            c.running.remove(&id);
        }
        match outcome {
            ActionOutcome::Failed(f) => {
                // Everything needed to reproduce the failure, once, as it happens.
                let mut text = format!(
                    "ERROR: {}: {} failed ({})",
                    f.owner, action.progress_message, f.exit
                );
                if !f.command.is_empty() {
                    text.push_str(": ");
                    text.push_str(&shell_words(&f.command));
                }
                text.push('\n');
                text.push_str(&f.output);
                if !f.output.is_empty() && !f.output.ends_with('\n') {
                    text.push('\n');
                }
                self.print_block(&mut c, &text);
            }
            ActionOutcome::Executed { output } if !output.is_empty() => {
                let text = format!(
                    "INFO: From {}:\n{}",
                    action.progress_message,
                    String::from_utf8_lossy(output)
                );
                self.print_block(&mut c, &text);
            }
            _ => {}
        }
        if self.live {
            let force = !c.line_shown;
            self.draw(&mut c, force);
        }
    }

    fn tick(&self) {
        if self.live {
            let mut c = self.lock();
            if !c.running.is_empty() {
                self.draw(&mut c, false);
            }
        }
    }

    fn end(&self) {
        let mut c = self.lock();
        self.clear(&mut c);
        let _ = c.out.flush();
    }
}

/// The width of the terminal on stderr, 80 if unknown.
fn terminal_width() -> usize {
    let mut size = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointed-to struct, which lives here.
    let rc = unsafe { nix::libc::ioctl(2, nix::libc::TIOCGWINSZ, &mut size) };
    if rc == 0 && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
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
            inputs: vec![],
            outputs: vec![],
            env: BTreeMap::new(),
            requirements: vec![],
            directory_outputs: vec![],
            scratch_dirs: vec![],
            discovery: None,
        }
    }

    #[test]
    fn plain_mode_prints_one_line_per_started_action_and_failures() {
        let buf = Buf::default();
        let p = ConsoleProgress::new(Box::new(buf.clone()), false, 80);
        let (x, y) = (action("x"), action("y"));
        p.begin(2);
        p.started(&x);
        p.finished(&x, &ActionOutcome::Executed { output: b"" });
        p.started(&y);
        let failure = ActionFailure {
            owner: y.owner.clone(),
            mnemonic: "Genrule".into(),
            command: vec!["false".into()],
            exit: "exit 1".into(),
            output: "boom\n".into(),
        };
        p.finished(&y, &ActionOutcome::Failed(&failure));
        p.end();
        assert_eq!(
            buf.text(),
            "[0 / 2] Executing genrule //pkg:x\n[1 / 2] Executing genrule //pkg:y\n\
             ERROR: //pkg:y: Executing genrule //pkg:y failed (exit 1): false\nboom\n"
        );
    }

    #[test]
    fn live_mode_redraws_one_line_with_running_actions() {
        let buf = Buf::default();
        let p = ConsoleProgress::new(Box::new(buf.clone()), true, 200);
        let (x, y) = (action("x"), action("y"));
        p.begin(5);
        p.started(&x);
        p.started(&y);
        // Force a redraw past the throttle.
        std::thread::sleep(REDRAW_INTERVAL);
        p.tick();
        let text = buf.text();
        assert!(
            text.starts_with("\r\x1b[K[0 / 5] Executing genrule //pkg:x; 0s"),
            "{text:?}"
        );
        assert!(
            text.ends_with("\r\x1b[K[0 / 5] Executing genrule //pkg:x; 0s ... (2 actions running)"),
            "{text:?}"
        );
        assert!(!text.contains('\n'));
        p.finished(&x, &ActionOutcome::Executed { output: b"hi\n" });
        p.end();
        let text = buf.text();
        assert!(
            text.contains("\r\x1b[KINFO: From Executing genrule //pkg:x:\nhi\n"),
            "{text:?}"
        );
        assert!(text.ends_with("\r\x1b[K"), "{text:?}");
    }
}
